//! Arbitrary bytes as guest code, run under the interpreter and under the
//! translator and compared: the check behind the fuzz target
//! (`fuzz/fuzz_targets/guest_code.rs`, docs/fuzzing.md) and the replay of
//! what it found (`tests/robustness.rs`).
//!
//! Input layout:
//! - bytes 0..2: a seed (u16, little-endian) that picks each IDT vector's
//!   gate kind and its target in the code;
//! - bytes 2..: the guest code, loaded at `CODE`, where execution starts
//!   (in the flat 32-bit ring-0 state `load_flat` sets up). At most
//!   `CODE_LEN` bytes are used; the rest of the `CODE_LEN` window is HLT,
//!   so a guest that runs off its code stops (with interrupts disabled,
//!   HLT ends the run) instead of spending its instructions translating
//!   zeros (`add [eax], al`). The rest of RAM is zero.

use crate::engine::bt::Bt;
use crate::engine::interp::Interp;
use crate::engine::{Exit, Limits};
use crate::loader::load_flat;
use crate::machine::{Machine, MachineConfig};
use crate::memory::PhysAddr;

pub const CODE: u32 = 0x10_0000;
pub const CODE_LEN: usize = 0x1_0000;
const IDT: u32 = 0x2000;
const HLT: u8 = 0xf4;

/// Every run is bounded by these, so no input can hang.
pub const LIMITS: Limits = Limits { max_insns: Some(20_000), timeout: None, max_exceptions: Some(20_000) };

/// xorshift64.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, 0 included).
    pub fn from_seed(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A 2 MiB machine holding `code` at `CODE`, with an IDT whose gates lead
/// back into the code (so faults keep executing it).
pub fn machine(seed: u16, code: &[u8]) -> Machine {
    let cfg = MachineConfig { mem_size: 2 << 20, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("a 2 MiB machine");
    let code = &code[..code.len().min(CODE_LEN)];
    let mut window = vec![HLT; CODE_LEN];
    window[..code.len()].copy_from_slice(code);
    load_flat(&mut m, &window, PhysAddr(CODE)).expect("the code window fits in RAM");
    point_idt(&mut m, &mut Rng::from_seed(u64::from(seed)), code.len().max(1) as u32);
    m
}

/// Points every IDT vector (the IDT at `IDT`) at a random offset below
/// `span` in the code at `CODE`, through an interrupt gate (DPL 0) or a
/// trap gate (DPL 3), so that faults keep executing the code.
pub fn point_idt(m: &mut Machine, rng: &mut Rng, span: u32) {
    for v in 0..256u32 {
        let target = CODE + (rng.next_u64() as u32 % span);
        let lo = (target & 0xffff) | (0x08 << 16);
        // Interrupt gate (DPL 0) or trap gate (DPL 3), present.
        let kind = if rng.next_u64() & 1 == 0 { 0x8e00 } else { 0xef00 };
        let hi = (target & 0xffff_0000) | kind;
        m.ram.write_u32(PhysAddr(IDT + v * 8), lo);
        m.ram.write_u32(PhysAddr(IDT + v * 8 + 4), hi);
    }
    m.cpu.idtr.base = IDT;
    m.cpu.idtr.limit = 0x7ff;
}

/// Runs `data` (seed and code, as above) under the interpreter and under
/// bt; `Ok` with the instructions retired when both end the same way (the
/// same exit, CPU state, retired count and RAM), else what differs.
pub fn bt_matches_interp(data: &[u8]) -> Result<u64, String> {
    let (head, code) = data.split_at(data.len().min(2));
    let seed = u16::from_le_bytes([head.first().copied().unwrap_or(0), head.get(1).copied().unwrap_or(0)]);
    compare(|| machine(seed, code))
}

/// Runs two machines `build` makes, one under the interpreter and one
/// under bt, both within `LIMITS`; `Ok` with the instructions retired when
/// they end the same way (the same exit, CPU state, retired count and
/// RAM), else what differs.
pub fn compare(build: impl Fn() -> Machine) -> Result<u64, String> {
    compare_within(build, LIMITS).map(|(_, m)| m.clock.retired)
}

/// `compare_within(build, limits)` run to its end, then stopped by an
/// instruction limit after each of the first `dense` instructions and
/// every `step`th one after that, so that a deadline falls all through
/// the code; `Ok` with the full run's exit and machine, else where and
/// what differs first.
pub fn compare_stopped(
    build: impl Fn() -> Machine,
    limits: Limits,
    dense: u64,
    step: usize,
) -> Result<(Exit, Machine), String> {
    let (exit, m) = compare_within(&build, limits).map_err(|e| format!("run to its end: {e}"))?;
    let total = m.clock.retired;
    for stop in (1..=dense).chain((dense + 1..total).step_by(step.max(1))) {
        compare_within(&build, Limits { max_insns: Some(stop), ..limits })
            .map_err(|e| format!("stopped after {stop} instructions: {e}"))?;
    }
    Ok((exit, m))
}

/// `compare` within `limits`; `Ok` with the exit and the machine the
/// interpreter left (bt's is the same).
pub fn compare_within(build: impl Fn() -> Machine, limits: Limits) -> Result<(Exit, Machine), String> {
    let mut i = build();
    let exit_i = Interp::new(true).run(&mut i, limits);
    let mut b = build();
    let exit_b = match Bt::new() {
        Ok(mut bt) => bt.run(&mut Interp::new(true), &mut b, limits),
        Err(e) => return Err(format!("no translator: {e}")),
    };
    let ends = |what: &str| {
        format!(
            "{what}: interp {exit_i:?} at {:#x} after {} instructions, bt {exit_b:?} at {:#x} after {}",
            i.cpu.eip, i.clock.retired, b.cpu.eip, b.clock.retired
        )
    };
    if exit_b != exit_i {
        return Err(ends("the exits differ"));
    }
    if b.clock.retired != i.clock.retired {
        return Err(ends("the retired counts differ"));
    }
    if b.cpu != i.cpu {
        // The differing lines of the two states, pretty-printed.
        let (sb, si) = (format!("{:#?}", b.cpu), format!("{:#?}", i.cpu));
        let diff: Vec<String> = sb
            .lines()
            .zip(si.lines())
            .filter(|(x, y)| x != y)
            .take(8)
            .map(|(x, y)| format!("bt {} / interp {}", x.trim(), y.trim()))
            .collect();
        return Err(format!("{}: {}", ends("the CPU states differ"), diff.join("; ")));
    }
    if b.ram.bytes() != i.ram.bytes() {
        let at = b.ram.bytes().iter().zip(i.ram.bytes()).position(|(x, y)| x != y).unwrap_or(0);
        return Err(format!(
            "guest RAM differs first at {at:#x}: bt {:#04x}, interp {:#04x}",
            b.ram.bytes()[at],
            i.ram.bytes()[at]
        ));
    }
    Ok((exit_i, i))
}
