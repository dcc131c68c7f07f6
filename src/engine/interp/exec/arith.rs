//! Integer arithmetic, logic, shifts and bit instructions: operands from
//! the interpreter, semantics from `crate::cpu::alu`.

use super::super::operand::{loc, op_len, reg_read, reg_write, width};
use crate::cpu::alu::{self, Count, Width};
use crate::cpu::state::{flags, reg};
use crate::cpu::Fault;
use crate::machine::Machine;
use iced_x86::{Instruction, Mnemonic, OpKind, Register};

type Binary = fn(Width, u32, u32, u32) -> (u32, u32);

/// The ALU function of a two-operand instruction that writes its result.
pub fn binary_op(mn: Mnemonic) -> Option<Binary> {
    Some(match mn {
        Mnemonic::Add => alu::add,
        Mnemonic::Adc => alu::adc,
        Mnemonic::Sub => alu::sub,
        Mnemonic::Sbb => alu::sbb,
        Mnemonic::And => alu::and,
        Mnemonic::Or => alu::or,
        Mnemonic::Xor => alu::xor,
        _ => return None,
    })
}

/// ADD, ADC, SUB, SBB, AND, OR, XOR: dst = dst op src.
#[inline]
pub fn binary(m: &mut Machine, i: &Instruction, f: Binary) -> Fault<()> {
    let len = op_len(i, 0);
    let d = loc(&m.cpu, i, 0);
    let b = m.read_op(i, 1)?;
    let a = m.read_loc(d, len)?;
    let (r, fl) = f(width(len), a, b, m.cpu.eflags);
    m.write_loc(d, len, r)?;
    m.cpu.eflags = fl;
    Ok(())
}

/// CMP and TEST: flags only.
#[inline]
pub fn compare(m: &mut Machine, i: &Instruction, test: bool) -> Fault<()> {
    let len = op_len(i, 0);
    let a = m.read_op(i, 0)?;
    let b = m.read_op(i, 1)?;
    let w = width(len);
    m.cpu.eflags = if test { alu::test(w, a, b, m.cpu.eflags) } else { alu::cmp(w, a, b, m.cpu.eflags) };
    Ok(())
}

/// INC, DEC, NEG, NOT.
pub fn unary(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = op_len(i, 0);
    let w = width(len);
    let d = loc(&m.cpu, i, 0);
    let a = m.read_loc(d, len)?;
    let (r, fl) = match i.mnemonic() {
        Mnemonic::Inc => alu::inc(w, a, m.cpu.eflags),
        Mnemonic::Dec => alu::dec(w, a, m.cpu.eflags),
        Mnemonic::Neg => alu::neg(w, a, m.cpu.eflags),
        _ => (alu::not(w, a), m.cpu.eflags),
    };
    m.write_loc(d, len, r)?;
    m.cpu.eflags = fl;
    Ok(())
}

/// Shifts and rotates by 1, CL or an immediate; SHLD and SHRD.
pub fn shift(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = op_len(i, 0);
    let w = width(len);
    let d = loc(&m.cpu, i, 0);
    let (e, v) = (m.cpu.eflags, m.vendor);
    // The count's last operand: CL, an imm8, or (D0/D1) the implicit 1.
    let last = i.op_count() - 1;
    let count = |m: &mut Machine| -> Fault<Count> {
        Ok(match i.op_kind(last) {
            OpKind::Immediate8 if i.op0_kind() == OpKind::Register => Count::imm_reg(i.immediate8().into()),
            OpKind::Immediate8 => Count::imm_mem(i.immediate8().into()),
            _ if last == 0 => Count::cl(1),
            _ => Count::cl(m.read_op(i, last)?),
        })
    };
    let (r, fl) = if matches!(i.mnemonic(), Mnemonic::Shld | Mnemonic::Shrd) {
        let src = reg_read(&m.cpu, i.op1_register());
        let count = count(m)?;
        let a = m.read_loc(d, len)?;
        if i.mnemonic() == Mnemonic::Shld {
            alu::shld(v, w, a, src, count, e)
        } else {
            alu::shrd(v, w, a, src, count, e)
        }
    } else {
        let count = count(m)?;
        let a = m.read_loc(d, len)?;
        let f = match i.mnemonic() {
            Mnemonic::Shl => alu::shl,
            Mnemonic::Sal => alu::sal,
            Mnemonic::Shr => alu::shr,
            Mnemonic::Sar => alu::sar,
            Mnemonic::Rol => alu::rol,
            Mnemonic::Ror => alu::ror,
            Mnemonic::Rcl => alu::rcl,
            _ => alu::rcr,
        };
        f(v, w, a, count, e)
    };
    m.write_loc(d, len, r)?;
    m.cpu.eflags = fl;
    Ok(())
}

/// The accumulator halves of MUL/IMUL/DIV/IDIV at width `len`.
fn acc_pair(len: u32) -> (Register, Register) {
    match len {
        1 => (Register::AL, Register::AH),
        2 => (Register::AX, Register::DX),
        _ => (Register::EAX, Register::EDX),
    }
}

/// MUL and one-operand IMUL: EDX:EAX = EAX * r/m.
pub fn mul_wide(m: &mut Machine, i: &Instruction, signed: bool) -> Fault<()> {
    let len = op_len(i, 0);
    let w = width(len);
    let b = m.read_op(i, 0)?;
    let (lo_r, hi_r) = acc_pair(len);
    let a = reg_read(&m.cpu, lo_r);
    let (lo, hi, fl) = if signed {
        alu::imul_wide(m.vendor, w, a, b, m.cpu.eflags)
    } else {
        alu::mul(m.vendor, w, a, b, m.cpu.eflags)
    };
    reg_write(&mut m.cpu, lo_r, lo);
    reg_write(&mut m.cpu, hi_r, hi);
    m.cpu.eflags = fl;
    Ok(())
}

/// Two- and three-operand IMUL.
pub fn imul_trunc(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = op_len(i, 0);
    let (a, b) =
        if i.op_count() == 3 { (m.read_op(i, 1)?, m.read_op(i, 2)?) } else { (m.read_op(i, 0)?, m.read_op(i, 1)?) };
    let (r, fl) = alu::imul(m.vendor, width(len), a, b, m.cpu.eflags);
    reg_write(&mut m.cpu, i.op0_register(), r);
    m.cpu.eflags = fl;
    Ok(())
}

/// DIV and IDIV: #DE leaves every register as it was.
pub fn divide(m: &mut Machine, i: &Instruction, signed: bool) -> Fault<()> {
    let len = op_len(i, 0);
    let w = width(len);
    let divisor = m.read_op(i, 0)?;
    let (q_r, r_r) = acc_pair(len);
    let (hi, lo) = if len == 1 {
        let ax = m.cpu.gpr[reg::EAX];
        ((ax >> 8) & 0xff, ax & 0xff)
    } else {
        (reg_read(&m.cpu, r_r), reg_read(&m.cpu, q_r))
    };
    let (q, r) = if signed { alu::idiv(w, hi, lo, divisor)? } else { alu::div(w, hi, lo, divisor)? };
    reg_write(&mut m.cpu, q_r, q);
    reg_write(&mut m.cpu, r_r, r);
    m.cpu.eflags = alu::div_flags(m.vendor, m.cpu.eflags);
    Ok(())
}

/// CLC, STC, CMC, CLD, STD.
pub fn flag_op(m: &mut Machine, mn: Mnemonic) {
    let f = &mut m.cpu.eflags;
    match mn {
        Mnemonic::Clc => *f &= !flags::CF,
        Mnemonic::Stc => *f |= flags::CF,
        Mnemonic::Cmc => *f ^= flags::CF,
        Mnemonic::Cld => *f &= !flags::DF,
        _ => *f |= flags::DF,
    }
}
