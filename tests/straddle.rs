//! An instruction that runs off the end of its page, translated: bt
//! translates it as a block of its own (`bt::straddler`) instead of leaving
//! it to the interpreter at every execution. Its bytes come from two
//! physical pages, so the translation must follow both: a store into the
//! second page's part of it, and (paging on) the second page mapped to
//! other bytes, must each be seen at the next execution. The interpreter,
//! which fetches such an instruction afresh every time, is the oracle.
//!
//! The loop, at `LOOP` = 2 bytes before a page end:
//!
//! ```text
//!   LOOP:  add eax, 0x12345678   ; 05 78 | 56 34 12  (the page ends after 2 bytes)
//!          dec ecx
//!          jnz LOOP
//!          ret
//! ```

mod common;
use common::guest;

use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::memory::PhysAddr;
use iced_x86::code_asm::*;

const RAM: u32 = 2 << 20;
const LOOP: u32 = 0x2_0ffe;
/// The immediate's high half, in the second page.
const IMM_HIGH: u32 = LOOP + 3;
/// Paging on: a copy of the second page with another immediate.
const COPY: u32 = 0x3_1000;
const PD: u32 = 0x4_0000;
const PT: u32 = 0x4_1000;

fn the_loop() -> Vec<u8> {
    let mut a = CodeAssembler::new(32).expect("assembler");
    let mut top = a.create_label();
    a.set_label(&mut top).expect("label");
    a.add(eax, 0x1234_5678u32).expect("add");
    a.dec(ecx).expect("dec");
    a.jnz(top).expect("jnz");
    a.ret().expect("ret");
    a.assemble(u64::from(LOOP)).expect("assemble")
}

/// Runs the loop `n` times.
fn run_loop(a: &mut CodeAssembler, n: u32) -> Result<(), IcedError> {
    a.mov(ecx, n)?;
    a.call(u64::from(LOOP))
}

fn machine(main: impl Fn(&mut CodeAssembler) -> Result<(), IcedError>) -> bt86::Machine {
    let mut a = CodeAssembler::new(32).expect("assembler");
    a.mov(esp, 0xf000u32).expect("esp");
    main(&mut a).expect("program");
    a.hlt().expect("hlt");
    let code = a.assemble(u64::from(CODE)).expect("assemble");
    let mut m = guest::flat_machine(&code, RAM);
    let l = the_loop();
    assert_eq!(l[..5], [0x05, 0x78, 0x56, 0x34, 0x12], "the ADD straddles the page end");
    m.ram.slice_mut(PhysAddr(LOOP), l.len()).expect("loop").copy_from_slice(&l);
    m
}

fn check(build: impl Fn() -> bt86::Machine, want_eax: u32) {
    let limits = Limits { max_insns: Some(200_000), ..Limits::default() };
    let (exit, m) = compare_stopped(&build, limits, 30, 211).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    assert_eq!(m.cpu.gpr[0], want_eax, "EAX as reasoned");
    // bt ran the straddling ADD translated, not in the interpreter.
    let mut m = build();
    let (_, stats) = guest::run_bt(&mut m, limits);
    assert!(stats.straddlers >= 1, "{stats:?}");
    assert!(stats.interp_fallbacks < 50, "the loop fell back to the interpreter: {stats:?}");
}

#[test]
fn a_store_into_the_second_page_changes_the_instruction() {
    let build = || {
        machine(|a| {
            a.xor(eax, eax)?;
            run_loop(a, 5000)?;
            // The immediate becomes 0x00015678: its high half is in the
            // second page.
            a.mov(word_ptr(IMM_HIGH), 0x0001u32)?;
            run_loop(a, 10)
        })
    };
    check(build, 5000u32.wrapping_mul(0x1234_5678).wrapping_add(10 * 0x0001_5678));
}

#[test]
fn the_second_page_mapped_elsewhere_changes_the_instruction() {
    let build = || {
        let mut m = machine(|a| {
            a.xor(eax, eax)?;
            guest::paging_on(a, PD)?;
            a.xor(eax, eax)?;
            run_loop(a, 5000)?;
            // The second page now maps the copy, whose immediate's high
            // half is 0x0002; CR3 reloaded (the TLB flushed).
            a.mov(dword_ptr(PT + 4 * (IMM_HIGH >> 12)), COPY | 3)?;
            a.mov(edx, cr3)?;
            a.mov(cr3, edx)?;
            run_loop(a, 10)
        });
        // 4 KiB pages for the first 4 MiB, identity-mapped.
        m.ram.write_u32(PhysAddr(PD), PT | 3);
        for k in 0..1024 {
            m.ram.write_u32(PhysAddr(PT + 4 * k), (k << 12) | 3);
        }
        let page = PhysAddr(IMM_HIGH & !0xfff);
        let copy = m.ram.slice(page, 0x1000).expect("page").to_vec();
        m.ram.slice_mut(PhysAddr(COPY), 0x1000).expect("copy").copy_from_slice(&copy);
        m.ram.slice_mut(PhysAddr(COPY + (IMM_HIGH & 0xfff)), 2).expect("imm").copy_from_slice(&[2, 0]);
        m
    };
    check(build, 5000u32.wrapping_mul(0x1234_5678).wrapping_add(10 * 0x0002_5678));
}
