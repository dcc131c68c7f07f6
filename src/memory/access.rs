//! Guest memory accesses as the CPU makes them: segmentation (limit and
//! type checks, SDM Vol. 3 §5.3–5.4), then paging through the MMU, then
//! RAM. Writes tell the MMU, which notices stores into code pages.
//!
//! QEMU's TCG skips segment limit checks on data accesses; bt86 follows the
//! SDM and checks them (docs/architecture.md, "Departures from QEMU").

use super::paging::{Access, Privilege};
use super::{LinAddr, PhysAddr};
use crate::cpu::state::attr;
use crate::cpu::{Exception, Fault, Seg, Segment};
use crate::machine::Machine;

impl Machine {
    /// The privilege of ordinary accesses made by the current code.
    #[inline]
    pub fn privilege(&self) -> Privilege {
        if self.cpu.cpl == 3 {
            Privilege::User
        } else {
            Privilege::Supervisor
        }
    }

    /// Segmentation: checks an access of `len` bytes at `seg:off` and
    /// returns its linear address.
    #[inline]
    pub fn lin_addr(&self, seg: Seg, off: u32, len: u32, access: Access) -> Fault<LinAddr> {
        check_segment(self.cpu.seg(seg), off, len, access).ok_or(if seg == Seg::Ss {
            Exception::StackFault(0)
        } else {
            Exception::GeneralProtection(0)
        })
    }

    /// Reads `len` (1, 2 or 4) bytes at a linear address.
    #[inline]
    pub fn read_lin(&mut self, lin: LinAddr, len: u32, who: Privilege) -> Fault<u32> {
        if lin.page_offset() + len <= 4096 {
            let pa = self.mmu.translate(&self.cpu, &mut self.ram, lin, Access::Read, who)?;
            return Ok(self.read_phys(pa, len));
        }
        let (p0, p1) = self.translate_split(lin, len, Access::Read, who)?;
        let mut v = 0u32;
        for i in 0..len {
            let a = lin.wrapping_add(i);
            let pa = if a.page() == lin.page() { p0.wrapping_add(i) } else { PhysAddr(p1.0 + a.page_offset()) };
            v |= (self.ram.read_u8(pa) as u32) << (8 * i);
        }
        Ok(v)
    }

    /// Writes `len` (1, 2 or 4) bytes at a linear address. Both pages of a
    /// page-crossing write are checked before either is written.
    #[inline]
    pub fn write_lin(&mut self, lin: LinAddr, len: u32, value: u32, who: Privilege) -> Fault<()> {
        if lin.page_offset() + len <= 4096 {
            let pa = self.mmu.translate(&self.cpu, &mut self.ram, lin, Access::Write, who)?;
            self.write_phys(pa, len, value);
            return Ok(());
        }
        let (p0, p1) = self.translate_split(lin, len, Access::Write, who)?;
        for i in 0..len {
            let a = lin.wrapping_add(i);
            let pa = if a.page() == lin.page() { p0.wrapping_add(i) } else { PhysAddr(p1.0 + a.page_offset()) };
            self.write_phys(pa, 1, value >> (8 * i));
        }
        Ok(())
    }

    fn translate_split(
        &mut self,
        lin: LinAddr,
        len: u32,
        access: Access,
        who: Privilege,
    ) -> Fault<(PhysAddr, PhysAddr)> {
        let p0 = self.mmu.translate(&self.cpu, &mut self.ram, lin, access, who)?;
        let second = LinAddr((lin.0 & !0xfff).wrapping_add(4096));
        let p1 = self.mmu.translate(&self.cpu, &mut self.ram, second, access, who)?;
        debug_assert!(lin.page_offset() + len > 4096);
        Ok((p0, p1))
    }

    /// Reads physical memory (RAM; nothing else is memory-mapped).
    #[inline]
    pub fn read_phys(&self, pa: PhysAddr, len: u32) -> u32 {
        match len {
            1 => self.ram.read_u8(pa) as u32,
            2 => self.ram.read_u16(pa) as u32,
            _ => self.ram.read_u32(pa),
        }
    }

    /// Writes physical memory and notes stores into code pages.
    #[inline]
    pub fn write_phys(&mut self, pa: PhysAddr, len: u32, value: u32) {
        self.mmu.note_write(pa, len);
        if let Some(j) = &mut self.journal {
            for k in 0..len {
                let at = PhysAddr(pa.0.wrapping_add(k));
                j.push((at, self.ram.read_u8(at)));
            }
        }
        match len {
            1 => self.ram.write_u8(pa, value as u8),
            2 => self.ram.write_u16(pa, value as u16),
            _ => self.ram.write_u32(pa, value),
        }
    }

    /// Reads `len` bytes at `seg:off` with the current privilege.
    #[inline]
    pub fn read_mem(&mut self, seg: Seg, off: u32, len: u32) -> Fault<u32> {
        let lin = self.lin_addr(seg, off, len, Access::Read)?;
        self.read_lin(lin, len, self.privilege())
    }

    /// Writes `len` bytes at `seg:off` with the current privilege.
    #[inline]
    pub fn write_mem(&mut self, seg: Seg, off: u32, len: u32, value: u32) -> Fault<()> {
        let lin = self.lin_addr(seg, off, len, Access::Write)?;
        self.write_lin(lin, len, value, self.privilege())
    }

    /// Checks that `len` bytes at `seg:off` could be written now, without
    /// writing: for instructions that must not fault half-way.
    pub fn probe_write(&mut self, seg: Seg, off: u32, len: u32) -> Fault<()> {
        let lin = self.lin_addr(seg, off, len, Access::Write)?;
        let who = self.privilege();
        self.mmu.translate(&self.cpu, &mut self.ram, lin, Access::Write, who)?;
        if lin.page_offset() + len > 4096 {
            self.translate_split(lin, len, Access::Write, who)?;
        }
        Ok(())
    }

    /// A supervisor read of a system structure (GDT, LDT, IDT, TSS) at a
    /// linear address, as the CPU makes it whatever the CPL.
    #[inline]
    pub fn read_sys(&mut self, lin: LinAddr, len: u32) -> Fault<u32> {
        self.read_lin(lin, len, Privilege::Supervisor)
    }

    /// A supervisor write of a system structure (descriptor accessed and
    /// busy bits, TSS back link).
    #[inline]
    pub fn write_sys(&mut self, lin: LinAddr, len: u32, value: u32) -> Fault<()> {
        self.write_lin(lin, len, value, Privilege::Supervisor)
    }
}

/// The segmentation checks of one access against a segment cache: presence
/// (a null selector was loaded), type (no writes to code or read-only data,
/// no reads of execute-only code) and limit, expand-down included. `None`
/// means a fault; the caller knows whether it is #GP or #SS.
#[inline]
pub fn check_segment(s: &Segment, off: u32, len: u32, access: Access) -> Option<LinAddr> {
    if s.attr & attr::P == 0 {
        return None;
    }
    let code = s.attr & attr::CODE != 0;
    match access {
        Access::Write if code || s.attr & attr::RW == 0 => return None,
        Access::Read if code && s.attr & attr::RW == 0 => return None,
        _ => {}
    }
    let last = off.wrapping_add(len - 1);
    if !code && s.attr & attr::DC != 0 {
        // Expand-down: valid offsets are limit+1 ..= 0xFFFF or 0xFFFFFFFF.
        let upper = if s.big() { u32::MAX } else { 0xffff };
        if off <= s.limit || last > upper || last < off {
            return None;
        }
    } else if last > s.limit || last < off {
        return None;
    }
    Some(LinAddr(s.base.wrapping_add(off)))
}

#[cfg(test)]
mod tests {
    //! The SDM's limit and type rules (Vol. 3 §5.3, §5.4), which QEMU's TCG
    //! does not apply to data accesses, so no guest image can check them
    //! against QEMU: the expectations here are worked out from the manual.
    use super::*;
    use crate::cpu::state::attr;

    fn data(limit: u32, extra: u16) -> Segment {
        Segment { selector: 0x10, attr: attr::P | attr::S | attr::RW | extra, base: 0x1000, limit }
    }

    #[test]
    fn expand_up_limit_is_the_last_valid_byte() {
        let s = data(0xfff, 0);
        assert_eq!(check_segment(&s, 0xffc, 4, Access::Read), Some(LinAddr(0x1ffc)));
        assert_eq!(check_segment(&s, 0xffd, 4, Access::Read), None);
        assert_eq!(check_segment(&s, 0x1000, 1, Access::Write), None);
    }

    #[test]
    fn expand_down_valid_range_is_above_the_limit() {
        // 16-bit expand-down (B=0): offsets limit+1 ..= 0xFFFF.
        let s = data(0xfff, attr::DC);
        assert_eq!(check_segment(&s, 0xfff, 1, Access::Read), None);
        assert_eq!(check_segment(&s, 0x1000, 4, Access::Read), Some(LinAddr(0x2000)));
        assert_eq!(check_segment(&s, 0xfffe, 2, Access::Read), Some(LinAddr(0x10ffe)));
        assert_eq!(check_segment(&s, 0xfffe, 4, Access::Read), None);
        // With B=1 the upper bound is 4 GiB - 1.
        let big = data(0xfff, attr::DC | attr::DB);
        assert!(check_segment(&big, 0xffff_fffc, 4, Access::Read).is_some());
    }

    #[test]
    fn type_rules() {
        let ro = Segment { attr: attr::P | attr::S, ..data(0xffff, 0) };
        assert!(check_segment(&ro, 0, 4, Access::Read).is_some());
        assert_eq!(check_segment(&ro, 0, 4, Access::Write), None);
        let exec_only = Segment { attr: attr::P | attr::S | attr::CODE, ..data(0xffff, 0) };
        assert_eq!(check_segment(&exec_only, 0, 1, Access::Read), None);
        assert!(check_segment(&exec_only, 0, 1, Access::Fetch).is_some());
        let readable_code = Segment { attr: attr::P | attr::S | attr::CODE | attr::RW, ..data(0xffff, 0) };
        assert!(check_segment(&readable_code, 0, 1, Access::Read).is_some());
        assert_eq!(check_segment(&readable_code, 0, 1, Access::Write), None);
        let null = Segment::default();
        assert_eq!(check_segment(&null, 0, 1, Access::Read), None);
    }

    #[test]
    fn data_limit_faults_are_gp_or_ss() {
        use crate::machine::{Machine, MachineConfig};
        let cfg = MachineConfig { mem_size: 4 << 20, ..MachineConfig::default() };
        let mut m = Machine::new(&cfg, Box::new(std::io::sink())).unwrap();
        m.cpu.seg[Seg::Ds as usize] = data(0xff, 0);
        m.cpu.seg[Seg::Ss as usize] = data(0xff, 0);
        assert_eq!(m.read_mem(Seg::Ds, 0x100, 1), Err(Exception::GeneralProtection(0)));
        assert_eq!(m.write_mem(Seg::Ss, 0xfe, 4, 0), Err(Exception::StackFault(0)));
        assert_eq!(m.read_mem(Seg::Ds, 0xfc, 4), Ok(0));
    }
}
