//! Callouts: Rust functions translated code calls through the runtime's
//! callout routine, which has stored the guest registers and flags into
//! `CpuState` first. A callout returns 0 to continue the block or 1 to
//! leave it (the guest state is then the Rust side's).

use super::codebuf::Scratch;
use crate::cpu::state::flags;
use crate::engine::interp::cache::Decoded;
use crate::engine::interp::Interp;
use crate::machine::Machine;

/// What callouts need besides the machine, reached through
/// `Scratch::context`.
#[derive(Debug)]
pub struct Context {
    pub interp: *mut Interp,
    /// `clock.retired` when the block was entered.
    pub block_retired: u64,
    /// Instructions retired beyond one per guest instruction (REP string
    /// iterations) so far in this block.
    pub bias: u64,
    /// The instruction budget the block was entered with.
    pub budget: u64,
    /// Callouts made (for `--stats`).
    pub calls: u64,
    /// Whether the running block was translated for flat, unpaged memory.
    pub flat: bool,
    /// Callouts made per guest mnemonic (indexed by `Mnemonic as usize`).
    pub by_mnemonic: Vec<u64>,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            interp: std::ptr::null_mut(),
            block_retired: 0,
            bias: 0,
            budget: 0,
            calls: 0,
            flat: false,
            by_mnemonic: vec![0; iced_x86::Mnemonic::values().count()],
        }
    }
}

/// Runs one guest instruction with the interpreter's handler for it.
pub(super) extern "sysv64" fn interp_callout(m: *mut Machine, s: *mut Scratch) -> u64 {
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
    ctx.calls += 1;
    if let Some(n) = ctx.by_mnemonic.get_mut(d.insn.mnemonic() as usize) {
        *n += 1;
    }
    let k = s.callout_index as u64;
    let before = ctx.block_retired + ctx.bias + k;
    m.clock.retired = before;
    let budget = ctx.budget.saturating_sub(ctx.bias + k).max(1);
    let exceptions = interp.stats.exceptions;
    let ok = interp.execute(m, &d.insn, d.run, budget);
    let delta = m.clock.retired - before;
    if interp.stats.exceptions != exceptions || m.fatal.is_some() {
        ctx.bias += delta;
        s.completed = k as u32;
        return 1;
    }
    ctx.bias += delta.saturating_sub(1);
    let leave = !ok
        || m.cpu.eip != d.insn.next_ip32()
        || !m.mmu.smc_pages.is_empty()
        || m.cpu.int_shadow != 0
        || m.cpu.halted != 0
        || m.cpu.eflags & flags::TF != 0
        || super::flat_memory(m) != ctx.flat;
    if leave {
        s.completed = k as u32 + 1;
        return 1;
    }
    0
}
