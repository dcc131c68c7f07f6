//! The `bt86` command line.

use anyhow::Context as _;
use bt86::cpu::alu::Vendor;
use bt86::engine::Limits;
use bt86::machine::Machine;
use bt86::session::{self, status, EngineKind, RunConfig, Trace, TrapMode};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const EXIT_STATUSES: &str = "\
Console: standard input feeds the guest's COM1 (raw mode on a terminal);
  Ctrl-A x quits, Ctrl-A h lists the keys, Ctrl-A Ctrl-A sends Ctrl-A.

Exit status:
  odd     the guest's isa-debug-exit status: (v << 1) | 1 for a write of v to port 0xf4
  0       the guest requested a reset (as qemu-system-i386 -no-reboot), or Ctrl-A x on the console
  2       bad command line
  4       missing, unreadable or malformed kernel image (or --initrd or --symbols file)
  6       the guest triple-faulted
  8       the guest used an unsupported instruction or feature
  10      the guest halted with interrupts disabled
  12      --max-insns or --timeout reached
  14      host failure
  16      --lockstep: the translator and the interpreter diverged";

#[derive(Parser)]
#[command(name = "bt86", version, about = "A pure-software x86 virtual machine", after_help = EXIT_STATUSES)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Boot a Multiboot kernel or a Linux bzImage, as `qemu-system-i386 -kernel` would.
    #[command(after_help = EXIT_STATUSES)]
    Run(RunArgs),
    /// Time CPU-bound guest workloads under each engine, under QEMU and natively
    /// (with --nano: the cost of single sensitive operations).
    Bench(BenchArgs),
    /// Run the pitfall kernel (one check per sensitive x86 instruction)
    /// under each engine and show where trap-and-emulate goes wrong.
    Pitfalls(PitfallsArgs),
    /// Boot a kernel and show how the binary translator translates one
    /// guest block: the guest instructions, the decision table's verdict
    /// on each, and the x86-64 host code emitted for the block.
    Explain(ExplainArgs),
}

#[derive(clap::Args)]
struct PitfallsArgs {
    /// Only this engine (default: trap, bt and interp).
    #[arg(long, value_enum)]
    engine: Option<PitfallEngine>,
    /// Print the table as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PitfallEngine {
    Interp,
    Bt,
    /// Trap-and-emulate with real host traps.
    Trap,
    /// Trap-and-emulate with simulated traps.
    TrapSim,
}

#[derive(clap::Args)]
struct ExplainArgs {
    /// The kernel image (Multiboot v1: ELF32 or a.out kludge).
    kernel: PathBuf,
    /// The block's EIP (hex with 0x, or decimal), with the boot CPU state
    /// (paging off: EIP = linear = physical address). Default: the entry point.
    #[arg(long, value_name = "ADDR")]
    at: Option<String>,
    /// Guest RAM, as for `run`.
    #[arg(short = 'm', long = "mem", default_value = "128M", value_parser = parse_size)]
    mem: u32,
    /// Kernel command line, as for `run`.
    #[arg(long)]
    append: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TraceArg {
    /// A line per block translated: guest EIP, physical address,
    /// instructions, host address and bytes, memory mode.
    Blocks,
    /// A line per callout executed: guest EIP, mnemonic.
    Callouts,
    /// No lines: write /tmp/perf-PID.map naming every translated block
    /// (`bt:EIP`) and the runtime's routines, for `perf report`.
    Perf,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// What to run each workload on (qemu only if installed; native is
    /// the workload's static i386 Linux build, embedded in bt86).
    /// Default: interp,bt,qemu,native; with --nano: interp,bt,trap,trap-sim,qemu;
    /// with --linux: interp,bt,qemu.
    #[arg(long, value_delimiter = ',')]
    engines: Option<Vec<BenchRunner>>,
    /// Workloads to run (default: all); with --nano, nanobenchmarks.
    #[arg(long, value_delimiter = ',')]
    workload: Vec<String>,
    /// Nanobenchmarks (Adams & Agesen, ASPLOS 2006, Fig. 4): ns per
    /// sensitive operation (syscall, in, cli, popf, pgfault, ...) per
    /// engine, beside the paper's figures. See docs/benchmarks.md.
    #[arg(long)]
    nano: bool,
    /// Boot Debian's i386 kernel through its initramfs's /init (fetched by
    /// scripts/fetch-linux.sh into $BT86_LINUX_CACHE or ./target/linux)
    /// and time the first user-space line and the end of /init, wall and
    /// host CPU time. Default engines: interp,bt,qemu. See docs/benchmarks.md.
    #[arg(long, conflicts_with_all = ["nano", "workload", "paging"])]
    linux: bool,
    /// With --nano: operations per measured pair (default: calibrated per
    /// cell to about 0.25 s of work).
    #[arg(long, value_name = "N", requires = "nano", value_parser = clap::value_parser!(u32).range(1..=2_000_000_000))]
    iters: Option<u32>,
    /// With --nano: also draw the table as an SVG bar chart (log scale).
    #[arg(long, value_name = "FILE.svg", requires = "nano")]
    plot: Option<PathBuf>,
    /// Pairs of runs per cell; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Units of work measured: each pair runs the kernel with scale=1 and
    /// scale=1+N, and the difference is N units without start-up (flops
    /// counts 40 of its own units as one, so that every workload's unit
    /// is tens of milliseconds natively).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    scale: u32,
    /// Run the guest kernels with paging on (an identity map of 4 MiB
    /// pages; the native builds are unaffected).
    #[arg(long)]
    paging: bool,
    /// Also write every run (workload, runner, repetition, scale, seconds,
    /// guest instructions) to FILE as CSV.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchRunner {
    Interp,
    Bt,
    Trap,
    TrapSim,
    Qemu,
    Native,
}

#[derive(Clone, Copy, ValueEnum)]
enum Engine {
    /// The reference interpreter.
    Interp,
    /// The binary translator.
    Bt,
    /// Classical trap-and-emulate: the guest kernel deprivileged to CPL 1,
    /// privileged instructions trapping, sensitive ones misbehaving.
    Trap,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TrapArg {
    /// The host CPU runs each privileged instruction in user mode and
    /// takes a real #GP (SIGSEGV).
    Real,
    /// The trap is modelled as an exit to the monitor, without a signal.
    Simulated,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The kernel image (Multiboot v1: ELF32 or a.out kludge).
    kernel: PathBuf,
    /// Execution engine [default: bt; interp when --cpu-vendor names
    /// another vendor than the host's, which only the interpreter can follow].
    #[arg(long, value_enum)]
    engine: Option<Engine>,
    /// Guest RAM, as QEMU's -m: a number of MiB, or with a K/M/G suffix.
    #[arg(short = 'm', long = "mem", default_value = "128M", value_parser = parse_size)]
    mem: u32,
    /// Kernel command line (after the kernel path, as QEMU passes it).
    #[arg(long)]
    append: Option<String>,
    /// Multiboot modules, comma separated, as QEMU's -initrd; for a Linux
    /// bzImage, the one initrd file.
    #[arg(long)]
    initrd: Option<String>,
    /// The guest kernel's symbols, as a System.map or a copy of
    /// /proc/kallsyms (`ADDRESS TYPE NAME` lines): a guest address bt86
    /// reports at a stop is followed by the function it is in,
    /// ` (func+0xoff)`. scripts/fetch-linux.sh writes Debian's kernel's
    /// as target/linux/System.map; that kernel randomizes its base
    /// (KASLR), so the names are right only with `nokaslr` in --append.
    #[arg(long, value_name = "System.map")]
    symbols: Option<PathBuf>,
    /// Stop after this many guest instructions.
    #[arg(long)]
    max_insns: Option<u64>,
    /// Stop after this many seconds of host time.
    #[arg(long)]
    timeout: Option<f64>,
    /// Follow host time instead of deterministic virtual time.
    #[arg(long)]
    realtime: bool,
    /// Print engine counters on stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Run the interpreter beside the translator and stop at the first
    /// block after which their states differ (with --engine bt).
    #[arg(long)]
    lockstep: bool,
    /// How --engine trap traps on a privileged instruction.
    #[arg(long, value_enum, value_name = "HOW", default_value = "real")]
    trap: TrapArg,
    /// With --engine trap: report on stderr every sensitive instruction
    /// whose deprivileged result differed from ring 0's (counts, first
    /// addresses, functions with --symbols, the first and newest events).
    /// The trap engine computes each one both ways in any case, so that a
    /// guest that stops making progress is told what misled it.
    #[arg(long)]
    pitfalls: bool,
    /// Translator tracing on stderr (--engine bt or trap; rejected with
    /// --engine interp).
    #[arg(long, value_enum, value_name = "WHAT")]
    trace: Option<TraceArg>,
    /// Whose answers the CPU gives where the SDM leaves a flag or result
    /// undefined (default: the host's vendor). Only --engine interp can
    /// follow another vendor: bt and trap run those instructions on the host.
    #[arg(long, value_name = "VENDOR", value_parser = parse_vendor)]
    cpu_vendor: Option<Vendor>,
    /// Decode every instruction every time (tests the decode cache).
    #[arg(long, hide = true)]
    no_decode_cache: bool,
}

fn parse_vendor(s: &str) -> Result<Vendor, String> {
    s.parse()
}

fn parse_size(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 1 << 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1 << 20),
    };
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    // QEMU rounds -m up to a multiple of 8 KiB; so does bt86.
    let bytes = bt86::memory::ram::round_size(n.checked_mul(mult).ok_or("size too large")?);
    if !(2 << 20..=3584 << 20).contains(&bytes) {
        return Err(format!("guest RAM must be between 2M and 3584M, not {s}"));
    }
    Ok(bytes as u32)
}

fn main() -> ExitCode {
    // An internal error (a bug, never a guest's doing) is one line, not a
    // backtrace; where it is caught (a callout) the run ends with status 14.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("bt86: internal error{at}: {what}");
    }));
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Run(args)) => run(args),
        Some(Command::Bench(args)) => bench(args),
        Some(Command::Explain(args)) => explain(args),
        Some(Command::Pitfalls(args)) => pitfalls(args),
        None => demo(),
    };
    ExitCode::from(code as u8)
}

/// `bt86` with no command: boot the embedded demo kernel.
fn demo() -> i32 {
    match bt86::pitfalls::demo() {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("bt86: pitfall demo: {e}");
            status::HOST
        }
    }
}

fn pitfalls(args: PitfallsArgs) -> i32 {
    use bt86::pitfalls::{self, Table};
    let engines: Vec<EngineKind> = match args.engine {
        None => pitfalls::ENGINES.to_vec(),
        Some(PitfallEngine::Interp) => vec![EngineKind::Interp],
        Some(PitfallEngine::Bt) => vec![EngineKind::Bt],
        Some(PitfallEngine::Trap) => vec![EngineKind::Trap(TrapMode::Real)],
        Some(PitfallEngine::TrapSim) => vec![EngineKind::Trap(TrapMode::Simulated)],
    };
    let mut columns = Vec::new();
    for e in engines {
        match pitfalls::run(e) {
            Ok(checks) => columns.push((e, checks)),
            Err(err) => {
                eprintln!("bt86: pitfall kernel: {err}");
                return status::HOST;
            }
        }
    }
    let table = Table { columns };
    if args.json {
        println!("{}", table.json());
    } else {
        print!("{}", table.render());
    }
    0
}

fn bench(args: BenchArgs) -> i32 {
    use bt86::bench::{self, Runner, WORKLOADS};
    use bt86::session::TrapMode;
    let runner = |r: &BenchRunner| match r {
        BenchRunner::Interp => Runner::Engine(EngineKind::Interp),
        BenchRunner::Bt => Runner::Engine(EngineKind::Bt),
        BenchRunner::Trap => Runner::Engine(EngineKind::Trap(TrapMode::Real)),
        BenchRunner::TrapSim => Runner::Engine(EngineKind::Trap(TrapMode::Simulated)),
        BenchRunner::Qemu => Runner::Qemu,
        BenchRunner::Native => Runner::Native,
    };
    if args.linux {
        use BenchRunner::*;
        if args.scale != 1 {
            eprintln!("bt86: --scale is for the workloads, not for --linux");
            return status::USAGE;
        }
        let engines = args.engines.unwrap_or_else(|| vec![Interp, Bt, Qemu]);
        let runners: Vec<Runner> = engines.iter().map(runner).collect();
        return bench::linux::cli(&runners, args.repeat, args.csv.as_deref());
    }
    if args.nano {
        use BenchRunner::*;
        if args.paging || args.scale != 1 {
            eprintln!("bt86: --paging and --scale are for the workloads, not for --nano");
            return status::USAGE;
        }
        let engines = args.engines.unwrap_or_else(|| vec![Interp, Bt, Trap, TrapSim, Qemu]);
        let runners: Vec<Runner> = engines.iter().map(runner).collect();
        return bench::nano::cli(&bench::nano::CliArgs {
            benches: &args.workload,
            runners: &runners,
            opts: bench::nano::Options { repeat: args.repeat, iters: args.iters },
            csv: args.csv.as_deref(),
            plot: args.plot.as_deref(),
        });
    }
    let workloads: Vec<_> = if args.workload.is_empty() {
        WORKLOADS.iter().collect()
    } else {
        let mut v = Vec::new();
        for name in &args.workload {
            match WORKLOADS.iter().find(|w| w.name == name) {
                Some(w) => v.push(w),
                None => {
                    let names: Vec<_> = WORKLOADS.iter().map(|w| w.name).collect();
                    eprintln!("bt86: unknown workload {name:?}; known: {}", names.join(", "));
                    return status::USAGE;
                }
            }
        }
        v
    };
    let mut runners = Vec::new();
    let default = [BenchRunner::Interp, BenchRunner::Bt, BenchRunner::Qemu, BenchRunner::Native];
    for r in args.engines.as_deref().unwrap_or(&default) {
        match r {
            BenchRunner::Qemu if !bench::qemu_available() => {
                eprintln!("bt86: qemu-system-i386 not found; its column is left out")
            }
            r => runners.push(runner(r)),
        }
    }
    bench::GUEST_PAGING.store(args.paging, std::sync::atomic::Ordering::Relaxed);
    let res = bench::measure(&workloads, &runners, args.repeat, args.scale, &mut std::io::stderr());
    print!("{}", bench::report(&res.rows, &runners));
    if let Some(path) = &args.csv {
        if let Err(e) = std::fs::write(path, bench::csv(&res.samples)) {
            eprintln!("bt86: cannot write {}: {e}", path.display());
            return status::HOST;
        }
    }
    if res.rows.iter().any(|r| r.error.is_some()) {
        return status::HOST;
    }
    0
}

fn read_modules(list: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|spec| {
            let path = spec.split(' ').next().unwrap_or(spec);
            let data = std::fs::read(path).with_context(|| format!("cannot read module {path}"))?;
            Ok((spec.to_string(), data))
        })
        .collect()
}

fn parse_addr(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(&h.replace('_', ""), 16).ok(),
        None => s.parse().ok(),
    }
}

/// Boots a kernel; on failure prints the one-line error and gives the
/// status to leave with.
fn boot(path: &str, image: &[u8], cfg: &RunConfig, out: Box<dyn std::io::Write + Send>) -> Result<Machine, i32> {
    session::boot(path, image, cfg, out).map_err(|e| match e {
        session::BootError::Load(e) => {
            eprintln!("bt86: {path}: {e}");
            status::BAD_IMAGE
        }
        e @ session::BootError::Vendor { .. } => {
            eprintln!("bt86: {e}");
            status::USAGE
        }
        e => {
            eprintln!("bt86: {e}");
            status::HOST
        }
    })
}

/// Reads a kernel image; on failure prints the one-line error and gives
/// the status to leave with.
fn read_kernel(path: &std::path::Path) -> Result<Vec<u8>, i32> {
    std::fs::read(path).map_err(|e| {
        eprintln!("bt86: cannot read kernel {}: {e}", path.display());
        status::BAD_IMAGE
    })
}

fn explain(args: ExplainArgs) -> i32 {
    let at = match args.at.as_deref().map(|a| parse_addr(a).ok_or(a)).transpose() {
        Ok(a) => a,
        Err(a) => {
            eprintln!("bt86: --at: not an address: {a:?} (hex with 0x, or decimal)");
            return status::USAGE;
        }
    };
    let path = args.kernel.display().to_string();
    let image = match read_kernel(&args.kernel) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let cfg = RunConfig { mem_size: args.mem, append: args.append, ..RunConfig::default() };
    let mut machine = match boot(&path, &image, &cfg, Box::new(std::io::sink())) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let eip = at.unwrap_or(machine.cpu.eip);
    match bt86::explain::explain(&mut machine, eip) {
        Ok(text) => {
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
            0
        }
        Err(e) => {
            eprintln!("bt86: explain: {e}");
            if at.is_some() {
                status::USAGE
            } else {
                status::BAD_IMAGE
            }
        }
    }
}

/// Connects standard input to COM1's receiver and, when it is a terminal,
/// puts it in raw mode (see `devices::serial_input`, `terminal`).
fn attach_console(m: &mut bt86::Machine) -> std::io::Result<Option<bt86::terminal::RawTerminal>> {
    let stdin = std::io::stdin();
    let raw = bt86::terminal::RawTerminal::enter(&stdin)?;
    if raw.is_some() {
        eprint!("bt86: the guest's serial console is on this terminal; Ctrl-A x quits, Ctrl-A h lists the keys\r\n");
    }
    m.platform.attach_serial_input(bt86::devices::serial_input::SerialInput::spawn(stdin)?);
    Ok(raw)
}

fn run(args: RunArgs) -> i32 {
    // The translator by default: it runs every guest the interpreter runs,
    // with the same results, several times faster (docs/benchmarks.md).
    let foreign_vendor = args.cpu_vendor.is_some_and(|v| v != Vendor::host());
    let engine = args.engine.unwrap_or(if foreign_vendor { Engine::Interp } else { Engine::Bt });
    if args.trace.is_some() && matches!(engine, Engine::Interp) {
        eprintln!("bt86: --trace reports what the translator does: use it with --engine bt or trap");
        return status::USAGE;
    }
    if args.pitfalls && !matches!(engine, Engine::Trap) {
        eprintln!("bt86: --pitfalls traces what a deprivileged CPU gets wrong: use it with --engine trap");
        return status::USAGE;
    }
    let path = args.kernel.display().to_string();
    let image = match read_kernel(&args.kernel) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let initrd = match args.initrd.as_deref().map(read_modules).transpose() {
        Ok(m) => m.unwrap_or_default(),
        Err(e) => {
            eprintln!("bt86: {e:#}");
            return status::BAD_IMAGE;
        }
    };
    let symbols = match args.symbols.as_deref().map(bt86::symbols::Symbols::load).transpose() {
        Ok(s) => s.map(std::sync::Arc::new),
        Err(e) => {
            eprintln!("bt86: {e}");
            return status::BAD_IMAGE;
        }
    };
    // A System.map holds link-time addresses; a KASLR kernel moves away
    // from them unless told not to (under bt86 too: it seeds from RDTSC).
    let nokaslr = args.append.as_deref().is_some_and(|a| a.split_whitespace().any(|w| w == "nokaslr"));
    if symbols.is_some() && bt86::loader::is_bzimage(&image) && !nokaslr {
        eprintln!("bt86: warning: --symbols: without nokaslr in --append a KASLR kernel (Debian's) runs at a random address the symbols do not name");
    }
    let cfg = RunConfig {
        engine: match engine {
            Engine::Interp => EngineKind::Interp,
            Engine::Bt => EngineKind::Bt,
            Engine::Trap if args.trap == TrapArg::Simulated => EngineKind::Trap(TrapMode::Simulated),
            Engine::Trap => EngineKind::Trap(TrapMode::Real),
        },
        mem_size: args.mem,
        append: args.append,
        initrd,
        limits: Limits {
            max_insns: args.max_insns,
            timeout: args.timeout.map(Duration::from_secs_f64),
            max_exceptions: None,
        },
        realtime: args.realtime,
        decode_cache: !args.no_decode_cache,
        trace: match args.trace {
            None => Trace::Off,
            Some(TraceArg::Blocks) => Trace::Blocks,
            Some(TraceArg::Callouts) => Trace::Callouts,
            Some(TraceArg::Perf) => Trace::Perf,
        },
        vendor: args.cpu_vendor.unwrap_or_else(Vendor::host),
        // Under trap the tracer always runs (it costs a second run of each
        // sensitive instruction only), so that a stop can point at what
        // misled the guest; --pitfalls prints its whole report.
        pitfalls: matches!(engine, Engine::Trap),
        symbols,
    };
    if let Err(e) = cfg.check_vendor() {
        eprintln!("bt86: {e}");
        return status::USAGE;
    }
    if let Some(w) = cfg.host_warning() {
        eprintln!("bt86: warning: {w}");
    }
    let mut machine = match boot(&path, &image, &cfg, Box::new(std::io::stdout())) {
        Ok(m) => m,
        Err(code) => return code,
    };
    // The console: stdin feeds COM1 (not under --lockstep, whose shadow
    // machine could not be given the same bytes at the same instruction).
    // The terminal, if it is one, is raw until `_terminal` drops, after
    // the run.
    let _terminal = if args.lockstep {
        None
    } else {
        match attach_console(&mut machine) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("bt86: cannot attach the console to standard input: {e}");
                return status::HOST;
            }
        }
    };
    let out = if args.lockstep {
        if cfg.engine == EngineKind::Interp {
            eprintln!("bt86: --lockstep compares the translator with the interpreter: use it with --engine bt or trap");
            return status::USAGE;
        }
        match boot(&path, &image, &cfg, Box::new(std::io::sink())) {
            Ok(shadow) => session::run_lockstep(machine, shadow, &cfg),
            Err(code) => return code,
        }
    } else {
        session::run(machine, &cfg)
    };
    if let Some(msg) = out.message() {
        eprintln!("bt86: {msg}");
    }
    if let Some(hint) = out.silent_stop_hint(&image) {
        eprintln!("bt86: {hint}");
    }
    if let Some(report) = out.stall_report() {
        eprint!("bt86: {report}");
    }
    if let Some((compared, report)) = &out.lockstep {
        match report {
            Some(r) => {
                eprint!("bt86: {r}");
                if !r.ends_with('\n') {
                    eprintln!();
                }
            }
            None => eprintln!("bt86: lockstep: {compared} blocks compared, no divergence"),
        }
        if report.is_some() && out.exit.status() % 2 == 1 {
            return status::DIVERGENCE;
        }
    }
    if args.stats {
        eprint!("{}", out.stats_report());
    }
    if args.pitfalls {
        if let Some(report) = out.pitfall_report(!args.stats) {
            eprint!("{report}");
        }
    }
    out.exit.status()
}
