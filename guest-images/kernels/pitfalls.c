/* pitfalls: what ring-0 code expects of the sensitive instructions, and
 * what the CPU running it actually does.
 *
 * Robin & Irvine (USENIX Security 2000) listed the x86 instructions that
 * are sensitive but not privileged: run deprivileged (as a pre-VT-x
 * trap-and-emulate monitor runs a guest kernel, at CPL 1) they do not trap,
 * they quietly give another answer: SGDT/SIDT/SLDT/STR/SMSW reveal the
 * monitor's tables and state, PUSHF shows the real IF and POPF/IRET cannot
 * change it, PUSH CS and MOV from SS show the real RPL, LAR/LSL/VERR/VERW
 * judge descriptors against the real CPL, far CALL/JMP/RET and INT n see
 * selectors and stacks of the real ring. `bt86 pitfalls` runs this kernel
 * under every engine and tabulates what it prints.
 *
 * The kernel itself knows nothing about engines. It runs at ring 0 with a
 * GDT, LDT, TSS and IDT of its own; for each check it prints
 *
 *     PITFALL <name> | <expectation> | <observed>
 *
 * the expectation computed from its own knowledge (the tables it loaded,
 * the descriptor bytes it wrote, CR0 read with MOV), the observation
 * formatted by the same function, so on a faithful ring-0 CPU the two are
 * byte-identical. The last three rows are controls: privileged
 * instructions, which a trap-and-emulate monitor gets right.
 *
 * Every check runs armed (run_armed in pitfalls_asm.S): an exception
 * abandons it, resuming the kernel on the stack saved before the check with
 * the kernel's own selectors, and the row shows the exception, e.g.
 * `#GP(0x0010)`. Between checks IF=0, set with CLI (never POPF);
 * PUSHF/POPF appear only in the checks about them. Every wait for a timer
 * tick is a bounded spin, never HLT. No selector read back from the CPU is
 * relied on (nor reloaded), except for printing it. The kernel always
 * exits with status 1 (pass): the table is the result. */
#include "desc.h"

#define SEL_CONF 0x30 /* GDT 6: conforming code, DPL 0, flat */
#define SEL_LDT 0x38  /* GDT 7: the LDT */
#define GDT_COUNT 8

#define VEC_IRQ0 0x20
#define VEC_SYSCALL 0x80 /* interrupt gate, DPL 3: ring 3 comes back */
#define VEC_PROBE 0x81   /* trap gate, DPL 3: the `int` check */

#define PIT_DIVISOR 100     /* ~84 us between ticks (~84k bt86 instructions) */
#define PIC_MASK_RUN 0xfffe /* IRQ0 only */
#define PIC_MASK_PROBE 0xfa /* the `in` check writes this to the master IMR */
#define SPIN_LIMIT 4000000u /* bound on a wait for a tick (ring 0 and 3) */
#define SPIN_FIXED 1000000u /* the `cli` check's spin: many tick periods */
#define LAR_DEFINED 0x00f0ff00 /* the access-rights bits LAR defines */

/* ---- the kernel's own tables --------------------------------------------- */

static u64 gdt[GDT_COUNT] __attribute__((aligned(8)));
static u64 ldt[1] __attribute__((aligned(8)));
static u64 idt[256] __attribute__((aligned(8)));
static struct tss tss __attribute__((aligned(128)));
static u8 ring0_stack[4096] __attribute__((aligned(16)));
static u8 ring3_stack[4096] __attribute__((aligned(16)));

struct dtr {
    u16 limit;
    u32 base;
} __attribute__((packed));

/* pitfalls_asm.S */
extern char fault_stubs[]; /* 32 stubs, 16 bytes apart */
extern char irq0_entry[], int80_entry[], int81_entry[], conf_callee[];
int run_armed(void (*fn)(u32 *obs), u32 *obs);
void enter_ring3(u32 esp) __attribute__((noreturn));

/* Shared with pitfalls_asm.S. */
volatile u32 ticks;
u32 armed, in_fault, saved_esp;
u32 fault_vec, fault_err;
u32 *ring3_obs;
u32 int81_esp, int81_cs, int81_before, callfar_cs;

static void load_tables(void)
{
    /* Accessed bits preset, so LAR reads the same bytes whether or not a
     * CPU sets them on a segment load. */
    desc_seg(gdt, 1, 0, 0xfffff, 0x9b, 0xc); /* 0x08 kernel code */
    desc_seg(gdt, 2, 0, 0xfffff, 0x93, 0xc); /* 0x10 kernel data */
    desc_seg(gdt, 3, 0, 0xfffff, 0xfb, 0xc); /* 0x1b user code */
    desc_seg(gdt, 4, 0, 0xfffff, 0xf3, 0xc); /* 0x23 user data */
    tss.ss0 = SEL_KDATA;
    tss.esp0 = (u32)ring0_stack + sizeof(ring0_stack);
    tss.iomap = sizeof(tss); /* no I/O bitmap */
    desc_seg(gdt, 5, (u32)&tss, sizeof(tss) - 1, 0x89, 0x0); /* 0x28 TSS */
    desc_seg(gdt, 6, 0, 0xfffff, 0x9f, 0xc); /* 0x30 conforming code */
    desc_seg(ldt, 0, 0, 0xfffff, 0x93, 0xc); /* LDT 0x04: data */
    desc_seg(gdt, 7, (u32)ldt, sizeof(ldt) - 1, 0x82, 0x0); /* 0x38 LDT */

    for (u32 v = 0; v < 32; v++)
        desc_gate(idt, v, SEL_KCODE, (u32)fault_stubs + 16 * v, 0x8e, 0);
    desc_gate(idt, VEC_IRQ0, SEL_KCODE, (u32)irq0_entry, 0x8e, 0);
    desc_gate(idt, VEC_SYSCALL, SEL_KCODE, (u32)int80_entry, 0xee, 0);
    desc_gate(idt, VEC_PROBE, SEL_KCODE, (u32)int81_entry, 0xef, 0);

    struct dtr g = { sizeof(gdt) - 1, (u32)gdt };
    asm volatile("lgdt %0\n\t"
                 "ljmp %[kcode], $1f\n"
                 "1:\n\t"
                 "movw %[kdata], %%ax\n\t"
                 "movw %%ax, %%ds\n\t"
                 "movw %%ax, %%es\n\t"
                 "movw %%ax, %%fs\n\t"
                 "movw %%ax, %%gs\n\t"
                 "movw %%ax, %%ss\n\t"
                 "movw %[tss], %%ax\n\t"
                 "ltr %%ax"
                 :
                 : "m"(g), [kcode] "i"(SEL_KCODE), [kdata] "i"(SEL_KDATA),
                   [tss] "i"(SEL_TSS)
                 : "eax", "memory");
    idt_load((u32)idt, sizeof(idt) - 1);
    lldt(SEL_LDT);
}

/* An exception nobody armed for. */
void pitfalls_unexpected(u32 vec, u32 err, u32 eip, u32 cs) __attribute__((noreturn));
void pitfalls_unexpected(u32 vec, u32 err, u32 eip, u32 cs)
{
    tprintf("unexpected: vector 0x%x err 0x%x eip 0x%x cs 0x%x\n", vec, err, eip, cs);
    rt_exit(EXIT_UNEXPECTED);
}

/* ---- helpers ------------------------------------------------------------- */

/* Spin until the tick count leaves t0: 1 if it did, 0 if the bound ran out. */
static u32 saw_tick(u32 t0)
{
    for (u32 i = 0; i < SPIN_LIMIT; i++)
        if (ticks != t0)
            return 1;
    return 0;
}

/* A GDT descriptor's limit in bytes - 1, granularity applied (as LSL). */
static u32 descriptor_limit(u32 index)
{
    u32 lo = (u32)gdt[index], hi = (u32)(gdt[index] >> 32);
    u32 raw = (lo & 0xffff) | (hi & 0xf0000);
    return (hi & 0x800000) ? (raw << 12) | 0xfff : raw;
}

static const char *yes_no(u32 v) { return v ? "yes" : "no"; }

/* ---- formats: one per row kind, used for both columns --------------------- */

static void show_dtr(const u32 *v) { tprintf("base=0x%08x limit=0x%04x", v[0], v[1]); }
static void show_sel(const u32 *v) { tprintf("0x%04x", v[0]); }
static void show_flags(const u32 *v) { tprintf("IF=%u IOPL=%u", v[0], v[1]); }
static void show_ticks(const u32 *v) { tprintf("timer ticks: %s", yes_no(v[0])); }
static void show_ring3(const u32 *v) { tprintf("ring-3 timer ticks: %s", yes_no(v[0])); }
static void show_lar(const u32 *v) { tprintf("ZF=%u ar=0x%08x", v[0], v[1]); }
static void show_lsl(const u32 *v) { tprintf("ZF=%u limit=0x%08x", v[0], v[1]); }
static void show_zf(const u32 *v) { tprintf("ZF=%u", v[0]); }
static void show_ret_cs(const u32 *v) { tprintf("return CS=0x%04x", v[0]); }
static void show_cs(const u32 *v) { tprintf("CS=0x%04x", v[0]); }
static void show_returned(const u32 *v) { tprintf("%s", v[0] ? "returned" : "did not return"); }
static void show_int(const u32 *v)
{
    tprintf("CS=0x%04x stack=%s", v[0], v[1] ? "same" : "switched");
}
static void show_wp(const u32 *v) { tprintf("WP=%u", v[0]); }
static void show_byte(const u32 *v) { tprintf("0x%02x", v[0]); }

/* ---- the checks: run (armed, fills obs) and expect (fills exp) ------------- */

static void run_sgdt(u32 *o)
{
    struct dtr d;
    asm volatile("sgdt %0" : "=m"(d));
    o[0] = d.base;
    o[1] = d.limit;
}
static void exp_sgdt(u32 *e)
{
    e[0] = (u32)gdt;
    e[1] = sizeof(gdt) - 1;
}

static void run_sidt(u32 *o)
{
    struct dtr d;
    asm volatile("sidt %0" : "=m"(d));
    o[0] = d.base;
    o[1] = d.limit;
}
static void exp_sidt(u32 *e)
{
    e[0] = (u32)idt;
    e[1] = sizeof(idt) - 1;
}

static void run_sldt(u32 *o) { o[0] = sldt(); }
static void exp_sldt(u32 *e) { e[0] = SEL_LDT; }

static void run_str(u32 *o)
{
    u16 s;
    asm volatile("str %0" : "=r"(s));
    o[0] = s;
}
static void exp_str(u32 *e) { e[0] = SEL_TSS; }

static void run_smsw(u32 *o)
{
    u32 msw;
    asm volatile("smsw %0" : "=r"(msw));
    o[0] = msw & 0xffff;
}
static void exp_smsw(u32 *e) { e[0] = read_cr0() & 0xffff; }

static void run_pushf(u32 *o)
{
    u32 f;
    cli();
    asm volatile("pushfl\n\tpopl %0" : "=r"(f));
    o[0] = (f >> 9) & 1;
    o[1] = (f >> 12) & 3;
}
static void exp_pushf(u32 *e)
{
    e[0] = 0; /* after CLI */
    e[1] = 0; /* nobody raised IOPL */
}

static void run_popf(u32 *o)
{
    cli();
    u32 t0 = ticks;
    asm volatile("pushfl\n\t"
                 "orl %0, (%%esp)\n\t"
                 "popfl"
                 :
                 : "i"(EFLAGS_IF)
                 : "memory", "cc");
    o[0] = saw_tick(t0);
    cli();
}

static void run_iret(u32 *o)
{
    cli();
    ring3_obs = &o[0];
    enter_ring3((u32)ring3_stack + sizeof(ring3_stack));
}

static void exp_yes(u32 *e) { e[0] = 1; }

static void run_push_cs(u32 *o)
{
    u32 v;
    asm volatile("pushl %%cs\n\tpopl %0" : "=r"(v));
    o[0] = v & 0xffff;
}
static void exp_kcode(u32 *e) { e[0] = SEL_KCODE; }

static void run_mov_ss(u32 *o)
{
    u16 ss;
    asm volatile("mov %%ss, %0" : "=r"(ss));
    o[0] = ss;
}
static void exp_kdata(u32 *e) { e[0] = SEL_KDATA; } /* the SS load_tables loaded */

static void run_pop_ds(u32 *o)
{
    u16 ds;
    asm volatile("pushl %%ss\n\t"
                 "popl %%ds\n\t"
                 "mov %%ds, %0\n\t"
                 "movl %1, %%ecx\n\t"
                 "mov %%ecx, %%ds" /* back to the kernel's own DS */
                 : "=&r"(ds)
                 : "i"(SEL_KDATA)
                 : "ecx", "memory");
    o[0] = ds;
}

static void run_lar(u32 *o)
{
    u32 ar = 0;
    u8 zf;
    asm volatile("lar %2, %0\n\tsetz %1" : "+r"(ar), "=q"(zf) : "r"((u32)SEL_KCODE) : "cc");
    o[0] = zf;
    o[1] = ar & LAR_DEFINED; /* bits 19:16 are undefined (SDM) */
}
static void exp_lar(u32 *e)
{
    e[0] = 1;
    e[1] = (u32)(gdt[SEL_KCODE >> 3] >> 32) & LAR_DEFINED;
}

static void run_lsl(u32 *o)
{
    u32 limit = 0;
    u8 zf;
    asm volatile("lsl %2, %0\n\tsetz %1" : "+r"(limit), "=q"(zf) : "r"((u32)SEL_KDATA) : "cc");
    o[0] = zf;
    o[1] = limit;
}
static void exp_lsl(u32 *e)
{
    e[0] = 1;
    e[1] = descriptor_limit(SEL_KDATA >> 3);
}

static void run_verr(u32 *o)
{
    u8 zf;
    asm volatile("verr %w1\n\tsetz %0" : "=q"(zf) : "r"((u32)SEL_KDATA) : "cc");
    o[0] = zf;
}
static void run_verw(u32 *o)
{
    u8 zf;
    asm volatile("verw %w1\n\tsetz %0" : "=q"(zf) : "r"((u32)SEL_KDATA) : "cc");
    o[0] = zf;
}
static void exp_zf1(u32 *e) { e[0] = 1; }

static void run_call_far(u32 *o)
{
    callfar_cs = 0xdead;
    asm volatile("lcall %[conf], $conf_callee" : : [conf] "i"(SEL_CONF) : "eax", "memory");
    o[0] = callfar_cs & 0xffff;
}

static void run_jmp_far(u32 *o)
{
    u16 cs;
    asm volatile("ljmp %[conf], $1f\n"
                 "1:\tmov %%cs, %0\n\t"
                 "ljmp %[kcode], $2f\n"
                 "2:"
                 : "=r"(cs)
                 : [conf] "i"(SEL_CONF), [kcode] "i"(SEL_KCODE)
                 : "memory");
    o[0] = cs;
}
static void exp_conf(u32 *e) { e[0] = SEL_CONF; }

static void run_ret_far(u32 *o)
{
    u32 got = 0;
    asm volatile("pushl %%cs\n\t"
                 "pushl $1f\n\t"
                 "lret\n"
                 "1:\tmovl $1, %0"
                 : "+r"(got)
                 :
                 : "memory");
    o[0] = got;
}

static void run_int(u32 *o)
{
    int81_cs = 0xdead;
    int81_esp = 0;
    asm volatile("movl %%esp, int81_before\n\t"
                 "int %0"
                 :
                 : "i"(VEC_PROBE)
                 : "memory");
    o[0] = int81_cs & 0xffff;
    o[1] = int81_esp == int81_before - 12;
}
static void exp_int(u32 *e)
{
    e[0] = SEL_KCODE;
    e[1] = 1; /* same privilege: EIP, CS, EFLAGS on the current stack */
}

static void run_cli(u32 *o)
{
    sti();
    saw_tick(ticks); /* interrupts flow, nothing stays pending */
    cli();
    ticks = 0;
    for (volatile u32 i = 0; i < SPIN_FIXED; i++)
        ;
    o[0] = ticks != 0;
}
static void exp_no(u32 *e) { e[0] = 0; }

static void run_mov_cr0(u32 *o)
{
    u32 cr0 = read_cr0();
    write_cr0(cr0 | CR0_WP);
    o[0] = (read_cr0() & CR0_WP) != 0;
    write_cr0(cr0 & ~CR0_WP);
}
static void exp_wp(u32 *e) { e[0] = 1; }

static void run_in(u32 *o)
{
    outb(0x21, PIC_MASK_PROBE);
    o[0] = inb(0x21);
    outb(0x21, (u8)PIC_MASK_RUN);
}
static void exp_in(u32 *e) { e[0] = PIC_MASK_PROBE; }

/* ---- the table ----------------------------------------------------------- */

struct pitfall {
    const char *name;
    void (*run)(u32 *obs);
    void (*expect)(u32 *exp);
    void (*show)(const u32 *v);
};

static const struct pitfall pitfalls[] = {
    { "sgdt", run_sgdt, exp_sgdt, show_dtr },
    { "sidt", run_sidt, exp_sidt, show_dtr },
    { "sldt", run_sldt, exp_sldt, show_sel },
    { "str", run_str, exp_str, show_sel },
    { "smsw", run_smsw, exp_smsw, show_sel },
    { "pushf", run_pushf, exp_pushf, show_flags },
    { "popf", run_popf, exp_yes, show_ticks },
    { "iret", run_iret, exp_yes, show_ring3 },
    { "push cs", run_push_cs, exp_kcode, show_sel },
    { "mov ss", run_mov_ss, exp_kdata, show_sel },
    { "pop ds", run_pop_ds, exp_kdata, show_sel },
    { "lar", run_lar, exp_lar, show_lar },
    { "lsl", run_lsl, exp_lsl, show_lsl },
    { "verr", run_verr, exp_zf1, show_zf },
    { "verw", run_verw, exp_zf1, show_zf },
    { "call far", run_call_far, exp_kcode, show_ret_cs },
    { "jmp far", run_jmp_far, exp_conf, show_cs },
    { "ret far", run_ret_far, exp_yes, show_returned },
    { "int", run_int, exp_int, show_int },
    /* controls: privileged instructions */
    { "cli", run_cli, exp_no, show_ticks },
    { "mov cr0", run_mov_cr0, exp_wp, show_wp },
    { "in", run_in, exp_in, show_byte },
};

static const char *const vec_names[] = {
    "DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "CSO", "TS",
    "NP", "SS", "GP", "PF", "15", "MF", "AC", "MC", "XM", "VE", "CP",
};

/* Run one check armed and print its row. */
static void run_row(const struct pitfall *p)
{
    u32 obs[2] = { 0, 0 }, exp[2] = { 0, 0 };
    int faulted = run_armed(p->run, obs);
    cli();
    p->expect(exp);
    tprintf("PITFALL %s | ", p->name);
    p->show(exp);
    tprintf(" | ");
    if (!faulted)
        p->show(obs);
    else if (fault_vec < sizeof(vec_names) / sizeof(vec_names[0]))
        tprintf("#%s(0x%04x)", vec_names[fault_vec], fault_err);
    else
        tprintf("#%u(0x%04x)", fault_vec, fault_err);
    tprintf("\n");
}

void kmain(u32 magic, u32 mbi)
{
    load_tables();
    pic_remap(VEC_IRQ0, VEC_IRQ0 + 8); /* all masked */
    pit_periodic(PIT_DIVISOR);
    pic_set_mask(PIC_MASK_RUN);
    tprintf("pitfalls: ring-0 expectations vs what this CPU does\n");
    for (u32 i = 0; i < sizeof(pitfalls) / sizeof(pitfalls[0]); i++)
        run_row(&pitfalls[i]);
    cli();
    pic_set_mask(0xffff);
    tprintf("pitfalls: done\n");
}
