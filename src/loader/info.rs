//! The Multiboot information QEMU 7.2 hands a kernel, and where it puts it
//! (spec §3.3; placement and values from the probe runs in
//! docs/multiboot.md).
//!
//! ```text
//!  0x9000  e820 memory map, 24-byte entries {size=20, base u64, len u64, type}
//!  0x9500  multiboot_info, 88 bytes (EBX)
//!  load_addr ........ kernel (text, data, zeroed BSS)
//!  page_align(kernel end):  "mb_buf" tail, in this order:
//!          module list (16 bytes each: start, end, string, 0)
//!          module strings, in order ("FILE ARGS" exactly as given)
//!          kernel command line "KERNEL-PATH APPEND" (APPEND may be empty)
//!          boot loader name "qemu"
//!  page_align(...):  module 1, module 2, ... each page aligned, end exclusive
//! ```
//!
//! Flags are always 0x24F (memory, boot device, cmdline, modules, mmap,
//! boot loader name), even with no modules (count 0, address = the list
//! slot, which is then where the strings start).

use super::multiboot::Kernel;
use super::{BootParams, LoadError};
use crate::memory::ram::{HIGH_MEM_START, LOW_MEM_END};

/// Where QEMU's ROM writes the e820 map (`mmap_addr`).
pub const MMAP_ADDR: u32 = 0x9000;
/// Where the info structure goes (EBX at entry).
pub const MBI_ADDR: u32 = 0x9500;
/// Bytes of info structure QEMU writes (up to and including the VBE fields).
pub const MBI_SIZE: usize = 88;
/// `flags`: bits 0, 1, 2, 3, 6, 9.
pub const MBI_FLAGS: u32 = 0x24f;
/// `boot_device`: BIOS drive 0x80, no partitions.
pub const BOOT_DEVICE: u32 = 0x8000_ffff;
/// `boot_loader_name`.
pub const BOOT_LOADER_NAME: &str = "qemu";
/// One Multiboot module list entry.
pub const MOD_ENTRY_SIZE: u64 = 16;
/// One mmap entry as QEMU lays it out (`size` field excluded: 20).
pub const MMAP_ENTRY_SIZE: u32 = 24;
/// SeaBIOS reserves this much at the top of low RAM.
const BIOS_RESERVED_TOP: u32 = 0x2_0000;
/// Extended BIOS data area: the last KiB below 640 KiB.
const EBDA_START: u32 = 0x9_fc00;
/// The BIOS ROM shadow at 0xF0000 and the flash at the top of 4 GiB.
const BIOS_SHADOW: (u32, u32) = (0xf_0000, 0x1_0000);
const BIOS_FLASH: (u32, u32) = (0xfffc_0000, 0x4_0000);
/// QEMU's i440fx splits RAM of 3.5 GiB and more at 3 GiB (PCI hole).
const SPLIT_THRESHOLD: u64 = 0xe000_0000;
const SPLIT_AT: u64 = 0xc000_0000;

/// e820 memory type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum E820Type {
    Ram = 1,
    Reserved = 2,
}

/// One memory map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub base: u64,
    pub len: u64,
    pub kind: E820Type,
}

const fn e(base: u64, len: u64, kind: E820Type) -> E820Entry {
    E820Entry { base, len, kind }
}

/// The e820 map QEMU 7.2 (SeaBIOS) reports for `ram_size` bytes of RAM
/// (probe runs at -m 3, 64, 128, 200, 1000, 3584). `None` when there is
/// too little RAM for SeaBIOS's layout (below 2 MiB).
pub fn e820_map(ram_size: u64) -> Option<Vec<E820Entry>> {
    use E820Type::{Ram, Reserved};
    if ram_size < 2 << 20 {
        return None;
    }
    let (low, high) = if ram_size >= SPLIT_THRESHOLD { (SPLIT_AT, ram_size - SPLIT_AT) } else { (ram_size, 0) };
    let top = u64::from(BIOS_RESERVED_TOP);
    let mut map = vec![
        e(0, u64::from(EBDA_START), Ram),
        e(u64::from(EBDA_START), u64::from(LOW_MEM_END - EBDA_START), Reserved),
        e(u64::from(BIOS_SHADOW.0), u64::from(BIOS_SHADOW.1), Reserved),
        e(u64::from(HIGH_MEM_START), low - top - u64::from(HIGH_MEM_START), Ram),
        e(low - top, top, Reserved),
        e(u64::from(BIOS_FLASH.0), u64::from(BIOS_FLASH.1), Reserved),
    ];
    if high > 0 {
        map.push(e(1 << 32, high, Ram));
    }
    Some(map)
}

/// `mem_lower` and `mem_upper` in KiB, as the ROM derives them from the
/// map: the RAM entries at 0 and at 1 MiB (128 MiB: 0x27F and 0x1FB80).
pub fn mem_lower_upper(map: &[E820Entry]) -> (u32, u32) {
    let kib = |base| map.iter().find(|x| x.base == base && x.kind == E820Type::Ram).map_or(0, |x| x.len >> 10);
    (kib(0) as u32, kib(u64::from(HIGH_MEM_START)) as u32)
}

/// The e820 map as the bytes QEMU writes at [`MMAP_ADDR`].
pub fn mmap_bytes(map: &[E820Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(map.len() * MMAP_ENTRY_SIZE as usize);
    for x in map {
        out.extend_from_slice(&(MMAP_ENTRY_SIZE - 4).to_le_bytes());
        out.extend_from_slice(&x.base.to_le_bytes());
        out.extend_from_slice(&x.len.to_le_bytes());
        out.extend_from_slice(&(x.kind as u32).to_le_bytes());
    }
    out
}

/// Where everything after the kernel goes (guest physical addresses,
/// 64-bit so that hostile sizes cannot wrap).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub mods_addr: u64,
    /// Per module: (start, end exclusive, string address).
    pub modules: Vec<(u64, u64, u64)>,
    pub cmdline_addr: u64,
    pub bootloader_addr: u64,
    /// One past the last byte QEMU writes (page aligned).
    pub end: u64,
}

/// Rounds up to a 4 KiB page.
pub fn page_align(x: u64) -> u64 {
    (x + 0xfff) & !0xfff
}

/// The kernel command line QEMU builds: `"%s %s"` of path and append.
pub fn kernel_cmdline(p: &BootParams) -> String {
    format!("{} {}", p.kernel_path, p.append.as_deref().unwrap_or(""))
}

/// Lays out the info tail and the modules after `kernel` as QEMU does.
/// The string area is sized from the `-initrd` string (names joined by
/// commas, each comma inside a name escaped by doubling).
pub fn plan(kernel: &Kernel, p: &BootParams) -> Layout {
    let base = u64::from(kernel.load_addr);
    let mods_off = page_align(u64::from(kernel.size));
    let n = p.modules.len() as u64;
    let mut strings_len = p.kernel_path.len() as u64 + 1 + p.append.as_deref().map_or(0, str::len) as u64 + 1;
    if n > 0 {
        let escaped: u64 = p.modules.iter().map(|(s, _)| (s.len() + s.matches(',').count()) as u64).sum();
        strings_len += escaped + n; // n - 1 separating commas and a NUL
    }
    let strings_off = mods_off + MOD_ENTRY_SIZE * n;
    let bootloader_off = strings_off + strings_len;
    let mut off = page_align(bootloader_off + BOOT_LOADER_NAME.len() as u64 + 1);
    let mut str_off = strings_off;
    let mut modules = Vec::with_capacity(p.modules.len());
    for (name, data) in &p.modules {
        let len = data.len() as u64;
        modules.push((base + off, base + off + len, base + str_off));
        str_off += name.len() as u64 + 1;
        off = page_align(off + len);
    }
    Layout {
        mods_addr: base + mods_off,
        modules,
        cmdline_addr: base + str_off,
        bootloader_addr: base + bootloader_off,
        end: base + off,
    }
}

/// The 88-byte multiboot_info structure (spec §3.3) for `layout`.
pub fn mbi_bytes(layout: &Layout, map: &[E820Entry]) -> Result<[u8; MBI_SIZE], LoadError> {
    let (lower, upper) = mem_lower_upper(map);
    let a = |x: u64| u32::try_from(x).map_err(|_| LoadError::TooBig(format!("info address {x:#x} beyond 4 GiB")));
    let fields: [(usize, u32); 10] = [
        (0, MBI_FLAGS),
        (4, lower),
        (8, upper),
        (12, BOOT_DEVICE),
        (16, a(layout.cmdline_addr)?),
        (20, layout.modules.len() as u32),
        (24, a(layout.mods_addr)?),
        (44, map.len() as u32 * MMAP_ENTRY_SIZE),
        (48, MMAP_ADDR),
        (64, a(layout.bootloader_addr)?),
    ];
    let mut out = [0u8; MBI_SIZE];
    for (off, v) in fields {
        out[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}
