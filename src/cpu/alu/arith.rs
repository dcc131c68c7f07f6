//! ADD, ADC, SUB, SBB, CMP, INC, DEC, NEG (SDM Vol. 2 instruction pages).
//!
//! All six flags are defined. CF/AF/OF come from the carry vector
//! `(a & b) | ((a | b) & !r)` (addition) or the borrow vector
//! `(!a & b) | ((!a | b) & r)` (subtraction): bit i is the carry or borrow
//! out of bit i, whatever the carry in was, so ADC/SBB need no special case.
//! INC and DEC keep CF.

use super::{cao, merge, szp, Width};
use crate::cpu::state::flags::{ARITH, CF};

#[inline]
fn add_cf(w: Width, a: u32, b: u32, cin: u32, eflags: u32, mask: u32) -> (u32, u32) {
    let r = a.wrapping_add(b).wrapping_add(cin) & w.mask();
    let cv = (a & b) | ((a | b) & !r);
    (r, merge(eflags, mask, (szp(w, r) | cao(w, cv)) & mask))
}

#[inline]
fn sub_cf(w: Width, a: u32, b: u32, bin: u32, eflags: u32, mask: u32) -> (u32, u32) {
    let r = a.wrapping_sub(b).wrapping_sub(bin) & w.mask();
    let bv = (!a & b) | ((!a | b) & r);
    (r, merge(eflags, mask, (szp(w, r) | cao(w, bv)) & mask))
}

/// ADD: `a + b`.
#[inline]
pub fn add(w: Width, a: u32, b: u32, eflags: u32) -> (u32, u32) {
    add_cf(w, a, b, 0, eflags, ARITH)
}

/// ADC: `a + b + CF`.
#[inline]
pub fn adc(w: Width, a: u32, b: u32, eflags: u32) -> (u32, u32) {
    add_cf(w, a, b, eflags & CF, eflags, ARITH)
}

/// SUB: `a - b`.
#[inline]
pub fn sub(w: Width, a: u32, b: u32, eflags: u32) -> (u32, u32) {
    sub_cf(w, a, b, 0, eflags, ARITH)
}

/// SBB: `a - (b + CF)`.
#[inline]
pub fn sbb(w: Width, a: u32, b: u32, eflags: u32) -> (u32, u32) {
    sub_cf(w, a, b, eflags & CF, eflags, ARITH)
}

/// CMP: the flags of `a - b`; returns only the new EFLAGS.
#[inline]
pub fn cmp(w: Width, a: u32, b: u32, eflags: u32) -> u32 {
    sub_cf(w, a, b, 0, eflags, ARITH).1
}

/// INC: `a + 1`, CF unchanged.
#[inline]
pub fn inc(w: Width, a: u32, eflags: u32) -> (u32, u32) {
    add_cf(w, a, 1, 0, eflags, ARITH & !CF)
}

/// DEC: `a - 1`, CF unchanged.
#[inline]
pub fn dec(w: Width, a: u32, eflags: u32) -> (u32, u32) {
    sub_cf(w, a, 1, 0, eflags, ARITH & !CF)
}

/// NEG: `0 - a`; CF is set unless `a` is zero.
#[inline]
pub fn neg(w: Width, a: u32, eflags: u32) -> (u32, u32) {
    sub_cf(w, 0, a, 0, eflags, ARITH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::state::flags::{AF, DF, FIXED1, IF, OF, PF, SF, ZF};

    const BASE: u32 = FIXED1 | IF | DF;

    #[test]
    fn add_examples() {
        // add al, 0x01 with al = 0x7f: signed overflow, half carry
        assert_eq!(add(Width::B8, 0x7f, 1, BASE), (0x80, BASE | SF | OF | AF));
        // add eax, 1 with eax = 0xffffffff: zero, carry
        assert_eq!(add(Width::B32, u32::MAX, 1, BASE), (0, BASE | ZF | PF | CF | AF));
        // operand bits above the width are ignored
        assert_eq!(add(Width::B16, 0xabcd_0001, 0x1234_0002, BASE), (3, BASE | PF));
    }

    #[test]
    fn adc_sbb_use_carry() {
        assert_eq!(adc(Width::B8, 0xff, 0, BASE | CF), (0, BASE | ZF | PF | CF | AF));
        assert_eq!(sbb(Width::B8, 0, 0, BASE | CF), (0xff, BASE | SF | PF | CF | AF));
        assert_eq!(sbb(Width::B32, 5, 5, BASE), (0, BASE | ZF | PF));
    }

    #[test]
    fn sub_cmp_neg() {
        assert_eq!(sub(Width::B16, 0x8000, 1, BASE), (0x7fff, BASE | OF | AF | PF));
        assert_eq!(cmp(Width::B32, 1, 2, BASE), BASE | CF | SF | AF | PF);
        assert_eq!(neg(Width::B8, 0, BASE | CF), (0, BASE | ZF | PF));
        assert_eq!(neg(Width::B8, 0x80, BASE), (0x80, BASE | CF | OF | SF));
    }

    #[test]
    fn inc_dec_keep_cf() {
        assert_eq!(inc(Width::B8, 0xff, BASE | CF), (0, BASE | CF | ZF | PF | AF));
        assert_eq!(inc(Width::B8, 0xff, BASE), (0, BASE | ZF | PF | AF));
        assert_eq!(dec(Width::B32, 0x8000_0000, BASE | CF), (0x7fff_ffff, BASE | CF | OF | AF | PF));
    }
}
