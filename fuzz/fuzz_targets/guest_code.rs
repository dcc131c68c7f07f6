//! The fuzzer's bytes run as guest code under the binary translator
//! (`--engine bt`) and under the interpreter. bt86 must not crash or hang
//! on any of them, and the translator must end every run exactly as the
//! interpreter does: the same exit, CPU state, retired count and RAM.
//! This is `tests/robustness.rs`'s bt-versus-interp test with the guest
//! chosen by the fuzzer instead of a seed (see docs/fuzzing.md).
//!
//! Input layout:
//! - bytes 0..2: a seed (u16, little-endian) that picks each IDT vector's
//!   gate kind and its target in the code, as `random_machine` does;
//! - bytes 2..: the guest code, loaded at `CODE`, where execution starts
//!   (in the flat 32-bit ring-0 state `load_flat` sets up). At most
//!   `CODE_LEN` bytes are used; the rest of the `CODE_LEN` window is HLT,
//!   so a guest that runs off its code stops (with interrupts disabled,
//!   HLT ends the run) instead of spending its 20,000 instructions on
//!   translating zeros (`add [eax], al`). The rest of RAM is zero.

#![no_main]

use bt86::engine::bt::Bt;
use bt86::engine::interp::Interp;
use bt86::engine::{Exit, Limits};
use bt86::loader::load_flat;
use bt86::machine::{Machine, MachineConfig};
use bt86::memory::PhysAddr;
use libfuzzer_sys::fuzz_target;

const CODE: u32 = 0x10_0000;
const CODE_LEN: usize = 0x1_0000;
const IDT: u32 = 0x2000;
const HLT: u8 = 0xf4;

/// Every run is bounded by these, so no input can hang the fuzzer.
const LIMITS: Limits = Limits { max_insns: Some(20_000), timeout: None, max_exceptions: Some(20_000) };

/// xorshift64, as in tests/robustness.rs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A 2 MiB machine holding `code` at CODE, with an IDT whose gates lead
/// back into the code (so faults keep executing the fuzzer's bytes).
/// tests/robustness.rs uses 4 MiB; half as much halves the page faults
/// and the RAM comparison, a large part of each execution's cost.
fn machine(seed: u16, code: &[u8]) -> Machine {
    let cfg = MachineConfig { mem_size: 2 << 20, realtime: false };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("machine");
    let mut window = vec![HLT; CODE_LEN];
    window[..code.len()].copy_from_slice(code);
    load_flat(&mut m, &window, PhysAddr(CODE)).expect("load");
    let mut rng = Rng(u64::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let span = code.len().max(1) as u32;
    for v in 0..256u32 {
        let target = CODE + (rng.next() as u32 % span);
        let lo = (target & 0xffff) | (0x08 << 16);
        // Interrupt gate (DPL 0) or trap gate (DPL 3), present.
        let kind = if rng.next() & 1 == 0 { 0x8e00 } else { 0xef00 };
        let hi = (target & 0xffff_0000) | kind;
        m.ram.write_u32(PhysAddr(IDT + v * 8), lo);
        m.ram.write_u32(PhysAddr(IDT + v * 8 + 4), hi);
    }
    m.cpu.idtr.base = IDT;
    m.cpu.idtr.limit = 0x7ff;
    m
}

fn run_interp(seed: u16, code: &[u8]) -> (Exit, Machine) {
    let mut m = machine(seed, code);
    let exit = Interp::new(true).run(&mut m, LIMITS);
    (exit, m)
}

fn run_bt(seed: u16, code: &[u8]) -> (Exit, Machine) {
    let mut m = machine(seed, code);
    let mut interp = Interp::new(true);
    let mut bt = Bt::new().expect("translation cache");
    let exit = bt.run(&mut interp, &mut m, LIMITS);
    (exit, m)
}

fuzz_target!(|data: &[u8]| {
    let (head, code) = data.split_at(data.len().min(2));
    let seed = u16::from_le_bytes([head.first().copied().unwrap_or(0), head.get(1).copied().unwrap_or(0)]);
    let code = &code[..code.len().min(CODE_LEN)];

    let (exit_i, i) = run_interp(seed, code);
    let (exit_b, b) = run_bt(seed, code);

    // A difference panics, which libFuzzer reports as a crash and saves.
    let ends = format!(
        "interp {exit_i:?} at {:#x} after {} instructions, bt {exit_b:?} at {:#x} after {}",
        i.cpu.eip, i.clock.retired, b.cpu.eip, b.clock.retired
    );
    assert_eq!(exit_b, exit_i, "the exits differ: {ends}");
    assert_eq!(b.clock.retired, i.clock.retired, "the retired counts differ: {ends}");
    assert_eq!(b.cpu, i.cpu, "the CPU states differ: {ends}");
    // One memcmp; the byte-wise search (slow under coverage) only on a difference.
    if b.ram.bytes() != i.ram.bytes() {
        let at = b.ram.bytes().iter().zip(i.ram.bytes()).position(|(x, y)| x != y).unwrap_or(0);
        panic!("guest RAM differs first at {at:#x}: bt {:#04x}, interp {:#04x}", b.ram.bytes()[at], i.ram.bytes()[at]);
    }
});
