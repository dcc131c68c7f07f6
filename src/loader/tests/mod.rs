//! Loader tests. `build` makes tiny synthetic images; `qemu` checks the
//! loader against values observed under QEMU 7.2 (probe runs named in
//! each test, recorded in docs/multiboot.md); `malformed` feeds it broken
//! and hostile images.

mod build;
mod linux;
mod malformed;
mod qemu;

use crate::machine::{Machine, MachineConfig};
use crate::memory::PhysAddr;

/// A machine with `mem` bytes of zeroed RAM and a discarded serial port.
pub fn machine(mem: u32) -> Machine {
    Machine::new(&MachineConfig { mem_size: mem, ..MachineConfig::default() }, Box::new(std::io::sink())).unwrap()
}

/// Little-endian dwords of guest RAM at `addr`.
pub fn dwords(m: &Machine, addr: u32, n: u32) -> Vec<u32> {
    (0..n).map(|i| m.ram.read_u32(PhysAddr(addr + 4 * i))).collect()
}

/// The NUL-terminated string at `addr`.
pub fn cstr(m: &Machine, addr: u32) -> String {
    let bytes = &m.ram.bytes()[addr as usize..];
    let len = bytes.iter().position(|&b| b == 0).unwrap();
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

pub const MIB: u32 = 1 << 20;
