/* nano: the nanobenchmarks of Adams & Agesen (ASPLOS 2006, Figure 4), for
 * `bt86 bench --nano`. Command line: bench=NAME iters=N. The kernel sets up
 * what NAME needs, runs its operation N times in a tight loop (the loop
 * itself is one DEC and one JNZ per iteration), prints
 *     nano NAME iters=N
 * and exits with the pass status. The host times runs at two values of N
 * and divides the difference, so boot and set-up cancel out.
 *
 * Without bench= every benchmark runs once with iters (default 100): that
 * is the image's self-test (guest-images/expected/nano.out).
 *
 *   none      the empty loop (DEC; JNZ): the overhead in every other figure
 *   syscall   ring 3: INT $0x80 through a DPL-3 interrupt gate to a ring-0
 *             handler that is a lone IRET (TSS ESP0 stack switch both ways)
 *   sysenter  ring 3: SYSENTER to a ring-0 entry that is a lone SYSEXIT
 *   in        ring 0: IN AL, 0x80 (the POST port; the value is ignored)
 *   cli       ring 0: CLI; STI
 *   popf      ring 0: PUSHF; POPF
 *   callret   ring 0: CALL to a function that is a lone RET
 *   divzero   ring 0: DIV by zero; the #DE handler steps EIP over the DIV
 *   pgfault   paging on: clear P in a PTE, INVLPG, read the page; the #PF
 *             handler sets P again and IRET retries the read
 *   ptemod    paging on: write a PTE (alternating between two frames),
 *             INVLPG, read through it
 *
 * The exception and gate handlers are bare assembly (no register frame, no
 * C dispatcher): the figure is the cost of the transition, not of a kernel's
 * bookkeeping. The PIC is masked, so STI lets no interrupt in. */
#include "rt.h"

#define TEST_VA 0x80000000u

u32 nano_count;  /* iterations for the ring-3 loops (read in ring 3) */
u32 *nano_pte;   /* the PTE the #PF handler repairs */

extern char nano_iret[], nano_sysexit[], nano_pf[], nano_de[];
extern char nano_user_syscall[], nano_user_sysenter[];

asm(".text\n"
    /* INT $0x80 handler: nothing to do. */
    "nano_iret:\n"
    "    iret\n"
    /* SYSENTER entry: straight back (EIP = EDX, ESP = ECX). */
    "nano_sysexit:\n"
    "    sysexit\n"
    /* #PF: set P again; drop the error code; retry the access. */
    "nano_pf:\n"
    "    pushl %eax\n"
    "    movl nano_pte, %eax\n"
    "    orl $1, (%eax)\n"
    "    popl %eax\n"
    "    addl $4, %esp\n"
    "    iret\n"
    /* #DE: resume after the two-byte DIV %ECX. */
    "nano_de:\n"
    "    addl $2, (%esp)\n"
    "    iret\n"
    /* The empty function of callret. */
    "nano_empty:\n"
    "    ret\n"
    /* Ring-3 loops; INT $0x81 returns to ring 0 when done. */
    "nano_user_syscall:\n"
    "    movl nano_count, %esi\n"
    "1:  int $0x80\n"
    "    decl %esi\n"
    "    jnz 1b\n"
    "    int $0x81\n"
    "nano_user_sysenter:\n"
    "    movl nano_count, %esi\n"
    "1:  movl %esp, %ecx\n"
    "    movl $2f, %edx\n"
    "    sysenter\n"
    "2:  decl %esi\n"
    "    jnz 1b\n"
    "    int $0x81\n");

static u8 user_stack[4096] __attribute__((aligned(16)));
static u8 sysenter_stack[1024] __attribute__((aligned(16)));
static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pt[1024] __attribute__((aligned(4096)));
static u32 frames[2][1024] __attribute__((aligned(4096)));
static int paging_on;

static void user_done(struct frame *f) { user_return(0); }

static void run_user(char *entry, u32 n)
{
    nano_count = n;
    user_run((u32)entry, (u32)user_stack + sizeof(user_stack), 0x002);
}

/* Identity map of the first 128 MiB with 4 MiB pages, and one 4 KiB page
 * at TEST_VA (frames[0]) through its own page table. */
static void paging(void)
{
    if (paging_on)
        return;
    for (u32 i = 0; i < 32; i++)
        pd[i] = (i << 22) | PG_P | PG_RW | PG_PS;
    pd[TEST_VA >> 22] = (u32)pt | PG_P | PG_RW;
    pt[(TEST_VA >> 12) & 0x3ff] = (u32)frames[0] | PG_P | PG_RW;
    nano_pte = &pt[(TEST_VA >> 12) & 0x3ff];
    frames[0][0] = 1;
    frames[1][0] = 2;
    write_cr4(read_cr4() | CR4_PSE);
    write_cr3((u32)pd);
    write_cr0(read_cr0() | CR0_PG);
    paging_on = 1;
}

static void bench_none(u32 n) { asm volatile("1: decl %0; jnz 1b" : "+r"(n)::"memory"); }

static void bench_syscall(u32 n)
{
    idt_gate(0x80, (u32)nano_iret, SEL_KCODE, 0xee); /* P, DPL 3, 32-bit interrupt gate */
    run_user(nano_user_syscall, n);
}

static void bench_sysenter(u32 n)
{
    wrmsr(0x174, SEL_KCODE);
    wrmsr(0x175, (u32)sysenter_stack + sizeof(sysenter_stack));
    wrmsr(0x176, (u32)nano_sysexit);
    run_user(nano_user_sysenter, n);
}

static void bench_in(u32 n) { asm volatile("1: inb $0x80, %%al; decl %0; jnz 1b" : "+r"(n)::"eax", "memory"); }

static void bench_cli(u32 n) { asm volatile("1: cli; sti; decl %0; jnz 1b; cli" : "+r"(n)::"memory"); }

static void bench_popf(u32 n) { asm volatile("1: pushfl; popfl; decl %0; jnz 1b" : "+r"(n)::"memory", "cc"); }

static void bench_callret(u32 n) { asm volatile("1: call nano_empty; decl %0; jnz 1b" : "+r"(n)::"memory"); }

static void bench_divzero(u32 n)
{
    idt_gate(0, (u32)nano_de, SEL_KCODE, 0x8e);
    asm volatile("1: xorl %%edx, %%edx; movl $1, %%eax; divl %%ecx; decl %0; jnz 1b"
                 : "+r"(n)
                 : "c"(0)
                 : "eax", "edx", "memory", "cc");
}

static void bench_pgfault(u32 n)
{
    paging();
    idt_gate(14, (u32)nano_pf, SEL_KCODE, 0x8e);
    asm volatile("1: andl $0xfffffffe, (%1); invlpg (%2); movl (%2), %%eax; decl %0; jnz 1b"
                 : "+r"(n)
                 : "r"(nano_pte), "r"(TEST_VA)
                 : "eax", "memory", "cc");
}

static void bench_ptemod(u32 n)
{
    paging();
    u32 pte = (u32)frames[0] | PG_P | PG_RW;
    u32 flip = (u32)frames[0] ^ (u32)frames[1];
    asm volatile("1: movl %1, (%2); invlpg (%3); movl (%3), %%eax; xorl %4, %1; decl %0; jnz 1b"
                 : "+r"(n), "+r"(pte)
                 : "r"(nano_pte), "r"(TEST_VA), "r"(flip)
                 : "eax", "memory", "cc");
    *nano_pte = (u32)frames[0] | PG_P | PG_RW;
    invlpg(TEST_VA);
}

struct bench {
    const char *name;
    void (*run)(u32 n);
};

/* In the order the self-test runs them: the paging ones last, because
 * paging stays on once a benchmark has turned it on. */
static const struct bench benches[] = {
    { "none", bench_none },         { "syscall", bench_syscall }, { "sysenter", bench_sysenter },
    { "in", bench_in },             { "cli", bench_cli },         { "popf", bench_popf },
    { "callret", bench_callret },   { "divzero", bench_divzero }, { "pgfault", bench_pgfault },
    { "ptemod", bench_ptemod },
};
#define NBENCH (sizeof(benches) / sizeof(benches[0]))

/* The value of "key=WORD" on the command line, copied to buf (at most
 * len-1 characters); 0 if the key is absent. */
static int cmdline_word(u32 mbi, const char *key, char *buf, u32 len)
{
    const u32 *info = (const u32 *)mbi;
    if (!mbi || !(info[0] & 4) || !info[4])
        return 0;
    const char *s = (const char *)info[4];
    while (*s) {
        while (*s == ' ')
            s++;
        const char *k = key, *w = s;
        while (*k && *w == *k) {
            k++;
            w++;
        }
        if (!*k && *w == '=') {
            u32 i = 0;
            for (w++; *w && *w != ' ' && i + 1 < len; w++)
                buf[i++] = *w;
            buf[i] = 0;
            return 1;
        }
        while (*s && *s != ' ')
            s++;
    }
    return 0;
}

static int streq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static void run(const struct bench *b, u32 n)
{
    if (n)
        b->run(n);
    tprintf("nano %s iters=%u\n", b->name, n);
}

void kmain(u32 magic, u32 mbi)
{
    pic_remap(0x20, 0x28); /* and mask every IRQ: STI lets nothing in */
    set_handler(0x81, user_done);
    idt_set_dpl(0x81, 3);
    u32 n = cmdline_uint(mbi, "iters", 100);
    char name[32];
    if (!cmdline_word(mbi, "bench", name, sizeof(name))) {
        for (u32 i = 0; i < NBENCH; i++)
            run(&benches[i], n);
        return;
    }
    for (u32 i = 0; i < NBENCH; i++) {
        if (streq(name, benches[i].name)) {
            run(&benches[i], n);
            return;
        }
    }
    tprintf("nano: unknown bench %s\n", name);
    rt_failures++;
}
