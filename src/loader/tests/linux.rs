//! The Linux boot protocol's 32-bit entry on synthetic bzImages: what the
//! zero page, the CPU and RAM hold at entry (boot.rst, "32-bit BOOT
//! PROTOCOL"), and broken images and parameters, each refused with a
//! `LoadError` before anything is written.

use super::{cstr, dwords, machine, MIB};
use crate::cpu::state::{reg, Seg};
use crate::loader::linux::{
    isapc_e820_map, SetupHeader, BOOT_CS, BOOT_DS, CMDLINE_ADDR, GDT_ADDR, KERNEL_ADDR, ZERO_PAGE,
};
use crate::loader::{is_bzimage, load_linux, BootParams, LoadError};

/// A bzImage with protocol `version`, `sects` setup sectors and `pm` as
/// its protected-mode kernel; the header runs to 0x26c (the jump's
/// second byte is 0x6a, as in a 2.15 kernel).
fn bzimage(version: u16, sects: u8, pm: &[u8]) -> Vec<u8> {
    let setup = (usize::from(if sects == 0 { 4 } else { sects }) + 1) * 512;
    let mut img = vec![0u8; setup];
    img[0x1f1] = sects;
    img[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    img[0x200..0x202].copy_from_slice(&[0xeb, 0x6a]);
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x206..0x208].copy_from_slice(&version.to_le_bytes());
    img[0x211] = 0x01; // LOADED_HIGH
    let mut set = |off: usize, v: u32| img[off..off + 4].copy_from_slice(&v.to_le_bytes());
    set(0x214, KERNEL_ADDR); // code32_start
    set(0x22c, 0x7fff_ffff); // initrd_addr_max
    set(0x238, 2047); // cmdline_size
    set(0x260, 0x20_0000); // init_size: 2 MiB
    img.extend_from_slice(pm);
    img
}

fn params(append: &str, initrd: Option<Vec<u8>>) -> BootParams {
    BootParams {
        kernel_path: "bzImage".into(),
        append: Some(append.into()),
        modules: initrd.into_iter().map(|d| ("initrd".to_string(), d)).collect(),
    }
}

/// Loads `img` into a fresh 32 MiB machine, expects an error, and checks
/// that no byte of RAM was written.
fn reject(img: &[u8], p: &BootParams) -> LoadError {
    let mut m = machine(32 * MIB);
    let err = load_linux(&mut m, img, p).err().unwrap_or_else(|| panic!("accepted a bad bzImage"));
    assert!(m.ram.bytes().iter().all(|&b| b == 0), "RAM written before failing: {err}");
    err
}

#[test]
fn bzimage_is_recognised_by_its_setup_header() {
    let img = bzimage(0x020f, 1, &[0xf4]);
    assert!(is_bzimage(&img));
    let h = SetupHeader::parse(&img).unwrap();
    assert_eq!((h.version, h.pm_offset, h.hdr_end, h.code32_start), (0x020f, 0x400, 0x26c, KERNEL_ADDR));
    // setup_sects 0 means 4 (boot.rst).
    assert_eq!(SetupHeader::parse(&bzimage(0x020f, 0, &[0xf4])).unwrap().pm_offset, 0xa00);
    // A Multiboot kernel or an ELF has no setup header.
    assert!(!is_bzimage(b"\x7fELF"));
    assert!(!is_bzimage(&[0u8; 4096]));
}

#[test]
fn entry_state_zero_page_and_ram() {
    let mut m = machine(32 * MIB);
    let pm: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let img = bzimage(0x020f, 1, &pm);
    let initrd: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
    load_linux(&mut m, &img, &params("console=ttyS0 quiet", Some(initrd.clone()))).unwrap();

    // The CPU: boot.rst's 32-bit entry.
    let c = &m.cpu;
    assert_eq!((c.eip, c.gpr[reg::ESI]), (KERNEL_ADDR, ZERO_PAGE));
    assert_eq!((c.gpr[reg::EBP], c.gpr[reg::EDI], c.gpr[reg::EBX]), (0, 0, 0));
    assert_eq!(c.seg[Seg::Cs as usize].selector, BOOT_CS);
    for s in [Seg::Ds, Seg::Es, Seg::Ss] {
        let d = c.seg[s as usize];
        assert_eq!((d.selector, d.base, d.limit), (BOOT_DS, 0, 0xffff_ffff), "{s:?}");
    }
    assert_eq!(c.eflags & 0x200, 0, "IF must be clear");
    assert_eq!((c.cr0 & 0x8000_0001, c.gdtr.base), (1, GDT_ADDR));
    // The GDT the selectors name: flat code (execute/read) and data.
    assert_eq!(dwords(&m, GDT_ADDR + 0x10, 4), [0xffff, 0x00cf_9b00, 0xffff, 0x00cf_9300]);

    // RAM: the protected-mode kernel at 1 MiB, the command line.
    assert_eq!(&m.ram.bytes()[KERNEL_ADDR as usize..][..pm.len()], &pm[..]);
    assert_eq!(cstr(&m, CMDLINE_ADDR), "console=ttyS0 quiet");

    // The zero page: the header copied, the loader's fields.
    let zp = |off: u32| m.ram.read_u32(crate::memory::PhysAddr(ZERO_PAGE + off));
    assert_eq!(&m.ram.bytes()[ZERO_PAGE as usize + 0x202..][..4], b"HdrS");
    assert_eq!(m.ram.bytes()[ZERO_PAGE as usize + 0x210], 0xff, "type_of_loader");
    assert_eq!(zp(0x228), CMDLINE_ADDR);
    let (rd, rd_size) = (zp(0x218), zp(0x21c));
    assert_eq!(rd_size, initrd.len() as u32);
    assert_eq!(rd % 4096, 0);
    assert_eq!(&m.ram.bytes()[rd as usize..][..initrd.len()], &initrd[..]);

    // The initrd is as high as the RAM entry at 1 MiB allows.
    let map = isapc_e820_map(32 << 20).unwrap();
    let top = map.iter().find(|e| e.base == 0x10_0000).map(|e| e.base + e.len).unwrap();
    assert!(u64::from(rd + rd_size) <= top && u64::from(rd + rd_size) + 4096 > top, "{rd:#x} {top:#x}");

    // e820: the map QEMU gives, entry by entry.
    assert_eq!(m.ram.bytes()[ZERO_PAGE as usize + 0x1e8] as usize, map.len());
    for (i, e) in map.iter().enumerate() {
        let at = 0x2d0 + 20 * i as u32;
        let base = u64::from(zp(at)) | u64::from(zp(at + 4)) << 32;
        let len = u64::from(zp(at + 8)) | u64::from(zp(at + 12)) << 32;
        assert_eq!((base, len, zp(at + 16)), (e.base, e.len, e.kind as u32), "entry {i}");
    }
}

#[test]
fn e820_is_what_qemu_isapc_gives_linux() {
    // QEMU 7.2 -M isapc -m 128, as the Debian kernel prints it.
    let want = [
        (0, 0x9fc00, 1),
        (0x9fc00, 0x400, 2),
        (0xf0000, 0x10000, 2),
        (0x10_0000, 0x7f0_0000, 1),
        (0xfffc_0000, 0x4_0000, 2),
    ];
    let got: Vec<(u64, u64, u32)> =
        isapc_e820_map(128 << 20).unwrap().iter().map(|e| (e.base, e.len, e.kind as u32)).collect();
    assert_eq!(got, want);
}

#[test]
fn initrd_stays_below_initrd_addr_max() {
    let mut m = machine(64 * MIB);
    let mut img = bzimage(0x020f, 1, &[0xf4]);
    img[0x22c..0x230].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    load_linux(&mut m, &img, &params("", Some(vec![1; 5000]))).unwrap();
    let rd = m.ram.read_u32(crate::memory::PhysAddr(ZERO_PAGE + 0x218));
    assert_eq!(rd, (0x100_0000 - 5000) & !0xfff);
    // Before 2.03 there is no initrd_addr_max: 0x37ffffff applies.
    let mut m = machine(32 * MIB);
    load_linux(&mut m, &bzimage(0x0202, 1, &[0xf4]), &params("", Some(vec![1; 5000]))).unwrap();
}

#[test]
fn malformed_bzimages_are_refused() {
    let good = bzimage(0x020f, 1, &[0xf4; 64]);
    let none = params("", None);
    assert!(matches!(reject(&good[..0x204], &none), LoadError::Malformed(_)));
    assert!(matches!(reject(&good[..0x400], &none), LoadError::Malformed(_)), "no protected-mode code");
    let mut old = good.clone();
    old[0x206..0x208].copy_from_slice(&0x0201u16.to_le_bytes());
    assert!(matches!(reject(&old, &none), LoadError::Unsupported(_)));
    let mut short = good.clone();
    short[0x201] = 0x20; // the header would end at 0x222, before cmd_line_ptr
    assert!(matches!(reject(&short, &none), LoadError::Malformed(_)));
    let mut zimage = good.clone();
    zimage[0x211] = 0;
    assert!(matches!(reject(&zimage, &none), LoadError::Unsupported(_)));
    let mut huge = good.clone();
    huge[0x260..0x264].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(reject(&huge, &none), LoadError::TooBig(_)), "init_size past RAM");
    // Every truncation of a good image: an error, never a panic.
    let mut m = machine(2 * MIB);
    for len in 0..good.len() - 64 {
        assert!(load_linux(&mut m, &good[..len], &none).is_err(), "accepted {len} bytes");
    }
}

#[test]
fn bad_parameters_are_refused() {
    let good = bzimage(0x020f, 1, &[0xf4; 64]);
    let two = BootParams { modules: vec![("a".into(), vec![1]), ("b".into(), vec![2])], ..params("", None) };
    assert!(matches!(reject(&good, &two), LoadError::Unsupported(_)));
    assert!(matches!(reject(&good, &params("", Some(vec![0; 31 << 20]))), LoadError::TooBig(_)));
    assert!(matches!(reject(&good, &params(&"x".repeat(2048), None)), LoadError::TooBig(_)));
    let mut m = machine(MIB);
    assert!(matches!(load_linux(&mut m, &good, &params("", None)), Err(LoadError::RamTooSmall(_))));
}
