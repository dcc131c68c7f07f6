/* calls: CPU-bound benchmark. Code that spends its time calling: direct
 * recursion of irregular depth, mutual recursion, calls through pointers
 * and dense switches compiled to jump tables.
 *
 *   tak        Takeuchi's function over five argument sets (3.2 M calls):
 *              three recursive calls per level, depth varying with the
 *              arguments
 *   ack        Ackermann's function A(3, 0..5) and A(2, 0..100)
 *              (recursion up to ~260 deep; the kernel stack is 16 KiB,
 *              of which the whole program uses at most 2.8 KiB at -O2,
 *              4.7 KiB at -O1, measured natively)
 *   hofstadter the Female/Male sequences F(n) = n - M(F(n-1)),
 *              M(n) = n - F(M(n-1)), by mutual recursion, checked against
 *              the same sequences computed iteratively
 *   expr       generated arithmetic expressions (a mutually recursive
 *              generator that also computes each value) parsed and
 *              evaluated by a mutually recursive descent parser
 *              (expr -> term -> unary -> primary -> expr) whose scanner
 *              is a switch over the character; values checked
 *   tree       a binary search tree of random keys: recursive insert,
 *              height, and in-order walks calling a visitor through a
 *              pointer; sortedness and count checked
 *   vm         a register-machine interpreter whose instructions are
 *              structs holding a pointer to their handler: the loop calls
 *              each one through it (gcd sum and Collatz step programs,
 *              checked against C)
 *   qsort      a generic quicksort (element size and comparator as
 *              arguments, swaps by words) sorting integers and records
 *              under five comparators, then bsearch lookups; order,
 *              checksums and found keys checked
 *   switch     32 operations as a dense `switch` (a jump table) and the
 *              same operations as a table of function pointers, run over
 *              one stream of random operands: both must agree
 *
 * The command line's scale=N (default 1) repeats the work N times; the
 * output does not depend on it. */
#include "rt.h"

/* Hides a value from the optimizer, so repeated work is not hoisted. */
static inline u32 opaque(u32 x)
{
    asm volatile("" : "+r"(x));
    return x;
}

static u32 mix(u32 h, u32 v)
{
    return (h ^ v) * 0x01000193;
}

static u32 rng;

static u32 next(void)
{
    u32 x = rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng = x;
}

static u32 mismatches;

static void expect(int ok)
{
    mismatches += !ok;
}

/* ---- tak, ack: direct recursion ---- */

static u32 tak_calls;

/* tak(x, y, z) = 5, 7, 14, 9, 15; 3,230,305 calls in all */
static const int tak_args[][3] = { { 20, 10, 4 }, { 18, 12, 6 }, { 21, 14, 7 }, { 22, 16, 8 }, { 22, 15, 7 } };

static int tak(int x, int y, int z)
{
    tak_calls++;
    if (y < x)
        return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y));
    return z;
}

#define ACK_ROUNDS 8
static u32 ack_calls;

static u32 ack(u32 m, u32 n)
{
    ack_calls++;
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

/* ---- Hofstadter Female and Male sequences: mutual recursion ---- */

#define HOF_N 48
static u32 hof_calls;
static u32 hof_m(u32 n);

static u32 hof_f(u32 n)
{
    hof_calls++;
    return n ? n - hof_m(hof_f(n - 1)) : 1;
}

static u32 hof_m(u32 n)
{
    hof_calls++;
    return n ? n - hof_f(hof_m(n - 1)) : 0;
}

/* ---- expressions: a recursive generator and a recursive descent parser ---- */

#define EXPR_BUF 4096
#define EXPR_COUNT 2000
static char ebuf[EXPR_BUF];
static u32 elen;

static u32 ebuf_full;

static void put(char c)
{
    if (elen < EXPR_BUF - 1)
        ebuf[elen++] = c;
    else
        ebuf_full++;
}

static void put_num(u32 v)
{
    char d[10];
    u32 n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        put(d[--n]);
}

static void spaces(void)
{
    u32 r = next() & 7;
    if (r == 0)
        put(' ');
    else if (r == 1) {
        put(' ');
        put('\t');
    }
}

static u32 gen_expr(u32 depth);

static u32 gen_primary(u32 depth)
{
    spaces();
    /* room for the deepest expression still to be closed: EXPR_BUF / 2 */
    if (depth && elen < EXPR_BUF / 2 && (next() & 3) == 0) {
        put('(');
        u32 v = gen_expr(depth - 1);
        spaces();
        put(')');
        return v;
    }
    u32 v = next();
    v = (v & 0x100) ? v % 100000 : v % 10;
    put_num(v);
    return v;
}

static u32 gen_unary(u32 depth)
{
    u32 r = next() & 15;
    if (r == 0) {
        spaces();
        put('-');
        return -gen_unary(depth);
    }
    if (r == 1) {
        spaces();
        put('~');
        return ~gen_unary(depth);
    }
    return gen_primary(depth);
}

static u32 gen_term(u32 depth)
{
    u32 v = gen_unary(depth);
    for (u32 k = next() % 3; k; k--) {
        spaces();
        if (next() & 1) {
            put('*');
            v *= gen_unary(depth);
        } else {
            put('&');
            v &= gen_unary(depth);
        }
    }
    return v;
}

static u32 gen_expr(u32 depth)
{
    u32 v = gen_term(depth);
    for (u32 k = next() % 4; k; k--) {
        spaces();
        switch (next() & 3) {
        case 0: put('+'); v += gen_term(depth); break;
        case 1: put('-'); v -= gen_term(depth); break;
        case 2: put('|'); v |= gen_term(depth); break;
        default: put('^'); v ^= gen_term(depth); break;
        }
    }
    return v;
}

static const char *pos;
static u32 parse_errors;

/* The scanner: the next significant character (not consumed). */
static char peek(void)
{
    for (;;) {
        switch (*pos) {
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            pos++;
            continue;
        default:
            return *pos;
        }
    }
}

static u32 parse_expr(void);

static u32 parse_primary(void)
{
    char c = peek();
    switch (c) {
    case '0' ... '9': {
        u32 v = 0;
        while (*pos >= '0' && *pos <= '9')
            v = v * 10 + (u32)(*pos++ - '0');
        return v;
    }
    case '(': {
        pos++;
        u32 v = parse_expr();
        if (peek() == ')')
            pos++;
        else
            parse_errors++;
        return v;
    }
    default:
        parse_errors++;
        if (c)
            pos++;
        return 0;
    }
}

static u32 parse_unary(void)
{
    switch (peek()) {
    case '-': pos++; return -parse_unary();
    case '~': pos++; return ~parse_unary();
    case '+': pos++; return parse_unary();
    default: return parse_primary();
    }
}

static u32 parse_term(void)
{
    u32 v = parse_unary();
    for (;;) {
        switch (peek()) {
        case '*': pos++; v *= parse_unary(); break;
        case '&': pos++; v &= parse_unary(); break;
        default: return v;
        }
    }
}

static u32 parse_expr(void)
{
    u32 v = parse_term();
    for (;;) {
        switch (peek()) {
        case '+': pos++; v += parse_term(); break;
        case '-': pos++; v -= parse_term(); break;
        case '|': pos++; v |= parse_term(); break;
        case '^': pos++; v ^= parse_term(); break;
        default: return v;
        }
    }
}

/* ---- a binary search tree: recursive insert, height, walks ---- */

#define TREE_KEYS 20000
#define TREE_RANGE 150000
struct node {
    struct node *l, *r;
    u32 key, count;
};
static struct node nodes[TREE_KEYS];
static u32 nnodes;

static struct node *insert(struct node *t, u32 key)
{
    if (!t) {
        t = &nodes[nnodes++];
        t->l = t->r = 0;
        t->key = key;
        t->count = 1;
        return t;
    }
    if (key < t->key)
        t->l = insert(t->l, key);
    else if (key > t->key)
        t->r = insert(t->r, key);
    else
        t->count++;
    return t;
}

static u32 height(const struct node *t)
{
    if (!t)
        return 0;
    u32 a = height(t->l), b = height(t->r);
    return 1 + (a > b ? a : b);
}

struct walk {
    u32 last, n, hash, unsorted, total;
};
typedef void (*visitor)(struct walk *w, const struct node *t);

static void walk(const struct node *t, visitor v, struct walk *w)
{
    if (!t)
        return;
    walk(t->l, v, w);
    v(w, t);
    walk(t->r, v, w);
}

static void visit_order(struct walk *w, const struct node *t)
{
    if (w->n && t->key <= w->last)
        w->unsorted++;
    w->last = t->key;
    w->n++;
    w->total += t->count;
}

static void visit_hash(struct walk *w, const struct node *t)
{
    w->hash = mix(w->hash, t->key);
    w->hash = mix(w->hash, t->count);
}

/* Sums the keys in [lo, hi] by recursion that prunes. */
static u32 range_sum(const struct node *t, u32 lo, u32 hi)
{
    if (!t)
        return 0;
    u32 s = 0;
    if (t->key > lo)
        s += range_sum(t->l, lo, hi);
    if (t->key >= lo && t->key <= hi)
        s += t->key * t->count;
    if (t->key < hi)
        s += range_sum(t->r, lo, hi);
    return s;
}

/* ---- a register machine whose ops call their handlers through pointers ---- */

#define HALT_PC 0xffffffffu
struct op;
typedef u32 (*handler)(u32 *r, const struct op *o, u32 pc);
struct op {
    handler fn;
    u8 d, a, b;
    u32 imm;
};

static u32 h_li(u32 *r, const struct op *o, u32 pc) { r[o->d] = o->imm; return pc + 1; }
static u32 h_mov(u32 *r, const struct op *o, u32 pc) { r[o->d] = r[o->a]; return pc + 1; }
static u32 h_add(u32 *r, const struct op *o, u32 pc) { r[o->d] = r[o->a] + r[o->b]; return pc + 1; }
static u32 h_addi(u32 *r, const struct op *o, u32 pc) { r[o->d] = r[o->a] + o->imm; return pc + 1; }
static u32 h_mul(u32 *r, const struct op *o, u32 pc) { r[o->d] = r[o->a] * r[o->b]; return pc + 1; }
static u32 h_modu(u32 *r, const struct op *o, u32 pc) { r[o->d] = r[o->a] % r[o->b]; return pc + 1; }
static u32 h_andi(u32 *r, const struct op *o, u32 pc) { r[o->d] = r[o->a] & o->imm; return pc + 1; }
static u32 h_shri(u32 *r, const struct op *o, u32 pc) { r[o->d] = r[o->a] >> o->imm; return pc + 1; }
static u32 h_xor(u32 *r, const struct op *o, u32 pc) { r[o->d] = r[o->a] ^ r[o->b]; return pc + 1; }
static u32 h_jmp(u32 *r, const struct op *o, u32 pc) { return o->imm; }
static u32 h_beqz(u32 *r, const struct op *o, u32 pc) { return r[o->a] ? pc + 1 : o->imm; }
static u32 h_bnez(u32 *r, const struct op *o, u32 pc) { return r[o->a] ? o->imm : pc + 1; }
static u32 h_bltu(u32 *r, const struct op *o, u32 pc) { return r[o->a] < r[o->b] ? o->imm : pc + 1; }
static u32 h_halt(u32 *r, const struct op *o, u32 pc) { return HALT_PC; }

#define PROG_MAX 64
static struct op prog_gcd[PROG_MAX], prog_collatz[PROG_MAX];

static u32 emit_at;
static struct op *emit_prog;

static u32 emit(handler fn, u32 d, u32 a, u32 b, u32 imm)
{
    struct op *o = &emit_prog[emit_at];
    o->fn = fn;
    o->d = (u8)d;
    o->a = (u8)a;
    o->b = (u8)b;
    o->imm = imm;
    return emit_at++;
}

#define GCD_N 200
#define COLLATZ_N 10000

/* sum of gcd(i, j) for 1 <= i, j <= GCD_N: r1 = i, r2 = j, r0 = sum */
static void build_gcd(void)
{
    emit_prog = prog_gcd;
    emit_at = 0;
    emit(h_li, 0, 0, 0, 0);
    emit(h_li, 1, 0, 0, 1);
    emit(h_li, 7, 0, 0, GCD_N + 1);
    u32 outer = emit(h_li, 2, 0, 0, 1);
    u32 inner = emit(h_mov, 3, 1, 0, 0); /* a = i */
    emit(h_mov, 4, 2, 0, 0);             /* b = j */
    u32 loop = emit(h_beqz, 0, 4, 0, 0); /* while b */
    emit(h_modu, 5, 3, 4, 0);            /* t = a % b */
    emit(h_mov, 3, 4, 0, 0);
    emit(h_mov, 4, 5, 0, 0);
    emit(h_jmp, 0, 0, 0, loop);
    prog_gcd[loop].imm = emit(h_add, 0, 0, 3, 0); /* sum += a */
    emit(h_addi, 2, 2, 0, 1);
    emit(h_bltu, 0, 2, 7, inner);
    emit(h_addi, 1, 1, 0, 1);
    emit(h_bltu, 0, 1, 7, outer);
    emit(h_halt, 0, 0, 0, 0);
}

/* total Collatz steps from every n in 1..COLLATZ_N (r0), and the xor of
 * the peaks (r6) */
static void build_collatz(void)
{
    emit_prog = prog_collatz;
    emit_at = 0;
    emit(h_li, 0, 0, 0, 0);
    emit(h_li, 6, 0, 0, 0);
    emit(h_li, 1, 0, 0, 1);
    emit(h_li, 7, 0, 0, COLLATZ_N + 1);
    emit(h_li, 8, 0, 0, 3);
    emit(h_li, 9, 0, 0, 2);
    u32 outer = emit(h_mov, 2, 1, 0, 0); /* x = n */
    emit(h_mov, 3, 1, 0, 0);             /* peak = n */
    u32 loop = emit(h_bltu, 0, 2, 9, 0); /* while x >= 2 */
    emit(h_addi, 0, 0, 0, 1);
    emit(h_andi, 4, 2, 0, 1);
    u32 odd = emit(h_bnez, 0, 4, 0, 0);
    emit(h_shri, 2, 2, 0, 1);
    emit(h_jmp, 0, 0, 0, loop);
    prog_collatz[odd].imm = emit(h_mul, 2, 2, 8, 0);
    emit(h_addi, 2, 2, 0, 1);
    emit(h_bltu, 0, 3, 2, 0); /* peak < x ? */
    emit(h_jmp, 0, 0, 0, loop);
    prog_collatz[emit_at - 2].imm = emit(h_mov, 3, 2, 0, 0);
    emit(h_jmp, 0, 0, 0, loop);
    prog_collatz[loop].imm = emit(h_xor, 6, 6, 3, 0);
    emit(h_addi, 1, 1, 0, 1);
    emit(h_bltu, 0, 1, 7, outer);
    emit(h_halt, 0, 0, 0, 0);
}

static u32 vm_steps;

static void vm_run(const struct op *prog, u32 *r)
{
    for (u32 i = 0; i < 16; i++)
        r[i] = 0;
    u32 pc = 0;
    while (pc != HALT_PC) {
        const struct op *o = &prog[pc];
        pc = o->fn(r, o, pc);
        vm_steps++;
    }
}

static u32 gcd_in_c(void)
{
    u32 sum = 0;
    for (u32 i = 1; i <= GCD_N; i++)
        for (u32 j = 1; j <= GCD_N; j++) {
            u32 a = i, b = j;
            while (b) {
                u32 t = a % b;
                a = b;
                b = t;
            }
            sum += a;
        }
    return sum;
}

static void collatz_in_c(u32 *steps, u32 *peaks)
{
    u32 s = 0, p = 0;
    for (u32 n = 1; n <= COLLATZ_N; n++) {
        u32 x = n, peak = n;
        while (x >= 2) {
            s++;
            x = (x & 1) ? 3 * x + 1 : x >> 1;
            if (x > peak)
                peak = x;
        }
        p ^= peak;
    }
    *steps = s;
    *peaks = p;
}

/* ---- a generic quicksort with comparator callbacks ---- */

typedef int (*compare_fn)(const void *, const void *);

static void swap_words(void *a, void *b, u32 size)
{
    u32 *p = a, *q = b;
    for (u32 i = 0; i < size / 4; i++) {
        u32 t = p[i];
        p[i] = q[i];
        q[i] = t;
    }
}

static void *at(void *base, u32 i, u32 size)
{
    return (char *)base + i * size;
}

static u32 cmp_calls;

/* Sorts n elements of size (a multiple of 4) bytes: median of three,
 * recursion on the smaller side, insertion sort below 8. */
static void gsort(void *base, u32 n, u32 size, compare_fn cmp)
{
    while (n > 8) {
        u32 mid = n / 2;
        void *a = at(base, 0, size), *m = at(base, mid, size), *z = at(base, n - 1, size);
        cmp_calls += 3;
        if (cmp(m, a) < 0)
            swap_words(m, a, size);
        if (cmp(z, m) < 0) {
            swap_words(z, m, size);
            cmp_calls++;
            if (cmp(m, a) < 0)
                swap_words(m, a, size);
        }
        swap_words(m, at(base, n - 2, size), size); /* pivot at n-2 */
        void *pivot = at(base, n - 2, size);
        u32 i = 0, j = n - 2;
        for (;;) {
            do {
                i++;
                cmp_calls++;
            } while (cmp(at(base, i, size), pivot) < 0);
            do {
                j--;
                cmp_calls++;
            } while (cmp(pivot, at(base, j, size)) < 0);
            if (i >= j)
                break;
            swap_words(at(base, i, size), at(base, j, size), size);
        }
        swap_words(at(base, i, size), pivot, size);
        /* [0, i) <= pivot <= (i, n) */
        if (i < n - 1 - i) {
            gsort(base, i, size, cmp);
            base = at(base, i + 1, size);
            n = n - 1 - i;
        } else {
            gsort(at(base, i + 1, size), n - 1 - i, size, cmp);
            n = i;
        }
    }
    for (u32 i = 1; i < n; i++)
        for (u32 j = i; j > 0; j--) {
            cmp_calls++;
            if (cmp(at(base, j - 1, size), at(base, j, size)) <= 0)
                break;
            swap_words(at(base, j - 1, size), at(base, j, size), size);
        }
}

static void *gsearch(const void *key, void *base, u32 n, u32 size, compare_fn cmp)
{
    u32 lo = 0, hi = n;
    while (lo < hi) {
        u32 mid = lo + (hi - lo) / 2;
        void *e = at(base, mid, size);
        int c = cmp(key, e);
        cmp_calls++;
        if (c == 0)
            return e;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

#define NUMS 16000
#define RECS 6000
struct rec {
    u32 key;
    char name[12];
    u16 group;
    u16 weight;
};
static u32 nums[NUMS];
static struct rec recs[RECS];

static int cmp_u32(const void *a, const void *b)
{
    u32 x = *(const u32 *)a, y = *(const u32 *)b;
    return (x > y) - (x < y);
}

static int cmp_u32_desc(const void *a, const void *b)
{
    return cmp_u32(b, a);
}

static int cmp_key(const void *a, const void *b)
{
    return cmp_u32(&((const struct rec *)a)->key, &((const struct rec *)b)->key);
}

static int cmp_name(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    for (u32 i = 0; i < sizeof(x->name); i++) {
        u8 c = (u8)x->name[i], d = (u8)y->name[i];
        if (c != d)
            return (int)c - (int)d;
        if (!c)
            break;
    }
    return cmp_key(a, b);
}

static int cmp_group_weight(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->group != y->group)
        return x->group > y->group ? -1 : 1; /* groups descending */
    if (x->weight != y->weight)
        return (int)x->weight - (int)y->weight;
    return cmp_key(a, b);
}

static void make_sort_input(void)
{
    rng = 0x2545f491;
    for (u32 i = 0; i < NUMS; i++)
        nums[i] = next() % 50000; /* duplicates */
    for (u32 i = 0; i < RECS; i++) {
        struct rec *r = &recs[i];
        r->key = i * 2654435761u; /* distinct */
        u32 len = 3 + next() % 8;
        for (u32 k = 0; k < sizeof(r->name); k++)
            r->name[k] = k < len ? (char)('a' + next() % 6) : 0;
        r->group = (u16)(next() % 13);
        r->weight = (u16)(next() % 400);
    }
}

static u32 sorted_by(void *base, u32 n, u32 size, compare_fn cmp)
{
    u32 bad = 0;
    for (u32 i = 1; i < n; i++)
        bad += cmp(at(base, i - 1, size), at(base, i, size)) > 0;
    return bad;
}

static u32 hash_words(const void *p, u32 bytes)
{
    const u32 *w = p;
    u32 h = 0x811c9dc5;
    for (u32 i = 0; i < bytes / 4; i++)
        h = mix(h, w[i]);
    return h;
}

static u32 sum_words(const void *p, u32 bytes)
{
    const u32 *w = p;
    u32 s = 0;
    for (u32 i = 0; i < bytes / 4; i++)
        s += w[i] * (w[i] | 1);
    return s;
}

/* ---- a dense switch and the same operations behind pointers ---- */

#define OPS(X)                                  \
    X(0, a + b)                                 \
    X(1, a - b)                                 \
    X(2, a ^ b)                                 \
    X(3, a | (b >> 3))                          \
    X(4, a & (b | 0x0f0f0f0fu))                 \
    X(5, a * (b | 1))                           \
    X(6, (a << (b & 31)) | (a >> ((32 - b) & 31))) \
    X(7, a >> (b & 15))                         \
    X(8, (u32)((s32)a >> (b & 7)))              \
    X(9, a + (b << 4))                          \
    X(10, ~a + b)                               \
    X(11, a * 9 + b)                            \
    X(12, a < b ? b - a : a - b)                \
    X(13, (s32)a < (s32)b ? a : b)              \
    X(14, a > b ? a : b)                        \
    X(15, (a & 0xffff) * (b >> 16))             \
    X(16, a + 0x9e3779b9u)                      \
    X(17, a ^ (a >> 7) ^ b)                     \
    X(18, a - (b & 0xff))                       \
    X(19, (a & 0xff00ff00u) | (b & 0x00ff00ffu)) \
    X(20, a + (b >> 24))                        \
    X(21, (a ^ b) * 0x01000193u)                \
    X(22, -a ^ b)                               \
    X(23, a + a + b)                            \
    X(24, (a >> 1) + (b >> 1))                  \
    X(25, a ^ (b << 9))                         \
    X(26, a | (b & 0x10204081u))                \
    X(27, (u16)a * (u16)b)                      \
    X(28, a - b * 3)                            \
    X(29, (a << 3) ^ (b >> 5))                  \
    X(30, a + (b & 0xfff))                      \
    X(31, a ^ 0x5a5a5a5au ^ (b >> 11))

static u32 __attribute__((noinline)) by_switch(u32 op, u32 a, u32 b)
{
    switch (op) {
#define CASE(N, E) \
    case N: return E;
        OPS(CASE)
#undef CASE
    default: return 0;
    }
}

#define FN(N, E) \
    static u32 op_##N(u32 a, u32 b) { return E; }
OPS(FN)
#undef FN

typedef u32 (*binop)(u32 a, u32 b);
static const binop optab[32] = {
#define ENTRY(N, E) op_##N,
    OPS(ENTRY)
#undef ENTRY
};

#define SWITCH_STEPS 1000000

void kmain(u32 magic, u32 mbi)
{
    u32 scale = cmdline_uint(mbi, "scale", 1);
    u32 fs[HOF_N + 1], ms[HOF_N + 1];
    fs[0] = 1;
    ms[0] = 0;
    for (u32 n = 1; n <= HOF_N; n++) { /* M(n) first: F(n) may need it */
        ms[n] = n - fs[ms[n - 1]];
        fs[n] = n - ms[fs[n - 1]];
    }
    build_gcd();
    build_collatz();
    u32 gcd_c = gcd_in_c(), steps_c, peaks_c;
    collatz_in_c(&steps_c, &peaks_c);

    u32 h_tak = 0, h_ack = 0, h_hof = 0, h_expr = 0, h_tree = 0, tree_height = 0, h_sort = 0, h_switch = 0;
    u32 n_tak = 0, n_ack = 0, n_hof = 0, n_vm = 0, n_cmp = 0, exprs_bytes = 0;
    u32 vm_gcd = 0, vm_steps_collatz = 0, vm_peaks = 0, range = 0, found = 0;
    for (u32 rep = 0; rep < scale; rep++) {
        /* tak */
        tak_calls = 0;
        h_tak = 0x811c9dc5;
        for (u32 i = 0; i < sizeof(tak_args) / sizeof(tak_args[0]); i++)
            h_tak = mix(h_tak, (u32)tak((int)opaque((u32)tak_args[i][0]), tak_args[i][1], tak_args[i][2]));
        n_tak = tak_calls;

        /* ack */
        ack_calls = 0;
        h_ack = 0x811c9dc5;
        for (u32 n = 0; n <= 5 * ACK_ROUNDS; n++) {
            u32 v3 = ack(opaque(3), n % 6);
            expect(v3 == (8u << n % 6) - 3);
            u32 v2 = ack(opaque(2), n % 6 * 20);
            expect(v2 == 2 * (n % 6) * 20 + 3);
            h_ack = mix(mix(h_ack, v3), v2);
        }
        n_ack = ack_calls;

        /* Hofstadter */
        hof_calls = 0;
        h_hof = 0x811c9dc5;
        for (u32 n = 0; n <= HOF_N; n++) {
            u32 f = hof_f(opaque(n)), m = hof_m(opaque(n));
            expect(f == fs[n] && m == ms[n]);
            h_hof = mix(mix(h_hof, f), m);
        }
        n_hof = hof_calls;

        /* expressions */
        rng = 0x9e3779b9;
        h_expr = 0x811c9dc5;
        exprs_bytes = 0;
        parse_errors = 0;
        ebuf_full = 0;
        for (u32 e = 0; e < EXPR_COUNT; e++) {
            elen = 0;
            u32 want = gen_expr(opaque(4 + e % 5));
            ebuf[elen] = 0;
            exprs_bytes += elen;
            pos = ebuf;
            u32 got = parse_expr();
            expect(got == want && *pos == 0);
            h_expr = mix(h_expr, got);
        }
        expect(parse_errors == 0 && ebuf_full == 0);

        /* tree */
        rng = 0x1234567;
        nnodes = 0;
        struct node *root = 0;
        for (u32 i = 0; i < TREE_KEYS; i++)
            root = insert(root, next() % TREE_RANGE);
        tree_height = height(root);
        struct walk w = { 0, 0, 0x811c9dc5, 0, 0 };
        walk(root, visit_order, &w);
        walk(root, visit_hash, &w);
        expect(w.unsorted == 0 && w.n == nnodes && w.total == TREE_KEYS);
        h_tree = w.hash;
        range = 0;
        for (u32 lo = 0; lo < TREE_RANGE; lo += 1000)
            range = mix(range, range_sum(root, lo, lo + opaque(2500)));

        /* vm */
        u32 r[16];
        vm_steps = 0;
        vm_run(prog_gcd, r);
        vm_gcd = r[0];
        expect(vm_gcd == gcd_c);
        vm_run(prog_collatz, r);
        vm_steps_collatz = r[0];
        vm_peaks = r[6];
        expect(vm_steps_collatz == steps_c && vm_peaks == peaks_c);
        n_vm = vm_steps;

        /* qsort */
        make_sort_input();
        cmp_calls = 0;
        u32 sum_before = sum_words(nums, sizeof(nums));
        gsort(nums, NUMS, sizeof(u32), cmp_u32);
        expect(sorted_by(nums, NUMS, sizeof(u32), cmp_u32) == 0);
        expect(sum_words(nums, sizeof(nums)) == sum_before);
        h_sort = hash_words(nums, sizeof(nums));
        gsort(nums, NUMS, sizeof(u32), cmp_u32_desc);
        expect(sorted_by(nums, NUMS, sizeof(u32), cmp_u32_desc) == 0);
        h_sort = mix(h_sort, hash_words(nums, sizeof(nums)));
        u32 rsum = sum_words(recs, sizeof(recs));
        gsort(recs, RECS, sizeof(struct rec), cmp_name);
        expect(sorted_by(recs, RECS, sizeof(struct rec), cmp_name) == 0);
        h_sort = mix(h_sort, hash_words(recs, sizeof(recs)));
        gsort(recs, RECS, sizeof(struct rec), cmp_group_weight);
        expect(sorted_by(recs, RECS, sizeof(struct rec), cmp_group_weight) == 0);
        h_sort = mix(h_sort, hash_words(recs, sizeof(recs)));
        gsort(recs, RECS, sizeof(struct rec), cmp_key);
        expect(sorted_by(recs, RECS, sizeof(struct rec), cmp_key) == 0);
        expect(sum_words(recs, sizeof(recs)) == rsum);
        found = 0;
        for (u32 i = 0; i < 2 * RECS; i++) {
            struct rec probe;
            probe.key = (i / 2) * 2654435761u + (i & 1); /* odd i: absent */
            struct rec *f = gsearch(&probe, recs, RECS, sizeof(struct rec), cmp_key);
            expect((f == 0) == (i & 1));
            found += !!f;
        }
        n_cmp = cmp_calls;

        /* switch and pointer table */
        rng = 0xdeadbeef;
        u32 a = 1, b = 1;
        for (u32 i = 0; i < SWITCH_STEPS; i++) {
            u32 x = next(), op = x & 31;
            a = by_switch(op, a, x);
            b = optab[op](b, x);
        }
        expect(a == b);
        h_switch = a;
    }
    kv("calls_tak", h_tak);
    kv_dec("calls_tak_calls", n_tak);
    kv("calls_ack", h_ack);
    kv_dec("calls_ack_calls", n_ack);
    kv("calls_hofstadter", h_hof);
    kv_dec("calls_hofstadter_calls", n_hof);
    kv("calls_expr", h_expr);
    kv_dec("calls_expr_bytes", exprs_bytes);
    kv("calls_tree", h_tree);
    kv_dec("calls_tree_height", tree_height);
    kv("calls_tree_ranges", range);
    kv_dec("calls_vm_gcd_sum", vm_gcd);
    kv_dec("calls_vm_collatz_steps", vm_steps_collatz);
    kv("calls_vm_collatz_peaks", vm_peaks);
    kv_dec("calls_vm_steps", n_vm);
    kv("calls_qsort", h_sort);
    kv_dec("calls_qsort_compares", n_cmp);
    kv_dec("calls_bsearch_found", found);
    kv("calls_switch", h_switch);
    check("calls_results_checked", mismatches, 0);
}
