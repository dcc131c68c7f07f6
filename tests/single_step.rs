//! TF single-stepping over REP string instructions: the #DB trap comes
//! after every iteration, not once per instruction, as on hardware and
//! QEMU 7.2 (SDM Vol. 2, REP: a repeated string instruction is
//! interruptible between iterations, its saved EIP then pointing at the
//! instruction itself with ECX as the iterations left it; Vol. 3,
//! "Single-Step Exception Condition": #DB is a trap taken after the
//! instruction — here, after the iteration). The guest is self-checking,
//! so the same image runs under QEMU (when installed: the second test,
//! which is where the table below was confirmed) and under every bt86
//! engine, and must exit with status 0x43 ((0x21 << 1) | 1) everywhere.
//!
//! The guest logs (saved EIP, ECX) at each #DB in a table and compares it
//! with the one the SDM gives, built here:
//!
//! ```text
//!   pushfd; or dword [esp], 0x100; popfd   TF on (no trap after the POPF
//!                                          that sets it)
//!   REP1: rep stosb (ECX = 5)              traps: (REP1, 4) (REP1, 3)
//!                                          (REP1, 2) (REP1, 1) (AFTER1, 0)
//!   AFTER1: ...  TF on again
//!   REP2: rep movsd (ECX = 3)              traps: (REP2, 2) (REP2, 1)
//!                                          (AFTER2, 0)
//!   REP3: rep movsd (ECX = 0)              one trap: (AFTER3, 0)
//! ```
//!
//! The handler clears TF in the saved EFLAGS when the saved EIP is one of
//! the AFTERs, so the code between the cases runs without traps.

mod common;

use common::{multiboot_kernel, run_bt86_kernel, run_qemu_kernel, KERNEL_ENTRY as ENTRY};
use iced_x86::code_asm::*;
use std::path::PathBuf;

const IDT: u32 = 0x2000;
const IDTR: u32 = 0x2800;
const LOG: u32 = 0x3000;
const ENTRIES: u32 = 9;

/// The addresses a first pass finds: REP1..3, AFTER1..3, the handler and
/// the expected table.
#[derive(Clone, Copy, Default, PartialEq, Debug)]
struct Marks {
    rep: [u32; 3],
    after: [u32; 3],
    handler: u32,
    table: u32,
}

fn expected(k: &Marks) -> Vec<u32> {
    let mut t = Vec::new();
    for (case, count) in [(0, 5u32), (1, 3), (2, 0)] {
        for left in (1..count).rev() {
            t.extend([k.rep[case], left]);
        }
        t.extend([k.after[case], 0]);
    }
    assert_eq!(t.len() as u32, 2 * ENTRIES);
    t
}

fn tf_on(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.pushfd()?;
    a.or(dword_ptr(esp), 0x100)?;
    a.popfd()
}

fn program(k: &Marks) -> Result<(Vec<u8>, Marks), IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut rep = [a.create_label(), a.create_label(), a.create_label()];
    let mut after = [a.create_label(), a.create_label(), a.create_label()];
    let mut handler = a.create_label();
    let mut table = a.create_label();
    let mut clear = a.create_label();
    let mut done = a.create_label();
    let mut fail = a.create_label();
    a.mov(esp, 0x9_0000u32)?;
    a.mov(dword_ptr(IDT + 8), (k.handler & 0xffff) | (0x08 << 16))?;
    a.mov(dword_ptr(IDT + 12), (k.handler & 0xffff_0000) | 0x8e00)?;
    a.mov(word_ptr(IDTR), 0x7ff)?;
    a.mov(dword_ptr(IDTR + 2), IDT)?;
    a.lidt(ptr(IDTR))?;
    a.xor(ebx, ebx)?;
    a.cld()?;
    // Case 1: rep stosb, 5 iterations.
    a.mov(edi, 0x3_0000u32)?;
    a.mov(ecx, 5u32)?;
    tf_on(&mut a)?;
    a.set_label(&mut rep[0])?;
    a.rep().stosb()?;
    a.set_label(&mut after[0])?;
    // Case 2: rep movsd, 3 iterations.
    a.mov(esi, 0x3_0000u32)?;
    a.mov(edi, 0x3_1000u32)?;
    a.mov(ecx, 3u32)?;
    tf_on(&mut a)?;
    a.set_label(&mut rep[1])?;
    a.rep().movsd()?;
    a.set_label(&mut after[1])?;
    // Case 3: rep movsd with ECX = 0.
    a.xor(ecx, ecx)?;
    tf_on(&mut a)?;
    a.set_label(&mut rep[2])?;
    a.rep().movsd()?;
    a.set_label(&mut after[2])?;
    // Check: EBX traps, and the log equals the table.
    a.cmp(ebx, ENTRIES)?;
    a.jne(fail)?;
    a.mov(esi, LOG)?;
    a.mov(edi, k.table)?;
    a.mov(ecx, 2 * ENTRIES)?;
    a.repe().cmpsd()?;
    a.jne(fail)?;
    a.mov(al, 0x21)?;
    a.out(0xf4, al)?;
    a.hlt()?;
    a.set_label(&mut fail)?;
    a.mov(al, 0x10)?;
    a.out(0xf4, al)?;
    a.hlt()?;
    // #DB: log (saved EIP, ECX); clear TF after the last iteration of
    // each case (and after too many traps, so a wrong engine ends).
    a.set_label(&mut handler)?;
    a.push(eax)?;
    a.mov(eax, dword_ptr(esp + 4))?;
    a.mov(dword_ptr(ebx * 8 + LOG), eax)?;
    a.mov(dword_ptr(ebx * 8 + LOG + 4), ecx)?;
    a.inc(ebx)?;
    for at in k.after {
        a.cmp(eax, at)?;
        a.je(clear)?;
    }
    a.cmp(ebx, 64u32)?;
    a.jb(done)?;
    a.set_label(&mut clear)?;
    a.and(dword_ptr(esp + 12), !0x100)?;
    a.set_label(&mut done)?;
    a.pop(eax)?;
    a.iretd()?;
    a.set_label(&mut table)?;
    let t: Vec<u8> = expected(k).iter().flat_map(|w| w.to_le_bytes()).collect();
    a.db(&t)?;
    let r = a.assemble_options(u64::from(ENTRY), iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let at = |l: &CodeLabel| r.label_ip(l).map(|x| x as u32);
    let marks = Marks {
        rep: [at(&rep[0])?, at(&rep[1])?, at(&rep[2])?],
        after: [at(&after[0])?, at(&after[1])?, at(&after[2])?],
        handler: at(&handler)?,
        table: at(&table)?,
    };
    Ok((r.inner.code_buffer.clone(), marks))
}

fn image(tag: &str) -> PathBuf {
    // Addresses settle in a few passes (immediates change size with them).
    let mut marks = Marks { rep: [ENTRY; 3], after: [ENTRY; 3], handler: ENTRY, table: ENTRY };
    for _ in 0..4 {
        let (code, found) = program(&marks).expect("assembles");
        if found == marks {
            return multiboot_kernel(tag, &code);
        }
        marks = found;
    }
    panic!("the addresses do not settle");
}

#[test]
fn tf_traps_after_every_rep_iteration_under_every_engine() {
    let k = image("single-step-engines");
    let mut failures = Vec::new();
    for engine in ["interp", "bt", "trap"] {
        let (_, status, err) = run_bt86_kernel(&k, &["--engine", engine, "--max-insns", "100000"]);
        if status != 0x43 {
            failures.push(format!("{engine}: {status} {err}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tf_traps_after_every_rep_iteration_under_qemu() {
    if !common::qemu_available() {
        return;
    }
    let (_, status) = run_qemu_kernel(&image("single-step-qemu"));
    assert_eq!(status, 0x43);
}
