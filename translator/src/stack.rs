//! Stack operations and near branches translated inline (guest ESP lives
//! in r12d): PUSH and POP of 32-bit registers and immediates, CALL rel32,
//! RET [imm16], and JMP through a register or memory. Each is one memory
//! access through the block's fast path (see `memop`), then an ESP update
//! with LEA (which leaves the flags alone), then — for branches — a direct
//! exit (CALL) or a jump through the indirect-branch cache (RET, JMP r/m).
//! The slow path calls out for the whole instruction. Only for a 32-bit
//! stack (SS.B = 1), which the memory modes that allow inline access
//! guarantee.

use crate::memop::{self, HostBytes, MemOp};
use crate::regs;
use iced_x86::{Code, Instruction, MemoryOperand, OpKind, Register};

/// What happens after the access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// The block goes on.
    Continue,
    /// A CALL to `target` that pushed `ret` (`Emitter::guest_call`).
    Call { target: u32, ret: u32 },
    /// A CALL to the guest EIP in r9d that pushed `ret`.
    IndirectCall { ret: u32 },
    /// RET to the guest EIP in r9d (`Emitter::guest_ret`).
    Return,
    /// Jump to the guest EIP in r9d through the indirect-branch cache.
    Indirect,
}

/// An inline stack or branch instruction.
#[derive(Clone, Debug)]
pub struct StackOp {
    /// The memory access (its fast path).
    pub access: MemOp,
    /// Host code run after the access on the fast path only.
    pub after: HostBytes,
    pub then: Then,
    /// The flags must be exact after the access (a branch leaves the block).
    pub restore_flags: bool,
}

fn enc(i: Result<Instruction, iced_x86::IcedError>) -> Option<HostBytes> {
    HostBytes::encode(&i.ok()?)
}

fn phys() -> MemoryOperand {
    MemoryOperand::with_base_index(Register::R15, Register::R8)
}

fn host() -> MemoryOperand {
    MemoryOperand::with_base(Register::R8)
}

/// `[r15 + r12 + d]`: the direct form's operand at guest ESP + `d` (see
/// `MemOp::direct`: an ESP below 4 makes a push's address fall below the
/// view, in its guard, and the slow path runs it).
fn at_esp(d: i64) -> MemoryOperand {
    MemoryOperand::new(Register::R15, Register::R12, 1, d, if d == 0 { 0 } else { 1 }, false, Register::None)
}

/// `lea r12d, [r12 + d]`: moves guest ESP without touching the flags.
fn adjust_esp(d: i64) -> Option<HostBytes> {
    match d {
        -4 => FORMS.with(|f| f.esp_down),
        4 => FORMS.with(|f| f.esp_up),
        _ => esp_plus(d),
    }
}

fn esp_plus(d: i64) -> Option<HostBytes> {
    enc(Instruction::with2(Code::Lea_r32_m, Register::R12D, MemoryOperand::with_base_displ(Register::R12, d)))
}

/// The fixed host instructions the inline forms are made of, encoded once
/// per thread by iced (so they are exactly what encoding them each time
/// gave): a block has a stack operation every few instructions.
struct Forms {
    /// `lea r8d, [r12d - 4]`, `mov r8d, r12d`.
    push_lea: Option<HostBytes>,
    pop_lea: Option<HostBytes>,
    /// `lea r12d, [r12d - 4]`, `lea r12d, [r12d + 4]`.
    esp_down: Option<HostBytes>,
    esp_up: Option<HostBytes>,
    /// By host register number: `mov [r15 + r8], r32` and `mov [r8], r32`.
    store: [[Option<HostBytes>; 2]; 16],
    /// By host register number: `mov r32, [r15 + r8]` and `mov r32, [r8]`.
    load: [[Option<HostBytes>; 2]; 16],
    /// `mov dword [r15 + r8], 0` and `mov dword [r8], 0`: the immediate is
    /// the last four bytes.
    store_imm: [Option<HostBytes>; 2],
    /// The direct forms, by host register number: `mov [r15 + r12 - 4],
    /// r32` (a push) and `mov r32, [r15 + r12]` (a pop); and `mov dword
    /// [r15 + r12 - 4], 0` (a push of an immediate, the last four bytes).
    push_direct: [Option<HostBytes>; 16],
    pop_direct: [Option<HostBytes>; 16],
    push_imm_direct: Option<HostBytes>,
}

/// The 32-bit general registers, in register-number order.
const GPR32: [Register; 16] = [
    Register::EAX,
    Register::ECX,
    Register::EDX,
    Register::EBX,
    Register::ESP,
    Register::EBP,
    Register::ESI,
    Register::EDI,
    Register::R8D,
    Register::R9D,
    Register::R10D,
    Register::R11D,
    Register::R12D,
    Register::R13D,
    Register::R14D,
    Register::R15D,
];

impl Forms {
    fn new() -> Forms {
        let both = |f: &dyn Fn(MemoryOperand) -> Option<HostBytes>| [f(phys()), f(host())];
        Forms {
            push_lea: enc(Instruction::with2(
                Code::Lea_r32_m,
                Register::R8D,
                MemoryOperand::with_base_displ(Register::R12D, -4),
            )),
            pop_lea: enc(Instruction::with2(Code::Mov_r32_rm32, Register::R8D, Register::R12D)),
            esp_down: esp_plus(-4),
            esp_up: esp_plus(4),
            store: GPR32.map(|r| both(&|m| enc(Instruction::with2(Code::Mov_rm32_r32, m, r)))),
            load: GPR32.map(|r| both(&|m| enc(Instruction::with2(Code::Mov_r32_rm32, r, m)))),
            store_imm: both(&|m| enc(Instruction::with2(Code::Mov_rm32_imm32, m, 0u32))),
            push_direct: GPR32.map(|r| enc(Instruction::with2(Code::Mov_rm32_r32, at_esp(-4), r))),
            pop_direct: GPR32.map(|r| enc(Instruction::with2(Code::Mov_r32_rm32, r, at_esp(0)))),
            push_imm_direct: enc(Instruction::with2(Code::Mov_rm32_imm32, at_esp(-4), 0u32)),
        }
    }
}

thread_local! {
    static FORMS: Forms = Forms::new();
}

/// `[phys, host]` forms of a register store or load.
fn reg_forms(table: impl Fn(&Forms) -> &[[Option<HostBytes>; 2]; 16], r: Register) -> Option<(HostBytes, HostBytes)> {
    if !r.is_gpr32() {
        return None;
    }
    FORMS.with(|f| {
        let [p, h] = table(f)[r.number()];
        Some((p?, h?))
    })
}

/// A 4-byte store of `src` (a register or an immediate) just below ESP.
fn push_of(code: Code, reg: Option<Register>, imm: u32) -> Option<MemOp> {
    let lea = FORMS.with(|f| f.push_lea)?;
    let (op, op_host, direct) = match (code, reg) {
        (Code::Mov_rm32_r32, Some(r)) => {
            let (op, op_host) = reg_forms(|f| &f.store, r)?;
            (op, op_host, FORMS.with(|f| f.push_direct[r.number()])?)
        }
        (Code::Mov_rm32_imm32, None) => {
            let ([p, h], d) = FORMS.with(|f| (f.store_imm, f.push_imm_direct));
            (p?.with_imm32_at_end(imm), h?.with_imm32_at_end(imm), d?.with_imm32_at_end(imm))
        }
        _ => return None,
    };
    Some(MemOp { lea, op, op_host, direct, len: 4, write: true, site_at: 0 })
}

/// A 4-byte load at ESP into `dst`.
fn pop_into(dst: Register) -> Option<MemOp> {
    let lea = FORMS.with(|f| f.pop_lea)?;
    let (op, op_host) = reg_forms(|f| &f.load, dst)?;
    let direct = FORMS.with(|f| f.pop_direct[dst.number()])?;
    Some(MemOp { lea, op, op_host, direct, len: 4, write: false, site_at: 0 })
}

/// The inline form of `i`, if it has one.
pub fn plan(i: &Instruction) -> Option<StackOp> {
    let reg0 = || regs::map(i.op0_register()).filter(|r| r.is_gpr32());
    match i.code() {
        Code::Push_r32 | Code::Push_rm32 if i.op0_kind() == OpKind::Register => Some(StackOp {
            access: push_of(Code::Mov_rm32_r32, Some(reg0()?), 0)?,
            after: adjust_esp(-4)?,
            then: Then::Continue,
            restore_flags: false,
        }),
        Code::Pushd_imm32 | Code::Pushd_imm8 => Some(StackOp {
            access: push_of(Code::Mov_rm32_imm32, None, i.immediate(0) as u32)?,
            after: adjust_esp(-4)?,
            then: Then::Continue,
            restore_flags: false,
        }),
        Code::Pop_r32 | Code::Pop_rm32 if i.op0_kind() == OpKind::Register && i.op0_register() != Register::ESP => {
            Some(StackOp {
                access: pop_into(reg0()?)?,
                after: adjust_esp(4)?,
                then: Then::Continue,
                restore_flags: false,
            })
        }
        Code::Call_rel32_32 => Some(StackOp {
            access: push_of(Code::Mov_rm32_imm32, None, i.next_ip32())?,
            after: adjust_esp(-4)?,
            then: Then::Call { target: i.near_branch32(), ret: i.next_ip32() },
            restore_flags: true,
        }),
        Code::Retnd | Code::Retnd_imm16 => {
            let extra = if i.code() == Code::Retnd_imm16 { i.immediate16() as i64 } else { 0 };
            Some(StackOp {
                access: pop_into(Register::R9D)?,
                after: adjust_esp(4 + extra)?,
                then: Then::Return,
                restore_flags: true,
            })
        }
        // LEAVE: EBP from [EBP], ESP = EBP + 4 after; nothing changes if
        // the load faults.
        Code::Leaved => {
            let mut after = esp_plus_ebp4()?.to_vec();
            after.extend_from_slice(&enc(Instruction::with2(Code::Mov_r32_rm32, Register::EBP, Register::R9D))?);
            Some(StackOp {
                access: leave_load()?,
                after: HostBytes::try_new(&after)?,
                then: Then::Continue,
                restore_flags: false,
            })
        }
        Code::Jmp_rm32 if i.op0_kind() == OpKind::Memory => Some(StackOp {
            access: target_load(i)?,
            after: HostBytes::default(),
            then: Then::Indirect,
            restore_flags: true,
        }),
        // CALL through a register: the return address pushed, then the
        // register's value into r9d (after ESP moved: not CALL ESP).
        Code::Call_rm32 if i.op0_kind() == OpKind::Register && i.op0_register() != Register::ESP => {
            let target = enc(Instruction::with2(Code::Mov_r32_rm32, Register::R9D, reg0()?))?;
            let mut after = adjust_esp(-4)?.to_vec();
            after.extend_from_slice(&target);
            Some(StackOp {
                access: push_of(Code::Mov_rm32_imm32, None, i.next_ip32())?,
                after: HostBytes::try_new(&after)?,
                then: Then::IndirectCall { ret: i.next_ip32() },
                restore_flags: true,
            })
        }
        _ => None,
    }
}

/// `lea r12d, [rbp + 4]`: LEAVE's new ESP.
fn esp_plus_ebp4() -> Option<HostBytes> {
    enc(Instruction::with2(Code::Lea_r32_m, Register::R12D, MemoryOperand::with_base_displ(Register::RBP, 4)))
}

/// LEAVE's load of `[EBP]` into r9d.
fn leave_load() -> Option<MemOp> {
    Some(MemOp {
        lea: enc(Instruction::with2(Code::Mov_r32_rm32, Register::R8D, Register::EBP))?,
        op: enc(Instruction::with2(Code::Mov_r32_rm32, Register::R9D, phys()))?,
        op_host: enc(Instruction::with2(Code::Mov_r32_rm32, Register::R9D, host()))?,
        direct: enc(Instruction::with2(
            Code::Mov_r32_rm32,
            Register::R9D,
            MemoryOperand::with_base_index(Register::R15, Register::RBP),
        ))?,
        len: 4,
        write: false,
        site_at: 0,
    })
}

/// The load of an indirect branch's memory operand into r9d (`JMP r/m32`,
/// `CALL r/m32`).
fn target_load(i: &Instruction) -> Option<MemOp> {
    memop::load_into_r9(i, Code::Mov_r32_rm32, memop::Forms::Both, None)
}

/// `JMP r32`: `mov r9d, r32` (guest ESP is r12d), for the indirect-branch
/// cache.
pub fn register_jump(i: &Instruction) -> Option<HostBytes> {
    if i.code() != Code::Jmp_rm32 || i.op0_kind() != OpKind::Register {
        return None;
    }
    enc(Instruction::with2(Code::Mov_r32_rm32, Register::R9D, regs::map(i.op0_register())?))
}

/// `CALL m32`, inline: two accesses, each with its own fast path (and a
/// callout for the whole instruction as its slow path). The target is
/// read first, as the CPU does, so a push that faults has changed
/// nothing; it waits in the scratch area's exit EIP (which the indirect
/// jump's miss path writes anyway) across the push, whose fast path
/// clobbers r8–r11.
pub struct CallMem {
    /// Loads the target into r9d.
    pub load: MemOp,
    /// Pushes the return address.
    pub push: MemOp,
    /// ESP moved down after the push.
    pub after: HostBytes,
}

pub fn call_mem(i: &Instruction) -> Option<CallMem> {
    if i.code() != Code::Call_rm32 || i.op0_kind() != OpKind::Memory {
        return None;
    }
    Some(CallMem {
        load: target_load(i)?,
        push: push_of(Code::Mov_rm32_imm32, None, i.next_ip32())?,
        after: adjust_esp(-4)?,
    })
}

/// `PUSH m32`, inline: the value loaded into r9d, parked in the scratch
/// area's exit EIP (`park`, at `Layout::exit_eip`: a fast path's checks
/// clobber r8–r11), then stored below ESP from there. Either access's
/// slow path runs the whole instruction (the load again: it has no side
/// effects) and goes on after it.
pub struct PushMem {
    pub load: MemOp,
    /// The push of the parked value.
    pub push: MemOp,
    /// The push of r9d as the load left it, for the guarded path (whose
    /// load and push touch neither r9 nor the flags).
    pub push_kept: MemOp,
    /// ESP moved down after the push.
    pub after: HostBytes,
}

pub fn push_mem(i: &Instruction, park: i32) -> Option<PushMem> {
    if i.code() != Code::Push_rm32 || i.op0_kind() != OpKind::Memory {
        return None;
    }
    let parked = MemoryOperand::with_base_displ(Register::R14, park as i64);
    let unpark = enc(Instruction::with2(Code::Mov_r32_rm32, Register::R9D, parked))?;
    let push_kept = push_of(Code::Mov_rm32_r32, Some(Register::R9D), 0)?;
    let mut push = push_kept.clone();
    push.op = HostBytes::try_new(&[&unpark[..], &push.op[..]].concat())?;
    push.op_host = HostBytes::try_new(&[&unpark[..], &push.op_host[..]].concat())?;
    push.direct = HostBytes::try_new(&[&unpark[..], &push.direct[..]].concat())?;
    push.site_at = unpark.len() as u8;
    Some(PushMem { load: target_load(i)?, push, push_kept, after: adjust_esp(-4)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::show;
    use iced_x86::{Decoder, DecoderOptions};

    fn plan_of(bytes: &[u8]) -> Option<StackOp> {
        plan(&Decoder::with_ip(32, bytes, 0x1000, DecoderOptions::NONE).decode())
    }

    #[test]
    fn push_and_pop() {
        let p = plan_of(&[0x53]).unwrap(); // push ebx
        assert_eq!(show(&p.access.lea), "lea r8d,[r12d-4]");
        assert_eq!(show(&p.access.op), "mov [r15+r8],ebx");
        // The direct form stores below ESP before ESP moves: a fault (an
        // ESP below 4 lands in the view's guard) leaves ESP as it was.
        assert_eq!(show(&p.access.direct), "mov [r15+r12-4],ebx");
        // ESP's upper half is zero: the 64-bit sum, cut to 32 bits, wraps
        // as the guest's does.
        assert_eq!(show(&p.after), "lea r12d,[r12-4]");
        let p = plan_of(&[0x5e]).unwrap(); // pop esi
        assert_eq!(show(&p.access.op_host), "mov esi,[r8]");
        assert_eq!(show(&p.access.direct), "mov esi,[r15+r12]");
        assert_eq!(show(&p.after), "lea r12d,[r12+4]");
        let p = plan_of(&[0x54]).unwrap(); // push esp: the old value
        assert_eq!(show(&p.access.direct), "mov [r15+r12-4],r12d");
        let p = plan_of(&[0x6a, 0xff]).unwrap(); // push -1
        assert_eq!(show(&p.access.direct), "mov dword ptr [r15+r12-4],0FFFFFFFFh");
        assert!(plan_of(&[0x5c]).is_none()); // pop esp
    }

    #[test]
    fn fixed_forms_are_what_iced_encodes() {
        for r in GPR32 {
            let direct = |code, m| enc(Instruction::with2(code, m, r)).unwrap();
            let (p, h) = reg_forms(|f| &f.store, r).unwrap();
            assert_eq!((p, h), (direct(Code::Mov_rm32_r32, phys()), direct(Code::Mov_rm32_r32, host())));
            let (p, h) = reg_forms(|f| &f.load, r).unwrap();
            let load = |m| enc(Instruction::with2(Code::Mov_r32_rm32, r, m)).unwrap();
            assert_eq!((p, h), (load(phys()), load(host())));
        }
        for imm in [0, 1, 0x7f, 0x80, 0x1234_5678, 0x8000_0000, u32::MAX] {
            let p = push_of(Code::Mov_rm32_imm32, None, imm).unwrap();
            assert_eq!(p.op, enc(Instruction::with2(Code::Mov_rm32_imm32, phys(), imm)).unwrap());
            assert_eq!(p.op_host, enc(Instruction::with2(Code::Mov_rm32_imm32, host(), imm)).unwrap());
        }
        assert_eq!(adjust_esp(-4), esp_plus(-4));
        assert_eq!(adjust_esp(4), esp_plus(4));
        assert!(reg_forms(|f| &f.load, Register::AX).is_none());
    }

    #[test]
    fn call_ret_and_jmp() {
        let p = plan_of(&[0xe8, 0x10, 0, 0, 0]).unwrap(); // call 0x1015
        assert_eq!(show(&p.access.op), "mov dword ptr [r15+r8],1005h");
        assert_eq!(p.then, Then::Call { target: 0x1015, ret: 0x1005 });
        let p = plan_of(&[0xc2, 8, 0]).unwrap(); // ret 8
        assert_eq!(show(&p.access.direct), "mov r9d,[r15+r12]");
        assert_eq!(show(&p.after), "lea r12d,[r12+0Ch]");
        assert_eq!(p.then, Then::Return);
        let p = plan_of(&[0xc9]).unwrap(); // leave
        assert_eq!(show(&p.access.lea), "mov r8d,ebp");
        assert_eq!(show(&p.access.direct), "mov r9d,[r15+rbp]");
        assert_eq!(show(&p.after), "lea r12d,[rbp+4]; mov ebp,r9d");
        let p = push_mem(&Decoder::with_ip(32, &[0xff, 0x70, 0x04], 0, DecoderOptions::NONE).decode(), 0x38).unwrap();
        assert_eq!(show(&p.load.direct), "mov r9d,[r15+rax+4]"); // push dword [eax+4]
        assert_eq!(show(&p.push.op), "mov r9d,[r14+38h]; mov [r15+r8],r9d");
        assert_eq!(show(&p.push.op[p.push.site_at as usize..]), "mov [r15+r8],r9d");
        assert_eq!(show(&p.push.direct), "mov r9d,[r14+38h]; mov [r15+r12-4],r9d");
        let p = plan_of(&[0xff, 0x24, 0x85, 0, 0x30, 0, 0]).unwrap(); // jmp [eax*4+0x3000]
        assert_eq!(show(&p.access.lea), "lea r8d,[eax*4+3000h]");
        assert_eq!(show(&p.access.op), "mov r9d,[r15+r8]");
        // The target into r9d in the direct form too, not into EAX.
        assert_eq!(show(&p.access.direct), "mov r9d,[r15+rax*4+3000h]");
    }
}
