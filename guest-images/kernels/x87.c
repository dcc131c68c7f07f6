/* x87: the x87 FPU, every instruction form, bit for bit. One object file
 * (build/x87.o) linked twice: into the x87 kernel (bin/x87.elf) and, with
 * native/start.S + shim.c, into bin/x87-native (static i386 Linux, no
 * libc). Both print through tprintf, so their outputs must be identical:
 * the real CPU is the oracle.
 *
 * Every test is one inline-asm block:
 *
 *   FNINIT; FLDCW x87_cw; <loads>; <the instruction>; FNSAVE x87_sv
 *
 * and prints, from the FNSAVE image, the registers that are not empty
 * (ST(0) first, each as 20 hex digits: sign+exponent, then the 64-bit
 * significand), the status word masked to the bits the SDM defines for the
 * instruction under test, and the full tag word FNSAVE computed. Stores
 * also print the memory they wrote (x87_o is filled with 0xcc before each
 * test), FCOMI/FUCOMI and FCMOVcc print EFLAGS. FIP/FCS/FOP/FDP/FDS are
 * never printed: Linux user space and the kernel differ there (the fpu
 * kernel tests them against the SDM).
 *
 * All exceptions are masked (control word 0x037F and its RC/PC variants):
 * the masked responses are under test. Register forms of the arithmetic
 * instructions are emitted as .byte so that the encodings are exactly the
 * SDM's (AT&T assemblers swap FSUB/FSUBR and FDIV/FDIVR in some forms).
 *
 * Built with -m80387 (Makefile X87_CFLAGS); the C code itself does no
 * floating point, every x87 instruction is in the asm. */
#include "rt.h"

typedef struct {
    u32 lo, hi;
    u16 se;
} __attribute__((packed)) f80;

struct fsave {
    u32 cw, sw, tw, fip, fcs_fop, fdp, fds;
    u8 st[8][10];
} __attribute__((packed));

/* The inputs and outputs of the asm blocks, named by symbol in the asm. */
f80 x87_a, x87_b, x87_c;     /* loaded so that ST(0)=a, ST(1)=b (ST(2)=c) */
u16 x87_cw;                  /* FLDCW operand */
u8 x87_m[16];                /* memory source operand */
u8 x87_o[16];                /* memory destination */
struct fsave x87_sv;         /* FNSAVE after the instruction */
u8 x87_env[108], x87_env2[108];
u32 x87_fin, x87_fout, x87_n; /* EFLAGS in/out, a counter */
u16 x87_ax;

#define PC24 0
#define PC53 2
#define PC64 3
#define CW(rc, pc) ((u16)(0x7f | ((pc) << 8) | ((rc) << 10)))

/* Status word masks: B, TOP, ES, SF, IE..PE always; C1 where the SDM
 * defines it (round-up or stack fault); C0/C2/C3 where defined. */
#define M_ARITH 0xbaffu  /* C0, C2, C3 undefined; C1 round-up / stack fault */
#define M_TRIG 0xbeffu   /* FSIN FCOS FSINCOS FPTAN: + C2 (out of range) */
#define M_NOC 0xb8ffu    /* C0-C3 undefined (FNCLEX, FFREE, FLDCW) */
#define M_ALL 0xffffu    /* compares, FXAM, FPREM*, FNINIT, FLDENV/FRSTOR */

#define T(body)                                                               \
    asm volatile("fninit\n\tfldcw x87_cw\n\t" body "\n\tfnsave x87_sv"        \
                 :: : "memory", "cc", "eax", "ecx")
#define LD1 "fldt x87_a\n\t"
#define LD2 "fldt x87_b\n\tfldt x87_a\n\t"
#define LD3 "fldt x87_c\n\tfldt x87_b\n\tfldt x87_a\n\t"
#define FLAGS_IN "pushl x87_fin\n\tpopfl\n\t"
#define FLAGS_OUT "\n\tpushfl\n\tpopl x87_fout"

typedef void (*tfn)(void);
#define DEFT(fn, body) static void fn(void) { T(body); }

/* Named 80-bit values (initialisers: low 32 bits of the significand, high
 * 32 bits, sign+exponent). */
#define V_PZ { 0, 0, 0x0000 }
#define V_NZ { 0, 0, 0x8000 }
#define V_P1 { 0, 0x80000000, 0x3fff }
#define V_M15 { 0, 0xc0000000, 0xbfff }
#define V_PDEN { 0x00000003, 0x40000000, 0x0000 }
#define V_NDEN { 0x00000001, 0x00000000, 0x8000 }
#define V_PINF { 0, 0x80000000, 0x7fff }
#define V_NINF { 0, 0x80000000, 0xffff }
#define V_QNAN { 0x12345678, 0xc0000000, 0x7fff }
#define V_NQNAN { 0x00000005, 0xd0000000, 0xffff }
#define V_SNAN { 0x00000abc, 0x90000000, 0x7fff }
#define V_UNN { 0, 0x40000000, 0x4000 }
#define V_MAX { 0xffffffff, 0xffffffff, 0x7ffe }
#define V_MINN { 0, 0x80000000, 0x0001 }
#define V_THIRD { 0xaaaaaaab, 0xaaaaaaaa, 0x3ffd }
#define V_NTHIRD { 0xaaaaaaab, 0xaaaaaaaa, 0xbffd }
#define V_PI { 0x2168c235, 0xc90fdaa2, 0x4000 }
#define V_THREE { 0, 0xc0000000, 0x4000 }
#define V_TWO { 0, 0x80000000, 0x4000 }
#define V_HALF { 0, 0x80000000, 0x3ffe }
#define V_NHALF { 0, 0x80000000, 0xbffe }
#define V_PSDEN { 0x00000001, 0x80000000, 0x0000 }
#define V_PSNAN { 0x00000001, 0x40000000, 0x7fff }
#define V_PSINF { 0, 0x00000000, 0x7fff }
#define V_TINY { 0, 0x80000000, 0x3ff5 }
#define V_BIG24 { 0, 0x80000080, 0x4017 }
#define V_NSNAN { 0x00000001, 0xb0000000, 0xffff }
enum {
    PZ, NZ, P1, M15, PDEN, NDEN, PINF, NINF, QNAN, NQNAN, SNAN, UNN, MAX, MINN, THIRD, NTHIRD, PI, THREE, TWO, HALF, NHALF, PSDEN, PSNAN, PSINF, NSNAN, TINY, BIG24,
    NVALS
};
static const struct {
    const char *name;
    f80 v;
} vals[NVALS] = {
    [PZ] = { "+0", V_PZ },
    [NZ] = { "-0", V_NZ },
    [P1] = { "+1", V_P1 },
    [M15] = { "-1.5", V_M15 },
    [PDEN] = { "+den", V_PDEN },
    [NDEN] = { "-den", V_NDEN },
    [PINF] = { "+inf", V_PINF },
    [NINF] = { "-inf", V_NINF },
    [QNAN] = { "qnan", V_QNAN },
    [NQNAN] = { "-qnan", V_NQNAN },
    [SNAN] = { "snan", V_SNAN },
    [UNN] = { "unnormal", V_UNN },
    [MAX] = { "max", V_MAX },
    [MINN] = { "minnorm", V_MINN },
    [THIRD] = { "third", V_THIRD },
    [NTHIRD] = { "-third", V_NTHIRD },
    [PI] = { "pi", V_PI },
    [THREE] = { "3", V_THREE },
    [TWO] = { "2", V_TWO },
    [HALF] = { "0.5", V_HALF },
    [NHALF] = { "-0.5", V_NHALF },
    [PSDEN] = { "pseudoden", V_PSDEN },
    [PSNAN] = { "pseudonan", V_PSNAN },
    [PSINF] = { "pseudoinf", V_PSINF },
    [NSNAN] = { "-snan", V_NSNAN },
    [TINY] = { "2^-10", V_TINY },
    [BIG24] = { "2^24+1", V_BIG24 },
};
static f80 V(int i) { return vals[i].v; }

static void copy(void *d, const void *s, unsigned n)
{
    u8 *dp = d;
    const u8 *sp = s;
    while (n--)
        *dp++ = *sp++;
}

static void p80(const void *q)
{
    const u8 *p = q;
    tprintf("%04x%08x%08x", *(const u16 *)(p + 8), *(const u32 *)(p + 4), *(const u32 *)p);
}

static void pmem(int size)
{
    tprintf(" m=");
    for (int i = size - 1; i >= 0; i--)
        tprintf("%02x", x87_o[i]);
}

/* One result record from x87_sv: the non-empty registers, SW & mask, TW. */
static void rec(u32 mask)
{
    u32 sw = x87_sv.sw & 0xffff, tw = x87_sv.tw & 0xffff;
    u32 top = (sw >> 11) & 7;
    for (int i = 0; i < 8; i++) {
        u32 phys = (top + i) & 7;
        if (((tw >> (2 * phys)) & 3) != 3) {
            tprintf(" st%d=", i);
            p80(x87_sv.st[i]);
        }
    }
    tprintf(" sw=%04x tw=%04x", sw & mask, tw);
}

/* Runs fn under control word cw and prints one record (and memory). */
static void run(tfn fn, u16 cw, u32 mask, int memsize)
{
    for (int i = 0; i < 16; i++)
        x87_o[i] = 0xcc;
    x87_cw = cw;
    fn();
    if (memsize)
        pmem(memsize);
    rec(mask);
}

/* The same test under RC 0..3 at PC64 (labelled), on one line. */
static void run_rc(tfn fn, int pc, u32 mask, int memsize)
{
    static const char *rcn[4] = { "near", "down", "up", "zero" };
    for (int rc = 0; rc < 4; rc++) {
        tprintf(" %s:", rcn[rc]);
        run(fn, CW(rc, pc), mask, memsize);
    }
}

static void set_m32(u32 v) { *(u32 *)x87_m = v; }
static void set_m64(u32 hi, u32 lo) { *(u32 *)x87_m = lo; *(u32 *)(x87_m + 4) = hi; }

/* ---- arithmetic ------------------------------------------------------- */

/* op: register forms (D8 st(0),st(i); DC st(i),st(0); DE ...P st(i),st(0)),
 * m32, m64, m16int, m32int. */
#define OPS(n, d8, dc, mn)                                                     \
    DEFT(t_##n##_0i, LD2 ".byte 0xd8," d8)                                    \
    DEFT(t_##n##_i0, LD2 ".byte 0xdc," dc)                                    \
    DEFT(t_##n##_p, LD2 ".byte 0xde," dc)                                     \
    DEFT(t_##n##_m32, LD2 "f" mn "s x87_m")                                   \
    DEFT(t_##n##_m64, LD2 "f" mn "l x87_m")                                   \
    DEFT(t_##n##_i16, LD2 "fi" mn "s x87_m")                                  \
    DEFT(t_##n##_i32, LD2 "fi" mn "l x87_m")
OPS(add, "0xc1", "0xc1", "add")
OPS(mul, "0xc9", "0xc9", "mul")
OPS(sub, "0xe1", "0xe9", "sub")
OPS(subr, "0xe9", "0xe1", "subr")
OPS(div, "0xf1", "0xf9", "div")
OPS(divr, "0xf9", "0xf1", "divr")

#define FORMS(n) { t_##n##_0i, t_##n##_i0, t_##n##_p, t_##n##_m32, t_##n##_m64, t_##n##_i16, t_##n##_i32 }
static const struct {
    const char *name;
    tfn f[7];
} aops[6] = {
    { "fadd", FORMS(add) }, { "fsub", FORMS(sub) }, { "fsubr", FORMS(subr) },
    { "fmul", FORMS(mul) }, { "fdiv", FORMS(div) }, { "fdivr", FORMS(divr) },
};
static const char *formn[7] = { "st,st(1)", "st(1),st", "p st(1),st", "m32", "m64", "m16int", "m32int" };

/* Operands with special classes: every pair, register form, RC0/PC64. */
static const int specials[] = { PZ, NZ, P1, M15, PDEN, NDEN, PINF, NINF, QNAN, NQNAN, SNAN, NSNAN, UNN };
#define NSPEC (int)(sizeof(specials) / sizeof(specials[0]))

static void arith_specials(void)
{
    for (int op = 0; op < 6; op++)
        for (int i = 0; i < NSPEC; i++)
            for (int j = 0; j < NSPEC; j++) {
                x87_a = V(specials[i]);
                x87_b = V(specials[j]);
                tprintf("%s st,st(1) [%s,%s]:", aops[op].name, vals[specials[i]].name,
                        vals[specials[j]].name);
                run(aops[op].f[0], CW(0, PC64), M_ARITH, 0);
                tprintf("\n");
            }
}

/* Operands whose results need rounding (or overflow/underflow): every
 * RC at every PC. */
static const struct {
    f80 a, b;
} rpairs[] = {
    { { 0, 0x80000000, 0x3fff }, { 0xaaaaaaab, 0xaaaaaaaa, 0x3ffd } },  /* 1, 1/3 */
    { { 0xaaaaaaab, 0xaaaaaaaa, 0xbffd }, { 0, 0xc0000000, 0x4000 } },  /* -1/3, 3 */
    { { 0x2168c235, 0xc90fdaa2, 0x4000 }, { 0xaaaaaaab, 0xaaaaaaaa, 0x3ffd } }, /* pi, 1/3 */
    { { 0xffffffff, 0xffffffff, 0x7ffe }, { 0xffffffff, 0xffffffff, 0x7ffe } }, /* max, max */
    { { 0, 0x80000000, 0x0001 }, { 0xaaaaaaab, 0xaaaaaaaa, 0x3ffd } },  /* minnorm, 1/3 */
    { { 0, 0x80000000, 0x3fff }, { 0x00000001, 0x80000000, 0x3fbf } },  /* 1, 2^-64(1+2^-63) */
    { { 0x00000001, 0x80000000, 0x3ffe }, { 0x00000001, 0x80000000, 0xbfe7 } }, /* tiny cancellation */
    { { 0x12345678, 0x9abcdef0, 0x0002 }, { 0x00000007, 0x80000000, 0xbffd } }, /* near-underflow */
};
#define NRP (int)(sizeof(rpairs) / sizeof(rpairs[0]))

static void arith_rounding(void)
{
    static const int pcs[3] = { PC24, PC53, PC64 };
    static const char *pcn[3] = { "pc24", "pc53", "pc64" };
    for (int op = 0; op < 6; op++)
        for (int k = 0; k < NRP; k++)
            for (int p = 0; p < 3; p++) {
                x87_a = rpairs[k].a;
                x87_b = rpairs[k].b;
                tprintf("%s round #%d %s:", aops[op].name, k, pcn[p]);
                run_rc(aops[op].f[0], pcs[p], M_ARITH, 0);
                tprintf("\n");
            }
}

/* Every operand form; memory operands in each format. */
static const struct {
    const char *name;
    int a, b;
    u32 m32, m64hi, m64lo;
    u16 i16;
    u32 i32;
} fsets[] = {
    { "round", PI, THIRD, 0x3eaaaaab, 0x3fd55555, 0x55555555, 3, 7 },
    { "snan/min", P1, SNAN, 0x7f800001, 0x7ff00000, 0x00000001, 0x8000, 0x80000000 },
    { "den/0", P1, PDEN, 0x00000001, 0x00000000, 0x00000001, 0, 0 },
    { "inf", PINF, NINF, 0xff800000, 0xfff00000, 0x00000000, 0xffff, 0x7fffffff },
    { "zeros", NZ, PZ, 0x00000000, 0x80000000, 0x00000000, 0, 0 },
    { "qnan", THIRD, QNAN, 0xffc00001, 0x7ff80000, 0x00000003, 0x7fff, 12345678 },
    /* 2^-10 and 2^24+1 (m32: 2^23+1, m64 and m32int: 2^24+1): at PC24 the
     * exact sum rounds once; converting the operand first would round twice */
    { "dblround", TINY, BIG24, 0x4b000001, 0x41700000, 0x10000000, 0x7fff, 0x01000001 },
};

static void arith_forms(void)
{
    for (int op = 0; op < 6; op++)
        for (int f = 0; f < 7; f++)
            for (unsigned s = 0; s < sizeof(fsets) / sizeof(fsets[0]); s++) {
                x87_a = V(fsets[s].a);
                x87_b = V(fsets[s].b);
                if (f == 3)
                    set_m32(fsets[s].m32);
                else if (f == 4)
                    set_m64(fsets[s].m64hi, fsets[s].m64lo);
                else if (f == 5)
                    *(u16 *)x87_m = fsets[s].i16;
                else if (f == 6)
                    set_m32(fsets[s].i32);
                tprintf("%s %s %s:", aops[op].name, formn[f], fsets[s].name);
                run(aops[op].f[f], CW(0, PC64), M_ARITH, 0);
                tprintf(" |");
                run(aops[op].f[f], CW(1, PC24), M_ARITH, 0);
                tprintf(" |");
                run(aops[op].f[f], CW(0, PC24), M_ARITH, 0);
                tprintf("\n");
            }
}

/* ---- loads and stores ------------------------------------------------- */

DEFT(t_flds, "flds x87_m")
DEFT(t_fldl, "fldl x87_m")
DEFT(t_fldt, "fldt x87_m")
DEFT(t_fldst, LD2 "fld %%st(1)")
DEFT(t_filds, "filds x87_m")
DEFT(t_fildl, "fildl x87_m")
DEFT(t_fildll, "fildll x87_m")
DEFT(t_fbld, "fbld x87_m")
DEFT(t_fsts, LD1 "fsts x87_o")
DEFT(t_fstl, LD1 "fstl x87_o")
DEFT(t_fstps, LD1 "fstps x87_o")
DEFT(t_fstpl, LD1 "fstpl x87_o")
DEFT(t_fstpt, LD1 "fstpt x87_o")
DEFT(t_fstst, LD2 "fst %%st(1)")
DEFT(t_fstpst, LD2 "fstp %%st(1)")
DEFT(t_fists, LD1 "fists x87_o")
DEFT(t_fistl, LD1 "fistl x87_o")
DEFT(t_fistps, LD1 "fistps x87_o")
DEFT(t_fistpl, LD1 "fistpl x87_o")
DEFT(t_fistpll, LD1 "fistpll x87_o")
DEFT(t_fbstp, LD1 "fbstp x87_o")

static void loads(void)
{
    static const u32 m32s[] = { 0, 0x80000000, 0x3f800000, 0x00000001, 0x807fffff, 0x7f800000,
                                0xff800000, 0x7fc00001, 0x7f800001, 0xffc00000, 0x7f7fffff,
                                0x3eaaaaab, 0x00800000 };
    for (unsigned i = 0; i < sizeof(m32s) / 4; i++) {
        set_m32(m32s[i]);
        tprintf("fld m32 %08x:", m32s[i]);
        run(t_flds, CW(0, PC64), M_ARITH, 0);
        tprintf(" |");
        run(t_flds, CW(3, PC24), M_ARITH, 0);
        tprintf("\n");
    }
    static const u32 m64s[][2] = { { 0, 0 }, { 0x3ff00000, 0 }, { 0, 1 }, { 0x800fffff, 0xffffffff },
                                   { 0x7ff00000, 0 }, { 0x7ff00000, 1 }, { 0x7ff80000, 1 },
                                   { 0xfff80000, 0 }, { 0x3fd55555, 0x55555555 },
                                   { 0x7fefffff, 0xffffffff }, { 0x00100000, 0 },
                                   { 0x400921fb, 0x54442d18 } };
    for (unsigned i = 0; i < sizeof(m64s) / 8; i++) {
        set_m64(m64s[i][0], m64s[i][1]);
        tprintf("fld m64 %08x%08x:", m64s[i][0], m64s[i][1]);
        run(t_fldl, CW(0, PC64), M_ARITH, 0);
        tprintf(" |");
        run(t_fldl, CW(2, PC24), M_ARITH, 0);
        tprintf("\n");
    }
    static const int m80s[] = { NZ, PDEN, SNAN, QNAN, UNN, PSDEN, PSNAN, PSINF, MAX, MINN };
    for (unsigned i = 0; i < sizeof(m80s) / sizeof(int); i++) {
        f80 v = V(m80s[i]);
        copy(x87_m, &v, 10);
        tprintf("fld m80 %s:", vals[m80s[i]].name);
        run(t_fldt, CW(0, PC64), M_ARITH, 0);
        tprintf("\n");
        x87_a = V(P1);
        x87_b = v;
        tprintf("fld st(1) %s:", vals[m80s[i]].name);
        run(t_fldst, CW(0, PC64), M_ARITH, 0);
        tprintf("\n");
    }
    static const u16 i16s[] = { 0, 1, 0xffff, 0x7fff, 0x8000 };
    for (unsigned i = 0; i < sizeof(i16s) / 2; i++) {
        *(u16 *)x87_m = i16s[i];
        tprintf("fild m16 %04x:", i16s[i]);
        run(t_filds, CW(0, PC64), M_ARITH, 0);
        tprintf("\n");
    }
    static const u32 i32s[] = { 0, 0x7fffffff, 0x80000000, 12345678, 0xffffffff, 0x01000001 };
    for (unsigned i = 0; i < sizeof(i32s) / 4; i++) {
        set_m32(i32s[i]);
        tprintf("fild m32 %08x:", i32s[i]);
        run(t_fildl, CW(0, PC64), M_ARITH, 0);
        tprintf(" |");
        run(t_fildl, CW(0, PC24), M_ARITH, 0);
        tprintf("\n");
    }
    static const u32 i64s[][2] = { { 0, 0 }, { 0x7fffffff, 0xffffffff }, { 0x80000000, 0 },
                                   { 1, 1 }, { 0xffffffff, 0xfffffffd }, { 0x00200000, 0x00000001 } };
    for (unsigned i = 0; i < sizeof(i64s) / 8; i++) {
        set_m64(i64s[i][0], i64s[i][1]);
        tprintf("fild m64 %08x%08x:", i64s[i][0], i64s[i][1]);
        run(t_fildll, CW(0, PC64), M_ARITH, 0);
        tprintf(" |");
        run(t_fildll, CW(0, PC53), M_ARITH, 0);
        tprintf("\n");
    }
    /* Packed BCD: 18 digits, sign in bit 79. */
    static const u32 bcds[][3] = { { 0x12345678, 0x90123456, 0x0078 }, { 0x12345678, 0x90123456, 0x8078 },
                                   { 0, 0, 0 }, { 0, 0, 0x8000 }, { 0x99999999, 0x99999999, 0x0099 },
                                   { 0x00000001, 0, 0x8000 } };
    for (unsigned i = 0; i < sizeof(bcds) / 12; i++) {
        set_m64(bcds[i][1], bcds[i][0]);
        *(u16 *)(x87_m + 8) = (u16)bcds[i][2];
        tprintf("fbld %04x%08x%08x:", bcds[i][2], bcds[i][1], bcds[i][0]);
        run(t_fbld, CW(0, PC64), M_ARITH, 0);
        tprintf("\n");
    }
}

static void stores(void)
{
    /* Values that round differently per RC in m32/m64, overflow, underflow
     * (exact and inexact denormal results), ties, NaNs. */
    static const f80 sv[] = {
        { 0xaaaaaaab, 0xaaaaaaaa, 0x3ffd }, /* 1/3 */
        { 0xaaaaaaab, 0xaaaaaaaa, 0xbffd }, /* -1/3 */
        { 0x2168c235, 0xc90fdaa2, 0x4000 }, /* pi */
        { 0xffffffff, 0xffffffff, 0x7ffe }, /* max */
        { 0, 0x80000000, 0x0001 },          /* smallest normal */
        { 0, 0x80000000, 0x3f73 },          /* 2^-140: exact m32 denormal */
        { 0x1, 0x80000001, 0x3f73 },        /* 2^-140(1+eps): inexact m32 denormal */
        { 0, 0x80000080, 0x3fff },          /* 1+2^-24: m32 tie */
        { 0x1, 0x80000080, 0x3fff },        /* just above the tie */
        { 0, 0x80000180, 0xbfff },          /* -(1+3*2^-24): tie to even upward */
        { 0x400, 0x80000000, 0x3fff },      /* 1+2^-53: m64 tie */
        { 0, 0x80000000, 0x407f },          /* 2^128: m32 overflow */
        { 0, 0xffffff80, 0x407e },          /* rounds up to m32 overflow */
        { 0, 0x80000000, 0x7fff },          /* +inf */
        { 0x12345678, 0xc0000000, 0xffff }, /* -qnan, payload truncated */
        { 0x00000abc, 0x90000000, 0x7fff }, /* snan */
        { 0, 0x40000000, 0x4000 },          /* unnormal */
        { 0x3, 0x40000000, 0x0000 },        /* 80-bit denormal */
        { 0, 0, 0x8000 },                   /* -0 */
    };
    for (unsigned i = 0; i < sizeof(sv) / sizeof(sv[0]); i++) {
        x87_a = sv[i];
        x87_b = V(P1);
        tprintf("fst m32 #%u:", i);
        run_rc(t_fsts, PC64, M_ARITH, 4);
        tprintf("\n");
        tprintf("fst m64 #%u:", i);
        run_rc(t_fstl, PC64, M_ARITH, 8);
        tprintf("\n");
        tprintf("fstp m32/m64/m80 #%u:", i);
        run(t_fstps, CW(0, PC24), M_ARITH, 4);
        run(t_fstpl, CW(0, PC24), M_ARITH, 8);
        run(t_fstpt, CW(0, PC24), M_ARITH, 10);
        tprintf(" |");
        run(t_fstst, CW(0, PC24), M_ARITH, 0);
        run(t_fstpst, CW(0, PC24), M_ARITH, 0);
        tprintf("\n");
    }
    /* Integers: rounding per RC, the limits of each size, out of range
     * (integer indefinite with IE), NaN, infinity. */
    static const f80 iv[] = {
        { 0, 0, 0x0000 }, { 0, 0, 0x8000 },
        { 0, 0x80000000, 0x3ffe },          /* 0.5 */
        { 0, 0xc0000000, 0x3fff },          /* 1.5 */
        { 0, 0xa0000000, 0x4000 },          /* 2.5 */
        { 0, 0xa0000000, 0xc000 },          /* -2.5 */
        { 0, 0x80000000, 0xbffe },          /* -0.5 */
        { 0, 0xffff0000, 0x400d },          /* 32767.5 */
        { 0, 0x80000000, 0x400e },          /* 32768 */
        { 0, 0x80000000, 0xc00e },          /* -32768 */
        { 0, 0x80010000, 0xc00e },          /* -32768.5 */
        { 0, 0x80000000, 0x401e },          /* 2^31 */
        { 0, 0x80000000, 0xc01e },          /* -2^31 */
        { 0, 0xffffffff, 0x401d },          /* 2^31-0.5 */
        { 0, 0x80000000, 0x403e },          /* 2^63 */
        { 0, 0x80000000, 0xc03e },          /* -2^63 */
        { 0xffffffff, 0xffffffff, 0x403d }, /* 2^63-1 */
        { 0x3, 0xffffffff, 0x403d },        /* 2^63-2^62... rounds */
        { 0, 0x80000000, 0x7fff },          /* inf */
        { 0x12345678, 0xc0000000, 0x7fff }, /* qnan */
        { 0x00000abc, 0x90000000, 0x7fff }, /* snan */
        { 0x3, 0x40000000, 0x0000 },        /* denormal */
        { 0, 0x40000000, 0x4000 },          /* unnormal */
    };
    for (unsigned i = 0; i < sizeof(iv) / sizeof(iv[0]); i++) {
        x87_a = iv[i];
        tprintf("fist m16 #%u:", i);
        run_rc(t_fists, PC64, M_ARITH, 2);
        tprintf("\n");
        tprintf("fist m32 #%u:", i);
        run_rc(t_fistl, PC64, M_ARITH, 4);
        tprintf("\n");
        tprintf("fistp m64 #%u:", i);
        run_rc(t_fistpll, PC64, M_ARITH, 8);
        tprintf("\n");
        tprintf("fistp m16/m32 #%u:", i);
        run(t_fistps, CW(0, PC24), M_ARITH, 2);
        run(t_fistpl, CW(0, PC24), M_ARITH, 4);
        tprintf("\n");
    }
    static const f80 bv[] = {
        { 0, 0xf7000000, 0x4005 },          /* 123.5 */
        { 0, 0xf7000000, 0xc005 },          /* -123.5 */
        { 0, 0, 0x8000 },                   /* -0 */
        { 0, 0x80000000, 0xbffe },          /* -0.5 */
        { 0xe7ffff00, 0xde0b6b3a, 0x403a }, /* 10^18-256: exact */
        { 0xe8000000, 0xde0b6b3a, 0x403a }, /* 10^18: out of range */
        { 0, 0x80000000, 0x7fff },          /* inf */
        { 0x12345678, 0xc0000000, 0x7fff }, /* qnan */
        { 0x3, 0x40000000, 0x0000 },        /* denormal */
        { 0x2168c235, 0xc90fdaa2, 0x4000 }, /* pi */
    };
    for (unsigned i = 0; i < sizeof(bv) / sizeof(bv[0]); i++) {
        x87_a = bv[i];
        tprintf("fbstp #%u:", i);
        run_rc(t_fbstp, PC64, M_ARITH, 10);
        tprintf("\n");
    }
}

/* ---- constants -------------------------------------------------------- */

DEFT(t_fld1, "fld1")
DEFT(t_fldz, "fldz")
DEFT(t_fldpi, "fldpi")
DEFT(t_fldl2e, "fldl2e")
DEFT(t_fldl2t, "fldl2t")
DEFT(t_fldlg2, "fldlg2")
DEFT(t_fldln2, "fldln2")

static void constants(void)
{
    static const struct {
        const char *n;
        tfn f;
    } c[] = { { "fld1", t_fld1 }, { "fldz", t_fldz }, { "fldpi", t_fldpi }, { "fldl2e", t_fldl2e },
              { "fldl2t", t_fldl2t }, { "fldlg2", t_fldlg2 }, { "fldln2", t_fldln2 } };
    for (unsigned i = 0; i < 7; i++) {
        tprintf("%s:", c[i].n);
        run_rc(c[i].f, PC64, M_ARITH, 0);
        tprintf(" | pc24:");
        run(c[i].f, CW(0, PC24), M_ARITH, 0);
        tprintf("\n");
    }
}

/* ---- one-operand arithmetic ------------------------------------------ */

DEFT(t_fsqrt, LD2 "fsqrt")
DEFT(t_fabs, LD2 "fabs")
DEFT(t_fchs, LD2 "fchs")
DEFT(t_frndint, LD2 "frndint")
DEFT(t_fscale, LD2 "fscale")
DEFT(t_fxtract, LD2 "fxtract")
DEFT(t_fprem, LD2 "fprem")
DEFT(t_fprem1, LD2 "fprem1")
DEFT(t_fsin, LD2 "fsin")
DEFT(t_fcos, LD2 "fcos")
DEFT(t_fsincos, LD2 "fsincos")
DEFT(t_fptan, LD2 "fptan")
DEFT(t_fpatan, LD2 "fpatan")
DEFT(t_f2xm1, LD2 "f2xm1")
DEFT(t_fyl2x, LD2 "fyl2x")
DEFT(t_fyl2xp1, LD2 "fyl2xp1")
DEFT(t_fpremloop, LD2 "movl $0, x87_n\n1:\n\tincl x87_n\n\tfprem\n\tfnstsw %%ax\n\t"
                      "testb $4, %%ah\n\tjnz 1b")
DEFT(t_fprem1loop, LD2 "movl $0, x87_n\n1:\n\tincl x87_n\n\tfprem1\n\tfnstsw %%ax\n\t"
                       "testb $4, %%ah\n\tjnz 1b")

static void unary(const char *name, tfn f, const f80 *v, unsigned n, u32 mask, int all_pc)
{
    for (unsigned i = 0; i < n; i++) {
        x87_a = v[i];
        x87_b = V(P1);
        tprintf("%s #%u:", name, i);
        run_rc(f, PC64, mask, 0);
        if (all_pc) {
            tprintf(" | pc24:");
            run(f, CW(0, PC24), mask, 0);
            tprintf(" pc53:");
            run(f, CW(0, PC53), mask, 0);
        }
        tprintf("\n");
    }
}

static void binary(const char *name, tfn f, const f80 (*v)[2], unsigned n, u32 mask)
{
    for (unsigned i = 0; i < n; i++) {
        x87_a = v[i][0];
        x87_b = v[i][1];
        tprintf("%s #%u:", name, i);
        run_rc(f, PC64, mask, 0);
        tprintf("\n");
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define FV(i) V_##i

static void monadic(void)
{
    static const f80 sq[] = {
        { 0, 0x80000000, 0x4000 },          /* 2 */
        { 0, 0, 0 }, { 0, 0, 0x8000 },      /* +-0 */
        { 0, 0x80000000, 0xbfff },          /* -1: IE */
        { 0, 0x80000000, 0x7fff }, { 0, 0x80000000, 0xffff }, /* +-inf */
        { 0x3, 0x40000000, 0x0000 },        /* denormal */
        { 0x12345678, 0xc0000000, 0x7fff }, { 0x00000abc, 0x90000000, 0x7fff },
        { 0xaaaaaaab, 0xaaaaaaaa, 0x3ffd }, /* 1/3 */
        { 0, 0x90000000, 0x4002 },          /* 9*2: 18 */
        { 0, 0x40000000, 0x4000 },          /* unnormal */
        { 0, 0x00000000, 0x8001 },          /* -pseudo... (unnormal, negative) */
    };
    unary("fsqrt", t_fsqrt, sq, N(sq), M_ARITH, 1);
    static const f80 ab[] = { FV(PZ), FV(NZ), FV(QNAN), FV(SNAN), FV(NINF), FV(NDEN), FV(UNN), FV(M15) };
    unary("fabs", t_fabs, ab, N(ab), M_ARITH, 0);
    unary("fchs", t_fchs, ab, N(ab), M_ARITH, 0);
    static const f80 rn[] = {
        { 0, 0xa0000000, 0x4000 },          /* 2.5 */
        { 0, 0xe0000000, 0x4000 },          /* 3.5 */
        { 0, 0xa0000000, 0xc000 },          /* -2.5 */
        { 0, 0x80000000, 0xbffe },          /* -0.5 */
        { 0, 0x80000000, 0x3ffe },          /* 0.5 */
        { 0x12345678, 0x9abcdef0, 0x4040 }, /* 2^65-ish: already integral */
        { 0x1, 0x80000000, 0x403e },        /* 2^63+1... integral (64 bits) */
        { 0, 0x80000080, 0x4017 },          /* 2^24+1: integral, PC24 must not round it */
        { 0, 0x80000060, 0x4018 },          /* 2^25+1.5: 2^25+2 needs 26 bits: not rounded to PC */
        { 0x80000000, 0x80000001, 0x401f }, /* 2^32+2+0.5 */
        FV(PDEN), FV(NDEN), FV(NZ), FV(PINF), FV(QNAN), FV(SNAN), FV(UNN),
    };
    unary("frndint", t_frndint, rn, N(rn), M_ARITH, 1);
    static const f80 xt[] = { { 0, 0x80000000, 0x4002 }, FV(M15), FV(PZ), FV(NZ), FV(PINF), FV(NINF),
                              FV(PDEN), FV(NDEN), FV(QNAN), FV(SNAN), FV(MAX), FV(MINN), FV(UNN), FV(PSDEN) };
    unary("fxtract", t_fxtract, xt, N(xt), M_ARITH, 0);
    static const f80 sc[][2] = {
        { FV(P1), FV(THREE) }, { FV(P1), { 0, 0xc0000000, 0xc000 } }, /* 1, -3 */
        { FV(THREE), { 0, 0xacccccd0, 0x4000 } },  /* 3, 2.7 -> *4 */
        { FV(P1), { 0, 0xc3500000, 0x400f } },     /* 1, 100000: overflow */
        { FV(P1), { 0, 0xc3500000, 0xc00f } },     /* 1, -100000: underflow */
        { FV(THIRD), { 0, 0xfffc0000, 0xc00c } },  /* 1/3, -16382.x: denormal result */
        { FV(PZ), FV(PINF) }, { FV(PINF), FV(NINF) }, { FV(P1), FV(NINF) }, { FV(NZ), FV(NINF) },
        { FV(P1), { 0, 0xa0000000, 0xc000 } },     /* 1, -2.5 */
        { FV(PDEN), FV(P1) }, { FV(QNAN), FV(P1) }, { FV(P1), FV(SNAN) }, { FV(M15), FV(NZ) },
        { FV(MAX), FV(P1) }, { FV(P1), { 0, 0x80000000, 0x403e } }, /* 1, 2^63 */
    };
    binary("fscale", t_fscale, sc, N(sc), M_ARITH);
    static const f80 pr[][2] = {
        { { 0, 0xa0000000, 0x4002 }, FV(THREE) },  /* 10, 3 */
        { { 0, 0xa0000000, 0xc002 }, FV(THREE) },  /* -10, 3 */
        { { 0, 0xa0000000, 0x4002 }, { 0, 0xc0000000, 0xc000 } }, /* 10, -3 */
        { { 0, 0xe0000000, 0x4001 }, FV(TWO) },    /* 7, 2 */
        { { 0, 0xb0000000, 0x4001 }, FV(TWO) },    /* 5.5, 2 */
        { { 0, 0xa0000000, 0x4001 }, FV(TWO) },    /* 5, 2: tie, FPREM1 to even */
        { { 0, 0xf0000000, 0x4002 }, FV(TWO) },    /* 15, 2 */
        { { 0, 0x80000000, 0x4063 }, FV(THREE) },  /* 2^100, 3: partial */
        { FV(PI), { 0, 0x80000000, 0x3ffe } },     /* pi, 0.5 */
        { FV(PZ), FV(THREE) }, { FV(NZ), FV(THREE) }, { FV(THREE), FV(PZ) },
        { FV(PINF), FV(THREE) }, { FV(THREE), FV(PINF) }, { FV(PDEN), FV(P1) }, { FV(P1), FV(PDEN) },
        { FV(QNAN), FV(THREE) }, { FV(THREE), FV(SNAN) }, { FV(UNN), FV(THREE) },
        { FV(MAX), FV(MINN) },
    };
    binary("fprem", t_fprem, pr, N(pr), M_ALL);
    binary("fprem1", t_fprem1, pr, N(pr), M_ALL);
    for (int k = 0; k < 2; k++) {
        static const f80 big[][2] = { { { 0, 0x80000000, 0x4063 }, FV(THREE) },
                                      { FV(MAX), FV(PI) } };
        for (int i = 0; i < 2; i++) {
            x87_a = big[i][0];
            x87_b = big[i][1];
            x87_cw = CW(0, PC64);
            (k ? t_fprem1loop : t_fpremloop)();
            tprintf("%s until C2=0 #%d: iterations=%u", k ? "fprem1" : "fprem", i, x87_n);
            rec(M_ALL);
            tprintf("\n");
        }
    }
}

static void transcendental(void)
{
    static const f80 tv[] = {
        FV(PZ), FV(NZ), FV(P1), FV(NHALF), FV(PI), FV(THREE),
        { 0, 0x9502f900, 0x4020 },          /* 1e10 */
        { 0, 0xffffffff, 0x403d },          /* just below 2^63: in range */
        { 0, 0x80000000, 0x403e },          /* 2^63: out of range, C2=1 */
        { 0, 0x80000000, 0xc03f },          /* -2^64 */
        FV(PINF), FV(QNAN), FV(SNAN), FV(PDEN), FV(UNN), FV(MINN),
        { 0x2168c235, 0xc90fdaa2, 0x3ffe }, /* pi/4 */
    };
    unary("fsin", t_fsin, tv, N(tv), M_TRIG, 0);
    unary("fcos", t_fcos, tv, N(tv), M_TRIG, 0);
    unary("fsincos", t_fsincos, tv, N(tv), M_TRIG, 0);
    unary("fptan", t_fptan, tv, N(tv), M_TRIG, 0);
    static const f80 ev[] = { FV(HALF), FV(NHALF), FV(P1), { 0, 0x80000000, 0xbfff }, FV(PZ), FV(NZ),
                              FV(PDEN), { 0, 0xabcc7712, 0x3fdd } /* 1e-10 */, FV(THIRD), FV(QNAN),
                              FV(SNAN), FV(NTHIRD), FV(UNN) };
    unary("f2xm1", t_f2xm1, ev, N(ev), M_ARITH, 0);
    /* FPATAN: ST(1)=y (b), ST(0)=x (a): atan(y/x). */
    static const f80 at[][2] = {
        { FV(P1), FV(P1) }, { { 0, 0x80000000, 0xbfff }, FV(P1) }, { FV(PZ), FV(NZ) }, { FV(NZ), FV(PZ) },
        { FV(NZ), FV(NZ) }, { FV(PINF), FV(PINF) }, { FV(NINF), FV(NINF) }, { FV(PZ), FV(P1) },
        { FV(P1), FV(PZ) }, { FV(THREE), FV(THIRD) }, { FV(PDEN), FV(P1) }, { FV(QNAN), FV(P1) },
        { FV(P1), FV(SNAN) }, { FV(MAX), FV(MINN) }, { FV(MINN), FV(MAX) }, { FV(P1), FV(NINF) },
    };
    binary("fpatan", t_fpatan, at, N(at), M_ARITH);
    /* FYL2X: ST(0)=x (a), ST(1)=y (b): y*log2(x). */
    static const f80 yl[][2] = {
        { { 0, 0x80000000, 0x4002 }, FV(P1) }, { FV(HALF), FV(THREE) }, { FV(PZ), FV(P1) },
        { FV(NZ), FV(NHALF) }, { { 0, 0x80000000, 0xbfff }, FV(P1) }, { FV(P1), FV(PINF) },
        { FV(PINF), FV(PZ) }, { FV(PINF), FV(M15) }, { FV(THIRD), FV(PI) }, { FV(PDEN), FV(P1) },
        { FV(QNAN), FV(P1) }, { FV(P1), FV(SNAN) }, { FV(MAX), FV(MAX) }, { FV(THREE), FV(PZ) },
        { FV(PZ), FV(PZ) },
    };
    binary("fyl2x", t_fyl2x, yl, N(yl), M_ARITH);
    /* FYL2XP1: |x| < 1 - sqrt(2)/2. */
    static const f80 yp[][2] = {
        { { 0, 0x80000000, 0x3ffc }, FV(P1) },     /* 0.125, 1 */
        { { 0, 0x80000000, 0xbffc }, FV(THREE) },  /* -0.125, 3 */
        { FV(PZ), FV(P1) }, { FV(NZ), FV(P1) }, { FV(PZ), FV(M15) }, { FV(PZ), FV(PINF) },
        { { 0, 0xabcc7712, 0x3fdd }, FV(PI) }, { FV(PDEN), FV(P1) }, { FV(QNAN), FV(P1) },
        { FV(THIRD), FV(SNAN) }, { FV(NTHIRD), FV(MAX) },
    };
    binary("fyl2xp1", t_fyl2xp1, yp, N(yp), M_ARITH);
}

/* ---- compares ----------------------------------------------------------- */

DEFT(t_fcom, LD2 "fcom %%st(1)")
DEFT(t_fucom, LD2 "fucom %%st(1)")
DEFT(t_fcomi, LD2 FLAGS_IN "fcomi %%st(1), %%st" FLAGS_OUT)
DEFT(t_fucomi, LD2 FLAGS_IN "fucomi %%st(1), %%st" FLAGS_OUT)
DEFT(t_fcomp, LD2 "fcomp %%st(1)")
DEFT(t_fcompp, LD2 "fcompp")
DEFT(t_fucomp, LD2 "fucomp %%st(1)")
DEFT(t_fucompp, LD2 "fucompp")
DEFT(t_fcomip, LD2 FLAGS_IN "fcomip %%st(1), %%st" FLAGS_OUT)
DEFT(t_fucomip, LD2 FLAGS_IN "fucomip %%st(1), %%st" FLAGS_OUT)
DEFT(t_fcoms, LD2 "fcoms x87_m")
DEFT(t_fcoml, LD2 "fcoml x87_m")
DEFT(t_fcomps, LD2 "fcomps x87_m")
DEFT(t_fcompl, LD2 "fcompl x87_m")
DEFT(t_ficoms, LD2 "ficoms x87_m")
DEFT(t_ficoml, LD2 "ficoml x87_m")
DEFT(t_ficomps, LD2 "ficomps x87_m")
DEFT(t_ficompl, LD2 "ficompl x87_m")
DEFT(t_fcom_st2, LD2 "fcom %%st(2)")
DEFT(t_fcomi_st2, LD2 FLAGS_IN "fcomi %%st(2), %%st" FLAGS_OUT)
DEFT(t_ftst, LD2 "ftst")
DEFT(t_fxam, LD2 "fxam")
DEFT(t_fxam_empty, LD2 "ffree %%st(0)\n\tfxam")
DEFT(t_fxam_empty2, LD2 "fincstp\n\tfxam")
DEFT(t_fxam_none, "fxam")

#define EF_MASK 0x8d5u

static void compares(void)
{
    static const int cv[] = { PZ, NZ, P1, M15, PDEN, PINF, NINF, QNAN, SNAN, UNN };
    for (unsigned i = 0; i < N(cv); i++)
        for (unsigned j = 0; j < N(cv); j++) {
            x87_a = V(cv[i]);
            x87_b = V(cv[j]);
            tprintf("cmp [%s,%s]: fcom", vals[cv[i]].name, vals[cv[j]].name);
            run(t_fcom, CW(0, PC64), M_ALL, 0);
            tprintf(" | fucom");
            run(t_fucom, CW(0, PC64), M_ALL, 0);
            x87_fin = 0x8d7; /* all six flags set: FCOMI clears OF SF AF */
            tprintf(" | fcomi");
            run(t_fcomi, CW(0, PC64), M_ALL, 0);
            tprintf(" fl=%03x", x87_fout & EF_MASK);
            x87_fin = 0x002;
            tprintf(" | fucomi");
            run(t_fucomi, CW(0, PC64), M_ALL, 0);
            tprintf(" fl=%03x\n", x87_fout & EF_MASK);
        }
    /* Popping forms and memory/integer operands. */
    static const int pv[][2] = { { P1, THREE }, { THREE, P1 }, { P1, P1 }, { QNAN, P1 }, { SNAN, P1 }, { NZ, PZ } };
    static const struct {
        const char *n;
        tfn f;
        int fl;
    } pf[] = { { "fcomp", t_fcomp, 0 }, { "fcompp", t_fcompp, 0 }, { "fucomp", t_fucomp, 0 },
               { "fucompp", t_fucompp, 0 }, { "fcomip", t_fcomip, 1 }, { "fucomip", t_fucomip, 1 } };
    for (unsigned k = 0; k < N(pf); k++)
        for (unsigned i = 0; i < N(pv); i++) {
            x87_a = V(pv[i][0]);
            x87_b = V(pv[i][1]);
            x87_fin = 0x8d7;
            tprintf("%s [%s,%s]:", pf[k].n, vals[pv[i][0]].name, vals[pv[i][1]].name);
            run(pf[k].f, CW(0, PC64), M_ALL, 0);
            if (pf[k].fl)
                tprintf(" fl=%03x", x87_fout & EF_MASK);
            tprintf("\n");
        }
    static const struct {
        int a;
        u32 m32, m64hi, m64lo;
        u16 i16;
        u32 i32;
    } mv[] = {
        { P1, 0x3f800000, 0x3ff00000, 0, 1, 1 },
        { THIRD, 0x3eaaaaab, 0x3fd55555, 0x55555555, 0, 0xffffffff },
        { NZ, 0x00000000, 0x00000000, 0, 0, 0 },
        { P1, 0x7f800001, 0x7ff00000, 1, 0x8000, 0x80000000 },
        { P1, 0x7fc00000, 0x7ff80000, 0, 0x7fff, 0x7fffffff },
        { PINF, 0x7f800000, 0x7ff00000, 0, 0x7fff, 0x7fffffff },
        { PDEN, 0x00000001, 0x00000000, 1, 0, 0 },
        { QNAN, 0x3f800000, 0x3ff00000, 0, 1, 1 },
    };
    for (unsigned i = 0; i < N(mv); i++) {
        x87_a = V(mv[i].a);
        x87_b = V(P1);
        tprintf("fcom mem #%u:", i);
        set_m32(mv[i].m32);
        run(t_fcoms, CW(0, PC64), M_ALL, 0);
        run(t_fcomps, CW(0, PC64), M_ALL, 0);
        set_m64(mv[i].m64hi, mv[i].m64lo);
        tprintf(" |");
        run(t_fcoml, CW(0, PC64), M_ALL, 0);
        run(t_fcompl, CW(0, PC64), M_ALL, 0);
        tprintf("\n");
        tprintf("ficom #%u:", i);
        *(u16 *)x87_m = mv[i].i16;
        run(t_ficoms, CW(0, PC64), M_ALL, 0);
        run(t_ficomps, CW(0, PC64), M_ALL, 0);
        set_m32(mv[i].i32);
        tprintf(" |");
        run(t_ficoml, CW(0, PC64), M_ALL, 0);
        run(t_ficompl, CW(0, PC64), M_ALL, 0);
        tprintf("\n");
    }
    /* Comparison with an empty register: stack underflow. */
    x87_a = V(P1);
    x87_b = V(P1);
    x87_fin = 0x8d7;
    tprintf("fcom st(2) empty:");
    run(t_fcom_st2, CW(0, PC64), M_ALL, 0);
    tprintf(" | fcomi");
    run(t_fcomi_st2, CW(0, PC64), M_ALL, 0);
    tprintf(" fl=%03x\n", x87_fout & EF_MASK);
    /* FTST and FXAM over every class. */
    static const int xv[] = { UNN, PSNAN, PSINF, QNAN, NQNAN, SNAN, P1, M15, PINF, NINF, PZ, NZ,
                              PDEN, NDEN, PSDEN, MAX, MINN };
    for (unsigned i = 0; i < N(xv); i++) {
        x87_a = V(xv[i]);
        x87_b = V(P1);
        tprintf("ftst/fxam %s:", vals[xv[i]].name);
        run(t_ftst, CW(0, PC64), M_ALL, 0);
        tprintf(" |");
        run(t_fxam, CW(0, PC64), M_ALL, 0);
        tprintf("\n");
    }
    x87_a = V(M15);
    x87_b = V(P1);
    tprintf("fxam empty (ffree -1.5):");
    run(t_fxam_empty, CW(0, PC64), M_ALL, 0);
    tprintf("\nfxam empty (fincstp):");
    x87_c = V(NQNAN);
    run(t_fxam_empty2, CW(0, PC64), M_ALL, 0);
    tprintf("\nfxam empty (fninit):");
    run(t_fxam_none, CW(0, PC64), M_ALL, 0);
    tprintf("\nftst empty:");
    x87_a = V(P1);
    run(t_fxam_empty, CW(0, PC64), M_ALL, 0);
    tprintf("\n");
}

/* ---- FCMOVcc ------------------------------------------------------------ */

DEFT(t_fcmovb, LD2 FLAGS_IN "fcmovb %%st(1), %%st")
DEFT(t_fcmove, LD2 FLAGS_IN "fcmove %%st(1), %%st")
DEFT(t_fcmovbe, LD2 FLAGS_IN "fcmovbe %%st(1), %%st")
DEFT(t_fcmovu, LD2 FLAGS_IN "fcmovu %%st(1), %%st")
DEFT(t_fcmovnb, LD2 FLAGS_IN "fcmovnb %%st(1), %%st")
DEFT(t_fcmovne, LD2 FLAGS_IN "fcmovne %%st(1), %%st")
DEFT(t_fcmovnbe, LD2 FLAGS_IN "fcmovnbe %%st(1), %%st")
DEFT(t_fcmovnu, LD2 FLAGS_IN "fcmovnu %%st(1), %%st")
DEFT(t_fcmov_empty, "fld1\n\t" FLAGS_IN "fcmove %%st(1), %%st")

static void fcmov(void)
{
    static const struct {
        const char *n;
        tfn f;
    } c[] = { { "fcmovb", t_fcmovb }, { "fcmove", t_fcmove }, { "fcmovbe", t_fcmovbe },
              { "fcmovu", t_fcmovu }, { "fcmovnb", t_fcmovnb }, { "fcmovne", t_fcmovne },
              { "fcmovnbe", t_fcmovnbe }, { "fcmovnu", t_fcmovnu } };
    x87_a = V(P1);
    x87_b = V(M15);
    for (unsigned k = 0; k < 8; k++) {
        tprintf("%s:", c[k].n);
        for (u32 z = 0; z < 8; z++) {
            x87_fin = 0x2 | ((z & 1) ? 0x01 : 0) | ((z & 2) ? 0x40 : 0) | ((z & 4) ? 0x04 : 0);
            x87_cw = CW(0, PC64);
            c[k].f();
            tprintf(" %s%s%s=", (z & 1) ? "C" : "c", (z & 2) ? "Z" : "z", (z & 4) ? "P" : "p");
            p80(x87_sv.st[0]);
        }
        tprintf(" sw=%04x\n", x87_sv.sw & M_ARITH);
    }
    x87_fin = 0x42;
    tprintf("fcmove empty:");
    run(t_fcmov_empty, CW(0, PC64), M_ARITH, 0);
    tprintf("\n");
}

/* ---- stack management, control and status -------------------------------- */

DEFT(t_fxch, LD3 "fxch %%st(1)")
DEFT(t_fxch2, LD3 "fxch %%st(2)")
DEFT(t_fxch_empty, LD2 "fxch %%st(3)")
DEFT(t_fxch_empty0, LD1 "ffree %%st(0)\n\tfxch %%st(1)")
DEFT(t_ffree, LD3 "ffree %%st(1)")
DEFT(t_ffree0, LD3 "ffree %%st(0)")
DEFT(t_fincstp, LD3 "fincstp")
DEFT(t_fdecstp, LD3 "fdecstp")
DEFT(t_fdecstp0, "fdecstp")
DEFT(t_fincdec, LD3 "fincstp\n\tfincstp\n\tfincstp\n\tfdecstp")
DEFT(t_ffreep, LD3 ".byte 0xdf, 0xc1") /* FFREEP st(1) (undocumented; all P6+) */
DEFT(t_overflow, "fldz\n\tfld1\n\tfldpi\n\tfldl2e\n\tfldl2t\n\tfldlg2\n\tfldln2\n\tfldt x87_a\n\tfldt x87_b")
DEFT(t_overflow_fild, "fldz\n\tfld1\n\tfldpi\n\tfldl2e\n\tfldl2t\n\tfldlg2\n\tfldln2\n\tfldt x87_a\n\tfildl x87_m")
DEFT(t_overflow_fxtract, "fldz\n\tfld1\n\tfldpi\n\tfldl2e\n\tfldl2t\n\tfldlg2\n\tfldln2\n\tfldt x87_a\n\tfxtract")
DEFT(t_overflow_fptan, "fldz\n\tfld1\n\tfldpi\n\tfldl2e\n\tfldl2t\n\tfldlg2\n\tfldln2\n\tfldt x87_a\n\tfptan")
DEFT(t_overflow_fsincos, "fldz\n\tfld1\n\tfldpi\n\tfldl2e\n\tfldl2t\n\tfldlg2\n\tfldln2\n\tfldt x87_a\n\tfsincos")
DEFT(t_under_fadd, "fadd %%st(1), %%st")
DEFT(t_under_fadd1, LD1 "fadd %%st(1), %%st")
DEFT(t_under_faddp, LD1 ".byte 0xde, 0xc1")
DEFT(t_under_fsqrt, "fsqrt")
DEFT(t_under_fst, "fstl x87_o")
DEFT(t_under_fstp, LD1 "ffree %%st(0)\n\tfstps x87_o")
DEFT(t_under_fistp, "fistpl x87_o")
DEFT(t_under_fbstp, "fbstp x87_o")
DEFT(t_under_fld, LD1 "ffree %%st(0)\n\tfld %%st(0)")
DEFT(t_under_fchs, "fchs")
DEFT(t_under_fsincos, "fsincos")
DEFT(t_under_fpatan, LD1 "fpatan")
DEFT(t_under_fadds, "fadds x87_m")
DEFT(t_under_fsts, LD1 "ffree %%st(0)\n\tfsts x87_o")

static void stack(void)
{
    x87_a = V(P1);
    x87_b = V(M15);
    x87_c = V(PI);
    static const struct {
        const char *n;
        tfn f;
        u32 m;
        int mem;
    } s[] = {
        { "fxch st(1)", t_fxch, M_ARITH, 0 }, { "fxch st(2)", t_fxch2, M_ARITH, 0 },
        { "fxch st(3) empty", t_fxch_empty, M_ARITH, 0 }, { "fxch st(0) empty", t_fxch_empty0, M_ARITH, 0 },
        { "ffree st(1)", t_ffree, M_NOC, 0 }, { "ffree st(0)", t_ffree0, M_NOC, 0 },
        { "fincstp", t_fincstp, M_ARITH, 0 }, { "fdecstp", t_fdecstp, M_ARITH, 0 },
        { "fdecstp top=0", t_fdecstp0, M_ARITH, 0 }, { "fincstp x3 fdecstp", t_fincdec, M_ARITH, 0 },
        { "ffreep st(1)", t_ffreep, M_NOC, 0 },
        { "overflow fld", t_overflow, M_ARITH, 0 }, { "overflow fild", t_overflow_fild, M_ARITH, 0 },
        { "overflow fxtract", t_overflow_fxtract, M_ARITH, 0 },
        { "overflow fptan", t_overflow_fptan, M_TRIG, 0 },
        { "overflow fsincos", t_overflow_fsincos, M_TRIG, 0 },
        { "underflow fadd st,st(1) empty", t_under_fadd, M_ARITH, 0 },
        { "underflow fadd st(1) empty", t_under_fadd1, M_ARITH, 0 },
        { "underflow faddp", t_under_faddp, M_ARITH, 0 },
        { "underflow fsqrt", t_under_fsqrt, M_ARITH, 0 },
        { "underflow fst m64", t_under_fst, M_ARITH, 8 },
        { "underflow fstp m32", t_under_fstp, M_ARITH, 4 },
        { "underflow fst m32", t_under_fsts, M_ARITH, 4 },
        { "underflow fistp m32", t_under_fistp, M_ARITH, 4 },
        { "underflow fbstp", t_under_fbstp, M_ARITH, 10 },
        { "underflow fld st(0)", t_under_fld, M_ARITH, 0 },
        { "underflow fchs", t_under_fchs, M_ARITH, 0 },
        { "underflow fsincos", t_under_fsincos, M_TRIG, 0 },
        { "underflow fpatan", t_under_fpatan, M_ARITH, 0 },
        { "underflow fadd m32", t_under_fadds, M_ARITH, 0 },
    };
    set_m32(5);
    for (unsigned i = 0; i < N(s); i++) {
        tprintf("%s:", s[i].n);
        run(s[i].f, CW(0, PC64), s[i].m, s[i].mem);
        tprintf("\n");
    }
}

/* Control and status words. FNSTSW to memory and to AX must agree. */
static void control(void)
{
    u16 cw, sw, sw2, ax;
    /* FLDCW with reserved bits set and read back; FNSTCW */
    static const u16 cws[] = { 0x037f, 0xffff, 0x0000 | 0x3f, 0x0c7f, 0x107f, 0x0040 | 0x3f };
    for (unsigned i = 0; i < N(cws); i++) {
        x87_cw = cws[i];
        asm volatile("fninit\n\tfldcw x87_cw\n\tfnstcw %0\n\tfninit" : "=m"(cw)::"memory");
        tprintf("fldcw %04x: fnstcw=%04x\n", cws[i], cw);
    }
    /* Inexact result with C1, then FNSTSW m16 and FNSTSW AX; FNCLEX keeps
     * TOP and C0-C3 (undefined: masked), clears ES, SF, B and the flags. */
    x87_a = V(P1);
    x87_b = V(THREE);
    asm volatile("fninit\n\tfldt x87_b\n\tfldt x87_a\n\tfdiv %%st(1), %%st\n\tfld %%st(5)\n\t"
                 "fnstsw %0\n\tfnstsw %%ax\n\tmovw %%ax, %1\n\tfnclex\n\tfnstsw %2\n\tfninit"
                 : "=m"(sw), "=m"(ax), "=m"(sw2)::"eax", "memory");
    tprintf("fnstsw m16=%04x ax=%04x after fnclex=%04x\n", sw & M_ARITH, ax & M_ARITH, sw2 & M_NOC);
    /* FNSTSW AX leaves the rest of EAX alone. */
    u32 eax;
    asm volatile("fninit\n\tmovl $0x12345678, %%eax\n\tfldz\n\tfnstsw %%ax\n\tfninit" : "=a"(eax)::"memory");
    tprintf("fnstsw ax eax=%08x\n", eax);
    /* FWAIT with masked flags pending: nothing happens. */
    asm volatile("fninit\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\tfwait\n\twait\n\tfnstsw %0\n\tfninit"
                 : "=m"(sw)::"memory");
    tprintf("fwait after masked ZE: sw=%04x\n", sw & M_ARITH);
    /* FNINIT from a dirty state: CW 037F, SW 0, TW FFFF (FNSAVE's full tag word). */
    x87_cw = 0x0c60;
    x87_a = V(PI);
    asm volatile("fninit\n\tfldcw x87_cw\n\tfldt x87_a\n\tfldz\n\tfdiv %%st(0), %%st\n\tfninit\n\t"
                 "fnsave x87_sv" ::: "memory");
    tprintf("fninit: cw=%04x", x87_sv.cw & 0xffff);
    rec(M_ALL);
    tprintf("\n");
    /* FNCLEX on every flag */
    x87_a = V(SNAN);
    x87_b = V(PZ);
    asm volatile("fninit\n\tfldt x87_b\n\tfldt x87_a\n\tfdiv %%st(1), %%st\n\tfld %%st(6)\n\tfld %%st(6)\n\t"
                 "fnstsw %0\n\tfnclex\n\tfnsave x87_sv" : "=m"(sw)::"memory");
    tprintf("fnclex: before=%04x", sw & M_ARITH);
    rec(M_NOC);
    tprintf("\n");
}

/* FNSTENV/FLDENV and FNSAVE/FRSTOR in the 32-bit format; pointers masked. */
static void penv(const char *what, const u8 *e)
{
    tprintf(" %s cw=%04x sw=%04x tw=%04x", what, *(const u16 *)e, *(const u16 *)(e + 4),
            *(const u16 *)(e + 8));
}

#define FILL8 "fldz\n\tfld1\n\tfldpi\n\tfldl2e\n\tfldl2t\n\tfldlg2\n\tfldln2\n\tfldz\n\tfninit\n\t"
/* A state with valid, zero, special and empty registers, RC=up PC=53, and
 * PE+C1 from an inexact divide, TOP=4. */
#define STATE "fldcw x87_cw\n\tfldt x87_c\n\tfldz\n\tfldt x87_b\n\tfldt x87_a\n\t" \
              "fdiv %%st(1), %%st\n\tfdecstp\n\tfincstp\n\t"

static void environment(void)
{
    x87_a = V(P1);
    x87_b = V(THREE);
    x87_c = V(PDEN);
    x87_cw = 0x0a7f;
    /* FNSTENV masks every exception in the CW after storing. */
    asm volatile("fninit\n\t" FILL8 STATE "fnstenv x87_env\n\tfnstcw %0\n\tfninit\n\t"
                 "fldenv x87_env\n\tfnstenv x87_env2\n\tfnsave x87_sv"
                 : "=m"(x87_ax)::"memory");
    tprintf("fnstenv:");
    penv("stored", x87_env);
    tprintf(" cw after=%04x", x87_ax);
    penv("| reloaded", x87_env2);
    tprintf(" |");
    rec(M_ALL);
    tprintf("\n");
    /* FLDENV recomputes every tag that is not empty from the register
     * contents: load tag words 0000 (all valid) and aaaa (all special) and
     * 5555 over the same registers (FILL8 left known contents in all eight). */
    static const u16 tws[] = { 0x0000, 0xaaaa, 0x5555, 0xffff, 0x3fff, 0xfffc, 0x0fff };
    for (unsigned i = 0; i < N(tws); i++) {
        *(u16 *)(x87_env + 8) = tws[i];
        asm volatile("fninit\n\t" FILL8 "fldenv x87_env\n\tfnstenv x87_env2\n\tfnsave x87_sv" ::: "memory");
        tprintf("fldenv tw=%04x:", tws[i]);
        penv("stored", x87_env2);
        tprintf(" |");
        rec(M_ALL);
        tprintf("\n");
    }
    /* FNSAVE / FRSTOR round trip, then an FRSTOR of a modified image. */
    asm volatile("fninit\n\t" FILL8 STATE "fnsave x87_env\n\tfnstenv x87_env2\n\tfrstor x87_env\n\t"
                 "fnsave x87_sv" ::: "memory");
    tprintf("fnsave:");
    penv("saved", x87_env);
    penv("| after fnsave", x87_env2);
    tprintf(" | restored");
    rec(M_ALL);
    tprintf("\n");
    /* FNSAVE reinitialised the FPU: FNSTENV right after it shows FNINIT's state */
    /* modify: ST(0) := -0, ST(1) := +inf, tag word all valid, TOP := 2, RC zero */
    f80 z = V(NZ), inf = V(PINF);
    copy(x87_env + 28, &z, 10);
    copy(x87_env + 38, &inf, 10);
    *(u16 *)(x87_env + 8) = 0x0000;
    *(u16 *)(x87_env + 4) = (u16)((*(u16 *)(x87_env + 4) & ~0x3800) | (2 << 11));
    *(u16 *)x87_env = 0x0f7f;
    asm volatile("fninit\n\tfrstor x87_env\n\tfnstenv x87_env2\n\tfrstor x87_env\n\tfnsave x87_sv" ::: "memory");
    tprintf("frstor modified:");
    penv("stored", x87_env2);
    tprintf(" |");
    rec(M_ALL);
    tprintf(" cw=%04x\n", x87_sv.cw & 0xffff);
    /* The restored image has all eight registers in use: pushing now is a
     * stack overflow. */
    x87_a = V(P1);
    x87_b = V(THREE);
    asm volatile("fninit\n\tfrstor x87_env\n\tfldt x87_b\n\tfldt x87_a\n\tfdiv %%st(1), %%st\n\tfnsave x87_sv"
                 ::: "memory");
    tprintf("after frstor (all tags valid) push:");
    rec(M_ARITH);
    tprintf("\n");
    /* A result after FRSTOR uses the restored RC (toward zero): two
     * registers freed first, then 1/3. */
    asm volatile("fninit\n\tfrstor x87_env\n\tffree %%st(7)\n\tffree %%st(6)\n\tfldt x87_b\n\t"
                 "fldt x87_a\n\tfdiv %%st(1), %%st\n\tfnsave x87_sv" ::: "memory");
    tprintf("after frstor (rc zero) 1/3:");
    rec(M_ARITH);
    tprintf("\n");
}

void x87_run(void)
{
    tprintf("x87 test core\n");
    constants();
    loads();
    stores();
    arith_forms();
    arith_rounding();
    arith_specials();
    monadic();
    transcendental();
    compares();
    fcmov();
    stack();
    control();
    environment();
    asm volatile("fninit");
    tprintf("x87 done\n");
}

void kmain(u32 magic, u32 mbi) { x87_run(); }
