//! ELF32 kernels (System V ABI, i386 supplement), loaded as QEMU 7.2's
//! `load_elf` does for a Multiboot kernel without the a.out kludge:
//!
//! - ELFCLASS32, little-endian, EM_386; an x86-64 image is refused.
//! - Every PT_LOAD with a non-zero `p_memsz` is placed at its **physical**
//!   address `p_paddr`; `p_filesz` bytes come from the file and the rest up
//!   to `p_memsz` is zero (BSS). Segments may not overlap (QEMU's ROM
//!   overlap check refuses them).
//! - The kernel spans `[min p_paddr, max p_paddr + p_memsz)`; QEMU copies
//!   that whole span, so gaps between segments read as zero.
//! - The entry point is `e_entry`, translated to physical when it lies in
//!   `[p_vaddr, p_vaddr + p_filesz)` of an executable segment whose
//!   `p_vaddr != p_paddr` (probe `hh-128`: a kernel linked at 0xC0100000,
//!   loaded at 1 MiB, is entered at its physical address).

use super::multiboot::{le32, Chunk, Kernel};
use super::LoadError;

const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const ELFCLASS32: u8 = 1;
const ELFDATA2LSB: u8 = 1;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
/// Size of the ELF32 file header.
pub const EHDR_SIZE: usize = 52;
/// Size of one ELF32 program header.
pub const PHDR_SIZE: usize = 32;

/// One ELF32 program header (the fields the loader needs).
#[derive(Clone, Copy, Debug)]
struct Phdr {
    p_type: u32,
    offset: u32,
    vaddr: u32,
    paddr: u32,
    filesz: u32,
    memsz: u32,
    flags: u32,
}

fn malformed(msg: impl Into<String>) -> LoadError {
    LoadError::Malformed(format!("ELF: {}", msg.into()))
}

fn le16(image: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(image.get(off..off + 2)?.try_into().ok()?))
}

fn check_ident(image: &[u8]) -> Result<(), LoadError> {
    if image.len() < EHDR_SIZE || image[..4] != ELF_MAGIC {
        return Err(malformed("no ELF header (and no a.out kludge flag in the Multiboot header)"));
    }
    let machine = le16(image, 18).unwrap_or(0);
    if machine == EM_X86_64 || image[4] != ELFCLASS32 {
        return Err(LoadError::Unsupported("x86-64 image: give a 32-bit one".into()));
    }
    if image[5] != ELFDATA2LSB || machine != EM_386 {
        return Err(malformed(format!("not a little-endian i386 image (e_machine {machine})")));
    }
    Ok(())
}

fn phdrs(image: &[u8]) -> Result<Vec<Phdr>, LoadError> {
    let field = |off: usize| le32(image, off).ok_or_else(|| malformed("program header table truncated"));
    let phoff = field(28)? as usize;
    let phentsize = le16(image, 42).unwrap_or(0) as usize;
    let phnum = le16(image, 44).unwrap_or(0) as usize;
    if phnum > 0 && phentsize < PHDR_SIZE {
        return Err(malformed(format!("e_phentsize {phentsize} too small")));
    }
    (0..phnum)
        .map(|i| {
            let base = phoff.checked_add(i * phentsize).ok_or_else(|| malformed("e_phoff overflows"))?;
            let f = |k: usize| field(base.saturating_add(4 * k));
            Ok(Phdr {
                p_type: f(0)?,
                offset: f(1)?,
                vaddr: f(2)?,
                paddr: f(3)?,
                filesz: f(4)?,
                memsz: f(5)?,
                flags: f(6)?,
            })
        })
        .collect()
}

/// Parses an ELF32 Multiboot kernel into the chunks to place.
pub fn parse(image: &[u8]) -> Result<Kernel<'_>, LoadError> {
    check_ident(image)?;
    let e_entry = le32(image, 24).unwrap_or(0);
    let mut entry = e_entry;
    let mut chunks = Vec::new();
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for (i, ph) in phdrs(image)?.into_iter().enumerate() {
        if ph.p_type != PT_LOAD || ph.memsz == 0 {
            continue;
        }
        if ph.filesz > ph.memsz {
            return Err(malformed(format!("segment {i}: p_filesz {:#x} > p_memsz {:#x}", ph.filesz, ph.memsz)));
        }
        let start = u64::from(ph.paddr);
        let end = start + u64::from(ph.memsz);
        if end > 1 << 32 {
            return Err(LoadError::TooBig(format!("ELF segment {i} ends at {end:#x}, beyond 4 GiB")));
        }
        if let Some(&(s, e)) = spans.iter().find(|&&(s, e)| start < e && s < end) {
            return Err(LoadError::Overlap(format!(
                "ELF segment {i} at {start:#x}..{end:#x} overlaps another at {s:#x}..{e:#x}"
            )));
        }
        spans.push((start, end));
        let off = ph.offset as usize;
        let data = off
            .checked_add(ph.filesz as usize)
            .and_then(|e| image.get(off..e))
            .ok_or_else(|| malformed(format!("segment {i}: file data beyond the end of the image")))?;
        chunks.push(Chunk { addr: ph.paddr, data });
        let in_text = e_entry >= ph.vaddr && u64::from(e_entry) < u64::from(ph.vaddr) + u64::from(ph.filesz);
        if ph.vaddr != ph.paddr && in_text && ph.flags & PF_X != 0 {
            entry = e_entry.wrapping_sub(ph.vaddr).wrapping_add(ph.paddr);
        }
    }
    let low = spans.iter().map(|s| s.0).min().ok_or_else(|| malformed("no loadable segment"))?;
    let high = spans.iter().map(|s| s.1).max().unwrap_or(low);
    let size = u32::try_from(high - low)
        .map_err(|_| LoadError::TooBig(format!("ELF kernel spans {low:#x}..{high:#x}, 4 GiB or more")))?;
    Ok(Kernel { load_addr: low as u32, size, entry, chunks })
}
