//! Global pages in the linear views: a CR3 load drops every TLB entry but
//! the global ones (CR4.PGE and the G bit, SDM Vol. 3 §4.10.2.4), so bt's
//! linear views, which are a TLB, keep their global pages across it
//! (`LinearView::clear_non_global`) and drop the rest; INVLPG drops a
//! global page too. The interpreter's MMU is the oracle: after each of
//! these, both engines must read the same frame.
//!
//! Two data pages change frames in the page tables (F1 → F2) before a CR3
//! load: the global page G is still read from F1 until INVLPG, the
//! non-global page N from F2 at once. With G at the top of the mapped
//! range every dropped page lies below it (the views drop them in one
//! operation); with G low, some lie above (page by page).

mod common;
use common::guest;

use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::memory::PhysAddr;
use iced_x86::code_asm::*;

const RAM: u32 = 8 << 20;
const PD: u32 = 0x4_0000;
const PT: u32 = 0x4_1000;
const F1: u32 = 0x50_0000;
const F2: u32 = 0x50_1000;
/// Where the reads are stored (an identity-mapped, non-global page).
const OUT: u32 = 0x6000;
const PRESENT_RW: u32 = 3;
const GLOBAL: u32 = 0x100;

fn build(g: u32, n: u32) -> bt86::Machine {
    let mut a = CodeAssembler::new(32).expect("assembler");
    let program = |a: &mut CodeAssembler| -> Result<(), IcedError> {
        a.mov(esp, 0xf000u32)?;
        // CR4.PGE, then paging (`paging_on` sets PSE too).
        a.mov(eax, cr4)?;
        a.or(eax, 0x80)?;
        a.mov(cr4, eax)?;
        guest::paging_on(a, PD)?;
        a.mov(eax, dword_ptr(g))?;
        a.mov(dword_ptr(OUT), eax)?;
        a.mov(eax, dword_ptr(n))?;
        a.mov(dword_ptr(OUT + 4), eax)?;
        // Both pages to F2; CR3 reloaded.
        a.mov(dword_ptr(PT + 4 * (g >> 12)), F2 | PRESENT_RW | GLOBAL)?;
        a.mov(dword_ptr(PT + 4 * (n >> 12)), F2 | PRESENT_RW)?;
        a.mov(edx, cr3)?;
        a.mov(cr3, edx)?;
        a.mov(eax, dword_ptr(g))?;
        a.mov(dword_ptr(OUT + 8), eax)?;
        a.mov(eax, dword_ptr(n))?;
        a.mov(dword_ptr(OUT + 12), eax)?;
        a.invlpg(dword_ptr(g))?;
        a.mov(eax, dword_ptr(g))?;
        a.mov(dword_ptr(OUT + 16), eax)?;
        a.hlt()
    };
    program(&mut a).expect("program");
    let code = a.assemble(u64::from(CODE)).expect("assemble");
    let mut m = guest::flat_machine(&code, RAM);
    // 4 KiB pages for the first 4 MiB, identity-mapped, not global; G
    // and N on F1, G global.
    m.ram.write_u32(PhysAddr(PD), PT | PRESENT_RW);
    for k in 0..1024 {
        m.ram.write_u32(PhysAddr(PT + 4 * k), (k << 12) | PRESENT_RW);
    }
    m.ram.write_u32(PhysAddr(PT + 4 * (g >> 12)), F1 | PRESENT_RW | GLOBAL);
    m.ram.write_u32(PhysAddr(PT + 4 * (n >> 12)), F1 | PRESENT_RW);
    m.ram.write_u32(PhysAddr(F1), 0x1111_1111);
    m.ram.write_u32(PhysAddr(F2), 0x2222_2222);
    m
}

fn check(g: u32, n: u32) {
    let limits = Limits { max_insns: Some(10_000), ..Limits::default() };
    let (exit, m) = compare_stopped(|| build(g, n), limits, 60, 7).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    let read = |k: u32| m.ram.read_u32(PhysAddr(OUT + 4 * k));
    // As reasoned: F1, F1; then the global page still F1, the other F2;
    // after INVLPG, F2.
    assert_eq!(
        [read(0), read(1), read(2), read(3), read(4)],
        [0x1111_1111, 0x1111_1111, 0x1111_1111, 0x2222_2222, 0x2222_2222]
    );
}

#[test]
fn a_global_page_above_every_other_outlives_a_cr3_load() {
    check(0x3f_f000, 0x3_0000);
}

#[test]
fn a_global_page_below_others_outlives_a_cr3_load() {
    check(0x3_0000, 0x3f_f000);
}
