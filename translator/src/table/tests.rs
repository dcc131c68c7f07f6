//! The table against its rules, its own invariants, iced's metadata and the
//! interpreter (`src/engine/interp`), whose rules are restated here per
//! Code because this crate may not import the root crate.

use super::{classify, render, rules, Class, Decision};
use iced_x86::{Code, FlowControl, Mnemonic as M, OpCodeOperandKind as O};

fn executable(d: Decision) -> bool {
    matches!(d.class, Class::Ident | Class::Branch(_) | Class::Callout(_))
}

#[test]
fn generated_table_is_fresh() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/table/generated.rs");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == render::render(),
        "{path} is stale: run `cargo run -p translator --example gen_table` and commit it"
    );
}

#[test]
fn every_code_is_decided_by_the_rules() {
    for code in Code::values() {
        assert_eq!(classify(code), rules::decide(code), "{code:?}");
    }
    let counts = render::counts();
    println!("{counts:?}");
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<usize>(), Code::values().len());
}

#[test]
fn flags_are_consistent() {
    for code in Code::values() {
        let d = classify(code);
        assert!(!(d.privileged && d.sensitive), "{code:?}: privileged and sensitive");
        if !executable(d) {
            assert!(d.ends_block && !d.privileged && !d.sensitive, "{code:?}");
        }
        if matches!(d.class, Class::Branch(_)) || code.flow_control() != FlowControl::Next {
            assert!(d.ends_block, "{code:?}: a control transfer must end its block");
        }
    }
}

/// The mnemonics `exec::step` implements (INVALID and UD0–UD2 raise #UD).
#[rustfmt::skip]
const INTERP: &[M] = &[
    M::Add, M::Adc, M::Sub, M::Sbb, M::And, M::Or, M::Xor, M::Mov, M::Cmp, M::Test, M::Inc, M::Dec, M::Neg,
    M::Not, M::Shl, M::Sal, M::Shr, M::Sar, M::Rol, M::Ror, M::Rcl, M::Rcr, M::Shld, M::Shrd, M::Mul, M::Imul,
    M::Div, M::Idiv, M::Clc, M::Stc, M::Cmc, M::Cld, M::Std, M::Bt, M::Bts, M::Btr, M::Btc, M::Bsf, M::Bsr,
    M::Daa, M::Das, M::Aaa, M::Aas, M::Aam, M::Aad, M::Salc, M::Movzx, M::Movsx, M::Xchg, M::Lea, M::Push,
    M::Pop, M::Pusha, M::Pushad, M::Popa, M::Popad, M::Cbw, M::Cwde, M::Cwd, M::Cdq, M::Cmovo, M::Cmovno,
    M::Cmovb, M::Cmovae, M::Cmove, M::Cmovne, M::Cmovbe, M::Cmova, M::Cmovs, M::Cmovns, M::Cmovp, M::Cmovnp,
    M::Cmovl, M::Cmovge, M::Cmovle, M::Cmovg, M::Seto, M::Setno, M::Setb, M::Setae, M::Sete, M::Setne,
    M::Setbe, M::Seta, M::Sets, M::Setns, M::Setp, M::Setnp, M::Setl, M::Setge, M::Setle, M::Setg, M::Xlatb,
    M::Lahf, M::Sahf, M::Xadd, M::Cmpxchg, M::Cmpxchg8b, M::Bswap, M::Lds, M::Les, M::Lfs, M::Lgs, M::Lss,
    M::Enter, M::Leave, M::Nop, M::Pause, M::Endbr32, M::Endbr64, M::Reservednop, M::Jmp, M::Call, M::Ret,
    M::Retf, M::Jo, M::Jno, M::Jb, M::Jae, M::Je, M::Jne, M::Jbe, M::Ja, M::Js, M::Jns, M::Jp, M::Jnp, M::Jl,
    M::Jge, M::Jle, M::Jg, M::Loop, M::Loope, M::Loopne, M::Jcxz, M::Jecxz, M::Int, M::Int3, M::Into, M::Int1,
    M::Iret, M::Iretd, M::Bound, M::Movsb, M::Movsw, M::Movsd, M::Stosb, M::Stosw, M::Stosd, M::Lodsb,
    M::Lodsw, M::Lodsd, M::Cmpsb, M::Cmpsw, M::Cmpsd, M::Scasb, M::Scasw, M::Scasd, M::Insb, M::Insw, M::Insd,
    M::Outsb, M::Outsw, M::Outsd, M::In, M::Out, M::Cli, M::Sti, M::Pushf, M::Pushfd, M::Popf, M::Popfd,
    M::Hlt, M::Lgdt, M::Lidt, M::Sgdt, M::Sidt, M::Sldt, M::Str, M::Smsw, M::Lldt, M::Ltr, M::Lmsw, M::Clts,
    M::Invlpg, M::Invd, M::Wbinvd, M::Lar, M::Lsl, M::Verr, M::Verw, M::Arpl, M::Cpuid, M::Rdtsc, M::Rdmsr,
    M::Wrmsr, M::Sysenter, M::Sysexit,
];

#[test]
fn what_runs_is_what_the_interpreter_implements() {
    for code in Code::values() {
        let d = classify(code);
        // The x87 escapes (and WAIT) all go to one handler, exec/x87.rs.
        let x87 = crate::x87::is_escape(code) || code.mnemonic() == M::Wait;
        if executable(d) && !x87 {
            assert!(
                INTERP.contains(&code.mnemonic()),
                "{code:?} runs, but the interpreter has no {:?}",
                code.mnemonic()
            );
        }
    }
    // And every mnemonic the interpreter implements has a form that runs.
    for m in INTERP {
        assert!(Code::values().any(|c| c.mnemonic() == *m && executable(classify(c))), "{m:?}: no form runs");
    }
}

/// `cache::ends_block`, per Code (MOV Sreg ends there when it loads SS).
fn interp_ends_block(code: Code) -> bool {
    let op0 = code.op_code().op_kinds().first().copied();
    code.flow_control() != FlowControl::Next
        || (code.mnemonic() == M::Mov && matches!(op0, Some(O::cr_reg | O::seg_reg)))
        || (code.mnemonic() == M::Pop && op0 == Some(O::ss))
        || matches!(
            code.mnemonic(),
            M::Invlpg
                | M::Lmsw
                | M::Clts
                | M::Sti
                | M::Popf
                | M::Popfd
                | M::Lgdt
                | M::Lidt
                | M::Lldt
                | M::Ltr
                | M::Wrmsr
                | M::Out
                | M::Outsb
                | M::Outsw
                | M::Outsd
                | M::In
                | M::Insb
                | M::Insw
                | M::Insd
                | M::Lss
        )
}

#[test]
fn ends_block_covers_the_interpreter() {
    let mut extra = Vec::new();
    for code in Code::values().filter(|c| executable(classify(*c))) {
        let ours = classify(code).ends_block;
        assert!(ours || !interp_ends_block(code), "{code:?}: the interpreter ends its block here");
        if ours && !interp_ends_block(code) {
            extra.push(code);
        }
    }
    // HLT, and every load of DS/ES/FS/GS: a translation is specialised on
    // the segment state (the interpreter needs no such thing).
    let expected = [
        Code::Popw_ES,
        Code::Popd_ES,
        Code::Popw_DS,
        Code::Popd_DS,
        Code::Les_r16_m1616,
        Code::Les_r32_m1632,
        Code::Lds_r16_m1616,
        Code::Lds_r32_m1632,
        Code::Hlt,
        Code::Popw_FS,
        Code::Popd_FS,
        Code::Popw_GS,
        Code::Popd_GS,
        Code::Lfs_r16_m1616,
        Code::Lfs_r32_m1632,
        Code::Lgs_r16_m1616,
        Code::Lgs_r32_m1632,
    ];
    assert_eq!(extra, expected);
}

/// iced's `is_privileged` counts the IOPL-sensitive ones (CLI, STI, IN,
/// OUT, INS, OUTS) too, as this table does.
#[test]
fn privileged_agrees_with_iced() {
    for code in Code::values().filter(|c| executable(classify(*c))) {
        assert_eq!(classify(code).privileged, code.is_privileged(), "{code:?}");
    }
}

#[test]
fn the_table_knows_the_families() {
    use super::{BranchKind as B, CalloutKind as K};
    let class = |c: Code| classify(c).class;
    assert_eq!(class(Code::Add_rm32_r32), Class::Ident);
    assert_eq!(class(Code::Inc_r32), Class::Ident);
    assert_eq!(class(Code::Jne_rel8_32), Class::Branch(B::Jcc));
    assert_eq!(class(Code::Jmp_rm32), Class::Branch(B::JmpIndirect));
    assert_eq!(class(Code::Retnd_imm16), Class::Branch(B::RetImm));
    assert_eq!(class(Code::Push_r32), Class::Callout(K::Stack));
    assert_eq!(class(Code::Div_rm32), Class::Callout(K::Div));
    assert_eq!(class(Code::Popfd), Class::Callout(K::Sensitive));
    assert_eq!(class(Code::Jmp_ptr1632), Class::Callout(K::Sensitive));
    assert_eq!(class(Code::Mov_cr_r32), Class::Callout(K::Privileged));
    assert_eq!(class(Code::Fadd_m32fp), Class::Callout(K::Interp));
    assert_eq!(class(Code::Fisttp_m32int), Class::Unsupported); // SSE3
    assert_eq!(class(Code::Frstpm), Class::Invalid); // 287XL only
    assert_eq!(class(Code::Add_r64_rm64), Class::Unsupported);
    assert_eq!(class(Code::Ud2), Class::Invalid);
    assert!(classify(Code::Popd_SS).ends_block && classify(Code::Sti).ends_block);
    assert!(!classify(Code::Cli).ends_block && classify(Code::Cli).privileged);
    assert!(classify(Code::Sgdt_m1632).sensitive);
}

fn decode(bytes: &[u8]) -> iced_x86::Instruction {
    iced_x86::Decoder::new(32, bytes, iced_x86::DecoderOptions::NONE).decode()
}

#[test]
fn operands_that_do_not_fit_the_host_call_out() {
    use super::{classify_instruction, CalloutKind};
    let interp = Class::Callout(CalloutKind::Interp);
    // mov ah, bl
    assert_eq!(classify_instruction(&decode(&[0x88, 0xdc])).class, Class::Ident);
    // mov ah, [ebx]
    assert_eq!(classify_instruction(&decode(&[0x8a, 0x23])).class, interp);
    // movzx esp, ah
    assert_eq!(classify_instruction(&decode(&[0x0f, 0xb6, 0xe4])).class, interp);
    // movzx esp, al
    assert_eq!(classify_instruction(&decode(&[0x0f, 0xb6, 0xe0])).class, Class::Ident);
    // bts [eax], ecx
    assert_eq!(classify_instruction(&decode(&[0x0f, 0xab, 0x08])).class, interp);
    // bts dword [eax], 3
    assert_eq!(classify_instruction(&decode(&[0x0f, 0xba, 0x28, 0x03])).class, Class::Ident);
    // bts eax, ecx
    assert_eq!(classify_instruction(&decode(&[0x0f, 0xab, 0xc8])).class, Class::Ident);
    // pushfd: not Ident, unchanged
    assert_eq!(classify_instruction(&decode(&[0x9c])), classify(Code::Pushfd));
}
