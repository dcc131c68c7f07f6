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
