//! What a translation is specialised on besides where its code is: the
//! memory mode (`Mode`, from the segment state, paging and the CPL), the
//! memory path translated code takes in it, and the offsets
//! (`translator::Layout`) generated code addresses the guest state and the
//! scratch area by.

use super::codebuf::Scratch;
use crate::cpu::state::{CpuLayout, Seg};
use crate::machine::Machine;
use std::mem::offset_of;
use translator::block::{FsGs, MemPath, TLB_ENTRIES, TLB_ENTRY};

/// How translated code reaches memory in `mode` (`guarded`: through the
/// guest view with paging off; `linear`: through the linear views with
/// paging on).
pub(super) fn mem_path(m: &Machine, mode: Mode, guarded: bool, linear: bool) -> MemPath {
    let tlb = offset_of!(Scratch, tlb) as i32;
    match mode {
        Mode::Other { .. } => MemPath::None,
        Mode::Physical(_) if guarded => MemPath::Guarded,
        Mode::PagedUser(_) | Mode::PagedSupervisor(_) if linear => MemPath::Guarded,
        Mode::Physical(_) => MemPath::Physical { ram_size: m.ram.size() },
        Mode::PagedUser(_) => MemPath::Tlb { table: tlb },
        Mode::PagedSupervisor(_) => MemPath::Tlb { table: tlb + (TLB_ENTRIES * TLB_ENTRY) as i32 },
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
        seg_base: (cpu.seg + cpu.seg_base) as i32,
        cr4: cpu.cr4 as i32,
        tsc_base: offset_of!(Scratch, tsc_base) as i32,
        mmu_gen: offset_of!(Scratch, mmu_gen) as i32,
        relink: offset_of!(Scratch, relink) as i32,
        entry_rsp: offset_of!(Scratch, entry_rsp) as i32,
        host_stack: offset_of!(Scratch, host_stack) as i32,
    }
}

/// How translated code may reach guest memory: what a translation is
/// specialised on besides where its code is. The flat modes also say
/// which of FS and GS are reached inline (`translator::block::FsGs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Segments with bases or limits: every memory access is a callout.
    /// The translation holds only instructions that lie wholly within the
    /// CS limit it was made for (the next one faults, in the
    /// interpreter), and is kept for that limit only.
    Other { cs_limit: u32 },
    /// Paging off, flat segments: linear = physical, inline bounds check.
    Physical(FsGs),
    /// Paging on, flat segments, CPL 3: the user inline TLB.
    PagedUser(FsGs),
    /// Paging on, flat segments, CPL 0–2: the supervisor inline TLB.
    PagedSupervisor(FsGs),
}

impl Mode {
    /// Which of FS and GS translated code in this mode reaches inline.
    pub fn fs_gs(self) -> FsGs {
        match self {
            Mode::Other { .. } => FsGs::default(),
            Mode::Physical(s) | Mode::PagedUser(s) | Mode::PagedSupervisor(s) => s,
        }
    }

    /// Paging on, with flat segments.
    pub fn paged(self) -> bool {
        matches!(self, Mode::PagedUser(_) | Mode::PagedSupervisor(_))
    }
}

/// The memory mode the machine is in now.
pub fn memory_mode(m: &Machine) -> Mode {
    if !flat_segments(m) {
        return Mode::Other { cs_limit: m.cpu.seg(Seg::Cs).limit };
    }
    let s = FsGs { fs: based_flat(m, Seg::Fs), gs: based_flat(m, Seg::Gs) };
    if !m.cpu.paging() {
        Mode::Physical(s)
    } else if m.cpu.cpl == 3 {
        Mode::PagedUser(s)
    } else {
        Mode::PagedSupervisor(s)
    }
}

/// Whether CS, DS, ES and SS are flat (base 0, limit 4 GiB, expand-up),
/// DS, ES and SS writable data, the stack 32-bit: no segmentation check
/// can fail.
pub fn flat_segments(m: &Machine) -> bool {
    let flat = |s: Seg| m.cpu.seg(s).base == 0 && full_limit(m, s);
    // A 32-bit stack (SS.B) too: translated PUSH/POP/CALL/RET move ESP.
    flat(Seg::Cs) && [Seg::Ds, Seg::Es, Seg::Ss].iter().all(|&s| flat(s) && writable(m, s)) && m.cpu.stack32()
}

/// Whether `s` (FS or GS) is a segment no access through can fail a
/// segmentation check, whatever its base (`translator::memop::SegBase`).
fn based_flat(m: &Machine, s: Seg) -> bool {
    full_limit(m, s) && writable(m, s)
}

/// Present, with a 4 GiB limit.
fn full_limit(m: &Machine, s: Seg) -> bool {
    use crate::cpu::state::attr;
    let c = m.cpu.seg(s);
    c.limit == u32::MAX && c.attr & attr::P != 0
}

/// A writable, expand-up data segment.
fn writable(m: &Machine, s: Seg) -> bool {
    use crate::cpu::state::attr;
    m.cpu.seg(s).attr & (attr::CODE | attr::DC | attr::RW) == attr::RW
}
