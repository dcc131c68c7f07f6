//! `bt86 explain` and `bt86 run --trace`, through the built binary.

use std::process::Command;

const HELLO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/guest-images/bin/hello.elf");
const HELLO_OUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/guest-images/expected/hello.out");

fn bt86(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bt86")).args(args).output().expect("bt86 runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn explain_entry_point() {
    let (code, out, err) = bt86(&["explain", HELLO]);
    assert_eq!(code, Some(0), "stderr: {err}");
    // hello's entry point, paging off: EIP = physical.
    assert!(out.starts_with("guest block at EIP 0x0010000c (physical 0x0010000c)"), "{out}");
    assert!(out.contains("memory mode Physical"), "{out}");
    // The guest listing: address, bytes, instruction, decision, kind.
    let cli = out.lines().find(|l| l.trim_start().starts_with("0010000c")).expect("a line for the first instruction");
    assert!(cli.contains(" fa ") && cli.contains("cli") && cli.contains("Callout(Privileged)"), "{cli}");
    // CLI runs inline on the virtual EFLAGS (its callout is the slow path).
    assert!(cli.ends_with("Inline"), "{cli}");
    let mov_cs = out.lines().find(|l| l.trim_start().starts_with("00100012")).expect("a line for mov [m], cs");
    assert!(mov_cs.contains("Callout(Sensitive)") && mov_cs.ends_with("Callout"), "{mov_cs}");
    assert!(out.contains("IdentMem"), "{out}");
    // The host listing, annotated per guest instruction, ending at the tail.
    assert!(out.contains("host code (x86-64)"), "{out}");
    assert!(out.contains("; guest 0010000c  cli  [Inline]"), "{out}");
    assert!(out.contains("; guest 00100012  mov     [0x104004], cs  [Callout]"), "{out}");
    assert!(out.contains("; block tail:"), "{out}");
    assert!(out.contains("call    r11"), "{out}");
    assert!(out.contains("; runtime exit routine"), "{out}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn explain_at_explicit_address() {
    let (code, out, err) = bt86(&["explain", HELLO, "--at", "0x10004f"]);
    assert_eq!(code, Some(0), "stderr: {err}");
    assert!(out.starts_with("guest block at EIP 0x0010004f"), "{out}");
    assert!(out.contains("; guest 0010004f"), "{out}");
}

#[test]
fn explain_shows_the_path_the_runtime_translates() {
    // bytecode's LOAD handler at 0x1002d8 ends with JMP 0x1000f0; the
    // path goes on there, back at JBE 0x100080 (a backward Jcc), and
    // through JA's fall-through to the dispatch's indirect JMP
    // (objdump -d guest-images/bin/bytecode.elf).
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/guest-images/bin/bytecode.elf");
    let (code, out, err) = bt86(&["explain", image, "--at", "0x1002d8"]);
    assert_eq!(code, Some(0), "stderr: {err}");
    let line = |at: &str| out.lines().find(|l| l.trim_start().starts_with(at)).unwrap_or_else(|| panic!("{at}: {out}"));
    assert!(line("001002ec").contains("jmp") && line("001002ec").ends_with("Joined"), "{out}");
    assert!(line("001000fc").contains("jbe") && line("001000fc").ends_with("Exit"), "{out}");
    assert!(line("00100085").contains("jmp") && line("00100085").contains("dword ptr"), "{out}");
    // The JMP emits nothing: its annotation and its target's share an offset.
    assert!(out.contains("[Joined]\n  ; guest 001000f0  mov     ecx, [esi+edx*4]  [IdentMem]\n"), "{out}");
    // The JBE the path follows to its target leaves on the inverse
    // condition for its fall-through.
    assert!(out.contains("; guest 001000fc  jbe     short 0x00100080  [Exit]"), "{out}");
    let jbe = out.split("; guest 001000fc").nth(1).expect("the JBE's host code");
    assert!(jbe.lines().nth(1).is_some_and(|l| l.contains(" ja ")), "{jbe}");
}

#[test]
fn explain_bad_addresses() {
    for (at, what) in [("0x20000000", "not in guest RAM"), ("zz", "not an address")] {
        let (code, out, err) = bt86(&["explain", HELLO, "--at", at]);
        assert!(code.is_some_and(|c| c != 0), "--at {at}: status {code:?}");
        assert!(out.is_empty(), "--at {at}: {out}");
        assert_eq!(err.lines().count(), 1, "--at {at}: {err}");
        assert!(err.starts_with("bt86: ") && err.contains(what), "--at {at}: {err}");
    }
}

#[test]
fn run_trace_blocks() {
    let (code, out, err) = bt86(&["run", HELLO, "--engine", "bt", "--trace", "blocks"]);
    assert_eq!(code, Some(1), "stderr: {err}");
    let expected = std::fs::read_to_string(HELLO_OUT).unwrap();
    assert_eq!(out, expected);
    let traces: Vec<&str> = err.lines().filter(|l| l.starts_with("bt: block ")).collect();
    assert!(!traces.is_empty(), "{err}");
    assert!(traces[0].starts_with("bt: block eip=0010000c phys=0010000c insns=15 "), "{}", traces[0]);
    assert!(traces.iter().all(|l| l.contains(" mode=")), "{err}");
}

#[test]
fn run_trace_callouts() {
    let (code, out, err) = bt86(&["run", HELLO, "--engine", "bt", "--trace", "callouts"]);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert_eq!(out, std::fs::read_to_string(HELLO_OUT).unwrap());
    // The first callout: MOV [m], CS (CLI before it runs inline).
    assert!(err.lines().next().is_some_and(|l| l.starts_with("bt: callout eip=00100012 mov  mov ")), "{err}");
}

#[test]
fn trace_needs_the_translator() {
    let (code, _, err) = bt86(&["run", HELLO, "--engine", "interp", "--trace", "blocks"]);
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    // The default engine is the translator.
    let (code, _, err) = bt86(&["run", HELLO, "--trace", "blocks"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.lines().any(|l| l.starts_with("bt: ")), "{err}");
}
