//! `bt86 bench --nano`: the nanobenchmarks of Adams & Agesen (ASPLOS 2006,
//! Figure 4) under each engine and under qemu-system-i386, beside the
//! paper's figures for a 3.8 GHz Pentium 4 (native, software VMM, VT-x).
//!
//! The guest is guest-images/kernels/nano.c, embedded here. It runs one
//! operation `iters` times in a DEC/JNZ loop. Cost per operation, per cell:
//!
//! ```text
//!   calibrate: N = 10^4, grow it until t(BASE+N) - t(BASE) >= target/2
//!              in two pairs in a row, then scale it to the target
//!              (target 0.25 s of work; or N = --iters)
//!   repeat R times:  d = t(BASE+N) - t(BASE)       (two complete runs)
//!   ns/op = median(d) / N * 1e9
//! ```
//!
//! Boot, set-up, translation of the loop and exit are in both runs of a
//! pair and cancel; what is left is N operations plus N loop iterations
//! (the `none` row is the loop alone, and is not subtracted).
//!
//! `t` is CPU time, not wall time: the time the thread running a bt86
//! engine spent on a CPU (CLOCK_THREAD_CPUTIME_ID, nanoseconds), and for
//! QEMU the user+system time of the child process (/proc/self/stat
//! cutime+cstime, clock ticks: 10 ms). On a machine shared with other
//! work, wall time charges a run for the time it waited for a CPU; CPU
//! time does not. Both are in the CSV.

pub use super::plot::svg;
use super::{timed, Runner, TempFile};
use crate::engine::Limits;
use crate::session::{self, EngineKind, RunConfig, TrapMode};
use std::fmt::Write as _;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

/// The nanobenchmark kernel (guest-images/bin/nano.elf).
pub const KERNEL: &[u8] = include_bytes!("../../guest-images/bin/nano.elf");

/// The clock of the paper's Pentium 4 672, for converting its cycles to ns.
pub const PAPER_GHZ: f64 = 3.8;

/// Iterations of the shorter run of each pair.
pub const BASE_ITERS: u32 = 1000;

/// The most iterations one run may add (the guest counts in 32 bits).
const MAX_ITERS: u32 = 2_000_000_000;

/// Work per measured pair that calibration aims at, in seconds.
const TARGET_SECS: f64 = 0.25;

/// One figure read from the paper: CPU cycles, and whether it is read off
/// the log-scale chart (≈) rather than stated in the text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cycles {
    pub cycles: u32,
    pub approx: bool,
}

const fn exact(cycles: u32) -> Cycles {
    Cycles { cycles, approx: false }
}

const fn approx(cycles: u32) -> Cycles {
    Cycles { cycles, approx: true }
}

impl Cycles {
    /// Nanoseconds at the paper's 3.8 GHz.
    pub fn ns(self) -> f64 {
        f64::from(self.cycles) / PAPER_GHZ
    }

    fn mark(self) -> &'static str {
        if self.approx {
            "≈"
        } else {
            ""
        }
    }
}

/// The paper's row for a benchmark (Figure 4; /work/shared/REFERENCES.md).
#[derive(Clone, Copy, Debug)]
pub struct Paper {
    /// The row's name in the paper.
    pub row: &'static str,
    pub native: Cycles,
    /// VMware's binary-translating VMM.
    pub bt: Cycles,
    /// The hardware VMM (VT-x, no nested paging).
    pub vt: Cycles,
}

/// One nanobenchmark of the nano kernel.
#[derive(Clone, Copy, Debug)]
pub struct NanoBench {
    /// Its `bench=` name.
    pub name: &'static str,
    pub what: &'static str,
    pub paper: Option<Paper>,
    /// Privileged instructions per operation: each is a real host trap
    /// under `--engine trap` (counted with `--stats`, which reports them).
    pub traps: u32,
    /// Events per operation the monitor reflects to the guest through its
    /// shadow IDT under `--engine trap` (INT n, exceptions): modelled, not
    /// real host traps, and counted apart in `--stats`.
    pub reflected: u32,
}

const CR8WR: Paper = Paper { row: "cr8wr", native: approx(151), bt: exact(35), vt: approx(177) };

/// Every benchmark of the nano kernel, in report order.
pub const BENCHES: &[NanoBench] = &[
    NanoBench {
        name: "none",
        what: "the empty loop (DEC; JNZ), included in every row",
        paper: None,
        traps: 0,
        reflected: 0,
    },
    NanoBench {
        name: "syscall",
        what: "ring 3 INT 0x80 to a ring-0 IRET and back",
        paper: Some(Paper { row: "syscall", native: approx(243), bt: approx(2310), vt: approx(246) }),
        traps: 0,
        reflected: 1,
    },
    NanoBench {
        name: "sysenter",
        what: "ring 3 SYSENTER to a ring-0 SYSEXIT and back",
        paper: None,
        traps: 1,
        reflected: 0,
    },
    NanoBench {
        name: "in",
        what: "IN AL, 0x80",
        paper: Some(Paper { row: "in", native: exact(3209), bt: approx(217), vt: exact(15826) }),
        traps: 1,
        reflected: 0,
    },
    NanoBench {
        name: "cli",
        what: "CLI; STI (paper: cr8wr, its 64-bit counterpart)",
        paper: Some(CR8WR),
        traps: 2,
        reflected: 0,
    },
    NanoBench {
        name: "popf",
        what: "PUSHF; POPF (paper: cr8wr, its 64-bit counterpart)",
        paper: Some(CR8WR),
        traps: 0,
        reflected: 0,
    },
    NanoBench {
        name: "callret",
        what: "CALL to a lone RET",
        paper: Some(Paper { row: "call/ret", native: exact(11), bt: exact(51), vt: exact(11) }),
        traps: 0,
        reflected: 0,
    },
    NanoBench {
        name: "pgfault",
        what: "read of a not-present page; the guest #PF handler sets P",
        paper: Some(Paper { row: "pgfault", native: exact(1093), bt: exact(3927), vt: exact(11242) }),
        traps: 1,
        reflected: 1,
    },
    NanoBench {
        name: "divzero",
        what: "DIV by zero; the guest #DE handler skips it",
        paper: Some(Paper { row: "divzero", native: exact(889), bt: exact(3223), vt: exact(1014) }),
        traps: 0,
        reflected: 1,
    },
    NanoBench {
        name: "ptemod",
        what: "PTE write (two frames in turn), INVLPG, read through it",
        paper: Some(Paper { row: "ptemod", native: exact(1), bt: exact(391), vt: exact(12733) }),
        traps: 1,
        reflected: 0,
    },
];

/// The benchmark called `name`.
pub fn find(name: &str) -> Option<&'static NanoBench> {
    BENCHES.iter().find(|b| b.name == name)
}

/// Whether a run calibrated N or measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Calibrate,
    Measure,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Calibrate => "calibrate",
            Phase::Measure => "measure",
        }
    }
}

/// One complete run of the kernel: what `--csv` writes.
#[derive(Clone, Debug)]
pub struct NanoSample {
    pub bench: &'static str,
    pub runner: Runner,
    pub phase: Phase,
    /// The pair's index within its phase (0-based).
    pub pair: usize,
    pub iters: u32,
    /// Wall time of the run.
    pub wall: f64,
    /// CPU time of the run (what the cost is computed from).
    pub cpu: f64,
    /// Guest instructions retired (bt86 engines only).
    pub insns: Option<u64>,
}

/// One finished run: wall seconds, CPU seconds, guest instructions.
struct Timing {
    wall: f64,
    cpu: f64,
    insns: Option<u64>,
}

/// CPU seconds the calling thread has used.
fn thread_cpu() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// CPU seconds (user + system) used by this process's waited-for children.
fn children_cpu() -> Result<f64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("cannot read /proc/self/stat: {e}"))?;
    // Fields after "(comm)": state is field 3, cutime 16, cstime 17.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (tick(13), tick(14)) {
        (Some(u), Some(s)) => Ok((u + s) as f64 / rustix::param::clock_ticks_per_second().max(1) as f64),
        _ => Err("cannot parse /proc/self/stat".into()),
    }
}

/// One cell of the table.
#[derive(Clone, Debug)]
pub struct NanoCell {
    pub bench: &'static str,
    pub runner: Runner,
    /// Median nanoseconds per operation (NaN when `error` is set).
    pub ns: f64,
    /// Operations measured per pair (N).
    pub iters: u32,
    /// Why there is no figure.
    pub error: Option<String>,
}

/// Everything `measure` found.
pub struct NanoResults {
    pub cells: Vec<NanoCell>,
    pub samples: Vec<NanoSample>,
}

/// Nanoseconds per operation from a pair of runs: `t1` seconds for `n1`
/// iterations, `t2` for `n2` (> `n1`).
pub fn cost_ns(t1: f64, n1: u32, t2: f64, n2: u32) -> f64 {
    (t2 - t1) / f64::from(n2.saturating_sub(n1).max(1)) * 1e9
}

/// The median (the mean of the middle two for an even count); NaN if empty.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A runner made ready to run the kernel.
enum Prepared {
    Engine(session::EngineKind),
    Qemu(TempFile),
}

impl Prepared {
    fn new(r: Runner) -> Result<Prepared, String> {
        match r {
            Runner::Engine(e) => Ok(Prepared::Engine(e)),
            Runner::Qemu if !super::qemu_available() => Err("qemu-system-i386 is not installed".into()),
            Runner::Qemu => TempFile::new("nano.elf", KERNEL, false)
                .map(Prepared::Qemu)
                .map_err(|e| format!("cannot write temp file: {e}")),
            Runner::Native => Err("the nanobenchmarks need ring 0: no native runner (see the paper's columns)".into()),
        }
    }

    /// One complete run.
    fn run(&self, bench: &str, iters: u32) -> Result<Timing, String> {
        let append = format!("bench={bench} iters={iters}");
        match self {
            Prepared::Engine(engine) => {
                let cfg = RunConfig {
                    engine: *engine,
                    append: Some(append),
                    limits: Limits { timeout: Some(Duration::from_secs(600)), ..Limits::default() },
                    ..RunConfig::default()
                };
                let (start, cpu0) = (Instant::now(), thread_cpu());
                // An engine under construction must cost its cell, not the run.
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let m = session::boot("nano.elf", KERNEL, &cfg, Box::new(std::io::sink()))
                        .map_err(|e| e.to_string())?;
                    let out = session::run(m, &cfg);
                    match out.exit.status() {
                        1 => Ok(out.retired),
                        s => {
                            Err(out.exit.message(&out.machine).unwrap_or(format!("guest exit status {s} (expected 1)")))
                        }
                    }
                }));
                let (wall, cpu) = (start.elapsed().as_secs_f64(), thread_cpu() - cpu0);
                match run {
                    Ok(Ok(retired)) => Ok(Timing { wall, cpu, insns: Some(retired) }),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(format!("the {} engine panicked", engine.name())),
                }
            }
            Prepared::Qemu(f) => {
                let mut cmd = Command::new("qemu-system-i386");
                cmd.arg("-kernel").arg(f.path());
                cmd.args(["-display", "none", "-serial", "null", "-monitor", "none", "-no-reboot"]);
                cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-m", "128"]);
                cmd.arg("-append").arg(append);
                let cpu0 = children_cpu()?;
                match timed(&mut cmd) {
                    Ok((wall, Some(1))) => Ok(Timing { wall, cpu: children_cpu()? - cpu0, insns: None }),
                    Ok((_, code)) => Err(format!("qemu exit status {code:?} (expected 1)")),
                    Err(e) => Err(format!("cannot run qemu-system-i386: {e}")),
                }
            }
        }
    }
}

/// What `measure` does.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Measured pairs per cell (the median is reported).
    pub repeat: usize,
    /// Operations per pair; None = calibrate per cell.
    pub iters: Option<u32>,
}

/// Measures one cell; runs go to `samples`.
fn measure_cell(b: &NanoBench, r: Runner, opts: Options, samples: &mut Vec<NanoSample>) -> NanoCell {
    let mut cell = NanoCell { bench: b.name, runner: r, ns: f64::NAN, iters: 0, error: None };
    let result = (|| -> Result<(f64, u32), String> {
        let prepared = Prepared::new(r)?;
        let mut pair = |phase: Phase, index: usize, n: u32| -> Result<f64, String> {
            let mut t = [0.0; 2];
            for (i, iters) in [BASE_ITERS, BASE_ITERS + n].into_iter().enumerate() {
                let Timing { wall, cpu, insns } = prepared.run(b.name, iters)?;
                samples.push(NanoSample { bench: b.name, runner: r, phase, pair: index, iters, wall, cpu, insns });
                t[i] = cpu;
            }
            Ok(cost_ns(t[0], BASE_ITERS, t[1], BASE_ITERS + n))
        };
        let n = match opts.iters {
            Some(n) => n.clamp(1, MAX_ITERS),
            None => {
                let mut n: u32 = 10_000;
                let mut index = 0;
                let mut work = |n: u32| -> Result<f64, String> {
                    index += 1;
                    Ok(pair(Phase::Calibrate, index - 1, n)? * f64::from(n) / 1e9)
                };
                loop {
                    let mut secs = work(n)?;
                    // A slow start-up in one run of a pair (a busy host,
                    // QEMU's start-up) can fake a long difference at a
                    // small N: a second pair must confirm it.
                    if secs >= TARGET_SECS / 2.0 || n >= MAX_ITERS {
                        secs = secs.min(work(n)?);
                        if secs >= TARGET_SECS / 2.0 || n >= MAX_ITERS {
                            let n = f64::from(n) * TARGET_SECS / secs.max(1e-9);
                            break n.clamp(1.0, f64::from(MAX_ITERS)) as u32;
                        }
                    }
                    let grow = if secs > 0.002 { (TARGET_SECS / secs).clamp(2.0, 100.0) } else { 100.0 };
                    n = (f64::from(n) * grow).min(f64::from(MAX_ITERS)) as u32;
                }
            }
        };
        let mut costs = Vec::new();
        for index in 0..opts.repeat.max(1) {
            costs.push(pair(Phase::Measure, index, n)?);
        }
        Ok((median(&costs), n))
    })();
    match result {
        Ok((ns, n)) if ns > 0.0 => {
            cell.ns = ns;
            cell.iters = n;
        }
        Ok((_, n)) => {
            cell.iters = n;
            cell.error = Some(format!("no measurable cost over {n} iterations (noise); raise --iters"));
        }
        Err(e) => cell.error = Some(e),
    }
    cell
}

/// Measures every benchmark on every runner, with a line of progress per
/// cell on `progress` (and the reason when a cell has no figure).
pub fn measure(
    benches: &[&'static NanoBench],
    runners: &[Runner],
    opts: Options,
    progress: &mut dyn Write,
) -> NanoResults {
    let total = benches.len() * runners.len();
    let mut res = NanoResults { cells: Vec::new(), samples: Vec::new() };
    for b in benches {
        for &r in runners {
            let _ = write!(
                progress,
                "bench --nano: [{:>2}/{total}] {:<8} {:<8} ... ",
                res.cells.len() + 1,
                b.name,
                r.name()
            );
            let _ = progress.flush();
            let start = Instant::now();
            let cell = measure_cell(b, r, opts, &mut res.samples);
            let took = start.elapsed().as_secs_f64();
            let _ = match &cell.error {
                None => writeln!(
                    progress,
                    "{} ns/op (N={}, {} pairs, {took:.1} s)",
                    fmt_ns(cell.ns),
                    cell.iters,
                    opts.repeat.max(1)
                ),
                Some(e) => writeln!(progress, "n/a: {e}"),
            };
            res.cells.push(cell);
        }
    }
    res
}

/// Nanoseconds with about three significant digits.
pub(super) fn fmt_ns(ns: f64) -> String {
    if ns >= 100.0 {
        format!("{ns:.0}")
    } else if ns >= 10.0 {
        format!("{ns:.1}")
    } else {
        format!("{ns:.2}")
    }
}

/// The table: ns/op per runner, then the paper's cycles and their ns at
/// 3.8 GHz (≈ where read off the chart).
pub fn report(cells: &[NanoCell], runners: &[Runner]) -> String {
    let mut s = format!("{:<9}", "bench");
    for r in runners {
        s += &format!(" {:>11}", format!("{} ns", r.name()));
    }
    s += &format!(
        "  {:<8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8}\n",
        "paper", "P4 nat", "P4 BT", "P4 VT", "nat ns", "BT ns", "VT ns"
    );
    let mut names: Vec<&str> = Vec::new();
    for c in cells {
        if !names.contains(&c.bench) {
            names.push(c.bench);
        }
    }
    for name in names {
        let mut line = format!("{name:<9}");
        for &r in runners {
            let cell = cells.iter().find(|c| c.bench == name && c.runner == r);
            line += &match cell {
                Some(c) if c.error.is_none() => format!(" {:>11}", fmt_ns(c.ns)),
                _ => format!(" {:>11}", "n/a"),
            };
        }
        match find(name).and_then(|b| b.paper) {
            Some(p) => {
                line += &format!("  {:<8}", p.row);
                for c in [p.native, p.bt, p.vt] {
                    line += &format!(" {:>8}", format!("{}{}", c.mark(), c.cycles));
                }
                line += " ";
                for c in [p.native, p.bt, p.vt] {
                    line += &format!(" {:>8}", format!("{}{}", c.mark(), fmt_ns(c.ns())));
                }
            }
            None => line += &format!("  {:<8}", "-"),
        }
        s += line.trim_end();
        s.push('\n');
    }
    s
}

/// Under the trap engines: which rows also include events the monitor
/// reflects (modelled, so not in the trap cost).
pub fn reflection_note(cells: &[NanoCell]) -> Option<String> {
    let trap = cells.iter().any(|c| matches!(c.runner, Runner::Engine(EngineKind::Trap(_))));
    let rows: Vec<&str> = BENCHES.iter().filter(|b| b.reflected > 0).map(|b| b.name).collect();
    (trap && !rows.is_empty()).then(|| {
        format!(
            "under trap, {} also include one event an operation that the monitor reflects through its shadow \
             IDT (INT 0x80, #PF, #DE): modelled, not a host trap; --stats counts them apart\n",
            rows.join(", ")
        )
    })
}

/// What a real trap costs here: for each benchmark with privileged
/// instructions, (trap − trap-sim) / traps per operation, and their median;
/// `None` without both columns.
pub fn trap_cost(cells: &[NanoCell]) -> Option<String> {
    let ns = |bench: &str, r: Runner| {
        cells.iter().find(|c| c.bench == bench && c.runner == r && c.error.is_none()).map(|c| c.ns)
    };
    let real = Runner::Engine(EngineKind::Trap(TrapMode::Real));
    let sim = Runner::Engine(EngineKind::Trap(TrapMode::Simulated));
    let mut each = Vec::new();
    for b in BENCHES.iter().filter(|b| b.traps > 0) {
        if let (Some(t), Some(s)) = (ns(b.name, real), ns(b.name, sim)) {
            each.push((b.name, (t - s) / f64::from(b.traps)));
        }
    }
    if each.is_empty() {
        return None;
    }
    let costs: Vec<f64> = each.iter().map(|e| e.1).collect();
    let list: Vec<String> = each.iter().map(|(n, c)| format!("{n} {}", fmt_ns(*c))).collect();
    Some(format!(
        "a real trap (host #GP in user mode, SIGSEGV, resume) costs about {} ns here: (trap - trap-sim) per privileged instruction: {}\n",
        fmt_ns(median(&costs)),
        list.join(", ")
    ))
}

/// Every run as CSV.
pub fn csv(samples: &[NanoSample]) -> String {
    let mut s = String::from("bench,runner,phase,pair,iters,wall_seconds,cpu_seconds,guest_insns\n");
    for x in samples {
        let insns = x.insns.map(|n| n.to_string()).unwrap_or_default();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{:.6},{:.6},{insns}",
            x.bench,
            x.runner.name(),
            x.phase.name(),
            x.pair,
            x.iters,
            x.wall,
            x.cpu
        );
    }
    s
}

/// What `bt86 bench --nano` was asked for.
pub struct CliArgs<'a> {
    /// Benchmark names; empty = all.
    pub benches: &'a [String],
    pub runners: &'a [Runner],
    pub opts: Options,
    pub csv: Option<&'a std::path::Path>,
    pub plot: Option<&'a std::path::Path>,
}

/// `bt86 bench --nano`: measures, prints the table on stdout, writes the
/// CSV and the plot. Returns the process status: 0, or 2 for an unknown
/// benchmark, 14 if a file cannot be written. Cells without a figure are
/// `n/a`, with their reason on stderr; they do not fail the run.
pub fn cli(args: &CliArgs) -> i32 {
    let mut benches = Vec::new();
    for name in args.benches {
        match find(name) {
            Some(b) => benches.push(b),
            None => {
                let known: Vec<_> = BENCHES.iter().map(|b| b.name).collect();
                eprintln!("bt86: unknown nanobenchmark {name:?}; known: {}", known.join(", "));
                return session::status::USAGE;
            }
        }
    }
    if benches.is_empty() {
        benches = BENCHES.iter().collect();
    }
    let res = measure(&benches, args.runners, args.opts, &mut std::io::stderr());
    print!("{}", report(&res.cells, args.runners));
    if let Some(line) = reflection_note(&res.cells) {
        print!("{line}");
    }
    if let Some(line) = trap_cost(&res.cells) {
        print!("{line}");
    }
    for c in res.cells.iter().filter(|c| c.error.is_some()) {
        eprintln!("bt86: {} under {}: n/a: {}", c.bench, c.runner.name(), c.error.as_deref().unwrap_or(""));
    }
    let writes = [(args.csv, csv(&res.samples)), (args.plot, svg(&res.cells, args.runners))];
    for (path, text) in writes {
        if let Some(path) = path {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("bt86: cannot write {}: {e}", path.display());
                return session::status::HOST;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{EngineKind, TrapMode};

    #[test]
    fn cost_is_the_difference_over_the_extra_iterations() {
        // 1000 iterations in 0.10 s, 1_001_000 in 0.35 s: 0.25 s / 10^6 = 250 ns.
        assert!((cost_ns(0.10, 1000, 0.35, 1_001_000) - 250.0).abs() < 1e-9);
        // Noise can make the difference negative; the arithmetic says so.
        assert!(cost_ns(0.2, 1000, 0.1, 2000) < 0.0);
        // Equal counts cannot divide by zero.
        assert!(cost_ns(0.1, 5, 0.2, 5).is_finite());
    }

    #[test]
    fn cpu_clocks_read() {
        let t0 = thread_cpu();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(thread_cpu() > t0, "{x}");
        assert!(children_cpu().is_ok_and(|c| c >= 0.0));
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn every_benchmark_is_in_the_kernel() {
        assert_eq!(&KERNEL[..4], b"\x7fELF");
        for b in BENCHES {
            let needle = b.name.as_bytes();
            assert!(KERNEL.windows(needle.len() + 1).any(|w| &w[..needle.len()] == needle && w[needle.len()] == 0));
        }
    }

    fn cells() -> (Vec<NanoCell>, Vec<Runner>) {
        let bt = Runner::Engine(EngineKind::Bt);
        let trap = Runner::Engine(EngineKind::Trap(TrapMode::Real));
        let runners = vec![bt, trap, Runner::Qemu];
        let cell = |bench, runner, ns: f64, error: Option<&str>| NanoCell {
            bench,
            runner,
            ns,
            iters: 1000,
            error: error.map(String::from),
        };
        let cells = vec![
            cell("syscall", bt, 123.4, None),
            cell("syscall", trap, f64::NAN, Some("not built")),
            cell("syscall", Runner::Qemu, 45.0, None),
            cell("none", bt, 0.4, None),
            cell("none", trap, f64::NAN, Some("not built")),
            cell("none", Runner::Qemu, 0.9, None),
        ];
        (cells, runners)
    }

    #[test]
    fn report_has_paper_figures_and_na_cells() {
        let (cells, runners) = cells();
        let t = report(&cells, &runners);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("bench") && lines[0].contains("trap ns") && lines[0].contains("P4 VT"), "{t}");
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(&row[..5], &["syscall", "123", "n/a", "45.0", "syscall"], "{t}");
        assert_eq!(&row[5..], &["≈243", "≈2310", "≈246", "≈63.9", "≈608", "≈64.7"], "{t}");
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["none", "0.40", "n/a", "0.90", "-"]);
    }

    #[test]
    fn trap_cost_is_per_privileged_instruction() {
        let real = Runner::Engine(EngineKind::Trap(TrapMode::Real));
        let sim = Runner::Engine(EngineKind::Trap(TrapMode::Simulated));
        let cell = |bench, runner, ns| NanoCell { bench, runner, ns, iters: 1000, error: None };
        // cli is a CLI; STI pair: two traps per operation.
        let line = trap_cost(&[cell("cli", real, 5100.0), cell("cli", sim, 100.0)]).expect("a trap cost");
        assert!(line.contains("about 2500 ns") && line.contains("cli 2500"), "{line}");
        // Without both trap columns there is nothing to say.
        assert!(trap_cost(&cells().0).is_none());
    }

    #[test]
    fn csv_has_a_line_per_run() {
        let s = NanoSample {
            bench: "in",
            runner: Runner::Engine(EngineKind::Interp),
            phase: Phase::Measure,
            pair: 2,
            iters: 1000,
            wall: 0.125,
            cpu: 0.12,
            insns: Some(4242),
        };
        let q = NanoSample { runner: Runner::Qemu, phase: Phase::Calibrate, insns: None, ..s.clone() };
        assert_eq!(
            csv(&[s, q]),
            "bench,runner,phase,pair,iters,wall_seconds,cpu_seconds,guest_insns\n\
             in,interp,measure,2,1000,0.125000,0.120000,4242\nin,qemu,calibrate,2,1000,0.125000,0.120000,\n"
        );
    }

    /// Checks that every element is closed in order and every attribute
    /// value is quoted: enough of XML to catch a broken writer.
    fn well_formed(svg: &str) -> Result<usize, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut elements = 0;
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let text = &rest[..i];
            if text.contains('>') || (text.contains('&') && !text.contains(';')) {
                return Err(format!("bad text {text:?}"));
            }
            let end = rest[i..].find('>').ok_or("unterminated tag")? + i;
            let tag = &rest[i + 1..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
                continue;
            }
            elements += 1;
            if tag.matches('"').count() % 2 != 0 {
                return Err(format!("unbalanced quotes in <{tag}>"));
            }
            let name = tag.split_whitespace().next().ok_or("empty tag")?.trim_end_matches('/').to_string();
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        Ok(elements)
    }

    #[test]
    fn svg_is_well_formed_with_a_bar_per_figure() {
        let (cells, runners) = cells();
        let s = svg(&cells, &runners);
        assert!(s.starts_with("<svg ") && s.trim_end().ends_with("</svg>"));
        assert!(well_formed(&s).is_ok(), "{:?}", well_formed(&s));
        // syscall: bt, qemu and three paper bars; none: bt and qemu.
        assert_eq!(s.matches("<title>").count(), 7, "{s}");
        assert!(well_formed("<a><b></a></b>").is_err());
        // Nothing measured at all still gives a valid (empty) chart.
        assert!(well_formed(&svg(&[], &runners)).is_ok());
    }
}
