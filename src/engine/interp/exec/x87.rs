//! The x87 instructions (D8–DF, and WAIT): the checks every one makes
//! (#NM, a pending #MF), the memory operand, the instruction and data
//! pointers, and the control instructions; everything that computes runs
//! on the host FPU (`crate::cpu::x87`, where the design is written down).

use super::super::operand::{ea, reg_write, seg_of};
use crate::cpu::state::cr0;
use crate::cpu::x87::{self, host};
use crate::cpu::{Exception, Fault, Seg};
use crate::machine::Machine;
use iced_x86::{Code, Instruction, Mnemonic as M, OpKind, Register};

/// The control instructions that do not wait for a pending exception.
fn no_wait(mn: M) -> bool {
    matches!(
        mn,
        M::Fninit | M::Fnclex | M::Fnstcw | M::Fnstsw | M::Fnstenv | M::Fnsave | M::Fneni | M::Fndisi | M::Fnsetpm
    )
}

/// WAIT/FWAIT: #NM when CR0.MP and CR0.TS are both set; a pending
/// unmasked exception is raised.
pub fn wait(m: &mut Machine) -> Fault<()> {
    if m.cpu.cr0 & (cr0::MP | cr0::TS) == cr0::MP | cr0::TS {
        return Err(Exception::DeviceNotAvailable);
    }
    pending(m)
}

/// A pending unmasked exception at a waiting instruction: #MF with
/// CR0.NE; without it the PC's legacy path (IRQ 13, FERR#), after which the
/// instruction goes on as with IGNNE# asserted.
fn pending(m: &mut Machine) -> Fault<()> {
    if !m.cpu.fpu.pending() {
        return Ok(());
    }
    if m.cpu.cr0 & cr0::NE != 0 {
        return Err(Exception::FloatingPoint);
    }
    m.platform.set_ferr(true);
    Ok(())
}

/// One x87 instruction.
pub fn exec(m: &mut Machine, i: &Instruction) -> Fault<()> {
    if m.cpu.cr0 & (cr0::EM | cr0::TS) != 0 {
        return Err(Exception::DeviceNotAvailable);
    }
    let mn = i.mnemonic();
    if !no_wait(mn) {
        pending(m)?;
    }
    match mn {
        M::Fninit | M::Finit => m.cpu.fpu.reinit(),
        M::Fnclex | M::Fclex => m.cpu.fpu.clear_exceptions(),
        // Only the 8087 had interrupt enables; the 80287 real/protected
        // mode switch is a no-op on a 387 and later.
        M::Fneni | M::Feni | M::Fndisi | M::Fdisi | M::Fnsetpm | M::Fsetpm => {}
        M::Fnstcw | M::Fstcw => write_mem(m, i, &m.cpu.fpu.cw.to_le_bytes())?,
        M::Fnstsw | M::Fstsw if i.op0_kind() == OpKind::Register => {
            let sw = m.cpu.fpu.sw;
            reg_write(&mut m.cpu, Register::AX, u32::from(sw))
        }
        M::Fnstsw | M::Fstsw => write_mem(m, i, &m.cpu.fpu.sw.to_le_bytes())?,
        M::Fnstenv | M::Fstenv => {
            write_mem(m, i, &m.cpu.fpu.env(wide(i)))?;
            // FNSTENV masks every exception once it has stored them.
            m.cpu.fpu.cw |= x87::cw::MASKS;
            m.cpu.fpu.summarise();
        }
        M::Fnsave | M::Fsave => {
            write_mem(m, i, &m.cpu.fpu.save(wide(i)))?;
            m.cpu.fpu.reinit();
        }
        M::Fldenv | M::Frstor => {
            let len = i.memory_size().size();
            let mut b = vec![0; len];
            read_mem(m, i, &mut b)?;
            if mn == M::Fldenv {
                m.cpu.fpu.load_env(&b, wide(i));
            } else {
                m.cpu.fpu.restore(&b, wide(i));
            }
        }
        M::Fisttp => return Err(m.unsupported(format!("FISTTP (SSE3) at {:#010x}", i.ip32()))),
        M::Frstpm | M::Fnstdw | M::Fstdw | M::Fnstsg | M::Fstsg => return Err(Exception::InvalidOpcode),
        _ => compute(m, i)?,
    }
    if !translator::x87::is_control(mn) {
        pointers(m, i);
    }
    Ok(())
}

/// Whether an environment or save instruction uses the 32-bit layout.
fn wide(i: &Instruction) -> bool {
    !matches!(
        i.code(),
        Code::Fnstenv_m14byte
            | Code::Fstenv_m14byte
            | Code::Fldenv_m14byte
            | Code::Fnsave_m94byte
            | Code::Fsave_m94byte
            | Code::Frstor_m94byte
    )
}

/// Whether the instruction stores to its memory operand.
fn stores(mn: M) -> bool {
    matches!(mn, M::Fst | M::Fstp | M::Fist | M::Fistp | M::Fbstp)
}

/// The memory operand's segment and offset.
fn operand(m: &Machine, i: &Instruction) -> (Seg, u32) {
    (seg_of(i.memory_segment()), ea(&m.cpu, i))
}

/// Reads `out.len()` bytes of the memory operand, checking the whole of it
/// first.
fn read_mem(m: &mut Machine, i: &Instruction, out: &mut [u8]) -> Fault<()> {
    let (seg, off) = operand(m, i);
    m.lin_addr(seg, off, out.len() as u32, crate::memory::Access::Read)?;
    for (k, b) in out.iter_mut().enumerate() {
        *b = m.read_mem(seg, off.wrapping_add(k as u32), 1)? as u8;
    }
    Ok(())
}

/// Writes `data` to the memory operand: every byte is checked writable
/// before any is written.
fn write_mem(m: &mut Machine, i: &Instruction, data: &[u8]) -> Fault<()> {
    let (seg, off) = operand(m, i);
    m.probe_write(seg, off, data.len() as u32)?;
    for (k, &b) in data.iter().enumerate() {
        m.write_mem(seg, off.wrapping_add(k as u32), 1, b.into())?;
    }
    Ok(())
}

/// An instruction that computes: on the host FPU, with its memory
/// operand read before (a fault leaves the FPU as it was) or checked
/// writable before and written after (only if the host stored it: with an
/// unmasked exception it does not).
fn compute(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let mem = i.op0_kind() == OpKind::Memory || i.op1_kind() == OpKind::Memory;
    let len = if mem { i.memory_size().size() } else { 0 };
    let mut buf = [0u8; host::OPERAND];
    if len > buf.len() {
        return Err(m.unsupported(format!("x87 operand of {len} bytes at {:#010x}", i.ip32())));
    }
    let store = mem && stores(i.mnemonic());
    if store {
        let (seg, off) = operand(m, i);
        m.probe_write(seg, off, len as u32)?;
    }
    if mem {
        read_mem(m, i, &mut buf[..len])?;
    }
    let before = buf;
    let mut fpu = m.cpu.fpu.clone();
    // Still pending here only on the legacy path (CR0.NE clear), where the
    // instruction goes on as with IGNNE#: the host must not see the
    // pending exception, whose flags stay set.
    let held = if fpu.pending() { fpu.sw & (x87::sw::EXCEPTIONS | x87::sw::SF) } else { 0 };
    if held != 0 {
        fpu.clear_exceptions();
    }
    let flags = match host::run(&mut fpu, i, &mut buf, m.cpu.eflags) {
        Ok(f) => f,
        Err(e) => return Err(m.unsupported(format!("x87 instruction at {:#010x}: {e}", i.ip32()))),
    };
    if held != 0 {
        fpu.sw |= held;
        fpu.summarise();
    }
    if store && buf != before {
        write_mem(m, i, &buf[..len])?;
    }
    m.cpu.fpu = fpu;
    if matches!(i.mnemonic(), M::Fcomi | M::Fcomip | M::Fucomi | M::Fucomip) {
        use crate::cpu::state::flags::ARITH;
        m.cpu.eflags = (m.cpu.eflags & !ARITH) | flags;
    }
    Ok(())
}

/// FIP, FCS and FOP for a non-control instruction; FDP and FDS when it
/// has a memory operand.
fn pointers(m: &mut Machine, i: &Instruction) {
    let fop = translator::x87::fop(i);
    let fcs = m.cpu.seg[Seg::Cs as usize].selector;
    let f = &mut m.cpu.fpu;
    (f.fip, f.fcs, f.fop) = (i.ip32(), fcs, fop);
    if i.op0_kind() == OpKind::Memory || i.op1_kind() == OpKind::Memory {
        let (seg, off) = (seg_of(i.memory_segment()), ea(&m.cpu, i));
        let f = &mut m.cpu.fpu;
        f.fdp = off;
        f.fds = m.cpu.seg[seg as usize].selector;
    }
}
