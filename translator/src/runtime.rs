//! The runtime routines every translated block relies on, emitted once at
//! the start of the code buffer:
//!
//! - `enter(state: *mut, scratch: *mut, membase: *mut u8, target: *const u8) -> u64`
//!   (System V): saves the host's callee-saved registers, loads the guest
//!   registers and arithmetic flags, and jumps to `target`;
//! - `exit`: blocks jump here after storing the next EIP; it stores the
//!   guest registers and flags back and returns 0 to the caller of `enter`;
//! - `callout`: blocks `call` it after storing the callout's argument and
//!   index in the scratch area; it stores the guest state, clears DF, calls
//!   the Rust function at `scratch.callout_fn(state, scratch)`, and either
//!   reloads the guest state and returns into the block (result 0) or leaves
//!   through `exit` without storing (the Rust side owns the state then).

use crate::{Layout, ARITH_FLAGS};
use dynasmrt::{dynasm, x64::X64Relocation, DynasmApi, DynasmLabelApi, VecAssembler};

/// Where the routines start, as offsets into the emitted bytes.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub bytes: Vec<u8>,
    pub enter: usize,
    pub exit: usize,
    pub callout: usize,
}

macro_rules! asm {
    ($ops:ident $($t:tt)*) => {
        dynasm!($ops ; .arch x64 $($t)*)
    };
}

/// Stores the guest registers and arithmetic flags into the state at r13.
fn store_guest(ops: &mut VecAssembler<X64Relocation>, l: &Layout) {
    let g = l.gpr;
    asm!(ops
        ; mov [r13 + g], eax
        ; mov [r13 + g + 4], ecx
        ; mov [r13 + g + 8], edx
        ; mov [r13 + g + 12], ebx
        ; mov [r13 + g + 16], r12d
        ; mov [r13 + g + 20], ebp
        ; mov [r13 + g + 24], esi
        ; mov [r13 + g + 28], edi
        ; pushfq
        ; pop rax
        ; and eax, ARITH_FLAGS as i32
        ; mov ecx, [r13 + l.eflags]
        ; and ecx, !ARITH_FLAGS as i32
        ; or eax, ecx
        ; mov [r13 + l.eflags], eax
    );
}

/// Loads the guest arithmetic flags and registers from the state at r13.
fn load_guest(ops: &mut VecAssembler<X64Relocation>, l: &Layout) {
    let g = l.gpr;
    asm!(ops
        ; mov eax, [r13 + l.eflags]
        ; and eax, (ARITH_FLAGS | 2) as i32
        ; push rax
        ; popfq
        ; mov eax, [r13 + g]
        ; mov ecx, [r13 + g + 4]
        ; mov edx, [r13 + g + 8]
        ; mov ebx, [r13 + g + 12]
        ; mov r12d, [r13 + g + 16]
        ; mov ebp, [r13 + g + 20]
        ; mov esi, [r13 + g + 24]
        ; mov edi, [r13 + g + 28]
    );
}

/// Emits the runtime routines for a buffer that starts at host address
/// `base`.
pub fn emit_runtime(base: usize, l: &Layout) -> Result<Runtime, String> {
    let mut ops = VecAssembler::<X64Relocation>::new(base);
    let leave = ops.new_dynamic_label();

    let enter = ops.offset().0;
    asm!(ops
        ; push rbx
        ; push rbp
        ; push r12
        ; push r13
        ; push r14
        ; push r15
        ; sub rsp, 8
        ; mov r13, rdi
        ; mov r14, rsi
        ; mov r15, rdx
        ; mov r11, rcx
    );
    load_guest(&mut ops, l);
    asm!(ops ; jmp r11);

    let exit = ops.offset().0;
    store_guest(&mut ops, l);
    asm!(ops
        ; =>leave
        ; cld
        ; add rsp, 8
        ; pop r15
        ; pop r14
        ; pop r13
        ; pop r12
        ; pop rbp
        ; pop rbx
        ; xor eax, eax
        ; ret
    );

    // Entered by `call` from a block whose stack is 16-byte aligned, so
    // rsp = 8 (mod 16) here.
    let callout = ops.offset().0;
    let back = ops.new_dynamic_label();
    store_guest(&mut ops, l);
    asm!(ops
        ; cld
        ; mov rdi, r13
        ; mov rsi, r14
        ; sub rsp, 8
        ; call QWORD [r14 + l.callout_fn]
        ; add rsp, 8
        ; test rax, rax
        ; jz =>back
        // Leave the block: drop the return address into it.
        ; add rsp, 8
        ; jmp =>leave
        ; =>back
    );
    load_guest(&mut ops, l);
    asm!(ops ; ret);

    let bytes = ops.finalize().map_err(|e| format!("runtime routines: {e:?}"))?;
    Ok(Runtime { bytes, enter, exit, callout })
}
