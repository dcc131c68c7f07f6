//! Direct chaining: a block's exit to a known EIP is re-pointed at the
//! translation for that EIP, so hot loops run without returning to the
//! dispatcher. The exit's target must be valid whatever path leads to it:
//! with paging off and flat segments the EIP is the physical address; with
//! paging on only targets in the block's own page are chained (that page
//! is mapped where the block runs; another may be mapped differently in
//! another address space). Mode changes only happen in callouts, which
//! leave the block. Invalidating a translation points every exit chained
//! to it back at the runtime's exit routine.

use super::Mode;
use crate::engine::interp::cache::BlockKey;
use crate::engine::interp::cache::Map;

/// A translation's key: where its code starts, and the memory mode it
/// was translated for.
pub type TKey = (BlockKey, Mode);

/// The translation an exit to `target` from the block `from` may chain to.
pub fn target_key(from: &TKey, target: u32) -> Option<TKey> {
    let (bk, mode) = *from;
    match mode {
        Mode::Physical(_) => Some((BlockKey { phys: target, eip: target, code32: bk.code32 }, mode)),
        Mode::PagedUser(_) | Mode::PagedSupervisor(_) if target >> 12 == bk.eip >> 12 => {
            Some((BlockKey { phys: (bk.phys & !0xfff) | (target & 0xfff), eip: target, code32: bk.code32 }, mode))
        }
        _ => None,
    }
}

/// The exits that are, or wait to be, chained.
#[derive(Default)]
pub struct Chains {
    /// Unchained exits (host addresses of their rel32) by target.
    pending: Map<TKey, Vec<usize>>,
    /// Chained exits by the translation they jump to.
    incoming: Map<TKey, Vec<usize>>,
    pub links: u64,
}

impl Chains {
    /// Links a new translation: its exits to what is already translated
    /// (via `entry_of`), and waiting exits to it if it may be chained to
    /// (`entry`). `patch(at, target)` re-points one rel32.
    pub fn link_new(
        &mut self,
        key: TKey,
        entry: Option<usize>,
        exits: &[(usize, u32)],
        entry_of: impl Fn(&TKey) -> Option<usize>,
        mut patch: impl FnMut(usize, usize),
    ) {
        for &(at, target) in exits {
            let Some(tk) = target_key(&key, target) else { continue };
            match entry_of(&tk) {
                Some(e) => {
                    patch(at, e);
                    self.incoming.entry(tk).or_default().push(at);
                    self.links += 1;
                }
                None => self.pending.entry(tk).or_default().push(at),
            }
        }
        let Some(entry) = entry else { return };
        if let Some(waiting) = self.pending.remove(&key) {
            for &at in &waiting {
                patch(at, entry);
                self.links += 1;
            }
            self.incoming.entry(key).or_default().extend(waiting);
        }
    }

    /// Unlinks everything chained to a translation that is going away;
    /// `unpatch(at)` points each exit back at the exit routine.
    pub fn unlink(&mut self, key: &TKey, mut unpatch: impl FnMut(usize)) {
        if let Some(list) = self.incoming.remove(key) {
            for &at in &list {
                unpatch(at);
            }
            self.pending.entry(*key).or_default().extend(list);
        }
    }

    /// Forgets every link (the code buffer was flushed).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.incoming.clear();
    }
}
