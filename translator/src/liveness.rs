//! Which guest instructions of a block need the guest's arithmetic flags
//! preserved around code the translator inserts before them (memory
//! checks clobber RFLAGS). A backward pass over iced's flag effects: flags
//! are live at the block's end (the next block may read them), and before
//! an instruction if it reads any, or if they are live after it and it
//! does not certainly overwrite all six.

use iced_x86::{Instruction, Mnemonic, OpKind, RflagsBits};

const ARITH: u32 = RflagsBits::OF | RflagsBits::SF | RflagsBits::ZF | RflagsBits::AF | RflagsBits::CF | RflagsBits::PF;

/// Whether an instruction certainly overwrites all six arithmetic flags.
fn writes_all(i: &Instruction) -> bool {
    // A shift or rotate by CL (or by an immediate that masks to 0) may
    // leave every flag as it was.
    let counted = matches!(
        i.mnemonic(),
        Mnemonic::Shl
            | Mnemonic::Sal
            | Mnemonic::Shr
            | Mnemonic::Sar
            | Mnemonic::Rol
            | Mnemonic::Ror
            | Mnemonic::Rcl
            | Mnemonic::Rcr
            | Mnemonic::Shld
            | Mnemonic::Shrd
    );
    if counted {
        let n = i.op_count();
        let imm = (0..n).rev().find(|&k| matches!(i.op_kind(k), OpKind::Immediate8));
        if !matches!(imm, Some(k) if i.immediate(k) & 0x1f != 0) && i.op_count() > 1 {
            return false;
        }
    }
    // Flags the SDM leaves undefined (MOV CRn, MUL's SF...) do not count:
    // a callout (the interpreter) leaves them as they were.
    (i.rflags_written() | i.rflags_cleared() | i.rflags_set()) & ARITH == ARITH
}

/// `live[k]`: the guest flags must be preserved just before instruction k.
pub fn flags_live_before(insns: &[Instruction]) -> Vec<bool> {
    let mut live = vec![false; insns.len()];
    let mut after = true;
    for (k, i) in insns.iter().enumerate().rev() {
        let before = i.rflags_read() & ARITH != 0 || (after && !writes_all(i));
        live[k] = before;
        after = before;
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};

    fn decode(bytes: &[u8]) -> Vec<Instruction> {
        Decoder::with_ip(32, bytes, 0, DecoderOptions::NONE).into_iter().collect()
    }

    #[test]
    fn compare_kills_liveness_and_jcc_reads() {
        // mov eax,[ebx] ; cmp eax,1 ; mov ecx,[edx] ; jne
        let i = decode(&[0x8b, 0x03, 0x83, 0xf8, 0x01, 0x8b, 0x0a, 0x75, 0x00]);
        assert_eq!(flags_live_before(&i), vec![false, false, true, true]);
    }

    #[test]
    fn adc_reads_and_shift_by_cl_keeps() {
        // shl eax,cl ; adc [ebx],eax
        let i = decode(&[0xd3, 0xe0, 0x11, 0x03]);
        assert_eq!(flags_live_before(&i), vec![true, true]);
    }
}
