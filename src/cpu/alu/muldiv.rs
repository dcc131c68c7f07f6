//! MUL, IMUL (one-, two- and three-operand), DIV, IDIV (SDM Vol. 2).
//!
//! MUL/IMUL define only CF and OF (set when the high half is significant);
//! SF, ZF, AF and PF are undefined and come from the [`Vendor`]. DIV/IDIV
//! leave every flag undefined; they return only (quotient, remainder), and
//! the caller applies [`div_flags`] on success. A zero divisor
//! or a quotient that does not fit the width raises #DE
//! (`Exception::DivideError`), including IDIV of the most negative dividend
//! by -1.

use super::vendor::Vendor;
use super::{merge, Width};
use crate::cpu::exception::{Exception, Fault};
use crate::cpu::state::flags::{ARITH, CF, OF};

/// Flags after a multiplication with low half `lo` (masked); `wide` says
/// whether the high half carries information (CF = OF = wide).
#[inline]
fn mul_flags(v: Vendor, w: Width, lo: u32, wide: bool, eflags: u32) -> u32 {
    merge(eflags, ARITH, if wide { CF | OF } else { 0 } | v.mul_szap(w, lo, eflags))
}

/// MUL: unsigned `a * b` at double width; returns (low, high, eflags).
#[inline]
pub fn mul(v: Vendor, w: Width, a: u32, b: u32, eflags: u32) -> (u32, u32, u32) {
    let p = u64::from(a & w.mask()) * u64::from(b & w.mask());
    let lo = p as u32 & w.mask();
    let hi = (p >> w.bits()) as u32;
    (lo, hi, mul_flags(v, w, lo, hi != 0, eflags))
}

/// One-operand IMUL: signed `a * b` at double width; returns (low, high,
/// eflags) with both halves masked to the width.
#[inline]
pub fn imul_wide(v: Vendor, w: Width, a: u32, b: u32, eflags: u32) -> (u32, u32, u32) {
    let p = i64::from(w.sext(a)) * i64::from(w.sext(b));
    let lo = p as u32 & w.mask();
    let hi = (p >> w.bits()) as u32 & w.mask();
    (lo, hi, mul_flags(v, w, lo, p != i64::from(w.sext(lo)), eflags))
}

/// Two- and three-operand IMUL: signed `a * b` truncated to the width.
#[inline]
pub fn imul(v: Vendor, w: Width, a: u32, b: u32, eflags: u32) -> (u32, u32) {
    let (lo, _, f) = imul_wide(v, w, a, b, eflags);
    (lo, f)
}

/// EFLAGS after a DIV or IDIV that did not fault (all six are undefined).
#[inline]
pub fn div_flags(v: Vendor, eflags: u32) -> u32 {
    v.div_flags(eflags)
}

/// DIV: unsigned `hi:lo / divisor` (AH:AL, DX:AX or EDX:EAX); returns
/// (quotient, remainder).
#[inline]
pub fn div(w: Width, hi: u32, lo: u32, divisor: u32) -> Fault<(u32, u32)> {
    let n = (u64::from(hi & w.mask()) << w.bits()) | u64::from(lo & w.mask());
    let d = u64::from(divisor & w.mask());
    if d == 0 {
        return Err(Exception::DivideError);
    }
    let q = n / d;
    if q > u64::from(w.mask()) {
        return Err(Exception::DivideError);
    }
    Ok((q as u32, (n % d) as u32))
}

/// IDIV: signed `hi:lo / divisor`; returns (quotient, remainder) masked to
/// the width. The remainder has the sign of the dividend.
#[inline]
pub fn idiv(w: Width, hi: u32, lo: u32, divisor: u32) -> Fault<(u32, u32)> {
    let sh = 64 - 2 * w.bits();
    let raw = (u64::from(hi & w.mask()) << w.bits()) | u64::from(lo & w.mask());
    let n = ((raw << sh) as i64) >> sh;
    let d = i64::from(w.sext(divisor));
    if d == 0 {
        return Err(Exception::DivideError);
    }
    // i64::MIN / -1 wraps to i64::MIN, which the range check rejects.
    let q = n.wrapping_div(d);
    let r = n.wrapping_rem(d);
    if q != i64::from(w.sext(q as u32)) {
        return Err(Exception::DivideError);
    }
    Ok((q as u32 & w.mask(), r as u32 & w.mask()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::state::flags::{AF, FIXED1, PF, ZF};

    #[test]
    fn mul_examples() {
        for v in Vendor::ALL {
            assert_eq!(mul(v, Width::B8, 0xff, 0xff, FIXED1).0, 0x01);
            assert_eq!(mul(v, Width::B8, 0xff, 0xff, FIXED1).1, 0xfe);
            assert_eq!(mul(v, Width::B32, 2, 3, FIXED1 | CF).2 & (CF | OF), 0);
            assert_eq!(mul(v, Width::B16, 0x100, 0x100, FIXED1).2 & (CF | OF), CF | OF);
            let (lo, hi, f) = imul_wide(v, Width::B8, 0xff, 0x02, FIXED1);
            assert_eq!((lo, hi, f & (CF | OF)), (0xfe, 0xff, 0));
            assert_eq!(imul(v, Width::B16, 0x4000, 2, FIXED1).1 & (CF | OF), CF | OF);
        }
        // The undefined flags: Intel's from the low half (ZF always 0),
        // AMD's unchanged.
        assert_eq!(imul(Vendor::Intel, Width::B32, 0xffff_ffff, 0xffff_ffff, FIXED1 | ZF), (1, FIXED1));
        assert_eq!(mul(Vendor::Intel, Width::B8, 0, 5, FIXED1 | ZF | AF).2, FIXED1 | PF);
        assert_eq!(mul(Vendor::Amd, Width::B8, 0, 5, FIXED1 | ZF | AF).2, FIXED1 | ZF | AF);
        assert_eq!(div_flags(Vendor::Intel, FIXED1 | ZF | CF), FIXED1 | ZF | CF);
        assert_eq!(div_flags(Vendor::Amd, FIXED1 | ZF | CF | PF), FIXED1 | CF | AF);
    }

    #[test]
    fn div_examples() {
        assert_eq!(div(Width::B8, 0x00, 0x64, 7), Ok((14, 2)));
        assert_eq!(div(Width::B32, 1, 0, 2), Ok((0x8000_0000, 0)));
        assert_eq!(div(Width::B16, 0, 5, 0), Err(Exception::DivideError));
        assert_eq!(div(Width::B8, 0x01, 0x00, 1), Err(Exception::DivideError));
        // idiv: -7 / 2 = -3 rem -1
        assert_eq!(idiv(Width::B16, 0xffff, 0xfff9, 2), Ok((0xfffd, 0xffff)));
        assert_eq!(idiv(Width::B32, 0xffff_ffff, 0x8000_0000, 0xffff_ffff), Err(Exception::DivideError));
        assert_eq!(idiv(Width::B32, 0x8000_0000, 0, 0xffff_ffff), Err(Exception::DivideError));
        // -128 / -1 = 128 does not fit; 128 / -1 = -128 does
        assert_eq!(idiv(Width::B8, 0xff, 0x80, 0xff), Err(Exception::DivideError));
        assert_eq!(idiv(Width::B8, 0x00, 0x80, 0xff), Ok((0x80, 0)));
    }
}
