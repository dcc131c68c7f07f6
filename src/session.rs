//! One run of a guest: build the machine, load the image, run an engine,
//! and turn how it ended into a process status. `main.rs` and the
//! integration tests both go through here.

use crate::system::depriv::{Stall, STARVED_NS};

/// How many pitfall events a stop report shows.
const STALL_EVENTS: usize = 10;
/// How many of the first pitfall events `--pitfalls` shows.
const FIRST_EVENTS: usize = 16;
use crate::cpu::alu::Vendor;
use crate::engine::bt::{Bt, BtStats};
use crate::engine::interp::{Interp, InterpStats};
use crate::engine::{Exit, Limits};
use crate::loader::{self, BootParams, LoadError};
use crate::machine::{Fatal, Machine, MachineConfig};
use crate::symbols::Symbols;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;

/// bt86's own exit statuses. Guest statuses from isa-debug-exit are always
/// odd, so these are even.
pub mod status {
    /// The guest asked for a reset; like `qemu-system-i386 -no-reboot`.
    pub const RESET: i32 = 0;
    /// The console's escape ended the run (`Ctrl-A x`); 0, as QEMU.
    pub const QUIT: i32 = 0;
    /// Bad command line (clap's own status).
    pub const USAGE: i32 = 2;
    /// The image is missing, unreadable or not a loadable kernel.
    pub const BAD_IMAGE: i32 = 4;
    /// The guest triple-faulted.
    pub const TRIPLE_FAULT: i32 = 6;
    /// The guest used an instruction or feature bt86 does not implement.
    pub const UNSUPPORTED: i32 = 8;
    /// HLT with interrupts disabled (or no interrupt source left).
    pub const HALTED: i32 = 10;
    /// `--max-insns` or `--timeout` reached.
    pub const LIMIT: i32 = 12;
    /// A host failure (out of memory for guest RAM, I/O error).
    pub const HOST: i32 = 14;
    /// `--lockstep` found the translator and the interpreter disagreeing.
    pub const DIVERGENCE: i32 = 16;
}

/// Which engine runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EngineKind {
    #[default]
    Interp,
    /// The binary translator (with the interpreter for what it leaves).
    Bt,
    /// Classical trap-and-emulate: the guest kernel runs deprivileged
    /// (modelled CPL 1) as translated IDENT code, privileged instructions
    /// trap to the monitor, sensitive ones misbehave as on pre-VT x86.
    Trap(TrapMode),
}

/// How `--engine trap` takes a trap on a privileged guest instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TrapMode {
    /// The host CPU runs the instruction in user mode and takes a real #GP
    /// (SIGSEGV), which the monitor's signal handler turns into an exit.
    #[default]
    Real,
    /// The trap is modelled as an exit to the dispatcher (no signal).
    Simulated,
}

impl EngineKind {
    /// The engine's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Interp => "interp",
            EngineKind::Bt => "bt",
            EngineKind::Trap(TrapMode::Real) => "trap",
            EngineKind::Trap(TrapMode::Simulated) => "trap-sim",
        }
    }
}

/// `--trace`: what the translator reports on stderr as it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Trace {
    #[default]
    Off,
    /// One line per block translated.
    Blocks,
    /// One line per callout executed.
    Callouts,
    /// A perf map (/tmp/perf-PID.map) of the translation cache.
    Perf,
}

/// Everything a run needs besides the kernel image.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub engine: EngineKind,
    pub mem_size: u32,
    pub append: Option<String>,
    pub initrd: Vec<(String, Vec<u8>)>,
    pub limits: Limits,
    pub realtime: bool,
    /// Cache decoded instructions (off only to test the cache).
    pub decode_cache: bool,
    /// Translator tracing (`--engine bt` only).
    pub trace: Trace,
    /// The vendor model of undefined flags (`--cpu-vendor`); only the
    /// interpreter can follow one other than the host's.
    pub vendor: Vendor,
    /// Under `--engine trap`: the pitfall tracer (`system/pitfall_log.rs`).
    pub pitfalls: bool,
    /// The guest kernel's symbols (`--symbols`), which name the guest
    /// addresses a run reports; `Outcome::symbols` hands them on.
    pub symbols: Option<Arc<Symbols>>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            engine: EngineKind::Interp,
            mem_size: crate::machine::DEFAULT_MEM,
            append: None,
            initrd: Vec::new(),
            limits: Limits::default(),
            realtime: false,
            decode_cache: true,
            trace: Trace::Off,
            vendor: Vendor::host(),
            pitfalls: false,
            symbols: None,
        }
    }
}

/// Why a guest could not be started.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("cannot allocate guest RAM: {0}")]
    Host(#[from] std::io::Error),
    /// The engine runs guest instructions on the host, so its undefined
    /// flags are the host vendor's and no other model can be chosen.
    #[error(
        "--engine {engine} runs guest instructions on this {host} host: --cpu-vendor {vendor} needs --engine interp"
    )]
    Vendor { engine: &'static str, host: Vendor, vendor: Vendor },
}

impl RunConfig {
    /// Whether the engine can give the configured vendor's answers.
    pub fn check_vendor(&self) -> Result<(), BootError> {
        let host = Vendor::host();
        if self.engine != EngineKind::Interp && self.vendor != host {
            return Err(BootError::Vendor { engine: self.engine.name(), host, vendor: self.vendor });
        }
        Ok(())
    }

    /// A warning for a host that does not behave as its own vendor model
    /// (`cpu::alu::vendor::probe`), when the run depends on it: the engine
    /// runs IDENT code, or the interpreter follows the host's model.
    pub fn host_warning(&self) -> Option<String> {
        let host = crate::cpu::alu::vendor::probe::host();
        (self.vendor == host.vendor).then(|| host.disagreement()).flatten()
    }
}

/// How a run ended, with the engine's counters.
pub struct Outcome {
    pub exit: Exit,
    pub retired: u64,
    pub interp: InterpStats,
    pub bt: Option<BtStats>,
    /// Under `--engine trap`: the monitor's counters.
    pub trap: Option<crate::engine::trap::TrapStats>,
    /// With `--lockstep`: how many blocks were compared, and the first
    /// divergence, if any.
    pub lockstep: Option<(u64, Option<String>)>,
    pub machine: Machine,
    /// The run's `RunConfig::symbols`.
    pub symbols: Option<Arc<Symbols>>,
}

/// A serial sink that keeps what the guest wrote (for `bt86 pitfalls`, the
/// benchmarks and the tests).
#[derive(Clone, Default)]
pub struct Capture(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Capture {
    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("capture poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Builds a machine and loads a kernel into it: a Linux bzImage when the
/// image has a Linux setup header, a Multiboot kernel otherwise.
pub fn boot(
    kernel_path: &str,
    image: &[u8],
    cfg: &RunConfig,
    serial_out: Box<dyn Write + Send>,
) -> Result<Machine, BootError> {
    cfg.check_vendor()?;
    let mc = MachineConfig { mem_size: cfg.mem_size, realtime: cfg.realtime, vendor: cfg.vendor };
    let mut m = Machine::new(&mc, serial_out)?;
    let params =
        BootParams { kernel_path: kernel_path.to_string(), append: cfg.append.clone(), modules: cfg.initrd.clone() };
    if loader::is_bzimage(image) {
        loader::load_linux(&mut m, image, &params)?;
    } else {
        loader::load_multiboot(&mut m, image, &params)?;
    }
    Ok(m)
}

/// Runs a booted machine on the configured engine.
pub fn run(mut m: Machine, cfg: &RunConfig) -> Outcome {
    let mut interp = Interp::new(cfg.decode_cache);
    let mut bt_stats = None;
    let mut trap_stats = None;
    let exit = match cfg.engine {
        EngineKind::Interp => interp.run(&mut m, cfg.limits),
        EngineKind::Bt => match Bt::new() {
            Ok(mut bt) => {
                bt.set_trace(cfg.trace);
                let exit = bt.run(&mut interp, &mut m, cfg.limits);
                bt_stats = Some(bt.stats.clone());
                exit
            }
            Err(e) => Exit::Fatal(Fatal::Host(e)),
        },
        EngineKind::Trap(mode) => {
            let trace = cfg.trace;
            let (exit, stats, t) =
                crate::engine::trap::run(&mut interp, &mut m, cfg.limits, mode == TrapMode::Real, cfg.pitfalls, |bt| {
                    bt.set_trace(trace)
                });
            bt_stats = stats;
            trap_stats = Some(t);
            exit
        }
    };
    m.platform.flush();
    Outcome {
        exit,
        retired: m.clock.retired,
        interp: interp.stats,
        bt: bt_stats,
        trap: trap_stats,
        lockstep: None,
        machine: m,
        symbols: cfg.symbols.clone(),
    }
}

/// Runs a booted machine under the translator with `shadow` (booted the
/// same way) following under the interpreter, comparing them after every
/// translated block and their RAM at the end.
///
/// With `--engine trap` both machines run deprivileged under a monitor: the
/// translated code (with its real traps) is checked against the
/// interpreter on the same deprivileged CPU model.
pub fn run_lockstep(mut m: Machine, mut shadow: Machine, cfg: &RunConfig) -> Outcome {
    let mut interp = Interp::new(cfg.decode_cache);
    let bt = match cfg.engine {
        EngineKind::Trap(mode) => {
            shadow.monitor = Some(crate::engine::trap::monitor(false, false));
            crate::engine::trap::prepare(&mut m, mode == TrapMode::Real, cfg.pitfalls)
        }
        _ => Bt::new(),
    };
    let bt = match bt {
        Ok(mut bt) => {
            bt.set_trace(cfg.trace);
            bt
        }
        Err(e) => {
            let exit = Exit::Fatal(Fatal::Host(e));
            return Outcome {
                exit,
                retired: 0,
                interp: interp.stats,
                bt: None,
                trap: None,
                lockstep: None,
                machine: m,
                symbols: cfg.symbols.clone(),
            };
        }
    };
    let mut ls = crate::engine::lockstep::Lockstep::new(bt, &mut shadow);
    let exit = ls.run(&mut interp, &mut m, cfg.limits);
    let mut report = ls.divergence.as_ref().map(|d| d.describe(cfg.symbols.as_deref()));
    if report.is_none() {
        if let Some(at) = ls.compare_ram(&m) {
            report = Some(format!("guest RAM differs at the end of the run, first at physical {at:#010x}"));
        }
    }
    let compared = ls.compared;
    let bt_stats = Some(ls.bt.collect_stats());
    m.platform.flush();
    Outcome {
        exit,
        retired: m.clock.retired,
        interp: interp.stats,
        bt: bt_stats,
        trap: None,
        lockstep: Some((compared, report)),
        machine: m,
        symbols: cfg.symbols.clone(),
    }
}

impl Exit {
    /// The process status bt86 leaves with.
    pub fn status(&self) -> i32 {
        match self {
            Exit::GuestExit(s) => *s,
            Exit::Reset => status::RESET,
            Exit::Quit => status::QUIT,
            Exit::Fatal(Fatal::TripleFault) => status::TRIPLE_FAULT,
            Exit::Fatal(Fatal::Unsupported(_)) => status::UNSUPPORTED,
            Exit::Fatal(Fatal::Host(_)) => status::HOST,
            Exit::Fatal(Fatal::Divergence) => status::DIVERGENCE,
            Exit::HaltForever | Exit::Stalled(_) => status::HALTED,
            Exit::InsnLimit | Exit::ExceptionLimit | Exit::Timeout => status::LIMIT,
        }
    }

    /// The one-line message bt86 prints on stderr, if any.
    pub fn message(&self, m: &Machine) -> Option<String> {
        self.message_named(m, None)
    }

    /// `message`, with the guest function the CPU stopped in named after
    /// its address (` (func+0xoff)`) when `symbols` know it.
    pub fn message_named(&self, m: &Machine, symbols: Option<&Symbols>) -> Option<String> {
        let cs = m.cpu.seg(crate::cpu::Seg::Cs);
        let func = symbols.and_then(|s| s.name(cs.base.wrapping_add(m.cpu.eip)));
        let plain = format!("at {:04x}:{:08x}", cs.selector, m.cpu.eip);
        // `at 0060:c1da08ff (func+0x78)`, or in parentheses already
        // `(at 0060:c1da08ff in func+0x78)`.
        let (at, in_func) = match &func {
            Some(f) => (format!("{plain} ({f})"), format!("{plain} in {f}")),
            None => (plain.clone(), plain),
        };
        match self {
            Exit::GuestExit(_) => None,
            Exit::Reset => Some("guest requested a system reset; stopping (as QEMU with -no-reboot)".into()),
            Exit::Fatal(Fatal::TripleFault) => Some(format!("guest triple fault {at}")),
            Exit::Fatal(Fatal::Unsupported(what)) => Some(format!("{what} ({in_func})")),
            Exit::Fatal(Fatal::Host(what)) => Some(format!("host failure: {what}")),
            Exit::Fatal(Fatal::Divergence) => Some(format!("lockstep: bt and interp diverged {at}")),
            Exit::HaltForever => Some(format!(
                "guest halted {at} with interrupts disabled or every interrupt source masked; it can never wake up"
            )),
            Exit::Stalled(Stall::Panic(line)) => Some(format!("the guest kernel panicked: \"{line}\"; stopping")),
            Exit::Stalled(Stall::Starved { cs, eip, linear }) => {
                let since = match symbols.and_then(|s| s.name(*linear)) {
                    Some(f) => format!("{cs:04x}:{eip:08x} ({f})"),
                    None => format!("{cs:04x}:{eip:08x}"),
                };
                Some(format!(
                    "guest stopped making progress: a device interrupt has waited {} s of virtual time on a clear \
                     virtual IF since {since}; stopping {at}",
                    STARVED_NS / 1_000_000_000
                ))
            }
            Exit::InsnLimit => Some(format!("instruction limit reached {at}")),
            Exit::ExceptionLimit => Some(format!("exception limit reached {at}")),
            Exit::Timeout => Some(format!("timeout reached {at}")),
            Exit::Quit => Some(format!("terminated from the console (Ctrl-A x) {at}")),
        }
    }
}

impl Outcome {
    /// The guest symbols the run was given (`--symbols`), to name guest
    /// addresses in what is reported about it.
    pub fn symbols(&self) -> Option<&Symbols> {
        self.symbols.as_deref()
    }

    /// The guest function at linear address `a`, if the symbols know it.
    fn name(&self, a: u32) -> Option<String> {
        self.symbols().and_then(|s| s.name(a))
    }

    /// How the run ended, as `Exit::message_named` with the run's symbols.
    pub fn message(&self) -> Option<String> {
        self.exit.message_named(&self.machine, self.symbols())
    }

    /// For a Linux kernel (`image`) that stopped for good before it wrote a
    /// byte to the serial port: the likely cause, since it said nothing.
    pub fn silent_stop_hint(&self, image: &[u8]) -> Option<String> {
        let stopped = matches!(
            self.exit,
            Exit::HaltForever | Exit::Fatal(Fatal::TripleFault) | Exit::Fatal(Fatal::Unsupported(_))
        );
        let silent = self.machine.platform.serial_bytes_sent() == 0;
        (stopped && silent && loader::is_bzimage(image)).then(|| loader::silent_stop_cause(image)).flatten()
    }

    /// The `--stats` report.
    pub fn stats_report(&self) -> String {
        let mut s = String::new();
        let i = &self.interp;
        let mmu = &self.machine.mmu.stats;
        let host = crate::cpu::alu::vendor::probe::host();
        let _ = writeln!(s, "vendor model           {} (host: {})", self.machine.vendor, host.describe());
        let _ = writeln!(s, "instructions retired   {}", self.retired);
        let _ = writeln!(s, "blocks decoded         {}", i.blocks_decoded);
        let _ = writeln!(s, "block lookups          {}", i.block_lookups);
        let _ = writeln!(s, "uncached instructions  {}", i.uncached_insns);
        let _ = writeln!(s, "exceptions             {}", i.exceptions);
        let _ = writeln!(s, "interrupts             {}", i.interrupts);
        let _ = writeln!(s, "smc invalidations      {}", i.smc_invalidations);
        let _ = writeln!(s, "decode cache flushes   {} (started over at its budget)", i.decode_cache_flushes);
        let _ = writeln!(s, "tlb hits / misses      {} / {}", mmu.tlb_hits, mmu.tlb_misses);
        let _ = writeln!(s, "tlb flushes            {}", mmu.tlb_flushes);
        let _ = writeln!(s, "unknown port accesses  {}", self.machine.platform.unknown_port_accesses);
        if let Some(b) = &self.bt {
            let pct = |n: u64| if self.retired == 0 { 0.0 } else { 100.0 * n as f64 / self.retired as f64 };
            let _ = writeln!(
                s,
                "bt blocks translated   {} ({} guest instructions)",
                b.blocks_translated, b.translated_insns
            );
            let _ = writeln!(
                s,
                "bt ident / mem / call  {} / {} / {} (translated instructions by kind)",
                b.ident_insns,
                b.ident_mem_insns,
                b.translated_insns - b.ident_insns - b.ident_mem_insns
            );
            let per_insn = b.translate_ns as f64 / b.translated_insns.max(1) as f64;
            let _ = writeln!(s, "bt translation time    {:.0} ns per guest instruction (decode included)", per_insn);
            let _ = writeln!(s, "bt dispatches          {}", b.block_runs);
            let _ = writeln!(s, "bt chains              {}", b.chains);
            let _ = writeln!(s, "bt callouts executed   {}", b.callout_insns);
            let _ = writeln!(
                s,
                "bt translated share    {:.1}% of retired instructions ran in translated blocks",
                pct(b.insns_in_translated_blocks)
            );
            let _ = writeln!(
                s,
                "bt inline share        {:.1}% of retired instructions ran as inline host code (no callout)",
                pct(b.insns_in_translated_blocks.saturating_sub(b.callout_insns))
            );
            let _ = writeln!(s, "bt interp fallbacks    {}", b.interp_fallbacks);
            let _ = writeln!(
                s,
                "bt translate failures  {} (blocks the translator could not emit: they ran in the interpreter)",
                b.translate_failures
            );
            let _ = writeln!(
                s,
                "bt straddlers          {} (translations of an instruction that runs off the end of its page)",
                b.straddlers
            );
            let _ = writeln!(
                s,
                "bt view faults         {} (guest or linear view: past RAM, a store into code, a page not mapped yet)",
                b.guest_view_faults
            );
            let _ = writeln!(
                s,
                "bt view switches       {} (paging on: between the linear views and the inline TLB)",
                b.linear_switches
            );
            let _ = writeln!(
                s,
                "bt budget exits        {} (blocks that could not cover their charge: a deadline, or the window's end)",
                b.budget_exits
            );
            let _ = writeln!(
                s,
                "bt views given up      {} (the host refused a mapping change, or the mapping budget ran out)",
                b.views_given_up
            );
            let _ = writeln!(
                s,
                "bt view budget clears  {} (linear views started over at the mapping budget)",
                b.view_budget_clears
            );
            let _ = writeln!(s, "bt invalidations       {}", b.invalidations);
            let _ = writeln!(s, "bt flushes             {}", b.flushes);
            // The ten most frequent mnemonics called out for.
            for (name, n) in &b.callouts_by_kind {
                let _ = writeln!(s, "bt callouts {name:<10} {n}");
            }
        }
        if let Some(t) = &self.trap {
            let mon = &t.monitor;
            let _ = writeln!(s, "trap privileged insns  {} (each trapped to the monitor)", mon.privileged);
            if t.real {
                let _ = writeln!(s, "trap real host traps   {} (#GP in user mode, delivered as SIGSEGV)", t.real_traps);
            } else {
                let _ = writeln!(s, "trap real host traps   0 (--trap=simulated: traps modelled as exits)");
            }
            let _ = writeln!(s, "trap sensitive insns   {} (ran on the deprivileged CPU)", mon.sensitive);
            let _ = writeln!(
                s,
                "trap sensitive faults  {} (of those, faulted at CPL 1 and were emulated)",
                mon.sensitive_faults
            );
            let _ = writeln!(
                s,
                "trap reflected excepts {} (through the shadow IDT to the guest's handlers)",
                mon.reflected_exceptions
            );
            let _ = writeln!(
                s,
                "trap reflected irqs    {} (device interrupts, delivered at virtual IF = 1)",
                mon.reflected_interrupts
            );
            let _ = writeln!(s, "trap reflected int n   {} (INT n, INT3, INTO, INT1)", mon.reflected_int);
            let _ = writeln!(s, "trap monitor region    {} (accesses past a truncated limit, emulated)", mon.region);
            if let Some(log) = self.pitfall_log() {
                s.push_str(&log.summary(&|a| self.name(a)));
            }
        }
        s
    }

    /// Under `--engine trap` with the pitfall tracer: what it found.
    pub fn pitfall_log(&self) -> Option<&crate::system::pitfall_log::PitfallLog> {
        self.machine.monitor.as_ref().and_then(|m| m.log.as_deref())
    }

    /// Under `--engine trap`, when the guest stopped making progress: the
    /// pitfall events that led there, newest first (none if nothing
    /// sensitive behaved differently).
    pub fn stall_report(&self) -> Option<String> {
        let stopped = matches!(self.exit, Exit::HaltForever | Exit::Stalled(_) | Exit::Fatal(Fatal::TripleFault));
        if !stopped || self.trap.is_none() {
            return None;
        }
        let log = self.pitfall_log().filter(|log| !log.recent.is_empty())?;
        let mut s = "the sensitive instructions that behaved differently from ring 0, newest first:\n".to_string();
        s.push_str(&log.newest(STALL_EVENTS, &|a| self.name(a)));
        Some(s)
    }

    /// `--pitfalls`' report: the summary (unless `--stats` printed it),
    /// the counts by function, the first events and the newest.
    pub fn pitfall_report(&self, with_summary: bool) -> Option<String> {
        let log = self.pitfall_log()?;
        let name = |a| self.name(a);
        let mut s = if with_summary { log.summary(&name) } else { String::new() };
        let funcs = log.by_function(&name);
        if !funcs.is_empty() {
            s.push_str("pitfalls: by function (the 20 most frequent):\n");
            for (what, func, n) in funcs.iter().take(20) {
                s.push_str(&format!("  {what:<10} {n:>10}  {func}\n"));
            }
        }
        if !log.earliest.is_empty() {
            s.push_str("pitfalls: the first, oldest first (#instructions retired, instruction, address):\n");
            s.push_str(&log.first_events(FIRST_EVENTS, &name));
        }
        if !log.recent.is_empty() {
            s.push_str("pitfalls: the newest, newest first:\n");
            s.push_str(&log.newest(STALL_EVENTS, &name));
        }
        Some(s)
    }
}
