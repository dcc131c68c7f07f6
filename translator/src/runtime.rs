//! The runtime routines every translated block relies on, emitted once at
//! the start of the code buffer:
//!
//! - `enter(state: *mut, scratch: *mut, membase: *mut u8, target: *const u8) -> u64`
//!   (System V): saves the host's callee-saved registers and its stack
//!   pointer, switches to translated code's own stack (`Layout::host_stack`,
//!   whose top slot holds `no_pad`), loads the guest registers and
//!   arithmetic flags, and jumps to `target`;
//! - `exit`: blocks jump here after storing the next EIP; it stores the
//!   guest registers and flags back and returns 0 to the caller of `enter`;
//! - `callout`: blocks `call` it after storing the callout's argument and
//!   index in the scratch area; it stores the guest state, clears DF, calls
//!   the Rust function at `scratch.callout_fn(state, scratch)`, and either
//!   reloads the guest state and returns into the block (result 0), leaves
//!   through `exit` without storing (result 1: the Rust side owns the state
//!   then), or continues at the new guest EIP through the indirect-branch
//!   cache (result 2, after an indirect JMP, CALL or RET), or returns into
//!   the block with the stack back at its top (result 3: the outstanding
//!   host calls of guest CALLs forgotten after the MMU flushed);
//! - `no_pad`: where a guest RET's host `ret` lands when no host call is
//!   outstanding;
//! - `ibtc_miss`: what an empty indirect-branch cache entry holds.

use crate::{Layout, ARITH_FLAGS};

/// Entries in the indirect-branch cache (`Layout::ibtc`): host addresses
/// (u64) indexed by the low 16 bits of the guest EIP, each a translation's
/// indirect entry (`block::INDIRECT_ENTRY`), which checks the whole EIP in
/// r9d, or the runtime's `ibtc_miss`.
pub const IBTC_ENTRIES: usize = 1 << 16;
use dynasmrt::{dynasm, x64::X64Relocation, DynasmApi, DynasmLabelApi, VecAssembler};

/// Where the routines start, as offsets into the emitted bytes.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub bytes: Vec<u8>,
    pub enter: usize,
    pub exit: usize,
    pub callout: usize,
    /// What an empty indirect-branch cache entry holds: leaves for the
    /// guest EIP in r9d.
    pub ibtc_miss: usize,
    /// Where a guest RET's host `ret` lands when no host call is
    /// outstanding (the top slot of translated code's stack holds it): it
    /// puts itself back and goes on through the indirect-branch cache.
    pub no_pad: usize,
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

/// Loads the guest arithmetic flags, DF and registers from the state at
/// r13. No POPF (slow): ADD CL,7Fh sets OF from the saved OF bit, SAHF
/// loads SF ZF AF PF CF from the saved low byte, CLD/STD sets DF.
fn load_guest(ops: &mut VecAssembler<X64Relocation>, l: &Layout) {
    let g = l.gpr;
    let up = ops.new_dynamic_label();
    let done = ops.new_dynamic_label();
    asm!(ops
        ; mov eax, [r13 + l.eflags]
        ; test eax, 0x400
        ; jz =>up
        ; std
        ; jmp =>done
        ; =>up
        ; cld
        ; =>done
        ; mov ecx, eax
        ; shr ecx, 11
        ; and ecx, 1
        ; add cl, 0x7f
        ; mov ah, al
        ; sahf
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

/// Loads the guest state from the state at r13 (`load_guest`), then r13 =
/// the scratch budget in its translated-code form (its budget-window
/// address; computed into r9 first, since the addition clobbers RFLAGS).
fn load_guest_and_budget(ops: &mut VecAssembler<X64Relocation>, l: &Layout) {
    asm!(ops
        ; mov r9, [r14 + l.budget]
        ; add r9, [r14 + l.budget_base]
    );
    load_guest(ops, l);
    asm!(ops ; mov r13, r9);
}

/// The scratch budget, stored from r13 (a budget-window address), back to
/// a count; clobbers RFLAGS and r9, so it goes after `store_guest`.
fn budget_from_window(ops: &mut VecAssembler<X64Relocation>, l: &Layout) {
    asm!(ops
        ; mov r9, [r14 + l.budget_base]
        ; sub [r14 + l.budget], r9
    );
}

/// Emits the runtime routines for a buffer that starts at host address
/// `base`.
/// FNSAVE image offsets (SDM Vol. 1 Figure 8-11).
const FIP: i32 = 12;
const FCS: i32 = 16;
const FOP: i32 = 18;
const FDP: i32 = 20;
const FDS: i32 = 24;

/// The routines that put the guest's x87 state into the host FPU
/// (`translator::x87`). An inline x87 instruction first calls the routine
/// at `Layout::x87_load`, which returns r11 = 0 when it may run and 1 when
/// the slow path must (CR0.EM or CR0.TS set, or an exception pending),
/// touching nothing else (flags included):
///
/// - `x87_load`: checks, FRSTOR from the guest state, the guest's
///   pointers into the scratch area, and `x87_ready` in its place;
/// - `x87_ready`: the state is in the host FPU already.
///
/// `save_x87` undoes it wherever translated code gives way to Rust (the
/// exit and callout routines).
fn emit_x87_load(
    ops: &mut VecAssembler<X64Relocation>,
    l: &Layout,
    x87_load: dynasmrt::DynamicLabel,
    x87_ready: dynasmrt::DynamicLabel,
) {
    let blocked = ops.new_dynamic_label();
    let (fpu, p) = (l.fpu, l.x87_ptrs);
    asm!(ops
        ; =>x87_load
        ; pushfq
        ; push rax
        ; mov rax, [r14 + l.state]
        ; test BYTE [rax + l.cr0], 0x0c
        ; jnz =>blocked
        ; test BYTE [rax + fpu + 4], -0x80i8
        ; jnz =>blocked
        ; frstor [rax + fpu]
        ; mov r11d, [rax + fpu + FIP]
        ; mov [r14 + p], r11d
        ; mov r11w, [rax + fpu + FOP]
        ; mov [r14 + p + 4], r11w
        ; mov r11w, [rax + fpu + FDS]
        ; mov [r14 + p + 6], r11w
        ; mov r11d, [rax + fpu + FDP]
        ; mov [r14 + p + 8], r11d
        ; mov r11w, [rax + fpu + FCS]
        ; mov [r14 + p + 12], r11w
        ; mov BYTE [r14 + p + 14], 0
        ; mov BYTE [r14 + p + 15], 0
        ; lea r11, [=>x87_ready]
        ; mov [r14 + l.x87_load], r11
        ; mov r11d, 0
        ; pop rax
        ; popfq
        ; ret
        ; =>blocked
        ; mov r11d, 1
        ; pop rax
        ; popfq
        ; ret
        ; =>x87_ready
        ; mov r11d, 0
        ; ret
    );
}

/// If the host FPU holds the guest's x87 state: FNSAVE it into the guest
/// state (no-wait: a pending exception stays pending), with the guest's
/// pointers over the host's (FCS: the CS of the code that ran, if a
/// non-control x87 instruction did), and mark it unloaded. r13 holds the guest state; clobbers r9 and RFLAGS.
fn save_x87(
    ops: &mut VecAssembler<X64Relocation>,
    l: &Layout,
    x87_load: dynasmrt::DynamicLabel,
    x87_ready: dynasmrt::DynamicLabel,
) {
    let skip = ops.new_dynamic_label();
    let fcs = ops.new_dynamic_label();
    let (fpu, p) = (l.fpu, l.x87_ptrs);
    let code_sel = l.seg_selector + l.seg_size;
    asm!(ops
        ; lea r9, [=>x87_ready]
        ; cmp [r14 + l.x87_load], r9
        ; jne =>skip
        ; fnsave [r13 + fpu]
        ; mov r9d, [r14 + p]
        ; mov [r13 + fpu + FIP], r9d
        ; mov r9w, [r14 + p + 12]
        ; cmp BYTE [r14 + p + 14], 0
        ; je =>fcs
        ; mov r9w, [r13 + code_sel]
        ; =>fcs
        ; mov [r13 + fpu + FCS], r9w
        ; mov r9w, [r14 + p + 4]
        ; mov [r13 + fpu + FOP], r9w
        ; mov r9w, [r14 + p + 6]
        ; mov [r13 + fpu + FDS], r9w
        ; mov r9d, [r14 + p + 8]
        ; mov [r13 + fpu + FDP], r9d
        ; lea r9, [=>x87_load]
        ; mov [r14 + l.x87_load], r9
        ; mov BYTE [r14 + p + 15], 1
        ; =>skip
    );
}

/// The runtime's routines (entry, exit, callout, the indirect-branch
/// cache's miss, the return pads' `no_pad`) for a code buffer at `base`.
/// With `gs_view` the entry also sets the host's GS base to the view's
/// base (WRGSBASE: only where the host lets user code run it).
pub fn emit_runtime(base: usize, l: &Layout, gs_view: bool) -> Result<Runtime, String> {
    let mut ops = VecAssembler::<X64Relocation>::new(base);
    let leave = ops.new_dynamic_label();
    let x87_load = ops.new_dynamic_label();
    let x87_ready = ops.new_dynamic_label();

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
    if gs_view {
        // The host's GS base is the view's (r15): a two-register address
        // is `gs:[base + index*scale + disp]` (`memop::Forms::Gs`).
        let wrgsbase = crate::memop::HostBytes::encode(
            &iced_x86::Instruction::with1(iced_x86::Code::Wrgsbase_r64, iced_x86::Register::R15)
                .map_err(|e| e.to_string())?,
        )
        .ok_or("cannot encode wrgsbase")?;
        ops.extend(wrgsbase.iter().copied());
    }
    asm!(ops
        ; mov [r14 + l.entry_rsp], rsp
        ; mov rsp, [r14 + l.host_stack]
        ; mov [r14 + l.state], r13
        ; lea r9, [=>x87_load]
        ; mov [r14 + l.x87_load], r9
        ; mov BYTE [r14 + l.x87_ptrs + 15], 1
    );
    load_guest_and_budget(&mut ops, l);
    asm!(ops
        ; jmp r11
    );

    // A block leaves: the budget goes back to the scratch area, the EIP
    // its exit stored to the state.
    let exit = ops.offset().0;
    let exit_label = ops.new_dynamic_label();
    asm!(ops
        ; =>exit_label
        ; mov [r14 + l.budget], r13
        ; mov r13, [r14 + l.state]
        ; mov r9d, [r14 + l.exit_eip]
        ; mov [r13 + l.eip], r9d
    );
    store_guest(&mut ops, l);
    save_x87(&mut ops, l, x87_load, x87_ready);
    budget_from_window(&mut ops, l);
    asm!(ops
        ; =>leave
        ; cld
        // Guest CALLs may have left host return addresses (`block`).
        ; mov rsp, [r14 + l.entry_rsp]
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

    // Entered by `call` from a block, at any depth of host calls (guest
    // CALLs run as host calls), so the stack is aligned for the Rust call
    // through rbp (the guest's EBP is in the state by then). The Rust function returns 0 to continue the
    // block, 1 to leave, 2 to continue at the guest EIP it set (an indirect
    // branch): through the indirect-branch cache if it holds that EIP,
    // else by leaving.
    let callout = ops.offset().0;
    let back = ops.new_dynamic_label();
    let leave_block = ops.new_dynamic_label();
    let drop_calls = ops.new_dynamic_label();
    asm!(ops
        ; mov [r14 + l.budget], r13
        ; mov r13, [r14 + l.state]
    );
    store_guest(&mut ops, l);
    save_x87(&mut ops, l, x87_load, x87_ready);
    budget_from_window(&mut ops, l);
    asm!(ops
        ; cld
        ; mov rdi, r13
        ; mov rsi, r14
        ; mov rbp, rsp
        ; and rsp, -16
        ; call QWORD [r14 + l.callout_fn]
        ; mov rsp, rbp
        ; test rax, rax
        ; jz =>back
        ; cmp rax, 3
        ; je =>drop_calls
        ; cmp rax, 2
        ; jne =>leave_block
        ; mov r9d, [r13 + l.eip]
        ; mov [r14 + l.exit_eip], r9d
        ; movzx r11d, r9w
        ; mov r11, [r14 + r11 * 8 + l.ibtc]
        // Into the target block (its indirect entry, or `ibtc_miss`): drop
        // the return address into this one.
        ; add rsp, 8
    );
    load_guest_and_budget(&mut ops, l);
    asm!(ops
        ; mov r9d, [r14 + l.exit_eip]
        ; jmp r11
        ; =>leave_block
        // Leave: drop the return address into the block.
        ; add rsp, 8
        ; jmp =>leave
        ; =>back
    );
    load_guest_and_budget(&mut ops, l);
    asm!(ops
        ; ret
        // Result 3: go on in the block, the host calls outstanding
        // forgotten (their return pads may be for a mapping the MMU
        // dropped): the stack back to its top, the return address kept.
        ; =>drop_calls
        ; mov r11, [rsp]
        ; mov rsp, [r14 + l.host_stack]
        ; push r11
    );
    load_guest_and_budget(&mut ops, l);
    asm!(ops
        ; ret
    );

    // A RET with no host call outstanding: the top slot again, then the
    // indirect-branch cache for the EIP in r9d.
    let no_pad = ops.offset().0;
    asm!(ops
        ; lea rsp, [rsp - 8]
        ; movzx r11d, r9w
        ; jmp QWORD [r14 + r11 * 8 + l.ibtc]
    );

    // An empty indirect-branch cache entry: leave for the EIP in r9d.
    let ibtc_miss = ops.offset().0;
    asm!(ops
        ; mov [r14 + l.exit_eip], r9d
        ; jmp =>exit_label
    );

    emit_x87_load(&mut ops, l, x87_load, x87_ready);

    let bytes = ops.finalize().map_err(|e| format!("runtime routines: {e:?}"))?;
    Ok(Runtime { bytes, enter, exit, callout, ibtc_miss, no_pad })
}
