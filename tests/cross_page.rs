//! Chaining across pages with paging on: an exit to another page is a
//! checked exit (`bt::chain`), which goes on through its link only while
//! the MMU has not flushed since it was linked. A loop that jumps between
//! two pages must run chained (few dispatches), and once the second page
//! is mapped to other code and the TLB flushed, the next jump must run
//! the new code. The interpreter, which translates every fetch, is the
//! oracle.
//!
//! ```text
//!   A (0x20000):  dec ecx; jz out; jmp B      out: ret
//!   B (0x21000):  add eax, 1; jmp A           (the copy at 0x31000: add eax, 2)
//! ```

mod common;
use common::guest;

use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::memory::PhysAddr;
use iced_x86::code_asm::*;

const RAM: u32 = 2 << 20;
const A: u32 = 0x2_0000;
const B: u32 = 0x2_1000;
const COPY: u32 = 0x3_1000;
const PD: u32 = 0x4_0000;
const PT: u32 = 0x4_1000;

fn page_a() -> Vec<u8> {
    let mut a = CodeAssembler::new(32).expect("assembler");
    let mut out = a.create_label();
    a.dec(ecx).expect("dec");
    a.jz(out).expect("jz");
    a.jmp(u64::from(B)).expect("jmp");
    a.set_label(&mut out).expect("label");
    a.ret().expect("ret");
    a.assemble(u64::from(A)).expect("assemble")
}

fn page_b(step: u32) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).expect("assembler");
    a.add(eax, step).expect("add");
    a.jmp(u64::from(A)).expect("jmp");
    a.assemble(u64::from(B)).expect("assemble")
}

fn build() -> bt86::Machine {
    let mut a = CodeAssembler::new(32).expect("assembler");
    let program = |a: &mut CodeAssembler| -> Result<(), IcedError> {
        a.mov(esp, 0xf000u32)?;
        guest::paging_on(a, PD)?;
        a.xor(eax, eax)?;
        a.mov(ecx, 5001u32)?;
        a.call(u64::from(A))?;
        // B now maps the copy; CR3 reloaded (the TLB flushed).
        a.mov(dword_ptr(PT + 4 * (B >> 12)), COPY | 3)?;
        a.mov(edx, cr3)?;
        a.mov(cr3, edx)?;
        a.mov(ecx, 11u32)?;
        a.call(u64::from(A))?;
        a.hlt()
    };
    program(&mut a).expect("program");
    let code = a.assemble(u64::from(CODE)).expect("assemble");
    let mut m = guest::flat_machine(&code, RAM);
    for (at, bytes) in [(A, page_a()), (B, page_b(1)), (COPY, page_b(2))] {
        m.ram.slice_mut(PhysAddr(at), bytes.len()).expect("code").copy_from_slice(&bytes);
    }
    // 4 KiB pages for the first 4 MiB, identity-mapped.
    m.ram.write_u32(PhysAddr(PD), PT | 3);
    for k in 0..1024 {
        m.ram.write_u32(PhysAddr(PT + 4 * k), (k << 12) | 3);
    }
    m
}

#[test]
fn a_jump_to_a_page_mapped_elsewhere_runs_the_new_code() {
    let limits = Limits { max_insns: Some(100_000), ..Limits::default() };
    let (exit, m) = compare_stopped(build, limits, 30, 173).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    // 5000 times B's `add eax, 1`, then 10 times the copy's `add eax, 2`.
    assert_eq!(m.cpu.gpr[0], 5000 + 20);
    // Chained: far fewer dispatches than the 10,000 jumps between pages.
    let mut m = build();
    let (_, stats) = guest::run_bt(&mut m, limits);
    assert!(stats.block_runs < 500, "{stats:?}");
}
