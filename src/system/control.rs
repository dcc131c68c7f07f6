//! Control, debug and model-specific registers, the descriptor-table
//! registers, CPUID and the TSC (SDM Vol. 2 "MOV—Move to/from Control
//! Registers", "LGDT", "LTR", "CPUID", "RDMSR"...).

use super::descriptor::{is_null, sel_error, sys_type};
use crate::cpu::state::{cr0, cr4, flags};
use crate::cpu::{Exception, Fault, TableReg};
use crate::machine::Machine;
use crate::memory::LinAddr;

/// MSRs this CPU knows; every other index raises #GP(0).
pub mod msr {
    pub const TSC: u32 = 0x10;
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
}

/// CPUID leaf 1 EDX: only what bt86 implements. FPU (the x87), DE (debug
/// extensions), PSE, TSC, MSR, CX8, SEP, PGE, CMOV; no MMX, FXSR or SSE.
pub const CPUID_1_EDX: u32 =
    1 | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 11) | (1 << 13) | (1 << 15);
/// Family 6, model 1, stepping 1: an i686 (Pentium Pro) signature.
pub const CPUID_SIGNATURE: u32 = 0x0000_0611;

/// #UD for the control registers this CPU does not have.
fn valid_cr(n: u8) -> Fault<()> {
    match n {
        0 | 2 | 3 | 4 => Ok(()),
        _ => Err(Exception::InvalidOpcode),
    }
}

impl Machine {
    /// #GP(0) unless running at CPL 0.
    #[inline]
    pub fn require_cpl0(&self) -> Fault<()> {
        if self.cpu.protected() && self.cpu.cpl != 0 {
            Err(Exception::GP0)
        } else {
            Ok(())
        }
    }

    /// MOV from CRn.
    /// CR1, CR5–CR7 are #UD, which (a decode fault) takes priority over the
    /// privilege check (SDM Vol. 3 §6.9, Vol. 2 MOV CR exceptions).
    pub fn read_cr(&mut self, n: u8) -> Fault<u32> {
        valid_cr(n)?;
        self.require_cpl0()?;
        match n {
            0 => Ok(self.cpu.cr0),
            2 => Ok(self.cpu.cr2),
            3 => Ok(self.cpu.cr3),
            4 => Ok(self.cpu.cr4),
            _ => Err(Exception::InvalidOpcode),
        }
    }

    /// MOV to CRn, with the reserved-bit and consistency checks, and the
    /// TLB flushes the write implies.
    pub fn write_cr(&mut self, n: u8, v: u32) -> Fault<()> {
        valid_cr(n)?;
        self.require_cpl0()?;
        match n {
            0 => {
                if (v & cr0::PG != 0 && v & cr0::PE == 0) || (v & cr0::NW != 0 && v & cr0::CD == 0) {
                    return Err(Exception::GP0);
                }
                if v & cr0::PE == 0 && self.cpu.protected() {
                    return Err(self.unsupported("return to real mode (CR0.PE cleared)"));
                }
                let keep =
                    cr0::PE | cr0::MP | cr0::EM | cr0::TS | cr0::NE | cr0::WP | cr0::AM | cr0::NW | cr0::CD | cr0::PG;
                let new = (v & keep) | cr0::ET;
                if (new ^ self.cpu.cr0) & (cr0::PG | cr0::WP | cr0::PE) != 0 {
                    self.mmu.flush_tlb(false);
                }
                self.cpu.cr0 = new;
            }
            2 => self.cpu.cr2 = v,
            3 => {
                self.cpu.cr3 = v & 0xffff_f018;
                self.mmu.flush_tlb(true);
            }
            4 => {
                if v & !cr4::SUPPORTED != 0 {
                    return Err(Exception::GP0);
                }
                if (v ^ self.cpu.cr4) & (cr4::PSE | cr4::PGE) != 0 {
                    self.mmu.flush_tlb(false);
                }
                self.cpu.cr4 = v;
            }
            _ => return Err(Exception::InvalidOpcode),
        }
        Ok(())
    }

    /// MOV from DRn (DR4/DR5 alias DR6/DR7 unless CR4.DE).
    pub fn read_dr(&mut self, n: u8) -> Fault<u32> {
        let n = self.dr_index(n)?;
        self.require_cpl0()?;
        Ok(self.cpu.dr[n])
    }

    /// MOV to DRn.
    pub fn write_dr(&mut self, n: u8, v: u32) -> Fault<()> {
        let n = self.dr_index(n)?;
        self.require_cpl0()?;
        self.cpu.dr[n] = match n {
            6 => v | 0xffff_0ff0,
            7 => (v | 0x400) & !0xd000,
            _ => v,
        };
        Ok(())
    }

    fn dr_index(&self, n: u8) -> Fault<usize> {
        match n {
            0..=3 | 6 | 7 => Ok(n as usize),
            4 | 5 if self.cpu.cr4 & cr4::DE == 0 => Ok(n as usize + 2),
            _ => Err(Exception::InvalidOpcode),
        }
    }

    /// LGDT/LIDT from the 6-byte operand at `addr` (a 16-bit operand size
    /// loads a 24-bit base).
    pub fn load_table_reg(&mut self, addr: LinAddr, op32: bool) -> Fault<TableReg> {
        self.require_cpl0()?;
        let who = self.privilege();
        let limit = self.read_lin(addr, 2, who)? as u16;
        let base = self.read_lin(addr.wrapping_add(2), 4, who)?;
        Ok(TableReg { base: if op32 { base } else { base & 0x00ff_ffff }, limit })
    }

    /// #UD outside protected mode: LLDT, LTR, LAR, LSL, VERR and VERW are
    /// not recognised in real-address mode (SDM Vol. 2, their exceptions).
    #[inline]
    pub fn require_protected(&self) -> Fault<()> {
        if self.cpu.protected() {
            Ok(())
        } else {
            Err(Exception::InvalidOpcode)
        }
    }

    /// LLDT.
    pub fn lldt(&mut self, sel: u16) -> Fault<()> {
        self.require_protected()?;
        self.require_cpl0()?;
        if is_null(sel) {
            self.cpu.ldtr = crate::cpu::Segment { selector: sel, attr: 0, base: 0, limit: 0 };
            return Ok(());
        }
        if sel & 4 != 0 {
            return Err(Exception::GeneralProtection(sel_error(sel)));
        }
        let d = self.read_descriptor(sel)?;
        if d.is_segment() || d.sys_type() != sys_type::LDT {
            return Err(Exception::GeneralProtection(sel_error(sel)));
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_error(sel)));
        }
        self.cpu.ldtr = d.to_segment(sel);
        Ok(())
    }

    /// LTR: loads TR and marks the TSS busy.
    pub fn ltr(&mut self, sel: u16) -> Fault<()> {
        self.require_protected()?;
        self.require_cpl0()?;
        if is_null(sel) {
            return Err(Exception::GP0);
        }
        if sel & 4 != 0 {
            return Err(Exception::GeneralProtection(sel_error(sel)));
        }
        let d = self.read_descriptor(sel)?;
        let t = d.sys_type();
        if d.is_segment() || (t != sys_type::TSS16_AVAIL && t != sys_type::TSS32_AVAIL) {
            return Err(Exception::GeneralProtection(sel_error(sel)));
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_error(sel)));
        }
        let at = self.descriptor_addr(sel)?.wrapping_add(5);
        let byte = self.read_sys(at, 1)?;
        self.write_sys(at, 1, byte | 2)?;
        self.cpu.tr = d.to_segment(sel);
        self.cpu.tr.attr |= 2;
        Ok(())
    }

    /// LMSW: loads PE, MP, EM and TS; it cannot clear PE.
    pub fn lmsw(&mut self, v: u16) -> Fault<()> {
        self.require_cpl0()?;
        let bits = cr0::MP | cr0::EM | cr0::TS;
        let new = (self.cpu.cr0 & !bits) | (v as u32 & (bits | cr0::PE));
        self.cpu.cr0 = new | (self.cpu.cr0 & cr0::PE);
        Ok(())
    }

    /// CLTS.
    pub fn clts(&mut self) -> Fault<()> {
        self.require_cpl0()?;
        self.cpu.cr0 &= !cr0::TS;
        Ok(())
    }

    /// CPUID for leaf EAX (ECX ignored): returns EAX, EBX, ECX, EDX.
    pub fn cpuid(&self, leaf: u32) -> [u32; 4] {
        // "GenuineIntel" would promise Intel errata; say what this is.
        let vendor = *b"bt86VirtCPU ";
        let word = |i: usize| u32::from_le_bytes([vendor[i], vendor[i + 1], vendor[i + 2], vendor[i + 3]]);
        match leaf {
            0 => [1, word(0), word(8), word(4)],
            0x8000_0000 => [0x8000_0000, 0, 0, 0],
            // Leaves past the maximum return the highest basic leaf (Intel).
            _ => [CPUID_SIGNATURE, 0, 0, CPUID_1_EDX],
        }
    }

    /// RDTSC: #GP(0) at CPL > 0 when CR4.TSD is set.
    pub fn rdtsc(&self) -> Fault<u64> {
        if self.cpu.cr4 & cr4::TSD != 0 && self.cpu.cpl != 0 {
            return Err(Exception::GP0);
        }
        Ok(self.tsc())
    }

    /// The time-stamp counter: virtual nanoseconds plus what WRMSR set.
    pub fn tsc(&self) -> u64 {
        self.clock.now().wrapping_add(self.cpu_tsc_offset)
    }

    /// RDMSR.
    pub fn rdmsr(&self, index: u32) -> Fault<u64> {
        self.require_cpl0()?;
        match index {
            msr::TSC => Ok(self.tsc()),
            msr::SYSENTER_CS => Ok(self.cpu.sysenter_cs as u64),
            msr::SYSENTER_ESP => Ok(self.cpu.sysenter_esp as u64),
            msr::SYSENTER_EIP => Ok(self.cpu.sysenter_eip as u64),
            _ => Err(Exception::GP0),
        }
    }

    /// WRMSR.
    pub fn wrmsr(&mut self, index: u32, v: u64) -> Fault<()> {
        self.require_cpl0()?;
        match index {
            msr::TSC => self.cpu_tsc_offset = v.wrapping_sub(self.clock.now()),
            msr::SYSENTER_CS => self.cpu.sysenter_cs = v as u32 & 0xffff,
            msr::SYSENTER_ESP => self.cpu.sysenter_esp = v as u32,
            msr::SYSENTER_EIP => self.cpu.sysenter_eip = v as u32,
            _ => return Err(Exception::GP0),
        }
        Ok(())
    }

    /// CLI and STI: allowed when CPL <= IOPL (no VME/PVI on this CPU).
    pub fn set_if(&mut self, on: bool) -> Fault<()> {
        if self.cpu.protected() && self.cpu.cpl > self.cpu.iopl() {
            return Err(Exception::GP0);
        }
        if on {
            if self.cpu.eflags & flags::IF == 0 {
                self.cpu.int_shadow = 1;
            }
            self.cpu.eflags |= flags::IF;
        } else {
            self.cpu.eflags &= !flags::IF;
        }
        Ok(())
    }

    /// The EFLAGS image PUSHF stores: VM and RF read as zero.
    pub fn pushf_value(&self) -> u32 {
        self.cpu.eflags & !(flags::VM | flags::RF)
    }

    /// Whether IN/OUT of `len` bytes at `port` is allowed: CPL <= IOPL, or
    /// every bit for those ports clear in the TSS I/O permission bitmap
    /// (SDM Vol. 1 §19.5.2).
    pub fn check_io(&mut self, port: u16, len: u32) -> Fault<()> {
        if !self.cpu.protected() || self.cpu.cpl <= self.cpu.iopl() {
            return Ok(());
        }
        let tr = self.cpu.tr;
        if tr.attr & 0xf != sys_type::TSS32_BUSY as u16 || tr.limit < 103 {
            return Err(Exception::GP0);
        }
        let map = self.read_sys(LinAddr(tr.base.wrapping_add(102)), 2)?;
        let byte = map + port as u32 / 8;
        if byte + 1 > tr.limit {
            return Err(Exception::GP0);
        }
        let bits = self.read_sys(LinAddr(tr.base.wrapping_add(byte)), 2)?;
        let mask = ((1u32 << len) - 1) << (port % 8);
        if bits & mask != 0 {
            return Err(Exception::GP0);
        }
        Ok(())
    }
}
