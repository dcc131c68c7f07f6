//! The Multiboot v1 header (Multiboot spec §3.1) and the a.out kludge.
//!
//! ```text
//!   image ──find_header──► Header ──flags bit 16?──► yes: aout_kludge()  ─┐
//!                                                    no:  elf::parse()   ─┴► Kernel
//! ```
//!
//! Search rule (spec §3.1.1, and what QEMU 7.2 does): the header is
//! 32-bit aligned and lies wholly in the first 8192 bytes; QEMU scans
//! offsets 0, 4, ... below 8192 - 48 and takes the first one where the
//! magic matches *and* magic + flags + checksum == 0 (mod 2^32). A magic
//! with a bad checksum is skipped, not an error.
//!
//! Flags (spec §3.1.2): bit 0 (page-align modules) and bit 1 (memory
//! information) are what QEMU always does anyway; bit 2 (video mode) makes
//! QEMU print "multiboot knows VBE. we don't" and boot on without video
//! information (probe run `vbe-128`); other required bits (3..15) are
//! ignored by QEMU, so here too. Bit 16 selects the a.out kludge.

use super::LoadError;

/// The header magic (spec §3.1.2).
pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// How far into the image the header may start (QEMU: `8192 - 48`).
pub const SEARCH_END: usize = 8192 - 48;
/// Flags bit 0: align modules on 4 KiB pages.
pub const FLAG_PAGE_ALIGN: u32 = 1 << 0;
/// Flags bit 1: pass memory information.
pub const FLAG_MEMORY_INFO: u32 = 1 << 1;
/// Flags bit 2: pass video mode information (not supported, as in QEMU).
pub const FLAG_VIDEO_MODE: u32 = 1 << 2;
/// Flags bit 16: the address fields (a.out kludge) are valid.
pub const FLAG_AOUT_KLUDGE: u32 = 1 << 16;

/// A Multiboot header found in an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Byte offset of the header in the image.
    pub offset: usize,
    pub flags: u32,
}

/// A piece of the kernel to copy into guest RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub addr: u32,
    pub data: &'a [u8],
}

/// A parsed kernel, ready to place: `[load_addr, load_addr + size)` is
/// zeroed, then every chunk copied in; execution starts at `entry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel<'a> {
    pub load_addr: u32,
    /// From `load_addr` to the end of the BSS (QEMU's `mb_kernel_size`).
    pub size: u32,
    pub entry: u32,
    pub chunks: Vec<Chunk<'a>>,
}

/// Little-endian u32 at `off`, if the image holds it.
pub fn le32(image: &[u8], off: usize) -> Option<u32> {
    let b = image.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Finds the first valid Multiboot header, as QEMU's scan does.
pub fn find_header(image: &[u8]) -> Result<Header, LoadError> {
    for offset in (0..SEARCH_END).step_by(4) {
        let Some(magic) = le32(image, offset) else { break };
        if magic != HEADER_MAGIC {
            continue;
        }
        let (Some(flags), Some(sum)) = (le32(image, offset + 4), le32(image, offset + 8)) else { break };
        if magic.wrapping_add(flags).wrapping_add(sum) == 0 {
            return Ok(Header { offset, flags });
        }
    }
    Err(LoadError::NoMultibootHeader)
}

/// The kernel described by the a.out-kludge address fields (spec
/// §3.1.3), with QEMU's validity rules: the header must lie inside the
/// loaded text (`load_addr <= header_addr`, and no further from
/// `load_addr` than the header is from the file start); `load_end_addr`
/// 0 means "to the end of the file"; `bss_end_addr` 0 means "no BSS".
pub fn aout_kludge<'a>(image: &'a [u8], hdr: &Header) -> Result<Kernel<'a>, LoadError> {
    let field = |i: usize| {
        le32(image, hdr.offset + 12 + 4 * i).ok_or_else(|| LoadError::Malformed("a.out kludge header truncated".into()))
    };
    let (header_addr, load_addr, load_end, bss_end, entry) = (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
    let bad = |what: &str| Err(LoadError::Malformed(format!("a.out kludge: {what}")));
    if header_addr < load_addr {
        return bad(&format!("header_addr {header_addr:#x} below load_addr {load_addr:#x}"));
    }
    let text_offset = match (hdr.offset as u64).checked_sub(u64::from(header_addr - load_addr)) {
        Some(off) => off as usize,
        None => return bad("header_addr - load_addr exceeds the header's offset in the file"),
    };
    let load_size = if load_end != 0 {
        if load_end < load_addr {
            return bad(&format!("load_end_addr {load_end:#x} below load_addr {load_addr:#x}"));
        }
        load_end - load_addr
    } else {
        match image.len().checked_sub(text_offset).map(u32::try_from) {
            Some(Ok(n)) => n,
            _ => return bad("image ends before the text the header implies"),
        }
    };
    let Some(text_end) = load_addr.checked_add(load_size) else {
        return bad("kernel does not fit in the 4 GiB address space");
    };
    let size = if bss_end != 0 {
        if bss_end < text_end {
            return bad(&format!("bss_end_addr {bss_end:#x} below load_end {text_end:#x}"));
        }
        bss_end - load_addr
    } else {
        load_size
    };
    let data = text_offset.checked_add(load_size as usize).and_then(|end| image.get(text_offset..end));
    let Some(data) = data else {
        return Err(LoadError::Malformed(format!(
            "a.out kludge: image truncated: {load_size:#x} bytes from file offset {text_offset:#x}, file is {:#x}",
            image.len()
        )));
    };
    Ok(Kernel { load_addr, size, entry, chunks: vec![Chunk { addr: load_addr, data }] })
}

/// Parses the kernel: a.out kludge if header flag 16 says so, else ELF32.
pub fn parse_kernel<'a>(image: &'a [u8], hdr: &Header) -> Result<Kernel<'a>, LoadError> {
    if hdr.flags & FLAG_AOUT_KLUDGE != 0 {
        aout_kludge(image, hdr)
    } else {
        super::elf::parse(image)
    }
}
