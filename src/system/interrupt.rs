//! Interrupt and exception delivery (SDM Vol. 3 §6.12, Vol. 2 "INT n"):
//! through the IDT in protected mode, the IVT in real mode; interrupt and
//! trap gates, stack switches through the TSS, and the double-fault rules
//! (SDM Vol. 3 Table 6-5).

use super::descriptor::{is_null, sel_error, sys_type};
use super::segment::{valid_stack, OtherStack};
use crate::cpu::state::{attr, flags, reg};
use crate::cpu::{Exception, Fault, Seg};
use crate::machine::{Fatal, Machine};
use crate::memory::{LinAddr, Privilege};

/// Where an interrupt comes from: that decides the gate-DPL check and the
/// EXT bit of error codes raised while delivering it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// An exception raised by the CPU.
    Exception,
    /// A hardware interrupt from the PIC.
    External,
    /// INT n, INT3 or INTO: the gate's DPL must be at least the CPL.
    Software,
}

impl Machine {
    /// Delivers `vector` with the given return EIP (the faulting
    /// instruction for faults, the next one for traps and interrupts).
    /// On error nothing has been committed and the caller raises the
    /// returned exception instead.
    pub fn deliver_interrupt(&mut self, vector: u8, error: Option<u32>, kind: EventKind, ret_eip: u32) -> Fault<()> {
        if !self.cpu.protected() {
            return self.deliver_real(vector, ret_eip);
        }
        let ext = (kind != EventKind::Software) as u32;
        let idt_err = vector as u32 * 8 + 2 + ext;
        let gate = self.read_idt_gate(vector, ext != 0)?;
        // SDM Vol. 2 INT n: gate type, then the DPL of a software
        // interrupt, then presence.
        let (gate32, int_gate) = match (gate.is_segment(), gate.sys_type()) {
            (false, sys_type::INT_GATE32) => (true, true),
            (false, sys_type::TRAP_GATE32) => (true, false),
            (false, sys_type::INT_GATE16) => (false, true),
            (false, sys_type::TRAP_GATE16) => (false, false),
            (false, sys_type::TASK_GATE) => (false, false),
            _ => return Err(Exception::GeneralProtection(idt_err)),
        };
        if kind == EventKind::Software && gate.dpl() < self.cpu.cpl {
            return Err(Exception::GeneralProtection(vector as u32 * 8 + 2));
        }
        if !gate.present() {
            return Err(Exception::SegmentNotPresent(idt_err));
        }
        if gate.sys_type() == sys_type::TASK_GATE {
            return self.task_gate_interrupt(gate, error, ext, ret_eip);
        }
        let sel = gate.gate_selector();
        if is_null(sel) {
            return Err(Exception::GeneralProtection(ext));
        }
        let sel_err = sel_error(sel) + ext;
        let d = self.read_descriptor(sel).map_err(|e| match e {
            Exception::GeneralProtection(_) => Exception::GeneralProtection(sel_err),
            other => other,
        })?;
        let cpl = self.cpu.cpl;
        if !d.is_code() || d.dpl() > cpl {
            return Err(Exception::GeneralProtection(sel_err));
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_err));
        }
        let new_cpl = if d.conforming() { cpl } else { d.dpl() };
        let len = if gate32 { 4 } else { 2 };
        let words = 3 + error.is_some() as u32 + if new_cpl < cpl { 2 } else { 0 };
        let mut stack = if new_cpl < cpl { self.tss_stack(new_cpl, ext)? } else { OtherStack::current(self, ext) };
        stack.room(words * len)?;
        // The gate's offset is checked only after the stack (#GP(EXT)).
        let offset = gate.gate_offset();
        if offset > d.limit() {
            return Err(Exception::GeneralProtection(ext));
        }
        if new_cpl < cpl {
            stack.push(self, len, self.cpu.seg(Seg::Ss).selector as u32)?;
            stack.push(self, len, self.cpu.gpr[reg::ESP])?;
        }
        stack.push(self, len, self.cpu.eflags)?;
        stack.push(self, len, self.pushed_cs() as u32)?;
        stack.push(self, len, ret_eip)?;
        if let Some(code) = error {
            stack.push(self, len, code)?;
        }
        self.set_accessed(sel, d)?;
        // Committed from here on: nothing below can fault.
        stack.commit(self);
        self.cpu.seg[Seg::Cs as usize] = d.to_segment((sel & !3) | new_cpl as u16);
        self.cpu.seg[Seg::Cs as usize].attr |= attr::ACCESSED;
        self.cpu.cpl = new_cpl;
        self.cpu.eip = offset;
        self.cpu.eflags &= !(flags::TF | flags::NT | flags::RF | flags::VM);
        if int_gate {
            self.cpu.eflags &= !flags::IF;
        }
        self.cpu.halted = 0;
        Ok(())
    }

    /// The CS an interrupt frame holds: the CS selector, whose RPL is the
    /// CPL. Under a monitor, which reflects every event to the guest's
    /// handler by writing the frame itself, the RPL is the *virtual* CPL:
    /// the real CS of a guest kernel that loaded it at CPL 1 has RPL 1.
    fn pushed_cs(&self) -> u16 {
        let sel = self.cpu.seg(Seg::Cs).selector;
        if self.monitor.is_some() {
            (sel & !3) | self.cpu.cpl as u16
        } else {
            sel
        }
    }

    /// Real-mode delivery through the interrupt vector table. SP moves
    /// only once all three words are pushed.
    fn deliver_real(&mut self, vector: u8, ret_eip: u32) -> Fault<()> {
        let off = vector as u32 * 4;
        if off + 3 > self.cpu.idtr.limit as u32 {
            return Err(Exception::GP0);
        }
        let entry = self.read_lin(LinAddr(self.cpu.idtr.base.wrapping_add(off)), 4, Privilege::Supervisor)?;
        let mut stack = OtherStack::current(self, 0);
        stack.push(self, 2, self.cpu.eflags)?;
        stack.push(self, 2, self.cpu.seg(Seg::Cs).selector as u32)?;
        stack.push(self, 2, ret_eip)?;
        self.cpu.gpr[reg::ESP] = stack.esp;
        let cs = &mut self.cpu.seg[Seg::Cs as usize];
        cs.selector = (entry >> 16) as u16;
        cs.base = (entry >> 16) << 4;
        self.cpu.eip = entry & 0xffff;
        self.cpu.eflags &= !(flags::IF | flags::TF | flags::AC | flags::RF);
        self.cpu.halted = 0;
        Ok(())
    }

    /// The inner stack for privilege level `pl`, from the current TSS, with
    /// the checks of SDM Vol. 3 §6.12.1 and Vol. 2 INT n (#TS on a bad SS,
    /// #SS if absent). Pushes past its limit raise #SS(SS selector + EXT).
    pub fn tss_stack(&mut self, pl: u8, ext: u32) -> Fault<OtherStack> {
        let tr = self.cpu.tr;
        let tr_err = Exception::InvalidTss(sel_error(tr.selector) + ext);
        let tss32 = tr.attr & 8 != 0;
        let (esp_off, ss_off, size) =
            if tss32 { (4 + 8 * pl as u32, 8 + 8 * pl as u32, 4) } else { (2 + 4 * pl as u32, 4 + 4 * pl as u32, 2) };
        if ss_off + 1 > tr.limit {
            return Err(tr_err);
        }
        let esp = self.read_sys(LinAddr(tr.base.wrapping_add(esp_off)), size)?;
        let ss = self.read_sys(LinAddr(tr.base.wrapping_add(ss_off)), 2)? as u16;
        let ts = Exception::InvalidTss(sel_error(ss) + ext);
        if is_null(ss) {
            return Err(Exception::InvalidTss(ext));
        }
        // Outside the table is #TS; a page fault reading it stays a #PF.
        let d = self.read_descriptor(ss).map_err(|e| match e {
            Exception::GeneralProtection(_) => ts,
            other => other,
        })?;
        if !valid_stack(d, ss, pl) {
            return Err(ts);
        }
        if !d.present() {
            return Err(Exception::StackFault(sel_error(ss) + ext));
        }
        self.set_accessed(ss, d)?;
        let mut seg = d.to_segment(ss);
        seg.attr |= attr::ACCESSED;
        Ok(OtherStack { ss: seg, esp, who: Privilege::Supervisor, err: sel_error(ss) + ext })
    }

    /// Raises an exception at the current instruction: delivers it, and
    /// applies the double- and triple-fault rules if delivery itself
    /// faults. `ret_eip` is what the handler sees as the saved EIP.
    pub fn raise(&mut self, e: Exception, ret_eip: u32) {
        self.monitor_reflects(false);
        let mut first = e;
        for _ in 0..4 {
            if let Exception::PageFault { addr, .. } = first {
                self.cpu.cr2 = addr;
            }
            let second = match self.deliver_interrupt(first.vector(), first.error_code(), EventKind::Exception, ret_eip)
            {
                Ok(()) => return,
                Err(second) => second,
            };
            if self.fatal.is_some() {
                return;
            }
            // A page fault on the way loads CR2 when it happens, even if it
            // then becomes part of a double fault.
            if let Exception::PageFault { addr, .. } = second {
                self.cpu.cr2 = addr;
            }
            if first == Exception::DoubleFault {
                break;
            }
            let page_fault = |x: Exception| matches!(x, Exception::PageFault { .. });
            let double = (first.is_contributory() && second.is_contributory())
                || (page_fault(first) && (second.is_contributory() || page_fault(second)));
            first = if double { Exception::DoubleFault } else { second };
        }
        self.fatal = Some(Fatal::TripleFault);
    }

    /// Delivers a hardware interrupt; a fault on the way is raised as an
    /// exception with the interrupted EIP.
    pub fn deliver_external(&mut self, vector: u8) {
        self.monitor_reflects(true);
        let eip = self.cpu.eip;
        if let Err(e) = self.deliver_interrupt(vector, None, EventKind::External, eip) {
            if self.fatal.is_none() {
                self.raise(e, eip);
            }
        }
    }
}
