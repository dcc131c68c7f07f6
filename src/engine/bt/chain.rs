//! Direct chaining: a block's exit to a known EIP is re-pointed at the
//! translation for that EIP, so hot loops run without returning to the
//! dispatcher. Only blocks translated for flat, unpaged memory are chained:
//! there the EIP is the physical address, so the target's translation is
//! valid whatever path leads to it (mode changes only happen in callouts,
//! which leave the block). Invalidating a translation points every exit
//! chained to it back at the runtime's exit routine.

use crate::engine::interp::cache::BlockKey;
use std::collections::HashMap;

/// A translation's key: where its code starts, and whether it was
/// translated for flat, unpaged memory.
pub type TKey = (BlockKey, bool);

/// The exits that are, or wait to be, chained.
#[derive(Default)]
pub struct Chains {
    /// Unchained exits (host addresses of their rel32) by target (EIP, code size).
    pending: HashMap<(u32, bool), Vec<usize>>,
    /// Chained exits by the translation they jump to.
    incoming: HashMap<TKey, Vec<usize>>,
    pub links: u64,
}

/// The key of the flat translation an exit to `eip` would enter.
pub fn target_key(eip: u32, code32: bool) -> TKey {
    (BlockKey { phys: eip, eip, code32 }, true)
}

impl Chains {
    /// Links a new flat translation: its exits to what is already
    /// translated (via `entry_of`), and waiting exits to it. `patch(at,
    /// target)` re-points one rel32.
    pub fn link_new(
        &mut self,
        key: TKey,
        entry: usize,
        exits: &[(usize, u32)],
        entry_of: impl Fn(&TKey) -> Option<usize>,
        mut patch: impl FnMut(usize, usize),
    ) {
        let (bk, flat) = key;
        if !flat {
            return;
        }
        for &(at, target) in exits {
            let tk = target_key(target, bk.code32);
            match entry_of(&tk) {
                Some(e) => {
                    patch(at, e);
                    self.incoming.entry(tk).or_default().push(at);
                    self.links += 1;
                }
                None => self.pending.entry((target, bk.code32)).or_default().push(at),
            }
        }
        if bk.phys == bk.eip {
            if let Some(waiting) = self.pending.remove(&(bk.eip, bk.code32)) {
                for &at in &waiting {
                    patch(at, entry);
                    self.links += 1;
                }
                self.incoming.entry(key).or_default().extend(waiting);
            }
        }
    }

    /// Unlinks everything chained to a translation that is going away;
    /// `patch(at, exit)` points each exit back at the exit routine.
    pub fn unlink(&mut self, key: &TKey, mut unpatch: impl FnMut(usize)) {
        if let Some(list) = self.incoming.remove(key) {
            for &at in &list {
                unpatch(at);
            }
            self.pending.entry((key.0.eip, key.0.code32)).or_default().extend(list);
        }
    }

    /// Forgets every link (the code buffer was flushed).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.incoming.clear();
    }
}
