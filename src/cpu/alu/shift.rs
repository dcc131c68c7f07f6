//! Shifts and rotates: SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR, SHLD, SHRD
//! (SDM Vol. 2 "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR", "SHLD", "SHRD").
//!
//! The count is masked to 5 bits (386 and later); a masked count of 0 changes
//! no flag. RCL/RCR rotate through CF modulo `width + 1` (9 or 17 for 8/16
//! bits). This file computes what the SDM defines, and what both vendors
//! agree on where it does not:
//!
//! ```text
//!   SHL SHR   CF is the last bit out, also past the width (0 once n > w)
//!   SAR       CF is the last bit out (the sign once n >= w)
//!   ROL ROR   CF and OF are written even when n is a multiple of the width
//!   SHLD SHRD 16-bit, n > 16: the 48-bit pattern dest:src:dest is shifted
//! ```
//!
//! OF for counts above 1, AF, and the few cases where one vendor leaves
//! everything alone come from the machine's [`Vendor`] (`vendor/mod.rs`).

use super::vendor::{ShiftOp, Shifted, Vendor};
use super::{merge, szp, Width};
use crate::cpu::state::flags::{ARITH, CF, OF};

/// The signature of the single-operand shifts and rotates.
pub type ShiftFn = fn(Vendor, Width, u32, Count, u32) -> (u32, u32);

/// A shift or rotate count as encoded: its value (masked to 5 bits by the
/// instruction) and whether it was an imm8 with a register destination,
/// the one form on which Intel's ROL/ROR leave OF alone (an imm8 count
/// with a memory destination behaves as CL does; so do D0/D1's 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub value: u32,
    pub imm_to_register: bool,
}

impl Count {
    /// A count in CL, or the implicit 1 of D0/D1.
    pub const fn cl(value: u32) -> Count {
        Count { value, imm_to_register: false }
    }

    /// An imm8 count (C0/C1 /n ib, SHLD/SHRD's ib) with a register
    /// destination.
    pub const fn imm_reg(value: u32) -> Count {
        Count { value, imm_to_register: true }
    }

    /// An imm8 count with a memory destination.
    pub const fn imm_mem(value: u32) -> Count {
        Count { value, imm_to_register: false }
    }

    /// The count the instruction uses.
    #[inline]
    const fn masked(self) -> u32 {
        self.value & 31
    }
}

/// The flags after a shift (SHL SHR SAR SHLD SHRD): SF ZF PF from the
/// result, CF, and AF and OF as the vendor has them.
#[inline]
fn shift_flags(v: Vendor, s: &Shifted, eflags: u32) -> u32 {
    let of = v.shift_of(s).unwrap_or(0) << 11;
    merge(eflags, ARITH, szp(s.w, s.r) | v.shift_af() | (s.cf & CF) | of)
}

/// The flags after a rotate: CF, and OF as the vendor has it (possibly
/// unchanged).
#[inline]
fn rotate_flags(v: Vendor, s: &Shifted, eflags: u32) -> u32 {
    match v.shift_of(s) {
        Some(of) => merge(eflags, CF | OF, (s.cf & CF) | (of << 11)),
        None => merge(eflags, CF, s.cf & CF),
    }
}

/// A shift or rotate of `a` by `count` (SHLD and SHRD add their source).
#[inline]
fn shifted(op: ShiftOp, w: Width, a: u32, count: Count, eflags: u32, r: u32, cf: u32) -> Shifted {
    Shifted {
        op,
        w,
        n: count.masked(),
        imm_to_register: count.imm_to_register,
        a: a & w.mask(),
        src: 0,
        cf_in: eflags & CF,
        r,
        cf: cf & 1,
    }
}

/// SHL/SAL: `a << count`.
#[inline]
pub fn shl(v: Vendor, w: Width, a: u32, count: Count, eflags: u32) -> (u32, u32) {
    let n = count.masked();
    if n == 0 {
        return (a & w.mask(), eflags);
    }
    let wide = u64::from(a & w.mask()) << n;
    let r = wide as u32 & w.mask();
    let cf = (wide >> w.bits()) as u32;
    (r, shift_flags(v, &shifted(ShiftOp::Shl, w, a, count, eflags, r, cf), eflags))
}

/// SAL is SHL.
#[inline]
pub fn sal(v: Vendor, w: Width, a: u32, count: Count, eflags: u32) -> (u32, u32) {
    shl(v, w, a, count, eflags)
}

/// SHR: logical `a >> count`.
#[inline]
pub fn shr(v: Vendor, w: Width, a: u32, count: Count, eflags: u32) -> (u32, u32) {
    let n = count.masked();
    let a = a & w.mask();
    if n == 0 {
        return (a, eflags);
    }
    let r = a >> n;
    (r, shift_flags(v, &shifted(ShiftOp::Shr, w, a, count, eflags, r, a >> (n - 1)), eflags))
}

/// SAR: arithmetic `a >> count`.
#[inline]
pub fn sar(v: Vendor, w: Width, a: u32, count: Count, eflags: u32) -> (u32, u32) {
    let n = count.masked();
    if n == 0 {
        return (a & w.mask(), eflags);
    }
    let s = w.sext(a);
    let r = (s >> n) as u32 & w.mask();
    (r, shift_flags(v, &shifted(ShiftOp::Sar, w, a, count, eflags, r, (s >> (n - 1)) as u32), eflags))
}

/// ROL: rotate left by `count mod width`; CF and OF only.
#[inline]
pub fn rol(v: Vendor, w: Width, a: u32, count: Count, eflags: u32) -> (u32, u32) {
    let x = u64::from(a & w.mask());
    if count.masked() == 0 {
        return (x as u32, eflags);
    }
    let k = count.value & (w.bits() - 1);
    let r = ((x << k) | (x >> (w.bits() - k))) as u32 & w.mask();
    (r, rotate_flags(v, &shifted(ShiftOp::Rol, w, a, count, eflags, r, r), eflags))
}

/// ROR: rotate right by `count mod width`; CF and OF only.
#[inline]
pub fn ror(v: Vendor, w: Width, a: u32, count: Count, eflags: u32) -> (u32, u32) {
    let x = u64::from(a & w.mask());
    if count.masked() == 0 {
        return (x as u32, eflags);
    }
    let k = count.value & (w.bits() - 1);
    let r = ((x >> k) | (x << (w.bits() - k))) as u32 & w.mask();
    (r, rotate_flags(v, &shifted(ShiftOp::Ror, w, a, count, eflags, r, r >> (w.bits() - 1)), eflags))
}

/// CF:a rotated by `t` bits (left when `left`) within `width + 1` bits;
/// returns the result and the new CF.
#[inline]
fn rotate_through_carry(w: Width, a: u32, eflags: u32, t: u32, left: bool) -> (u32, u32) {
    let n = w.bits() + 1;
    let v = (u64::from(eflags & CF) << w.bits()) | u64::from(a & w.mask());
    let vm = (1u64 << n) - 1;
    let v = if left { (v << t) | (v >> (n - t)) } else { (v >> t) | (v << (n - t)) } & vm;
    (v as u32 & w.mask(), (v >> w.bits()) as u32)
}

/// RCL: rotate CF:a left by `count mod (width + 1)`; CF and OF only.
#[inline]
pub fn rcl(v: Vendor, w: Width, a: u32, count: Count, eflags: u32) -> (u32, u32) {
    let n = count.masked();
    if n == 0 {
        return (a & w.mask(), eflags);
    }
    let (r, cf) = rotate_through_carry(w, a, eflags, n % (w.bits() + 1), true);
    (r, rotate_flags(v, &shifted(ShiftOp::Rcl, w, a, count, eflags, r, cf), eflags))
}

/// RCR: rotate CF:a right by `count mod (width + 1)`; CF and OF only.
#[inline]
pub fn rcr(v: Vendor, w: Width, a: u32, count: Count, eflags: u32) -> (u32, u32) {
    let n = count.masked();
    if n == 0 {
        return (a & w.mask(), eflags);
    }
    let (r, cf) = rotate_through_carry(w, a, eflags, n % (w.bits() + 1), false);
    (r, rotate_flags(v, &shifted(ShiftOp::Rcr, w, a, count, eflags, r, cf), eflags))
}

/// SHLD: shift `dest` left by `count`, filling from the top of `src`.
/// `w` is B16 or B32 (B8 is treated as B16).
#[inline]
pub fn shld(v: Vendor, w: Width, dest: u32, src: u32, count: Count, eflags: u32) -> (u32, u32) {
    let n = count.masked();
    let w = if w == Width::B32 { w } else { Width::B16 };
    let (d, s) = (u64::from(dest & w.mask()), u64::from(src & w.mask()));
    if n == 0 {
        return (d as u32, eflags);
    }
    // The pattern, left-aligned in 64 bits.
    let t = match w {
        Width::B32 => (d << 32) | s,
        _ => (d << 48) | (s << 32) | (d << 16),
    };
    let r = ((t << n) >> (64 - w.bits())) as u32;
    let cf = ((t << (n - 1)) >> 63) as u32;
    let sh = Shifted { src: s as u32, ..shifted(ShiftOp::Shld, w, d as u32, count, eflags, r, cf) };
    (r, shift_flags(v, &sh, eflags))
}

/// SHRD: shift `dest` right by `count`, filling from the bottom of `src`.
/// `w` is B16 or B32 (B8 is treated as B16).
#[inline]
pub fn shrd(v: Vendor, w: Width, dest: u32, src: u32, count: Count, eflags: u32) -> (u32, u32) {
    let n = count.masked();
    let w = if w == Width::B32 { w } else { Width::B16 };
    let (d, s) = (u64::from(dest & w.mask()), u64::from(src & w.mask()));
    if n == 0 {
        return (d as u32, eflags);
    }
    // The pattern, right-aligned in 64 bits.
    let t = match w {
        Width::B32 => (s << 32) | d,
        _ => (d << 32) | (s << 16) | d,
    };
    let r = (t >> n) as u32 & w.mask();
    let cf = (t >> (n - 1)) as u32 & 1;
    let sh = Shifted { src: s as u32, ..shifted(ShiftOp::Shrd, w, d as u32, count, eflags, r, cf) };
    (r, shift_flags(v, &sh, eflags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::state::flags::{AF, FIXED1, PF, SF, ZF};

    const F: u32 = FIXED1;
    const I: Vendor = Vendor::Intel;
    const A: Vendor = Vendor::Amd;

    #[test]
    fn count_zero_changes_nothing() {
        for v in Vendor::ALL {
            for op in [shl, shr, sar, rol, ror, rcl, rcr] as [ShiftFn; 7] {
                assert_eq!(op(v, Width::B8, 0x1ff, Count::cl(32), F | CF | ZF), (0xff, F | CF | ZF));
            }
            assert_eq!(shld(v, Width::B16, 0x1234, 0x5678, Count::imm_reg(0), F), (0x1234, F));
        }
    }

    #[test]
    fn shift_examples() {
        for v in Vendor::ALL {
            let af = v.shift_af();
            // shl al, 1 with al = 0x81: CF out, sign flips
            assert_eq!(shl(v, Width::B8, 0x81, Count::cl(1), F), (0x02, F | CF | OF | af));
            // shr eax, 1 with eax = 0x80000001: OF = old MSB
            assert_eq!(shr(v, Width::B32, 0x8000_0001, Count::cl(1), F), (0x4000_0000, F | CF | OF | af | PF));
            // shl al, 9: everything shifted out, CF 0 past the width
            assert_eq!(shl(v, Width::B8, 0xff, Count::cl(9), F).0, 0);
            assert_eq!(shl(v, Width::B8, 0xff, Count::cl(9), F).1 & (CF | ZF | PF), ZF | PF);
        }
        // sar ax, 15 with ax = 0x8000: OF 0 for both
        assert_eq!(sar(I, Width::B16, 0x8000, Count::cl(15), F), (0xffff, F | SF | PF));
        assert_eq!(sar(A, Width::B16, 0x8000, Count::cl(15), F), (0xffff, F | SF | PF | AF));
        // shl al, 2 with al = 0x40: Intel OF = a7 ^ a6 = 1; AMD OF = r7 ^ CF = 0 ^ 1
        assert_eq!(shl(I, Width::B8, 0x40, Count::cl(2), F), (0, F | CF | OF | ZF | PF));
        assert_eq!(shl(A, Width::B8, 0x40, Count::cl(2), F), (0, F | CF | OF | ZF | PF | AF));
        // shr al, 2 with al = 0x80: Intel OF = a7 = 1; AMD OF = r7 ^ r6 = 0
        assert_eq!(shr(I, Width::B8, 0x80, Count::cl(2), F).1 & OF, OF);
        assert_eq!(shr(A, Width::B8, 0x80, Count::cl(2), F).1 & OF, 0);
    }

    #[test]
    fn rotate_examples() {
        for v in Vendor::ALL {
            assert_eq!(rol(v, Width::B8, 0x81, Count::cl(1), F), (0x03, F | CF | OF));
            assert_eq!(ror(v, Width::B16, 0x0001, Count::cl(1), F), (0x8000, F | CF | OF));
            assert_eq!(rcr(v, Width::B8, 0x01, Count::cl(1), F | CF), (0x80, F | CF | OF));
            assert_eq!(rcl(v, Width::B32, 0x8000_0000, Count::cl(1), F), (0, F | CF | OF));
        }
        // rcl al, 9 is a full turn: Intel changes nothing, AMD writes OF = MSB ^ CF
        assert_eq!(rcl(I, Width::B8, 0x81, Count::cl(9), F | CF | OF), (0x81, F | CF | OF));
        assert_eq!(rcl(A, Width::B8, 0x81, Count::cl(9), F | CF | OF), (0x81, F | CF));
        // rol al, 2 with al = 0x40 -> 0x01: Intel OF = a7 ^ a6 = 1 by CL
        // and into memory, kept by imm8 into a register
        assert_eq!(rol(I, Width::B8, 0x40, Count::cl(2), F), (0x01, F | CF | OF));
        assert_eq!(rol(I, Width::B8, 0x40, Count::imm_mem(2), F), (0x01, F | CF | OF));
        assert_eq!(rol(I, Width::B8, 0x40, Count::imm_reg(2), F), (0x01, F | CF));
        assert_eq!(rol(I, Width::B8, 0x40, Count::imm_reg(2), F | OF), (0x01, F | CF | OF));
        // AMD: OF = r7 ^ CF = 0 ^ 1, the same for every encoding
        assert_eq!(rol(A, Width::B8, 0x40, Count::cl(2), F), (0x01, F | CF | OF));
        assert_eq!(rol(A, Width::B8, 0x40, Count::imm_reg(2), F), (0x01, F | CF | OF));
    }

    #[test]
    fn double_shift_examples() {
        for v in Vendor::ALL {
            let c = Count::cl(4);
            assert_eq!(shld(v, Width::B32, 0x8000_0001, 0xf000_0000, c, F).0, 0x0000_001f);
            assert_eq!(shrd(v, Width::B32, 0x8000_0001, 0x0000_000f, c, F).0, 0xf800_0000);
            // 16-bit, count 20 > 16: dest:src:dest
            assert_eq!(shld(v, Width::B16, 0x1234, 0x5678, Count::cl(20), F).0, 0x6781);
            assert_eq!(shrd(v, Width::B16, 0x1234, 0x5678, Count::cl(20), F).0, 0x4567);
        }
        // shld ax, bx, 16 -> BX, CF = a0: Intel OF = a15 ^ a14, AMD OF = CF
        assert_eq!(shld(I, Width::B16, 0x4001, 0x0080, Count::cl(16), F), (0x0080, F | CF | OF));
        assert_eq!(shld(A, Width::B16, 0x4001, 0x0080, Count::cl(16), F), (0x0080, F | CF | OF | AF));
    }
}
