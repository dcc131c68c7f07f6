//! Inline forms of the simplest sensitive instructions: CLI and STI on the
//! virtual EFLAGS in the guest state, with no callout on the common path
//! (DESIGN §3: "short inline sequences on the virtual CPU state").
//!
//! Only when `Env::inline_sensitive` is set: under `--engine trap` (and
//! any machine with a monitor) these instructions must reach the
//! deprivileged CPU model through the callout, so the runtime leaves the
//! flag off there.
//!
//! ```text
//!   park flags in r10 ──► PE and CPL > IOPL? ──yes──► slow path: the callout
//!                          │ no                       (raises #GP)
//!                          ▼
//!   CLI: clear IF          STI: IF was 0 → set IF, note the shadow
//!                               an interrupt request pending? → leave
//!                               (to the dispatcher, which delivers it)
//! ```
//!
//! **STI's interrupt shadow.** The interpreter ends its block at STI and
//! runs the next instruction alone, in the shadow, before it may deliver
//! an interrupt. When no request is pending (`Layout::irq_pending`, kept
//! by the runtime: only I/O changes it between device deadlines, and the
//! block budget stops at the deadline), nothing is delivered there
//! either, so translated code goes on; it leaves the shadow implicit. The
//! shadow can only be seen if translated code stops before the next
//! instruction retires (the next block cannot cover its charge, or the
//! exit is not chained). So STI records in `Layout::shadow_at` the budget
//! an exit right after it would leave; the runtime sets
//! `CpuState::int_shadow` when translated code exits with exactly that
//! budget (the budget falls with every retired instruction, so no later
//! exit matches), and every callout clears the record (the interpreter's
//! handler clears the shadow as it runs the next instruction).

use crate::block::Env;
use dynasmrt::{dynasm, x64::X64Relocation, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};
use iced_x86::{Code, Instruction};

/// EFLAGS.IF.
const IF: i32 = 0x200;

macro_rules! asm {
    ($ops:ident $($t:tt)*) => {
        dynasm!($ops ; .arch x64 $($t)*)
    };
}

/// Whether `i` has an inline form.
pub fn has_inline(i: &Instruction) -> bool {
    matches!(i.code(), Code::Cli | Code::Sti)
}

/// Parks the guest's arithmetic flags in r10 (as `block` does: LAHF and
/// SETO, guest EAX swapped back).
fn park_flags(ops: &mut VecAssembler<X64Relocation>) {
    asm!(ops
        ; mov r10, rax
        ; lahf
        ; seto al
        ; xchg r10, rax
    );
}

/// Puts back the flags `park_flags` parked in r10.
fn unpark_flags(ops: &mut VecAssembler<X64Relocation>) {
    asm!(ops
        ; xchg r10, rax
        ; add al, 0x7f
        ; sahf
        ; mov rax, r10
    );
}

/// Emits the inline form of `i` (index `index` of a block of `len`).
/// Returns the labels of its slow path, which the caller emits out of
/// line as for a memory access (guest flags parked in r10: put them back,
/// call out, jump to the second label), or `None` if `i` has no inline
/// form.
pub fn emit(
    ops: &mut VecAssembler<X64Relocation>,
    env: &Env,
    i: &Instruction,
    index: u32,
    len: u32,
) -> Option<(DynamicLabel, DynamicLabel)> {
    if !has_inline(i) {
        return None;
    }
    let l = env.layout;
    let slow = ops.new_dynamic_label();
    let cont = ops.new_dynamic_label();
    let allowed = ops.new_dynamic_label();
    park_flags(ops);
    // Protected mode and CPL > IOPL: #GP (no VME/PVI on this CPU).
    asm!(ops
        ; test BYTE [r13 + l.cr0], 1
        ; jz =>allowed
        ; mov r11d, [r13 + l.eflags]
        ; shr r11d, 12
        ; and r11d, 3
        ; movzx r9d, BYTE [r13 + l.cpl]
        ; cmp r9d, r11d
        ; ja =>slow
        ; =>allowed
    );
    if i.code() == Code::Cli {
        asm!(ops ; and DWORD [r13 + l.eflags], !IF);
        unpark_flags(ops);
        asm!(ops ; =>cont);
        return Some((slow, cont));
    }
    // STI. Instructions after it in the block (none when the block was cut
    // as the interpreter cuts it) are refunded if it leaves.
    let rest = len.saturating_sub(index + 1) as i32;
    let was_set = ops.new_dynamic_label();
    let leave = ops.new_dynamic_label();
    asm!(ops
        ; test DWORD [r13 + l.eflags], IF
        ; jnz =>was_set
        ; or DWORD [r13 + l.eflags], IF
        ; mov r11, [r14 + l.budget]
        ; lea r11, [r11 + rest]
        ; mov [r14 + l.shadow_at], r11
        ; =>was_set
        ; cmp BYTE [r14 + l.irq_pending], 0
        ; jne =>leave
    );
    unpark_flags(ops);
    asm!(ops ; jmp =>cont ; =>leave);
    unpark_flags(ops);
    if rest > 0 {
        asm!(ops
            ; mov r9, [r14 + l.budget]
            ; lea r9, [r9 + rest]
            ; mov [r14 + l.budget], r9
        );
    }
    asm!(ops
        ; mov DWORD [r13 + l.eip], i.next_ip32() as i32
        ; mov r11, QWORD env.exit as i64
        ; jmp r11
        ; =>cont
    );
    Some((slow, cont))
}
