//! `bt86 bench --nano` end to end: one benchmark, small fixed iteration
//! counts, interp and bt only; the table must parse and every figure be a
//! positive number of nanoseconds. (Only that: timings are for benchmarks.)

use std::process::Command;

#[test]
fn bench_nano_prints_a_table_of_positive_costs() {
    let dir = std::env::temp_dir().join(format!("bt86-nano-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (csv, svg) = (dir.join("nano.csv"), dir.join("nano.svg"));
    let out = Command::new(env!("CARGO_BIN_EXE_bt86"))
        .args(["bench", "--nano", "--workload", "syscall", "--engines", "interp,bt", "--repeat", "3"])
        .args(["--iters", "50000", "--csv"])
        .arg(&csv)
        .arg("--plot")
        .arg(&svg)
        .output()
        .expect("run bt86");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let mut lines = stdout.lines();
    let head: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(&head[..5], ["bench", "interp", "ns", "bt", "ns"], "{stdout}");
    let row: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(row.first(), Some(&"syscall"), "{stdout}");
    for (engine, cell) in ["interp", "bt"].iter().zip(&row[1..3]) {
        let ns: f64 = cell.parse().unwrap_or_else(|_| panic!("{engine}: {cell:?} is not a number:\n{stdout}"));
        assert!(ns > 0.0 && ns.is_finite(), "{engine}: {ns}");
    }
    // The paper's row follows: syscall, ≈243 cycles native.
    assert_eq!(row.get(3..5), Some(&["syscall", "≈243"][..]), "{stdout}");
    assert_eq!(lines.next(), None, "{stdout}");

    // Every run in the CSV: 2 engines x 3 pairs x 2 runs, no calibration.
    let text = std::fs::read_to_string(&csv).expect("csv written");
    assert_eq!(text.lines().count(), 1 + 12, "{text}");
    assert!(text.lines().skip(1).all(|l| l.starts_with("syscall,") && l.contains(",measure,")), "{text}");
    let plot = std::fs::read_to_string(&svg).expect("svg written");
    assert!(plot.starts_with("<svg ") && plot.trim_end().ends_with("</svg>"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_nano_rejects_an_unknown_benchmark() {
    let out = Command::new(env!("CARGO_BIN_EXE_bt86"))
        .args(["bench", "--nano", "--workload", "nosuch", "--engines", "interp"])
        .output()
        .expect("run bt86");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("unknown nanobenchmark \"nosuch\""), "{stderr}");
}

/// Under `--engine trap` every privileged instruction of an operation is
/// one real host trap, and what the monitor reflects through its shadow
/// IDT (INT 0x80, #PF, #DE) is counted apart, as `BENCHES` declares per
/// row: the counters grow by exactly that per operation between runs of
/// 200 and 400 operations (the difference cancels the set-up).
#[test]
fn under_trap_each_privileged_instruction_is_one_real_trap_and_reflections_are_apart() {
    use bt86::engine::Limits;
    use bt86::session::{self, EngineKind, RunConfig, TrapMode};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-images/bin/nano.elf");
    let image = std::fs::read(&path).expect("nano.elf");
    for b in bt86::bench::nano::BENCHES {
        let counts = |iters: u64| {
            let cfg = RunConfig {
                engine: EngineKind::Trap(TrapMode::Real),
                append: Some(format!("bench={} iters={iters}", b.name)),
                limits: Limits { max_insns: Some(100_000_000), ..Limits::default() },
                ..RunConfig::default()
            };
            let m = session::boot("nano.elf", &image, &cfg, Box::new(std::io::sink())).expect("boot");
            let out = session::run(m, &cfg);
            assert_eq!(out.exit.status(), 1, "{}: {:?}", b.name, out.exit);
            let t = out.trap.expect("trap counters");
            assert_eq!(t.real_traps, t.monitor.privileged, "{}: a real trap per privileged instruction", b.name);
            let reflected = t.monitor.reflected_exceptions + t.monitor.reflected_int;
            (t.monitor.privileged, reflected)
        };
        let (p1, r1) = counts(200);
        let (p2, r2) = counts(400);
        assert_eq!(p2 - p1, 200 * u64::from(b.traps), "{}: privileged instructions per operation", b.name);
        assert_eq!(r2 - r1, 200 * u64::from(b.reflected), "{}: reflected events per operation", b.name);
    }
}
