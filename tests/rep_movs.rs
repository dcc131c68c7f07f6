//! REP MOVS on the host: with paging off, bt runs REP MOVS as the host's
//! own REP MOVS on the guest view (`translator::block`, `Emitter::
//! rep_movs`) when the budget covers every iteration, and when the copy
//! faults part-way (past the end of RAM, wrapping below address 0, a store
//! into a page holding code) it hands the rest to the interpreter. The
//! interpreter, which runs every iteration itself, is the oracle: both
//! engines must end with the same exit, CPU state, retired count (each
//! iteration retires as one instruction) and RAM — run to the end and
//! stopped by instruction limits all through the copies.

mod common;
use common::guest;

use bt86::cpu::state::reg::EBX;
use bt86::engine::guestcode::compare_stopped;
use bt86::engine::{Exit, Limits};
use bt86::memory::PhysAddr;
use bt86::Machine;
use iced_x86::code_asm::*;

const RAM: u32 = 2 << 20;
const SRC: u32 = 0x10000;
const INCS: u32 = 0x60000;

/// The guest at `CODE` up to its eight NOPs (`guest::with_nops_to_patch`):
/// `patch` is their address, which case F overwrites.
fn program(a: &mut CodeAssembler, patch: u32) -> Result<(), IcedError> {
    a.mov(esp, 0xf000u32)?;
    a.xor(ebx, ebx)?;
    a.cld()?;
    // A: a plain copy.
    guest::rep_movs(a, SRC, 0x20000, 1000, 1)?;
    // B: reads running past the end of RAM.
    guest::rep_movs(a, RAM - 64, 0x30000, 100, 4)?;
    // C: stores running past the end of RAM.
    guest::rep_movs(a, SRC, RAM - 16, 40, 1)?;
    // D: downwards, wrapping below address 0.
    a.std()?;
    guest::rep_movs(a, 0x20, 0x40000, 0x60, 1)?;
    a.cld()?;
    // E: overlapping copies towards their source (they replicate).
    guest::rep_movs(a, 0x50000, 0x50001, 300, 1)?;
    guest::rep_movs(a, 0x51000, 0x51002, 100, 2)?;
    // G: nothing to copy.
    guest::rep_movs(a, SRC, 0x52000, 0, 1)?;
    // H: a long copy, for the limits to stop inside.
    guest::rep_movs(a, SRC, 0x100, 0x2000, 4)?;
    // F: a copy into the code just ahead: eight INC EBX replace the NOPs,
    // which then run (EBX = 8 at the HLT).
    guest::rep_movs(a, INCS, patch, 2, 4)?;
    Ok(())
}

fn build() -> Machine {
    let code = guest::with_nops_to_patch(program);
    let mut m = guest::flat_machine(&code, RAM);
    guest::fill(&mut m, SRC, 0x8000);
    for k in 0..0x100u32 {
        m.ram.write_u32(PhysAddr(0x50000 + 4 * k), k.wrapping_mul(0x0101_0101).wrapping_add(0x1234));
        m.ram.write_u32(PhysAddr(0x51000 + 4 * k), k.wrapping_mul(0x0301_0701).wrapping_add(0x5678));
        m.ram.write_u32(PhysAddr(RAM - 0x400 + 4 * k), !k);
    }
    m.ram.write_u32(PhysAddr(INCS), 0x4343_4343);
    m.ram.write_u32(PhysAddr(INCS + 4), 0x4343_4343);
    m
}

#[test]
fn rep_movs_runs_on_the_host_as_the_interpreter_runs_it() {
    let full = Limits { max_insns: Some(1_000_000), timeout: None, max_exceptions: Some(1) };
    let (exit, m) = compare_stopped(build, full, 150, 89).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever, "the guest did not reach its HLT");
    assert_eq!(m.cpu.gpr[EBX], 8, "case F did not run the INCs it copied over its NOPs");
    // Case E replicates: bytes 0x50001.. all equal the byte at 0x50000.
    let b = m.ram.bytes();
    assert!(b[0x50000..0x50000 + 301].iter().all(|&x| x == b[0x50000]), "REP MOVSB towards its source");
}
