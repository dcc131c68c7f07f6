//! Code running past its CS limit takes #GP(0) at the first instruction
//! that does not lie wholly within the limit (SDM Vol. 3 §5.3), under bt
//! exactly as under the interpreter, in 32-bit and 16-bit code: translated
//! blocks must not run on past the limit.

use bt86::engine::guestcode::{compare_stopped, CODE};
use bt86::engine::{Exit, Limits};
use bt86::loader::entry::GDT_BASE;
use bt86::loader::load_flat;
use bt86::memory::PhysAddr;
use bt86::{Machine, MachineConfig};

/// The code segment's base (selector 0x28) and byte-granular limit.
const SEG_BASE: u32 = CODE + 0x100;
const SEG_LIMIT: u32 = 0x20;
const IDT: u32 = 0x3000;
const HANDLER: u32 = CODE + 0x200;

fn build(big: bool) -> Machine {
    let cfg = MachineConfig { mem_size: 2 << 20, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("machine");
    // jmp far 0x28:0
    load_flat(&mut m, &[0xea, 0, 0, 0, 0, 0x28, 0], PhysAddr(CODE)).expect("fits");
    // Code, D = 1 or 0, byte granular, base SEG_BASE, limit SEG_LIMIT.
    let lo = (SEG_LIMIT & 0xffff) | (SEG_BASE & 0xffff) << 16;
    let hi =
        (SEG_BASE >> 16 & 0xff) | 0x9a << 8 | (SEG_LIMIT & 0xf_0000) | u32::from(big) << 22 | (SEG_BASE & 0xff00_0000);
    m.ram.write_u32(PhysAddr(GDT_BASE + 0x28), lo);
    m.ram.write_u32(PhysAddr(GDT_BASE + 0x2c), hi);
    m.cpu.gdtr.limit = 0x2f;
    // 0x40 one-byte INC (E)AX: 0x21 of them lie within the limit.
    m.ram.bytes_mut()[SEG_BASE as usize..SEG_BASE as usize + 0x40].fill(0x40);
    // #GP through an interrupt gate to a HLT in the flat code segment.
    m.ram.write_u32(PhysAddr(IDT + 8 * 13), (HANDLER & 0xffff) | 0x08 << 16);
    m.ram.write_u32(PhysAddr(IDT + 8 * 13 + 4), (HANDLER & 0xffff_0000) | 0x8e00);
    m.cpu.idtr.base = IDT;
    m.cpu.idtr.limit = 0x7ff;
    m.ram.write_u8(PhysAddr(HANDLER), 0xf4);
    m.cpu.gpr[0] = 0;
    m
}

#[test]
fn running_past_the_cs_limit_faults_at_the_first_instruction_beyond_it() {
    for big in [true, false] {
        let limits = Limits { max_insns: Some(1000), timeout: None, max_exceptions: Some(2) };
        let (exit, m) = compare_stopped(|| build(big), limits, 40, 1)
            .unwrap_or_else(|e| panic!("{} bits: {e}", 16 << u8::from(big)));
        assert_eq!(exit, Exit::HaltForever);
        // Offsets 0..=0x20 ran (0x21 INCs); the one at 0x21 faulted, and
        // the #GP frame holds error code 0, its offset and the selector.
        assert_eq!(m.cpu.gpr[0] & 0xffff, 0x21);
        let esp = m.cpu.gpr[4];
        assert_eq!(m.ram.read_u32(PhysAddr(esp)), 0, "error code");
        assert_eq!(m.ram.read_u32(PhysAddr(esp + 4)), SEG_LIMIT + 1, "saved EIP");
        assert_eq!(m.ram.read_u32(PhysAddr(esp + 8)) & 0xffff, 0x28, "saved CS");
    }
}
