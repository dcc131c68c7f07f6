//! A 16550A UART (COM1 at 0x3F8, IRQ 4), after the National Semiconductor
//! PC16550D datasheet.
//!
//! Transmission is instant in virtual time: a byte written to THR goes to
//! the injected writer at once, so THR and the transmitter are always empty
//! again by the next access (LSR.THRE = LSR.TEMT = 1). Reception is fed by
//! [`Uart::receive`]; the receive FIFO holds 16 bytes (1 with FIFOs off).
//!
//! Interrupts, highest priority first (datasheet table IV):
//!
//! ```text
//!  IIR 0x06  receiver line status   OE/PE/FE/BI in LSR        (IER bit 2)
//!  IIR 0x04  received data          FIFO at trigger level     (IER bit 0)
//!  IIR 0x0C  character timeout      data below trigger, 4 character times
//!                                   without reads or arrivals (IER bit 0)
//!  IIR 0x02  THR empty              see `thre_pending`        (IER bit 1)
//!  IIR 0x00  modem status           MSR delta bits            (IER bit 3)
//! ```
//!
//! The interrupt line is a level: it is high while IIR reports a source.
//! On a PC it reaches the PIC through a buffer enabled by MCR.OUT2, and in
//! loopback mode the OUT2 pin is forced inactive, so the PIC sees nothing.
//! (QEMU's serial ignores OUT2; the gate can be switched off with
//! [`Uart::set_out2_gate`].)

use super::{IoSize, PioDevice};
use std::collections::VecDeque;
use std::io::Write;

/// COM1 base port.
pub const COM1_BASE: u16 = 0x3f8;

// Register offsets from the base.
const RBR_THR_DLL_OFFSET: u16 = 0;
const IER_DLM_OFFSET: u16 = 1;
const IIR_FCR_OFFSET: u16 = 2;
const LCR_OFFSET: u16 = 3;
const MCR_OFFSET: u16 = 4;
const LSR_OFFSET: u16 = 5;
const MSR_OFFSET: u16 = 6;
const SCR_OFFSET: u16 = 7;

// IER bits.
const IER_RDA_BIT: u8 = 0x01;
const IER_THRE_BIT: u8 = 0x02;
const IER_RLS_BIT: u8 = 0x04;
const IER_MS_BIT: u8 = 0x08;
const IER_MASK: u8 = 0x0f;

// IIR values.
const IIR_NONE: u8 = 0x01;
const IIR_MODEM_STATUS: u8 = 0x00;
const IIR_THR_EMPTY: u8 = 0x02;
const IIR_RX_DATA: u8 = 0x04;
const IIR_RX_LINE_STATUS: u8 = 0x06;
const IIR_RX_TIMEOUT: u8 = 0x0c;
const IIR_FIFO_ENABLED_BITS: u8 = 0xc0;

// FCR bits.
const FCR_FIFO_ENABLE_BIT: u8 = 0x01;
const FCR_CLEAR_RX_BIT: u8 = 0x02;
const FCR_TRIGGER_SHIFT: u8 = 6;
const RX_TRIGGER_LEVELS: [usize; 4] = [1, 4, 8, 14];

// LCR bits.
const LCR_WORD_LENGTH_MASK: u8 = 0x03;
const LCR_STOP_BITS_BIT: u8 = 0x04;
const LCR_PARITY_BIT: u8 = 0x08;
const LCR_DLAB_BIT: u8 = 0x80;

// MCR bits.
const MCR_DTR_BIT: u8 = 0x01;
const MCR_RTS_BIT: u8 = 0x02;
const MCR_OUT1_BIT: u8 = 0x04;
const MCR_OUT2_BIT: u8 = 0x08;
const MCR_LOOPBACK_BIT: u8 = 0x10;
const MCR_MASK: u8 = 0x1f;

// LSR bits.
const LSR_DATA_READY_BIT: u8 = 0x01;
const LSR_OVERRUN_BIT: u8 = 0x02;
const LSR_THR_EMPTY_BIT: u8 = 0x20;
const LSR_TEMT_BIT: u8 = 0x40;
const LSR_ERROR_BITS: u8 = 0x1e;

// MSR bits: deltas in the low nibble, line states in the high one.
const MSR_DELTA_BITS: u8 = 0x0f;
const MSR_TERI_BIT: u8 = 0x04;
const MSR_CTS_BIT: u8 = 0x10;
const MSR_DSR_BIT: u8 = 0x20;
const MSR_RI_BIT: u8 = 0x40;
const MSR_DCD_BIT: u8 = 0x80;
/// Modem lines seen with a terminal attached (as QEMU reports them).
const MSR_CONNECTED: u8 = MSR_DCD_BIT | MSR_DSR_BIT | MSR_CTS_BIT;

const FIFO_SIZE: usize = 16;
/// The UART's input clock divided by 16: baud = 115200 / divisor.
const BASE_BAUD: u64 = 115_200;

/// The 16550A.
pub struct Uart {
    out: Box<dyn Write + Send>,
    rx: VecDeque<u8>,
    ier: u8,
    lcr: u8,
    mcr: u8,
    lsr_errors: u8,
    msr: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    fifo_enabled: bool,
    rx_trigger: usize,
    /// THR-empty interrupt latched (datasheet: set when THR empties or
    /// ETBEI is enabled with THR empty; reset by an IIR read that reports
    /// it or by a THR write).
    thre_pending: bool,
    /// Virtual time of the last receive or RBR read (timeout reference).
    rx_activity: u64,
    timeout_pending: bool,
    out2_gate: bool,
    /// Bytes written to the output that the writer refused.
    pub write_errors: u64,
    /// Bytes the guest sent (loopback excluded).
    pub transmitted: u64,
    /// The output line being sent (capped at [`LINE_MAX`] bytes).
    line: Vec<u8>,
    /// A text to watch the output for: the first whole line that contains
    /// it is kept in `watched` (the trap engine's panic watch).
    pub watch: Option<&'static str>,
    pub watched: Option<String>,
}

/// The longest output line the watch looks at.
const LINE_MAX: usize = 512;

impl Uart {
    /// A UART in its reset state whose transmitter writes to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Uart {
        Uart {
            out,
            rx: VecDeque::with_capacity(FIFO_SIZE),
            ier: 0,
            lcr: 0,
            mcr: 0,
            lsr_errors: 0,
            msr: MSR_CONNECTED,
            scr: 0,
            dll: 0x0c,
            dlm: 0,
            fifo_enabled: false,
            rx_trigger: 1,
            thre_pending: false,
            rx_activity: 0,
            timeout_pending: false,
            out2_gate: true,
            write_errors: 0,
            transmitted: 0,
            line: Vec::new(),
            watch: None,
            watched: None,
        }
    }

    /// Whether the interrupt output reaches the PIC only with MCR.OUT2 set
    /// (true, as on a PC) or always (QEMU's behaviour).
    pub fn set_out2_gate(&mut self, gate: bool) {
        self.out2_gate = gate;
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled {
            FIFO_SIZE
        } else {
            1
        }
    }

    /// How many bytes [`Uart::receive`] can take without an overrun.
    pub fn rx_room(&self) -> usize {
        self.rx_capacity().saturating_sub(self.rx.len())
    }

    /// A byte arrives on the serial line at `now`. With the FIFO (or the
    /// holding register) full it is an overrun: LSR.OE is set and, as the
    /// datasheet says, the byte is lost with FIFOs on and overwrites RBR
    /// with FIFOs off.
    pub fn receive(&mut self, byte: u8, now: u64) {
        if self.rx.len() >= self.rx_capacity() {
            self.lsr_errors |= LSR_OVERRUN_BIT;
            if !self.fifo_enabled {
                self.rx.clear();
                self.rx.push_back(byte);
            }
        } else {
            self.rx.push_back(byte);
        }
        self.rx_activity = now;
        self.timeout_pending = false;
    }

    /// One character time in ns for the programmed divisor and frame.
    fn char_time_ns(&self) -> u64 {
        let divisor = u64::from(u16::from_le_bytes([self.dll, self.dlm]).max(1));
        let data_bits = 5 + u64::from(self.lcr & LCR_WORD_LENGTH_MASK);
        let parity = u64::from(self.lcr & LCR_PARITY_BIT != 0);
        let stop = if self.lcr & LCR_STOP_BITS_BIT != 0 { 2 } else { 1 };
        let bits = 1 + data_bits + parity + stop;
        bits * divisor * 1_000_000_000 / BASE_BAUD
    }

    /// When the character timeout indication is due, if it can be.
    fn timeout_deadline(&self) -> Option<u64> {
        let waiting = self.fifo_enabled && !self.rx.is_empty() && self.rx.len() < self.rx_trigger;
        (waiting && !self.timeout_pending).then(|| self.rx_activity.saturating_add(4 * self.char_time_ns()))
    }

    /// Brings the character timeout up to `now`.
    pub fn update(&mut self, now: u64) {
        if self.timeout_deadline().is_some_and(|t| now >= t) {
            self.timeout_pending = true;
        }
    }

    /// The earliest time the interrupt line may change by itself.
    pub fn next_deadline(&self) -> u64 {
        if self.ier & IER_RDA_BIT == 0 {
            return u64::MAX;
        }
        self.timeout_deadline().unwrap_or(u64::MAX)
    }

    fn loopback(&self) -> bool {
        self.mcr & MCR_LOOPBACK_BIT != 0
    }

    /// The highest-priority interrupt source, as IIR bits 3..0.
    fn iir_source(&self) -> u8 {
        if self.ier & IER_RLS_BIT != 0 && self.lsr_errors != 0 {
            IIR_RX_LINE_STATUS
        } else if self.ier & IER_RDA_BIT != 0 && self.rx.len() >= self.rx_trigger.max(1) {
            IIR_RX_DATA
        } else if self.ier & IER_RDA_BIT != 0 && self.timeout_pending && !self.rx.is_empty() {
            IIR_RX_TIMEOUT
        } else if self.ier & IER_THRE_BIT != 0 && self.thre_pending {
            IIR_THR_EMPTY
        } else if self.ier & IER_MS_BIT != 0 && self.msr & MSR_DELTA_BITS != 0 {
            IIR_MODEM_STATUS
        } else {
            IIR_NONE
        }
    }

    /// The UART's INTR output as the PIC sees it on a PC.
    pub fn irq_line(&self) -> bool {
        let gated = self.out2_gate && (self.mcr & MCR_OUT2_BIT == 0 || self.loopback());
        self.iir_source() != IIR_NONE && !gated
    }

    fn read_iir(&mut self) -> u8 {
        let source = self.iir_source();
        if source == IIR_THR_EMPTY {
            self.thre_pending = false;
        }
        let fifo = if self.fifo_enabled { IIR_FIFO_ENABLED_BITS } else { 0 };
        source | fifo
    }

    fn read_rbr(&mut self, now: u64) -> u8 {
        let byte = self.rx.pop_front().unwrap_or(0);
        self.rx_activity = now;
        self.timeout_pending = false;
        byte
    }

    fn read_lsr(&mut self) -> u8 {
        let dr = if self.rx.is_empty() { 0 } else { LSR_DATA_READY_BIT };
        let lsr = dr | (self.lsr_errors & LSR_ERROR_BITS) | LSR_THR_EMPTY_BIT | LSR_TEMT_BIT;
        self.lsr_errors = 0;
        lsr
    }

    fn read_msr(&mut self) -> u8 {
        let msr = self.msr;
        self.msr &= !MSR_DELTA_BITS;
        msr
    }

    /// Line states the MSR reports: the connected terminal, or in loopback
    /// the MCR outputs (CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2).
    fn modem_inputs(&self) -> u8 {
        if !self.loopback() {
            return MSR_CONNECTED;
        }
        let m = self.mcr;
        let bit = |cond: bool, b: u8| if cond { b } else { 0 };
        bit(m & MCR_RTS_BIT != 0, MSR_CTS_BIT)
            | bit(m & MCR_DTR_BIT != 0, MSR_DSR_BIT)
            | bit(m & MCR_OUT1_BIT != 0, MSR_RI_BIT)
            | bit(m & MCR_OUT2_BIT != 0, MSR_DCD_BIT)
    }

    fn write_mcr(&mut self, v: u8) {
        self.mcr = v & MCR_MASK;
        let old = self.msr & 0xf0;
        let new = self.modem_inputs();
        let changed = old ^ new;
        // DCTS, DDSR, DDCD on any change; TERI only on RI going inactive.
        let mut delta = (changed >> 4) & !MSR_TERI_BIT;
        if old & MSR_RI_BIT != 0 && new & MSR_RI_BIT == 0 {
            delta |= MSR_TERI_BIT;
        }
        self.msr = new | (self.msr & MSR_DELTA_BITS) | delta;
    }

    fn write_thr(&mut self, v: u8, now: u64) {
        if self.loopback() {
            self.receive(v, now);
        } else {
            self.transmitted += 1;
            if self.out.write_all(&[v]).is_err() {
                self.write_errors += 1;
            }
            if let Some(text) = self.watch {
                self.watch_line(v, text);
            }
        }
        // The byte left at once: THR is empty again, which raises THRE.
        self.thre_pending = true;
    }

    /// Collects output lines while a watch is set (see `watch`).
    fn watch_line(&mut self, v: u8, text: &str) {
        if v != b'\n' {
            if self.line.len() < LINE_MAX {
                self.line.push(v);
            }
            return;
        }
        let line = String::from_utf8_lossy(&self.line).trim_end_matches('\r').to_string();
        self.line.clear();
        if self.watched.is_none() && line.contains(text) {
            self.watched = Some(line);
        }
    }

    fn write_ier(&mut self, v: u8) {
        let enabling_thre = self.ier & IER_THRE_BIT == 0 && v & IER_THRE_BIT != 0;
        self.ier = v & IER_MASK;
        if enabling_thre {
            self.thre_pending = true; // THR is always empty here
        }
    }

    fn write_fcr(&mut self, v: u8) {
        let enable = v & FCR_FIFO_ENABLE_BIT != 0;
        if enable != self.fifo_enabled {
            self.rx.clear();
        }
        self.fifo_enabled = enable;
        if !enable {
            self.rx_trigger = 1;
            return;
        }
        if v & FCR_CLEAR_RX_BIT != 0 {
            self.rx.clear();
        }
        self.rx_trigger = RX_TRIGGER_LEVELS[usize::from(v >> FCR_TRIGGER_SHIFT)];
        self.timeout_pending = false;
    }

    fn dlab(&self) -> bool {
        self.lcr & LCR_DLAB_BIT != 0
    }
}

impl PioDevice for Uart {
    fn name(&self) -> &'static str {
        "uart"
    }

    fn ports(&self) -> &'static [(u16, u16)] {
        &[(COM1_BASE, COM1_BASE + 7)]
    }

    fn read(&mut self, port: u16, _size: IoSize, now: u64) -> u32 {
        self.update(now);
        let v = match port.wrapping_sub(COM1_BASE) {
            RBR_THR_DLL_OFFSET if self.dlab() => self.dll,
            RBR_THR_DLL_OFFSET => self.read_rbr(now),
            IER_DLM_OFFSET if self.dlab() => self.dlm,
            IER_DLM_OFFSET => self.ier,
            IIR_FCR_OFFSET => self.read_iir(),
            LCR_OFFSET => self.lcr,
            MCR_OFFSET => self.mcr,
            LSR_OFFSET => self.read_lsr(),
            MSR_OFFSET => self.read_msr(),
            SCR_OFFSET => self.scr,
            _ => 0xff,
        };
        u32::from(v)
    }

    fn write(&mut self, port: u16, _size: IoSize, value: u32, now: u64) {
        self.update(now);
        let v = value as u8;
        match port.wrapping_sub(COM1_BASE) {
            RBR_THR_DLL_OFFSET if self.dlab() => self.dll = v,
            RBR_THR_DLL_OFFSET => self.write_thr(v, now),
            IER_DLM_OFFSET if self.dlab() => self.dlm = v,
            IER_DLM_OFFSET => self.write_ier(v),
            IIR_FCR_OFFSET => self.write_fcr(v),
            LCR_OFFSET => self.lcr = v,
            MCR_OFFSET => self.write_mcr(v),
            SCR_OFFSET => self.scr = v,
            _ => {} // LSR and MSR are read-only (factory test writes ignored)
        }
    }
}

impl Uart {
    /// Flushes the output writer.
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
#[path = "uart_tests.rs"]
pub(crate) mod tests;
