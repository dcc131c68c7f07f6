//! QEMU's isa-debug-exit, configured as `iobase=0xf4,iosize=0x04`.
//!
//! QEMU's device (hw/misc/debugexit.c) accepts accesses of 1 to 4 bytes
//! anywhere in its window and exits with `(val << 1) | 1`, where `val` is
//! the whole value of the access whatever its width or offset; reads return
//! 0. The status is handed on as a C `int` would hold it (the process exit
//! status the host sees is its low 8 bits).

use super::{IoSize, PioDevice};

/// First port of the window.
pub const DEBUG_EXIT_BASE: u16 = 0xf4;
/// Window size in ports.
pub const DEBUG_EXIT_SIZE: u16 = 4;

/// The exit status QEMU reports for a written value.
pub fn exit_status(value: u32) -> i32 {
    ((value << 1) | 1) as i32
}

/// The isa-debug-exit device.
#[derive(Debug, Default)]
pub struct DebugExit {
    requested: Option<i32>,
}

impl DebugExit {
    /// Takes the pending exit status, if the guest asked to exit.
    pub fn take_exit(&mut self) -> Option<i32> {
        self.requested.take()
    }
}

impl PioDevice for DebugExit {
    fn name(&self) -> &'static str {
        "debug-exit"
    }

    fn ports(&self) -> &'static [(u16, u16)] {
        &[(DEBUG_EXIT_BASE, DEBUG_EXIT_BASE + DEBUG_EXIT_SIZE - 1)]
    }

    fn read(&mut self, _port: u16, _size: IoSize, _now: u64) -> u32 {
        0
    }

    fn write(&mut self, _port: u16, size: IoSize, value: u32, _now: u64) {
        let mask = match size {
            1 => 0xff,
            2 => 0xffff,
            _ => u32::MAX,
        };
        self.requested = Some(exit_status(value & mask));
    }

    /// The whole access reaches the device: it is not split into bytes.
    fn byte_wide(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_value_shifted_or_one_for_every_width() {
        let mut d = DebugExit::default();
        d.write(0xf4, 1, 0x10, 0);
        assert_eq!(d.take_exit(), Some(0x21));
        assert_eq!(d.take_exit(), None);
        d.write(0xf4, 2, 0x1234, 0);
        assert_eq!(d.take_exit(), Some(0x2469));
        d.write(0xf4, 4, 0x0001_0000, 0);
        assert_eq!(d.take_exit(), Some(0x0002_0001));
        d.write(0xf5, 1, 0x1ff, 0);
        assert_eq!(d.take_exit(), Some(0x1ff), "a byte access carries one byte");
        d.write(0xf4, 4, 0xffff_ffff, 0);
        assert_eq!(d.take_exit(), Some(-1));
        assert_eq!(d.read(0xf4, 4, 0), 0);
    }
}
