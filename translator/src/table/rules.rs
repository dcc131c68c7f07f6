//! The rules the decision table is generated from (`examples/gen_table.rs`
//! writes `generated.rs` from [`decide`]; a test checks it is not stale).
//!
//! First iced's metadata sorts out what is not i686 (encoding, modes, CPUID
//! features, pseudo-codes); then `by_mnemonic` decides each mnemonic of the
//! i686 integer ISA explicitly, with no fallback arm: a mnemonic it has not
//! named panics the generator. The mnemonics are exactly those the
//! interpreter (`src/engine/interp/exec/mod.rs`) implements, plus WAIT
//! (unsupported there too).
//!
//! Judgement calls worth knowing:
//! - INC/DEC 40–4F and MOV moffs are `Ident`, encoded in their ModRM forms
//!   ([`super::host_code`]): identical semantics, and too common to call out.
//! - PUSH/POP of GPRs, immediates and memory are `Callout(Stack)`: guest ESP
//!   is r12d, so no host PUSH/POP can do them.
//! - BSWAP r16 is `Interp`: its result is undefined (hosts differ).
//! - CMPXCHG8B, LAHF/SAHF, CLD/STD, CWD/CDQ, XCHG, BT* are `Ident`: they
//!   re-encode unchanged (LAHF/SAHF need the host's LAHF-SAHF bit, which
//!   every x86-64 bt86 targets has; DF is saved and cleared around callouts).
//! - DIV/IDIV are `Callout(Div)`; the translator runs the host DIV for a
//!   register divisor (`block::Kind::Divide`): the host raises #DE exactly
//!   when the guest would, and its SIGFPE resumes at the callout, which
//!   raises the guest's #DE. A memory divisor is a callout.
//! - 16-bit SHLD/SHRD are `Callout(Interp)`: with a count above 16 their
//!   result is undefined and hosts differ.
//! - Every segment-register load ends its block (the interpreter only ends
//!   on SS): a translation is specialised on the segment state (flat or not),
//!   so a block must not run on after DS/ES/FS/GS change. Likewise HLT.
//! - LDS/LES/LFS/LGS/LSS are `Sensitive` like MOV Sreg, not `Interp`: they
//!   load segment registers with the same CPL-dependent checks.
//! - CPUID, RDTSC, SYSENTER are `System`, neither privileged nor sensitive.
//! - PAUSE, ENDBR32/64 and the reserved NOPs are `Ident` NOPs (hint NOPs on
//!   a CPU without SSE2/CET), as in the interpreter.

use super::{BranchKind as B, CalloutKind as K, Class, Decision};
use iced_x86::{Code, CpuidFeature as F, EncodingKind, FlowControl, Mnemonic as M, OpCodeOperandKind as O};

const fn d(class: Class, ends_block: bool, privileged: bool, sensitive: bool) -> Decision {
    Decision { class, ends_block, privileged, sensitive }
}

const IDENT: Decision = d(Class::Ident, false, false, false);
const UNSUPPORTED: Decision = d(Class::Unsupported, true, false, false);
const INVALID: Decision = d(Class::Invalid, true, false, false);

const fn branch(kind: B) -> Decision {
    d(Class::Branch(kind), true, false, false)
}
const fn privileged(ends_block: bool) -> Decision {
    d(Class::Callout(K::Privileged), ends_block, true, false)
}
const fn sensitive(ends_block: bool) -> Decision {
    d(Class::Callout(K::Sensitive), ends_block, false, true)
}
const fn callout(kind: K) -> Decision {
    d(Class::Callout(kind), false, false, false)
}

/// CPUID features of the i686 bt86 models (`CPUID_1_EDX`: TSC, MSR, CX8,
/// SEP, CMOV; and the hint NOPs every CPU runs as NOPs).
const I686: &[F] = &[
    F::INTEL8086,
    F::INTEL186,
    F::INTEL286,
    F::INTEL386,
    F::INTEL486,
    F::CPUID,
    F::TSC,
    F::MSR,
    F::CX8,
    F::SEP,
    F::CMOV,
    F::MULTIBYTENOP,
    F::PAUSE,
    F::CET_IBT,
    F::FPU,
    F::FPU287,
    F::FPU387,
];

/// Forms only older CPUs decoded: #UD on an i686.
const OBSOLETE: &[F] = &[
    F::INTEL8086_ONLY,
    F::INTEL286_ONLY,
    F::INTEL386_ONLY,
    F::INTEL386_A0_ONLY,
    F::INTEL486_A_ONLY,
    F::MOV_TR,
    F::UMOV,
    F::FPU287XL_ONLY,
    F::FPU387SL_ONLY,
];

/// The decision for `code`, from iced's metadata and the rules above.
pub fn decide(code: Code) -> Decision {
    let op = code.op_code();
    let features = code.cpuid_features();
    if !op.is_instruction() || code == Code::INVALID {
        return INVALID;
    }
    if code.encoding() != EncodingKind::Legacy || !(op.mode16() || op.mode32()) {
        return UNSUPPORTED;
    }
    if features.iter().any(|f| OBSOLETE.contains(f)) {
        return INVALID;
    }
    if !features.iter().all(|f| I686.contains(f)) {
        return UNSUPPORTED;
    }
    by_mnemonic(code)
}

/// Whether operand `n` of `code` is one of `kinds`.
fn operand_is(code: Code, n: usize, kinds: &[O]) -> bool {
    code.op_code().op_kinds().get(n).is_some_and(|k| kinds.contains(k))
}

const SEGS: &[O] = &[O::es, O::cs, O::ss, O::ds, O::fs, O::gs, O::seg_reg];

/// The i686 integer ISA, one decision per mnemonic (or per form).
fn by_mnemonic(code: Code) -> Decision {
    match code.mnemonic() {
        M::Add | M::Adc | M::Sub | M::Sbb | M::And | M::Or | M::Xor | M::Cmp | M::Test => IDENT,
        M::Inc | M::Dec | M::Neg | M::Not => IDENT,
        // 16-bit SHLD/SHRD with a count above 16: the result is undefined
        // and hosts differ (the interpreter shifts dest:src:dest as Intel
        // does; AMD does otherwise), so the interpreter's handler runs.
        M::Shld | M::Shrd
            if matches!(
                code,
                Code::Shld_rm16_r16_imm8 | Code::Shld_rm16_r16_CL | Code::Shrd_rm16_r16_imm8 | Code::Shrd_rm16_r16_CL
            ) =>
        {
            callout(K::Interp)
        }
        M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror | M::Rcl | M::Rcr | M::Shld | M::Shrd => IDENT,
        M::Mul | M::Imul => IDENT,
        M::Bt | M::Bts | M::Btr | M::Btc | M::Bsf | M::Bsr => IDENT,
        M::Movzx | M::Movsx | M::Xchg | M::Lea | M::Xadd | M::Cmpxchg | M::Cmpxchg8b => IDENT,
        M::Cbw | M::Cwde | M::Cwd | M::Cdq | M::Lahf | M::Sahf => IDENT,
        M::Clc | M::Stc | M::Cmc | M::Cld | M::Std => IDENT,
        M::Nop | M::Pause | M::Endbr32 | M::Endbr64 | M::Reservednop => IDENT,
        M::Bswap if code == Code::Bswap_r16 => callout(K::Interp),
        M::Bswap => IDENT,
        M::Cmova | M::Cmovae | M::Cmovb | M::Cmovbe | M::Cmove | M::Cmovg | M::Cmovge | M::Cmovl => IDENT,
        M::Cmovle | M::Cmovne | M::Cmovno | M::Cmovnp | M::Cmovns | M::Cmovo | M::Cmovp | M::Cmovs => IDENT,
        M::Seta | M::Setae | M::Setb | M::Setbe | M::Sete | M::Setg | M::Setge | M::Setl => IDENT,
        M::Setle | M::Setne | M::Setno | M::Setnp | M::Setns | M::Seto | M::Setp | M::Sets => IDENT,
        M::Mov => mov(code),
        M::Div | M::Idiv => callout(K::Div),
        M::Push | M::Pop => push_pop(code),
        M::Pusha | M::Pushad | M::Popa | M::Popad | M::Enter | M::Leave => callout(K::Stack),
        M::Daa | M::Das | M::Aaa | M::Aas | M::Aam | M::Aad | M::Salc => callout(K::Interp),
        M::Bound | M::Xlatb | M::Arpl => callout(K::Interp),
        M::Movsb | M::Movsw | M::Movsd | M::Stosb | M::Stosw | M::Stosd | M::Lodsb | M::Lodsw | M::Lodsd => {
            callout(K::String)
        }
        M::Cmpsb | M::Cmpsw | M::Cmpsd | M::Scasb | M::Scasw | M::Scasd => callout(K::String),
        M::Ud0 | M::Ud1 | M::Ud2 => INVALID,
        // The x87 runs on the host's FPU through the interpreter's handler
        // (src/cpu/x87), which keeps the guest's FPU state, pointers and
        // exceptions; WAIT raises a pending x87 exception.
        M::Wait => callout(K::Interp),
        _ if crate::x87::is_escape(code) => callout(K::Interp),
        _ => system(code),
    }
}

/// Privileged, sensitive and system instructions, and control flow.
fn system(code: Code) -> Decision {
    match code.mnemonic() {
        M::Cli | M::Invd | M::Wbinvd | M::Rdmsr => privileged(false),
        M::In | M::Insb | M::Insw | M::Insd | M::Out | M::Outsb | M::Outsw | M::Outsd => privileged(true),
        M::Sti | M::Hlt | M::Lgdt | M::Lidt | M::Lldt | M::Ltr | M::Lmsw | M::Clts | M::Invlpg => privileged(true),
        M::Wrmsr | M::Sysexit => privileged(true),
        M::Sgdt | M::Sidt | M::Sldt | M::Str | M::Smsw | M::Lar | M::Lsl | M::Verr | M::Verw => sensitive(false),
        M::Pushf | M::Pushfd => sensitive(false),
        M::Popf | M::Popfd | M::Lds | M::Les | M::Lfs | M::Lgs | M::Lss => sensitive(true),
        M::Int | M::Int1 | M::Int3 | M::Into | M::Iret | M::Iretd | M::Retf => sensitive(true),
        M::Cpuid | M::Rdtsc => callout(K::System),
        M::Sysenter => Decision { ends_block: true, ..callout(K::System) },
        _ => control(code),
    }
}

/// Near and far JMP/CALL/RET, Jcc, LOOPcc, JCXZ.
fn control(code: Code) -> Decision {
    let far = operand_is(code, 0, &[O::farbr2_2, O::farbr4_2, O::mem]);
    match (code.mnemonic(), code.flow_control()) {
        (M::Jmp | M::Call, _) if far => sensitive(true),
        (M::Jmp, FlowControl::UnconditionalBranch) => branch(B::Jmp),
        (M::Jmp, FlowControl::IndirectBranch) => branch(B::JmpIndirect),
        (M::Call, FlowControl::Call) => branch(B::Call),
        (M::Call, FlowControl::IndirectCall) => branch(B::CallIndirect),
        (M::Ret, _) if code.op_code().op_count() == 1 => branch(B::RetImm),
        (M::Ret, _) => branch(B::Ret),
        (M::Loop | M::Loope | M::Loopne, _) => branch(B::Loop),
        (M::Jcxz | M::Jecxz, _) => branch(B::Jcxz),
        (_, FlowControl::ConditionalBranch) if code.condition_code() != iced_x86::ConditionCode::None => branch(B::Jcc),
        (mnemonic, _) => panic!("the decision table has no rule for {mnemonic:?} ({code:?})"),
    }
}

/// MOV: plain forms are `Ident`; segment registers are sensitive (loads end
/// the block); CRn and DRn are privileged (CR writes end the block).
fn mov(code: Code) -> Decision {
    if operand_is(code, 0, SEGS) {
        sensitive(true)
    } else if operand_is(code, 1, SEGS) {
        sensitive(false)
    } else if operand_is(code, 0, &[O::cr_reg]) {
        privileged(true)
    } else if operand_is(code, 1, &[O::cr_reg])
        || operand_is(code, 0, &[O::dr_reg])
        || operand_is(code, 1, &[O::dr_reg])
    {
        privileged(false)
    } else {
        IDENT
    }
}

/// PUSH/POP: of a segment register sensitive (POP ends the block), of
/// anything else a stack callout.
fn push_pop(code: Code) -> Decision {
    match (operand_is(code, 0, SEGS), code.mnemonic()) {
        (true, M::Pop) => sensitive(true),
        (true, _) => sensitive(false),
        (false, _) => callout(K::Stack),
    }
}
