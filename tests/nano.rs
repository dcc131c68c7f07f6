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
