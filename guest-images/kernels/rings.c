/* rings: ring 3 via IRET, INT 0x80 system calls through a DPL-3 gate, the
 * TSS ESP0 stack switch, SYSENTER/SYSEXIT, #GP for privileged instructions
 * in ring 3 (CLI, HLT, IN, OUT, MOV CR0, INT to a DPL-0 gate), IRET back to
 * ring 3 after each, and the return to ring 0 at the end. */
#include "rt.h"

#define SYS_ECHO 1    /* returns ebx + 1 */
#define SYS_PROBE 2   /* records the frame the CPU built */
#define SYS_EXIT 3    /* back to ring 0 with ebx */

static u8 user_stack[4096] __attribute__((aligned(16)));
static u8 esp0_stack[4096] __attribute__((aligned(16)));
static u8 sysenter_stack[1024] __attribute__((aligned(16)));

/* Written in ring 3 (paging is off and the user data segment is flat). */
u32 expect_eip, resume_eip;
static u32 user_results[16];

/* Recorded by the ring-0 handlers. */
static u32 probe_frame, probe_cs, probe_ss, probe_esp, probe_eflags, probe_user_esp_seen;
struct gp_record {
    u32 count, err, cpl, eip_ok;
};
static struct gp_record gp[8];
static u32 gp_index;
static u32 sysenter_cs, sysenter_esp, sysenter_ebx;

static void syscall_handler(struct frame *f)
{
    switch (f->eax) {
    case SYS_ECHO:
        f->eax = f->ebx + 1;
        break;
    case SYS_PROBE:
        probe_frame = (u32)f;
        probe_cs = f->cs;
        probe_ss = f->user_ss;
        probe_esp = f->user_esp;
        probe_eflags = f->eflags;
        probe_user_esp_seen = f->ebx;
        f->eax = 0;
        break;
    case SYS_EXIT:
        user_return(f->ebx);
    default:
        f->eax = 0xffffffff;
    }
}

static void gp_handler(struct frame *f)
{
    struct gp_record *r = &gp[gp_index & 7];
    r->count++;
    r->err = f->err;
    r->cpl = f->cs & 3;
    r->eip_ok = f->eip == expect_eip;
    f->eip = resume_eip;
}

u32 sysenter_handler(u32 eax, u32 ebx, u32 esp)
{
    u16 cs;
    asm volatile("mov %%cs, %0" : "=r"(cs));
    sysenter_cs = cs;
    sysenter_esp = esp;
    sysenter_ebx = ebx;
    return eax == 7 ? ebx * 2 : 0xffffffff;
}

/* ---- ring 3 ------------------------------------------------------------- */

static inline u32 sys(u32 n, u32 a)
{
    u32 r;
    asm volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a) : "memory");
    return r;
}

static inline u32 sys_enter(u32 n, u32 a)
{
    u32 r;
    asm volatile("movl %%esp, %%ecx\n\tmovl $1f, %%edx\n\tsysenter\n1:"
                 : "=a"(r) : "a"(n), "b"(a) : "ecx", "edx", "memory");
    return r;
}

/* Run insn; the #GP handler checks the saved EIP and resumes after it. */
#define EXPECT_GP(idx, insn, ...)                                               \
    asm volatile("movl %[i], %[gi]\n\t"                                         \
                 "movl $1f, %[e]\n\tmovl $2f, %[r]\n1:\t" insn "\n2:"           \
                 : [e] "=m"(expect_eip), [r] "=m"(resume_eip), [gi] "=m"(gp_index) \
                 : [i] "i"(idx), ##__VA_ARGS__ : "eax", "memory")

static void user_main(void)
{
    u16 cs, ss;
    asm volatile("mov %%cs, %0\n\tmov %%ss, %1" : "=r"(cs), "=r"(ss));
    user_results[0] = cs;
    user_results[1] = ss;
    user_results[2] = sys(SYS_ECHO, 41);
    u32 esp;
    asm volatile("mov %%esp, %0" : "=r"(esp));
    user_results[3] = sys(SYS_PROBE, esp);
    /* callee-saved registers survive the round trip through ring 0 */
    u32 si = 0x5151, di = 0xd1d1;
    asm volatile("int $0x80" : "+S"(si), "+D"(di) : "a"(SYS_ECHO), "b"(0) : "memory");
    user_results[4] = si == 0x5151 && di == 0xd1d1;
    EXPECT_GP(0, "cli");
    EXPECT_GP(1, "hlt");
    EXPECT_GP(2, "inb %%dx, %%al", "d"(0x3f8));
    EXPECT_GP(3, "outb %%al, %%dx", "d"(0x80));
    EXPECT_GP(4, "movl %%cr0, %%eax");
    EXPECT_GP(5, "int $0x81");
    user_results[5] = sys_enter(7, 0x1234);
    asm volatile("mov %%cs, %0\n\tmov %%ss, %1" : "=r"(cs), "=r"(ss));
    user_results[6] = cs;
    user_results[7] = ss;
    user_results[8] = read_eflags() & EFLAGS_IF;
    sys(SYS_EXIT, 0xc0de);
    for (;;) /* not reached */
        ;
}

/* ---- ring 0 ------------------------------------------------------------- */

static void check_gp(const char *name, u32 idx, u32 err)
{
    tprintf("%s: count=%u err=0x%x cpl=%u eip_ok=%u\n", name, gp[idx].count, gp[idx].err,
            gp[idx].cpl, gp[idx].eip_ok);
    if (gp[idx].count != 1 || gp[idx].err != err || gp[idx].cpl != 3 || !gp[idx].eip_ok) {
        rt_failures++;
        tprintf("%s: FAIL\n", name);
    }
}

void kmain(u32 magic, u32 mbi)
{
    pic_remap(0x20, 0x28); /* all IRQs masked */
    set_handler(0x80, syscall_handler);
    idt_set_dpl(0x80, 3);
    set_handler(13, gp_handler);
    rt_tss.esp0 = (u32)esp0_stack + sizeof(esp0_stack);
    wrmsr(0x174, SEL_KCODE);
    wrmsr(0x175, (u32)sysenter_stack + sizeof(sysenter_stack));
    wrmsr(0x176, (u32)sysenter_entry);
    check("sysenter_cs_msr", (u32)rdmsr(0x174), SEL_KCODE);

    u32 user_esp = (u32)user_stack + sizeof(user_stack);
    u32 ret = user_run((u32)user_main, user_esp, 0x202);
    u16 cs;
    asm volatile("mov %%cs, %0" : "=r"(cs));

    check("back_in_ring0_value", ret, 0xc0de);
    check("back_in_ring0_cs", cs, SEL_KCODE);
    check("user_cs", user_results[0], SEL_UCODE);
    check("user_ss", user_results[1], SEL_UDATA);
    check("int80_echo", user_results[2], 42);
    check("int80_probe_ret", user_results[3], 0);
    check("frame_at_esp0_top", probe_frame + sizeof(struct frame), rt_tss.esp0);
    check("frame_cs", probe_cs, SEL_UCODE);
    check("frame_ss", probe_ss, SEL_UDATA);
    check("frame_user_esp", probe_esp, probe_user_esp_seen);
    check("frame_eflags_if", probe_eflags & EFLAGS_IF, EFLAGS_IF);
    check("regs_preserved", user_results[4], 1);
    check_gp("gp_cli", 0, 0);
    check_gp("gp_hlt", 1, 0);
    check_gp("gp_in", 2, 0);
    check_gp("gp_out", 3, 0);
    check_gp("gp_mov_cr0", 4, 0);
    check_gp("gp_int_dpl0_gate", 5, 0x81 * 8 + 2);
    check("sysenter_ret", user_results[5], 0x2468);
    check("sysenter_cs", sysenter_cs, SEL_KCODE);
    check("sysenter_esp", sysenter_esp, (u32)sysenter_stack + sizeof(sysenter_stack) - 8);
    check("sysenter_ebx", sysenter_ebx, 0x1234);
    check("sysexit_cs", user_results[6], SEL_UCODE);
    check("sysexit_ss", user_results[7], SEL_UDATA);
    check("user_if_after_sysexit", user_results[8], EFLAGS_IF);
}
