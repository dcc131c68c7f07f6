//! The state's layouts and bookkeeping, against the SDM (Vol. 1 §8.1.10,
//! Figures 8-9 to 8-12) and against the host's own FNSTENV/FNSAVE.

use super::*;
use iced_x86::{Decoder, DecoderOptions, Instruction};

fn decode(bytes: &[u8]) -> Instruction {
    Decoder::with_ip(32, bytes, 0, DecoderOptions::NONE).decode()
}

/// Runs `bytes` (one x87 instruction) on `f` through the host stubs.
fn run(f: &mut X87, bytes: &[u8], operand: &[u8]) -> [u8; host::OPERAND] {
    let mut buf = [0u8; host::OPERAND];
    buf[..operand.len()].copy_from_slice(operand);
    host::run(f, &decode(bytes), &mut buf, 0).expect("host x87");
    buf
}

#[test]
fn init_state() {
    let f = X87::init();
    assert_eq!((f.cw, f.sw, f.tw), (0x037f, 0, 0xffff));
    assert!(!f.pending());
}

#[test]
fn environment_layouts() {
    let mut f = X87::init();
    (f.fip, f.fcs, f.fop, f.fdp, f.fds) = (0x1234_5678, 0x08, 0x5c3, 0x9abc_def0, 0x10);
    let e = f.env(true);
    assert_eq!(e.len(), ENV32);
    // CW, SW, TW each in a dword with 0xFFFF above; FIP; FCS | FOP << 16;
    // FDP; FDS with 0xFFFF above.
    assert_eq!(&e[0..12], &[0x7f, 0x03, 0xff, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(&e[12..16], &0x1234_5678u32.to_le_bytes());
    assert_eq!(&e[16..20], &[0x08, 0, 0xc3, 0x05]);
    assert_eq!(&e[20..28], &[0xf0, 0xde, 0xbc, 0x9a, 0x10, 0, 0xff, 0xff]);
    let e = f.env(false);
    assert_eq!(e.len(), ENV16);
    assert_eq!(e, [0x7f, 0x03, 0, 0, 0xff, 0xff, 0x78, 0x56, 0x08, 0, 0xf0, 0xde, 0x10, 0]);
    // Loading what was stored gives the state back (the 16-bit layout
    // keeps only the low halves of the offsets and no opcode).
    let mut g = X87::init();
    g.load_env(&f.env(true), true);
    assert_eq!(g, f);
    let mut g = X87::init();
    g.load_env(&f.env(false), false);
    assert_eq!((g.fip, g.fdp, g.fop), (0x5678, 0xdef0, 0));
}

#[test]
fn the_host_agrees_with_the_layouts() {
    // fninit; fld qword [1.5]; fld1 — then FNSTENV natively gave
    // 7f 03 ff ff 00 30 ff ff ff 0f ff ff (TOP = 6, R6 and R7 valid)
    // on the project's Intel host.
    let mut f = X87::init();
    run(&mut f, &[0xdd, 0x00], &1.5f64.to_le_bytes());
    run(&mut f, &[0xd9, 0xe8], &[]);
    assert_eq!(&f.env(true)[0..12], &[0x7f, 0x03, 0xff, 0xff, 0x00, 0x30, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff]);
    let s = f.save(true);
    assert_eq!(s.len(), SAVE32);
    // ST(0) = 1.0, ST(1) = 1.5 as 80-bit values.
    assert_eq!(&s[28..38], &[0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]);
    assert_eq!(&s[38..48], &[0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0x3f]);
    let mut g = X87::init();
    g.restore(&s, true);
    assert_eq!(g, f);
}

#[test]
fn loading_recomputes_tags_and_the_summary() {
    let mut f = X87::init();
    run(&mut f, &[0xd9, 0xe8], &[]); // fld1: R7 = 1.0
    let mut e = f.env(true);
    // Claim R7 holds a zero (tag 01): the load recomputes it as valid.
    e[8] = 0xff;
    e[9] = 0x7f;
    // ZE set with ZM clear: ES and B come on; with ZM set they go.
    e[0] = 0x7b;
    e[4] = 0x04;
    // (FLDENV keeps the registers: R7 still holds 1.0.)
    let mut g = f.clone();
    g.load_env(&e, true);
    assert_eq!(g.tw, 0x3fff);
    assert_eq!(g.sw & (sw::ES | sw::B), sw::ES | sw::B);
    assert!(g.pending());
    e[0] = 0x7f;
    e[5] = 0x80; // B without ES: recomputed away
    g.load_env(&e, true);
    assert_eq!(g.sw & (sw::ES | sw::B), 0);
}

#[test]
fn tags_by_class() {
    let r = |exp: u16, mant: u64| {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&mant.to_le_bytes());
        b[8..].copy_from_slice(&exp.to_le_bytes());
        b
    };
    assert_eq!(tag_of(&r(0x3fff, 1 << 63)), 0); // 1.0
    assert_eq!(tag_of(&r(0x8000, 0)), 1); // -0
    assert_eq!(tag_of(&r(0, 1)), 2); // denormal
    assert_eq!(tag_of(&r(0x7fff, 1 << 63)), 2); // infinity
    assert_eq!(tag_of(&r(0x3fff, 1)), 2); // unnormal
}

#[test]
fn an_unmasked_exception_stays_pending_after_the_host() {
    // fldcw [0x37b] (ZM clear); fldz; fld1; fdivp st(1), st (DE F9:
    // ST(1) = ST(1) / ST(0), pop): 0 / 1 raises nothing.
    let mut f = X87::init();
    run(&mut f, &[0xd9, 0x28], &0x037bu16.to_le_bytes());
    run(&mut f, &[0xd9, 0xee], &[]);
    run(&mut f, &[0xd9, 0xe8], &[]);
    run(&mut f, &[0xde, 0xf9], &[]);
    assert!(!f.pending(), "0 / 1 raises nothing");
    run(&mut f, &[0xd9, 0xee], &[]); // fldz
    run(&mut f, &[0xde, 0xf9], &[]); // fdivp: 0 / 0 is IE, masked
    assert!(!f.pending());
    let mut f = X87::init();
    run(&mut f, &[0xd9, 0x28], &0x037bu16.to_le_bytes());
    run(&mut f, &[0xd9, 0xe8], &[]); // fld1
    run(&mut f, &[0xd9, 0xee], &[]); // fldz
    run(&mut f, &[0xde, 0xf9], &[]); // fdivp st(1), st: 1 / 0, ZE unmasked
    assert_eq!(f.sw & (sw::ES | sw::B | 0x04), sw::ES | sw::B | 0x04);
    assert!(f.pending());
}
