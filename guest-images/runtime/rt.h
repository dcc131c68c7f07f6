/* The bt86 guest runtime: everything a self-checking test kernel needs.
 *
 *   boot.S   Multiboot v1 header, _start, ISR stubs, setjmp/longjmp,
 *            ring-3 entry, SYSENTER entry
 *   rt.c     GDT/IDT/TSS, serial, exit, check(), PIC, PIT
 *   pgtab.c  page-directory helpers over a static frame pool
 *   fmt.c    tprintf (shared with the native ALU build)
 *
 * A kernel defines kmain(magic, mbi). When it returns, the runtime exits
 * through port 0xF4 with 0 if every check() passed, EXIT_FAIL otherwise. */
#ifndef BT86_RT_H
#define BT86_RT_H
#include "types.h"
#include "fmt.h"

/* Exit codes written to port 0xF4 (QEMU status = code*2+1). */
#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_UNEXPECTED 2 /* an interrupt/exception nobody expected */
#define EXIT_TIMEOUT 3    /* a wait guard ran out of iterations */

/* GDT selectors. */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE 0x1b
#define SEL_UDATA 0x23
#define SEL_TSS 0x28
#define GDT_FIRST_FREE 6 /* entries 6..GDT_ENTRIES-1 are the kernel's to use */
#define GDT_ENTRIES 16

#define EFLAGS_CF 0x001
#define EFLAGS_IF 0x200
#define EFLAGS_DF 0x400
#define EFLAGS_OF 0x800

/* The register frame every ISR stub builds (lowest address first). */
struct frame {
    u32 gs, fs, es, ds;
    u32 edi, esi, ebp, esp_pusha, ebx, edx, ecx, eax;
    u32 vector, err;
    u32 eip, cs, eflags;
    u32 user_esp, user_ss; /* valid only when (cs & 3) != 0 */
};

struct tss {
    u32 link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
    u32 eax, ecx, edx, ebx, esp, ebp, esi, edi;
    u32 es, cs, ss, ds, fs, gs, ldt;
    u16 trap, iomap;
};

typedef void (*handler_fn)(struct frame *f);

void kmain(u32 magic, u32 mbi);

/* boot.S */
struct boot_state { /* as the Multiboot loader left the CPU at _start */
    u32 eax, cs, ds, ss, es;
    u16 gdt_limit, gdt_base_lo, gdt_base_hi, pad;
    u32 cr0, esp, eflags;
};
extern struct boot_state boot_state;
extern char isr_stubs[];     /* 256 stubs, 16 bytes apart */
extern char rt_kstack0_top[]; /* the TSS ESP0 stack */
extern char sysenter_entry[];
typedef u32 jmp_buf[6];
int rt_setjmp(jmp_buf jb) __attribute__((returns_twice));
void rt_longjmp(jmp_buf jb, int val) __attribute__((noreturn));
void enter_user(u32 eip, u32 esp, u32 eflags) __attribute__((noreturn));

/* rt.c */
extern struct tss rt_tss;
extern int rt_failures;
extern struct frame *rt_next_frame; /* a handler may set it to switch context */
void rt_exit(u32 code) __attribute__((noreturn));
void check(const char *name, u32 got, u32 expected);
void kv(const char *name, u32 value);        /* name: 0x%x */
void kv_dec(const char *name, u32 value);    /* name: %u */
/* The value of "key=N" in the Multiboot command line, or dflt. */
u32 cmdline_uint(u32 mbi, const char *key, u32 dflt);
void set_handler(u32 vector, handler_fn fn);
void idt_gate(u32 vector, u32 addr, u16 sel, u8 type_attr);
void idt_set_dpl(u32 vector, u32 dpl);
void gdt_set(u32 index, u32 base, u32 limit, u8 access, u8 flags);
void serial_init(void);
void pic_remap(u8 master, u8 slave);
void pic_set_mask(u16 mask);   /* bit n masks IRQ n */
u16 pic_get_mask(void);
void pic_eoi(u32 irq);
u16 pic_read_irr(void);
u16 pic_read_isr(void);
void pit_periodic(u16 divisor);

/* Run fn-at-eip in ring 3 on stack esp; returns the value passed to
 * user_return() (called from a ring-0 handler). */
u32 user_run(u32 eip, u32 esp, u32 eflags);
void user_return(u32 value) __attribute__((noreturn));
/* Same, but launch() leaves ring 0 itself (e.g. INT n to a scheduler). */
u32 user_run_with(void (*launch)(void));

/* Spin while !(cond), at most limit iterations; exit(EXIT_TIMEOUT) if the
 * guard runs out. Iterations, never time. */
#define WAIT_UNTIL(what, cond, limit)                               \
    do {                                                            \
        u32 guard_ = 0;                                             \
        while (!(cond)) {                                           \
            if (++guard_ > (limit)) {                               \
                tprintf("%s: timeout\n", what);                     \
                rt_exit(EXIT_TIMEOUT);                              \
            }                                                       \
            asm volatile("" ::: "memory");                          \
        }                                                           \
    } while (0)

static inline void outb(u16 port, u8 v) { asm volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 inb(u16 port)
{
    u8 v;
    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline void cli(void) { asm volatile("cli" ::: "memory"); }
static inline void sti(void) { asm volatile("sti" ::: "memory"); }
static inline u32 read_eflags(void)
{
    u32 f;
    asm volatile("pushfl; popl %0" : "=r"(f));
    return f;
}
static inline u32 read_cr0(void) { u32 v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline u32 read_cr2(void) { u32 v; asm volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline u32 read_cr3(void) { u32 v; asm volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline u32 read_cr4(void) { u32 v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr0(u32 v) { asm volatile("mov %0, %%cr0" ::"r"(v) : "memory"); }
static inline void write_cr3(u32 v) { asm volatile("mov %0, %%cr3" ::"r"(v) : "memory"); }
static inline void write_cr4(u32 v) { asm volatile("mov %0, %%cr4" ::"r"(v) : "memory"); }
static inline void invlpg(u32 va) { asm volatile("invlpg (%0)" ::"r"(va) : "memory"); }
static inline void wrmsr(u32 msr, u64 v)
{
    asm volatile("wrmsr" ::"c"(msr), "a"((u32)v), "d"((u32)(v >> 32)));
}
static inline u64 rdmsr(u32 msr)
{
    u32 lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((u64)hi << 32) | lo;
}

/* pgtab.c */
#define PG_P 0x001
#define PG_RW 0x002
#define PG_US 0x004
#define PG_A 0x020
#define PG_D 0x040
#define PG_PS 0x080
#define CR0_WP 0x00010000u
#define CR0_PG 0x80000000u
#define CR4_PSE 0x10
u32 *pg_alloc(void);                       /* a zeroed 4 KiB frame from the pool */
u32 *pg_new_dir(void);
void pg_map(u32 *pd, u32 va, u32 pa, u32 flags);   /* 4 KiB page */
void pg_map_big(u32 *pd, u32 va, u32 pa, u32 flags); /* 4 MiB page (PSE) */
u32 *pg_pte(u32 *pd, u32 va);               /* 0 if no page table */
void pg_identity(u32 *pd, u32 start, u32 end, u32 flags); /* 4 KiB pages */
void pg_enable(u32 *pd);                    /* load CR3, set CR0.PG */
void pg_disable(void);
#endif
