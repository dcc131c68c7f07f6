//! RDTSC inline: with virtual time, bt computes the time-stamp counter
//! from its instruction budget (`translator::inline`'s RDTSC) instead of
//! calling out. The counter is the retired-instruction count plus idle
//! time and the offset WRMSR sets (`Machine::tsc`), so the interpreter,
//! which reads it from its clock, is the oracle: both engines must read
//! the same values, at every position in a block, after a REP string
//! instruction that retired many iterations in one callout, after a WRMSR
//! to the TSC and after a HLT that idled; and with CR4.TSD at CPL 3 the
//! instruction must fault (#GP) as it does in the interpreter.

mod common;
use common::guest;

use bt86::engine::guestcode::{compare_stopped, compare_within};
use bt86::engine::{Exit, Limits};
use bt86::memory::PhysAddr;
use iced_x86::code_asm::*;

const RAM: u32 = 2 << 20;
/// Where the guest stores each EDX:EAX it reads.
const LOG: u32 = 0x30000;
const IDT: u32 = 0x1000;
const TIMER_HANDLER: u32 = 0x2000;

/// `rdtsc; mov [edi], eax; mov [edi+4], edx; add edi, 8`.
fn read(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.rdtsc()?;
    a.mov(dword_ptr(edi), eax)?;
    a.mov(dword_ptr(edi + 4), edx)?;
    a.add(edi, 8)
}

fn program(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(esp, 0xf000u32)?;
    a.mov(edi, LOG)?;
    // At the start of a block and after a few instructions, in a loop the
    // translation holds whole.
    read(a)?;
    a.mov(ebx, 50u32)?;
    let mut top = a.create_label();
    a.set_label(&mut top)?;
    a.add(ecx, ebx)?;
    read(a)?;
    a.xor(ecx, 0x55u32)?;
    a.dec(ebx)?;
    a.jnz(top)?;
    // After a REP MOVS of many iterations.
    a.push(edi)?;
    guest::rep_movs(a, 0x40000, 0x50000, 3000, 1)?;
    a.pop(edi)?;
    read(a)?;
    // The flags survive it: a comparison before, a branch after.
    a.cmp(edi, LOG)?;
    read(a)?;
    let mut above = a.create_label();
    a.ja(above)?;
    a.ud2()?;
    a.set_label(&mut above)?;
    // After WRMSR moved the counter (ECX = 0x10, IA32_TIME_STAMP_COUNTER).
    a.mov(ecx, 0x10u32)?;
    a.mov(eax, 0xfff0_0000u32)?;
    a.mov(edx, 7u32)?;
    a.wrmsr()?;
    read(a)?;
    read(a)?;
    // After idling in HLT until the PIT's first interrupt (channel 0,
    // mode 2, a count of 1000: about 838 µs of virtual time).
    a.mov(al, 0x34u32)?;
    a.out(0x43, al)?;
    a.mov(al, 0xe8u32)?;
    a.out(0x40, al)?;
    a.mov(al, 0x03u32)?;
    a.out(0x40, al)?;
    // The master PIC: vectors from 0x20, IRQ 0 alone unmasked.
    for (port, v) in [(0x20, 0x11u32), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01), (0x21, 0xfe)] {
        a.mov(al, v)?;
        a.out(port, al)?;
    }
    a.sti()?;
    a.hlt()?;
    a.cli()?;
    read(a)?;
    a.hlt()
}

fn build() -> bt86::Machine {
    let mut a = CodeAssembler::new(32).expect("assembler");
    program(&mut a).expect("program");
    let code = a.assemble(u64::from(bt86::engine::guestcode::CODE)).expect("assemble");
    let mut m = guest::flat_machine(&code, RAM);
    // The timer's handler: acknowledge, return (`mov al, 0x20; out 0x20,
    // al; iret`).
    m.ram.slice_mut(PhysAddr(TIMER_HANDLER), 5).expect("handler").copy_from_slice(&[0xb0, 0x20, 0xe6, 0x20, 0xcf]);
    guest::interrupt_gate(&mut m, IDT, 0x20, TIMER_HANDLER);
    m
}

#[test]
fn bt_reads_the_same_counter_as_the_interpreter() {
    let limits = Limits { max_insns: Some(1_000_000), ..Limits::default() };
    let (exit, m) = compare_stopped(build, limits, 40, 97).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    // The values themselves, as reasoned: strictly increasing but for the
    // WRMSR, which set the counter to 0x7_fff00000 (the two reads after it
    // are a few instructions on), and the HLT, which idled until the
    // timer: far more nanoseconds than instructions.
    let log: Vec<u64> = (0..56u32)
        .map(|k| {
            let at = PhysAddr(LOG + 8 * k);
            u64::from(m.ram.read_u32(at)) | u64::from(m.ram.read_u32(PhysAddr(at.0 + 4))) << 32
        })
        .collect();
    for w in log[..53].windows(2) {
        assert!(w[1] > w[0], "{log:x?}");
    }
    assert!(log[51] - log[50] >= 3000, "the REP MOVS retired 3000 iterations: {log:x?}");
    assert!((0x7_fff0_0000..0x7_fff0_0010).contains(&log[53]), "{:#x}", log[53]);
    assert!(log[54] > log[53] && log[54] - log[53] < 16, "{log:x?}");
    assert!(log[55] - log[54] > 800_000, "idled about 838 µs: {log:x?}");
    // And bt ran it inline.
    let mut m = build();
    let (_, stats) = guest::run_bt(&mut m, limits);
    let calls = stats.callouts_by_kind.iter().find(|(k, _)| k == "rdtsc").map_or(0, |c| c.1);
    assert_eq!(calls, 0, "RDTSC called out: {:?}", stats.callouts_by_kind);
}

#[test]
fn rdtsc_at_cpl_3_with_cr4_tsd_faults() {
    // CPL 3 on flat DPL-3 segments, CR4.TSD set, no IDT: the #GP becomes
    // a double fault and then a shutdown, at the RDTSC, in both engines.
    // Were RDTSC run inline regardless, the guest would reach its OUT.
    let build = || {
        let mut a = CodeAssembler::new(32).expect("assembler");
        a.nop().expect("nop");
        a.rdtsc().expect("rdtsc");
        a.mov(al, 1u32).expect("mov");
        a.out(0xf4, al).expect("out");
        let code = a.assemble(u64::from(bt86::engine::guestcode::CODE)).expect("assemble");
        let mut m = guest::flat_machine(&code, RAM);
        use bt86::cpu::state::Seg;
        for s in Seg::ALL {
            let seg = &mut m.cpu.seg[s as usize];
            seg.selector |= 3;
            seg.attr |= 3 << 5;
        }
        m.cpu.cpl = 3;
        m.cpu.cr4 |= 4;
        m.cpu.idtr.limit = 0;
        m
    };
    let limits = Limits { max_insns: Some(1000), ..Limits::default() };
    let (exit, m) = compare_within(build, limits).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(exit, Exit::Fatal(_)), "{exit:?}");
    assert_eq!(m.cpu.eip, bt86::engine::guestcode::CODE + 1, "stopped at the RDTSC");
}
