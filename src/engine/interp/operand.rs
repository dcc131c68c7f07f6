//! Operand access for the interpreter: registers by iced `Register`,
//! effective addresses, and the `Loc` of an operand that is read and then
//! written back.

use crate::cpu::{CpuState, Exception, Fault, Seg};
use crate::machine::Machine;
use iced_x86::{Instruction, OpKind, Register};

/// Reads a general-purpose or segment register (8, 16 or 32 bits).
#[inline]
pub fn reg_read(cpu: &CpuState, r: Register) -> u32 {
    let n = r as usize;
    match n {
        1..=4 => cpu.gpr[n - 1] & 0xff,
        5..=8 => (cpu.gpr[n - 5] >> 8) & 0xff,
        21..=28 => cpu.gpr[n - 21] & 0xffff,
        37..=44 => cpu.gpr[n - 37],
        71..=76 => cpu.seg[n - 71].selector as u32,
        _ => 0,
    }
}

/// Writes a general-purpose register, keeping the bits a narrow write
/// does not touch.
#[inline]
pub fn reg_write(cpu: &mut CpuState, r: Register, v: u32) {
    let n = r as usize;
    match n {
        1..=4 => cpu.gpr[n - 1] = (cpu.gpr[n - 1] & !0xff) | (v & 0xff),
        5..=8 => cpu.gpr[n - 5] = (cpu.gpr[n - 5] & !0xff00) | ((v & 0xff) << 8),
        21..=28 => cpu.gpr[n - 21] = (cpu.gpr[n - 21] & !0xffff) | (v & 0xffff),
        37..=44 => cpu.gpr[n - 37] = v,
        _ => {}
    }
}

/// The segment register an iced register names.
#[inline]
pub fn seg_of(r: Register) -> Seg {
    match r {
        Register::ES => Seg::Es,
        Register::CS => Seg::Cs,
        Register::SS => Seg::Ss,
        Register::FS => Seg::Fs,
        Register::GS => Seg::Gs,
        _ => Seg::Ds,
    }
}

/// Whether the memory operand uses 16-bit addressing.
#[inline]
pub fn addr16(i: &Instruction) -> bool {
    let b = i.memory_base();
    let x = i.memory_index();
    if b != Register::None {
        return b.is_gpr16();
    }
    if x != Register::None {
        return x.is_gpr16();
    }
    i.memory_displ_size() == 2
}

/// The effective address (offset in its segment) of the memory operand.
#[inline]
pub fn ea(cpu: &CpuState, i: &Instruction) -> u32 {
    let mut a = i.memory_displacement32();
    let b = i.memory_base();
    if b != Register::None {
        a = a.wrapping_add(reg_read(cpu, b));
    }
    let x = i.memory_index();
    if x != Register::None {
        a = a.wrapping_add(reg_read(cpu, x).wrapping_mul(i.memory_index_scale()));
    }
    if addr16(i) {
        a & 0xffff
    } else {
        a
    }
}

/// Where an operand lives.
#[derive(Clone, Copy, Debug)]
pub enum Loc {
    Reg(Register),
    Mem(Seg, u32),
}

/// The location of operand `n` (a register or memory operand).
#[inline]
pub fn loc(cpu: &CpuState, i: &Instruction, n: u32) -> Loc {
    match i.op_kind(n) {
        OpKind::Register => Loc::Reg(i.op_register(n)),
        _ => Loc::Mem(seg_of(i.memory_segment()), ea(cpu, i)),
    }
}

/// The size in bytes of operand `n`.
#[inline]
pub fn op_len(i: &Instruction, n: u32) -> u32 {
    match i.op_kind(n) {
        OpKind::Register => i.op_register(n).size() as u32,
        OpKind::Memory => i.memory_size().size() as u32,
        OpKind::Immediate8 => 1,
        OpKind::Immediate16 | OpKind::Immediate8to16 => 2,
        _ => 4,
    }
}

impl Machine {
    /// Reads a location of `len` bytes.
    #[inline]
    pub fn read_loc(&mut self, l: Loc, len: u32) -> Fault<u32> {
        match l {
            Loc::Reg(r) => Ok(reg_read(&self.cpu, r)),
            Loc::Mem(s, off) => self.read_mem(s, off, len),
        }
    }

    /// Writes a location of `len` bytes.
    #[inline]
    pub fn write_loc(&mut self, l: Loc, len: u32, v: u32) -> Fault<()> {
        match l {
            Loc::Reg(r) => {
                reg_write(&mut self.cpu, r, v);
                Ok(())
            }
            Loc::Mem(s, off) => self.write_mem(s, off, len, v),
        }
    }

    /// Reads operand `n`: a register, memory or an immediate.
    #[inline]
    pub fn read_op(&mut self, i: &Instruction, n: u32) -> Fault<u32> {
        match i.op_kind(n) {
            OpKind::Register => Ok(reg_read(&self.cpu, i.op_register(n))),
            OpKind::Memory => {
                let len = i.memory_size().size() as u32;
                self.read_mem(seg_of(i.memory_segment()), ea(&self.cpu, i), len)
            }
            OpKind::Immediate8 => Ok(i.immediate8() as u32),
            OpKind::Immediate16 => Ok(i.immediate16() as u32),
            OpKind::Immediate32 => Ok(i.immediate32()),
            OpKind::Immediate8to16 => Ok(i.immediate8to16() as u16 as u32),
            OpKind::Immediate8to32 => Ok(i.immediate8to32() as u32),
            OpKind::Immediate8_2nd => Ok(i.immediate8_2nd() as u32),
            _ => Err(Exception::InvalidOpcode),
        }
    }

    /// Writes operand `n` (a register or memory).
    #[inline]
    pub fn write_op(&mut self, i: &Instruction, n: u32, v: u32) -> Fault<()> {
        match i.op_kind(n) {
            OpKind::Register => {
                reg_write(&mut self.cpu, i.op_register(n), v);
                Ok(())
            }
            _ => {
                let len = i.memory_size().size() as u32;
                self.write_mem(seg_of(i.memory_segment()), ea(&self.cpu, i), len, v)
            }
        }
    }
}

/// The ALU width of an operand of `len` bytes.
#[inline]
pub fn width(len: u32) -> crate::cpu::alu::Width {
    use crate::cpu::alu::Width;
    match len {
        1 => Width::B8,
        2 => Width::B16,
        _ => Width::B32,
    }
}
