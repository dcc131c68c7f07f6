//! Every `Ident` Code (and every `Div` Code, whose fast path is the host
//! DIV) re-encodes for the host: a representative instruction is built from
//! iced's operand description, must be valid in 32-bit mode, and must encode
//! in 64-bit mode as `host_code(code)` with guest registers EAX..EDI (never
//! ESP) and every memory operand replaced by [r15 + r8].

use iced_x86::{Code, Decoder, DecoderOptions, Encoder, Instruction, OpCodeOperandKind as O, OpKind, Register as R};
use translator::table::{classify, host_code, CalloutKind, Class};

/// The register for operand `n` of a given width: ECX, EBP, EDI... (EBP,
/// 5, as the ModRM reg field keeps 0F 18 [mem] on a reserved-NOP row
/// rather than a PREFETCH one.)
fn reg(kind: O, n: usize) -> Option<R> {
    let pick = |regs: [R; 3]| regs[n.min(2)];
    Some(match kind {
        O::r8_or_mem | O::r8_reg | O::r8_opcode => pick([R::CL, R::DL, R::BL]),
        O::r16_or_mem | O::r16_reg | O::r16_opcode | O::r16_rm => pick([R::CX, R::BP, R::DI]),
        O::r32_or_mem | O::r32_reg | O::r32_opcode | O::r32_rm => pick([R::ECX, R::EBP, R::EDI]),
        O::al => R::AL,
        O::cl => R::CL,
        O::ax => R::AX,
        O::eax => R::EAX,
        _ => return None,
    })
}

fn set_imm(i: &mut Instruction, n: u32, kind: O) -> bool {
    let (op_kind, ok) = match kind {
        O::imm8 => (OpKind::Immediate8, true),
        O::imm8_const_1 => (OpKind::Immediate8, true),
        O::imm16 => (OpKind::Immediate16, true),
        O::imm32 => (OpKind::Immediate32, true),
        O::imm8sex16 => (OpKind::Immediate8to16, true),
        O::imm8sex32 => (OpKind::Immediate8to32, true),
        _ => (OpKind::Immediate8, false),
    };
    i.set_op_kind(n, op_kind);
    match kind {
        O::imm8_const_1 => i.set_immediate8(1),
        O::imm8 => i.set_immediate8(5),
        O::imm16 => i.set_immediate16(0x1234),
        O::imm32 => i.set_immediate32(0x1234_5678),
        O::imm8sex16 => i.set_immediate8to16(-3),
        O::imm8sex32 => i.set_immediate8to32(-3),
        _ => {}
    }
    ok
}

/// A 32-bit instruction of `code`, with r/m operands in memory or not.
fn representative(code: Code, mem: bool) -> Instruction {
    let mut i = Instruction::default();
    i.set_code(code);
    for (n, &kind) in code.op_code().op_kinds().iter().enumerate() {
        let rm = matches!(kind, O::r8_or_mem | O::r16_or_mem | O::r32_or_mem);
        if kind == O::mem_offs {
            i.set_op_kind(n as u32, OpKind::Memory);
            i.set_memory_displacement32(0x0010_2000);
            i.set_memory_displ_size(4);
        } else if kind == O::mem || (rm && mem) {
            i.set_op_kind(n as u32, OpKind::Memory);
            i.set_memory_base(R::EBX);
            i.set_memory_index(R::EBP);
            i.set_memory_index_scale(4);
            i.set_memory_displacement32(0x10);
            i.set_memory_displ_size(1);
        } else if let Some(r) = reg(kind, n) {
            i.set_op_kind(n as u32, OpKind::Register);
            i.set_op_register(n as u32, r);
        } else {
            assert!(set_imm(&mut i, n as u32, kind), "{code:?}: no representative for operand {n} ({kind:?})");
        }
    }
    i
}

/// The host form: `host_code`, memory operands at [r15 + r8].
fn host(guest: &Instruction) -> Instruction {
    let mut h = *guest;
    h.set_code(host_code(guest.code()));
    if (0..h.op_count()).any(|n| h.op_kind(n) == OpKind::Memory) {
        h.set_memory_base(R::R15);
        h.set_memory_index(R::R8);
        h.set_memory_index_scale(1);
        h.set_memory_displacement64(0);
        h.set_memory_displ_size(0);
    }
    h
}

/// Encodes `i` for `bitness` and decodes it back.
fn round_trip(i: &Instruction, bitness: u32) -> Result<Instruction, String> {
    let mut enc = Encoder::new(bitness);
    enc.encode(i, 0).map_err(|e| e.to_string())?;
    let bytes = enc.take_buffer();
    let decoded = Decoder::new(bitness, &bytes, DecoderOptions::NONE).decode();
    Ok(decoded)
}

/// Whether `code` has an r/m operand whose memory form iced decodes as
/// `code` (0F 0D with a memory operand is always one of the PREFETCH codes,
/// so the reserved-NOP code of that row has register forms only).
fn has_memory_form(code: Code) -> bool {
    let rm = code.op_code().op_kinds().iter().any(|k| matches!(k, O::r8_or_mem | O::r16_or_mem | O::r32_or_mem));
    rm && !matches!(code, Code::Reservednop_rm16_r16_0F0D | Code::Reservednop_rm32_r32_0F0D)
}

#[test]
fn ident_codes_reencode_for_the_host() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for code in Code::values() {
        let class = classify(code).class;
        if class != Class::Ident && class != Class::Callout(CalloutKind::Div) {
            continue;
        }
        let forms = if has_memory_form(code) { vec![false, true] } else { vec![false] };
        for mem in forms {
            let guest = representative(code, mem);
            match round_trip(&guest, 32) {
                Ok(d) if d.code() == code => {}
                other => failures.push(format!("{code:?} (mem: {mem}) in 32-bit mode: {other:?}")),
            }
            let host = host(&guest);
            match round_trip(&host, 64) {
                Ok(d) if d.code() == host.code() && (0..d.op_count()).all(|n| d.op_register(n) != R::ESP) => {}
                other => failures.push(format!("{code:?} (mem: {mem}) as {:?} in 64-bit mode: {other:?}", host.code())),
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    println!("{checked} representatives re-encoded");
}
