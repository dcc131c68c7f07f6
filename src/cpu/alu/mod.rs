//! Integer arithmetic with exact EFLAGS effects (SDM Vol. 1 §3.4.3, Vol. 2
//! instruction pages).
//!
//! Every operation takes the operand [`Width`], operands as `u32` (only the
//! low `width` bits are read), and the current full EFLAGS; it returns the
//! result zero-extended to `u32` and the new full EFLAGS, in which only the
//! flags the instruction writes have changed:
//!
//! ```text
//!   let (r, f) = alu::add(Width::B32, a, b, cpu.eflags); cpu.eflags = f;
//! ```
//!
//! Flags are computed directly from operands and result (no lazy flags): a
//! carry vector `(a & b) | ((a | b) & !r)` gives CF, AF and OF of an addition
//! at once, a borrow vector does the same for subtraction.
//!
//! # Undefined flags
//!
//! Where the SDM says "undefined", bt86 does what the host's vendor does,
//! so that the interpreter agrees with the translator's IDENT code. The
//! functions whose undefined outputs differ between Intel and AMD (MUL,
//! IMUL, DIV, IDIV, the shifts and rotates) take the machine's
//! [`Vendor`]; the rules are all in `vendor/mod.rs`, with the table of
//! what each vendor does and where each rule was measured. The rest
//! (logic AF, BT*, BSF/BSR, the BCD instructions) behave alike on both
//! and are written in their own files.

mod arith;
mod bcd;
mod bits;
mod logic;
mod muldiv;
mod shift;
pub mod vendor;

#[cfg(all(test, target_arch = "x86_64"))]
mod native;

pub use arith::{adc, add, cmp, dec, inc, neg, sbb, sub};
pub use bcd::{aaa, aad, aam, aas, daa, das};
pub use bits::{bsf, bsr, bswap, bt, btc, btr, bts};
pub use logic::{and, not, or, test, xor};
pub use muldiv::{div, div_flags, idiv, imul, imul_wide, mul};
pub use shift::{rcl, rcr, rol, ror, sal, sar, shl, shld, shr, shrd, Count, ShiftFn};
pub use vendor::Vendor;

use crate::cpu::state::flags::{CF, OF, PF, SF, ZF};

/// Operand size of an integer operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Width {
    B8 = 0,
    B16 = 1,
    B32 = 2,
}

impl Width {
    /// Width in bits: 8, 16 or 32.
    #[inline]
    pub const fn bits(self) -> u32 {
        8 << self as u32
    }

    /// Width in bytes: 1, 2 or 4.
    #[inline]
    pub const fn bytes(self) -> u32 {
        1 << self as u32
    }

    /// All-ones in the low `bits()` bits.
    #[inline]
    pub const fn mask(self) -> u32 {
        u32::MAX >> (32 - self.bits())
    }

    /// The most significant bit of the width.
    #[inline]
    pub const fn sign_bit(self) -> u32 {
        1 << (self.bits() - 1)
    }

    /// The width of an operand of `n` bytes (1, 2 or 4).
    #[inline]
    pub const fn from_bytes(n: u32) -> Option<Width> {
        match n {
            1 => Some(Width::B8),
            2 => Some(Width::B16),
            4 => Some(Width::B32),
            _ => None,
        }
    }

    /// Sign-extends the low `bits()` bits of `v` to 32 bits.
    #[inline]
    pub const fn sext(self, v: u32) -> i32 {
        let sh = 32 - self.bits();
        ((v << sh) as i32) >> sh
    }
}

/// PF: set when the low 8 bits of `r` hold an even number of ones
/// (SDM Vol. 1 §3.4.3.1). Returned in place (bit 2).
#[inline]
pub const fn parity(r: u32) -> u32 {
    let x = r ^ (r >> 4);
    // Bit n of 0x9669 is set when the nibble n has even parity.
    ((0x9669 >> (x & 0xf)) & 1) << 2
}

/// SF, ZF and PF of a result already masked to `w`.
#[inline]
pub(crate) const fn szp(w: Width, r: u32) -> u32 {
    parity(r) | (((r == 0) as u32) << 6) | ((r >> (w.bits() - 8)) & SF)
}

/// CF, AF and OF from a carry (or borrow) vector: bit i of `cv` is the carry
/// out of bit i.
#[inline]
pub(crate) const fn cao(w: Width, cv: u32) -> u32 {
    let top = cv >> (w.bits() - 2); // bit 0: carry into the MSB, bit 1: out of it
    ((top >> 1) & CF) | (((top ^ (top >> 1)) & 1) << 11) | ((cv & 8) << 1)
}

/// Replaces the flags in `mask` of `eflags` with `new`.
#[inline]
pub(crate) const fn merge(eflags: u32, mask: u32, new: u32) -> u32 {
    (eflags & !mask) | new
}

/// The condition `cc` (the low nibble of Jcc/SETcc/CMOVcc opcodes: O, NO, B,
/// AE, E, NE, BE, A, S, NS, P, NP, L, GE, LE, G) on `eflags`
/// (SDM Vol. 1 Appendix B).
#[inline]
pub fn cond(cc: u8, eflags: u32) -> bool {
    let f = |m: u32| eflags & m != 0;
    let lt = f(SF) != f(OF);
    let base = match (cc >> 1) & 7 {
        0 => f(OF),
        1 => f(CF),
        2 => f(ZF),
        3 => f(CF | ZF),
        4 => f(SF),
        5 => f(PF),
        6 => lt,
        _ => lt || f(ZF),
    };
    base != (cc & 1 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::state::flags::ARITH;

    #[test]
    fn width_helpers() {
        assert_eq!([Width::B8.bits(), Width::B16.bits(), Width::B32.bits()], [8, 16, 32]);
        assert_eq!([Width::B8.mask(), Width::B16.mask(), Width::B32.mask()], [0xff, 0xffff, u32::MAX]);
        assert_eq!(Width::B16.sign_bit(), 0x8000);
        assert_eq!(Width::from_bytes(4), Some(Width::B32));
        assert_eq!(Width::from_bytes(3), None);
        assert_eq!(Width::B8.sext(0x80), -128);
    }

    #[test]
    fn parity_low_byte_only() {
        assert_eq!(parity(0), PF);
        assert_eq!(parity(1), 0);
        assert_eq!(parity(3), PF);
        assert_eq!(parity(0x100), PF);
        for v in 0..256u32 {
            assert_eq!(parity(v) != 0, v.count_ones() % 2 == 0);
        }
    }

    #[test]
    fn conditions() {
        let all = ARITH;
        assert!(cond(0x0, OF) && !cond(0x0, 0) && cond(0x1, 0));
        assert!(cond(0x2, CF) && cond(0x3, ZF));
        assert!(cond(0x6, ZF) && cond(0x6, CF) && cond(0x7, 0));
        assert!(cond(0xc, SF) && !cond(0xc, SF | OF) && cond(0xd, SF | OF));
        assert!(cond(0xe, ZF) && cond(0xf, 0) && !cond(0xf, all));
        assert!(cond(0xa, PF) && cond(0xb, 0));
    }
}
