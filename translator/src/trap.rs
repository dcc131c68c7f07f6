//! Trap sites for `--engine trap`: the host instruction a translated block
//! runs in place of a privileged guest instruction, so that the host CPU,
//! in user mode, takes a real #GP (delivered as SIGSEGV) exactly where the
//! guest's deprivileged CPU would have faulted. The monitor's signal handler
//! resumes after it, at the callout that emulates the guest instruction.
//!
//! The host instruction is the guest's own operation wherever it has a
//! harmless 64-bit form: CLI, STI, HLT, CLTS, INVD, WBINVD, RDMSR, WRMSR,
//! SYSEXIT as they are; MOV to/from CRn or DRn with the same control
//! register and RAX; LLDT, LTR, LMSW from AX; LGDT, LIDT, INVLPG on `[rsp]`
//! (valid host memory, though the privilege check comes first); IN and INS
//! as `in al, dx`, OUT and OUTS as `out dx, al`. Every one of these raises
//! #GP at CPL 3 with IOPL 0 (SDM Vol. 2; Linux runs processes so, and bt86
//! never calls iopl or ioperm), so none can take effect on the host.

use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Mnemonic, Register};

/// The host bytes of the trap site for privileged guest instruction `i`,
/// or `None` if it is not one of the privileged instructions.
pub fn native(i: &Instruction) -> Option<Vec<u8>> {
    let rsp = MemoryOperand::with_base(Register::RSP);
    let host = match i.mnemonic() {
        Mnemonic::Cli => Instruction::with(Code::Cli),
        Mnemonic::Sti => Instruction::with(Code::Sti),
        Mnemonic::Hlt => Instruction::with(Code::Hlt),
        Mnemonic::Clts => Instruction::with(Code::Clts),
        Mnemonic::Invd => Instruction::with(Code::Invd),
        Mnemonic::Wbinvd => Instruction::with(Code::Wbinvd),
        Mnemonic::Rdmsr => Instruction::with(Code::Rdmsr),
        Mnemonic::Wrmsr => Instruction::with(Code::Wrmsr),
        Mnemonic::Sysexit => Instruction::with(Code::Sysexitd),
        Mnemonic::In | Mnemonic::Insb | Mnemonic::Insw | Mnemonic::Insd => {
            Instruction::with2(Code::In_AL_DX, Register::AL, Register::DX).ok()?
        }
        Mnemonic::Out | Mnemonic::Outsb | Mnemonic::Outsw | Mnemonic::Outsd => {
            Instruction::with2(Code::Out_DX_AL, Register::DX, Register::AL).ok()?
        }
        Mnemonic::Mov if i.op0_register().is_cr() => {
            Instruction::with2(Code::Mov_cr_r64, i.op0_register(), Register::RAX).ok()?
        }
        Mnemonic::Mov if i.op1_register().is_cr() => {
            Instruction::with2(Code::Mov_r64_cr, Register::RAX, i.op1_register()).ok()?
        }
        Mnemonic::Mov if i.op0_register().is_dr() => {
            Instruction::with2(Code::Mov_dr_r64, i.op0_register(), Register::RAX).ok()?
        }
        Mnemonic::Mov if i.op1_register().is_dr() => {
            Instruction::with2(Code::Mov_r64_dr, Register::RAX, i.op1_register()).ok()?
        }
        Mnemonic::Lldt => Instruction::with1(Code::Lldt_rm16, Register::AX).ok()?,
        Mnemonic::Ltr => Instruction::with1(Code::Ltr_rm16, Register::AX).ok()?,
        Mnemonic::Lmsw => Instruction::with1(Code::Lmsw_rm16, Register::AX).ok()?,
        Mnemonic::Lgdt => Instruction::with1(Code::Lgdt_m1664, rsp).ok()?,
        Mnemonic::Lidt => Instruction::with1(Code::Lidt_m1664, rsp).ok()?,
        Mnemonic::Invlpg => Instruction::with1(Code::Invlpg_m, rsp).ok()?,
        _ => return None,
    };
    let mut enc = Encoder::new(64);
    enc.encode(&host, 0).ok()?;
    Some(enc.take_buffer())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::classify;
    use iced_x86::{Decoder, DecoderOptions};

    /// One guest form of every privileged mnemonic (32-bit code).
    const GUEST: &[&[u8]] = &[
        &[0xfa],                            // cli
        &[0xfb],                            // sti
        &[0xf4],                            // hlt
        &[0x0f, 0x06],                      // clts
        &[0x0f, 0x08],                      // invd
        &[0x0f, 0x09],                      // wbinvd
        &[0x0f, 0x32],                      // rdmsr
        &[0x0f, 0x30],                      // wrmsr
        &[0x0f, 0x35],                      // sysexit
        &[0xe4, 0x60],                      // in al, 60h
        &[0xed],                            // in eax, dx
        &[0xe6, 0xe9],                      // out 0e9h, al
        &[0x66, 0xef],                      // out dx, ax
        &[0xf3, 0x6c],                      // rep insb
        &[0x6f],                            // outsd
        &[0x66, 0x6d],                      // insw
        &[0x6d],                            // insd
        &[0x6e],                            // outsb
        &[0x66, 0x6f],                      // outsw
        &[0x0f, 0x22, 0xd8],                // mov cr3, eax
        &[0x0f, 0x20, 0xc1],                // mov ecx, cr0
        &[0x0f, 0x23, 0xfa],                // mov dr7, edx
        &[0x0f, 0x21, 0xf3],                // mov ebx, dr6
        &[0x0f, 0x00, 0xd0],                // lldt ax
        &[0x0f, 0x00, 0x18],                // ltr [eax]
        &[0x0f, 0x01, 0x30],                // lmsw [eax]
        &[0x0f, 0x01, 0x15, 0, 0, 0x10, 0], // lgdt [100000h]
        &[0x0f, 0x01, 0x19],                // lidt [ecx]
        &[0x0f, 0x01, 0x38],                // invlpg [eax]
    ];

    #[test]
    fn every_privileged_form_has_a_trapping_host_instruction() {
        let mut mnemonics = std::collections::HashSet::new();
        for bytes in GUEST {
            let guest = Decoder::with_ip(32, bytes, 0, DecoderOptions::NONE).decode();
            assert!(classify(guest.code()).privileged, "{guest} is not privileged in the table");
            let host_bytes = native(&guest).unwrap_or_else(|| panic!("no trap site for {guest}"));
            let host = Decoder::with_ip(64, &host_bytes, 0, DecoderOptions::NONE).decode();
            assert!(!host.is_invalid() && host.len() == host_bytes.len(), "{guest}: bad host bytes");
            // The host form is CPL-0-only in 64-bit mode too (iced says
            // so), or IOPL-sensitive (CLI, STI, IN, OUT: #GP at IOPL 0).
            let iopl = matches!(host.mnemonic(), Mnemonic::Cli | Mnemonic::Sti | Mnemonic::In | Mnemonic::Out);
            let cpl0 = host.op_code().must_be_cpl0() || iopl;
            assert!(cpl0, "{guest} -> {host}: the host instruction would not fault in user mode");
            // Memory operands only on the host stack.
            if host.op_count() > 0 && host.op0_kind() == iced_x86::OpKind::Memory {
                assert_eq!(host.memory_base(), Register::RSP, "{host}");
            }
            mnemonics.insert(guest.mnemonic());
        }
        // Every privileged Code of the table maps to a mnemonic covered here.
        for code in Code::values() {
            let d = classify(code);
            if d.privileged {
                let m = code.mnemonic();
                let covered = mnemonics.contains(&m) || m == Mnemonic::Mov;
                assert!(covered, "{code:?} is privileged but no test form covers {m:?}");
            }
        }
    }

    #[test]
    fn unprivileged_instructions_get_no_trap_site() {
        let guest = Decoder::with_ip(32, &[0x9c], 0, DecoderOptions::NONE).decode(); // pushfd
        assert!(native(&guest).is_none());
        let guest = Decoder::with_ip(32, &[0x89, 0xc3], 0, DecoderOptions::NONE).decode(); // mov ebx, eax
        assert!(native(&guest).is_none());
    }
}
