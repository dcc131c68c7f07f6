//! Execution engines. They all run the same [`crate::Machine`] and stop
//! with an [`Exit`].

pub mod bt;
pub mod guestcode;
pub mod interp;
pub mod lockstep;
pub mod trap;

use crate::machine::Fatal;

/// Why a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The guest wrote to isa-debug-exit: the process status to leave with.
    GuestExit(i32),
    /// The guest asked for a reset (i8042 0xFE); like QEMU with
    /// `-no-reboot`, bt86 stops.
    Reset,
    /// bt86 cannot go on (triple fault, unsupported feature).
    Fatal(Fatal),
    /// HLT with interrupts disabled: nothing can ever wake the CPU.
    HaltForever,
    /// Under a trap-and-emulate monitor: the guest stopped making progress
    /// (`system::depriv::Stall`).
    Stalled(crate::system::depriv::Stall),
    /// `--max-insns` reached.
    InsnLimit,
    /// [`Limits::max_exceptions`] reached (a guest in an exception storm
    /// retires nothing, so only this or a timeout stops it).
    ExceptionLimit,
    /// `--timeout` reached (host time).
    Timeout,
    /// The person at the console typed the escape to quit (`Ctrl-A x`).
    Quit,
}

/// Limits on a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// Stop after this many retired instructions.
    pub max_insns: Option<u64>,
    /// Stop after this much host time.
    pub timeout: Option<std::time::Duration>,
    /// Stop after delivering this many exceptions.
    pub max_exceptions: Option<u64>,
}
