//! Data movement: MOV and its extensions, XCHG, LEA, stack pushes and
//! pops, conversions, conditional moves and sets, atomics, LxS.

use super::super::operand::{ea, loc, op_len, reg_read, reg_write, seg_of, width, Loc};
use crate::cpu::alu;
use crate::cpu::state::{flags, reg};
use crate::cpu::{Exception, Fault, Seg};
use crate::machine::Machine;
use iced_x86::{Instruction, OpKind, Register};

/// MOV between general registers, memory and immediates.
pub fn mov(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let v = m.read_op(i, 1)?;
    m.write_op(i, 0, v)
}

/// MOVZX / MOVSX.
pub fn movx(m: &mut Machine, i: &Instruction, signed: bool) -> Fault<()> {
    let v = m.read_op(i, 1)?;
    let v = match (signed, op_len(i, 1)) {
        (true, 1) => v as u8 as i8 as i32 as u32,
        (true, _) => v as u16 as i16 as i32 as u32,
        (false, _) => v,
    };
    m.write_op(i, 0, v)
}

/// XCHG: the memory operand is read and written as one locked access.
pub fn xchg(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = op_len(i, 0);
    let (a, b) = (loc(&m.cpu, i, 0), loc(&m.cpu, i, 1));
    let va = m.read_loc(a, len)?;
    let vb = m.read_loc(b, len)?;
    // Memory is always operand 0 or 1; write it first so a fault leaves
    // the register untouched.
    if matches!(b, super::super::operand::Loc::Mem(..)) {
        m.write_loc(b, len, va)?;
        m.write_loc(a, len, vb)
    } else {
        m.write_loc(a, len, vb)?;
        m.write_loc(b, len, va)
    }
}

/// LEA: the offset, truncated to the operand size.
pub fn lea(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let a = ea(&m.cpu, i);
    reg_write(&mut m.cpu, i.op0_register(), a);
    Ok(())
}

/// The stack operand size of PUSH/POP: from iced's stack increment.
#[inline]
fn stack_len(i: &Instruction) -> u32 {
    i.stack_pointer_increment().unsigned_abs()
}

/// PUSH r/m, imm, sreg.
pub fn push(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = stack_len(i);
    let v = match i.op0_kind() {
        // PUSH ESP pushes the value before the push.
        OpKind::Register if i.op0_register().is_segment_register() => reg_read(&m.cpu, i.op0_register()),
        _ => m.read_op(i, 0)?,
    };
    m.push(len, v)
}

/// POP r/m, sreg.
pub fn pop(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = stack_len(i);
    let v = m.peek(0, len)?;
    let r = i.op0_register();
    if i.op0_kind() == OpKind::Register && r.is_segment_register() {
        let s = seg_of(r);
        if s == Seg::Cs {
            return Err(Exception::InvalidOpcode);
        }
        m.load_segment(s, v as u16)?;
        m.set_stack_ptr(m.stack_ptr().wrapping_add(len));
        if s == Seg::Ss {
            m.cpu.int_shadow = 1;
        }
        return Ok(());
    }
    // POP [mem] computes the address after ESP is incremented (SDM POP).
    let old = m.cpu.gpr[reg::ESP];
    m.set_stack_ptr(m.stack_ptr().wrapping_add(len));
    let r = m.write_op(i, 0, v);
    if r.is_err() {
        m.cpu.gpr[reg::ESP] = old;
    }
    r
}

/// PUSHA / PUSHAD.
pub fn pusha(m: &mut Machine, len: u32) -> Fault<()> {
    let old = m.cpu.gpr[reg::ESP];
    let sp = m.stack_ptr();
    let sp_lo = if m.cpu.stack32() { sp.wrapping_sub(8 * len) } else { sp.wrapping_sub(8 * len) & 0xffff };
    m.probe_write(Seg::Ss, sp_lo, 8 * len)?;
    for r in 0..8 {
        let v = if r == reg::ESP { old } else { m.cpu.gpr[r] };
        m.push(len, v)?;
    }
    Ok(())
}

/// POPA / POPAD: ESP's slot is skipped.
pub fn popa(m: &mut Machine, len: u32) -> Fault<()> {
    let mut vals = [0u32; 8];
    for (k, v) in vals.iter_mut().enumerate() {
        *v = m.peek(k as u32 * len, len)?;
    }
    for (k, &v) in vals.iter().enumerate() {
        let r = 7 - k;
        if r != reg::ESP {
            let cur = m.cpu.gpr[r];
            m.cpu.gpr[r] = if len == 4 { v } else { (cur & 0xffff_0000) | (v & 0xffff) };
        }
    }
    m.set_stack_ptr(m.stack_ptr().wrapping_add(8 * len));
    Ok(())
}

/// MOV to or from a segment register.
pub fn mov_sreg(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let dst = i.op0_register();
    if dst.is_segment_register() {
        let s = seg_of(dst);
        if s == Seg::Cs {
            return Err(Exception::InvalidOpcode);
        }
        let v = m.read_op(i, 1)?;
        m.load_segment(s, v as u16)?;
        if s == Seg::Ss {
            m.cpu.int_shadow = 1;
        }
        return Ok(());
    }
    let v = reg_read(&m.cpu, i.op1_register());
    // A register destination with a 32-bit operand size gets the selector
    // zero-extended; memory always takes 16 bits.
    m.write_op(i, 0, v)
}

/// LDS, LES, LFS, LGS, LSS: a far pointer from memory.
pub fn load_far_pointer(m: &mut Machine, i: &Instruction, s: Seg) -> Fault<()> {
    let len = i.op0_register().size() as u32;
    let seg = seg_of(i.memory_segment());
    let off = ea(&m.cpu, i);
    let v = m.read_mem(seg, off, len)?;
    let sel = m.read_mem(seg, off.wrapping_add(len), 2)?;
    m.load_segment(s, sel as u16)?;
    if s == Seg::Ss {
        m.cpu.int_shadow = 1;
    }
    reg_write(&mut m.cpu, i.op0_register(), v);
    Ok(())
}

/// CBW/CWDE and CWD/CDQ.
pub fn convert(m: &mut Machine, mnemonic: iced_x86::Mnemonic) {
    use iced_x86::Mnemonic::*;
    let eax = m.cpu.gpr[reg::EAX];
    match mnemonic {
        Cbw => reg_write(&mut m.cpu, Register::AX, eax as u8 as i8 as i16 as u32),
        Cwde => m.cpu.gpr[reg::EAX] = eax as u16 as i16 as i32 as u32,
        Cwd => reg_write(&mut m.cpu, Register::DX, ((eax as u16 as i16) >> 15) as u32),
        _ => m.cpu.gpr[reg::EDX] = ((eax as i32) >> 31) as u32,
    }
}

/// CMOVcc: the source is read (and may fault) whatever the condition.
pub fn cmov(m: &mut Machine, i: &Instruction, cc: u8) -> Fault<()> {
    let v = m.read_op(i, 1)?;
    if alu::cond(cc, m.cpu.eflags) {
        reg_write(&mut m.cpu, i.op0_register(), v);
    }
    Ok(())
}

/// SETcc.
pub fn setcc(m: &mut Machine, i: &Instruction, cc: u8) -> Fault<()> {
    let v = alu::cond(cc, m.cpu.eflags) as u32;
    m.write_op(i, 0, v)
}

/// XLAT: AL = [seg:EBX/BX + AL].
pub fn xlat(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let base = if i.memory_base() == Register::BX { m.cpu.gpr[reg::EBX] & 0xffff } else { m.cpu.gpr[reg::EBX] };
    let mut off = base.wrapping_add(m.cpu.gpr[reg::EAX] & 0xff);
    if i.memory_base() == Register::BX {
        off &= 0xffff;
    }
    let v = m.read_mem(seg_of(i.memory_segment()), off, 1)?;
    reg_write(&mut m.cpu, Register::AL, v);
    Ok(())
}

/// LAHF and SAHF.
pub fn ahf(m: &mut Machine, store: bool) {
    let mask = flags::SF | flags::ZF | flags::AF | flags::PF | flags::CF;
    if store {
        let ah = (m.cpu.gpr[reg::EAX] >> 8) & mask;
        m.cpu.eflags = (m.cpu.eflags & !mask) | ah | flags::FIXED1;
    } else {
        let f = (m.cpu.eflags & mask) | flags::FIXED1;
        reg_write(&mut m.cpu, Register::AH, f);
    }
}

/// XADD.
pub fn xadd(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = op_len(i, 0);
    let w = width(len);
    let d = loc(&m.cpu, i, 0);
    let a = m.read_loc(d, len)?;
    let b = reg_read(&m.cpu, i.op1_register());
    let (sum, f) = alu::add(w, a, b, m.cpu.eflags);
    // SDM order: SRC := DEST, then DEST := sum (so `xadd r, r` leaves the
    // sum). A memory destination is written first so a fault changes
    // nothing.
    if let Loc::Mem(..) = d {
        m.write_loc(d, len, sum)?;
        reg_write(&mut m.cpu, i.op1_register(), a);
    } else {
        reg_write(&mut m.cpu, i.op1_register(), a);
        m.write_loc(d, len, sum)?;
    }
    m.cpu.eflags = f;
    Ok(())
}

/// CMPXCHG: the destination is always written (with its old value on a
/// mismatch), as the processor's locked cycle does.
pub fn cmpxchg(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = op_len(i, 0);
    let w = width(len);
    let d = loc(&m.cpu, i, 0);
    let dst = m.read_loc(d, len)?;
    let acc = m.cpu.gpr[reg::EAX] & w.mask();
    let f = alu::cmp(w, acc, dst, m.cpu.eflags);
    if acc == dst {
        let src = reg_read(&m.cpu, i.op1_register());
        m.write_loc(d, len, src)?;
    } else {
        m.write_loc(d, len, dst)?;
        let acc_reg = [Register::AL, Register::AX, Register::None, Register::EAX][len as usize - 1];
        reg_write(&mut m.cpu, acc_reg, dst);
    }
    m.cpu.eflags = f;
    Ok(())
}

/// CMPXCHG8B.
pub fn cmpxchg8b(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let seg = seg_of(i.memory_segment());
    let off = ea(&m.cpu, i);
    m.probe_write(seg, off, 4)?;
    m.probe_write(seg, off.wrapping_add(4), 4)?;
    let lo = m.read_mem(seg, off, 4)?;
    let hi = m.read_mem(seg, off.wrapping_add(4), 4)?;
    let g = &m.cpu.gpr;
    if lo == g[reg::EAX] && hi == g[reg::EDX] {
        let (b, c) = (g[reg::EBX], g[reg::ECX]);
        m.write_mem(seg, off, 4, b)?;
        m.write_mem(seg, off.wrapping_add(4), 4, c)?;
        m.cpu.eflags |= flags::ZF;
    } else {
        m.write_mem(seg, off, 4, lo)?;
        m.write_mem(seg, off.wrapping_add(4), 4, hi)?;
        m.cpu.gpr[reg::EAX] = lo;
        m.cpu.gpr[reg::EDX] = hi;
        m.cpu.eflags &= !flags::ZF;
    }
    Ok(())
}

/// BSWAP (a 16-bit operand is undefined; it clears the register's low
/// half, as Intel processors do).
pub fn bswap(m: &mut Machine, i: &Instruction) {
    let r = i.op0_register();
    let v = reg_read(&m.cpu, r);
    let out = if r.size() == 4 { v.swap_bytes() } else { 0 };
    reg_write(&mut m.cpu, r, out);
}

/// ENTER imm16, imm8 with operand size `len`.
pub fn enter(m: &mut Machine, i: &Instruction, len: u32) -> Fault<()> {
    let size = i.immediate16() as u32;
    let level = (i.immediate8_2nd() % 32) as u32;
    let ebp = m.cpu.gpr[reg::EBP];
    let esp = m.cpu.gpr[reg::ESP];
    let r = enter_frame(m, len, size, level, ebp);
    if r.is_err() {
        m.cpu.gpr[reg::ESP] = esp;
        m.cpu.gpr[reg::EBP] = ebp;
    }
    r
}

fn enter_frame(m: &mut Machine, len: u32, size: u32, level: u32, ebp: u32) -> Fault<()> {
    let stack32 = m.cpu.stack32();
    let wrap = |v: u32| if stack32 { v } else { v & 0xffff };
    m.push(len, ebp)?;
    let frame = m.stack_ptr();
    if level > 0 {
        let mut bp = ebp;
        for _ in 1..level {
            bp = bp.wrapping_sub(len);
            let v = m.read_mem(Seg::Ss, wrap(bp), len)?;
            m.push(len, v)?;
        }
        m.push(len, frame)?;
    }
    let new_sp = wrap(m.stack_ptr().wrapping_sub(size));
    if size > 0 {
        m.probe_write(Seg::Ss, new_sp, 1)?;
    }
    let b = &mut m.cpu.gpr[reg::EBP];
    *b = if len == 4 { frame } else { (*b & 0xffff_0000) | (frame & 0xffff) };
    m.set_stack_ptr(new_sp);
    Ok(())
}

/// LEAVE.
pub fn leave(m: &mut Machine, len: u32) -> Fault<()> {
    let ebp = m.cpu.gpr[reg::EBP];
    let sp = if m.cpu.stack32() { ebp } else { ebp & 0xffff };
    let v = m.read_mem(Seg::Ss, sp, len)?;
    m.set_stack_ptr(sp.wrapping_add(len));
    let b = &mut m.cpu.gpr[reg::EBP];
    *b = if len == 4 { v } else { (*b & 0xffff_0000) | (v & 0xffff) };
    Ok(())
}
