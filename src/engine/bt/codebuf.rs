//! The translation cache's memory: one memfd mapped twice, read-write for
//! the translator and read-execute for the CPU, so no page is ever writable
//! and executable at once (W^X) and nothing is re-protected or moved while
//! code runs. Code is bump-allocated; when the buffer is full everything
//! after the runtime routines is dropped at once ("starting over is much
//! better" — Blink).
//!
//! This file and `callout.rs` hold the translator's unsafe code.

use crate::machine::Machine;
use memmap2::{Mmap, MmapMut, MmapOptions};
use translator::runtime::IBTC_ENTRIES;

/// Executable memory for translated code.
pub struct CodeBuffer {
    rw: MmapMut,
    rx: Mmap,
    used: usize,
    /// Bytes at the start kept across flushes (the runtime routines).
    pinned: usize,
}

/// What the runtime keeps beside the guest state for translated code
/// (addressed through r14; offsets in `translator::Layout`).
#[repr(C)]
#[derive(Debug)]
pub struct Scratch {
    /// The instruction budget left: blocks charge their length at entry and
    /// leave (refunded) when it would go negative.
    pub budget: i64,
    /// The budget window's address of budget 0 (`guard::BudgetWindow`):
    /// translated code keeps `budget_base + budget` in r13.
    pub budget_base: u64,
    /// The instruction being called out: its index in its block in the low
    /// half, the block's length in the high half.
    pub callout_index: u32,
    pub _pad: u32,
    /// The Rust function the callout routine calls.
    pub callout_fn: u64,
    /// The callout's argument (a pointer to the decoded instruction).
    pub callout_arg: u64,
    /// The engine context callouts use (a pointer to `bt::Context`).
    pub context: u64,
    /// The MMU's code-page byte table (translated stores check it).
    pub code_pages: u64,
    /// The guest CPU state (`Machine`, whose first field it is), stored by
    /// the runtime's entry routine: translated code keeps the budget in
    /// r13, the exit and callout routines reload the state pointer here.
    pub state: u64,
    /// The guest EIP a block leaves for, stored by its exit for the
    /// runtime's exit routine.
    pub exit_eip: u32,
    pub _pad3: u32,
    /// The budget at which an exit leaves the guest in STI's interrupt
    /// shadow (`translator::inline`), in r13's form (`budget_base +
    /// budget`); `NO_SHADOW` when none.
    pub shadow_at: i64,
    /// Non-zero when the interrupt controller has a request pending: set
    /// on entry, refreshed by callouts after I/O.
    pub irq_pending: u8,
    pub _pad2: [u8; 7],
    /// The runtime routine inline x87 code calls first (`x87_load` or
    /// `x87_ready`); set by the entry routine.
    pub x87_load: u64,
    /// The guest's FIP, FOP, FDS and FDP while the host FPU holds its
    /// state (`translator::Layout::x87_ptrs`).
    pub x87_fip: u32,
    pub x87_fop: u16,
    pub x87_fds: u16,
    pub x87_fdp: u32,
    /// FCS as loaded, and whether a non-control x87 instruction ran since
    /// (then FCS is the running code's CS).
    pub x87_fcs: u16,
    pub x87_cs_ran: u8,
    /// 0 while the host FPU holds the guest's state, 1 while it does not
    /// (inline x87 code tests it without touching the flags).
    pub x87_unloaded: u8,
    /// What inline RDTSC subtracts r13 from (`translator::Layout::tsc_base`):
    /// the retired count and budget at entry, the budget window's base, idle
    /// time and the TSC offset, summed (`bt::tsc_base`).
    pub tsc_base: u64,
    /// The MMU's flush generation, low half (`translator::Layout::mmu_gen`),
    /// kept by the runtime at entry and after each callout.
    pub mmu_gen: u32,
    pub _pad4: u32,
    /// A checked exit to another page that asks to be linked
    /// (`translator::Layout::relink`); the dispatcher takes it.
    pub relink: u64,
    /// The caller's stack pointer at entry (`translator::Layout::entry_rsp`).
    pub entry_rsp: u64,
    /// Translated code's stack pointer at entry (`translator::Layout::host_stack`).
    pub host_stack: u64,
    /// The inline TLB (paging on).
    pub tlb: super::tlb::Tables,
    /// The indirect-branch cache: per low 16 bits of a guest EIP, the
    /// indirect entry of a translation for the memory mode of the running
    /// code (which checks the whole EIP), or the runtime's `ibtc_miss`.
    pub ibtc: [u64; IBTC_ENTRIES],
}

// The x87 pointers' layout `translator::Layout::x87_ptrs` promises.
const _: () = assert!(
    std::mem::offset_of!(Scratch, x87_fop) == std::mem::offset_of!(Scratch, x87_fip) + 4
        && std::mem::offset_of!(Scratch, x87_fds) == std::mem::offset_of!(Scratch, x87_fip) + 6
        && std::mem::offset_of!(Scratch, x87_fdp) == std::mem::offset_of!(Scratch, x87_fip) + 8
        && std::mem::offset_of!(Scratch, x87_fcs) == std::mem::offset_of!(Scratch, x87_fip) + 12
        && std::mem::offset_of!(Scratch, x87_cs_ran) == std::mem::offset_of!(Scratch, x87_fip) + 14
        && std::mem::offset_of!(Scratch, x87_unloaded) == std::mem::offset_of!(Scratch, x87_fip) + 15
);

/// `Scratch::shadow_at` when no STI is waiting for its next instruction:
/// no budget translated code exits with.
pub const NO_SHADOW: i64 = i64::MIN;

/// A scratch area on the heap (it holds the 512 KiB indirect-branch
/// cache), every cache entry `ibtc_miss`.
pub fn new_scratch(ibtc_miss: u64) -> Box<Scratch> {
    let layout = std::alloc::Layout::new::<Scratch>();
    // SAFETY: `layout` is Scratch's (not zero-sized); the allocation is
    // checked for failure; every field of `Scratch` is an integer or an
    // array of integers (`tlb::Entry` too), for which all-zero bytes are a
    // valid value; and a pointer from the global allocator with Scratch's
    // layout may be owned by a Box. On the heap from the start, so the
    // 512 KiB never pass through the stack.
    let mut s = unsafe {
        let p = std::alloc::alloc_zeroed(layout) as *mut Scratch;
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(p)
    };
    s.shadow_at = NO_SHADOW;
    super::tlb::clear(&mut s.tlb);
    s.ibtc.fill(ibtc_miss);
    s
}

impl CodeBuffer {
    /// Maps `size` bytes of code memory.
    pub fn new(size: usize) -> std::io::Result<CodeBuffer> {
        let fd =
            memfd::MemfdOptions::default().close_on_exec(true).create("bt86-code").map_err(std::io::Error::other)?;
        let file = fd.into_file();
        file.set_len(size as u64)?;
        // SAFETY: the file is a private memfd nobody else can resize or
        // write; both mappings live as long as this struct and are only
        // accessed through it (writes through `rw`, execution through `rx`).
        let rw = unsafe { MmapOptions::new().len(size).map_mut(&file)? };
        // SAFETY: as above; this mapping is never written through.
        let rx = unsafe { MmapOptions::new().len(size).map_exec(&file)? };
        Ok(CodeBuffer { rw, rx, used: 0, pinned: 0 })
    }

    /// The host address where the next allocation would start.
    pub fn next_addr(&self) -> usize {
        self.rx.as_ptr() as usize + self.used
    }

    /// Whether host address `addr` lies in the code pushed so far.
    pub fn holds(&self, addr: usize) -> bool {
        let base = self.rx.as_ptr() as usize;
        (base..base + self.used).contains(&addr)
    }

    /// Whether `len` more bytes fit.
    pub fn fits(&self, len: usize) -> bool {
        self.used + len <= self.rw.len()
    }

    /// Appends code assembled for address `next_addr()`; returns that
    /// address, or `None` when the buffer is full.
    pub fn push(&mut self, code: &[u8]) -> Option<usize> {
        if !self.fits(code.len()) {
            return None;
        }
        let at = self.next_addr();
        self.rw[self.used..self.used + code.len()].copy_from_slice(code);
        // Keep blocks 16-byte aligned.
        self.used = (self.used + code.len() + 15) & !15;
        self.used = self.used.min(self.rw.len());
        Some(at)
    }

    /// Re-points the rel32 at host address `at` (inside this buffer) so its
    /// jump goes to `target`.
    pub fn patch_rel32(&mut self, at: usize, target: usize) {
        let base = self.rx.as_ptr() as usize;
        let off = at - base;
        let rel = (target as i64 - (at as i64 + 4)) as i32;
        self.rw[off..off + 4].copy_from_slice(&rel.to_le_bytes());
    }

    /// Overwrites the four bytes at host address `at` (in the buffer) with
    /// `value`.
    pub fn patch_u32(&mut self, at: usize, value: u32) {
        let off = at - self.rx.as_ptr() as usize;
        self.rw[off..off + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Keeps everything pushed so far across flushes.
    pub fn pin(&mut self) {
        self.pinned = self.used;
    }

    /// Drops every translation (keeps the pinned runtime routines).
    pub fn flush(&mut self) {
        self.used = self.pinned;
    }
}

/// Runs translated code: `enter` is the runtime's entry routine in this
/// buffer, `target` a translated block in it, `membase` where guest
/// physical address 0 is for the running code's memory path (guest RAM, or
/// the guest view). Returns when a block leaves through the runtime's exit
/// routine.
pub fn enter(buf: &CodeBuffer, enter: usize, m: &mut Machine, scratch: &mut Scratch, target: usize, membase: *mut u8) {
    let base = buf.rx.as_ptr() as usize;
    let end = base + buf.used;
    assert!((base..end).contains(&enter) && (base..end).contains(&target), "entry outside the code buffer");
    // SAFETY: `enter` is the entry routine emitted by
    // `translator::runtime::emit_runtime` for this buffer (checked to lie in
    // it), which follows the System V ABI for
    // `fn(state, scratch, membase, target) -> u64`, saves and restores every
    // callee-saved register, and only jumps to code the translator emitted
    // into this buffer. Translated code writes guest RAM only through
    // `membase`: either guest RAM itself, every access bounds-checked
    // before use, or the guest view (`guard.rs`), where every address a
    // guest access can form lies in a reservation that is RAM or faults
    // (resumed by `trap/signal.rs` at the access's slow path); and the
    // state and scratch through the pointers given, which
    // stay valid and unaliased for the call: nothing else touches `m` or
    // `scratch` until it returns, and callouts reach them only through
    // these same pointers.
    unsafe {
        let f: extern "sysv64" fn(*mut Machine, *mut Scratch, *mut u8, usize) -> u64 = std::mem::transmute(enter);
        f(m, scratch, membase, target);
    }
}

/// Whether user code may write its GS base (WRGSBASE): the CPU has
/// FSGSBASE and the kernel enabled it for user mode (Linux 5.9 on says so
/// in `AT_HWCAP2`). Translated code then reaches a two-register address
/// through GS, whose base the runtime's entry sets to the view's; nothing
/// else in the process uses GS (Rust's and glibc's thread-local storage is
/// FS on x86-64).
pub fn user_gs_base() -> bool {
    const HWCAP2_FSGSBASE: u64 = 1 << 1;
    // SAFETY: getauxval reads the process's auxiliary vector, which the
    // kernel set up before main; it has no preconditions.
    let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
    hwcap2 & HWCAP2_FSGSBASE != 0
}
