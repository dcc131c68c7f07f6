//! The command line on bad input: a one-line message naming the cause and
//! the documented even status, never a panic.

mod common;

use common::multiboot_kernel as kernel;
use std::process::{Command, Output};

fn bt86(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bt86")).args(args).output().expect("run bt86")
}

fn check(out: &Output, status: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(status), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn missing_image() {
    check(&bt86(&["run", "/nonexistent/kernel.elf"]), 4, "cannot read kernel");
}

#[test]
fn not_a_multiboot_image() {
    let path = std::env::temp_dir().join(format!("bt86-cli-{}-junk.bin", std::process::id()));
    std::fs::write(&path, vec![0x5a; 20000]).unwrap();
    check(&bt86(&["run", path.to_str().unwrap()]), 4, "not a Multiboot kernel");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = bt86(&["run", "--no-such-flag", "k.elf"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn hlt_with_interrupts_off() {
    // cli; hlt
    let k = kernel("hlt", &[0xfa, 0xf4]);
    check(&bt86(&["run", k.to_str().unwrap()]), 10, "halted");
}

#[test]
fn triple_fault() {
    // int3 with QEMU's entry IDTR (base 0, limit 0x3ff) over zeroed memory:
    // no valid gate → #GP → #DF → shutdown.
    let k = kernel("triple", &[0xcc]);
    check(&bt86(&["run", k.to_str().unwrap()]), 6, "triple fault");
}

#[test]
fn unsupported_instruction() {
    // movaps xmm0, xmm1: SSE is not implemented (CPUID reports none).
    let k = kernel("sse", &[0x0f, 0x28, 0xc1]);
    check(&bt86(&["run", k.to_str().unwrap()]), 8, "movaps");
}

#[test]
fn unsupported_instruction_under_lockstep() {
    // mov eax, 1; movaps xmm0, xmm1: the translated block's callout meets the
    // unsupported instruction, which does not execute (EIP stays on it);
    // lockstep follows the interpreter to the same point and the run ends
    // with status 8, not as a divergence (16).
    let k = kernel("sse-lockstep", &[0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x28, 0xc1]);
    for engine in ["bt", "trap"] {
        let out = bt86(&["run", k.to_str().unwrap(), "--engine", engine, "--lockstep"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "{engine}: {err}");
        assert!(
            err.contains("unsupported instruction `movaps xmm0,xmm1` at 0x00100025 (at 0008:00100025)"),
            "{engine}: {err}"
        );
        assert!(err.contains("no divergence"), "{engine}: {err}");
    }
}

#[test]
fn guest_exit_status_is_odd() {
    // mov al, 0x21; out 0xf4, al → status (0x21 << 1) | 1
    let k = kernel("exit", &[0xb0, 0x21, 0xe6, 0xf4]);
    let out = bt86(&["run", k.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0x43));
    assert!(out.stderr.is_empty());
}

#[test]
fn instruction_limit() {
    // jmp $
    let k = kernel("spin", &[0xeb, 0xfe]);
    check(&bt86(&["run", k.to_str().unwrap(), "--max-insns", "1000"]), 12, "instruction limit");
}

#[test]
fn memory_past_ram_is_open_bus_under_every_engine() {
    // mov eax, [0xfec00000]; mov [0xf0000000], eax (both past 128 MiB of
    // RAM: reads all ones, the write is dropped); cmp eax, -1; jne fail;
    // exit 0x21; fail: exit 0x10.
    let code = [
        0xa1, 0x00, 0x00, 0xc0, 0xfe, 0xa3, 0x00, 0x00, 0x00, 0xf0, 0x83, 0xf8, 0xff, 0x75, 0x04, 0xb0, 0x21, 0xe6,
        0xf4, 0xb0, 0x10, 0xe6, 0xf4,
    ];
    let k = kernel("openbus", &code);
    for engine in ["interp", "bt", "trap"] {
        let out = bt86(&["run", k.to_str().unwrap(), "--engine", engine, "--stats"]);
        assert_eq!(out.status.code(), Some(0x43), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
        if engine == "bt" {
            // Paging off: both accesses ran as translated code and faulted
            // in the guest view.
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("bt view faults         2 "), "{err}");
        }
    }
}

#[test]
fn trace_perf_names_every_translation_in_a_perf_map() {
    // A loop that counts ECX down: one block (the loop, unrolled into one
    // translation) and the exit: mov ecx, 1000; l: dec ecx; jnz l; mov al,
    // 0x21; out 0xf4, al.
    let code = [0xb9, 0xe8, 0x03, 0x00, 0x00, 0x49, 0x75, 0xfd, 0xb0, 0x21, 0xe6, 0xf4];
    let k = kernel("perfmap", &code);
    let child = Command::new(env!("CARGO_BIN_EXE_bt86"))
        .args(["run", k.to_str().unwrap(), "--engine", "bt", "--trace", "perf"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run bt86");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for bt86");
    assert_eq!(out.status.code(), Some(0x43), "{}", String::from_utf8_lossy(&out.stderr));
    let path = format!("/tmp/perf-{pid}.map");
    let map = std::fs::read_to_string(&path).expect("the perf map");
    let _ = std::fs::remove_file(&path);
    // `START SIZE NAME` per line, hex: the runtime, then the translations.
    let lines: Vec<Vec<&str>> = map.lines().map(|l| l.split(' ').collect()).collect();
    assert!(lines.iter().all(|l| l.len() == 3 && u64::from_str_radix(l[0], 16).is_ok()), "{map}");
    assert_eq!(lines[0][2], "bt86_runtime", "{map}");
    assert!(lines.iter().any(|l| l[2].starts_with("bt:00100025/")), "the loop at 0x100025: {map}");
}

#[test]
fn addresses_wrap_around_at_4_gib_under_every_engine() {
    // The guest's address arithmetic is 32-bit: [eax+0x3000] with EAX =
    // 0xfffff000 is 0x2000, [ecx*4] with ECX = 0x40000800 is 0x2000 too,
    // [esi-0x20] with ESI = 0x10 is 0xfffffff0 (past RAM: all ones), and a
    // store through a wrapping address lands at its low address. Under bt
    // the direct form [r15 + reg*scale + disp] lands in the guest view's
    // guard there and faults to the slow path.
    //   mov dword [0x2000], 0x12345678; mov eax, 0xfffff000
    //   mov ebx, [eax+0x3000]; cmp ebx, 0x12345678; jne fail
    //   mov ecx, 0x40000800; mov edx, [ecx*4]; cmp edx, ebx; jne fail
    //   mov esi, 0x10; mov edi, [esi-0x20]; cmp edi, -1; jne fail
    //   mov [eax+0x3004], ebx; cmp ebx, [0x2004]; jne fail
    //   exit 0x21; fail: exit 0x10
    let code = [
        0xc7, 0x05, 0x00, 0x20, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12, 0xb8, 0x00, 0xf0, 0xff, 0xff, 0x8b, 0x98, 0x00,
        0x30, 0x00, 0x00, 0x81, 0xfb, 0x78, 0x56, 0x34, 0x12, 0x75, 0x2f, 0xb9, 0x00, 0x08, 0x00, 0x40, 0x8b, 0x14,
        0x8d, 0x00, 0x00, 0x00, 0x00, 0x39, 0xda, 0x75, 0x1f, 0xbe, 0x10, 0x00, 0x00, 0x00, 0x8b, 0x7e, 0xe0, 0x83,
        0xff, 0xff, 0x75, 0x12, 0x89, 0x98, 0x04, 0x30, 0x00, 0x00, 0x3b, 0x1d, 0x04, 0x20, 0x00, 0x00, 0x75, 0x04,
        0xb0, 0x21, 0xe6, 0xf4, 0xb0, 0x10, 0xe6, 0xf4,
    ];
    let k = kernel("wrap", &code);
    for engine in ["interp", "bt", "trap"] {
        let out = bt86(&["run", k.to_str().unwrap(), "--engine", engine, "--stats"]);
        assert_eq!(out.status.code(), Some(0x43), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
        if engine == "bt" {
            // The four wrapping accesses faulted in the guest view.
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("bt view faults         4 "), "{err}");
        }
    }
}

#[test]
fn cpu_vendor_picks_the_undefined_flags_and_bt_refuses_a_foreign_one() {
    use bt86::cpu::alu::Vendor;
    // ZF is undefined after MUL: Intel clears it, AMD leaves it (the
    // vendor table in src/cpu/alu/vendor/mod.rs, from each vendor's CPUs).
    //   xor eax, eax (ZF = 1); mov al, 3; mov bl, 5; mul bl; jz amd
    //   exit 0x11 (Intel: status 0x23); amd: exit 0x22 (AMD: status 0x45)
    let code =
        [0x31, 0xc0, 0xb0, 0x03, 0xb3, 0x05, 0xf6, 0xe3, 0x74, 0x04, 0xb0, 0x11, 0xe6, 0xf4, 0xb0, 0x22, 0xe6, 0xf4];
    let k = kernel("vendor", &code);
    let k = k.to_str().unwrap();
    let status = |v: Vendor| if v == Vendor::Intel { 0x23 } else { 0x45 };
    // Without --engine: bt for the host's vendor, the interpreter for the
    // other (which only it can follow).
    for v in Vendor::ALL {
        let out = bt86(&["run", k, "--cpu-vendor", v.name()]);
        assert_eq!(out.status.code(), Some(status(v)), "as {v}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // By default every engine follows the host.
    let host = Vendor::host();
    for engine in ["interp", "bt", "trap"] {
        let out = bt86(&["run", k, "--engine", engine]);
        assert_eq!(out.status.code(), Some(status(host)), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let other = Vendor::ALL.into_iter().find(|&v| v != host).unwrap();
    for engine in ["bt", "trap"] {
        check(&bt86(&["run", k, "--engine", engine, "--cpu-vendor", other.name()]), 2, "needs --engine interp");
    }
    // The default engine is the translator (its counters in --stats).
    let out = bt86(&["run", k, "--stats"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("bt dispatches"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bt86(&["run", k, "--cpu-vendor", "cyrix"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown CPU vendor"));
}
