//! `--engine trap`: classical trap-and-emulate, as on x86 before VT-x,
//! modelled. The guest runs as translated code exactly as under `bt`
//! (IDENT instructions inline, nothing rewritten for fidelity), but on a
//! deprivileged CPU (`system/depriv.rs`): the guest kernel at CPL 1 under
//! the monitor's tables, so
//!
//! - a privileged instruction traps to the monitor, which emulates it with
//!   the same `system/` code the other engines use: by default the host CPU
//!   really runs a privileged instruction in user mode and takes #GP
//!   (`signal.rs`); with `--trap=simulated` the trap is modelled as the
//!   callout alone;
//! - a sensitive unprivileged instruction runs as the deprivileged CPU
//!   would run it: silently differently (the Robin & Irvine pitfalls).
//!
//! Sensitive instructions are never executed natively: the host process
//! runs at CPL 3 under Linux's tables, so ring 1 and the monitor's tables
//! exist only in the model (a native `int 0x80` would be a host system call).

pub mod signal;

use crate::engine::bt::{Bt, BtStats};
use crate::engine::interp::Interp;
use crate::engine::{Exit, Limits};
use crate::machine::{Fatal, Machine};
use crate::system::depriv::{Monitor, MonitorStats};

/// What `--stats` reports for the trap engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapStats {
    pub monitor: MonitorStats,
    /// Real host #GP traps taken (0 with `--trap=simulated`).
    pub real_traps: u64,
    pub real: bool,
}

/// A monitor for a machine: with `real` traps, each privileged instruction
/// the interpreter runs takes a real host trap through the stub
/// (translated code takes its own at its trap sites); with `pitfalls`, the
/// pitfall tracer on.
pub fn monitor(real: bool, pitfalls: bool) -> Monitor {
    Monitor {
        take_trap: real.then_some(signal::take_trap as fn()),
        log: pitfalls.then(Box::default),
        ..Monitor::default()
    }
}

/// Puts `m` under a monitor and returns the translator that runs it:
/// with `real` traps, one whose privileged instructions take real host
/// traps.
pub fn prepare(m: &mut Machine, real: bool, pitfalls: bool) -> Result<Bt, String> {
    let bt = if real { Bt::with_real_traps()? } else { Bt::new()? };
    m.monitor = Some(monitor(real, pitfalls));
    m.platform.watch_serial(crate::system::depriv::PANIC_TEXT);
    Ok(bt)
}

/// Runs the machine under the trap-and-emulate monitor; `real` chooses
/// real host traps over modelled ones. `setup` configures the translator
/// (tracing) before the run.
pub fn run(
    interp: &mut Interp,
    m: &mut Machine,
    limits: Limits,
    real: bool,
    pitfalls: bool,
    setup: impl FnOnce(&mut Bt),
) -> (Exit, Option<BtStats>, TrapStats) {
    let mut bt = match prepare(m, real, pitfalls) {
        Ok(bt) => bt,
        Err(e) => return (Exit::Fatal(Fatal::Host(e)), None, TrapStats::default()),
    };
    setup(&mut bt);
    let exit = bt.run(interp, m, limits);
    let stats = TrapStats {
        monitor: m.monitor.as_ref().map(|mon| mon.stats).unwrap_or_default(),
        real_traps: bt.real_traps_taken(),
        real,
    };
    (exit, Some(bt.stats.clone()), stats)
}
