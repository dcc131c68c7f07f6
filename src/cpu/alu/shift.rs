//! Shifts and rotates: SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR, SHLD, SHRD
//! (SDM Vol. 2 "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR", "SHLD", "SHRD").
//!
//! The count is masked to 5 bits (386 and later); a masked count of 0 changes
//! no flag. RCL/RCR rotate through CF modulo `width + 1` (9 or 17 for 8/16
//! bits). Flags beyond the SDM's definitions, as measured on the host:
//!
//! ```text
//!   SHL/SAL   CF last bit out (0 once n > width)  OF = MSB(r) ^ CF     AF = 1
//!   SHR       CF last bit out (0 once n > width)  OF = r[w-1] ^ r[w-2]  AF = 1
//!   SAR       CF last bit out (sign once n >= w)  OF = 0               AF = 1
//!   ROL RCL   OF = MSB(r) ^ CF (any count, even when the rotation is a no-op)
//!   ROR RCR   OF = r[w-1] ^ r[w-2] (any count)
//!   SHLD      as SHL: OF = MSB(r) ^ CF (but OF = CF for 16 bits, n = 16)  AF = 1
//!   SHRD      as SHR: OF = r[w-1] ^ r[w-2]                             AF = 1
//! ```
//!
//! For count 1 each OF formula is the SDM's (for SHLD/SHRD: "set if a sign
//! change occurred"). 16-bit SHLD/SHRD with a count
//! above 16 is undefined; bt86 does what Intel CPUs do and shifts the 48-bit
//! pattern `dest:src:dest`.

use super::{merge, szp, Width};
use crate::cpu::state::flags::{AF, ARITH, CF, OF};

/// SZP, AF = 1, and the given CF and OF (in bit 0 of each) of a shift result.
#[inline]
fn shift_flags(w: Width, r: u32, cf: u32, of: u32, eflags: u32) -> u32 {
    merge(eflags, ARITH, szp(w, r) | AF | (cf & CF) | ((of & 1) << 11))
}

/// Bit `w - 1` of `r` xor bit `w - 2`: OF of a right shift or rotate.
#[inline]
fn of_right(w: Width, r: u32) -> u32 {
    ((r ^ (r << 1)) >> (w.bits() - 1)) & 1
}

/// SHL/SAL: `a << count`.
#[inline]
pub fn shl(w: Width, a: u32, count: u32, eflags: u32) -> (u32, u32) {
    let n = count & 31;
    if n == 0 {
        return (a & w.mask(), eflags);
    }
    let wide = u64::from(a & w.mask()) << n;
    let r = wide as u32 & w.mask();
    let cf = (wide >> w.bits()) as u32 & 1;
    (r, shift_flags(w, r, cf, (r >> (w.bits() - 1)) ^ cf, eflags))
}

/// SAL is SHL.
#[inline]
pub fn sal(w: Width, a: u32, count: u32, eflags: u32) -> (u32, u32) {
    shl(w, a, count, eflags)
}

/// SHR: logical `a >> count`.
#[inline]
pub fn shr(w: Width, a: u32, count: u32, eflags: u32) -> (u32, u32) {
    let n = count & 31;
    let a = a & w.mask();
    if n == 0 {
        return (a, eflags);
    }
    let r = a >> n;
    (r, shift_flags(w, r, a >> (n - 1), of_right(w, r), eflags))
}

/// SAR: arithmetic `a >> count`.
#[inline]
pub fn sar(w: Width, a: u32, count: u32, eflags: u32) -> (u32, u32) {
    let n = count & 31;
    if n == 0 {
        return (a & w.mask(), eflags);
    }
    let s = w.sext(a);
    let r = (s >> n) as u32 & w.mask();
    (r, shift_flags(w, r, (s >> (n - 1)) as u32, 0, eflags))
}

/// ROL: rotate left by `count mod width`; CF and OF only.
#[inline]
pub fn rol(w: Width, a: u32, count: u32, eflags: u32) -> (u32, u32) {
    let x = u64::from(a & w.mask());
    if count & 31 == 0 {
        return (x as u32, eflags);
    }
    let k = count & (w.bits() - 1);
    let r = ((x << k) | (x >> (w.bits() - k))) as u32 & w.mask();
    let cf = r & 1;
    (r, merge(eflags, CF | OF, cf | (((r >> (w.bits() - 1)) ^ cf) << 11)))
}

/// ROR: rotate right by `count mod width`; CF and OF only.
#[inline]
pub fn ror(w: Width, a: u32, count: u32, eflags: u32) -> (u32, u32) {
    let x = u64::from(a & w.mask());
    if count & 31 == 0 {
        return (x as u32, eflags);
    }
    let k = count & (w.bits() - 1);
    let r = ((x >> k) | (x << (w.bits() - k))) as u32 & w.mask();
    (r, merge(eflags, CF | OF, (r >> (w.bits() - 1)) | (of_right(w, r) << 11)))
}

/// The `width + 1`-bit value CF:a and its mask, for RCL/RCR.
#[inline]
fn with_carry(w: Width, a: u32, eflags: u32) -> (u64, u64, u32) {
    let n = w.bits() + 1;
    let v = (u64::from(eflags & CF) << w.bits()) | u64::from(a & w.mask());
    (v, (1u64 << n) - 1, n)
}

/// RCL: rotate CF:a left by `count mod (width + 1)`; CF and OF only.
#[inline]
pub fn rcl(w: Width, a: u32, count: u32, eflags: u32) -> (u32, u32) {
    if count & 31 == 0 {
        return (a & w.mask(), eflags);
    }
    let (v, vm, n) = with_carry(w, a, eflags);
    let t = (count & 31) % n;
    let v = ((v << t) | (v >> (n - t))) & vm;
    let (r, cf) = (v as u32 & w.mask(), (v >> w.bits()) as u32);
    (r, merge(eflags, CF | OF, cf | (((r >> (w.bits() - 1)) ^ cf) << 11)))
}

/// RCR: rotate CF:a right by `count mod (width + 1)`; CF and OF only.
#[inline]
pub fn rcr(w: Width, a: u32, count: u32, eflags: u32) -> (u32, u32) {
    if count & 31 == 0 {
        return (a & w.mask(), eflags);
    }
    let (v, vm, n) = with_carry(w, a, eflags);
    let t = (count & 31) % n;
    let v = ((v >> t) | (v << (n - t))) & vm;
    let (r, cf) = (v as u32 & w.mask(), (v >> w.bits()) as u32);
    (r, merge(eflags, CF | OF, cf | (of_right(w, r) << 11)))
}

/// SHLD: shift `dest` left by `count`, filling from the top of `src`.
/// `w` is B16 or B32 (B8 is treated as B16).
#[inline]
pub fn shld(w: Width, dest: u32, src: u32, count: u32, eflags: u32) -> (u32, u32) {
    let n = count & 31;
    let (d, s) = (u64::from(dest & w.mask()), u64::from(src & w.mask()));
    if n == 0 {
        return (d as u32, eflags);
    }
    // The pattern, left-aligned in 64 bits.
    let (t, bits) = match w {
        Width::B32 => ((d << 32) | s, 32),
        _ => ((d << 48) | (s << 32) | (d << 16), 16),
    };
    let r = ((t << n) >> (64 - bits)) as u32;
    let cf = ((t << (n - 1)) >> 63) as u32;
    let w = if bits == 32 { Width::B32 } else { Width::B16 };
    // The host sets OF = CF for the full 16-bit shift (count 16).
    let msb = (r >> (w.bits() - 1)) & (n != bits) as u32;
    (r, shift_flags(w, r, cf, msb ^ cf, eflags))
}

/// SHRD: shift `dest` right by `count`, filling from the bottom of `src`.
/// `w` is B16 or B32 (B8 is treated as B16).
#[inline]
pub fn shrd(w: Width, dest: u32, src: u32, count: u32, eflags: u32) -> (u32, u32) {
    let n = count & 31;
    let (d, s) = (u64::from(dest & w.mask()), u64::from(src & w.mask()));
    if n == 0 {
        return (d as u32, eflags);
    }
    // The pattern, right-aligned in 64 bits.
    let (t, w) = match w {
        Width::B32 => ((s << 32) | d, Width::B32),
        _ => ((d << 32) | (s << 16) | d, Width::B16),
    };
    let r = (t >> n) as u32 & w.mask();
    (r, shift_flags(w, r, (t >> (n - 1)) as u32, of_right(w, r), eflags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::state::flags::{FIXED1, PF, SF, ZF};

    const F: u32 = FIXED1;

    #[test]
    fn count_zero_changes_nothing() {
        for op in [shl, shr, sar, rol, ror, rcl, rcr] {
            assert_eq!(op(Width::B8, 0x1ff, 32, F | CF | ZF), (0xff, F | CF | ZF));
        }
        assert_eq!(shld(Width::B16, 0x1234, 0x5678, 0, F), (0x1234, F));
    }

    #[test]
    fn shift_examples() {
        // shl al, 1 with al = 0x81: CF out, sign flips
        assert_eq!(shl(Width::B8, 0x81, 1, F), (0x02, F | CF | OF | AF));
        // shr eax, 1 with eax = 0x80000001: OF = old MSB
        assert_eq!(shr(Width::B32, 0x8000_0001, 1, F), (0x4000_0000, F | CF | OF | AF | PF));
        // sar ax, 15 with ax = 0x8000
        assert_eq!(sar(Width::B16, 0x8000, 15, F), (0xffff, F | SF | PF | AF));
        // shl al, 9: everything shifted out
        assert_eq!(shl(Width::B8, 0xff, 9, F), (0, F | ZF | PF | AF));
    }

    #[test]
    fn rotate_examples() {
        assert_eq!(rol(Width::B8, 0x81, 1, F), (0x03, F | CF | OF));
        assert_eq!(ror(Width::B16, 0x0001, 1, F), (0x8000, F | CF | OF));
        // rcl al, 9 is a full turn: value and CF kept, OF = MSB ^ CF
        assert_eq!(rcl(Width::B8, 0x81, 9, F | CF), (0x81, F | CF));
        assert_eq!(rcr(Width::B8, 0x01, 1, F | CF), (0x80, F | CF | OF));
        assert_eq!(rcl(Width::B32, 0x8000_0000, 1, F), (0, F | CF | OF));
    }

    #[test]
    fn double_shift_examples() {
        assert_eq!(shld(Width::B32, 0x8000_0001, 0xf000_0000, 4, F).0, 0x0000_001f);
        assert_eq!(shrd(Width::B32, 0x8000_0001, 0x0000_000f, 4, F).0, 0xf800_0000);
        // 16-bit, count 20 > 16: dest:src:dest
        assert_eq!(shld(Width::B16, 0x1234, 0x5678, 20, F).0, 0x6781);
        assert_eq!(shrd(Width::B16, 0x1234, 0x5678, 20, F).0, 0x4567);
    }
}
