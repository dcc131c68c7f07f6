//! Direct chaining: a block's exit to a known EIP is re-pointed at the
//! translation for that EIP, so hot loops run without returning to the
//! dispatcher. The exit's target must be valid whatever path leads to it:
//! with paging off and flat segments the EIP is the physical address; with
//! paging on only targets in the block's own page are chained (that page
//! is mapped where the block runs; another may be mapped differently in
//! another address space). Mode changes only happen in callouts, which
//! leave the block. Invalidating a translation points every exit chained
//! to it back at the runtime's exit routine.
//!
//! With paging on, an exit to another page is a checked exit
//! (`translator::block::ChainableExit::check`): it goes on through its
//! link only while the MMU's flush generation is the one it was linked in,
//! and otherwise leaves asking to be linked; the dispatcher then links it
//! to the translation it runs next, if that is for the exit's target in
//! the same mode (`Chains::link_checked`), with the generation of now.

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
    /// Checked exits, by the host address of their generation
    /// displacement.
    checked: Map<usize, Checked>,
    /// The unlinked path of each checked exit, by its rel32's address.
    unlinked: Map<usize, usize>,
    pub links: u64,
}

/// A checked exit (host addresses).
#[derive(Clone, Copy)]
struct Checked {
    rel32_at: usize,
    target: u32,
    mode: Mode,
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

    /// Records a checked exit of a new translation made in `mode`: its
    /// generation displacement, rel32 and unlinked path (host addresses)
    /// and its target.
    pub fn add_checked(&mut self, generation_at: usize, rel32_at: usize, unlinked: usize, target: u32, mode: Mode) {
        self.checked.insert(generation_at, Checked { rel32_at, target, mode });
        self.unlinked.insert(rel32_at, unlinked);
    }

    /// Links the checked exit that asked to be (`generation_at`) to the
    /// translation `key`, which the dispatcher is about to run, if it is
    /// the exit's target in its mode: returns the exit's rel32, which the
    /// caller points at the translation's entry (and writes the
    /// generation of now into the displacement).
    pub fn link_checked(&mut self, generation_at: usize, key: TKey) -> Option<usize> {
        let c = self.checked.get(&generation_at).copied()?;
        if c.target != key.0.eip || c.mode != key.1 {
            return None;
        }
        self.incoming.entry(key).or_default().push(c.rel32_at);
        self.links += 1;
        Some(c.rel32_at)
    }

    /// Unlinks everything chained to a translation that is going away;
    /// `patch(at, to)` points each exit back at `exit` (the exit routine)
    /// or, for a checked exit, at its unlinked path. Plain exits wait to
    /// be chained to the next translation for the key; checked ones are
    /// linked again when they ask.
    pub fn unlink(&mut self, key: &TKey, exit: usize, mut patch: impl FnMut(usize, usize)) {
        if let Some(list) = self.incoming.remove(key) {
            for &at in &list {
                match self.unlinked.get(&at) {
                    Some(&unlinked) => patch(at, unlinked),
                    None => {
                        patch(at, exit);
                        self.pending.entry(*key).or_default().push(at);
                    }
                }
            }
        }
    }

    /// Forgets every link (the code buffer was flushed).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.incoming.clear();
        self.checked.clear();
        self.unlinked.clear();
    }
}
