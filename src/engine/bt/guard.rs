//! The guest view: guest RAM mapped a second time, for translated code
//! running with paging off, inside 4 GiB + 4 KiB of reserved address space
//! — every address a 32-bit guest can form, plus the width of one access.
//! Translated code reaches guest physical address `a` at `base + a` with no
//! check at all:
//!
//! - past the end of RAM the view is PROT_NONE, so an access there faults;
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

/// Bytes reserved: 4 GiB of guest addresses and a page of slack for an
/// access that starts just below 4 GiB.
pub const RESERVE: usize = (1 << 32) + 4096;

/// Guest RAM's second mapping.
pub struct GuestView {
    base: *mut u8,
    ram_size: usize,
    /// The first mapping of the RAM this views (which machine's RAM).
    ram: *const u8,
    /// Per page of RAM: read-only in the view (holds code).
    protected: Vec<u8>,
    /// `Mmu::code_changes` when the protections were last synced.
    synced: u64,
}

impl GuestView {
    /// Reserves the address space and maps `ram` (a memfd of `ram_size`
    /// bytes) at its start.
    pub fn new(ram: &crate::memory::GuestRam) -> Result<GuestView, String> {
        let (file, ram_size, first) = (ram.file(), ram.size() as usize, ram.bytes().as_ptr());
        // SAFETY: a fresh anonymous PROT_NONE reservation at an address the
        // kernel picks; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                RESERVE,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!("cannot reserve the guest view: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: replaces the first `ram_size` bytes of our own
        // reservation (MAP_FIXED inside it) with a shared mapping of the
        // RAM memfd, which the caller's GuestRam keeps open.
        let ram_map = unsafe {
            libc::mmap(
                base,
                ram_size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                file.as_raw_fd(),
                0,
            )
        };
        if ram_map == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            // SAFETY: unmaps the reservation made above, used by nothing.
            unsafe { libc::munmap(base, RESERVE) };
            return Err(format!("cannot map guest RAM into the guest view: {e}"));
        }
        Ok(GuestView {
            base: base as *mut u8,
            ram_size,
            ram: first,
            protected: vec![0; ram_size.div_ceil(4096)],
            synced: 0,
        })
    }

    /// Whether this is a view of `ram`.
    pub fn views(&self, ram: &crate::memory::GuestRam) -> bool {
        self.ram == ram.bytes().as_ptr()
    }

    /// The host address of guest physical address 0.
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// Whether `addr` lies in the reserved range (a fault there is ours).
    pub fn contains(&self, addr: usize) -> bool {
        (self.base as usize..self.base as usize + RESERVE).contains(&addr)
    }

    /// Makes the view's page protections match the MMU's code pages
    /// (`code`: one byte per page, non-zero = code) if they changed since
    /// the last call (`changes`: `Mmu::code_changes`).
    pub fn sync(&mut self, code: &[u8], changes: u64) {
        if changes == self.synced {
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
                self.protected[p] = want as u8;
                p += 1;
            }
            let prot = if want { libc::PROT_READ } else { libc::PROT_READ | libc::PROT_WRITE };
            let len = ((p - start) * 4096).min(self.ram_size - start * 4096);
            // SAFETY: the range lies inside the RAM mapping at the start of
            // our reservation (pages below `ram_size`); only its protection
            // changes.
            unsafe { libc::mprotect(self.base.add(start * 4096) as *mut libc::c_void, len, prot) };
        }
    }
}

impl Drop for GuestView {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the reservation `new` made (the RAM
        // mapping inside it goes with it); no translated code runs any more.
        unsafe { libc::munmap(self.base as *mut libc::c_void, RESERVE) };
    }
}

/// The largest budget translated code is entered with: the readable part
/// of the budget window. A longer run leaves once per this many
/// instructions (one fault, a few microseconds) and goes on.
pub const BUDGET_WINDOW: usize = 16 << 20;
/// The unmapped part below budget 0: deeper than any charge can take it
/// (a block's length, a REP instruction's overshoot of one).
pub const BUDGET_GUARD: usize = 1 << 20;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{GuestRam, PhysAddr};

    #[test]
    fn the_view_shares_guest_ram_and_mirrors_code_pages() {
        let mut ram = GuestRam::new(2 << 20).unwrap();
        let mut view = GuestView::new(&ram).unwrap();
        assert!(view.views(&ram));
        assert!(view.contains(view.base() as usize + (1 << 32)));
        assert!(!view.contains(view.base() as usize + RESERVE));
        ram.write_u8(PhysAddr(0x1234), 0x5a);
        // SAFETY: 0x1234 is inside the RAM mapping at the start of the view.
        assert_eq!(unsafe { *view.base().add(0x1234) }, 0x5a);
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
        assert_eq!(unsafe { *view.base().add(4 * 4096) }, 0);
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
