//! Privileged and sensitive instructions: each decodes its operands and
//! calls the one implementation in `crate::system`.

use super::super::operand::{ea, reg_read, reg_write, seg_of};
use crate::cpu::state::{flags, reg};
use crate::cpu::Fault;
use crate::machine::Machine;
use crate::memory::{Access, LinAddr};
use iced_x86::{Instruction, Mnemonic, OpKind, Register};

/// The linear address of the memory operand (for LGDT, SGDT, INVLPG...).
fn mem_lin(m: &Machine, i: &Instruction, len: u32, access: Access) -> Fault<LinAddr> {
    m.lin_addr(seg_of(i.memory_segment()), ea(&m.cpu, i), len, access)
}

/// MOV to/from CRn and DRn.
pub fn mov_crdr(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let (d, s) = (i.op0_register(), i.op1_register());
    if d.is_cr() {
        let v = reg_read(&m.cpu, s);
        m.write_cr((d as u32 - Register::CR0 as u32) as u8, v)
    } else if d.is_dr() {
        let v = reg_read(&m.cpu, s);
        m.write_dr((d as u32 - Register::DR0 as u32) as u8, v)
    } else if s.is_cr() {
        let v = m.read_cr((s as u32 - Register::CR0 as u32) as u8)?;
        reg_write(&mut m.cpu, d, v);
        Ok(())
    } else {
        let v = m.read_dr((s as u32 - Register::DR0 as u32) as u8)?;
        reg_write(&mut m.cpu, d, v);
        Ok(())
    }
}

/// LGDT / LIDT.
pub fn load_table(m: &mut Machine, i: &Instruction, idt: bool) -> Fault<()> {
    m.require_cpl0()?;
    let at = mem_lin(m, i, 6, Access::Read)?;
    let op32 = !matches!(i.code(), iced_x86::Code::Lgdt_m1632_16 | iced_x86::Code::Lidt_m1632_16);
    let t = m.load_table_reg(at, op32)?;
    if idt {
        m.cpu.idtr = t;
    } else {
        m.cpu.gdtr = t;
    }
    Ok(())
}

/// SGDT / SIDT: the 16-bit limit and the full 32-bit base.
pub fn store_table(m: &mut Machine, i: &Instruction, idt: bool) -> Fault<()> {
    let t = if idt { m.cpu.idtr } else { m.cpu.gdtr };
    let seg = seg_of(i.memory_segment());
    let off = ea(&m.cpu, i);
    m.probe_write(seg, off, 6)?;
    m.write_mem(seg, off, 2, t.limit as u32)?;
    m.write_mem(seg, off.wrapping_add(2), 4, t.base)
}

/// SLDT, STR, SMSW: a register destination takes the whole value (SMSW
/// r32 stores all of CR0, as P6 and later do), memory takes 16 bits.
pub fn store_system_reg(m: &mut Machine, i: &Instruction) -> Fault<()> {
    if i.mnemonic() != Mnemonic::Smsw {
        m.require_protected()?;
    }
    let v = match i.mnemonic() {
        Mnemonic::Sldt => m.cpu.ldtr.selector as u32,
        Mnemonic::Str => m.cpu.tr.selector as u32,
        _ => m.cpu.cr0,
    };
    if i.op0_kind() == OpKind::Register {
        reg_write(&mut m.cpu, i.op0_register(), v);
        Ok(())
    } else {
        m.write_op(i, 0, v & 0xffff)
    }
}

/// LLDT, LTR, LMSW.
pub fn load_system_reg(m: &mut Machine, i: &Instruction) -> Fault<()> {
    m.require_cpl0()?;
    let v = m.read_op(i, 0)? as u16;
    match i.mnemonic() {
        Mnemonic::Lldt => m.lldt(v),
        Mnemonic::Ltr => m.ltr(v),
        _ => m.lmsw(v),
    }
}

/// LAR, LSL: ZF says whether the destination was written.
pub fn lar_lsl(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let sel = m.read_op(i, 1)? as u16;
    let r = if i.mnemonic() == Mnemonic::Lar { m.query_lar(sel)? } else { m.query_lsl(sel)? };
    match r {
        Some(v) => {
            let v = if i.op0_register().size() == 2 { v & 0xffff } else { v };
            reg_write(&mut m.cpu, i.op0_register(), v);
            m.cpu.eflags |= flags::ZF;
        }
        None => m.cpu.eflags &= !flags::ZF,
    }
    Ok(())
}

/// VERR, VERW.
pub fn verify(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let sel = m.read_op(i, 0)? as u16;
    let ok = if i.mnemonic() == Mnemonic::Verr { m.query_verr(sel)? } else { m.query_verw(sel)? };
    if ok {
        m.cpu.eflags |= flags::ZF;
    } else {
        m.cpu.eflags &= !flags::ZF;
    }
    Ok(())
}

/// ARPL: raises the destination selector's RPL to the source's.
pub fn arpl(m: &mut Machine, i: &Instruction) -> Fault<()> {
    m.require_protected()?;
    let d = m.read_op(i, 0)?;
    let s = reg_read(&m.cpu, i.op1_register());
    if d & 3 < s & 3 {
        m.write_op(i, 0, (d & !3) | (s & 3))?;
        m.cpu.eflags |= flags::ZF;
    } else {
        m.cpu.eflags &= !flags::ZF;
    }
    Ok(())
}

/// IN AL/AX/EAX, imm8 or DX.
pub fn in_(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = i.op0_register().size() as u32;
    let port = m.read_op(i, 1)? as u16;
    let v = m.io_in(port, len)?;
    reg_write(&mut m.cpu, i.op0_register(), v);
    Ok(())
}

/// OUT imm8 or DX, AL/AX/EAX.
pub fn out(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let len = i.op1_register().size() as u32;
    let port = m.read_op(i, 0)? as u16;
    let v = reg_read(&m.cpu, i.op1_register());
    m.io_out(port, len, v)
}

/// PUSHF / PUSHFD.
pub fn pushf(m: &mut Machine, len: u32) -> Fault<()> {
    let v = m.pushf_value();
    m.push(len, v)
}

/// POPF / POPFD.
pub fn popf(m: &mut Machine, len: u32) -> Fault<()> {
    let v = m.peek(0, len)?;
    // Unlike STI, a POPF that sets IF opens no interrupt shadow.
    m.cpu.eflags = m.merge_eflags(v, len, m.cpu.cpl, false);
    m.set_stack_ptr(m.stack_ptr().wrapping_add(len));
    Ok(())
}

/// INVLPG.
pub fn invlpg(m: &mut Machine, i: &Instruction) -> Fault<()> {
    m.require_cpl0()?;
    let lin = LinAddr(m.cpu.seg(seg_of(i.memory_segment())).base.wrapping_add(ea(&m.cpu, i)));
    m.mmu.flush_page(lin);
    Ok(())
}

/// CPUID.
pub fn cpuid(m: &mut Machine) {
    let r = m.cpuid(m.cpu.gpr[reg::EAX]);
    m.cpu.gpr[reg::EAX] = r[0];
    m.cpu.gpr[reg::EBX] = r[1];
    m.cpu.gpr[reg::ECX] = r[2];
    m.cpu.gpr[reg::EDX] = r[3];
}

/// RDTSC and RDMSR: EDX:EAX.
pub fn rd64(m: &mut Machine, msr: bool) -> Fault<()> {
    let v = if msr { m.rdmsr(m.cpu.gpr[reg::ECX])? } else { m.rdtsc()? };
    m.cpu.gpr[reg::EAX] = v as u32;
    m.cpu.gpr[reg::EDX] = (v >> 32) as u32;
    Ok(())
}

/// WRMSR.
pub fn wrmsr(m: &mut Machine) -> Fault<()> {
    let v = ((m.cpu.gpr[reg::EDX] as u64) << 32) | m.cpu.gpr[reg::EAX] as u64;
    m.wrmsr(m.cpu.gpr[reg::ECX], v)
}

/// HLT: privileged; the engine then waits for an interrupt.
pub fn hlt(m: &mut Machine) -> Fault<()> {
    m.require_cpl0()?;
    m.cpu.halted = 1;
    Ok(())
}

/// INVD, WBINVD: privileged no-ops (there is no cache to model).
pub fn cache_op(m: &mut Machine) -> Fault<()> {
    m.require_cpl0()
}

/// Under a trap-and-emulate monitor: a privileged instruction faults at
/// CPL 1; the monitor takes the trap, then emulates the instruction.
pub fn trapped(m: &mut Machine, i: &Instruction, budget: u64) -> Fault<()> {
    m.monitor_trap();
    super::step(m, i, budget)
}

/// Under a trap-and-emulate monitor: a sensitive instruction runs on the
/// deprivileged CPU.
pub fn deprivileged(m: &mut Machine, i: &Instruction, budget: u64) -> Fault<()> {
    m.run_deprivileged(i, |m| super::step(m, i, budget))
}
