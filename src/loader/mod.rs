//! Loading guest images into a [`Machine`]: Multiboot v1 kernels (ELF32 and
//! the a.out kludge), Linux bzImages (the 32-bit boot protocol, `linux.rs`)
//! and flat binaries.
//!
//! The Multiboot loader reproduces what `qemu-system-i386 -kernel` (QEMU
//! 7.2, its `multiboot_dma.bin` option ROM and SeaBIOS) leaves in guest
//! memory and in the CPU, as measured by the probe kernels in `probe/`
//! and recorded in docs/multiboot.md:
//!
//! ```text
//!   image ─► multiboot::find_header ─► multiboot::parse_kernel (ELF32 | a.out kludge)
//!         ─► info::plan (info tail + modules after the kernel, page aligned)
//!         ─► checks: fits in RAM, clear of the info area and the 640K–1M hole
//!         ─► write: zero kernel span, copy chunks, tail strings, modules,
//!                   e820 map @0x9000, multiboot_info @0x9500, ROM GDT @0xcb2b8
//!         ─► entry::set_entry_state (EAX=0x2BADB002, EBX=0x9500, flat segments)
//! ```
//!
//! Invariants: nothing is written before every check has passed, every
//! address is computed in u64 (no wrap), and every write goes through
//! [`GuestRam::slice_mut`], so a hostile image gets a [`LoadError`] and
//! guest RAM outside the image's span is never touched.

mod elf;
pub mod entry;
mod flat;
pub mod info;
pub mod linux;
pub mod multiboot;
#[cfg(test)]
mod tests;

pub use flat::load_flat;
pub use info::{e820_map, E820Entry, E820Type};
pub use linux::{is_bzimage, load_linux, silent_stop_cause};

use crate::machine::Machine;
use crate::memory::ram::{HIGH_MEM_START, LOW_MEM_END};
use crate::memory::{GuestRam, PhysAddr};
use thiserror::Error;

/// Why an image could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("not a Multiboot kernel: no Multiboot header in the first 8 KiB")]
    NoMultibootHeader,
    #[error("malformed image: {0}")]
    Malformed(String),
    #[error("image does not fit in guest RAM: {0}")]
    TooBig(String),
    #[error("image overlaps memory the boot loader uses: {0}")]
    Overlap(String),
    #[error("unsupported image: {0}")]
    Unsupported(String),
    #[error("guest RAM of {0:#x} bytes is too small to boot from (need at least 2 MiB)")]
    RamTooSmall(u32),
}

/// What the user gave besides the kernel image.
#[derive(Debug, Default, Clone)]
pub struct BootParams {
    /// The kernel's path as given on the command line (QEMU passes it as
    /// the first word of the Multiboot command line).
    pub kernel_path: String,
    /// `--append`.
    pub append: Option<String>,
    /// `--initrd` modules (for a bzImage: at most one, the initrd): (module string as given — the path, then
    /// optional arguments after a space — and the file's contents).
    pub modules: Vec<(String, Vec<u8>)>,
}

/// The area QEMU's ROM fills with the memory map and the info structure.
const INFO_AREA: (u64, u64) = (info::MMAP_ADDR as u64, info::MBI_ADDR as u64 + info::MBI_SIZE as u64);

/// Loads a Multiboot kernel and sets the CPU up at its entry point.
pub fn load_multiboot(m: &mut Machine, image: &[u8], params: &BootParams) -> Result<(), LoadError> {
    let ram_size = m.ram.size();
    let map = e820_map(u64::from(ram_size)).ok_or(LoadError::RamTooSmall(ram_size))?;
    let hdr = multiboot::find_header(image)?;
    let kernel = multiboot::parse_kernel(image, &hdr)?;
    let layout = info::plan(&kernel, params);
    let start = u64::from(kernel.load_addr);
    if layout.end > u64::from(ram_size) {
        return Err(LoadError::TooBig(format!(
            "kernel, info and modules span {start:#x}..{:#x}, guest RAM ends at {ram_size:#x}",
            layout.end
        )));
    }
    entry::check_clear(start, layout.end, INFO_AREA.0, INFO_AREA.1, "Multiboot info area")?;
    let hole = (u64::from(LOW_MEM_END), u64::from(HIGH_MEM_START));
    entry::check_clear(start, layout.end, hole.0, hole.1, "VGA/ROM hole")?;
    let mbi = info::mbi_bytes(&layout, &map)?;
    place(&mut m.ram, &kernel, &layout, params)?;
    put(&mut m.ram, u64::from(info::MMAP_ADDR), &info::mmap_bytes(&map))?;
    put(&mut m.ram, u64::from(info::MBI_ADDR), &mbi)?;
    entry::write_gdt(&mut m.ram);
    let (_, upper) = info::mem_lower_upper(&map);
    let gpr = entry::multiboot_gpr(kernel.entry, info::MBI_ADDR, upper);
    entry::set_entry_state(&mut m.cpu, kernel.entry, gpr);
    Ok(())
}

/// Writes the kernel span (zeroed, then its chunks), the info tail and
/// the modules: everything QEMU copies from `load_addr` to `layout.end`.
fn place(
    ram: &mut GuestRam,
    kernel: &multiboot::Kernel,
    layout: &info::Layout,
    p: &BootParams,
) -> Result<(), LoadError> {
    let start = u64::from(kernel.load_addr);
    let span = usize::try_from(layout.end - start).map_err(|_| LoadError::TooBig("span too large".into()))?;
    slice(ram, start, span)?.fill(0);
    for c in &kernel.chunks {
        put(ram, u64::from(c.addr), c.data)?;
    }
    let mut list = Vec::with_capacity(layout.modules.len() * 16);
    for ((mod_start, mod_end, string), (name, data)) in layout.modules.iter().zip(&p.modules) {
        for v in [*mod_start, *mod_end, *string, 0] {
            list.extend_from_slice(&(v as u32).to_le_bytes());
        }
        put(ram, *string, &nul_terminated(name))?;
        put(ram, *mod_start, data)?;
    }
    put(ram, layout.mods_addr, &list)?;
    put(ram, layout.cmdline_addr, &nul_terminated(&info::kernel_cmdline(p)))?;
    put(ram, layout.bootloader_addr, &nul_terminated(info::BOOT_LOADER_NAME))
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// `len` bytes of guest RAM at `addr`, or an error naming the range.
fn slice(ram: &mut GuestRam, addr: u64, len: usize) -> Result<&mut [u8], LoadError> {
    let size = ram.size();
    let end = addr + len as u64;
    u32::try_from(addr)
        .ok()
        .and_then(|a| ram.slice_mut(PhysAddr(a), len))
        .ok_or_else(|| LoadError::TooBig(format!("{addr:#x}..{end:#x} is beyond guest RAM ({size:#x} bytes)")))
}

/// Copies `data` into guest RAM at `addr`, all or nothing.
fn put(ram: &mut GuestRam, addr: u64, data: &[u8]) -> Result<(), LoadError> {
    slice(ram, addr, data.len())?.copy_from_slice(data);
    Ok(())
}
