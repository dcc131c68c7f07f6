/* shadow: a ring-0 kernel on its own segments, its own LDT and its own IDT,
 * for a shadowing trap-and-emulate monitor (issue 15).
 *
 * The classical monitors (VMware's, Xen's on 32-bit x86) ran the guest
 * kernel at CPL 1 on shadow descriptor tables: the guest's DPL-0
 * descriptors compressed to DPL 1, limits cut below the monitor's region
 * at the top of the linear address space, the guest's IDT shadowed by
 * gates into the monitor, which reflects each exception or interrupt to
 * the guest's handler with the frame ring 0 would have got, and delivers
 * device interrupts only while the guest's virtual IF is set. This kernel
 * shows that a guest kernel runs correctly that way on its own
 * descriptors, until a sensitive instruction misleads it, and not before:
 *
 *   1. its own GDT (desc.c's big one) with DPL-0 code and data: DS, ES, SS
 *      and GS loaded with a flat data selector (MOV), FS with a data
 *      segment whose base is a buffer and whose limit is 0xff bytes (POP),
 *      a far JMP to its own code selector; stores and loads through FS
 *      land at base + offset, as seen through the flat segment;
 *   2. an LDT (LLDT) holding a based DPL-0 data segment, loaded into GS
 *      with a TI=1 selector and accessed the same way;
 *   3. its own IDT (LIDT) of DPL-0 gates into its own stubs: #DE (the
 *      handler skips the DIV), #BP (INT3: saved EIP after it), #GP(0) from
 *      a far JMP past a small code segment's limit, #GP(sel) from a load
 *      past the LDT's limit, INT 0x40 through a DPL-0 gate (a value in
 *      EAX, one out), PIT ticks through the PIC while it halts with IF set,
 *      and a CLI window in which no tick arrives (one does after STI);
 *   4. last, after the line `sensitive: begin`: the sensitive unprivileged
 *      instructions whose answers a CPU running it at CPL 1 gets wrong,
 *      each printed as a value (not checked): the RPL of CS read with MOV,
 *      LSL and LAR (ZF and DPL) of its flat DPL-0 data selector, LSL of the
 *      small based one, the base SGDT stores and whether it is the GDT the
 *      kernel loaded.
 *
 * Limits on ordinary data accesses are never exceeded: QEMU TCG does not
 * check them (README "Not tested"), so the #GP from a limit comes from a
 * far JMP, which TCG checks, and from a selector past the LDT's limit.
 * Nothing in sections 1-3 reads CS or SS, PUSHF, SGDT/SIDT/SLDT/STR/SMSW,
 * LAR/LSL/VERR/VERW or a frame's raw CS (only its index: the RPL a CPU at
 * CPL 1 puts there is not the guest's business); nothing prints a tick
 * count. */
#include "desc.h"

#define SEL_CODE 0x30  /* GDT 6: code, DPL 0, flat, 32-bit */
#define SEL_FLAT 0x38  /* GDT 7: data, DPL 0, flat 4 GiB (G=1) */
#define SEL_BASED 0x40 /* GDT 8: data, DPL 0, base = based_buf, 0xff bytes */
#define SEL_SMALL 0x48 /* GDT 9: code, DPL 0, base 0, 0xfff bytes */
#define SEL_LDT 0x50   /* GDT 10: the LDT */
#define LSEL_DATA 0x04 /* LDT 0: data, DPL 0, base = ldt_buf, 0x3f bytes */
#define LSEL_PAST 0x0c /* LDT 1: past the LDT's limit */

#define STR(x) #x
#define XSTR(x) STR(x)

#define BASED_LIMIT 0xff
#define SMALL_LIMIT 0xfff
#define SMALL_PAST 0x2000 /* a far JMP target offset past SMALL_LIMIT */
#define LDT_DATA_LIMIT 0x3f

#define VEC_DE 0
#define VEC_BP 3
#define VEC_GP 13
#define VEC_IRQ0 0x20
#define VEC_SOFT 0x40

#define PIT_DIVISOR 1193     /* ~1 kHz */
#define TICKS_WANTED 5
#define HLT_LIMIT 1000       /* HLTs allowed for TICKS_WANTED ticks */
#define SPIN_LIMIT 20000000u /* bound on a spin waiting for a tick */
#define CLI_SPIN 2000000u    /* the CLI window: many tick periods */

static u64 ldt[1] __attribute__((aligned(8)));
static u64 idt[256] __attribute__((aligned(8)));
static u32 based_buf[BASED_LIMIT / 4 + 1] __attribute__((aligned(16)));
static u32 ldt_buf[LDT_DATA_LIMIT / 4 + 1] __attribute__((aligned(16)));

/* ---- the kernel's own interrupt stubs ---------------------------------- */

/* 256 stubs 16 bytes apart build a struct frame (rt.h) and call
 * shadow_dispatch with the kernel's own flat data selector in DS and ES. */
extern char shadow_stubs[];
asm(".pushsection .text\n"
    ".balign 16\n"
    "shadow_stubs:\n"
    ".set vec, 0\n"
    ".rept 256\n"
    ".balign 16\n"
    ".if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) "
    "|| (vec == 14) || (vec == 17)\n"
    ".else\n"
    "pushl $0\n"
    ".endif\n"
    "pushl $vec\n"
    "jmp shadow_common\n"
    ".set vec, vec + 1\n"
    ".endr\n"
    "shadow_common:\n\t"
    "pushal\n\t"
    "pushl %ds\n\tpushl %es\n\tpushl %fs\n\tpushl %gs\n\t"
    "movw $" XSTR(SEL_FLAT) ", %ax\n\t"
    "movw %ax, %ds\n\tmovw %ax, %es\n\t"
    "cld\n\t"
    "pushl %esp\n\t"
    "call shadow_dispatch\n\t"
    "addl $4, %esp\n\t"
    "popl %gs\n\tpopl %fs\n\tpopl %es\n\tpopl %ds\n\t"
    "popal\n\t"
    "addl $8, %esp\n\t"
    "iret\n"
    ".popsection");

/* ---- handlers ------------------------------------------------------------ */

/* What a fault handler saw; a fault resumes at resume_eip. */
struct fault_rec {
    u32 count, vec, err, eip, own_cs;
};
static struct fault_rec fault;
static u32 resume_eip;
static volatile u32 ticks;
static u32 timer_if_clear; /* ticks whose frame had IF=0 */
static u32 timer_foreign;  /* ticks whose frame CS was not the kernel's */
static u32 soft_count, soft_eip, soft_if, soft_own_cs;
static u32 de_total, bp_total, gp_total;

/* The frame's CS names the kernel's code segment (its RPL is not looked
 * at: a CPU running the kernel at CPL 1 puts 1 there). */
static u32 own_cs(const struct frame *f) { return (f->cs & 0xfffc) == SEL_CODE; }

static void record(struct frame *f)
{
    fault.count++;
    fault.vec = f->vector;
    fault.err = f->err;
    fault.eip = f->eip;
    fault.own_cs = own_cs(f);
}

static void on_fault(struct frame *f) /* #DE, #GP: skip the instruction */
{
    record(f);
    f->eip = resume_eip;
    if (f->vector == VEC_DE)
        de_total++;
    else
        gp_total++;
}

static void on_bp(struct frame *f) /* a trap: EIP is already past INT3 */
{
    record(f);
    bp_total++;
}

static void on_soft(struct frame *f) /* INT 0x40: EAX -> 3 * EAX + 1 */
{
    soft_count++;
    soft_eip = f->eip;
    soft_if = (f->eflags & EFLAGS_IF) != 0;
    soft_own_cs = own_cs(f);
    f->eax = 3 * f->eax + 1;
}

static void on_timer(struct frame *f)
{
    ticks++;
    if (!(f->eflags & EFLAGS_IF))
        timer_if_clear++;
    if (!own_cs(f))
        timer_foreign++;
    pic_eoi(0);
}

static handler_fn handlers[256];

void shadow_dispatch(struct frame *f);
void shadow_dispatch(struct frame *f)
{
    if (handlers[f->vector & 0xff]) {
        handlers[f->vector & 0xff](f);
        return;
    }
    tprintf("unexpected: vector 0x%x err 0x%x eip 0x%x\n", f->vector, f->err, f->eip);
    rt_exit(EXIT_UNEXPECTED);
}

static u32 label_fault, label_next; /* the addresses of labels 1 and 2 */

/* One line per exception: vector, error code, where the saved EIP points
 * (`fault`: the instruction, `trap`: the next one). */
static void report(const char *name, u32 vec, u32 err, u32 trap)
{
    u32 want_eip = trap ? label_next : label_fault;
    const char *at = fault.eip == label_fault ? "fault" : fault.eip == label_next ? "trap" : "elsewhere";
    tprintf("%s: count=%u vector=%u err=0x%x eip=%s cs=%s\n", name, fault.count, fault.vec, fault.err, at,
            fault.own_cs ? "own" : "other");
    if (fault.count != 1 || fault.vec != vec || fault.err != err || fault.eip != want_eip || !fault.own_cs) {
        rt_failures++;
        tprintf("%s: FAIL\n", name);
    }
    fault.count = 0;
}

/* ---- 1. the kernel's own GDT and segments --------------------------------- */

static u16 read_ds(void) { u16 s; asm volatile("mov %%ds, %0" : "=r"(s)); return s; }
static u16 read_es(void) { u16 s; asm volatile("mov %%es, %0" : "=r"(s)); return s; }
static u16 read_fs(void) { u16 s; asm volatile("mov %%fs, %0" : "=r"(s)); return s; }
static u16 read_gs(void) { u16 s; asm volatile("mov %%gs, %0" : "=r"(s)); return s; }

static void own_gdt(void)
{
    gdt_big_init();
    desc_seg(gdt_big, SEL_CODE >> 3, 0, 0xfffff, 0x9b, 0xc);
    desc_seg(gdt_big, SEL_FLAT >> 3, 0, 0xfffff, 0x93, 0xc);
    desc_seg(gdt_big, SEL_BASED >> 3, (u32)based_buf, BASED_LIMIT, 0x93, 0x4);
    desc_seg(gdt_big, SEL_SMALL >> 3, 0, SMALL_LIMIT, 0x9b, 0x4);
    desc_seg(gdt_big, SEL_LDT >> 3, (u32)ldt, sizeof(ldt) - 1, 0x82, 0x0);
    asm volatile("ljmp %[code], $1f\n"
                 "1:\n\t"
                 "movw %[flat], %%ax\n\t"
                 "movw %%ax, %%ds\n\t"
                 "movw %%ax, %%es\n\t"
                 "movw %%ax, %%ss\n\t"
                 "movw %%ax, %%gs\n\t"
                 "pushl %[based]\n\t"
                 "popl %%fs"
                 :
                 : [code] "i"(SEL_CODE), [flat] "i"(SEL_FLAT), [based] "i"(SEL_BASED)
                 : "eax", "memory");
    tprintf("gdt: own, DPL-0 code 0x%x, flat data 0x%x, based data 0x%x\n", SEL_CODE, SEL_FLAT,
            SEL_BASED);
    check("ds", read_ds(), SEL_FLAT);
    check("es", read_es(), SEL_FLAT);
    check("fs", read_fs(), SEL_BASED);
    check("gs", read_gs(), SEL_FLAT);

    u32 got;
    asm volatile("movl %[v], %%fs:0x20" : : [v] "i"(0xb0b0cafe) : "memory");
    check("fs store lands at base+0x20", based_buf[0x20 / 4], 0xb0b0cafe);
    based_buf[0x10 / 4] = 0x5eed1234;
    asm volatile("movl %%fs:0x10, %0" : "=r"(got) : : "memory");
    check("fs load reads base+0x10", got, 0x5eed1234);
    asm volatile("movb $0xa5, %%fs:%c[lim]" : : [lim] "i"(BASED_LIMIT) : "memory");
    check("fs store at the limit lands at base+0xff", ((u8 *)based_buf)[BASED_LIMIT], 0xa5);
    asm volatile("movl %%ss:0x0(%1), %0" : "=r"(got) : "r"(&based_buf[0x20 / 4]) : "memory");
    check("ss load through the flat segment", got, 0xb0b0cafe);
}

/* ---- 2. an LDT ------------------------------------------------------------ */

static void own_ldt(void)
{
    desc_seg(ldt, LSEL_DATA >> 3, (u32)ldt_buf, LDT_DATA_LIMIT, 0x93, 0x4);
    lldt(SEL_LDT);
    u32 got;
    asm volatile("movw %w[sel], %%gs" : : [sel] "r"(LSEL_DATA) : "memory");
    check("gs from the ldt", read_gs(), LSEL_DATA);
    asm volatile("movl %[v], %%gs:0x8" : : [v] "i"(0x1d7da7a0) : "memory");
    check("gs store lands at ldt base+0x8", ldt_buf[0x8 / 4], 0x1d7da7a0);
    ldt_buf[0x3c / 4] = 0x0dd5eed5;
    asm volatile("movl %%gs:0x3c, %0" : "=r"(got) : : "memory");
    check("gs load reads ldt base+0x3c", got, 0x0dd5eed5);
}

/* ---- 3. an IDT, exceptions and interrupts ----------------------------------- */

static void own_idt(void)
{
    for (u32 v = 0; v < 256; v++)
        desc_gate(idt, v, SEL_CODE, (u32)shadow_stubs + 16 * v, 0x8e, 0);
    desc_gate(idt, VEC_BP, SEL_CODE, (u32)shadow_stubs + 16 * VEC_BP, 0x8f, 0);
    desc_gate(idt, VEC_SOFT, SEL_CODE, (u32)shadow_stubs + 16 * VEC_SOFT, 0x8f, 0);
    handlers[VEC_DE] = on_fault;
    handlers[VEC_GP] = on_fault;
    handlers[VEC_BP] = on_bp;
    handlers[VEC_SOFT] = on_soft;
    handlers[VEC_IRQ0] = on_timer;
    idt_load((u32)idt, sizeof(idt) - 1);
    tprintf("idt: own, DPL-0 gates into its own stubs\n");
}

/* Run insn (asm) so that a fault resumes right after it: label 1 is the
 * instruction, label 2 the next one, their addresses kept for report(). */
#define TRY(insn, ...)                                                        \
    asm volatile("movl $1f, %[lf]\n\tmovl $2f, %[ln]\n\tmovl $2f, %[r]\n"     \
                 "1:\t" insn "\n2:"                                            \
                 : [r] "=m"(resume_eip), [lf] "=m"(label_fault),                \
                   [ln] "=m"(label_next)                                        \
                 : __VA_ARGS__                                                \
                 : "memory")

static void exceptions(void)
{
    u32 zero = 0;
    TRY("divl %[z]", [z] "r"(zero), "a"(1), "d"(0));
    report("#DE div by zero", VEC_DE, 0, 0);
    TRY("int3", "i"(0)); /* (an unused operand: TRY needs one) */
    report("#BP int3", VEC_BP, 0, 1);
    TRY("ljmp %[s], %[o]", [s] "i"(SEL_SMALL), [o] "i"(SMALL_PAST));
    report("#GP far jmp past the small segment's limit", VEC_GP, 0, 0);
    TRY("movw %w[s], %%gs", [s] "r"(LSEL_PAST));
    report("#GP selector past the ldt limit", VEC_GP, LSEL_PAST, 0);
    check("gs kept after the faulting load", read_gs(), LSEL_DATA);

    u32 v;
    asm volatile("movl $1f, %[ln]\n\tint %[vec]\n1:"
                 : "=a"(v), [ln] "=m"(label_next)
                 : "a"(14), [vec] "i"(VEC_SOFT)
                 : "memory");
    check("int 0x40 result", v, 43);
    check("int 0x40 eip after int", soft_eip, label_next);
    check("int 0x40 cs own", soft_own_cs, 1);
    check("int 0x40 frame IF clear", soft_if, 0);
}

static void timer(void)
{
    pic_remap(VEC_IRQ0, VEC_IRQ0 + 8); /* all masked */
    pit_periodic(PIT_DIVISOR);
    pic_set_mask(0xfffe);
    sti();
    u32 halts = 0;
    while (ticks < TICKS_WANTED && halts < HLT_LIMIT) {
        asm volatile("hlt" ::: "memory");
        halts++;
    }
    check("timer ticks through hlt with IF set", ticks >= TICKS_WANTED, 1);

    u32 v;
    asm volatile("int %[vec]" : "=a"(v) : "a"(0), [vec] "i"(VEC_SOFT) : "memory");
    check("int 0x40 with IF set", v, 1);
    check("int 0x40 frame IF set", soft_if, 1);

    cli();
    u32 t0 = ticks;
    for (volatile u32 i = 0; i < CLI_SPIN; i++)
        ;
    check("no tick during the cli window", ticks == t0, 1);
    sti();
    WAIT_UNTIL("tick after sti", ticks != t0, SPIN_LIMIT);
    check("tick after sti", 1, 1);
    cli();
    pic_set_mask(0xffff);
    check("timer frames had IF set", timer_if_clear, 0);
    check("timer frames cs own", timer_foreign, 0);
    check("#DE taken", de_total, 1);
    check("#BP taken", bp_total, 1);
    check("#GP taken", gp_total, 2);
    check("int 0x40 taken", soft_count, 2);
}

/* ---- 4. sensitive instructions --------------------------------------------- */

struct dtr {
    u16 limit;
    u32 base;
} __attribute__((packed));

static void sensitive(void)
{
    tprintf("sensitive: begin\n");
    u16 cs;
    asm volatile("mov %%cs, %0" : "=r"(cs));
    kv_dec("cs rpl", cs & 3);

    /* A failing LSL or LAR (ZF=0) leaves its destination alone: preset so
     * that it reads as neither ring 0's answer nor the monitor's. */
    u32 limit = 0, ar = 0xffffffff;
    u8 zf;
    asm volatile("lsl %2, %0\n\tsetz %1" : "+r"(limit), "=q"(zf) : "r"((u32)SEL_FLAT) : "cc");
    kv_dec("lsl flat zf", zf);
    kv("lsl flat", limit);
    limit = 0;
    asm volatile("lsl %2, %0\n\tsetz %1" : "+r"(limit), "=q"(zf) : "r"((u32)SEL_BASED) : "cc");
    kv_dec("lsl based zf", zf);
    kv("lsl based", limit);
    asm volatile("lar %2, %0\n\tsetz %1" : "+r"(ar), "=q"(zf) : "r"((u32)SEL_FLAT) : "cc");
    kv_dec("lar flat zf", zf);
    kv_dec("lar flat dpl", (ar >> 13) & 3);

    struct dtr g;
    asm volatile("sgdt %0" : "=m"(g));
    kv("sgdt base", g.base);
    tprintf("sgdt is own gdt: %s\n", g.base == (u32)gdt_big ? "yes" : "no");
    tprintf("sensitive: end\n");
}

void kmain(u32 magic, u32 mbi)
{
    tprintf("shadow: a ring-0 kernel on its own GDT, LDT and IDT\n");
    own_gdt();
    own_ldt();
    own_idt();
    exceptions();
    timer();
    sensitive();
}
