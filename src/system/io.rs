//! IN, OUT, INS and OUTS: the permission check, then the platform bus at
//! the current virtual time.

use crate::cpu::Fault;
use crate::machine::Machine;

impl Machine {
    /// IN: reads `len` bytes from `port` if the CPL/IOPL and I/O bitmap allow.
    pub fn io_in(&mut self, port: u16, len: u32) -> Fault<u32> {
        self.check_io(port, len)?;
        let now = self.clock.now();
        Ok(self.platform.io_read(port, len as u8, now))
    }

    /// OUT: writes `len` bytes to `port` if the CPL/IOPL and I/O bitmap allow.
    pub fn io_out(&mut self, port: u16, len: u32, value: u32) -> Fault<()> {
        self.check_io(port, len)?;
        let now = self.clock.now();
        self.platform.io_write(port, len as u8, value, now);
        Ok(())
    }
}
