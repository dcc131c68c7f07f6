/* Runtime core: descriptor tables, serial console, exit, checks, PIC, PIT. */
#include "rt.h"

#define COM1 0x3f8
#define LSR_THRE 0x20
#define DEBUG_EXIT_PORT 0xf4

struct gdt_entry {
    u16 limit_lo, base_lo;
    u8 base_mid, access, limit_flags, base_hi;
} __attribute__((packed));

struct idt_entry {
    u16 off_lo, sel;
    u8 zero, type_attr;
    u16 off_hi;
} __attribute__((packed));

struct dtr {
    u16 limit;
    u32 base;
} __attribute__((packed));

static struct gdt_entry gdt[GDT_ENTRIES] __attribute__((aligned(8)));
static struct idt_entry idt[256] __attribute__((aligned(8)));
static handler_fn handlers[256];
struct tss rt_tss __attribute__((aligned(128)));
int rt_failures;
struct frame *rt_next_frame;

/* ---- serial ---------------------------------------------------------- */

void serial_init(void)
{
    outb(COM1 + 1, 0x00); /* IER: no interrupts */
    outb(COM1 + 3, 0x80); /* DLAB */
    outb(COM1 + 0, 0x01); /* 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(COM1 + 2, 0x07); /* FIFO on, cleared */
    outb(COM1 + 4, 0x03); /* DTR, RTS */
}

void out_char(char c)
{
    u32 guard = 0;
    while (!(inb(COM1 + 5) & LSR_THRE)) {
        if (++guard > 10000000) {
            outb(DEBUG_EXIT_PORT, EXIT_TIMEOUT);
        }
    }
    outb(COM1, (u8)c);
}

/* ---- exit and checks --------------------------------------------------- */

void rt_exit(u32 code)
{
    outb(DEBUG_EXIT_PORT, (u8)code);
    for (;;)
        asm volatile("cli; hlt");
}

void check(const char *name, u32 got, u32 expected)
{
    if (got == expected) {
        tprintf("%s: ok\n", name);
    } else {
        rt_failures++;
        tprintf("%s: FAIL got 0x%x expected 0x%x\n", name, got, expected);
    }
}

void kv(const char *name, u32 value) { tprintf("%s: 0x%x\n", name, value); }
void kv_dec(const char *name, u32 value) { tprintf("%s: %u\n", name, value); }

u32 cmdline_uint(u32 mbi, const char *key, u32 dflt)
{
    const u32 *info = (const u32 *)mbi;
    if (!mbi || !(info[0] & 4) || !info[4])
        return dflt;
    const char *s = (const char *)info[4];
    while (*s) {
        while (*s == ' ')
            s++;
        const char *k = key, *w = s;
        while (*k && *w == *k) {
            k++;
            w++;
        }
        if (!*k && *w == '=' && w[1] >= '0' && w[1] <= '9') {
            u32 v = 0;
            for (w++; *w >= '0' && *w <= '9'; w++)
                v = v * 10 + (u32)(*w - '0');
            return v;
        }
        while (*s && *s != ' ')
            s++;
    }
    return dflt;
}

/* ---- descriptor tables ------------------------------------------------- */

void gdt_set(u32 i, u32 base, u32 limit, u8 access, u8 flags)
{
    gdt[i].limit_lo = (u16)limit;
    gdt[i].base_lo = (u16)base;
    gdt[i].base_mid = (u8)(base >> 16);
    gdt[i].access = access;
    gdt[i].limit_flags = (u8)(((limit >> 16) & 0x0f) | (flags << 4));
    gdt[i].base_hi = (u8)(base >> 24);
}

void idt_gate(u32 v, u32 addr, u16 sel, u8 type_attr)
{
    idt[v].off_lo = (u16)addr;
    idt[v].sel = sel;
    idt[v].zero = 0;
    idt[v].type_attr = type_attr;
    idt[v].off_hi = (u16)(addr >> 16);
}

void idt_set_dpl(u32 v, u32 dpl)
{
    idt[v].type_attr = (u8)((idt[v].type_attr & ~0x60) | (dpl << 5));
}

void set_handler(u32 v, handler_fn fn) { handlers[v] = fn; }

static void load_tables(void)
{
    struct dtr g = { sizeof(gdt) - 1, (u32)gdt };
    struct dtr i = { sizeof(idt) - 1, (u32)idt };
    asm volatile("lgdt %0\n\t"
                 "ljmp $0x08, $1f\n"
                 "1:\n\t"
                 "movw $0x10, %%ax\n\t"
                 "movw %%ax, %%ds\n\t"
                 "movw %%ax, %%es\n\t"
                 "movw %%ax, %%fs\n\t"
                 "movw %%ax, %%gs\n\t"
                 "movw %%ax, %%ss\n\t"
                 "lidt %1\n\t"
                 "movw $0x28, %%ax\n\t"
                 "ltr %%ax"
                 :
                 : "m"(g), "m"(i)
                 : "eax", "memory");
}

static void tables_init(void)
{
    gdt_set(1, 0, 0xfffff, 0x9a, 0xc);
    gdt_set(2, 0, 0xfffff, 0x92, 0xc);
    gdt_set(3, 0, 0xfffff, 0xfa, 0xc);
    gdt_set(4, 0, 0xfffff, 0xf2, 0xc);
    rt_tss.ss0 = SEL_KDATA;
    rt_tss.esp0 = (u32)rt_kstack0_top;
    rt_tss.iomap = sizeof(struct tss); /* no I/O bitmap: IOPL alone decides */
    gdt_set(5, (u32)&rt_tss, sizeof(struct tss) - 1, 0x89, 0x0);
    for (u32 v = 0; v < 256; v++)
        idt_gate(v, (u32)isr_stubs + 16 * v, SEL_KCODE, 0x8e);
    load_tables();
}

static void unexpected(struct frame *f)
{
    tprintf("unexpected: vector 0x%x err 0x%x eip 0x%x cs 0x%x\n", f->vector, f->err,
            f->eip, f->cs);
    rt_exit(EXIT_UNEXPECTED);
}

struct frame *isr_dispatch(struct frame *f)
{
    rt_next_frame = f;
    if (handlers[f->vector])
        handlers[f->vector](f);
    else
        unexpected(f);
    return rt_next_frame;
}

/* ---- ring 3 round trip ------------------------------------------------- */

static jmp_buf user_jb;
static u32 user_value;

u32 user_run(u32 eip, u32 esp, u32 eflags)
{
    if (rt_setjmp(user_jb) == 0)
        enter_user(eip, esp, eflags);
    return user_value;
}

u32 user_run_with(void (*launch)(void))
{
    if (rt_setjmp(user_jb) == 0) {
        launch();
        tprintf("user_run_with: launch returned\n");
        rt_exit(EXIT_UNEXPECTED);
    }
    return user_value;
}

void user_return(u32 value)
{
    user_value = value;
    rt_longjmp(user_jb, 1);
}

/* ---- 8259A PIC and 8254 PIT -------------------------------------------- */

void pic_remap(u8 master, u8 slave)
{
    outb(0x20, 0x11); /* ICW1: edge, cascade, ICW4 */
    outb(0xa0, 0x11);
    outb(0x21, master);
    outb(0xa1, slave);
    outb(0x21, 0x04); /* slave on IRQ2 */
    outb(0xa1, 0x02);
    outb(0x21, 0x01); /* 8086 mode */
    outb(0xa1, 0x01);
    pic_set_mask(0xffff);
}

void pic_set_mask(u16 mask)
{
    outb(0x21, (u8)mask);
    outb(0xa1, (u8)(mask >> 8));
}

u16 pic_get_mask(void) { return (u16)(inb(0x21) | (inb(0xa1) << 8)); }

void pic_eoi(u32 irq)
{
    if (irq >= 8)
        outb(0xa0, 0x20);
    outb(0x20, 0x20);
}

static u16 pic_read_ocw3(u8 ocw3)
{
    outb(0x20, ocw3);
    outb(0xa0, ocw3);
    return (u16)(inb(0x20) | (inb(0xa0) << 8));
}

u16 pic_read_irr(void) { return pic_read_ocw3(0x0a); }
u16 pic_read_isr(void) { return pic_read_ocw3(0x0b); }

void pit_periodic(u16 divisor)
{
    outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2 */
    outb(0x40, (u8)divisor);
    outb(0x40, (u8)(divisor >> 8));
}

/* ---- entry ------------------------------------------------------------- */

/* paging=1 on the command line: run the kernel with paging on, through an
 * identity map of 4 MiB pages (CR4.PSE) over the whole 4 GiB, so the same
 * object code can be measured with and without paging. */
static u32 identity_pd[1024] __attribute__((aligned(4096)));

static void identity_paging(void)
{
    for (u32 i = 0; i < 1024; i++)
        identity_pd[i] = (i << 22) | 0x87; /* P, RW, US, PS */
    asm volatile("mov %%cr4, %%eax; or $0x10, %%eax; mov %%eax, %%cr4" ::: "eax");
    asm volatile("mov %0, %%cr3" ::"r"(identity_pd));
    asm volatile("mov %%cr0, %%eax; or $0x80000000, %%eax; mov %%eax, %%cr0" ::: "eax", "memory");
}

void rt_main(u32 magic, u32 mbi) __attribute__((noreturn));
void rt_main(u32 magic, u32 mbi)
{
    serial_init();
    tables_init();
    if (cmdline_uint(mbi, "paging", 0))
        identity_paging();
    kmain(magic, mbi);
    rt_exit(rt_failures ? EXIT_FAIL : EXIT_PASS);
}

/* Kernels that use SYSENTER override this. */
__attribute__((weak)) u32 sysenter_handler(u32 eax, u32 ebx, u32 esp)
{
    tprintf("unexpected: sysenter\n");
    rt_exit(EXIT_UNEXPECTED);
}
