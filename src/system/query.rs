//! LAR, LSL, VERR and VERW (SDM Vol. 2): unprivileged questions about a
//! descriptor. They never fault on a bad selector; they clear ZF instead.

use super::descriptor::{is_null, rpl, sys_type, Descriptor};
use crate::machine::Machine;

impl Machine {
    /// The descriptor a query may look at, after the privilege check that
    /// LAR, LSL, VERR and VERW share (conforming code is exempt).
    fn visible_descriptor(&mut self, sel: u16) -> Option<Descriptor> {
        if is_null(sel) {
            return None;
        }
        let d = self.read_descriptor(sel).ok()?;
        let exempt = d.is_code() && d.conforming();
        if !exempt && (d.dpl() < self.cpu.cpl || d.dpl() < rpl(sel)) {
            return None;
        }
        Some(d)
    }

    /// LAR: the access-rights dword (masked by 0x00F0FF00) if the selector
    /// is visible and of a type LAR reports.
    pub fn lar(&mut self, sel: u16) -> Option<u32> {
        let d = self.visible_descriptor(sel)?;
        let ok = d.is_segment()
            || matches!(
                d.sys_type(),
                sys_type::TSS16_AVAIL
                    | sys_type::LDT
                    | sys_type::TSS16_BUSY
                    | sys_type::CALL_GATE16
                    | sys_type::TASK_GATE
                    | sys_type::TSS32_AVAIL
                    | sys_type::TSS32_BUSY
                    | sys_type::CALL_GATE32
            );
        ok.then_some((d.raw >> 32) as u32 & 0x00f0_ff00)
    }

    /// LSL: the byte-granular limit if visible and of a type LSL reports.
    pub fn lsl(&mut self, sel: u16) -> Option<u32> {
        let d = self.visible_descriptor(sel)?;
        let ok = d.is_segment()
            || matches!(
                d.sys_type(),
                sys_type::TSS16_AVAIL
                    | sys_type::LDT
                    | sys_type::TSS16_BUSY
                    | sys_type::TSS32_AVAIL
                    | sys_type::TSS32_BUSY
            );
        ok.then_some(d.limit())
    }

    /// VERR: whether the segment is readable at the current privilege.
    pub fn verr(&mut self, sel: u16) -> bool {
        self.visible_descriptor(sel).is_some_and(|d| d.is_data() || (d.is_code() && d.rw()))
    }

    /// VERW: whether the segment is writable at the current privilege.
    pub fn verw(&mut self, sel: u16) -> bool {
        self.visible_descriptor(sel).is_some_and(|d| d.is_data() && d.rw())
    }
}
