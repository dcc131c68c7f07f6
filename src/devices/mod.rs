//! Platform devices on the port-I/O bus.
//!
//! Each device is plain logic behind [`PioDevice`]: it states the ports it
//! decodes and answers reads and writes. Time is virtual: every access is
//! stamped with `now`, the machine's clock in nanoseconds (see
//! `crate::machine::Clock`), so timers compute their state on demand instead
//! of being ticked. Interrupt lines are not callbacks: the [`Platform`]
//! samples each device's line after every access and every time update and
//! forwards it to the 8259 pair.

pub mod cmos;
pub mod debug_exit;
pub mod i8042;
pub mod pic;
pub mod pit;
pub mod platform;
pub mod serial_input;
pub mod uart;

pub use platform::{Platform, PlatformEvent};

/// Width of a port access in bytes: 1, 2 or 4.
pub type IoSize = u8;

/// A device on the port-I/O bus.
pub trait PioDevice {
    /// Short name for `--stats` and traces ("uart", "pic", ...).
    fn name(&self) -> &'static str;
    /// The inclusive port ranges this device decodes.
    fn ports(&self) -> &'static [(u16, u16)];
    /// A read of `size` bytes from `port` at virtual time `now`.
    fn read(&mut self, port: u16, size: IoSize, now: u64) -> u32;
    /// A write of `size` bytes to `port` at virtual time `now`.
    fn write(&mut self, port: u16, size: IoSize, value: u32, now: u64);
    /// Whether the device's registers are 8 bits wide, so that the bus
    /// splits a 16- or 32-bit access into byte accesses to consecutive
    /// ports (what ISA decoding and QEMU's memory core do for them).
    fn byte_wide(&self) -> bool {
        true
    }
}
