//! `bt86 run --symbols`: the guest function a stop is in, named after the
//! address bt86 reports. Synthetic kernels with a hand-written map (always
//! run) check the messages and the one-line errors; Debian's kernel and the
//! System.map scripts/fetch-linux.sh writes under QEMU (run only when they
//! are cached, saying NOT RUN when not) check the map against the kernel.

mod common;

use bt86::symbols::Symbols;
use common::{debian_kernel_and_map, multiboot_kernel, run_bt86_kernel, KERNEL_BASE, KERNEL_ENTRY};
use std::path::{Path, PathBuf};

/// A System.map for `multiboot_kernel`'s image: a header, then `entry`.
fn synthetic_map(tag: &str) -> PathBuf {
    let map = format!(
        "{KERNEL_BASE:08x} T _text\n{KERNEL_BASE:08x} t multiboot_header\n{KERNEL_ENTRY:08x} T entry\n\
         {:08x} T _etext\n",
        KERNEL_ENTRY + 0x40
    );
    let path = std::env::temp_dir().join(format!("bt86-symbols-{}-{tag}.map", std::process::id()));
    std::fs::write(&path, map).expect("write map");
    path
}

/// `at SSSS:XXXXXXXX` in a message: the address.
fn stop_address(err: &str) -> u32 {
    let at = err.find(" at ").map(|i| &err[i + 4..]).unwrap_or("");
    let hex = at.get(5..13).unwrap_or("");
    u32::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("no address in {err:?}"))
}

#[test]
fn a_halt_is_named_under_every_engine() {
    // cli; hlt
    let kernel = multiboot_kernel("symbols-hlt", &[0xfa, 0xf4]);
    let map = synthetic_map("hlt");
    let map_arg = map.display().to_string();
    for engine in ["interp", "bt", "trap"] {
        let (_, status, err) = run_bt86_kernel(&kernel, &["--engine", engine, "--symbols", &map_arg]);
        assert_eq!(status, 10, "{engine}: {err}");
        assert_eq!(err.lines().count(), 1, "{engine}: {err}");
        let off = stop_address(&err) - KERNEL_ENTRY;
        assert!(err.contains(&format!(" (entry+{off:#x}) with interrupts disabled")), "{engine}: {err}");
    }
}

#[test]
fn an_unsupported_instruction_is_named() {
    // nop; movaps xmm0, xmm1
    let kernel = multiboot_kernel("symbols-sse", &[0x90, 0x0f, 0x28, 0xc1]);
    let map = synthetic_map("sse");
    let (_, status, err) = run_bt86_kernel(&kernel, &["--engine", "interp", "--symbols", &map.display().to_string()]);
    assert_eq!(status, 8, "{err}");
    assert!(err.contains("`movaps xmm0,xmm1` at 0x00100021 (at 0008:00100021 in entry+0x1)"), "{err}");
}

#[test]
fn without_symbols_the_message_is_unchanged() {
    let kernel = multiboot_kernel("symbols-none", &[0xfa, 0xf4]);
    let (_, status, err) = run_bt86_kernel(&kernel, &["--engine", "interp"]);
    assert_eq!(status, 10, "{err}");
    assert!(err.contains(&format!("halted at 0008:{:08x} with", KERNEL_ENTRY + 2)), "{err}");
}

#[test]
fn a_missing_symbols_file_is_a_one_line_error_with_status_4() {
    let kernel = multiboot_kernel("symbols-missing", &[0xfa, 0xf4]);
    let (out, status, err) = run_bt86_kernel(&kernel, &["--symbols", "/nonexistent/System.map"]);
    assert_eq!(status, 4, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("bt86: cannot read symbols /nonexistent/System.map: "), "{err}");
    assert!(out.is_empty(), "the guest must not run");
}

#[test]
fn a_file_without_symbols_is_a_one_line_error_naming_the_line() {
    let kernel = multiboot_kernel("symbols-bad", &[0xfa, 0xf4]);
    let path = std::env::temp_dir().join(format!("bt86-symbols-{}-bad.map", std::process::id()));
    std::fs::write(&path, "\nvmlinux: file format elf32-i386\n").expect("write");
    let (_, status, err) = run_bt86_kernel(&kernel, &["--symbols", &path.display().to_string()]);
    assert_eq!(status, 4, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&path.display().to_string()) && err.contains("line 2: not a kernel symbol"), "{err}");
}

/// The bzImage's `pref_address` (boot.rst: where a relocatable kernel
/// prefers to be loaded, LOAD_PHYSICAL_ADDR) and the config's PAGE_OFFSET.
fn load_address(kernel: &Path) -> (u32, u32) {
    let image = std::fs::read(kernel).expect("read vmlinuz");
    let pref = u64::from_le_bytes(image[0x258..0x260].try_into().expect("8 bytes"));
    let config = std::fs::read_to_string(kernel.with_file_name("config")).expect("read config");
    let page_offset = config
        .lines()
        .find_map(|l| l.strip_prefix("CONFIG_PAGE_OFFSET=0x"))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .expect("CONFIG_PAGE_OFFSET in config");
    (u32::try_from(pref).expect("32-bit"), page_offset)
}

/// The address of the text symbol `name` in a System.map.
fn address_of(map: &str, name: &str) -> Option<u32> {
    map.lines().find_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
        [a, "t" | "T", n] if n == name => u32::from_str_radix(a, 16).ok(),
        _ => None,
    })
}

/// With nokaslr the kernel runs where it was linked: startup_32 (the
/// decompressed kernel's entry, head_32.S) at pref_address + PAGE_OFFSET,
/// 0x1000000 + 0xc0000000 for Debian's; start_kernel is in init text,
/// past _etext; _etext itself is the end of .text, not a function.
#[test]
fn debian_system_map_names_the_kernel_entry_points() {
    let Some((kernel, _, map)) = debian_kernel_and_map("debian_system_map_names_the_kernel_entry_points") else {
        return;
    };
    let (pref, page_offset) = load_address(&kernel);
    assert_eq!((pref, page_offset), (0x100_0000, 0xc000_0000), "Debian's 686 kernel");
    let text = std::fs::read_to_string(&map).expect("read System.map");
    let symbols = Symbols::load(&map).expect("load System.map");
    let start = pref + page_offset;
    assert_eq!(address_of(&text, "startup_32"), Some(start));
    assert_eq!(address_of(&text, "_text"), Some(start));
    assert_eq!(symbols.name(start).as_deref(), Some("startup_32+0x0"));
    let etext = address_of(&text, "_etext").expect("_etext");
    let start_kernel = address_of(&text, "start_kernel").expect("start_kernel");
    assert!(start < etext && etext < start_kernel, "{start:#x} {etext:#x} {start_kernel:#x}");
    assert_eq!(symbols.name(start_kernel + 0x10).as_deref(), Some("start_kernel+0x10"));
    assert_eq!(symbols.name(etext), None, "_etext ends .text");
    assert!(symbols.functions() > 40_000, "{} functions", symbols.functions());
}

/// The early boot under bt, stopped by the instruction limit in the
/// decompressed kernel: the stop names a function of the map, at the
/// offset the address gives.
#[test]
fn debian_kernel_stop_is_named() {
    let Some((kernel, initrd, map)) = debian_kernel_and_map("debian_kernel_stop_is_named") else { return };
    let (i, m) = (initrd.display().to_string(), map.display().to_string());
    let append = "console=ttyS0 nokaslr earlyprintk=serial,ttyS0";
    let args = ["--engine", "bt", "--initrd", &i, "--append", append, "--max-insns", "2400000000", "--symbols", &m];
    let (_, status, err) = run_bt86_kernel(&kernel, &args);
    assert_eq!(status, 12, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let addr = stop_address(&err);
    let named = err.split(" (").nth(1).and_then(|r| r.strip_suffix(")\n")).unwrap_or_else(|| panic!("no name: {err}"));
    let (name, off) = named.split_once("+0x").expect("func+0xoff");
    let off = u32::from_str_radix(off, 16).expect("hex offset");
    let text = std::fs::read_to_string(&map).expect("read System.map");
    assert_eq!(address_of(&text, name), Some(addr - off), "{err}");
}

/// Without nokaslr a KASLR kernel is not where its map says: a warning,
/// and the decompressor's physical addresses are not named.
#[test]
fn debian_kernel_without_nokaslr_is_warned_about() {
    let Some((kernel, initrd, map)) = debian_kernel_and_map("debian_kernel_without_nokaslr_is_warned_about") else {
        return;
    };
    let (i, m) = (initrd.display().to_string(), map.display().to_string());
    let args = ["--initrd", &i, "--append", "console=ttyS0", "--max-insns", "1000", "--symbols", &m];
    let (_, status, err) = run_bt86_kernel(&kernel, &args);
    assert_eq!(status, 12, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains("warning: --symbols: without nokaslr"), "{err}");
    assert!(lines[1].starts_with("bt86: instruction limit reached at") && !lines[1].contains('('), "{err}");
}
