//! The memory-management unit every engine shares: a software TLB in front
//! of the page walk, and the code-page bitmap that detects writes to guest
//! code (self-modifying code).
//!
//! TLB entries cache one linear page → physical frame with the rights the
//! walk found. A write hit also needs the dirty bit already set, so the
//! walk's D-bit update is never skipped. MOV to CR3 flushes non-global
//! entries, INVLPG one page, MOV to CR0/CR4 everything.

use super::paging::{self, Access, Privilege};
use super::{GuestRam, LinAddr, PhysAddr};
use crate::cpu::{CpuState, Fault};

const TLB_SIZE: usize = 1024;

const T_USER: u8 = 1 << 0;
const T_WRITABLE: u8 = 1 << 1;
const T_DIRTY: u8 = 1 << 2;
const T_GLOBAL: u8 = 1 << 3;

#[derive(Clone, Copy, Default)]
struct TlbEntry {
    /// Linear page number + 1 (0 = empty).
    tag: u32,
    frame: u32,
    rights: u8,
}

/// Counters for `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MmuStats {
    pub tlb_hits: u64,
    pub tlb_misses: u64,
    pub tlb_flushes: u64,
    pub smc_writes: u64,
}

/// Software TLB and code-page tracking.
pub struct Mmu {
    tlb: Box<[TlbEntry; TLB_SIZE]>,
    /// One byte per physical page of RAM: non-zero when the page holds
    /// decoded or translated code. Bytes rather than bits so translated
    /// stores can test their page with one compare (`code_pages_ptr`).
    code_pages: Vec<u8>,
    /// Physical pages holding code that were written since the engine last
    /// looked; the engine drops what it cached for them.
    pub smc_pages: Vec<u32>,
    pub stats: MmuStats,
    /// Bumped by every TLB flush, so caches of translations (the binary
    /// translator's inline TLB) know to drop theirs.
    pub generation: u64,
    /// Bumped whenever a page becomes a code page.
    pub code_generation: u64,
    /// Bumped whenever a page becomes a code page or stops being one (the
    /// translator mirrors the set in its guest view's page protections).
    pub code_changes: u64,
    /// Bumped by the flushes of the whole TLB (and when `flushed_pages`
    /// overflows): a flush not counted here dropped only the pages listed
    /// in `flushed_pages`.
    pub full_generation: u64,
    /// Bumped by the flushes of the whole TLB that drop global pages too
    /// (all but MOV to CR3, and `flushed_pages` overflowing): a full flush
    /// not counted here left the global pages (CR4.PGE) in place.
    pub global_generation: u64,
    /// Linear page numbers INVLPG dropped since the translator last looked
    /// (it takes them; at most `FLUSHED_PAGES`).
    pub flushed_pages: Vec<u32>,
}

/// The most single-page flushes `Mmu::flushed_pages` keeps; more count as
/// a flush of everything.
pub const FLUSHED_PAGES: usize = 16;

impl Mmu {
    /// An MMU for `ram_size` bytes of RAM.
    pub fn new(ram_size: u32) -> Mmu {
        let pages = (ram_size as usize).div_ceil(4096);
        Mmu {
            tlb: Box::new([TlbEntry::default(); TLB_SIZE]),
            code_pages: vec![0; pages],
            smc_pages: Vec::new(),
            stats: MmuStats::default(),
            generation: 0,
            code_generation: 0,
            code_changes: 0,
            full_generation: 0,
            global_generation: 0,
            flushed_pages: Vec::new(),
        }
    }

    /// Linear → physical for one access, through the TLB.
    #[inline]
    pub fn translate(
        &mut self,
        cpu: &CpuState,
        ram: &mut GuestRam,
        lin: LinAddr,
        access: Access,
        who: Privilege,
    ) -> Fault<PhysAddr> {
        if !cpu.paging() {
            return Ok(PhysAddr(lin.0));
        }
        let page = lin.page();
        let e = &self.tlb[page as usize % TLB_SIZE];
        if e.tag == page + 1 && rights_allow(e.rights, access, who, cpu.cr0) {
            self.stats.tlb_hits += 1;
            return Ok(PhysAddr(e.frame | lin.page_offset()));
        }
        self.stats.tlb_misses += 1;
        let w = paging::walk(cpu, ram, lin, access, who)?;
        let rights = (w.user as u8 * T_USER)
            | (w.writable as u8 * T_WRITABLE)
            | (w.dirty as u8 * T_DIRTY)
            | (w.global as u8 * T_GLOBAL);
        self.tlb[page as usize % TLB_SIZE] = TlbEntry { tag: page + 1, frame: w.frame, rights };
        Ok(PhysAddr(w.frame | lin.page_offset()))
    }

    /// Drops every TLB entry (MOV to CR0/CR4, task switch), or only the
    /// non-global ones (MOV to CR3).
    pub fn flush_tlb(&mut self, keep_global: bool) {
        self.stats.tlb_flushes += 1;
        self.generation += 1;
        self.full_generation += 1;
        self.global_generation += !keep_global as u64;
        self.flushed_pages.clear();
        for e in self.tlb.iter_mut() {
            if !(keep_global && e.rights & T_GLOBAL != 0) {
                e.tag = 0;
            }
        }
    }

    /// INVLPG: drops the entry for one linear page.
    pub fn flush_page(&mut self, lin: LinAddr) {
        self.generation += 1;
        if self.flushed_pages.len() < FLUSHED_PAGES {
            self.flushed_pages.push(lin.page());
        } else {
            self.full_generation += 1;
            self.global_generation += 1;
            self.flushed_pages.clear();
        }
        let e = &mut self.tlb[lin.page() as usize % TLB_SIZE];
        if e.tag == lin.page() + 1 {
            e.tag = 0;
        }
    }

    /// Marks a physical page as holding cached code.
    #[inline]
    pub fn mark_code(&mut self, page: u32) {
        if let Some(b) = self.code_pages.get_mut(page as usize) {
            if *b == 0 {
                self.code_generation += 1;
                self.code_changes += 1;
            }
            *b = 1;
        }
    }

    /// The code-page byte table (one byte per page of RAM, never resized),
    /// for translated code's store check.
    pub fn code_pages_ptr(&self) -> *const u8 {
        self.code_pages.as_ptr()
    }

    /// The code-page byte table (one byte per page of RAM).
    pub fn code_pages(&self) -> &[u8] {
        &self.code_pages
    }

    /// Whether the TLB holds linear page `lin` as a global page (CR4.PGE
    /// and the G bit): right after `translate` filled it, whether the page
    /// outlives a CR3 load.
    pub fn is_global(&self, lin: LinAddr) -> bool {
        let page = lin.page();
        let e = &self.tlb[page as usize % TLB_SIZE];
        e.tag == page + 1 && e.rights & T_GLOBAL != 0
    }

    /// Whether a physical page holds cached code.
    #[inline]
    pub fn is_code(&self, page: u32) -> bool {
        self.code_pages.get(page as usize).is_some_and(|&b| b != 0)
    }

    /// Notes a write to physical memory: a write into a code page queues
    /// the page for invalidation and unmarks it.
    #[inline]
    pub fn note_write(&mut self, addr: PhysAddr, len: u32) {
        self.note_page(addr.page());
        let last = addr.wrapping_add(len - 1).page();
        if last != addr.page() {
            self.note_page(last);
        }
    }

    #[inline]
    fn note_page(&mut self, page: u32) {
        if let Some(b) = self.code_pages.get_mut(page as usize) {
            if *b != 0 {
                *b = 0;
                self.code_changes += 1;
                self.smc_pages.push(page);
                self.stats.smc_writes += 1;
            }
        }
    }
}

#[inline]
fn rights_allow(rights: u8, access: Access, who: Privilege, cr0v: u32) -> bool {
    let user = rights & T_USER != 0;
    let writable = rights & T_WRITABLE != 0;
    if access == Access::Write && rights & T_DIRTY == 0 {
        return false;
    }
    paging::allowed(user, writable, access, who, cr0v)
}
