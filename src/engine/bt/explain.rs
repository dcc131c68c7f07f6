//! `bt86 explain`: one guest block translated into a fresh code buffer,
//! with everything the translator returned about it.

use super::mode::mem_path;
use super::path::path;
use super::{inline_sensitive, memory_mode, Bt, Mode};
use crate::cpu::state::Seg;
use crate::engine::interp::cache::BlockKey;
use crate::engine::interp::Interp;
use crate::machine::Machine;
use crate::memory::{Access, LinAddr};
use translator::block;

/// One guest block as the translator would translate it now, for `bt86
/// explain`.
pub struct BlockExplanation {
    /// The block's physical address and memory mode (the translation key).
    pub phys: u32,
    pub mode: Mode,
    /// The guest instructions: the path the runtime translates from this
    /// EIP (decoded blocks as the interpreter's decode cache cut them,
    /// joined along the likely side of each branch).
    pub insns: Vec<iced_x86::Instruction>,
    /// Where the block's host code was placed in a fresh code buffer, and
    /// the runtime's exit and callout routines in that buffer.
    pub entry: usize,
    pub exit: usize,
    pub callout: usize,
    pub translated: block::Translated,
}

/// Translates the block at `eip` (in the machine's current CS, memory mode
/// and privilege) into a fresh code buffer and returns everything about
/// it; the machine only gains a code-page mark.
pub fn explain_block(m: &mut Machine, eip: u32) -> Result<BlockExplanation, String> {
    let cs = *m.cpu.seg(Seg::Cs);
    if eip > cs.limit {
        return Err(format!("EIP {eip:#010x} is beyond the CS limit {:#x}", cs.limit));
    }
    let who = m.privilege();
    let lin = LinAddr(cs.base.wrapping_add(eip));
    let phys = m
        .mmu
        .translate(&m.cpu, &mut m.ram, lin, Access::Fetch, who)
        .map_err(|_| format!("linear address {:#010x} cannot be fetched from", lin.0))?;
    if phys.0 >= m.ram.size() {
        return Err(format!("physical address {:#010x} is not in guest RAM ({:#x} bytes)", phys.0, m.ram.size()));
    }
    let key = BlockKey { phys: phys.0, eip, code32: cs.big() };
    let mode = memory_mode(m);
    let mut interp = Interp::new(false);
    let (insns, _blocks) = path(&mut interp, m, key, mode)
        .ok_or_else(|| format!("the instruction at {eip:#010x} straddles the end of its page"))?;
    if insns[0].insn.is_invalid() {
        return Err(format!("no valid instruction at {eip:#010x}"));
    }
    let mut bt = Bt::new()?;
    let mut env = bt.env;
    env.mem = mem_path(m, mode, true, true);
    env.fs_gs = mode.fs_gs();
    // As `Bt::translate` sets them for a run.
    env.cross_page = bt.chaining && mode.paged();
    env.host_calls = bt.chaining;
    env.inline_sensitive = inline_sensitive(m, false);
    env.inline_rdtsc = env.inline_sensitive && m.clock.is_deterministic();
    let translated = block::translate(bt.buf.next_addr(), &insns, &env)?;
    let entry = bt.buf.push(&translated.bytes).ok_or("translation cache too small")?;
    Ok(BlockExplanation {
        phys: phys.0,
        mode,
        insns: insns.iter().map(|g| g.insn).collect(),
        entry,
        exit: env.exit,
        callout: env.callout,
        translated,
    })
}
