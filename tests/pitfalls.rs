//! `bt86 pitfalls`: every row of the pitfall table under every engine,
//! built from what the pitfall kernel printed. The oracle for which rows
//! must differ under trap-and-emulate is Robin & Irvine's list of
//! sensitive unprivileged IA-32 instructions (USENIX Security 2000; see
//! ../shared/REFERENCES.md), with IRET added as later lists do, less the
//! rows the shadowing monitor hides (`MONITOR_HIDES`); the
//! privileged control rows must match, since trapping them works. That the
//! kernel's ring-0 expectations are what ring-0 hardware does is checked
//! against QEMU by tests/images.rs (guest-images/expected/pitfalls.out).

use bt86::pitfalls::{self, explain};
use bt86::session::{EngineKind, TrapMode};
use std::collections::BTreeSet;
use std::process::Command;

/// Robin & Irvine's instructions, as the kernel names its checks.
const SENSITIVE: &[&str] = &[
    "sgdt", "sidt", "sldt", "str", "smsw", "pushf", "popf", "iret", "push cs", "mov ss", "pop ds", "lar", "lsl",
    "verr", "verw", "call far", "jmp far", "ret far", "int",
];

/// Rows whose probe the shadowing monitor answers as ring 0 would. By the
/// SDM's checks, with DPL 0 compressed to 1: VERR and VERW of a ring-0
/// data segment test DPL >= max(CPL, RPL), which DPL 1 passes at CPL 1;
/// RETF to the RPL-1 selector PUSH CS gave is a same-level return into a
/// code segment whose shadow DPL, 1, equals that RPL. By the shadow IDT:
/// INT n enters the monitor, which reflects it writing the frame ring 0
/// would (CS with the virtual CPL 0 as RPL, no stack switch). The
/// instructions stay sensitive (LAR and LSL still show the compressed DPL
/// and the truncated limit; INT n is a trap into the monitor).
const MONITOR_HIDES: &[&str] = &["verr", "verw", "ret far", "int"];

fn differing(engine: EngineKind) -> (BTreeSet<String>, usize) {
    let rows = pitfalls::run(engine).unwrap_or_else(|e| panic!("{e}"));
    let differ = rows.iter().filter(|c| !c.matches()).map(|c| c.instruction.clone()).collect();
    (differ, rows.len())
}

#[test]
fn every_row_matches_ring_0_under_the_faithful_engines() {
    for engine in [EngineKind::Interp, EngineKind::Bt] {
        let (differ, n) = differing(engine);
        assert!(n >= SENSITIVE.len(), "{}: only {n} rows", engine.name());
        assert!(differ.is_empty(), "{}: rows differ from ring 0: {differ:?}", engine.name());
    }
}

#[test]
fn exactly_the_sensitive_rows_the_monitor_leaves_differ_under_trap_and_emulate() {
    let want: BTreeSet<String> =
        SENSITIVE.iter().filter(|s| !MONITOR_HIDES.contains(s)).map(|s| s.to_string()).collect();
    let mut seen = Vec::new();
    for mode in [TrapMode::Real, TrapMode::Simulated] {
        let engine = EngineKind::Trap(mode);
        let rows = pitfalls::run(engine).unwrap_or_else(|e| panic!("{e}"));
        let names: BTreeSet<String> = rows.iter().map(|c| c.instruction.clone()).collect();
        let missing: Vec<_> = SENSITIVE.iter().filter(|s| !names.contains(**s)).collect();
        assert!(missing.is_empty(), "the kernel lacks rows: {missing:?}");
        let differ: BTreeSet<String> = rows.iter().filter(|c| !c.matches()).map(|c| c.instruction.clone()).collect();
        assert_eq!(differ, want, "{}: differing rows", engine.name());
        // The privileged rows are there, and trapping gets them right.
        assert!(rows.iter().any(|c| !want.contains(&c.instruction)), "no privileged control rows");
        seen.push(rows);
    }
    assert_eq!(seen[0], seen[1], "real and simulated traps must look the same to the guest");
}

#[test]
fn every_row_is_explained_and_classified_like_the_oracle() {
    let rows = pitfalls::run(EngineKind::Interp).unwrap_or_else(|e| panic!("{e}"));
    for c in &rows {
        let e = explain(&c.instruction).unwrap_or_else(|| panic!("row {:?} has no explanation", c.instruction));
        assert_eq!(e.sensitive, SENSITIVE.contains(&c.instruction.as_str()), "{}", c.instruction);
    }
}

fn bt86(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bt86")).args(args).output().expect("run bt86")
}

#[test]
fn cli_table_json_and_demo() {
    let out = bt86(&["pitfalls", "--engine", "trap-sim", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = v["rows"].as_array().expect("rows");
    let sgdt = rows.iter().find(|r| r["instruction"] == "sgdt").expect("sgdt row");
    assert_eq!(sgdt["engines"]["trap-sim"]["matches"], false);
    assert_eq!(sgdt["sensitive"], true);

    let out = bt86(&["pitfalls"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for heading in ["trap-and-emulate", "bt", "interp", "DIFFERS", "ok"] {
        assert!(text.contains(heading), "table lacks {heading:?}:\n{text}");
    }

    // No arguments: the demo, trap-and-emulate against bt.
    let out = bt86(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sgdt") && text.contains("DIFFERS"), "demo:\n{text}");
    assert!(text.contains("the same under both") && text.contains("cli"), "demo:\n{text}");

    let out = bt86(&["pitfalls", "--engine", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
}
