//! Guest CALL and RET as host `call` and `ret` (`Emitter::guest_call`,
//! `guest_ret`): a RET returns into its CALL's return pad with the host's
//! return prediction, and the pad checks the EIP the RET popped; with no
//! host call outstanding it lands in the runtime's `no_pad`. Every way
//! the guest can break the pairing must still run as the interpreter runs
//! it: deep recursion, a callee that rewrites its return address,
//! calls that never return (`call next; pop`), indirect calls through a
//! register and through memory, and a RET on another stack (a context
//! switch). The interpreter is the oracle; the results are also reasoned
//! (below), and bt must make the host calls (few dispatches).

mod common;
use common::guest;

use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::memory::PhysAddr;
use iced_x86::code_asm::*;

const RAM: u32 = 2 << 20;
/// The second stack of the context switch, and where its ESP is kept.
const OTHER_STACK: u32 = 0x2_0000;
const SAVED_ESP: u32 = 0x3_0000;
const TABLE: u32 = 0x3_0010;

/// The addresses the program loads (32-bit code cannot LEA a label):
/// `rewritten`, `twice` and `switch_back`, found by a first pass.
type Addrs = [u32; 3];

fn program(a: &mut CodeAssembler, at: Addrs) -> Result<[CodeLabel; 3], IcedError> {
    let mut fib = a.create_label();
    let mut sum = a.create_label();
    let mut rewrite = a.create_label();
    let mut rewritten = a.create_label();
    let mut twice = a.create_label();
    let mut switch_back = a.create_label();
    let mut done = a.create_label();
    a.mov(esp, 0xf000u32)?;
    a.xor(ebx, ebx)?;
    // Three rounds: a CALL is a host call once its exit is chained, so
    // the first round mostly runs without them.
    a.mov(edi, 3u32)?;
    let mut round = a.create_label();
    a.set_label(&mut round)?;
    // fib(20) = 6765, recursively (21,891 calls, depth 20).
    a.mov(eax, 20u32)?;
    a.call(fib)?;
    a.add(ebx, eax)?;
    // sum(3000) = 4,501,500, 3000 deep.
    a.mov(eax, 3000u32)?;
    a.call(sum)?;
    a.add(ebx, eax)?;
    // A callee that returns elsewhere: EBX += 1 is skipped, += 100 runs.
    a.call(rewrite)?;
    a.add(ebx, 1)?;
    a.set_label(&mut rewritten)?;
    a.add(ebx, 100)?;
    // 3000 calls that never return: `call next; next: pop edx`.
    a.mov(ecx, 3000u32)?;
    let mut again = a.create_label();
    a.set_label(&mut again)?;
    let mut next = a.create_label();
    a.call(next)?;
    a.set_label(&mut next)?;
    a.pop(edx)?;
    a.dec(ecx)?;
    a.jnz(again)?;
    // Through a register and through memory: twice(21) twice = 84.
    a.mov(eax, 21u32)?;
    a.mov(esi, at[1])?;
    a.call(esi)?;
    a.call(dword_ptr(TABLE))?;
    a.add(ebx, eax)?;
    // A RET on another stack: push our resumption point there, switch
    // ESP, RET (the pad of no CALL), then switch back.
    a.mov(dword_ptr(SAVED_ESP), esp)?;
    a.mov(esp, OTHER_STACK)?;
    a.mov(eax, at[2])?;
    a.push(eax)?;
    a.ret()?;
    a.set_label(&mut switch_back)?;
    a.mov(esp, dword_ptr(SAVED_ESP))?;
    a.add(ebx, 1000)?;
    a.dec(edi)?;
    a.jnz(round)?;
    a.jmp(done)?;

    // fib(eax) -> eax
    a.set_label(&mut fib)?;
    let mut small = a.create_label();
    a.cmp(eax, 2)?;
    a.jb(small)?;
    a.push(eax)?;
    a.dec(eax)?;
    a.call(fib)?;
    a.xchg(dword_ptr(esp), eax)?;
    a.sub(eax, 2)?;
    a.call(fib)?;
    a.pop(ecx)?;
    a.add(eax, ecx)?;
    a.set_label(&mut small)?;
    a.ret()?;

    // sum(eax) = eax + sum(eax - 1), sum(0) = 0
    a.set_label(&mut sum)?;
    let mut zero = a.create_label();
    a.test(eax, eax)?;
    a.jz(zero)?;
    a.push(eax)?;
    a.dec(eax)?;
    a.call(sum)?;
    a.pop(ecx)?;
    a.add(eax, ecx)?;
    a.set_label(&mut zero)?;
    a.ret()?;

    a.set_label(&mut rewrite)?;
    a.mov(eax, at[0])?;
    a.mov(dword_ptr(esp), eax)?;
    a.ret()?;

    a.set_label(&mut twice)?;
    a.add(eax, eax)?;
    a.ret()?;

    a.set_label(&mut done)?;
    a.hlt()?;
    Ok([rewritten, twice, switch_back])
}

fn assemble(at: Addrs) -> (Vec<u8>, Addrs) {
    let mut a = CodeAssembler::new(32).expect("assembler");
    let labels = program(&mut a, at).expect("program");
    let r = a
        .assemble_options(u64::from(CODE), iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
        .expect("assemble");
    let found = labels.map(|l| r.label_ip(&l).expect("label") as u32);
    (r.inner.code_buffer, found)
}

fn build() -> bt86::Machine {
    // Constants of a fixed size (MOV r32, imm32): the second pass lays
    // the code out as the first did.
    let (_, at) = assemble([u32::MAX; 3]);
    let (code, again) = assemble(at);
    assert_eq!(at, again);
    let mut m = guest::flat_machine(&code, RAM);
    // The table `call [TABLE]` reads.
    m.ram.write_u32(PhysAddr(TABLE), at[1]);
    m
}

#[test]
fn calls_and_returns_run_as_the_interpreter_runs_them() {
    let limits = Limits { max_insns: Some(5_000_000), ..Limits::default() };
    let (exit, m) = compare_stopped(build, limits, 50, 49_999).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    assert_eq!(m.cpu.gpr[3], 3 * (6765 + 4_501_500 + 100 + 84 + 1000), "EBX as reasoned");
    // The host calls happened: tens of thousands of calls and returns,
    // a few dozen dispatches.
    let mut m = build();
    let (_, stats) = guest::run_bt(&mut m, limits);
    assert!(stats.block_runs < 200, "{stats:?}");
}
