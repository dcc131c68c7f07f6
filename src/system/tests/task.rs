//! Hardware task switches (SDM Vol. 3 §7.3, Table 7-2 for busy/NT/link).

use super::*;
use crate::cpu::Exception;
use crate::machine::Fatal;
use crate::system::task::tss;
use crate::system::EventKind;

const TSS_C: u32 = 0x3200;

/// Writes a ring-0 task into the TSS at `base`: flat segments, EIP and
/// ESP given, EAX..EDI = 0xa0..0xa7 (ESP excepted).
fn task(m: &mut Machine, base: u32, eip: u32, esp: u32) {
    wr32(m, base + tss::EIP, eip);
    wr32(m, base + tss::EFLAGS, flags::FIXED1 | flags::CF);
    for i in 0..8 {
        wr32(m, base + tss::GPR + 4 * i, if i == 4 { esp } else { 0xa0 + i });
    }
    for (s, sel) in [(0, 0x10), (1, 0x08), (2, 0x10), (3, 0x10), (4, 0), (5, 0x10)] {
        wr32(m, base + tss::SEG + 4 * s, sel);
    }
    wr32(m, base + tss::LDT, 0);
}

fn busy(m: &Machine, sel: u16) -> bool {
    gdt_raw(m, sel) >> 41 & 1 != 0
}

/// The machine, task A running at EIP 0x1_0000 with EBX = 0x55, and task
/// B ready at 0x2_0000 on stack 0x6_0000.
fn two_tasks() -> Machine {
    let mut m = machine();
    m.cpu.gpr[reg::EBX] = 0x55;
    task(&mut m, TSS_B, 0x2_0000, 0x6_0000);
    m
}

#[test]
fn jmp_to_a_tss_saves_the_old_task_and_loads_the_new() {
    let mut m = two_tasks();
    m.cpu.eip = 0x1_0007; // the instruction after the JMP
    m.far_jmp(0x30, 0).unwrap();
    // Old task saved in TSS A, not busy any more.
    assert_eq!(rd32(&m, TSS_A + tss::EIP), 0x1_0007);
    assert_eq!(rd32(&m, TSS_A + tss::GPR + 12), 0x55);
    assert_eq!(rd32(&m, TSS_A + tss::SEG + 4), 0x08);
    assert!(!busy(&m, 0x28));
    // New task running, busy, not nested, CR0.TS set.
    assert!(busy(&m, 0x30));
    assert_eq!(m.cpu.tr.selector, 0x30);
    assert_eq!((m.cpu.eip, m.cpu.gpr[reg::ESP], m.cpu.gpr[reg::EBX]), (0x2_0000, 0x6_0000, 0xa3));
    assert_eq!(m.cpu.eflags, flags::FIXED1 | flags::CF);
    assert_ne!(m.cpu.cr0 & cr0::TS, 0);
    assert_eq!(m.cpu.seg(Seg::Cs).limit, 0xffff_ffff);
    assert_eq!(m.cpu.seg(Seg::Fs).attr, 0);
    assert_eq!(rd32(&m, TSS_B + tss::LINK), 0);
}

#[test]
fn call_through_a_task_gate_nests_and_iret_returns() {
    let mut m = two_tasks();
    set_gdt(&mut m, 0x58, gate(0x30, 0, 0x85, 0));
    m.cpu.eip = 0x1_0007;
    m.far_call(0x58, 0, 4, 0x1_0007).unwrap();
    assert_eq!(m.cpu.tr.selector, 0x30);
    assert!(busy(&m, 0x28) && busy(&m, 0x30));
    assert_eq!(rd32(&m, TSS_B + tss::LINK) & 0xffff, 0x28);
    assert_ne!(m.cpu.eflags & flags::NT, 0);
    // IRET with NT: back to A; B is no longer busy and saved without NT.
    m.cpu.eip = 0x2_0010;
    m.iret(4).unwrap();
    assert_eq!(m.cpu.tr.selector, 0x28);
    assert!(busy(&m, 0x28) && !busy(&m, 0x30));
    assert_eq!((m.cpu.eip, m.cpu.gpr[reg::EBX]), (0x1_0007, 0x55));
    assert_eq!(rd32(&m, TSS_B + tss::EIP), 0x2_0010);
    assert_eq!(rd32(&m, TSS_B + tss::EFLAGS) & flags::NT, 0);
}

#[test]
fn task_switch_checks_fail_without_changing_anything() {
    let mut m = two_tasks();
    let before = m.cpu.clone();
    // Limit below 0x67: #TS(new TSS).
    set_gdt(&mut m, 0x30, desc(TSS_B, 0x66, 0x89, 0));
    assert_eq!(m.far_jmp(0x30, 0), Err(Exception::InvalidTss(0x30)));
    // Busy: #GP(TSS). DPL 0 from ring 3: #GP(TSS). Not present: #NP.
    set_gdt(&mut m, 0x30, desc(TSS_B, 0x67, 0x8b, 0));
    assert_eq!(m.far_jmp(0x30, 0), Err(Exception::GeneralProtection(0x30)));
    set_gdt(&mut m, 0x30, desc(TSS_B, 0x67, 0x09, 0));
    assert_eq!(m.far_call(0x30, 0, 4, 0), Err(Exception::SegmentNotPresent(0x30)));
    // A task gate naming a busy TSS: #GP(TSS selector).
    set_gdt(&mut m, 0x58, gate(0x28, 0, 0x85, 0));
    assert_eq!(m.far_jmp(0x58, 0), Err(Exception::GeneralProtection(0x28)));
    assert_eq!(m.cpu, before);
    assert!(busy(&m, 0x28));
    set_gdt(&mut m, 0x30, desc(TSS_B, 0x67, 0x89, 0));
    ring3(&mut m);
    assert_eq!(m.far_jmp(0x30, 0), Err(Exception::GeneralProtection(0x30)));
}

#[test]
fn exception_through_an_idt_task_gate_pushes_its_error_code() {
    let mut m = two_tasks();
    set_idt(&mut m, 13, gate(0x30, 0, 0x85, 0));
    m.raise(Exception::GeneralProtection(0x1234), 0x1_0000);
    assert_eq!(m.fatal, None);
    assert_eq!(m.cpu.tr.selector, 0x30);
    assert_eq!(m.cpu.gpr[reg::ESP], 0x6_0000 - 4);
    assert_eq!(rd32(&m, 0x6_0000 - 4), 0x1234);
    assert_eq!(rd32(&m, TSS_A + tss::EIP), 0x1_0000);
    assert_eq!(rd32(&m, TSS_B + tss::LINK) & 0xffff, 0x28);
}

#[test]
fn double_fault_through_a_task_gate_recovers_from_a_bad_stack() {
    // The classic idiom: ESP is garbage, so a page fault's delivery
    // faults again; #DF goes through a task gate to a task with a good
    // stack instead of triple-faulting.
    let mut m = two_tasks();
    set_idt(&mut m, 14, gate(0x08, 0x4000, 0x8e, 0));
    set_idt(&mut m, 8, gate(0x30, 0, 0x85, 0));
    force(&mut m, Seg::Ss, 0x40);
    m.cpu.gpr[reg::ESP] = 4;
    m.raise(Exception::PageFault { addr: 0x1234, code: 2 }, 0x1_0000);
    assert_eq!(m.fatal, None);
    assert_eq!(m.cpu.tr.selector, 0x30);
    assert_eq!((m.cpu.eip, m.cpu.gpr[reg::ESP]), (0x2_0000, 0x6_0000 - 4));
    assert_eq!(rd32(&m, 0x6_0000 - 4), 0);
    assert_eq!(rd32(&m, TSS_A + tss::GPR + 16), 4);
}

#[test]
fn software_int_to_a_task_gate_checks_its_dpl() {
    let mut m = two_tasks();
    set_idt(&mut m, 0x40, gate(0x30, 0, 0x85, 0));
    ring3(&mut m);
    assert_eq!(m.deliver_interrupt(0x40, None, EventKind::Software, 0), Err(Exception::GeneralProtection(0x202)));
    set_idt(&mut m, 0x40, gate(0x30, 0, 0xe5, 0));
    m.deliver_interrupt(0x40, None, EventKind::Software, 0x1_0002).unwrap();
    assert_eq!((m.cpu.tr.selector, m.cpu.cpl), (0x30, 0));
    assert_eq!(rd32(&m, TSS_A + tss::EIP), 0x1_0002);
}

#[test]
fn a_bad_segment_in_the_new_task_faults_in_the_new_task() {
    // Task B's CS is a data segment: #TS(CS) after the commit, handled
    // through the #TS task gate by task C, with B as its back link.
    let mut m = two_tasks();
    wr32(&mut m, TSS_B + tss::SEG + 4, 0x10);
    set_gdt(&mut m, 0x58, desc(TSS_C, 0x67, 0x89, 0));
    task(&mut m, TSS_C, 0x3_0000, 0x5_0000);
    set_idt(&mut m, 10, gate(0x58, 0, 0x85, 0));
    m.far_jmp(0x30, 0).unwrap();
    assert_eq!(m.cpu.tr.selector, 0x58);
    assert_eq!(rd32(&m, 0x5_0000 - 4), 0x10);
    assert_eq!(rd32(&m, TSS_C + tss::LINK) & 0xffff, 0x30);
    assert_eq!(rd32(&m, TSS_B + tss::EIP), 0x2_0000);
    assert!(busy(&m, 0x30) && !busy(&m, 0x28));
}

#[test]
fn task_switch_reloads_cr3_and_the_ldt() {
    let mut m = two_tasks();
    paging(&mut m, 0x20_0000, &[]);
    paging(&mut m, 0x22_0000, &[]);
    m.cpu.cr3 = 0x20_0000;
    wr32(&mut m, TSS_B + tss::CR3, 0x22_0000);
    // An LDT at 0x4000 holding one ring-0 data segment based at 0x1234.
    set_gdt(&mut m, 0x60, desc(0x4000, 0xf, 0x82, 0));
    wr32(&mut m, 0x4008, desc(0x1234, 0xffff, 0x92, 0) as u32);
    wr32(&mut m, 0x400c, (desc(0x1234, 0xffff, 0x92, 0) >> 32) as u32);
    wr32(&mut m, TSS_B + tss::LDT, 0x60);
    wr32(&mut m, TSS_B + tss::SEG + 12, 0x0c);
    m.far_jmp(0x30, 0).unwrap();
    assert_eq!(m.cpu.cr3, 0x22_0000);
    assert_eq!((m.cpu.ldtr.selector, m.cpu.ldtr.base), (0x60, 0x4000));
    assert_eq!(m.cpu.seg(Seg::Ds).base, 0x1234);
}

#[test]
fn a_16_bit_tss_is_reported_unsupported() {
    let mut m = two_tasks();
    set_gdt(&mut m, 0x30, desc(TSS_B, 0x2b, 0x81, 0));
    assert_eq!(m.far_jmp(0x30, 0), Err(Exception::InvalidOpcode));
    assert!(matches!(m.fatal, Some(Fatal::Unsupported(_))));
}
