//! Control flow: near and far jumps, calls and returns, conditional
//! branches, loops, software interrupts, IRET, BOUND.

use super::super::operand::{ea, op_len, reg_read, seg_of};
use crate::cpu::alu;
use crate::cpu::state::{flags, reg};
use crate::cpu::{Exception, Fault, Seg};
use crate::machine::Machine;
use crate::system::EventKind;
use iced_x86::{Instruction, OpKind};

/// Sets EIP to a near target after the CS limit check.
#[inline]
fn go(m: &mut Machine, target: u32) -> Fault<()> {
    if target > m.cpu.seg(Seg::Cs).limit {
        return Err(Exception::GP0);
    }
    m.cpu.eip = target;
    Ok(())
}

/// The near target of a JMP or CALL: relative or through r/m, masked to
/// the operand size.
#[inline]
fn near_target(m: &mut Machine, i: &Instruction) -> Fault<u32> {
    match i.op0_kind() {
        OpKind::NearBranch16 | OpKind::NearBranch32 => Ok(i.near_branch_target() as u32),
        _ => {
            let v = m.read_op(i, 0)?;
            Ok(if op_len(i, 0) == 2 { v & 0xffff } else { v })
        }
    }
}

/// The far pointer of a far JMP/CALL: immediate, or `m16:16/32`.
fn far_target(m: &mut Machine, i: &Instruction) -> Fault<(u16, u32)> {
    match i.op0_kind() {
        OpKind::FarBranch16 => Ok((i.far_branch_selector(), i.far_branch16() as u32)),
        OpKind::FarBranch32 => Ok((i.far_branch_selector(), i.far_branch32())),
        _ => {
            let len = i.memory_size().size() as u32 - 2;
            let seg = seg_of(i.memory_segment());
            let off = ea(&m.cpu, i);
            let target = m.read_mem(seg, off, len)?;
            let sel = m.read_mem(seg, off.wrapping_add(len), 2)? as u16;
            Ok((sel, target))
        }
    }
}

/// Operand size of a near CALL, from iced's stack increment.
#[inline]
fn stack_len(i: &Instruction) -> u32 {
    i.stack_pointer_increment().unsigned_abs()
}

/// Operand size of a far CALL: the size of its far pointer's offset.
#[inline]
fn far_len(i: &Instruction) -> u32 {
    match i.op0_kind() {
        OpKind::FarBranch16 => 2,
        OpKind::FarBranch32 => 4,
        _ => i.memory_size().size() as u32 - 2,
    }
}

pub fn jmp(m: &mut Machine, i: &Instruction) -> Fault<()> {
    if matches!(i.op0_kind(), OpKind::FarBranch16 | OpKind::FarBranch32) || i.is_jmp_far_indirect() {
        let (sel, off) = far_target(m, i)?;
        return m.far_jmp(sel, off);
    }
    let t = near_target(m, i)?;
    go(m, t)
}

pub fn call(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let ret = m.cpu.eip;
    if matches!(i.op0_kind(), OpKind::FarBranch16 | OpKind::FarBranch32) || i.is_call_far_indirect() {
        let (sel, off) = far_target(m, i)?;
        return m.far_call(sel, off, far_len(i), ret);
    }
    let t = near_target(m, i)?;
    if t > m.cpu.seg(Seg::Cs).limit {
        return Err(Exception::GP0);
    }
    m.push(stack_len(i), ret)?;
    m.cpu.eip = t;
    Ok(())
}

/// RET [imm16] (near).
pub fn ret(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let imm = if i.op_count() > 0 { i.immediate16() as u32 } else { 0 };
    let len = if matches!(i.code(), iced_x86::Code::Retnw | iced_x86::Code::Retnw_imm16) { 2 } else { 4 };
    let t = m.peek(0, len)?;
    if t > m.cpu.seg(Seg::Cs).limit {
        return Err(Exception::GP0);
    }
    m.set_stack_ptr(m.stack_ptr().wrapping_add(len + imm));
    m.cpu.eip = t;
    Ok(())
}

/// RETF [imm16].
pub fn retf(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let imm = if i.op_count() > 0 { i.immediate16() as u32 } else { 0 };
    let len = if matches!(i.code(), iced_x86::Code::Retfw | iced_x86::Code::Retfw_imm16) { 2 } else { 4 };
    m.far_ret(len, imm)
}

/// Jcc.
#[inline]
pub fn jcc(m: &mut Machine, i: &Instruction, cc: u8) -> Fault<()> {
    if alu::cond(cc, m.cpu.eflags) {
        go(m, i.near_branch_target() as u32)?;
    }
    Ok(())
}

/// The count register of LOOP/JCXZ: CX or ECX by address size.
#[inline]
fn count_reg16(i: &Instruction) -> bool {
    matches!(
        i.code(),
        iced_x86::Code::Jcxz_rel8_16
            | iced_x86::Code::Jcxz_rel8_32
            | iced_x86::Code::Loop_rel8_16_CX
            | iced_x86::Code::Loop_rel8_32_CX
            | iced_x86::Code::Loope_rel8_16_CX
            | iced_x86::Code::Loope_rel8_32_CX
            | iced_x86::Code::Loopne_rel8_16_CX
            | iced_x86::Code::Loopne_rel8_32_CX
    )
}

/// LOOP, LOOPE, LOOPNE (`zf`: None, Some(true), Some(false)).
pub fn loop_(m: &mut Machine, i: &Instruction, zf: Option<bool>) -> Fault<()> {
    let c16 = count_reg16(i);
    let ecx = m.cpu.gpr[reg::ECX];
    let n = if c16 { (ecx.wrapping_sub(1) & 0xffff) | (ecx & 0xffff_0000) } else { ecx.wrapping_sub(1) };
    let left = if c16 { n & 0xffff } else { n };
    let z = m.cpu.eflags & flags::ZF != 0;
    let take = left != 0 && zf.is_none_or(|want| want == z);
    if take {
        go(m, i.near_branch_target() as u32)?;
    }
    m.cpu.gpr[reg::ECX] = n;
    Ok(())
}

/// JCXZ / JECXZ.
pub fn jcxz(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let ecx = m.cpu.gpr[reg::ECX];
    let zero = if count_reg16(i) { ecx & 0xffff == 0 } else { ecx == 0 };
    if zero {
        go(m, i.near_branch_target() as u32)?;
    }
    Ok(())
}

/// INT n, INT3, INTO (when OF is set), INT1: a software interrupt whose
/// saved EIP is the next instruction.
pub fn int(m: &mut Machine, vector: u8, kind: EventKind) -> Fault<()> {
    let next = m.cpu.eip;
    m.deliver_interrupt(vector, None, kind, next)
}

/// IRET / IRETD.
pub fn iret(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = if i.code() == iced_x86::Code::Iretw { 2 } else { 4 };
    m.iret(len)
}

/// BOUND r, m: #BR when the index is outside [lower, upper].
pub fn bound(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = i.op0_register().size() as u32;
    let seg = seg_of(i.memory_segment());
    let off = ea(&m.cpu, i);
    let lo = m.read_mem(seg, off, len)?;
    let hi = m.read_mem(seg, off.wrapping_add(len), len)?;
    let v = reg_read(&m.cpu, i.op0_register());
    let (v, lo, hi) =
        if len == 2 { (v as i16 as i32, lo as i16 as i32, hi as i16 as i32) } else { (v as i32, lo as i32, hi as i32) };
    if v < lo || v > hi {
        return Err(Exception::BoundRange);
    }
    Ok(())
}
