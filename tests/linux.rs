//! Linux bzImages through the command line: synthetic ones (always run)
//! check the 32-bit boot protocol's entry state and the one-line error on
//! a broken image; Debian's i386 kernel (run only when
//! `scripts/fetch-linux.sh` has put it in `target/linux/` or
//! `$BT86_LINUX_CACHE`, and saying so plainly when it has not) checks the
//! early boot and a whole boot through `/init` under bt (and, with
//! `--ignored`, under interp), whose output between the markers must be
//! `tests/linux/init.expected` (QEMU's). The QEMU command line and the
//! kernel's are `bt86::bench::linux`'s, which `bt86 bench --linux` times.

mod common;

use bt86::bench::linux::{qemu_args, APPEND, END_MARKER, START_MARKER};
use common::{debian_kernel, qemu_available, run_bt86_kernel};
use iced_x86::code_asm::*;
use std::path::PathBuf;
use std::process::Command;

/// A bzImage (protocol 2.15 header, one setup sector) whose
/// protected-mode code is `pm`.
fn bzimage(tag: &str, pm: &[u8]) -> PathBuf {
    let mut img = vec![0u8; 1024];
    img[0x1f1] = 1;
    img[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    img[0x200..0x208].copy_from_slice(&[0xeb, 0x6a, b'H', b'd', b'r', b'S', 0x0f, 0x02]);
    img[0x211] = 1; // LOADED_HIGH
    img[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
    img[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    img[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
    img.extend_from_slice(pm);
    let path = std::env::temp_dir().join(format!("bt86-linux-{}-{tag}.bin", std::process::id()));
    std::fs::write(&path, img).expect("write bzImage");
    path
}

/// Protected-mode code that checks boot.rst's 32-bit entry state and
/// exits through port 0xf4 with 0x21 when all holds, or with the number
/// of the first check that failed.
fn entry_checker() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut fail = a.create_label();
    let check = |a: &mut CodeAssembler, n: u32| -> Result<(), IcedError> {
        a.mov(al, n)?;
        a.jne(fail)
    };
    a.mov(eax, cs)?;
    a.cmp(ax, 0x10)?;
    check(&mut a, 1)?;
    for (n, s) in [(2, ds), (3, es), (4, ss)] {
        a.mov(eax, s)?;
        a.cmp(ax, 0x18)?;
        check(&mut a, n)?;
    }
    a.cmp(esi, 0x7000)?;
    check(&mut a, 5)?;
    for (n, r) in [(6, ebx), (7, edi), (8, ebp)] {
        a.test(r, r)?;
        check(&mut a, n)?;
    }
    a.pushfd()?;
    a.pop(eax)?;
    a.test(eax, 0x200)?; // IF
    check(&mut a, 9)?;
    a.mov(eax, cr0)?;
    a.test(eax, 0x8000_0000u32 as i32)?; // PG
    check(&mut a, 10)?;
    a.cmp(byte_ptr(esi + 0x210), 0xff)?; // type_of_loader
    check(&mut a, 11)?;
    a.mov(edx, dword_ptr(esi + 0x228))?; // cmd_line_ptr
    a.cmp(dword_ptr(edx), u32::from_le_bytes(*b"quie") as i32)?;
    check(&mut a, 12)?;
    a.mov(edx, dword_ptr(esi + 0x218))?; // ramdisk_image
    a.cmp(dword_ptr(edx), 0x1234_5678)?;
    check(&mut a, 13)?;
    a.cmp(dword_ptr(esi + 0x21c), 4)?; // ramdisk_size
    check(&mut a, 14)?;
    a.mov(al, 0x21)?;
    a.set_label(&mut fail)?;
    a.out(0xf4, al)?;
    a.hlt()?;
    a.assemble(0x10_0000)
}

#[test]
fn synthetic_bzimage_is_entered_as_boot_rst_says() {
    let kernel = bzimage("entry", &entry_checker().expect("assemble"));
    let initrd = std::env::temp_dir().join(format!("bt86-linux-{}-initrd", std::process::id()));
    std::fs::write(&initrd, 0x1234_5678u32.to_le_bytes()).expect("write initrd");
    let initrd_arg = initrd.display().to_string();
    for engine in ["interp", "bt"] {
        let args = ["--engine", engine, "--initrd", &initrd_arg, "--append", "quiet console=ttyS0", "-m", "32M"];
        let (_, status, err) = run_bt86_kernel(&kernel, &args);
        assert_eq!(status, 0x43, "{engine}: check {} failed; stderr: {err}", (status - 1) / 2);
    }
}

#[test]
fn truncated_bzimage_is_a_one_line_error_with_status_4() {
    let whole = std::fs::read(bzimage("whole", &[0xf4; 16])).expect("read");
    let path = std::env::temp_dir().join(format!("bt86-linux-{}-cut.bin", std::process::id()));
    std::fs::write(&path, &whole[..0x300]).expect("write");
    let (_, status, err) = run_bt86_kernel(&path, &[]);
    assert_eq!(status, 4, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bzImage") && !err.contains("panicked"), "{err}");
}

/// A kernel that stops before it prints anything gets bt86's guess at why,
/// beside the halt or fault itself: an x86-64 bzImage (xloadflags bit 0,
/// boot.rst) halts with interrupts off in its 32-bit entry when CPUID has
/// no long mode (arch/x86/boot/compressed/head_64.S); any other is named
/// with its version string and bt86's CPU features. A kernel that printed
/// first gets no guess.
#[test]
fn a_kernel_that_stops_silently_is_told_why() {
    let stop = |tag: &str, pm: &[u8], patch: &dyn Fn(&mut Vec<u8>)| {
        let path = bzimage(tag, pm);
        let mut img = std::fs::read(&path).expect("read");
        patch(&mut img);
        std::fs::write(&path, img).expect("write");
        let (_, status, err) = run_bt86_kernel(&path, &["--engine", "bt"]);
        (status, err)
    };
    let cli_hlt = [0xfa, 0xf4];
    let (status, err) = stop("x86-64", &cli_hlt, &|img| {
        img[0x236] = 1;
        // kernel_version -> 0x100 + 0x200: "6.1.0-50-amd64 (debian-kernel@...)".
        img[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        img[0x300..0x300 + 22].copy_from_slice(b"6.1.0-50-amd64 (debian");
    });
    assert_eq!(status, 10, "{err}");
    assert!(err.contains("6.1.0-50-amd64") && err.contains("x86-64 kernel") && err.contains("long mode"), "{err}");
    // A triple fault: a #GP from CR4.PAE with no IDT (mov eax, 0x20; mov cr4, eax).
    let (status, err) = stop("pae", &[0xb8, 0x20, 0, 0, 0, 0x0f, 0x22, 0xe0, 0xf4], &|_| {});
    assert_eq!(status, 6, "{err}");
    assert!(err.contains("stopped before it wrote anything") && err.contains("no pae"), "{err}");
    assert!(err.contains("fpu de pse tsc msr cx8 sep pge cmov"), "{err}");
    // mov dx, 0x3f8; mov al, '!'; out dx, al; cli; hlt: it spoke, no guess.
    let (status, err) = stop("spoke", &[0x66, 0xba, 0xf8, 0x03, 0xb0, 0x21, 0xee, 0xfa, 0xf4], &|_| {});
    assert_eq!(status, 10, "{err}");
    assert_eq!(err.lines().count(), 1, "only the halt: {err}");
}

/// The lines from the start marker to the end marker, without CRs.
fn init_section(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out).replace('\r', "");
    let start = text.find(START_MARKER).unwrap_or(text.len());
    let end = text.find(END_MARKER).map_or(text.len(), |e| e + END_MARKER.len() + 1);
    text.get(start..end.min(text.len())).unwrap_or("").to_string()
}

/// The early boot to `limit` instructions under `args`: the kernel's first
/// lines, as QEMU prints them (the e820 map and where the RAM disk went).
/// Returns bt86's stderr (`None`: the kernel is not fetched).
fn early_boot(test: &str, args: &[&str], limit: &str) -> Option<String> {
    let (kernel, initrd) = debian_kernel(test)?;
    let i = initrd.display().to_string();
    let append = "console=ttyS0 earlyprintk=serial,ttyS0";
    let mut all = vec!["--initrd", &i, "--append", append, "-m", "128M", "--max-insns", limit];
    all.extend_from_slice(args);
    let (out, status, err) = run_bt86_kernel(&kernel, &all);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(status, 12, "expected the instruction limit; stderr: {err}\n{text}");
    for want in [
        "Linux version 6.1",
        "BIOS-e820: [mem 0x0000000000100000-0x0000000007ffffff] usable",
        "RAMDISK: [mem 0x07efc000-0x07ffffff]", // where QEMU puts it
        "Kernel command line: console=ttyS0 earlyprintk=serial,ttyS0",
    ] {
        assert!(text.contains(want), "{want:?} not in the boot log:\n{text}");
    }
    Some(err)
}

/// Under bt, 2.6 G instructions (a few seconds) take the kernel through
/// its XZ decompressor, setup_arch and the command line, to unpacking
/// the initramfs.
#[test]
fn debian_kernel_early_boot() {
    early_boot("debian_kernel_early_boot", &["--engine", "bt"], "2600000000");
}

/// The translator against the interpreter at every block boundary through
/// the XZ decompressor (2.2 G instructions) and into setup_arch (2.4 G,
/// about 150 M blocks, a minute); the whole boot is the `--ignored` test
/// below.
#[test]
fn debian_kernel_early_boot_under_lockstep() {
    let test = "debian_kernel_early_boot_under_lockstep";
    if let Some(err) = early_boot(test, &["--engine", "bt", "--lockstep"], "2400000000") {
        assert!(err.contains("no divergence"), "{err}");
    }
}

#[test]
fn debian_kernel_init_under_qemu_is_the_expected_output() {
    let Some((kernel, initrd)) = debian_kernel("debian_kernel_init_under_qemu") else { return };
    if !qemu_available() {
        println!("debian_kernel_init_under_qemu: NOT RUN: qemu-system-i386 is not installed");
        return;
    }
    let out = Command::new("timeout")
        .args(["120", "qemu-system-i386"])
        .args(qemu_args(&kernel, &initrd))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run qemu");
    assert_eq!(init_section(&out.stdout), include_str!("linux/init.expected"));
    assert_eq!(out.status.code(), Some(1));
}

/// A whole boot through /init under `engine`, against QEMU's output.
fn init_like_qemu(test: &str, engine: &str, extra: &[&str]) {
    let Some((kernel, initrd)) = debian_kernel(test) else { return };
    let i = initrd.display().to_string();
    let mut args = vec!["--engine", engine, "--initrd", &i, "--append", APPEND, "-m", "128M", "--timeout", "900"];
    args.extend_from_slice(extra);
    let (out, status, err) = run_bt86_kernel(&kernel, &args);
    assert_eq!(init_section(&out), include_str!("linux/init.expected"), "{engine}: {err}");
    assert_eq!(status, 1, "{engine}: {err}");
}

/// Seven thousand million instructions: about ten seconds under bt.
#[test]
fn debian_kernel_init_under_bt_is_qemus() {
    init_like_qemu("debian_kernel_init_under_bt", "bt", &[]);
}

/// The whole boot under the interpreter, the reference: about two and a
/// quarter minutes (137 s in the test profile), which CI can afford.
#[test]
fn debian_kernel_init_under_interp_is_qemus() {
    init_like_qemu("debian_kernel_init_under_interp", "interp", &[]);
}

/// bt against the interpreter at every block boundary, the whole boot
/// (326 M blocks, about three minutes in release): only on request.
#[test]
#[ignore]
fn debian_kernel_init_under_lockstep_is_qemus() {
    init_like_qemu("debian_kernel_init_under_lockstep", "bt", &["--lockstep"]);
}

/// `bt86 bench --linux` without the fetched kernel: one line naming the
/// script, status 4 (no kernel image).
#[test]
fn bench_linux_without_the_kernel_is_a_one_line_error_with_status_4() {
    let empty = std::env::temp_dir().join(format!("bt86-linux-{}-empty", std::process::id()));
    std::fs::create_dir_all(&empty).expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_bt86"))
        .args(["bench", "--linux", "--engines", "bt"])
        .env("BT86_LINUX_CACHE", &empty)
        .output()
        .expect("run bt86");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("scripts/fetch-linux.sh"), "{err}");
}

/// `bt86 bench --linux` end to end under bt, one boot: the table parses
/// and its figures are in order. (Only that: timings are for benchmarks.)
#[test]
fn bench_linux_under_bt_prints_its_row() {
    let Some((kernel, _)) = debian_kernel("bench_linux_under_bt") else { return };
    let dir = kernel.parent().expect("cache dir");
    let out = Command::new(env!("CARGO_BIN_EXE_bt86"))
        .args(["bench", "--linux", "--engines", "bt,native", "--repeat", "1"])
        .env("BT86_LINUX_CACHE", dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run bt86");
    let (text, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    assert!(err.contains("native left out"), "{err}");
    let row: Vec<&str> = text.lines().find(|l| l.starts_with("bt ")).unwrap_or("").split_whitespace().collect();
    let figures: Vec<f64> = row.iter().skip(1).filter_map(|f| f.parse().ok()).collect();
    assert_eq!(figures.len(), 4, "{text}");
    assert!(figures[0] > 0.0 && figures[0] < figures[1] && figures[2] <= figures[3], "{text}");
}

/// `rep; bsf` (Linux's `__ffs`, which iced names TZCNT) and `rep; bsr`
/// are BSF and BSR on bt86's CPU, which reports neither BMI1 nor ABM:
/// with a zero source ZF is set and the destination kept, and the result
/// is a bit index, not a count (a host with BMI1 would give 32 and 25).
#[test]
fn tzcnt_and_lzcnt_encodings_are_bsf_and_bsr_under_every_engine() {
    let code = || -> Result<Vec<u8>, IcedError> {
        let mut a = CodeAssembler::new(32)?;
        let mut fail = a.create_label();
        a.mov(ecx, 0x55)?;
        a.xor(eax, eax)?;
        a.tzcnt(ecx, eax)?; // f3 0f bc c8
        a.mov(bl, 1)?;
        a.jne(fail)?;
        a.cmp(ecx, 0x55)?;
        a.mov(bl, 2)?;
        a.jne(fail)?;
        a.mov(eax, 0x50)?;
        a.lzcnt(edx, eax)?; // f3 0f bd d0
        a.cmp(edx, 6)?;
        a.mov(bl, 3)?;
        a.jne(fail)?;
        a.tzcnt(edx, eax)?;
        a.cmp(edx, 4)?;
        a.mov(bl, 4)?;
        a.jne(fail)?;
        a.mov(bl, 0x21)?;
        a.set_label(&mut fail)?;
        a.mov(al, bl)?;
        a.out(0xf4, al)?;
        a.hlt()?;
        a.assemble(u64::from(common::KERNEL_ENTRY))
    };
    let kernel = common::multiboot_kernel("tzcnt", &code().expect("assemble"));
    for engine in ["interp", "bt", "trap"] {
        let (_, status, err) = run_bt86_kernel(&kernel, &["--engine", engine]);
        assert_eq!(status, 0x43, "{engine}: check {} failed; stderr: {err}", (status - 1) / 2);
    }
}

/// Linux under classical trap-and-emulate, as docs/privilege-rings.md
/// ("Linux under trap-and-emulate") tells it: PUSHF, which reports the
/// real IF (the monitor's, always set), misleads `local_irq_save` first in
/// printk (`vprintk_store`) and in `_raw_spin_lock_irqsave`; the matching
/// restores run STI, so interrupts come on during early boot
/// (`start_kernel` warns), and an interrupt handler's `irqs_disabled()`
/// check fails (`irq_work_run_list`'s BUG): the kernel panics, and bt86
/// says so and names the pitfalls. The same boot under bt runs /init to
/// its end without any of it.
#[test]
fn debian_kernel_under_trap_is_misled_by_pushf_and_panics() {
    let test = "debian_kernel_under_trap_is_misled_by_pushf_and_panics";
    let Some((kernel, initrd, map)) = common::debian_kernel_and_map(test) else { return };
    let (i, map) = (initrd.display().to_string(), map.display().to_string());
    let base = ["--initrd", &i, "--append", "console=ttyS0 nokaslr", "-m", "128M", "--timeout", "600"];
    let mut args = vec!["--engine", "trap", "--pitfalls", "--symbols", &map];
    args.extend_from_slice(&base);
    let (out, status, err) = run_bt86_kernel(&kernel, &args);
    let text = String::from_utf8_lossy(&out);
    for want in [
        "Interrupts were enabled *very* early, fixing it",
        "at init/main.c:",
        "EIP: start_kernel+",
        "kernel BUG at kernel/irq_work.c:",
        "EIP: irq_work_run_list+",
        "Kernel panic - not syncing: Fatal exception in interrupt",
    ] {
        assert!(text.contains(want), "{want:?} not in the boot log:\n{text}");
    }
    assert_eq!(status, 10, "{err}");
    assert!(err.starts_with("bt86: the guest kernel panicked: \""), "{err}");
    // The first difference in kernel code named by the map is a PUSHF in
    // printk; the counts by function name the spin lock's too.
    let first = err.split("the first, oldest first").nth(1).expect("the first events").lines();
    let kernel_pushf = first.into_iter().find(|l| l.contains("pushfd") && l.contains(":c1"));
    assert!(kernel_pushf.is_some_and(|l| l.contains("vprintk_store+")), "{err}");
    let by_function = err.split("by function").nth(1).expect("the by-function table");
    for func in ["_raw_spin_lock_irqsave", "vprintk_store"] {
        assert!(by_function.lines().any(|l| l.contains("pushfd") && l.ends_with(func)), "{func}:\n{err}");
    }
    // Under bt: none of it, and /init runs to its end.
    let mut args = vec!["--engine", "bt"];
    args.extend_from_slice(&base);
    let (out, _, err) = run_bt86_kernel(&kernel, &args);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains(END_MARKER), "bt did not reach the end of /init: {err}\n{text}");
    for not in ["Interrupts were enabled", "kernel BUG", "Kernel panic"] {
        assert!(!text.contains(not), "{not:?} under bt:\n{text}");
    }
}
