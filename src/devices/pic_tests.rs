//! Unit tests of the 8259A pair, driven through its ports as a kernel would.

use super::*;

fn out(p: &mut PicPair, port: u16, v: u8) {
    p.write(port, 1, u32::from(v), 0);
}

fn inb(p: &mut PicPair, port: u16) -> u8 {
    p.read(port, 1, 0) as u8
}

/// The classic remap: master to 0x20, slave to 0x28, 8086 mode.
fn remapped(icw1: u8, icw4: u8) -> PicPair {
    let mut p = PicPair::default();
    out(&mut p, 0x20, icw1);
    out(&mut p, 0xa0, icw1);
    out(&mut p, 0x21, 0x20);
    out(&mut p, 0xa1, 0x28);
    out(&mut p, 0x21, 0x04);
    out(&mut p, 0xa1, 0x02);
    out(&mut p, 0x21, icw4);
    out(&mut p, 0xa1, icw4);
    out(&mut p, 0x21, 0x00);
    out(&mut p, 0xa1, 0x00);
    p
}

fn pic() -> PicPair {
    remapped(0x11, 0x01)
}

#[test]
fn edge_irq_is_latched_acknowledged_and_eoid() {
    let mut p = pic();
    assert!(!p.interrupt_pending());
    p.set_irq(0, true);
    assert!(p.interrupt_pending());
    assert_eq!(p.acknowledge(), 0x20);
    assert!(!p.interrupt_pending());
    out(&mut p, 0x20, 0x0b); // OCW3: read ISR
    assert_eq!(inb(&mut p, 0x20), 0x01);
    out(&mut p, 0x20, 0x20); // non-specific EOI
    assert_eq!(inb(&mut p, 0x20), 0x00);
    // The line is still high: no new edge, no new request.
    p.set_irq(0, true);
    assert!(!p.interrupt_pending());
    p.set_irq(0, false);
    p.set_irq(0, true);
    assert!(p.interrupt_pending());
}

#[test]
fn edge_request_survives_line_drop() {
    let mut p = pic();
    p.set_irq(4, true);
    p.set_irq(4, false);
    assert!(p.interrupt_pending());
    assert_eq!(p.acknowledge(), 0x24);
}

#[test]
fn mask_blocks_and_irr_is_readable() {
    let mut p = pic();
    out(&mut p, 0x21, 0x01);
    assert_eq!(inb(&mut p, 0x21), 0x01);
    p.set_irq(0, true);
    assert!(!p.interrupt_pending());
    out(&mut p, 0x20, 0x0a); // OCW3: read IRR
    assert_eq!(inb(&mut p, 0x20), 0x01);
    out(&mut p, 0x21, 0x00);
    assert!(p.interrupt_pending());
}

#[test]
fn priority_and_nesting() {
    let mut p = pic();
    p.set_irq(3, true);
    p.set_irq(1, true);
    assert_eq!(p.acknowledge(), 0x21);
    // IRQ3 is lower priority than IRQ1 in service.
    assert!(!p.interrupt_pending());
    p.set_irq(0, true);
    assert_eq!(p.acknowledge(), 0x20); // higher priority nests
    out(&mut p, 0x20, 0x20); // EOI IRQ0
    out(&mut p, 0x20, 0x20); // EOI IRQ1
    assert_eq!(p.acknowledge(), 0x23);
}

#[test]
fn specific_eoi_and_rotation() {
    let mut p = pic();
    p.set_irq(5, true);
    assert_eq!(p.acknowledge(), 0x25);
    out(&mut p, 0x20, 0x65); // specific EOI IR5
    out(&mut p, 0x20, 0x0b);
    assert_eq!(inb(&mut p, 0x20), 0);
    // Set priority: IR3 lowest, so IR4 is highest.
    out(&mut p, 0x20, 0xc3);
    p.set_irq(3, true);
    p.set_irq(4, true);
    assert_eq!(p.acknowledge(), 0x24);
    out(&mut p, 0x20, 0xa0); // rotate on non-specific EOI
    assert_eq!(p.acknowledge(), 0x23);
}

#[test]
fn slave_cascade_delivers_through_ir2() {
    let mut p = pic();
    p.set_irq(12, true);
    assert!(p.interrupt_pending());
    assert_eq!(p.acknowledge(), 0x2c);
    out(&mut p, 0xa0, 0x0b);
    assert_eq!(inb(&mut p, 0xa0), 1 << 4);
    out(&mut p, 0x20, 0x0b);
    assert_eq!(inb(&mut p, 0x20), 1 << 2);
    out(&mut p, 0xa0, 0x20);
    out(&mut p, 0x20, 0x20);
    assert_eq!(inb(&mut p, 0x20), 0);
}

#[test]
fn slave_mask_blocks_cascade() {
    let mut p = pic();
    out(&mut p, 0xa1, 0xff);
    p.set_irq(8, true);
    assert!(!p.interrupt_pending());
    out(&mut p, 0xa1, 0x00);
    assert_eq!(p.acknowledge(), 0x28);
}

#[test]
fn level_mode_request_that_vanishes_is_spurious() {
    let mut p = remapped(0x19, 0x01);
    p.set_irq(3, true);
    assert!(p.interrupt_pending());
    p.set_irq(3, false);
    assert!(!p.interrupt_pending());
    assert_eq!(p.acknowledge(), 0x27);
    out(&mut p, 0x20, 0x0b);
    assert_eq!(inb(&mut p, 0x20), 0, "spurious IRQ7 sets no ISR bit");
}

#[test]
fn spurious_irq15_keeps_master_ir2_in_service() {
    let mut p = pic();
    p.set_irq(10, true);
    assert!(p.interrupt_pending());
    // The slave's request is masked between INTR and INTA.
    p.master.irr |= 1 << 2; // already latched by the master
    out(&mut p, 0xa1, 0x04);
    assert_eq!(p.acknowledge(), 0x2f);
    out(&mut p, 0x20, 0x0b);
    assert_eq!(inb(&mut p, 0x20), 0x04);
    out(&mut p, 0xa0, 0x0b);
    assert_eq!(inb(&mut p, 0xa0), 0);
}

#[test]
fn acknowledge_without_request_is_spurious_irq7() {
    let mut p = pic();
    assert_eq!(p.acknowledge(), 0x27);
}

#[test]
fn auto_eoi_leaves_isr_clear() {
    let mut p = remapped(0x11, 0x03);
    p.set_irq(1, true);
    assert_eq!(p.acknowledge(), 0x21);
    out(&mut p, 0x20, 0x0b);
    assert_eq!(inb(&mut p, 0x20), 0);
    p.set_irq(6, true);
    assert!(p.interrupt_pending());
}

#[test]
fn icw1_needs_a_new_edge_for_a_high_line() {
    let mut p = pic();
    p.set_irq(0, true);
    let mut q = p.clone();
    out(&mut q, 0x20, 0x11);
    out(&mut q, 0x21, 0x20);
    out(&mut q, 0x21, 0x04);
    out(&mut q, 0x21, 0x01);
    q.set_irq(0, true);
    assert!(!q.interrupt_pending());
    q.set_irq(0, false);
    q.set_irq(0, true);
    assert_eq!(q.acknowledge(), 0x20);
}

#[test]
fn poll_command_acknowledges() {
    let mut p = pic();
    out(&mut p, 0x20, 0x0c);
    assert_eq!(inb(&mut p, 0x20), 0);
    p.set_irq(6, true);
    out(&mut p, 0x20, 0x0c);
    assert_eq!(inb(&mut p, 0x20), 0x86);
    out(&mut p, 0x20, 0x0b);
    assert_eq!(inb(&mut p, 0x20), 0x40);
}

#[test]
fn special_mask_mode_allows_lower_priority() {
    let mut p = pic();
    p.set_irq(2, true);
    // IR2 with nothing on the slave: master acknowledges, slave spurious.
    assert_eq!(p.acknowledge(), 0x2f);
    p.set_irq(5, true);
    assert!(!p.interrupt_pending());
    out(&mut p, 0x21, 0x04); // mask IR2
    out(&mut p, 0x20, 0x68); // OCW3: set special mask
    assert_eq!(p.acknowledge(), 0x25);
}

#[test]
fn garbage_never_panics() {
    let mut p = PicPair::default();
    for v in 0..=255u8 {
        out(&mut p, 0x20, v);
        out(&mut p, 0x21, v);
        out(&mut p, 0xa0, v);
        out(&mut p, 0xa1, v);
        p.set_irq(v & 15, v & 1 != 0);
        let _ = p.acknowledge();
        let _ = inb(&mut p, 0x20);
        let _ = inb(&mut p, 0xa1);
    }
}
