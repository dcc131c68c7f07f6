//! REP STOS on the host: with paging off, bt runs REP STOS as the host's
//! own REP STOS on the guest view (`translator::block`, `Emitter::
//! rep_string`, as for REP MOVS) when the budget covers every iteration,
//! and when the fill faults part-way (past the end of RAM, wrapping below
//! address 0, a store into a page holding code) it hands the rest to the
//! interpreter. The interpreter, which runs every iteration itself, is the
//! oracle: both engines must end with the same exit, CPU state, retired
//! count (each iteration retires as one instruction) and RAM — run to the
//! end and stopped by instruction limits all through the fills.

mod common;
use common::guest;

use bt86::cpu::state::reg::{EBX, ESI};
use bt86::engine::guestcode::compare_stopped;
use bt86::engine::{Exit, Limits};
use bt86::memory::PhysAddr;
use bt86::Machine;
use iced_x86::code_asm::*;

const RAM: u32 = 2 << 20;

/// The guest at `CODE` up to its eight NOPs (`guest::with_nops_to_patch`):
/// `patch` is their address, which case F overwrites. ESI is set
/// first and must come through every fill untouched (STOS moves EDI only).
fn program(a: &mut CodeAssembler, patch: u32) -> Result<(), IcedError> {
    a.mov(esp, 0xf000u32)?;
    a.mov(esi, 0x1234_5678u32)?;
    a.xor(ebx, ebx)?;
    a.cld()?;
    // A: plain fills of each width.
    guest::rep_stos(a, 0x20000, 1000, 0xa5, 1)?;
    guest::rep_stos(a, 0x21001, 333, 0xbeef, 2)?;
    guest::rep_stos(a, 0x22002, 777, 0xdead_beef, 4)?;
    // C: stores running past the end of RAM.
    guest::rep_stos(a, RAM - 16, 40, 0x1111_2222, 4)?;
    // D: downwards, wrapping below address 0.
    a.std()?;
    guest::rep_stos(a, 0x20, 0x60, 0x77, 1)?;
    a.cld()?;
    // G: nothing to store.
    guest::rep_stos(a, 0x30000, 0, 0x99, 4)?;
    // H: a long fill, for the limits to stop inside.
    guest::rep_stos(a, 0x100, 0x2000, 0x0102_0304, 4)?;
    // F: a fill of the code just ahead: eight INC EBX (0x43) replace the
    // NOPs, which then run (EBX = 8 at the HLT).
    guest::rep_stos(a, patch, 8, 0x43, 1)?;
    Ok(())
}

fn build() -> Machine {
    let code = guest::with_nops_to_patch(program);
    guest::flat_machine(&code, RAM)
}

#[test]
fn rep_stos_runs_on_the_host_as_the_interpreter_runs_it() {
    let full = Limits { max_insns: Some(1_000_000), timeout: None, max_exceptions: Some(1) };
    let (exit, m) = compare_stopped(build, full, 150, 89).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever, "the guest did not reach its HLT");
    assert_eq!(m.cpu.gpr[EBX], 8, "case F did not run the INCs it stored over its NOPs");
    assert_eq!(m.cpu.gpr[ESI], 0x1234_5678, "STOS moved ESI");
    let b = m.ram.bytes();
    assert!(b[0x20000..0x20000 + 1000].iter().all(|&x| x == 0xa5), "REP STOSB");
    assert_eq!(m.ram.read_u32(PhysAddr(0x22002 + 4 * 776)), 0xdead_beef, "REP STOSD's last element");
}

/// The plain fills run as host REP STOS, not as callouts: of the eight
/// fills only the three that fault part-way (C past RAM, D below address
/// 0, F into code) call out, once each, for the rest of their iterations
/// (as callouts, all eight would).
#[test]
fn rep_stos_is_not_a_callout() {
    let mut m = build();
    let limits = Limits { max_insns: Some(1_000_000), timeout: None, max_exceptions: Some(1) };
    let (exit, stats) = guest::run_bt(&mut m, limits);
    assert_eq!(exit, Exit::HaltForever);
    let stos: u64 = stats.callouts_by_kind.iter().filter(|(k, _)| k.starts_with("stos")).map(|k| k.1).sum();
    assert_eq!(stos, 3, "STOS callouts: {:?}", stats.callouts_by_kind);
}
