//! Translating one guest block. Each guest instruction becomes one of:
//!
//! - IDENT: re-encoded for the host by iced's encoder with guest registers
//!   mapped to host registers (`regs`), flags left in host RFLAGS;
//! - an exit: a direct JMP or the last Jcc of the block stores the next EIP
//!   and jumps to the runtime's `exit` — or, once the runtime has chained
//!   it, straight to the next block (the jump's rel32 is patched);
//! - a branch inside the block: the instructions form a path, which goes
//!   on after a Jcc at its fall-through or at its target (then the Jcc's
//!   condition is inverted and the side exit leaves for the fall-through),
//!   and after a direct JMP at its target (the JMP emits nothing);
//! - a callout: the runtime's `callout` routine runs the instruction in Rust
//!   (the interpreter's handler for it, or a `system/` function).
//!
//! Every block starts by charging its length against the instruction
//! budget (r13, `Block::charge`); if the budget cannot cover it, the
//! block refunds and exits before running anything, so a
//! chain of blocks stops exactly where the interpreter would. Callouts that
//! leave early refund the instructions that did not run (see the runtime's
//! callout in `src/engine/bt/callout.rs`).

use crate::table::{self, Class};
use crate::{liveness, memop, regs, stack, x87};
use dynasmrt::{dynasm, x64::X64Relocation, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};
pub use env::{
    ChainableExit, Env, FsGs, GuestInsn, Kind, MemPath, Translated, CALLOUT_MEM_READ, CALLOUT_MEM_WRITE,
    INDIRECT_ENTRY, TLB_ENTRIES, TLB_ENTRY,
};
use iced_x86::{Code, ConditionCode, Encoder, FlowControl, Instruction, Mnemonic, OpKind, Register};
use memory::{host_rep_string, rep_string_fixup, restore_flags_from_r10, RepString};

/// The callout index word: the instruction's index in its block in bits
/// 0–7, `CALLOUT_MEM_*` flags in bits 8–9, the block's length in the high
/// half.
pub fn callout_index(index: u32, len: u32) -> u32 {
    index | (len << 16)
}

macro_rules! asm {
    ($ops:ident $($t:tt)*) => {
        dynasm!($ops ; .arch x64 $($t)*)
    };
}

/// The host encoding of an IDENT instruction at host address `ip`, or
/// `None` if it must be a callout.
pub fn ident_bytes(i: &Instruction, ip: u64) -> Option<Vec<u8>> {
    memop::with_encoder(|e, out| ident_into(e, i, ip, out).then(|| out.clone()))
}

/// `ident_bytes`, appended to `out` with `e`; false (`out` unchanged) when
/// `i` must be a callout.
fn ident_into(e: &mut Encoder, i: &Instruction, ip: u64, out: &mut Vec<u8>) -> bool {
    table::classify_instruction(i).class == Class::Ident && host_into(e, i, ip, out)
}

/// DIV or IDIV with a register operand: run on the host (`Kind::Divide`).
fn register_divide(i: &Instruction) -> bool {
    matches!(i.mnemonic(), Mnemonic::Div | Mnemonic::Idiv) && i.op0_kind() == OpKind::Register
}

/// `i` re-encoded for the host with guest registers mapped to host ones,
/// appended to `out`; false (`out` unchanged) when it has no such
/// encoding (memory operands other than LEA's, unmappable registers).
fn host_into(e: &mut Encoder, i: &Instruction, ip: u64, out: &mut Vec<u8>) -> bool {
    let mut used = [Register::None; 10];
    let mut nused = 0;
    let mut j = *i;
    j.set_code(table::host_code(i.code()));
    for n in 0..i.op_count() {
        match i.op_kind(n) {
            OpKind::Register => {
                let r = i.op_register(n);
                used[nused] = r;
                nused += 1;
                let Some(h) = regs::map(r) else { return false };
                j.set_op_register(n, h);
            }
            OpKind::Memory if i.mnemonic() == Mnemonic::Lea => {
                let (b, x) = (i.memory_base(), i.memory_index());
                // 16-bit addressing has no 64-bit encoding.
                if b.is_gpr16() || x.is_gpr16() || (b == Register::None && x == Register::None) {
                    return false;
                }
                (used[nused], used[nused + 1]) = (b, x);
                nused += 2;
                let (Some(hb), Some(hx)) = (regs::map(b), regs::map(x)) else { return false };
                j.set_memory_base(hb);
                j.set_memory_index(hx);
            }
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8_2nd => {}
            _ => return false,
        }
    }
    // Implicit operands (MUL's EDX:EAX, CWD's EDX...) are among EAX..EDX,
    // which map to themselves.
    if !regs::mappable(&used[..nused]) {
        return false;
    }
    memop::encode_into(e, &j, ip, out)
}

/// Builds what iced constructs lazily on first use — its decoder and
/// encoder tables (about a millisecond, once per process) and this
/// thread's encoder and info factory — so that the first block translated
/// does not pay for them. The runtime calls it when it starts.
pub fn warm_up() {
    // add [ebx], eax ; push eax
    let mut d = iced_x86::Decoder::new(crate::GUEST_BITNESS, &[0x01, 0x03, 0x50], iced_x86::DecoderOptions::NONE);
    let (add, push) = (d.decode(), d.decode());
    let _ = memop::plan(&add);
    let _ = ident_bytes(&add, 0);
    let _ = stack::plan(&push);
}

/// The condition nibble of a Jcc (0 = O ... 15 = G).
fn cc_nibble(i: &Instruction) -> Option<u8> {
    match i.condition_code() {
        ConditionCode::None => None,
        c => Some(c as u8 - 1),
    }
}

/// The out-of-line slow path of an inline memory access.
struct SlowPath {
    slow: DynamicLabel,
    cont: DynamicLabel,
    arg: u64,
    index: u32,
    /// For a guarded access: its offset, which becomes a memory site
    /// resuming at this slow path (whose flags were never parked).
    site: Option<usize>,
    /// What the site is, and what runs before the callout.
    kind: SlowKind,
    /// The x87 pointers of the instructions before this one
    /// (`x87::materialize`, before the callout).
    x87: x87::Pointers,
    /// When the code after `cont` counts on the host FPU holding the
    /// guest's x87 state (an inline x87 instruction ran before, or this is
    /// one): the instructions after this one and the next EIP, to load it
    /// again after the callout, or else to leave the block there.
    reload: Option<(u32, u32)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlowKind {
    /// A memory site (a host page fault), or none.
    Memory,
    /// A divide site (a host #DE).
    Divide,
    /// An x87 site (a host #MF, or a page fault for a memory operand).
    X87,
    /// No site, and the flags were never parked: just the callout.
    Plain,
    /// A host REP MOVS or STOS (`Emitter::rep_string`): `site` is its
    /// budget probe; the string operation at this offset is a memory site
    /// of its own, resuming at a fixup emitted just before the slow path,
    /// which falls into it.
    RepString(usize, RepString),
}

struct Emitter<'a> {
    ops: VecAssembler<X64Relocation>,
    base: usize,
    env: &'a Env,
    /// The guest page the block runs from, when exits to other pages are
    /// checked (`Env::cross_page`).
    page: Option<u32>,
}

/// What `translate` allocates once per thread rather than once per block:
/// the assembler (its code, label and relocation buffers) and the working
/// lists.
#[derive(Default)]
struct Scratch {
    asm: Option<VecAssembler<X64Relocation>>,
    ident: Vec<Option<(u32, u32)>>,
    ident_code: Vec<u8>,
    observer: Vec<bool>,
    restore: Vec<bool>,
    /// Host encodings of DIV and IDIV by a register (`Kind::Divide`).
    divide: Vec<Option<(u32, u32)>>,
    slow_paths: Vec<SlowPath>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Translates `insns` (one guest block, in order) into host code that
/// will live at host address `base`.
pub fn translate(base: usize, insns: &[GuestInsn], env: &Env) -> Result<Translated, String> {
    let mut s = SCRATCH.with(|c| std::mem::take(&mut *c.borrow_mut()));
    let t = translate_in(base, insns, env, &mut s);
    if t.is_err() {
        // The assembler may hold half a block.
        s.asm = None;
    }
    SCRATCH.with(|c| *c.borrow_mut() = s);
    t
}

fn translate_in(base: usize, insns: &[GuestInsn], env: &Env, s: &mut Scratch) -> Result<Translated, String> {
    // Only relative label references are assembled, so the assembler's own
    // base address does not matter (`Emitter::here` adds `base`). Room for
    // a typical block's code: growing the buffer costs more than this.
    let mut ops = s.asm.take().unwrap_or_else(|| VecAssembler::new(0));
    ops.reserve_ops(96 + 64 * insns.len());
    let first = insns.first().ok_or("empty block")?;
    let page = env.cross_page.then_some(first.insn.ip32() >> 12);
    let mut e = Emitter { ops, base, env, page };
    let n = insns.len() as u32;
    // Which instructions let the guest observe the flags: everything that
    // is not a pure IDENT instruction (callouts, memory slow paths, exits).
    // IDENT encodings have no IP-relative operands: encode each once, all
    // into one buffer (`ident[k]` is where instruction k's bytes are).
    let (ident, ident_code) = (&mut s.ident, &mut s.ident_code);
    ident_code.clear();
    ident.clear();
    let divide = &mut s.divide;
    divide.clear();
    memop::with_encoder(|enc, _| {
        for g in insns {
            let at = ident_code.len() as u32;
            if ident_into(enc, &g.insn, 0, ident_code) {
                ident.push(Some((at, ident_code.len() as u32)));
                divide.push(None);
            } else {
                ident.push(None);
                let host = register_divide(&g.insn) && host_into(enc, &g.insn, 0, ident_code);
                divide.push(host.then_some((at, ident_code.len() as u32)));
            }
        }
    });
    s.observer.clear();
    s.observer.extend(ident.iter().map(|b| b.is_none()));
    let restore = &mut s.restore;
    liveness::restore_into(insns, |g: &GuestInsn| &g.insn, &s.observer, restore, |_, _| {});
    let entry = e.indirect_entry(first.insn.ip32());
    let (refund, probe) = e.charge(n);
    let own = env.loops.then_some((first.insn.ip32(), entry));
    let mut kinds = Vec::with_capacity(insns.len());
    let mut starts = Vec::with_capacity(insns.len() + 1);
    let mut exits = Vec::new();
    // The exits of the block's Jccs (the last one's included, with nothing
    // after it to refund): the rel32 to patch, the target, the
    // instructions after the Jcc to refund.
    let mut side_exits: Vec<(usize, u32, u32, x87::Pointers)> = Vec::new();
    // Where a chunked REP string instruction leaves the block at itself
    // (`Emitter::rep_string`): its label, the instructions after it to
    // refund, its EIP and the x87 pointers there.
    let mut leaves: Vec<(DynamicLabel, u32, u32, x87::Pointers)> = Vec::new();
    let slow_paths = &mut s.slow_paths;
    slow_paths.clear();
    // The x87 state: whether the host FPU surely holds it here (an inline
    // x87 instruction ran, no callout since), and the pointers of the
    // inline ones to store where the guest can see them.
    let mut x87_loaded = false;
    let mut ptrs = x87::Pointers::NONE;
    let mut ends_with_jmp = false;
    let mut traps = Vec::new();
    for (k, g) in insns.iter().enumerate() {
        let i = &g.insn;
        starts.push(e.ops.offset().0);
        // The translation is a path: after a branch inside it, it goes on
        // at whichever successor comes next in `insns` (the runtime joins
        // along the likely one).
        let next_ip = insns.get(k + 1).map(|g| g.insn.ip32());
        let direct = matches!(i.op0_kind(), OpKind::NearBranch32 | OpKind::NearBranch16);
        if direct && i.flow_control() == FlowControl::UnconditionalBranch {
            let target = i.near_branch_target() as u32;
            let Some(next) = next_ip else {
                // The block's last instruction: its exit.
                x87::materialize(&mut e.ops, env.layout, &ptrs);
                exits.extend(e.leave(target, own));
                kinds.push(Kind::Exit);
                ends_with_jmp = true;
                break;
            };
            // Inside the path: elided.
            if next != target {
                return Err(format!("the path does not follow the JMP at {:#x}", i.ip32()));
            }
            kinds.push(Kind::Joined);
            continue;
        }
        // Only true Jcc: LOOPcc also has a condition code but counts ECX.
        if i.is_jcc_short_or_near() {
            if let Some(mut cc) = cc_nibble(i) {
                let mut target = i.near_branch_target() as u32;
                let rest = n - k as u32 - 1;
                // The path goes on at the target: the side exit is the
                // fall-through, taken on the inverse condition.
                if next_ip.is_some_and(|ip| ip != i.next_ip32()) {
                    if next_ip != Some(target) {
                        return Err(format!("the path follows neither side of the Jcc at {:#x}", i.ip32()));
                    }
                    (cc, target) = (cc ^ 1, i.next_ip32());
                } else if env.loops && target == first.insn.ip32() {
                    x87::materialize(&mut e.ops, env.layout, &ptrs);
                    e.loop_back(cc, rest, entry);
                    kinds.push(Kind::Exit);
                    continue;
                }
                // jcc rel32 to its exit, patched below.
                e.ops.push(0x0f);
                e.ops.push(0x80 + cc);
                let at = e.ops.offset().0;
                e.ops.push_i32(0);
                side_exits.push((at, target, rest, ptrs));
                kinds.push(Kind::Exit);
                continue;
            }
        }
        let index = callout_index(k as u32, n);
        // Where a slow path goes on: with the x87 state as the main path
        // has it after this instruction.
        let reload = |loaded_after: bool| loaded_after.then_some((n - k as u32 - 1, i.next_ip32()));
        // JMP r32: the target into r9d, then the indirect-branch cache.
        if let Some(mov) = (env.mem != MemPath::None).then(|| stack::register_jump(i)).flatten() {
            x87::materialize(&mut e.ops, env.layout, &ptrs);
            e.ops.extend(mov.iter().copied());
            e.indirect();
            kinds.push(Kind::Inline);
            ends_with_jmp = true;
            break;
        }
        // CALL m32: load the target, push the return address, jump.
        if let Some(mut c) = (env.mem != MemPath::None).then(|| stack::call_mem(i)).flatten() {
            if g.wraps {
                c.load.direct = memop::HostBytes::default();
                c.push.direct = memop::HostBytes::default();
            }
            let l = env.layout;
            let (x87, reload) = (ptrs, reload(x87_loaded));
            // The guarded path's push leaves r9 alone; the others' checks
            // clobber it, so the target waits in the exit EIP. (A slow path
            // runs the whole CALL and leaves: neither `cont` is reached
            // from one.)
            let park = env.mem != MemPath::Guarded;
            let (slow, cont, site) = e.mem(&c.load, true);
            let ops = &mut e.ops;
            asm!(ops ; =>cont);
            if park {
                asm!(ops ; mov [r14 + l.exit_eip], r9d);
            }
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index, site, kind: SlowKind::Memory, x87, reload });
            let (slow, cont, site) = e.mem(&c.push, true);
            e.ops.extend(c.after.iter().copied());
            let ops = &mut e.ops;
            asm!(ops ; =>cont);
            if park {
                asm!(ops ; mov r9d, [r14 + l.exit_eip]);
            }
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index, site, kind: SlowKind::Memory, x87, reload });
            x87::materialize(&mut e.ops, env.layout, &ptrs);
            exits.extend(e.guest_call(None, i.next_ip32(), own));
            kinds.push(Kind::IdentMem);
            ends_with_jmp = true;
            break;
        }
        if let Some(mut p) = (env.mem != MemPath::None).then(|| stack::push_mem(i, env.layout.exit_eip)).flatten() {
            if g.wraps {
                p.load.direct = memop::HostBytes::default();
                p.push.direct = memop::HostBytes::default();
                p.push_kept.direct = memop::HostBytes::default();
            }
            let (slow, cont, site) = e.mem(&p.load, restore[k]);
            // As for CALL m32: only the unguarded paths need r9 parked.
            let push = if env.mem == MemPath::Guarded {
                &p.push_kept
            } else {
                let l = env.layout;
                let ops = &mut e.ops;
                asm!(ops ; mov [r14 + l.exit_eip], r9d);
                &p.push
            };
            let (pslow, pcont, psite) = e.mem(push, restore[k]);
            e.ops.extend(p.after.iter().copied());
            let ops = &mut e.ops;
            asm!(ops ; =>cont ; =>pcont);
            let (x87, reload) = (ptrs, reload(x87_loaded));
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index, site, kind: SlowKind::Memory, x87, reload });
            let (slow, cont, site) = (pslow, pcont, psite);
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index, site, kind: SlowKind::Memory, x87, reload });
            kinds.push(Kind::IdentMem);
            continue;
        }
        if let Some(mut op) = (env.mem != MemPath::None).then(|| stack::plan(i)).flatten() {
            if g.wraps {
                op.access.direct = memop::HostBytes::default();
            }
            let (slow, cont, site) = e.mem(&op.access, op.restore_flags || restore[k]);
            e.ops.extend(op.after.iter().copied());
            let ops = &mut e.ops;
            asm!(ops ; =>cont);
            let (x87, reload) = (ptrs, reload(x87_loaded));
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index, site, kind: SlowKind::Memory, x87, reload });
            match op.then {
                stack::Then::Continue => {}
                stack::Then::Call { target, ret } => {
                    x87::materialize(&mut e.ops, env.layout, &ptrs);
                    exits.extend(e.guest_call(Some(target), ret, own));
                    ends_with_jmp = true;
                }
                stack::Then::IndirectCall { ret } => {
                    x87::materialize(&mut e.ops, env.layout, &ptrs);
                    exits.extend(e.guest_call(None, ret, own));
                    ends_with_jmp = true;
                }
                stack::Then::Return => {
                    x87::materialize(&mut e.ops, env.layout, &ptrs);
                    e.guest_ret();
                    ends_with_jmp = true;
                }
                stack::Then::Indirect => {
                    x87::materialize(&mut e.ops, env.layout, &ptrs);
                    e.indirect();
                    ends_with_jmp = true;
                }
            }
            kinds.push(Kind::IdentMem);
            if ends_with_jmp {
                break;
            }
            continue;
        }
        if let Some((from, to)) = ident[k] {
            e.ops.extend(ident_code[from as usize..to as usize].iter().copied());
            kinds.push(Kind::Ident);
        } else if let Some(mut m) = (env.mem != MemPath::None)
            .then(|| memop::plan_forms(i, env.forms(), env.seg_base(i.memory_segment())))
            .flatten()
        {
            if g.wraps {
                m.direct = memop::HostBytes::default();
            }
            let (slow, cont, site) = e.mem(&m, restore[k]);
            let ops = &mut e.ops;
            asm!(ops ; =>cont);
            let fill = if m.write { CALLOUT_MEM_WRITE } else { CALLOUT_MEM_READ };
            let (x87, reload) = (ptrs, reload(x87_loaded));
            let kind = SlowKind::Memory;
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index: index | fill, site, kind, x87, reload });
            kinds.push(Kind::IdentMem);
        } else if let Some((slow, cont)) =
            env.inline_sensitive.then(|| crate::inline::emit(&mut e.ops, env, i, k as u32, n)).flatten()
        {
            let (x87, reload) = (ptrs, reload(x87_loaded));
            slow_paths.push(SlowPath {
                slow,
                cont,
                arg: g.arg,
                index,
                site: None,
                kind: SlowKind::Memory,
                x87,
                reload,
            });
            kinds.push(Kind::Inline);
        } else if let Some((access, after)) = (env.inline_sensitive && env.mem != MemPath::None)
            .then(|| crate::inline::stack_plan(i, env, k as u32, n))
            .flatten()
        {
            let (slow, cont, site) = e.mem(&access, true);
            e.ops.extend(after);
            let ops = &mut e.ops;
            asm!(ops ; =>cont);
            let (x87, reload) = (ptrs, reload(x87_loaded));
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index, site, kind: SlowKind::Memory, x87, reload });
            kinds.push(Kind::Inline);
        } else if let Some(r) = (env.mem == MemPath::Guarded).then(|| host_rep_string(i)).flatten() {
            let incomplete = e.ops.new_dynamic_label();
            let (slow, cont, probe, copy) = e.rep_string(r, incomplete);
            if r.conditional() {
                leaves.push((incomplete, n - k as u32 - 1, i.ip32(), ptrs));
            }
            slow_paths.push(SlowPath {
                slow,
                cont,
                arg: g.arg,
                index,
                site: probe,
                kind: SlowKind::RepString(copy, r),
                x87: ptrs,
                reload: reload(x87_loaded),
            });
            kinds.push(Kind::Inline);
        } else if let Some(x) = x87::emit(&mut e.ops, env, i, x87_loaded) {
            let (cont, arg, x87, reload) = (x.cont, g.arg, ptrs, reload(true));
            if let Some(slow) = x.checks {
                slow_paths.push(SlowPath { slow, cont, arg, index, site: None, kind: SlowKind::Plain, x87, reload });
            }
            let (slow, site) = x.site;
            slow_paths.push(SlowPath { slow, cont, arg, index, site: Some(site), kind: SlowKind::X87, x87, reload });
            x87_loaded = true;
            ptrs.after(i);
            kinds.push(Kind::Inline);
        } else if let Some(mut d) = (env.mem != MemPath::None)
            .then(|| memop::divide_by_memory(i, env.forms(), env.seg_base(i.memory_segment())))
            .flatten()
        {
            if g.wraps {
                d.load.direct = memop::HostBytes::default();
            }
            // The load (flags kept: DIV leaves Intel's as they were), then
            // the divide; either's slow path runs the whole instruction and
            // goes on after it.
            let (slow, cont, site) = e.mem(&d.load, true);
            let (dslow, dcont, dsite) = e.divide(&d.divide);
            let ops = &mut e.ops;
            asm!(ops ; =>cont);
            let (x87, reload) = (ptrs, reload(x87_loaded));
            let index = index | CALLOUT_MEM_READ;
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index, site, kind: SlowKind::Memory, x87, reload });
            let site = Some(dsite);
            slow_paths.push(SlowPath {
                slow: dslow,
                cont: dcont,
                arg: g.arg,
                index,
                site,
                kind: SlowKind::Divide,
                x87,
                reload,
            });
            kinds.push(Kind::IdentMem);
        } else if let Some((from, to)) = divide[k] {
            let (slow, cont, site) = e.divide(&ident_code[from as usize..to as usize]);
            let (x87, reload, site) = (ptrs, reload(x87_loaded), Some(site));
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index, site, kind: SlowKind::Divide, x87, reload });
            kinds.push(Kind::Divide);
        } else {
            // The callout saves the x87 state (with these pointers) and
            // leaves it unloaded.
            x87::materialize(&mut e.ops, env.layout, &ptrs);
            (x87_loaded, ptrs) = (false, x87::Pointers::NONE);
            if let Some(site) = env.trap_sites.then(|| crate::trap::native(i)).flatten() {
                traps.push((e.ops.offset().0, site.len()));
                e.ops.extend(site);
            }
            e.callout(g.arg, index);
            kinds.push(Kind::Callout);
        }
    }
    starts.push(e.ops.offset().0);
    let last = insns.last().ok_or("empty block")?;
    if !ends_with_jmp {
        x87::materialize(&mut e.ops, env.layout, &ptrs);
        exits.extend(e.leave(last.insn.next_ip32(), own));
    }
    // Jcc exits: refund what the block did not run, then leave (chainable).
    let mut side_at = Vec::with_capacity(side_exits.len());
    for (_, target, rest, ptrs) in &side_exits {
        side_at.push(e.ops.offset().0);
        x87::materialize(&mut e.ops, env.layout, ptrs);
        if *rest > 0 {
            let ops = &mut e.ops;
            asm!(ops ; lea r13, [r13 + *rest as i32]);
        }
        exits.extend(e.leave(*target, own));
    }
    for (label, rest, eip, ptrs) in &leaves {
        let ops = &mut e.ops;
        asm!(ops ; =>*label);
        x87::materialize(&mut e.ops, env.layout, ptrs);
        if *rest > 0 {
            let ops = &mut e.ops;
            asm!(ops ; lea r13, [r13 + *rest as i32]);
        }
        exits.extend(e.leave(*eip, None));
    }
    let (mut mem_sites, mut div_sites, mut x87_sites) = (Vec::new(), Vec::new(), Vec::new());
    for p in slow_paths.drain(..) {
        let ops = &mut e.ops;
        if let SlowKind::RepString(copy, r) = p.kind {
            mem_sites.push((copy, ops.offset().0));
            rep_string_fixup(ops, r);
        }
        asm!(ops ; =>p.slow);
        match p.site {
            Some(site) if p.kind == SlowKind::Divide => div_sites.push((site, ops.offset().0)),
            Some(site) if p.kind == SlowKind::X87 => x87_sites.push((site, ops.offset().0)),
            Some(site) => mem_sites.push((site, ops.offset().0)),
            None if matches!(p.kind, SlowKind::Plain | SlowKind::RepString(..)) => {}
            None => restore_flags_from_r10(ops),
        }
        x87::materialize(ops, env.layout, &p.x87);
        e.callout(p.arg, p.index);
        match p.reload {
            None => {
                let ops = &mut e.ops;
                asm!(ops ; jmp =>p.cont);
            }
            Some((rest, next)) => {
                // The callout saved the x87 state: load it again for the
                // inline x87 code after `cont`, or leave before it.
                let back = e.ops.new_dynamic_label();
                let ops = &mut e.ops;
                asm!(ops
                    ; call QWORD [r14 + env.layout.x87_load]
                    ; mov r10, rcx
                    ; mov rcx, r11
                    ; jrcxz =>back
                    ; mov rcx, r10
                );
                if rest > 0 {
                    asm!(ops ; lea r13, [r13 + rest as i32]);
                }
                exits.extend(e.leave(next, None));
                let ops = &mut e.ops;
                asm!(ops
                    ; =>back
                    ; mov rcx, r10
                    ; jmp =>p.cont
                );
            }
        }
    }
    // Not enough budget: give it back and leave before the first instruction.
    let ops = &mut e.ops;
    mem_sites.push((probe, ops.offset().0));
    asm!(ops
        ; =>refund
        ; lea r13, [r13 + n as i32]
    );
    e.exit(first.insn.ip32());
    let mut bytes = e.ops.take().map_err(|err| format!("block: {err:?}"))?;
    s.asm = Some(e.ops);
    for (&(at, _, _, _), &stub) in side_exits.iter().zip(&side_at) {
        let rel = (stub as i64 - (at as i64 + 4)) as i32;
        bytes[at..at + 4].copy_from_slice(&rel.to_le_bytes());
    }
    Ok(Translated { bytes, kinds, exits, starts, traps, mem_sites, entry, div_sites, x87_sites })
}

mod emitter;
mod env;
mod memory;
#[cfg(test)]
mod tests;
