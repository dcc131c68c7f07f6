//! The cases of tests/string_pages.rs that failed before issue 11's fix
//! (`std; rep stosd` / `std; rep movsd` at ring 3 whose first element, at
//! B-2, straddles into a page B the guest may not touch), as a Multiboot
//! kernel that sets itself up, so that QEMU can run it too: QEMU, when
//! installed, and every bt86 engine must print what the SDM gives (the
//! rules are in tests/string_pages.rs).
//!
//! The kernel builds a GDT with ring-3 segments and a TSS, an IDT (#GP and
//! #PF), identity paging of 4 MiB (user-writable but page B), fills pages
//! A..C with 0x33, IRETs to ring 3 and runs the string instruction. The
//! #PF handler prints, one hex dword a line: CR2, the error code, ECX,
//! EDI, ESI, the dword at B-4 (the element's half in page A) and the
//! dwords at D-4 and D (the MOVS destination), then exits with status 1.
//! #GP prints DEAD and exits with status 3.

mod common;

use common::{multiboot_kernel, run_bt86_kernel, run_qemu_kernel, KERNEL_ENTRY};
use iced_x86::code_asm::*;

const PD: u32 = 0x1000;
const PT: u32 = 0x2000;
const IDT: u32 = 0x3000;
const TSS: u32 = 0x4000;
const KERNEL_STACK: u32 = 0x9000;
const USER_STACK: u32 = 0x7000;
const A: u32 = 0x20000;
const B: u32 = 0x21000;
const D: u32 = 0x30800;
const COUNT: u32 = 2000;

#[derive(Clone, Copy, Debug)]
struct Case {
    movs: bool,
    /// Page B's PTE flags: 0 not present, 5 user read-only, 3 supervisor.
    b_flags: u32,
}

impl Case {
    /// ESI and EDI at the start.
    fn regs(self) -> (u32, u32) {
        if self.movs {
            (B - 2, D)
        } else {
            (0, B - 2)
        }
    }
    /// What the handler prints (SDM Vol. 3 §4.7: P for a protection
    /// violation, W/R for a write, U/S at CPL 3; CR2 the first byte of the
    /// page that refused; nothing written, registers as before).
    fn expected(self) -> String {
        let (esi0, edi0) = self.regs();
        let code = u32::from(self.b_flags != 0) | if self.movs { 0 } else { 2 } | 4;
        [B, code, COUNT, edi0, esi0, 0x3333_3333, 0, 0].iter().map(|v| format!("{v:08X}\n")).collect()
    }
}

/// Addresses a first pass finds.
#[derive(Clone, Copy, Default, PartialEq, Debug)]
struct Marks {
    user: u32,
    pf: u32,
    gp: u32,
    gdt: u32,
    gdtr: u32,
    idtr: u32,
}

fn gate(a: &mut CodeAssembler, vector: u32, handler: u32) -> Result<(), IcedError> {
    a.mov(dword_ptr(IDT + 8 * vector), (handler & 0xffff) | (0x08 << 16))?;
    a.mov(dword_ptr(IDT + 8 * vector + 4), (handler & 0xffff_0000) | 0x8e00)
}

/// Prints EAX as eight hex digits and a newline on COM1 (clobbers EAX,
/// EDX; keeps ECX).
fn hex_routine(a: &mut CodeAssembler, hex: &mut CodeLabel) -> Result<(), IcedError> {
    let mut digit = a.create_label();
    let mut numeral = a.create_label();
    a.set_label(hex)?;
    a.push(ecx)?;
    a.mov(ecx, 8u32)?;
    a.mov(dx, 0x3f8u32)?;
    a.set_label(&mut digit)?;
    a.rol(eax, 4)?;
    a.push(eax)?;
    a.and(al, 0xf)?;
    a.add(al, 0x30)?;
    a.cmp(al, 0x3a)?;
    a.jb(numeral)?;
    a.add(al, 7)?;
    a.set_label(&mut numeral)?;
    a.out(dx, al)?;
    a.pop(eax)?;
    a.loop_(digit)?;
    a.mov(al, 0x0a)?;
    a.out(dx, al)?;
    a.pop(ecx)?;
    a.ret()
}

fn program(case: Case, k: &Marks) -> Result<(Vec<u8>, Marks), IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut user = a.create_label();
    let mut pf = a.create_label();
    let mut gp = a.create_label();
    let mut hex = a.create_label();
    let mut fill = a.create_label();
    let mut gdt = a.create_label();
    let mut gdtr = a.create_label();
    let mut idtr = a.create_label();
    a.mov(esp, KERNEL_STACK)?;
    a.lgdt(ptr(k.gdtr))?;
    a.mov(dword_ptr(TSS + 4), KERNEL_STACK)?;
    a.mov(dword_ptr(TSS + 8), 0x10)?;
    a.mov(word_ptr(TSS + 102), 104)?;
    a.mov(eax, 0x28u32)?;
    a.ltr(ax)?;
    gate(&mut a, 13, k.gp)?;
    gate(&mut a, 14, k.pf)?;
    a.lidt(ptr(k.idtr))?;
    // Identity paging of 4 MiB, user-writable, but page B.
    a.mov(dword_ptr(PD), PT | 7)?;
    a.xor(ecx, ecx)?;
    a.set_label(&mut fill)?;
    a.mov(eax, ecx)?;
    a.shl(eax, 12)?;
    a.or(eax, 7)?;
    a.mov(dword_ptr(ecx * 4 + PT), eax)?;
    a.inc(ecx)?;
    a.cmp(ecx, 1024)?;
    a.jb(fill)?;
    a.mov(dword_ptr(PT + (B >> 12) * 4), B | case.b_flags)?;
    // A, B and C hold 0x33; the MOVS destination zeros.
    a.mov(edi, A)?;
    a.mov(ecx, 0x3000u32)?;
    a.mov(al, 0x33)?;
    a.cld()?;
    a.rep().stosb()?;
    a.mov(dword_ptr(D - 4), 0)?;
    a.mov(dword_ptr(D), 0)?;
    a.mov(eax, PD)?;
    a.mov(cr3, eax)?;
    a.mov(eax, cr0)?;
    a.or(eax, 0x8000_0000u32 as i32)?;
    a.mov(cr0, eax)?;
    a.push(0x23)?;
    a.push(USER_STACK)?;
    a.push(0x2)?;
    a.push(0x1b)?;
    a.push(k.user)?;
    a.iretd()?;
    a.set_label(&mut user)?;
    a.mov(eax, 0x23u32)?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    let (esi_v, edi_v) = case.regs();
    a.mov(eax, 0x5a5a_5a5au32)?;
    a.mov(esi, esi_v)?;
    a.mov(edi, edi_v)?;
    a.mov(ecx, COUNT)?;
    a.std()?;
    if case.movs {
        a.rep().movsd()?;
    } else {
        a.rep().stosd()?;
    }
    a.hlt()?;
    a.set_label(&mut pf)?;
    a.mov(ebp, ecx)?;
    a.mov(eax, cr2)?;
    a.call(hex)?;
    a.mov(eax, dword_ptr(esp))?;
    a.call(hex)?;
    a.mov(eax, ebp)?;
    a.call(hex)?;
    a.mov(eax, edi)?;
    a.call(hex)?;
    a.mov(eax, esi)?;
    a.call(hex)?;
    for at in [B - 4, D - 4, D] {
        a.mov(eax, dword_ptr(at))?;
        a.call(hex)?;
    }
    a.mov(al, 0)?;
    a.out(0xf4, al)?;
    a.hlt()?;
    a.set_label(&mut gp)?;
    a.mov(eax, 0xdeadu32)?;
    a.call(hex)?;
    a.mov(al, 1)?;
    a.out(0xf4, al)?;
    a.hlt()?;
    hex_routine(&mut a, &mut hex)?;
    // GDT: null, ring-0 code and data, ring-3 code and data, the TSS.
    a.set_label(&mut gdt)?;
    let tss = [(TSS << 16) | 0x67, ((TSS >> 16) & 0xff) | 0x8900 | (TSS & 0xff00_0000)];
    let words = [0, 0, 0xffff, 0x00cf_9a00, 0xffff, 0x00cf_9200, 0xffff, 0x00cf_fa00, 0xffff, 0x00cf_f200];
    let bytes: Vec<u8> = words.iter().chain(tss.iter()).flat_map(|w| w.to_le_bytes()).collect();
    a.db(&bytes)?;
    a.set_label(&mut gdtr)?;
    a.dw(&[0x2f])?;
    a.dd(&[k.gdt])?;
    a.set_label(&mut idtr)?;
    a.dw(&[0x7ff])?;
    a.dd(&[IDT])?;
    let r =
        a.assemble_options(u64::from(KERNEL_ENTRY), iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let at = |l: &CodeLabel| r.label_ip(l).map(|x| x as u32);
    let marks =
        Marks { user: at(&user)?, pf: at(&pf)?, gp: at(&gp)?, gdt: at(&gdt)?, gdtr: at(&gdtr)?, idtr: at(&idtr)? };
    Ok((r.inner.code_buffer.clone(), marks))
}

fn kernel(case: Case, tag: &str) -> std::path::PathBuf {
    let e = KERNEL_ENTRY;
    let mut marks = Marks { user: e, pf: e, gp: e, gdt: e, gdtr: e, idtr: e };
    for _ in 0..4 {
        let (code, found) = program(case, &marks).expect("assembles");
        if found == marks {
            return multiboot_kernel(tag, &code);
        }
        marks = found;
    }
    panic!("the addresses do not settle");
}

const CASES: [Case; 5] = [
    Case { movs: false, b_flags: 0 },
    Case { movs: false, b_flags: 5 },
    Case { movs: false, b_flags: 3 },
    Case { movs: true, b_flags: 0 },
    Case { movs: true, b_flags: 3 },
];

#[test]
fn straddling_rep_strings_fault_as_the_sdm_says_under_every_engine() {
    let mut failures = Vec::new();
    for (n, case) in CASES.iter().enumerate() {
        let k = kernel(*case, &format!("string-pages-{n}"));
        for engine in ["interp", "bt", "trap"] {
            let (out, status, err) = run_bt86_kernel(&k, &["--engine", engine]);
            let out = String::from_utf8_lossy(&out);
            if status != 1 || out != case.expected() {
                failures.push(format!("{engine} {case:?}: status {status}, printed {out:?} {err}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn straddling_rep_strings_fault_as_the_sdm_says_under_qemu() {
    if !common::qemu_available() {
        return;
    }
    let mut failures = Vec::new();
    for (n, case) in CASES.iter().enumerate() {
        let (out, status) = run_qemu_kernel(&kernel(*case, &format!("string-pages-qemu-{n}")));
        let out = String::from_utf8_lossy(&out);
        if status != 1 || out != case.expected() {
            failures.push(format!("{case:?}: status {status}, printed {out:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
