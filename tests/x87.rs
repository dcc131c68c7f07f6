//! The x87 under every engine, in small hand-written guests whose expected
//! results are worked out from the SDM (Vol. 1 ch. 8) in the comments:
//! exact arithmetic, the instruction and data pointers FNSTENV stores,
//! #NM from CR0.TS and #MF from a pending unmasked exception. (The
//! bit-exact comparison with the real CPU over every instruction and mode
//! is the x87 guest image's, against its native build.)

mod common;
use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::loader::load_flat;
use bt86::memory::PhysAddr;
use bt86::{Machine, MachineConfig};
use common::guest;
use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;

const RAM: u32 = 2 << 20;
const DATA: u32 = 0x2000;
const ENV: u32 = 0x2100;
const IDT: u32 = 0x3000;
const LOG: u32 = 0x2200;

fn machine(code: &[u8]) -> Machine {
    let cfg = MachineConfig { mem_size: RAM, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("machine");
    load_flat(&mut m, code, PhysAddr(CODE)).expect("fits");
    m.ram.write_u32(PhysAddr(DATA), 7);
    m.ram.write_u32(PhysAddr(DATA + 4), 2);
    m.ram.write_u32(PhysAddr(DATA + 8), 0x037b);
    m
}

const LIMITS: Limits = Limits { max_insns: Some(100_000), timeout: None, max_exceptions: Some(10) };

/// fninit; fld1; fild [DATA] (7); fidiv [DATA+4] (7 / 2 = 3.5); faddp
/// (4.5); fstp qword [DATA+16]; fnstenv [ENV]; fnstsw ax; hlt. Returns the
/// code and the address of the FSTP.
fn arithmetic() -> Result<(Vec<u8>, u32), IcedError> {
    arithmetic_with(false)
}

/// `arithmetic`, with paging on first (`paging`: one identity 4 MiB page,
/// so the memory operands go through the linear views under bt).
fn arithmetic_with(paging: bool) -> Result<(Vec<u8>, u32), IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut fstp = a.create_label();
    if paging {
        a.mov(dword_ptr(0x10000), 0x83u32)?; // PDE 0: 4 MiB, present, writable
        guest::paging_on(&mut a, 0x10000)?;
    }
    a.fninit()?;
    a.fld1()?;
    a.fild(dword_ptr(DATA))?;
    a.fidiv(dword_ptr(DATA + 4))?;
    a.faddp(st1, st0)?;
    a.set_label(&mut fstp)?;
    a.fstp(qword_ptr(DATA + 16))?;
    a.fnstenv(ptr(ENV))?;
    a.fnstsw(ax)?;
    a.hlt()?;
    let r = a.assemble_options(u64::from(CODE), BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let at = r.label_ip(&fstp)? as u32;
    Ok((r.inner.code_buffer, at))
}

#[test]
fn exact_arithmetic_and_the_pointers_fnstenv_stores() {
    let (code, fstp) = arithmetic().expect("asm");
    let build = || machine(&code);
    // Under the interpreter, then bt against it at every instruction limit.
    let (exit, m) = compare_stopped(build, LIMITS, 12, 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    let mut got = [0u8; 8];
    m.ram.read_bytes(PhysAddr(DATA + 16), &mut got);
    assert_eq!(f64::from_le_bytes(got), 4.5, "1 + 7 / 2, all exact");
    let env = |k: u32| m.ram.read_u32(PhysAddr(ENV + k));
    // CW as FNINIT left it; SW: no exception (every result exact), TOP 0
    // after two pushes and two pops; all registers empty.
    assert_eq!(env(0) & 0xffff, 0x037f);
    assert_eq!(env(4) & 0xffff, 0);
    assert_eq!(env(8) & 0xffff, 0xffff);
    // The last non-control instruction is the FSTP: FIP its address, FCS
    // the code selector, FOP DD /3 with ModR/M 0x1D ([disp32]): 0x51D;
    // FDP/FDS its operand.
    let code_sel = u32::from(m.cpu.seg[bt86::cpu::Seg::Cs as usize].selector);
    let data_sel = u32::from(m.cpu.seg[bt86::cpu::Seg::Ds as usize].selector);
    assert_eq!(env(12), fstp);
    assert_eq!(env(16), code_sel | (0x51d << 16));
    assert_eq!(env(20), DATA + 16);
    assert_eq!(env(24) & 0xffff, data_sel);
    // FNSTSW AX after FNSTENV: still SW 0.
    assert_eq!(m.cpu.gpr[0] & 0xffff, 0);
}

/// With CR0.TS set an x87 instruction raises #NM; the handler logs its
/// saved EIP, clears TS (CLTS) and returns to run the instruction again.
/// Then with CR0.NE set and ZM clear, 1 / 0 leaves ZE pending, and the
/// next waiting instruction (FWAIT) raises #MF; that handler logs its EIP,
/// clears the exception (FNCLEX) and returns. Then 1 / 0 again, and the
/// next waiting instruction is FABS (which bt runs inline). Returns the
/// code and the addresses of the #NM handler, the #MF handler, the FNINIT,
/// the FWAIT and the FABS.
fn faults() -> Result<(Vec<u8>, [u32; 5]), IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let (mut nm, mut mf, mut init, mut wait) = (a.create_label(), a.create_label(), a.create_label(), a.create_label());
    let mut fabs = a.create_label();
    a.mov(esp, 0xf000u32)?;
    a.mov(edi, LOG)?;
    a.mov(eax, cr0)?;
    a.or(eax, 0x28)?; // TS | NE
    a.mov(cr0, eax)?;
    a.set_label(&mut init)?;
    a.fninit()?; // #NM: TS is set
    a.fldcw(word_ptr(DATA + 8))?; // 0x37b: ZM clear
    a.fld1()?;
    a.fldz()?;
    a.fdivp(st1, st0)?; // 1 / 0: ZE, unmasked, left pending
    a.set_label(&mut wait)?;
    a.wait()?; // #MF
    a.fld1()?;
    a.fldz()?;
    a.fdivp(st1, st0)?; // 1 / 0 again
    a.set_label(&mut fabs)?;
    a.fabs()?; // #MF
    a.fnstsw(ax)?;
    a.hlt()?;
    for (label, vector, clear) in [(&mut nm, 7u32, true), (&mut mf, 16, false)] {
        a.set_label(label)?;
        a.mov(eax, dword_ptr(esp))?;
        a.mov(dword_ptr(edi), eax)?;
        a.mov(dword_ptr(edi + 4), vector)?;
        a.add(edi, 8)?;
        if clear {
            a.clts()?;
        } else {
            a.fnclex()?;
        }
        a.iretd()?;
    }
    let r = a.assemble_options(u64::from(CODE), BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let at = [r.label_ip(&nm)?, r.label_ip(&mf)?, r.label_ip(&init)?, r.label_ip(&wait)?, r.label_ip(&fabs)?]
        .map(|v| v as u32);
    Ok((r.inner.code_buffer, at))
}

#[test]
fn nm_from_cr0_ts_and_mf_at_the_next_waiting_instruction() {
    let (code, [nm, mf, init, wait, fabs]) = faults().expect("asm");
    let build = || {
        let mut m = machine(&code);
        guest::interrupt_gate(&mut m, IDT, 7, nm);
        guest::interrupt_gate(&mut m, IDT, 16, mf);
        m
    };
    let (exit, m) = compare_stopped(build, LIMITS, 30, 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    let log: Vec<u32> = (0..7).map(|k| m.ram.read_u32(PhysAddr(LOG + 4 * k))).collect();
    // #NM is a fault at the FNINIT; #MF a fault at the FWAIT, not at the
    // FDIVP that set ZE, and then at the FABS; nothing else.
    assert_eq!(log, [init, 7, wait, 16, fabs, 16, 0]);
    // FNCLEX cleared the exception flags, SF, ES and B.
    assert_eq!(m.cpu.gpr[0] & 0x80ff, 0);
}

/// With CR0.NE clear a pending exception takes the PC's legacy path: the
/// x87's FERR# drives IRQ 13 (the slave PIC's IR5) and the waiting
/// instructions go on as with IGNNE# (no #MF), the exception still
/// flagged in the status word.
fn legacy() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    a.mov(eax, cr0)?;
    a.and(eax, !0x2ci32)?; // NE, TS and EM clear
    a.mov(cr0, eax)?;
    a.fninit()?;
    a.fldcw(word_ptr(DATA + 8))?; // ZM clear
    a.fld1()?;
    a.fldz()?;
    a.fdivp(st1, st0)?; // 1 / 0: ZE pending
    a.wait()?;
    a.fld1()?;
    a.mov(al, 0x0a)?; // OCW3: read IRR
    a.out(0xa0, al)?;
    a.in_(al, 0xa0)?;
    a.mov(dword_ptr(LOG), eax)?;
    a.fnstsw(ax)?;
    a.mov(dword_ptr(LOG + 4), eax)?;
    a.hlt()?;
    a.assemble(u64::from(CODE))
}

#[test]
fn without_cr0_ne_a_pending_exception_raises_irq13() {
    let code = legacy().expect("asm");
    let build = || machine(&code);
    let (exit, m) = compare_stopped(build, LIMITS, 20, 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever, "no #MF (no IDT here: a fault would triple-fault)");
    assert_eq!(m.ram.read_u32(PhysAddr(LOG)) & 0x20, 0x20, "IRQ 13 requested");
    let sw = m.ram.read_u32(PhysAddr(LOG + 4)) & 0xffff;
    assert_eq!(sw & 0x80bf, 0x8084, "ZE, ES and B still set: {sw:#x}");
}

/// A loop of register-stack x87 arithmetic (no memory operand): under bt
/// it runs as host x87 code in the translation, not as callouts, and ends
/// as under the interpreter. 1000 times: ST(0) = ST(0) * 1.5 - ST(0) / 2
/// + 1 (= ST(0) + 1, exactly, for these values), with FXCH and FABS.
fn register_loop() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut top = a.create_label();
    a.fninit()?;
    a.fldz()?; // the sum
    a.fld1()?;
    a.fld1()?;
    a.faddp(st1, st0)?; // 2
    a.fld1()?;
    a.fdivrp(st1, st0)?; // 1 / 2
    a.mov(ecx, 1000u32)?;
    a.set_label(&mut top)?;
    a.fxch(st0, st1)?; // sum on top, 0.5 below
    a.fld(st0)?;
    a.fmul_2(st0, st2)?; // sum * 0.5
    a.fsubp(st1, st0)?; // sum - sum / 2 = sum / 2
    a.fadd_2(st0, st0)?; // sum
    a.fld1()?;
    a.faddp(st1, st0)?; // sum + 1
    a.fabs()?;
    a.fxch(st0, st1)?;
    a.dec(ecx)?;
    a.jnz(top)?;
    a.fstp(st0)?; // drop 0.5
    a.fistp(dword_ptr(DATA + 32))?;
    a.hlt()?;
    a.assemble(u64::from(CODE))
}

#[test]
fn register_forms_run_inline_under_bt() {
    let code = register_loop().expect("asm");
    let (exit, m) = compare_stopped(|| machine(&code), LIMITS, 20, 397).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    assert_eq!(m.ram.read_u32(PhysAddr(DATA + 32)), 1000, "1000 exact increments");
    let mut m = machine(&code);
    let (exit, stats) = guest::run_bt(&mut m, LIMITS);
    assert_eq!(exit, Exit::HaltForever);
    assert_eq!(m.ram.read_u32(PhysAddr(DATA + 32)), 1000);
    // At most the control instruction (FNINIT) is a callout: the 9000
    // register-form instructions of the loop are not.
    assert!(stats.callout_insns < 10, "{} callouts: {:?}", stats.callout_insns, stats.callouts_by_kind);
}

#[test]
fn memory_forms_with_paging_on() {
    // The same arithmetic through the linear views (bt's guarded path with
    // paging on) as under the interpreter, stopped at every instruction.
    let (code, fstp) = arithmetic_with(true).expect("asm");
    let (exit, m) = compare_stopped(|| machine(&code), LIMITS, 30, 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    let mut got = [0u8; 8];
    m.ram.read_bytes(PhysAddr(DATA + 16), &mut got);
    assert_eq!(f64::from_le_bytes(got), 4.5);
    assert_eq!(m.ram.read_u32(PhysAddr(ENV + 12)), fstp, "FIP");
    assert_eq!(m.ram.read_u32(PhysAddr(ENV + 20)), DATA + 16, "FDP");
}

/// Past the machine's 2 MiB of RAM: reads give all ones, and under bt an
/// access there leaves the inline path for a callout (a view fault).
const PAST_RAM: u32 = 0x30_0000;

/// One straight-line block where bt stores the x87 pointers only where the
/// guest can see them, and where its host FPU loses the guest state
/// midway: an x87 memory operand past RAM (the instruction's own slow
/// path), an integer one (another instruction's), an `out` (a callout),
/// and, with CR0.NE set and ZM clear, 1 / 0 whose #MF comes at the next
/// x87 instruction of the same block, whose handler stores the
/// environment. Returns the code, the #MF handler, the FDIVP and the FABS.
fn pointers_midblock() -> Result<(Vec<u8>, [u32; 3]), IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let (mut mf, mut fdivp, mut fabs) = (a.create_label(), a.create_label(), a.create_label());
    a.mov(esp, 0xf000u32)?;
    a.mov(edi, LOG)?;
    a.mov(eax, cr0)?;
    a.or(eax, 0x20)?; // NE
    a.mov(cr0, eax)?;
    a.fninit()?;
    a.fld1()?;
    a.fild(dword_ptr(DATA))?; // 7
    a.fadd(dword_ptr(PAST_RAM))?; // + NaN (all ones): a QNaN
    a.fstp(dword_ptr(DATA + 0x20))?;
    a.mov(eax, dword_ptr(PAST_RAM + 4))?;
    a.fld1()?;
    a.fnstenv(ptr(ENV))?; // pointers: the FLD1
    a.fld1()?;
    a.out(0x80, al)?;
    a.fldcw(word_ptr(DATA + 8))?; // ZM clear
    a.fld1()?;
    a.fldz()?;
    a.set_label(&mut fdivp)?;
    a.fdivp(st1, st0)?; // ZE pending
    a.set_label(&mut fabs)?;
    a.fabs()?; // #MF: the handler stores the environment (FIP: the FDIVP)
    a.fnstenv(ptr(ENV + 0x20))?;
    a.hlt()?;
    a.set_label(&mut mf)?;
    a.fnstenv(ptr(edi))?;
    a.fnclex()?;
    a.iretd()?;
    let r = a.assemble_options(u64::from(CODE), BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let at = [r.label_ip(&mf)?, r.label_ip(&fdivp)?, r.label_ip(&fabs)?].map(|v| v as u32);
    Ok((r.inner.code_buffer, at))
}

#[test]
fn pointers_where_the_guest_sees_them_in_the_middle_of_a_block() {
    let (code, [mf, fdivp, fabs]) = pointers_midblock().expect("asm");
    let build = || {
        let mut m = machine(&code);
        guest::interrupt_gate(&mut m, IDT, 16, mf);
        m
    };
    // bt against the interpreter, stopped after every instruction.
    let (exit, m) = compare_stopped(build, LIMITS, 40, 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit, Exit::HaltForever);
    let env = |at: u32, k: u32| m.ram.read_u32(PhysAddr(at + k));
    // The #MF handler's FNSTENV: FIP is the FDIVP that left ZE pending
    // (FOP DE F9: 0x6F9), not the FABS the #MF came at; ES and ZE set.
    assert_eq!(env(LOG, 12), fdivp, "FIP at #MF");
    assert_eq!(env(LOG, 16) >> 16, 0x6f9, "FOP at #MF");
    assert_eq!(env(LOG, 4) & 0x84, 0x84, "ES and ZE at #MF");
    // After the handler, the FABS ran: the last pointers are its own
    // (D9 E1: 0x1E1); the data pointer is the last memory operand of a
    // non-control instruction, the FSTP's (FLDCW is a control one).
    assert_eq!(env(ENV + 0x20, 12), fabs, "FIP after the FABS");
    assert_eq!(env(ENV + 0x20, 16) >> 16, 0x1e1, "FOP after the FABS");
    assert_eq!(env(ENV + 0x20, 20), DATA + 0x20, "FDP: the FSTP's operand");
}
