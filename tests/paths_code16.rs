//! 16-bit code in a flat 16-bit code segment (paging off, code32 false):
//! paths through 16-bit branches, and REP MOVS with an address-size prefix
//! (32-bit addressing) on the host, under bt and interp (the oracle), to the
//! end and stopped at instruction limits all through.

mod common;
use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::loader::load_flat;
use bt86::memory::PhysAddr;
use bt86::{Machine, MachineConfig};
use common::guest;
use iced_x86::code_asm::*;

const RAM: u32 = 2 << 20;
const C16: u32 = 0x8000;

fn code16() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(16)?;
    let (mut l1, mut l1b) = (a.create_label(), a.create_label());
    a.mov(ecx, 20u32)?;
    a.set_label(&mut l1)?;
    a.add(ax, cx)?;
    a.jmp(l1b)?;
    a.nop()?;
    a.set_label(&mut l1b)?;
    a.rol(eax, 3)?;
    a.dec(cx)?;
    a.jnz(l1)?;
    // a32 rep movsd
    a.mov(esi, 0x10000u32)?;
    a.mov(edi, 0x20000u32)?;
    a.mov(ecx, 0x100u32)?;
    a.db(&[0x67, 0x66, 0xf3, 0xa5])?;
    // a32 rep movsw, downwards through 0
    a.std()?;
    a.mov(esi, 0x10u32)?;
    a.mov(edi, 0x30000u32)?;
    a.mov(ecx, 0x40u32)?;
    a.db(&[0x67, 0xf3, 0xa5])?;
    a.cld()?;
    // a32 rep movsb past the end of RAM
    a.mov(esi, RAM - 0x10)?;
    a.mov(edi, 0x31000u32)?;
    a.mov(ecx, 0x40u32)?;
    a.db(&[0x67, 0xf3, 0xa4])?;
    // a16 rep movsb
    a.mov(si, 0x100u32)?;
    a.mov(di, 0x200u32)?;
    a.mov(cx, 0x20u32)?;
    a.rep().movsb()?;
    // a32 rep movsd with a high half in ECX (0x10002 iterations)
    a.mov(esi, 0x10000u32)?;
    a.mov(edi, 0x40000u32)?;
    a.mov(ecx, 0x10002u32)?;
    a.db(&[0x67, 0x66, 0xf3, 0xa5])?;
    a.hlt()?;
    a.assemble(u64::from(C16))
}

fn build() -> Machine {
    let cfg = MachineConfig { mem_size: RAM, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("machine");
    // jmp far 0x28:C16
    let mut main = vec![0xea];
    main.extend_from_slice(&C16.to_le_bytes());
    main.extend_from_slice(&0x28u16.to_le_bytes());
    load_flat(&mut m, &main, PhysAddr(CODE)).expect("fits");
    let gdt = bt86::loader::entry::GDT_BASE;
    m.ram.write_u32(PhysAddr(gdt + 40), 0x0000_ffff);
    m.ram.write_u32(PhysAddr(gdt + 44), 0x008f_9a00);
    m.cpu.gdtr.limit = 0x2f;
    let c = code16().expect("asm");
    m.ram.bytes_mut()[C16 as usize..C16 as usize + c.len()].copy_from_slice(&c);
    guest::fill(&mut m, 0x10000, 0x10000);
    m
}

#[test]
fn sixteen_bit_paths_and_a32_rep_movs() {
    let full = Limits { max_insns: Some(1_000_000), timeout: None, max_exceptions: Some(5) };
    let (exit, _) = compare_stopped(build, full, 200, 397).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever, "the guest did not reach its HLT");
}

#[test]
fn sixteen_bit_a32_rep_movs_runs_on_the_host() {
    // The copies past the end of RAM and down through 0 fault in the
    // guest view: only the host's REP MOVS (not the callout) touches it.
    let mut m = build();
    let full = Limits { max_insns: Some(1_000_000), timeout: None, max_exceptions: Some(5) };
    let (exit, s) = guest::run_bt(&mut m, full);
    assert_eq!(exit, Exit::HaltForever);
    assert!(s.guest_view_faults >= 2, "view faults {}, callouts {:?}", s.guest_view_faults, s.callouts_by_kind);
}
