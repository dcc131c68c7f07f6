//! The protection checks of SDM Vol. 2 (CALL, JMP, RET, INT n, IRET, MOV
//! CR) and Vol. 3 §5–6 that the review of `system/` corrected: each test
//! names the rule and the exception the SDM gives.

use super::*;
use crate::cpu::state::cr4;
use crate::cpu::Exception;
use crate::system::EventKind;

/// A machine on the small stack 0x40 (limit 0xfff) with ESP = `esp`.
fn small_stack(esp: u32) -> Machine {
    let mut m = machine();
    force(&mut m, Seg::Ss, 0x40);
    m.cpu.gpr[reg::ESP] = esp;
    m
}

#[test]
fn far_call_overflowing_the_current_stack_is_ss0() {
    // call 0x08:0x2000 with ESP = 2: CALL "IF stack not large enough ...
    // THEN #SS(0)", not the SS selector.
    let mut m = small_stack(2);
    assert_eq!(m.far_call(0x08, 0x2000, 4, 0x1234), Err(Exception::StackFault(0)));
    assert_eq!(m.cpu.gpr[reg::ESP], 2);
}

#[test]
fn far_call_checks_the_stack_before_the_offset() {
    // call 0x38:0x5000 (beyond its 0xfff limit) on a full stack: #SS(0)
    // comes first in CALL's Operation.
    let mut m = small_stack(2);
    assert_eq!(m.far_call(0x38, 0x5000, 4, 0x1234), Err(Exception::StackFault(0)));
    let mut m = machine();
    assert_eq!(m.far_call(0x38, 0x5000, 4, 0x1234), Err(Exception::GP0));
    assert_eq!(m.cpu.gpr[reg::ESP], STACK);
}

#[test]
fn call_gate_to_inner_ring_checks_stack_before_offset() {
    // Ring-3 call through a DPL-3 gate to 0x38:0x5000 (past its limit)
    // with TSS.ESP0 = 8 on the small stack: #SS(new SS), not #GP(0).
    let mut m = machine();
    set_gdt(&mut m, 0x58, gate(0x38, 0x5000, 0xec, 0));
    wr32(&mut m, TSS_A + 4, 8);
    wr32(&mut m, TSS_A + 8, 0x40);
    ring3(&mut m);
    assert_eq!(m.far_call(0x5b, 0, 4, 0x1234), Err(Exception::StackFault(0x40)));
    wr32(&mut m, TSS_A + 4, 0x800);
    assert_eq!(m.far_call(0x5b, 0, 4, 0x1234), Err(Exception::GP0));
    assert_eq!(m.cpu.cpl, 3);
}

#[test]
fn call_gate_to_inner_ring_switches_stacks_and_copies_parameters() {
    // Two dword parameters copied from the ring-3 stack.
    let mut m = machine();
    set_gdt(&mut m, 0x58, gate(0x08, 0x4000, 0xec, 2));
    ring3(&mut m);
    m.cpu.gpr[reg::ESP] = 0x7_0000 - 8;
    wr32(&mut m, 0x7_0000 - 8, 0x1111);
    wr32(&mut m, 0x7_0000 - 4, 0x2222);
    m.far_call(0x5b, 0, 4, 0x1234).unwrap();
    assert_eq!((m.cpu.cpl, m.cpu.eip, m.cpu.seg(Seg::Ss).selector), (0, 0x4000, 0x10));
    let esp = m.cpu.gpr[reg::ESP];
    assert_eq!(esp, KSTACK - 24);
    let frame: Vec<u32> = (0..6).map(|i| rd32(&m, esp + 4 * i)).collect();
    assert_eq!(frame, [0x1234, 0x1b, 0x1111, 0x2222, 0x7_0000 - 8, 0x23]);
}

#[test]
fn jmp_through_call_gate_checks_target_dpl_before_presence() {
    // A DPL-3 gate to the not-present ring-0 code 0x48, jumped to from
    // ring 3: JMP "CALL-GATE" rejects DPL != CPL before the present bit.
    let mut m = machine();
    set_gdt(&mut m, 0x58, gate(0x48, 0, 0xec, 0));
    ring3(&mut m);
    assert_eq!(m.far_jmp(0x5b, 0), Err(Exception::GeneralProtection(0x48)));
    // And a ring-3 target past its limit: DPL check first, then #GP(0).
    set_gdt(&mut m, 0x58, gate(0x50, 0x5000, 0xec, 0));
    assert_eq!(m.far_jmp(0x5b, 0), Err(Exception::GP0));
}

#[test]
fn same_privilege_interrupt_overflow_is_ss_ext() {
    // INTRA-PRIVILEGE-LEVEL-INTERRUPT: "#SS(EXT)", not the SS selector.
    let mut m = small_stack(4);
    set_idt(&mut m, 0x40, gate(0x08, 0x4000, 0x8e, 0));
    assert_eq!(m.deliver_interrupt(0x40, None, EventKind::External, 0), Err(Exception::StackFault(1)));
    assert_eq!(m.deliver_interrupt(0x40, None, EventKind::Software, 0), Err(Exception::StackFault(0)));
    assert_eq!(m.cpu.gpr[reg::ESP], 4);
}

#[test]
fn inner_ring_interrupt_overflow_is_ss_new_selector_with_ext() {
    let mut m = machine();
    set_idt(&mut m, 0x40, gate(0x08, 0x4000, 0x8e, 0));
    wr32(&mut m, TSS_A + 4, 8);
    wr32(&mut m, TSS_A + 8, 0x40);
    ring3(&mut m);
    assert_eq!(m.deliver_interrupt(0x40, None, EventKind::External, 0), Err(Exception::StackFault(0x41)));
    assert_eq!(m.cpu.cpl, 3);
}

#[test]
fn interrupt_offset_past_limit_is_gp_ext_after_the_stack_check() {
    // Gate to 0x38:0x5000 (limit 0xfff): "#GP(EXT)", and only once the
    // stack has room.
    let mut m = machine();
    set_idt(&mut m, 0x40, gate(0x38, 0x5000, 0x8e, 0));
    assert_eq!(m.deliver_interrupt(0x40, None, EventKind::External, 0), Err(Exception::GeneralProtection(1)));
    assert_eq!(m.deliver_interrupt(0x40, None, EventKind::Software, 0), Err(Exception::GP0));
    let mut m = small_stack(4);
    set_idt(&mut m, 0x40, gate(0x38, 0x5000, 0x8e, 0));
    assert_eq!(m.deliver_interrupt(0x40, None, EventKind::External, 0), Err(Exception::StackFault(1)));
}

#[test]
fn page_fault_reading_the_inner_stack_descriptor_stays_a_page_fault() {
    // TSS.SS0 = 0x4000 names a descriptor at linear 0x5000, not mapped.
    let mut m = machine();
    set_idt(&mut m, 0x40, gate(0x08, 0x4000, 0x8e, 0));
    wr32(&mut m, TSS_A + 8, 0x4000);
    paging(&mut m, 0x20_0000, &[0x5000]);
    ring3(&mut m);
    let e = m.deliver_interrupt(0x40, None, EventKind::External, 0).unwrap_err();
    assert!(matches!(e, Exception::PageFault { addr: 0x5000, .. }), "{e}");
}

#[test]
fn lar_propagates_a_page_fault_and_clears_zf_outside_the_table() {
    let mut m = machine();
    paging(&mut m, 0x20_0000, &[0x5000]);
    assert!(matches!(m.query_lar(0x4000), Err(Exception::PageFault { addr: 0x5000, .. })));
    m.cpu.gdtr.limit = 0x5f;
    assert_eq!(m.query_lar(0x4000), Ok(None));
    assert_eq!(m.query_lar(0x08), Ok(Some(0x00c0_9a00)));
}

#[test]
fn retf_to_outer_ring_checks_ss_before_eip() {
    // Stack: EIP 0x5000 (past 0x53's limit), CS 0x53, ESP, SS 0x13 (ring-0
    // data with RPL 3): RETURN-TO-OUTER-PRIVILEGE-LEVEL gives #GP(SS).
    let mut m = machine();
    for (i, v) in [0x5000, 0x53, 0x7_0000, 0x13].iter().enumerate() {
        wr32(&mut m, STACK + 4 * i as u32, *v);
    }
    assert_eq!(m.far_ret(4, 0), Err(Exception::GeneralProtection(0x10)));
    wr32(&mut m, STACK + 12, 0x23);
    assert_eq!(m.far_ret(4, 0), Err(Exception::GP0));
    wr32(&mut m, STACK, 0x800);
    m.far_ret(4, 0).unwrap();
    assert_eq!((m.cpu.cpl, m.cpu.eip, m.cpu.gpr[reg::ESP]), (3, 0x800, 0x7_0000));
    // DS pointed at ring-0 data: nulled on the way out.
    assert_eq!(m.cpu.seg(Seg::Ds).selector, 0);
}

#[test]
fn same_privilege_retf_sets_the_accessed_bit() {
    let mut m = machine();
    set_gdt(&mut m, 0x58, desc(0, 0xfffff, 0x9a, 0xc));
    wr32(&mut m, STACK, 0x800);
    wr32(&mut m, STACK + 4, 0x58);
    m.far_ret(4, 0).unwrap();
    assert_eq!(gdt_raw(&m, 0x58) >> 40 & 1, 1);
    assert_eq!(m.cpu.seg(Seg::Cs).selector, 0x58);
}

#[test]
fn mov_cr_to_a_missing_register_is_ud_even_at_ring_3() {
    let mut m = machine();
    ring3(&mut m);
    assert_eq!(m.read_cr(5), Err(Exception::InvalidOpcode));
    assert_eq!(m.write_cr(1, 0), Err(Exception::InvalidOpcode));
    assert_eq!(m.read_cr(0), Err(Exception::GP0));
    m.cpu.cr4 = cr4::DE;
    assert_eq!(m.read_dr(4), Err(Exception::InvalidOpcode));
    assert_eq!(m.read_dr(7), Err(Exception::GP0));
}

#[test]
fn real_mode_interrupt_leaves_sp_alone_when_a_push_faults() {
    let mut m = machine();
    m.cpu.cr0 = cr0::ET;
    m.cpu.idtr = crate::cpu::TableReg { base: 0, limit: 0x3ff };
    m.cpu.seg[Seg::Ss as usize] = Segment { selector: 0, attr: 0x93, base: 0, limit: 0xfff };
    m.cpu.gpr[reg::ESP] = 4;
    assert_eq!(m.deliver_interrupt(0x10, None, EventKind::Software, 0), Err(Exception::StackFault(0)));
    assert_eq!(m.cpu.gpr[reg::ESP], 4);
}

#[test]
fn descriptor_instructions_are_ud_in_real_mode() {
    let mut m = machine();
    m.cpu.cr0 = cr0::ET;
    assert_eq!(m.lldt(0), Err(Exception::InvalidOpcode));
    assert_eq!(m.ltr(0x30), Err(Exception::InvalidOpcode));
    assert_eq!(m.query_lar(0x08), Err(Exception::InvalidOpcode));
    assert_eq!(m.query_verw(0x10), Err(Exception::InvalidOpcode));
}

#[test]
fn sixteen_bit_interrupt_gate_pushes_words_on_the_inner_stack() {
    // A 286 interrupt gate from ring 3: SS, SP, FLAGS, CS, IP as words,
    // then the #GP error code as a word.
    let mut m = machine();
    set_idt(&mut m, 13, gate(0x08, 0x1_2345, 0x86, 0));
    ring3(&mut m);
    m.cpu.eflags |= flags::IF;
    m.deliver_interrupt(13, Some(0x18), EventKind::Exception, 0x1_0003).unwrap();
    assert_eq!((m.cpu.cpl, m.cpu.eip, m.cpu.gpr[reg::ESP]), (0, 0x2345, KSTACK - 12));
    let words: Vec<u32> = (0..6).map(|i| rd32(&m, KSTACK - 12 + 2 * i) & 0xffff).collect();
    assert_eq!(words, [0x18, 0x0003, 0x1b, flags::FIXED1 | flags::IF, 0x0000, 0x23]);
    assert_eq!(m.cpu.eflags & flags::IF, 0);
}

#[test]
fn interrupt_to_conforming_code_stays_at_the_current_privilege() {
    let mut m = machine();
    set_gdt(&mut m, 0x58, desc(0, 0xfffff, 0x9e, 0xc));
    set_idt(&mut m, 0x40, gate(0x58, 0x4000, 0xee, 0));
    ring3(&mut m);
    m.deliver_interrupt(0x40, None, EventKind::Software, 0x1_0002).unwrap();
    assert_eq!((m.cpu.cpl, m.cpu.seg(Seg::Cs).selector), (3, 0x5b));
    assert_eq!((m.cpu.seg(Seg::Ss).selector, m.cpu.gpr[reg::ESP]), (0x23, 0x7_0000 - 12));
}
