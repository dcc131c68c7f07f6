//! PIT interrupts landing inside joined paths and host REP MOVS, at four
//! timer periods: the handler logs ECX/ESI/EDI/EIP to RAM, so an interrupt
//! delivered at another instruction under bt than under interp (the
//! oracle) shows as a RAM difference.

mod common;
use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::loader::load_flat;
use bt86::memory::PhysAddr;
use bt86::{Machine, MachineConfig};
use common::guest;
use iced_x86::code_asm::*;

const RAM: u32 = 2 << 20;
const IDT: u32 = 0x3000;
const LOG: u32 = 0x70000;
const SRC: u32 = 0x10000;

fn program(count: u32) -> Result<(Vec<u8>, u32), IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut h = a.create_label();
    a.mov(esp, 0xf000u32)?;
    a.mov(ebp, LOG)?;
    // PIT ch0 mode 2, count.
    a.mov(al, 0x34)?;
    a.out(0x43, al)?;
    a.mov(al, (count & 0xff) as i32)?;
    a.out(0x40, al)?;
    a.mov(al, (count >> 8) as i32)?;
    a.out(0x40, al)?;
    // Unmask IRQ0 (and the cascade).
    a.mov(al, 0xfa)?;
    a.out(0x21, al)?;
    a.sti()?;
    a.cld()?;
    a.mov(ebx, 200u32)?;
    let (mut outer, mut l1, mut l1b, mut l2a, mut l2b, mut l2done) =
        (a.create_label(), a.create_label(), a.create_label(), a.create_label(), a.create_label(), a.create_label());
    a.set_label(&mut outer)?;
    // A loop with a JMP in the middle.
    a.mov(ecx, 37u32)?;
    a.set_label(&mut l1)?;
    a.add(eax, ecx)?;
    a.jmp(l1b)?;
    a.nop()?;
    a.set_label(&mut l1b)?;
    a.rol(eax, 3)?;
    a.dec(ecx)?;
    a.jnz(l1)?;
    // JMP chains.
    a.mov(ecx, 11u32)?;
    a.jmp(l2a)?;
    a.set_label(&mut l2b)?;
    a.xor(eax, ecx)?;
    a.dec(ecx)?;
    a.jz(l2done)?;
    a.set_label(&mut l2a)?;
    a.add(eax, 5)?;
    a.jmp(l2b)?;
    a.set_label(&mut l2done)?;
    // REP MOVS of varying length.
    a.mov(esi, SRC)?;
    a.mov(edi, 0x40000u32)?;
    a.mov(ecx, ebx)?;
    a.shl(ecx, 2)?;
    a.rep().movsb()?;
    a.dec(ebx)?;
    a.jnz(outer)?;
    a.cli()?;
    a.hlt()?;
    a.set_label(&mut h)?;
    a.mov(dword_ptr(ebp), ecx)?;
    a.mov(dword_ptr(ebp + 4), esi)?;
    a.mov(dword_ptr(ebp + 8), eax)?;
    a.mov(dword_ptr(ebp + 12), ebx)?;
    a.add(ebp, 16)?;
    a.and(ebp, 0x7ffffu32 as i32)?;
    a.or(ebp, LOG)?;
    a.push(eax)?;
    a.mov(al, 0x20)?;
    a.out(0x20, al)?;
    a.pop(eax)?;
    a.iretd()?;
    let r = a.assemble_options(u64::from(CODE), iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let hip = r.label_ip(&h)? as u32;
    Ok((r.inner.code_buffer, hip))
}

fn build_with(count: u32) -> Machine {
    let (code, h) = program(count).expect("asm");
    let cfg = MachineConfig { mem_size: RAM, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("machine");
    load_flat(&mut m, &code, PhysAddr(CODE)).expect("fits");
    guest::interrupt_gate(&mut m, IDT, 8, h);
    guest::fill(&mut m, SRC, 0x1000);
    m
}

#[test]
fn irqs_in_paths_and_rep_movs() {
    for count in [2u32, 3, 7, 50] {
        let full = Limits { max_insns: Some(2_000_000), timeout: None, max_exceptions: Some(100) };
        let (exit, m) =
            compare_stopped(|| build_with(count), full, 30, 1999).unwrap_or_else(|e| panic!("count {count}: {e}"));
        let logged = (m.cpu.gpr[5] - LOG) / 16;
        assert_eq!(exit, Exit::HaltForever, "count {count}");
        assert!(logged > 0, "count {count}: no timer interrupt was taken");
    }
}
