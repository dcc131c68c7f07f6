//! The decision table: how bt86 handles every guest instruction, keyed by
//! iced's [`Code`] (one entry per encoding form, ~4,900 of them).
//!
//! ```text
//!   iced metadata (encoding, cpuid_features, mode32, flow control, operands)
//!   + per-mnemonic rules for the i686 integer ISA           table/rules.rs
//!        │  cargo run -p translator --example gen_table
//!        ▼
//!   table/generated.rs: one `match` arm per distinct Decision, every Code
//!   named (iced's `exhaustive_enums`: a new Code fails to compile)
//!        │
//!        ▼
//!   classify(code) -> Decision           read by the translator, the trap
//!                                        engine, `bt86 explain`, the tests
//! ```
//!
//! The classes, in the order the rules try them:
//!
//! - [`Class::Invalid`]: #UD on an i686 (iced's INVALID, UD0/UD1/UD2, the
//!   forms only older CPUs had: MOV TRn, LOADALL, UMOV, IBTS/XBTS, the 486-A
//!   CMPXCHG, POP CS), and iced's pseudo-codes (DB/DW/DD/DQ, zero bytes).
//! - [`Class::Unsupported`]: outside the model (VEX/EVEX/XOP/3DNow!, 64-bit
//!   only, any CPUID feature the CPU of `src/system/control.rs` does not
//!   report: x87, MMX, SSE+, ..., and what the interpreter does not
//!   implement: WAIT, RDPMC, RSM); the engine stops.
//! - [`Class::Branch`]: near control flow the translator rewrites.
//! - [`Class::Callout`]: runs in Rust; [`CalloutKind`] names the family.
//! - [`Class::Ident`]: re-encoded for the host with registers remapped and
//!   memory redirected ([`host_code`] gives the form to encode).
//!
//! `privileged` = faults at CPL > 0 (or CPL > IOPL: CLI, STI, IN, OUT,
//! INS, OUTS) on real hardware; `sensitive` = sensitive but *un*privileged
//! (Robin & Irvine's list plus the other segment loads): it runs at any CPL
//! and silently behaves differently when deprivileged. Never both.
//! `ends_block` is a superset of the interpreter's `cache::ends_block`; the
//! extra cases are listed in [`rules`].

mod generated;
pub mod render;
pub mod rules;

use iced_x86::{Code, Instruction, Mnemonic, OpKind, Register};

/// How the translator handles a guest instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Re-encoded for the host as is: registers remapped, memory redirected
    /// (LEA's operand is an address computation, never redirected). Some
    /// operand combinations cannot be: see [`classify_instruction`].
    Ident,
    /// Near control flow, rewritten into block exits and chains.
    Branch(BranchKind),
    /// Executed in Rust through a callout.
    Callout(CalloutKind),
    /// Not part of the i686 integer model: the engine stops.
    Unsupported,
    /// Raises #UD.
    Invalid,
}

/// Which near control transfer a [`Class::Branch`] is. Operand size (the
/// rel16/r/m16 forms truncate EIP to 16 bits) is read from the instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BranchKind {
    /// Jcc rel8/rel16/rel32.
    Jcc,
    /// JMP rel8/rel16/rel32.
    Jmp,
    /// JMP r/m16, r/m32 (near indirect).
    JmpIndirect,
    /// CALL rel16/rel32.
    Call,
    /// CALL r/m16, r/m32 (near indirect).
    CallIndirect,
    /// RET.
    Ret,
    /// RET imm16.
    RetImm,
    /// LOOP, LOOPE, LOOPNE (the mnemonic says which; CX or ECX by address size).
    Loop,
    /// JCXZ, JECXZ.
    Jcxz,
}

/// The family of a [`Class::Callout`]: which Rust code runs it, and the
/// name `--stats` counts callouts under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CalloutKind {
    /// Faults at CPL > 0 (or > IOPL): CLI, STI, HLT, IN/OUT/INS/OUTS, MOV
    /// CRn/DRn, LGDT, LIDT, LLDT, LTR, LMSW, CLTS, INVLPG, INVD, WBINVD,
    /// RDMSR, WRMSR, SYSEXIT.
    Privileged,
    /// Sensitive but unprivileged: SGDT, SIDT, SLDT, SMSW, STR, PUSHF, POPF,
    /// LAR, LSL, VERR, VERW, PUSH/POP/MOV of segment registers, LDS, LES,
    /// LFS, LGS, LSS, far CALL/JMP/RET, INT n, INT3, INT1, INTO, IRET.
    Sensitive,
    /// Machine-wide state that is neither: CPUID, RDTSC, SYSENTER.
    System,
    /// Uses guest ESP, which lives in r12d: PUSH/POP r/m/imm, PUSHA/POPA,
    /// ENTER/LEAVE. Candidates for inline sequences later.
    Stack,
    /// MOVS, STOS, LODS, CMPS, SCAS with or without REP (INS/OUTS are
    /// `Privileged`).
    String,
    /// Legal at CPL 3 but with no (or no worthwhile) 64-bit encoding: the
    /// BCD group, SALC, BOUND, XLAT, ARPL; or whose result is undefined
    /// where hosts differ: BSWAP r16, 16-bit SHLD/SHRD.
    Interp,
    /// DIV, IDIV: by a register, the host DIV runs and its #DE (a SIGFPE)
    /// resumes at the callout, which delivers the guest's #DE
    /// (`block::Kind::Divide`); by memory, the callout.
    Div,
}

/// Everything the engines need to know about one `Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    pub class: Class,
    /// The instruction must be the last of its block.
    pub ends_block: bool,
    /// Faults at CPL > 0 (or CPL > IOPL) on real hardware.
    pub privileged: bool,
    /// Sensitive but unprivileged: misbehaves silently when deprivileged.
    pub sensitive: bool,
}

/// The decision for `code`: a single `match`, O(1).
#[inline]
pub const fn classify(code: Code) -> Decision {
    generated::decision(code)
}

/// The decision for one decoded instruction: its Code's, except that an
/// `Ident` whose operands cannot be re-encoded becomes `Callout(Interp)`:
/// - AH, CH, DH or BH with a memory operand or ESP/SP: the host form needs a
///   REX prefix ([r15 + r8], r12d), which turns AH..BH into SPL..DIL;
/// - BT, BTS, BTR, BTC on memory with a register bit offset: the access is
///   up to 256 MiB away from the operand, past the fast path's check.
pub fn classify_instruction(i: &Instruction) -> Decision {
    let d = classify(i.code());
    if d.class == Class::Ident && !ident_operands_fit(i) {
        Decision { class: Class::Callout(CalloutKind::Interp), ..d }
    } else {
        d
    }
}

fn ident_operands_fit(i: &Instruction) -> bool {
    let ops = || (0..i.op_count()).map(|n| (i.op_kind(n), i.op_register(n)));
    let memory = ops().any(|(k, _)| k == OpKind::Memory);
    let high_byte = ops().any(|(_, r)| matches!(r, Register::AH | Register::CH | Register::DH | Register::BH));
    let stack_reg = ops().any(|(_, r)| matches!(r, Register::ESP | Register::SP));
    let bit_string = matches!(i.mnemonic(), Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc)
        && i.op0_kind() == OpKind::Memory
        && i.op1_kind() == OpKind::Register;
    !(high_byte && (memory || stack_reg)) && !bit_string
}

/// The `Code` an [`Class::Ident`] instruction is encoded with on the host:
/// itself, except the forms that do not exist in 64-bit mode or cannot take
/// a redirected memory operand, which have an equivalent ModRM form.
pub const fn host_code(code: Code) -> Code {
    match code {
        // INC/DEC 40–4F are REX prefixes in 64-bit mode: use FF /0, FF /1.
        Code::Inc_r16 => Code::Inc_rm16,
        Code::Inc_r32 => Code::Inc_rm32,
        Code::Dec_r16 => Code::Dec_rm16,
        Code::Dec_r32 => Code::Dec_rm32,
        // MOV A0–A3 take an absolute offset, never [r15 + r8].
        Code::Mov_AL_moffs8 => Code::Mov_r8_rm8,
        Code::Mov_AX_moffs16 => Code::Mov_r16_rm16,
        Code::Mov_EAX_moffs32 => Code::Mov_r32_rm32,
        Code::Mov_moffs8_AL => Code::Mov_rm8_r8,
        Code::Mov_moffs16_AX => Code::Mov_rm16_r16,
        Code::Mov_moffs32_EAX => Code::Mov_rm32_r32,
        // 82 /r (an alias of 80 /r) is #UD in 64-bit mode.
        Code::Add_rm8_imm8_82 => Code::Add_rm8_imm8,
        Code::Or_rm8_imm8_82 => Code::Or_rm8_imm8,
        Code::Adc_rm8_imm8_82 => Code::Adc_rm8_imm8,
        Code::Sbb_rm8_imm8_82 => Code::Sbb_rm8_imm8,
        Code::And_rm8_imm8_82 => Code::And_rm8_imm8,
        Code::Sub_rm8_imm8_82 => Code::Sub_rm8_imm8,
        Code::Xor_rm8_imm8_82 => Code::Xor_rm8_imm8,
        Code::Cmp_rm8_imm8_82 => Code::Cmp_rm8_imm8,
        other => other,
    }
}

#[cfg(test)]
mod tests;
