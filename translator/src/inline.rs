//! Inline forms of the simplest sensitive instructions: CLI, STI, PUSHFD
//! and POPFD on the virtual EFLAGS in the guest state, with no callout on
//! the common path (DESIGN §3: "short inline sequences on the virtual CPU
//! state"). PUSHFD and POPFD are stack accesses through the block's
//! memory fast path (`stack_plan`), so only where memory is inline.
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
use crate::memop::{HostBytes, MemOp};
use dynasmrt::{dynasm, x64::X64Relocation, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};
use iced_x86::{Code, Instruction};

/// EFLAGS bits.
const IF: i32 = 0x200;
const TF: i32 = 0x100;
const DF: i32 = 0x400;
/// CF PF AF ZF SF (as LAHF/SAHF see them) and OF.
const SZAPC: i32 = 0xd5;
const OF_SHIFT: i8 = 11;
/// What PUSHF does not copy from EFLAGS (besides the flags in host RFLAGS):
/// RF and VM read as zero.
const RF_VM: u32 = 0x30000;
/// What POPF may always write: the arithmetic flags, TF, DF, NT, AC, ID
/// (`Machine::merge_eflags`); IF and IOPL depend on the privilege.
const POPF_WRITABLE: i32 = 0x8d5 | 0x100 | 0x400 | 0x4000 | 0x40000 | 0x20_0000;
const IOPL: i32 = 0x3000;
/// CR4.TSD: RDTSC is privileged.
const TSD: i8 = 4;

macro_rules! asm {
    ($ops:ident $($t:tt)*) => {
        dynasm!($ops ; .arch x64 $($t)*)
    };
}

/// Whether `i` has an inline form of its own (`emit`).
pub fn has_inline(i: &Instruction, env: &Env) -> bool {
    matches!(i.code(), Code::Cli | Code::Sti) || (i.code() == Code::Rdtsc && env.inline_rdtsc)
}

/// Parks the guest's arithmetic flags in r10 (as `block` does: LAHF and
/// SETO, guest EAX swapped back).
pub(crate) fn park_flags(ops: &mut VecAssembler<X64Relocation>) {
    asm!(ops
        ; mov r10, rax
        ; lahf
        ; seto al
        ; xchg r10, rax
    );
}

/// Puts back the flags `park_flags` parked in r10.
pub(crate) fn unpark_flags(ops: &mut VecAssembler<X64Relocation>) {
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
    if !has_inline(i, env) {
        return None;
    }
    let l = env.layout;
    let slow = ops.new_dynamic_label();
    let cont = ops.new_dynamic_label();
    if i.code() == Code::Rdtsc {
        rdtsc(ops, env, index, len, slow, cont);
        return Some((slow, cont));
    }
    let allowed = ops.new_dynamic_label();
    park_flags(ops);
    // Protected mode and CPL > IOPL: #GP (no VME/PVI on this CPU). The
    // guest state is at r8 (r13 holds the budget in translated code).
    asm!(ops
        ; mov r8, [r14 + l.state]
        ; test BYTE [r8 + l.cr0], 1
        ; jz =>allowed
        ; mov r11d, [r8 + l.eflags]
        ; shr r11d, 12
        ; and r11d, 3
        ; movzx r9d, BYTE [r8 + l.cpl]
        ; cmp r9d, r11d
        ; ja =>slow
        ; =>allowed
    );
    if i.code() == Code::Cli {
        asm!(ops ; and DWORD [r8 + l.eflags], !IF);
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
        ; test DWORD [r8 + l.eflags], IF
        ; jnz =>was_set
        ; or DWORD [r8 + l.eflags], IF
        ; lea r11, [r13 + rest]
        ; mov [r14 + l.shadow_at], r11
        ; =>was_set
        ; cmp BYTE [r14 + l.irq_pending], 0
        ; jne =>leave
    );
    unpark_flags(ops);
    asm!(ops ; jmp =>cont ; =>leave);
    unpark_flags(ops);
    leave_after(ops, env, i, rest);
    asm!(ops ; =>cont);
    Some((slow, cont))
}

/// RDTSC. The counter is virtual time (`Machine::tsc`: retired
/// instructions, idle time, the offset WRMSR set), and the retired count
/// is in the budget: instruction `index` of a block of `len` reads
/// `tsc_base - r13 + index - len`, where the runtime keeps
/// `Layout::tsc_base` for the code running now (`bt::callout::tsc_base`).
/// CR4.TSD at CPL > 0 is #GP: the slow path (the callout raises it).
///
/// ```text
///   park flags in r10; r8 = guest state
///   CR4.TSD and CPL > 0? ──yes──► slow path
///   r9 = [r14 + tsc_base] - r13 + (index - len); r11 = r9 >> 32
///   put the flags back; EAX = r9d, EDX = r11d
/// ```
fn rdtsc(
    ops: &mut VecAssembler<X64Relocation>,
    env: &Env,
    index: u32,
    len: u32,
    slow: DynamicLabel,
    cont: DynamicLabel,
) {
    let l = env.layout;
    let allowed = ops.new_dynamic_label();
    park_flags(ops);
    asm!(ops
        ; mov r8, [r14 + l.state]
        ; test BYTE [r8 + l.cr4], TSD
        ; jz =>allowed
        ; cmp BYTE [r8 + l.cpl], 0
        ; jne =>slow
        ; =>allowed
        ; mov r9, [r14 + l.tsc_base]
        ; sub r9, r13
        ; add r9, index as i32 - len as i32
        ; mov r11, r9
        ; shr r11, 32
    );
    unpark_flags(ops);
    asm!(ops
        ; mov eax, r9d
        ; mov edx, r11d
        ; =>cont
    );
}

/// Refunds the `rest` instructions of the block after `i` and leaves to
/// the dispatcher at the next EIP (flags untouched).
fn leave_after(ops: &mut VecAssembler<X64Relocation>, env: &Env, i: &Instruction, rest: i32) {
    let l = env.layout;
    if rest > 0 {
        asm!(ops ; lea r13, [r13 + rest]);
    }
    asm!(ops
        ; mov DWORD [r14 + l.exit_eip], i.next_ip32() as i32
        ; mov r11, QWORD env.exit as i64
        ; jmp r11
    );
}

fn bytes(ops: VecAssembler<X64Relocation>) -> Option<Vec<u8>> {
    ops.finalize().ok()
}

/// Leaves translated code right after instruction `index` of a block of
/// `len` when r11 is non-zero, without touching the flags: refunds the
/// instructions after it and exits to the dispatcher at the next EIP.
/// Guest ECX is parked in r10 around the JRCXZ.
fn leave_if_r11(ops: &mut VecAssembler<X64Relocation>, env: &Env, i: &Instruction, index: u32, len: u32) {
    let rest = len.saturating_sub(index + 1) as i32;
    let stay = ops.new_dynamic_label();
    asm!(ops
        ; mov r10, rcx
        ; mov rcx, r11
        ; jrcxz =>stay
        ; mov rcx, r10
    );
    leave_after(ops, env, i, rest);
    asm!(ops
        ; =>stay
        ; mov rcx, r10
    );
}

/// The value PUSHFD stores, into r11d: EFLAGS from the guest state with
/// the arithmetic flags and DF from host RFLAGS, RF and VM clear. Host
/// flags are the guest's before and after; r9 and r10 are clobbered.
fn pushf_value(ops: &mut VecAssembler<X64Relocation>, env: &Env) {
    let l = env.layout;
    asm!(ops
        ; mov r9, rax
        ; lahf
        ; seto al
        ; xchg r9, rax
        ; pushfq
        ; pop r10
        ; and r10d, DF
        ; mov r11, [r14 + l.state]
        ; mov r11d, [r11 + l.eflags]
        ; and r11d, !(crate::ARITH_FLAGS | RF_VM) as i32
        ; or r11d, r10d
        ; mov r10d, r9d
        ; shr r10d, 8
        ; and r10d, SZAPC
        ; or r11d, r10d
        ; movzx r10d, r9b
        ; shl r10d, OF_SHIFT
        ; or r11d, r10d
    );
}

/// Puts back the flags `pushf_value` parked in r9.
fn pushf_done(ops: &mut VecAssembler<X64Relocation>) {
    asm!(ops
        ; xchg r9, rax
        ; add al, 0x7f
        ; sahf
        ; mov rax, r9
    );
}

/// POPFD's merge of the popped value in r9d into EFLAGS (the rules of
/// `Machine::merge_eflags`: IOPL at CPL 0 or in real mode, IF when CPL <=
/// IOPL), then ESP += 4, then the arithmetic flags and DF into host
/// RFLAGS. Leaves (`leave_if_r11`) when TF is now set (the interpreter
/// single-steps from here) or IF is set with a request pending (the run
/// loop delivers it here).
fn popf_merge(ops: &mut VecAssembler<X64Relocation>, env: &Env, i: &Instruction, index: u32, len: u32) {
    let l = env.layout;
    let both = ops.new_dynamic_label();
    let merge = ops.new_dynamic_label();
    let no_if = ops.new_dynamic_label();
    let up = ops.new_dynamic_label();
    let df_done = ops.new_dynamic_label();
    // The guest state at r8 (r13 holds the budget in translated code).
    asm!(ops
        ; mov r8, [r14 + l.state]
        ; test BYTE [r8 + l.cr0], 1
        ; jz =>both
        ; movzx r10d, BYTE [r8 + l.cpl]
        ; test r10d, r10d
        ; jz =>both
        ; shl r10d, 12
        ; mov r11d, [r8 + l.eflags]
        ; and r11d, IOPL
        ; cmp r10d, r11d
        ; mov r11d, POPF_WRITABLE
        ; ja =>merge
        ; or r11d, IF
        ; jmp =>merge
        ; =>both
        ; mov r11d, POPF_WRITABLE | IF | IOPL
        ; =>merge
        ; and r9d, r11d
        ; not r11d
        ; and r11d, [r8 + l.eflags]
        ; or r9d, r11d
        ; or r9d, 2
        ; mov [r8 + l.eflags], r9d
        ; lea r12d, [r12 + 4]
        ; xor r11d, r11d
        ; test r9d, TF
        ; setnz r11b
        ; test r9d, IF
        ; jz =>no_if
        ; movzx r8d, BYTE [r14 + l.irq_pending]
        ; or r11d, r8d
        ; =>no_if
        ; test r9d, DF
        ; jz =>up
        ; std
        ; jmp =>df_done
        ; =>up
        ; cld
        ; =>df_done
        ; mov r10, rax
        ; mov eax, r9d
        ; shr eax, OF_SHIFT
        ; and eax, 1
        ; add al, 0x7f
        ; mov eax, r9d
        ; mov ah, al
        ; sahf
        ; mov rax, r10
    );
    leave_if_r11(ops, env, i, index, len);
}

/// PUSHFD and POPFD (32-bit stack, which every memory mode with inline
/// access guarantees) as one stack access through the block's memory fast
/// path: the access, and the host code run after it on the fast path only.
/// The block restores the guest flags into host RFLAGS before the access
/// (`op` runs with them there) and calls out for the whole instruction on
/// the slow path.
pub fn stack_plan(i: &Instruction, env: &Env, index: u32, len: u32) -> Option<(MemOp, Vec<u8>)> {
    let mut lea = VecAssembler::<X64Relocation>::new(0);
    let mut op = VecAssembler::<X64Relocation>::new(0);
    let mut op_host = VecAssembler::<X64Relocation>::new(0);
    let mut after = VecAssembler::<X64Relocation>::new(0);
    let write = match i.code() {
        Code::Pushfd => {
            asm!(lea ; lea r8d, [r12 - 4]);
            // A probe store first, before anything clobbers a flag or a
            // register: in the guest view (`MemPath::Guarded`) the access
            // that may fault must be the first instruction of `op`.
            asm!(op ; mov DWORD [r15 + r8], 0);
            pushf_value(&mut op, env);
            asm!(op ; mov [r15 + r8], r11d);
            pushf_done(&mut op);
            pushf_value(&mut op_host, env);
            asm!(op_host ; mov [r8], r11d);
            pushf_done(&mut op_host);
            asm!(after ; lea r12d, [r12 - 4]);
            true
        }
        Code::Popfd => {
            asm!(lea ; mov r8d, r12d);
            asm!(op ; mov r9d, [r15 + r8]);
            popf_merge(&mut op, env, i, index, len);
            asm!(op_host ; mov r9d, [r8]);
            popf_merge(&mut op_host, env, i, index, len);
            false
        }
        _ => return None,
    };
    let host = |v: Vec<u8>| HostBytes::try_new(&v);
    let access = MemOp {
        lea: host(bytes(lea)?)?,
        op: host(bytes(op)?)?,
        op_host: host(bytes(op_host)?)?,
        direct: HostBytes::default(),
        len: 4,
        write,
        site_at: 0,
    };
    Some((access, bytes(after)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::MemPath;
    use crate::testutil::show;
    use crate::Layout;
    use iced_x86::{Decoder, DecoderOptions};

    fn env() -> Env {
        let layout = Layout { eip: 0x20, eflags: 0x24, ..Layout::detached() };
        Env {
            layout,
            exit: 0x5000,
            callout: 0x6000,
            mem: MemPath::Physical { ram_size: 1 << 20 },
            trap_sites: false,
            inline_sensitive: true,
            loops: true,
            fs_gs: Default::default(),
            inline_rdtsc: false,
            cross_page: false,
            host_calls: false,
            gs_view: false,
        }
    }

    fn insn(bytes: &[u8]) -> Instruction {
        Decoder::with_ip(32, bytes, 0x1000, DecoderOptions::NONE).decode()
    }

    fn emitted(bytes: &[u8]) -> Option<String> {
        let mut ops = VecAssembler::<X64Relocation>::new(0);
        let (slow, cont) = emit(&mut ops, &env(), &insn(bytes), 0, 1)?;
        // Where the block would put the slow path.
        asm!(ops ; =>slow ; jmp =>cont);
        Some(show(&ops.finalize().unwrap()))
    }

    #[test]
    fn cli_and_sti_change_if_in_the_guest_state() {
        let cli = emitted(&[0xfa]).unwrap();
        assert!(cli.contains("and dword ptr [r8+24h],0FFFFFDFFh"), "{cli}");
        assert!(cli.contains("mov r8,[r14+30h]"), "{cli}");
        assert!(cli.contains("movzx r9d,byte ptr [r8+140h]"), "{cli}");
        let sti = emitted(&[0xfb]).unwrap();
        assert!(sti.contains("or dword ptr [r8+24h],200h"), "{sti}");
        assert!(sti.contains("mov [r14+58h],r11"), "{sti}");
        assert!(sti.contains("cmp byte ptr [r14+60h],0"), "{sti}");
        assert!(!sti.contains("(bad)"), "{sti}");
        assert!(emitted(&[0x90]).is_none());
        assert!(emitted(&[0x9c]).is_none()); // pushfd: a stack access
    }

    #[test]
    fn pushfd_and_popfd_go_through_the_stack() {
        let (push, after) = stack_plan(&insn(&[0x9c]), &env(), 0, 1).unwrap();
        assert!(push.write);
        assert_eq!(show(&push.lea), "lea r8d,[r12-4]");
        assert!(show(&push.op).contains("mov [r15+r8],r11d"));
        assert!(show(&push.op_host).contains("mov [r8],r11d"));
        assert_eq!(show(&after), "lea r12d,[r12-4]");
        let (pop, after) = stack_plan(&insn(&[0x9d]), &env(), 0, 1).unwrap();
        assert!(!pop.write);
        let op = show(&pop.op);
        assert!(op.starts_with("mov r9d,[r15+r8]"), "{op}");
        assert!(op.contains("mov [r8+24h],r9d"), "{op}");
        assert!(op.contains("lea r12d,[r12+4]"), "{op}");
        assert!(op.contains("jrcxz"), "{op}");
        assert!(after.is_empty());
        // 16-bit forms stay callouts.
        assert!(stack_plan(&insn(&[0x66, 0x9c]), &env(), 0, 1).is_none());
        assert!(stack_plan(&insn(&[0xfa]), &env(), 0, 1).is_none());
    }
}
