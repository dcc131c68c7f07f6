//! `bt86 bench`: CPU-bound guest workloads under each engine and under
//! qemu-system-i386, timed in one run so the ratios are fair on a noisy
//! machine. Each figure is the median of `repeat` runs.
//!
//! QEMU's figure subtracts its start-up (the median time to boot and exit
//! the `hello` kernel); bt86's start-up is well under a millisecond and is
//! included.

use crate::engine::Limits;
use crate::session::{self, EngineKind, RunConfig};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A CPU-bound guest kernel embedded in the binary.
pub struct Workload {
    pub name: &'static str,
    pub what: &'static str,
    pub image: &'static [u8],
}

/// The workloads, from guest-images/kernels (sources there).
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "crc32",
        what: "table-driven CRC-32 over 1 MiB, 16 passes",
        image: include_bytes!("../guest-images/bin/crc32.elf"),
    },
    Workload {
        name: "sort",
        what: "sorting pseudo-random integers",
        image: include_bytes!("../guest-images/bin/sort.elf"),
    },
    Workload { name: "sieve", what: "sieve of Eratosthenes", image: include_bytes!("../guest-images/bin/sieve.elf") },
    Workload {
        name: "matmul",
        what: "integer matrix multiply",
        image: include_bytes!("../guest-images/bin/matmul.elf"),
    },
];

/// The kernel used to measure QEMU's start-up.
const STARTUP_KERNEL: &[u8] = include_bytes!("../guest-images/bin/hello.elf");

/// Something that can run a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    Engine(EngineKind),
    Qemu,
}

impl Runner {
    pub fn name(self) -> &'static str {
        match self {
            Runner::Engine(EngineKind::Interp) => "interp",
            Runner::Engine(EngineKind::Bt) => "bt",
            Runner::Qemu => "qemu",
        }
    }
}

/// One measured cell of the table.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub workload: &'static str,
    pub runner: Runner,
    /// Median wall time of the workload itself.
    pub seconds: f64,
    /// Guest instructions retired (bt86 engines only).
    pub insns: Option<u64>,
    /// Why the measurement failed, if it did.
    pub error: Option<String>,
}

impl Measurement {
    /// Millions of guest instructions per second.
    pub fn mips(&self) -> Option<f64> {
        self.insns.map(|n| n as f64 / self.seconds / 1e6)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run_engine(w: &Workload, engine: EngineKind, scale: u32) -> Result<(f64, u64), String> {
    let cfg = RunConfig {
        engine,
        append: Some(format!("scale={scale}")),
        limits: Limits { timeout: Some(Duration::from_secs(600)), ..Limits::default() },
        ..RunConfig::default()
    };
    let start = Instant::now();
    let m = session::boot(w.name, w.image, &cfg, Box::new(std::io::sink())).map_err(|e| e.to_string())?;
    let out = session::run(m, &cfg);
    let secs = start.elapsed().as_secs_f64();
    if out.exit.status() != 1 {
        return Err(format!("guest exit status {} (expected 1)", out.exit.status()));
    }
    Ok((secs, out.retired))
}

fn temp_image(name: &str, image: &[u8]) -> std::io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("bt86-bench-{}-{name}.elf", std::process::id()));
    std::fs::write(&path, image)?;
    Ok(path)
}

fn run_qemu(name: &str, image: &[u8], scale: u32) -> Result<f64, String> {
    let path = temp_image(name, image).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let status = Command::new("qemu-system-i386")
        .arg("-kernel")
        .arg(&path)
        .args(["-display", "none", "-serial", "null", "-monitor", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-m", "128"])
        .arg("-append")
        .arg(format!("scale={scale}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    match status {
        Ok(s) if s.code() == Some(1) => Ok(secs),
        Ok(s) => Err(format!("qemu exit status {s}")),
        Err(e) => Err(format!("cannot run qemu-system-i386: {e}")),
    }
}

/// Whether qemu-system-i386 can be run.
pub fn qemu_available() -> bool {
    Command::new("qemu-system-i386").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Runs every workload on every runner, `repeat` times each, with the
/// kernels' `scale=N` command-line parameter (the work is repeated N
/// times; the output does not change), reporting progress on `progress`.
pub fn measure(
    workloads: &[&'static Workload],
    runners: &[Runner],
    repeat: usize,
    scale: u32,
    progress: &mut dyn Write,
) -> Vec<Measurement> {
    let repeat = repeat.max(1);
    let mut qemu_startup = None;
    if runners.contains(&Runner::Qemu) {
        let _ = writeln!(progress, "bench: measuring qemu start-up ({repeat} runs of hello)");
        let times: Result<Vec<f64>, String> = (0..repeat).map(|_| run_qemu("startup", STARTUP_KERNEL, scale)).collect();
        qemu_startup = times.ok().map(median);
    }
    let mut rows = Vec::new();
    for w in workloads {
        for &r in runners {
            let _ = writeln!(progress, "bench: {} under {} ({repeat} runs)", w.name, r.name());
            let mut times = Vec::new();
            let mut insns = None;
            let mut error = None;
            for _ in 0..repeat {
                let res = match r {
                    Runner::Engine(e) => run_engine(w, e, scale).map(|(s, n)| {
                        insns = Some(n);
                        s
                    }),
                    Runner::Qemu => run_qemu(w.name, w.image, scale).and_then(|s| {
                        let net = s - qemu_startup.unwrap_or(0.0);
                        if net > 0.0 {
                            Ok(net)
                        } else {
                            Err("run shorter than QEMU's start-up; raise --scale".to_string())
                        }
                    }),
                };
                match res {
                    Ok(s) => times.push(s),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            let seconds = if times.is_empty() { f64::NAN } else { median(times) };
            rows.push(Measurement { workload: w.name, runner: r, seconds, insns, error });
        }
    }
    rows
}

/// The table `bt86 bench` prints.
pub fn report(rows: &[Measurement], runners: &[Runner]) -> String {
    let mut s = String::new();
    let mut line = format!("{:<10}", "workload");
    for r in runners {
        line += &format!(" {:>12}", format!("{} s", r.name()));
    }
    line += &format!(" {:>14}", "interp Minsn/s");
    if runners.contains(&Runner::Qemu) && runners.contains(&Runner::Engine(EngineKind::Interp)) {
        line += &format!(" {:>12}", "interp/qemu");
    }
    s += line.trim_end();
    s.push('\n');
    let workloads: Vec<&str> = rows.iter().map(|m| m.workload).fold(Vec::new(), |mut v, w| {
        if !v.contains(&w) {
            v.push(w);
        }
        v
    });
    for w in workloads {
        let cell = |r: Runner| rows.iter().find(|m| m.workload == w && m.runner == r);
        let mut line = format!("{w:<10}");
        for &r in runners {
            line += &match cell(r) {
                Some(m) if m.error.is_none() => format!(" {:>12.3}", m.seconds),
                _ => format!(" {:>12}", "failed"),
            };
        }
        let interp = cell(Runner::Engine(EngineKind::Interp)).filter(|m| m.error.is_none());
        line += &match interp.and_then(|m| m.mips()) {
            Some(mips) => format!(" {mips:>14.1}"),
            None => format!(" {:>14}", "-"),
        };
        if let (Some(i), Some(q)) = (interp, cell(Runner::Qemu).filter(|m| m.error.is_none())) {
            line += &format!(" {:>11.2}x", i.seconds / q.seconds);
        }
        s += line.trim_end();
        s.push('\n');
    }
    for m in rows.iter().filter(|m| m.error.is_some()) {
        s += &format!("{} under {}: {}\n", m.workload, m.runner.name(), m.error.as_deref().unwrap_or(""));
    }
    s
}
