//! Native checks of ADD ... XOR, INC/DEC/NEG/NOT, MUL/IMUL, DIV/IDIV, BT*,
//! BSF/BSR. Faulting DIV/IDIV inputs are not run (they would raise SIGFPE);
//! the library's #DE is checked against the definition instead.

use super::{check, host_flags, lib_flags, run, values, vendor, FLAG_INPUTS, WIDTHS};
use crate::cpu::alu::{self, Width};
use crate::cpu::exception::Exception;
use crate::cpu::state::flags::ARITH;

/// Defines `fn $name(w, a, b, flags) -> (result, flags)` running `$m dst, src`.
macro_rules! native_binop {
    ($name:ident, $m:literal) => {
        fn $name(w: Width, a: u32, b: u32, fi: u32) -> (u32, u32) {
            let mut r = u64::from(a);
            let b = u64::from(b);
            let f = match w {
                Width::B8 => run!(fi, [concat!($m, " {r:l}, {b:l}")], r = inout(reg) r, b = in(reg) b),
                Width::B16 => run!(fi, [concat!($m, " {r:x}, {b:x}")], r = inout(reg) r, b = in(reg) b),
                Width::B32 => run!(fi, [concat!($m, " {r:e}, {b:e}")], r = inout(reg) r, b = in(reg) b),
            };
            (r as u32, f)
        }
    };
}

/// As `native_binop!` for instructions without an 8-bit form (B8 runs the
/// 16-bit form).
macro_rules! native_binop_wide {
    ($name:ident, $m:literal) => {
        fn $name(w: Width, a: u32, b: u32, fi: u32) -> (u32, u32) {
            let mut r = u64::from(a);
            let b = u64::from(b);
            let f = match w {
                Width::B32 => run!(fi, [concat!($m, " {r:e}, {b:e}")], r = inout(reg) r, b = in(reg) b),
                _ => run!(fi, [concat!($m, " {r:x}, {b:x}")], r = inout(reg) r, b = in(reg) b),
            };
            (r as u32, f)
        }
    };
}

/// Defines `fn $name(w, a, flags) -> (result, flags)` running `$m dst`.
macro_rules! native_unop {
    ($name:ident, $m:literal) => {
        fn $name(w: Width, a: u32, fi: u32) -> (u32, u32) {
            let mut r = u64::from(a);
            let f = match w {
                Width::B8 => run!(fi, [concat!($m, " {r:l}")], r = inout(reg) r),
                Width::B16 => run!(fi, [concat!($m, " {r:x}")], r = inout(reg) r),
                Width::B32 => run!(fi, [concat!($m, " {r:e}")], r = inout(reg) r),
            };
            (r as u32, f)
        }
    };
}

native_binop!(n_add, "add");
native_binop!(n_adc, "adc");
native_binop!(n_sub, "sub");
native_binop!(n_sbb, "sbb");
native_binop!(n_cmp, "cmp");
native_binop!(n_and, "and");
native_binop!(n_or, "or");
native_binop!(n_xor, "xor");
native_binop!(n_test, "test");
native_binop_wide!(n_imul2, "imul"); // 16/32 only
native_binop_wide!(n_bt, "bt"); // 16/32 only
native_binop_wide!(n_bts, "bts");
native_binop_wide!(n_btr, "btr");
native_binop_wide!(n_btc, "btc");
native_binop_wide!(n_bsf, "bsf"); // dst, src: r is the old destination
native_binop_wide!(n_bsr, "bsr");
native_unop!(n_inc, "inc");
native_unop!(n_dec, "dec");
native_unop!(n_neg, "neg");
native_unop!(n_not, "not");

type Host2 = fn(Width, u32, u32, u32) -> (u32, u32);

/// Runs a two-operand op over all widths, value pairs and input flags.
fn sweep2(what: &str, widths: &[Width], lib: impl Fn(Width, u32, u32, u32) -> (u32, u32), host: Host2) -> usize {
    let vals = values();
    let mut n = 0;
    for &w in widths {
        for &a in &vals {
            for &b in &vals {
                for fi in FLAG_INPUTS {
                    let l = lib(w, a, b, lib_flags(fi));
                    check(what, w, &[a, b], fi, l, host(w, a, b, host_flags(fi)), ARITH);
                    n += 1;
                }
            }
        }
    }
    n
}

#[test]
fn add_sub_family() {
    let n = sweep2("add", &WIDTHS, alu::add, n_add)
        + sweep2("adc", &WIDTHS, alu::adc, n_adc)
        + sweep2("sub", &WIDTHS, alu::sub, n_sub)
        + sweep2("sbb", &WIDTHS, alu::sbb, n_sbb)
        + sweep2("cmp", &WIDTHS, |w, a, b, f| (a & w.mask(), alu::cmp(w, a, b, f)), n_cmp);
    assert_eq!(n, 5 * 3 * 22 * 22 * 6);
}

#[test]
fn logic_family() {
    sweep2("and", &WIDTHS, alu::and, n_and);
    sweep2("or", &WIDTHS, alu::or, n_or);
    sweep2("xor", &WIDTHS, alu::xor, n_xor);
    sweep2("test", &WIDTHS, |w, a, b, f| (a & w.mask(), alu::test(w, a, b, f)), n_test);
}

#[test]
fn unary_family() {
    for &w in &WIDTHS {
        for a in values() {
            for fi in FLAG_INPUTS {
                let (lf, hf) = (lib_flags(fi), host_flags(fi));
                check("inc", w, &[a], fi, alu::inc(w, a, lf), n_inc(w, a, hf), ARITH);
                check("dec", w, &[a], fi, alu::dec(w, a, lf), n_dec(w, a, hf), ARITH);
                check("neg", w, &[a], fi, alu::neg(w, a, lf), n_neg(w, a, hf), ARITH);
                check("not", w, &[a], fi, (alu::not(w, a), lf), n_not(w, a, hf), ARITH);
            }
        }
    }
}

#[test]
fn bit_family() {
    let wide = [Width::B16, Width::B32];
    sweep2("bt", &wide, |w, a, b, f| (a & w.mask(), alu::bt(w, a, b, f)), n_bt);
    sweep2("bts", &wide, alu::bts, n_bts);
    sweep2("btr", &wide, alu::btr, n_btr);
    sweep2("btc", &wide, alu::btc, n_btc);
    // bsf/bsr dst, src: `a` is the old destination, `b` the source.
    sweep2("bsf", &wide, |w, d, s, f| alu::bsf(w, s, d, f), n_bsf);
    sweep2("bsr", &wide, |w, d, s, f| alu::bsr(w, s, d, f), n_bsr);
}

/// MUL or IMUL (one operand) natively: returns (low, high, flags).
fn n_mul(w: Width, signed: bool, a: u32, b: u32, fi: u32) -> (u32, u32, u32) {
    let (mut ax, mut dx, b) = (u64::from(a), 0u64, u64::from(b));
    let f = match (w, signed) {
        (Width::B8, false) => run!(fi, ["mul {b:l}"], b = in(reg) b, inout("rax") ax, inout("rdx") dx),
        (Width::B16, false) => run!(fi, ["mul {b:x}"], b = in(reg) b, inout("rax") ax, inout("rdx") dx),
        (Width::B32, false) => run!(fi, ["mul {b:e}"], b = in(reg) b, inout("rax") ax, inout("rdx") dx),
        (Width::B8, true) => run!(fi, ["imul {b:l}"], b = in(reg) b, inout("rax") ax, inout("rdx") dx),
        (Width::B16, true) => run!(fi, ["imul {b:x}"], b = in(reg) b, inout("rax") ax, inout("rdx") dx),
        (Width::B32, true) => run!(fi, ["imul {b:e}"], b = in(reg) b, inout("rax") ax, inout("rdx") dx),
    };
    match w {
        Width::B8 => (ax as u32 & 0xff, (ax as u32 >> 8) & 0xff, f),
        _ => (ax as u32 & w.mask(), dx as u32 & w.mask(), f),
    }
}

#[test]
fn mul_family() {
    let v = vendor();
    for &w in &WIDTHS {
        for a in values() {
            for b in values() {
                for fi in FLAG_INPUTS {
                    let (lf, hf) = (lib_flags(fi), host_flags(fi));
                    let args = [a, b];
                    let (lo, hi, f) = alu::mul(v, w, a, b, lf);
                    let (nlo, nhi, nf) = n_mul(w, false, a, b, hf);
                    check("mul", w, &args, fi, (lo, f), (nlo, nf), ARITH);
                    assert_eq!(hi, nhi, "mul high {w:?} {a:#x} {b:#x}");
                    let (lo, hi, f) = alu::imul_wide(v, w, a, b, lf);
                    let (nlo, nhi, nf) = n_mul(w, true, a, b, hf);
                    check("imul1", w, &args, fi, (lo, f), (nlo, nf), ARITH);
                    assert_eq!(hi, nhi, "imul high {w:?} {a:#x} {b:#x}");
                }
            }
        }
    }
    sweep2("imul2", &[Width::B16, Width::B32], |w, a, b, f| alu::imul(v, w, a, b, f), n_imul2);
}

/// DIV or IDIV natively (only for non-faulting inputs): (quotient,
/// remainder, flags).
fn n_div(w: Width, signed: bool, hi: u32, lo: u32, d: u32, fi: u32) -> (u32, u32, u32) {
    let (mut ax, mut dx, d) = (u64::from(lo & w.mask()), u64::from(hi & w.mask()), u64::from(d));
    if w == Width::B8 {
        ax |= dx << 8;
    }
    let f = match (w, signed) {
        (Width::B8, false) => run!(fi, ["div {d:l}"], d = in(reg) d, inout("rax") ax, inout("rdx") dx),
        (Width::B16, false) => run!(fi, ["div {d:x}"], d = in(reg) d, inout("rax") ax, inout("rdx") dx),
        (Width::B32, false) => run!(fi, ["div {d:e}"], d = in(reg) d, inout("rax") ax, inout("rdx") dx),
        (Width::B8, true) => run!(fi, ["idiv {d:l}"], d = in(reg) d, inout("rax") ax, inout("rdx") dx),
        (Width::B16, true) => run!(fi, ["idiv {d:x}"], d = in(reg) d, inout("rax") ax, inout("rdx") dx),
        (Width::B32, true) => run!(fi, ["idiv {d:e}"], d = in(reg) d, inout("rax") ax, inout("rdx") dx),
    };
    match w {
        Width::B8 => (ax as u32 & 0xff, (ax as u32 >> 8) & 0xff, f),
        _ => (ax as u32 & w.mask(), dx as u32 & w.mask(), f),
    }
}

/// Whether the exact quotient of `n / d` (as i128) fits the width.
fn fits(w: Width, signed: bool, q: i128) -> bool {
    let bits = w.bits();
    if signed {
        (-(1i128 << (bits - 1))..(1i128 << (bits - 1))).contains(&q)
    } else {
        (0..(1i128 << bits)).contains(&q)
    }
}

#[test]
fn div_family() {
    let v = vendor();
    let (mut ran, mut faults) = (0, 0);
    for &w in &WIDTHS {
        for hi in values() {
            for lo in values() {
                for d in values() {
                    for signed in [false, true] {
                        let raw = (i128::from(hi & w.mask()) << w.bits()) | i128::from(lo & w.mask());
                        let (n, dv) = if signed {
                            let sh = 128 - 2 * w.bits();
                            ((raw << sh) >> sh, i128::from(w.sext(d)))
                        } else {
                            (raw, i128::from(d & w.mask()))
                        };
                        let lib = if signed { alu::idiv(w, hi, lo, d) } else { alu::div(w, hi, lo, d) };
                        if dv == 0 || !fits(w, signed, n / dv) {
                            assert_eq!(lib, Err(Exception::DivideError), "{w:?} {signed} {hi:#x}:{lo:#x} / {d:#x}");
                            faults += 1;
                            continue;
                        }
                        for fi in [0, ARITH] {
                            let (q, r, f) = n_div(w, signed, hi, lo, d, host_flags(fi));
                            assert_eq!(lib, Ok((q, r)), "{w:?} {signed} {hi:#x}:{lo:#x} / {d:#x}");
                            let lf = alu::div_flags(v, host_flags(fi));
                            assert_eq!(f & ARITH, lf & ARITH, "flags of {w:?} {signed} {hi:#x}:{lo:#x} / {d:#x}");
                        }
                        ran += 1;
                    }
                }
            }
        }
    }
    assert!(ran > 1000 && faults > 1000, "ran {ran}, faults {faults}");
}
