//! A memory address that wraps around 4 GiB, as a compiler's negative
//! index makes one (`movsx eax, word [edx + 0x105342]` with EDX = -2,
//! Embench's edn): the translator's direct form `[r15 + rdx + disp]` sums
//! in 64 bits, lands past the guest view and faults into the slow path,
//! which is right but slow. After `WRAP_LIMIT` such faults at one
//! instruction, bt translates its page again with the LEA form, which
//! wraps as the guest does (`callout::wrapped`). The interpreter is the
//! oracle; the fault count says the retranslation happened.

mod common;
use common::guest;

use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::memory::PhysAddr;
use iced_x86::code_asm::*;

const RAM: u32 = 2 << 20;
const TABLE: u32 = 0x10_5342;
const ROUNDS: u32 = 2000;

fn build() -> bt86::Machine {
    let mut a = CodeAssembler::new(32).expect("assembler");
    let program = |a: &mut CodeAssembler| -> Result<(), IcedError> {
        a.mov(esp, 0xf000u32)?;
        a.xor(ebx, ebx)?;
        a.mov(ecx, ROUNDS)?;
        let mut again = a.create_label();
        a.set_label(&mut again)?;
        // EDX = -2 or -4 in turn: [edx + TABLE] is TABLE - 2 or TABLE - 4.
        a.mov(edx, ecx)?;
        a.and(edx, 1)?;
        a.lea(edx, dword_ptr(edx * 2 - 4))?;
        a.movsx(eax, word_ptr(edx + TABLE))?;
        a.add(ebx, eax)?;
        a.dec(ecx)?;
        a.jnz(again)?;
        a.hlt()
    };
    program(&mut a).expect("program");
    let code = a.assemble(u64::from(CODE)).expect("assemble");
    let mut m = guest::flat_machine(&code, RAM);
    // TABLE - 4: -3 (0xfffd); TABLE - 2: 7.
    m.ram.write_u32(PhysAddr(TABLE - 4), 0x0007_fffd);
    m
}

#[test]
fn a_wrapping_address_is_translated_to_wrap() {
    let limits = Limits { max_insns: Some(100_000), ..Limits::default() };
    let (exit, m) = compare_stopped(build, limits, 40, 977).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    // ECX odd: EDX = -2, the word 7; even: EDX = -4, the word -3.
    assert_eq!(m.cpu.gpr[3], (ROUNDS / 2 * 7).wrapping_sub(ROUNDS / 2 * 3));
    let mut m = build();
    let (_, stats) = guest::run_bt(&mut m, limits);
    assert!(
        stats.guest_view_faults < 50,
        "the direct form kept faulting: {} view faults in {ROUNDS} rounds",
        stats.guest_view_faults
    );
}

/// The stack wraps around 4 GiB too: with ESP at 8, a PUSH, a CALL and a
/// PUSH of an immediate go below 0 to 0xfffffffc and on, where a 4 MiB
/// page maps the top of the address space. The direct forms of PUSH, POP,
/// CALL and RET (`[r15 + r12 - 4]`, `[r15 + r12]`) sum in 64 bits and land
/// below the linear view, in its guard: the slow path runs them, as the
/// interpreter does. The interpreter is the oracle, at every instruction
/// of the first rounds and then every few.
#[test]
fn the_stack_wraps_around_zero() {
    const PD: u32 = 0x3000;
    let build = || {
        let mut a = CodeAssembler::new(32).expect("assembler");
        let program = |a: &mut CodeAssembler| -> Result<(), IcedError> {
            guest::paging_on(a, PD)?;
            a.mov(ecx, 50u32)?;
            let mut again = a.create_label();
            let mut callee = a.create_label();
            a.set_label(&mut again)?;
            a.mov(esp, 8u32)?;
            a.mov(eax, ecx)?;
            a.push(eax)?; // at 4
            a.push(ecx)?; // at 0
            a.push(0x1234_5678u32 as i32)?; // at 0xfffffffc
            a.call(callee)?; // the return address at 0xfffffff8
            a.pop(edx)?;
            a.pop(esi)?;
            a.pop(edi)?;
            a.add(ebx, edx)?;
            a.add(ebx, esi)?;
            a.add(ebx, edi)?;
            a.dec(ecx)?;
            a.jnz(again)?;
            a.hlt()?;
            a.set_label(&mut callee)?;
            a.push(ebp)?;
            a.mov(ebp, esp)?;
            a.mov(edx, dword_ptr(ebp + 4))?;
            a.add(ebx, edx)?;
            a.pop(ebp)?;
            a.ret()
        };
        program(&mut a).expect("program");
        let code = a.assemble(u64::from(CODE)).expect("assemble");
        let mut m = guest::flat_machine(&code, 8 << 20);
        // PDE 0: the first 4 MiB, identity; PDE 1023: the top 4 MiB of
        // the address space at physical 4 MiB.
        m.ram.write_u32(PhysAddr(PD), 0x83);
        m.ram.write_u32(PhysAddr(PD + 4 * 1023), 0x40_0083);
        m
    };
    let limits = Limits { max_insns: Some(100_000), ..Limits::default() };
    let (exit, m) = compare_stopped(build, limits, 60, 7).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    // The pushed immediate sits at 0xfffffffc, physical 0x7ffffc.
    assert_eq!(m.ram.read_u32(PhysAddr(0x7f_fffc)), 0x1234_5678);
    assert_eq!(m.cpu.gpr[4], 8, "ESP back where the last round set it");
}

/// Two registers wrap too: `[ebx + ecx*4 + TABLE]` with EBX = -8 or -16
/// and ECX = 1 or 2. Where the host lets translated code use a GS base
/// (`translator::memop::Forms::Gs`), that is `gs:[rbx + rcx*4 + disp]`,
/// summed in 64 bits: past 4 GiB from the view's base, in its guard. The
/// slow path is right, and after `WRAP_LIMIT` faults the page is
/// translated again with the LEA form; the interpreter is the oracle.
#[test]
fn a_two_register_address_that_wraps() {
    let build = || {
        let mut a = CodeAssembler::new(32).expect("assembler");
        let program = |a: &mut CodeAssembler| -> Result<(), IcedError> {
            a.mov(esp, 0xf000u32)?;
            a.xor(edi, edi)?;
            a.mov(esi, ROUNDS)?;
            let mut again = a.create_label();
            a.set_label(&mut again)?;
            // ESI odd: EBX = -8, ECX = 2 (sum 0); even: EBX = -16, ECX = 1
            // (sum -12). [ebx + ecx*4 + TABLE] is TABLE or TABLE - 12.
            a.mov(ecx, esi)?;
            a.and(ecx, 1)?;
            a.lea(ebx, dword_ptr(ecx * 8 - 16))?;
            a.inc(ecx)?;
            a.mov(eax, dword_ptr(ebx + ecx * 4 + TABLE))?;
            a.add(edi, eax)?;
            a.dec(esi)?;
            a.jnz(again)?;
            a.hlt()
        };
        program(&mut a).expect("program");
        let code = a.assemble(u64::from(CODE)).expect("assemble");
        let mut m = guest::flat_machine(&code, RAM);
        m.ram.write_u32(PhysAddr(TABLE), 5);
        m.ram.write_u32(PhysAddr(TABLE - 12), 3);
        m
    };
    let limits = Limits { max_insns: Some(100_000), ..Limits::default() };
    let (exit, m) = compare_stopped(build, limits, 40, 977).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    assert_eq!(m.cpu.gpr[7], ROUNDS / 2 * 5 + ROUNDS / 2 * 3);
    let mut m = build();
    let (_, stats) = guest::run_bt(&mut m, limits);
    assert!(stats.guest_view_faults < 50, "kept faulting: {} view faults", stats.guest_view_faults);
}
