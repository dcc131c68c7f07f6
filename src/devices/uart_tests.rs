//! Unit tests of the 16550A, through its ports.

use super::*;
use std::sync::{Arc, Mutex};

/// A writer the test can look into.
#[derive(Clone, Default)]
pub(crate) struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::ErrorKind::Other)?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    pub(crate) fn contents(&self) -> Vec<u8> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

fn uart() -> (Uart, SharedBuf) {
    let buf = SharedBuf::default();
    (Uart::new(Box::new(buf.clone())), buf)
}

fn out(u: &mut Uart, off: u16, v: u8) {
    u.write(COM1_BASE + off, 1, u32::from(v), 0);
}

fn inb(u: &mut Uart, off: u16) -> u8 {
    u.read(COM1_BASE + off, 1, 0) as u8
}

#[test]
fn reset_state() {
    let (mut u, _) = uart();
    assert_eq!(inb(&mut u, 1), 0);
    assert_eq!(inb(&mut u, 2), 0x01);
    assert_eq!(inb(&mut u, 5), 0x60);
    assert_eq!(inb(&mut u, 6), 0xb0);
    assert!(!u.irq_line());
}

#[test]
fn transmit_goes_to_writer() {
    let (mut u, buf) = uart();
    for b in b"hi\n" {
        out(&mut u, 0, *b);
    }
    assert_eq!(buf.contents(), b"hi\n");
    assert_eq!(inb(&mut u, 5) & 0x60, 0x60);
}

#[test]
fn divisor_latch_and_scratch() {
    let (mut u, buf) = uart();
    out(&mut u, 3, 0x80);
    out(&mut u, 0, 0x01);
    out(&mut u, 1, 0x02);
    assert_eq!(inb(&mut u, 0), 0x01);
    assert_eq!(inb(&mut u, 1), 0x02);
    out(&mut u, 3, 0x03);
    assert_eq!(inb(&mut u, 1), 0, "IER untouched by DLM writes");
    assert!(buf.contents().is_empty(), "DLL writes are not data");
    out(&mut u, 7, 0x5a);
    assert_eq!(inb(&mut u, 7), 0x5a);
}

#[test]
fn thre_interrupt_semantics() {
    let (mut u, _) = uart();
    out(&mut u, 4, 0x08); // OUT2
    out(&mut u, 1, 0x02); // ETBEI with THR empty: interrupt at once
    assert!(u.irq_line());
    assert_eq!(inb(&mut u, 2), 0x02);
    assert!(!u.irq_line(), "IIR read reporting THRE clears it");
    assert_eq!(inb(&mut u, 2), 0x01);
    out(&mut u, 0, b'x'); // THR write, instantly sent: THRE again
    assert!(u.irq_line());
    out(&mut u, 1, 0x00);
    assert!(!u.irq_line());
}

#[test]
fn out2_gates_the_line_and_loopback_forces_it_off() {
    let (mut u, _) = uart();
    out(&mut u, 1, 0x02);
    assert!(!u.irq_line());
    assert_eq!(inb(&mut u, 2) & 0x0f, 0x02, "the source is still reported");
    out(&mut u, 1, 0x00);
    out(&mut u, 1, 0x02);
    out(&mut u, 4, 0x08);
    assert!(u.irq_line());
    out(&mut u, 4, 0x18);
    assert!(!u.irq_line());
    u.set_out2_gate(false);
    assert!(u.irq_line());
}

#[test]
fn receive_and_data_ready_interrupt() {
    let (mut u, _) = uart();
    out(&mut u, 4, 0x08);
    out(&mut u, 1, 0x01);
    u.receive(b'a', 0);
    assert!(u.irq_line());
    assert_eq!(inb(&mut u, 2), 0x04);
    assert_eq!(inb(&mut u, 5) & 1, 1);
    assert_eq!(inb(&mut u, 0), b'a');
    assert_eq!(inb(&mut u, 5) & 1, 0);
    assert!(!u.irq_line());
}

#[test]
fn overrun_sets_oe_and_line_status_wins() {
    let (mut u, _) = uart();
    out(&mut u, 4, 0x08);
    out(&mut u, 1, 0x07);
    u.receive(1, 0);
    u.receive(2, 0);
    assert_eq!(inb(&mut u, 2), 0x06, "line status has top priority");
    assert_eq!(inb(&mut u, 5) & 0x03, 0x03);
    assert_eq!(inb(&mut u, 5) & 0x02, 0, "LSR read clears OE");
    assert_eq!(inb(&mut u, 2), 0x04);
    assert_eq!(inb(&mut u, 0), 2, "non-FIFO overrun overwrites RBR");
    assert_eq!(inb(&mut u, 2), 0x02, "then THRE");
}

#[test]
fn fifo_trigger_level_and_timeout() {
    let (mut u, _) = uart();
    out(&mut u, 4, 0x08);
    out(&mut u, 2, 0x87); // FIFO on, clear, trigger 8
    out(&mut u, 1, 0x01);
    assert_eq!(inb(&mut u, 2), 0xc1);
    for i in 0..7 {
        u.receive(i, 1000);
    }
    assert_eq!(inb(&mut u, 2), 0xc1, "below trigger, no timeout yet");
    assert_eq!(u.rx_room(), 9);
    u.receive(7, 1000);
    assert_eq!(inb(&mut u, 2), 0xc4);
    let _ = inb(&mut u, 0);
    // 7 bytes left, below trigger: timeout after 4 character times.
    let deadline = u.next_deadline();
    assert!(deadline > 0 && deadline < u64::MAX);
    u.update(deadline - 1);
    assert!(!u.irq_line());
    u.update(deadline);
    assert!(u.irq_line());
    assert_eq!(u.read(COM1_BASE + 2, 1, deadline) as u8, 0xcc);
    for _ in 0..7 {
        let _ = u.read(COM1_BASE, 1, deadline);
    }
    assert!(!u.irq_line());
    assert_eq!(u.next_deadline(), u64::MAX);
}

#[test]
fn fifo_holds_sixteen() {
    let (mut u, _) = uart();
    out(&mut u, 2, 0x01);
    for i in 0..17 {
        u.receive(i, 0);
    }
    assert_eq!(inb(&mut u, 5) & 0x02, 0x02);
    for i in 0..16 {
        assert_eq!(inb(&mut u, 0), i);
    }
    assert_eq!(inb(&mut u, 5) & 1, 0);
}

#[test]
fn loopback_echoes_and_maps_modem_lines() {
    let (mut u, buf) = uart();
    out(&mut u, 4, 0x1e); // loopback, RTS, OUT1, OUT2
    out(&mut u, 0, 0xae);
    assert_eq!(inb(&mut u, 0), 0xae);
    assert!(buf.contents().is_empty());
    let msr = inb(&mut u, 6);
    assert_eq!(msr & 0xf0, 0xd0, "CTS, RI, DCD");
    out(&mut u, 4, 0x1f);
    assert_eq!(inb(&mut u, 6), 0xf2, "DSR rose: DDSR");
    out(&mut u, 4, 0x1b); // OUT1 off: RI trailing edge
    assert_eq!(inb(&mut u, 6) & 0x0f, 0x04);
    out(&mut u, 4, 0x0b);
    assert_eq!(inb(&mut u, 6) & 0xf0, 0xb0);
}

#[test]
fn modem_status_interrupt_is_lowest() {
    let (mut u, _) = uart();
    out(&mut u, 4, 0x10);
    out(&mut u, 1, 0x0a);
    out(&mut u, 4, 0x13);
    assert_eq!(inb(&mut u, 2), 0x02);
    assert_eq!(inb(&mut u, 2), 0x00);
    let _ = inb(&mut u, 6);
    assert_eq!(inb(&mut u, 2), 0x01);
}

#[test]
fn garbage_never_panics() {
    let (mut u, _) = uart();
    for v in 0..=255u8 {
        for off in 0..8 {
            out(&mut u, off, v);
            let _ = inb(&mut u, off);
        }
        u.receive(v, u64::from(v));
        u.update(u64::MAX);
        let _ = u.next_deadline();
    }
}
