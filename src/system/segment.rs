//! Segment-register loads (MOV, POP, LDS and friends; SDM Vol. 2 "MOV —
//! Move to/from Segment Registers") and stack pushes and pops.

use super::descriptor::{is_null, rpl, sel_error, Descriptor};
use crate::cpu::state::attr;
use crate::cpu::{Exception, Fault, Seg, Segment};
use crate::machine::Machine;
use crate::memory::access::check_segment;
use crate::memory::{Access, Privilege};

impl Machine {
    /// Loads a data or stack segment register with all protected-mode
    /// checks (CS is loaded only by control transfers).
    pub fn load_segment(&mut self, seg: Seg, sel: u16) -> Fault<()> {
        debug_assert!(seg != Seg::Cs);
        if !self.cpu.protected() {
            let s = &mut self.cpu.seg[seg as usize];
            s.selector = sel;
            s.base = (sel as u32) << 4;
            return Ok(());
        }
        let cpl = self.cpu.cpl;
        if seg == Seg::Ss {
            if is_null(sel) {
                return Err(Exception::GP0);
            }
            let d = self.read_descriptor(sel)?;
            if rpl(sel) != cpl || !d.is_data() || !d.rw() || d.dpl() != cpl {
                return Err(Exception::GeneralProtection(sel_error(sel)));
            }
            if !d.present() {
                return Err(Exception::StackFault(sel_error(sel)));
            }
            self.set_accessed(sel, d)?;
            self.cpu.seg[seg as usize] = d.to_segment(sel);
            self.cpu.seg[seg as usize].attr |= attr::ACCESSED;
            return Ok(());
        }
        if is_null(sel) {
            self.cpu.seg[seg as usize] = Segment { selector: sel, attr: 0, base: 0, limit: 0 };
            return Ok(());
        }
        let d = self.read_descriptor(sel)?;
        let readable = d.is_data() || (d.is_code() && d.rw());
        let privileged = d.is_data() || !d.conforming();
        if !readable || (privileged && (rpl(sel) > d.dpl() || cpl > d.dpl())) {
            return Err(Exception::GeneralProtection(sel_error(sel)));
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_error(sel)));
        }
        self.set_accessed(sel, d)?;
        self.cpu.seg[seg as usize] = d.to_segment(sel);
        self.cpu.seg[seg as usize].attr |= attr::ACCESSED;
        Ok(())
    }

    /// After a return to an outer ring, data segment registers the new CPL
    /// may not use are nulled (SDM Vol. 2 RET/IRET, "RETURN-TO-OUTER-
    /// PRIVILEGE-LEVEL").
    pub fn null_inaccessible_segments(&mut self) {
        let cpl = self.cpu.cpl;
        for seg in [Seg::Es, Seg::Ds, Seg::Fs, Seg::Gs] {
            let s = &mut self.cpu.seg[seg as usize];
            let code = s.attr & attr::CODE != 0;
            let conforming = code && s.attr & attr::DC != 0;
            if s.present() && !conforming && s.dpl() < cpl {
                *s = Segment { selector: 0, attr: 0, base: 0, limit: 0 };
            }
        }
    }

    /// ESP or SP, as the stack segment's B bit says.
    #[inline]
    pub fn stack_ptr(&self) -> u32 {
        let esp = self.cpu.gpr[crate::cpu::state::reg::ESP];
        if self.cpu.stack32() {
            esp
        } else {
            esp & 0xffff
        }
    }

    /// Sets ESP or only SP, as the stack segment's B bit says.
    #[inline]
    pub fn set_stack_ptr(&mut self, v: u32) {
        let esp = &mut self.cpu.gpr[crate::cpu::state::reg::ESP];
        if self.cpu.seg[Seg::Ss as usize].big() {
            *esp = v;
        } else {
            *esp = (*esp & 0xffff_0000) | (v & 0xffff);
        }
    }

    /// Pushes `len` (2 or 4) bytes.
    #[inline]
    pub fn push(&mut self, len: u32, value: u32) -> Fault<()> {
        let sp = self.stack_ptr().wrapping_sub(len);
        let sp = if self.cpu.stack32() { sp } else { sp & 0xffff };
        self.write_mem(Seg::Ss, sp, len, value)?;
        self.set_stack_ptr(sp);
        Ok(())
    }

    /// Reads the `len`-byte value `depth` bytes above the stack top without
    /// popping it.
    #[inline]
    pub fn peek(&mut self, depth: u32, len: u32) -> Fault<u32> {
        let sp = self.stack_ptr().wrapping_add(depth);
        let sp = if self.cpu.stack32() { sp } else { sp & 0xffff };
        self.read_mem(Seg::Ss, sp, len)
    }

    /// Pops `len` (2 or 4) bytes.
    #[inline]
    pub fn pop(&mut self, len: u32) -> Fault<u32> {
        let v = self.peek(0, len)?;
        self.set_stack_ptr(self.stack_ptr().wrapping_add(len));
        Ok(v)
    }
}

/// A stack other than the current one, for privilege changes: pushes go
/// to `ss:esp` with its own checks and are only committed by the caller.
pub struct OtherStack {
    pub ss: Segment,
    pub esp: u32,
    pub who: Privilege,
    /// The error code of the #SS a push past the limit raises: 0 (or EXT)
    /// on the current stack, the new SS selector (+ EXT) on a stack switch
    /// (SDM Vol. 2 CALL, INT n).
    pub err: u32,
}

impl OtherStack {
    /// The current SS:ESP, whose overflow is #SS(`err`).
    pub fn current(m: &Machine, err: u32) -> OtherStack {
        OtherStack { ss: *m.cpu.seg(Seg::Ss), esp: m.cpu.gpr[crate::cpu::state::reg::ESP], who: m.privilege(), err }
    }

    /// Checks that `bytes` more bytes fit below the stack top, as the SDM
    /// does before a frame is pushed ("IF stack does not have room...").
    pub fn room(&self, bytes: u32) -> Fault<()> {
        let sp = self.esp.wrapping_sub(bytes);
        let sp = if self.ss.big() { sp } else { sp & 0xffff };
        check_segment(&self.ss, sp, bytes, Access::Write).map(|_| ()).ok_or(Exception::StackFault(self.err))
    }

    /// Pushes onto this stack; #SS(`err`) when outside its limit.
    pub fn push(&mut self, m: &mut Machine, len: u32, value: u32) -> Fault<()> {
        let sp = self.esp.wrapping_sub(len);
        let sp = if self.ss.big() { sp } else { sp & 0xffff };
        let lin = check_segment(&self.ss, sp, len, Access::Write).ok_or(Exception::StackFault(self.err))?;
        m.write_lin(lin, len, value, self.who)?;
        self.esp = if self.ss.big() { sp } else { (self.esp & 0xffff_0000) | sp };
        Ok(())
    }

    /// Makes this the current SS:ESP.
    pub fn commit(&self, m: &mut Machine) {
        m.cpu.seg[Seg::Ss as usize] = self.ss;
        m.cpu.gpr[crate::cpu::state::reg::ESP] = self.esp;
    }
}

/// Whether a descriptor may be loaded into SS at privilege `pl` with
/// selector RPL `pl` (shared by stack switches).
pub fn valid_stack(d: Descriptor, sel: u16, pl: u8) -> bool {
    !is_null(sel) && rpl(sel) == pl && d.is_data() && d.rw() && d.dpl() == pl
}
