//! Each vendor model against the vectors recorded on a CPU of that vendor
//! (`tests/vectors/`, format in its README): every input, every output
//! register and all six arithmetic flags, undefined ones included. These
//! run on any host; the `native` tests check the host's own model live.

use super::Vendor;
use crate::cpu::alu::{self, Count, Width};
use crate::cpu::state::flags::{ARITH, FIXED1, IF};
use std::collections::HashMap;
use std::io::BufRead;

/// One vector: mnemonic, operand size, inputs and recorded outputs.
struct Vector<'a> {
    mn: &'a str,
    w: Width,
    inp: HashMap<&'a str, u32>,
    out: HashMap<&'a str, u32>,
}

fn pairs(s: &str) -> Option<HashMap<&str, u32>> {
    s.split(',')
        .map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k, u32::from_str_radix(v, 16).ok()?))
        })
        .collect()
}

fn parse(line: &str) -> Option<Vector<'_>> {
    let t: Vec<&str> = line.split_whitespace().collect();
    let [mn, size, inp, out] = t[..] else { return None };
    let w = Width::from_bytes(size.parse::<u32>().ok()? / 8)?;
    Some(Vector { mn, w, inp: pairs(inp.strip_prefix("in:")?)?, out: pairs(out.strip_prefix("out:")?)? })
}

/// What the model gives for a vector's inputs: the output registers by
/// the file's names and the arithmetic flags; `None` for a form the file
/// should not hold.
fn model(v: Vendor, x: &Vector) -> Option<Vec<(&'static str, u32)>> {
    let w = x.w;
    let get = |k: &str| x.inp.get(k).copied().unwrap_or(0);
    let (a, b, c, d) = (get("a"), get("b"), get("c"), get("d"));
    let f = get("flags") | FIXED1 | IF;
    let one = |(r, fl): (u32, u32)| vec![("r", r), ("flags", fl & ARITH)];
    let shift: Option<alu::ShiftFn> = match x.mn.trim_end_matches(['1', 'I']) {
        "ROL" => Some(alu::rol),
        "ROR" => Some(alu::ror),
        "RCL" => Some(alu::rcl),
        "RCR" => Some(alu::rcr),
        "SHL" => Some(alu::shl),
        "SHR" => Some(alu::shr),
        "SAR" => Some(alu::sar),
        _ => None,
    };
    if let Some(op) = shift.filter(|_| !matches!(x.mn, "SHLD" | "SHRD")) {
        let count = match x.mn.as_bytes().last() {
            Some(b'1') => Count::cl(1),
            Some(b'I') => Count::imm_reg(c),
            _ => Count::cl(c),
        };
        return Some(one(op(v, w, a, count, f)));
    }
    Some(match x.mn {
        "MUL" | "IMUL" => {
            let (lo, hi, fl) = if x.mn == "MUL" { alu::mul(v, w, a, b, f) } else { alu::imul_wide(v, w, a, b, f) };
            match w {
                Width::B8 => vec![("r", hi << 8 | lo), ("flags", fl & ARITH)],
                _ => vec![("r", lo), ("r2", hi), ("flags", fl & ARITH)],
            }
        }
        "IMUL2" => one(alu::imul(v, w, a, b, f)),
        "IMUL3" | "IMUL3B" => one(alu::imul(v, w, b, c, f)),
        "DIV" | "IDIV" => {
            let (hi, lo) = if w == Width::B8 { (a >> 8, a & 0xff) } else { (d, a) };
            let q = if x.mn == "DIV" { alu::div(w, hi, lo, b) } else { alu::idiv(w, hi, lo, b) };
            let (q, r) = q.ok()?;
            vec![("r", q), ("r2", r), ("flags", alu::div_flags(v, f) & ARITH)]
        }
        "SHLD" => one(alu::shld(v, w, a, b, Count::cl(c), f)),
        "SHRD" => one(alu::shrd(v, w, a, b, Count::cl(c), f)),
        "BSF" => one(alu::bsf(w, b, a, f)),
        "BSR" => one(alu::bsr(w, b, a, f)),
        "BT" => one((a, alu::bt(w, a, b, f))),
        "BTS" => one(alu::bts(w, a, b, f)),
        "BTR" => one(alu::btr(w, a, b, f)),
        "BTC" => one(alu::btc(w, a, b, f)),
        "AND" => one(alu::and(w, a, b, f)),
        "OR" => one(alu::or(w, a, b, f)),
        "XOR" => one(alu::xor(w, a, b, f)),
        "TEST" => one((a, alu::test(w, a, b, f))),
        "AAA" => one(alu::aaa(a, f)),
        "AAS" => one(alu::aas(a, f)),
        "DAA" => one(alu::daa(a, f)),
        "DAS" => one(alu::das(a, f)),
        "AAM" => one(alu::aam(a, c, f).ok()?),
        "AAD" => one(alu::aad(a, c, f)),
        _ => return None,
    })
}

/// Checks every vector of `file` against `v`'s model; returns the number
/// checked, or `None` when the file has not been recorded.
fn check_file(file: &str, v: Vendor) -> Option<usize> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(file);
    let f = std::fs::File::open(&path).ok()?;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(f));
    let (mut n, mut bad) = (0usize, Vec::new());
    for line in reader.lines() {
        let line = line.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let x = parse(&line).unwrap_or_else(|| panic!("{file}: malformed line {line:?}"));
        let got = model(v, &x).unwrap_or_else(|| panic!("{file}: no model for {line:?}"));
        let want: Vec<_> = got.iter().map(|(k, _)| x.out.get(k).copied()).collect();
        if got.iter().map(|&(_, g)| Some(g)).ne(want.iter().copied()) || got.len() != x.out.len() {
            bad.push(format!("{line}  model: {got:x?}"));
        }
        n += 1;
    }
    assert!(bad.is_empty(), "{} of {n} vectors in {file} differ from the {v} model, e.g.:\n{}", bad.len(), {
        bad.truncate(8);
        bad.join("\n")
    });
    Some(n)
}

#[test]
fn intel_model_matches_the_intel_vectors() {
    let n = check_file("intel-undefined.txt.gz", Vendor::Intel).expect("tests/vectors/intel-undefined.txt.gz");
    assert_eq!(n, 405_044, "the file's README counts 405,044 vectors");
}

#[test]
fn amd_model_matches_the_amd_vectors() {
    match check_file("amd-undefined.txt.gz", Vendor::Amd) {
        Some(n) => assert!(n > 400_000, "only {n} AMD vectors"),
        None => eprintln!(
            "amd_model_matches_the_amd_vectors: no AMD vectors recorded yet (tests/vectors/README.md); \
             the AMD model is checked live by the native tests on AMD hosts only"
        ),
    }
}

/// The models differ where the file says they do, so the vector test
/// could fail for the wrong vendor.
#[test]
fn the_amd_model_is_not_the_intel_one() {
    let x = parse("MUL 8 in:a=0,b=0,flags=0 out:r=0,flags=4").unwrap();
    assert_eq!(model(Vendor::Intel, &x).unwrap(), vec![("r", 0), ("flags", 4)]);
    assert_eq!(model(Vendor::Amd, &x).unwrap(), vec![("r", 0), ("flags", 0)]);
}
