//! LAR, LSL, VERR and VERW (SDM Vol. 2): unprivileged questions about a
//! descriptor. A selector outside its table, of the wrong type or not
//! visible at the current privilege clears ZF (`Ok(None)`/`Ok(false)`);
//! a page fault while reading the table is still a #PF, and in real mode
//! all four are #UD.

use super::descriptor::{is_null, rpl, sys_type, Descriptor};
use crate::cpu::{Exception, Fault};
use crate::machine::Machine;

impl Machine {
    /// The descriptor a query may look at, after the privilege check that
    /// LAR, LSL, VERR and VERW share (conforming code is exempt).
    fn visible_descriptor(&mut self, sel: u16) -> Fault<Option<Descriptor>> {
        self.require_protected()?;
        if is_null(sel) {
            return Ok(None);
        }
        let d = match self.read_descriptor(sel) {
            Ok(d) => d,
            Err(Exception::GeneralProtection(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let exempt = d.is_code() && d.conforming();
        if !exempt && (d.dpl() < self.cpu.cpl || d.dpl() < rpl(sel)) {
            return Ok(None);
        }
        Ok(Some(d))
    }

    /// LAR: the access-rights dword (masked by 0x00F0FF00) if the selector
    /// is visible and of a type LAR reports.
    pub fn query_lar(&mut self, sel: u16) -> Fault<Option<u32>> {
        let Some(d) = self.visible_descriptor(sel)? else { return Ok(None) };
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
        Ok(ok.then_some((d.raw >> 32) as u32 & 0x00f0_ff00))
    }

    /// LSL: the byte-granular limit if visible and of a type LSL reports.
    pub fn query_lsl(&mut self, sel: u16) -> Fault<Option<u32>> {
        let Some(d) = self.visible_descriptor(sel)? else { return Ok(None) };
        let ok = d.is_segment()
            || matches!(
                d.sys_type(),
                sys_type::TSS16_AVAIL
                    | sys_type::LDT
                    | sys_type::TSS16_BUSY
                    | sys_type::TSS32_AVAIL
                    | sys_type::TSS32_BUSY
            );
        Ok(ok.then_some(d.limit()))
    }

    /// VERR: whether the segment is readable at the current privilege.
    pub fn query_verr(&mut self, sel: u16) -> Fault<bool> {
        Ok(self.visible_descriptor(sel)?.is_some_and(|d| d.is_data() || (d.is_code() && d.rw())))
    }

    /// VERW: whether the segment is writable at the current privilege.
    pub fn query_verw(&mut self, sel: u16) -> Fault<bool> {
        Ok(self.visible_descriptor(sel)?.is_some_and(|d| d.is_data() && d.rw()))
    }
}
