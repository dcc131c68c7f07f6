//! `--engine trap`: classical trap-and-emulate on a modelled deprivileged
//! CPU. Guest images that do not depend on sensitive-instruction fidelity
//! must print exactly what QEMU printed; those that do must show it (each
//! is listed with the reason); and every privileged instruction executed
//! must be a real host trap.

mod common;

use bt86::engine::Limits;
use bt86::session::{self, EngineKind, RunConfig, TrapMode};
use common::*;

/// Images whose kernels never look at what the deprivileged CPU changes,
/// besides the workloads (`WORKLOADS`).
const FAITHFUL_KERNELS: &[&str] = &[
    "interrupts",
    "paging",
    "cpuinfo",
    "smc",
    "alu",
    "nano",
    "fpu",
    // Its handlers read the CPL from the CS pushed: the monitor reflects
    // each exception with the frame ring 0 would get.
    "exceptions",
];

/// Every image that must print what QEMU prints under trap.
fn faithful() -> impl Iterator<Item = &'static str> {
    FAITHFUL_KERNELS.iter().chain(WORKLOADS).copied()
}

/// Images that depend on sensitive-instruction fidelity, and the pitfall
/// that shows (reasoning from the model in src/system/depriv.rs, checked
/// against each kernel's source).
const DEPENDENT: &[(&str, &str)] = &[
    ("hello", "prints its entry CS, SS (RPL 1), EFLAGS (IF from PUSHF) and SGDT (the monitor's GDT)"),
    ("rings", "reads CS after returning to ring 0 (RPL 1)"),
    ("code16", "reads CS after returning to 32-bit code (RPL 1)"),
    ("segments", "builds its GDT where SGDT says the current one is (the monitor's)"),
    ("doublefault", "builds its GDT where SGDT says the current one is (the monitor's)"),
    ("tinyos", "IRET to ring 3 at CPL 1 cannot set IF: no timer interrupt ever reaches user code"),
    ("pitfalls", "checks every sensitive instruction (tests/pitfalls.rs asserts each row)"),
    ("shadow", "reads CS, LSL/LAR of a DPL-0 selector and SGDT in its last section (tests/shadow.rs)"),
];

fn trap(mode: TrapMode) -> RunConfig {
    RunConfig { engine: EngineKind::Trap(mode), ..RunConfig::default() }
}

#[test]
fn every_image_is_classified() {
    let mut names = image_names();
    // The native-oracle images (x87) are run under trap by tests/images.rs.
    names.retain(|n| {
        !faithful().any(|f| f == n) && !DEPENDENT.iter().any(|(d, _)| d == n) && !NATIVE_ORACLE.contains(&n.as_str())
    });
    assert!(names.is_empty(), "images not classified for --engine trap: {names:?}");
}

#[test]
fn faithful_images_match_qemu_under_trap() {
    // `interrupts` polls ports millions of times: as many real traps take
    // half a minute (a host #GP round trip costs microseconds), so it runs
    // with simulated traps only. The simulated trap changes nothing the
    // guest can see: it is checked on the images that are not pure
    // CPU-bound workloads.
    let names = |keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        faithful().filter(|n| keep(n)).map(|n| n.to_string()).collect()
    };
    check_images(&trap(TrapMode::Real), "trap", &names(&|n| n != "interrupts"));
    check_images(&trap(TrapMode::Simulated), "trap --trap=simulated", &names(&|n| !WORKLOADS.contains(&n)));
}

#[test]
fn dependent_images_show_their_pitfall_under_trap() {
    for (name, why) in DEPENDENT {
        let (want, want_status) = expected(name);
        // tinyos never finishes without timer interrupts: a limit past
        // what it needs on ring-0 hardware (110 M instructions).
        let limits = Limits { max_insns: Some(120_000_000), ..Limits::default() };
        let got = run_bt86(name, &RunConfig { limits, ..trap(TrapMode::Simulated) });
        assert!(
            got.output != want || got.status != want_status,
            "{name} ran exactly as on ring-0 hardware under --engine trap, though it {why}"
        );
        // The same image is faithful under the translator.
        let bt = run_bt86(name, &RunConfig { engine: EngineKind::Bt, ..RunConfig::default() });
        assert!(bt.output == want && bt.status == want_status, "{name} differs under bt too");
    }
}

#[test]
fn every_privileged_instruction_is_a_real_trap() {
    for name in ["paging", "smc", "cpuinfo"] {
        let path = images_dir().join("bin").join(format!("{name}.elf"));
        let image = std::fs::read(&path).expect("image");
        let mut counts = Vec::new();
        for mode in [TrapMode::Real, TrapMode::Simulated] {
            let cfg = trap(mode);
            let m = session::boot(&path.display().to_string(), &image, &cfg, Box::new(std::io::sink())).expect("boot");
            let out = session::run(m, &cfg);
            let t = out.trap.expect("trap stats");
            assert!(t.monitor.privileged > 0, "{name}: no privileged instruction executed");
            match mode {
                TrapMode::Real => assert_eq!(
                    t.real_traps, t.monitor.privileged,
                    "{name}: real traps vs privileged instructions executed"
                ),
                TrapMode::Simulated => assert_eq!(t.real_traps, 0, "{name}: a real trap under --trap=simulated"),
            }
            counts.push((t.monitor, out.retired));
        }
        println!("{name}: {} privileged instructions, each a real host trap", counts[0].0.privileged);
        assert_eq!(counts[0], counts[1], "{name}: real and simulated traps ran the guest differently");
    }
}
