//! The PC platform: every device on the I/O bus, the interrupt wiring
//! between them, and the port decode table.
//!
//! ```text
//!   io_read/io_write ──► decode[port] ──► device ──► after_access:
//!                                                      events (exit, reset)
//!                                                      sample_lines(now)
//!   sample_lines: PIT OUT0 ─► IRQ0   i8042 ─► IRQ1   UART ─► IRQ4
//!                 x87 FERR# ─► IRQ13 (cleared by a write to port 0xF0)
//!                 (IRQ8, the RTC, is not wired)       ─► PicPair ─► INTR
//! ```
//!
//! Lines are sampled after every access and on `update(now)`; the machine
//! must call `update` at `next_deadline(now)`, the next time OUT0 (or the
//! UART's character timeout) changes by itself. A rising edge of OUT0
//! missed between two samples (realtime mode, or an engine that overshot)
//! is still delivered once, as the PIC would have latched it.
//!
//! A 16- or 32-bit access to byte-wide devices is split into byte accesses
//! to consecutive ports, each decoded on its own; unknown ports read as all
//! ones and drop writes, and each access that touches one is counted.

use super::cmos::{Cmos, RtcMode};
use super::debug_exit::DebugExit;
use super::i8042::I8042;
use super::pic::PicPair;
use super::pit::Pit;
use super::serial_input::{self, SerialInput};
use super::uart::Uart;
use super::{IoSize, PioDevice};

pub use super::cmos::DETERMINISTIC_EPOCH;

/// Something the platform asks the machine to do after an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformEvent {
    /// isa-debug-exit: leave with this process status ((v << 1) | 1).
    Exit(i32),
    /// The guest asked for a system reset (i8042 command 0xFE).
    Reset,
    /// The console's escape (`Ctrl-A x`) asked to end the run.
    Quit,
}

/// Default RAM size reported in CMOS by [`Platform::new`] (QEMU's `-m`).
pub const DEFAULT_MEM_SIZE: u64 = 128 << 20;

const IRQ_PIT: u8 = 0;
const IRQ_KBD: u8 = 1;
const IRQ_COM1: u8 = 4;
const IRQ_FPU: u8 = 13;

/// POST diagnostic port 0x80: accepted, remembered, otherwise ignored.
#[derive(Debug, Default)]
pub struct PostPort {
    /// The last code written.
    pub last: u8,
}

impl PioDevice for PostPort {
    fn name(&self) -> &'static str {
        "post"
    }
    fn ports(&self) -> &'static [(u16, u16)] {
        &[(0x80, 0x80)]
    }
    fn read(&mut self, _port: u16, _size: IoSize, _now: u64) -> u32 {
        u32::from(self.last)
    }
    fn write(&mut self, _port: u16, _size: IoSize, value: u32, _now: u64) {
        self.last = value as u8;
    }
}

/// The AT's coprocessor ports: the x87's error signal (FERR#, with CR0.NE
/// clear) drives IRQ 13 until software writes port 0xF0 (which also
/// asserts IGNNE#; bt86's x87 goes on past the error at once, as QEMU's
/// does). Port 0xF1 (reset the coprocessor) is accepted and ignored.
#[derive(Debug, Default)]
pub struct CoprocessorPorts {
    /// FERR#: an unmasked x87 exception met a waiting instruction.
    pub ferr: bool,
}

impl PioDevice for CoprocessorPorts {
    fn name(&self) -> &'static str {
        "fpu"
    }
    fn ports(&self) -> &'static [(u16, u16)] {
        &[(0xf0, 0xf1)]
    }
    fn read(&mut self, _port: u16, _size: IoSize, _now: u64) -> u32 {
        0xff
    }
    fn write(&mut self, port: u16, _size: IoSize, _value: u32, _now: u64) {
        if port == 0xf0 {
            self.ferr = false;
        }
    }
}

/// Index of a device in the decode table (0 = nothing there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Dev {
    None,
    Pic,
    Pit,
    Uart,
    Cmos,
    Kbd,
    DebugExit,
    Post,
    Fpu,
}

const DEVICES: [Dev; 8] = [Dev::Pic, Dev::Pit, Dev::Uart, Dev::Cmos, Dev::Kbd, Dev::DebugExit, Dev::Post, Dev::Fpu];

/// All devices of the PC platform.
pub struct Platform {
    uart: Uart,
    pic: PicPair,
    pit: Pit,
    cmos: Cmos,
    kbd: I8042,
    debug_exit: DebugExit,
    post: PostPort,
    fpu: CoprocessorPorts,
    /// What the host sends to COM1's receiver (`bt86 run`'s stdin).
    input: Option<SerialInput>,
    decode: Vec<Dev>,
    event: Option<PlatformEvent>,
    last_sample: u64,
    /// OUT0 keeps the level last forwarded to the PIC, with no edge, until
    /// this virtual time (the PIT's next change after the last full
    /// sample; 0 after a PIT or PIC access, when it must be sampled anew).
    out0_steady_until: u64,
    /// An I/O access since the run loop last asked for `next_deadline`:
    /// it may have reprogrammed a timer (a shorter PIT period, a UART
    /// transmission), so the deadline the loop holds may be too late.
    deadline_stale: bool,
    /// An I/O access reached a device with deadlines (PIT, UART) since
    /// `take_timer_access` was last asked.
    timer_access: bool,
    accesses: [u64; DEVICES.len() + 1],
    /// Accesses to ports no device decodes.
    pub unknown_port_accesses: u64,
}

fn all_ones(size: IoSize) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

fn normalize(size: IoSize) -> IoSize {
    match size {
        2 | 4 => size,
        _ => 1,
    }
}

impl Platform {
    /// A platform whose serial port writes to `serial_out`, with 128 MiB in
    /// CMOS and the deterministic RTC.
    pub fn new(serial_out: Box<dyn std::io::Write + Send>) -> Platform {
        Platform::with_config(serial_out, DEFAULT_MEM_SIZE, RtcMode::Deterministic)
    }

    /// A platform with `mem_size` bytes of RAM reported in CMOS and the RTC
    /// in `rtc` mode.
    pub fn with_config(serial_out: Box<dyn std::io::Write + Send>, mem_size: u64, rtc: RtcMode) -> Platform {
        let mut p = Platform {
            uart: Uart::new(serial_out),
            pic: PicPair::default(),
            pit: Pit::default(),
            cmos: Cmos::new(mem_size, rtc),
            kbd: I8042::default(),
            debug_exit: DebugExit::default(),
            post: PostPort::default(),
            fpu: CoprocessorPorts::default(),
            input: None,
            decode: vec![Dev::None; 0x10000],
            event: None,
            last_sample: 0,
            out0_steady_until: 0,
            deadline_stale: true,
            timer_access: true,
            accesses: [0; DEVICES.len() + 1],
            unknown_port_accesses: 0,
        };
        for dev in DEVICES {
            for &(lo, hi) in p.device(dev).map_or(&[][..], |d| d.ports()) {
                for port in lo..=hi {
                    p.decode[usize::from(port)] = dev;
                }
            }
        }
        p.bios_init();
        p
    }

    /// Leaves the PICs as firmware does before it loads a kernel: 8086
    /// mode, edge triggered, vectors 0x08 (master) and 0x70 (slave), every
    /// line masked but the cascade. The lines are sampled first, so a line
    /// already high (OUT0) needs a new edge, as after a real ICW1.
    fn bios_init(&mut self) {
        self.sample_lines(0);
        let init = [(0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01), (0x21, 0xfb)];
        let init_slave = [(0xa0, 0x11), (0xa1, 0x70), (0xa1, 0x02), (0xa1, 0x01), (0xa1, 0xff)];
        for (port, v) in init.into_iter().chain(init_slave) {
            self.io_write(port, 1, v, 0);
        }
        self.accesses = [0; DEVICES.len() + 1];
    }

    fn device(&mut self, dev: Dev) -> Option<&mut dyn PioDevice> {
        Some(match dev {
            Dev::None => return None,
            Dev::Pic => &mut self.pic,
            Dev::Pit => &mut self.pit,
            Dev::Uart => &mut self.uart,
            Dev::Cmos => &mut self.cmos,
            Dev::Kbd => &mut self.kbd,
            Dev::DebugExit => &mut self.debug_exit,
            Dev::Post => &mut self.post,
            Dev::Fpu => &mut self.fpu,
        })
    }

    /// Port read of `size` (1, 2 or 4) bytes at virtual time `now`.
    pub fn io_read(&mut self, port: u16, size: u8, now: u64) -> u32 {
        let size = normalize(size);
        let mut unknown = false;
        let first = self.decode[usize::from(port)];
        self.note_timer_access(port, size);
        self.accesses[first as usize] += 1;
        let value = match self.device(first) {
            Some(d) if size == 1 || !d.byte_wide() => d.read(port, size, now) & all_ones(size),
            _ => {
                let mut v = 0;
                for i in 0..u16::from(size) {
                    let p = port.wrapping_add(i);
                    let byte = match self.device(self.decode[usize::from(p)]) {
                        Some(d) => d.read(p, 1, now) & 0xff,
                        None => {
                            unknown = true;
                            0xff
                        }
                    };
                    v |= byte << (8 * i);
                }
                v
            }
        };
        self.unknown_port_accesses += u64::from(unknown);
        self.after_access(now);
        value
    }

    /// Port write of `size` (1, 2 or 4) bytes at virtual time `now`.
    pub fn io_write(&mut self, port: u16, size: u8, value: u32, now: u64) {
        let size = normalize(size);
        let value = value & all_ones(size);
        let mut unknown = false;
        let first = self.decode[usize::from(port)];
        self.note_timer_access(port, size);
        self.accesses[first as usize] += 1;
        match self.device(first) {
            Some(d) if size == 1 || !d.byte_wide() => d.write(port, size, value, now),
            _ => {
                for i in 0..u16::from(size) {
                    let p = port.wrapping_add(i);
                    match self.device(self.decode[usize::from(p)]) {
                        Some(d) => d.write(p, 1, (value >> (8 * i)) & 0xff, now),
                        None => unknown = true,
                    }
                }
            }
        }
        self.unknown_port_accesses += u64::from(unknown);
        self.after_access(now);
    }

    fn note_timer_access(&mut self, port: u16, size: IoSize) {
        for i in 0..u16::from(size) {
            let dev = self.decode[usize::from(port.wrapping_add(i))];
            if matches!(dev, Dev::Pit | Dev::Uart) {
                self.timer_access = true;
            }
            if matches!(dev, Dev::Pit | Dev::Pic) {
                self.out0_steady_until = 0;
            }
        }
    }

    /// Whether an I/O access reached the PIT or the UART since the last
    /// call: only those can move `next_deadline`.
    pub fn take_timer_access(&mut self) -> bool {
        std::mem::take(&mut self.timer_access)
    }

    fn after_access(&mut self, now: u64) {
        self.deadline_stale = true;
        if let Some(status) = self.debug_exit.take_exit() {
            self.event.get_or_insert(PlatformEvent::Exit(status));
        }
        if self.kbd.take_reset() {
            self.event.get_or_insert(PlatformEvent::Reset);
        }
        self.sample_lines(now);
    }

    /// Samples every interrupt line at `now` and forwards it to the PICs.
    fn sample_lines(&mut self, now: u64) {
        // Before OUT0's next change, with the master latching on edges,
        // sampling the PIT would forward the level the PIC holds already
        // (a no-op): skip its arithmetic, which most I/O paid for nothing.
        if now >= self.out0_steady_until || !self.pic.master_edge_triggered() {
            if now > self.last_sample && self.pit.out0_rose_between(self.last_sample, now) {
                // Deliver the edge even if OUT0 has gone low again since.
                self.pic.set_irq(IRQ_PIT, false);
                self.pic.set_irq(IRQ_PIT, true);
            }
            self.pic.set_irq(IRQ_PIT, self.pit.out0(now));
            self.out0_steady_until = self.pit.next_out0_change(now);
        }
        self.last_sample = self.last_sample.max(now);
        self.pic.set_irq(IRQ_KBD, self.kbd.irq_line());
        self.uart.update(now);
        self.pic.set_irq(IRQ_COM1, self.uart.irq_line());
        self.pic.set_irq(IRQ_FPU, self.fpu.ferr);
    }

    /// The x87's FERR# output (an unmasked exception with CR0.NE clear).
    pub fn set_ferr(&mut self, level: bool) {
        self.fpu.ferr = level;
        self.pic.set_irq(IRQ_FPU, level);
    }

    /// Brings timers up to `now`, takes serial input as the receive FIFO
    /// has room, and latches the interrupt lines.
    pub fn update(&mut self, now: u64) {
        if let Some(input) = &mut self.input {
            let bytes = input.take(self.uart.rx_room());
            for b in bytes {
                self.uart.receive(b, now);
            }
            if input.quit_requested() {
                self.event.get_or_insert(PlatformEvent::Quit);
            }
            // Someone may be reading as they type: what the guest wrote
            // shows within a poll, not at the next newline.
            self.uart.flush();
        }
        self.sample_lines(now);
    }

    /// Connects the host's input to COM1's receiver.
    pub fn attach_serial_input(&mut self, input: SerialInput) {
        self.input = Some(input);
    }

    /// Whether serial input may still arrive: a halted CPU with interrupts
    /// enabled may be waiting for it, so it is not halted for good.
    pub fn serial_input_open(&self) -> bool {
        self.input.as_ref().is_some_and(SerialInput::open)
    }

    /// A halted CPU waits up to `max_ns` of host time for serial input
    /// (see [`SerialInput::wait`]); returns the nanoseconds it waited, or
    /// `None` when there was nothing to wait for.
    pub fn wait_for_serial_input(&mut self, max_ns: u64) -> Option<u64> {
        if self.input.is_some() {
            self.uart.flush();
        }
        let waited = self.input.as_mut()?.wait(std::time::Duration::from_nanos(max_ns))?;
        Some(waited.as_nanos() as u64)
    }

    /// Whether an exit or reset request is waiting for the run loop.
    pub fn has_event(&self) -> bool {
        self.event.is_some()
    }

    /// Whether an I/O access happened since the last call: the deadline
    /// from `next_deadline` must then be asked for again.
    pub fn take_deadline_stale(&mut self) -> bool {
        std::mem::take(&mut self.deadline_stale)
    }

    /// The earliest virtual time after `now` at which a device's interrupt
    /// line may change without an I/O access (u64::MAX if none).
    pub fn next_deadline(&self, now: u64) -> u64 {
        let mut d = self.pit.next_out0_change(now).min(self.uart.next_deadline());
        if self.input.as_ref().is_some_and(SerialInput::polling) {
            d = d.min(now.saturating_add(serial_input::POLL_NS));
        }
        if d == u64::MAX {
            d
        } else {
            d.max(now.saturating_add(1))
        }
    }

    /// Whether the PIC pair presents an interrupt to the CPU.
    pub fn interrupt_pending(&self) -> bool {
        self.pic.interrupt_pending()
    }

    /// INTA: the vector of the highest-priority pending interrupt (the
    /// spurious IRQ 7/15 vector if the request went away).
    pub fn acknowledge_interrupt(&mut self) -> u8 {
        self.pic.acknowledge()
    }

    /// Takes the pending exit or reset request, if any.
    pub fn take_event(&mut self) -> Option<PlatformEvent> {
        self.event.take()
    }

    /// Flushes the serial output.
    pub fn flush(&mut self) {
        self.uart.flush();
    }

    /// Feeds bytes received on COM1 at `now`; returns how many were taken
    /// (no more than the receive FIFO has room for, so none are lost).
    pub fn serial_input(&mut self, bytes: &[u8], now: u64) -> usize {
        let n = bytes.len().min(self.uart.rx_room());
        for &b in &bytes[..n] {
            self.uart.receive(b, now);
        }
        self.sample_lines(now);
        n
    }

    /// Watches COM1's output for the first line containing `text`
    /// (see [`Platform::watched_line`]).
    pub fn watch_serial(&mut self, text: &'static str) {
        self.uart.watch = Some(text);
    }

    /// The first output line that contained the watched text, once sent.
    pub fn watched_line(&self) -> Option<&str> {
        self.uart.watched.as_deref()
    }

    /// Bytes the guest has sent on COM1.
    pub fn serial_bytes_sent(&self) -> u64 {
        self.uart.transmitted
    }

    /// Room left in the UART's receive FIFO.
    pub fn serial_rx_room(&self) -> usize {
        self.uart.rx_room()
    }

    /// Whether COM1's IRQ needs MCR.OUT2 (true, as on a PC) or not (QEMU).
    pub fn set_uart_out2_gate(&mut self, gate: bool) {
        self.uart.set_out2_gate(gate);
    }

    /// Whether the i8042 output port enables A20.
    pub fn a20_enabled(&self) -> bool {
        self.kbd.a20()
    }

    /// Per-device access counts, for `--stats` ("unknown" included).
    pub fn access_counts(&self) -> Vec<(&'static str, u64)> {
        let mut v = vec![("unknown", self.unknown_port_accesses)];
        for dev in DEVICES {
            let name = match dev {
                Dev::Pic => self.pic.name(),
                Dev::Pit => self.pit.name(),
                Dev::Uart => self.uart.name(),
                Dev::Cmos => self.cmos.name(),
                Dev::Kbd => self.kbd.name(),
                Dev::DebugExit => self.debug_exit.name(),
                Dev::Fpu => self.fpu.name(),
                Dev::Post | Dev::None => self.post.name(),
            };
            v.push((name, self.accesses[dev as usize]));
        }
        v
    }

    /// The PIC pair (for tests and traces).
    pub fn pic(&self) -> &PicPair {
        &self.pic
    }

    /// The PIT (for tests and traces).
    pub fn pit(&self) -> &Pit {
        &self.pit
    }
}

#[cfg(test)]
#[path = "platform_tests.rs"]
mod tests;
