//! The host terminal while a guest's serial console is on it.
//!
//! When bt86's standard input is a terminal, `bt86 run` puts it in raw
//! mode, as QEMU does for `-nographic`: every key goes to the guest as it
//! is typed (Ctrl-C interrupts the guest's program, not bt86), no local
//! echo (the guest echoes), no line editing. Output processing stays on
//! (QEMU keeps OPOST too), so a guest that ends its lines with a bare LF
//! still prints readable lines.
//!
//! The terminal is restored on every way out: when the [`RawTerminal`]
//! is dropped (the run ended, an error was returned, or a panic unwound
//! through `main`), and when bt86 is killed by SIGTERM, SIGHUP, SIGINT or
//! SIGQUIT from elsewhere: a thread restores the saved mode, then the
//! signal's default action ends the process as it would have.

use rustix::termios::{self, OptionalActions, OutputModes, Termios};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::{IsTerminal, Stdin};
use std::os::fd::AsFd;

/// Standard input in raw mode until dropped.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Puts standard input in raw mode; `Ok(None)` when it is not a
    /// terminal (a pipe, a file, /dev/null), which needs nothing.
    pub fn enter(stdin: &Stdin) -> std::io::Result<Option<RawTerminal>> {
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let saved = termios::tcgetattr(stdin.as_fd())?;
        let mut raw = saved.clone();
        raw.make_raw();
        raw.output_modes |= OutputModes::OPOST;
        // Restore on a fatal signal first, so no window leaves it raw. The
        // thread lives as long as the process: after the drop it restores
        // the same mode again, and the signal still ends the process.
        let mut signals = Signals::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT])?;
        let restore = saved.clone();
        std::thread::Builder::new().name("bt86 terminal signals".into()).spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _ = termios::tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &restore);
                let _ = signal_hook::low_level::emulate_default_handler(sig);
            }
        })?;
        termios::tcsetattr(stdin.as_fd(), OptionalActions::Flush, &raw)?;
        Ok(Some(RawTerminal { saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // Drain: what the guest wrote is printed in raw mode's terms.
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), OptionalActions::Drain, &self.saved);
    }
}
