//! `bt86 bench`: CPU-bound guest workloads under each bt86 engine, under
//! qemu-system-i386 and natively, timed in one run so the ratios are fair
//! on a noisy machine.
//!
//! ```text
//!   for each workload, for each runner, `repeat` times:
//!       t_base = wall time of a run with scale=1        (start-up + 1 unit)
//!       t_full = wall time of a run with scale=1+N      (start-up + 1+N units)
//!       work   = t_full - t_base                        (N units, no start-up)
//!   figure = median(work)
//! ```
//!
//! Start-up is subtracted the same way for every runner: the two runs of a
//! pair go back to back, so a slow phase of the machine hits both. Every
//! run is a complete, passing run of the workload (scale=0 would skip the
//! work its checks look at). The native runner executes the workload's
//! static i386 Linux build (guest-images/bin/NAME-native: the kernel's own
//! object file linked with a libc-free shim), embedded here and written to
//! a temporary file with execute permission; QEMU gets the kernel image the
//! same way.

pub mod linux;
pub mod nano;
pub mod plot;

use crate::engine::Limits;
use crate::session::{self, EngineKind, RunConfig};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A CPU-bound guest kernel and its native build, embedded in the binary.
pub struct Workload {
    pub name: &'static str,
    pub what: &'static str,
    /// The Multiboot kernel (guest-images/bin/NAME.elf).
    pub image: &'static [u8],
    /// The same work as a static i386 Linux program (bin/NAME-native).
    pub native: &'static [u8],
    /// Units of the kernel's `scale=N` one unit of `--scale` stands for:
    /// so that a unit is tens of milliseconds natively for every workload
    /// (flops' own unit is well under one).
    pub units: u32,
}

macro_rules! workload {
    ($name:literal, $what:literal) => {
        workload!($name, $what, 1)
    };
    ($name:literal, $what:literal, $units:literal) => {
        Workload {
            name: $name,
            what: $what,
            image: include_bytes!(concat!("../guest-images/bin/", $name, ".elf")),
            native: include_bytes!(concat!("../guest-images/bin/", $name, "-native")),
            units: $units,
        }
    };
}

/// The workloads, from guest-images/kernels (sources there).
pub const WORKLOADS: &[Workload] = &[
    workload!("crc32", "table-driven CRC-32 over 1 MiB, 16 passes"),
    workload!("sort", "quicksort of 256 Ki integers"),
    workload!("sieve", "sieve of Eratosthenes below 8 Mi, 3 runs"),
    workload!("matmul", "128x128 integer matrix multiply, 8 rounds"),
    workload!("bytecode", "stack-VM interpreter: primes, recursive fib, hash"),
    workload!("lz", "LZ77 compress and decompress 1 MiB of text"),
    workload!("memcpy", "REP MOVSB/MOVSD copies and overlapping moves, 300 B to 1 MiB"),
    workload!("flops", "double (x87 code): n-body, spectral norm, Mandelbrot", 40),
    workload!("strings", "C library string functions: memset, strlen, strchr, memcmp, strcpy, strcmp"),
    workload!("calls", "recursion, mutual recursion, calls through pointers, jump-table switches"),
    workload!("bits", "bytes and bit-fields: AES, byte planes, CRC-16, IPv4 headers, popcount"),
    workload!("crc32_o1", "crc32 built with -O1"),
    workload!("sort_o1", "sort built with -O1"),
    workload!("lz_o1", "lz built with -O1"),
    workload!("bytecode_o1", "bytecode built with -O1"),
    workload!("strings_o1", "strings built with -O1"),
    workload!("calls_o1", "calls built with -O1"),
    workload!("bits_o1", "bits built with -O1"),
];

/// Something that can run a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    Engine(EngineKind),
    Qemu,
    Native,
}

impl Runner {
    pub fn name(self) -> &'static str {
        match self {
            Runner::Engine(e) => e.name(),
            Runner::Qemu => "qemu",
            Runner::Native => "native",
        }
    }
}

/// One timed run: the raw data `--csv` writes.
#[derive(Clone, Debug)]
pub struct Sample {
    pub workload: &'static str,
    pub runner: Runner,
    /// Which repetition (0-based); its two runs have scale 1 and 1+N.
    pub rep: usize,
    pub scale: u32,
    pub seconds: f64,
    /// Guest instructions retired (bt86 engines only).
    pub insns: Option<u64>,
    /// Instructions the translator called out for (bt and trap only).
    pub callouts: Option<u64>,
}

/// One cell of the table.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub workload: &'static str,
    pub runner: Runner,
    /// Median seconds of work for N units, start-up subtracted.
    pub seconds: f64,
    /// Guest instructions of that work (bt86 engines only).
    pub insns: Option<u64>,
    /// Callouts during that work (the translating engines only).
    pub callouts: Option<u64>,
    /// Why the measurement failed, if it did.
    pub error: Option<String>,
}

impl Measurement {
    /// Millions of guest instructions per second of work.
    pub fn mips(&self) -> Option<f64> {
        self.insns.map(|n| n as f64 / self.seconds / 1e6)
    }

    /// Callouts per million guest instructions of work.
    pub fn callouts_per_million(&self) -> Option<f64> {
        Some(self.callouts? as f64 * 1e6 / self.insns?.max(1) as f64)
    }

    fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Everything `measure` found.
pub struct Results {
    pub rows: Vec<Measurement>,
    pub samples: Vec<Sample>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, data: &[u8], executable: bool) -> std::io::Result<TempFile> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = std::env::temp_dir().join(format!("bt86-bench-{}-{name}", std::process::id()));
        std::fs::write(&path, data)?;
        let mode = if executable { 0o700 } else { 0o600 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        Ok(TempFile(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Prepared to run one workload on one runner.
enum Prepared<'a> {
    Engine(&'a Workload, EngineKind),
    Qemu(TempFile),
    Native(TempFile),
}

impl Prepared<'_> {
    fn new(w: &Workload, r: Runner) -> Result<Prepared<'_>, String> {
        let tmp = |suffix: &str, data, exec| {
            TempFile::new(&format!("{}{suffix}", w.name), data, exec)
                .map_err(|e| format!("cannot write temp file: {e}"))
        };
        Ok(match r {
            Runner::Engine(e) => Prepared::Engine(w, e),
            Runner::Qemu => Prepared::Qemu(tmp(".elf", w.image, false)?),
            Runner::Native => Prepared::Native(tmp("-native", w.native, true)?),
        })
    }

    /// One complete run at `scale`: wall seconds, guest instructions and
    /// callouts.
    fn run(&self, scale: u32) -> Result<(f64, Option<u64>, Option<u64>), String> {
        match self {
            Prepared::Engine(w, e) => run_engine(w, *e, scale).map(|(s, n, c)| (s, Some(n), c)),
            Prepared::Qemu(f) => run_qemu(f.path(), scale).map(|s| (s, None, None)),
            Prepared::Native(f) => run_native(f.path(), scale).map(|s| (s, None, None)),
        }
    }
}

/// Whether guest kernels run with paging on (`paging=1` on their command
/// line: an identity map of 4 MiB pages set up by the runtime before the
/// work, so the object code measured is the same). Set once by `bt86
/// bench --paging` before measuring.
pub static GUEST_PAGING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The kernel command line for `scale`.
fn guest_cmdline(scale: u32) -> String {
    if GUEST_PAGING.load(std::sync::atomic::Ordering::Relaxed) {
        format!("scale={scale} paging=1")
    } else {
        format!("scale={scale}")
    }
}

fn run_engine(w: &Workload, engine: EngineKind, scale: u32) -> Result<(f64, u64, Option<u64>), String> {
    let cfg = RunConfig {
        engine,
        append: Some(guest_cmdline(scale)),
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
    Ok((secs, out.retired, out.bt.map(|b| b.callout_insns)))
}

/// Runs a command with no input or output; wall seconds and exit code.
fn timed(cmd: &mut Command) -> std::io::Result<(f64, Option<i32>)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut tries = 0;
    loop {
        let start = Instant::now();
        match cmd.status() {
            Ok(s) => return Ok((start.elapsed().as_secs_f64(), s.code())),
            // ETXTBSY: another thread forked while the binary was open for
            // writing; it goes away once that child execs.
            Err(e) if e.raw_os_error() == Some(26) && tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn run_qemu(kernel: &Path, scale: u32) -> Result<f64, String> {
    let mut cmd = Command::new("qemu-system-i386");
    cmd.arg("-kernel").arg(kernel);
    cmd.args(["-display", "none", "-serial", "null", "-monitor", "none", "-no-reboot"]);
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-m", "128"]);
    cmd.arg("-append").arg(guest_cmdline(scale));
    match timed(&mut cmd) {
        Ok((secs, Some(1))) => Ok(secs),
        Ok((_, code)) => Err(format!("qemu exit status {code:?} (expected 1)")),
        Err(e) => Err(format!("cannot run qemu-system-i386: {e}")),
    }
}

fn run_native(program: &Path, scale: u32) -> Result<f64, String> {
    match timed(Command::new(program).arg(format!("scale={scale}"))) {
        Ok((secs, Some(0))) => Ok(secs),
        Ok((_, code)) => Err(format!("native exit status {code:?} (expected 0)")),
        Err(e) => Err(format!("cannot run the native i386 build (does this kernel run 32-bit programs?): {e}")),
    }
}

/// Whether qemu-system-i386 can be run.
pub fn qemu_available() -> bool {
    Command::new("qemu-system-i386").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// One pair of runs of `prepared`, at scale 1 and 1+`scale`: the seconds
/// of work between them, and its guest instructions and callouts (bt86's
/// engines).
fn measure_pair(
    w: &Workload,
    r: Runner,
    prepared: &Prepared,
    rep: usize,
    scale: u32,
    samples: &mut Vec<Sample>,
) -> Result<(f64, Option<u64>, Option<u64>), String> {
    let mut pair = [(0.0, None, None); 2];
    for (i, s) in [1, 1 + scale].into_iter().enumerate() {
        let (seconds, insns, callouts) = prepared.run(s)?;
        samples.push(Sample { workload: w.name, runner: r, rep, scale: s, seconds, insns, callouts });
        pair[i] = (seconds, insns, callouts);
    }
    let work = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
    Ok((pair[1].0 - pair[0].0, work(pair[0].1, pair[1].1), work(pair[0].2, pair[1].2)))
}

/// Runs every workload on every runner: `repeat` pairs of runs, the
/// kernels' `scale=N` command-line parameter at 1 and 1+`scale` (the work
/// is repeated that many times; the output does not change). The runners
/// take turns, one pair each per round, so that a slow spell of a noisy
/// machine falls on all of them rather than on one runner's cell. Progress
/// goes to `progress`, one line per workload.
pub fn measure(
    workloads: &[&'static Workload],
    runners: &[Runner],
    repeat: usize,
    scale: u32,
    progress: &mut dyn Write,
) -> Results {
    let repeat = repeat.max(1);
    let scale = scale.max(1);
    let mut res = Results { rows: Vec::new(), samples: Vec::new() };
    for (n, w) in workloads.iter().enumerate() {
        let scale = scale.saturating_mul(w.units);
        let _ = write!(
            progress,
            "bench: [{:>2}/{}] {:<8} {repeat} rounds of (scale 1, scale {}) on {} ...",
            n + 1,
            workloads.len(),
            w.name,
            1 + scale,
            runners.iter().map(|r| r.name()).collect::<Vec<_>>().join(", ")
        );
        let _ = progress.flush();
        let start = Instant::now();
        let mut cells: Vec<Measurement> = runners
            .iter()
            .map(|&r| Measurement {
                workload: w.name,
                runner: r,
                seconds: f64::NAN,
                insns: None,
                callouts: None,
                error: None,
            })
            .collect();
        let prepared: Vec<Option<Prepared>> =
            cells.iter_mut().map(|c| Prepared::new(w, c.runner).map_err(|e| c.error = Some(e)).ok()).collect();
        let mut work: Vec<Vec<f64>> = vec![Vec::new(); runners.len()];
        for rep in 0..repeat {
            for (k, cell) in cells.iter_mut().enumerate() {
                let Some(p) = prepared[k].as_ref().filter(|_| cell.error.is_none()) else { continue };
                match measure_pair(w, cell.runner, p, rep, scale, &mut res.samples) {
                    Ok((seconds, insns, callouts)) => {
                        work[k].push(seconds);
                        cell.insns = insns.or(cell.insns);
                        cell.callouts = callouts.or(cell.callouts);
                    }
                    Err(e) => cell.error = Some(e),
                }
            }
        }
        for (cell, work) in cells.iter_mut().zip(work) {
            if cell.error.is_none() {
                cell.seconds = median(work);
                if cell.seconds <= 0.0 {
                    cell.error = Some("no measurable work beyond start-up; raise --scale".into());
                }
            }
        }
        let summary: Vec<String> = cells
            .iter()
            .map(|c| match &c.error {
                None => format!("{} {:.3} s", c.runner.name(), c.seconds),
                Some(e) => format!("{} failed: {e}", c.runner.name()),
            })
            .collect();
        let _ = writeln!(progress, " {} ({:.1} s)", summary.join(", "), start.elapsed().as_secs_f64());
        res.rows.extend(cells);
    }
    res
}

/// The raw measurements as CSV: one line per run.
pub fn csv(samples: &[Sample]) -> String {
    let mut s = String::from("workload,runner,rep,scale,seconds,guest_insns,callouts\n");
    for x in samples {
        let insns = x.insns.map(|n| n.to_string()).unwrap_or_default();
        let callouts = x.callouts.map(|n| n.to_string()).unwrap_or_default();
        let (w, r) = (x.workload, x.runner.name());
        s += &format!("{w},{r},{},{},{:.6},{insns},{callouts}\n", x.rep, x.scale, x.seconds);
    }
    s
}

/// The table `bt86 bench` prints: seconds of work per runner, each
/// runner's ratio to native, and the interpreter's instruction rate.
pub fn report(rows: &[Measurement], runners: &[Runner]) -> String {
    let native = runners.contains(&Runner::Native);
    let ratios: Vec<Runner> = runners.iter().copied().filter(|&r| native && r != Runner::Native).collect();
    let interp = Runner::Engine(EngineKind::Interp);
    let mut line = format!("{:<10}", "workload");
    for r in runners {
        line += &format!(" {:>10}", format!("{} s", r.name()));
    }
    for r in &ratios {
        line += &format!(" {:>13}", format!("{}/native", r.name()));
    }
    let bt = Runner::Engine(EngineKind::Bt);
    let qemu_over_bt = runners.contains(&bt) && runners.contains(&Runner::Qemu);
    if qemu_over_bt {
        line += &format!(" {:>8}", "qemu/bt");
    }
    if runners.contains(&interp) {
        line += &format!(" {:>14}", "interp Minsn/s");
    }
    if runners.contains(&bt) {
        line += &format!(" {:>15}", "bt callouts/M");
    }
    let mut s = line.trim_end().to_string() + "\n";
    let mut workloads: Vec<&str> = Vec::new();
    for m in rows {
        if !workloads.contains(&m.workload) {
            workloads.push(m.workload);
        }
    }
    for w in workloads {
        let cell = |r: Runner| rows.iter().find(|m| m.workload == w && m.runner == r).filter(|m| m.ok());
        let mut line = format!("{w:<10}");
        for &r in runners {
            line += &match cell(r) {
                Some(m) => format!(" {:>10.3}", m.seconds),
                None => format!(" {:>10}", "failed"),
            };
        }
        for &r in &ratios {
            line += &match (cell(r), cell(Runner::Native)) {
                (Some(m), Some(n)) => format!(" {:>12.2}x", m.seconds / n.seconds),
                _ => format!(" {:>13}", "-"),
            };
        }
        if qemu_over_bt {
            line += &match (cell(Runner::Qemu), cell(bt)) {
                (Some(q), Some(b)) => format!(" {:>7.2}x", q.seconds / b.seconds),
                _ => format!(" {:>8}", "-"),
            };
        }
        if runners.contains(&interp) {
            line += &match cell(interp).and_then(|m| m.mips()) {
                Some(mips) => format!(" {mips:>14.1}"),
                None => format!(" {:>14}", "-"),
            };
        }
        if runners.contains(&bt) {
            line += &match cell(bt).and_then(|m| m.callouts_per_million()) {
                Some(c) => format!(" {c:>15.2}"),
                None => format!(" {:>15}", "-"),
            };
        }
        s += line.trim_end();
        s.push('\n');
    }
    for m in rows.iter().filter(|m| !m.ok()) {
        s += &format!("{} under {}: {}\n", m.workload, m.runner.name(), m.error.as_deref().unwrap_or(""));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(w: &'static str, r: Runner, seconds: f64) -> Measurement {
        Measurement { workload: w, runner: r, seconds, insns: Some(2_000_000), callouts: Some(3), error: None }
    }

    #[test]
    fn report_shows_ratios_to_native() {
        let interp = Runner::Engine(EngineKind::Interp);
        let runners = [interp, Runner::Qemu, Runner::Native];
        let rows = [cell("crc32", interp, 2.0), cell("crc32", Runner::Qemu, 0.3), cell("crc32", Runner::Native, 0.1)];
        let t = report(&rows, &runners);
        let mut lines = t.lines();
        let head = lines.next().unwrap_or_default();
        assert!(head.contains("interp/native") && head.contains("qemu/native"), "{t}");
        let row = lines.next().unwrap_or_default();
        assert!(row.contains("20.00x") && row.contains("3.00x") && row.contains("1.0"), "{t}");
    }

    #[test]
    fn report_shows_bt_callouts_per_million_instructions() {
        let bt = Runner::Engine(EngineKind::Bt);
        let runners = [bt, Runner::Native];
        // 3 callouts in 2 M instructions of work.
        let rows = [cell("lz", bt, 0.2), cell("lz", Runner::Native, 0.1)];
        let r = report(&rows, &runners);
        let header = r.lines().next().unwrap();
        let row = r.lines().nth(1).unwrap();
        assert!(header.ends_with("bt callouts/M"), "{r}");
        assert!(row.ends_with(" 1.50") && row.contains(" 2.00x"), "{r}");
    }

    #[test]
    fn csv_has_one_line_per_run() {
        let s = Sample {
            workload: "lz",
            runner: Runner::Native,
            rep: 1,
            scale: 3,
            seconds: 0.25,
            insns: None,
            callouts: None,
        };
        assert_eq!(csv(&[s]), "workload,runner,rep,scale,seconds,guest_insns,callouts\nlz,native,1,3,0.250000,,\n");
        let bt = Runner::Engine(EngineKind::Bt);
        let s =
            Sample { workload: "lz", runner: bt, rep: 0, scale: 1, seconds: 0.5, insns: Some(9), callouts: Some(2) };
        assert_eq!(csv(&[s]).lines().nth(1), Some("lz,bt,0,1,0.500000,9,2"));
    }

    #[test]
    fn every_workload_has_a_native_build() {
        for w in WORKLOADS {
            assert_eq!(&w.native[..4], b"\x7fELF", "{}", w.name);
            assert_eq!(w.native[4], 1, "{}-native is not ELF32", w.name);
        }
    }

    #[test]
    fn native_build_runs_and_passes() {
        // Hosts without 32-bit program support skip this (the bench reports it).
        let w = WORKLOADS.iter().find(|w| w.name == "matmul").expect("matmul");
        let p = Prepared::new(w, Runner::Native).expect("temp file");
        if let Err(e) = p.run(1) {
            assert!(e.contains("cannot run"), "{e}");
        }
    }
}
