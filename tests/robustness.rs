//! No guest input may crash bt86: random bytes run as guest code (with an
//! IDT whose gates lead back into the random bytes, so faults keep
//! executing garbage), and the decode cache must not change what happens.

use bt86::engine::interp::Interp;
use bt86::engine::{Exit, Limits};
use bt86::loader::load_flat;
use bt86::machine::{Machine, MachineConfig};
use bt86::memory::PhysAddr;
use std::collections::BTreeMap;

const CODE: u32 = 0x10_0000;
const CODE_LEN: u32 = 0x1_0000;
const IDT: u32 = 0x2000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A machine whose RAM at CODE holds random bytes and whose IDT sends every
/// vector to a random offset in them.
fn random_machine(seed: u64) -> Machine {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let cfg = MachineConfig { mem_size: 4 << 20, realtime: false };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("machine");
    let code: Vec<u8> = (0..CODE_LEN).map(|_| rng.next() as u8).collect();
    load_flat(&mut m, &code, PhysAddr(CODE)).expect("load");
    for v in 0..256u32 {
        let target = CODE + (rng.next() as u32 % CODE_LEN);
        let lo = (target & 0xffff) | (0x08 << 16);
        // Interrupt gate or trap gate, DPL 0 or 3, present.
        let kind = if rng.next() & 1 == 0 { 0x8e00 } else { 0xef00 };
        let hi = (target & 0xffff_0000) | kind;
        m.ram.write_u32(PhysAddr(IDT + v * 8), lo);
        m.ram.write_u32(PhysAddr(IDT + v * 8 + 4), hi);
    }
    m.cpu.idtr.base = IDT;
    m.cpu.idtr.limit = 0x7ff;
    m
}

fn run(seed: u64, decode_cache: bool) -> (Exit, Machine) {
    let mut m = random_machine(seed);
    let mut e = Interp::new(decode_cache);
    let exit = e.run(&mut m, Limits { max_insns: Some(20_000), timeout: None, max_exceptions: Some(20_000) });
    (exit, m)
}

fn kind(e: &Exit) -> String {
    match e {
        Exit::Fatal(f) => format!("{f:?}").split('(').next().unwrap_or("").to_string(),
        other => format!("{other:?}").split('(').next().unwrap_or("").to_string(),
    }
}

#[test]
fn random_code_never_crashes_and_the_decode_cache_changes_nothing() {
    let mut outcomes: BTreeMap<String, u32> = BTreeMap::new();
    let mut retired = 0u64;
    for seed in 0..300 {
        let (exit_a, a) = run(seed, true);
        let (exit_b, b) = run(seed, false);
        assert_eq!(exit_a, exit_b, "seed {seed}: the decode cache changed how the run ended");
        assert_eq!(a.cpu, b.cpu, "seed {seed}: the decode cache changed the final CPU state");
        assert_eq!(a.clock.retired, b.clock.retired, "seed {seed}: retired counts differ");
        retired += a.clock.retired;
        *outcomes.entry(kind(&exit_a)).or_default() += 1;
    }
    println!("300 random guests, {retired} instructions retired; outcomes: {outcomes:?}");
    assert!(retired > 300_000, "random code should run a while before stopping");
}

fn run_bt(seed: u64) -> (Exit, Machine) {
    let mut m = random_machine(seed);
    let mut interp = Interp::new(true);
    let mut bt = bt86::engine::bt::Bt::new().expect("translation cache");
    let exit =
        bt.run(&mut interp, &mut m, Limits { max_insns: Some(20_000), timeout: None, max_exceptions: Some(20_000) });
    (exit, m)
}

/// The translator on random code (the fuzz target of docs/translator.md,
/// with a fixed set of seeds; BT86_FUZZ_SEEDS=N runs more): it must never
/// crash and must end every run exactly as the interpreter does, in the
/// same state.
#[test]
fn random_code_runs_the_same_under_bt_and_interp() {
    let mut mismatches = Vec::new();
    let mut retired = 0u64;
    let seeds: u64 = std::env::var("BT86_FUZZ_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    for seed in 0..seeds {
        let (exit_i, i) = run(seed, true);
        let (exit_b, b) = run_bt(seed);
        retired += b.clock.retired;
        if exit_i != exit_b || i.cpu != b.cpu || i.clock.retired != b.clock.retired {
            mismatches.push(format!(
                "seed {seed}: interp {exit_i:?} at {:#x} after {}, bt {exit_b:?} at {:#x} after {}",
                i.cpu.eip, i.clock.retired, b.cpu.eip, b.clock.retired
            ));
        } else if i.ram.bytes() != b.ram.bytes() {
            mismatches.push(format!("seed {seed}: guest RAM differs"));
        }
    }
    println!("{seeds} random guests under bt, {retired} instructions retired, {} mismatches", mismatches.len());
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// What the fuzz target (`fuzz/`, docs/fuzzing.md) found, replayed: each
/// file in fuzz/regressions/guest_code is an input that once made bt and
/// the interpreter end differently.
#[test]
fn fuzz_regressions_run_the_same_under_bt_and_interp() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/guest_code");
    let mut inputs: Vec<_> =
        std::fs::read_dir(&dir).expect("fuzz/regressions/guest_code").map(|e| e.unwrap().path()).collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no regression inputs in {}", dir.display());
    for path in &inputs {
        let data = std::fs::read(path).expect("read a regression input");
        if let Err(e) = bt86::engine::guestcode::bt_matches_interp(&data) {
            panic!("{}: {e}", path.display());
        }
    }
    println!("{} fuzz regression inputs replayed", inputs.len());
}
