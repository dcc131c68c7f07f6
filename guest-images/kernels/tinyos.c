/* tinyos: a tiny preemptive OS. Three ring-3 tasks, each in its own page
 * directory (same virtual addresses, different frames), scheduled round
 * robin by the PIT tick and by yield(); system calls write, yield, exit,
 * getpid, nexited through INT 0x80. Output is deterministic whatever the
 * timer phase: write() appends to a per-task buffer that the kernel prints
 * in task order at the end.
 *
 *   task 0  counts primes below 20000, yielding between blocks
 *   task 1  longest Collatz chain below 30000
 *   task 2  spins (never yields) until the others have exited, so it only
 *           finishes if the timer preempts it; then reads kernel memory
 *           and is killed by the #PF.
 *
 * User code lives in .utext/.urodata (mapped user-readable); every task's
 * data page is at UDATA and its stack just above it. */
#include "rt.h"

#define NTASKS 3
#define UDATA 0x40000000u
#define USTACK_TOP (UDATA + 0x2000)
#define SYS_WRITE 1
#define SYS_YIELD 2
#define SYS_EXIT 3
#define SYS_GETPID 4
#define SYS_NEXITED 5
#define OUT_MAX 512
#define SPIN_LIMIT 20000000u

extern char __utext_start[], __utext_end[];

/* ---------------------------------------------------------------- ring 3 */

#define U __attribute__((section(".utext"), noinline))
#define UCONST __attribute__((section(".urodata")))

struct udata {
    char line[128];
};
#define UD ((struct udata *)UDATA)

U static u32 usys(u32 n, u32 a, u32 b)
{
    u32 r;
    asm volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b) : "memory");
    return r;
}

/* Appends s and then v in decimal (if with_num) to UD->line at *len. */
U static void uput(u32 *len, const char *s)
{
    while (*s)
        UD->line[(*len)++] = *s++;
}

U static void uput_dec(u32 *len, u32 v)
{
    char tmp[12];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        UD->line[(*len)++] = tmp[--n];
}

U static void usay(const char *s, u32 v)
{
    u32 len = 0;
    uput(&len, s);
    uput_dec(&len, v);
    UD->line[len++] = '\n';
    usys(SYS_WRITE, (u32)UD->line, len);
}

static const char s_pid[] UCONST = "pid ";
static const char s_primes[] UCONST = "primes below ";
static const char s_count[] UCONST = "prime count ";
static const char s_collatz_n[] UCONST = "collatz longest start ";
static const char s_collatz_len[] UCONST = "collatz longest steps ";
static const char s_spin[] UCONST = "others exited: ";

U static int uis_prime(u32 n)
{
    if (n < 2)
        return 0;
    for (u32 d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return 1;
}

U static void task_primes(void)
{
    usay(s_pid, usys(SYS_GETPID, 0, 0));
    u32 count = 0;
    for (u32 block = 0; block < 4; block++) {
        for (u32 n = block * 5000; n < (block + 1) * 5000; n++)
            count += uis_prime(n);
        usay(s_primes, (block + 1) * 5000);
        usys(SYS_YIELD, 0, 0);
    }
    usay(s_count, count);
    usys(SYS_EXIT, count, 0);
}

U static void task_collatz(void)
{
    usay(s_pid, usys(SYS_GETPID, 0, 0));
    u32 best = 0, best_n = 0;
    for (u32 n = 1; n < 30000; n++) {
        u32 steps = 0;
        for (u32 x = n; x != 1; steps++)
            x = (x & 1) ? 3 * x + 1 : x / 2;
        if (steps > best)
            best = steps, best_n = n;
        if (n % 10000 == 0)
            usys(SYS_YIELD, 0, 0);
    }
    usay(s_collatz_n, best_n);
    usay(s_collatz_len, best);
    usys(SYS_EXIT, best_n, 0);
}

U static void task_spinner(void)
{
    usay(s_pid, usys(SYS_GETPID, 0, 0));
    u32 guard = 0;
    while (usys(SYS_NEXITED, 0, 0) < 2)
        if (++guard > SPIN_LIMIT)
            usys(SYS_EXIT, 0xbad, 0);
    usay(s_spin, 2);
    (void)*(volatile u32 *)0x100000; /* kernel memory: #PF kills us */
    usys(SYS_EXIT, 0, 0);
}

/* ---------------------------------------------------------------- ring 0 */

enum { RUNNABLE, EXITED };
struct task {
    u32 state, exit_code, fault_cr2;
    u32 *pd;
    struct frame *frame;
    u8 kstack[4096] __attribute__((aligned(16)));
    char out[OUT_MAX];
    u32 out_len;
};

static struct task tasks[NTASKS] __attribute__((aligned(16)));
static u32 current, nexited, syscalls[NTASKS];
static void (*const entries[NTASKS])(void) = { task_primes, task_collatz, task_spinner };

static void switch_to(u32 t)
{
    current = t;
    rt_tss.esp0 = (u32)tasks[t].kstack + sizeof(tasks[t].kstack);
    write_cr3((u32)tasks[t].pd);
    rt_next_frame = tasks[t].frame;
}

/* Round robin to the next runnable task; back to kmain when none is left. */
static void schedule(void)
{
    for (u32 i = 1; i <= NTASKS; i++) {
        u32 t = (current + i) % NTASKS;
        if (tasks[t].state == RUNNABLE) {
            switch_to(t);
            return;
        }
    }
    user_return(0);
}

static void task_exit(u32 code)
{
    tasks[current].state = EXITED;
    tasks[current].exit_code = code;
    nexited++;
    schedule();
}

static void do_write(struct task *t, u32 buf, u32 len)
{
    if (buf < UDATA || len > 128 || buf + len > USTACK_TOP)
        return;
    for (u32 i = 0; i < len && t->out_len < OUT_MAX; i++)
        t->out[t->out_len++] = ((const char *)buf)[i];
}

static void syscall_handler(struct frame *f)
{
    struct task *t = &tasks[current];
    t->frame = f;
    syscalls[current]++;
    switch (f->eax) {
    case SYS_WRITE: do_write(t, f->ebx, f->ecx); f->eax = f->ecx; break;
    case SYS_YIELD: f->eax = 0; schedule(); break;
    case SYS_EXIT: task_exit(f->ebx); break;
    case SYS_GETPID: f->eax = current; break;
    case SYS_NEXITED: f->eax = nexited; break;
    default: f->eax = 0xffffffff;
    }
}

static void timer_handler(struct frame *f)
{
    pic_eoi(0);
    if ((f->cs & 3) == 0)
        return; /* only the start-up path runs in ring 0 with IF=1 */
    tasks[current].frame = f;
    schedule();
}

static void fault_handler(struct frame *f)
{
    if ((f->cs & 3) == 0) {
        tprintf("kernel fault: vector %u eip 0x%x\n", f->vector, f->eip);
        rt_exit(EXIT_UNEXPECTED);
    }
    tasks[current].frame = f;
    tasks[current].fault_cr2 = f->vector == 14 ? read_cr2() : 0;
    task_exit(0xdead0000 | f->vector);
}

static void start_handler(struct frame *f) { switch_to(0); }
static void launch(void) { asm volatile("int $0x81" ::: "memory"); }

static void task_setup(u32 i, u32 *kernel_pt_pde)
{
    struct task *t = &tasks[i];
    t->pd = pg_new_dir();
    t->pd[0] = *kernel_pt_pde;
    pg_map(t->pd, UDATA, (u32)pg_alloc(), PG_P | PG_RW | PG_US);
    pg_map(t->pd, UDATA + 0x1000, (u32)pg_alloc(), PG_P | PG_RW | PG_US);
    struct frame *f = (struct frame *)(t->kstack + sizeof(t->kstack)) - 1;
    f->gs = f->fs = f->es = f->ds = SEL_UDATA;
    f->eip = (u32)entries[i];
    f->cs = SEL_UCODE;
    f->eflags = 0x202;
    f->user_esp = USTACK_TOP;
    f->user_ss = SEL_UDATA;
    t->frame = f;
}

static u32 k_primes(void)
{
    u32 c = 0;
    for (u32 n = 2; n < 20000; n++) {
        u32 p = 1;
        for (u32 d = 2; d * d <= n; d++)
            if (n % d == 0) {
                p = 0;
                break;
            }
        c += p;
    }
    return c;
}

static u32 k_collatz(void)
{
    u32 best = 0, best_n = 0;
    for (u32 n = 1; n < 30000; n++) {
        u32 s = 0;
        for (u32 x = n; x != 1; s++)
            x = (x & 1) ? 3 * x + 1 : x / 2;
        if (s > best)
            best = s, best_n = n;
    }
    return best_n;
}

void kmain(u32 magic, u32 mbi)
{
    u32 *kpd = pg_new_dir();
    pg_identity(kpd, 0, 0x400000, PG_P | PG_RW);
    for (u32 a = (u32)__utext_start; a < (u32)__utext_end; a += 4096)
        *pg_pte(kpd, a) |= PG_US;
    for (u32 i = 0; i < NTASKS; i++)
        task_setup(i, &kpd[0]);
    for (u32 v = 0; v < 32; v++)
        if (v != 2 && v != 9 && (v < 15 || v > 16))
            set_handler(v, fault_handler);
    set_handler(0x80, syscall_handler);
    idt_set_dpl(0x80, 3);
    set_handler(0x81, start_handler);
    set_handler(0x20, timer_handler);
    pic_remap(0x20, 0x28);
    pit_periodic(11932);
    pic_set_mask(0xfffe);
    pg_enable(kpd);

    user_run_with(launch);

    pic_set_mask(0xffff);
    pg_disable();
    for (u32 i = 0; i < NTASKS; i++) {
        struct task *t = &tasks[i];
        tprintf("--- task %u output (%u bytes)\n", i, t->out_len);
        for (u32 k = 0; k < t->out_len; k++)
            out_char(t->out[k]);
        tprintf("task%u_exit: 0x%x\n", i, t->exit_code);
    }
    check("task0_primes", tasks[0].exit_code, k_primes());
    check("task1_collatz", tasks[1].exit_code, k_collatz());
    check("task2_killed_by_pf", tasks[2].exit_code, 0xdead000e);
    check("task2_fault_cr2", tasks[2].fault_cr2, 0x100000);
    check("all_exited", nexited, NTASKS);
    check("task0_syscalls", syscalls[0], 12); /* getpid, 6 writes, 4 yields, exit */
    check("task1_syscalls", syscalls[1], 7);  /* getpid, 3 writes, 2 yields, exit */
}
