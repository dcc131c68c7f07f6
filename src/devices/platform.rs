//! The PC platform: every device on the I/O bus, the interrupt wiring
//! between them, and the port decode table.
//!
//! STUB: replaced by the devices work (issue #2).

/// Something the platform asks the machine to do after an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformEvent {
    /// isa-debug-exit: leave with this process status ((v << 1) | 1).
    Exit(i32),
    /// The guest asked for a system reset (i8042 command 0xFE).
    Reset,
}

/// All devices of the PC platform.
pub struct Platform {
    out: Box<dyn std::io::Write + Send>,
    event: Option<PlatformEvent>,
    /// Accesses to ports no device decodes.
    pub unknown_port_accesses: u64,
}

impl Platform {
    /// A platform whose serial port writes to `serial_out`.
    pub fn new(serial_out: Box<dyn std::io::Write + Send>) -> Platform {
        Platform { out: serial_out, event: None, unknown_port_accesses: 0 }
    }
    /// Port read.
    pub fn io_read(&mut self, port: u16, _size: u8, _now: u64) -> u32 {
        let _ = port;
        self.unknown_port_accesses += 1;
        0xffff_ffff
    }
    /// Port write.
    pub fn io_write(&mut self, port: u16, _size: u8, value: u32, _now: u64) {
        match port {
            0x3f8 => {
                let _ = self.out.write_all(&[value as u8]);
            }
            0xf4 => self.event = Some(PlatformEvent::Exit((((value & 0xff) << 1) | 1) as i32)),
            _ => self.unknown_port_accesses += 1,
        }
    }
    /// Brings timers up to `now` and latches their interrupt lines.
    pub fn update(&mut self, _now: u64) {}
    /// The earliest virtual time at which a device's interrupt line may
    /// change without an I/O access (u64::MAX if none).
    pub fn next_deadline(&self, _now: u64) -> u64 {
        u64::MAX
    }
    /// Whether the PIC pair presents an interrupt to the CPU.
    pub fn interrupt_pending(&self) -> bool {
        false
    }
    /// INTA: the vector of the highest-priority pending interrupt.
    pub fn acknowledge_interrupt(&mut self) -> u8 {
        0x0f
    }
    /// Takes the pending exit or reset request, if any.
    pub fn take_event(&mut self) -> Option<PlatformEvent> {
        self.event.take()
    }
    /// Flushes the serial output.
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}
