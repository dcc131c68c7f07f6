//! The interpreter's decode cache: guest code decoded once per basic
//! block, keyed by where it is (physical address, EIP, code size), and
//! dropped when the guest writes to its page.
//!
//! A block never crosses a 4 KiB page, so invalidating self-modified code
//! is "drop what starts in this page". An instruction that straddles two
//! pages is decoded on its own each time and never cached.

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use super::exec::{handler_for, Handler};

/// Where a block starts, and how its bytes are to be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockKey {
    pub phys: u32,
    pub eip: u32,
    pub code32: bool,
}

/// One decoded instruction and the function that executes it, chosen
/// once at decode time.
pub struct Decoded {
    pub insn: Instruction,
    pub run: Handler,
}

/// Decoded instructions, in order, all in one physical page.
pub struct Block {
    pub insns: Vec<Decoded>,
}

/// Entries in the direct-mapped front of the cache.
const FRONT: usize = 4096;

#[inline]
fn front_index(k: &BlockKey) -> usize {
    ((k.eip ^ (k.phys >> 7) ^ (k.phys << 3)) as usize) % FRONT
}

/// A multiplicative hasher: block keys are already well spread.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0.rotate_left(29) ^ v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u32(v as u32);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(29) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    // Enum discriminants (the translator's memory mode) hash as isize.
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn write_isize(&mut self, v: isize) {
        self.write_u64(v as u64);
    }
}

/// A hash map keyed by block addresses, with the cheap hasher.
pub type Map<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// The most instructions one block holds.
pub const MAX_BLOCK: usize = 64;

/// The most decoded instructions the cache holds (each about 50 bytes with
/// its share of the maps: some 64 MiB in all). A guest can make the cache
/// decode a block at every byte of its RAM; past this budget the cache
/// starts over (everything is dropped at once, as the translation cache
/// does), so host memory stays bounded whatever the guest runs.
pub const MAX_CACHED_INSNS: usize = 1 << 20;

/// Decoded blocks by key, and which keys start in each physical page.
pub struct DecodeCache {
    /// A direct-mapped array in front of the map: most lookups hit here.
    front: Vec<Option<(BlockKey, Rc<Block>)>>,
    blocks: Map<BlockKey, Rc<Block>>,
    by_page: Map<u32, Vec<BlockKey>>,
    /// Instructions in `blocks`.
    cached_insns: usize,
    /// Times the cache started over at `MAX_CACHED_INSNS`.
    pub flushes: u64,
    pub enabled: bool,
}

/// Whether an instruction must be the last of its block: control flow and
/// anything that may change how the following bytes decode or map.
pub fn ends_block(i: &Instruction) -> bool {
    if i.flow_control() != FlowControl::Next {
        return true;
    }
    matches!(
        i.mnemonic(),
        Mnemonic::Mov if i.op0_register().is_cr() || i.op0_register() == iced_x86::Register::SS
    ) || matches!(
        i.mnemonic(),
        Mnemonic::Invlpg
            | Mnemonic::Hlt
            | Mnemonic::Lmsw
            | Mnemonic::Clts
            | Mnemonic::Sti
            | Mnemonic::Popf
            | Mnemonic::Popfd
            | Mnemonic::Lgdt
            | Mnemonic::Lidt
            | Mnemonic::Lldt
            | Mnemonic::Ltr
            | Mnemonic::Wrmsr
            | Mnemonic::Out
            | Mnemonic::Outsb
            | Mnemonic::Outsw
            | Mnemonic::Outsd
            | Mnemonic::In
            | Mnemonic::Insb
            | Mnemonic::Insw
            | Mnemonic::Insd
            | Mnemonic::Lss
    ) || (i.mnemonic() == Mnemonic::Pop && i.op0_register() == iced_x86::Register::SS)
}

impl DecodeCache {
    pub fn new(enabled: bool) -> DecodeCache {
        DecodeCache {
            front: vec![None; FRONT],
            blocks: Map::default(),
            by_page: Map::default(),
            cached_insns: 0,
            flushes: 0,
            enabled,
        }
    }

    /// The cached block at `key`.
    #[inline]
    pub fn get(&mut self, key: &BlockKey) -> Option<Rc<Block>> {
        let slot = &mut self.front[front_index(key)];
        if let Some((k, b)) = slot {
            if k == key {
                return Some(b.clone());
            }
        }
        let b = self.blocks.get(key)?.clone();
        *slot = Some((*key, b.clone()));
        Some(b)
    }

    /// Decodes a block from `bytes` (the rest of the page from `key.phys`)
    /// and caches it if caching is on. `None` when the first instruction
    /// does not fit in the page.
    pub fn decode(&mut self, key: BlockKey, bytes: &[u8], deprivileged: bool) -> Option<Rc<Block>> {
        let bitness = if key.code32 { 32 } else { 16 };
        let mut dec = Decoder::with_ip(bitness, bytes, key.eip as u64, DecoderOptions::NONE);
        let mut insns = Vec::with_capacity(8);
        let mut i = Instruction::default();
        while dec.can_decode() && insns.len() < MAX_BLOCK {
            dec.decode_out(&mut i);
            super::p6::as_p6(&mut i);
            if i.is_invalid() && dec.last_error() == iced_x86::DecoderError::NoMoreBytes {
                break;
            }
            insns.push(Decoded { insn: i, run: handler_for(&i, deprivileged) });
            if i.is_invalid() || ends_block(&i) {
                break;
            }
        }
        if insns.is_empty() {
            return None;
        }
        let n = insns.len();
        let block = Rc::new(Block { insns });
        if self.enabled {
            if self.cached_insns + n > MAX_CACHED_INSNS {
                self.clear();
                self.flushes += 1;
            }
            self.cached_insns += n;
            if let Some(old) = self.blocks.insert(key, block.clone()) {
                self.cached_insns -= old.insns.len();
            }
            self.by_page.entry(key.phys >> 12).or_default().push(key);
        }
        Some(block)
    }

    /// The one instruction at the start of `bytes`, as a block of its own
    /// that this cache does not keep: for an instruction that runs off the
    /// end of its page, whose bytes the caller fetched from both pages
    /// (the translator's straddling blocks). `None` when `bytes` do not
    /// hold a whole instruction.
    pub fn single(key: BlockKey, bytes: &[u8], deprivileged: bool) -> Option<Rc<Block>> {
        let bitness = if key.code32 { 32 } else { 16 };
        let mut dec = Decoder::with_ip(bitness, bytes, key.eip as u64, DecoderOptions::NONE);
        let mut i = dec.decode();
        super::p6::as_p6(&mut i);
        if i.is_invalid() && dec.last_error() == iced_x86::DecoderError::NoMoreBytes {
            return None;
        }
        Some(Rc::new(Block { insns: vec![Decoded { insn: i, run: handler_for(&i, deprivileged) }] }))
    }

    /// Drops every block that starts in a physical page.
    pub fn invalidate_page(&mut self, page: u32) -> usize {
        let keys = self.by_page.remove(&page).unwrap_or_default();
        for k in &keys {
            if let Some(b) = self.blocks.remove(k) {
                self.cached_insns -= b.insns.len();
            }
            let slot = &mut self.front[front_index(k)];
            if slot.as_ref().is_some_and(|(sk, _)| sk == k) {
                *slot = None;
            }
        }
        keys.len()
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.front.iter_mut().for_each(|e| *e = None);
        self.blocks.clear();
        self.by_page.clear();
        self.cached_insns = 0;
    }

    /// Decoded instructions held.
    pub fn cached_insns(&self) -> usize {
        self.cached_insns
    }

    /// Number of cached blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}
