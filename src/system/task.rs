//! Hardware task switching (SDM Vol. 3 §7.3; Vol. 2 JMP and CALL
//! "TASK-GATE"/"TASK-STATE-SEGMENT", INT n "TASK-GATE", IRET "TASK-RETURN").
//!
//! ```text
//!   JMP/CALL TSS or task gate ─┐
//!   IDT task gate ─────────────┼─► checks (no state changed; faults are
//!   IRET with NT (back link) ──┘    the old task's) ─► commit: save the old
//!       task, busy bits, back link, TR, CR0.TS, CR3, registers ─► load and
//!       check LDTR, CS, SS, DS, ES, FS, GS ─► error code ─► EIP limit
//!       (faults after the commit belong to the new task: raised here)
//! ```
//!
//! Only the 32-bit TSS is implemented; a 16-bit TSS stops the machine with
//! an "unsupported" message, as does a task whose EFLAGS.VM is set. CR3 is
//! reloaded only when paging is on (what QEMU does; the SDM's step 12 lists
//! it without saying). The checks on the new task's segments follow Vol. 3
//! Table 7-1, grouped per register: LDT, CS, SS, then ES, DS, FS, GS (the
//! exact order is model specific, says the table's note).

use super::descriptor::{is_null, rpl, sel_error, sys_type, Descriptor};
use crate::cpu::state::{attr, cr0, flags, Seg};
use crate::cpu::{Exception, Fault, Segment};
use crate::machine::Machine;
use crate::memory::{Access, LinAddr, Privilege};

/// What started a task switch: it decides the busy bits, NT and the back
/// link (SDM Vol. 3 Table 7-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskSwitch {
    Jmp,
    Call,
    Iret,
    /// An exception or interrupt through a task gate in the IDT.
    Interrupt,
}

impl TaskSwitch {
    /// CALL and interrupts nest: back link written, NT set, old task busy.
    fn nests(self) -> bool {
        matches!(self, TaskSwitch::Call | TaskSwitch::Interrupt)
    }
}

/// 32-bit TSS field offsets (SDM Vol. 3 Figure 7-2).
pub mod tss {
    pub const LINK: u32 = 0x00;
    pub const CR3: u32 = 0x1c;
    pub const EIP: u32 = 0x20;
    pub const EFLAGS: u32 = 0x24;
    /// EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI, four bytes each.
    pub const GPR: u32 = 0x28;
    /// ES, CS, SS, DS, FS, GS, four bytes each.
    pub const SEG: u32 = 0x48;
    pub const LDT: u32 = 0x60;
    /// Bit 0: the debug trap flag T.
    pub const TRAP: u32 = 0x64;
    /// The smallest limit of a 32-bit TSS (SDM Vol. 3 §7.2.2).
    pub const MIN_LIMIT: u32 = 0x67;
}

/// The TSS busy bit, in the type field of the descriptor and of TR.
const BUSY: u16 = 2;

/// The state a task switch loads from a 32-bit TSS.
struct TaskState {
    cr3: u32,
    eip: u32,
    eflags: u32,
    gpr: [u32; 8],
    seg: [u16; 6],
    ldt: u16,
    trap: bool,
}

fn is_tss16(d: Descriptor) -> bool {
    matches!(d.sys_type(), sys_type::TSS16_AVAIL | sys_type::TSS16_BUSY)
}

impl Machine {
    /// A far JMP or CALL whose selector names an available TSS or a task
    /// gate (in the GDT or LDT). `ret_eip` is saved in the old task.
    pub(super) fn task_switch_far(&mut self, sel: u16, d: Descriptor, kind: TaskSwitch, ret_eip: u32) -> Fault<()> {
        let gp = Exception::GeneralProtection(sel_error(sel));
        if d.dpl() < self.cpu.cpl || d.dpl() < rpl(sel) {
            return Err(gp);
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_error(sel)));
        }
        if d.sys_type() != sys_type::TASK_GATE {
            // A TSS descriptor is only valid in the GDT.
            if sel & 4 != 0 {
                return Err(gp);
            }
            return self.task_switch(sel, d, kind, ret_eip, 0, None);
        }
        let tsel = d.gate_selector();
        let td = self.available_tss(tsel, 0)?;
        self.task_switch(tsel, td, kind, ret_eip, 0, None)
    }

    /// An interrupt or exception through a task gate in the IDT (already
    /// checked for type, DPL and presence). `error` goes on the new task's
    /// stack.
    pub(super) fn task_gate_interrupt(
        &mut self,
        gate: Descriptor,
        error: Option<u32>,
        ext: u32,
        ret_eip: u32,
    ) -> Fault<()> {
        let tsel = gate.gate_selector();
        let td = self.available_tss(tsel, ext)?;
        self.task_switch(tsel, td, TaskSwitch::Interrupt, ret_eip, ext, error)
    }

    /// IRET with NT set: back to the task in the current TSS's link field.
    pub(super) fn task_return(&mut self) -> Fault<()> {
        let tr = self.cpu.tr;
        if tr.attr & 8 == 0 {
            return Err(self.unsupported("IRET task return from a 16-bit TSS"));
        }
        let link = self.read_sys(LinAddr(tr.base.wrapping_add(tss::LINK)), 2)? as u16;
        let ts = Exception::InvalidTss(sel_error(link));
        if link & 4 != 0 {
            return Err(ts);
        }
        let d = self.read_descriptor(link).map_err(|e| gp_to(e, ts))?;
        if d.is_segment() || !matches!(d.sys_type(), sys_type::TSS32_BUSY | sys_type::TSS16_BUSY) {
            return Err(ts);
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_error(link)));
        }
        let eip = self.cpu.eip;
        self.task_switch(link, d, TaskSwitch::Iret, eip, 0, None)
    }

    /// The descriptor of the TSS a task gate names: in the GDT, an
    /// available TSS, present (#GP/#NP with the TSS selector and EXT).
    fn available_tss(&mut self, tsel: u16, ext: u32) -> Fault<Descriptor> {
        let gp = Exception::GeneralProtection(sel_error(tsel) + ext);
        if tsel & 4 != 0 {
            return Err(gp);
        }
        let td = self.read_descriptor(tsel).map_err(|e| gp_to(e, gp))?;
        if td.is_segment() || !matches!(td.sys_type(), sys_type::TSS32_AVAIL | sys_type::TSS16_AVAIL) {
            return Err(gp);
        }
        if !td.present() {
            return Err(Exception::SegmentNotPresent(sel_error(tsel) + ext));
        }
        Ok(td)
    }

    /// Switches to the task whose (checked) TSS descriptor is `d`. Faults
    /// before the commit are returned; faults after it are raised in the
    /// new task's context and the switch returns Ok.
    fn task_switch(
        &mut self,
        sel: u16,
        d: Descriptor,
        kind: TaskSwitch,
        ret_eip: u32,
        ext: u32,
        error: Option<u32>,
    ) -> Fault<()> {
        if is_tss16(d) || self.cpu.tr.attr & 8 == 0 {
            return Err(self.unsupported(format!("task switch with a 16-bit TSS (selector {sel:#06x})")));
        }
        if d.limit() < tss::MIN_LIMIT {
            return Err(Exception::InvalidTss(sel_error(sel) + ext));
        }
        let new = self.read_task_state(d.base())?;
        if new.eflags & flags::VM != 0 {
            return Err(self.unsupported("task switch to a virtual-8086 task"));
        }
        let old = self.cpu.tr;
        let old_desc = if is_null(old.selector) { None } else { self.descriptor_addr(old.selector).ok() };
        let new_desc = self.descriptor_addr(sel)?;
        // SDM Vol. 3 §7.3 step 5: everything the switch writes must be
        // there before anything is written.
        self.probe_sys_write(LinAddr(old.base.wrapping_add(tss::EIP)), tss::LDT - tss::EIP)?;
        self.probe_sys_write(LinAddr(d.base()), 2)?;
        self.probe_sys_write(new_desc.wrapping_add(5), 1)?;
        if let Some(at) = old_desc {
            self.probe_sys_write(at.wrapping_add(5), 1)?;
        }
        self.commit_task_switch(sel, d, kind, ret_eip, &new, old_desc)?;
        let loaded = self.enter_new_task(ext, error);
        if let Err(e) = loaded {
            // SDM Vol. 3 §7.3: exceptions after the commit are handled in
            // the context of the new task, at its first instruction.
            let eip = self.cpu.eip;
            self.cpu.eflags |= flags::RF;
            self.raise(e, eip);
        } else if new.trap {
            // The T flag: a #DB trap before the new task's first
            // instruction, DR6.BT set (SDM Vol. 3 §17.2.3).
            self.cpu.dr[6] |= 1 << 15;
            let eip = self.cpu.eip;
            self.raise(Exception::Debug, eip);
        }
        Ok(())
    }

    /// Reads the new task's state (and so faults on a missing page of its
    /// TSS before anything changes).
    fn read_task_state(&mut self, base: u32) -> Fault<TaskState> {
        let rd = |m: &mut Machine, off: u32, len: u32| m.read_sys(LinAddr(base.wrapping_add(off)), len);
        let mut s = TaskState {
            cr3: rd(self, tss::CR3, 4)?,
            eip: rd(self, tss::EIP, 4)?,
            eflags: rd(self, tss::EFLAGS, 4)?,
            gpr: [0; 8],
            seg: [0; 6],
            ldt: rd(self, tss::LDT, 2)? as u16,
            trap: rd(self, tss::TRAP, 2)? & 1 != 0,
        };
        for (i, r) in s.gpr.iter_mut().enumerate() {
            *r = rd(self, tss::GPR + 4 * i as u32, 4)?;
        }
        for (i, r) in s.seg.iter_mut().enumerate() {
            *r = rd(self, tss::SEG + 4 * i as u32, 2)? as u16;
        }
        Ok(s)
    }

    /// Checks that `len` bytes at a linear address can be written by the
    /// CPU (both pages when they straddle one).
    fn probe_sys_write(&mut self, lin: LinAddr, len: u32) -> Fault<()> {
        let who = Privilege::Supervisor;
        self.mmu.translate(&self.cpu, &mut self.ram, lin, Access::Write, who)?;
        let last = lin.wrapping_add(len - 1);
        if last.page() != lin.page() {
            self.mmu.translate(&self.cpu, &mut self.ram, last, Access::Write, who)?;
        }
        Ok(())
    }

    /// Steps 6–12 of SDM Vol. 3 §7.3: the old task's busy bit and state,
    /// the back link, the new busy bit, TR, CR0.TS, CR3 and the new
    /// registers. Segment caches are left invalid until checked.
    fn commit_task_switch(
        &mut self,
        sel: u16,
        d: Descriptor,
        kind: TaskSwitch,
        ret_eip: u32,
        new: &TaskState,
        old_desc: Option<LinAddr>,
    ) -> Fault<()> {
        let old = self.cpu.tr;
        if let (TaskSwitch::Jmp | TaskSwitch::Iret, Some(at)) = (kind, old_desc) {
            self.update_busy(at, false)?;
        }
        let mut eflags = self.cpu.eflags;
        if kind == TaskSwitch::Iret {
            eflags &= !flags::NT;
        }
        let base = old.base;
        let wr = |m: &mut Machine, off: u32, len: u32, v: u32| m.write_sys(LinAddr(base.wrapping_add(off)), len, v);
        wr(self, tss::EIP, 4, ret_eip)?;
        wr(self, tss::EFLAGS, 4, eflags)?;
        for i in 0..8 {
            wr(self, tss::GPR + 4 * i as u32, 4, self.cpu.gpr[i])?;
        }
        for s in Seg::ALL {
            wr(self, tss::SEG + 4 * s as u32, 2, self.cpu.seg(s).selector as u32)?;
        }
        let mut new_flags = (new.eflags & flags::WRITABLE) | flags::FIXED1;
        if kind.nests() {
            self.write_sys(LinAddr(d.base().wrapping_add(tss::LINK)), 2, old.selector as u32)?;
            new_flags |= flags::NT;
        }
        let desc = self.descriptor_addr(sel)?;
        if kind != TaskSwitch::Iret {
            self.update_busy(desc, true)?;
        }
        self.cpu.tr = d.to_segment(sel);
        self.cpu.tr.attr |= BUSY;
        self.cpu.cr0 |= cr0::TS;
        if self.cpu.paging() {
            self.cpu.cr3 = new.cr3 & 0xffff_f018;
            self.mmu.flush_tlb(false);
        }
        self.cpu.eflags = new_flags;
        self.cpu.eip = new.eip;
        self.cpu.gpr = new.gpr;
        for s in Seg::ALL {
            self.cpu.seg[s as usize] = Segment { selector: new.seg[s as usize], attr: 0, base: 0, limit: 0 };
        }
        self.cpu.ldtr = Segment { selector: new.ldt, attr: 0, base: 0, limit: 0 };
        self.cpu.cpl = rpl(new.seg[Seg::Cs as usize]);
        self.cpu.int_shadow = 0;
        self.cpu.halted = 0;
        Ok(())
    }

    /// Sets or clears the busy bit of the TSS descriptor at `at`.
    fn update_busy(&mut self, at: LinAddr, busy: bool) -> Fault<()> {
        let at = at.wrapping_add(5);
        let byte = self.read_sys(at, 1)?;
        let byte = if busy { byte | BUSY as u32 } else { byte & !(BUSY as u32) };
        self.write_sys(at, 1, byte)
    }

    /// Loads and checks the new task's LDTR and segment registers (SDM
    /// Vol. 3 Table 7-1), pushes the error code of an exception, and
    /// checks EIP against the new CS limit.
    fn enter_new_task(&mut self, ext: u32, error: Option<u32>) -> Fault<()> {
        self.load_task_ldt(ext)?;
        self.load_task_cs(ext)?;
        self.load_task_ss(ext)?;
        for s in [Seg::Es, Seg::Ds, Seg::Fs, Seg::Gs] {
            self.load_task_data(s, ext)?;
        }
        if let Some(code) = error {
            let mut stack = super::segment::OtherStack::current(self, ext);
            stack.push(self, 4, code)?;
            stack.commit(self);
        }
        if self.cpu.eip > self.cpu.seg(Seg::Cs).limit {
            return Err(Exception::GeneralProtection(ext));
        }
        Ok(())
    }

    /// A descriptor for a segment of the new task; outside its table is
    /// #TS(selector + EXT).
    fn task_descriptor(&mut self, sel: u16, ext: u32) -> Fault<Descriptor> {
        let ts = Exception::InvalidTss(sel_error(sel) + ext);
        self.read_descriptor(sel).map_err(|e| gp_to(e, ts))
    }

    fn load_task_ldt(&mut self, ext: u32) -> Fault<()> {
        let sel = self.cpu.ldtr.selector;
        if is_null(sel) {
            return Ok(());
        }
        let ts = Exception::InvalidTss(sel_error(sel) + ext);
        if sel & 4 != 0 {
            return Err(ts);
        }
        let d = self.task_descriptor(sel, ext)?;
        if d.is_segment() || d.sys_type() != sys_type::LDT || !d.present() {
            return Err(ts);
        }
        self.cpu.ldtr = d.to_segment(sel);
        Ok(())
    }

    fn load_task_cs(&mut self, ext: u32) -> Fault<()> {
        let sel = self.cpu.seg(Seg::Cs).selector;
        let ts = Exception::InvalidTss(sel_error(sel) + ext);
        if is_null(sel) {
            return Err(ts);
        }
        let d = self.task_descriptor(sel, ext)?;
        let r = rpl(sel);
        if !d.is_code() || (d.conforming() && d.dpl() > r) || (!d.conforming() && d.dpl() != r) {
            return Err(ts);
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_error(sel) + ext));
        }
        self.install(Seg::Cs, sel, d)
    }

    fn load_task_ss(&mut self, ext: u32) -> Fault<()> {
        let sel = self.cpu.seg(Seg::Ss).selector;
        let ts = Exception::InvalidTss(sel_error(sel) + ext);
        if is_null(sel) {
            return Err(ts);
        }
        let d = self.task_descriptor(sel, ext)?;
        if !super::segment::valid_stack(d, sel, self.cpu.cpl) {
            return Err(ts);
        }
        if !d.present() {
            return Err(Exception::StackFault(sel_error(sel) + ext));
        }
        self.install(Seg::Ss, sel, d)
    }

    fn load_task_data(&mut self, s: Seg, ext: u32) -> Fault<()> {
        let sel = self.cpu.seg(s).selector;
        if is_null(sel) {
            return Ok(());
        }
        let ts = Exception::InvalidTss(sel_error(sel) + ext);
        let d = self.task_descriptor(sel, ext)?;
        let readable = d.is_data() || (d.is_code() && d.rw());
        let checked = d.is_data() || !d.conforming();
        if !readable || (checked && (d.dpl() < self.cpu.cpl || d.dpl() < rpl(sel))) {
            return Err(ts);
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_error(sel) + ext));
        }
        self.install(s, sel, d)
    }

    /// Loads a checked descriptor into a segment register, accessed.
    fn install(&mut self, s: Seg, sel: u16, d: Descriptor) -> Fault<()> {
        self.set_accessed(sel, d)?;
        self.cpu.seg[s as usize] = d.to_segment(sel);
        self.cpu.seg[s as usize].attr |= attr::ACCESSED;
        Ok(())
    }
}

/// Replaces a #GP (a selector outside its table) by `to`; other faults,
/// page faults above all, stay what they are.
fn gp_to(e: Exception, to: Exception) -> Exception {
    match e {
        Exception::GeneralProtection(_) => to,
        other => other,
    }
}
