//! Broken and hostile images: each must give a `LoadError` naming the
//! cause, never panic, and leave guest RAM untouched.

use super::build::{elf, header, load, probe_elf, text, Seg};
use super::{machine, MIB};
use crate::loader::{load_flat, load_multiboot, BootParams, LoadError};
use crate::memory::PhysAddr;

/// Loads `img` into a fresh 4 MiB machine, expects an error, and checks
/// that no byte of RAM was written.
fn reject(img: &[u8], p: &BootParams) -> LoadError {
    let mut m = machine(4 * MIB);
    let err =
        load_multiboot(&mut m, img, p).err().unwrap_or_else(|| panic!("accepted: {:x?}", &img[..img.len().min(40)]));
    assert!(m.ram.bytes().iter().all(|&b| b == 0), "RAM written before failing: {err}");
    err
}

fn no_params() -> BootParams {
    BootParams::default()
}

fn kludge(fields: [u32; 5], len: usize) -> Vec<u8> {
    let mut img = header(0x1_0000, Some(fields));
    img.resize(len, 0x90);
    img
}

#[test]
fn loader_rejects_missing_or_bad_header() {
    assert!(matches!(reject(&[], &no_params()), LoadError::NoMultibootHeader));
    let mut bad_sum = header(3, None);
    bad_sum[8] ^= 1;
    assert!(matches!(reject(&bad_sum, &no_params()), LoadError::NoMultibootHeader));
    let mut unaligned = vec![0; 2];
    unaligned.extend(header(3, None));
    assert!(matches!(reject(&unaligned, &no_params()), LoadError::NoMultibootHeader));
    // QEMU scans offsets below 8192 - 48 only.
    let mut late = vec![0; 8144];
    late.extend(header(3, None));
    assert!(matches!(reject(&late, &no_params()), LoadError::NoMultibootHeader));
    let truncated = &header(3, None)[..8];
    assert!(matches!(reject(truncated, &no_params()), LoadError::NoMultibootHeader));
}

#[test]
fn loader_rejects_bad_elf() {
    let flat = text(64, 0); // a header but no ELF and no kludge flag
    assert!(matches!(reject(&flat, &no_params()), LoadError::Malformed(_)));
    let good = probe_elf();
    let mut far_phdrs = good.clone();
    far_phdrs[28..32].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert!(matches!(reject(&far_phdrs, &no_params()), LoadError::Malformed(_)), "phdrs beyond the file");
    assert!(matches!(reject(&good[..0x200], &no_params()), LoadError::Malformed(_)), "segment data cut off");
    let mut x64 = good.clone();
    x64[18] = 62;
    assert!(matches!(reject(&x64, &no_params()), LoadError::Unsupported(_)));
    let mut arm = good.clone();
    arm[18] = 40;
    assert!(matches!(reject(&arm, &no_params()), LoadError::Malformed(_)));
    let mut big_endian = good;
    big_endian[5] = 2;
    assert!(matches!(reject(&big_endian, &no_params()), LoadError::Malformed(_)));
}

#[test]
fn loader_rejects_bad_segments() {
    let t = || text(0x40, 0);
    let note = Seg { p_type: 4, ..load(0x10_0000, t(), 0x40) };
    assert!(matches!(reject(&elf(0, &[note]), &no_params()), LoadError::Malformed(_)), "no PT_LOAD");
    let fat = load(0x10_0000, t(), 0x10);
    assert!(matches!(reject(&elf(0, &[fat]), &no_params()), LoadError::Malformed(_)), "filesz > memsz");
    let beyond = load(0x3f_ff00, t(), 0x1000);
    assert!(matches!(reject(&elf(0, &[beyond]), &no_params()), LoadError::TooBig(_)));
    let wraps = load(0xffff_f000, t(), 0x2000);
    assert!(matches!(reject(&elf(0, &[wraps]), &no_params()), LoadError::TooBig(_)));
    let overlapping = [load(0x10_0000, t(), 0x100), load(0x10_0080, vec![1; 8], 8)];
    assert!(matches!(reject(&elf(0, &overlapping), &no_params()), LoadError::Overlap(_)));
    let on_info = load(0x9400, t(), 0x40);
    assert!(matches!(reject(&elf(0, &[on_info]), &no_params()), LoadError::Overlap(_)));
    let in_hole = load(0xb_8000, t(), 0x40);
    assert!(matches!(reject(&elf(0, &[in_hole]), &no_params()), LoadError::Overlap(_)));
    let mut huge_phnum = elf(0, &[load(0x10_0000, t(), 0x40)]);
    huge_phnum[44..46].copy_from_slice(&0xffffu16.to_le_bytes());
    assert!(matches!(reject(&huge_phnum, &no_params()), LoadError::Malformed(_)));
}

#[test]
fn loader_rejects_bad_aout_kludge() {
    let cases: [([u32; 5], usize); 6] = [
        ([0x10_0000, 0x10_0010, 0, 0, 0], 0x100),        // header_addr below load_addr
        ([0x10_0100, 0x10_0000, 0, 0, 0], 0x100),        // header further in than the file allows
        ([0x10_0000, 0x10_0000, 0xf_0000, 0, 0], 0x100), // load_end below load_addr
        ([0x10_0000, 0x10_0000, 0x10_0100, 0x10_0080, 0], 0x100), // bss_end below load_end
        ([0x10_0000, 0x10_0000, 0x10_1000, 0, 0], 0x100), // file shorter than load_end implies
        ([0x10_0000, 0x10_0000, 0, 0, 0], 28),           // kludge fields cut off
    ];
    for (fields, len) in cases {
        let img = kludge(fields, len);
        assert!(matches!(reject(&img, &no_params()), LoadError::Malformed(_)), "{fields:x?}");
    }
    // Too large for RAM, and a span that would wrap the 4 GiB space.
    let big = kludge([0x10_0000, 0x10_0000, 0, 0xf000_0000, 0], 0x100);
    assert!(matches!(reject(&big, &no_params()), LoadError::TooBig(_)));
    let wrap = kludge([0xffff_ff00, 0xffff_ff00, 0, 0, 0], 0x200);
    assert!(matches!(reject(&wrap, &no_params()), LoadError::Malformed(_)));
}

#[test]
fn loader_rejects_modules_beyond_ram_and_tiny_ram() {
    let p = BootParams { modules: vec![("big".into(), vec![0; 4 * MIB as usize])], ..no_params() };
    assert!(matches!(reject(&probe_elf(), &p), LoadError::TooBig(_)));
    let mut m = machine(MIB);
    assert!(matches!(load_multiboot(&mut m, &probe_elf(), &no_params()), Err(LoadError::RamTooSmall(_))));
}

#[test]
fn loader_rejects_flat_beyond_ram_or_over_gdt() {
    let mut m = machine(MIB);
    assert!(matches!(load_flat(&mut m, &[0; 16], PhysAddr(MIB - 8)), Err(LoadError::TooBig(_))));
    assert!(matches!(load_flat(&mut m, &[0; 16], PhysAddr(0xffff_fff8)), Err(LoadError::TooBig(_))));
    assert!(matches!(load_flat(&mut m, &[0; 0x100], PhysAddr(0xcb200)), Err(LoadError::Overlap(_))));
    assert!(m.ram.bytes().iter().all(|&b| b == 0));
}

#[test]
fn loader_survives_mutated_images() {
    // Deterministic byte flips over a valid ELF and a valid kludge image:
    // any outcome is fine except a panic or a write outside RAM.
    let mut m = machine(2 * MIB);
    let seeds = [probe_elf(), kludge([0x10_0000, 0x10_0000, 0x10_0100, 0x10_0200, 0x10_0020], 0x180)];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for base in seeds {
        for _ in 0..3000 {
            let mut img = base.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % img.len().min(96);
                img[i] = (x >> 32) as u8;
            }
            let _ = load_multiboot(&mut m, &img, &no_params());
        }
    }
}
