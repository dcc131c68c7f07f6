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

/// Offsets in the FNSAVE image (SDM Vol. 1 Figure 8-11).
const SW: i32 = 4;
const FIP: i32 = 12;
const FCS: i32 = 16;
const FOP: i32 = 18;
const FDP: i32 = 20;
const FDS: i32 = 24;
/// CR0.EM | CR0.TS; SW.ES.
const EM_TS: i8 = 0x0c;
const ES: i8 = -0x80;

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
    /// The slow path for CR0.EM or CR0.TS set or an exception pending,
    /// entered with the guest flags parked in r10.
    pub checks: DynamicLabel,
    /// For a memory operand: the guarded access's offset, a memory site
    /// whose fault (past RAM, a store into code, an unmapped page)
    /// resumes at this label, flags untouched.
    pub site: Option<(DynamicLabel, usize)>,
    /// Where both slow paths go on.
    pub cont: DynamicLabel,
}

/// Emits an x87 instruction (not a control instruction) inline: the
/// guest FPU state loaded into the host FPU from the guest state, the
/// instruction itself, the state saved back, and the guest's FIP, FCS and
/// FOP written over the host's (with a memory operand FDP and FDS too,
/// else they are kept):
///
/// ```text
///   park flags; r9 = guest state
///   CR0.EM|TS or SW.ES ─► checks: the callout (the interpreter raises
///                         #NM or #MF, or takes the legacy path)
///   flags back; (lea r8d, [EA])
///   frstor [r9 + fpu]
///   the instruction, its operand at [r15 + r8]   (a memory site)
///   fnsave [r9 + fpu]; FIP, FCS, FOP (FDP = r8d, FDS) stored
/// ```
///
/// A memory operand only on the guarded path (the guest or linear view,
/// where a bad access faults) with 32-bit addressing and DS, ES or SS;
/// anything else stays a callout (`None`).
pub fn emit(ops: &mut VecAssembler<X64Relocation>, env: &Env, i: &Instruction) -> Option<Inline> {
    if !is_escape(i.code())
        || is_control(i.mnemonic())
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
    let (l, fpu) = (env.layout, env.layout.fpu);
    let selector = |seg: Register| l.seg_selector + l.seg_size * (seg as i32 - Register::ES as i32);
    let fop = fop(i) as i16;
    let checks = ops.new_dynamic_label();
    let cont = ops.new_dynamic_label();
    crate::inline::park_flags(ops);
    asm!(ops
        ; mov r9, [r14 + l.state]
        ; test BYTE [r9 + l.cr0], EM_TS
        ; jnz =>checks
        ; test BYTE [r9 + fpu + SW], ES
        ; jnz =>checks
    );
    crate::inline::unpark_flags(ops);
    match &lea {
        Some(lea) => ops.extend(lea.iter().copied()),
        None => asm!(ops
            ; mov r8d, [r9 + fpu + FDP]
            ; mov r11d, [r9 + fpu + FDS]
        ),
    }
    asm!(ops ; frstor [r9 + fpu]);
    let site = ops.offset().0;
    ops.extend(insn);
    asm!(ops
        ; fnsave [r9 + fpu]
        ; mov DWORD [r9 + fpu + FIP], i.ip32() as i32
        ; mov WORD [r9 + fpu + FOP], fop
    );
    if mem {
        let data_sel = selector(i.memory_segment());
        asm!(ops
            ; mov [r9 + fpu + FDP], r8d
            ; movzx r11d, WORD [r9 + data_sel]
            ; mov [r9 + fpu + FDS], r11w
        );
    } else {
        asm!(ops
            ; mov [r9 + fpu + FDP], r8d
            ; mov [r9 + fpu + FDS], r11d
        );
    }
    let code_sel = selector(Register::CS);
    asm!(ops
        ; movzx r11d, WORD [r9 + code_sel]
        ; mov [r9 + fpu + FCS], r11w
        ; =>cont
    );
    let site = mem.then(|| (ops.new_dynamic_label(), site));
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
