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
mod explain;
pub mod guard;
mod mode;
mod path;
pub use explain::{explain_block, BlockExplanation};
pub mod tlb;

pub use mode::{flat_segments, memory_mode, Mode};
use mode::{layout, mem_path};
use path::{path, second_page, straddler};

use crate::cpu::state::{flags, Seg};
use crate::engine::interp::cache::{Block, BlockKey, Map};
use crate::engine::interp::{Accel, Interp};
use crate::engine::{Exit, Limits};
use crate::machine::Machine;
use crate::session::Trace;
use callout::Context;
use chain::{Chains, TKey};
use codebuf::{CodeBuffer, Scratch};
use std::rc::Rc;
use translator::block::{self, Env, GuestInsn, Kind, MemPath};

/// The most linear code pages `Context::ibtc_pages` names one by one.
pub(crate) const IBTC_PAGES: usize = 8;

/// Size of the translation cache.
pub const CODE_SIZE: usize = 32 << 20;
/// The largest instruction budget translated code is entered with: what
/// the budget window holds (a longer run leaves and comes back).
const MAX_BUDGET: u64 = guard::BUDGET_WINDOW as u64;

/// Counters for `--stats`.
#[derive(Clone, Debug, Default)]
pub struct BtStats {
    /// The most frequent callouts: (mnemonic, count), most first.
    pub callouts_by_kind: Vec<(String, u64)>,
    pub blocks_translated: u64,
    /// Host time spent decoding and translating blocks.
    pub translate_ns: u64,
    pub translated_insns: u64,
    pub ident_insns: u64,
    pub ident_mem_insns: u64,
    pub callout_insns: u64,
    /// Entries into translated code from the dispatcher.
    pub block_runs: u64,
    /// Exits chained directly to another block.
    pub chains: u64,
    pub interp_fallbacks: u64,
    /// Blocks the translator failed to emit (each then ran in the
    /// interpreter; a bug to report, never a guest's doing).
    pub translate_failures: u64,
    /// Translations of an instruction that runs off the end of its page
    /// (`straddler`).
    pub straddlers: u64,
    /// Faults taken in the guest view (accesses past RAM, stores into code
    /// pages) and resumed at their slow paths.
    pub guest_view_faults: u64,
    /// Switches between the linear views and the inline TLB
    /// (`Bt::linear_policy`).
    pub linear_switches: u64,
    /// Blocks that could not cover their charge (a fault in the budget
    /// window) and left, refunded.
    pub budget_exits: u64,
    /// Guest or linear views given up (the host refused a mapping change,
    /// or the mapping budget ran out): the checked paths took over.
    pub views_given_up: u64,
    /// Times a linear view started over at the mapping budget.
    pub view_budget_clears: u64,
    pub invalidations: u64,
    pub flushes: u64,
    pub insns_in_translated_blocks: u64,
}

struct Translation {
    entry: usize,
    /// Where the indirect-branch cache enters it (`block::INDIRECT_ENTRY`).
    indirect: usize,
    len: u64,
    /// For an instruction that runs off the end of its page
    /// (`straddler`): the physical page the rest of it is in.
    next_phys: Option<u32>,
    /// Keeps the decoded instructions the callouts point at alive.
    _blocks: Vec<Rc<Block>>,
}

impl Translation {
    /// Whether exits may be chained to it: not a straddling instruction
    /// with paging on, whose second page another address space may map
    /// elsewhere (only the dispatcher, which checks it, enters those).
    fn chainable(&self, mode: Mode) -> bool {
        self.next_phys.is_none() || !mode.paged()
    }
}

/// `--trace perf`: the perf map file.
struct PerfMap(std::fs::File);

impl PerfMap {
    fn symbol(&mut self, start: usize, len: usize, name: &str) {
        use std::io::Write;
        // A write that fails only loses a symbol name.
        let _ = writeln!(self.0, "{start:x} {len:x} {name}");
    }
}

/// The binary-translation engine.
pub struct Bt {
    buf: CodeBuffer,
    enter: usize,
    env: Env,
    map: Map<TKey, Translation>,
    /// The MMU generations the inline TLB matches: all flushes, code
    /// pages, full flushes.
    tlb_generation: (u64, u64, u64, u64),
    /// The memory mode and code size the indirect-branch cache was filled
    /// in.
    ibtc_mode: (Mode, bool),
    by_page: Map<u32, Vec<TKey>>,
    chains: Chains,
    chaining: bool,
    scratch: Box<Scratch>,
    ctx: Box<Context>,
    /// `--trace blocks`: one line on stderr per block translated.
    trace_blocks: bool,
    /// `--trace perf`: the perf map every translation is named in.
    perf_map: Option<PerfMap>,
    /// Where the runtime's routines (enter, exit, callout) lie.
    runtime: (usize, usize),
    /// This thread's trap and memory sites (`engine/trap/signal.rs`).
    sites: crate::engine::trap::signal::Sites,
    /// The guest view paging-off code runs in (made on first use; `None`
    /// before, or if it could not be mapped: then stores check in line).
    view: Option<guard::GuestView>,
    /// Whether to make the guest view (off: the checked paging-off path).
    guard: bool,
    /// Whether to make the linear views (off: the inline TLB).
    linear: bool,
    /// When the linear views are off (`Bt::linear_policy`), the
    /// retired-instruction count at which to try them again.
    linear_retry_at: u64,
    /// Where translated code keeps the instruction budget (r13).
    _budget_window: guard::BudgetWindow,
    /// The stack translated code runs on (`guard::HostStack`).
    _host_stack: guard::HostStack,
    pub stats: BtStats,
}

/// Whether CLI and STI may run inline on the virtual EFLAGS: not under a
/// monitor (`--engine trap`, real or modelled traps), where they must
/// reach the deprivileged CPU through the callout.
fn inline_sensitive(m: &Machine, real_traps: bool) -> bool {
    !real_traps && m.monitor.is_none()
}

impl Bt {
    /// A translator with an empty cache.
    pub fn new() -> Result<Bt, String> {
        Bt::build(false)
    }

    /// The translator for `--engine trap` with real traps: every privileged
    /// instruction's callout is preceded by a host instruction that faults
    /// (`translator::trap`), and a stub lets the monitor take a real trap
    /// for one the interpreter runs. (Modelled traps need nothing of the
    /// translator: `Bt::new` with a monitor on the machine.)
    pub fn with_real_traps() -> Result<Bt, String> {
        Bt::build(true)
    }

    fn build(real_traps: bool) -> Result<Bt, String> {
        // iced's one-time table construction, here rather than in the first
        // block's translation time.
        block::warm_up();
        let mut buf = CodeBuffer::new(CODE_SIZE).map_err(|e| format!("translation cache: {e}"))?;
        let l = layout();
        let gs_view = codebuf::user_gs_base();
        let rt = translator::runtime::emit_runtime(buf.next_addr(), &l, gs_view)?;
        let base = buf.push(&rt.bytes).ok_or("translation cache too small")?;
        let stub = if real_traps {
            // cli; ret
            Some(buf.push(&[0xfa, 0xc3]).ok_or("translation cache too small")?)
        } else {
            None
        };
        let sites = crate::engine::trap::signal::Sites::new(stub)?;
        let budget_window = guard::BudgetWindow::new()?;
        let (start, len) = budget_window.guard();
        sites.set_budget_guard(start, len);
        buf.pin();
        let env = Env {
            layout: l,
            exit: base + rt.exit,
            callout: base + rt.callout,
            mem: MemPath::None,
            trap_sites: real_traps,
            inline_sensitive: false,
            loops: true,
            fs_gs: Default::default(),
            inline_rdtsc: false,
            cross_page: false,
            host_calls: false,
            gs_view,
        };
        let mut scratch = codebuf::new_scratch((base + rt.ibtc_miss) as u64);
        scratch.callout_fn = callout::interp_callout as *const () as u64;
        scratch.budget_base = budget_window.base() as u64;
        let mut host_stack = guard::HostStack::new()?;
        scratch.host_stack = host_stack.top((base + rt.no_pad) as u64);
        Ok(Bt {
            buf,
            enter: base + rt.enter,
            env,
            map: Map::default(),
            tlb_generation: (u64::MAX, u64::MAX, u64::MAX, u64::MAX),
            ibtc_mode: (Mode::Other { cs_limit: 0 }, true),
            by_page: Map::default(),
            chains: Chains::default(),
            chaining: true,
            scratch,
            ctx: Box::new(Context { ibtc_miss: (base + rt.ibtc_miss) as u64, gs_view, ..Context::default() }),
            trace_blocks: false,
            perf_map: None,
            runtime: (base, rt.bytes.len()),
            sites,
            view: None,
            guard: true,
            linear: true,
            linear_retry_at: 0,
            _budget_window: budget_window,
            _host_stack: host_stack,
            stats: BtStats::default(),
        })
    }

    /// Real host traps taken at this translator's trap sites and stub.
    pub fn real_traps_taken(&self) -> u64 {
        self.sites.taken()
    }

    /// Turns direct chaining and the indirect-branch cache on or off
    /// (lockstep checking runs one block per dispatch). Takes effect for
    /// blocks translated afterwards.
    pub fn set_chaining(&mut self, on: bool) {
        self.chaining = on;
        self.env.loops = on;
    }

    /// `--trace`: a line on stderr per block translated (`blocks`) or per
    /// callout executed (`callouts`), or a perf map of the translation
    /// cache (`perf`). Off, each costs one predictable branch (in
    /// `translate` and in the callout).
    pub fn set_trace(&mut self, trace: Trace) {
        self.trace_blocks = trace == Trace::Blocks;
        let f: extern "sysv64" fn(*mut Machine, *mut Scratch) -> u64 =
            if trace == Trace::Callouts { callout::traced_callout } else { callout::interp_callout };
        self.scratch.callout_fn = f as *const () as u64;
        self.perf_map = None;
        if trace == Trace::Perf {
            // perf's convention for JIT code: /tmp/perf-PID.map, one line
            // `START SIZE NAME` (hex) per symbol. Without it, the map is
            // simply missing: a profiling aid, not part of the run.
            let path = format!("/tmp/perf-{}.map", std::process::id());
            match std::fs::File::create(&path) {
                Ok(f) => {
                    let mut map = PerfMap(f);
                    let (start, len) = self.runtime;
                    map.symbol(start, len, "bt86_runtime");
                    self.perf_map = Some(map);
                }
                Err(e) => eprintln!("bt86: cannot write the perf map {path}: {e}"),
            }
        }
    }

    /// Runs the machine until it stops.
    pub fn run(&mut self, interp: &mut Interp, m: &mut Machine, limits: Limits) -> Exit {
        let exit = interp.run_with(m, limits, self);
        self.collect_stats();
        exit
    }

    /// Completes `stats` with the counters kept elsewhere while code ran
    /// (callouts, chains, guest-view faults) and returns them.
    pub fn collect_stats(&mut self) -> BtStats {
        self.stats.callout_insns = self.ctx.calls;
        self.stats.chains = self.chains.links;
        self.stats.guest_view_faults = self.sites.mem_faults();
        self.stats.budget_exits = self.sites.budget_faults();
        self.stats.view_budget_clears = self.ctx.linear.iter().flatten().map(|v| v.budget_clears).sum();
        let mut kinds: Vec<(String, u64)> = iced_x86::Mnemonic::values()
            .zip(self.ctx.by_mnemonic.iter())
            .filter(|(_, &n)| n > 0)
            .map(|(mn, &n)| (format!("{mn:?}").to_lowercase(), n))
            .collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
        kinds.truncate(10);
        self.stats.callouts_by_kind = kinds;
        self.stats.clone()
    }

    fn clear_ibtc(&mut self) {
        self.ctx.clear_ibtc(&mut self.scratch);
    }

    fn flush(&mut self) {
        self.clear_ibtc();
        self.map.clear();
        self.by_page.clear();
        self.chains.clear();
        self.buf.flush();
        self.sites.flush();
        self.stats.flushes += 1;
    }

    /// Translates the path starting at `key` (`path`) into the cache.
    /// The translator's code for `insns` at the code buffer's next
    /// address. A translation the translator cannot emit (its invariants
    /// broken, a short jump out of reach) is counted: the block still
    /// runs, in the interpreter, but slowly, and `--stats` shows it.
    fn emit(&mut self, insns: &[GuestInsn]) -> Option<block::Translated> {
        let t = block::translate(self.buf.next_addr(), insns, &self.env);
        if t.is_err() {
            self.stats.translate_failures += 1;
        }
        t.ok()
    }

    fn translate(&mut self, interp: &mut Interp, m: &mut Machine, key: BlockKey, mode: Mode) -> Option<&Translation> {
        let started = std::time::Instant::now();
        self.env.mem = mem_path(m, mode, self.view.is_some(), self.ctx.linear_on);
        self.env.fs_gs = mode.fs_gs();
        self.env.cross_page = self.chaining && mode.paged();
        self.env.host_calls = self.chaining;
        self.env.inline_sensitive = inline_sensitive(m, self.env.trap_sites);
        // Virtual time only: host time cannot be computed from the budget.
        self.env.inline_rdtsc = self.env.inline_sensitive && m.clock.is_deterministic();
        let (mut insns, blocks, next_phys) = match path(interp, m, key, mode) {
            Some((insns, blocks)) => (insns, blocks, None),
            None => {
                let (insns, blocks, next) = straddler(m, key, mode)?;
                (insns, blocks, Some(next))
            }
        };
        if !self.ctx.wrap_eips.is_empty() {
            for g in &mut insns {
                g.wraps = self.ctx.wrap_eips.contains(&g.insn.ip32());
            }
        }
        if let Mode::Other { cs_limit } = mode {
            // Only what lies wholly within the CS limit (SDM Vol. 3 §5.3):
            // the first instruction past it faults in the interpreter.
            let past = |g: &GuestInsn| {
                let (start, end) = (g.insn.ip32(), g.insn.next_ip32().wrapping_sub(1));
                end > cs_limit || end < start
            };
            if let Some(k) = insns.iter().position(past) {
                insns.truncate(k);
            }
            if insns.is_empty() {
                return None;
            }
        }
        let mut t = self.emit(&insns)?;
        if !self.buf.fits(t.bytes.len()) {
            self.flush();
            t = self.emit(&insns)?;
        }
        let start = self.buf.push(&t.bytes)?;
        let entry = start + t.entry;
        self.sites.add_block(
            t.traps.iter().map(|&(at, len)| (start + at, len)),
            t.mem_sites.iter().map(|&(at, slow)| (start + at, start + slow)),
            t.div_sites.iter().map(|&(at, slow)| (start + at, start + slow)),
            t.x87_sites.iter().map(|&(at, slow)| (start + at, start + slow)),
        );
        if let Some(map) = &mut self.perf_map {
            map.symbol(start, t.bytes.len(), &format!("bt:{:08x}/{}", key.eip, insns.len()));
        }
        if self.trace_blocks {
            eprintln!(
                "bt: block eip={:08x} phys={:08x} insns={} host={:#x}+{} mode={mode:?}",
                key.eip,
                key.phys,
                insns.len(),
                start,
                t.bytes.len()
            );
        }
        self.stats.blocks_translated += 1;
        self.stats.translate_ns += started.elapsed().as_nanos() as u64;
        self.stats.translated_insns += insns.len() as u64;
        self.stats.ident_insns += t.kinds.iter().filter(|k| matches!(k, Kind::Ident | Kind::Divide)).count() as u64;
        self.stats.ident_mem_insns += t.kinds.iter().filter(|k| **k == Kind::IdentMem).count() as u64;
        self.by_page.entry(key.phys >> 12).or_default().push((key, mode));
        if let Some(next) = next_phys {
            self.by_page.entry(next >> 12).or_default().push((key, mode));
            self.stats.straddlers += 1;
        }
        let indirect = start + block::INDIRECT_ENTRY;
        let tr = Translation { entry, indirect, len: insns.len() as u64, next_phys, _blocks: blocks };
        let chainable = tr.chainable(mode);
        self.map.insert((key, mode), tr);
        let exits: Vec<(usize, u32)> = if self.chaining {
            t.exits.iter().filter(|x| x.check.is_none()).map(|x| (start + x.rel32_at, x.target)).collect()
        } else {
            Vec::new()
        };
        for x in &t.exits {
            if let Some((generation_at, unlinked)) = x.check {
                self.chains.add_checked(start + generation_at, start + x.rel32_at, start + unlinked, x.target, mode);
            }
        }
        let (map, buf) = (&self.map, &mut self.buf);
        self.chains.link_new(
            (key, mode),
            chainable.then_some(entry),
            &exits,
            |k| map.get(k).filter(|t| t.chainable(k.1)).map(|t| t.entry),
            |at, target| buf.patch_rel32(at, target),
        );
        self.map.get(&(key, mode))
    }

    /// Forgets one translation (its code stays in the buffer, unreachable):
    /// exits chained to it go back to the exit routine.
    fn drop_translation(&mut self, key: &TKey) {
        if self.map.remove(key).is_some() {
            self.stats.invalidations += 1;
            self.clear_ibtc();
            let (buf, exit) = (&mut self.buf, self.env.exit);
            self.chains.unlink(key, exit, |at, to| buf.patch_rel32(at, to));
        }
    }

    /// For `benches/translate.rs`: the key of every translation in the
    /// cache, in address order.
    pub fn translated_keys(&self) -> Vec<(BlockKey, Mode)> {
        let mut keys: Vec<(BlockKey, Mode)> = self.map.keys().copied().collect();
        let rank = |m: &Mode| match *m {
            Mode::Other { cs_limit } => (0, cs_limit),
            Mode::Physical(s) => (1, s.fs as u32 | (s.gs as u32) << 1),
            Mode::PagedUser(s) => (2, s.fs as u32 | (s.gs as u32) << 1),
            Mode::PagedSupervisor(s) => (3, s.fs as u32 | (s.gs as u32) << 1),
        };
        keys.sort_by_key(|(k, m)| (k.phys, k.eip, k.code32, rank(m)));
        keys
    }

    /// For `benches/translate.rs`: empties the cache, as when it is full.
    pub fn clear_cache(&mut self) {
        self.flush();
    }

    /// For `benches/translate.rs`: what a miss at `key` does (decode unless
    /// `interp` has the block, translate, copy into the cache, link);
    /// returns the block's guest instruction count.
    pub fn translate_miss(&mut self, interp: &mut Interp, m: &mut Machine, key: BlockKey, mode: Mode) -> Option<u64> {
        self.translate(interp, m, key, mode).map(|t| t.len)
    }

    /// Maps the guest view of `m`'s RAM if there is none yet (or it views
    /// another machine's); if it cannot be mapped, paging-off code keeps
    /// the checked memory path.
    fn ensure_view(&mut self, m: &Machine) {
        if !self.guard || self.view.as_ref().is_some_and(|v| v.space.views(&m.ram)) {
            return;
        }
        if self.view.take().is_some() {
            // Another machine's RAM: nothing translated for it applies.
            self.flush();
        }
        match guard::GuestView::new(&m.ram) {
            Ok(v) => {
                let (start, len) = v.space.range();
                self.sites.set_view(0, start, len);
                self.view = Some(v);
            }
            Err(_) => self.guard = false,
        }
    }

    /// Makes the linear views of `m`'s RAM if there are none yet (or they
    /// view another machine's); if they cannot be made, paging-on code
    /// keeps the inline TLB.
    fn ensure_linear(&mut self, m: &Machine) {
        if !self.linear || self.ctx.linear.as_ref().is_some_and(|v| v[0].space.views(&m.ram)) {
            return;
        }
        if self.ctx.linear.take().is_some() {
            self.flush();
        }
        match (guard::LinearView::new(&m.ram), guard::LinearView::new(&m.ram)) {
            (Ok(user), Ok(sup)) => {
                for (k, v) in [(1, &user), (2, &sup)] {
                    let (start, len) = v.space.range();
                    self.sites.set_view(k, start, len);
                }
                self.ctx.linear = Some([user, sup]);
                self.ctx.linear_on = true;
            }
            _ => self.linear = false,
        }
    }

    /// Chooses between the linear views and the inline TLB for paging-on
    /// code. The views make a mapped access as cheap as with paging off,
    /// but a page mapped again after INVLPG or a flush costs a host fault
    /// and a system call (microseconds), where the inline TLB pays a
    /// callout (tens of nanoseconds). So: views while fewer than
    /// `CHURN_EVENTS` pages are mapped again per `CHURN_EVENTS *
    /// CHURN_SPACING` instructions; else the inline TLB for the next
    /// `TLB_SPELL` instructions, then the views again. Each switch empties
    /// the translation cache (translations are made for one or the other).
    fn linear_policy(&mut self, m: &Machine) {
        use callout::{CHURN_EVENTS, CHURN_SPACING};
        const TLB_SPELL: u64 = 20_000_000;
        let Some(views) = self.ctx.linear.as_ref() else { return };
        let now = m.clock.retired;
        let churn = views[0].churn() + views[1].churn();
        if self.ctx.linear_on {
            if !self.ctx.churn_due() {
                return;
            }
            if now - self.ctx.churn_window.0 < CHURN_EVENTS * CHURN_SPACING {
                self.ctx.linear_on = false;
                self.linear_retry_at = now + TLB_SPELL;
                for v in self.ctx.linear.iter_mut().flatten() {
                    v.clear();
                }
                self.stats.linear_switches += 1;
                self.flush();
            }
        } else if now >= self.linear_retry_at {
            self.ctx.linear_on = true;
            self.stats.linear_switches += 1;
            self.flush();
        } else {
            return;
        }
        self.ctx.churn_window = (now, churn);
    }

    /// Drops inline-TLB and indirect-branch-cache entries the MMU no
    /// longer vouches for: all of them after a flush of the whole TLB,
    /// those of the pages INVLPG named otherwise.
    /// Drops a guest or linear view the host stopped cooperating on (a
    /// refused protection change or unmap) or whose mappings outgrew the
    /// budget (`guard::map_budget`): translations made for it go too, and
    /// the bounds-checked path and the inline TLB take over for good.
    /// Whether one was dropped.
    fn give_up_broken_views(&mut self) -> bool {
        let mut dropped = false;
        if self.view.as_ref().is_some_and(|v| v.broken()) {
            self.view = None;
            self.guard = false;
            dropped = true;
        }
        if self.ctx.linear.as_ref().is_some_and(|v| v.iter().any(|v| v.broken())) {
            self.ctx.linear = None;
            self.ctx.linear_on = false;
            self.linear = false;
            dropped = true;
        }
        if dropped {
            self.stats.views_given_up += 1;
            self.flush();
        }
        dropped
    }

    fn sync_tlb(&mut self, m: &mut Machine) {
        let (gen, full, code) = (m.mmu.generation, m.mmu.full_generation, m.mmu.code_generation);
        let global = m.mmu.global_generation;
        if gen != self.tlb_generation.0 {
            if global != self.tlb_generation.3 {
                self.ctx.forget_all(&mut self.scratch);
            } else if full != self.tlb_generation.2 {
                self.ctx.forget_non_global(&mut self.scratch);
            } else {
                self.ctx.forget_pages(&mut self.scratch, &m.mmu.flushed_pages);
            }
            m.mmu.flushed_pages.clear();
        }
        if code != self.tlb_generation.1 {
            tlb::clear_writes(&mut self.scratch.tlb);
            for v in self.ctx.linear.iter_mut().flatten() {
                v.protect_code(m.mmu.code_pages(), m.mmu.code_changes);
            }
        }
        self.tlb_generation = (gen, code, full, global);
    }
}

impl Accel for Bt {
    fn try_run(&mut self, interp: &mut Interp, m: &mut Machine, budget: u64) -> bool {
        // A checked exit that left asking to be linked to what runs next.
        let relink = std::mem::take(&mut self.scratch.relink) as usize;
        // Pages with an instruction whose direct memory form kept faulting
        // (`callout::wrapped`): translated again without it.
        for page in std::mem::take(&mut self.ctx.redo_pages) {
            self.invalidate_page(page);
        }
        if m.cpu.eflags & flags::TF != 0 {
            return false;
        }
        // In an interrupt shadow the interpreter runs one instruction and
        // then may deliver an interrupt. With none pending, only that
        // instruction could make one deliverable, and a callout that could
        // (I/O, STI, POPF) leaves when it does (`callout::quiet`): the
        // block may run whole.
        let shadow = m.cpu.int_shadow != 0;
        if shadow && m.platform.interrupt_pending() {
            return false;
        }
        let eip = m.cpu.eip;
        // A fault here is the interpreter's to deliver.
        let Ok((key, _)) = crate::engine::interp::fetch_key(m) else {
            return false;
        };
        let mode = memory_mode(m);
        match mode {
            Mode::Physical(_) => self.ensure_view(m),
            Mode::PagedUser(_) | Mode::PagedSupervisor(_) => {
                self.ensure_linear(m);
                self.linear_policy(m);
            }
            Mode::Other { .. } => {}
        }
        let (entry, indirect, len) = match self.map.get(&(key, mode)) {
            Some(t) if !t.next_phys.is_some_and(|next| mode.paged() && second_page(m, eip) != Some(next)) => {
                (t.entry, t.indirect, t.len)
            }
            found => {
                if found.is_some() {
                    // A straddling instruction whose second page maps
                    // elsewhere now: translated again.
                    self.drop_translation(&(key, mode));
                }
                match self.translate(interp, m, key, mode) {
                    Some(t) => (t.entry, t.indirect, t.len),
                    None => {
                        self.stats.interp_fallbacks += 1;
                        return false;
                    }
                }
            }
        };
        if len > budget {
            self.stats.interp_fallbacks += 1;
            return false;
        }
        self.sync_tlb(m);
        if let (Some(v), Mode::Physical(_)) = (self.view.as_mut(), mode) {
            v.sync(m.mmu.code_pages(), m.mmu.code_changes);
        }
        if self.give_up_broken_views() {
            self.stats.interp_fallbacks += 1;
            return false;
        }
        if (mode, key.code32) != self.ibtc_mode {
            self.clear_ibtc();
            self.ibtc_mode = (mode, key.code32);
        }
        if self.chaining {
            // Checked exits may link to a straddling instruction too: the
            // generation check covers its second page.
            if let Some(at) = (relink != 0).then(|| self.chains.link_checked(relink, (key, mode))).flatten() {
                self.buf.patch_rel32(at, entry);
                self.buf.patch_u32(relink, (m.mmu.generation as u32).wrapping_neg());
            }
            self.ctx.fill_ibtc(&mut self.scratch, eip, indirect);
            let page = m.cpu.seg(Seg::Cs).base.wrapping_add(eip) >> 12;
            if self.ctx.ibtc_pages.len() <= IBTC_PAGES && !self.ctx.ibtc_pages.contains(&page) {
                self.ctx.ibtc_pages.push(page);
            }
        }
        self.ctx.interp = interp;
        self.ctx.start_retired = m.clock.retired;
        // Translated code tests the budget's sign by its top byte, so a
        // budget must keep that byte zero: with no device deadline at all
        // (u64::MAX) every block would otherwise refund and leave at once.
        self.ctx.start_budget = budget.min(MAX_BUDGET) as i64;
        self.ctx.mode = mode;
        self.ctx.guarded = mem_path(m, mode, self.view.is_some(), self.ctx.linear_on) == MemPath::Guarded;
        self.ctx.mmu_generation = m.mmu.generation;
        self.ctx.code32 = key.code32;
        self.ctx.full_generation = m.mmu.full_generation;
        self.scratch.budget = self.ctx.start_budget;
        self.scratch.tsc_base = callout::tsc_base(m, &self.ctx, &self.scratch);
        self.scratch.mmu_gen = m.mmu.generation as u32;
        self.scratch.code_pages = m.mmu.code_pages_ptr() as u64;
        self.scratch.context = &mut *self.ctx as *mut Context as u64;
        self.scratch.irq_pending = m.platform.interrupt_pending() as u8;
        self.scratch.shadow_at = codebuf::NO_SHADOW;
        if shadow {
            // The block's first instruction runs in the shadow and ends it.
            m.cpu.int_shadow = 0;
        }
        let membase = match (&mut self.view, &self.ctx.linear, mode) {
            (Some(v), _, Mode::Physical(_)) => v.space.base(),
            (_, Some(v), Mode::PagedUser(_)) if self.ctx.linear_on => v[0].space.base(),
            (_, Some(v), Mode::PagedSupervisor(_)) if self.ctx.linear_on => v[1].space.base(),
            _ => m.ram.bytes_mut().as_mut_ptr(),
        };
        codebuf::enter(&self.buf, self.enter, m, &mut self.scratch, entry, membase);
        if self.scratch.shadow_at.wrapping_sub(self.scratch.budget_base as i64) == self.scratch.budget {
            // Stopped right after an inline STI: its shadow is still on.
            m.cpu.int_shadow = 1;
        }
        let done = (self.ctx.start_budget - self.scratch.budget) as u64;
        m.clock.retired = self.ctx.start_retired + done;
        self.stats.block_runs += 1;
        self.stats.insns_in_translated_blocks += done;
        true
    }

    fn invalidate_page(&mut self, page: u32) {
        for key in self.by_page.remove(&page).unwrap_or_default() {
            self.drop_translation(&key);
        }
    }
}
