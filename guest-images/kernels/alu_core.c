/* ALU core, part 1: two-operand arithmetic/logic, unary ops, shifts and
 * rotates, shld/shrd, mul/imul/div/idiv. See alu_core.h. */
#include "alu_core.h"

typedef u32 (*binfn)(u32 a, u32 b, u32 fin, u32 *fo);
typedef u32 (*shfn)(u32 a, u32 b, u32 cnt, u32 fin, u32 *fo);

const u32 alu_vals[3][6] = {
    { 0, 1, 0x7f, 0x80, 0xff, 0x5a },
    { 0, 1, 0x7fff, 0x8000, 0xffff, 0x1234 },
    { 0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x12345678 },
};
const int alu_bits[3] = { 8, 16, 32 };
static const u32 wmask[3] = { 0xff, 0xffff, 0xffffffff };

/* a OP= b, between POPF and PUSHF. */
#define DEF_BIN(fn, insn, m)                                                  \
    static u32 fn(u32 a, u32 b, u32 fin, u32 *fo)                             \
    {                                                                         \
        u32 f;                                                                \
        asm volatile("pushl %[fi]\n\tpopfl\n\t" insn " %" m "[b], %" m "[a]\n\t" \
                     "pushfl\n\tpopl %[f]"                                    \
                     : [a] "+q"(a), [f] "=&r"(f)                              \
                     : [b] "q"(b), [fi] "r"(fin)                              \
                     : "cc");                                                 \
        *fo = f;                                                              \
        return a;                                                             \
    }
#define DEF_BIN3(op) DEF_BIN(op##8, #op "b", "b") DEF_BIN(op##16, #op "w", "w") \
    DEF_BIN(op##32, #op "l", "k")

/* op a (b ignored). */
#define DEF_UN(fn, insn, m)                                                   \
    static u32 fn(u32 a, u32 b, u32 fin, u32 *fo)                             \
    {                                                                         \
        u32 f;                                                                \
        asm volatile("pushl %[fi]\n\tpopfl\n\t" insn " %" m "[a]\n\t"         \
                     "pushfl\n\tpopl %[f]"                                    \
                     : [a] "+q"(a), [f] "=&r"(f)                              \
                     : [fi] "r"(fin)                                          \
                     : "cc");                                                 \
        *fo = f;                                                              \
        return a;                                                             \
    }
#define DEF_UN3(op) DEF_UN(op##8, #op "b", "b") DEF_UN(op##16, #op "w", "w") \
    DEF_UN(op##32, #op "l", "k")

/* a = a OP cl (b is the shld/shrd source). */
#define DEF_SH(fn, insn, m, src)                                              \
    static u32 fn(u32 a, u32 b, u32 cnt, u32 fin, u32 *fo)                    \
    {                                                                         \
        u32 f;                                                                \
        asm volatile("pushl %[fi]\n\tpopfl\n\t" insn " %%cl, " src "%" m "[a]\n\t" \
                     "pushfl\n\tpopl %[f]"                                    \
                     : [a] "+q"(a), [f] "=&r"(f)                              \
                     : [b] "q"(b), [c] "c"(cnt), [fi] "r"(fin)                \
                     : "cc");                                                 \
        *fo = f;                                                              \
        return a;                                                             \
    }
#define DEF_SH3(op) DEF_SH(op##8, #op "b", "b", "") DEF_SH(op##16, #op "w", "w", "") \
    DEF_SH(op##32, #op "l", "k", "")

DEF_BIN3(add) DEF_BIN3(adc) DEF_BIN3(sub) DEF_BIN3(sbb) DEF_BIN3(and)
DEF_BIN3(or) DEF_BIN3(xor) DEF_BIN3(cmp) DEF_BIN3(test)
DEF_UN3(inc) DEF_UN3(dec) DEF_UN3(neg) DEF_UN3(not)
DEF_SH3(shl) DEF_SH3(shr) DEF_SH3(sar) DEF_SH3(rol) DEF_SH3(ror) DEF_SH3(rcl) DEF_SH3(rcr)
DEF_SH(shld16, "shldw", "w", "%w[b], ") DEF_SH(shld32, "shldl", "k", "%k[b], ")
DEF_SH(shrd16, "shrdw", "w", "%w[b], ") DEF_SH(shrd32, "shrdl", "k", "%k[b], ")

struct binop {
    const char *name;
    binfn f[3];
    u32 fin;
    u32 mask;
};

#define B3(op) { op##8, op##16, op##32 }
static const struct binop binops[] = {
    { "add", B3(add), 0, F_ALL },
    { "adc/c0", B3(adc), 0, F_ALL },
    { "adc/c1", B3(adc), F_C, F_ALL },
    { "sub", B3(sub), 0, F_ALL },
    { "sbb/c0", B3(sbb), 0, F_ALL },
    { "sbb/c1", B3(sbb), F_C, F_ALL },
    { "and", B3(and), F_A, F_LOGIC },
    { "or", B3(or), F_A, F_LOGIC },
    { "xor", B3(xor), F_A, F_LOGIC },
    { "cmp", B3(cmp), 0, F_ALL },
    { "test", B3(test), F_A, F_LOGIC },
};
/* inc/dec keep CF: run them with CF=1 and CF=0 to see it preserved. */
static const struct binop unops[] = {
    { "inc/c1", B3(inc), F_C, F_ALL },
    { "dec/c1", B3(dec), F_C, F_ALL },
    { "inc/c0", B3(inc), 0, F_ALL },
    { "neg", B3(neg), 0, F_ALL },
    { "not", B3(not), F_ALL, F_ALL },
};

static void test_binops(void)
{
    for (unsigned i = 0; i < sizeof(binops) / sizeof(binops[0]); i++)
        for (int w = 0; w < 3; w++)
            for (int x = 0; x < 6; x++)
                for (int y = 0; y < 6; y++) {
                    const struct binop *op = &binops[i];
                    u32 a = alu_vals[w][x], b = alu_vals[w][y], f;
                    u32 r = op->f[w](a, b, op->fin, &f) & wmask[w];
                    tprintf("%s%d %x,%x: %x f=0x%x\n", op->name, alu_bits[w], a, b, r,
                            f & op->mask);
                }
    for (unsigned i = 0; i < sizeof(unops) / sizeof(unops[0]); i++)
        for (int w = 0; w < 3; w++)
            for (int x = 0; x < 6; x++) {
                const struct binop *op = &unops[i];
                u32 a = alu_vals[w][x], f;
                u32 r = op->f[w](a, 0, op->fin, &f) & wmask[w];
                tprintf("%s%d %x: %x f=0x%x\n", op->name, alu_bits[w], a, r, f & op->mask);
            }
}

/* ---- shifts and rotates ------------------------------------------------ */

enum { SHL, SHR, SAR, ROL, ROR, RCL, RCR };
struct shop {
    const char *name;
    shfn f[3];
    int kind;
};
static const struct shop shops[] = {
    { "shl", B3(shl), SHL }, { "shr", B3(shr), SHR }, { "sar", B3(sar), SAR },
    { "rol", B3(rol), ROL }, { "ror", B3(ror), ROR }, { "rcl", B3(rcl), RCL },
    { "rcr", B3(rcr), RCR },
};
static const u32 shvals[2][3] = {
    { 0xb5, 0x8a5b, 0x8a5b3c41 },
    { 0x40, 0x4000, 0x40000000 },
};

/* Flags the SDM defines after a shift/rotate by cnt (masked to 5 bits). */
static u32 shift_mask(int kind, int bits, u32 cnt)
{
    u32 c = cnt & 31;
    if (c == 0)
        return F_ALL; /* flags unaffected */
    u32 of = c == 1 ? F_O : 0;
    if (kind >= ROL) /* rotates touch only CF and OF */
        return (F_ALL & ~F_O) | of;
    u32 m = F_S | F_Z | F_P | F_C | of; /* AF undefined */
    if (kind != SAR && c >= (u32)bits)
        m &= ~F_C; /* SHL/SHR: CF undefined when count >= width */
    return m;
}

static void test_shifts(void)
{
    for (unsigned i = 0; i < sizeof(shops) / sizeof(shops[0]); i++)
        for (int w = 0; w < 3; w++)
            for (int v = 0; v < 2; v++)
                for (u32 c = 0; c < (v ? 4u : 34u); c++) {
                    const struct shop *op = &shops[i];
                    u32 fin = (op->kind >= RCL && v == 0) ? F_C : 0;
                    u32 a = shvals[v][w], f;
                    u32 r = op->f[w](a, 0, c, fin, &f) & wmask[w];
                    tprintf("%s%d %x,%u: %x f=0x%x\n", op->name, alu_bits[w], a, c, r,
                            f & shift_mask(op->kind, alu_bits[w], c));
                }
}

/* Fixed-count encodings: D1 (by 1) and C1 (by imm8). */
static void test_shift_imm(void)
{
    u32 a = 0x8a5b3c41, f, r;
    asm volatile("pushl $0\n\tpopfl\n\tshll $1, %0\n\tpushfl\n\tpopl %1" : "=r"(r), "=&r"(f) : "0"(a) : "cc");
    tprintf("shl32 %x,imm1: %x f=0x%x\n", a, r, f & (F_ALL & ~F_A));
    asm volatile("pushl $0\n\tpopfl\n\tsarl $5, %0\n\tpushfl\n\tpopl %1" : "=r"(r), "=&r"(f) : "0"(a) : "cc");
    tprintf("sar32 %x,imm5: %x f=0x%x\n", a, r, f & (F_S | F_Z | F_P | F_C));
    asm volatile("pushl $1\n\tpopfl\n\trcrl $1, %0\n\tpushfl\n\tpopl %1" : "=r"(r), "=&r"(f) : "0"(a) : "cc");
    tprintf("rcr32 %x,imm1: %x f=0x%x\n", a, r, f & F_ALL);
    asm volatile("pushl $0\n\tpopfl\n\trolw $12, %w0\n\tpushfl\n\tpopl %1" : "=r"(r), "=&r"(f) : "0"(a) : "cc");
    tprintf("rol16 %x,imm12: %x f=0x%x\n", a & 0xffff, r & 0xffff, f & (F_ALL & ~F_O));
}

static void test_shld(void)
{
    static const shfn fns[2][2] = { { shld16, shld32 }, { shrd16, shrd32 } };
    static const u32 dst[2] = { 0x8a5b, 0x8a5b3c41 }, src[2] = { 0x1234, 0x12345678 };
    for (int d = 0; d < 2; d++)
        for (int w = 0; w < 2; w++)
            for (u32 c = 0; c < 34; c++) {
                int bits = w ? 32 : 16;
                if ((c & 31) > (u32)bits)
                    continue; /* result undefined */
                u32 f, m = (c & 31) == 0 ? F_ALL : F_S | F_Z | F_P | F_C | ((c & 31) == 1 ? F_O : 0);
                u32 r = fns[d][w](dst[w], src[w], c, 0, &f) & wmask[w + 1];
                tprintf("%s%d %x,%x,%u: %x f=0x%x\n", d ? "shrd" : "shld", bits, dst[w],
                        src[w], c, r, f & m);
            }
}

/* ---- multiply and divide ----------------------------------------------- */

static void mul_one(int sgn, int w, u32 a, u32 b)
{
    u32 lo = a, hi = 0, f = 0;
    if (w == 0 && !sgn)
        asm volatile("pushl $0\n\tpopfl\n\tmulb %b[b]\n\tpushfl\n\tpopl %[f]" : "+a"(lo), [f] "=&r"(f) : [b] "q"(b) : "cc");
    if (w == 0 && sgn)
        asm volatile("pushl $0\n\tpopfl\n\timulb %b[b]\n\tpushfl\n\tpopl %[f]" : "+a"(lo), [f] "=&r"(f) : [b] "q"(b) : "cc");
    if (w == 1 && !sgn)
        asm volatile("pushl $0\n\tpopfl\n\tmulw %w[b]\n\tpushfl\n\tpopl %[f]" : "+a"(lo), "+d"(hi), [f] "=&r"(f) : [b] "r"(b) : "cc");
    if (w == 1 && sgn)
        asm volatile("pushl $0\n\tpopfl\n\timulw %w[b]\n\tpushfl\n\tpopl %[f]" : "+a"(lo), "+d"(hi), [f] "=&r"(f) : [b] "r"(b) : "cc");
    if (w == 2 && !sgn)
        asm volatile("pushl $0\n\tpopfl\n\tmull %k[b]\n\tpushfl\n\tpopl %[f]" : "+a"(lo), "+d"(hi), [f] "=&r"(f) : [b] "r"(b) : "cc");
    if (w == 2 && sgn)
        asm volatile("pushl $0\n\tpopfl\n\timull %k[b]\n\tpushfl\n\tpopl %[f]" : "+a"(lo), "+d"(hi), [f] "=&r"(f) : [b] "r"(b) : "cc");
    if (w == 0)
        tprintf("%s8 %x,%x: ax=%x f=0x%x\n", sgn ? "imul" : "mul", a, b, lo & 0xffff, f & (F_O | F_C));
    else
        tprintf("%s%d %x,%x: %x:%x f=0x%x\n", sgn ? "imul" : "mul", alu_bits[w], a, b,
                hi & wmask[w], lo & wmask[w], f & (F_O | F_C));
}

static void imul_forms(u32 a, u32 b)
{
    u32 r16 = a, r32 = a, i8, i32, f16, f32, fi8, fi32;
    asm volatile("pushl $0\n\tpopfl\n\timulw %w2, %w0\n\tpushfl\n\tpopl %1" : "+r"(r16), "=&r"(f16) : "r"(b) : "cc");
    asm volatile("pushl $0\n\tpopfl\n\timull %2, %0\n\tpushfl\n\tpopl %1" : "+r"(r32), "=&r"(f32) : "r"(b) : "cc");
    asm volatile("pushl $0\n\tpopfl\n\timull $-3, %2, %0\n\tpushfl\n\tpopl %1" : "=&r"(i8), "=&r"(fi8) : "r"(a) : "cc");
    asm volatile("pushl $0\n\tpopfl\n\timull $0x12345, %2, %0\n\tpushfl\n\tpopl %1" : "=&r"(i32), "=&r"(fi32) : "r"(a) : "cc");
    tprintf("imul16r %x,%x: %x f=0x%x\n", a & 0xffff, b & 0xffff, r16 & 0xffff, f16 & (F_O | F_C));
    tprintf("imul32r %x,%x: %x f=0x%x\n", a, b, r32, f32 & (F_O | F_C));
    if (b == 1) {
        tprintf("imul32i %x,-3: %x f=0x%x\n", a, i8, fi8 & (F_O | F_C));
        tprintf("imul32i %x,12345: %x f=0x%x\n", a, i32, fi32 & (F_O | F_C));
    }
}

static void test_mul(void)
{
    for (int w = 0; w < 3; w++)
        for (int x = 0; x < 6; x++)
            for (int y = 0; y < 6; y++) {
                mul_one(0, w, alu_vals[w][x], alu_vals[w][y]);
                mul_one(1, w, alu_vals[w][x], alu_vals[w][y]);
            }
    for (int x = 0; x < 6; x++)
        for (int y = 0; y < 6; y++)
            imul_forms(alu_vals[2][x], alu_vals[2][y]);
    u32 r;
    asm volatile("imulw $-7, %w1, %w0" : "=r"(r) : "r"(0x1234u) : "cc");
    tprintf("imul16i 1234,-7: %x\n", r & 0xffff);
}

/* ok: 1 = the quotient fits for DIV, 2 = for IDIV (only non-faulting runs). */
struct divcase {
    u32 hi, lo, d, ok;
};
static const struct divcase divs[3][6] = {
    { { 0, 0x00ff, 1, 1 }, { 0, 0xfe01, 0xff, 1 }, { 0, 0x1234, 0x9a, 3 },
      { 0, 0xff80, 0x7f, 2 }, { 0, 0x0080, 0xff, 3 }, { 0, 7, 2, 3 } },
    { { 0, 0xffff, 1, 1 }, { 0x1234, 0x5678, 0x9abc, 3 }, { 0xfffe, 0x0001, 0xffff, 1 },
      { 0xffff, 0x8000, 0x7fff, 2 }, { 0, 0x8000, 0xffff, 3 }, { 0, 7, 0xfffe, 3 } },
    { { 0, 0xffffffff, 1, 1 }, { 0x12345678, 0x9abcdef0, 0x87654321, 3 },
      { 0xfffffffe, 1, 0xffffffff, 1 }, { 0xffffffff, 0x80000000, 0x7fffffff, 2 },
      { 0, 0x80000000, 0xffffffff, 3 }, { 0xffffffff, 0xfffffff9, 2, 2 } },
};

static void div_one(int sgn, int w, const struct divcase *c)
{
    u32 lo = c->lo, hi = c->hi;
    if (w == 0) {
        lo = (hi << 8) | lo;
        if (sgn) asm volatile("idivb %b1" : "+a"(lo) : "q"(c->d) : "cc");
        else asm volatile("divb %b1" : "+a"(lo) : "q"(c->d) : "cc");
        tprintf("%s8 %x/%x: q=%x r=%x\n", sgn ? "idiv" : "div", c->lo, c->d, lo & 0xff,
                (lo >> 8) & 0xff);
        return;
    }
    if (w == 1 && sgn) asm volatile("idivw %w2" : "+a"(lo), "+d"(hi) : "r"(c->d) : "cc");
    if (w == 1 && !sgn) asm volatile("divw %w2" : "+a"(lo), "+d"(hi) : "r"(c->d) : "cc");
    if (w == 2 && sgn) asm volatile("idivl %2" : "+a"(lo), "+d"(hi) : "r"(c->d) : "cc");
    if (w == 2 && !sgn) asm volatile("divl %2" : "+a"(lo), "+d"(hi) : "r"(c->d) : "cc");
    tprintf("%s%d %x:%x/%x: q=%x r=%x\n", sgn ? "idiv" : "div", alu_bits[w], c->hi, c->lo,
            c->d, lo & wmask[w], hi & wmask[w]);
}

static void test_div(void)
{
    for (int w = 0; w < 3; w++)
        for (int i = 0; i < 6; i++)
            for (int sgn = 0; sgn < 2; sgn++)
                if (divs[w][i].ok & (1u << sgn))
                    div_one(sgn, w, &divs[w][i]);
}

void alu_run(void)
{
    tprintf("alu: start\n");
    test_binops();
    test_shifts();
    test_shift_imm();
    test_shld();
    test_mul();
    test_div();
    alu_more();
    alu_stack();
    tprintf("alu: done\n");
}
