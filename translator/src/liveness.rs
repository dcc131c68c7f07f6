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

/// Flag liveness when some instructions are observers: a callout, or a
/// memory fast path whose slow path is a callout, lets the guest see the
/// flags (PUSHF, an exception's EFLAGS image, the state left at an exit),
/// so the flags must be exact when one starts.
///
/// Returns `(needed, restore)`: `needed[k]`, the flags must be exact when
/// instruction k starts; `restore[k]`, code inserted before instruction k
/// that clobbers RFLAGS must put them back before k runs (k reads them, or
/// they are needed after k and k does not overwrite them all).
pub fn flags_needed(insns: &[Instruction], observer: &[bool]) -> (Vec<bool>, Vec<bool>) {
    flags_needed_by(insns, |i: &Instruction| i, observer)
}

/// `flags_needed` over anything that holds an instruction (no copy of the
/// instructions into a slice of their own).
pub fn flags_needed_by<T>(items: &[T], insn: impl Fn(&T) -> &Instruction, observer: &[bool]) -> (Vec<bool>, Vec<bool>) {
    let mut needed = vec![false; items.len()];
    let mut restore = Vec::new();
    restore_into(items, insn, observer, &mut restore, |k, n| needed[k] = n);
    (needed, restore)
}

/// The `restore` half of `flags_needed_by`, into `restore` (cleared
/// first); `needed(k, ..)` is told the other half.
pub fn restore_into<T>(
    items: &[T],
    insn: impl Fn(&T) -> &Instruction,
    observer: &[bool],
    restore: &mut Vec<bool>,
    mut needed: impl FnMut(usize, bool),
) {
    restore.clear();
    restore.resize(items.len(), false);
    let mut after = true;
    for (k, i) in items.iter().map(insn).enumerate().rev() {
        let own = i.rflags_read() & ARITH != 0 || (after && !writes_all(i));
        restore[k] = own;
        after = own || observer.get(k).copied().unwrap_or(true);
        needed(k, after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};

    /// Liveness with no observers: just the guest's own flag reads.
    fn flags_live_before(insns: &[Instruction]) -> Vec<bool> {
        flags_needed(insns, &vec![false; insns.len()]).0
    }

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
    fn observers_need_exact_flags_before_them() {
        // mov bl,[ecx] ; mov [x],bl (may call out) ; inc ecx ; cmp ecx,7 ; jb
        let i = decode(&[0x8a, 0x19, 0x88, 0x1d, 0, 0, 0, 0, 0x41, 0x83, 0xf9, 0x07, 0x72, 0x00]);
        let (needed, restore) = flags_needed(&i, &[true, true, false, false, false]);
        assert_eq!(needed, vec![true, true, false, false, true]);
        // The first load must put the flags back: the store after it may
        // let the guest see them. The store itself need not.
        assert_eq!(restore, vec![true, false, false, false, true]);
    }

    #[test]
    fn adc_reads_and_shift_by_cl_keeps() {
        // shl eax,cl ; adc [ebx],eax
        let i = decode(&[0xd3, 0xe0, 0x11, 0x03]);
        assert_eq!(flags_live_before(&i), vec![true, true]);
    }
}
