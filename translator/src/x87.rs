//! x87 instructions on the host's FPU.
//!
//! bt86's x87 is the host's x87 (`src/cpu/x87`): an instruction runs as
//! its own encoding, between loading the guest's FPU state into the host
//! FPU and saving it back. This module builds that sequence, a *stub*
//! called with the System V convention:
//!
//! ```text
//!   rdi = the guest FPU state, an FNSAVE image (108 bytes, 32-bit format)
//!   rsi = the memory operand's bytes (a buffer of the caller's)
//!   rdx = the guest's arithmetic flags (FCMOVcc reads them)
//!
//!   push rdx ; popfq        ; the guest's CF PF ZF (and AF SF OF); TF, DF clear
//!   frstor [rdi]
//!   <the instruction>       ; its memory operand, if any, at [rsi]
//!   pushfq ; pop rax        ; FCOMI and friends write ZF PF CF
//!   fnsave [rdi]            ; no-wait: a new unmasked exception stays pending
//!   ret                     ; rax = the host's RFLAGS
//! ```
//!
//! FNSAVE leaves the host FPU initialised (control word 0x37F, stack
//! empty), as the calling convention expects. The caller must not pass an
//! image with an unmasked exception pending (ES set) to a waiting
//! instruction: the host would raise #MF (SIGFPE) inside the stub. The
//! guest's #MF is decided before, from the guest state.

use crate::block::{Env, MemPath};
use crate::memop;
use dynasmrt::{dynasm, x64::X64Relocation, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};
use iced_x86::{Code, Encoder, Instruction, Mnemonic as M, OpCodeTableKind, OpKind, Register};

macro_rules! asm {
    ($ops:ident $($t:tt)*) => {
        dynasm!($ops ; .arch x64 $($t)*)
    };
}

/// Whether `code` is an x87 instruction: an escape opcode, D8–DF (iced
/// gives the register forms' two bytes, D9C0 for FLD ST(i)).
pub fn is_escape(code: Code) -> bool {
    let op = code.op_code();
    let oc = op.op_code();
    let first = if oc > 0xff { oc >> 8 } else { oc };
    op.table() == OpCodeTableKind::Normal && (0xd8..=0xdf).contains(&first)
}

/// The control instructions, which leave FIP, FCS, FOP, FDP and FDS
/// alone (SDM Vol. 1 §8.1.8); all but FLDCW, FLDENV and FRSTOR also do
/// not wait for a pending exception.
pub fn is_control(mn: M) -> bool {
    matches!(
        mn,
        M::Fninit
            | M::Finit
            | M::Fnclex
            | M::Fclex
            | M::Fnstcw
            | M::Fstcw
            | M::Fnstsw
            | M::Fstsw
            | M::Fnstenv
            | M::Fstenv
            | M::Fnsave
            | M::Fsave
            | M::Fldcw
            | M::Fldenv
            | M::Frstor
            | M::Fneni
            | M::Feni
            | M::Fndisi
            | M::Fdisi
            | M::Fnsetpm
            | M::Fsetpm
    )
}

/// FOP for `i`: the low three bits of the escape byte and the ModR/M byte
/// (the escape byte follows any prefixes), from `i` encoded again for the
/// code size it was decoded in; 0 if it cannot be.
pub fn fop(i: &Instruction) -> u16 {
    let bitness = if i.code_size() == iced_x86::CodeSize::Code16 { 16 } else { 32 };
    let mut e = Encoder::new(bitness);
    if e.encode(i, i.ip()).is_err() {
        return 0;
    }
    let bytes = e.take_buffer();
    match bytes.iter().position(|b| (0xd8..=0xdf).contains(b)) {
        Some(k) if k + 1 < bytes.len() => (u16::from(bytes[k] & 7) << 8) | u16::from(bytes[k + 1]),
        _ => 0,
    }
}

/// The labels of an x87 instruction emitted inline (`emit`).
pub struct Inline {
    /// The slow path for CR0.EM or CR0.TS set or an exception pending
    /// when the state is loaded: a callout, flags untouched. `None` when
    /// the state was known to be loaded (no check emitted).
    pub checks: Option<DynamicLabel>,
    /// The instruction's offset: a site whose host #MF (SIGFPE: an
    /// exception pending from an earlier instruction) or, for a memory
    /// operand, page fault (past RAM, a store into code, an unmapped page)
    /// resumes at this label, flags untouched.
    pub site: (DynamicLabel, usize),
    /// Where both slow paths go on.
    pub cont: DynamicLabel,
}

/// The guest's x87 pointers as inline instructions of a translation left
/// them, for the scratch area, which the runtime's `save_x87` copies into
/// the guest state. Inline instructions do not store their FIP and FOP
/// (nor FDS) as they run: the translation stores those of the last one
/// before each place where the guest can observe them (`materialize`):
/// every exit, every callout and every slow path. FDP alone, an address
/// known only at run time, is stored by the instruction itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pointers {
    /// FIP and FOP of the last non-control x87 instruction run inline.
    last: Option<(u32, u16)>,
    /// The segment register of the last one with a memory operand (FDS).
    data_seg: Option<Register>,
}

impl Pointers {
    /// Nothing run inline since the state was last saved.
    pub const NONE: Pointers = Pointers { last: None, data_seg: None };

    /// After `i` ran inline (`emit`): the control instructions leave the
    /// pointers alone, the others set FIP and FOP, and with a memory
    /// operand FDS and FDP (the P6 model: SDM Vol. 1 §8.1.8).
    pub fn after(&mut self, i: &Instruction) {
        if is_control(i.mnemonic()) {
            return;
        }
        self.last = Some((i.ip32(), fop(i)));
        if (0..i.op_count()).any(|n| i.op_kind(n) == OpKind::Memory) {
            self.data_seg = Some(i.memory_segment());
        }
    }
}

/// Stores the pointers `p` describes into the scratch area (nothing when
/// no inline instruction ran): FIP, FOP, the mark that FCS is the running
/// code's CS, and FDS, the selector of the last memory operand's segment
/// register (which cannot have changed since: that takes a callout, before
/// which this runs). Clobbers r11 alone; flags untouched.
pub fn materialize(ops: &mut VecAssembler<X64Relocation>, l: crate::Layout, p: &Pointers) {
    let at = l.x87_ptrs;
    let Some((fip, fop)) = p.last else { return };
    asm!(ops
        ; mov DWORD [r14 + at], fip as i32
        ; mov WORD [r14 + at + 4], fop as i16
        ; mov BYTE [r14 + at + 14], 1
    );
    if let Some(seg) = p.data_seg {
        let sel = l.seg_selector + l.seg_size * (seg as i32 - Register::ES as i32);
        asm!(ops
            ; mov r11, [r14 + l.state]
            ; movzx r11d, WORD [r11 + sel]
            ; mov [r14 + at + 6], r11w
        );
    }
}

/// Makes sure the host FPU holds the guest's x87 state, without touching
/// the flags: a byte test (`x87_unloaded`) that falls through when it
/// does, else the runtime's `x87_load`. Jumps to `blocked` when the state
/// cannot be used inline (CR0.EM or CR0.TS set, an exception pending);
/// clobbers r10 and r11.
pub fn ensure_loaded(ops: &mut VecAssembler<X64Relocation>, l: crate::Layout, blocked: DynamicLabel) {
    let ok = ops.new_dynamic_label();
    asm!(ops
        ; mov r10, rcx
        ; movzx ecx, BYTE [r14 + l.x87_ptrs + 15]
        ; jrcxz =>ok
        ; call QWORD [r14 + l.x87_load]
        ; mov rcx, r11
        ; jrcxz =>ok
        ; mov rcx, r10
        ; jmp =>blocked
        ; =>ok
        ; mov rcx, r10
    );
}

/// Emits an x87 instruction inline (not FNINIT, FNSTENV, FLDENV, FNSAVE or
/// FRSTOR, which change the pointers or the whole state), running
/// on the host FPU, which holds the guest's x87 state from the first x87
/// instruction of a run of translated code to its next exit or callout
/// (`runtime`: `x87_load`, `save_x87`):
///
/// ```text
///   (ensure_loaded)            ; unless `loaded`: the translation knows
///                              ; the state is loaded (an x87 instruction
///                              ; before it, no callout between)
///   (lea r8d, [EA])            ; memory forms
///   the instruction            ; operand at [r15 + r8]; a site: its host #MF
///                              ; (pending from an earlier one) or page fault
///                              ; resumes at a callout, the state saved first
///   (mov [FDP], r8d)           ; memory forms but FLDCW/FNSTCW/FNSTSW
/// ```
///
/// FIP, FOP and FDS are stored later (`Pointers`, `materialize`). A memory
/// operand only on the guarded path (the guest or linear view, where a
/// bad access faults) with 32-bit addressing and DS, ES or SS; anything
/// else stays a callout (`None`).
pub fn emit(ops: &mut VecAssembler<X64Relocation>, env: &Env, i: &Instruction, loaded: bool) -> Option<Inline> {
    // The control instructions that only move a word between the FPU and
    // a register or memory run as they are too (without pointer updates);
    // the others change the pointers or the whole state (callouts).
    let control = is_control(i.mnemonic());
    if !is_escape(i.code())
        || (control && !matches!(i.mnemonic(), M::Fldcw | M::Fnstcw | M::Fnstsw | M::Fnclex))
        || matches!(i.mnemonic(), M::Fisttp | M::Frstpm | M::Fnstdw | M::Fstdw | M::Fnstsg | M::Fstsg)
    {
        return None;
    }
    let mem = (0..i.op_count()).any(|n| i.op_kind(n) == OpKind::Memory);
    let (lea, insn) = if mem {
        let seg_ok = matches!(i.memory_segment(), Register::DS | Register::ES | Register::SS);
        if env.mem != MemPath::Guarded || !seg_ok {
            return None;
        }
        (Some(memop::lea_r8(i)?), memop::at_r15_r8(i)?.to_vec())
    } else {
        let mut e = Encoder::new(64);
        e.encode(i, 0).ok()?;
        (None, e.take_buffer())
    };
    let checks = (!loaded).then(|| {
        let blocked = ops.new_dynamic_label();
        ensure_loaded(ops, env.layout, blocked);
        blocked
    });
    let cont = ops.new_dynamic_label();
    if let Some(lea) = &lea {
        ops.extend(lea.iter().copied());
    }
    let site = ops.offset().0;
    ops.extend(insn);
    if mem && !control {
        let fdp = env.layout.x87_ptrs + 8;
        asm!(ops ; mov [r14 + fdp], r8d);
    }
    asm!(ops ; =>cont);
    let site = (ops.new_dynamic_label(), site);
    Some(Inline { checks, site, cont })
}

/// The stub for `i` (an x87 instruction), or `None` when iced cannot
/// encode it for the host.
pub fn host_stub(i: &Instruction) -> Option<Vec<u8>> {
    let mut h = *i;
    if (0..i.op_count()).any(|n| i.op_kind(n) == OpKind::Memory) {
        h.set_memory_base(Register::RSI);
        h.set_memory_index(Register::None);
        h.set_memory_index_scale(1);
        h.set_memory_displacement64(0);
        h.set_memory_displ_size(0);
        h.set_segment_prefix(Register::None);
    }
    let mut e = Encoder::new(64);
    e.encode(&h, 0).ok()?;
    let insn = e.take_buffer();
    let mut stub = Vec::with_capacity(insn.len() + 12);
    stub.extend_from_slice(&[0x52, 0x9d, 0xdd, 0x27]);
    stub.extend_from_slice(&insn);
    stub.extend_from_slice(&[0x9c, 0x58, 0xdd, 0x37, 0xc3]);
    Some(stub)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::show;
    use iced_x86::{Decoder, DecoderOptions};

    fn stub_of(bytes: &[u8], bitness: u32) -> String {
        let i = Decoder::with_ip(bitness, bytes, 0, DecoderOptions::NONE).decode();
        show(&host_stub(&i).unwrap())
    }

    #[test]
    fn register_forms_keep_their_encoding() {
        // fadd st, st(3)
        assert_eq!(
            stub_of(&[0xd8, 0xc3], 32),
            "push rdx; popfq; frstor [rdi]; fadd st,st(3); pushfq; pop rax; fnsave [rdi]; ret"
        );
    }

    #[test]
    fn memory_operands_move_to_rsi() {
        // fld qword ptr fs:[ebx+esi*8+0x10]; fild word ptr [bx+si+2] (16-bit)
        // (iced's formatter shows the implicit ST of a load)
        let s = stub_of(&[0x64, 0xdd, 0x44, 0xf3, 0x10], 32);
        assert!(s.contains("; fld st,qword ptr [rsi]; pushfq"), "{s}");
        let s = stub_of(&[0xdf, 0x40, 0x02], 16);
        assert!(s.contains("; fild st,word ptr [rsi]; pushfq"), "{s}");
    }
}
