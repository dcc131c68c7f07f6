//! String instructions with their REP forms. Each iteration of a REP
//! string instruction retires as one instruction (docs/architecture.md,
//! "What retired means"): an interrupt or a timer deadline may fall between
//! iterations, and the instruction then resumes with the registers it left.

use super::super::operand::{reg_write, width};
use crate::cpu::alu;
use crate::cpu::state::{flags, reg};
use crate::cpu::{Fault, Seg};
use crate::machine::Machine;
use iced_x86::{Instruction, OpKind, Register};

/// Which string instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Str {
    Movs,
    Stos,
    Lods,
    Cmps,
    Scas,
    Ins,
    Outs,
}

/// Whether the string operands use SI/DI/CX rather than ESI/EDI/ECX.
fn addr16(i: &Instruction) -> bool {
    (0..i.op_count()).any(|n| matches!(i.op_kind(n), OpKind::MemorySegSI | OpKind::MemorySegDI | OpKind::MemoryESDI))
}

struct Regs {
    a16: bool,
    step: u32,
}

impl Regs {
    #[inline]
    fn get(&self, m: &Machine, r: usize) -> u32 {
        let v = m.cpu.gpr[r];
        if self.a16 {
            v & 0xffff
        } else {
            v
        }
    }
    #[inline]
    fn advance(&self, m: &mut Machine, r: usize, by: u32) {
        let v = &mut m.cpu.gpr[r];
        if self.a16 {
            *v = (*v & 0xffff_0000) | (v.wrapping_add(by) & 0xffff);
        } else {
            *v = v.wrapping_add(by);
        }
    }
}

/// Runs a string instruction, at most `budget` iterations of a REP form.
/// `insn_eip` is where to resume if iterations remain.
pub fn run(m: &mut Machine, i: &Instruction, op: Str, len: u32, budget: u64, insn_eip: u32) -> Fault<()> {
    let rep = i.has_rep_prefix() || i.has_repne_prefix();
    let r = Regs { a16: addr16(i), step: if m.cpu.eflags & flags::DF != 0 { len.wrapping_neg() } else { len } };
    if !rep {
        return once(m, i, op, len, &r);
    }
    let mut done = 0u64;
    loop {
        if r.get(m, reg::ECX) == 0 {
            break;
        }
        if done == budget.max(1) {
            m.cpu.eip = insn_eip;
            break;
        }
        let bulk = bulk(m, i, op, len, &r, budget.max(1) - done);
        if bulk > 0 {
            done += bulk;
            continue;
        }
        if let Err(e) = once(m, i, op, len, &r) {
            m.clock.retired += done;
            return Err(e);
        }
        r.advance(m, reg::ECX, u32::MAX);
        done += 1;
        if matches!(op, Str::Cmps | Str::Scas) {
            let zf = m.cpu.eflags & flags::ZF != 0;
            if (i.has_repe_prefix() && !zf) || (i.has_repne_prefix() && zf) {
                break;
            }
        }
    }
    m.clock.retired += done.saturating_sub(1);
    Ok(())
}

/// Many iterations of REP MOVS or REP STOS at once, when nothing can
/// interrupt them: 32-bit addressing, every byte of both ranges within the
/// segment limits, mapped (with paging, every byte in the one linear page
/// of each range's first element, which is walked with the access's
/// rights) and in RAM. Iterations run element by element
/// on RAM in the instruction's own order, so overlapping copies replicate
/// exactly as on hardware; stores into pages holding code are reported to
/// the MMU as usual. Returns the iterations done (0: take the slow path).
fn bulk(m: &mut Machine, i: &Instruction, op: Str, len: u32, r: &Regs, budget: u64) -> u64 {
    if !matches!(op, Str::Movs | Str::Stos) || r.a16 {
        return 0;
    }
    let down = m.cpu.eflags & flags::DF != 0;
    let src_seg = super::super::operand::seg_of(i.memory_segment());
    let mut count = (m.cpu.gpr[reg::ECX] as u64).min(budget).min(1 << 20) as u32;
    if m.cpu.paging() {
        // With paging, only as many elements as lie wholly within the
        // page of each range's first element: one translation, whose
        // rights the walk checks, then covers every byte. An element that
        // straddles into the next page (the first one, in either
        // direction: going down, the rest lie below it) leaves it to the
        // slow path, which checks both pages before touching either.
        let room = |m: &Machine, seg: Seg, off: u32| {
            let at = m.cpu.seg(seg).base.wrapping_add(off) & 0xfff;
            if at + len > 4096 {
                0
            } else if down {
                (at + len) / len
            } else {
                (4096 - at) / len
            }
        };
        count = count.min(room(m, Seg::Es, m.cpu.gpr[reg::EDI]));
        if op == Str::Movs {
            count = count.min(room(m, src_seg, m.cpu.gpr[reg::ESI]));
        }
    }
    if count < 2 {
        return 0;
    }
    let total = count * len;
    // The lowest offset of a range of `count` elements starting at `start`.
    let low = |start: u32| if down { start.wrapping_sub(total - len) } else { start };
    // Segment checks for both whole ranges first (no side effects), then
    // the page walks in the order the instruction accesses memory (source
    // first: a fault there must not leave the destination's dirty bit
    // set), then RAM bounds. Any failure: the slow path, which faults
    // precisely.
    let range = |m: &Machine, seg: Seg, start: u32, access: crate::memory::Access| -> Option<crate::memory::LinAddr> {
        let lo = low(start);
        lo.checked_add(total - 1)?;
        m.lin_addr(seg, lo, total, access).ok()
    };
    let walk = |m: &mut Machine, lin: crate::memory::LinAddr, access: crate::memory::Access| -> Option<u32> {
        let who = m.privilege();
        let pa = m.mmu.translate(&m.cpu, &mut m.ram, lin, access, who).ok()?;
        (pa.0 as u64 + total as u64 <= m.ram.size() as u64).then_some(pa.0)
    };
    let Some(dst_lin) = range(m, Seg::Es, m.cpu.gpr[reg::EDI], crate::memory::Access::Write) else { return 0 };
    let src = if op == Str::Movs {
        let Some(src_lin) = range(m, src_seg, m.cpu.gpr[reg::ESI], crate::memory::Access::Read) else { return 0 };
        let Some(pa) = walk(m, src_lin, crate::memory::Access::Read) else { return 0 };
        Some(pa)
    } else {
        None
    };
    let Some(dst) = walk(m, dst_lin, crate::memory::Access::Write) else { return 0 };
    let mut page = dst & !0xfff;
    while page < dst + total {
        m.mmu.note_write(crate::memory::PhysAddr(page.max(dst)), 1);
        page += 4096;
    }
    let ram = m.ram.bytes_mut();
    let (d0, n) = (dst as usize, total as usize);
    match src {
        Some(s0) => {
            let s0 = s0 as usize;
            let l = len as usize;
            // In the guest's order, every element is read before any
            // store of an earlier iteration could reach it unless the copy
            // runs towards its own source: upwards with the destination
            // above the source, or downwards with it below, overlapping.
            // Otherwise one copy gives the same bytes; else element by
            // element, which replicates as hardware does.
            let disjoint = d0 + n <= s0 || d0 >= s0 + n;
            let away = if down { d0 >= s0 } else { d0 <= s0 };
            if disjoint || away {
                ram.copy_within(s0..s0 + n, d0);
            } else if down {
                for k in (0..count as usize).rev() {
                    ram.copy_within(s0 + k * l..s0 + (k + 1) * l, d0 + k * l);
                }
            } else {
                for k in 0..count as usize {
                    ram.copy_within(s0 + k * l..s0 + (k + 1) * l, d0 + k * l);
                }
            }
        }
        None => {
            let v = m.cpu.gpr[reg::EAX].to_le_bytes();
            for chunk in ram[d0..d0 + n].chunks_exact_mut(len as usize) {
                chunk.copy_from_slice(&v[..len as usize]);
            }
        }
    }
    let step = if down { total.wrapping_neg() } else { total };
    m.cpu.gpr[reg::ECX] -= count;
    m.cpu.gpr[reg::EDI] = m.cpu.gpr[reg::EDI].wrapping_add(step);
    if op == Str::Movs {
        m.cpu.gpr[reg::ESI] = m.cpu.gpr[reg::ESI].wrapping_add(step);
    }
    count as u64
}

/// One iteration.
#[inline]
fn once(m: &mut Machine, i: &Instruction, op: Str, len: u32, r: &Regs) -> Fault<()> {
    let src_seg = super::super::operand::seg_of(i.memory_segment());
    let w = width(len);
    match op {
        Str::Movs => {
            let v = m.read_mem(src_seg, r.get(m, reg::ESI), len)?;
            m.write_mem(Seg::Es, r.get(m, reg::EDI), len, v)?;
            r.advance(m, reg::ESI, r.step);
            r.advance(m, reg::EDI, r.step);
        }
        Str::Stos => {
            let v = m.cpu.gpr[reg::EAX];
            m.write_mem(Seg::Es, r.get(m, reg::EDI), len, v)?;
            r.advance(m, reg::EDI, r.step);
        }
        Str::Lods => {
            let v = m.read_mem(src_seg, r.get(m, reg::ESI), len)?;
            reg_write(&mut m.cpu, acc(len), v);
            r.advance(m, reg::ESI, r.step);
        }
        Str::Cmps => {
            let a = m.read_mem(src_seg, r.get(m, reg::ESI), len)?;
            let b = m.read_mem(Seg::Es, r.get(m, reg::EDI), len)?;
            m.cpu.eflags = alu::cmp(w, a, b, m.cpu.eflags);
            r.advance(m, reg::ESI, r.step);
            r.advance(m, reg::EDI, r.step);
        }
        Str::Scas => {
            let b = m.read_mem(Seg::Es, r.get(m, reg::EDI), len)?;
            m.cpu.eflags = alu::cmp(w, m.cpu.gpr[reg::EAX], b, m.cpu.eflags);
            r.advance(m, reg::EDI, r.step);
        }
        Str::Ins => {
            let port = m.cpu.gpr[reg::EDX] as u16;
            let edi = r.get(m, reg::EDI);
            m.check_io(port, len)?;
            m.probe_write(Seg::Es, edi, len)?;
            let v = m.io_in(port, len)?;
            m.write_mem(Seg::Es, edi, len, v)?;
            r.advance(m, reg::EDI, r.step);
        }
        Str::Outs => {
            let port = m.cpu.gpr[reg::EDX] as u16;
            m.check_io(port, len)?;
            let v = m.read_mem(src_seg, r.get(m, reg::ESI), len)?;
            m.io_out(port, len, v)?;
            r.advance(m, reg::ESI, r.step);
        }
    }
    Ok(())
}

fn acc(len: u32) -> Register {
    match len {
        1 => Register::AL,
        2 => Register::AX,
        _ => Register::EAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::PhysAddr;
    use iced_x86::{Code, Register};

    /// REP MOVS over overlapping and disjoint ranges, both directions and
    /// all three widths, against a model that moves one element at a time
    /// (SDM: each iteration reads the source element, then writes it).
    #[test]
    fn rep_movs_in_bulk_moves_what_element_by_element_moves() {
        const AT: u32 = 0x20_0000;
        for (code, len) in [(Code::Movsb_m8_m8, 1u32), (Code::Movsw_m16_m16, 2), (Code::Movsd_m32_m32, 4)] {
            for down in [false, true] {
                for distance in -11i32..=11 {
                    for count in [2u32, 5, 40] {
                        let mut m = crate::system::tests::machine();
                        let mut model: Vec<u8> = (0..512u32).map(|k| (k * 7 + 3) as u8).collect();
                        for (k, b) in model.iter().enumerate() {
                            m.ram.write_u8(PhysAddr(AT + k as u32), *b);
                        }
                        let src = 250u32;
                        let dst = (src as i32 + distance) as u32;
                        m.cpu.gpr[reg::ESI] = AT + src;
                        m.cpu.gpr[reg::EDI] = AT + dst;
                        m.cpu.gpr[reg::ECX] = count;
                        if down {
                            m.cpu.eflags |= flags::DF;
                        }
                        let mut i = Instruction::with_movsb(32, Register::None, iced_x86::RepPrefixKind::Repe).unwrap();
                        i.set_code(code);
                        run(&mut m, &i, Str::Movs, len, 1000, 0).unwrap();
                        let (mut s, mut d) = (src as i64, dst as i64);
                        let step = if down { -(len as i64) } else { len as i64 };
                        for _ in 0..count {
                            let e: Vec<u8> = model[s as usize..(s + len as i64) as usize].to_vec();
                            model[d as usize..(d + len as i64) as usize].copy_from_slice(&e);
                            s += step;
                            d += step;
                        }
                        let mut got = vec![0u8; 512];
                        m.ram.read_bytes(PhysAddr(AT), &mut got);
                        assert_eq!(got, model, "len {len} down {down} distance {distance} count {count}");
                        assert_eq!(m.cpu.gpr[reg::ECX], 0);
                        assert_eq!(m.cpu.gpr[reg::ESI], AT + s as u32);
                    }
                }
            }
        }
    }
}
