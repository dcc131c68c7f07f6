//! The trap-and-emulate monitor (`system/depriv.rs`) beyond the pitfall
//! table: its progress watch (an interrupt starved by a clear virtual IF,
//! a kernel panic on the console), the pitfall tracer computing a
//! sensitive instruction both ways, and the monitor's region at the top
//! of the address space, which translated code never maps. Each guest is
//! hand-assembled here; what it must do is reasoned in its comments.

mod common;
use common::guest;

use bt86::engine::interp::Interp;
use bt86::engine::{Exit, Limits};
use bt86::memory::PhysAddr;
use bt86::system::depriv::{Stall, MONITOR_BASE, PANIC_TEXT};
use bt86::Machine;
use iced_x86::code_asm::*;
use std::time::Duration;

const CODE: u32 = bt86::engine::guestcode::CODE;
const IDT: u32 = 0x1000;
const TIMER_HANDLER: u32 = 0x2000;

fn assemble(program: impl Fn(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).expect("assembler");
    program(&mut a).expect("program");
    a.assemble(u64::from(CODE)).expect("assemble")
}

/// Runs `m` under the monitor with modelled traps: its exit and counters.
fn run_trap(m: &mut Machine, limits: Limits, pitfalls: bool) -> (Exit, bt86::engine::trap::TrapStats) {
    let (exit, _, stats) = bt86::engine::trap::run(&mut Interp::new(true), m, limits, false, pitfalls, |_| {});
    (exit, stats)
}

/// The PIT's channel 0 at mode 2 with a count of 1000 (about 838 µs of
/// virtual time a tick) and the master PIC with IRQ 0 alone unmasked, at
/// vectors from 0x20.
fn timer_on(a: &mut CodeAssembler) -> Result<(), IcedError> {
    for (port, v) in [(0x43, 0x34u32), (0x40, 0xe8), (0x40, 0x03)] {
        a.mov(al, v)?;
        a.out(port, al)?;
    }
    for (port, v) in [(0x20, 0x11u32), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01), (0x21, 0xfe)] {
        a.mov(al, v)?;
        a.out(port, al)?;
    }
    Ok(())
}

/// A guest that starts the timer, then spins (`jmp $`) with IF as `sti`
/// leaves it; the timer's handler acknowledges the PIC and returns.
fn spinner(sti: bool) -> Machine {
    let code = assemble(|a| {
        timer_on(a)?;
        if sti {
            a.sti()?;
        } else {
            a.cli()?;
        }
        let mut here = a.create_label();
        a.set_label(&mut here)?;
        a.jmp(here)
    });
    let mut m = guest::flat_machine(&code, 2 << 20);
    m.ram.slice_mut(PhysAddr(TIMER_HANDLER), 5).expect("handler").copy_from_slice(&[0xb0, 0x20, 0xe6, 0x20, 0xcf]);
    guest::interrupt_gate(&mut m, IDT, 0x20, TIMER_HANDLER);
    m
}

/// With the virtual IF clear the timer's request waits forever: the
/// monitor says so once it has waited `STARVED_NS` (2 s) of virtual time,
/// about 2 G iterations of the loop, well inside the 4 G limit.
#[test]
fn an_interrupt_starved_by_a_clear_virtual_if_stops_the_run() {
    let limits =
        Limits { max_insns: Some(4_000_000_000), timeout: Some(Duration::from_secs(300)), max_exceptions: None };
    let mut m = spinner(false);
    let (exit, stats) = run_trap(&mut m, limits, false);
    match exit {
        Exit::Stalled(Stall::Starved { cs: sel, .. }) => assert_eq!(sel, 0x08),
        other => panic!("expected the starvation stop, got {other:?}"),
    }
    assert!(m.clock.retired < 3_000_000_000, "stopped late: {}", m.clock.retired);
    assert_eq!(stats.monitor.reflected_interrupts, 0);
}

/// The same guest with IF set takes its timer interrupts (each reflected)
/// and runs to the instruction limit, past the 2 s the watch waits.
#[test]
fn with_the_virtual_if_set_the_timer_is_delivered_and_the_watch_is_quiet() {
    let limits =
        Limits { max_insns: Some(2_500_000_000), timeout: Some(Duration::from_secs(300)), max_exceptions: None };
    let mut m = spinner(true);
    let (exit, stats) = run_trap(&mut m, limits, false);
    assert_eq!(exit, Exit::InsnLimit);
    // 2.5 G instructions of about 838 µs (838 k instructions) a tick.
    assert!((2_500..=3_500).contains(&stats.monitor.reflected_interrupts), "{:?}", stats.monitor);
}

/// A guest that prints a Linux panic line on COM1 and spins: the monitor
/// stops it there with the line; bt, bound by the guest contract (QEMU
/// spins with such a kernel), runs on to its limit.
#[test]
fn a_kernel_panic_on_the_console_stops_the_run_under_the_monitor_only() {
    let line = format!("[    1.000000] {PANIC_TEXT}: Attempted to kill init!");
    let build = || {
        let text = format!("booting\n{line}\n");
        let code = assemble(|a| {
            a.mov(dx, 0x3f8u32)?;
            for &b in text.as_bytes() {
                a.mov(al, u32::from(b))?;
                a.out(dx, al)?;
            }
            let mut here = a.create_label();
            a.set_label(&mut here)?;
            a.jmp(here)
        });
        guest::flat_machine(&code, 2 << 20)
    };
    let limits = Limits { max_insns: Some(10_000_000), ..Limits::default() };
    let mut m = build();
    let (exit, _) = run_trap(&mut m, limits, false);
    assert_eq!(exit, Exit::Stalled(Stall::Panic(line.clone())));
    let mut m = build();
    let (exit, _) = guest::run_bt(&mut m, limits);
    assert_eq!(exit, Exit::InsnLimit);
}

/// The tracer computes each sensitive instruction both ways. At CPL 0 with
/// IF clear, PUSHF pushes IF = 0 on ring 0 but the real IF, the monitor's
/// (set), deprivileged: one difference, which the guest also sees. PUSH DS
/// and POP DS of the ring-0 data selector 0x10 do the same both ways (the
/// shadow's DPL 1 admits RPL 0 at CPL 1): checked, not logged.
#[test]
fn the_tracer_logs_pushf_and_not_what_runs_the_same() {
    const OUT: u32 = 0x30000;
    let code = assemble(|a| {
        a.cli()?;
        a.pushfd()?;
        a.pop(eax)?;
        a.mov(dword_ptr(OUT), eax)?;
        a.push(ds)?;
        a.pop(ds)?;
        a.hlt()
    });
    let mut m = guest::flat_machine(&code, 2 << 20);
    let (exit, _) = run_trap(&mut m, Limits { max_insns: Some(1000), ..Limits::default() }, true);
    assert_eq!(exit, Exit::HaltForever);
    assert_ne!(m.ram.read_u32(PhysAddr(OUT)) & 0x200, 0, "the guest saw the real IF");
    let log = m.monitor.as_ref().and_then(|mon| mon.log.as_deref()).expect("a log");
    assert_eq!((log.checked, log.differed), (3, 1), "{log:?}");
    let t = &log.by_insn["pushfd"];
    assert_eq!(t.first, vec![CODE + 1], "{code:02x?}");
    // ESP is CODE at entry: PUSHF stores at CODE - 4.
    let at = format!("[{:#010x}]", CODE - 4);
    assert!(t.example.0.starts_with(&format!("{at}=0x")), "{:?}", t.example);
    let (ring0, depriv) = (&t.example.0, &t.example.1);
    let value = |s: &str| u32::from_str_radix(s.rsplit("0x").next().unwrap_or(""), 16).expect("a value");
    assert_eq!(value(ring0) & 0x200, 0, "{ring0}");
    assert_eq!(value(depriv) & 0x200, 0x200, "{depriv}");
}

/// The monitor's region: with paging, a 4 MiB page maps linear
/// 0xffc00000 to physical 4 MiB. Under the monitor, translated code never
/// maps it (the guest's segments are cut below it), so each access there
/// reaches the monitor, which emulates it: the results are the same as
/// under bt, and each of the loop's 3 accesses a round is counted.
#[test]
fn accesses_in_the_monitors_region_are_emulated_with_the_same_results() {
    const PD: u32 = 0x3000;
    const ROUNDS: u32 = 100;
    let build = || {
        let code = assemble(|a| {
            guest::paging_on(a, PD)?;
            a.mov(dword_ptr(MONITOR_BASE + 0x10), 7u32)?;
            a.mov(ecx, ROUNDS)?;
            let mut top = a.create_label();
            a.set_label(&mut top)?;
            a.mov(eax, dword_ptr(MONITOR_BASE + 0x10))?;
            a.add(eax, ecx)?;
            a.mov(dword_ptr(MONITOR_BASE + 0x10), eax)?;
            a.mov(dword_ptr(MONITOR_BASE + 0x14), ecx)?;
            a.dec(ecx)?;
            a.jnz(top)?;
            a.hlt()
        });
        let mut m = guest::flat_machine(&code, 8 << 20);
        // PDE 0: the first 4 MiB, identity; PDE 1023: 0xffc00000 -> 4 MiB.
        m.ram.write_u32(PhysAddr(PD), 0x83);
        m.ram.write_u32(PhysAddr(PD + 4 * 1023), 0x40_0083);
        m
    };
    let limits = Limits { max_insns: Some(100_000), ..Limits::default() };
    let mut m = build();
    let (exit, stats) = run_trap(&mut m, limits, false);
    assert_eq!(exit, Exit::HaltForever);
    let sum = 7 + ROUNDS * (ROUNDS + 1) / 2;
    assert_eq!(m.ram.read_u32(PhysAddr(0x40_0010)), sum);
    assert_eq!(m.ram.read_u32(PhysAddr(0x40_0014)), 1);
    assert_eq!(stats.monitor.region, u64::from(1 + 3 * ROUNDS), "{:?}", stats.monitor);
    let mut m = build();
    let (exit, _) = guest::run_bt(&mut m, limits);
    assert_eq!(exit, Exit::HaltForever);
    assert_eq!(m.ram.read_u32(PhysAddr(0x40_0010)), sum);
}

fn bt86(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_bt86")).args(args).output().expect("bt86 runs")
}

/// `--pitfalls` on the pitfall kernel: the rows tests/pitfalls.rs shows
/// differing are traced at their instructions, with counts and addresses.
#[test]
fn pitfalls_flag_reports_the_sensitive_instructions_that_differed() {
    let image = common::images_dir().join("bin/pitfalls.elf");
    let image = image.to_str().expect("a UTF-8 path");
    let out = bt86(&["run", image, "--engine", "trap", "--pitfalls"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("pitfalls: "), "{err}");
    for what in ["sgdt", "sidt", "sldt", "str", "smsw", "pushfd", "popfd", "iretd", "push cs", "mov ss", "lar", "lsl"] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(&format!("{what} ")) && l.contains("first at")),
            "no {what} row in:\n{err}"
        );
    }
    assert!(!err.lines().any(|l| l.trim_start().starts_with("verr ")), "VERR matches ring 0 under compression:\n{err}");
    let out = bt86(&["run", image, "--engine", "bt", "--pitfalls"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--engine trap"), "{err}");
}
