//! Flat binaries: raw bytes placed at a physical address and entered there.
//!
//! There is no header to describe the image, so the contract is fixed here
//! (and in docs/multiboot.md):
//!
//! - the bytes are copied to `addr`; nothing else in RAM changes except
//!   QEMU's boot GDT at 0xcb2b8 (so the image may reload CS 0x08 / DS 0x10);
//! - the CPU is in the same state a Multiboot kernel gets from QEMU
//!   (32-bit protected mode, paging off, IF=0, flat 4 GiB segments CS=0x08,
//!   DS=ES=FS=GS=SS=0x10, GDTR 0xcb2b8/0x27, IDTR 0/0x3ff, EFLAGS 0x6,
//!   CR0 0x11), with EIP = `addr`;
//! - all general registers are zero except ESP = `addr`: the stack grows
//!   down from the image, as a boot sector's does from 0x7C00.
//!
//! The image must lie wholly in guest RAM and may not cover the boot GDT.

use super::entry::{self, GDT, GDT_BASE};
use super::LoadError;
use crate::cpu::state::reg;
use crate::machine::Machine;
use crate::memory::PhysAddr;

/// Places `bytes` at `addr` and starts the CPU there in flat 32-bit
/// protected mode (see the module documentation for the exact state).
pub fn load_flat(m: &mut Machine, bytes: &[u8], addr: PhysAddr) -> Result<(), LoadError> {
    let start = u64::from(addr.0);
    let end = start + bytes.len() as u64;
    let ram = u64::from(m.ram.size());
    if end > ram {
        return Err(LoadError::TooBig(format!("flat image at {start:#x}..{end:#x}, guest RAM ends at {ram:#x}")));
    }
    let gdt = u64::from(GDT_BASE);
    entry::check_clear(start, end, gdt, gdt + 8 * GDT.len() as u64, "boot GDT")?;
    let dst = m.ram.slice_mut(addr, bytes.len()).ok_or_else(|| LoadError::TooBig("flat image".into()))?;
    dst.copy_from_slice(bytes);
    entry::write_gdt(&mut m.ram);
    let mut gpr = [0u32; 8];
    gpr[reg::ESP] = addr.0;
    entry::set_entry_state(&mut m.cpu, addr.0, gpr);
    Ok(())
}
