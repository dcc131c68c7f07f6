//! AND, OR, XOR, TEST, NOT (SDM Vol. 2 instruction pages).
//!
//! The logical operations clear CF and OF and set SF, ZF, PF from the
//! result. AF is undefined; Intel and AMD clear it, and so does bt86
//! (`vendor/mod.rs`). NOT changes no flag.

use super::{merge, szp, Width};
use crate::cpu::state::flags::ARITH;

#[inline]
fn logic(w: Width, r: u32, eflags: u32) -> (u32, u32) {
    let r = r & w.mask();
    (r, merge(eflags, ARITH, szp(w, r)))
}

/// AND: `a & b`.
#[inline]
pub fn and(w: Width, a: u32, b: u32, eflags: u32) -> (u32, u32) {
    logic(w, a & b, eflags)
}

/// OR: `a | b`.
#[inline]
pub fn or(w: Width, a: u32, b: u32, eflags: u32) -> (u32, u32) {
    logic(w, a | b, eflags)
}

/// XOR: `a ^ b`.
#[inline]
pub fn xor(w: Width, a: u32, b: u32, eflags: u32) -> (u32, u32) {
    logic(w, a ^ b, eflags)
}

/// TEST: the flags of `a & b`; returns only the new EFLAGS.
#[inline]
pub fn test(w: Width, a: u32, b: u32, eflags: u32) -> u32 {
    logic(w, a & b, eflags).1
}

/// NOT: `!a`; no flag changes.
#[inline]
pub fn not(w: Width, a: u32) -> u32 {
    !a & w.mask()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::state::flags::{AF, CF, FIXED1, OF, PF, SF, ZF};

    #[test]
    fn logic_examples() {
        let f = FIXED1 | CF | OF | AF;
        assert_eq!(and(Width::B8, 0xf0, 0x0f, f), (0, FIXED1 | ZF | PF));
        assert_eq!(or(Width::B16, 0x8000, 1, f), (0x8001, FIXED1 | SF));
        assert_eq!(xor(Width::B32, 0xffff_ffff, 0x7fff_fffe, f), (0x8000_0001, FIXED1 | SF));
        assert_eq!(test(Width::B8, 0x103, 0x103, f), FIXED1 | PF);
        assert_eq!(not(Width::B8, 0x0f), 0xf0);
    }
}
