/* interrupts: 8259A remap to 0x20/0x28, 8254 channel 0 periodic ticks on
 * IRQ0 (waited for with STI;HLT), an IRQ held pending while IF=0 and taken
 * right after the instruction in the STI shadow, PIC masking/unmasking with
 * IRR latching, ISR/IRR read through OCW3 and cleared by EOI, and the 16550
 * THRE interrupt on IRQ4. Nothing here depends on how long anything takes:
 * every wait is a bounded loop that checks a condition. */
#include "rt.h"

#define VEC_IRQ0 0x20
#define VEC_IRQ4 0x24
#define COM1 0x3f8
#define WAIT_LIMIT 20000000u
#define HLT_LIMIT 100000u

static volatile u32 ticks, last_tick_eip, isr_in_handler, isr_after_eoi;
static volatile u32 uart_irqs, uart_iir;

static void irq0_handler(struct frame *f)
{
    ticks++;
    last_tick_eip = f->eip;
    if (ticks == 1)
        isr_in_handler = pic_read_isr();
    pic_eoi(0);
    if (ticks == 1)
        isr_after_eoi = pic_read_isr();
}

static void irq4_handler(struct frame *f)
{
    uart_irqs++;
    uart_iir = inb(COM1 + 2);
    outb(COM1 + 1, 0x00); /* IER off: no more THRE interrupts */
    pic_eoi(4);
}

/* HLT until ticks reaches n (IF=1 only inside the STI;HLT pair). */
static void wait_ticks(u32 n)
{
    u32 guard = 0;
    cli();
    while (ticks < n) {
        if (++guard > HLT_LIMIT) {
            tprintf("wait_ticks: timeout\n");
            rt_exit(EXIT_TIMEOUT);
        }
        asm volatile("sti\n\thlt\n\tcli" ::: "memory");
    }
}

static void test_timer(void)
{
    pit_periodic(11932); /* ~100 Hz */
    pic_set_mask(0xfffe);
    check("pic_mask_readback", pic_get_mask(), 0xfffe);
    wait_ticks(5);
    check("timer_5_ticks", ticks >= 5, 1);
    check("isr_bit0_in_handler", isr_in_handler & 1, 1);
    check("isr_clear_after_eoi", isr_after_eoi & 1, 0);
}

/* With IF=0 the tick stays pending in IRR; after STI it is taken once the
 * next instruction has run (the STI shadow), not before. */
u32 shadow_expect;
static void test_sti_shadow(void)
{
    cli();
    WAIT_UNTIL("irr_pending", pic_read_irr() & 1, WAIT_LIMIT);
    check("irr_bit0_pending_if0", pic_read_irr() & 1, 1);
    u32 before = ticks, marker = 0;
    asm volatile("movl $2f, %[e]\n\t"
                 "sti\n\t"
                 "movl $1, %[m]\n"
                 "2:\tnop\n\t"
                 "cli"
                 : [e] "=m"(shadow_expect), [m] "=r"(marker)
                 :
                 : "memory");
    check("pending_taken_after_sti", ticks, before + 1);
    check("taken_after_shadow_insn", last_tick_eip, shadow_expect);
    check("shadow_insn_ran", marker, 1);
}

static void test_mask(void)
{
    cli();
    pic_set_mask(0xffff);
    pic_eoi(0);
    u32 before = ticks;
    sti();
    WAIT_UNTIL("irr_masked", pic_read_irr() & 1, WAIT_LIMIT);
    for (volatile int i = 0; i < 1000; i++)
        ;
    cli();
    check("masked_irq_latched_in_irr", pic_read_irr() & 1, 1);
    check("masked_irq_not_delivered", ticks, before);
    pic_set_mask(0xfffe);
    sti();
    WAIT_UNTIL("unmasked_delivery", ticks != before, WAIT_LIMIT);
    cli();
    check("unmasked_irq_delivered", ticks > before, 1);
    pic_set_mask(0xffff);
}

static void test_uart(void)
{
    cli();
    pic_set_mask(0xffef); /* IRQ4 only */
    outb(COM1 + 1, 0x02); /* IER: THRE */
    sti();
    WAIT_UNTIL("uart_irq", uart_irqs != 0, WAIT_LIMIT);
    cli();
    pic_set_mask(0xffff);
    check("uart_thre_irq_count", uart_irqs, 1);
    check("uart_iir_thre", uart_iir & 0x0f, 0x02);
}

void kmain(u32 magic, u32 mbi)
{
    pic_remap(0x20, 0x28);
    check("pic_all_masked", pic_get_mask(), 0xffff);
    set_handler(VEC_IRQ0, irq0_handler);
    set_handler(VEC_IRQ4, irq4_handler);
    test_timer();
    test_sti_shadow();
    test_mask();
    test_uart();
    pit_periodic(0); /* quiet */
    cli();
}
