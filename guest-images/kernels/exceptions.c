/* exceptions: #DE, #DB (single step), #BP, #OF, #BR, #UD, #NP, #SS, #GP
 * (bad selector, execute-only segment into DS, null SS, far jump past a code
 * segment limit or to a data segment, far call past the GDT, privileged
 * instruction in ring 3), #NP on a far jump to a not-present code segment,
 * and #PF. For each, the
 * handler records vector, error code and whether the saved EIP is the
 * faulting instruction (fault) or the next one (trap), then resumes after
 * the instruction.
 *
 * Not tested, because QEMU TCG does not implement them as the SDM says:
 * limit checks on ordinary data and stack accesses (so no #GP/#SS from a
 * segment limit on a load/store), and #AC. */
#include "rt.h"

#define SEL_XONLY 0x30   /* GDT 6: execute-only code */
#define SEL_SMALLCS 0x38 /* GDT 7: code, limit 0xffff */
#define SEL_NP 0x40      /* GDT 8: writable data, not present */
                         /* GDT 9 (0x48): code, not present */
#define SEL_BEYOND 0x80  /* index 16: past the GDT limit */

/* Written before each test instruction: its address and the next one's. */
u32 fault_eip, trap_eip;
static u32 seen_vec, seen_err, seen_eip, seen_cs, seen_count, seen_cr2;
static u8 user_stack[4096] __attribute__((aligned(16)));

#define AT "movl $1f, fault_eip\n\tmovl $2f, trap_eip\n1:\t"

static void handler(struct frame *f)
{
    seen_count++;
    seen_vec = f->vector;
    seen_err = f->err;
    seen_eip = f->eip;
    seen_cs = f->cs;
    if (f->vector == 14)
        seen_cr2 = read_cr2();
    f->eflags &= ~0x100u; /* TF off after the single-step trap */
    f->eip = trap_eip;
}

static void syscall_handler(struct frame *f) { user_return(f->ebx); }

enum { FAULT, TRAP };

static void report(const char *name, u32 vec, u32 err, int kind)
{
    const char *where = seen_eip == fault_eip ? "fault" : seen_eip == trap_eip ? "trap" : "other";
    tprintf("%s: vector=%u err=0x%x eip=%s cpl=%u\n", name, seen_vec, seen_err, where, seen_cs & 3);
    if (seen_count != 1 || seen_vec != vec || seen_err != err ||
        seen_eip != (kind == FAULT ? fault_eip : trap_eip)) {
        rt_failures++;
        tprintf("%s: FAIL count=%u\n", name, seen_count);
    }
    seen_count = 0;
    seen_vec = seen_err = seen_eip = 0xffffffff;
}

static void no_exception(const char *name)
{
    tprintf("%s: %s\n", name, seen_count ? "FAIL exception" : "ok");
    if (seen_count)
        rt_failures++;
    seen_count = 0;
}

static void user_main(void)
{
    asm volatile(AT "cli\n2:" ::: "memory");
    asm volatile("int $0x80" ::"b"(0) : "memory");
}

static void test_arith(void)
{
    asm volatile(AT "divl %%ecx\n2:" ::"a"(1), "d"(0), "c"(0) : "memory");
    report("de_div_by_zero", 0, 0, FAULT);
    asm volatile(AT "idivl %%ecx\n2:" ::"a"(0x80000000), "d"(0xffffffff), "c"(0xffffffff) : "memory");
    report("de_idiv_overflow", 0, 0, FAULT);
    asm volatile(AT "aam $0\n2:" ::"a"(5) : "memory");
    report("de_aam0", 0, 0, FAULT);
    /* POPF sets TF; the trap comes after the one instruction that follows. */
    asm volatile("movl $1f, fault_eip\n\tmovl $2f, trap_eip\n\t"
                 "pushfl\n\torl $0x100, (%%esp)\n\tpopfl\n"
                 "1:\tnop\n2:\tnop" ::: "memory");
    report("db_single_step", 1, 0, TRAP);
    asm volatile(AT "int3\n2:" ::: "memory");
    report("bp_int3", 3, 0, TRAP);
    asm volatile(AT "int $3\n2:" ::: "memory");
    report("bp_int_3", 3, 0, TRAP);
    asm volatile("pushl $0x800\n\tpopfl\n\t" AT "into\n2:" ::: "memory", "cc");
    report("of_into", 4, 0, TRAP);
    asm volatile("pushl $0\n\tpopfl\n\tinto" ::: "memory", "cc");
    no_exception("into_of0");
    static s32 bounds[2] = { 0, 10 };
    asm volatile(AT "bound %%eax, (%%ebx)\n2:" ::"a"(20), "b"(bounds) : "memory");
    report("br_bound_above", 5, 0, FAULT);
    asm volatile(AT "bound %%eax, (%%ebx)\n2:" ::"a"(-1), "b"(bounds) : "memory");
    report("br_bound_below", 5, 0, FAULT);
    asm volatile("bound %%eax, (%%ebx)" ::"a"(10), "b"(bounds) : "memory");
    no_exception("bound_inside");
    asm volatile(AT "ud2\n2:" ::: "memory");
    report("ud_ud2", 6, 0, FAULT);
}

static void test_segments(void)
{
    asm volatile(AT "movw %%ax, %%ds\n2:" ::"a"(SEL_NP) : "memory");
    report("np_load_ds", 11, SEL_NP, FAULT);
    asm volatile(AT "movw %%ax, %%ss\n2:" ::"a"(SEL_NP) : "memory");
    report("ss_load_not_present", 12, SEL_NP, FAULT);
    asm volatile(AT "movw %%ax, %%ds\n2:" ::"a"(SEL_BEYOND) : "memory");
    report("gp_selector_beyond_gdt", 13, SEL_BEYOND, FAULT);
    asm volatile(AT "movw %%ax, %%ds\n2:" ::"a"(SEL_XONLY) : "memory");
    report("gp_exec_only_into_ds", 13, SEL_XONLY, FAULT);
    asm volatile(AT "movw %%ax, %%ss\n2:" ::"a"(0) : "memory");
    report("gp_null_ss", 13, 0, FAULT);
    asm volatile(AT "movw %%ax, %%ds\n2:" ::"a"(SEL_UDATA) : "memory");
    no_exception("ds_load_udata_ok");
    asm volatile(AT "ljmp $0x38, $0x20000\n2:" ::: "memory");
    report("gp_ljmp_past_limit", 13, 0, FAULT);
    asm volatile(AT "ljmp $0x10, $0\n2:" ::: "memory");
    report("gp_ljmp_to_data_segment", 13, SEL_KDATA, FAULT);
    asm volatile(AT "ljmp $0x48, $0\n2:" ::: "memory");
    report("np_ljmp_not_present_code", 11, 0x48, FAULT);
    asm volatile(AT "lcall $0x80, $0\n2:" ::: "memory");
    report("gp_lcall_beyond_gdt", 13, SEL_BEYOND, FAULT);
    u16 ds;
    asm volatile("movw $0x10, %%ax\n\tmovw %%ax, %%ds\n\tmovw %%ds, %0" : "=r"(ds) :: "eax");
    check("ds_intact", ds, SEL_KDATA);
}

static void test_ring3(void)
{
    user_run((u32)user_main, (u32)user_stack + sizeof(user_stack), 0x2);
    report("gp_cli_ring3", 13, 0, FAULT);

}

static void test_pf(void)
{
    u32 *pd = pg_new_dir();
    write_cr4(read_cr4() | CR4_PSE);
    pg_map_big(pd, 0, 0, PG_P | PG_RW);
    pg_enable(pd);
    asm volatile(AT "movl (%%eax), %%eax\n2:" ::"a"(0x800010) : "memory");
    u32 cr2 = seen_cr2;
    report("pf_read_not_present", 14, 0, FAULT);
    check("pf_read_cr2", cr2, 0x800010);
    asm volatile(AT "movl %%eax, (%%eax)\n2:" ::"a"(0x900020) : "memory");
    cr2 = seen_cr2;
    report("pf_write_not_present", 14, 2, FAULT);
    check("pf_write_cr2", cr2, 0x900020);
    pg_disable();
}

void kmain(u32 magic, u32 mbi)
{
    static const u32 vecs[] = { 0, 1, 3, 4, 5, 6, 11, 12, 13, 14 };
    for (u32 i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++)
        set_handler(vecs[i], handler);
    set_handler(0x80, syscall_handler);
    idt_set_dpl(0x80, 3);
    idt_set_dpl(3, 3); /* INT3 and INT 3 from any ring */
    idt_set_dpl(4, 3);
    gdt_set(6, 0, 0xfffff, 0x98, 0xc);   /* execute-only code */
    gdt_set(7, 0, 0xffff, 0x9a, 0x4);    /* code, byte-granular limit 64 KiB */
    gdt_set(8, 0, 0xfffff, 0x12, 0xc);   /* data, P=0 */
    gdt_set(9, 0, 0xfffff, 0x1a, 0xc);   /* code, P=0 */
    seen_vec = seen_err = seen_eip = 0xffffffff;
    test_arith();
    test_segments();
    test_ring3();
    test_pf();
}
