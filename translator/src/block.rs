//! Translating one guest block. Each guest instruction becomes one of:
//!
//! - IDENT: re-encoded for the host by iced's encoder with guest registers
//!   mapped to host registers (`regs`), flags left in host RFLAGS;
//! - an exit: a direct JMP or the last Jcc of the block stores the next EIP
//!   and jumps to the runtime's `exit` — or, once the runtime has chained
//!   it, straight to the next block (the jump's rel32 is patched);
//! - a callout: the runtime's `callout` routine runs the instruction in Rust
//!   (the interpreter's handler for it, or a `system/` function).
//!
//! Every block starts by charging its length against the instruction
//! budget in the scratch area (`Layout::budget`); if the budget cannot
//! cover it, the block refunds and exits before running anything, so a
//! chain of blocks stops exactly where the interpreter would. Callouts that
//! leave early refund the instructions that did not run (see the runtime's
//! callout in `src/engine/bt/callout.rs`).

use crate::table::{self, Class};
use crate::{liveness, memop, regs, stack, Layout};
use dynasmrt::{dynasm, x64::X64Relocation, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};
use iced_x86::{ConditionCode, Encoder, FlowControl, Instruction, Mnemonic, OpKind, Register};

/// One guest instruction to translate, with the argument its callout gets
/// (the runtime's handle for the decoded instruction).
#[derive(Clone, Copy, Debug)]
pub struct GuestInsn {
    pub insn: Instruction,
    pub arg: u64,
}

/// The runtime's routines, as host addresses, and what the block may
/// assume about the machine.
#[derive(Clone, Copy, Debug)]
pub struct Env {
    pub layout: Layout,
    pub exit: usize,
    pub callout: usize,
    /// How memory operands may be reached inline.
    pub mem: MemPath,
    /// `--engine trap` with real traps: each privileged instruction's
    /// callout is preceded by a trap site (`crate::trap`).
    pub trap_sites: bool,
    /// CLI and STI inline on the virtual EFLAGS (`crate::inline`); off
    /// when they must reach a monitor's deprivileged CPU (`--engine trap`).
    pub inline_sensitive: bool,
}

/// How translated code reaches guest memory without a callout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemPath {
    /// Only through callouts (segments with bases or limits).
    None,
    /// Paging off, flat segments: the linear address is the physical
    /// address, RAM is `ram_size` bytes at r15.
    Physical { ram_size: u32 },
    /// Paging on, flat segments: a direct-mapped TLB of 256 entries at
    /// `[r14 + table]`, each `{ read_tag: u32, write_tag: u32, addend: u64 }`
    /// indexed by bits 12–19 of the linear address; a tag is the linear page
    /// base it maps (1 when empty), `addend` turns a linear address into a
    /// host address.
    Tlb { table: i32 },
}

/// Bytes per inline-TLB entry, and entries per table.
pub const TLB_ENTRY: usize = 16;
pub const TLB_ENTRIES: usize = 256;

/// Callout index flags: the slow path of an inline memory access, which
/// the runtime may use to fill its inline TLB after the access.
pub const CALLOUT_MEM_READ: u32 = 1 << 8;
pub const CALLOUT_MEM_WRITE: u32 = 1 << 9;

/// How each guest instruction was translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ident,
    /// IDENT with an inline memory fast path (and a callout slow path).
    IdentMem,
    Exit,
    Callout,
    /// A sensitive instruction inline (`crate::inline`; a callout slow path).
    Inline,
}

/// An exit that may be chained: the offset of its jump's rel32 in the
/// block's bytes, and the guest EIP it goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainableExit {
    pub rel32_at: usize,
    pub target: u32,
}

/// A translated block.
#[derive(Clone, Debug)]
pub struct Translated {
    pub bytes: Vec<u8>,
    /// Per guest instruction, how it was translated.
    pub kinds: Vec<Kind>,
    /// Exits to a known guest EIP, which the runtime may chain.
    pub exits: Vec<ChainableExit>,
    /// Where each translated guest instruction's main-line host code starts
    /// in `bytes`, then one more entry: where the block's tail (exits,
    /// out-of-line slow paths, the budget refund) starts. For `bt86 explain`.
    pub starts: Vec<usize>,
    /// Trap sites (`Env::trap_sites`): offset in `bytes` and length of each
    /// host instruction that faults; execution resumes right after it.
    pub traps: Vec<(usize, usize)>,
}

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
    if table::classify_instruction(i).class != Class::Ident {
        return None;
    }
    let mut used = Vec::with_capacity(4);
    let mut j = *i;
    j.set_code(table::host_code(i.code()));
    for n in 0..i.op_count() {
        match i.op_kind(n) {
            OpKind::Register => {
                let r = i.op_register(n);
                used.push(r);
                j.set_op_register(n, regs::map(r)?);
            }
            OpKind::Memory if i.mnemonic() == Mnemonic::Lea => {
                let (b, x) = (i.memory_base(), i.memory_index());
                // 16-bit addressing has no 64-bit encoding.
                if b.is_gpr16() || x.is_gpr16() || (b == Register::None && x == Register::None) {
                    return None;
                }
                used.extend([b, x]);
                j.set_memory_base(regs::map(b)?);
                j.set_memory_index(regs::map(x)?);
            }
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8_2nd => {}
            _ => return None,
        }
    }
    // Implicit operands (MUL's EDX:EAX, CWD's EDX...) are among EAX..EDX,
    // which map to themselves.
    if !regs::mappable(&used) {
        return None;
    }
    let mut enc = Encoder::new(64);
    enc.encode(&j, ip).ok()?;
    Some(enc.take_buffer())
}

/// The condition nibble of a Jcc (0 = O ... 15 = G).
fn cc_nibble(i: &Instruction) -> Option<u8> {
    match i.condition_code() {
        ConditionCode::None => None,
        c => Some(c as u8 - 1),
    }
}

/// Parks the guest's arithmetic flags in r10 without touching the stack:
/// LAHF takes SF ZF AF PF CF into AH, SETO takes OF into AL, and guest EAX
/// is swapped back (it lives in rax). Much cheaper than PUSHF/POPF.
fn save_flags(ops: &mut VecAssembler<X64Relocation>) {
    asm!(ops
        ; mov r10, rax
        ; lahf
        ; seto al
        ; xchg r10, rax
    );
}

/// Puts back the flags `save_flags` parked in r10: ADD AL,7Fh sets OF
/// exactly when AL was 1, then SAHF restores the rest. DF is untouched by
/// everything in between. Guest EAX comes back from r10.
fn restore_flags_from_r10(ops: &mut VecAssembler<X64Relocation>) {
    asm!(ops
        ; xchg r10, rax
        ; add al, 0x7f
        ; sahf
        ; mov rax, r10
    );
}

/// The out-of-line slow path of an inline memory access.
struct SlowPath {
    slow: DynamicLabel,
    cont: DynamicLabel,
    arg: u64,
    index: u32,
}

struct Emitter<'a> {
    ops: VecAssembler<X64Relocation>,
    base: usize,
    env: &'a Env,
}

impl Emitter<'_> {
    fn here(&self) -> usize {
        self.base + self.ops.offset().0
    }

    /// Stores EIP, then jumps to `exit` (a jump the runtime may re-point
    /// at the block for `eip`). Returns the offset of the jump's rel32.
    fn exit(&mut self, eip: u32) -> usize {
        let l = self.env.layout;
        let ops = &mut self.ops;
        asm!(ops
            ; mov DWORD [r13 + l.eip], eip as i32
        );
        let rel = self.env.exit as i64 - (self.here() as i64 + 5);
        self.ops.push(0xe9);
        let at = self.ops.offset().0;
        self.ops.push_i32(rel as i32);
        at
    }

    /// Charges the block's `len` instructions against the budget; the
    /// returned label is where the block refunds and leaves when the budget
    /// cannot cover them. Flag-free, so guest flags live into the block need
    /// no saving: the sign of the new budget is read back as its top byte
    /// and tested with JRCXZ (guest ECX parked in r9 meanwhile).
    fn charge(&mut self, len: u32) -> DynamicLabel {
        let l = self.env.layout;
        let refund = self.ops.new_dynamic_label();
        let ok = self.ops.new_dynamic_label();
        let ops = &mut self.ops;
        asm!(ops
            ; mov r9, rcx
            ; mov rcx, [r14 + l.budget]
            ; lea rcx, [rcx - len as i32]
            ; mov [r14 + l.budget], rcx
            ; movzx ecx, BYTE [r14 + l.budget + 7]
            ; jrcxz =>ok
            ; mov rcx, r9
            ; jmp =>refund
            ; =>ok
            ; mov rcx, r9
        );
        refund
    }

    /// The inline fast path of a memory instruction; returns the labels of
    /// its out-of-line slow path (emitted at the end of the block) and of
    /// the point after it, which the caller places (after any code that
    /// only the fast path runs). The checks clobber RFLAGS, so the guest flags are
    /// parked in r10 first (`save_flags`): restored on the fast path only
    /// where the block still needs them (`restore_flags`), always on the
    /// slow path, whose callout may let the guest observe them.
    fn mem_fast(&mut self, m: &memop::MemOp, restore_flags: bool) -> (DynamicLabel, DynamicLabel) {
        let slow = self.ops.new_dynamic_label();
        let cont = self.ops.new_dynamic_label();
        let ram_size = match self.env.mem {
            MemPath::Physical { ram_size } => ram_size,
            _ => 0,
        };
        let limit = ram_size.saturating_sub(m.len) as i32;
        let l = self.env.layout;
        let ops = &mut self.ops;
        save_flags(ops);
        ops.extend(m.lea.iter().copied());
        asm!(ops
            ; cmp r8d, limit
            ; ja =>slow
        );
        if m.write {
            asm!(ops
                ; mov r9d, r8d
                ; shr r9d, 12
                ; mov r11, [r14 + l.code_pages]
                ; cmp BYTE [r11 + r9], 0
                ; jne =>slow
                ; lea r9d, [r8 + m.len as i32 - 1]
                ; xor r9d, r8d
                ; cmp r9d, 0xfff
                ; ja =>slow
            );
        }
        if restore_flags {
            restore_flags_from_r10(ops);
        }
        ops.extend(m.op.iter().copied());
        (slow, cont)
    }

    /// The inline-TLB fast path of a memory instruction (paging on); same
    /// contract as `mem_fast`.
    fn mem_tlb(&mut self, m: &memop::MemOp, table: i32, restore_flags: bool) -> (DynamicLabel, DynamicLabel) {
        let slow = self.ops.new_dynamic_label();
        let cont = self.ops.new_dynamic_label();
        let tag = table + if m.write { 4 } else { 0 };
        let ops = &mut self.ops;
        save_flags(ops);
        ops.extend(m.lea.iter().copied());
        asm!(ops
            ; mov r9d, r8d
            ; and r9d, 0xffff_f000u32 as i32
            ; mov r11d, r8d
            ; shr r11d, 8
            ; and r11d, ((TLB_ENTRIES - 1) * TLB_ENTRY) as i32
            ; cmp r9d, [r14 + r11 + tag]
            ; jne =>slow
            ; lea r9d, [r8 + m.len as i32 - 1]
            ; xor r9d, r8d
            ; cmp r9d, 0xfff
            ; ja =>slow
            ; add r8, [r14 + r11 + table + 8]
        );
        if restore_flags {
            restore_flags_from_r10(ops);
        }
        ops.extend(m.op_host.iter().copied());
        (slow, cont)
    }

    /// The fast path for the block's memory path (see `mem_fast`).
    fn mem(&mut self, m: &memop::MemOp, restore_flags: bool) -> (DynamicLabel, DynamicLabel) {
        match self.env.mem {
            MemPath::Tlb { table } => self.mem_tlb(m, table, restore_flags),
            _ => self.mem_fast(m, restore_flags),
        }
    }

    /// Jumps to the translation for the guest EIP in r9d through the
    /// indirect-branch cache, or leaves through `exit` (EIP stored first).
    /// Flags are kept exact on both paths.
    fn indirect(&mut self) {
        let l = self.env.layout;
        let miss = self.ops.new_dynamic_label();
        let ops = &mut self.ops;
        asm!(ops ; mov [r13 + l.eip], r9d);
        save_flags(ops);
        asm!(ops
            ; mov r11d, r9d
            ; and r11d, (crate::runtime::IBTC_ENTRIES - 1) as i32
            ; shl r11d, 4
            ; cmp r9d, [r14 + r11 + l.ibtc]
            ; jne =>miss
            ; mov r11, [r14 + r11 + l.ibtc + 8]
        );
        restore_flags_from_r10(ops);
        asm!(ops
            ; jmp r11
            ; =>miss
        );
        restore_flags_from_r10(ops);
        let rel = self.env.exit as i64 - (self.here() as i64 + 5);
        self.ops.push(0xe9);
        self.ops.push_i32(rel as i32);
    }

    /// Calls the runtime's callout routine for instruction `index`.
    fn callout(&mut self, arg: u64, index: u32) {
        let l = self.env.layout;
        let callout = self.env.callout as i64;
        let ops = &mut self.ops;
        asm!(ops
            ; mov r11, QWORD arg as i64
            ; mov [r14 + l.callout_arg], r11
            ; mov DWORD [r14 + l.callout_index], index as i32
            ; mov r11, QWORD callout
            ; call r11
        );
    }
}

/// Translates `insns` (one guest block, in order) into host code that
/// will live at host address `base`.
pub fn translate(base: usize, insns: &[GuestInsn], env: &Env) -> Result<Translated, String> {
    let mut e = Emitter { ops: VecAssembler::new(base), base, env };
    let first = insns.first().ok_or("empty block")?;
    let n = insns.len() as u32;
    let plain: Vec<Instruction> = insns.iter().map(|g| g.insn).collect();
    // Which instructions let the guest observe the flags: everything that
    // is not a pure IDENT instruction (callouts, memory slow paths, exits).
    // IDENT encodings have no IP-relative operands: encode each once.
    let ident: Vec<Option<Vec<u8>>> = plain.iter().map(|i| ident_bytes(i, 0)).collect();
    let observer: Vec<bool> = ident.iter().map(|b| b.is_none()).collect();
    let (_, restore) = liveness::flags_needed(&plain, &observer);
    let refund = e.charge(n);
    let mut kinds = Vec::with_capacity(insns.len());
    let mut starts = Vec::with_capacity(insns.len() + 1);
    let mut exits = Vec::new();
    let mut taken: Option<(usize, u32)> = None;
    let mut slow_paths: Vec<SlowPath> = Vec::new();
    let mut ends_with_jmp = false;
    let mut traps = Vec::new();
    for (k, g) in insns.iter().enumerate() {
        let i = &g.insn;
        starts.push(e.ops.offset().0);
        let last = k + 1 == insns.len();
        let direct = matches!(i.op0_kind(), OpKind::NearBranch32 | OpKind::NearBranch16);
        if last && direct && i.flow_control() == FlowControl::UnconditionalBranch {
            let target = i.near_branch_target() as u32;
            exits.push(ChainableExit { rel32_at: e.exit(target), target });
            kinds.push(Kind::Exit);
            ends_with_jmp = true;
            break;
        }
        // Only true Jcc: LOOPcc also has a condition code but counts ECX.
        if last && i.is_jcc_short_or_near() {
            if let Some(cc) = cc_nibble(i) {
                // jcc rel32 to the taken exit, patched below.
                e.ops.push(0x0f);
                e.ops.push(0x80 + cc);
                let at = e.ops.offset().0;
                e.ops.push_i32(0);
                taken = Some((at, i.near_branch_target() as u32));
                kinds.push(Kind::Exit);
                continue;
            }
        }
        let index = callout_index(k as u32, n);
        if let Some(op) = (env.mem != MemPath::None).then(|| stack::plan(i)).flatten() {
            let (slow, cont) = e.mem(&op.access, op.restore_flags || restore[k]);
            e.ops.extend(op.after.iter().copied());
            let ops = &mut e.ops;
            asm!(ops ; =>cont);
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index });
            match op.then {
                stack::Then::Continue => {}
                stack::Then::Exit(target) => {
                    exits.push(ChainableExit { rel32_at: e.exit(target), target });
                    ends_with_jmp = true;
                }
                stack::Then::Indirect => {
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
        if let Some(bytes) = ident[k].clone() {
            e.ops.extend(bytes);
            kinds.push(Kind::Ident);
        } else if let Some(m) = (env.mem != MemPath::None).then(|| memop::plan(i)).flatten() {
            let (slow, cont) = e.mem(&m, restore[k]);
            let ops = &mut e.ops;
            asm!(ops ; =>cont);
            let fill = if m.write { CALLOUT_MEM_WRITE } else { CALLOUT_MEM_READ };
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index: index | fill });
            kinds.push(Kind::IdentMem);
        } else if let Some((slow, cont)) =
            env.inline_sensitive.then(|| crate::inline::emit(&mut e.ops, env, i, k as u32, n)).flatten()
        {
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index });
            kinds.push(Kind::Inline);
        } else if let Some((access, after)) = (env.inline_sensitive && env.mem != MemPath::None)
            .then(|| crate::inline::stack_plan(i, env, k as u32, n))
            .flatten()
        {
            let (slow, cont) = e.mem(&access, true);
            e.ops.extend(after);
            let ops = &mut e.ops;
            asm!(ops ; =>cont);
            slow_paths.push(SlowPath { slow, cont, arg: g.arg, index });
            kinds.push(Kind::Inline);
        } else {
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
        let target = last.insn.next_ip32();
        exits.push(ChainableExit { rel32_at: e.exit(target), target });
    }
    let taken_at = e.ops.offset().0;
    if let Some((_, target)) = taken {
        exits.push(ChainableExit { rel32_at: e.exit(target), target });
    }
    for p in slow_paths {
        let ops = &mut e.ops;
        asm!(ops ; =>p.slow);
        restore_flags_from_r10(ops);
        e.callout(p.arg, p.index);
        let ops = &mut e.ops;
        asm!(ops ; jmp =>p.cont);
    }
    // Not enough budget: give it back and leave before the first instruction.
    let l = env.layout;
    let ops = &mut e.ops;
    asm!(ops
        ; =>refund
        ; mov r9, [r14 + l.budget]
        ; lea r9, [r9 + n as i32]
        ; mov [r14 + l.budget], r9
    );
    e.exit(first.insn.ip32());
    let mut bytes = e.ops.finalize().map_err(|err| format!("block: {err:?}"))?;
    if let Some((at, _)) = taken {
        let rel = (taken_at as i64 - (at as i64 + 4)) as i32;
        bytes[at..at + 4].copy_from_slice(&rel.to_le_bytes());
    }
    Ok(Translated { bytes, kinds, exits, starts, traps })
}
