//! REP MOVS on the host with paging on (the linear views): copies that
//! fault part-way (#PF on a not-present and on a read-only page, whose
//! handler fixes the PTE, INVLPGs and IRETs), downwards (DF=1), and into
//! code ahead, under bt and interp (the oracle), to the end and stopped at
//! instruction limits all through.

mod common;
use bt86::cpu::state::reg::EBX;
use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::loader::load_flat;
use bt86::memory::PhysAddr;
use bt86::{Machine, MachineConfig};
use common::guest;
use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;

const RAM: u32 = 2 << 20;
const PD: u32 = 0x1000;
const PT: u32 = 0x2000;
const IDT: u32 = 0x3000;
const SRC: u32 = 0x10000;

fn program(patch: u32) -> Result<(Vec<u8>, u32, u32), IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut pf = a.create_label();
    let mut go = a.create_label();
    a.mov(esp, 0xf000u32)?;
    a.mov(eax, PD)?;
    a.mov(cr3, eax)?;
    a.mov(eax, cr0)?;
    a.or(eax, 0x8001_0000u32 as i32)?;
    a.mov(cr0, eax)?;
    a.jmp(go)?;
    a.set_label(&mut go)?;
    a.xor(ebx, ebx)?;
    a.cld()?;
    // P1: upwards into a not-present page (0x80000) then a read-only one (0x81000).
    guest::rep_movs(&mut a, SRC, 0x7f800, 0xc00, 4)?;
    // P2: downwards into a not-present page (0x83000).
    a.std()?;
    guest::rep_movs(&mut a, SRC + 0x2000, 0x84800, 0x1000, 1)?;
    a.cld()?;
    // P3: plain long copies in mapped pages (second time: pages mapped in the view).
    guest::rep_movs(&mut a, SRC, 0x90000, 0x800, 4)?;
    guest::rep_movs(&mut a, SRC, 0x90000, 0x800, 4)?;
    // P4: into the code ahead.
    guest::rep_movs(&mut a, 0x60000, patch, 2, 4)?;
    let mut at = a.create_label();
    a.set_label(&mut at)?;
    for _ in 0..8 {
        a.nop()?;
    }
    a.hlt()?;
    // #PF handler: make the page present and writable, count in EBX.
    a.set_label(&mut pf)?;
    a.push(eax)?;
    a.push(edx)?;
    a.mov(eax, cr2)?;
    a.mov(edx, eax)?;
    a.shr(eax, 12)?;
    a.or(dword_ptr(eax * 4 + PT), 3)?;
    a.invlpg(byte_ptr(edx))?;
    a.add(ebx, 0x100)?;
    a.pop(edx)?;
    a.pop(eax)?;
    a.add(esp, 4)?;
    a.iretd()?;
    let r = a.assemble_options(u64::from(CODE), BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let (x, y) = (r.label_ip(&at)? as u32, r.label_ip(&pf)? as u32);
    Ok((r.inner.code_buffer, x, y))
}

fn build() -> Machine {
    let (_, patch, _) = program(0).expect("first pass");
    let (code, patch2, pf) = program(patch).expect("second pass");
    assert_eq!(patch, patch2);
    let cfg = MachineConfig { mem_size: RAM, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("machine");
    load_flat(&mut m, &code, PhysAddr(CODE)).expect("fits");
    m.ram.write_u32(PhysAddr(PD), PT | 3);
    for p in 0..(RAM >> 12) {
        let flags = match p {
            0x80 | 0x83 => 0,
            0x81 => 1,
            _ => 3,
        };
        m.ram.write_u32(PhysAddr(PT + 4 * p), (p << 12) | flags);
    }
    guest::interrupt_gate(&mut m, IDT, 14, pf);
    guest::fill(&mut m, SRC, 0x4000);
    m.ram.write_u32(PhysAddr(0x60000), 0x4343_4343);
    m.ram.write_u32(PhysAddr(0x60004), 0x4343_4343);
    m
}

#[test]
fn paged_rep_movs() {
    let full = Limits { max_insns: Some(1_000_000), timeout: None, max_exceptions: Some(100) };
    let (exit, m) = compare_stopped(build, full, 60, 97).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    assert_eq!(m.cpu.gpr[EBX], 0x308, "{:#x}", m.cpu.gpr[EBX]);
}

#[test]
fn paged_rep_movs_faults_in_the_linear_view() {
    // Pages not mapped in the linear view yet fault under the host's REP
    // MOVS and its fixup hands the rest to the callout.
    let mut m = build();
    let full = Limits { max_insns: Some(1_000_000), timeout: None, max_exceptions: Some(100) };
    let (exit, s) = guest::run_bt(&mut m, full);
    assert_eq!(exit, Exit::HaltForever);
    assert!(s.guest_view_faults > 0, "view faults {}, callouts {:?}", s.guest_view_faults, s.callouts_by_kind);
}
