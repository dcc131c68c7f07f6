//! Callouts: Rust functions translated code calls through the runtime's
//! callout routine, which has stored the guest registers and flags into
//! `CpuState` first. A callout returns 0 to continue the block or 1 to
//! leave it (the guest state is then the Rust side's).

use super::codebuf::Scratch;
use crate::cpu::state::flags;
use crate::engine::interp::cache::{ends_block, Decoded};
use crate::engine::interp::Interp;
use crate::machine::Machine;
use iced_x86::Mnemonic;
use translator::block::{CALLOUT_MEM_READ, CALLOUT_MEM_WRITE};

/// What callouts need besides the machine, reached through
/// `Scratch::context`.
#[derive(Debug)]
pub struct Context {
    pub interp: *mut Interp,
    /// `clock.retired` when translated code was entered.
    pub start_retired: u64,
    /// The budget translated code was entered with.
    pub start_budget: i64,
    /// Callouts made (for `--stats`).
    pub calls: u64,
    /// The memory mode the running code was translated for.
    pub mode: super::Mode,
    /// Callouts made per guest mnemonic (indexed by `Mnemonic as usize`).
    pub by_mnemonic: Vec<u64>,
    /// `Mmu::generation` and the code size when translated code was
    /// entered: what the indirect-branch cache was filled under.
    pub mmu_generation: u64,
    pub code32: bool,
    /// `Mmu::full_generation` when translated code was entered.
    pub full_generation: u64,
    /// The linear pages of the EIPs in the indirect-branch cache (more
    /// than `IBTC_PAGES`: any page).
    pub ibtc_pages: Vec<u32>,
    /// The indirect-branch cache entries filled since it was last emptied
    /// (more than `IBTC_FILLED`: possibly any).
    pub ibtc_filled: Vec<u16>,
    /// What an empty indirect-branch cache entry holds.
    pub ibtc_miss: u64,
    /// The linear views paging-on code runs in (CPL 3, CPL 0-2), when
    /// they could be made (`guard::LinearView`).
    pub linear: Option<[super::guard::LinearView; 2]>,
    /// Whether paging-on code is translated for the linear views now (off:
    /// for the inline TLB; `Bt::linear_policy`).
    pub linear_on: bool,
    /// `Bt::linear_policy`'s window: the retired-instruction count and the
    /// views' churn when it began.
    pub churn_window: (u64, u64),
    /// The running code's memory operands fault in a view on anything but
    /// the guest's address (`MemPath::Guarded`), so reaching a memory slow
    /// path means its access faulted.
    pub guarded: bool,
    /// The guarded path's two-register addresses have direct forms too
    /// (`Env::gs_view`).
    pub gs_view: bool,
    /// Per instruction EIP: memory slow paths reached from a direct
    /// `[r15 + reg + disp]` form (`wrapped`).
    pub direct_faults: crate::engine::interp::cache::Map<u32, u32>,
    /// Instructions whose direct form faulted `WRAP_LIMIT` times: they
    /// are translated without it (`GuestInsn::wraps`).
    pub wrap_eips: std::collections::HashSet<u32>,
    /// Physical pages whose translations the dispatcher drops before it
    /// runs anything, to translate them again without those direct forms.
    pub redo_pages: Vec<u32>,
}

/// How many faults of one instruction's direct memory form (its 32-bit
/// address wrapped around 4 GiB, as a negative index does: `[edx +
/// 0x105342]` with EDX = -2; or a page past RAM, or a store into a code
/// page) make it translated with the LEA form instead.
pub const WRAP_LIMIT: u32 = 8;

/// `Bt::linear_policy`: the views stay on while fewer than this many pages
/// are mapped again per `CHURN_EVENTS * CHURN_SPACING` instructions.
pub const CHURN_EVENTS: u64 = 512;
pub const CHURN_SPACING: u64 = 10_000;

/// The most filled indirect-branch cache entries `Context::ibtc_filled`
/// lists; beyond, emptying the cache rewrites all of it.
const IBTC_FILLED: usize = 4096;

impl Context {
    /// Empties the indirect-branch cache: the entries filled since it was
    /// last emptied, or all of them.
    pub fn clear_ibtc(&mut self, s: &mut Scratch) {
        if self.ibtc_filled.len() > IBTC_FILLED {
            s.ibtc.fill(self.ibtc_miss);
        } else {
            for &k in &self.ibtc_filled {
                s.ibtc[k as usize] = self.ibtc_miss;
            }
        }
        self.ibtc_filled.clear();
        self.ibtc_pages.clear();
    }

    /// After a flush of the whole TLB: empties the inline TLB, the linear
    /// views and the indirect-branch cache.
    pub fn forget_all(&mut self, s: &mut Scratch) {
        super::tlb::clear(&mut s.tlb);
        for v in self.linear.iter_mut().flatten() {
            v.clear();
        }
        self.clear_ibtc(s);
    }

    /// After a flush that kept the global pages (a CR3 load): as
    /// `forget_all`, but the linear views keep their global pages.
    pub fn forget_non_global(&mut self, s: &mut Scratch) {
        super::tlb::clear(&mut s.tlb);
        for v in self.linear.iter_mut().flatten() {
            v.clear_non_global();
        }
        self.clear_ibtc(s);
    }

    /// After INVLPG of linear `pages`: drops them from the inline TLB and
    /// the linear views, and empties the indirect-branch cache if it may
    /// hold an EIP in one of them.
    pub fn forget_pages(&mut self, s: &mut Scratch, pages: &[u32]) {
        for &page in pages {
            super::tlb::clear_page(&mut s.tlb, page);
            for v in self.linear.iter_mut().flatten() {
                v.unmap(page);
            }
        }
        if self.ibtc_holds_any(pages) {
            self.clear_ibtc(s);
        }
    }

    /// Points the indirect-branch cache entry of `eip` at a translation's
    /// indirect entry.
    pub fn fill_ibtc(&mut self, s: &mut Scratch, eip: u32, indirect: usize) {
        let k = eip as u16;
        if s.ibtc[k as usize] != indirect as u64 {
            s.ibtc[k as usize] = indirect as u64;
            if self.ibtc_filled.len() <= IBTC_FILLED {
                self.ibtc_filled.push(k);
            }
        }
    }

    /// Whether the linear views have mapped enough pages again since the
    /// policy's window began that the dispatcher should look at it
    /// (`Bt::linear_policy`): translated code leaves then.
    pub fn churn_due(&self) -> bool {
        match &self.linear {
            Some(v) if self.linear_on => v[0].churn() + v[1].churn() - self.churn_window.1 >= CHURN_EVENTS,
            _ => false,
        }
    }

    /// Whether a linear view may hold stale pages (the host refused an
    /// unmap or a protection change): translated code must leave at once,
    /// and the dispatcher gives the views up (`Bt::give_up_broken_views`).
    pub fn views_broken(&self) -> bool {
        self.linear.as_ref().is_some_and(|v| v.iter().any(|v| v.broken()))
    }

    /// Whether the indirect-branch cache may hold an EIP in one of `pages`.
    pub fn ibtc_holds_any(&self, pages: &[u32]) -> bool {
        self.ibtc_pages.len() > super::IBTC_PAGES || pages.iter().any(|p| self.ibtc_pages.contains(p))
    }
}

impl Default for Context {
    fn default() -> Self {
        Context {
            interp: std::ptr::null_mut(),
            start_retired: 0,
            start_budget: 0,
            calls: 0,
            mode: super::Mode::Other { cs_limit: 0 },
            by_mnemonic: vec![0; iced_x86::Mnemonic::values().count()],
            mmu_generation: 0,
            code32: true,
            full_generation: 0,
            ibtc_pages: Vec::new(),
            ibtc_filled: Vec::new(),
            ibtc_miss: 0,
            linear: None,
            linear_on: false,
            churn_window: (0, 0),
            guarded: false,
            gs_view: false,
            direct_faults: Default::default(),
            wrap_eips: Default::default(),
            redo_pages: Vec::new(),
        }
    }
}

/// Runs one guest instruction with the interpreter's handler for it.
///
/// Accounting: the block has charged all its `n` instructions against
/// `s.budget`, so the instructions retired before this one are
/// `start_budget - budget - n + k`. A REP string instruction may retire
/// several; the extra ones are charged here. When the block is left
/// early, what did not run is refunded.
pub(super) extern "sysv64" fn interp_callout(m: *mut Machine, s: *mut Scratch) -> u64 {
    // A panic must not unwind into translated code (it would abort the
    // process): it stops the run as a host failure (status 14).
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_callout(m, s))) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            // SAFETY: the same pointers `run_callout` was given; its
            // references are gone with its frame.
            let m = unsafe { &mut *m };
            m.fatal = Some(crate::machine::Fatal::Host(format!("internal error in a callout: {what}")));
            1
        }
    }
}

/// The callout itself (see [`interp_callout`]).
fn run_callout(m: *mut Machine, s: *mut Scratch) -> u64 {
    // SAFETY: the runtime's callout routine passes the state and scratch
    // pointers `codebuf::enter` was given, both valid and not otherwise in
    // use while translated code runs; `s.context` points at the engine's
    // `Context`, whose `interp` was set from a live `&mut Interp` that its
    // owner does not touch during the call; `s.callout_arg` points at a
    // `Decoded` inside an `Rc<Block>` the translation keeps alive.
    let (m, s, ctx, interp, d) = unsafe {
        let s = &mut *s;
        let ctx = &mut *(s.context as *mut Context);
        let interp = &mut *ctx.interp;
        let d = &*(s.callout_arg as *const Decoded);
        (&mut *m, s, ctx, interp, d)
    };
    // The interpreter's handler clears STI's shadow as this instruction
    // runs (`translator::inline`).
    s.shadow_at = super::codebuf::NO_SHADOW;
    ctx.calls += 1;
    if let Some(n) = ctx.by_mnemonic.get_mut(d.insn.mnemonic() as usize) {
        *n += 1;
    }
    let k = (s.callout_index & 0xff) as i64;
    let fill = s.callout_index & (CALLOUT_MEM_READ | CALLOUT_MEM_WRITE);
    let paged = ctx.mode.paged();
    // The linear address of a slow-path access, taken before the
    // instruction changes its registers (segments are flat here, but for
    // FS and GS bases).
    // Under a monitor it is also counted when it lies in the monitor's
    // region (which translated code never maps).
    let operand = (fill != 0 && ((paged && !ctx.linear_on) || m.monitor.is_some())).then(|| {
        use crate::engine::interp::operand::{ea, seg_of};
        m.cpu.seg(seg_of(d.insn.memory_segment())).base.wrapping_add(ea(&m.cpu, &d.insn))
    });
    if operand.is_some_and(|at| in_monitor_region(m, at)) {
        m.monitor_region_access();
    }
    let lin = operand.filter(|_| paged && !ctx.linear_on);
    // In a linear view: the page whose fault led here, to map once the
    // access has succeeded.
    let view_fault = match (&ctx.linear, ctx.mode) {
        (Some(v), super::Mode::PagedUser(_)) if ctx.linear_on => {
            view_page(&v[0], crate::engine::trap::signal::take_fault())
        }
        (Some(v), super::Mode::PagedSupervisor(_)) if ctx.linear_on => {
            view_page(&v[1], crate::engine::trap::signal::take_fault())
        }
        _ => None,
    };
    // Leaves after it, so that the dispatcher translates the page again.
    let redo = fill != 0 && ctx.guarded && wrapped(m, ctx, &d.insn);
    let n = (s.callout_index >> 16) as i64;
    let before = ctx.start_retired + (ctx.start_budget - s.budget - n + k) as u64;
    m.clock.retired = before;
    // This instruction's own charge, the charge of the rest of the block
    // (taken at its entry, refunded when the callout leaves) and whatever
    // budget is spare: a REP string instruction runs as far as the
    // interpreter would run it. (Allowing it less would stop it early and
    // fetch it again, which differs when it has rewritten its own bytes.)
    let rest = n - k - 1;
    let allowed = (s.budget + 1 + rest).max(1) as u64;
    let exceptions = interp.stats.exceptions;
    let ok = interp.execute(m, &d.insn, d.run, allowed);
    let delta = (m.clock.retired - before) as i64;
    // WRMSR may have moved the TSC; INVLPG or a CR3 write flushed the MMU
    // (checked exits then leave, `chain`).
    s.tsc_base = tsc_base(m, ctx, s);
    // A return pad's code may be for a mapping the MMU dropped: the block
    // goes on with the outstanding host calls forgotten (result 3).
    let flushed = s.mmu_gen != m.mmu.generation as u32;
    s.mmu_gen = m.mmu.generation as u32;
    if interp.stats.exceptions != exceptions || m.fatal.is_some() {
        // The instruction faulted: it did not retire (REP iterations done
        // before the fault did); refund the rest of the block. The
        // exception was delivered: go on at the handler if nothing else
        // needs the run loop.
        s.budget += n - k - delta;
        let limit = interp.exception_limit.is_some_and(|l| interp.stats.exceptions >= l);
        let go_on = m.fatal.is_none()
            && !limit
            && !ctx.views_broken()
            && flat(ctx)
            && settled(m, ctx)
            && quiet(m, interp, None)
            && !flushed;
        return if go_on { 2 } else { 1 };
    }
    let mn = d.insn.mnemonic();
    let io = is_io(mn);
    // After I/O: whether a request is pending now (the inline STI reads it).
    let pending = io.then(|| m.platform.interrupt_pending());
    if let Some(p) = pending {
        s.irq_pending = p as u8;
    }
    if let Some((lin, write)) = view_fault {
        // Map the page so the next access to it stays inline, if the
        // access left the MMU and the mode as they were.
        if m.mmu.generation == ctx.mmu_generation && super::memory_mode(m) == ctx.mode {
            if let Some(views) = ctx.linear.as_mut() {
                let k = matches!(ctx.mode, super::Mode::PagedSupervisor(_)) as usize;
                map_page(&mut views[k], m, lin, write);
            }
        }
    }
    let ends = ends_block(&d.insn);
    let branched = m.cpu.eip != d.insn.next_ip32();
    // It used budget charged for the rest of the block, which cannot run.
    let overran = delta - 1 > s.budget;
    let leave = !ok
        || redo
        || overran
        || ctx.churn_due()
        || ctx.views_broken()
        || branched
        || !m.mmu.smc_pages.is_empty()
        || m.cpu.int_shadow != 0
        || m.cpu.halted != 0
        || m.cpu.eflags & flags::TF != 0
        || (ends
            && !match mn {
                Mnemonic::Invlpg => ok && invlpg_synced(m, s, ctx, &d.insn),
                _ => window(mn, io) && quiet(m, interp, pending),
            })
        || (((ends && !window(mn, io)) || loads_segment(&d.insn)) && super::memory_mode(m) != ctx.mode);
    if let Some(lin) = lin.filter(|_| !leave) {
        // Fill the inline TLB so the next access to this page stays inline.
        super::tlb::fill(&mut s.tlb, m, lin, fill & CALLOUT_MEM_WRITE != 0);
    }

    if leave {
        s.budget += n - k - delta;
        // A branch may go on through the indirect-branch cache: a near one
        // only moved EIP; a far one (INT, IRET, SYSENTER...) also needs the
        // service step to have nothing to do.
        let go_on = ok
            && branched
            && !flushed
            && settled(m, ctx)
            && (near_branch(&d.insn) || (flat(ctx) && quiet(m, interp, pending)));
        return if go_on { 2 } else { 1 };
    }
    s.budget -= delta - 1;
    if flushed {
        3
    } else {
        0
    }
}

/// A memory slow path reached by a fault on the guarded path: if the
/// instruction's access was in its direct form, counts it, and at
/// `WRAP_LIMIT` has its page translated again without that form (true:
/// the block must leave for the dispatcher to do it).
fn wrapped(m: &mut Machine, ctx: &mut Context, i: &iced_x86::Instruction) -> bool {
    use translator::memop::{direct_operand_for, Forms};
    let forms = if ctx.gs_view { Forms::Gs } else { Forms::Physical };
    if direct_operand_for(i, forms).is_none() || ctx.wrap_eips.contains(&i.ip32()) {
        return false;
    }
    let n = ctx.direct_faults.entry(i.ip32()).or_default();
    *n += 1;
    if *n < WRAP_LIMIT {
        return false;
    }
    ctx.wrap_eips.insert(i.ip32());
    let who = m.privilege();
    let lin = crate::memory::LinAddr(m.cpu.seg(crate::cpu::state::Seg::Cs).base.wrapping_add(i.ip32()));
    match m.mmu.translate(&m.cpu, &mut m.ram, lin, crate::memory::Access::Fetch, who) {
        Ok(p) => {
            ctx.redo_pages.push(p.0 >> 12);
            true
        }
        Err(_) => false,
    }
}

/// What inline RDTSC subtracts r13 from (`Scratch::tsc_base`): the
/// time-stamp counter (`Machine::tsc`: retired instructions, idle time and
/// the offset WRMSR set) at the instruction `k` of a block of `n` is
/// `tsc_base - r13 + k - n`, since r13 is `budget_base + budget` and the
/// retired count there is `start_retired + start_budget - budget - n + k`
/// (as `interp_callout` works it out). Deterministic time only.
pub(super) fn tsc_base(m: &Machine, ctx: &Context, s: &Scratch) -> u64 {
    (ctx.start_retired.wrapping_add(ctx.start_budget as u64))
        .wrapping_add(s.budget_base)
        .wrapping_add(m.clock.idle)
        .wrapping_add(m.cpu_tsc_offset)
}

/// Under a monitor, the top of the address space is the monitor's: the
/// guest's segments are cut below it (`system::depriv::shadow`), so an
/// access there is never mapped for translated code and each one reaches
/// the callout, where the monitor emulates it.
pub(super) fn in_monitor_region(m: &Machine, lin: u32) -> bool {
    lin >= crate::system::depriv::MONITOR_BASE && m.monitor.is_some()
}

/// The linear address and write bit of a fault in `view`.
fn view_page(view: &super::guard::LinearView, fault: Option<(usize, bool)>) -> Option<(u32, bool)> {
    let (addr, write) = fault?;
    Some((view.space.guest_address(addr)?, write))
}

/// Maps the page of `lin` in `view` as the MMU maps it now for the current
/// privilege: after a successful access, so the walk has set the accessed
/// bit (and the dirty bit, after a store). Writable only after a store,
/// and never while the page holds code.
fn map_page(view: &mut super::guard::LinearView, m: &mut Machine, lin: u32, write: bool) {
    use crate::memory::{Access, LinAddr, Privilege};
    if in_monitor_region(m, lin) {
        return;
    }
    let who = if m.cpu.cpl == 3 { Privilege::User } else { Privilege::Supervisor };
    let Ok(pa) = m.mmu.translate(&m.cpu, &mut m.ram, LinAddr(lin), Access::Read, who) else {
        return;
    };
    let page = pa.0 >> 12;
    let writable = write
        && !m.mmu.is_code(page)
        && m.mmu.translate(&m.cpu, &mut m.ram, LinAddr(lin), Access::Write, who).is_ok_and(|w| w.0 >> 12 == page);
    let global = m.mmu.is_global(LinAddr(lin));
    view.map(lin >> 12, page, writable, global);
}

/// Whether translated code may go on at the guest EIP through the
/// indirect-branch cache (filled for the memory mode the code was entered
/// in, cleared by the dispatcher when the MMU flushes): no code page
/// written, no interrupt shadow, not halted, not single-stepping, same
/// memory mode, code size and MMU generation.
fn settled(m: &Machine, ctx: &Context) -> bool {
    m.mmu.smc_pages.is_empty()
        && m.cpu.int_shadow == 0
        && m.cpu.halted == 0
        && m.cpu.eflags & flags::TF == 0
        && m.mmu.generation == ctx.mmu_generation
        && m.cpu.code32() == ctx.code32
        && super::memory_mode(m) == ctx.mode
}

/// After INVLPG: drops the inline-TLB entries of the flushed pages (and
/// the indirect-branch cache if it holds one) here, as the dispatcher
/// would, so the block may go on. Not when the whole TLB went, nor when a
/// flushed page is the one this code runs from or falls through to: its
/// mapping may have changed, and chained blocks assume it has not.
fn invlpg_synced(m: &mut Machine, s: &mut Scratch, ctx: &mut Context, i: &iced_x86::Instruction) -> bool {
    if m.mmu.full_generation != ctx.full_generation {
        return false;
    }
    let base = m.cpu.seg(crate::cpu::state::Seg::Cs).base;
    let here = base.wrapping_add(i.ip32()) >> 12;
    let next = base.wrapping_add(i.next_ip32()) >> 12;
    if m.mmu.flushed_pages.iter().any(|&p| p == here || p == next) {
        return false;
    }
    ctx.forget_pages(s, &m.mmu.flushed_pages);
    m.mmu.flushed_pages.clear();
    ctx.mmu_generation = m.mmu.generation;
    true
}

/// Whether CS has base 0 whenever the running code's memory mode holds:
/// then the indirect-branch cache, keyed by EIP, stays right across a
/// far transfer.
fn flat(ctx: &Context) -> bool {
    !matches!(ctx.mode, super::Mode::Other { .. })
}

/// Segment loads that do not end their block. They, control transfers and
/// the other block enders (MOV CR0, LMSW...; not STI, POPF or I/O) are all
/// the instructions that do not fault and may change the memory mode (a
/// segment, CR0, CPL).
fn loads_segment(i: &iced_x86::Instruction) -> bool {
    use Mnemonic::*;
    i.op0_register().is_segment_register() || matches!(i.mnemonic(), Lds | Les | Lfs | Lgs | Lss)
}

/// Input and output instructions: the only ones that reach the devices.
fn is_io(mn: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(mn, In | Insb | Insw | Insd | Out | Outsb | Outsw | Outsd)
}

/// Instructions that end their block only so that the run loop's service
/// step runs after them (interrupts may have become deliverable, a device
/// may have been reprogrammed), not because the code mapping or the mode
/// may have changed.
fn window(mn: Mnemonic, io: bool) -> bool {
    io || matches!(mn, Mnemonic::Sti | Mnemonic::Popf | Mnemonic::Popfd)
}

/// Whether the service step would do nothing now (`Interp::service`): no
/// exit or reset request, no interrupt deliverable, and after I/O no
/// device deadline earlier than the one the budget was set from
/// (`io_pending`: after I/O, whether a request is pending). Then the
/// block may go on, through a chained exit, as if the run loop had run
/// it.
fn quiet(m: &mut Machine, interp: &Interp, io_pending: Option<bool>) -> bool {
    if m.platform.has_event() {
        return false;
    }
    if m.cpu.eflags & flags::IF != 0
        && m.cpu.int_shadow == 0
        && io_pending.unwrap_or_else(|| m.platform.interrupt_pending())
    {
        return false;
    }
    // Only the PIT and the UART move the deadline (`Platform::next_deadline`).
    io_pending.is_none()
        || !m.platform.take_timer_access()
        || m.platform.next_deadline(m.clock.now()) >= interp.deadline
}

/// `--trace callouts`: the interpreter callout behind a line on stderr
/// (installed instead of it, so tracing off costs nothing).
pub(super) extern "sysv64" fn traced_callout(m: *mut Machine, s: *mut Scratch) -> u64 {
    // SAFETY: as in `interp_callout`: the runtime passes the scratch
    // `codebuf::enter` was given, and its `callout_arg` points at a
    // `Decoded` inside an `Rc<Block>` the translation keeps alive.
    let insn = unsafe { (*((*s).callout_arg as *const Decoded)).insn };
    let mut text = String::new();
    iced_x86::Formatter::format(&mut iced_x86::IntelFormatter::new(), &insn, &mut text);
    eprintln!("bt: callout eip={:08x} {}  {text}", insn.ip32(), format!("{:?}", insn.mnemonic()).to_lowercase());
    interp_callout(m, s)
}

/// Near JMP/CALL (direct or indirect), RET, LOOPcc and JCXZ: transfers
/// that change only EIP (and the stack), never CS or the mode.
fn near_branch(i: &iced_x86::Instruction) -> bool {
    use iced_x86::Mnemonic::*;
    let far = i.is_jmp_far() || i.is_jmp_far_indirect() || i.is_call_far() || i.is_call_far_indirect();
    !far && matches!(i.mnemonic(), Jmp | Call | Ret | Loop | Loope | Loopne | Jcxz | Jecxz)
}
