//! The guest view: guest RAM mapped a second time, for translated code
//! running with paging off, inside a reservation of address space that
//! holds every address a 32-bit guest can form (4 GiB, plus the width of
//! one access) and more around it (`BELOW`, `ABOVE`). Translated code
//! reaches guest physical address `a` at `base + a` with no check at all:
//!
//! - past the end of RAM the view is PROT_NONE, so an access there faults;
//! - so is everything below `base` and from `base + 4 GiB` on, where
//!   `[r15 + reg*scale + disp]` lands when the guest's own 32-bit sum
//!   would have wrapped around (`translator::memop::MemOp::direct`);
//! - a page holding translated or decoded code is read-only in the view
//!   (mirroring the MMU's code-page table, `sync`), so a store into it
//!   faults.
//!
//! The fault (SIGSEGV) lands in `trap/signal.rs`, which knows the faulting
//! host instruction as a memory site and resumes at its slow path, a
//! callout that performs the access in Rust — open bus, device memory or
//! a self-modifying store, exactly as the interpreter would. A faulting
//! x86 instruction has no effect, so the guest state is exact there.
//!
//! The interpreter and the callouts use the first mapping (`GuestRam`),
//! which is always writable.
//!
//! The budget window works the same way for the instruction budget:
//! translated code keeps `window + budget` in r13 and each block's charge
//! loads a byte at r13 (`translator::block`). The window is readable for
//! every budget code is entered with and unmapped below, so the block that
//! cannot cover its charge faults on that load, and the handler resumes at
//! its refund. A check per block without a branch or the flags.
//!
//! This file holds unsafe code.

use std::os::fd::AsRawFd;

/// Bytes reserved below a view's base: a negative 32-bit displacement
/// added to a small register, and the width of an access.
pub const BELOW: usize = (1 << 31) + 4096;
/// Bytes reserved from a view's base: a base register, an index register
/// times 8 and a positive displacement (`memop::Forms::Gs`'s two-register
/// form), and the width of an access (the 4 GiB a guest addresses lie at
/// the start).
pub const ABOVE: usize = (1 << 32) + (1 << 35) + (1 << 31) + 8192;
/// Bytes reserved per view (address space only: PROT_NONE, no memory).
pub const RESERVE: usize = BELOW + ABOVE;

/// Host mappings a view may make, bt86's own budget (no rlimit counts
/// mappings, and `vm.max_map_count`, 65,530 by default, is machine-wide):
/// a linear view maps at most this many pages before it starts over
/// (everything unmapped at once), and a guest view whose read-only code
/// pages split its RAM mapping into more pieces than this is given up for
/// the bounds-checked path. `BT86_MAP_BUDGET` lowers it (the tests do).
pub fn map_budget() -> usize {
    const DEFAULT: usize = 8192;
    std::env::var("BT86_MAP_BUDGET").ok().and_then(|v| v.parse().ok()).map_or(DEFAULT, |b: usize| b.clamp(1, DEFAULT))
}

/// The address space a view (guest or linear) takes: `RESERVE` bytes of
/// PROT_NONE, its base `BELOW` bytes in, for one machine's RAM. Unmapped,
/// with everything mapped inside it, when dropped.
#[derive(Debug)]
pub struct ViewSpace {
    base: *mut u8,
    /// The first mapping of the RAM this views (which machine's RAM).
    ram: *const u8,
}

impl ViewSpace {
    fn new(ram: &crate::memory::GuestRam) -> Result<ViewSpace, String> {
        let start = reserve(None, RESERVE)?;
        // SAFETY: `BELOW` bytes into the reservation, which is larger.
        Ok(ViewSpace { base: unsafe { start.add(BELOW) }, ram: ram.bytes().as_ptr() })
    }

    /// Whether this is a view of `ram`.
    pub fn views(&self, ram: &crate::memory::GuestRam) -> bool {
        self.ram == ram.bytes().as_ptr()
    }

    /// The host address of guest address 0.
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// The reserved range (start, length): faults there are ours.
    pub fn range(&self) -> (usize, usize) {
        (self.base as usize - BELOW, RESERVE)
    }

    /// Whether `addr` lies in the reserved range.
    pub fn contains(&self, addr: usize) -> bool {
        let (start, len) = self.range();
        (start..start + len).contains(&addr)
    }

    /// The guest address a host address in the space stands for, if it
    /// lies in the 4 GiB a guest addresses.
    pub fn guest_address(&self, addr: usize) -> Option<u32> {
        addr.checked_sub(self.base as usize).and_then(|o| u32::try_from(o).ok())
    }

    /// Unmaps everything mapped in the space.
    fn clear(&mut self) -> Result<(), String> {
        reserve(Some((self.base as usize - BELOW) as *mut u8), RESERVE).map(|_| ())
    }
}

impl Drop for ViewSpace {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the reservation `new` made, with every
        // mapping inside it; no translated code runs any more.
        unsafe { libc::munmap((self.base as usize - BELOW) as *mut libc::c_void, RESERVE) };
    }
}

/// Guest RAM's second mapping.
pub struct GuestView {
    pub space: ViewSpace,
    ram_size: usize,
    /// Per page of RAM: read-only in the view (holds code).
    protected: Vec<u8>,
    /// `Mmu::code_changes` when the protections were last synced.
    synced: u64,
    /// Pages whose protection differs from the page before: the RAM
    /// mapping is in `edges + 1` pieces, each a host mapping.
    edges: usize,
    /// `map_budget()`, read once.
    budget: usize,
    /// The host refused a protection change, or the budget ran out: the
    /// view no longer mirrors the code pages and must not be used.
    broken: bool,
}

/// `len` bytes of PROT_NONE address space (at `at`, replacing what is
/// there, when given: it must be our own reservation).
fn reserve(at: Option<*mut u8>, len: usize) -> Result<*mut u8, String> {
    let fixed = if at.is_some() { libc::MAP_FIXED } else { 0 };
    // SAFETY: an anonymous PROT_NONE mapping, either where the kernel
    // picks or over part of a reservation of ours (the caller's contract),
    // so no memory anybody else uses changes.
    let p = unsafe {
        libc::mmap(
            at.unwrap_or(std::ptr::null_mut()) as *mut libc::c_void,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | fixed,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("cannot reserve {len:#x} bytes of address space: {}", std::io::Error::last_os_error()));
    }
    Ok(p as *mut u8)
}

impl GuestView {
    /// Reserves the address space and maps `ram` (a memfd of `ram_size`
    /// bytes) at its start.
    pub fn new(ram: &crate::memory::GuestRam) -> Result<GuestView, String> {
        let (file, ram_size) = (ram.file(), ram.size() as usize);
        let space = ViewSpace::new(ram)?;
        // SAFETY: replaces `ram_size` bytes of our own reservation from its
        // base (MAP_FIXED inside it) with a shared mapping of the RAM memfd,
        // which the caller's GuestRam keeps open.
        let ram_map = unsafe {
            libc::mmap(
                space.base() as *mut libc::c_void,
                ram_size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                file.as_raw_fd(),
                0,
            )
        };
        if ram_map == libc::MAP_FAILED {
            // The space is unmapped as it drops.
            return Err(format!("cannot map guest RAM into the guest view: {}", std::io::Error::last_os_error()));
        }
        let pages = ram_size.div_ceil(4096);
        Ok(GuestView {
            space,
            ram_size,
            protected: vec![0; pages],
            synced: 0,
            edges: 0,
            budget: map_budget(),
            broken: false,
        })
    }

    /// Makes the view's page protections match the MMU's code pages
    /// (`code`: one byte per page, non-zero = code) if they changed since
    /// the last call (`changes`: `Mmu::code_changes`). If the host refuses
    /// a change, or the pieces would pass the mapping budget, the view is
    /// [`broken`](Self::broken) from then on.
    pub fn sync(&mut self, code: &[u8], changes: u64) {
        if changes == self.synced || self.broken {
            return;
        }
        self.synced = changes;
        let pages = code.len().min(self.protected.len());
        let mut p = 0;
        while p < pages {
            let want = code[p] != 0;
            if want == (self.protected[p] != 0) {
                p += 1;
                continue;
            }
            // A run of pages that all change the same way, in one call.
            let start = p;
            while p < pages && (code[p] != 0) == want && (self.protected[p] != 0) != want {
                self.flip(p);
                p += 1;
            }
            let prot = if want { libc::PROT_READ } else { libc::PROT_READ | libc::PROT_WRITE };
            let len = ((p - start) * 4096).min(self.ram_size - start * 4096);
            // SAFETY: the range lies inside the RAM mapping at the start of
            // our reservation (pages below `ram_size`); only its protection
            // changes.
            let r = unsafe { libc::mprotect(self.space.base.add(start * 4096) as *mut libc::c_void, len, prot) };
            if r != 0 || self.edges > self.budget {
                self.broken = true;
                return;
            }
        }
    }

    /// Flips page `p`'s protection in `protected`, keeping `edges`.
    fn flip(&mut self, p: usize) {
        let differs = |v: &[u8], a: usize, b: usize| b < v.len() && (v[a] != 0) != (v[b] != 0);
        let around = |v: &[u8]| (p > 0 && differs(v, p - 1, p)) as usize + differs(v, p, p + 1) as usize;
        let before = around(&self.protected);
        self.protected[p] ^= 1;
        self.edges = self.edges + around(&self.protected) - before;
    }

    /// Whether the view stopped mirroring the code pages: it must be
    /// dropped (the bounds-checked path takes over).
    pub fn broken(&self) -> bool {
        self.broken
    }
}

/// Guest linear memory for translated code running with paging on (flat
/// segments): a reservation like the guest view's, in which each linear
/// page the guest's page tables map to RAM is mapped, on first use, to
/// that page of the RAM memfd, read-only until a store has walked it (the
/// dirty bit is set then) and while it holds code. One view per privilege
/// (CPL 3, CPL 0-2), so that a user access to a supervisor page faults.
///
/// A page not mapped yet faults like an access past RAM in the guest
/// view: the slow path performs the access in Rust (page walk, accessed
/// and dirty bits, #PF, device memory), then the callout maps the page
/// (`callout::map_page`). The view is a TLB as the SDM describes one: INVLPG unmaps
/// its page, a CR3 load unmaps every page but the global ones (CR4.PGE:
/// a kernel's own mappings, the same in every address space), any other
/// flush of the whole TLB unmaps everything.
#[derive(Debug)]
pub struct LinearView {
    pub space: ViewSpace,
    /// The RAM memfd (our own descriptor) pages are mapped from.
    file: std::fs::File,
    ram_size: u64,
    /// Mapped linear page number -> (physical page number, writable,
    /// global).
    mapped: crate::engine::interp::cache::Map<u32, (u32, bool, bool)>,
    /// `Mmu::code_changes` when writable pages were last checked.
    code_synced: u64,
    /// One bit per linear page: mapped at some time (bit set) before.
    seen: Vec<u64>,
    /// Pages mapped again after they had been unmapped (by INVLPG or a
    /// flush): what page-table churn costs this view.
    churn: u64,
    /// `map_budget()`, read once.
    budget: usize,
    /// Times the view started over at its budget.
    pub budget_clears: u64,
    /// The host refused to unmap (re-reserve) or re-protect: stale pages
    /// may remain, so the view must not be used again.
    broken: bool,
}

impl LinearView {
    pub fn new(ram: &crate::memory::GuestRam) -> Result<LinearView, String> {
        let file = ram.file().try_clone().map_err(|e| format!("cannot share guest RAM with a linear view: {e}"))?;
        Ok(LinearView {
            space: ViewSpace::new(ram)?,
            file,
            ram_size: ram.size() as u64,
            mapped: Default::default(),
            code_synced: 0,
            seen: vec![0; 1 << 14],
            churn: 0,
            budget: map_budget(),
            budget_clears: 0,
            broken: false,
        })
    }

    /// Pages mapped again after they had been unmapped, so far.
    pub fn churn(&self) -> u64 {
        self.churn
    }

    /// Whether the view may hold stale pages: it must be dropped.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// Maps linear page `lin` to physical page `phys` (which must lie in
    /// RAM), writable or read-only, global (kept by `clear_non_global`) or
    /// not. With `map_budget()` pages mapped the
    /// view starts over first; if the host refuses (it limits the mappings
    /// a process has), the view is emptied and the page mapped into the
    /// empty view; false if even that fails.
    pub fn map(&mut self, lin: u32, phys: u32, writable: bool, global: bool) -> bool {
        if (phys as u64 + 1) << 12 > self.ram_size || self.broken {
            return false;
        }
        if self.mapped.len() >= self.budget && !self.mapped.contains_key(&lin) {
            self.clear();
            self.budget_clears += 1;
        }
        if self.mapped.get(&lin) == Some(&(phys, writable, global)) {
            return true;
        }
        for attempt in 0..2 {
            if attempt == 1 {
                self.clear();
            }
            if self.broken {
                return false;
            }
            let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
            // SAFETY: one page inside our own reservation (linear page
            // `lin` < 2^20, the reservation covers 4 GiB), replaced by a
            // shared mapping of page `phys` of the RAM memfd, which lies
            // within the file (checked above) and which we hold open.
            let p = unsafe {
                libc::mmap(
                    self.space.base.add((lin as usize) << 12) as *mut libc::c_void,
                    4096,
                    prot,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    self.file.as_raw_fd(),
                    (phys as libc::off_t) << 12,
                )
            };
            if p != libc::MAP_FAILED {
                if self.mapped.insert(lin, (phys, writable, global)).is_none() {
                    let (word, bit) = (lin as usize / 64, 1u64 << (lin % 64));
                    self.churn += (self.seen[word] & bit != 0) as u64;
                    self.seen[word] |= bit;
                }
                return true;
            }
        }
        false
    }

    /// Unmaps linear page `lin` (INVLPG).
    pub fn unmap(&mut self, lin: u32) {
        if self.mapped.remove(&lin).is_some() {
            // SAFETY: one page of our own reservation (lin < 2^20).
            let at = unsafe { self.space.base.add((lin as usize) << 12) };
            if reserve(Some(at), 4096).is_err() {
                // Cannot happen for our own range; if it did, forget
                // everything rather than keep a stale page.
                self.clear();
            }
        }
    }

    /// Unmaps every page (a flush of the whole TLB).
    pub fn clear(&mut self) {
        if self.mapped.is_empty() {
            return;
        }
        self.mapped.clear();
        // The whole reservation at once; on failure the old mappings may
        // stay, so the view is given up.
        if self.space.clear().is_err() {
            self.broken = true;
        }
    }

    /// Unmaps every page but the global ones (a CR3 load). When every
    /// page to go lies below every global one (user space below a
    /// kernel's), in one operation; else page by page.
    pub fn clear_non_global(&mut self) {
        let Some(lowest_global) = self.mapped.iter().filter(|(_, e)| e.2).map(|(&lin, _)| lin).min() else {
            return self.clear();
        };
        let going: Vec<u32> = self.mapped.iter().filter(|(_, e)| !e.2).map(|(&lin, _)| lin).collect();
        if going.iter().all(|&lin| lin < lowest_global) {
            for lin in &going {
                self.mapped.remove(lin);
            }
            // The reservation's pages from linear 0 up to the lowest
            // global page, at once.
            if !going.is_empty() && reserve(Some(self.space.base), (lowest_global as usize) << 12).is_err() {
                self.broken = true;
            }
        } else {
            for lin in going {
                self.unmap(lin);
            }
        }
    }

    /// Makes writable pages that now hold code read-only (`code`: one
    /// byte per physical page, non-zero = code; `changes`:
    /// `Mmu::code_changes`), so a store into code faults and is seen.
    pub fn protect_code(&mut self, code: &[u8], changes: u64) {
        if changes == self.code_synced {
            return;
        }
        self.code_synced = changes;
        for (&lin, e) in self.mapped.iter_mut() {
            if e.1 && code.get(e.0 as usize).is_some_and(|&c| c != 0) {
                e.1 = false;
                // SAFETY: a page of our own reservation that is mapped
                // (from the RAM memfd); only its protection changes.
                let r = unsafe {
                    libc::mprotect(
                        self.space.base.add((lin as usize) << 12) as *mut libc::c_void,
                        4096,
                        libc::PROT_READ,
                    )
                };
                if r != 0 {
                    // Still writable: a store into code would go unseen.
                    self.broken = true;
                }
            }
        }
    }
}

/// The largest budget translated code is entered with: the readable part
/// of the budget window. A longer run leaves once per this many
/// instructions (one fault, a few microseconds) and goes on.
pub const BUDGET_WINDOW: usize = 16 << 20;
/// The unmapped part below budget 0: deeper than any charge can take it
/// (a block's length, a REP instruction's overshoot of one, and the probe
/// of a host REP MOVS, up to 2^32 - 1 iterations: `translator::block`).
/// Address space only (PROT_NONE, no reserve).
pub const BUDGET_GUARD: usize = (4 << 30) + (1 << 20);

/// The budget window: `BUDGET_GUARD` bytes of PROT_NONE, then
/// `BUDGET_WINDOW` read-only bytes (all the shared zero page).
pub struct BudgetWindow {
    start: *mut u8,
}

impl BudgetWindow {
    pub fn new() -> Result<BudgetWindow, String> {
        let len = BUDGET_GUARD + BUDGET_WINDOW;
        // SAFETY: a fresh anonymous PROT_NONE reservation at an address the
        // kernel picks; nothing else refers to it.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(format!("cannot reserve the budget window: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: replaces the upper part of our own reservation (MAP_FIXED
        // inside it) with read-only anonymous memory, populated now so
        // that translated code takes no page fault on it later.
        let window = unsafe {
            libc::mmap(
                (start as *mut u8).add(BUDGET_GUARD) as *mut libc::c_void,
                BUDGET_WINDOW,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if window == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            // SAFETY: unmaps the reservation made above, used by nothing.
            unsafe { libc::munmap(start, len) };
            return Err(format!("cannot map the budget window: {e}"));
        }
        Ok(BudgetWindow { start: start as *mut u8 })
    }

    /// The address of budget 0 (r13 = base + budget).
    pub fn base(&self) -> usize {
        self.start as usize + BUDGET_GUARD
    }

    /// The unmapped range below budget 0, where a charge's load faults.
    pub fn guard(&self) -> (usize, usize) {
        (self.start as usize, BUDGET_GUARD)
    }
}

impl Drop for BudgetWindow {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the reservation `new` made; no translated
        // code runs any more.
        unsafe { libc::munmap(self.start as *mut libc::c_void, BUDGET_GUARD + BUDGET_WINDOW) };
    }
}

/// The host stack translated code runs on. A guest CALL is a host call
/// (`translator::block::Emitter::guest_call`) whose return address stays
/// until the guest's RET or the next exit, so a guest that calls without
/// returning grows it by 8 bytes a CALL: up to `BUDGET_WINDOW` of them in
/// one entry (every CALL retires an instruction), 128 MiB. So it is its
/// own reservation (address space only, MAP_NORESERVE: pages are touched
/// as they are used) with a PROT_NONE guard below, not the thread's stack.
/// Its top slot holds the runtime's `no_pad` routine, where a RET returns
/// when no host call is outstanding.
pub struct HostStack {
    start: *mut u8,
}

/// The host stack's usable size: every CALL of one entry, and room for the
/// callouts' Rust frames and signal frames below them.
const HOST_STACK: usize = BUDGET_WINDOW * 8 + (16 << 20);
const HOST_STACK_GUARD: usize = 64 << 10;

impl HostStack {
    pub fn new() -> Result<HostStack, String> {
        let len = HOST_STACK_GUARD + HOST_STACK;
        // SAFETY: a fresh private anonymous mapping at an address the
        // kernel picks; nothing else refers to it.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(format!("cannot reserve the translated code's stack: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: the lowest pages of our own mapping, made inaccessible.
        if unsafe { libc::mprotect(start, HOST_STACK_GUARD, libc::PROT_NONE) } != 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: unmaps the mapping made above, used by nothing.
            unsafe { libc::munmap(start, len) };
            return Err(format!("cannot guard the translated code's stack: {e}"));
        }
        Ok(HostStack { start: start as *mut u8 })
    }

    /// Stores `no_pad` in the top slot and returns that slot's address:
    /// the stack pointer translated code is entered with.
    pub fn top(&mut self, no_pad: u64) -> u64 {
        let slot = self.start as usize + HOST_STACK_GUARD + HOST_STACK - 16;
        // SAFETY: an aligned slot inside our own read-write mapping, below
        // its end.
        unsafe { (slot as *mut u64).write(no_pad) };
        slot as u64
    }
}

impl Drop for HostStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made; no translated code
        // runs on it any more.
        unsafe { libc::munmap(self.start as *mut libc::c_void, HOST_STACK_GUARD + HOST_STACK) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{GuestRam, PhysAddr};

    #[test]
    fn the_view_shares_guest_ram_and_mirrors_code_pages() {
        let mut ram = GuestRam::new(2 << 20).unwrap();
        let mut view = GuestView::new(&ram).unwrap();
        assert!(view.space.views(&ram));
        assert!(view.space.contains(view.space.base() as usize + (1 << 32)));
        assert!(view.space.contains(view.space.base() as usize - BELOW));
        assert!(!view.space.contains(view.space.base() as usize - BELOW - 1));
        assert!(!view.space.contains(view.space.base() as usize + ABOVE));
        ram.write_u8(PhysAddr(0x1234), 0x5a);
        // SAFETY: 0x1234 is inside the RAM mapping at the start of the view.
        assert_eq!(unsafe { *view.space.base().add(0x1234) }, 0x5a);
        let mut code = vec![0u8; 512];
        code[3] = 1;
        code[4] = 1;
        view.sync(&code, 1);
        assert_eq!(&view.protected[2..6], &[0, 1, 1, 0]);
        // Unchanged counter: nothing is looked at.
        code[3] = 0;
        view.sync(&code, 1);
        assert_eq!(view.protected[3], 1);
        view.sync(&code, 2);
        assert_eq!(&view.protected[2..6], &[0, 0, 1, 0]);
        // Reads of a read-only page still work.
        // SAFETY: page 4 is RAM, mapped read-only in the view.
        assert_eq!(unsafe { *view.space.base().add(4 * 4096) }, 0);
    }

    #[test]
    fn the_budget_window_is_readable_from_zero_to_its_size() {
        let w = BudgetWindow::new().unwrap();
        let (guard, len) = w.guard();
        assert_eq!(guard + len, w.base());
        // SAFETY: the first and last bytes of the readable part.
        assert_eq!(unsafe { (*(w.base() as *const u8), *((w.base() + BUDGET_WINDOW - 1) as *const u8)) }, (0, 0));
    }
}
