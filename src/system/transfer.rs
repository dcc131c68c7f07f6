//! Far control transfers (SDM Vol. 2 "JMP", "CALL", "RET", "IRET"): code
//! segments, call gates with stack switches and parameter copies, returns
//! to outer rings. Task switches (TSS or task-gate targets, IRET with NT)
//! are in task.rs; virtual-8086 mode is not implemented and stops the
//! machine.

use super::descriptor::{is_null, rpl, sel_error, sys_type, Descriptor};
use super::segment::{valid_stack, OtherStack};
use super::task::TaskSwitch;
use crate::cpu::state::{attr, flags, reg};
use crate::cpu::{Exception, Fault, Seg};
use crate::machine::Machine;

/// Operand size of a far transfer, in bytes (2 or 4).
pub type OpLen = u32;

fn gp(sel: u16) -> Exception {
    Exception::GeneralProtection(sel_error(sel))
}

impl Machine {
    fn set_cs(&mut self, d: Descriptor, sel: u16, cpl: u8, eip: u32) {
        self.cpu.seg[Seg::Cs as usize] = d.to_segment((sel & !3) | cpl as u16);
        self.cpu.seg[Seg::Cs as usize].attr |= attr::ACCESSED;
        self.cpu.cpl = cpl;
        self.cpu.eip = eip;
    }

    fn set_cs_real(&mut self, sel: u16, eip: u32) {
        let cs = &mut self.cpu.seg[Seg::Cs as usize];
        cs.selector = sel;
        cs.base = (sel as u32) << 4;
        self.cpu.eip = eip;
    }

    /// Checks a code-segment target of a direct far JMP or CALL (SDM
    /// Vol. 2 JMP, "CONFORMING-/NONCONFORMING-CODE-SEGMENT"). The offset is
    /// checked by the caller: a CALL checks its stack first.
    fn direct_code_target(&mut self, sel: u16, d: Descriptor) -> Fault<()> {
        let cpl = self.cpu.cpl;
        let bad = if d.conforming() { d.dpl() > cpl } else { rpl(sel) > cpl || d.dpl() != cpl };
        if bad {
            return Err(gp(sel));
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_error(sel)));
        }
        Ok(())
    }

    /// Reads and checks a call gate and its target code segment (SDM
    /// Vol. 2 JMP/CALL "CALL-GATE"). A JMP also demands, before the
    /// presence check, that a non-conforming target be at the CPL. Returns
    /// the target selector and descriptor; the offset is checked later.
    fn through_call_gate(&mut self, sel: u16, gate: Descriptor, jmp: bool) -> Fault<(u16, Descriptor)> {
        let cpl = self.cpu.cpl;
        if gate.dpl() < cpl || gate.dpl() < rpl(sel) {
            return Err(gp(sel));
        }
        if !gate.present() {
            return Err(Exception::SegmentNotPresent(sel_error(sel)));
        }
        let tsel = gate.gate_selector();
        if is_null(tsel) {
            return Err(Exception::GP0);
        }
        let td = self.read_descriptor(tsel)?;
        if !td.is_code() || td.dpl() > cpl || (jmp && !td.conforming() && td.dpl() != cpl) {
            return Err(gp(tsel));
        }
        if !td.present() {
            return Err(Exception::SegmentNotPresent(sel_error(tsel)));
        }
        Ok((tsel, td))
    }

    /// The descriptor a far JMP or CALL names, with its type checked:
    /// code segment or call gate (`None` means a task switch happened).
    fn target_descriptor(&mut self, sel: u16, kind: TaskSwitch, ret_eip: u32) -> Fault<Option<Descriptor>> {
        if is_null(sel) {
            return Err(Exception::GP0);
        }
        let d = self.read_descriptor(sel)?;
        if !d.is_segment() {
            match d.sys_type() {
                sys_type::TSS16_AVAIL | sys_type::TSS32_AVAIL | sys_type::TASK_GATE => {
                    self.task_switch_far(sel, d, kind, ret_eip)?;
                    return Ok(None);
                }
                sys_type::CALL_GATE16 | sys_type::CALL_GATE32 => {}
                _ => return Err(gp(sel)),
            }
        } else if !d.is_code() {
            return Err(gp(sel));
        }
        Ok(Some(d))
    }

    /// JMP ptr16:16/32 or JMP m16:16/32.
    pub fn far_jmp(&mut self, sel: u16, off: u32) -> Fault<()> {
        if !self.cpu.protected() {
            self.set_cs_real(sel, off);
            return Ok(());
        }
        let ret_eip = self.cpu.eip;
        let Some(d) = self.target_descriptor(sel, TaskSwitch::Jmp, ret_eip)? else {
            return Ok(());
        };
        let cpl = self.cpu.cpl;
        let (sel, d, off) = if d.is_code() {
            self.direct_code_target(sel, d)?;
            (sel, d, off)
        } else {
            let (tsel, td) = self.through_call_gate(sel, d, true)?;
            (tsel, td, d.gate_offset())
        };
        if off > d.limit() {
            return Err(Exception::GP0);
        }
        self.set_accessed(sel, d)?;
        self.set_cs(d, sel, cpl, off);
        Ok(())
    }

    /// CALL ptr16:16/32 or CALL m16:16/32; `len` is the operand size and
    /// `ret_eip` the return address to push.
    pub fn far_call(&mut self, sel: u16, off: u32, len: OpLen, ret_eip: u32) -> Fault<()> {
        let old_cs = self.cpu.seg(Seg::Cs).selector as u32;
        // A same-privilege CALL that overflows its stack is #SS(0).
        let mut here = OtherStack::current(self, 0);
        if !self.cpu.protected() {
            here.push(self, len, old_cs)?;
            here.push(self, len, ret_eip)?;
            self.cpu.gpr[reg::ESP] = here.esp;
            self.set_cs_real(sel, off);
            return Ok(());
        }
        let Some(d) = self.target_descriptor(sel, TaskSwitch::Call, ret_eip)? else {
            return Ok(());
        };
        let cpl = self.cpu.cpl;
        if d.is_code() {
            self.direct_code_target(sel, d)?;
            here.room(2 * len)?;
            if off > d.limit() {
                return Err(Exception::GP0);
            }
            here.push(self, len, old_cs)?;
            here.push(self, len, ret_eip)?;
            self.set_accessed(sel, d)?;
            self.cpu.gpr[reg::ESP] = here.esp;
            self.set_cs(d, sel, cpl, off);
            return Ok(());
        }
        let (tsel, td) = self.through_call_gate(sel, d, false)?;
        let toff = d.gate_offset();
        let glen = if d.sys_type() == sys_type::CALL_GATE32 { 4 } else { 2 };
        if !td.conforming() && td.dpl() < cpl {
            // SDM CALL "MORE-PRIVILEGE": TSS stack checks, room for the
            // parameters and four words, then the offset.
            let new_cpl = td.dpl();
            let n = d.gate_params();
            let mut inner = self.tss_stack(new_cpl, 0)?;
            inner.room((4 + n) * glen)?;
            if toff > td.limit() {
                return Err(Exception::GP0);
            }
            inner.push(self, glen, self.cpu.seg(Seg::Ss).selector as u32)?;
            inner.push(self, glen, self.cpu.gpr[reg::ESP])?;
            for i in (0..n).rev() {
                let v = self.peek(i * glen, glen)?;
                inner.push(self, glen, v)?;
            }
            inner.push(self, glen, old_cs)?;
            inner.push(self, glen, ret_eip)?;
            self.set_accessed(tsel, td)?;
            inner.commit(self);
            self.set_cs(td, tsel, new_cpl, toff);
            return Ok(());
        }
        here.room(2 * glen)?;
        if toff > td.limit() {
            return Err(Exception::GP0);
        }
        here.push(self, glen, old_cs)?;
        here.push(self, glen, ret_eip)?;
        self.set_accessed(tsel, td)?;
        self.cpu.gpr[reg::ESP] = here.esp;
        self.set_cs(td, tsel, cpl, toff);
        Ok(())
    }

    /// Checks the code selector a far RET or IRET returns to.
    fn return_code_target(&mut self, sel: u16) -> Fault<Descriptor> {
        if is_null(sel) {
            return Err(Exception::GP0);
        }
        let d = self.read_descriptor(sel)?;
        let r = rpl(sel);
        if !d.is_code() || r < self.cpu.cpl || (d.conforming() && d.dpl() > r) || (!d.conforming() && d.dpl() != r) {
            return Err(gp(sel));
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_error(sel)));
        }
        Ok(d)
    }

    /// Checks the SS a return to an outer ring loads.
    fn return_stack_target(&mut self, ss: u16, pl: u8) -> Fault<Descriptor> {
        if is_null(ss) {
            return Err(Exception::GP0);
        }
        let d = self.read_descriptor(ss)?;
        if !valid_stack(d, ss, pl) {
            return Err(gp(ss));
        }
        if !d.present() {
            return Err(Exception::StackFault(sel_error(ss)));
        }
        Ok(d)
    }

    /// Pops `cs:eip` (and for an outer ring `ss:esp`) after checking them
    /// all; `skip` bytes sit between the return address and the outer
    /// stack pointer (far RET imm16, IRET's EFLAGS). `release` bytes are
    /// released from the new stack too.
    fn far_return(&mut self, len: OpLen, skip: u32, release: u32) -> Fault<()> {
        let eip = self.peek(0, len)?;
        let sel = self.peek(len, len)? as u16;
        if !self.cpu.protected() {
            self.set_stack_ptr(self.stack_ptr().wrapping_add(2 * len + skip));
            self.set_cs_real(sel, eip);
            return Ok(());
        }
        let d = self.return_code_target(sel)?;
        let r = rpl(sel);
        if r == self.cpu.cpl {
            if eip > d.limit() {
                return Err(Exception::GP0);
            }
            self.set_accessed(sel, d)?;
            self.set_stack_ptr(self.stack_ptr().wrapping_add(2 * len + skip));
            self.set_cs(d, sel, r, eip);
            return Ok(());
        }
        // RETURN-TO-OUTER-PRIVILEGE-LEVEL: the SS checks come before the
        // EIP limit check.
        let esp = self.peek(2 * len + skip, len)?;
        let ss = self.peek(3 * len + skip, len)? as u16;
        let sd = self.return_stack_target(ss, r)?;
        if eip > d.limit() {
            return Err(Exception::GP0);
        }
        self.set_accessed(ss, sd)?;
        self.set_accessed(sel, d)?;
        self.set_cs(d, sel, r, eip);
        self.cpu.seg[Seg::Ss as usize] = sd.to_segment(ss);
        self.cpu.seg[Seg::Ss as usize].attr |= attr::ACCESSED;
        let esp = esp.wrapping_add(release);
        if len == 4 || self.cpu.stack32() {
            self.set_stack_ptr(esp);
        } else {
            self.set_stack_ptr(esp & 0xffff);
        }
        self.null_inaccessible_segments();
        Ok(())
    }

    /// RETF [imm16].
    pub fn far_ret(&mut self, len: OpLen, imm: u32) -> Fault<()> {
        self.far_return(len, imm, imm)
    }

    /// IRET / IRETD.
    pub fn iret(&mut self, len: OpLen) -> Fault<()> {
        if self.cpu.protected() && self.cpu.eflags & flags::NT != 0 {
            return self.task_return();
        }
        let new_flags = self.peek(2 * len, len)?;
        if self.cpu.protected() && len == 4 && new_flags & flags::VM != 0 && self.cpu.cpl == 0 {
            return Err(self.unsupported("IRET to virtual-8086 mode"));
        }
        let old_cpl = self.cpu.cpl;
        self.far_return(len, len, 0)?;
        self.cpu.eflags = self.merge_eflags(new_flags, len, old_cpl, true);
        Ok(())
    }

    /// The EFLAGS that POPF or IRET leaves when popping `new` at privilege
    /// `cpl`: IOPL changes only at CPL 0, IF only when CPL <= IOPL (the
    /// silent part Robin & Irvine point at), a 16-bit pop keeps the high
    /// half. IRET also restores RF.
    pub fn merge_eflags(&self, new: u32, len: OpLen, cpl: u8, iret: bool) -> u32 {
        let old = self.cpu.eflags;
        let mut writable = flags::ARITH | flags::TF | flags::DF | flags::NT | flags::AC | flags::ID;
        if iret {
            writable |= flags::RF;
        }
        if !self.cpu.protected() || cpl == 0 {
            writable |= flags::IOPL;
        }
        if !self.cpu.protected() || cpl <= self.cpu.iopl() {
            writable |= flags::IF;
        }
        if len == 2 {
            writable &= 0xffff;
        }
        (old & !writable) | (new & writable) | flags::FIXED1
    }

    /// SYSENTER (SDM Vol. 2): flat ring-0 CS/SS from IA32_SYSENTER_CS.
    pub fn sysenter(&mut self) -> Fault<()> {
        let cs = self.cpu.sysenter_cs as u16;
        if !self.cpu.protected() || is_null(cs) {
            return Err(Exception::GP0);
        }
        self.cpu.eflags &= !(flags::VM | flags::IF | flags::RF);
        self.load_flat(cs & 0xfffc, 0);
        self.cpu.gpr[reg::ESP] = self.cpu.sysenter_esp;
        self.cpu.eip = self.cpu.sysenter_eip;
        Ok(())
    }

    /// SYSEXIT: back to flat ring-3 CS/SS at IA32_SYSENTER_CS + 16/24,
    /// EIP from EDX and ESP from ECX.
    pub fn sysexit(&mut self) -> Fault<()> {
        let cs = self.cpu.sysenter_cs as u16;
        if !self.cpu.protected() || self.cpu.cpl != 0 || is_null(cs) {
            return Err(Exception::GP0);
        }
        self.load_flat((cs.wrapping_add(16)) | 3, 3);
        self.cpu.gpr[reg::ESP] = self.cpu.gpr[reg::ECX];
        self.cpu.eip = self.cpu.gpr[reg::EDX];
        Ok(())
    }

    /// Loads the fixed flat CS (at `cs`) and SS (at `cs + 8`) that
    /// SYSENTER/SYSEXIT use, without reading the GDT.
    fn load_flat(&mut self, cs: u16, pl: u8) {
        use crate::cpu::Segment;
        let code = attr::CODE | attr::RW | attr::ACCESSED;
        let data = attr::RW | attr::ACCESSED;
        self.cpu.seg[Seg::Cs as usize] = Segment::flat(cs, code, pl);
        self.cpu.seg[Seg::Ss as usize] = Segment::flat(cs.wrapping_add(8), data, pl);
        self.cpu.cpl = pl;
    }
}
