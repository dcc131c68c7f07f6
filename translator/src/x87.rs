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

use iced_x86::{Code, Encoder, Instruction, OpCodeTableKind, OpKind, Register};

/// Whether `code` is an x87 instruction: an escape opcode, D8–DF (iced
/// gives the register forms' two bytes, D9C0 for FLD ST(i)).
pub fn is_escape(code: Code) -> bool {
    let op = code.op_code();
    let oc = op.op_code();
    let first = if oc > 0xff { oc >> 8 } else { oc };
    op.table() == OpCodeTableKind::Normal && (0xd8..=0xdf).contains(&first)
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
