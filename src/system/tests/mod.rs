//! Unit tests of `system/`: a 4 MiB machine in protected mode with a small
//! GDT, IDT and TSS built by hand, CPU state set directly, one system
//! function called, the result and the state checked against the SDM.
//!
//! GDT (at 0x1000):
//!
//! | sel  | descriptor                                   |
//! |------|----------------------------------------------|
//! | 0x08 | ring-0 code, flat, 32-bit                    |
//! | 0x10 | ring-0 data, flat                            |
//! | 0x18 | ring-3 code, flat                            |
//! | 0x20 | ring-3 data, flat                            |
//! | 0x28 | TSS A (0x3000), the current task             |
//! | 0x30 | TSS B (0x3100), available                    |
//! | 0x38 | ring-0 code, limit 0xfff                     |
//! | 0x40 | ring-0 data, limit 0xfff (a small stack)     |
//! | 0x48 | ring-0 code, not present                     |
//! | 0x50 | ring-3 code, limit 0xfff                     |
//! | 0x58 | free for a test                              |

mod protection;
mod task;

use crate::cpu::state::{cr0, flags, reg};
use crate::cpu::{Seg, Segment};
use crate::machine::{Machine, MachineConfig};
use crate::memory::PhysAddr;
use crate::system::descriptor::Descriptor;

pub const GDT: u32 = 0x1000;
pub const IDT: u32 = 0x2000;
pub const TSS_A: u32 = 0x3000;
pub const TSS_B: u32 = 0x3100;
pub const KSTACK: u32 = 0x9_0000;
pub const STACK: u32 = 0x8_0000;

/// A code/data/system descriptor: `access` is byte 5 (P, DPL, S, type),
/// `fl` the G/D/L/AVL nibble.
pub fn desc(base: u32, limit: u32, access: u8, fl: u8) -> u64 {
    let limit = limit as u64;
    let base = base as u64;
    (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | ((access as u64) << 40)
        | (((limit >> 16) & 0xf) << 48)
        | ((fl as u64 & 0xf) << 52)
        | ((base >> 24) << 56)
}

/// A gate: `access` is byte 5 (P, DPL, type), `params` the call-gate count.
pub fn gate(sel: u16, off: u32, access: u8, params: u8) -> u64 {
    (off as u64 & 0xffff)
        | ((sel as u64) << 16)
        | ((params as u64) << 32)
        | ((access as u64) << 40)
        | ((off as u64 >> 16) << 48)
}

pub fn wr32(m: &mut Machine, at: u32, v: u32) {
    m.ram.write_u32(PhysAddr(at), v);
}

pub fn rd32(m: &Machine, at: u32) -> u32 {
    m.ram.read_u32(PhysAddr(at))
}

pub fn set_gdt(m: &mut Machine, sel: u16, raw: u64) {
    let at = GDT + (sel as u32 & !7);
    wr32(m, at, raw as u32);
    wr32(m, at + 4, (raw >> 32) as u32);
}

pub fn gdt_raw(m: &Machine, sel: u16) -> u64 {
    let at = GDT + (sel as u32 & !7);
    rd32(m, at) as u64 | (rd32(m, at + 4) as u64) << 32
}

pub fn set_idt(m: &mut Machine, vector: u8, raw: u64) {
    let at = IDT + vector as u32 * 8;
    wr32(m, at, raw as u32);
    wr32(m, at + 4, (raw >> 32) as u32);
}

/// Loads a segment register from the GDT without any check.
pub fn force(m: &mut Machine, s: Seg, sel: u16) {
    m.cpu.seg[s as usize] = Descriptor { raw: gdt_raw(m, sel) }.to_segment(sel);
    if s == Seg::Cs {
        m.cpu.cpl = (sel & 3) as u8;
    }
}

/// The protected-mode machine of the table above, at CPL 0 in task A.
pub fn machine() -> Machine {
    let mut m =
        Machine::new(&MachineConfig { mem_size: 4 << 20, ..MachineConfig::default() }, Box::new(std::io::sink()))
            .expect("machine");
    set_gdt(&mut m, 0x08, desc(0, 0xfffff, 0x9a, 0xc));
    set_gdt(&mut m, 0x10, desc(0, 0xfffff, 0x92, 0xc));
    set_gdt(&mut m, 0x18, desc(0, 0xfffff, 0xfa, 0xc));
    set_gdt(&mut m, 0x20, desc(0, 0xfffff, 0xf2, 0xc));
    set_gdt(&mut m, 0x28, desc(TSS_A, 0x67, 0x89, 0));
    set_gdt(&mut m, 0x30, desc(TSS_B, 0x67, 0x89, 0));
    set_gdt(&mut m, 0x38, desc(0, 0xfff, 0x9a, 0x4));
    set_gdt(&mut m, 0x40, desc(0, 0xfff, 0x92, 0x4));
    set_gdt(&mut m, 0x48, desc(0, 0xfffff, 0x1a, 0xc));
    set_gdt(&mut m, 0x50, desc(0, 0xfff, 0xfa, 0x4));
    m.cpu.gdtr = crate::cpu::TableReg { base: GDT, limit: 0x7fff };
    m.cpu.idtr = crate::cpu::TableReg { base: IDT, limit: 0x7ff };
    m.cpu.cr0 = cr0::PE | cr0::ET;
    m.cpu.eflags = flags::FIXED1;
    // TSS A: ring-0 stack 0x10:KSTACK.
    wr32(&mut m, TSS_A + 4, KSTACK);
    wr32(&mut m, TSS_A + 8, 0x10);
    force(&mut m, Seg::Cs, 0x08);
    for s in [Seg::Ss, Seg::Ds, Seg::Es, Seg::Fs, Seg::Gs] {
        force(&mut m, s, 0x10);
    }
    m.cpu.ldtr = Segment::default();
    m.cpu.gpr[reg::ESP] = STACK;
    m.cpu.eip = 0x1_0000;
    m.ltr(0x28).expect("ltr");
    m
}

/// Moves the machine to CPL 3 on the flat ring-3 segments.
pub fn ring3(m: &mut Machine) {
    force(m, Seg::Cs, 0x1b);
    for s in [Seg::Ss, Seg::Ds, Seg::Es, Seg::Fs, Seg::Gs] {
        force(m, s, 0x23);
    }
    m.cpu.gpr[reg::ESP] = 0x7_0000;
}

/// Turns paging on with an identity map of the first 4 MiB, built at
/// `pd` (page table at `pd + 0x1000`), leaving the pages in `holes`
/// not present.
pub fn paging(m: &mut Machine, pd: u32, holes: &[u32]) {
    wr32(m, pd, (pd + 0x1000) | 7);
    for page in 0..1024u32 {
        let pte = if holes.contains(&(page << 12)) { 0 } else { (page << 12) | 7 };
        wr32(m, pd + 0x1000 + page * 4, pte);
    }
    m.cpu.cr3 = pd;
    m.cpu.cr0 |= cr0::PG;
    m.mmu.flush_tlb(false);
}
