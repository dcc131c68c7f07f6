/* bytecode: CPU-bound benchmark. A small stack-machine interpreter (switch
 * dispatch through a jump table, an operand stack, locals, CALL/RET) runs
 * three loop-heavy programs:
 *   primes  count the primes below 40000 by trial division (4203)
 *   fib     recursive Fibonacci, fib(25) = 75025
 *   hash    an xorshift/multiply hash over 500000 iterations, checked
 *           against the same computation written in C
 * The command line's scale=N (default 1) repeats the three programs N
 * times; the output does not depend on it. */
#include "rt.h"

#define PRIME_LIMIT 40000
#define FIB_N 25
#define HASH_ITERS 500000

enum op {
    PUSH,  /* imm: push imm */
    LOAD,  /* n: push local n */
    STORE, /* n: pop into local n */
    ADD, SUB, MUL, DIVU, MODU, AND, XOR, SHL, SHR,
    LTU,   /* a b -> a < b */
    EQ,    /* a b -> a == b */
    DUP, DROP,
    JMP,   /* target */
    JZ,    /* target: pop, jump if zero */
    JNZ,   /* target: pop, jump if nonzero */
    CALL,  /* target: the callee's frame holds the top word as local 0 */
    RET,   /* return the top word to the caller */
    HALT,  /* result = top word */
};

#define STACK 1024
#define FRAMES 64
#define LOCALS 8

struct frame_rec {
    u32 ret;
    u32 locals[LOCALS];
};

/* Runs code from 0 until HALT; returns the top of the stack. 0xdeadbeef
 * on a malformed program (stack or frame overflow, bad opcode). */
static u32 run(const u32 *code)
{
    static u32 stack[STACK];
    static struct frame_rec frames[FRAMES];
    u32 pc = 0, sp = 0, fp = 0;
    u32 *loc = frames[0].locals;
    for (;;) {
        u32 op = code[pc++];
        u32 a, b;
        if (sp >= STACK - 2)
            return 0xdeadbeef;
        switch (op) {
        case PUSH: stack[sp++] = code[pc++]; break;
        case LOAD: stack[sp++] = loc[code[pc++]]; break;
        case STORE: loc[code[pc++]] = stack[--sp]; break;
#define BIN(OP, EXPR)                  \
    case OP:                           \
        b = stack[--sp];               \
        a = stack[sp - 1];             \
        stack[sp - 1] = (EXPR);        \
        break;
        BIN(ADD, a + b)
        BIN(SUB, a - b)
        BIN(MUL, a * b)
        BIN(DIVU, b ? a / b : 0)
        BIN(MODU, b ? a % b : 0)
        BIN(AND, a & b)
        BIN(XOR, a ^ b)
        BIN(SHL, a << (b & 31))
        BIN(SHR, a >> (b & 31))
        BIN(LTU, a < b)
        BIN(EQ, a == b)
#undef BIN
        case DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case DROP: sp--; break;
        case JMP: pc = code[pc]; break;
        case JZ: pc = stack[--sp] ? pc + 1 : code[pc]; break;
        case JNZ: pc = stack[--sp] ? code[pc] : pc + 1; break;
        case CALL:
            if (fp + 1 >= FRAMES)
                return 0xdeadbeef;
            frames[++fp].ret = pc + 1;
            loc = frames[fp].locals;
            loc[0] = stack[--sp];
            pc = code[pc];
            break;
        case RET:
            pc = frames[fp--].ret;
            loc = frames[fp].locals;
            break;
        case HALT: return stack[sp - 1];
        default: return 0xdeadbeef;
        }
    }
}

/* Programs are assembled at start-up (labels patched), not hand-numbered. */
static u32 code_primes[80], code_fib[64], code_hash[64];

struct asm_state {
    u32 *code;
    u32 n;
};

static u32 here(struct asm_state *s) { return s->n; }
static void e1(struct asm_state *s, u32 op) { s->code[s->n++] = op; }
static void e2(struct asm_state *s, u32 op, u32 arg)
{
    s->code[s->n++] = op;
    s->code[s->n++] = arg;
}
/* Emits a jump with a placeholder target; returns the slot to patch. */
static u32 jump(struct asm_state *s, u32 op)
{
    e2(s, op, 0);
    return s->n - 1;
}
static void patch(struct asm_state *s, u32 slot) { s->code[slot] = s->n; }

/* count = 0; for (n = 2; n < LIMIT; n++) { for (d = 2; d * d <= n; d++)
 * if (n % d == 0) goto composite; count++; composite:; } */
static void build_primes(void)
{
    struct asm_state s = { code_primes, 0 };
    e2(&s, PUSH, 0), e2(&s, STORE, 0);              /* count = 0 */
    e2(&s, PUSH, 2), e2(&s, STORE, 1);              /* n = 2 */
    u32 outer = here(&s);
    e2(&s, LOAD, 1), e2(&s, PUSH, PRIME_LIMIT), e1(&s, LTU);
    u32 done = jump(&s, JZ);                        /* while n < LIMIT */
    e2(&s, PUSH, 2), e2(&s, STORE, 2);              /* d = 2 */
    u32 inner = here(&s);
    e2(&s, LOAD, 1), e2(&s, LOAD, 2), e1(&s, DUP), e1(&s, MUL), e1(&s, LTU);
    u32 prime = jump(&s, JNZ);                      /* n < d*d: prime */
    e2(&s, LOAD, 1), e2(&s, LOAD, 2), e1(&s, MODU);
    u32 composite = jump(&s, JZ);                   /* d divides n */
    e2(&s, LOAD, 2), e2(&s, PUSH, 1), e1(&s, ADD), e2(&s, STORE, 2);
    e2(&s, JMP, inner);
    patch(&s, prime);
    e2(&s, LOAD, 0), e2(&s, PUSH, 1), e1(&s, ADD), e2(&s, STORE, 0);
    patch(&s, composite);
    e2(&s, LOAD, 1), e2(&s, PUSH, 1), e1(&s, ADD), e2(&s, STORE, 1);
    e2(&s, JMP, outer);
    patch(&s, done);
    e2(&s, LOAD, 0), e1(&s, HALT);
}

/* main: push N; call fib; halt.
 * fib(n): if (n < 2) return n; return fib(n-1) + fib(n-2). */
static void build_fib(void)
{
    struct asm_state s = { code_fib, 0 };
    e2(&s, PUSH, FIB_N);
    u32 call_main = jump(&s, CALL);
    e1(&s, HALT);
    u32 fib = here(&s);
    s.code[call_main] = fib;
    e2(&s, LOAD, 0), e2(&s, PUSH, 2), e1(&s, LTU);
    u32 big = jump(&s, JZ);
    e2(&s, LOAD, 0), e1(&s, RET);
    patch(&s, big);
    e2(&s, LOAD, 0), e2(&s, PUSH, 1), e1(&s, SUB), e2(&s, CALL, fib);
    e2(&s, LOAD, 0), e2(&s, PUSH, 2), e1(&s, SUB), e2(&s, CALL, fib);
    e1(&s, ADD), e1(&s, RET);
}

/* h = 0x811c9dc5; for (i = 0; i != ITERS; i++) { h ^= i; h *= 0x01000193;
 * h ^= h >> 13; h ^= h << 7; } */
static void build_hash(void)
{
    struct asm_state s = { code_hash, 0 };
    e2(&s, PUSH, 0x811c9dc5), e2(&s, STORE, 0);
    e2(&s, PUSH, 0), e2(&s, STORE, 1);
    u32 loop = here(&s);
    e2(&s, LOAD, 0), e2(&s, LOAD, 1), e1(&s, XOR);
    e2(&s, PUSH, 0x01000193), e1(&s, MUL);
    e1(&s, DUP), e2(&s, PUSH, 13), e1(&s, SHR), e1(&s, XOR);
    e1(&s, DUP), e2(&s, PUSH, 7), e1(&s, SHL), e1(&s, XOR);
    e2(&s, STORE, 0);
    e2(&s, LOAD, 1), e2(&s, PUSH, 1), e1(&s, ADD), e1(&s, DUP), e2(&s, STORE, 1);
    e2(&s, PUSH, HASH_ITERS), e1(&s, EQ), e2(&s, JZ, loop);
    e2(&s, LOAD, 0), e1(&s, HALT);
}

static u32 hash_in_c(void)
{
    u32 h = 0x811c9dc5;
    for (u32 i = 0; i != HASH_ITERS; i++) {
        h ^= i;
        h *= 0x01000193;
        h ^= h >> 13;
        h ^= h << 7;
    }
    return h;
}

void kmain(u32 magic, u32 mbi)
{
    build_primes();
    build_fib();
    build_hash();
    u32 primes = 0, fib = 0, hash = 0, scale = cmdline_uint(mbi, "scale", 1);
    for (u32 rep = 0; rep < scale; rep++) {
        primes = run(code_primes);
        fib = run(code_fib);
        hash = run(code_hash);
    }
    kv_dec("bytecode_primes_below_40000", primes);
    check("bytecode_primes", primes, 4203);
    kv_dec("bytecode_fib25", fib);
    check("bytecode_fib", fib, 75025);
    kv("bytecode_hash", hash);
    check("bytecode_hash_matches_c", hash, hash_in_c());
}
