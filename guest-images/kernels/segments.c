/* segments: call gates, privilege transitions through them, conforming code,
 * LAR/LSL/VERR/VERW/ARPL, an LDT, faulting segment loads and far pointers
 * to expand-down segments.
 *
 *   - far CALL/JMP through a 32-bit call gate and far CALL through a 16-bit
 *     one (16-bit CS:IP pushed, LRETW back), same privilege;
 *   - ring 3 -> ring 0 through DPL-3 call gates copying 3 and 2 dwords: the
 *     inner stack is TSS.SS0:ESP0 and holds EIP, CS, the params, ESP, SS;
 *     LRET imm16 back to ring 3 pops the params on both stacks and nulls
 *     DS/ES (DPL 0 data) but keeps FS (DPL 3) and GS (conforming code);
 *   - conforming code: CPL unchanged, CS.RPL = CPL, the selector RPL ignored;
 *   - LAR/LSL/VERR/VERW over a table of selectors (null, code/data of every
 *     DPL, expand-down, not present, LDT, TSS, call/task/interrupt/trap
 *     gates, reserved type, zero descriptor, past the GDT, LDT selectors and
 *     past the LDT) from ring 0 with RPL 0 and 3 and from ring 3 with RPL 3
 *     and 0. Each line: ZF and the destination (left unchanged when ZF=0;
 *     LAR masked with 0x00F0FF00, bits 19:16 are undefined). The accessed
 *     bit of code segments is masked too: QEMU 7.2 sets it on a far CALL
 *     but not on a far JMP or IRET (the SDM sets it on every load). ARPL;
 *   - LLDT/SLDT, a data segment in the LDT read through ES and DS, TI=1;
 *   - faulting loads: #GP(sel) for system descriptors, DPL/RPL violations,
 *     read-only or code SS; #NP(sel) and #SS(sel) for not-present segments;
 *     #GP/#NP from far transfers (gate DPL, target DPL, JMP through a gate to
 *     another ring, not-present gate or target), from ring 0 and ring 3;
 *   - LDS/LSS with expand-down segments (32-bit and 16-bit B): the loads,
 *     PUSH through an expand-down SS at base+ESP (a B=0 SS moves only SP),
 *     and the faulting LDS/LSS leaving the registers unchanged.
 *
 * Segment limits are not checked on ordinary data accesses (QEMU TCG skips
 * those checks), so nothing here touches memory beyond a limit. */
#include "desc.h"

#define SEL_ALIAS 0x30    /* 6: code DPL0, base = ALIAS_BASE, limit 0xffff, D=1 */
#define SEL_GATE32 0x38   /* 7: 32-bit call gate DPL0 -> 0x08:t32 */
#define SEL_GATE16 0x40   /* 8: 16-bit call gate DPL0 -> ALIAS:t16 */
#define SEL_GATE_P3 0x48  /* 9: 32-bit call gate DPL3 -> 0x08:inner3, 3 params */
#define SEL_GATE_P2 0x50  /* 10: 32-bit call gate DPL3 -> 0x08:inner2, 2 params */
#define SEL_CONF 0x58     /* 11: conforming readable code DPL0 */
#define SEL_LDT 0x60      /* 12: LDT descriptor */
#define SEL_INTGATE 0x68  /* 13: interrupt gate in the GDT */
#define SEL_DATA1 0x70    /* 14: data RW DPL1 */
#define SEL_RODATA2 0x78  /* 15: data RO DPL2 */
#define SEL_XCODE3 0x80   /* 16: execute-only code DPL3 */
#define SEL_NPDATA 0x88   /* 17: data RW not present DPL0 */
#define SEL_EDOWN32 0x90  /* 18: expand-down RW, G=1 B=1, limit 0xf -> 0xffff */
#define SEL_EDOWN16 0x98  /* 19: expand-down RW, B=0, limit 0x0fff */
#define SEL_EDOWN_RO 0xa0 /* 20: expand-down RO */
#define SEL_NPCODE 0xa8   /* 21: code not present DPL0 */
#define SEL_GATE_NP 0xb0  /* 22: call gate DPL3, not present */
#define SEL_GATE_NPT 0xb8 /* 23: call gate DPL3 -> SEL_NPCODE */
#define SEL_GATE_UP 0xc0  /* 24: call gate DPL3 -> 0x1b (less privileged) */
#define SEL_TASKGATE 0xc8 /* 25: task gate -> TSS */
#define SEL_TRAPGATE 0xd0 /* 26: trap gate */
#define SEL_NPDATA3 0xd8  /* 27: data RW not present DPL3 */
#define SEL_TSS16 0xe0    /* 28: available 16-bit TSS (never used as one) */
#define SEL_RESERVED 0xe8 /* 29: system type 0 (reserved) */
#define SEL_GATE_JMP 0xf0 /* 30: 32-bit call gate DPL0 -> 0x08:t32_jmp */
#define SEL_ZERO 0x1f8    /* 63: all-zero descriptor */

#define LSEL_DATA0 0x04   /* LDT 0: data RW DPL0, base = ldt_data0 */
#define LSEL_DATA3 0x0c   /* LDT 1: data RW DPL3, base = ldt_data3 */
#define LSEL_NP 0x14      /* LDT 2: data not present */
#define LSEL_CODE 0x1c    /* LDT 3: code DPL0 */
#define LSEL_BEYOND 0x24  /* past the LDT limit */

static u64 ldt[4] __attribute__((aligned(8)));
static u32 ldt_data0[4] = { 0xd0d0d0d0, 0xd0000001 };
static u32 ldt_data3[4] = { 0x33333333, 0x30000001 };
static u8 user_stack[8192] __attribute__((aligned(16)));
static u32 edown_buf[4096] __attribute__((aligned(16))); /* 16 KiB */

/* ---- faults: record, resume at resume_eip --------------------------------- */

u32 expect_eip, resume_eip, fault_slot;
struct fault_rec {
    u32 count, vec, err, cpl, eip_ok;
};
static struct fault_rec faults[64];

static void fault_handler(struct frame *f)
{
    struct fault_rec *r = &faults[fault_slot & 63];
    r->count++;
    r->vec = f->vector;
    r->err = f->err;
    r->cpl = f->cs & 3;
    r->eip_ok = f->eip == expect_eip;
    f->eip = resume_eip;
}

/* Run insn with fault slot idx; a fault resumes right after it. */
#define TRY(idx, insn, ...)                                                     \
    asm volatile("movl %[i], %[fs]\n\t"                                         \
                 "movl $1f, %[e]\n\tmovl $2f, %[r]\n1:\t" insn "\n2:"           \
                 : [e] "=m"(expect_eip), [r] "=m"(resume_eip), [fs] "=m"(fault_slot) \
                 : [i] "i"(idx), ##__VA_ARGS__ : "memory")

static void report(const char *name, u32 idx, u32 vec, u32 err, u32 cpl)
{
    struct fault_rec *r = &faults[idx];
    tprintf("%s: count=%u vector=%u err=0x%x cpl=%u eip_ok=%u\n", name, r->count, r->vec,
            r->err, r->cpl, r->eip_ok);
    if (r->count != 1 || r->vec != vec || r->err != err || r->cpl != cpl || !r->eip_ok) {
        rt_failures++;
        tprintf("%s: FAIL\n", name);
    }
}

static void no_fault(const char *name, u32 idx)
{
    tprintf("%s: %s\n", name, faults[idx].count ? "FAIL fault" : "ok");
    if (faults[idx].count)
        rt_failures++;
}

static void syscall_handler(struct frame *f) { user_return(f->ebx); }

static void user_exit(void)
{
    asm volatile("int $0x80" ::"b"(0) : "memory");
}

/* ---- gate targets (asm) ---------------------------------------------------- */

u32 t32_esp, t32_ret, t32_cs, t32_jmp_esp;
u32 t16_esp, t16_word, t16_cs;
u32 a_esp_before, a_esp_after;
u32 inner3_esp, inner3_cs, inner3_ss, inner3_stk[8];
u32 inner2_esp, inner2_stk[8];
u32 conf_cs, conf_ss, gate_p3_ret;
struct farptr alias_entry, alias_back, t32_jmp_back;
extern char t32[], t32_jmp[], t16[], a_entry[], a_ret[], a_back[], inner3[], inner2[];
extern char conf_target[], alias_block[], alias_block_end[];
u32 run_alias(void);

asm(".pushsection .text\n"
    /* 32-bit gate, same ring: record ESP and the pushed EIP/CS. */
    "t32:\n\t"
    "movl %esp, t32_esp\n\t"
    "movl (%esp), %eax\n\tmovl %eax, t32_ret\n\t"
    "movl 4(%esp), %eax\n\tandl $0xffff, %eax\n\tmovl %eax, t32_cs\n\t"
    "lret\n"
    /* far JMP through the gate: nothing pushed. */
    "t32_jmp:\n\t"
    "movl %esp, t32_jmp_esp\n\t"
    "ljmp *t32_jmp_back\n"
    /* ring 3 -> 0, 3 params: snapshot the inner stack, load DS/ES with DPL-0
     * data, FS with DPL-3 data, GS with conforming code, return popping 12. */
    "inner3:\n\t"
    "movl %esp, inner3_esp\n\t"
    "movw %cs, inner3_cs\n\t"
    "movw %ss, inner3_ss\n\t"
    "movl 0(%esp), %eax\n\tmovl %eax, inner3_stk+0\n\t"
    "movl 4(%esp), %eax\n\tmovl %eax, inner3_stk+4\n\t"
    "movl 8(%esp), %eax\n\tmovl %eax, inner3_stk+8\n\t"
    "movl 12(%esp), %eax\n\tmovl %eax, inner3_stk+12\n\t"
    "movl 16(%esp), %eax\n\tmovl %eax, inner3_stk+16\n\t"
    "movl 20(%esp), %eax\n\tmovl %eax, inner3_stk+20\n\t"
    "movl 24(%esp), %eax\n\tmovl %eax, inner3_stk+24\n\t"
    "movw $0x10, %ax\n\tmovw %ax, %ds\n\tmovw %ax, %es\n\t"
    "movw $0x23, %ax\n\tmovw %ax, %fs\n\t"
    "movw $0x58, %ax\n\tmovw %ax, %gs\n\t"
    "lret $12\n"
    "inner2:\n\t"
    "movl %esp, inner2_esp\n\t"
    "movl 0(%esp), %eax\n\tmovl %eax, inner2_stk+0\n\t"
    "movl 4(%esp), %eax\n\tmovl %eax, inner2_stk+4\n\t"
    "movl 8(%esp), %eax\n\tmovl %eax, inner2_stk+8\n\t"
    "movl 12(%esp), %eax\n\tmovl %eax, inner2_stk+12\n\t"
    "movl 16(%esp), %eax\n\tmovl %eax, inner2_stk+16\n\t"
    "movl 20(%esp), %eax\n\tmovl %eax, inner2_stk+20\n\t"
    "lret $8\n"
    /* conforming code: report CS and SS as seen here. */
    "conf_target:\n\t"
    "movw %cs, conf_cs\n\t"
    "movw %ss, conf_ss\n\t"
    "lret\n"
    /* run_alias: continue in SEL_ALIAS (base = this page's 64 KiB block) so
     * EIP fits 16 bits, call the 16-bit gate, come back to 0x08. */
    ".balign 4096\n"
    "alias_block:\n"
    "run_alias:\n\t"
    "pushl %ebx\n\t"
    "ljmp *alias_entry\n"
    "a_entry:\n\t"
    "movl %esp, a_esp_before\n\t"
    "lcall $0x40, $0\n"
    "a_ret:\n\t"
    "movl %esp, a_esp_after\n\t"
    "ljmp *alias_back\n"
    "a_back:\n\t"
    "popl %ebx\n\t"
    "ret\n"
    /* 16-bit gate target (in SEL_ALIAS): pushed IP and CS are words. */
    "t16:\n\t"
    "movl %esp, t16_esp\n\t"
    "movl (%esp), %eax\n\tmovl %eax, t16_word\n\t"
    "movw %cs, t16_cs\n\t"
    "lretw\n"
    "alias_block_end:\n"
    ".popsection");

static u32 alias_base(void) { return (u32)alias_block & 0xffff0000u; }

static void setup_gdt(void)
{
    u64 *g = gdt_big;
    u32 ab = alias_base();
    gdt_big_init();
    desc_seg(g, 6, ab, 0xffff, 0x9a, 0x4);
    desc_gate(g, 7, SEL_KCODE, (u32)t32, 0x8c, 0);
    desc_gate(g, 8, SEL_ALIAS, (u32)t16 - ab, 0x84, 0);
    desc_gate(g, 9, SEL_KCODE, (u32)inner3, 0xec, 3);
    desc_gate(g, 10, SEL_KCODE, (u32)inner2, 0xec, 2);
    desc_seg(g, 11, 0, 0xfffff, 0x9e, 0xc);
    desc_seg(g, 12, (u32)ldt, sizeof(ldt) - 1, 0x82, 0x0);
    desc_gate(g, 13, SEL_KCODE, (u32)t32, 0x8e, 0);
    desc_seg(g, 14, 0, 0xfffff, 0xb2, 0xc);
    desc_seg(g, 15, 0, 0xfffff, 0xd0, 0xc);
    desc_seg(g, 16, 0, 0xfffff, 0xf8, 0xc);
    desc_seg(g, 17, 0, 0xfffff, 0x12, 0xc);
    /* expand-down, 4 KiB granular, B=1: valid offsets 0x10000..0xffffffff;
     * base chosen so offset 0xfffff000 is edown_buf + 0x800. */
    desc_seg(g, 18, (u32)edown_buf + 0x800 + 0x1000, 0x0000f, 0x96, 0xc);
    /* expand-down, byte granular, B=0: valid offsets 0x1000..0xffff. */
    desc_seg(g, 19, (u32)edown_buf, 0x0fff, 0x96, 0x0);
    desc_seg(g, 20, 0, 0x0fff, 0x94, 0x4);
    desc_seg(g, 21, 0, 0xfffff, 0x1a, 0xc);
    desc_gate(g, 22, SEL_KCODE, (u32)inner2, 0x6c, 0);
    desc_gate(g, 23, SEL_NPCODE, (u32)inner2, 0xec, 0);
    desc_gate(g, 24, SEL_UCODE, (u32)inner2, 0xec, 0);
    desc_gate(g, 25, SEL_TSS, 0, 0x85, 0);
    desc_gate(g, 26, SEL_KCODE, (u32)t32, 0x8f, 0);
    desc_seg(g, 27, 0, 0xfffff, 0x72, 0xc);
    desc_seg(g, 28, 0x1000, 0x2b, 0x81, 0x0);
    desc_seg(g, 29, 0x1000, 0xfff, 0x80, 0x0);
    desc_gate(g, 30, SEL_KCODE, (u32)t32_jmp, 0x8c, 0);
    desc_seg(ldt, 0, (u32)ldt_data0, sizeof(ldt_data0) - 1, 0x92, 0x4);
    desc_seg(ldt, 1, (u32)ldt_data3, sizeof(ldt_data3) - 1, 0xf2, 0x4);
    desc_seg(ldt, 2, 0, 0xfffff, 0x12, 0xc);
    desc_seg(ldt, 3, 0, 0xfffff, 0x9a, 0xc);
    alias_entry.off = (u32)a_entry - ab;
    alias_entry.sel = SEL_ALIAS;
    alias_back.off = (u32)a_back;
    alias_back.sel = SEL_KCODE;
}

/* ---- same-privilege gates ----------------------------------------------- */

static void test_gates_ring0(void)
{
    u32 esp_before, ret_addr;
    asm volatile("movl $1f, %1\n\t"
                 "movl %%esp, %0\n\t"
                 "lcall %[g], $0\n1:"
                 : "=&r"(esp_before), "=&r"(ret_addr) : [g] "i"(SEL_GATE32) : "eax", "memory");
    check("gate32_call_esp", t32_esp, esp_before - 8);
    check("gate32_call_ret_eip", t32_ret, ret_addr);
    check("gate32_call_ret_cs", t32_cs, SEL_KCODE);

    t32_jmp_back.sel = SEL_KCODE;
    asm volatile("movl $1f, t32_jmp_back\n\t"
                 "movl %%esp, %0\n\t"
                 "ljmp %[g], $0\n1:"
                 : "=&r"(esp_before) : [g] "i"(SEL_GATE_JMP) : "memory");
    asm volatile("" ::: "memory");
    /* t32_jmp records ESP; the JMP through the gate pushes nothing */
    check("gate32_jmp_esp", t32_jmp_esp, esp_before);

    if ((u32)alias_block_end - alias_base() > 0xffff) {
        tprintf("gate16: alias block crosses 64 KiB\n");
        rt_failures++;
        return;
    }
    run_alias();
    check("gate16_call_esp", t16_esp, a_esp_before - 4);
    check("gate16_pushed_ip", t16_word & 0xffff, (u32)a_ret - alias_base());
    check("gate16_pushed_cs", t16_word >> 16, SEL_ALIAS);
    check("gate16_target_cs", t16_cs & 0xffff, SEL_ALIAS);
    check("gate16_lretw_esp", a_esp_after, a_esp_before);

    asm volatile("lcall %[g], $conf_target" ::[g] "i"(SEL_CONF) : "eax", "memory");
    check("conf_call_ring0_cs", conf_cs & 0xffff, SEL_CONF);
}

/* ---- ring 3 ----------------------------------------------------------------- */

static u32 ures[32];

static void user_gates(void)
{
    u32 before, after, ds, es, fs, gs;
    asm volatile("movl $1f, gate_p3_ret\n\t"
                 "movl %%esp, %%esi\n\t"
                 "pushl $0x11111111\n\tpushl $0x22222222\n\tpushl $0x33333333\n\t"
                 "lcall %[g], $0\n1:\t"
                 "movl %%esp, %%edi\n\t"
                 "xorl %%eax, %%eax\n\txorl %%ebx, %%ebx\n\t"
                 "xorl %%ecx, %%ecx\n\txorl %%edx, %%edx\n\t"
                 "movw %%ds, %%ax\n\tmovw %%es, %%bx\n\tmovw %%fs, %%cx\n\tmovw %%gs, %%dx\n\t"
                 "pushl $0x23\n\tpopl %%ds\n\tpushl $0x23\n\tpopl %%es\n\t"
                 "pushl $0x23\n\tpopl %%gs"
                 : "=S"(before), "=D"(after), "=a"(ds), "=b"(es), "=c"(fs), "=d"(gs)
                 : [g] "i"(SEL_GATE_P3 | 3) : "memory");
    ures[0] = before;
    ures[1] = after;
    ures[2] = ds;
    ures[3] = es;
    ures[4] = fs;
    ures[5] = gs;
    asm volatile("movl %%esp, %%esi\n\t"
                 "pushl $0xaaaa0001\n\tpushl $0xbbbb0002\n\t"
                 "lcall %[g], $0\n\t"
                 "movl %%esp, %%edi"
                 : "=S"(before), "=D"(after) : [g] "i"(SEL_GATE_P2 | 3) : "eax", "memory");
    ures[6] = before;
    ures[7] = after;
    /* conforming code: CPL stays 3, CS.RPL = 3 even with an RPL-0 selector */
    asm volatile("lcall %[g], $conf_target" ::[g] "i"(SEL_CONF | 3) : "eax", "memory");
    ures[8] = conf_cs & 0xffff;
    ures[9] = conf_ss & 0xffff;
    asm volatile("lcall %[g], $conf_target" ::[g] "i"(SEL_CONF) : "eax", "memory");
    ures[10] = conf_cs & 0xffff;
    /* faulting far transfers from ring 3 */
    TRY(20, "lcall %[g], $0", [g] "i"(SEL_GATE32 | 3));
    TRY(21, "lcall %[g], $0", [g] "i"(SEL_KCODE | 3));
    TRY(22, "ljmp %[g], $0", [g] "i"(SEL_GATE_P3 | 3));
    TRY(23, "lcall %[g], $0", [g] "i"(SEL_GATE_NP | 3));
    TRY(24, "lcall %[g], $0", [g] "i"(SEL_GATE_NPT | 3));
    /* faulting data segment loads from ring 3 */
    TRY(25, "movw %w[s], %%ds", [s] "r"(SEL_KDATA | 3));
    TRY(26, "movw %w[s], %%ds", [s] "r"(SEL_NPDATA3 | 3));
    TRY(27, "movw %w[s], %%ss", [s] "r"(SEL_KDATA | 3));
    TRY(28, "movw %w[s], %%es", [s] "r"(LSEL_DATA0 | 3));
    TRY(29, "movw %w[s], %%ds", [s] "r"(SEL_DATA1 | 1));
    /* a DPL-3 data segment in the LDT is fine from ring 3 */
    u32 v;
    asm volatile("movw %w1, %%es\n\tmovl %%es:4, %0\n\tpushl $0x23\n\tpopl %%es"
                 : "=r"(v) : "r"(LSEL_DATA3 | 3) : "memory");
    ures[11] = v;
    user_exit();
}

static void check_ring3_gates(void)
{
    u32 esp0 = rt_tss.esp0;
    check("gate_p3_inner_esp", inner3_esp, esp0 - 28);
    check("gate_p3_inner_cs", inner3_cs & 0xffff, SEL_KCODE);
    check("gate_p3_inner_ss", inner3_ss & 0xffff, SEL_KDATA);
    check("gate_p3_stk_eip", inner3_stk[0], gate_p3_ret);
    check("gate_p3_stk_cs", inner3_stk[1] & 0xffff, SEL_UCODE);
    check("gate_p3_stk_param0", inner3_stk[2], 0x33333333);
    check("gate_p3_stk_param1", inner3_stk[3], 0x22222222);
    check("gate_p3_stk_param2", inner3_stk[4], 0x11111111);
    check("gate_p3_stk_esp", inner3_stk[5], ures[0] - 12);
    check("gate_p3_stk_ss", inner3_stk[6] & 0xffff, SEL_UDATA);
    check("gate_p3_lret12_esp", ures[1], ures[0]);
    check("outer_ds_nulled", ures[2], 0);
    check("outer_es_nulled", ures[3], 0);
    check("outer_fs_dpl3_kept", ures[4], SEL_UDATA);
    check("outer_gs_conforming_kept", ures[5], SEL_CONF);
    check("gate_p2_inner_esp", inner2_esp, esp0 - 24);
    check("gate_p2_stk_cs", inner2_stk[1] & 0xffff, SEL_UCODE);
    check("gate_p2_stk_param0", inner2_stk[2], 0xbbbb0002);
    check("gate_p2_stk_param1", inner2_stk[3], 0xaaaa0001);
    check("gate_p2_stk_esp", inner2_stk[4], ures[6] - 8);
    check("gate_p2_stk_ss", inner2_stk[5] & 0xffff, SEL_UDATA);
    check("gate_p2_lret8_esp", ures[7], ures[6]);
    check("conf_call_ring3_cs", ures[8], SEL_CONF | 3);
    check("conf_call_ring3_ss", ures[9], SEL_UDATA);
    check("conf_call_rpl0_cs", ures[10], SEL_CONF | 3);
    report("r3_lcall_dpl0_gate", 20, 13, SEL_GATE32, 3);
    report("r3_lcall_dpl0_code", 21, 13, SEL_KCODE, 3);
    report("r3_ljmp_gate_to_ring0", 22, 13, SEL_KCODE, 3);
    report("r3_lcall_gate_not_present", 23, 11, SEL_GATE_NP, 3);
    report("r3_lcall_gate_target_not_present", 24, 11, SEL_NPCODE, 3);
    report("r3_ds_dpl0", 25, 13, SEL_KDATA, 3);
    report("r3_ds_not_present", 26, 11, SEL_NPDATA3, 3);
    report("r3_ss_dpl0", 27, 13, SEL_KDATA, 3);
    report("r3_es_ldt_dpl0", 28, 13, LSEL_DATA0, 3);
    report("r3_ds_dpl1", 29, 13, SEL_DATA1, 3);
    check("r3_ldt_data3_read", ures[11], 0x30000001);
}

/* ---- LAR/LSL/VERR/VERW ---------------------------------------------------- */

static const u16 probe_sels[] = {
    0x00, SEL_KCODE, SEL_KDATA, SEL_UCODE & ~3, SEL_UDATA & ~3, SEL_TSS, SEL_ALIAS,
    SEL_GATE32, SEL_GATE16, SEL_GATE_P3, SEL_CONF, SEL_LDT, SEL_INTGATE, SEL_DATA1,
    SEL_RODATA2, SEL_XCODE3, SEL_NPDATA, SEL_EDOWN32, SEL_EDOWN16, SEL_EDOWN_RO,
    SEL_NPCODE, SEL_GATE_NP, SEL_TASKGATE, SEL_TRAPGATE, SEL_NPDATA3, SEL_TSS16,
    SEL_RESERVED, SEL_ZERO, SEL_BEYOND_BIG, LSEL_DATA0, LSEL_DATA3, LSEL_NP, LSEL_CODE,
    LSEL_BEYOND,
};
#define NPROBE (sizeof(probe_sels) / sizeof(probe_sels[0]))

struct probe {
    u32 lar, lsl;
    u8 lar_z, lsl_z, verr, verw;
};
static struct probe probes[4][NPROBE];

static void probe_all(u32 rpl, struct probe *out)
{
    for (u32 i = 0; i < NPROBE; i++) {
        u32 sel = probe_sels[i] | rpl, lar = 0xdeadbeef, lsl = 0xdeadbeef;
        u8 lz, sz, rz, wz;
        asm volatile("larl %w2, %0\n\tsetz %1" : "+r"(lar), "=q"(lz) : "r"(sel) : "cc");
        asm volatile("lsll %w2, %0\n\tsetz %1" : "+r"(lsl), "=q"(sz) : "r"(sel) : "cc");
        asm volatile("verr %w1\n\tsetz %0" : "=q"(rz) : "r"(sel) : "cc");
        asm volatile("verw %w1\n\tsetz %0" : "=q"(wz) : "r"(sel) : "cc");
        out[i] = (struct probe){ lar, lsl, lz, sz, rz, wz };
    }
}

static void user_probe(void)
{
    probe_all(3, probes[2]);
    probe_all(0, probes[3]);
    user_exit();
}

static void print_probes(void)
{
    static const char *ctx[4] = { "cpl0_rpl0", "cpl0_rpl3", "cpl3_rpl3", "cpl3_rpl0" };
    for (u32 c = 0; c < 4; c++) {
        for (u32 i = 0; i < NPROBE; i++) {
            struct probe *p = &probes[c][i];
            u32 lar = p->lar_z ? p->lar & 0x00f0ff00 : p->lar;
            if (p->lar_z && (lar & 0x1800) == 0x1800)
                lar &= ~0x100u; /* code segment: A bit masked, see header */
            tprintf("probe_%s_0x%x: lar=%u:0x%08x lsl=%u:0x%08x verr=%u verw=%u\n", ctx[c],
                    probe_sels[i], p->lar_z, lar, p->lsl_z, p->lsl, p->verr, p->verw);
        }
    }
}

static void test_arpl(void)
{
    static const u16 cases[][2] = { { 0x10, 0x23 }, { 0x13, 0x20 }, { 0x1b, 0x1b },
                                    { 0x2a, 0x09 }, { 0xfff8, 0x0003 } };
    for (u32 i = 0; i < 5; i++) {
        u32 dst = 0xabcd0000 | cases[i][0];
        u8 z;
        asm volatile("arpl %w2, %w0\n\tsetz %1" : "+r"(dst), "=q"(z) : "r"(cases[i][1]) : "cc");
        tprintf("arpl_0x%x_0x%x: dst=0x%x zf=%u\n", cases[i][0], cases[i][1], dst, z);
    }
}

/* ---- LDT ------------------------------------------------------------------- */

static void test_ldt(void)
{
    lldt(SEL_LDT);
    check("sldt", sldt(), SEL_LDT);
    u32 v0, v3;
    asm volatile("movw %w2, %%es\n\tmovl %%es:4, %0\n\t"
                 "movw %w3, %%es\n\tmovl %%es:0, %1\n\t"
                 "movw $0x10, %%ax\n\tmovw %%ax, %%es"
                 : "=&r"(v0), "=&r"(v3) : "r"(LSEL_DATA0), "r"(LSEL_DATA3 | 3) : "eax", "memory");
    check("ldt_data0_read", v0, 0xd0000001);
    check("ldt_data3_read", v3, 0x33333333);
    u16 es;
    asm volatile("movw %w1, %%ds\n\tmovl $0x5a5a5a5a, %%ds:8\n\tmovw %%ds, %0\n\t"
                 "movw $0x10, %%ax\n\tmovw %%ax, %%ds"
                 : "=r"(es) : "r"(LSEL_DATA0) : "eax", "memory");
    check("ldt_ds_selector", es, LSEL_DATA0);
    check("ldt_ds_write", ldt_data0[2], 0x5a5a5a5a);
    TRY(0, "movw %w[s], %%es", [s] "r"(LSEL_BEYOND));
    report("ldt_beyond_limit", 0, 13, LSEL_BEYOND, 0);
    TRY(1, "movw %w[s], %%es", [s] "r"(LSEL_NP));
    report("ldt_not_present_es", 1, 11, LSEL_NP, 0);
    TRY(2, "movw %w[s], %%ss", [s] "r"(LSEL_NP));
    report("ldt_not_present_ss", 2, 12, LSEL_NP, 0);
    TRY(3, "movw %w[s], %%ds", [s] "r"(LSEL_CODE));
    asm volatile("movw $0x10, %%ax\n\tmovw %%ax, %%ds" ::: "eax", "memory");
    no_fault("ldt_readable_code_into_ds", 3);
    asm volatile("movw $0x10, %%ax\n\tmovw %%ax, %%ds" ::: "eax", "memory");
}

/* ---- faulting loads and far transfers in ring 0 -------------------------- */

static void test_faults_ring0(void)
{
    TRY(4, "movw %w[s], %%ds", [s] "r"(SEL_LDT));
    report("ds_ldt_descriptor", 4, 13, SEL_LDT, 0);
    TRY(5, "movw %w[s], %%ds", [s] "r"(SEL_GATE32));
    report("ds_call_gate", 5, 13, SEL_GATE32, 0);
    TRY(6, "movw %w[s], %%fs", [s] "r"(SEL_TSS));
    report("fs_tss", 6, 13, SEL_TSS, 0);
    TRY(7, "movw %w[s], %%gs", [s] "r"(SEL_XCODE3));
    report("gs_exec_only_code", 7, 13, SEL_XCODE3, 0);
    TRY(8, "movw %w[s], %%ss", [s] "r"(SEL_KDATA | 3));
    report("ss_rpl_ne_cpl", 8, 13, SEL_KDATA, 0);
    TRY(9, "movw %w[s], %%ss", [s] "r"(SEL_DATA1));
    report("ss_dpl_ne_cpl", 9, 13, SEL_DATA1, 0);
    TRY(10, "movw %w[s], %%ss", [s] "r"(SEL_KCODE));
    report("ss_code", 10, 13, SEL_KCODE, 0);
    TRY(11, "movw %w[s], %%ss", [s] "r"(SEL_EDOWN_RO));
    report("ss_read_only", 11, 13, SEL_EDOWN_RO, 0);
    TRY(12, "movw %w[s], %%ss", [s] "r"(SEL_NPDATA));
    report("ss_not_present", 12, 12, SEL_NPDATA, 0);
    TRY(13, "movw %w[s], %%ds", [s] "r"(SEL_DATA1 | 3));
    report("ds_rpl3_dpl1", 13, 13, SEL_DATA1, 0);
    TRY(14, "movw %w[s], %%ds", [s] "r"(SEL_DATA1 | 1));
    no_fault("ds_rpl1_dpl1", 14);
    TRY(15, "lcall %[g], $0", [g] "i"(SEL_GATE_UP));
    report("lcall_gate_to_outer_ring", 15, 13, SEL_UCODE & ~3, 0);
    TRY(16, "lcall %[g], $0", [g] "i"(SEL_GATE_NP));
    report("lcall_gate_not_present", 16, 11, SEL_GATE_NP, 0);
    TRY(17, "ljmp %[g], $0", [g] "i"(SEL_INTGATE));
    report("ljmp_interrupt_gate", 17, 13, SEL_INTGATE, 0);
    TRY(18, "ljmp %[g], $0", [g] "i"(SEL_NPCODE));
    report("ljmp_code_not_present", 18, 11, SEL_NPCODE, 0);
    TRY(19, "lcall %[g], $0", [g] "i"(SEL_BEYOND_BIG));
    report("lcall_beyond_gdt", 19, 13, SEL_BEYOND_BIG, 0);
    asm volatile("movw $0x10, %%ax\n\tmovw %%ax, %%ds\n\tmovw %%ax, %%fs\n\tmovw %%ax, %%gs"
                 ::: "eax", "memory");
}

/* ---- far pointers to expand-down segments --------------------------------- */

/* LDS that must fault: EAX (the destination) keeps its value. */
static void lds_fault(u32 slot, u32 off, u16 sel, const char *name, u32 vec)
{
    struct farptr p = { off, sel };
    u32 eax_after;
    char buf[48];
    asm volatile("movl $0x66666666, %%eax\n\t"
                 "movl $1f, expect_eip\n\tmovl $2f, resume_eip\n\tmovl %2, fault_slot\n"
                 "1:\tlds %1, %%eax\n2:\tmovl %%eax, %0"
                 : "=r"(eax_after) : "m"(p), "r"(slot) : "eax", "memory");
    report(name, slot, vec, sel, 0);
    u32 n = 0;
    while (name[n] && n < 32) {
        buf[n] = name[n];
        n++;
    }
    const char *suffix = "_eax_kept";
    for (u32 i = 0; suffix[i]; i++)
        buf[n++] = suffix[i];
    buf[n] = 0;
    check(buf, eax_after, 0x66666666);
}

static void test_far_pointers(void)
{
    struct farptr p;
    u32 off, sel, old_esp, new_esp, esp_after_push, restored;

    /* LDS with an expand-down segment: selector and offset loaded, data
     * read through it at a valid offset (above the limit). */
    edown_buf[0x1200 / 4] = 0xed0e0016;
    p = (struct farptr){ 0x1200, SEL_EDOWN16 };
    asm volatile("movw %%ds, %%cx\n\tlds %2, %0\n\tmovw %%ds, %w1\n\tmovl (%0), %0\n\t"
                 "movw %%cx, %%ds"
                 : "=&r"(off), "=&r"(sel) : "m"(p) : "ecx", "memory");
    check("lds_edown16_sel", sel & 0xffff, SEL_EDOWN16);
    check("lds_edown16_read", off, 0xed0e0016);

    /* LSS with the 32-bit expand-down segment, PUSH lands at base+ESP-4. */
    p = (struct farptr){ 0xfffff000, SEL_EDOWN32 };
    asm volatile("movl %%esp, %0\n\tmovw %%ss, %%cx\n\t"
                 "lss %4, %%esp\n\t"
                 "pushl $0xed320001\n\t"
                 "movl %%esp, %1\n\t"
                 "movw %%ss, %w2\n\t"
                 "movw %%cx, %%ss\n\tmovl %0, %%esp"
                 : "=&r"(old_esp), "=&r"(esp_after_push), "=&r"(sel), "=&r"(restored)
                 : "m"(p) : "ecx", "memory");
    check("lss_edown32_sel", sel & 0xffff, SEL_EDOWN32);
    check("lss_edown32_esp", esp_after_push, 0xffffeffc);
    check("lss_edown32_push", edown_buf[0x7fc / 4], 0xed320001);

    /* A B=0 expand-down SS: PUSH decrements SP only, ESP[31:16] stays. */
    p = (struct farptr){ 0xabcd2000, SEL_EDOWN16 };
    asm volatile("movl %%esp, %0\n\tmovw %%ss, %%cx\n\t"
                 "lss %3, %%esp\n\t"
                 "pushl $0xed160002\n\t"
                 "movl %%esp, %1\n\t"
                 "movw %%cx, %%ss\n\tmovl %0, %%esp"
                 : "=&r"(old_esp), "=&r"(esp_after_push), "=&r"(restored)
                 : "m"(p) : "ecx", "memory");
    check("lss_edown16_esp", esp_after_push, 0xabcd1ffc);
    check("lss_edown16_push", edown_buf[0x1ffc / 4], 0xed160002);

    /* Faulting LDS/LSS: the destination register and segment stay. */
    lds_fault(30, 0x1234, SEL_NPDATA, "lds_not_present", 11);
    lds_fault(31, 0x1234, SEL_LDT, "lds_system_descriptor", 13);
    lds_fault(34, 0x1234, SEL_BEYOND_BIG, "lds_beyond_gdt", 13);
    p = (struct farptr){ 0x1234, SEL_EDOWN_RO };
    asm volatile("movl %%esp, %0" : "=r"(old_esp));
    TRY(32, "lss %[m], %%esp", [m] "m"(p));
    asm volatile("movl %%esp, %0" : "=r"(new_esp));
    report("lss_read_only", 32, 13, SEL_EDOWN_RO, 0);
    check("lss_read_only_esp_kept", new_esp, old_esp);
    p = (struct farptr){ 0x1234, SEL_NPDATA };
    TRY(33, "lss %[m], %%esp", [m] "m"(p));
    asm volatile("movl %%esp, %0" : "=r"(new_esp));
    report("lss_not_present", 33, 12, SEL_NPDATA, 0);
    check("lss_not_present_esp_kept", new_esp, old_esp);
    u16 ds;
    asm volatile("movw %%ds, %0" : "=r"(ds));
    check("ds_kept", ds, SEL_KDATA);
    p = (struct farptr){ 0x4321, 0 };
    asm volatile("movw %%ds, %%cx\n\tlds %2, %0\n\tmovw %%ds, %w1\n\tmovw %%cx, %%ds"
                 : "=&r"(off), "=&r"(sel) : "m"(p) : "ecx", "memory");
    check("lds_null_sel", sel & 0xffff, 0);
    check("lds_null_off", off, 0x4321);
}

void kmain(u32 magic, u32 mbi)
{
    set_handler(11, fault_handler);
    set_handler(12, fault_handler);
    set_handler(13, fault_handler);
    set_handler(0x80, syscall_handler);
    idt_set_dpl(0x80, 3);
    setup_gdt();
    u32 ustack = (u32)user_stack + sizeof(user_stack);

    test_gates_ring0();
    test_ldt();
    user_run((u32)user_gates, ustack, 0x2);
    check_ring3_gates();
    test_faults_ring0();
    test_far_pointers();
    test_arpl();
    probe_all(0, probes[0]);
    probe_all(3, probes[1]);
    user_run((u32)user_probe, ustack, 0x2);
    print_probes();
}
