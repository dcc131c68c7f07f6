//! The host CPU as the oracle: each instruction runs natively through
//! `asm!` with a chosen input EFLAGS (popfq), and its result and EFLAGS
//! (pushfq) are compared with the library's under the host's vendor model
//! (`vendor/mod.rs`). All six arithmetic flags are compared, the undefined
//! ones included, except where a module header says otherwise. (The other
//! vendor's model is checked against its recorded vectors, `vendor/tests.rs`.)
//!
//! Inputs: edge values plus a few from a fixed xorshift, passed unmasked
//! (bits above the width must be ignored), every count 0..=33 for shifts,
//! and input flags with CF and AF both clear and set.

mod arith;
mod shifts;

use super::{Vendor, Width};
use crate::cpu::state::flags::{AF, ARITH, CF, DF, FIXED1, ID, IF};

pub(crate) use crate::cpu::alu::vendor::probe::run;

/// The model the host's answers are compared with: its own.
pub fn vendor() -> Vendor {
    Vendor::host()
}

pub const WIDTHS: [Width; 3] = [Width::B8, Width::B16, Width::B32];

/// Input arithmetic flags: CF and AF in all four states, the rest both ways.
pub const FLAG_INPUTS: [u32; 6] = [0, CF, AF, CF | AF, ARITH, ARITH & !(CF | AF)];

/// Bits outside the arithmetic flags the library must carry through.
const OTHER: u32 = FIXED1 | IF | DF | ID;

/// Edge values and a few deterministic pseudo-random ones.
pub fn values() -> Vec<u32> {
    let mut v = vec![0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];
    let mut x: u32 = 0x2545_f491;
    for _ in 0..11 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(x);
    }
    v
}

/// Compares one library result with the native one. `lib` ran with input
/// flags `fi | OTHER`, `native` with `fi | FIXED1`; `mask` selects the
/// compared arithmetic flags.
#[track_caller]
pub fn check(what: &str, w: Width, args: &[u32], fi: u32, lib: (u32, u32), native: (u32, u32), mask: u32) {
    let ctx = || format!("{what} {w:?} args={args:#x?} flags_in={fi:#x}");
    assert_eq!(lib.0, native.0 & w.mask(), "result of {}", ctx());
    assert_eq!(lib.1 & mask, native.1 & mask, "flags of {} (lib {:#x}, host {:#x})", ctx(), lib.1, native.1);
    assert_eq!(lib.1 & !ARITH, OTHER, "non-arithmetic flags changed by {}", ctx());
}

/// The library's input flags for a native input `fi`.
pub fn lib_flags(fi: u32) -> u32 {
    fi | OTHER
}

/// The native input flags.
pub fn host_flags(fi: u32) -> u32 {
    fi | FIXED1
}
