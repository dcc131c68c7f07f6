//! The loader against QEMU 7.2: every expected value below was printed by
//! the probe kernel (src/loader/probe) in the named run of `probe/run.sh`.

use super::build::{self, header, load, probe_elf, probe_modules};
use super::{cstr, dwords, machine, MIB};
use crate::cpu::state::{reg, Seg};
use crate::loader::{e820_map, entry, load_flat, load_multiboot, BootParams, E820Entry, E820Type};
use crate::memory::PhysAddr;

fn params(append: Option<&str>, modules: Vec<(String, Vec<u8>)>) -> BootParams {
    BootParams { kernel_path: "probe.elf".into(), append: append.map(Into::into), modules }
}

#[test]
fn loader_elf_full_matches_probe_run_elf_128_full() {
    // qemu-system-i386 -kernel probe.elf -m 128 -append "a b" -initrd "mod1,mod2"
    let mut m = machine(128 * MIB);
    load_multiboot(&mut m, &probe_elf(), &params(Some("a b"), probe_modules("mod1"))).unwrap();
    // dump@0x9500 in run elf-128-full.
    let mbi = [0x24f, 0x27f, 0x1fb80, 0x8000_ffff, 0x0010_302a, 2, 0x0010_3000, 0, 0, 0, 0, 0x90, 0x9000];
    assert_eq!(dwords(&m, 0x9500, 13), mbi);
    assert_eq!(dwords(&m, 0x9500 + 52, 9), [0, 0, 0, 0x0010_3038, 0, 0, 0, 0, 0]);
    // dump@0x103000: the module list.
    let mods = [0x0010_4000, 0x0010_538c, 0x0010_3020, 0, 0x0010_6000, 0x0010_6068, 0x0010_3025, 0];
    assert_eq!(dwords(&m, 0x10_3000, 8), mods);
    assert_eq!(cstr(&m, 0x10_3020), "mod1");
    assert_eq!(cstr(&m, 0x10_3025), "mod2");
    assert_eq!(cstr(&m, 0x10_302a), "probe.elf a b");
    assert_eq!(cstr(&m, 0x10_3038), "qemu");
    assert_eq!(m.ram.read_u32(PhysAddr(0x10_4000)), 0x3144_4f4d); // "MOD1"
    assert_eq!(m.ram.read_u32(PhysAddr(0x10_6000)), 0x3244_4f4d); // "MOD2"
                                                                  // dump@0x9000: the e820 map.
    let mmap = [
        0x14, 0, 0, 0x9fc00, 0, 1, 0x14, 0x9fc00, 0, 0x400, 0, 2, 0x14, 0xf0000, 0, 0x10000, 0, 2, 0x14, 0x100000, 0,
        0x7ee0000, 0, 1, 0x14, 0x7fe0000, 0, 0x20000, 0, 2, 0x14, 0xfffc0000, 0, 0x40000, 0, 2,
    ];
    assert_eq!(dwords(&m, 0x9000, 36), mmap);
    assert_eq!(m.ram.read_u32(PhysAddr(0x9090)), 0);
}

#[test]
fn loader_entry_state_matches_probe_run_elf_128_full() {
    let mut m = machine(128 * MIB);
    load_multiboot(&mut m, &probe_elf(), &params(Some("a b"), probe_modules("mod1"))).unwrap();
    let c = &m.cpu;
    // eax..edi as printed: ecx is the entry point, edx the ROM's leftover.
    let gpr = [0x2bad_b002, 0x0010_0020, 0x0001_0511, 0x9500, 0x6f08, 0, 0, 0x1000];
    assert_eq!(c.gpr, gpr);
    assert_eq!((c.eip, c.eflags, c.cr0, c.cr3, c.cr4), (0x10_0020, 0x6, 0x11, 0, 0));
    assert_eq!((c.gdtr.base, c.gdtr.limit), (0xcb2b8, 0x27));
    assert_eq!((c.idtr.base, c.idtr.limit), (0, 0x3ff));
    // Selectors 0x08 / 0x10; caches from LAR 0x00c09a00 / 0x00c09300, LSL 0xffffffff.
    for s in Seg::ALL {
        let (sel, attr) = if s == Seg::Cs { (0x08, 0xc09a) } else { (0x10, 0xc093) };
        let seg = c.seg(s);
        assert_eq!((seg.selector, seg.attr, seg.base, seg.limit), (sel, attr, 0, 0xffff_ffff), "{}", s.name());
    }
    assert_eq!(c.cpl, 0);
    // gdt@0x000cb2b8..: five descriptors.
    let gdt = [0, 0, 0xffff, 0x00cf_9a00, 0xffff, 0x00cf_9300, 0xffff, 0x9e00, 0xffff, 0x9200];
    assert_eq!(dwords(&m, 0xcb2b8, 10), gdt);
}

#[test]
fn loader_bare_matches_probe_run_elf_64_bare() {
    // qemu-system-i386 -kernel probe.elf -m 64: no -append, no -initrd.
    let mut m = machine(64 * MIB);
    load_multiboot(&mut m, &probe_elf(), &params(None, vec![])).unwrap();
    let mbi = [0x24f, 0x27f, 0xfb80, 0x8000_ffff, 0x0010_3000, 0, 0x0010_3000];
    assert_eq!(dwords(&m, 0x9500, 7), mbi);
    assert_eq!(m.ram.read_u32(PhysAddr(0x9500 + 64)), 0x0010_300b);
    assert_eq!(cstr(&m, 0x10_3000), "probe.elf ");
    assert_eq!(cstr(&m, 0x10_300b), "qemu");
    assert_eq!(m.cpu.gpr[reg::EDX], 0x511);
    assert_eq!(dwords(&m, 0x9048 + 4, 5), [0x100000, 0, 0x3ee0000, 0, 1]);
}

#[test]
fn loader_module_args_match_probe_run_elf_128_args() {
    // -append "" -initrd "mod1 x  y,mod2": the module string keeps its arguments.
    let mut m = machine(128 * MIB);
    load_multiboot(&mut m, &probe_elf(), &params(Some(""), probe_modules("mod1 x  y"))).unwrap();
    assert_eq!(dwords(&m, 0x9500 + 16, 1), [0x0010_302f]);
    assert_eq!(m.ram.read_u32(PhysAddr(0x9500 + 64)), 0x0010_303a);
    assert_eq!(dwords(&m, 0x10_3000, 8)[2..4], [0x0010_3020, 0]);
    assert_eq!(cstr(&m, 0x10_3020), "mod1 x  y");
    assert_eq!(cstr(&m, 0x10_302a), "mod2");
    assert_eq!(cstr(&m, 0x10_302f), "probe.elf ");
}

#[test]
fn loader_e820_matches_probe_runs_by_ram_size() {
    let ram_at_1m = |mib: u64| e820_map(mib << 20).unwrap()[3];
    let ram = |base, len| E820Entry { base, len, kind: E820Type::Ram };
    assert_eq!(ram_at_1m(3), ram(0x100000, 0x1e0000)); // elf-3-bare
    assert_eq!(ram_at_1m(200), ram(0x100000, 0xc6e0000)); // pad-200 (mem_upper 0x31b80)
    assert_eq!(ram_at_1m(1000), ram(0x100000, 0x3e6e0000)); // elf-1000-full
    let big = e820_map(3584 << 20).unwrap(); // elf-4000-bare (-m 3584)
    assert_eq!(big[3], ram(0x100000, 0xbfee0000));
    assert_eq!(big[4].base, 0xbffe0000);
    assert_eq!(big[6], ram(1 << 32, 0x2000_0000));
    assert!(e820_map(MIB as u64).is_none());
}

#[test]
fn loader_higher_half_entry_is_physical_as_probe_run_hh_128() {
    // hh.elf: linked at 0xC0100000, p_paddr 1 MiB; QEMU entered it at 1 MiB + 0xc.
    let mut seg = load(0x10_0000, build::text(0x39, 0x90), 0x39);
    seg.vaddr = 0xc010_0000;
    let mut m = machine(8 * MIB);
    load_multiboot(&mut m, &build::elf(0xc010_000c, &[seg]), &params(None, vec![])).unwrap();
    assert_eq!((m.cpu.eip, m.cpu.gpr[reg::ECX]), (0x10_000c, 0x10_000c));
    assert_eq!(m.ram.read_u32(PhysAddr(0x10_0000)), 0x1bad_b002);
}

#[test]
fn loader_aout_kludge_places_text_and_zeroes_bss() {
    // Like probe-kludge.elf (run kludge-128, same layout as the ELF run): a
    // raw image whose header (at file offset 0x10) gives every address.
    let mut img = vec![0xcc; 0x10];
    img.extend(header(0x1_0003, Some([0x20_0010, 0x20_0000, 0x20_0100, 0x20_2000, 0x20_0040])));
    img.resize(0x180, 0xab); // 0x80 bytes past load_end_addr, not loaded
    let mut m = machine(4 * MIB);
    m.ram.bytes_mut()[0x20_0000..0x20_3000].fill(0x55);
    load_multiboot(&mut m, &img, &params(None, vec![])).unwrap();
    assert_eq!(m.cpu.eip, 0x20_0040);
    assert_eq!(&m.ram.bytes()[0x20_0000..0x20_0100], &img[..0x100]);
    assert!(m.ram.bytes()[0x20_0100..0x20_3000].iter().all(|&b| b != 0x55), "bss and tail zeroed");
    assert_eq!(cstr(&m, 0x20_2000), "probe.elf "); // info tail at page_align(bss_end)
}

#[test]
fn loader_aout_kludge_zero_ends_load_whole_file() {
    // load_end_addr = 0: to the end of the file; bss_end_addr = 0: no BSS.
    let mut img = header(0x1_0000, Some([0x10_0000, 0x10_0000, 0, 0, 0x10_0000]));
    img.resize(0x1234, 0x77);
    let mut m = machine(4 * MIB);
    load_multiboot(&mut m, &img, &params(None, vec![])).unwrap();
    assert_eq!(&m.ram.bytes()[0x10_0000..0x10_1234], &img[..]);
    assert_eq!(m.ram.read_u32(PhysAddr(0x9500 + 16)), 0x10_2000);
}

#[test]
fn loader_elf_bss_and_gaps_are_zero() {
    let segs = [load(0x10_0000, build::text(0x100, 0x11), 0x800), load(0x10_3000, vec![0x22; 0x10], 0x20)];
    let mut m = machine(4 * MIB);
    m.ram.bytes_mut()[0x10_0000..0x10_5000].fill(0x55);
    load_multiboot(&mut m, &build::elf(0x10_0000, &segs), &params(None, vec![])).unwrap();
    let ram = m.ram.bytes();
    assert!(ram[0x10_000c..0x10_0100].iter().all(|&b| b == 0x11), "{:x?}", &ram[0x10_0000..0x10_0020]);
    assert!(ram[0x10_0100..0x10_3000].iter().all(|&b| b == 0), "bss and gap");
    assert!(ram[0x10_3000..0x10_3010].iter().all(|&b| b == 0x22));
    assert!(ram[0x10_3010..0x10_4000].iter().all(|&b| b == 0));
    assert_eq!(m.ram.read_u32(PhysAddr(0x9500 + 24)), 0x10_4000); // mods_addr after the span
}

#[test]
fn loader_video_and_unknown_required_flags_boot_as_probe_run_vbe_128() {
    // Flag bit 2: QEMU warns "multiboot knows VBE. we don't" and boots on.
    for flags in [0x7, 0x8003] {
        let img = build::elf(
            0x10_0000,
            &[load(
                0x10_0000,
                {
                    let mut t = header(flags, None);
                    t.resize(64, 0);
                    t
                },
                64,
            )],
        );
        let mut m = machine(4 * MIB);
        load_multiboot(&mut m, &img, &params(None, vec![])).unwrap();
        assert_eq!(m.ram.read_u32(PhysAddr(0x9500)), 0x24f);
    }
}

#[test]
fn loader_flat_binary_entry_state() {
    let mut m = machine(2 * MIB);
    let code = [0xb0, 0x00, 0xe6, 0xf4]; // mov al, 0; out 0xf4, al
    load_flat(&mut m, &code, PhysAddr(0x7c00)).unwrap();
    assert_eq!(&m.ram.bytes()[0x7c00..0x7c04], &code);
    assert_eq!((m.cpu.eip, m.cpu.gpr[reg::ESP], m.cpu.gpr[reg::EAX]), (0x7c00, 0x7c00, 0));
    assert_eq!((m.cpu.cr0, m.cpu.eflags, m.cpu.gdtr.base), (entry::CR0, entry::EFLAGS, entry::GDT_BASE));
    assert_eq!(m.cpu.seg(Seg::Cs).attr, 0xc09a);
    assert_eq!(m.ram.read_u32(PhysAddr(0xcb2c4)), 0x00cf_9a00);
}
