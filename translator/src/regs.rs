//! The host register map (docs/translator.md): guest EAX, ECX, EDX, EBX,
//! EBP, ESI and EDI live in the host registers of the same names; guest
//! ESP lives in r12d; r13 holds the guest CPU state, r14 the exit scratch,
//! r15 the host address of guest physical 0; r8–r11 are scratch.

use iced_x86::Register;

/// The host register holding a guest register, or `None` when the guest
/// register cannot be mapped (segment, control and debug registers are not
/// host registers).
pub fn map(r: Register) -> Option<Register> {
    Some(match r {
        Register::ESP => Register::R12D,
        Register::SP => Register::R12W,
        Register::None => Register::None,
        r if r.is_gpr32() || r.is_gpr16() || r.is_gpr8() => r,
        _ => return None,
    })
}

/// Whether a guest instruction's registers can all be mapped and encoded
/// together: AH, CH, DH and BH cannot appear in an instruction that needs a
/// REX prefix (which r12 does).
pub fn mappable(regs: &[Register]) -> bool {
    let high8 = regs.iter().any(|r| matches!(r, Register::AH | Register::CH | Register::DH | Register::BH));
    let needs_rex = regs.iter().any(|r| matches!(r, Register::ESP | Register::SP));
    regs.iter().all(|&r| map(r).is_some()) && !(high8 && needs_rex)
}
