//! `bt86 bench --linux`: Debian's i386 kernel booted through its
//! initramfs's `/init` (from `scripts/fetch-linux.sh`) under bt86's
//! engines and under qemu-system-i386, each boot a child process timed
//! from outside.
//!
//! ```text
//!   spawn ─► kernel boot ─► "=== bt86 init: start ===" ─► ... ─► "=== bt86 init: end ===" ─► exit 1
//!   t = 0                    first user-space line                end of /init
//!                            wall, cpu                            wall, cpu
//! ```
//!
//! A reader thread takes the child's stdout (COM1) from a pipe line by
//! line; when a marker line arrives it notes the wall time since spawn and
//! the child's host CPU time so far (utime + stime of /proc/PID/stat, all
//! its threads, in clock ticks: 10 ms). The child is reaped only after its
//! stdout closes, so the stat file is there for the last line. A run counts
//! only if both markers came and the process ended with status 1 (the
//! guest's isa-debug-exit); otherwise the cell fails with the reason.
//!
//! Why CPU time: bt86's virtual clock jumps over the periods in which the
//! guest halts waiting for a timer, while QEMU follows host time and sleeps
//! through them. Wall time charges QEMU for sleeping; CPU time charges each
//! runner only for the work it did. Both are shown.
//!
//! The QEMU command line (`qemu_args`) and the kernel command line
//! (`APPEND`) are the ones tests/linux.rs checks the output against.

use super::{median, qemu_available, Runner};
use crate::session::{status, EngineKind};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The guest's kernel command line.
pub const APPEND: &str = "console=ttyS0 quiet";

/// QEMU's CPU: what bt86 implements (a Pentium III without MMX, SSE,
/// FXSR, local APIC, PAE, MCE, PAT, PSE-36, VME, MTRRs, with SYSENTER).
pub const QEMU_CPU: &str = "pentium3,-mmx,-sse,-fxsr,-apic,-pae,-mce,-pat,-pse36,-vme,-mtrr,-mca,-hypervisor,+sep";

/// The first line `/init` (scripts/linux/init) prints.
pub const START_MARKER: &str = "=== bt86 init: start ===";

/// The last line `/init` prints before it exits through isa-debug-exit.
pub const END_MARKER: &str = "=== bt86 init: end ===";

/// How long a boot may take under each runner before it is killed.
fn timeout(r: Runner) -> Duration {
    match r {
        Runner::Engine(EngineKind::Interp) => Duration::from_secs(900),
        _ => Duration::from_secs(300),
    }
}

/// qemu-system-i386's arguments for booting `kernel` with `initrd`,
/// COM1 on stdout.
pub fn qemu_args(kernel: &Path, initrd: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = ["-M", "isapc", "-cpu", QEMU_CPU, "-m", "128", "-kernel"].map(OsString::from).into();
    v.push(kernel.into());
    v.push("-initrd".into());
    v.push(initrd.into());
    let rest = ["-append", APPEND, "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"];
    v.extend(rest.map(OsString::from));
    v.extend(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"].map(OsString::from));
    v
}

/// `bt86 run`'s arguments for the same boot under `engine`.
pub fn bt86_args(engine: EngineKind, kernel: &Path, initrd: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["run".into(), kernel.into(), "--engine".into(), engine.name().into()];
    v.extend(["--initrd".into(), initrd.into(), "--append".into(), APPEND.into(), "-m".into(), "128M".into()]);
    v
}

/// The kernel and initramfs that scripts/fetch-linux.sh caches.
#[derive(Clone, Debug)]
pub struct Images {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

impl Images {
    /// `$BT86_LINUX_CACHE`, or `target/linux` under the current directory
    /// (the script's default when run from the repository).
    pub fn find() -> Result<Images, String> {
        let dir = std::env::var_os("BT86_LINUX_CACHE").map_or_else(|| PathBuf::from("target/linux"), PathBuf::from);
        Images::in_dir(&dir)
    }

    pub fn in_dir(dir: &Path) -> Result<Images, String> {
        let img = Images { kernel: dir.join("vmlinuz"), initrd: dir.join("initramfs.cpio.gz") };
        if img.kernel.is_file() && img.initrd.is_file() {
            Ok(img)
        } else {
            Err(format!(
                "no Debian kernel in {} (run scripts/fetch-linux.sh, or set BT86_LINUX_CACHE to its cache)",
                dir.display()
            ))
        }
    }

    /// The command that boots these images under `r`.
    fn command(&self, r: Runner) -> Result<Command, String> {
        match r {
            Runner::Engine(e @ (EngineKind::Interp | EngineKind::Bt)) => {
                let exe = std::env::current_exe().map_err(|e| format!("cannot find bt86's executable: {e}"))?;
                let mut cmd = Command::new(exe);
                cmd.args(bt86_args(e, &self.kernel, &self.initrd));
                Ok(cmd)
            }
            Runner::Qemu => {
                let mut cmd = Command::new("qemu-system-i386");
                cmd.args(qemu_args(&self.kernel, &self.initrd));
                Ok(cmd)
            }
            r => Err(format!("{} does not boot Linux in this bench", r.name())),
        }
    }
}

/// A marker line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Start,
    End,
}

/// Which marker `line` (raw bytes from COM1, CRs and all) carries.
pub fn marker(line: &[u8]) -> Option<Marker> {
    let has = |m: &str| line.windows(m.len()).any(|w| w == m.as_bytes());
    if has(START_MARKER) {
        Some(Marker::Start)
    } else if has(END_MARKER) {
        Some(Marker::End)
    } else {
        None
    }
}

/// utime + stime, in clock ticks, from the text of /proc/PID/stat. The
/// second field (the command name, in parentheses) may itself hold spaces
/// and parentheses, so fields are counted from the last `)`.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields 3 (state) onwards; utime and stime are fields 14 and 15.
    let mut f = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Host CPU seconds (user + system, every thread) used so far by `pid`.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let ticks = stat_cpu_ticks(&text).ok_or_else(|| format!("cannot parse {path}: {text:?}"))?;
    Ok(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// When a marker line arrived: seconds since spawn and host CPU seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stamp {
    pub wall: f64,
    pub cpu: f64,
}

/// What the reader thread saw on the child's stdout.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub start: Option<Stamp>,
    pub end: Option<Stamp>,
    /// A failure to read the CPU time.
    pub error: Option<String>,
}

/// Reads `out` to its end, stamping the first line of each marker.
fn watch(out: impl Read, pid: u32, spawned: Instant) -> Seen {
    let mut r = BufReader::new(out);
    let mut seen = Seen::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return seen,
            Ok(_) => {}
        }
        let wall = spawned.elapsed().as_secs_f64();
        let slot = match marker(&line) {
            Some(Marker::Start) => &mut seen.start,
            Some(Marker::End) => &mut seen.end,
            None => continue,
        };
        if slot.is_none() {
            match cpu_seconds(pid) {
                Ok(cpu) => *slot = Some(Stamp { wall, cpu }),
                Err(e) => seen.error = seen.error.or(Some(e)),
            }
        }
    }
}

/// One boot's two moments.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Times {
    /// The first user-space line.
    pub start: Stamp,
    /// The end of /init.
    pub end: Stamp,
}

/// How a run ended, as far as the verdict cares.
#[derive(Clone, Debug)]
pub struct Ending {
    pub seen: Seen,
    pub code: Option<i32>,
    /// Killed after this long.
    pub timed_out: Option<Duration>,
    pub stderr: String,
}

/// A run counts if it was not killed, saw both markers and ended with
/// status 1.
pub fn verdict(e: Ending) -> Result<Times, String> {
    let last = e.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let said = if last.is_empty() { String::new() } else { format!(" (stderr: {last})") };
    if let Some(t) = e.timed_out {
        return Err(format!("killed after {} s without ending", t.as_secs()));
    }
    if let Some(err) = e.seen.error {
        return Err(err);
    }
    if e.code != Some(1) {
        return Err(format!("exit status {:?} (expected 1){said}", e.code));
    }
    match (e.seen.start, e.seen.end) {
        (Some(start), Some(end)) => Ok(Times { start, end }),
        (None, _) => Err(format!("no {START_MARKER:?} line{said}")),
        (_, None) => Err(format!("no {END_MARKER:?} line{said}")),
    }
}

/// Runs `cmd` to its end (or kills it after `limit`), stamping the markers.
fn run_once(mut cmd: Command, limit: Duration) -> Result<Times, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let spawned = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {program}: {e}"))?;
    let pid = child.id();
    let (Some(out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("no pipes to the child".into());
    };
    let (done, closed) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let seen = watch(out, pid, spawned);
        let _ = done.send(());
        seen
    });
    let errors = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    // Reap only once stdout is closed: /proc/PID/stat must outlive the last line.
    let timed_out = match closed.recv_timeout(limit) {
        Err(RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            Some(limit)
        }
        _ => None,
    };
    let code = child.wait().map_err(|e| format!("cannot wait for {program}: {e}"))?.code();
    let seen = reader.join().map_err(|_| "the reader thread panicked".to_string())?;
    let stderr = errors.join().unwrap_or_default();
    verdict(Ending { seen, code, timed_out, stderr })
}

/// One runner's row: every run, or why it has none.
#[derive(Clone, Debug)]
pub struct Cell {
    pub runner: Runner,
    pub runs: Vec<Times>,
    /// Why the runner failed (one run failing fails it).
    pub error: Option<String>,
    /// Why the runner was not run at all (QEMU not installed).
    pub not_run: Option<String>,
}

impl Cell {
    /// The median of each of the four figures, separately.
    pub fn median(&self) -> Option<Times> {
        if self.runs.is_empty() || self.error.is_some() || self.not_run.is_some() {
            return None;
        }
        let m = |f: fn(&Times) -> f64| median(self.runs.iter().map(f).collect());
        Some(Times {
            start: Stamp { wall: m(|t| t.start.wall), cpu: m(|t| t.start.cpu) },
            end: Stamp { wall: m(|t| t.end.wall), cpu: m(|t| t.end.cpu) },
        })
    }
}

/// Boots the images `repeat` times on every runner. The runners take
/// turns, one boot each per round, so a slow spell of the machine falls
/// on all of them. Progress goes to `progress`, one line per boot.
pub fn measure(img: &Images, runners: &[Runner], repeat: usize, progress: &mut dyn Write) -> Vec<Cell> {
    let repeat = repeat.max(1);
    let mut cells: Vec<Cell> =
        runners.iter().map(|&runner| Cell { runner, runs: Vec::new(), error: None, not_run: None }).collect();
    for c in cells.iter_mut().filter(|c| c.runner == Runner::Qemu && !qemu_available()) {
        c.not_run = Some("qemu-system-i386 is not installed".into());
    }
    for rep in 0..repeat {
        for c in cells.iter_mut().filter(|c| c.error.is_none() && c.not_run.is_none()) {
            let _ = write!(progress, "bench: linux [{}/{repeat}] {:<6} ...", rep + 1, c.runner.name());
            let _ = progress.flush();
            let run = img.command(c.runner).and_then(|cmd| run_once(cmd, timeout(c.runner)));
            let said = match &run {
                Ok(t) => format!("first line {:.2} s, end of /init {:.2} s", t.start.wall, t.end.wall),
                Err(e) => format!("failed: {e}"),
            };
            let _ = writeln!(progress, " {said}");
            match run {
                Ok(t) => c.runs.push(t),
                Err(e) => c.error = Some(e),
            }
        }
    }
    cells
}

/// Every run as CSV, seconds.
pub fn csv(cells: &[Cell]) -> String {
    let mut s = String::from("runner,rep,wall_first_line,wall_init_end,cpu_first_line,cpu_init_end\n");
    for c in cells {
        for (rep, t) in c.runs.iter().enumerate() {
            let name = c.runner.name();
            s += &format!("{name},{rep},{:.3},{:.3},{:.3},{:.3}\n", t.start.wall, t.end.wall, t.start.cpu, t.end.cpu);
        }
    }
    s
}

fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}x", a / b)
}

/// The table: per runner the median wall and CPU seconds to the first
/// user-space line and to the end of /init, and each bt86 engine's ratio
/// to QEMU at the end of /init; then bt/qemu at the first line, and why
/// any runner failed.
pub fn report(cells: &[Cell]) -> String {
    let mut s = format!("{:<8} {:>23} {:>23} {:>23}\n", "", "wall time, s", "host CPU time, s", "end of /init");
    let head = ["first line", "end /init", "first line", "end /init", "wall/qemu", "cpu/qemu"];
    s += &format!("{:<8}", "runner");
    for h in head {
        s += &format!(" {h:>11}");
    }
    s.push('\n');
    let qemu = cells.iter().find(|c| c.runner == Runner::Qemu).and_then(Cell::median);
    for c in cells {
        let mut line = format!("{:<8}", c.runner.name());
        match (c.median(), &c.not_run) {
            (Some(t), _) => {
                for x in [t.start.wall, t.end.wall, t.start.cpu, t.end.cpu] {
                    line += &format!(" {x:>11.2}");
                }
                if let (Some(q), false) = (qemu, c.runner == Runner::Qemu) {
                    line += &format!(" {:>11} {:>11}", ratio(t.end.wall, q.end.wall), ratio(t.end.cpu, q.end.cpu));
                }
            }
            (None, Some(why)) => line += &format!(" not run: {why}"),
            (None, None) => line += &format!(" {:>11}", "failed"),
        }
        s += line.trim_end();
        s.push('\n');
    }
    let bt = cells.iter().find(|c| c.runner == Runner::Engine(EngineKind::Bt)).and_then(Cell::median);
    if let (Some(b), Some(q)) = (bt, qemu) {
        s += &format!(
            "bt/qemu to the first user-space line: wall {}, cpu {}\n",
            ratio(b.start.wall, q.start.wall),
            ratio(b.start.cpu, q.start.cpu)
        );
    }
    for c in cells {
        if let Some(e) = &c.error {
            s += &format!("{}: {e}\n", c.runner.name());
        }
    }
    s
}

/// `bt86 bench --linux`: the process status to leave with.
pub fn cli(runners: &[Runner], repeat: usize, csv_path: Option<&Path>) -> i32 {
    let img = match Images::find() {
        Ok(img) => img,
        Err(e) => {
            eprintln!("bt86: bench --linux: {e}");
            return status::BAD_IMAGE;
        }
    };
    let mut kept = Vec::new();
    for &r in runners {
        match r {
            Runner::Engine(EngineKind::Interp | EngineKind::Bt) | Runner::Qemu => kept.push(r),
            Runner::Native => eprintln!("bt86: bench --linux: native left out (it has no Linux boot to time)"),
            r => eprintln!(
                "bt86: bench --linux: {} left out (trap-and-emulate does not get through this boot: see docs/architecture.md)",
                r.name()
            ),
        }
    }
    if kept.is_empty() {
        eprintln!("bt86: bench --linux: nothing to run (--engines interp,bt,qemu)");
        return status::USAGE;
    }
    let cells = measure(&img, &kept, repeat, &mut std::io::stderr());
    print!("{}", report(&cells));
    if let Some(path) = csv_path {
        if let Err(e) = std::fs::write(path, csv(&cells)) {
            eprintln!("bt86: cannot write {}: {e}", path.display());
            return status::HOST;
        }
    }
    if cells.iter().any(|c| c.error.is_some()) {
        return status::HOST;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
        let stat = "4242 (a b) (c)) S 1 4242 4242 0 -1 4194304 120 0 3 0 250 17 0 0 20 0 3 0 99 0 0\n";
        assert_eq!(stat_cpu_ticks(stat), Some(267));
        assert_eq!(stat_cpu_ticks("1 (qemu-system-i38) R 0 1 1 0 -1 0 0 0 0 0 5 6"), Some(11));
        assert_eq!(stat_cpu_ticks("1 (x) R 0 1"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis 1 2 3"), None);
    }

    #[test]
    fn own_stat_parses() {
        assert!(cpu_seconds(std::process::id()).is_ok_and(|s| s >= 0.0));
    }

    #[test]
    fn markers_are_found_inside_lines() {
        assert_eq!(marker(b"=== bt86 init: start ===\r\n"), Some(Marker::Start));
        assert_eq!(marker(b"[    1.2] x=== bt86 init: end ===\n"), Some(Marker::End));
        assert_eq!(marker(b"=== bt86 init: ===\n"), None);
        assert_eq!(marker(b""), None);
    }

    #[test]
    fn watch_stamps_each_marker_once() {
        let out: &[u8] = b"Linux\n=== bt86 init: start ===\r\nhi\n=== bt86 init: start ===\n=== bt86 init: end ===";
        let seen = watch(out, std::process::id(), Instant::now());
        assert!(seen.error.is_none(), "{:?}", seen.error);
        let (s, e) = (seen.start.expect("start"), seen.end.expect("end"));
        assert!(s.wall <= e.wall && s.cpu <= e.cpu, "{s:?} {e:?}");
    }

    fn stamp(wall: f64, cpu: f64) -> Option<Stamp> {
        Some(Stamp { wall, cpu })
    }

    #[test]
    fn verdict_needs_both_markers_and_status_1() {
        let seen = Seen { start: stamp(1.0, 0.5), end: stamp(2.0, 1.0), error: None };
        let ending = |code, seen: &Seen| Ending { seen: seen.clone(), code, timed_out: None, stderr: String::new() };
        assert!(verdict(ending(Some(1), &seen)).is_ok());
        let e = verdict(Ending { stderr: "bt86: the guest triple-faulted\n".into(), ..ending(Some(6), &seen) });
        assert_eq!(e, Err("exit status Some(6) (expected 1) (stderr: bt86: the guest triple-faulted)".into()));
        let no_end = Seen { end: None, ..seen.clone() };
        assert!(verdict(ending(Some(1), &no_end)).is_err_and(|e| e.contains("init: end")));
        let killed = Ending { timed_out: Some(Duration::from_secs(900)), ..ending(None, &seen) };
        assert_eq!(verdict(killed), Err("killed after 900 s without ending".into()));
    }

    fn times(w0: f64, w1: f64, c0: f64, c1: f64) -> Times {
        Times { start: Stamp { wall: w0, cpu: c0 }, end: Stamp { wall: w1, cpu: c1 } }
    }

    fn cell(runner: Runner, runs: Vec<Times>) -> Cell {
        Cell { runner, runs, error: None, not_run: None }
    }

    #[test]
    fn medians_are_taken_per_figure() {
        let c =
            cell(Runner::Qemu, vec![times(1.0, 9.0, 3.0, 4.0), times(2.0, 7.0, 1.0, 6.0), times(3.0, 8.0, 2.0, 5.0)]);
        assert_eq!(c.median(), Some(times(2.0, 8.0, 2.0, 5.0)));
    }

    #[test]
    fn report_shows_ratios_to_qemu_and_failures() {
        let bt = Runner::Engine(EngineKind::Bt);
        let interp = Runner::Engine(EngineKind::Interp);
        let cells = [
            Cell { error: Some("killed after 900 s without ending".into()), ..cell(interp, vec![]) },
            cell(bt, vec![times(10.0, 12.0, 9.0, 11.0)]),
            cell(Runner::Qemu, vec![times(5.0, 6.0, 3.0, 4.0)]),
        ];
        let t = report(&cells);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].starts_with("runner") && lines[1].ends_with("cpu/qemu"), "{t}");
        assert!(lines[2].starts_with("interp") && lines[2].ends_with("failed"), "{t}");
        assert_eq!(lines[3], "bt             10.00       12.00        9.00       11.00       2.00x       2.75x", "{t}");
        assert_eq!(lines[4], "qemu            5.00        6.00        3.00        4.00", "{t}");
        assert_eq!(lines[5], "bt/qemu to the first user-space line: wall 2.00x, cpu 3.00x", "{t}");
        assert_eq!(lines[6], "interp: killed after 900 s without ending", "{t}");
    }

    #[test]
    fn missing_qemu_is_said_in_its_row() {
        let c = Cell { not_run: Some("qemu-system-i386 is not installed".into()), ..cell(Runner::Qemu, vec![]) };
        assert!(report(&[c]).contains("qemu     not run: qemu-system-i386 is not installed"));
    }

    #[test]
    fn bt86_boots_with_the_same_command_line_as_qemu() {
        let (k, i) = (Path::new("/k"), Path::new("/i"));
        let q: Vec<String> = qemu_args(k, i).iter().map(|s| s.to_string_lossy().into_owned()).collect();
        let b: Vec<String> = bt86_args(EngineKind::Bt, k, i).iter().map(|s| s.to_string_lossy().into_owned()).collect();
        let after = |v: &[String], flag: &str| v.iter().position(|a| a == flag).map(|p| v[p + 1].clone());
        assert_eq!(after(&q, "-append"), after(&b, "--append"));
        assert_eq!(after(&q, "-initrd"), after(&b, "--initrd"));
        assert_eq!(after(&q, "-kernel").as_deref(), Some("/k"));
        assert_eq!(b[..4], ["run", "/k", "--engine", "bt"]);
    }
}
