//! REP STOS and REP MOVS at ring 3 whose elements straddle a page boundary
//! into a page the guest may not touch (not present, read-only, or
//! supervisor-only), upwards (DF=0) and downwards (DF=1), with the
//! straddling element first or part-way through the run, under every
//! engine (interp, bt, trap).
//!
//! Expected outcomes, from the SDM (Vol. 1 §7.3.9.2 "Repeated String
//! Operations": a fault is taken at an iteration boundary with ECX, ESI
//! and EDI as that iteration left them; Vol. 3 §4.7 "Page-Fault
//! Exceptions": CR2 is the linear address whose access faulted, the error
//! code has P set for a protection violation, W/R for a write and U/S for
//! an access at CPL 3). An element that straddles two pages is one access:
//! when its second page faults, CR2 is the first byte of that page and
//! nothing of the element is written. When its first page faults, CR2 is
//! the element's own address. QEMU 7.2 agrees on the cases that failed
//! here (`std; rep stosd` and `std; rep movsd` at ring 3 with the first
//! element at B-2): tests/string_pages_qemu.rs runs them as a kernel that
//! sets itself up, under QEMU and every engine (CR2 = B, error codes 6, 7
//! and 7 for STOS into a not-present, read-only and supervisor page, 4
//! and 5 for MOVS from a not-present and a supervisor page, ECX, ESI and
//! EDI unchanged, nothing written).
//!
//! Guest layout (identity-mapped, 2 MiB): pages A (0x20000) and C
//! (0x22000) are user-writable, B (0x21000) between them is the page under
//! test; D (0x30000–0x31fff) is a user-writable destination for REP MOVS.
//! The #PF handler (ring 0) halts with interrupts off, so the run ends
//! with `HaltForever` and the test reads CR2 and the exception frame.

use bt86::cpu::exception::pf;
use bt86::cpu::state::reg::{EBX, ECX, EDI, ESI, ESP};
use bt86::engine::bt::Bt;
use bt86::engine::interp::Interp;
use bt86::engine::{Exit, Limits};
use bt86::loader::load_flat;
use bt86::memory::PhysAddr;
use bt86::{Machine, MachineConfig};
use iced_x86::code_asm::*;

const RAM: u32 = 2 << 20;
const PD: u32 = 0x1000;
const PT: u32 = 0x2000;
const IDT: u32 = 0x3000;
const TSS: u32 = 0x4000;
const GDT: u32 = 0x5000;
const USER_STACK: u32 = 0x7000;
const KERNEL_STACK: u32 = 0x9000;
const CODE: u32 = 0x10000;
const A: u32 = 0x20000;
const B: u32 = 0x21000;
const C: u32 = 0x22000;
const D: u32 = 0x30800;
/// What REP STOS stores, and what A, B and C hold before (distinct bytes).
const PATTERN: u32 = 0x5a5a_5a5a;
const ELEMENT: u32 = 4;
/// Iterations asked for: more than a page's worth of dwords.
const COUNT: u32 = 2000;

/// What the page under test allows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Page {
    NotPresent,
    ReadOnly,
    Supervisor,
}

/// Which operand of which instruction meets page B.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Stos,
    MovsSource,
    MovsDestination,
}

/// Where the straddling element is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum At {
    /// DF=0, the first element at B-2 (its last two bytes in B).
    UpFirst,
    /// DF=0 from A+2: the 1024th element is at B-2.
    UpLater,
    /// DF=1, the first element at B-2 (its last two bytes in B).
    DownFirst,
    /// DF=1 from C+2: the second element is at C-2 (its first two bytes
    /// in B).
    DownLater,
}

impl At {
    fn start(self) -> u32 {
        match self {
            At::UpFirst | At::DownFirst => B - 2,
            At::UpLater => A + 2,
            At::DownLater => C + 2,
        }
    }
    fn down(self) -> bool {
        matches!(self, At::DownFirst | At::DownLater)
    }
    /// Iterations completed before the faulting one.
    fn done(self) -> u32 {
        match self {
            At::UpFirst | At::DownFirst => 0,
            At::UpLater => (B - 2 - (A + 2)) / ELEMENT,
            At::DownLater => 1,
        }
    }
    /// CR2: B when the element's second page faults, else the element's
    /// own (first) address.
    fn cr2(self) -> u32 {
        match self {
            At::DownLater => C - 2,
            _ => B,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Case {
    op: Op,
    at: At,
    page: Page,
}

impl Case {
    fn write(self) -> bool {
        self.op != Op::MovsSource
    }
    /// ESI and EDI at the start.
    fn regs(self) -> (u32, u32) {
        let s = self.at.start();
        match self.op {
            Op::Stos => (0, s),
            Op::MovsSource => (s, D),
            Op::MovsDestination => (D, s),
        }
    }
    fn error_code(self) -> u32 {
        let present = if self.page == Page::NotPresent { 0 } else { pf::PRESENT };
        present | if self.write() { pf::WRITE } else { 0 } | pf::USER
    }
}

/// The guest: ring-0 set-up (GDT, TSS, paging), IRET to ring 3, the
/// string instruction; then the #PF and #GP handlers. Returns the code
/// and the addresses of the string instruction and of the two handlers.
/// `user_at` is the address of the ring-3 code (`CODE` on the first pass, which
/// finds it).
fn program(case: Case, user_at: u32) -> Result<(Vec<u8>, [u32; 4]), IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut user = a.create_label();
    let mut insn = a.create_label();
    let mut pf_handler = a.create_label();
    let mut gp_handler = a.create_label();
    a.mov(esp, KERNEL_STACK)?;
    a.lgdt(ptr(GDT + 0x30))?;
    a.mov(eax, 0x28u32)?;
    a.ltr(ax)?;
    a.mov(eax, PD)?;
    a.mov(cr3, eax)?;
    a.mov(eax, cr0)?;
    a.or(eax, 0x8000_0000u32 as i32)?;
    a.mov(cr0, eax)?;
    // IRET to ring 3 (SS 0x23, CS 0x1b, IF=0).
    a.push(0x23)?;
    a.push(USER_STACK)?;
    a.push(0x2)?;
    a.push(0x1b)?;
    a.push(user_at)?;
    a.iretd()?;
    a.set_label(&mut user)?;
    a.mov(eax, 0x23u32)?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    // Touch the pages the instruction may use, so that under bt they are
    // mapped in the linear view (B read-only when it may be read) and the
    // host's own REP MOVS meets the straddling element.
    for page in [A, C, D & !0xfff, (D & !0xfff) + 0x1000] {
        a.mov(edx, dword_ptr(page))?;
        a.mov(dword_ptr(page), edx)?;
    }
    if case.page == Page::ReadOnly {
        a.mov(edx, dword_ptr(B))?;
    }
    let (esi_v, edi_v) = case.regs();
    a.mov(eax, PATTERN)?;
    a.mov(esi, esi_v)?;
    a.mov(edi, edi_v)?;
    a.mov(ecx, COUNT)?;
    if case.at.down() {
        a.std()?;
    } else {
        a.cld()?;
    }
    a.set_label(&mut insn)?;
    match case.op {
        Op::Stos => a.rep().stosd()?,
        _ => a.rep().movsd()?,
    }
    // Not reached when the instruction faults; HLT at CPL 3 is #GP.
    a.hlt()?;
    a.set_label(&mut pf_handler)?;
    a.mov(ebx, 14u32)?;
    a.hlt()?;
    a.set_label(&mut gp_handler)?;
    a.mov(ebx, 13u32)?;
    a.hlt()?;
    let r = a.assemble_options(u64::from(CODE), iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let at = |l: &CodeLabel| r.label_ip(l).map(|x| x as u32);
    Ok((r.inner.code_buffer.clone(), [at(&user)?, at(&insn)?, at(&pf_handler)?, at(&gp_handler)?]))
}

/// A's, B's and C's bytes before the run: distinct from `PATTERN` and from
/// each other, so a stray copy or store shows; the rest of RAM is zero.
fn initial(addr: u32) -> u8 {
    if (A..C + 0x1000).contains(&addr) {
        (addr.wrapping_mul(7) >> 2) as u8 ^ 0x33
    } else {
        0
    }
}

fn gate(m: &mut Machine, vector: u32, handler: u32) {
    m.ram.write_u32(PhysAddr(IDT + 8 * vector), (handler & 0xffff) | (0x08 << 16));
    m.ram.write_u32(PhysAddr(IDT + 8 * vector + 4), (handler & 0xffff_0000) | 0x8e00);
}

fn build(case: Case) -> (Machine, u32) {
    let (_, [user, ..]) = program(case, CODE).expect("first pass");
    let (code, [user2, insn, pf_handler, gp_handler]) = program(case, user).expect("second pass");
    assert_eq!(user, user2, "the second pass moved the ring-3 code");
    let cfg = MachineConfig { mem_size: RAM, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("machine");
    load_flat(&mut m, &code, PhysAddr(CODE)).expect("fits");
    // GDT: null, ring-0 code and data, ring-3 code and data, the TSS; its
    // pseudo-descriptor at GDT + 0x30.
    let tss_lo = (TSS << 16) | 0x67;
    let tss_hi = ((TSS >> 16) & 0xff) | 0x8900 | (TSS & 0xff00_0000);
    let gdt: [u32; 12] =
        [0, 0, 0xffff, 0x00cf_9a00, 0xffff, 0x00cf_9200, 0xffff, 0x00cf_fa00, 0xffff, 0x00cf_f200, tss_lo, tss_hi];
    for (k, w) in gdt.iter().enumerate() {
        m.ram.write_u32(PhysAddr(GDT + 4 * k as u32), *w);
    }
    m.ram.write_u16(PhysAddr(GDT + 0x30), 0x2f);
    m.ram.write_u32(PhysAddr(GDT + 0x32), GDT);
    m.ram.write_u32(PhysAddr(TSS + 4), KERNEL_STACK);
    m.ram.write_u32(PhysAddr(TSS + 8), 0x10);
    m.ram.write_u16(PhysAddr(TSS + 102), 104);
    gate(&mut m, 13, gp_handler);
    gate(&mut m, 14, pf_handler);
    m.cpu.idtr.base = IDT;
    m.cpu.idtr.limit = 0x7ff;
    // Identity paging, user-writable except page B.
    m.ram.write_u32(PhysAddr(PD), PT | 7);
    for p in 0..(RAM >> 12) {
        let flags = match (p << 12 == B, case.page) {
            (false, _) => 7,
            (true, Page::NotPresent) => 6,
            (true, Page::ReadOnly) => 5,
            (true, Page::Supervisor) => 3,
        };
        m.ram.write_u32(PhysAddr(PT + 4 * p), (p << 12) | flags);
    }
    for addr in A..C + 0x1000 {
        m.ram.write_u8(PhysAddr(addr), initial(addr));
    }
    (m, insn)
}

type Engine = fn(&mut Machine, Limits) -> Exit;

fn interp(m: &mut Machine, limits: Limits) -> Exit {
    Interp::new(true).run(m, limits)
}

fn bt(m: &mut Machine, limits: Limits) -> Exit {
    Bt::new().expect("a translator").run(&mut Interp::new(true), m, limits)
}

fn trap(m: &mut Machine, limits: Limits) -> Exit {
    bt86::engine::trap::run(&mut Interp::new(true), m, limits, true, false, |_| {}).0
}

const ENGINES: [(&str, Engine); 3] = [("interp", interp), ("bt", bt), ("trap", trap)];

/// What the case must leave: the #PF taken at the straddling element with
/// the SDM's CR2 and error code, the registers as the iterations before
/// it left them, the exception frame pointing at the instruction, and in
/// memory exactly the elements before it.
fn check(case: Case, engine: &str, run: Engine) -> Result<(), String> {
    let (mut m, insn) = build(case);
    let limits = Limits { max_insns: Some(100_000), timeout: None, max_exceptions: Some(10) };
    let exit = run(&mut m, limits);
    let regs = m.cpu.gpr;
    let done = case.at.done();
    let step = |x: u32| if case.at.down() { x.wrapping_sub(done * ELEMENT) } else { x.wrapping_add(done * ELEMENT) };
    let (esi0, edi0) = case.regs();
    let frame = |k: u32| m.ram.read_u32(PhysAddr(regs[ESP] + 4 * k));
    let mut wrong = Vec::new();
    let mut expect = |what: &str, got: u32, want: u32| {
        if got != want {
            wrong.push(format!("{what} {got:#x}, expected {want:#x}"));
        }
    };
    expect("handler (EBX)", regs[EBX], 14);
    expect("CR2", m.cpu.cr2, case.at.cr2());
    expect("ESP", regs[ESP], KERNEL_STACK - 24);
    expect("error code", frame(0), case.error_code());
    expect("saved EIP", frame(1), insn);
    expect("saved CS", frame(2), 0x1b);
    expect("ECX", regs[ECX], COUNT - done);
    expect("EDI", regs[EDI], step(edi0));
    if case.op != Op::Stos {
        expect("ESI", regs[ESI], step(esi0));
    }
    // Memory: the elements stored before the fault, nothing else.
    let (dst0, src0) = if case.op == Op::Stos { (edi0, 0) } else { (edi0, esi0) };
    let mut want: Vec<(u32, u8)> = Vec::new();
    for k in 0..done {
        let at = |x: u32| if case.at.down() { x - k * ELEMENT } else { x + k * ELEMENT };
        for b in 0..ELEMENT {
            let v = match case.op {
                Op::Stos => PATTERN.to_le_bytes()[b as usize],
                _ => initial(at(src0) + b),
            };
            want.push((at(dst0) + b, v));
        }
    }
    for addr in (A..C + 0x1000).chain(D - 0x800..D + 0x1800) {
        let expected = want.iter().rev().find(|(a, _)| *a == addr).map_or(initial(addr), |(_, v)| *v);
        let got = m.ram.read_u8(PhysAddr(addr));
        if got != expected {
            wrong.push(format!("byte at {addr:#x} is {got:#04x}, expected {expected:#04x}"));
            break;
        }
    }
    if exit != Exit::HaltForever {
        wrong.push(format!("exit {exit:?}"));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{engine} {case:?}: {}", wrong.join(", ")))
    }
}

fn check_all(op: Op, pages: &[Page]) {
    let mut failures = Vec::new();
    for at in [At::UpFirst, At::UpLater, At::DownFirst, At::DownLater] {
        for &page in pages {
            for (name, run) in ENGINES {
                if let Err(e) = check(Case { op, at, page }, name, run) {
                    failures.push(e);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const ALL: [Page; 3] = [Page::NotPresent, Page::ReadOnly, Page::Supervisor];

#[test]
fn rep_stos_into_a_forbidden_page_faults_and_writes_nothing() {
    check_all(Op::Stos, &ALL);
}

#[test]
fn rep_movs_into_a_forbidden_page_faults_and_writes_nothing() {
    check_all(Op::MovsDestination, &ALL);
}

#[test]
fn rep_movs_from_a_forbidden_page_faults_and_writes_nothing() {
    // A read-only page may be read: only not-present and supervisor pages.
    check_all(Op::MovsSource, &[Page::NotPresent, Page::Supervisor]);
}
