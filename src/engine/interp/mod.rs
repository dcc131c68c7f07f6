//! The reference interpreter: the oracle every other engine is compared
//! with, and the slow path they may fall back to.
//!
//! ```text
//!   loop:
//!     service()  — SMC invalidations, device events, timer deadlines,
//!                  pending interrupts, HLT, limits
//!     block      — CS:EIP → linear → physical (fetch), decode cache lookup
//!     execute    — one instruction at a time until the block ends, EIP
//!                  leaves it, a deadline is reached or the guest writes
//!                  to a code page
//! ```
//!
//! Interrupts are taken only at instruction boundaries the service step
//! sees: at block ends (every instruction that can make one deliverable —
//! STI, POPF, IRET, OUT, MOV SS... — ends its block) and exactly at timer
//! deadlines, which the per-instruction budget stops at.

pub mod cache;
pub mod exec;
pub mod operand;
pub mod p6;

use crate::cpu::state::{flags, Seg};
use crate::cpu::Exception;
use crate::devices::PlatformEvent;
use crate::engine::{Exit, Limits};
use crate::machine::Machine;
use crate::memory::{Access, LinAddr};
use cache::{BlockKey, DecodeCache};
use iced_x86::{Decoder, DecoderOptions, Instruction};
use std::time::Instant;

/// Counters for `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct InterpStats {
    pub blocks_decoded: u64,
    pub block_lookups: u64,
    pub uncached_insns: u64,
    pub exceptions: u64,
    pub interrupts: u64,
    pub smc_invalidations: u64,
    /// Times the decode cache started over at its budget
    /// (`cache::MAX_CACHED_INSNS`).
    pub decode_cache_flushes: u64,
}

/// The most instructions one turn of the run loop may retire (a block, a
/// run of translated code, a REP string instruction's iterations), so the
/// loop's checks come round promptly whatever the guest runs: without a
/// timer due, a REP STOSB over 4 GiB, mostly past RAM, would otherwise be
/// one turn of hours. Long enough that ending a turn (for translated code,
/// a budget exit: a host signal, microseconds) costs well under 1% of the
/// run; short enough that the slowest turn (4 Mi iterations of a REP past
/// RAM, element by element) takes a fraction of a second.
pub const MAX_TURN: u64 = 1 << 22;

/// Host time (`--timeout`) is read once this many instructions have
/// retired since the last reading, or after `TIME_CHECK_TURNS` turns of
/// the run loop, whichever comes first, and on every turn the CPU is
/// halted (which may have slept, under `--realtime`): a turn retires at
/// most `MAX_TURN`, and one that retires nothing otherwise (a fault) is
/// short, so the time between readings is bounded whatever the guest runs.
const TIME_CHECK_INSNS: u64 = 1 << 20;
const TIME_CHECK_TURNS: u32 = 4096;

/// A halted CPU that sees this many device deadlines pass without an
/// interrupt arriving is halted for good: every line that could wake it is
/// masked. (Each deadline is an edge of a timer output, so a live timer
/// interrupt arrives within two.)
pub const MAX_IDLE_DEADLINES: u32 = 1000;

/// Something that can run a block faster than the interpreter (the binary
/// translator). The interpreter's loop keeps everything between blocks:
/// devices, interrupts, limits, invalidation.
pub(crate) trait Accel {
    /// Runs the block at CS:EIP if it can, within `budget` instructions;
    /// false leaves it to the interpreter.
    fn try_run(&mut self, interp: &mut Interp, m: &mut Machine, budget: u64) -> bool;
    /// The guest wrote to a physical page holding code.
    fn invalidate_page(&mut self, page: u32);
}

/// No accelerator: the interpreter runs every block.
struct NoAccel;

impl Accel for NoAccel {
    fn try_run(&mut self, _: &mut Interp, _: &mut Machine, _: u64) -> bool {
        false
    }
    fn invalidate_page(&mut self, _: u32) {}
}

/// The interpreter engine.
pub struct Interp {
    idle_deadlines: u32,
    pub(crate) cache: DecodeCache,
    /// Virtual time of the next device deadline.
    pub(crate) deadline: u64,
    /// `Limits::max_exceptions` of the run: translated code that delivered
    /// an exception goes on only below it.
    pub(crate) exception_limit: Option<u64>,
    pub stats: InterpStats,
}

impl Interp {
    /// An interpreter; `decode_cache` off decodes every instruction every
    /// time (for testing the cache).
    pub fn new(decode_cache: bool) -> Interp {
        Interp {
            idle_deadlines: 0,
            cache: DecodeCache::new(decode_cache),
            deadline: 0,
            exception_limit: None,
            stats: InterpStats::default(),
        }
    }

    /// Runs until the guest exits or a limit is reached.
    pub fn run(&mut self, m: &mut Machine, limits: Limits) -> Exit {
        self.run_with(m, limits, &mut NoAccel)
    }

    /// The run loop, with an accelerator (the binary translator) that may
    /// run each block instead of the interpreter.
    pub(crate) fn run_with<A: Accel>(&mut self, m: &mut Machine, limits: Limits, accel: &mut A) -> Exit {
        let started = Instant::now();
        let mut turns = 0u32;
        let mut next_time_check = m.clock.retired.saturating_add(TIME_CHECK_INSNS);
        self.exception_limit = limits.max_exceptions;
        loop {
            if !m.mmu.smc_pages.is_empty() {
                self.invalidate(m, accel);
            }
            if let Some(exit) = self.service(m, &limits) {
                return exit;
            }
            turns = turns.wrapping_add(1);
            if let Some(timeout) = limits.timeout {
                let due = turns % TIME_CHECK_TURNS == 0 || m.clock.retired >= next_time_check;
                // A halted turn may have slept (`--realtime`): read it too.
                if due || m.cpu.halted != 0 {
                    if started.elapsed() >= timeout {
                        return Exit::Timeout;
                    }
                    next_time_check = m.clock.retired.saturating_add(TIME_CHECK_INSNS);
                }
            }
            if m.cpu.halted != 0 {
                continue;
            }
            let stop_at = m.clock.retired_at(self.deadline).min(limits.max_insns.unwrap_or(u64::MAX));
            let budget = stop_at.saturating_sub(m.clock.retired).clamp(1, MAX_TURN);
            if !accel.try_run(self, m, budget) {
                self.run_block(m, budget);
            }
        }
    }

    /// One turn of the run loop with a budget of one instruction: services
    /// devices and interrupts, then runs (or faults on) the instruction at
    /// CS:EIP. Lockstep checking uses it to follow the translator through
    /// a fault, which retires nothing.
    pub(crate) fn step_one(&mut self, m: &mut Machine) -> Option<Exit> {
        if !m.mmu.smc_pages.is_empty() {
            self.invalidate(m, &mut NoAccel);
        }
        if let Some(exit) = self.service(m, &Limits::default()) {
            return Some(exit);
        }
        if m.cpu.halted == 0 {
            self.run_block(m, 1);
        }
        None
    }

    /// Drops what was decoded from pages the guest wrote to.
    fn invalidate<A: Accel>(&mut self, m: &mut Machine, accel: &mut A) {
        for page in std::mem::take(&mut m.mmu.smc_pages) {
            self.stats.smc_invalidations += self.cache.invalidate_page(page) as u64;
            accel.invalidate_page(page);
        }
    }

    /// Everything between blocks. Returns an exit when the run is over.
    fn service(&mut self, m: &mut Machine, limits: &Limits) -> Option<Exit> {
        if let Some(f) = m.fatal.take() {
            return Some(Exit::Fatal(f));
        }
        match m.platform.take_event() {
            Some(PlatformEvent::Exit(status)) => return Some(Exit::GuestExit(status)),
            Some(PlatformEvent::Reset) => return Some(Exit::Reset),
            Some(PlatformEvent::Quit) => return Some(Exit::Quit),
            None => {}
        }
        if limits.max_insns.is_some_and(|n| m.clock.retired >= n) {
            return Some(Exit::InsnLimit);
        }
        if limits.max_exceptions.is_some_and(|n| self.stats.exceptions >= n) {
            return Some(Exit::ExceptionLimit);
        }
        let now = m.clock.now();
        if m.monitor.is_some() {
            if let Some(stall) = m.monitor_progress(now) {
                return Some(Exit::Stalled(stall));
            }
        }
        // An I/O access may have moved the next deadline earlier (the
        // guest reprogrammed the PIT): ask again rather than wait for the
        // old one.
        if m.platform.take_deadline_stale() || now >= self.deadline {
            m.platform.update(now);
            self.deadline = m.platform.next_deadline(now);
        }
        if m.cpu.eflags & flags::IF != 0 && m.cpu.int_shadow == 0 && m.platform.interrupt_pending() {
            let vector = m.platform.acknowledge_interrupt();
            self.stats.interrupts += 1;
            m.cpu.halted = 0;
            m.deliver_external(vector);
            return None;
        }
        if m.cpu.halted != 0 {
            self.idle_deadlines += 1;
            // Serial input that may still come can wake a CPU whose timers
            // are all masked (the console's COM1 interrupt).
            let input = m.platform.serial_input_open();
            if m.cpu.eflags & flags::IF == 0
                || (!input && (self.deadline == u64::MAX || self.idle_deadlines > MAX_IDLE_DEADLINES))
            {
                return Some(Exit::HaltForever);
            }
            // With the console open the idle time passes in host time,
            // waiting for a key (a halted guest at a prompt); otherwise
            // virtual time jumps to the deadline.
            let until = match m.platform.wait_for_serial_input(self.deadline.saturating_sub(now)) {
                Some(waited) => now.saturating_add(waited),
                None => self.deadline,
            };
            m.clock.idle_until(until.min(self.deadline));
        } else {
            self.idle_deadlines = 0;
        }
        None
    }

    /// Raises a fault at `eip`: the faulting instruction is where the
    /// handler returns to, and RF is set in the saved EFLAGS (SDM Vol. 3
    /// §17.3.1.1). An instruction that stopped the run (unsupported, a
    /// host failure) did not execute either: EIP stays on it, in every
    /// engine, and nothing is delivered.
    pub(crate) fn fault(&mut self, m: &mut Machine, e: Exception, eip: u32) {
        if m.fatal.is_some() {
            m.cpu.eip = eip;
            return;
        }
        self.stats.exceptions += 1;
        m.cpu.eip = eip;
        if !e.is_trap() && e != Exception::Debug {
            m.cpu.eflags |= flags::RF;
        }
        m.raise(e, eip);
    }

    /// Executes instructions from CS:EIP on, up to `budget` of them.
    fn run_block(&mut self, m: &mut Machine, budget: u64) {
        let eip = m.cpu.eip;
        let (key, lin) = match fetch_key(m) {
            Ok(k) => k,
            Err(e) => return self.fault(m, e, eip),
        };
        let Some(block) = self.decoded_block(m, key) else {
            return self.run_straddling(m, lin, budget);
        };
        // One instruction at a time while single-stepping or in an
        // interrupt shadow, so the service step sees every boundary.
        let single = m.cpu.int_shadow != 0 || m.cpu.eflags & flags::TF != 0;
        let mut left = budget;
        for d in block.insns.iter() {
            let insn = &d.insn;
            let before = m.clock.retired;
            if !self.execute(m, insn, d.run, left) {
                return;
            }
            // A REP string instruction may retire many (up to `left`).
            left = left.saturating_sub(m.clock.retired - before);
            if left == 0 || single || m.cpu.eip != insn.next_ip32() || !m.mmu.smc_pages.is_empty() {
                return;
            }
        }
    }

    /// The decoded block at `key`, from the cache or decoded now; `None`
    /// when its first instruction straddles the page end.
    pub(crate) fn decoded_block(&mut self, m: &mut Machine, key: BlockKey) -> Option<std::rc::Rc<cache::Block>> {
        self.stats.block_lookups += 1;
        if let Some(b) = self.cache.get(&key) {
            return Some(b);
        }
        let phys = crate::memory::PhysAddr(key.phys);
        let end = ((phys.0 as u64 | 0xfff) + 1).min(m.ram.size() as u64) as u32;
        let bytes = m.ram.slice(phys, end.saturating_sub(phys.0) as usize).unwrap_or(&[]);
        let b = self.cache.decode(key, bytes, m.monitor.is_some())?;
        self.stats.blocks_decoded += 1;
        self.stats.decode_cache_flushes = self.cache.flushes;
        m.mmu.mark_code(phys.page());
        Some(b)
    }

    /// Decoded instructions the cache holds now.
    pub fn cached_insns(&self) -> usize {
        self.cache.cached_insns()
    }

    /// Executes one instruction; false if the block must end (fault,
    /// fatal condition or device event).
    #[inline]
    pub(crate) fn execute(&mut self, m: &mut Machine, insn: &Instruction, run: exec::Handler, budget: u64) -> bool {
        let eip = insn.ip32();
        let end = insn.next_ip32().wrapping_sub(1);
        if end > m.cpu.seg(Seg::Cs).limit || end < eip {
            self.fault(m, Exception::GP0, eip);
            return false;
        }
        let tf = m.cpu.eflags & flags::TF != 0 && m.cpu.int_shadow == 0;
        m.cpu.int_shadow = 0;
        m.cpu.eip = insn.next_ip32();
        // Single-stepping traps after every iteration of a REP string
        // instruction, as hardware and QEMU do (tests/single_step.rs): one
        // iteration, then the #DB with EIP still at the instruction until
        // ECX runs out.
        let budget = if tf { 1 } else { budget };
        if let Err(e) = run(m, insn, budget) {
            self.fault(m, e, eip);
            return false;
        }
        m.clock.retired += 1;
        m.cpu.eflags &= !flags::RF;
        if tf {
            m.cpu.dr[6] |= 1 << 14;
            let next = m.cpu.eip;
            m.raise(Exception::Debug, next);
            return false;
        }
        m.fatal.is_none()
    }

    /// An instruction that runs off the end of its page: fetched byte by
    /// byte through the MMU (so the second page can fault) and never cached.
    fn run_straddling(&mut self, m: &mut Machine, lin: LinAddr, budget: u64) {
        let eip = m.cpu.eip;
        let who = m.privilege();
        let mut bytes = Vec::with_capacity(15);
        let mut insn = Instruction::default();
        let bitness = if m.cpu.code32() { 32 } else { 16 };
        for k in 0..15u32 {
            match m.read_lin(lin.wrapping_add(k), 1, who) {
                Ok(b) => bytes.push(b as u8),
                Err(e) => {
                    // Only a fault if the instruction needs this byte.
                    if decodes(bitness, &bytes, eip, &mut insn) {
                        break;
                    }
                    return self.fault(m, e, eip);
                }
            }
            if decodes(bitness, &bytes, eip, &mut insn) {
                break;
            }
        }
        if !decodes(bitness, &bytes, eip, &mut insn) {
            // Fifteen bytes and no instruction: longer than 15 is #GP.
            return self.fault(m, Exception::GP0, eip);
        }
        self.stats.uncached_insns += 1;
        let run = if m.monitor.is_some() { exec::handler_for(&insn, true) } else { exec::step };
        self.execute(m, &insn, run, budget);
    }
}

/// Where the block at CS:EIP is: the CS limit check, then the fetch
/// through the MMU (which may fault), giving the decode-cache key and the
/// linear address. Shared by the interpreter and the translator.
pub(crate) fn fetch_key(m: &mut Machine) -> Result<(BlockKey, LinAddr), Exception> {
    let eip = m.cpu.eip;
    let cs = *m.cpu.seg(Seg::Cs);
    if eip > cs.limit {
        return Err(Exception::GP0);
    }
    let lin = LinAddr(cs.base.wrapping_add(eip));
    let who = m.privilege();
    let phys = m.mmu.translate(&m.cpu, &mut m.ram, lin, Access::Fetch, who)?;
    Ok((BlockKey { phys: phys.0, eip, code32: cs.big() }, lin))
}

/// Whether `bytes` hold one whole instruction; decodes it into `out`.
fn decodes(bitness: u32, bytes: &[u8], eip: u32, out: &mut Instruction) -> bool {
    let mut d = Decoder::with_ip(bitness, bytes, eip as u64, DecoderOptions::NONE);
    d.decode_out(out);
    p6::as_p6(out);
    !(out.is_invalid() && d.last_error() == iced_x86::DecoderError::NoMoreBytes)
}
