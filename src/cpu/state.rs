//! The architectural state of the virtual IA-32 CPU.
//!
//! `CpuState` is `#[repr(C)]` so that generated code can address its fields;
//! their offsets are published by [`CpuLayout`] (computed with `offset_of!`),
//! never written by hand.

use std::mem::offset_of;

/// General-purpose register indices, in instruction-encoding order.
pub mod reg {
    pub const EAX: usize = 0;
    pub const ECX: usize = 1;
    pub const EDX: usize = 2;
    pub const EBX: usize = 3;
    pub const ESP: usize = 4;
    pub const EBP: usize = 5;
    pub const ESI: usize = 6;
    pub const EDI: usize = 7;
}

/// Segment register indices, in instruction-encoding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Seg {
    Es = 0,
    Cs = 1,
    Ss = 2,
    Ds = 3,
    Fs = 4,
    Gs = 5,
}

impl Seg {
    pub const ALL: [Seg; 6] = [Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs];

    /// The register's name, lower case.
    pub fn name(self) -> &'static str {
        ["es", "cs", "ss", "ds", "fs", "gs"][self as usize]
    }
}

/// EFLAGS bits.
pub mod flags {
    pub const CF: u32 = 1 << 0;
    /// Bit 1 always reads as one.
    pub const FIXED1: u32 = 1 << 1;
    pub const PF: u32 = 1 << 2;
    pub const AF: u32 = 1 << 4;
    pub const ZF: u32 = 1 << 6;
    pub const SF: u32 = 1 << 7;
    pub const TF: u32 = 1 << 8;
    pub const IF: u32 = 1 << 9;
    pub const DF: u32 = 1 << 10;
    pub const OF: u32 = 1 << 11;
    pub const IOPL: u32 = 3 << 12;
    pub const IOPL_SHIFT: u32 = 12;
    pub const NT: u32 = 1 << 14;
    pub const RF: u32 = 1 << 16;
    pub const VM: u32 = 1 << 17;
    pub const AC: u32 = 1 << 18;
    pub const VIF: u32 = 1 << 19;
    pub const VIP: u32 = 1 << 20;
    pub const ID: u32 = 1 << 21;
    /// The six arithmetic status flags.
    pub const ARITH: u32 = CF | PF | AF | ZF | SF | OF;
    /// Bits software can change on this CPU model (i686 class with CPUID).
    pub const WRITABLE: u32 = ARITH | TF | IF | DF | IOPL | NT | RF | AC | ID;
}

/// CR0 bits.
pub mod cr0 {
    pub const PE: u32 = 1 << 0;
    pub const MP: u32 = 1 << 1;
    pub const EM: u32 = 1 << 2;
    pub const TS: u32 = 1 << 3;
    pub const ET: u32 = 1 << 4;
    pub const NE: u32 = 1 << 5;
    pub const WP: u32 = 1 << 16;
    pub const AM: u32 = 1 << 18;
    pub const NW: u32 = 1 << 29;
    pub const CD: u32 = 1 << 30;
    pub const PG: u32 = 1 << 31;
}

/// CR4 bits this CPU implements.
pub mod cr4 {
    pub const VME: u32 = 1 << 0;
    pub const PVI: u32 = 1 << 1;
    pub const TSD: u32 = 1 << 2;
    pub const DE: u32 = 1 << 3;
    pub const PSE: u32 = 1 << 4;
    pub const PGE: u32 = 1 << 7;
    /// The bits a MOV to CR4 may set; others raise #GP.
    pub const SUPPORTED: u32 = TSD | DE | PSE | PGE;
}

/// A segment register with its hidden descriptor cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Segment {
    pub selector: u16,
    /// Descriptor bits 40..56 (type, S, DPL, P, then AVL, L, D/B, G in the
    /// high byte), as SDM Vol. 3 §3.4.5 lays them out, shifted down by 40.
    pub attr: u16,
    pub base: u32,
    /// The limit in bytes (already scaled by G).
    pub limit: u32,
}

/// Descriptor attribute bits (in `Segment::attr`).
pub mod attr {
    pub const ACCESSED: u16 = 1 << 0;
    /// Code: readable; data: writable.
    pub const RW: u16 = 1 << 1;
    /// Code: conforming; data: expand-down.
    pub const DC: u16 = 1 << 2;
    pub const CODE: u16 = 1 << 3;
    /// Code or data (as opposed to a system descriptor).
    pub const S: u16 = 1 << 4;
    pub const DPL_SHIFT: u16 = 5;
    pub const DPL: u16 = 3 << 5;
    pub const P: u16 = 1 << 7;
    pub const AVL: u16 = 1 << 12;
    /// Default operand size (code) / big (stack, expand-down bound).
    pub const DB: u16 = 1 << 14;
    pub const G: u16 = 1 << 15;
}

impl Segment {
    /// The segment's DPL.
    #[inline]
    pub fn dpl(&self) -> u8 {
        ((self.attr & attr::DPL) >> attr::DPL_SHIFT) as u8
    }
    /// Whether the descriptor cache holds a present segment.
    #[inline]
    pub fn present(&self) -> bool {
        self.attr & attr::P != 0
    }
    /// D/B bit: 32-bit default operand/address size (code) or 32-bit stack.
    #[inline]
    pub fn big(&self) -> bool {
        self.attr & attr::DB != 0
    }
    /// A flat 4 GiB ring-`dpl` segment of the given type bits, as a loader
    /// or reset would install it.
    pub fn flat(selector: u16, type_bits: u16, dpl: u8) -> Segment {
        Segment {
            selector,
            attr: type_bits | attr::S | ((dpl as u16) << attr::DPL_SHIFT) | attr::P | attr::DB | attr::G,
            base: 0,
            limit: 0xffff_ffff,
        }
    }
}

/// GDTR or IDTR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TableReg {
    pub base: u32,
    pub limit: u16,
}

/// The whole architectural state of one virtual CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct CpuState {
    /// EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI.
    pub gpr: [u32; 8],
    pub eip: u32,
    /// EFLAGS, all bits (bit 1 always set).
    pub eflags: u32,
    /// ES, CS, SS, DS, FS, GS.
    pub seg: [Segment; 6],
    pub ldtr: Segment,
    pub tr: Segment,
    pub gdtr: TableReg,
    pub idtr: TableReg,
    pub cr0: u32,
    pub cr2: u32,
    pub cr3: u32,
    pub cr4: u32,
    /// DR0–DR7 (DR4/DR5 alias DR6/DR7 when CR4.DE is clear).
    pub dr: [u32; 8],
    /// Current privilege level (CS.RPL in protected mode, 0 in real mode).
    pub cpl: u8,
    /// One when the previous instruction was STI (that enabled IF) or a
    /// MOV/POP to SS: interrupts and debug traps wait one instruction.
    pub int_shadow: u8,
    /// Set by HLT; cleared by an interrupt.
    pub halted: u8,
    pub _pad: u8,
    pub sysenter_cs: u32,
    pub sysenter_esp: u32,
    pub sysenter_eip: u32,
    /// The x87 FPU.
    pub fpu: crate::cpu::x87::X87,
}

impl Default for CpuState {
    fn default() -> Self {
        Self::reset()
    }
}

impl CpuState {
    /// The state after RESET (SDM Vol. 3 §9.1.1), except that bt86 starts
    /// guests through a loader that overwrites most of it.
    pub fn reset() -> CpuState {
        let data = |sel| Segment {
            selector: sel,
            attr: attr::P | attr::S | attr::RW | attr::ACCESSED,
            base: 0,
            limit: 0xffff,
        };
        let mut seg = [data(0); 6];
        seg[Seg::Cs as usize] = Segment {
            selector: 0xf000,
            attr: attr::P | attr::S | attr::CODE | attr::RW | attr::ACCESSED,
            base: 0xffff_0000,
            limit: 0xffff,
        };
        CpuState {
            gpr: [0; 8],
            eip: 0xfff0,
            eflags: flags::FIXED1,
            seg,
            ldtr: Segment { selector: 0, attr: attr::P | 2, base: 0, limit: 0xffff },
            tr: Segment { selector: 0, attr: attr::P | 11, base: 0, limit: 0xffff },
            gdtr: TableReg { base: 0, limit: 0xffff },
            idtr: TableReg { base: 0, limit: 0xffff },
            cr0: cr0::ET | cr0::CD | cr0::NW,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            dr: [0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400],
            cpl: 0,
            int_shadow: 0,
            halted: 0,
            _pad: 0,
            sysenter_cs: 0,
            sysenter_esp: 0,
            sysenter_eip: 0,
            fpu: crate::cpu::x87::X87::init(),
        }
    }

    /// A segment register's cache.
    #[inline]
    pub fn seg(&self, s: Seg) -> &Segment {
        &self.seg[s as usize]
    }

    /// Whether protected mode is on.
    #[inline]
    pub fn protected(&self) -> bool {
        self.cr0 & cr0::PE != 0
    }

    /// Whether paging is on.
    #[inline]
    pub fn paging(&self) -> bool {
        self.cr0 & cr0::PG != 0
    }

    /// Whether the code segment defaults to 32-bit operands and addresses.
    #[inline]
    pub fn code32(&self) -> bool {
        self.seg[Seg::Cs as usize].big()
    }

    /// Whether the stack segment is 32-bit (ESP rather than SP).
    #[inline]
    pub fn stack32(&self) -> bool {
        self.seg[Seg::Ss as usize].big()
    }

    /// EFLAGS.IOPL.
    #[inline]
    pub fn iopl(&self) -> u8 {
        ((self.eflags & flags::IOPL) >> flags::IOPL_SHIFT) as u8
    }
}

/// Byte offsets of `CpuState` fields, for generated code.
#[derive(Clone, Copy, Debug)]
pub struct CpuLayout {
    pub gpr: usize,
    pub eip: usize,
    pub eflags: usize,
    pub seg: usize,
    pub seg_size: usize,
    pub seg_base: usize,
    pub seg_selector: usize,
    pub cr0: usize,
    pub cr3: usize,
    pub cr4: usize,
    pub cpl: usize,
    pub fpu: usize,
}

impl CpuLayout {
    pub const fn new() -> CpuLayout {
        CpuLayout {
            gpr: offset_of!(CpuState, gpr),
            eip: offset_of!(CpuState, eip),
            eflags: offset_of!(CpuState, eflags),
            seg: offset_of!(CpuState, seg),
            seg_size: std::mem::size_of::<Segment>(),
            seg_base: offset_of!(Segment, base),
            seg_selector: offset_of!(Segment, selector),
            cr0: offset_of!(CpuState, cr0),
            cr3: offset_of!(CpuState, cr3),
            cr4: offset_of!(CpuState, cr4),
            cpl: offset_of!(CpuState, cpl),
            fpu: offset_of!(CpuState, fpu),
        }
    }
}

impl Default for CpuLayout {
    fn default() -> Self {
        Self::new()
    }
}
