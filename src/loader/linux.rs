//! The Linux/x86 boot protocol, 32-bit entry (the kernel's
//! `Documentation/arch/x86/boot.rst`, "32-bit BOOT PROTOCOL", and
//! `zero-page.rst`): a bzImage is booted without running its 16-bit
//! setup code, the way a boot loader that is already in protected mode
//! does.
//!
//! ```text
//!   bzImage ─► SetupHeader::parse ("HdrS" at 0x202, boot_flag 0xAA55,
//!              protocol >= 2.02, LOADED_HIGH, setup_sects, the sizes)
//!           ─► plan: protected-mode kernel at 1 MiB, initrd page-aligned
//!              at the top of RAM below initrd_addr_max, checks
//!           ─► write: kernel, initrd, command line @0x20000,
//!              boot GDT @0x6000, zero page (boot_params) @0x7000
//!           ─► entry: EIP = code32_start, ESI = zero page, CS 0x10,
//!              DS/ES/SS (and FS/GS) 0x18, flat 4 GiB, paging off, IF=0,
//!              EBP = EDI = EBX = 0
//! ```
//!
//! The zero page is all zeros except: the setup header copied from the
//! image (0x1f1 up to 0x202 + the byte at 0x201, as boot.rst says), with
//! the fields a loader writes (`type_of_loader` 0xff "undefined",
//! `cmd_line_ptr`, `ramdisk_image`/`ramdisk_size`); the e820 map QEMU
//! gives a kernel under `-M isapc` for the RAM size (`e820_entries` at 0x1e8, the table at 0x2d0).
//! `CAN_USE_HEAP` and `heap_end_ptr` are left as the image has them
//! (clear): the heap is the 16-bit setup code's, which this entry skips.
//!
//! Offsets are written out here from boot.rst rather than taken from
//! rust-vmm's `linux-loader` crate: its `bootparam` module is a bindgen
//! image of the C structs meant to be written through vm-memory's
//! `ByteValued` (unsafe-impl plain-old-data over guest memory bt86 does
//! not use), and this loader needs a dozen fields by offset, each cited
//! once below.
//!
//! As in the Multiboot loader, every check happens before the first write.

use super::{e820_map, put, BootParams, E820Entry, E820Type, LoadError};
use crate::cpu::state::{attr, reg, CpuState, Seg, Segment, TableReg};
use crate::machine::Machine;
use crate::memory::ram::HIGH_MEM_START;

/// Setup-header field offsets in the image and in the zero page (boot.rst,
/// "THE REAL-MODE KERNEL HEADER").
mod hdr {
    pub const SETUP_SECTS: usize = 0x1f1;
    pub const BOOT_FLAG: usize = 0x1fe;
    pub const JUMP: usize = 0x200;
    pub const HEADER: usize = 0x202;
    pub const VERSION: usize = 0x206;
    pub const TYPE_OF_LOADER: usize = 0x210;
    pub const LOADFLAGS: usize = 0x211;
    pub const KERNEL_VERSION: usize = 0x20e;
    pub const CODE32_START: usize = 0x214;
    pub const RAMDISK_IMAGE: usize = 0x218;
    pub const RAMDISK_SIZE: usize = 0x21c;
    pub const CMD_LINE_PTR: usize = 0x228;
    pub const INITRD_ADDR_MAX: usize = 0x22c;
    pub const XLOADFLAGS: usize = 0x236;
    pub const CMDLINE_SIZE: usize = 0x238;
    pub const INIT_SIZE: usize = 0x260;
}

/// Zero-page offsets outside the setup header (zero-page.rst).
mod zp {
    pub const E820_ENTRIES: usize = 0x1e8;
    pub const E820_TABLE: usize = 0x2d0;
    pub const E820_MAX: usize = 128;
    pub const SIZE: usize = 0x1000;
}

/// "HdrS", the setup header's magic at 0x202.
const HDRS: u32 = 0x5372_6448;
/// `loadflags` bit 0: the protected-mode code is loaded at 0x100000.
const LOADED_HIGH: u8 = 1 << 0;
/// `xloadflags` bit 0 (protocol 2.12+): the kernel has the 64-bit entry
/// point, so it is an x86-64 kernel.
const XLF_KERNEL_64: u16 = 1 << 0;
/// `type_of_loader` for a loader without an assigned ID.
const LOADER_UNDEFINED: u8 = 0xff;

/// Where the protected-mode kernel goes.
pub const KERNEL_ADDR: u32 = 0x0010_0000;
/// The boot GDT: null, null, __BOOT_CS (0x10), __BOOT_DS (0x18).
pub const GDT_ADDR: u32 = 0x6000;
/// The zero page (`struct boot_params`), whose address is in ESI.
pub const ZERO_PAGE: u32 = 0x7000;
/// The command line (where QEMU's 16-bit loader puts it too).
pub const CMDLINE_ADDR: u32 = 0x2_0000;
/// The most bytes of command line bt86 passes, whatever `cmdline_size`
/// says (the area from [`CMDLINE_ADDR`] to 0x30000).
pub const CMDLINE_MAX: u32 = 0xffff;
/// ESP at entry: below the GDT. The protocol sets no stack; the
/// decompressor makes its own (it first calls through BP_scratch).
pub const ESP: u32 = GDT_ADDR;
/// `__BOOT_CS` and `__BOOT_DS` (boot.rst, 32-bit boot protocol).
pub const BOOT_CS: u16 = 0x10;
pub const BOOT_DS: u16 = 0x18;
/// The boot GDT's descriptors: flat 4 GiB execute/read code and
/// read/write data, accessed (the loader has loaded them).
const GDT: [u64; 4] = [0, 0, 0x00cf_9b00_0000_ffff, 0x00cf_9300_0000_ffff];

/// What the loader needs from a bzImage's setup header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupHeader {
    /// Protocol version (0x0202 = 2.02).
    pub version: u16,
    /// Offset of the protected-mode kernel in the image.
    pub pm_offset: usize,
    /// Where the setup header ends (copied up to here into the zero page).
    pub hdr_end: usize,
    pub code32_start: u32,
    pub initrd_addr_max: u32,
    pub cmdline_size: u32,
    /// Memory the kernel needs from its load address (2.10+; 0 before).
    pub init_size: u32,
}

fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}
fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Whether `image` carries a Linux setup header ("HdrS" and the 0xAA55
/// boot flag); such an image gets this loader, and its errors.
pub fn is_bzimage(image: &[u8]) -> bool {
    u32_at(image, hdr::HEADER) == Some(HDRS) && u16_at(image, hdr::BOOT_FLAG) == Some(0xaa55)
}

fn malformed(what: impl Into<String>) -> LoadError {
    LoadError::Malformed(format!("bzImage: {}", what.into()))
}

impl SetupHeader {
    /// Reads and checks the setup header of a bzImage.
    pub fn parse(image: &[u8]) -> Result<SetupHeader, LoadError> {
        if !is_bzimage(image) {
            return Err(malformed("no Linux setup header (\"HdrS\" at 0x202, 0xAA55 at 0x1fe)"));
        }
        let version = u16_at(image, hdr::VERSION).ok_or_else(|| malformed("truncated setup header"))?;
        if version < 0x0202 {
            return Err(LoadError::Unsupported(format!(
                "Linux boot protocol {}.{:02}: the 32-bit entry needs 2.02 or later",
                version >> 8,
                version & 0xff
            )));
        }
        let hdr_end = hdr::HEADER + usize::from(u8_at(image, hdr::JUMP + 1).unwrap_or(0));
        let field = |off: usize| if off + 4 <= hdr_end { u32_at(image, off) } else { Some(0) };
        let loadflags = u8_at(image, hdr::LOADFLAGS).ok_or_else(|| malformed("truncated setup header"))?;
        if loadflags & LOADED_HIGH == 0 {
            return Err(LoadError::Unsupported("zImage (not LOADED_HIGH): only bzImages are supported".into()));
        }
        let sects = match u8_at(image, hdr::SETUP_SECTS) {
            Some(0) => 4,
            Some(n) => usize::from(n),
            None => return Err(malformed("truncated setup header")),
        };
        if hdr_end < hdr::CMD_LINE_PTR + 4 {
            return Err(malformed(format!("setup header ends at {hdr_end:#x}, before protocol 2.02's cmd_line_ptr")));
        }
        let pm_offset = (sects + 1) * 512;
        if hdr_end > pm_offset || image.len() < hdr_end {
            return Err(malformed(format!("setup header ends at {hdr_end:#x}, past the setup code or the file")));
        }
        if image.len() <= pm_offset {
            return Err(malformed(format!(
                "truncated: {} bytes, the protected-mode kernel starts at {pm_offset:#x}",
                image.len()
            )));
        }
        let trunc = || malformed("truncated setup header");
        let initrd_addr_max =
            if version >= 0x0203 { field(hdr::INITRD_ADDR_MAX).ok_or_else(trunc)? } else { 0x37ff_ffff };
        let cmdline_size = if version >= 0x0206 { field(hdr::CMDLINE_SIZE).ok_or_else(trunc)? } else { 255 };
        let init_size = if version >= 0x020a { field(hdr::INIT_SIZE).ok_or_else(trunc)? } else { 0 };
        let code32_start = field(hdr::CODE32_START).ok_or_else(trunc)?;
        Ok(SetupHeader { version, pm_offset, hdr_end, code32_start, initrd_addr_max, cmdline_size, init_size })
    }
}

/// What bt86 adds when a bzImage stops (halts for good, triple-faults or
/// needs something unimplemented) before writing a byte to the serial
/// port: the likely cause, since such a kernel says nothing itself.
///
/// Entering at `code32_start` skips the setup code's CPU check
/// (arch/x86/boot/cpucheck.c), which would have printed what is missing,
/// so a kernel built for more than bt86's CPU finds out later and in
/// silence: an x86-64 kernel's 32-bit entry (compressed/head_64.S) looks
/// for long mode and halts with interrupts off; a PAE kernel's first write
/// of CR4.PAE faults before it has an IDT, a triple fault.
pub fn silent_stop_cause(image: &[u8]) -> Option<String> {
    let h = SetupHeader::parse(image).ok()?;
    let version = kernel_version(image).map(|v| format!(" ({v})")).unwrap_or_default();
    let xloadflags = if h.version >= 0x020c { u16_at(image, hdr::XLOADFLAGS).unwrap_or(0) } else { 0 };
    if xloadflags & XLF_KERNEL_64 != 0 {
        return Some(format!(
            "the kernel{version} is an x86-64 kernel (setup header xloadflags: XLF_KERNEL_64); its 32-bit entry \
             looks for long mode, which bt86's 32-bit i686 CPU lacks, and halts without a word: boot an i386 kernel"
        ));
    }
    Some(format!(
        "the kernel{version} stopped before it wrote anything to the serial port. A kernel built for a CPU with \
         more than bt86's i686 (CPUID: {}; no pae, mmx, fxsr or sse) stops this way, since the 32-bit entry \
         skips the setup code's CPU check; add earlyprintk=serial,ttyS0 to --append to see how far it got",
        cpu_features()
    ))
}

/// The CPUID leaf 1 EDX features bt86 reports, by their /proc/cpuinfo
/// names.
fn cpu_features() -> String {
    const NAMES: [&str; 16] =
        ["fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "", "sep", "mtrr", "pge", "mca", "cmov"];
    let edx = crate::system::control::CPUID_1_EDX;
    let known = NAMES.iter().enumerate().filter(|(bit, n)| !n.is_empty() && edx & (1 << bit) != 0);
    let names: Vec<&str> = known.map(|(_, n)| *n).collect();
    debug_assert_eq!(edx >> NAMES.len(), 0, "a feature past the table");
    names.join(" ")
}

/// The setup header's kernel version string (`kernel_version` points to it,
/// 0x200 bytes before its offset), as far as its first space.
fn kernel_version(image: &[u8]) -> Option<String> {
    let ptr = usize::from(u16_at(image, hdr::KERNEL_VERSION)?);
    if ptr == 0 {
        return None;
    }
    let text = image.get(ptr + 0x200..)?;
    let end = text.iter().take(128).position(|&b| b == 0 || b == b' ')?;
    let v = std::str::from_utf8(&text[..end]).ok()?;
    (!v.is_empty() && v.chars().all(|c| c.is_ascii_graphic())).then(|| v.to_string())
}

/// Where everything goes, decided before anything is written.
#[derive(Debug)]
struct Plan {
    initrd: Option<(u32, u32)>,
    cmdline: Vec<u8>,
    map: Vec<E820Entry>,
}

/// The e820 map `qemu-system-i386 -M isapc` (QEMU 7.2, SeaBIOS) gives a
/// Linux kernel: the default machine's ([`e820_map`]) without the range
/// SeaBIOS reserves at the top of low RAM for ACPI tables, which isapc
/// has none of. At `-m 128` QEMU's kernel prints 0x100000-0x7ffffff
/// usable, then only 0xfffc0000-0xffffffff reserved above 1 MiB.
pub fn isapc_e820_map(ram_size: u64) -> Option<Vec<E820Entry>> {
    let mut map = e820_map(ram_size)?;
    let high = u64::from(HIGH_MEM_START);
    let i = map.iter().position(|e| e.kind == E820Type::Ram && e.base == high)?;
    if let Some(&next) = map.get(i + 1) {
        if next.kind == E820Type::Reserved && next.base == map[i].base + map[i].len && next.base + next.len <= 1 << 32 {
            map[i].len += next.len;
            map.remove(i + 1);
        }
    }
    Some(map)
}

fn plan(image: &[u8], h: &SetupHeader, ram_size: u32, p: &BootParams) -> Result<Plan, LoadError> {
    let map = isapc_e820_map(u64::from(ram_size)).ok_or(LoadError::RamTooSmall(ram_size))?;
    let pm_len = (image.len() - h.pm_offset) as u64;
    let kernel_end = u64::from(KERNEL_ADDR) + pm_len.max(u64::from(h.init_size));
    // The end of the RAM entry at 1 MiB: QEMU keeps the initrd below it.
    let ram_top = map
        .iter()
        .find(|e| e.kind == E820Type::Ram && e.base == u64::from(HIGH_MEM_START))
        .map_or(0, |e| e.base + e.len);
    if kernel_end > ram_top {
        return Err(LoadError::TooBig(format!(
            "the kernel needs {KERNEL_ADDR:#x}..{kernel_end:#x}, usable RAM ends at {ram_top:#x}"
        )));
    }
    let initrd = match p.modules.as_slice() {
        [] => None,
        [(_, data)] => Some(place_initrd(data.len(), h, ram_top, kernel_end)?),
        _ => return Err(LoadError::Unsupported("a bzImage takes one --initrd file, not a module list".into())),
    };
    let mut cmdline = p.append.clone().unwrap_or_default().into_bytes();
    if cmdline.len() as u64 > u64::from(h.cmdline_size.min(CMDLINE_MAX)) {
        return Err(LoadError::TooBig(format!(
            "--append is {} bytes, the kernel takes at most {} (cmdline_size)",
            cmdline.len(),
            h.cmdline_size.min(CMDLINE_MAX)
        )));
    }
    cmdline.push(0);
    Ok(Plan { initrd, cmdline, map })
}

/// The initrd's (address, size): page-aligned, as high as RAM and
/// `initrd_addr_max` allow, as QEMU's x86_load_linux computes it
/// (`(initrd_max - size) & ~4095`, initrd_max the last usable byte), and
/// above the kernel.
fn place_initrd(len: usize, h: &SetupHeader, ram_top: u64, kernel_end: u64) -> Result<(u32, u32), LoadError> {
    let size = u32::try_from(len).map_err(|_| LoadError::TooBig("initrd larger than 4 GiB".into()))?;
    let max = ram_top.saturating_sub(1).min(u64::from(h.initrd_addr_max));
    match max.checked_sub(u64::from(size)).map(|a| a & !0xfff) {
        Some(a) if a >= kernel_end => Ok((a as u32, size)),
        _ => Err(LoadError::TooBig(format!(
            "initrd of {size:#x} bytes does not fit between the kernel's end {kernel_end:#x} and {max:#x}"
        ))),
    }
}

/// The zero page: the image's setup header, the loader's fields, e820.
fn zero_page(image: &[u8], h: &SetupHeader, plan: &Plan) -> Vec<u8> {
    let mut z = vec![0u8; zp::SIZE];
    z[hdr::SETUP_SECTS..h.hdr_end].copy_from_slice(&image[hdr::SETUP_SECTS..h.hdr_end]);
    z[hdr::TYPE_OF_LOADER] = LOADER_UNDEFINED;
    let mut set = |off: usize, v: u32| z[off..off + 4].copy_from_slice(&v.to_le_bytes());
    set(hdr::CMD_LINE_PTR, CMDLINE_ADDR);
    let (rd_addr, rd_size) = plan.initrd.unwrap_or((0, 0));
    set(hdr::RAMDISK_IMAGE, rd_addr);
    set(hdr::RAMDISK_SIZE, rd_size);
    let entries = plan.map.iter().take(zp::E820_MAX);
    z[zp::E820_ENTRIES] = entries.len() as u8;
    for (i, e) in entries.enumerate() {
        let at = zp::E820_TABLE + 20 * i;
        z[at..at + 8].copy_from_slice(&e.base.to_le_bytes());
        z[at + 8..at + 16].copy_from_slice(&e.len.to_le_bytes());
        z[at + 16..at + 20].copy_from_slice(&(e.kind as u32).to_le_bytes());
    }
    z
}

/// Loads a bzImage (with `params.modules` holding at most the initrd)
/// and sets the CPU up at its 32-bit entry point.
pub fn load_linux(m: &mut Machine, image: &[u8], params: &BootParams) -> Result<(), LoadError> {
    let h = SetupHeader::parse(image)?;
    let plan = plan(image, &h, m.ram.size(), params)?;
    let zero = zero_page(image, &h, &plan);
    let gdt: Vec<u8> = GDT.iter().flat_map(|d| d.to_le_bytes()).collect();
    put(&mut m.ram, u64::from(KERNEL_ADDR), &image[h.pm_offset..])?;
    if let (Some((addr, _)), [(_, data)]) = (plan.initrd, params.modules.as_slice()) {
        put(&mut m.ram, u64::from(addr), data)?;
    }
    put(&mut m.ram, u64::from(CMDLINE_ADDR), &plan.cmdline)?;
    put(&mut m.ram, u64::from(GDT_ADDR), &gdt)?;
    put(&mut m.ram, u64::from(ZERO_PAGE), &zero)?;
    set_entry_state(&mut m.cpu, h.code32_start);
    Ok(())
}

/// The CPU state boot.rst requires at the 32-bit entry point.
fn set_entry_state(cpu: &mut CpuState, eip: u32) {
    let code = Segment::flat(BOOT_CS, attr::CODE | attr::RW | attr::ACCESSED, 0);
    let data = Segment::flat(BOOT_DS, attr::RW | attr::ACCESSED, 0);
    for s in Seg::ALL {
        cpu.seg[s as usize] = if s == Seg::Cs { code } else { data };
    }
    cpu.gpr = [0; 8];
    cpu.gpr[reg::ESI] = ZERO_PAGE;
    cpu.gpr[reg::ESP] = ESP;
    cpu.eip = eip;
    cpu.eflags = 0x2;
    cpu.cr0 = 0x11;
    (cpu.cr2, cpu.cr3, cpu.cr4) = (0, 0, 0);
    cpu.gdtr = TableReg { base: GDT_ADDR, limit: (GDT.len() * 8 - 1) as u16 };
    cpu.idtr = TableReg { base: 0, limit: 0x3ff };
    cpu.cpl = 0;
    cpu.int_shadow = 0;
    cpu.halted = 0;
}
