//! Host resources a guest can drive stay within bt86's budgets, and the
//! guest still runs right when one runs out: linear views that start over
//! at the mapping budget, a guest view given up when its code pages would
//! split it into too many host mappings (a store into code must still be
//! seen), and bt86 under a small address-space limit. The budget is
//! lowered through `BT86_MAP_BUDGET`, as `guard::map_budget` documents.

mod common;

use common::{multiboot_kernel, KERNEL_ENTRY};
use iced_x86::code_asm::*;
use std::process::Command;

/// Runs `bt86 run KERNEL ARGS` with `env`: status and stderr.
fn bt86(kernel: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bt86"))
        .arg("run")
        .arg(kernel)
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run bt86");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The figure after `label` in a `--stats` report.
fn stat(report: &str, label: &str) -> u64 {
    let line = report.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label:?} in {report}"));
    line[label.len()..].split_whitespace().next().and_then(|n| n.parse().ok()).expect("a number")
}

/// `mov al, v; out 0xf4, al`.
fn exit(a: &mut CodeAssembler, v: i32) -> Result<(), IcedError> {
    a.mov(al, v)?;
    a.out(0xf4, al)
}

/// Paging on: 4096 linear pages from 4 MiB up, every one mapped to the
/// same frame (0x300000, which holds 0x1234), read once each; exit 0x21
/// if every read saw 0x1234. (The first 4 MiB: one identity 4 MiB page.)
fn many_linear_pages() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let (mut top, mut fail) = (a.create_label(), a.create_label());
    a.cld()?;
    a.mov(edi, 0x20_0000u32)?; // page directory
    a.mov(ecx, 1024u32)?;
    a.xor(eax, eax)?;
    a.rep().stosd()?;
    a.mov(dword_ptr(0x20_0000), 0x83u32)?; // 4 MiB identity, present, writable
    a.mov(edi, 0x20_1000u32)?; // four page tables: every PTE to the frame
    a.mov(ecx, 4096u32)?;
    a.mov(eax, 0x30_0003u32)?;
    a.rep().stosd()?;
    for k in 0..4u32 {
        a.mov(dword_ptr(0x20_0004 + 4 * k), 0x20_1003 + 0x1000 * k)?;
    }
    a.mov(dword_ptr(0x30_0000), 0x1234u32)?;
    common::guest::paging_on(&mut a, 0x20_0000)?;
    a.mov(esi, 0x40_0000u32)?;
    a.mov(ecx, 4096u32)?;
    a.set_label(&mut top)?;
    a.cmp(dword_ptr(esi), 0x1234)?;
    a.jne(fail)?;
    a.add(esi, 4096)?;
    a.dec(ecx)?;
    a.jnz(top)?;
    exit(&mut a, 0x21)?;
    a.set_label(&mut fail)?;
    exit(&mut a, 0x10)?;
    a.assemble(u64::from(KERNEL_ENTRY))
}

#[test]
fn linear_views_start_over_at_the_mapping_budget() {
    let k = multiboot_kernel("linear-budget", &many_linear_pages().expect("asm"));
    for engine in ["interp", "bt", "trap"] {
        let (status, err) = bt86(&k, &["--engine", engine, "--stats"], &[("BT86_MAP_BUDGET", "64")]);
        assert_eq!(status, 0x43, "{engine}: {err}");
        if engine == "bt" {
            // 4096 pages through views of 64: they started over often, and
            // were not given up.
            assert!(stat(&err, "bt view budget clears") >= 4096 / 64 - 1, "{err}");
            assert_eq!(stat(&err, "bt views given up"), 0, "{err}");
        }
    }
}

/// Paging off: RETs in 64 isolated pages from 4 MiB on (every other
/// page), each called once, so each is a code page by itself; then the
/// first one is rewritten to `mov al, 5; ret` and called again: AL must
/// be 5 (the store into code was seen). Exit 0x21 if so.
fn isolated_code_pages() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let (mut top, mut fail) = (a.create_label(), a.create_label());
    a.mov(esp, 0x9_0000u32)?;
    a.mov(esi, 0x40_0000u32)?;
    a.mov(ecx, 64u32)?;
    a.set_label(&mut top)?;
    a.mov(byte_ptr(esi), 0xc3)?;
    a.push(ecx)?;
    a.call(esi)?;
    a.pop(ecx)?;
    a.add(esi, 0x2000)?;
    a.dec(ecx)?;
    a.jnz(top)?;
    // mov al, 5 (b0 05); ret (c3)
    a.mov(dword_ptr(0x40_0000), 0x00c3_05b0u32)?;
    a.xor(eax, eax)?;
    a.mov(esi, 0x40_0000u32)?;
    a.call(esi)?;
    a.cmp(al, 5)?;
    a.jne(fail)?;
    exit(&mut a, 0x21)?;
    a.set_label(&mut fail)?;
    exit(&mut a, 0x10)?;
    a.assemble(u64::from(KERNEL_ENTRY))
}

#[test]
fn a_guest_view_past_the_budget_is_given_up_and_code_stores_are_still_seen() {
    let k = multiboot_kernel("code-budget", &isolated_code_pages().expect("asm"));
    for (budget, given_up) in [("64", true), ("8192", false)] {
        for engine in ["interp", "bt"] {
            let (status, err) = bt86(&k, &["--engine", engine, "--stats"], &[("BT86_MAP_BUDGET", budget)]);
            assert_eq!(status, 0x43, "{engine}, budget {budget}: {err}");
            if engine == "bt" {
                // 64 isolated code pages split the view's RAM mapping at 128
                // edges: past a budget of 64, within one of 8192.
                assert_eq!(stat(&err, "bt views given up") > 0, given_up, "budget {budget}: {err}");
            }
        }
    }
}

#[test]
fn under_a_small_address_space_limit_bt86_runs_or_says_why() {
    let k = multiboot_kernel("as-limit", &many_linear_pages().expect("asm"));
    let bin = env!("CARGO_BIN_EXE_bt86");
    // ulimit -v in KiB: below what the views and the budget window reserve,
    // and around it.
    for kib in [1_000_000, 3_000_000, 8_000_000] {
        for engine in ["interp", "bt", "trap"] {
            let script = format!("ulimit -v {kib} && exec \"$0\" run \"$1\" --engine {engine}");
            let out = Command::new("sh")
                .args(["-c", &script, bin, k.to_str().expect("path")])
                .stdin(std::process::Stdio::null())
                .output()
                .expect("run sh");
            let err = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0x43) => {}
                Some(14) => assert!(err.lines().count() == 1 && err.contains("host failure"), "{engine}: {err}"),
                other => panic!("{engine} under RLIMIT_AS {kib} KiB: status {other:?}: {err}"),
            }
            println!("{engine}, RLIMIT_AS {kib} KiB: status {:?} {}", out.status.code(), err.trim());
        }
    }
}
