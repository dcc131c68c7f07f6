//! Segment and gate descriptors (SDM Vol. 3 §3.4.5, §5.8, §6.11) and
//! reading them from the GDT or LDT.

use crate::cpu::state::attr;
use crate::cpu::{Exception, Fault, Segment};
use crate::machine::Machine;
use crate::memory::LinAddr;

/// System descriptor types (S = 0).
pub mod sys_type {
    pub const TSS16_AVAIL: u8 = 1;
    pub const LDT: u8 = 2;
    pub const TSS16_BUSY: u8 = 3;
    pub const CALL_GATE16: u8 = 4;
    pub const TASK_GATE: u8 = 5;
    pub const INT_GATE16: u8 = 6;
    pub const TRAP_GATE16: u8 = 7;
    pub const TSS32_AVAIL: u8 = 9;
    pub const TSS32_BUSY: u8 = 11;
    pub const CALL_GATE32: u8 = 12;
    pub const INT_GATE32: u8 = 14;
    pub const TRAP_GATE32: u8 = 15;
}

/// One 8-byte descriptor as read from a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub raw: u64,
}

impl Descriptor {
    /// Attribute bits 40..56 without the limit nibble, as `Segment::attr`.
    #[inline]
    pub fn attr(self) -> u16 {
        ((self.raw >> 40) as u16) & 0xf0ff
    }
    pub fn present(self) -> bool {
        self.attr() & attr::P != 0
    }
    pub fn dpl(self) -> u8 {
        ((self.attr() & attr::DPL) >> attr::DPL_SHIFT) as u8
    }
    /// S = 1: a code or data segment.
    pub fn is_segment(self) -> bool {
        self.attr() & attr::S != 0
    }
    pub fn is_code(self) -> bool {
        self.is_segment() && self.attr() & attr::CODE != 0
    }
    pub fn is_data(self) -> bool {
        self.is_segment() && self.attr() & attr::CODE == 0
    }
    /// Code: conforming. Data: expand-down.
    pub fn conforming(self) -> bool {
        self.attr() & attr::DC != 0
    }
    /// Code: readable. Data: writable.
    pub fn rw(self) -> bool {
        self.attr() & attr::RW != 0
    }
    /// The 4-bit type of a system descriptor.
    pub fn sys_type(self) -> u8 {
        (self.attr() & 0xf) as u8
    }
    pub fn base(self) -> u32 {
        (((self.raw >> 16) & 0xff_ffff) | ((self.raw >> 32) & 0xff00_0000)) as u32
    }
    /// The limit in bytes, scaled by G.
    pub fn limit(self) -> u32 {
        let raw = ((self.raw & 0xffff) | ((self.raw >> 32) & 0xf_0000)) as u32;
        if self.attr() & attr::G != 0 {
            (raw << 12) | 0xfff
        } else {
            raw
        }
    }
    /// The segment-register cache this descriptor loads.
    pub fn to_segment(self, selector: u16) -> Segment {
        Segment { selector, attr: self.attr(), base: self.base(), limit: self.limit() }
    }
    /// Gates: the target selector.
    pub fn gate_selector(self) -> u16 {
        (self.raw >> 16) as u16
    }
    /// Gates: the target offset (16-bit gates use the low half only).
    pub fn gate_offset(self) -> u32 {
        let off = ((self.raw & 0xffff) | ((self.raw >> 32) & 0xffff_0000)) as u32;
        match self.sys_type() {
            sys_type::CALL_GATE16 | sys_type::INT_GATE16 | sys_type::TRAP_GATE16 => off & 0xffff,
            _ => off,
        }
    }
    /// Call gates: the number of stack parameters to copy.
    pub fn gate_params(self) -> u32 {
        ((self.raw >> 32) & 0x1f) as u32
    }
}

/// A selector's RPL.
#[inline]
pub fn rpl(sel: u16) -> u8 {
    (sel & 3) as u8
}

/// Whether a selector is null (index 0 in the GDT).
#[inline]
pub fn is_null(sel: u16) -> bool {
    sel & 0xfffc == 0
}

/// The error code a selector fault pushes: the selector with RPL cleared
/// (EXT = 0, IDT = 0, TI kept).
#[inline]
pub fn sel_error(sel: u16) -> u32 {
    (sel & 0xfffc) as u32
}

impl Machine {
    /// The linear address of a selector's descriptor, checked against the
    /// GDT or LDT limit; #GP(selector) outside it.
    pub fn descriptor_addr(&self, sel: u16) -> Fault<LinAddr> {
        let index = (sel & 0xfff8) as u32;
        let (base, limit) = if sel & 4 != 0 {
            let ldt = &self.cpu.ldtr;
            if !ldt.present() || is_null(ldt.selector) {
                return Err(Exception::GeneralProtection(sel_error(sel)));
            }
            (ldt.base, ldt.limit)
        } else {
            (self.cpu.gdtr.base, self.cpu.gdtr.limit as u32)
        };
        if index + 7 > limit {
            return Err(Exception::GeneralProtection(sel_error(sel)));
        }
        Ok(LinAddr(base.wrapping_add(index)))
    }

    /// Reads a selector's descriptor; while the deprivileged CPU runs under
    /// a monitor, the monitor's shadow of it (`depriv::shadow`).
    pub fn read_descriptor(&mut self, sel: u16) -> Fault<Descriptor> {
        let at = self.descriptor_addr(sel)?;
        let lo = self.read_sys(at, 4)? as u64;
        let hi = self.read_sys(at.wrapping_add(4), 4)? as u64;
        let d = Descriptor { raw: lo | (hi << 32) };
        Ok(if self.shadowing() { super::depriv::shadow(d) } else { d })
    }

    /// Sets a code/data descriptor's accessed bit in its table, as a
    /// segment load does. (Under a monitor the deprivileged CPU sets it in
    /// the shadow, and the monitor mirrors it into the guest's table.)
    pub fn set_accessed(&mut self, sel: u16, d: Descriptor) -> Fault<()> {
        if d.is_segment() && d.attr() & attr::ACCESSED == 0 {
            let at = self.descriptor_addr(sel)?.wrapping_add(5);
            let byte = self.read_sys(at, 1)?;
            self.write_sys(at, 1, byte | attr::ACCESSED as u32)?;
        }
        Ok(())
    }

    /// Reads the 8-byte gate for `vector` from the IDT; #GP(vector*8+2+EXT)
    /// past the limit.
    pub fn read_idt_gate(&mut self, vector: u8, ext: bool) -> Fault<Descriptor> {
        let off = vector as u32 * 8;
        if off + 7 > self.cpu.idtr.limit as u32 {
            return Err(Exception::GeneralProtection(off + 2 + ext as u32));
        }
        let at = LinAddr(self.cpu.idtr.base.wrapping_add(off));
        let lo = self.read_sys(at, 4)? as u64;
        let hi = self.read_sys(at.wrapping_add(4), 4)? as u64;
        Ok(Descriptor { raw: lo | (hi << 32) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_flat_code_descriptor() {
        // The classic flat ring-0 code segment: base 0, limit 0xfffff, G, D.
        let d = Descriptor { raw: 0x00cf_9a00_0000_ffff };
        assert_eq!(d.base(), 0);
        assert_eq!(d.limit(), 0xffff_ffff);
        assert!(d.is_code() && d.present() && d.rw());
        assert_eq!(d.dpl(), 0);
        assert_eq!(d.attr() & attr::DB, attr::DB);
    }

    #[test]
    fn decodes_base_and_byte_limit() {
        let d = Descriptor { raw: 0x1240_f234_5678_0067 };
        assert_eq!(d.base(), 0x1234_5678);
        assert_eq!(d.limit(), 0x67);
        assert_eq!(d.dpl(), 3);
    }

    #[test]
    fn decodes_gates() {
        // 32-bit interrupt gate, selector 0x08, offset 0x0010_2030, DPL 3.
        let d = Descriptor { raw: 0x0010_ee00_0008_2030 };
        assert_eq!(d.sys_type(), sys_type::INT_GATE32);
        assert_eq!(d.gate_selector(), 8);
        assert_eq!(d.gate_offset(), 0x0010_2030);
        assert_eq!(d.dpl(), 3);
    }
}
