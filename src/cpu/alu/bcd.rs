//! Decimal adjustment: DAA, DAS, AAA, AAS, AAM, AAD (SDM Vol. 2; these are
//! invalid in 64-bit mode, so they are tested against the SDM pseudo-code,
//! not the host). Undefined flags follow the Intel vectors
//! (`vendor/tests.rs`; unverified on AMD): DAA/DAS clear OF; AAA/AAS clear
//! OF and set SF/ZF/PF from the final AL; AAM clears OF/AF/CF; AAD sets
//! OF/AF/CF as the 8-bit add `AL + AH*imm`.

use super::{add, merge, szp, Width};
use crate::cpu::exception::{Exception, Fault};
use crate::cpu::state::flags::{AF, ARITH, CF};

/// Whether the low nibble of AL needs adjusting.
#[inline]
fn low_adjust(al: u32, eflags: u32) -> bool {
    al & 0xf > 9 || eflags & AF != 0
}

/// DAA: decimal adjust AL after addition; returns (AL, eflags).
#[inline]
pub fn daa(al: u32, eflags: u32) -> (u32, u32) {
    let old = al & 0xff;
    let (mut r, mut f) = (old, 0);
    if low_adjust(old, eflags) {
        r += 6;
        f |= AF | (eflags & CF) | (r >> 8);
    }
    if old > 0x99 || eflags & CF != 0 {
        r += 0x60;
        f |= CF;
    } else {
        f &= !CF;
    }
    let r = r & 0xff;
    (r, merge(eflags, ARITH, f | szp(Width::B8, r)))
}

/// DAS: decimal adjust AL after subtraction; returns (AL, eflags).
#[inline]
pub fn das(al: u32, eflags: u32) -> (u32, u32) {
    let old = al & 0xff;
    let (mut r, mut f) = (old, 0);
    if low_adjust(old, eflags) {
        r = r.wrapping_sub(6);
        f |= AF | (eflags & CF) | ((r >> 8) & 1);
    }
    if old > 0x99 || eflags & CF != 0 {
        r = r.wrapping_sub(0x60);
        f |= CF;
    }
    let r = r & 0xff;
    (r, merge(eflags, ARITH, f | szp(Width::B8, r)))
}

/// AAA: ASCII adjust AX after addition; returns (AX, eflags).
#[inline]
pub fn aaa(ax: u32, eflags: u32) -> (u32, u32) {
    let (ax, f) = if low_adjust(ax, eflags) { (ax.wrapping_add(0x106), AF | CF) } else { (ax, 0) };
    ascii_result(ax & 0xff0f, f, eflags)
}

/// AAS: ASCII adjust AX after subtraction; returns (AX, eflags).
#[inline]
pub fn aas(ax: u32, eflags: u32) -> (u32, u32) {
    let (ax, f) = if low_adjust(ax, eflags) { (ax.wrapping_sub(6).wrapping_sub(0x100), AF | CF) } else { (ax, 0) };
    ascii_result(ax & 0xff0f, f, eflags)
}

#[inline]
fn ascii_result(ax: u32, f: u32, eflags: u32) -> (u32, u32) {
    (ax, merge(eflags, ARITH, f | szp(Width::B8, ax & 0xff)))
}

/// AAM imm8: AH := AL / imm, AL := AL mod imm; #DE when imm is 0.
/// Returns (AX, eflags).
#[inline]
pub fn aam(al: u32, imm: u32, eflags: u32) -> Fault<(u32, u32)> {
    let (al, imm) = (al & 0xff, imm & 0xff);
    if imm == 0 {
        return Err(Exception::DivideError);
    }
    let (q, r) = (al / imm, al % imm);
    Ok(((q << 8) | r, merge(eflags, ARITH, szp(Width::B8, r))))
}

/// AAD imm8: AL := AL + AH * imm, AH := 0. Returns (AX, eflags).
#[inline]
pub fn aad(ax: u32, imm: u32, eflags: u32) -> (u32, u32) {
    let prod = ((ax >> 8) & 0xff).wrapping_mul(imm & 0xff);
    add(Width::B8, ax, prod, eflags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::state::flags::{FIXED1, OF, PF, SF, ZF};

    /// SF, ZF, PF of a byte, written out bit by bit.
    fn ref_szp(al: u32) -> u32 {
        let mut f = 0;
        if al & 0x80 != 0 {
            f |= SF;
        }
        if al == 0 {
            f |= ZF;
        }
        if (0..8).filter(|i| al >> i & 1 == 1).count() % 2 == 0 {
            f |= PF;
        }
        f
    }

    /// SDM DAA/DAS pseudo-code, step by step; `sub` selects DAS.
    fn ref_daa_das(al: u32, cf: bool, af: bool, sub: bool) -> (u32, u32) {
        let old_al = al as i32;
        let old_cf = cf;
        let mut al = al as i32;
        let mut cf = false;
        let af = if (al & 0x0f) > 9 || af {
            al += if sub { -6 } else { 6 };
            cf = old_cf || !(0..=0xff).contains(&al);
            true
        } else {
            false
        };
        al &= 0xff;
        if old_al > 0x99 || old_cf {
            al = (al + if sub { -0x60 } else { 0x60 }) & 0xff;
            cf = true;
        } else if !sub {
            cf = false;
        }
        let al = al as u32;
        (al, ref_szp(al) | if af { AF } else { 0 } | if cf { CF } else { 0 })
    }

    /// SDM AAA/AAS pseudo-code; `sub` selects AAS.
    fn ref_aaa_aas(ax: u32, af: bool, sub: bool) -> (u32, u32) {
        let (mut al, mut ah) = ((ax & 0xff) as i32, (ax >> 8) as i32);
        let adj = (al & 0x0f) > 9 || af;
        if adj {
            let mut x = (ah << 8) | al;
            x += if sub { -6 - 0x100 } else { 0x106 };
            al = x & 0xff;
            ah = (x >> 8) & 0xff;
        }
        al &= 0x0f;
        let f = ref_szp(al as u32) | if adj { AF | CF } else { 0 };
        (((ah as u32) << 8) | al as u32, f)
    }

    #[test]
    fn daa_das_match_sdm_pseudo_code() {
        for al in 0..256 {
            for (cf, af) in [(false, false), (true, false), (false, true), (true, true)] {
                let fin = FIXED1 | OF | if cf { CF } else { 0 } | if af { AF } else { 0 };
                let (r, f) = daa(al, fin);
                assert_eq!((r, f), (ref_daa_das(al, cf, af, false).0, FIXED1 | ref_daa_das(al, cf, af, false).1));
                let (r, f) = das(al, fin);
                assert_eq!((r, f), (ref_daa_das(al, cf, af, true).0, FIXED1 | ref_daa_das(al, cf, af, true).1));
            }
        }
    }

    #[test]
    fn aaa_aas_match_sdm_pseudo_code() {
        for ax in (0..0x10000).step_by(7).chain(0xff00..0x10000) {
            for af in [false, true] {
                let fin = FIXED1 | OF | CF | if af { AF } else { 0 };
                let (r, f) = ref_aaa_aas(ax, af, false);
                assert_eq!(aaa(ax, fin), (r, FIXED1 | f), "aaa {ax:#x}");
                let (r, f) = ref_aaa_aas(ax, af, true);
                assert_eq!(aas(ax, fin), (r, FIXED1 | f), "aas {ax:#x}");
            }
        }
    }

    #[test]
    fn aam_aad_match_sdm_pseudo_code() {
        for al in 0..256 {
            for imm in 0..256 {
                match aam(al, imm, FIXED1 | ARITH) {
                    Err(e) => assert!(imm == 0 && e == Exception::DivideError),
                    Ok((ax, f)) => {
                        assert_eq!(ax, ((al / imm) << 8) | (al % imm));
                        assert_eq!(f, FIXED1 | ref_szp(al % imm));
                    }
                }
                let ax = (imm ^ 0x5a) << 8 | al;
                let (r, f) = aad(ax, imm, FIXED1);
                let want = (al + (imm ^ 0x5a) * imm) & 0xff;
                assert_eq!((r, f & (SF | ZF | PF)), (want, ref_szp(want)));
            }
        }
    }

    #[test]
    fn hand_computed() {
        // 0x79 + 0x35 = 0xae; DAA -> 0x14, carry (79 + 35 = 114)
        assert_eq!(daa(0xae, FIXED1), (0x14, FIXED1 | CF | AF | PF));
        // 0x35 - 0x47 = 0xee, CF; DAS -> 0x88, CF (35 - 47 = -12 -> 88 borrow)
        assert_eq!(das(0xee, FIXED1 | CF), (0x88, FIXED1 | CF | AF | SF | PF));
        // '9' + '5' = 0x6e in AL, AH = 0: AAA -> AX = 0x0104
        assert_eq!(aaa(0x006e, FIXED1), (0x0104, FIXED1 | AF | CF));
        // AAS: AX = 0x0108 - '9'... AL = 0xff after 0x38 - 0x39: AX -> 0xff09
        assert_eq!(aas(0x00ff, FIXED1 | CF | AF), (0xff09, FIXED1 | AF | CF | PF));
        // AAM: 0x4f = 79 -> AH 7, AL 9
        assert_eq!(aam(0x4f, 10, FIXED1).map(|(ax, _)| ax), Ok(0x0709));
        assert_eq!(aam(0x4f, 0, FIXED1), Err(Exception::DivideError));
        // AAD: AX = 0x0709 -> AL 79
        assert_eq!(aad(0x0709, 10, FIXED1).0, 0x4f);
    }
}
