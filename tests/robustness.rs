//! No guest input may crash bt86: random bytes run as guest code (with an
//! IDT whose gates lead back into the random bytes, so faults keep
//! executing garbage), and the decode cache must not change what happens.

use bt86::engine::guestcode::{compare, point_idt, Rng, CODE, CODE_LEN, LIMITS};
use bt86::engine::interp::Interp;
use bt86::engine::Exit;
use bt86::loader::load_flat;
use bt86::machine::{Machine, MachineConfig};
use bt86::memory::PhysAddr;
use std::collections::BTreeMap;

/// A machine whose RAM at CODE holds random bytes and whose IDT sends every
/// vector to a random offset in them.
fn random_machine(seed: u64) -> Machine {
    let mut rng = Rng::from_seed(seed);
    let cfg = MachineConfig { mem_size: 4 << 20, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("machine");
    let code: Vec<u8> = (0..CODE_LEN).map(|_| rng.next_u64() as u8).collect();
    load_flat(&mut m, &code, PhysAddr(CODE)).expect("load");
    point_idt(&mut m, &mut rng, CODE_LEN as u32);
    m
}

fn run(seed: u64, decode_cache: bool) -> (Exit, Machine) {
    let mut m = random_machine(seed);
    let mut e = Interp::new(decode_cache);
    let exit = e.run(&mut m, LIMITS);
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
        match compare(|| random_machine(seed)) {
            Ok(n) => retired += n,
            Err(e) => mismatches.push(format!("seed {seed}: {e}")),
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
