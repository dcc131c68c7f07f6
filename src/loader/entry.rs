//! The CPU state QEMU 7.2's Multiboot option ROM (`multiboot_dma.bin`)
//! leaves behind when it jumps to a kernel, as observed by the probe
//! kernels in `probe/` (see docs/multiboot.md, run `elf-128-full` and the
//! others). The flat-binary loader reuses it so both start the same way.
//!
//! Everything here is what a kernel can observe at its first instruction:
//! general registers, EFLAGS, CR0, the segment registers and their caches,
//! GDTR (and the GDT it points to, which the ROM leaves in shadowed option
//! ROM space that is guest RAM in bt86) and IDTR.

use super::LoadError;
use crate::cpu::state::{attr, reg, CpuState, Seg, Segment, TableReg};
use crate::memory::{GuestRam, PhysAddr};

/// Multiboot v1 boot-loader magic, in EAX at entry (Multiboot spec §3.2).
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;

/// Where QEMU's option ROM keeps its GDT (`sgdt` at entry: base 0x000cb2b8,
/// limit 0x27) with the default device set of the DESIGN §2 command line
/// (VGA ROM, then iPXE at 0xCA000, then the Multiboot ROM at 0xCB000).
pub const GDT_BASE: u32 = 0x000c_b2b8;
/// GDTR limit at entry: five descriptors.
pub const GDT_LIMIT: u16 = 0x27;
/// The five descriptors as read back from guest memory at entry
/// (low dword, high dword): null; flat 32-bit code (type 0xA, not
/// accessed); flat 32-bit data (type 0x3, accessed by the ROM's segment
/// loads); 64 KiB 16-bit code (type 0xE, conforming); 64 KiB 16-bit data.
pub const GDT: [(u32, u32); 5] = [
    (0x0000_0000, 0x0000_0000),
    (0x0000_ffff, 0x00cf_9a00),
    (0x0000_ffff, 0x00cf_9300),
    (0x0000_ffff, 0x0000_9e00),
    (0x0000_ffff, 0x0000_9200),
];

/// CS at entry: GDT entry 1.
pub const CODE_SELECTOR: u16 = 0x08;
/// DS, ES, FS, GS and SS at entry: GDT entry 2.
pub const DATA_SELECTOR: u16 = 0x10;

/// EFLAGS at entry: PF and the always-one bit; IF, DF and TF clear.
pub const EFLAGS: u32 = 0x0000_0006;
/// CR0 at entry: PE and ET; paging, caching controls and WP off.
pub const CR0: u32 = 0x0000_0011;
/// IDTR at entry: still the real-mode IVT.
pub const IDTR: TableReg = TableReg { base: 0, limit: 0x3ff };
/// ESP at entry: the option ROM's own stack, in conventional memory.
pub const ESP: u32 = 0x0000_6f08;
/// EDI at entry (left over by the ROM; constant in every probe run).
pub const EDI: u32 = 0x0000_1000;
/// Low half of EDX at entry (left over by the ROM; constant in every run).
pub const EDX_LOW: u32 = 0x0511;

/// Writes QEMU's boot GDT at [`GDT_BASE`] in guest RAM, if RAM reaches it.
pub fn write_gdt(ram: &mut GuestRam) {
    let mut bytes = [0u8; GDT.len() * 8];
    for (chunk, (lo, hi)) in bytes.chunks_exact_mut(8).zip(GDT) {
        chunk[..4].copy_from_slice(&lo.to_le_bytes());
        chunk[4..].copy_from_slice(&hi.to_le_bytes());
    }
    if let Some(dst) = ram.slice_mut(PhysAddr(GDT_BASE), bytes.len()) {
        dst.copy_from_slice(&bytes);
    }
}

/// Checks that `[start, end)` (guest physical, 64-bit so nothing wraps)
/// does not overlap `[lo, hi)`, which holds `what`.
pub fn check_clear(start: u64, end: u64, lo: u64, hi: u64, what: &str) -> Result<(), LoadError> {
    if start < hi && lo < end {
        return Err(LoadError::Overlap(format!("{start:#x}..{end:#x} overlaps the {what} at {lo:#x}..{hi:#x}")));
    }
    Ok(())
}

/// Puts the CPU in the state QEMU's ROM leaves: 32-bit protected mode,
/// paging off, flat 4 GiB segments (CS 0x08 attr 0xC09A, the others 0x10
/// attr 0xC093), GDTR/IDTR as observed, the given general registers.
pub fn set_entry_state(cpu: &mut CpuState, eip: u32, gpr: [u32; 8]) {
    let code = Segment::flat(CODE_SELECTOR, attr::CODE | attr::RW, 0);
    let data = Segment::flat(DATA_SELECTOR, attr::RW | attr::ACCESSED, 0);
    for s in Seg::ALL {
        cpu.seg[s as usize] = if s == Seg::Cs { code } else { data };
    }
    cpu.gpr = gpr;
    cpu.eip = eip;
    cpu.eflags = EFLAGS;
    cpu.cr0 = CR0;
    cpu.cr2 = 0;
    cpu.cr3 = 0;
    cpu.cr4 = 0;
    cpu.gdtr = TableReg { base: GDT_BASE, limit: GDT_LIMIT };
    cpu.idtr = IDTR;
    cpu.cpl = 0;
    cpu.int_shadow = 0;
    cpu.halted = 0;
}

/// The general registers a Multiboot kernel finds at entry (probe runs
/// `elf-*`, `pad-200`): EAX magic, EBX info, ECX entry point, EDX the ROM's
/// leftover `(mem_upper & 0xFFFF0000) | 0x511`, EDI 0x1000, ESP 0x6f08.
pub fn multiboot_gpr(entry: u32, mbi: u32, mem_upper_kib: u32) -> [u32; 8] {
    let mut gpr = [0u32; 8];
    gpr[reg::EAX] = BOOTLOADER_MAGIC;
    gpr[reg::EBX] = mbi;
    gpr[reg::ECX] = entry;
    gpr[reg::EDX] = (mem_upper_kib & 0xffff_0000) | EDX_LOW;
    gpr[reg::ESP] = ESP;
    gpr[reg::EDI] = EDI;
    gpr
}
