//! The 8254 programmable interval timer (ports 0x40–0x43) and system
//! control port B (0x61), after the Intel 8254 datasheet (231164).
//!
//! Nothing is ticked. The PIT clock runs at 1 193 182 Hz from virtual time
//! zero, tick `k` beginning at `ceil(k * 1e9 / 1193182)` ns. A channel's
//! state is a *segment*: the tick `origin` at which the counting element
//! holds the count `n`, from which the counter value and OUT at any tick
//! are closed-form functions of the elapsed ticks `e` (see `Channel::out`).
//! A count written takes effect on the next clock (`origin = now + 1`).
//!
//! ```text
//!  mode 0  OUT low, high when e >= n            counter n - e (wraps)
//!  mode 1  like 0, started by a gate rising edge
//!  mode 2  OUT low only when e mod n == n-1     counter n - (e mod n)
//!  mode 3  OUT high for ceil(n/2), low floor(n/2); counter steps by 2
//!  mode 4  OUT low only at e == n               counter n - e (wraps)
//!  mode 5  like 4, started by a gate rising edge
//! ```
//!
//! Gates of channels 0 and 1 are tied high on a PC; channel 2's is port
//! 0x61 bit 0. Counting is binary; the BCD bit is stored and reported.
//! A new count in modes 2/3 takes effect at the end of the current period.
//! Counts of 1 are illegal in modes 2 and 3 and are treated as 2.

use super::{IoSize, PioDevice};

/// PIT input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;
const NS_PER_S: u128 = 1_000_000_000;

const CHANNEL0_PORT: u16 = 0x40;
const CONTROL_PORT: u16 = 0x43;
/// System control port B.
pub const PORT_B: u16 = 0x61;

// Control word fields.
const CW_SELECT_SHIFT: u8 = 6;
const CW_SELECT_READBACK: u8 = 3;
const CW_ACCESS_SHIFT: u8 = 4;
const CW_ACCESS_LATCH: u8 = 0;
const CW_ACCESS_LSB: u8 = 1;
const CW_ACCESS_MSB: u8 = 2;
const CW_BCD_BIT: u8 = 0x01;
// Read-back command: bit 5 = 0 latches counts, bit 4 = 0 latches status.
const RB_NO_COUNT_BIT: u8 = 0x20;
const RB_NO_STATUS_BIT: u8 = 0x10;
// Status byte.
const STATUS_OUT_BIT: u8 = 0x80;
const STATUS_NULL_COUNT_BIT: u8 = 0x40;

// Port B bits.
const PORTB_GATE2_BIT: u8 = 0x01;
const PORTB_SPEAKER_BIT: u8 = 0x02;
const PORTB_REFRESH_BIT: u8 = 0x10;
const PORTB_OUT2_BIT: u8 = 0x20;
/// The PC/AT refresh request period; bit 4 of port B toggles with it.
const REFRESH_PERIOD_NS: u64 = 15_085;

/// PIT tick in progress at virtual time `now`.
pub fn tick_at(now: u64) -> u64 {
    (u128::from(now) * u128::from(PIT_HZ) / NS_PER_S) as u64
}

/// Virtual time at which tick `k` begins.
pub fn time_of_tick(k: u64) -> u64 {
    let t = (u128::from(k) * NS_PER_S).div_ceil(u128::from(PIT_HZ));
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// What the counting element is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    /// No count loaded yet, waiting for a trigger, or gate low (modes 2/3).
    Idle,
    /// Holds `n` at tick `origin` and counts from there.
    Counting { origin: u64, n: u64 },
    /// Gate low in modes 0/4: frozen `elapsed` ticks into a count of `n`.
    Paused { elapsed: u64, n: u64 },
}

/// One counter of the 8254.
#[derive(Clone, Debug)]
pub struct Channel {
    mode: u8,
    access: u8,
    bcd: bool,
    /// The count register (1..=65536).
    cr: u64,
    cr_written: bool,
    run: Run,
    /// Modes 2/3: the segment still running until `run`'s origin.
    prev: Option<(u64, u64)>,
    gate: bool,
    write_low: Option<u8>,
    read_high_next: bool,
    latch: Option<u16>,
    latch_high_next: bool,
    status: Option<u8>,
}

impl Default for Channel {
    fn default() -> Self {
        Channel {
            mode: 0,
            access: 3,
            bcd: false,
            cr: 0x10000,
            cr_written: false,
            run: Run::Idle,
            prev: None,
            gate: true,
            write_low: None,
            read_high_next: false,
            latch: None,
            latch_high_next: false,
            status: None,
        }
    }
}

impl Channel {
    /// The segment `(origin, n)` governing tick `k`, if counting.
    fn segment(&self, k: u64) -> Option<(u64, u64)> {
        match self.run {
            Run::Counting { origin, n } if k >= origin => Some((origin, n)),
            Run::Counting { .. } => self.prev.filter(|&(o, _)| k >= o),
            Run::Paused { elapsed, n } => Some((k.saturating_sub(elapsed), n)),
            Run::Idle => None,
        }
    }

    /// OUT at tick `k`.
    pub fn out(&self, k: u64) -> bool {
        let Some((origin, n)) = self.segment(k) else {
            return self.mode != 0;
        };
        let e = k - origin;
        match self.mode {
            0 | 1 => e >= n,
            2 => e % n != n - 1,
            3 => e % n < n.div_ceil(2),
            _ => e != n,
        }
    }

    /// The counting element at tick `k`.
    fn counter(&self, k: u64) -> u16 {
        let Some((origin, n)) = self.segment(k) else {
            return self.cr as u16;
        };
        let e = k - origin;
        let v = match self.mode {
            2 => n - e % n,
            3 => {
                let r = e % n;
                let high = n.div_ceil(2);
                let pos = if r < high { r } else { r - high };
                (n & !1).saturating_sub(2 * pos)
            }
            _ => n.wrapping_sub(e),
        };
        v as u16
    }

    /// Ticks after `k` at which OUT may change (a segment boundary or an
    /// edge inside the segment).
    fn candidate_after(&self, k: u64) -> Option<u64> {
        if let Run::Counting { origin, .. } = self.run {
            if k < origin && self.segment(k).is_none() {
                return Some(origin);
            }
        }
        let (origin, n) = self.segment(k)?;
        if matches!(self.run, Run::Paused { .. }) {
            return None;
        }
        let e = k - origin;
        let t = match self.mode {
            0 | 1 => (e < n).then(|| origin + n),
            2 => Some(k + if e % n < n - 1 { n - 1 - e % n } else { 1 }),
            3 => {
                let r = e % n;
                let high = n.div_ceil(2);
                Some(k + if r < high { high - r } else { n - r })
            }
            _ if e < n => Some(origin + n),
            _ => (e == n).then_some(k + 1),
        };
        match self.run {
            Run::Counting { origin: next, .. } if k < next => Some(t.map_or(next, |t| t.min(next))),
            _ => t,
        }
    }

    /// The first tick after `k` at which OUT differs from OUT at `k`.
    pub fn next_change(&self, k: u64) -> Option<u64> {
        let cur = self.out(k);
        let mut t = k;
        for _ in 0..4 {
            t = self.candidate_after(t)?;
            if self.out(t) != cur {
                return Some(t);
            }
        }
        None
    }

    fn null_count(&self, k: u64) -> bool {
        match self.run {
            Run::Counting { origin, .. } => k < origin,
            Run::Paused { .. } => false,
            Run::Idle => true,
        }
    }

    fn status_byte(&self, k: u64) -> u8 {
        let out = if self.out(k) { STATUS_OUT_BIT } else { 0 };
        let null = if self.null_count(k) { STATUS_NULL_COUNT_BIT } else { 0 };
        out | null | (self.access << CW_ACCESS_SHIFT) | (self.mode << 1) | u8::from(self.bcd)
    }

    fn control(&mut self, cw: u8) {
        let mode = (cw >> 1) & 7;
        *self = Channel {
            mode: if mode >= 6 { mode - 4 } else { mode },
            access: (cw >> CW_ACCESS_SHIFT) & 3,
            bcd: cw & CW_BCD_BIT != 0,
            gate: self.gate,
            ..Channel::default()
        };
    }

    fn latch_count(&mut self, k: u64) {
        if self.latch.is_none() {
            self.latch = Some(self.counter(k));
            self.latch_high_next = false;
        }
    }

    fn load(&mut self, raw: u16, k: u64) {
        let mut n = if raw == 0 { 0x10000 } else { u64::from(raw) };
        if matches!(self.mode, 2 | 3) {
            n = n.max(2);
        }
        self.cr = n;
        self.cr_written = true;
        match self.mode {
            0 | 4 if self.gate => self.start(k),
            0 | 4 => {
                self.prev = None;
                self.run = Run::Paused { elapsed: 0, n };
            }
            2 | 3 => match (self.run, self.segment(k)) {
                (Run::Counting { origin, .. }, Some((so, sn))) if k >= origin => {
                    let boundary = so + ((k - so) / sn + 1) * sn;
                    self.prev = Some((so, sn));
                    self.run = Run::Counting { origin: boundary, n };
                }
                (Run::Counting { origin, .. }, _) => self.run = Run::Counting { origin, n },
                _ if self.gate => self.start(k),
                _ => {}
            },
            _ => {} // modes 1 and 5 wait for a gate trigger
        }
    }

    /// (Re)starts counting from the count register at the next clock.
    fn start(&mut self, k: u64) {
        self.prev = None;
        self.run = Run::Counting { origin: k + 1, n: self.cr };
    }

    fn set_gate(&mut self, level: bool, k: u64) {
        if level == self.gate {
            return;
        }
        self.gate = level;
        match (self.mode, level, self.run) {
            (0 | 4, false, Run::Counting { origin, n }) if k >= origin => {
                self.run = Run::Paused { elapsed: k - origin, n };
            }
            (0 | 4, true, Run::Paused { elapsed, n }) => {
                self.run = Run::Counting { origin: k.saturating_sub(elapsed), n };
            }
            (1 | 5 | 2 | 3, true, _) if self.cr_written => self.start(k),
            (2 | 3, false, _) => {
                self.prev = None;
                self.run = Run::Idle;
            }
            _ => {}
        }
    }

    fn read(&mut self, k: u64) -> u8 {
        if let Some(s) = self.status.take() {
            return s;
        }
        if let Some(l) = self.latch {
            let [lo, hi] = l.to_le_bytes();
            return match self.access {
                CW_ACCESS_LSB => {
                    self.latch = None;
                    lo
                }
                CW_ACCESS_MSB => {
                    self.latch = None;
                    hi
                }
                _ if !self.latch_high_next => {
                    self.latch_high_next = true;
                    lo
                }
                _ => {
                    self.latch = None;
                    self.latch_high_next = false;
                    hi
                }
            };
        }
        let [lo, hi] = self.counter(k).to_le_bytes();
        match self.access {
            CW_ACCESS_LSB => lo,
            CW_ACCESS_MSB => hi,
            _ => {
                self.read_high_next = !self.read_high_next;
                if self.read_high_next {
                    lo
                } else {
                    hi
                }
            }
        }
    }

    fn write(&mut self, v: u8, k: u64) {
        match self.access {
            CW_ACCESS_LSB => self.load(u16::from(v), k),
            CW_ACCESS_MSB => self.load(u16::from(v) << 8, k),
            _ => match self.write_low.take() {
                Some(lo) => self.load(u16::from_le_bytes([lo, v]), k),
                None => {
                    self.write_low = Some(v);
                    if self.mode == 0 {
                        // Datasheet: the first byte stops counting, OUT low.
                        self.prev = None;
                        self.run = Run::Idle;
                    }
                }
            },
        }
    }
}

/// The 8254 with port B.
#[derive(Clone, Debug)]
pub struct Pit {
    pub channels: [Channel; 3],
    speaker_data: bool,
}

impl Default for Pit {
    /// The state firmware leaves: QEMU resets every channel to mode 3 with
    /// a count of 65536 (channel 2 stopped by its low gate, port B = 0),
    /// and SeaBIOS then sets channel 0 to mode 2, count 65536 (18.2 Hz).
    /// Here both happened at virtual time 0.
    fn default() -> Self {
        let running = |mode| Channel {
            mode,
            cr_written: true,
            run: Run::Counting { origin: 0, n: 0x10000 },
            ..Channel::default()
        };
        let ch2 = Channel { mode: 3, cr_written: true, gate: false, ..Channel::default() };
        Pit { channels: [running(2), running(3), ch2], speaker_data: false }
    }
}

impl Pit {
    /// OUT of channel 0 (IRQ0) at `now`.
    pub fn out0(&self, now: u64) -> bool {
        self.channels[0].out(tick_at(now))
    }

    /// Virtual time of the next change of OUT0 after `now` (u64::MAX if
    /// none is scheduled).
    pub fn next_out0_change(&self, now: u64) -> u64 {
        self.channels[0].next_change(tick_at(now)).map_or(u64::MAX, time_of_tick)
    }

    /// Whether OUT0 had a rising edge in the interval (t0, t1].
    pub fn out0_rose_between(&self, t0: u64, t1: u64) -> bool {
        let (ch, end) = (&self.channels[0], tick_at(t1));
        let mut k = tick_at(t0);
        for _ in 0..3 {
            match ch.next_change(k) {
                Some(t) if t <= end => {
                    if ch.out(t) {
                        return true;
                    }
                    k = t;
                }
                _ => return false,
            }
        }
        false
    }

    fn control(&mut self, cw: u8, k: u64) {
        let select = cw >> CW_SELECT_SHIFT;
        if select == CW_SELECT_READBACK {
            for (i, ch) in self.channels.iter_mut().enumerate() {
                if cw & (2 << i) == 0 {
                    continue;
                }
                if cw & RB_NO_COUNT_BIT == 0 {
                    ch.latch_count(k);
                }
                if cw & RB_NO_STATUS_BIT == 0 && ch.status.is_none() {
                    ch.status = Some(ch.status_byte(k));
                }
            }
            return;
        }
        let ch = &mut self.channels[usize::from(select)];
        if (cw >> CW_ACCESS_SHIFT) & 3 == CW_ACCESS_LATCH {
            ch.latch_count(k);
        } else {
            ch.control(cw);
        }
    }

    fn read_port_b(&self, now: u64) -> u8 {
        let ch2 = &self.channels[2];
        let mut v = 0;
        if ch2.gate {
            v |= PORTB_GATE2_BIT;
        }
        if self.speaker_data {
            v |= PORTB_SPEAKER_BIT;
        }
        if (now / REFRESH_PERIOD_NS) & 1 != 0 {
            v |= PORTB_REFRESH_BIT;
        }
        if ch2.out(tick_at(now)) {
            v |= PORTB_OUT2_BIT;
        }
        v
    }

    fn write_port_b(&mut self, v: u8, now: u64) {
        self.speaker_data = v & PORTB_SPEAKER_BIT != 0;
        self.channels[2].set_gate(v & PORTB_GATE2_BIT != 0, tick_at(now));
    }
}

impl PioDevice for Pit {
    fn name(&self) -> &'static str {
        "pit"
    }

    fn ports(&self) -> &'static [(u16, u16)] {
        &[(CHANNEL0_PORT, CONTROL_PORT), (PORT_B, PORT_B)]
    }

    fn read(&mut self, port: u16, _size: IoSize, now: u64) -> u32 {
        let v = match port {
            PORT_B => self.read_port_b(now),
            CONTROL_PORT => 0xff, // write-only
            _ => match self.channels.get_mut(usize::from(port.wrapping_sub(CHANNEL0_PORT))) {
                Some(ch) => ch.read(tick_at(now)),
                None => 0xff,
            },
        };
        u32::from(v)
    }

    fn write(&mut self, port: u16, _size: IoSize, value: u32, now: u64) {
        let v = value as u8;
        match port {
            PORT_B => self.write_port_b(v, now),
            CONTROL_PORT => self.control(v, tick_at(now)),
            _ => {
                if let Some(ch) = self.channels.get_mut(usize::from(port.wrapping_sub(CHANNEL0_PORT))) {
                    ch.write(v, tick_at(now));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "pit_tests.rs"]
mod tests;
