//! What an i686 without BMI1 and ABM (bt86's CPUID) makes of encodings
//! that iced decodes as later instructions.
//!
//! `F3 0F BC` is TZCNT and `F3 0F BD` is LZCNT only on CPUs that report
//! BMI1 / ABM (SDM Vol. 2, TZCNT and LZCNT: "on processors that do not
//! support [them], the instruction byte encoding is executed as BSF /
//! BSR"): the F3 is an ignored REP prefix. Linux relies on this (`__ffs`
//! is `rep; bsf`, which assemblers print as `tzcnt`). The decoded
//! instruction is rewritten once, at decode time, so the interpreter, the
//! translator and the trap engine all see BSF/BSR; its length still
//! counts the prefix.

use iced_x86::{Code, Instruction};

/// Rewrites `i` into what bt86's CPU executes for its bytes.
pub fn as_p6(i: &mut Instruction) {
    let code = match i.code() {
        Code::Tzcnt_r16_rm16 => Code::Bsf_r16_rm16,
        Code::Tzcnt_r32_rm32 => Code::Bsf_r32_rm32,
        Code::Lzcnt_r16_rm16 => Code::Bsr_r16_rm16,
        Code::Lzcnt_r32_rm32 => Code::Bsr_r32_rm32,
        _ => return,
    };
    i.set_code(code);
    i.set_has_repe_prefix(false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};

    fn decode(bytes: &[u8]) -> Instruction {
        let mut i = Decoder::with_ip(32, bytes, 0, DecoderOptions::NONE).decode();
        as_p6(&mut i);
        i
    }

    #[test]
    fn tzcnt_and_lzcnt_are_bsf_and_bsr() {
        // tzcnt ecx, ecx
        let i = decode(&[0xf3, 0x0f, 0xbc, 0xc9]);
        assert_eq!((i.code(), i.len(), i.has_repe_prefix()), (Code::Bsf_r32_rm32, 4, false));
        // lzcnt ax, [ebx]
        let i = decode(&[0x66, 0xf3, 0x0f, 0xbd, 0x03]);
        assert_eq!((i.code(), i.len()), (Code::Bsr_r16_rm16, 5));
        // bsf eax, ecx: unchanged
        assert_eq!(decode(&[0x0f, 0xbc, 0xc1]).mnemonic(), Mnemonic::Bsf);
        // popcnt eax, ecx stays POPCNT (#UD without CPUID.POPCNT)
        assert_eq!(decode(&[0xf3, 0x0f, 0xb8, 0xc1]).mnemonic(), Mnemonic::Popcnt);
    }
}
