/* fpu: the x87 as the system sees it, where a Linux process cannot look:
 * CR0.EM/MP/TS and #NM, CLTS, FNINIT's state, unmasked exceptions raised as
 * #MF at the next waiting instruction (CR0.NE=1), the unmasked store case,
 * the instruction and data pointers (FIP, FCS, FOP, FDP, FDS) in the 32-bit
 * and 16-bit FNSTENV/FNSAVE formats and their restoration by FLDENV/FRSTOR,
 * and the tag word FNSTENV computes from the registers. Guest-only (no
 * native build): every line is check(name, got, expected) with the expected
 * value reasoned from the Intel SDM (volume and section in each comment:
 * "SDM 1" = Vol. 1 ch. 8 "Programming with the x87 FPU", "SDM 2" = the
 * instruction reference, "SDM 3" = Vol. 3 2.5 (CR0) and 6.15 (exceptions)).
 * The pointers are those of a P6-family CPU (SDM 1 8.1.8/8.1.10): FCS/FDS
 * the selectors, FDP the offset of the last memory operand, FOP the last
 * non-control instruction's 11-bit opcode. (Recent Intel CPUs deprecate
 * FCS/FDS, storing 0, and may update FDP only on unmasked exceptions,
 * CPUID.(EAX=7,ECX=0):EBX[6,13]; this kernel tests the P6 behaviour that
 * bt86 models.)
 *
 * Built with the x87 flags (Makefile X87_ARCHFLAGS); exempt from check-isa. */
#include "rt.h"

#define CR0_MP 0x02u
#define CR0_EM 0x04u
#define CR0_TS 0x08u
#define CR0_NE 0x20u

/* Status word bits. */
#define SW_IE 0x0001u
#define SW_ZE 0x0004u
#define SW_OE 0x0008u
#define SW_PE 0x0020u
#define SW_SF 0x0040u
#define SW_ES 0x0080u
#define SW_C1 0x0200u
#define SW_TOP 0x3800u
#define SW_B 0x8000u
#define SW_FLAGS 0x80ffu /* B, ES, SF, the six exception flags */

/* Written before each test instruction: its address and the next one's. */
u32 fault_eip, trap_eip;
#define AT "movl $1f, fault_eip\n\tmovl $2f, trap_eip\n1:\t"

static volatile u32 seen_count, seen_vec, seen_eip, seen_sw, seen_cr0;
static int nm_mode; /* 0: skip the instruction; 1: CLTS (and clear EM), retry it */

static void nm_handler(struct frame *f)
{
    seen_count++;
    seen_vec = f->vector;
    seen_eip = f->eip;
    seen_cr0 = read_cr0();
    if (nm_mode == 1) {
        asm volatile("clts");
        write_cr0(read_cr0() & ~CR0_EM);
    } else {
        f->eip = trap_eip;
    }
}

/* #MF: record the status word, clear the exception, retry the waiting
 * instruction that reported it (it then executes normally). */
u8 mf_env[28];
u32 fip_fdiv;
static volatile u32 seen_fip, seen_fop;

static void mf_handler(struct frame *f)
{
    u16 sw;
    seen_count++;
    seen_vec = f->vector;
    seen_eip = f->eip;
    /* FNSTENV masks all exceptions after storing: reload the stored CW. */
    asm volatile("fnstsw %0\n\tfnstenv mf_env\n\tfnclex\n\tfldcw mf_env" : "=m"(sw)::"memory");
    seen_sw = sw;
    seen_fip = *(u32 *)(mf_env + 12);
    seen_fop = *(u16 *)(mf_env + 18) & 0x7ff;
}

static void reset_seen(void) { seen_count = 0, seen_vec = seen_eip = seen_sw = 0xffffffff; }

/* check() for "exactly one exception of vector vec, reported at the
 * instruction (fault_eip)". */
static void check_fault(const char *name, u32 vec)
{
    tprintf("%s: vector=%u count=%u eip=%s\n", name, seen_count ? seen_vec : 0, seen_count,
            seen_eip == fault_eip ? "fault" : seen_eip == trap_eip ? "trap" : "other");
    if (seen_count != 1 || seen_vec != vec || seen_eip != fault_eip) {
        rt_failures++;
        tprintf("%s: FAIL expected vector=%u count=1 eip=fault\n", name, vec);
    }
    reset_seen();
}

static void check_none(const char *name)
{
    check(name, seen_count, 0);
    reset_seen();
}

static void set_cr0_fpu(u32 bits)
{
    write_cr0((read_cr0() & ~(CR0_MP | CR0_EM | CR0_TS | CR0_NE)) | bits);
}

/* ---- CR0.EM/MP/TS: SDM 3 2.5 and Table 2-2 ---------------------------- */

static void test_nm(void)
{
    u16 sw;
    u32 cr0;
    nm_mode = 0;
    reset_seen();

    /* EM=1: every x87 instruction (ESC opcodes D8-DF) raises #NM, a fault
     * (SDM 3 6.15 "Interrupt 7": saved CS:EIP point at the instruction). */
    set_cr0_fpu(CR0_EM | CR0_NE);
    asm volatile(AT "fld1\n2:" ::: "memory");
    check_fault("em1 fld1 -> #NM", 7);
    asm volatile(AT "fninit\n2:" ::: "memory");
    check_fault("em1 fninit -> #NM", 7);
    asm volatile(AT "fnstsw %%ax\n2:" ::: "eax", "memory");
    check_fault("em1 fnstsw ax -> #NM", 7);
    /* Table 2-2: EM=1 MP=0 TS=0: WAIT/FWAIT executes (only MP and TS
     * govern WAIT). */
    asm volatile(AT "fwait\n2:" ::: "memory");
    check_none("em1 mp0 ts0 fwait executes");
    /* EM=1 MP=1 TS=0: WAIT executes. */
    set_cr0_fpu(CR0_EM | CR0_MP | CR0_NE);
    asm volatile(AT "fwait\n2:" ::: "memory");
    check_none("em1 mp1 ts0 fwait executes");
    /* EM=1 MP=1 TS=1: WAIT raises #NM. */
    set_cr0_fpu(CR0_EM | CR0_MP | CR0_TS | CR0_NE);
    asm volatile(AT "fwait\n2:" ::: "memory");
    check_fault("em1 mp1 ts1 fwait -> #NM", 7);

    /* TS=1 MP=0: x87 instructions #NM, WAIT executes. */
    set_cr0_fpu(CR0_TS | CR0_NE);
    asm volatile(AT "fld1\n2:" ::: "memory");
    check_fault("ts1 mp0 fld1 -> #NM", 7);
    asm volatile(AT "fnclex\n2:" ::: "memory");
    check_fault("ts1 mp0 fnclex -> #NM", 7);
    asm volatile(AT "fwait\n2:" ::: "memory");
    check_none("ts1 mp0 fwait executes");
    /* TS=1 MP=1: both raise #NM. */
    set_cr0_fpu(CR0_TS | CR0_MP | CR0_NE);
    asm volatile(AT "fwait\n2:" ::: "memory");
    check_fault("ts1 mp1 fwait -> #NM", 7);
    asm volatile(AT "fnstcw %0\n2:" : "=m"(sw)::"memory");
    check_fault("ts1 mp1 fnstcw -> #NM", 7);
    /* TS=0 MP=1 EM=0: everything executes. */
    set_cr0_fpu(CR0_MP | CR0_NE);
    asm volatile(AT "fninit\n\tfwait\n2:" ::: "memory");
    check_none("mp1 ts0 executes");

    /* CLTS clears CR0.TS and nothing else (SDM 2 CLTS). */
    set_cr0_fpu(CR0_TS | CR0_MP | CR0_NE);
    asm volatile("clts");
    cr0 = read_cr0();
    check("clts clears ts", cr0 & (CR0_TS | CR0_MP | CR0_EM | CR0_NE), CR0_MP | CR0_NE);

    /* The lazy-FPU idiom: the #NM handler does CLTS and returns to the
     * faulting instruction, which then executes (a fault: restartable). */
    nm_mode = 1;
    set_cr0_fpu(CR0_TS | CR0_MP | CR0_NE);
    asm volatile("fninit" ::: "memory"); /* #NM, handler CLTS, retried */
    check("lazy: fninit faulted once", seen_count, 1);
    reset_seen();
    asm volatile(AT "fld1\n\tfistps %0\n2:" : "=m"(sw)::"memory");
    check("lazy: then fld1/fistp without #NM", seen_count, 0);
    check("lazy: fld1 stored 1", sw, 1);
    check("lazy: cr0.ts clear", read_cr0() & CR0_TS, 0);
    nm_mode = 0;
    reset_seen();
    set_cr0_fpu(CR0_MP | CR0_NE);
}

/* ---- FNINIT state: SDM 2 FINIT/FNINIT, SDM 1 Table 8-? ----------------- */

u8 env[108], env2[108];
static u16 e16(const u8 *p, int off) { return *(const u16 *)(p + off); }
static u32 e32(const u8 *p, int off) { return *(const u32 *)(p + off); }

static void test_fninit(void)
{
    u16 cw, sw;
    /* Dirty everything first: RC/PC changed, a register pushed, PE. */
    u16 dirty = 0x0c60 | 0x3f;
    asm volatile("fldcw %2\n\tfldpi\n\tfld1\n\tfdiv %%st(1), %%st\n\tfninit\n\t"
                 "fnstcw %0\n\tfnstsw %1\n\tfnstenv env"
                 : "=m"(cw), "=m"(sw) : "m"(dirty) : "memory");
    /* FNINIT: CW = 037FH (all masked, PC 64 bits, RC nearest), SW = 0
     * (TOP 0), TW = FFFFH (all empty), FIP/FDP/FOP and FCS/FDS = 0. */
    check("fninit cw", cw, 0x037f);
    check("fninit sw", sw, 0);
    check("fninit tw (fnstenv)", e16(env, 8), 0xffff);
    check("fninit fip", e32(env, 12), 0);
    check("fninit fcs", e16(env, 16), 0);
    check("fninit fop", e16(env, 18) & 0x7ff, 0);
    check("fninit fdp", e32(env, 20), 0);
    check("fninit fds", e16(env, 24), 0);
}

/* ---- unmasked exceptions and #MF: SDM 1 8.7, SDM 3 6.15 Int 16 ---------- */

u8 smem[8];

static void test_mf(void)
{
    u16 sw, cw_unmask_ze = 0x037b, cw_unmask_ie = 0x037e, cw_unmask_oe = 0x0377;
    u16 one;
    reset_seen();
    set_cr0_fpu(CR0_MP | CR0_NE);

    /* Divide by zero with ZM=0: FDIV does not fault itself; it sets ZE, ES
     * and B (SDM 1 8.4/8.7: ES is set when an unmasked flag is set; B
     * mirrors ES) and leaves the destination unchanged (SDM 1 8.5.3: "If
     * the divide-by-zero exception is not masked ... the operands are not
     * changed"). The no-wait FNSTSW does not raise it. */
    asm volatile("fninit\n\tfldcw %1\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\t"
                 "fnstsw %0" : "=m"(sw) : "m"(cw_unmask_ze) : "memory");
    check("unmasked ze: no exception at fdiv/fnstsw", seen_count, 0);
    check("unmasked ze: sw ze es b", sw & SW_FLAGS, SW_B | SW_ES | SW_ZE);
    check("unmasked ze: top 6", (sw & SW_TOP) >> 11, 6);
    /* The next waiting x87 instruction (FLD1 here) raises #MF (vector 16)
     * before it executes: a fault, saved EIP = that instruction (SDM 3
     * 6.15 Int 16 "the saved contents of CS and EIP point to the
     * floating-point or WAIT/FWAIT instruction that was about to be
     * executed"). The handler's FNSTSW still sees ZE|ES|B; after its FNCLEX
     * the retried FLD1 executes. */
    asm volatile(AT "fld1\n2:\tfnstsw %0" : "=m"(sw)::"memory");
    check_fault("unmasked ze: #MF at next fld1", 16);
    /* Stack now: the retried FLD1's 1, FDIV's destination unchanged (1),
     * the zero divisor. */
    {
        u16 r0, r1, r2;
        asm volatile("fistps %0\n\tfistps %1\n\tfistps %2\n\tfninit"
                     : "=m"(r0), "=m"(r1), "=m"(r2)::"memory");
        check("unmasked ze: retried fld1 pushed 1", r0, 1);
        check("unmasked ze: fdiv destination kept 1", r1, 1);
        check("unmasked ze: divisor 0 below", r2, 0);
    }

    /* The handler's view of the status word, kept this time. */
    asm volatile("fninit\n\tfldcw %0\n\tfldz\n\tfld1\n\tmovl $1f, fip_fdiv\n1:\t"
                 "fdiv %%st(1), %%st" ::"m"(cw_unmask_ze) : "memory");
    asm volatile(AT "fwait\n2:" ::: "memory");
    {
        u32 hsw = seen_sw, hfip = seen_fip, hfop = seen_fop;
        check_fault("unmasked ze: #MF at fwait", 16);
        check("unmasked ze: handler saw ze es b", hsw & SW_FLAGS, SW_B | SW_ES | SW_ZE);
        /* The handler's FNSTENV points at the instruction that caused the
         * exception, not the FWAIT that reported it (SDM 1 8.1.8: FIP/FOP
         * are those of the last non-control instruction; FWAIT is a
         * control instruction): FDIV ST(0),ST(1) = D8 F1 -> FOP 0x0F1. */
        check("unmasked ze: handler's fip = the fdiv", hfip, fip_fdiv);
        check("unmasked ze: handler's fop = fdiv st,st(1)", hfop, 0x0f1);
    }
    asm volatile("fnstsw %0\n\tfninit" : "=m"(sw)::"memory");
    check("unmasked ze: fnclex in handler cleared the flags", sw & SW_FLAGS, 0);

    /* The destination of the faulting FDIV is unchanged: ST(0) is still 1. */
    asm volatile("fninit\n\tfldcw %1\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\tfnclex\n\t"
                 "fistps %0\n\tfninit" : "=m"(one) : "m"(cw_unmask_ze) : "memory");
    check("unmasked ze: destination unchanged", one, 1);

    /* No-wait instructions do not raise the pending exception (SDM 1 8.3.11
     * and 8.7: FNINIT, FNCLEX, FNSTSW, FNSTCW, FNSTENV, FNSAVE). */
    reset_seen();
    asm volatile("fninit\n\tfldcw %1\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\t"
                 "fnstcw %0\n\tfnstsw %%ax\n\tfnstsw %0\n\tfnstenv env\n\tfnclex\n\tfwait\n\tfld1\n\tfninit"
                 : "=m"(sw) : "m"(cw_unmask_ze) : "eax", "memory");
    check("no-wait: fnstcw fnstsw fnstenv fnclex do not raise", seen_count, 0);
    /* FNSTENV stores the environment, then masks every exception (SDM 2
     * FSTENV/FNSTENV): the stored CW has ZM clear, the stored SW ES|B|ZE. */
    check("fnstenv stored cw (zm clear)", e16(env, 0), 0x037b);
    check("fnstenv stored sw flags", e16(env, 4) & SW_FLAGS, SW_B | SW_ES | SW_ZE);
    asm volatile("fninit\n\tfldcw %1\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\t"
                 "fnstenv env\n\tfnstcw %0\n\tfnclex\n\tfninit"
                 : "=m"(sw) : "m"(cw_unmask_ze) : "memory");
    check("fnstenv masks all exceptions afterwards", sw, 0x037f);
    check("no-wait: fnstenv then fnclex: nothing raised", seen_count, 0);
    asm volatile("fninit\n\tfldcw %0\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\t"
                 "fnsave env\n\tfld1\n\tfninit" ::"m"(cw_unmask_ze) : "memory");
    /* FNSAVE reinitialises the FPU (as FNINIT): nothing is pending after it. */
    check("no-wait: fnsave then fld1: nothing raised", seen_count, 0);
    asm volatile("fninit\n\tfldcw %0\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\t"
                 "fninit\n\tfld1\n\tfninit" ::"m"(cw_unmask_ze) : "memory");
    check("no-wait: fninit discards it", seen_count, 0);
    /* FRSTOR of that saved image brings the pending exception back: the
     * next waiting instruction after it raises #MF. */
    asm volatile("fninit\n\tfrstor env" ::: "memory");
    check("frstor of a pending state: not raised by frstor itself", seen_count, 0);
    asm volatile(AT "fld1\n2:\tfninit" ::: "memory");
    check_fault("frstor of a pending state: #MF at next fld1", 16);

    /* FLDCW clearing the mask of a flag already set sets ES: the next
     * waiting instruction raises #MF (SDM 2 FLDCW). */
    asm volatile("fninit\n\tfldz\n\tfld1\n\tfdiv %%st(1), %%st\n\tfldcw %0" ::"m"(cw_unmask_ze) : "memory");
    asm volatile(AT "fwait\n2:\tfninit" ::: "memory");
    check_fault("fldcw unmasking a set flag: #MF at fwait", 16);

    /* The unmasked store case: FST/FIST to memory with an unmasked IE
     * (SDM 1 8.5.1.2): the destination is not written and TOP stays as it
     * was (FISTP does not pop). */
    *(u32 *)smem = 0xdeadbeef;
    static const u32 snan80[3] = { 0x00000001, 0x80000000, 0x7fff }; /* SNaN */
    asm volatile("fninit\n\tfldcw %1\n\tfldt %2\n\tfsts smem\n\tfnstsw %0\n\tfnclex\n\tfninit"
                 : "=m"(sw) : "m"(cw_unmask_ie), "m"(snan80) : "memory");
    check("unmasked ie: fst m32 of snan leaves memory", *(u32 *)smem, 0xdeadbeef);
    check("unmasked ie: fst sw ie es b", sw & SW_FLAGS, SW_B | SW_ES | SW_IE);
    static const u32 big80[3] = { 0, 0x80000000, 0x4040 }; /* 2^65 */
    asm volatile("fninit\n\tfldcw %1\n\tfldt %2\n\tfistpl smem\n\tfnstsw %0\n\tfnclex\n\tfninit"
                 : "=m"(sw) : "m"(cw_unmask_ie), "m"(big80) : "memory");
    check("unmasked ie: fistp m32 out of range leaves memory", *(u32 *)smem, 0xdeadbeef);
    check("unmasked ie: fistp does not pop (top 7)", (sw & SW_TOP) >> 11, 7);
    check("unmasked ie: fistp sw ie es b", sw & SW_FLAGS, SW_B | SW_ES | SW_IE);
    check("unmasked ie: nothing raised by fnstsw/fnclex", seen_count, 0);
    /* Unmasked overflow on a store to memory: nothing is stored (SDM 1
     * 8.5.4.2). OE and PE? only OE is required; check OE|ES|B. */
    static const u32 max80[3] = { 0xffffffff, 0xffffffff, 0x7ffe };
    asm volatile("fninit\n\tfldcw %1\n\tfldt %2\n\tfsts smem\n\tfnstsw %0\n\tfnclex\n\tfninit"
                 : "=m"(sw) : "m"(cw_unmask_oe), "m"(max80) : "memory");
    check("unmasked oe: fst m32 of max leaves memory", *(u32 *)smem, 0xdeadbeef);
    check("unmasked oe: sw oe es b", sw & (SW_B | SW_ES | SW_OE), SW_B | SW_ES | SW_OE);
    reset_seen();
}

/* ---- pointers: SDM 1 8.1.8-8.1.10, Figures 8-9..8-12 -------------------- */

u8 mem64[8];
u32 fip_a, fip_b;

static void test_pointers(void)
{
    const u32 cs = SEL_KCODE, ds = SEL_KDATA; /* the runtime's CS and DS */
    *(u32 *)mem64 = 0;
    *(u32 *)(mem64 + 4) = 0x3ff00000; /* 1.0 */

    /* FLD m64 (DD /0, ModRM 05 = disp32): FOP = (DD & 7) << 8 | 05 = 0x505
     * (SDM 1 8.1.9: the low 3 bits of the first opcode byte and the ModRM
     * byte). FIP = its offset, FCS = CS; FDP = &mem64, FDS = DS. The
     * control instructions after it (FNSTCW, FNCLEX, FLDCW, FNSTSW) do not
     * change them (SDM 1 8.1.8). */
    u16 cw;
    asm volatile("fninit\n\tmovl $1f, fip_a\n1:\tfldl mem64\n\tfnstcw %0\n\tfnclex\n\tfldcw %0\n\t"
                 "fnstsw %%ax\n\tfnstenv env\n\tfnsave env2"
                 : "=m"(cw)::"eax", "memory");
    check("fnstenv32 fip (fld m64)", e32(env, 12), fip_a);
    check("fnstenv32 fcs", e16(env, 16), cs);
    check("fnstenv32 fop (fld m64)", e16(env, 18) & 0x7ff, 0x505);
    check("fnstenv32 fdp", e32(env, 20), (u32)mem64);
    check("fnstenv32 fds", e16(env, 24), ds);
    check("fnstenv32 tw (one valid)", e16(env, 8), 0x3fff);
    check("fnsave32 fip", e32(env2, 12), fip_a);
    check("fnsave32 fcs", e16(env2, 16), cs);
    check("fnsave32 fop", e16(env2, 18) & 0x7ff, 0x505);
    check("fnsave32 fdp", e32(env2, 20), (u32)mem64);
    check("fnsave32 fds", e16(env2, 24), ds);
    check("fnsave32 st0 = 1.0 (exponent)", e16(env2, 28 + 8), 0x3fff);
    check("fnsave32 st0 = 1.0 (significand hi)", e32(env2, 28 + 4), 0x80000000);

    /* A register instruction: FSQRT (D9 FA) -> FOP 0x1FA, FIP = its offset.
     * FDP is not checked (no memory operand: SDM leaves it unspecified). */
    asm volatile("fninit\n\tfldl mem64\n\tmovl $1f, fip_b\n1:\tfsqrt\n\tfnstenv env" ::: "memory");
    check("fnstenv32 fip (fsqrt)", e32(env, 12), fip_b);
    check("fnstenv32 fop (fsqrt)", e16(env, 18) & 0x7ff, 0x1fa);
    /* FADD m32 with a SIB/disp8 form: D8 44 24 xx? Use FIADD m16 through
     * EBX: DE /0 with ModRM 03 ([ebx]) -> FOP = 0x603, FDP = EBX. */
    asm volatile("fninit\n\tfld1\n\tmovl $1f, fip_b\n1:\tfiadds (%%ebx)\n\tfnstenv env"
                 ::"b"(mem64 + 2) : "memory");
    check("fnstenv32 fip (fiadd m16)", e32(env, 12), fip_b);
    check("fnstenv32 fop (fiadd m16 [ebx])", e16(env, 18) & 0x7ff, 0x603);
    check("fnstenv32 fdp ([ebx])", e32(env, 20), (u32)mem64 + 2);

    /* 16-bit format (operand-size prefix 66; protected mode, Figure 8-11):
     * 0 CW, 2 SW, 4 TW, 6 FIP[15:0], 8 FCS, 10 FDP[15:0], 12 FDS; no FOP. */
    for (int i = 0; i < 108; i++)
        env[i] = 0xee;
    asm volatile("fninit\n\tmovl $1f, fip_a\n1:\tfldl mem64\n\t.byte 0x66\n\tfnstenv env" ::: "memory");
    check("fnstenv16 cw", e16(env, 0), 0x037f);
    check("fnstenv16 sw (top 7)", e16(env, 2), 0x3800);
    check("fnstenv16 tw", e16(env, 4), 0x3fff);
    check("fnstenv16 fip", e16(env, 6), fip_a & 0xffff);
    check("fnstenv16 fcs", e16(env, 8), cs);
    check("fnstenv16 fdp", e16(env, 10), (u32)mem64 & 0xffff);
    check("fnstenv16 fds", e16(env, 12), ds);
    check("fnstenv16 writes 14 bytes only", env[14], 0xee);
    for (int i = 0; i < 108; i++)
        env2[i] = 0xee;
    asm volatile("fninit\n\tfldl mem64\n\tfldz\n\tmovl $1f, fip_a\n1:\tfldl mem64\n\t.byte 0x66\n\tfnsave env2"
                 ::: "memory");
    check("fnsave16 fip", e16(env2, 6), fip_a & 0xffff);
    check("fnsave16 fdp", e16(env2, 10), (u32)mem64 & 0xffff);
    /* R7 valid 00, R6 zero 01, R5 valid 00, rest empty: 0x13FF */
    check("fnsave16 tw (valid zero valid)", e16(env2, 4), 0x13ff);
    check("fnsave16 st0 at offset 14 = 1.0", e16(env2, 14 + 8), 0x3fff);
    check("fnsave16 st1 at offset 24 = +0", e16(env2, 24 + 8), 0);
    check("fnsave16 st2 at offset 34 = 1.0", e32(env2, 34 + 4), 0x80000000);
    check("fnsave16 writes 94 bytes only", env2[94], 0xee);

    /* FLDENV/FRSTOR load the pointers: what FNSTENV stores right after
     * (no non-control instruction in between) is what was loaded. */
    for (int i = 0; i < 28; i++)
        env[i] = 0;
    *(u16 *)(env + 0) = 0x037f;
    *(u16 *)(env + 4) = 0x0000;
    *(u16 *)(env + 8) = 0xffff;
    *(u32 *)(env + 12) = 0x12345678;  /* FIP */
    *(u16 *)(env + 16) = 0x0008;      /* FCS */
    *(u16 *)(env + 18) = 0x04d9;      /* FOP: DC D9... any 11-bit value */
    *(u32 *)(env + 20) = 0x9abcdef0;  /* FDP */
    *(u16 *)(env + 24) = 0x0010;      /* FDS */
    asm volatile("fninit\n\tfldenv env\n\tfnstenv env2" ::: "memory");
    check("fldenv32 fip", e32(env2, 12), 0x12345678);
    check("fldenv32 fcs", e16(env2, 16), 0x0008);
    check("fldenv32 fop", e16(env2, 18) & 0x7ff, 0x4d9);
    check("fldenv32 fdp", e32(env2, 20), 0x9abcdef0);
    check("fldenv32 fds", e16(env2, 24), 0x0010);
    /* 16-bit FLDENV: 16-bit FIP/FDP offsets (upper bits 0). */
    for (int i = 0; i < 14; i++)
        env[i] = 0;
    *(u16 *)(env + 0) = 0x027f;
    *(u16 *)(env + 4) = 0xffff;
    *(u16 *)(env + 6) = 0x4321;
    *(u16 *)(env + 8) = 0x0008;
    *(u16 *)(env + 10) = 0x8765;
    *(u16 *)(env + 12) = 0x0010;
    asm volatile("fninit\n\t.byte 0x66\n\tfldenv env\n\tfnstenv env2" ::: "memory");
    check("fldenv16 cw", e16(env2, 0), 0x027f);
    check("fldenv16 fip", e32(env2, 12), 0x4321);
    check("fldenv16 fdp", e32(env2, 20), 0x8765);
    check("fldenv16 fcs", e16(env2, 16), 0x0008);
    check("fldenv16 fds", e16(env2, 24), 0x0010);
    /* FRSTOR (32-bit) restores the pointers and the registers. */
    asm volatile("fninit\n\tfld1\n\tmovl $1f, fip_a\n1:\tfldl mem64\n\tfnsave env2\n\tfldz\n\t"
                 "fldz\n\tfrstor env2\n\tfnstenv env" ::: "memory");
    check("frstor32 fip", e32(env, 12), fip_a);
    check("frstor32 fop", e16(env, 18) & 0x7ff, 0x505);
    check("frstor32 fdp", e32(env, 20), (u32)mem64);
    check("frstor32 sw (top 6)", e16(env, 4), 0x3000);
    check("frstor32 tw", e16(env, 8), 0x0fff);
    /* FRSTOR with the 66 prefix reads the 94-byte 16-bit image (Figure
     * 8-11 + the registers from offset 14): ST(0) = 1.0, TOP 7, R7 valid,
     * FIP 0x1111 and FDP 0x2222 (16-bit offsets, upper bits 0). */
    for (int i = 0; i < 108; i++)
        env2[i] = 0;
    *(u16 *)(env2 + 0) = 0x037f;
    *(u16 *)(env2 + 2) = 0x3800;
    *(u16 *)(env2 + 4) = 0x3fff;
    *(u16 *)(env2 + 6) = 0x1111;
    *(u16 *)(env2 + 8) = SEL_KCODE;
    *(u16 *)(env2 + 10) = 0x2222;
    *(u16 *)(env2 + 12) = SEL_KDATA;
    *(u32 *)(env2 + 14 + 4) = 0x80000000;
    *(u16 *)(env2 + 14 + 8) = 0x3fff;
    {
        u16 one = 0;
        asm volatile("fninit\n\t.byte 0x66\n\tfrstor env2\n\tfnstenv env\n\tfistps %0"
                     : "=m"(one)::"memory");
        check("frstor16 fip", e32(env, 12), 0x1111);
        check("frstor16 fdp", e32(env, 20), 0x2222);
        check("frstor16 sw", e16(env, 4), 0x3800);
        check("frstor16 tw", e16(env, 8), 0x3fff);
        check("frstor16 st0 = 1", one, 1);
    }
    asm volatile("fninit" ::: "memory");
}

/* ---- the tag word: SDM 1 8.1.7 (valid 00, zero 01, special 10, empty 11) - */

const u32 t_inf[3] = { 0, 0x80000000, 0x7fff };
const u32 t_den[3] = { 1, 0, 0x0000 };
const u32 t_unn[3] = { 0, 0x40000000, 0x4000 };
const u32 t_psden[3] = { 0, 0x80000000, 0x0000 };
const u32 t_nzero[3] = { 0, 0, 0x8000 };
const u32 t_nan[3] = { 0, 0xc0000000, 0xffff };

static void test_tags(void)
{
    /* After FNINIT TOP=0; six pushes fill R7..R2:
     *   R7 = 1.0 (valid 00), R6 = +0 (zero 01), R5 = +inf (special 10),
     *   R4 = denormal (special 10), R3 = unnormal (special 10),
     *   R2 = pseudo-denormal (special 10); then FFREE ST(1) empties R3.
     * TW = R7..R0 = 00 01 10 10 11 10 11 11 = 0x1AEF. */
    asm volatile("fninit\n\tfld1\n\tfldz\n\tfldt t_inf\n\tfldt t_den\n\tfldt t_unn\n\t"
                 "fldt t_psden\n\tffree %%st(1)\n\tfnstenv env\n\tfnsave env2" ::: "memory");
    check("tags fnstenv", e16(env, 8), 0x1aef);
    check("tags fnsave", e16(env2, 8), 0x1aef);
    check("tags top 2", (e16(env, 4) & SW_TOP) >> 11, 2);
    /* -0 is zero, a NaN special, max/min normals valid. */
    asm volatile("fninit\n\tfldt t_nzero\n\tfldt t_nan\n\tfnstenv env" ::: "memory");
    /* R7 = -0 (01), R6 = NaN (10), rest empty: 01 10 11 11 11 11 11 11 */
    check("tags -0 and nan", e16(env, 8), 0x6fff);
    /* FLDENV keeps only "empty or not" from the tag word and recomputes
     * the rest from the registers (SDM 2 FLDENV/FRSTOR; SDM 1 8.1.7): load
     * TW 0000 (all "valid") over R7 = -0, R6 = NaN, R0..R5 with the values
     * of the first test (R5 inf, R4 den, R3 unnormal, R2 pseudo-denormal,
     * R1/R0 unknown: tagged empty (11) in the loaded word, so 11). */
    asm volatile("fninit\n\tfld1\n\tfldz\n\tfldt t_inf\n\tfldt t_den\n\tfldt t_unn\n\t"
                 "fldt t_psden\n\tfninit\n\tfldt t_nzero\n\tfldt t_nan\n\tfnstenv env" ::: "memory");
    *(u16 *)(env + 8) = 0x000f; /* R7..R2 "valid", R1 R0 empty */
    asm volatile("fninit\n\tfldenv env\n\tfnstenv env2\n\tfninit" ::: "memory");
    /* R7 -0 01, R6 nan 10, R5 inf 10, R4 den 10, R3 unnormal 10,
     * R2 pseudo-denormal 10, R1 R0 empty 11: 01 10 10 10 10 10 11 11 */
    check("fldenv recomputes tags", e16(env2, 8), 0x6aaf);
    asm volatile("fninit" ::: "memory");
}

void kmain(u32 magic, u32 mbi)
{
    set_handler(7, nm_handler);
    set_handler(16, mf_handler);
    set_cr0_fpu(CR0_MP | CR0_NE);
    asm volatile("fninit");
    test_fninit();
    test_nm();
    test_mf();
    test_pointers();
    test_tags();
    set_cr0_fpu(CR0_MP | CR0_NE);
    asm volatile("fninit");
}
