//! The inline TLB translated code probes when paging is on (the layout is
//! `translator::block::MemPath::Tlb`): two direct-mapped tables, one for
//! CPL 3 and one for CPL 0–2, of 256 entries `{ read_tag, write_tag,
//! addend }`. Entries are filled after a slow-path access succeeded (the
//! MMU has just walked and set the accessed or dirty bit), only for pages
//! of RAM; write tags never for pages holding code, so a store into code
//! always takes the slow path and is seen. The tables are cleared when the
//! MMU flushes (CR3, INVLPG, CR0/CR4) and write tags when a page becomes
//! code.

use crate::machine::Machine;
use crate::memory::{Access, LinAddr, Privilege};
use translator::block::TLB_ENTRIES;

/// A tag no page base equals.
pub const EMPTY: u32 = 1;

/// One inline-TLB entry.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub read: u32,
    pub write: u32,
    /// Host address minus linear address, for the page.
    pub addend: u64,
}

/// Both tables: `[0]` for CPL 3, `[1]` for CPL 0–2.
pub type Tables = [[Entry; TLB_ENTRIES]; 2];

/// Empty tables.
pub fn empty() -> Tables {
    [[Entry { read: EMPTY, write: EMPTY, addend: 0 }; TLB_ENTRIES]; 2]
}

/// Clears every entry.
pub fn clear(t: &mut Tables) {
    for e in t.iter_mut().flatten() {
        *e = Entry { read: EMPTY, write: EMPTY, addend: 0 };
    }
}

/// Clears the entries for linear page number `page` (INVLPG).
pub fn clear_page(t: &mut Tables, page: u32) {
    for table in t.iter_mut() {
        let e = &mut table[page as usize % TLB_ENTRIES];
        if e.read == page << 12 || e.write == page << 12 {
            *e = Entry { read: EMPTY, write: EMPTY, addend: 0 };
        }
    }
}

/// Clears every write tag.
pub fn clear_writes(t: &mut Tables) {
    for e in t.iter_mut().flatten() {
        e.write = EMPTY;
    }
}

/// Fills the entry for `lin` after an access at the current privilege
/// succeeded (`write`: the access was a store).
pub fn fill(t: &mut Tables, m: &mut Machine, lin: u32, write: bool) {
    if super::callout::in_monitor_region(m, lin) {
        return;
    }
    let user = m.cpu.cpl == 3;
    let who = if user { Privilege::User } else { Privilege::Supervisor };
    let Ok(pa) = m.mmu.translate(&m.cpu, &mut m.ram, LinAddr(lin), Access::Read, who) else {
        return;
    };
    let page = pa.0 & !0xfff;
    if page as u64 + 4096 > m.ram.size() as u64 {
        return;
    }
    let host = m.ram.bytes().as_ptr() as u64 + page as u64;
    let lin_page = lin & !0xfff;
    let e = &mut t[!user as usize][(lin as usize >> 12) % TLB_ENTRIES];
    let addend = host.wrapping_sub(lin_page as u64);
    if e.read != lin_page || e.addend != addend {
        *e = Entry { read: lin_page, write: EMPTY, addend };
    }
    if write
        && !m.mmu.is_code(page >> 12)
        && m.mmu.translate(&m.cpu, &mut m.ram, LinAddr(lin), Access::Write, who).is_ok_and(|w| w.0 & !0xfff == page)
    {
        e.write = lin_page;
    }
}
