//! BT/BTS/BTR/BTC, BSF/BSR and the BCD adjustments (DAA, DAS, AAA, AAS,
//! AAM, AAD, and the undocumented SALC).

use super::super::operand::{ea, op_len, reg_read, reg_write, seg_of, width, Loc};
use crate::cpu::alu;
use crate::cpu::state::{flags, reg};
use crate::cpu::Fault;
use crate::machine::Machine;
use iced_x86::{Instruction, Mnemonic, OpKind, Register};

/// BT, BTS, BTR, BTC. With a memory operand and a register offset the
/// offset is signed and may reach outside the operand (SDM Vol. 2 "BT").
pub fn bit_test(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = op_len(i, 0);
    let w = width(len);
    let bits = len * 8;
    let offset = m.read_op(i, 1)?;
    let target = if i.op0_kind() == OpKind::Memory {
        let mut off = ea(&m.cpu, i);
        if i.op1_kind() == OpKind::Register {
            let signed = if len == 2 { offset as u16 as i16 as i32 } else { offset as i32 };
            off = off.wrapping_add(((signed >> if len == 2 { 4 } else { 5 }) * len as i32) as u32);
        }
        Loc::Mem(seg_of(i.memory_segment()), off)
    } else {
        Loc::Reg(i.op0_register())
    };
    let bit = offset % bits;
    let v = m.read_loc(target, len)?;
    let e = m.cpu.eflags;
    let (r, f) = match i.mnemonic() {
        Mnemonic::Bt => (v, alu::bt(w, v, bit, e)),
        Mnemonic::Bts => alu::bts(w, v, bit, e),
        Mnemonic::Btr => alu::btr(w, v, bit, e),
        _ => alu::btc(w, v, bit, e),
    };
    if i.mnemonic() != Mnemonic::Bt {
        m.write_loc(target, len, r)?;
    }
    m.cpu.eflags = f;
    Ok(())
}

/// BSF and BSR: the destination is left alone when the source is zero.
pub fn bit_scan(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = op_len(i, 0);
    let src = m.read_op(i, 1)?;
    let dest = reg_read(&m.cpu, i.op0_register());
    let f = if i.mnemonic() == Mnemonic::Bsf { alu::bsf } else { alu::bsr };
    let (r, fl) = f(width(len), src, dest, m.cpu.eflags);
    reg_write(&mut m.cpu, i.op0_register(), r);
    m.cpu.eflags = fl;
    Ok(())
}

/// The BCD adjustments and SALC.
pub fn bcd(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let ax = m.cpu.gpr[reg::EAX] & 0xffff;
    let e = m.cpu.eflags;
    let (r, f, reg_) = match i.mnemonic() {
        Mnemonic::Daa => with(alu::daa(ax & 0xff, e), Register::AL),
        Mnemonic::Das => with(alu::das(ax & 0xff, e), Register::AL),
        Mnemonic::Aaa => with(alu::aaa(ax, e), Register::AX),
        Mnemonic::Aas => with(alu::aas(ax, e), Register::AX),
        Mnemonic::Aam => with(alu::aam(ax & 0xff, i.immediate8() as u32, e)?, Register::AX),
        Mnemonic::Aad => with(alu::aad(ax, i.immediate8() as u32, e), Register::AX),
        // SALC: AL = CF ? 0xFF : 0, flags unchanged.
        _ => (if e & flags::CF != 0 { 0xff } else { 0 }, e, Register::AL),
    };
    reg_write(&mut m.cpu, reg_, r);
    m.cpu.eflags = f;
    Ok(())
}

fn with((r, f): (u32, u32), reg_: Register) -> (u32, u32, Register) {
    (r, f, reg_)
}
