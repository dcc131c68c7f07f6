//! BT, BTS, BTR, BTC (register/immediate forms), BSF, BSR, BSWAP
//! (SDM Vol. 2).
//!
//! BT* set CF to the selected bit; ZF is unchanged and OF, SF, AF, PF are
//! undefined: Intel and AMD leave them unchanged, and so does bt86. The bit
//! offset is taken modulo the width (the memory forms with a register offset
//! address other bytes; that is the caller's job).
//!
//! BSF/BSR set ZF when the source is zero and leave the destination
//! unchanged then (as both vendors do, and AMD documents). CF, OF, SF, AF,
//! PF are undefined: both vendors clear CF, OF, SF, AF and set PF from the
//! parity of the bit index (of 0 when the source is 0); bt86 does the same.

use super::{merge, parity, Width};
use crate::cpu::state::flags::{ARITH, CF};

/// The selected bit and its mask.
#[inline]
fn bit(w: Width, offset: u32) -> u32 {
    1 << (offset & (w.bits() - 1))
}

#[inline]
fn cf_of(value: u32, m: u32, eflags: u32) -> u32 {
    merge(eflags, CF, (value & m != 0) as u32)
}

/// BT: CF := bit `offset mod width` of `value`; returns the new EFLAGS.
#[inline]
pub fn bt(w: Width, value: u32, offset: u32, eflags: u32) -> u32 {
    cf_of(value, bit(w, offset), eflags)
}

/// BTS: BT, then set the bit.
#[inline]
pub fn bts(w: Width, value: u32, offset: u32, eflags: u32) -> (u32, u32) {
    let m = bit(w, offset);
    ((value | m) & w.mask(), cf_of(value, m, eflags))
}

/// BTR: BT, then clear the bit.
#[inline]
pub fn btr(w: Width, value: u32, offset: u32, eflags: u32) -> (u32, u32) {
    let m = bit(w, offset);
    (value & !m & w.mask(), cf_of(value, m, eflags))
}

/// BTC: BT, then complement the bit.
#[inline]
pub fn btc(w: Width, value: u32, offset: u32, eflags: u32) -> (u32, u32) {
    let m = bit(w, offset);
    ((value ^ m) & w.mask(), cf_of(value, m, eflags))
}

/// Flags of BSF/BSR: ZF from the source, PF from the index `r` (0 when
/// the source is 0), the others clear.
#[inline]
fn scan_flags(src: u32, r: u32, eflags: u32) -> u32 {
    let zero = src == 0;
    merge(eflags, ARITH, ((zero as u32) << 6) | parity(if zero { 0 } else { r }))
}

/// BSF: index of the lowest set bit of `src`; `dest` when `src` is zero.
#[inline]
pub fn bsf(w: Width, src: u32, dest: u32, eflags: u32) -> (u32, u32) {
    let s = src & w.mask();
    let r = if s == 0 { dest & w.mask() } else { s.trailing_zeros() };
    (r, scan_flags(s, r, eflags))
}

/// BSR: index of the highest set bit of `src`; `dest` when `src` is zero.
#[inline]
pub fn bsr(w: Width, src: u32, dest: u32, eflags: u32) -> (u32, u32) {
    let s = src & w.mask();
    let r = if s == 0 { dest & w.mask() } else { 31 - s.leading_zeros() };
    (r, scan_flags(s, r, eflags))
}

/// BSWAP (32-bit; the 16-bit form is undefined and not provided).
#[inline]
pub fn bswap(v: u32) -> u32 {
    v.swap_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::state::flags::{FIXED1, PF, ZF};

    #[test]
    fn bit_tests() {
        assert_eq!(bt(Width::B16, 0x8000, 31, FIXED1), FIXED1 | CF);
        assert_eq!(bts(Width::B32, 0, 33, FIXED1 | CF), (2, FIXED1));
        assert_eq!(btr(Width::B32, 0xffff_ffff, 31, FIXED1), (0x7fff_ffff, FIXED1 | CF));
        assert_eq!(btc(Width::B16, 0x0001, 16, FIXED1), (0, FIXED1 | CF));
    }

    #[test]
    fn scans() {
        assert_eq!(bsf(Width::B32, 0x0001_0100, 7, FIXED1 | ZF | CF), (8, FIXED1));
        assert_eq!(bsr(Width::B32, 0x0001_0100, 7, FIXED1), (16, FIXED1));
        assert_eq!(bsr(Width::B32, 0x0001_0008, 7, FIXED1), (16, FIXED1));
        assert_eq!(bsf(Width::B32, 0x0001_0008, 7, FIXED1), (3, FIXED1 | PF));
        assert_eq!(bsr(Width::B16, 0x1_0000, 0xdead_beef, FIXED1), (0xbeef, FIXED1 | ZF | PF));
        assert_eq!(bswap(0x1234_5678), 0x7856_3412);
    }
}
