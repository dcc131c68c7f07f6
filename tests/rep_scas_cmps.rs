//! REPE/REPNE SCAS and CMPS on the host (strlen, memchr and memcmp's
//! shapes), and the string instructions without a prefix (strcmp's
//! `lodsb; scasb` loop): bt runs them as the host's own string
//! instructions on the guest view, which stop early and set the guest's
//! flags, and hands one that faults (past the end of RAM, wrapping below
//! address 0) to the interpreter. The interpreter, which runs every
//! iteration itself, is the oracle: the same exit, CPU state (flags, ECX,
//! ESI, EDI), retired count (each iteration retires as one instruction)
//! and RAM, run to the end and stopped by instruction limits all through.

mod common;
use common::guest;

use bt86::cpu::state::reg::ECX;
use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::memory::PhysAddr;
use bt86::Machine;
use iced_x86::code_asm::*;

const RAM: u32 = 2 << 20;
const TEXT: u32 = 0x20000;
const LOG: u32 = 0x70000;

/// Stores ECX, EDI, ESI and the flags (PUSHFD) at [EBP], then EBP += 16.
fn log(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(dword_ptr(ebp), ecx)?;
    a.mov(dword_ptr(ebp + 4), edi)?;
    a.mov(dword_ptr(ebp + 8), esi)?;
    a.pushfd()?;
    a.pop(dword_ptr(ebp + 12))?;
    a.add(ebp, 16)
}

/// The guest; without `faults`, cases E, F and K (which fault part-way or
/// wrap) are left out.
fn program(faults: bool) -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    a.mov(esp, 0xf000u32)?;
    a.mov(ebp, LOG)?;
    a.cld()?;
    // A: strlen: REPNE SCASB for the 0 at TEXT + 300.
    a.mov(edi, TEXT)?;
    a.mov(ecx, u32::MAX)?;
    a.xor(eax, eax)?;
    a.repne().scasb()?;
    log(&mut a)?;
    // B: memchr that does not find: REPNE SCASD runs ECX out.
    a.mov(edi, TEXT)?;
    a.mov(ecx, 50u32)?;
    a.mov(eax, 0x1234_5678u32)?;
    a.repne().scasd()?;
    log(&mut a)?;
    // C: memcmp: REPE CMPSB, equal for 200 bytes, then a difference.
    a.mov(esi, TEXT)?;
    a.mov(edi, TEXT + 0x1000)?;
    a.mov(ecx, 1000u32)?;
    a.repe().cmpsb()?;
    log(&mut a)?;
    // D: equal all the way: REPE CMPSD runs ECX out (ZF set).
    a.mov(esi, TEXT)?;
    a.mov(edi, TEXT + 0x1000)?;
    a.mov(ecx, 40u32)?;
    a.repe().cmpsd()?;
    log(&mut a)?;
    // E: a search running past the end of RAM (all ones there).
    a.mov(edi, if faults { RAM - 8 } else { TEXT + 0x2000 })?;
    a.mov(ecx, 64u32)?;
    a.mov(al, 0x5a)?;
    a.repne().scasb()?;
    log(&mut a)?;
    // F: downwards, wrapping below address 0 (when the words compared
    // are equal that far).
    a.std()?;
    a.mov(esi, if faults { 0x10 } else { TEXT + 0x3000 })?;
    a.mov(edi, TEXT + 0x10)?;
    a.mov(ecx, 0x40u32)?;
    a.repe().cmpsw()?;
    log(&mut a)?;
    a.cld()?;
    // G: ECX 0: nothing compared, the flags as they were.
    a.mov(ecx, 0u32)?;
    a.repne().scasw()?;
    log(&mut a)?;
    // H: a long scan, for the limits to stop inside.
    a.mov(edi, 0x30000u32)?;
    a.mov(ecx, 0x3000u32)?;
    a.mov(eax, 0xffff_ffffu32)?;
    a.repne().scasd()?;
    log(&mut a)?;
    // I: strcmp's loop without prefixes: LODSB; SCASB; JNE; TEST; JNZ,
    // over the 200 equal bytes of TEXT and its copy.
    let (mut again, mut done) = (a.create_label(), a.create_label());
    a.mov(esi, TEXT)?;
    a.mov(edi, TEXT + 0x1000)?;
    a.set_label(&mut again)?;
    a.lodsb()?;
    a.scasb()?;
    a.jne(done)?;
    a.test(al, al)?;
    a.jnz(again)?;
    a.set_label(&mut done)?;
    log(&mut a)?;
    // J: one iteration of each width and kind, downwards.
    a.std()?;
    a.mov(esi, TEXT + 0x100)?;
    a.mov(edi, 0x40000u32)?;
    a.lodsd()?;
    a.stosw()?;
    a.movsb()?;
    a.cmpsw()?;
    a.cld()?;
    log(&mut a)?;
    // K: one SCASB past the end of RAM.
    a.mov(edi, if faults { RAM + 0x100 } else { TEXT })?;
    a.scasb()?;
    log(&mut a)?;
    a.hlt()?;
    a.assemble(u64::from(CODE))
}

fn build() -> Machine {
    build_with(true)
}

fn build_with(faults: bool) -> Machine {
    let code = program(faults).expect("asm");
    let mut m = guest::flat_machine(&code, RAM);
    // TEXT: 300 non-zero bytes then 0; its copy at +0x1000 differs at 200.
    for k in 0..0x400u32 {
        let b = if k == 300 { 0 } else { (k % 251 + 1) as u8 };
        m.ram.write_u8(PhysAddr(TEXT + k), b);
        m.ram.write_u8(PhysAddr(TEXT + 0x1000 + k), if k == 200 { b ^ 0x80 } else { b });
    }
    m
}

#[test]
fn repe_and_repne_scas_and_cmps_run_on_the_host_as_the_interpreter_runs_them() {
    let full = Limits { max_insns: Some(1_000_000), timeout: None, max_exceptions: Some(1) };
    let (exit, m) = compare_stopped(build, full, 150, 97).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever, "the guest did not reach its HLT");
    let rec = |k: u32, field: u32| m.ram.read_u32(PhysAddr(LOG + 16 * k + 4 * field));
    const ZF: u32 = 0x40;
    // A: the 0 at TEXT+300 found after 301 iterations, EDI just past it.
    assert_eq!(rec(0, 0), u32::MAX - 301, "strlen: ECX");
    assert_eq!(rec(0, 1), TEXT + 301, "strlen: EDI");
    assert_ne!(rec(0, 3) & ZF, 0, "strlen: found (ZF)");
    // B: not found, ECX out, ZF clear.
    assert_eq!(rec(1, 0), 0);
    assert_eq!(rec(1, 3) & ZF, 0);
    // C: the difference at 200: 201 compared.
    assert_eq!(rec(2, 0), 1000 - 201, "memcmp: ECX");
    assert_eq!(rec(2, 3) & ZF, 0, "memcmp: ZF clear at the difference");
    // D: 40 equal doublewords (the first 160 bytes), ZF set, ECX 0.
    assert_eq!(rec(3, 0), 0);
    assert_ne!(rec(3, 3) & ZF, 0);
    // H: all 0x3000 doublewords scanned, none all ones.
    assert_eq!(rec(7, 0), 0, "H ran ECX out");
    assert_eq!(rec(7, 1), 0x30000 + 4 * 0x3000);
    assert_eq!(m.cpu.gpr[ECX], 0);
    // I: the loop stopped at the difference at 200, EDI one past it.
    assert_eq!(rec(8, 1), TEXT + 0x1000 + 201, "strcmp loop: EDI");
    assert_eq!(rec(8, 3) & ZF, 0, "strcmp loop: not equal");
    // J: ESI down by 4 + 1 + 2, EDI by 2 + 1 + 2.
    assert_eq!(rec(9, 2), TEXT + 0x100 - 7);
    assert_eq!(rec(9, 1), 0x40000 - 5);
}

/// Without the cases that fault, nothing here is a callout: strlen's
/// REPNE SCASB from ECX = ~0 runs on the host in a chunk the budget
/// covers, the others whole, the unprefixed ones one iteration each.
/// (With the faults, what follows one may run in the interpreter for a
/// while: that count is not fixed.)
#[test]
fn scas_and_cmps_are_not_callouts() {
    let mut m = build_with(false);
    let limits = Limits { max_insns: Some(1_000_000), timeout: None, max_exceptions: Some(1) };
    let (exit, stats) = guest::run_bt(&mut m, limits);
    assert_eq!(exit, Exit::HaltForever);
    let n: u64 = stats
        .callouts_by_kind
        .iter()
        .filter(|(k, _)| ["scas", "cmps", "lods", "stos", "movs"].iter().any(|p| k.starts_with(p)))
        .map(|k| k.1)
        .sum();
    assert_eq!(n, 0, "string callouts: {:?}", stats.callouts_by_kind);
    // And every block translated (a block the translator cannot emit,
    // say a short jump out of reach, runs in the interpreter instead).
    assert_eq!(stats.interp_fallbacks, 0, "blocks left to the interpreter");
}

/// A scan longer than any budget: strlen of a string of 5 M bytes, more
/// than the run loop gives one turn (`interp::MAX_TURN`, 4 Mi). The host
/// runs chunks as far as each budget goes, the block leaves at the
/// instruction each time, and the run (also stopped by instruction limits
/// part-way) ends as the interpreter's.
#[test]
fn a_scan_longer_than_the_budget_goes_on_in_chunks() {
    let build = || {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(edi, 0x10_0000u32 + 0x1000).unwrap();
        a.mov(ecx, u32::MAX).unwrap();
        a.mov(al, 0x77).unwrap();
        a.repne().scasb().unwrap();
        a.hlt().unwrap();
        let code = a.assemble(u64::from(CODE)).unwrap();
        let mut m = guest::flat_machine(&code, 8 << 20);
        for k in 0..5_000_000u32 {
            m.ram.write_u8(PhysAddr(0x10_1000 + k), (k % 199) as u8 | 0x80);
        }
        m.ram.write_u8(PhysAddr(0x10_1000 + 5_000_000), 0x77);
        m
    };
    let limits = Limits { max_insns: Some(10_000_000), timeout: None, max_exceptions: Some(1) };
    let (exit, m) = compare_stopped(build, limits, 4, 1_300_001).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    assert_eq!(m.cpu.gpr[ECX], u32::MAX - 5_000_001, "5,000,001 bytes scanned");
}
