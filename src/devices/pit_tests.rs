//! Unit tests of the 8254 and port 0x61, through the ports, at chosen
//! virtual times.

use super::*;

fn out(p: &mut Pit, port: u16, v: u8, now: u64) {
    p.write(port, 1, u32::from(v), now);
}

fn inb(p: &mut Pit, port: u16, now: u64) -> u8 {
    p.read(port, 1, now) as u8
}

/// Programs channel `ch` in `mode` with a 16-bit count at time `now`.
fn program(p: &mut Pit, ch: u8, mode: u8, count: u16, now: u64) {
    out(p, 0x43, (ch << 6) | 0x30 | (mode << 1), now);
    let [lo, hi] = count.to_le_bytes();
    out(p, 0x40 + u16::from(ch), lo, now);
    out(p, 0x40 + u16::from(ch), hi, now);
}

fn t(k: u64) -> u64 {
    time_of_tick(k)
}

#[test]
fn tick_conversion_round_trips() {
    for k in [0, 1, 2, 1193, 1_193_182, 10_000_000_000] {
        assert_eq!(tick_at(time_of_tick(k)), k);
        assert_eq!(tick_at(time_of_tick(k + 1) - 1), k);
    }
    assert_eq!(tick_at(1_000_000_000), PIT_HZ);
}

#[test]
fn mode2_rate_generator_pulses_low_once_per_period() {
    let mut p = Pit::default();
    program(&mut p, 0, 2, 100, 0); // loaded at tick 1
    assert!(p.out0(t(1)));
    assert!(p.out0(t(99)));
    assert!(!p.out0(t(100)), "low when the counter reaches 1");
    assert!(p.out0(t(101)));
    assert!(!p.out0(t(200)));
    assert_eq!(p.next_out0_change(0), t(100));
    assert_eq!(p.next_out0_change(t(100)), t(101));
    assert_eq!(p.next_out0_change(t(101)), t(200));
    assert!(p.out0_rose_between(t(99), t(101)));
    assert!(!p.out0_rose_between(t(101), t(199)));
}

#[test]
fn mode2_counter_and_latch() {
    let mut p = Pit::default();
    program(&mut p, 0, 2, 1000, 0);
    let now = t(1 + 250);
    out(&mut p, 0x43, 0x00, now); // latch channel 0
                                  // Reading later still returns the latched value, LSB then MSB.
    let lo = inb(&mut p, 0x40, now + 5000);
    let hi = inb(&mut p, 0x40, now + 5000);
    assert_eq!(u16::from_le_bytes([lo, hi]), 750);
    let lo = inb(&mut p, 0x40, t(1 + 400));
    let hi = inb(&mut p, 0x40, t(1 + 400));
    assert_eq!(u16::from_le_bytes([lo, hi]), 600);
}

#[test]
fn mode2_new_count_waits_for_the_period_end() {
    let mut p = Pit::default();
    program(&mut p, 0, 2, 100, 0);
    program(&mut p, 0, 2, 100, 0); // control word restarts: loaded at tick 1
    let [lo, hi] = 50u16.to_le_bytes();
    out(&mut p, 0x40, lo, t(30));
    out(&mut p, 0x40, hi, t(30));
    assert!(!p.out0(t(100)), "the old period still ends at 100");
    assert!(p.out0(t(101)));
    assert!(!p.out0(t(150)), "then periods of 50");
}

#[test]
fn mode3_square_wave() {
    let mut p = Pit::default();
    program(&mut p, 0, 3, 10, 0);
    let wave: Vec<bool> = (1..21).map(|k| p.out0(t(k))).collect();
    let expect = [true, true, true, true, true, false, false, false, false, false];
    assert_eq!(wave[..10], expect);
    assert_eq!(wave[10..], expect);
    program(&mut p, 0, 3, 7, 0);
    let high = (1..8).filter(|&k| p.out0(t(k))).count();
    assert_eq!(high, 4, "odd count: high one clock longer");
    assert_eq!(p.next_out0_change(t(1)), t(5));
}

#[test]
fn mode0_one_shot_and_status() {
    let mut p = Pit::default();
    out(&mut p, 0x43, 0x30, 0);
    out(&mut p, 0x43, 0xe2, 0); // read-back status of channel 0
    assert_eq!(inb(&mut p, 0x40, 0), 0x70, "OUT low, null count, LSB/MSB, mode 0");
    program(&mut p, 0, 0, 50, 0);
    assert!(!p.out0(t(50)));
    assert!(p.out0(t(51)));
    assert!(p.out0(t(100_000)), "stays high");
    assert_eq!(p.next_out0_change(t(51)), u64::MAX);
    out(&mut p, 0x43, 0xc2, t(20)); // read-back count and status
    assert_eq!(inb(&mut p, 0x40, t(20)), 0x30, "status first: loaded, OUT low");
    assert_eq!(inb(&mut p, 0x40, t(30)), 31);
    assert_eq!(inb(&mut p, 0x40, t(30)), 0);
    // After terminal count the counter wraps.
    let lo = inb(&mut p, 0x40, t(52));
    let hi = inb(&mut p, 0x40, t(52));
    assert_eq!(u16::from_le_bytes([lo, hi]), 0xffff);
}

#[test]
fn mode0_first_byte_stops_counting() {
    let mut p = Pit::default();
    program(&mut p, 0, 0, 10, 0);
    assert!(p.out0(t(20)));
    out(&mut p, 0x40, 5, t(20));
    assert!(!p.out0(t(21)), "OUT low after the LSB");
    out(&mut p, 0x40, 0, t(21));
    assert!(!p.out0(t(26)));
    assert!(p.out0(t(27)));
}

#[test]
fn lsb_and_msb_only_access() {
    let mut p = Pit::default();
    out(&mut p, 0x43, 0x14, 0); // ch0, LSB only, mode 2
    out(&mut p, 0x40, 200, 0);
    assert_eq!(inb(&mut p, 0x40, t(11)), 190);
    out(&mut p, 0x43, 0x24, 0); // ch0, MSB only, mode 2
    out(&mut p, 0x40, 2, 0);
    assert_eq!(inb(&mut p, 0x40, t(1)), 2);
}

#[test]
fn port61_calibration_loop_sees_out2() {
    let mut p = Pit::default();
    // Linux pit_calibrate_tsc: gate on, speaker off, ch2 mode 0.
    let b = inb(&mut p, 0x61, 0);
    out(&mut p, 0x61, (b & !0x02) | 0x01, 0);
    out(&mut p, 0x43, 0xb0, 0);
    out(&mut p, 0x42, 0x9b, 0);
    out(&mut p, 0x42, 0x2e, 0); // 11931 ticks = 10 ms
    assert_eq!(inb(&mut p, 0x61, t(5)) & 0x21, 0x01);
    assert_eq!(inb(&mut p, 0x61, t(11931)) & 0x20, 0);
    assert_eq!(inb(&mut p, 0x61, t(11932)) & 0x20, 0x20);
}

#[test]
fn gate_low_pauses_mode0_and_resets_mode2() {
    let mut p = Pit::default();
    out(&mut p, 0x61, 0x01, 0);
    program(&mut p, 2, 0, 100, 0);
    out(&mut p, 0x61, 0x00, t(41)); // paused 40 ticks in
    assert_eq!(inb(&mut p, 0x42, t(500)), 60);
    out(&mut p, 0x61, 0x01, t(1000));
    assert_eq!(inb(&mut p, 0x61, t(1059)) & 0x20, 0);
    assert_eq!(inb(&mut p, 0x61, t(1060)) & 0x20, 0x20);
    program(&mut p, 2, 2, 10, t(2000));
    out(&mut p, 0x61, 0x00, t(2005));
    assert_eq!(inb(&mut p, 0x61, t(2010)) & 0x20, 0x20, "gate low: OUT high");
    out(&mut p, 0x61, 0x01, t(3000));
    assert_eq!(inb(&mut p, 0x61, t(3010)) & 0x20, 0, "restarted at the rising gate");
}

#[test]
fn mode1_and_mode5_need_a_gate_trigger() {
    let mut p = Pit::default();
    program(&mut p, 2, 1, 10, 0);
    assert_eq!(inb(&mut p, 0x61, t(50)) & 0x20, 0x20, "untriggered: OUT high");
    out(&mut p, 0x61, 0x01, t(100));
    assert_eq!(inb(&mut p, 0x61, t(105)) & 0x20, 0);
    assert_eq!(inb(&mut p, 0x61, t(111)) & 0x20, 0x20);
    program(&mut p, 2, 5, 10, t(200));
    out(&mut p, 0x61, 0x00, t(201));
    out(&mut p, 0x61, 0x01, t(202));
    assert_eq!(inb(&mut p, 0x61, t(212)) & 0x20, 0x20);
    assert_eq!(inb(&mut p, 0x61, t(213)) & 0x20, 0, "strobe");
    assert_eq!(inb(&mut p, 0x61, t(214)) & 0x20, 0x20);
}

#[test]
fn mode4_software_strobe() {
    let mut p = Pit::default();
    program(&mut p, 0, 4, 5, 0);
    let wave: Vec<bool> = (0..9).map(|k| p.out0(t(k))).collect();
    assert_eq!(wave, [true, true, true, true, true, true, false, true, true]);
    assert_eq!(p.next_out0_change(t(2)), t(6));
    assert_eq!(p.next_out0_change(t(6)), t(7));
    assert_eq!(p.next_out0_change(t(7)), u64::MAX);
}

#[test]
fn port61_refresh_toggles_and_speaker_bit_sticks() {
    let mut p = Pit::default();
    out(&mut p, 0x61, 0x03, 0);
    let a = inb(&mut p, 0x61, 0);
    let b = inb(&mut p, 0x61, 15_085);
    assert_eq!(a & 0x03, 0x03);
    assert_ne!(a & 0x10, b & 0x10);
}

#[test]
fn garbage_never_panics() {
    let mut p = Pit::default();
    for v in 0..=255u8 {
        let now = u64::from(v) * 977;
        for port in [0x40, 0x41, 0x42, 0x43, 0x61] {
            out(&mut p, port, v, now);
            let _ = inb(&mut p, port, now);
        }
        let _ = p.next_out0_change(now);
        let _ = p.out0_rose_between(0, u64::MAX);
    }
    let _ = p.next_out0_change(u64::MAX);
}
