//! The interpreter's instruction dispatch: one match on iced's `Mnemonic`
//! that hands each instruction to its family. Families live one per file:
//!
//! | file       | what                                              |
//! |------------|---------------------------------------------------|
//! | data.rs    | MOV, XCHG, LEA, PUSH/POP, conversions, CMOV/SETcc |
//! | arith.rs   | ALU ops, shifts, multiply and divide, flag ops    |
//! | bits.rs    | BT/BTS/BTR/BTC, BSF/BSR, BCD adjustments          |
//! | control.rs | jumps, calls, returns, loops, INT, IRET, BOUND    |
//! | string.rs  | MOVS/STOS/LODS/CMPS/SCAS/INS/OUTS and REP         |
//! | system.rs  | privileged and sensitive instructions             |
//! | x87.rs     | the x87 FPU (D8–DF) and WAIT                      |

pub mod arith;
pub mod bits;
pub mod control;
pub mod data;
pub mod string;
pub mod system;
pub mod x87;

use crate::cpu::state::Seg;
use crate::cpu::{Exception, Fault};
use crate::machine::Machine;
use crate::system::EventKind;
use iced_x86::{Code, Instruction, Mnemonic as M};
use string::Str;

/// The condition-code nibble (0 = O ... 15 = G) of a Jcc/SETcc/CMOVcc.
#[inline]
fn cc(i: &Instruction) -> u8 {
    (i.condition_code() as u8).wrapping_sub(1)
}

/// Element size of a string instruction from its mnemonic's suffix.
fn str_len(mn: M) -> u32 {
    match mn {
        M::Movsb | M::Stosb | M::Lodsb | M::Cmpsb | M::Scasb | M::Insb | M::Outsb => 1,
        M::Movsw | M::Stosw | M::Lodsw | M::Cmpsw | M::Scasw | M::Insw | M::Outsw => 2,
        _ => 4,
    }
}

/// 2 or 4: the operand size of an instruction whose form iced names
/// with a `w` or `d` (PUSHF/PUSHFD, IRET/IRETD...).
fn wide(i: &Instruction, narrow: &[Code]) -> u32 {
    if narrow.contains(&i.code()) {
        2
    } else {
        4
    }
}

/// How an instruction is executed: `cpu.eip` already points past it; on
/// a fault the caller puts it back. `budget` bounds REP iterations.
pub type Handler = fn(&mut Machine, &Instruction, u64) -> Fault<()>;

/// The handler for an instruction, chosen once when its block is decoded:
/// the commonest forms get a direct function, everything else goes
/// through [`step`]'s full dispatch.
pub fn handler(i: &Instruction) -> Handler {
    use crate::cpu::alu;
    let plain_mov = !(i.op0_register().is_segment_register()
        || i.op1_register().is_segment_register()
        || i.op0_register().is_cr()
        || i.op0_register().is_dr()
        || i.op0_register().is_tr()
        || i.op1_register().is_cr()
        || i.op1_register().is_dr()
        || i.op1_register().is_tr());
    match i.mnemonic() {
        M::Mov if plain_mov => |m, i, _| data::mov(m, i),
        M::Add => |m, i, _| arith::binary(m, i, alu::add),
        M::Sub => |m, i, _| arith::binary(m, i, alu::sub),
        M::And => |m, i, _| arith::binary(m, i, alu::and),
        M::Or => |m, i, _| arith::binary(m, i, alu::or),
        M::Xor => |m, i, _| arith::binary(m, i, alu::xor),
        M::Adc => |m, i, _| arith::binary(m, i, alu::adc),
        M::Sbb => |m, i, _| arith::binary(m, i, alu::sbb),
        M::Cmp => |m, i, _| arith::compare(m, i, false),
        M::Test => |m, i, _| arith::compare(m, i, true),
        M::Inc | M::Dec | M::Neg | M::Not => |m, i, _| arith::unary(m, i),
        M::Lea => |m, i, _| data::lea(m, i),
        M::Movzx => |m, i, _| data::movx(m, i, false),
        M::Movsx => |m, i, _| data::movx(m, i, true),
        M::Push => |m, i, _| data::push(m, i),
        M::Pop => |m, i, _| data::pop(m, i),
        M::Jmp => |m, i, _| control::jmp(m, i),
        M::Call => |m, i, _| control::call(m, i),
        M::Ret => |m, i, _| control::ret(m, i),
        _ if i.is_jcc_short_or_near() => |m, i, _| control::jcc(m, i, cc(i)),
        _ => step,
    }
}

/// The handler for an instruction on a CPU that may run deprivileged under
/// a trap-and-emulate monitor (`system/depriv.rs`): there, privileged
/// instructions trap first and sensitive ones run on the deprivileged CPU.
/// The decision table says which is which.
pub fn handler_for(i: &Instruction, deprivileged: bool) -> Handler {
    if deprivileged {
        let d = translator::table::classify(i.code());
        if d.privileged {
            return system::trapped;
        }
        if d.sensitive {
            return system::deprivileged;
        }
    }
    handler(i)
}

/// Executes one instruction by full dispatch on its mnemonic.
pub fn step(m: &mut Machine, i: &Instruction, budget: u64) -> Fault<()> {
    let mn = i.mnemonic();
    if let Some(f) = arith::binary_op(mn) {
        return arith::binary(m, i, f);
    }
    match mn {
        M::Mov => {
            if i.op0_register().is_segment_register() || i.op1_register().is_segment_register() {
                data::mov_sreg(m, i)
            } else if i.op0_register().is_cr()
                || i.op0_register().is_dr()
                || i.op1_register().is_cr()
                || i.op1_register().is_dr()
            {
                system::mov_crdr(m, i)
            } else if i.op0_register().is_tr() || i.op1_register().is_tr() {
                Err(Exception::InvalidOpcode)
            } else {
                data::mov(m, i)
            }
        }
        M::Cmp => arith::compare(m, i, false),
        M::Test => arith::compare(m, i, true),
        M::Inc | M::Dec | M::Neg | M::Not => arith::unary(m, i),
        M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror | M::Rcl | M::Rcr | M::Shld | M::Shrd => arith::shift(m, i),
        M::Mul => arith::mul_wide(m, i, false),
        M::Imul if i.op_count() == 1 => arith::mul_wide(m, i, true),
        M::Imul => arith::imul_trunc(m, i),
        M::Div => arith::divide(m, i, false),
        M::Idiv => arith::divide(m, i, true),
        M::Clc | M::Stc | M::Cmc | M::Cld | M::Std => {
            arith::flag_op(m, mn);
            Ok(())
        }
        M::Bt | M::Bts | M::Btr | M::Btc => bits::bit_test(m, i),
        M::Bsf | M::Bsr => bits::bit_scan(m, i),
        M::Daa | M::Das | M::Aaa | M::Aas | M::Aam | M::Aad | M::Salc => bits::bcd(m, i),
        M::Movzx => data::movx(m, i, false),
        M::Movsx => data::movx(m, i, true),
        M::Xchg => data::xchg(m, i),
        M::Lea => data::lea(m, i),
        M::Push => data::push(m, i),
        M::Pop => data::pop(m, i),
        M::Pusha => data::pusha(m, 2),
        M::Pushad => data::pusha(m, 4),
        M::Popa => data::popa(m, 2),
        M::Popad => data::popa(m, 4),
        M::Cbw | M::Cwde | M::Cwd | M::Cdq => {
            data::convert(m, mn);
            Ok(())
        }
        M::Cmovo
        | M::Cmovno
        | M::Cmovb
        | M::Cmovae
        | M::Cmove
        | M::Cmovne
        | M::Cmovbe
        | M::Cmova
        | M::Cmovs
        | M::Cmovns
        | M::Cmovp
        | M::Cmovnp
        | M::Cmovl
        | M::Cmovge
        | M::Cmovle
        | M::Cmovg => data::cmov(m, i, cc(i)),
        M::Seto
        | M::Setno
        | M::Setb
        | M::Setae
        | M::Sete
        | M::Setne
        | M::Setbe
        | M::Seta
        | M::Sets
        | M::Setns
        | M::Setp
        | M::Setnp
        | M::Setl
        | M::Setge
        | M::Setle
        | M::Setg => data::setcc(m, i, cc(i)),
        M::Xlatb => data::xlat(m, i),
        M::Lahf => {
            data::ahf(m, false);
            Ok(())
        }
        M::Sahf => {
            data::ahf(m, true);
            Ok(())
        }
        M::Xadd => data::xadd(m, i),
        M::Cmpxchg => data::cmpxchg(m, i),
        M::Cmpxchg8b => data::cmpxchg8b(m, i),
        M::Bswap => {
            data::bswap(m, i);
            Ok(())
        }
        M::Lds => data::load_far_pointer(m, i, Seg::Ds),
        M::Les => data::load_far_pointer(m, i, Seg::Es),
        M::Lfs => data::load_far_pointer(m, i, Seg::Fs),
        M::Lgs => data::load_far_pointer(m, i, Seg::Gs),
        M::Lss => data::load_far_pointer(m, i, Seg::Ss),
        M::Enter => data::enter(m, i, wide(i, &[Code::Enterw_imm16_imm8])),
        M::Leave => data::leave(m, wide(i, &[Code::Leavew])),
        // ENDBR32 and the other reserved hint NOPs (0F 18–1F) are NOPs on
        // an i686 without CET.
        M::Nop | M::Pause | M::Endbr32 | M::Endbr64 | M::Reservednop => Ok(()),
        M::Jmp => control::jmp(m, i),
        M::Call => control::call(m, i),
        M::Ret => control::ret(m, i),
        M::Retf => control::retf(m, i),
        M::Loop => control::loop_(m, i, None),
        M::Loope => control::loop_(m, i, Some(true)),
        M::Loopne => control::loop_(m, i, Some(false)),
        M::Jcxz | M::Jecxz => control::jcxz(m, i),
        M::Int => control::int(m, i.immediate8(), EventKind::Software),
        M::Int3 => control::int(m, 3, EventKind::Software),
        M::Into if m.cpu.eflags & crate::cpu::state::flags::OF != 0 => control::int(m, 4, EventKind::Software),
        M::Into => Ok(()),
        M::Int1 => control::int(m, 1, EventKind::External),
        M::Iret | M::Iretd => control::iret(m, i),
        M::Bound => control::bound(m, i),
        M::Movsb | M::Movsw | M::Movsd if i.op0_kind() != iced_x86::OpKind::Register => {
            string::run(m, i, Str::Movs, str_len(mn), budget, i.ip32())
        }
        M::Stosb | M::Stosw | M::Stosd => string::run(m, i, Str::Stos, str_len(mn), budget, i.ip32()),
        M::Lodsb | M::Lodsw | M::Lodsd => string::run(m, i, Str::Lods, str_len(mn), budget, i.ip32()),
        M::Cmpsb | M::Cmpsw | M::Cmpsd if i.op0_kind() != iced_x86::OpKind::Register => {
            string::run(m, i, Str::Cmps, str_len(mn), budget, i.ip32())
        }
        M::Scasb | M::Scasw | M::Scasd => string::run(m, i, Str::Scas, str_len(mn), budget, i.ip32()),
        M::Insb | M::Insw | M::Insd => string::run(m, i, Str::Ins, str_len(mn), budget, i.ip32()),
        M::Outsb | M::Outsw | M::Outsd => string::run(m, i, Str::Outs, str_len(mn), budget, i.ip32()),
        M::In => system::in_(m, i),
        M::Out => system::out(m, i),
        M::Cli => m.set_if(false),
        M::Sti => m.set_if(true),
        M::Pushf => system::pushf(m, 2),
        M::Pushfd => system::pushf(m, 4),
        M::Popf => system::popf(m, 2),
        M::Popfd => system::popf(m, 4),
        M::Hlt => system::hlt(m),
        M::Lgdt => system::load_table(m, i, false),
        M::Lidt => system::load_table(m, i, true),
        M::Sgdt => system::store_table(m, i, false),
        M::Sidt => system::store_table(m, i, true),
        M::Sldt | M::Str | M::Smsw => system::store_system_reg(m, i),
        M::Lldt | M::Ltr | M::Lmsw => system::load_system_reg(m, i),
        M::Clts => m.clts(),
        M::Invlpg => system::invlpg(m, i),
        M::Invd | M::Wbinvd => system::cache_op(m),
        M::Lar | M::Lsl => system::lar_lsl(m, i),
        M::Verr | M::Verw => system::verify(m, i),
        M::Arpl => system::arpl(m, i),
        M::Cpuid => {
            system::cpuid(m);
            Ok(())
        }
        M::Rdtsc => system::rd64(m, false),
        M::Rdmsr => system::rd64(m, true),
        M::Wrmsr => system::wrmsr(m),
        M::Sysenter => m.sysenter(),
        M::Sysexit => m.sysexit(),
        M::Ud0 | M::Ud1 | M::Ud2 | M::INVALID => Err(Exception::InvalidOpcode),
        M::Wait => x87::wait(m),
        _ if i.is_jcc_short_or_near() => control::jcc(m, i, cc(i)),
        _ if translator::x87::is_escape(i.code()) => x87::exec(m, i),
        _ => Err(unsupported(m, i)),
    }
}

/// An instruction this i686 model does not implement: the SIMD extensions
/// are absent (CPUID says so), and so is anything newer.
fn unsupported(m: &mut Machine, i: &Instruction) -> Exception {
    let mut text = String::new();
    let mut f = iced_x86::IntelFormatter::new();
    iced_x86::Formatter::format(&mut f, i, &mut text);
    m.unsupported(format!("unsupported instruction `{text}` at {:#010x}", i.ip32()))
}
