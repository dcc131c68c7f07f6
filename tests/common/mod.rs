//! Shared helpers for the integration tests: running a guest image with
//! its serial output captured, and finding QEMU.

#![allow(dead_code)]

use bt86::engine::Limits;
use bt86::session::{self, RunConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use bt86::session::Capture;

/// The CPU-bound workload images (slow under the interpreter; some tests
/// leave them out).
pub const WORKLOADS: &[&str] = &[
    "crc32",
    "sort",
    "sieve",
    "matmul",
    "bytecode",
    "lz",
    "memcpy",
    "flops",
    "strings",
    "calls",
    "bits",
    "crc32_o1",
    "sort_o1",
    "lz_o1",
    "bytecode_o1",
    "strings_o1",
    "calls_o1",
    "bits_o1",
];

/// Images for which QEMU is not the oracle: QEMU's x87 is not the real
/// CPU's (its soft-float differs in rounding, flags and NaN choices, and it
/// models neither #MF at the next waiting instruction nor the FPU pointers;
/// guest-images/README.md "Not tested" lists what). They are left out of
/// every comparison with QEMU (guest-images/regen-expected.sh skips them the
/// same way, its NOT_QEMU list):
///
/// - `NATIVE_ORACLE`: the oracle is the real CPU, bin/NAME-native's stdout
///   (the same object file as the kernel, linked as a static i386 Linux
///   program); there are no expected/NAME.out or .status files (QEMU's
///   output is kept as expected/x87.qemu.out for tests/x87_qemu.rs).
pub const NATIVE_ORACLE: &[&str] = &["x87"];
/// - `SDM_EXPECTED`: expected/NAME.out and .status are written from the
///   SDM (every check passing), not by QEMU; the engines are compared with
///   them like any other image, the live QEMU comparison leaves them out.
pub const SDM_EXPECTED: &[&str] = &["fpu"];

/// The images that have expected/NAME.out and .status files (all but
/// NATIVE_ORACLE).
pub fn expected_image_names() -> Vec<String> {
    image_names().into_iter().filter(|n| !NATIVE_ORACLE.contains(&n.as_str())).collect()
}

/// The output of bin/NAME-native (the real CPU) and whether it exited 0.
pub fn run_native(name: &str) -> Vec<u8> {
    let native = images_dir().join("bin").join(format!("{name}-native"));
    let out = Command::new(&native).output().unwrap_or_else(|e| panic!("run {}: {e}", native.display()));
    assert!(out.status.success(), "{name}-native failed: {:?}", out.status);
    out.stdout
}

/// The guest-images directory.
pub fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-images")
}

/// Every committed kernel image, by name (guest-images/bin/NAME.elf).
pub fn image_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(images_dir().join("bin"))
        .expect("guest-images/bin")
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "elf" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

/// What a run printed and how it ended.
pub struct Run {
    pub output: Vec<u8>,
    pub status: i32,
    pub message: Option<String>,
}

/// Runs a kernel image under bt86 with a generous instruction limit.
pub fn run_bt86(name: &str, cfg: &RunConfig) -> Run {
    let path = images_dir().join("bin").join(format!("{name}.elf"));
    let image = std::fs::read(&path).expect("image");
    let cap = Capture::default();
    let mut cfg = cfg.clone();
    if cfg.limits.max_insns.is_none() {
        cfg.limits =
            Limits { max_insns: Some(4_000_000_000), timeout: Some(Duration::from_secs(120)), max_exceptions: None };
    }
    let m = session::boot(&path.display().to_string(), &image, &cfg, Box::new(cap.clone())).expect("boot");
    let out = session::run(m, &cfg);
    let output = cap.contents();
    // A block the translator cannot emit runs in the interpreter: the
    // output stays right, so only this catches it.
    let failures = out.bt.as_ref().map_or(0, |b| b.translate_failures);
    assert_eq!(failures, 0, "{name}: {failures} blocks the translator could not emit");
    Run { output, status: out.exit.status(), message: out.exit.message(&out.machine) }
}

/// The committed expected output and status taken from QEMU.
pub fn expected(name: &str) -> (Vec<u8>, i32) {
    let dir = images_dir().join("expected");
    let out = std::fs::read(dir.join(format!("{name}.out"))).expect("expected output");
    let status = std::fs::read_to_string(dir.join(format!("{name}.status"))).expect("expected status");
    (out, status.trim().parse().expect("status number"))
}

/// Whether qemu-system-i386 can be run here. In CI (CI set) its absence
/// is a failure, not a skip.
pub fn qemu_available() -> bool {
    let ok = Command::new("qemu-system-i386").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "qemu-system-i386 is required in CI (.ci/run installs it)");
        eprintln!("NOT RUN: qemu-system-i386 is not installed here; the live QEMU comparison did not run");
    }
    ok
}

/// Where a kernel from `multiboot_kernel` is loaded, and its entry point
/// (just after the Multiboot header).
pub const KERNEL_BASE: u32 = 0x10_0000;
pub const KERNEL_ENTRY: u32 = KERNEL_BASE + 0x20;

/// A Multiboot a.out-kludge kernel (header flag 16 says where everything
/// goes, so no ELF is needed) loaded at `KERNEL_BASE` whose code, entered
/// at `KERNEL_ENTRY`, is `code`; written to a temporary file named after
/// the process and `tag`.
pub fn multiboot_kernel(tag: &str, code: &[u8]) -> PathBuf {
    let flags = 1u32 << 16;
    let magic = 0x1bad_b002u32;
    let checksum = 0u32.wrapping_sub(magic.wrapping_add(flags));
    // header_addr, load_addr, load_end_addr (0: the whole file), bss_end_addr
    // (0: none), entry_addr.
    let header = [magic, flags, checksum, KERNEL_BASE, KERNEL_BASE, 0, 0, KERNEL_ENTRY];
    let mut image: Vec<u8> = header.iter().flat_map(|w| w.to_le_bytes()).collect();
    image.extend_from_slice(code);
    let path = std::env::temp_dir().join(format!("bt86-test-{}-{tag}.bin", std::process::id()));
    std::fs::write(&path, image).expect("write kernel");
    path
}

/// Runs a kernel file under QEMU as `run_qemu` runs the images: its serial
/// output and exit status.
pub fn run_qemu_kernel(path: &Path) -> (Vec<u8>, i32) {
    qemu(path, 60)
}

/// `qemu-system-i386 -kernel PATH` with the isa-debug-exit device and
/// `-m 128`, stopped after `timeout` seconds.
fn qemu(path: &Path, timeout: u32) -> (Vec<u8>, i32) {
    let out = Command::new("timeout")
        .arg(timeout.to_string())
        .arg("qemu-system-i386")
        .arg("-kernel")
        .arg(path)
        .args(["-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-m", "128"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run qemu");
    (out.stdout, out.status.code().unwrap_or(-1))
}

/// Runs a kernel file with the bt86 binary (`bt86 run PATH ARGS...`): its
/// serial output, exit status and stderr.
pub fn run_bt86_kernel(path: &Path, args: &[&str]) -> (Vec<u8>, i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bt86"))
        .arg("run")
        .arg(path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run bt86");
    (out.stdout, out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs a kernel under QEMU exactly as guest-images/regen-expected.sh does.
pub fn run_qemu(name: &str) -> (Vec<u8>, i32) {
    qemu(&images_dir().join("bin").join(format!("{name}.elf")), 120)
}

/// A readable first difference between two outputs.
pub fn first_difference(got: &[u8], want: &[u8]) -> String {
    let g = String::from_utf8_lossy(got);
    let w = String::from_utf8_lossy(want);
    for (n, (a, b)) in g.lines().zip(w.lines()).enumerate() {
        if a != b {
            return format!("line {}: got {a:?}, expected {b:?}", n + 1);
        }
    }
    format!("lengths differ: got {} lines, expected {} lines", g.lines().count(), w.lines().count())
}

/// Runs each image under `cfg` and fails with every image whose output or
/// status differs from QEMU's.
pub fn check_images(cfg: &RunConfig, label: &str, names: &[String]) {
    let mut failures = Vec::new();
    assert!(!names.is_empty(), "no guest images found");
    for name in names {
        let (want, want_status) = expected(name);
        let got = run_bt86(name, cfg);
        if got.output != want || got.status != want_status {
            failures.push(format!(
                "{name}: status {} (expected {want_status}), {}{}",
                got.status,
                first_difference(&got.output, &want),
                got.message.map(|m| format!(" [bt86: {m}]")).unwrap_or_default()
            ));
        }
    }
    println!("{label}: {} images, {} passed, {} failed", names.len(), names.len() - failures.len(), failures.len());
    assert!(failures.is_empty(), "{label}:\n{}", failures.join("\n"));
}

/// Guest code and state for the translator's hand-written guests
/// (tests/rep_movs*.rs, tests/paths*.rs).
pub mod guest {
    use bt86::memory::PhysAddr;
    use bt86::Machine;
    use iced_x86::code_asm::*;

    /// A machine with `ram` bytes whose code at `guestcode::CODE` is
    /// `code` (flat, protected mode: `loader::load_flat`).
    pub fn flat_machine(code: &[u8], ram: u32) -> Machine {
        let cfg = bt86::MachineConfig { mem_size: ram, ..bt86::MachineConfig::default() };
        let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("a machine");
        bt86::loader::load_flat(&mut m, code, PhysAddr(bt86::engine::guestcode::CODE)).expect("the code fits");
        m
    }

    /// Guest code at `guestcode::CODE` that ends in eight NOPs and a HLT,
    /// where `body` (given the NOPs' address, 0 on a first pass that finds
    /// it) may store over the NOPs: assembled twice, so the address `body`
    /// is given is where the NOPs are.
    pub fn with_nops_to_patch(body: impl Fn(&mut CodeAssembler, u32) -> Result<(), IcedError>) -> Vec<u8> {
        let pass = |patch: u32| -> Result<(Vec<u8>, u32), IcedError> {
            let mut a = CodeAssembler::new(32)?;
            body(&mut a, patch)?;
            let mut at = a.create_label();
            a.set_label(&mut at)?;
            for _ in 0..8 {
                a.nop()?;
            }
            a.hlt()?;
            let code = u64::from(bt86::engine::guestcode::CODE);
            let r = a.assemble_options(code, iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
            let patch = r.label_ip(&at)? as u32;
            Ok((r.inner.code_buffer, patch))
        };
        let (_, patch) = pass(0).expect("first pass");
        let (code, again) = pass(patch).expect("second pass");
        assert_eq!(patch, again, "the second pass moved the NOPs");
        code
    }

    /// `mov edi, dst; mov ecx, n; mov eax, value; rep stos` of `width`
    /// bytes (1, 2 or 4).
    pub fn rep_stos(a: &mut CodeAssembler, dst: u32, n: u32, value: u32, width: u32) -> Result<(), IcedError> {
        a.mov(edi, dst)?;
        a.mov(ecx, n)?;
        a.mov(eax, value)?;
        match width {
            1 => a.rep().stosb(),
            2 => a.rep().stosw(),
            _ => a.rep().stosd(),
        }
    }

    /// `mov esi, src; mov edi, dst; mov ecx, n; rep movs` of `width`
    /// bytes (1, 2 or 4).
    pub fn rep_movs(a: &mut CodeAssembler, src: u32, dst: u32, n: u32, width: u32) -> Result<(), IcedError> {
        a.mov(esi, src)?;
        a.mov(edi, dst)?;
        a.mov(ecx, n)?;
        match width {
            1 => a.rep().movsb(),
            2 => a.rep().movsw(),
            _ => a.rep().movsd(),
        }
    }

    /// An interrupt gate (DPL 0, CS 0x08) for `vector` to `handler` in the
    /// IDT at `idt`, which becomes the CPU's (256 gates).
    pub fn interrupt_gate(m: &mut Machine, idt: u32, vector: u32, handler: u32) {
        m.ram.write_u32(PhysAddr(idt + 8 * vector), (handler & 0xffff) | (0x08 << 16));
        m.ram.write_u32(PhysAddr(idt + 8 * vector + 4), (handler & 0xffff_0000) | 0x8e00);
        m.cpu.idtr.base = idt;
        m.cpu.idtr.limit = 0x7ff;
    }

    /// Runs `m` under bt alone within `limits`: its exit and counters.
    pub fn run_bt(m: &mut Machine, limits: bt86::engine::Limits) -> (bt86::engine::Exit, bt86::engine::bt::BtStats) {
        let mut bt = bt86::engine::bt::Bt::new().expect("a translator");
        let exit = bt.run(&mut bt86::engine::interp::Interp::new(true), m, limits);
        (exit, bt.collect_stats())
    }

    /// Paging on with the page directory at `pd` (CR4.PSE set, for the
    /// 4 MiB pages the callers' directories use): `mov cr4/cr3/cr0`.
    pub fn paging_on(a: &mut CodeAssembler, pd: u32) -> Result<(), IcedError> {
        a.mov(eax, cr4)?;
        a.or(eax, 0x10)?;
        a.mov(cr4, eax)?;
        a.mov(eax, pd)?;
        a.mov(cr3, eax)?;
        a.mov(eax, cr0)?;
        a.or(eax, 0x8000_0000u32 as i32)?;
        a.mov(cr0, eax)
    }

    /// `words` words of a fixed pseudo-random pattern at `at`.
    pub fn fill(m: &mut Machine, at: u32, words: u32) {
        for k in 0..words {
            m.ram.write_u32(PhysAddr(at + 4 * k), k.wrapping_mul(0x9e37_79b9));
        }
    }
}

/// Where scripts/fetch-linux.sh caches the Debian kernel.
fn linux_cache() -> PathBuf {
    std::env::var_os("BT86_LINUX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/linux"))
}

/// Says plainly on stdout and stderr that `test` did not run, and why.
fn not_run(test: &str, why: &str) {
    println!("{test}: NOT RUN: {why} (run scripts/fetch-linux.sh)");
    eprintln!("{test}: NOT RUN: {why} (run scripts/fetch-linux.sh)");
}

/// The fetched kernel and initramfs, or `None` after saying plainly that
/// they are not there.
pub fn debian_kernel(test: &str) -> Option<(PathBuf, PathBuf)> {
    let dir = linux_cache();
    let (k, i) = (dir.join("vmlinuz"), dir.join("initramfs.cpio.gz"));
    if k.is_file() && i.is_file() {
        return Some((k, i));
    }
    not_run(test, &format!("no Debian kernel in {}", dir.display()));
    None
}

/// The fetched kernel, initramfs and System.map, or `None` after saying
/// plainly that they are not there.
pub fn debian_kernel_and_map(test: &str) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let (k, i) = debian_kernel(test)?;
    let map = linux_cache().join("System.map");
    if map.is_file() {
        return Some((k, i, map));
    }
    not_run(test, &format!("no System.map in {}", linux_cache().display()));
    None
}
