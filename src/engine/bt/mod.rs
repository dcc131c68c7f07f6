//! The binary translator's runtime: translation cache, dispatcher, and
//! callouts. The interpreter's loop does everything between blocks
//! (devices, interrupts, limits, invalidation); for each block the
//! translator runs translated code when the block fits in the instruction
//! budget, and leaves it to the interpreter otherwise (a deadline inside
//! the block, single-stepping, an interrupt shadow, an instruction that
//! straddles a page). docs/translator.md has the design.
//!
//! ```text
//!   Interp::run_with ─► Bt::try_run ─► lookup (phys, EIP, code size)
//!                                       │ miss: decode (shared decode cache)
//!                                       │       → translator::block::translate
//!                                       │       → code buffer
//!                                       ▼
//!                            codebuf::enter ─► block ─► exit / callouts
//! ```

pub mod callout;
pub mod chain;
pub mod codebuf;

use crate::cpu::state::{flags, CpuLayout, Seg};
use crate::engine::interp::cache::{Block, BlockKey};
use crate::engine::interp::{Accel, Interp};
use crate::engine::{Exit, Limits};
use crate::machine::Machine;
use crate::memory::{Access, LinAddr};
use callout::Context;
use chain::{Chains, TKey};
use codebuf::{CodeBuffer, Scratch};
use std::collections::HashMap;
use std::mem::offset_of;
use std::rc::Rc;
use translator::block::{self, Env, GuestInsn, Kind};

/// Size of the translation cache.
pub const CODE_SIZE: usize = 32 << 20;

/// Counters for `--stats`.
#[derive(Clone, Debug, Default)]
pub struct BtStats {
    /// The most frequent callouts: (mnemonic, count), most first.
    pub callouts_by_kind: Vec<(String, u64)>,
    pub blocks_translated: u64,
    pub translated_insns: u64,
    pub ident_insns: u64,
    pub ident_mem_insns: u64,
    pub callout_insns: u64,
    /// Entries into translated code from the dispatcher.
    pub block_runs: u64,
    /// Exits chained directly to another block.
    pub chains: u64,
    pub interp_fallbacks: u64,
    pub invalidations: u64,
    pub flushes: u64,
    pub insns_in_translated_blocks: u64,
}

struct Translation {
    entry: usize,
    len: u64,
    /// Keeps the decoded instructions the callouts point at alive.
    _block: Rc<Block>,
}

/// The binary-translation engine.
pub struct Bt {
    buf: CodeBuffer,
    enter: usize,
    env: Env,
    map: HashMap<TKey, Translation>,
    by_page: HashMap<u32, Vec<TKey>>,
    chains: Chains,
    chaining: bool,
    scratch: Box<Scratch>,
    ctx: Box<Context>,
    pub stats: BtStats,
}

fn layout() -> translator::Layout {
    let cpu = CpuLayout::new();
    translator::Layout {
        gpr: cpu.gpr as i32,
        eip: cpu.eip as i32,
        eflags: cpu.eflags as i32,
        budget: offset_of!(Scratch, budget) as i32,
        callout_fn: offset_of!(Scratch, callout_fn) as i32,
        callout_arg: offset_of!(Scratch, callout_arg) as i32,
        callout_index: offset_of!(Scratch, callout_index) as i32,
        code_pages: offset_of!(Scratch, code_pages) as i32,
    }
}

/// Whether guest linear addresses are physical addresses with no checks
/// to make: paging off, and CS, DS, ES and SS flat (base 0, limit 4 GiB,
/// expand-up), DS, ES and SS writable data. Blocks translated under this
/// assumption access memory inline.
pub fn flat_memory(m: &Machine) -> bool {
    use crate::cpu::state::attr;
    if m.cpu.paging() {
        return false;
    }
    let flat = |s: Seg| {
        let c = m.cpu.seg(s);
        c.base == 0 && c.limit == u32::MAX && c.attr & attr::P != 0
    };
    let writable = |s: Seg| {
        let c = m.cpu.seg(s);
        c.attr & (attr::CODE | attr::DC | attr::RW) == attr::RW
    };
    flat(Seg::Cs) && [Seg::Ds, Seg::Es, Seg::Ss].iter().all(|&s| flat(s) && writable(s))
}

impl Bt {
    /// A translator with an empty cache.
    pub fn new() -> Result<Bt, String> {
        let mut buf = CodeBuffer::new(CODE_SIZE).map_err(|e| format!("translation cache: {e}"))?;
        let l = layout();
        let rt = translator::runtime::emit_runtime(buf.next_addr(), &l)?;
        let base = buf.push(&rt.bytes).ok_or("translation cache too small")?;
        buf.pin();
        let env = Env { layout: l, exit: base + rt.exit, callout: base + rt.callout, ram_size: 0, flat: false };
        let scratch =
            Box::new(Scratch { callout_fn: callout::interp_callout as *const () as u64, ..Scratch::default() });
        Ok(Bt {
            buf,
            enter: base + rt.enter,
            env,
            map: HashMap::new(),
            by_page: HashMap::new(),
            chains: Chains::default(),
            chaining: true,
            scratch,
            ctx: Box::default(),
            stats: BtStats::default(),
        })
    }

    /// Turns direct chaining on or off (lockstep checking runs one block
    /// per dispatch). Takes effect for blocks translated afterwards.
    pub fn set_chaining(&mut self, on: bool) {
        self.chaining = on;
    }

    /// Runs the machine until it stops.
    pub fn run(&mut self, interp: &mut Interp, m: &mut Machine, limits: Limits) -> Exit {
        let exit = interp.run_with(m, limits, self);
        self.stats.callout_insns = self.ctx.calls;
        self.stats.chains = self.chains.links;
        let mut kinds: Vec<(String, u64)> = iced_x86::Mnemonic::values()
            .zip(self.ctx.by_mnemonic.iter())
            .filter(|(_, &n)| n > 0)
            .map(|(mn, &n)| (format!("{mn:?}").to_lowercase(), n))
            .collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
        kinds.truncate(12);
        self.stats.callouts_by_kind = kinds;
        exit
    }

    fn flush(&mut self) {
        self.map.clear();
        self.by_page.clear();
        self.chains.clear();
        self.buf.flush();
        self.stats.flushes += 1;
    }

    /// Translates the decoded block at `key` into the cache.
    fn translate(&mut self, interp: &mut Interp, m: &mut Machine, key: BlockKey, flat: bool) -> Option<&Translation> {
        let block = interp.decoded_block(m, key)?;
        self.env.ram_size = m.ram.size();
        self.env.flat = flat;
        let insns: Vec<GuestInsn> =
            block.insns.iter().map(|d| GuestInsn { insn: d.insn, arg: d as *const _ as u64 }).collect();
        let mut t = block::translate(self.buf.next_addr(), &insns, &self.env).ok()?;
        if !self.buf.fits(t.bytes.len()) {
            self.flush();
            t = block::translate(self.buf.next_addr(), &insns, &self.env).ok()?;
        }
        let entry = self.buf.push(&t.bytes)?;
        self.stats.blocks_translated += 1;
        self.stats.translated_insns += insns.len() as u64;
        self.stats.ident_insns += t.kinds.iter().filter(|k| **k == Kind::Ident).count() as u64;
        self.stats.ident_mem_insns += t.kinds.iter().filter(|k| **k == Kind::IdentMem).count() as u64;
        self.by_page.entry(key.phys >> 12).or_default().push((key, flat));
        self.map.insert((key, flat), Translation { entry, len: insns.len() as u64, _block: block });
        let exits: Vec<(usize, u32)> =
            if self.chaining { t.exits.iter().map(|x| (entry + x.rel32_at, x.target)).collect() } else { Vec::new() };
        let (map, buf) = (&self.map, &mut self.buf);
        self.chains.link_new(
            (key, flat),
            entry,
            &exits,
            |k| map.get(k).map(|t| t.entry),
            |at, target| buf.patch_rel32(at, target),
        );
        self.map.get(&(key, flat))
    }
}

impl Accel for Bt {
    fn try_run(&mut self, interp: &mut Interp, m: &mut Machine, budget: u64) -> bool {
        if m.cpu.int_shadow != 0 || m.cpu.eflags & flags::TF != 0 {
            return false;
        }
        let eip = m.cpu.eip;
        let cs = *m.cpu.seg(Seg::Cs);
        if eip > cs.limit {
            return false;
        }
        let who = m.privilege();
        let Ok(phys) = m.mmu.translate(&m.cpu, &mut m.ram, LinAddr(cs.base.wrapping_add(eip)), Access::Fetch, who)
        else {
            return false;
        };
        let key = BlockKey { phys: phys.0, eip, code32: cs.big() };
        let flat = flat_memory(m);
        let (entry, len) = match self.map.get(&(key, flat)) {
            Some(t) => (t.entry, t.len),
            None => match self.translate(interp, m, key, flat) {
                Some(t) => (t.entry, t.len),
                None => {
                    self.stats.interp_fallbacks += 1;
                    return false;
                }
            },
        };
        if len > budget {
            self.stats.interp_fallbacks += 1;
            return false;
        }
        self.ctx.interp = interp;
        self.ctx.start_retired = m.clock.retired;
        self.ctx.start_budget = budget.min(i64::MAX as u64 / 2) as i64;
        self.ctx.flat = flat;
        self.scratch.budget = self.ctx.start_budget;
        self.scratch.code_pages = m.mmu.code_pages_ptr() as u64;
        self.scratch.context = &mut *self.ctx as *mut Context as u64;
        codebuf::enter(&self.buf, self.enter, m, &mut self.scratch, entry);
        let done = (self.ctx.start_budget - self.scratch.budget) as u64;
        m.clock.retired = self.ctx.start_retired + done;
        self.stats.block_runs += 1;
        self.stats.insns_in_translated_blocks += done;
        true
    }

    fn invalidate_page(&mut self, page: u32) {
        for key in self.by_page.remove(&page).unwrap_or_default() {
            if self.map.remove(&key).is_some() {
                self.stats.invalidations += 1;
                let (buf, exit) = (&mut self.buf, self.env.exit);
                self.chains.unlink(&key, |at| buf.patch_rel32(at, exit));
            }
        }
    }
}
