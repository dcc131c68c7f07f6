//! Translations that follow branches: the translator joins a guest path
//! through the blocks of a page (on at a direct JMP's target, back at a
//! backward Jcc's target, on through a forward Jcc's fall-through;
//! `engine::bt::successor`). This guest takes every such path and leaves
//! each one by its side exits too, and the interpreter, which runs block by
//! block, is the oracle: both engines must end with the same exit, CPU
//! state, retired count and RAM — run to its end and stopped by an
//! instruction limit at many points, so the budget's deadline falls inside
//! joined paths.

use bt86::cpu::state::reg::ESI;
use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::loader::load_flat;
use bt86::memory::PhysAddr;
use bt86::{Machine, MachineConfig};
use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;

const DATA: u32 = 0xc000;
const TABLE: u32 = 0xd000;
const PROG: u32 = 0xd100;
/// The bytecode-like program of part 3: op 3 restarts it until ECX runs out.
const PROGRAM: [u32; 7] = [0, 1, 2, 0, 1, 2, 3];

/// The guest, assembled at `CODE`; `smc` is the address of the immediate
/// that part 4 rewrites (0 on the first pass, which finds it). Returns the
/// code, the handlers of part 3 and the immediate's address.
fn program(smc: u32) -> Result<(Vec<u8>, [u32; 4], u32), IcedError> {
    let mut a = CodeAssembler::new(32)?;
    a.mov(esp, 0xf000u32)?;
    a.xor(eax, eax)?;

    // Part 1: a loop whose body a forward Jcc cuts in two, closed by a
    // backward Jcc to its head.
    let (mut p1_top, mut p1_skip) = (a.create_label(), a.create_label());
    a.mov(ecx, 40u32)?;
    a.set_label(&mut p1_top)?;
    a.add(eax, ecx)?;
    a.test(ecx, 1u32)?;
    a.jz(p1_skip)?;
    a.imul_3(eax, eax, 3)?;
    a.mov(dword_ptr(ecx * 4 + DATA), eax)?;
    a.set_label(&mut p1_skip)?;
    a.dec(ecx)?;
    a.jnz(p1_top)?;

    // Part 2: JMPs forwards and backwards between short blocks.
    let (mut p2_a, mut p2_b, mut p2_c, mut p2_done) =
        (a.create_label(), a.create_label(), a.create_label(), a.create_label());
    a.mov(ecx, 30u32)?;
    a.jmp(p2_a)?;
    a.set_label(&mut p2_b)?;
    a.xor(eax, ecx)?;
    a.dec(ecx)?;
    a.jz(p2_done)?;
    a.jmp(p2_c)?;
    a.set_label(&mut p2_a)?;
    a.rol(eax, 5)?;
    a.add(dword_ptr(DATA), eax)?;
    a.jmp(p2_b)?;
    a.set_label(&mut p2_c)?;
    a.sub(eax, 7)?;
    a.jmp(p2_a)?;
    a.set_label(&mut p2_done)?;

    // Part 3: a dispatch loop through a table, as a bytecode interpreter
    // has: each handler jumps back to a common tail that branches back to
    // the dispatch.
    let mut ops = [a.create_label(), a.create_label(), a.create_label(), a.create_label()];
    let (mut p3_loop, mut p3_next, mut p3_end) = (a.create_label(), a.create_label(), a.create_label());
    a.mov(ecx, 25u32)?;
    a.xor(ebx, ebx)?;
    a.set_label(&mut p3_loop)?;
    a.mov(edx, dword_ptr(ebx * 4 + PROG))?;
    a.inc(ebx)?;
    a.cmp(edx, 3)?;
    a.ja(p3_end)?;
    a.jmp(dword_ptr(edx * 4 + TABLE))?;
    a.set_label(&mut ops[0])?;
    a.add(eax, 11)?;
    a.jmp(p3_next)?;
    a.set_label(&mut ops[1])?;
    a.shl(eax, 1)?;
    a.adc(eax, 0)?;
    a.jmp(p3_next)?;
    a.set_label(&mut ops[2])?;
    a.push(eax)?;
    a.pop(edi)?;
    a.and(edi, 0xffcu32)?;
    a.xor(eax, dword_ptr(edi + DATA))?;
    a.jmp(p3_next)?;
    a.set_label(&mut ops[3])?;
    a.dec(ecx)?;
    a.jz(p3_next)?;
    a.xor(ebx, ebx)?;
    a.set_label(&mut p3_next)?;
    a.cmp(ebx, PROGRAM.len() as u32)?;
    a.jb(p3_loop)?;
    a.set_label(&mut p3_end)?;

    // Part 4: a loop that rewrites an instruction further along its own
    // path (the immediate of an ADD after a JMP), which must run as
    // rewritten: ESI = 6 + 5 + 4 + 3 + 2 + 1 = 21 at the HLT (with the
    // original immediate it would be 6 * 0x7f).
    let (mut p4_top, mut p4_add, mut p4_back) = (a.create_label(), a.create_label(), a.create_label());
    a.mov(ecx, 6u32)?;
    a.xor(esi, esi)?;
    a.set_label(&mut p4_top)?;
    a.mov(byte_ptr(smc), cl)?;
    a.jmp(p4_add)?;
    a.set_label(&mut p4_back)?;
    a.dec(ecx)?;
    a.jnz(p4_top)?;
    a.hlt()?;
    a.set_label(&mut p4_add)?;
    a.add(esi, 0x7fi32)?; // 83 C6 ib: the immediate is its third byte
    a.jmp(p4_back)?;

    let r = a.assemble_options(u64::from(CODE), BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let mut handlers = [0u32; 4];
    for (h, l) in handlers.iter_mut().zip(&ops) {
        *h = r.label_ip(l)? as u32;
    }
    let imm = r.label_ip(&p4_add)? as u32 + 2;
    Ok((r.inner.code_buffer, handlers, imm))
}

fn build() -> Machine {
    let (_, _, imm) = program(0).expect("first pass");
    let (code, handlers, imm2) = program(imm).expect("second pass");
    assert_eq!(imm, imm2, "the second pass moved the rewritten immediate");
    let cfg = MachineConfig { mem_size: 2 << 20, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("a 2 MiB machine");
    load_flat(&mut m, &code, PhysAddr(CODE)).expect("the code fits");
    for (k, h) in handlers.iter().enumerate() {
        m.ram.write_u32(PhysAddr(TABLE + 4 * k as u32), *h);
    }
    for (k, op) in PROGRAM.iter().enumerate() {
        m.ram.write_u32(PhysAddr(PROG + 4 * k as u32), *op);
    }
    m
}

#[test]
fn joined_paths_run_as_the_interpreter_runs_them() {
    let full = Limits { max_insns: Some(1_000_000), timeout: None, max_exceptions: Some(1) };
    let (exit, m) = compare_stopped(build, full, 120, 7).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever, "the guest did not reach its HLT");
    assert_eq!(m.cpu.gpr[ESI], 21, "part 4 did not run its rewritten ADD");
}
