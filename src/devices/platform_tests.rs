//! Whole-platform tests: port decoding, wiring, deadlines, events.

use super::*;
use crate::devices::pit::time_of_tick;
use crate::devices::uart::tests::SharedBuf;

fn platform() -> (Platform, SharedBuf) {
    let buf = SharedBuf::default();
    (Platform::new(Box::new(buf.clone())), buf)
}

/// The usual PIC remap to 0x20/0x28, everything unmasked.
fn init_pic(p: &mut Platform) {
    for (port, v) in [(0x20, 0x11), (0xa0, 0x11), (0x21, 0x20), (0xa1, 0x28), (0x21, 4), (0xa1, 2)] {
        p.io_write(port, 1, v, 0);
    }
    for (port, v) in [(0x21, 1), (0xa1, 1), (0x21, 0), (0xa1, 0)] {
        p.io_write(port, 1, v, 0);
    }
}

#[test]
fn debug_exit_for_every_width() {
    let (mut p, _) = platform();
    assert_eq!(p.take_event(), None);
    p.io_write(0xf4, 1, 0x12, 0);
    assert_eq!(p.take_event(), Some(PlatformEvent::Exit(0x25)));
    p.io_write(0xf4, 4, 0x100, 0);
    assert_eq!(p.take_event(), Some(PlatformEvent::Exit(0x201)));
    p.io_write(0xf6, 2, 0x1_0003, 0);
    assert_eq!(p.take_event(), Some(PlatformEvent::Exit(7)));
    assert_eq!(p.io_read(0xf4, 4, 0), 0);
}

#[test]
fn i8042_reset_is_an_event() {
    let (mut p, _) = platform();
    assert_eq!(p.io_read(0x64, 1, 0) & 0x02, 0);
    p.io_write(0x64, 1, 0xfe, 0);
    assert_eq!(p.take_event(), Some(PlatformEvent::Reset));
}

#[test]
fn unknown_ports_read_ones_and_are_counted() {
    let (mut p, _) = platform();
    assert_eq!(p.io_read(0x1234, 1, 0), 0xff);
    assert_eq!(p.io_read(0x1234, 2, 0), 0xffff);
    assert_eq!(p.io_read(0x1234, 4, 0), 0xffff_ffff);
    p.io_write(0x1234, 4, 0, 0);
    assert_eq!(p.unknown_port_accesses, 4);
    p.io_write(0x80, 1, 0x42, 0);
    assert_eq!(p.io_read(0x80, 1, 0), 0x42);
    assert_eq!(p.unknown_port_accesses, 4, "port 0x80 is known");
    assert_eq!(p.io_read(0xffff, 4, 0), u32::MAX, "wraps without panicking");
}

#[test]
fn wide_access_splits_into_bytes() {
    let (mut p, _) = platform();
    init_pic(&mut p);
    p.io_write(0x21, 1, 0xa5, 0);
    // inw 0x20: IRR in the low byte, IMR in the high byte.
    assert_eq!(p.io_read(0x20, 2, 0), 0xa500);
    // A word to 0x70 selects index 0x0b and writes its data byte.
    p.io_write(0x70, 2, 0x060b, 0);
    p.io_write(0x70, 1, 0x0b, 0);
    assert_eq!(p.io_read(0x71, 1, 0), 0x06);
}

#[test]
fn serial_output_and_input_interrupt() {
    let (mut p, buf) = platform();
    init_pic(&mut p);
    for b in b"ok" {
        p.io_write(0x3f8, 1, u32::from(*b), 0);
    }
    p.flush();
    assert_eq!(buf.contents(), b"ok");
    p.io_write(0x3fc, 1, 0x0b, 0); // DTR, RTS, OUT2
    p.io_write(0x3f9, 1, 0x01, 0); // received data interrupt
    assert!(!p.interrupt_pending());
    assert_eq!(p.serial_input(b"xy", 10), 1, "no FIFO: room for one");
    assert!(p.interrupt_pending());
    assert_eq!(p.acknowledge_interrupt(), 0x24);
    assert_eq!(p.io_read(0x3f8, 1, 20), u32::from(b'x'));
    p.io_write(0x20, 1, 0x20, 20);
    assert!(!p.interrupt_pending());
}

#[test]
fn timer_interrupt_at_exact_deadline() {
    let (mut p, _) = platform();
    init_pic(&mut p);
    assert_eq!(p.next_deadline(0), time_of_tick(65535), "firmware left 18.2 Hz");
    // PIT channel 0, mode 2, count 1000, written at time 0: loaded at tick 1.
    p.io_write(0x43, 1, 0x34, 0);
    p.io_write(0x40, 1, 0xe8, 0);
    p.io_write(0x40, 1, 0x03, 0);
    let fall = p.next_deadline(0);
    assert_eq!(fall, time_of_tick(1000));
    p.update(fall);
    assert!(!p.interrupt_pending(), "OUT0 fell: no edge yet");
    let rise = p.next_deadline(fall);
    assert_eq!(rise, time_of_tick(1001));
    p.update(rise - 1);
    assert!(!p.interrupt_pending());
    p.update(rise);
    assert!(p.interrupt_pending());
    assert_eq!(p.acknowledge_interrupt(), 0x20);
    p.io_write(0x20, 1, 0x20, rise + 10);
    assert!(!p.interrupt_pending());
    assert_eq!(p.next_deadline(rise), time_of_tick(2000));
}

#[test]
fn unrelated_io_sees_every_timer_edge() {
    // Between two changes of OUT0 the platform skips sampling the PIT on
    // I/O elsewhere (here the POST port): an access at the edge's time
    // must still latch it, one a nanosecond before must not, and after
    // the EOI the next period's edge must be latched again.
    let (mut p, _) = platform();
    init_pic(&mut p);
    p.io_write(0x43, 1, 0x34, 0);
    p.io_write(0x40, 1, 0xe8, 0);
    p.io_write(0x40, 1, 0x03, 0);
    let (fall, rise) = (time_of_tick(1000), time_of_tick(1001));
    for t in [1, fall - 1, fall, rise - 1] {
        p.io_read(0x80, 1, t);
        assert!(!p.interrupt_pending(), "at {t}: no rising edge yet");
    }
    p.io_read(0x80, 1, rise);
    assert!(p.interrupt_pending(), "OUT0 rose at {rise}");
    assert_eq!(p.acknowledge_interrupt(), 0x20);
    p.io_write(0x20, 1, 0x20, rise + 10);
    let (fall2, rise2) = (time_of_tick(2000), time_of_tick(2001));
    for t in [rise + 20, fall2, rise2 - 1] {
        p.io_read(0x80, 1, t);
        assert!(!p.interrupt_pending(), "at {t}: the next edge is at {rise2}");
    }
    p.io_read(0x80, 1, rise2 + 5);
    assert!(p.interrupt_pending(), "OUT0 rose again at {rise2}");
}

#[test]
fn missed_timer_edges_latch_once() {
    let (mut p, _) = platform();
    init_pic(&mut p);
    p.io_write(0x43, 1, 0x34, 0);
    p.io_write(0x40, 1, 100, 0);
    p.io_write(0x40, 1, 0, 0);
    p.update(time_of_tick(1000) + 3); // many periods in one step
    assert_eq!(p.acknowledge_interrupt(), 0x20);
    p.io_write(0x20, 1, 0x20, time_of_tick(1000) + 3);
    assert!(!p.interrupt_pending());
}

#[test]
fn cmos_reports_memory_and_epoch() {
    let buf = SharedBuf::default();
    let mut p = Platform::with_config(Box::new(buf), 64 << 20, RtcMode::Deterministic);
    p.io_write(0x70, 1, 0x34, 0);
    let lo = p.io_read(0x71, 1, 0);
    p.io_write(0x70, 1, 0x35, 0);
    let hi = p.io_read(0x71, 1, 0);
    assert_eq!(lo | hi << 8, 48 * 16);
    p.io_write(0x70, 1, 0x09, 0);
    assert_eq!(p.io_read(0x71, 1, 0), 0x00);
    assert_eq!(DETERMINISTIC_EPOCH, 946_684_800);
}

#[test]
fn access_counts_name_every_device() {
    let (mut p, _) = platform();
    let _ = p.io_read(0x61, 1, 0);
    let counts = p.access_counts();
    assert!(counts.contains(&("pit", 1)));
    assert!(counts.contains(&("unknown", 0)));
    assert_eq!(counts.len(), 9);
}

#[test]
fn every_port_every_width_never_panics() {
    let (mut p, _) = platform();
    for port in 0..=0xffffu16 {
        if port == 0x64 || (0xf4..=0xf7).contains(&port) {
            continue; // reset and exit are fine, but keep the loop going
        }
        for size in [1, 2, 4, 3] {
            let _ = p.io_read(port, size, u64::from(port));
            p.io_write(port, size, 0xdead_beef, u64::from(port));
        }
        p.update(u64::from(port) * 1000);
        let _ = p.next_deadline(u64::from(port));
        if p.interrupt_pending() {
            let _ = p.acknowledge_interrupt();
        }
    }
}
