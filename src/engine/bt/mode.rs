//! What a translation is specialised on besides where its code is: the
//! memory mode (`Mode`, from the segment state, paging and the CPL), the
//! memory path translated code takes in it, and the offsets
//! (`translator::Layout`) generated code addresses the guest state and the
//! scratch area by.

use super::codebuf::Scratch;
use crate::cpu::state::{CpuLayout, Seg};
use crate::machine::Machine;
use std::mem::offset_of;
use translator::block::{MemPath, TLB_ENTRIES, TLB_ENTRY};

/// How translated code reaches memory in `mode` (`guarded`: through the
/// guest view with paging off; `linear`: through the linear views with
/// paging on).
pub(super) fn mem_path(m: &Machine, mode: Mode, guarded: bool, linear: bool) -> MemPath {
    let tlb = offset_of!(Scratch, tlb) as i32;
    match mode {
        Mode::Other { .. } => MemPath::None,
        Mode::Physical if guarded => MemPath::Guarded,
        Mode::PagedUser | Mode::PagedSupervisor if linear => MemPath::Guarded,
        Mode::Physical => MemPath::Physical { ram_size: m.ram.size() },
        Mode::PagedUser => MemPath::Tlb { table: tlb },
        Mode::PagedSupervisor => MemPath::Tlb { table: tlb + (TLB_ENTRIES * TLB_ENTRY) as i32 },
    }
}

pub(super) fn layout() -> translator::Layout {
    let cpu = CpuLayout::new();
    translator::Layout {
        gpr: cpu.gpr as i32,
        eip: cpu.eip as i32,
        eflags: cpu.eflags as i32,
        budget: offset_of!(Scratch, budget) as i32,
        budget_base: offset_of!(Scratch, budget_base) as i32,
        callout_fn: offset_of!(Scratch, callout_fn) as i32,
        callout_arg: offset_of!(Scratch, callout_arg) as i32,
        callout_index: offset_of!(Scratch, callout_index) as i32,
        code_pages: offset_of!(Scratch, code_pages) as i32,
        ibtc: offset_of!(Scratch, ibtc) as i32,
        state: offset_of!(Scratch, state) as i32,
        exit_eip: offset_of!(Scratch, exit_eip) as i32,
        cr0: cpu.cr0 as i32,
        cpl: cpu.cpl as i32,
        irq_pending: offset_of!(Scratch, irq_pending) as i32,
        shadow_at: offset_of!(Scratch, shadow_at) as i32,
        fpu: cpu.fpu as i32,
        x87_load: offset_of!(Scratch, x87_load) as i32,
        x87_ptrs: offset_of!(Scratch, x87_fip) as i32,
        seg_selector: (cpu.seg + cpu.seg_selector) as i32,
        seg_size: cpu.seg_size as i32,
    }
}

/// How translated code may reach guest memory: what a translation is
/// specialised on besides where its code is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Segments with bases or limits: every memory access is a callout.
    /// The translation holds only instructions that lie wholly within the
    /// CS limit it was made for (the next one faults, in the
    /// interpreter), and is kept for that limit only.
    Other { cs_limit: u32 },
    /// Paging off, flat segments: linear = physical, inline bounds check.
    Physical,
    /// Paging on, flat segments, CPL 3: the user inline TLB.
    PagedUser,
    /// Paging on, flat segments, CPL 0–2: the supervisor inline TLB.
    PagedSupervisor,
}

/// The memory mode the machine is in now.
pub fn memory_mode(m: &Machine) -> Mode {
    if !flat_segments(m) {
        Mode::Other { cs_limit: m.cpu.seg(Seg::Cs).limit }
    } else if !m.cpu.paging() {
        Mode::Physical
    } else if m.cpu.cpl == 3 {
        Mode::PagedUser
    } else {
        Mode::PagedSupervisor
    }
}

/// Whether CS, DS, ES and SS are flat (base 0, limit 4 GiB, expand-up),
/// DS, ES and SS writable data, the stack 32-bit: no segmentation check
/// can fail.
pub fn flat_segments(m: &Machine) -> bool {
    use crate::cpu::state::attr;
    let flat = |s: Seg| {
        let c = m.cpu.seg(s);
        c.base == 0 && c.limit == u32::MAX && c.attr & attr::P != 0
    };
    let writable = |s: Seg| {
        let c = m.cpu.seg(s);
        c.attr & (attr::CODE | attr::DC | attr::RW) == attr::RW
    };
    // A 32-bit stack (SS.B) too: translated PUSH/POP/CALL/RET move ESP.
    flat(Seg::Cs) && [Seg::Ds, Seg::Es, Seg::Ss].iter().all(|&s| flat(s) && writable(s)) && m.cpu.stack32()
}
