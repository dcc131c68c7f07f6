//! The host CPU, asked once per process: its CPUID vendor and signature,
//! and a handful of native instructions whose undefined flags tell the
//! vendor models apart, each compared with both models.
//!
//! The host's model is the one its CPUID vendor names ([`Vendor::from_cpuid`]),
//! or, for a vendor bt86 does not know, the one the probes match. A host
//! that matches neither model on some probe (another generation may
//! differ) is reported by [`Host::disagreement`]: the run says so on stderr
//! instead of letting the translator and the interpreter drift apart
//! silently.
//!
//! This file holds the one `asm!` that runs a guest-visible ALU
//! instruction on the host (`run!`); the `native` unit tests use it too.

use super::Vendor;
use crate::cpu::alu::{self, Count, Width};
use crate::cpu::state::flags::{AF, ARITH, CF, FIXED1, OF, ZF};
use std::sync::OnceLock;

/// Runs the instruction in the bracketed template with input EFLAGS `$fi`
/// (TF and DF must be clear); evaluates to the output EFLAGS. A memory
/// operand must be a live local of the caller's, passed by pointer.
macro_rules! run {
    ($fi:expr, [$($t:tt)*], $($ops:tt)*) => {{
        let fo: u64;
        // SAFETY: the block loads EFLAGS from a value with TF and DF clear
        // (popfq in user mode cannot change IF or IOPL), runs one ALU
        // instruction on the registers it declares (or, in the tests, on
        // a local cell whose pointer it declares), and reads EFLAGS back;
        // its push/pop pairs are balanced.
        unsafe {
            core::arch::asm!("push {fi}", "popfq", $($t)*, "pushfq", "pop {fo}",
                fi = in(reg) u64::from($fi), fo = out(reg) fo, $($ops)*)
        };
        fo as u32
    }};
}
#[cfg(test)]
pub(crate) use run;

/// What was learnt about the host CPU.
#[derive(Clone, Debug)]
pub struct Host {
    /// The CPUID vendor string ("GenuineIntel", "AuthenticAMD", ...).
    pub cpuid_vendor: String,
    /// Display family, model and stepping from CPUID leaf 1.
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
    /// The model whose answers the host's IDENT code gives.
    pub vendor: Vendor,
    /// For each model, the probes on which the host differs from it.
    pub differs: Vec<(Vendor, Vec<&'static str>)>,
}

impl Host {
    /// "GenuineIntel family 6 model 167 stepping 1".
    pub fn describe(&self) -> String {
        format!("{} family {} model {} stepping {}", self.cpuid_vendor, self.family, self.model, self.stepping)
    }

    /// The probes on which the host differs from `v`'s model.
    pub fn differences(&self, v: Vendor) -> &[&'static str] {
        self.differs.iter().find(|(m, _)| *m == v).map(|(_, d)| d.as_slice()).unwrap_or(&[])
    }

    /// A one-line explanation when the host does not behave as its own
    /// model, `None` when it does.
    pub fn disagreement(&self) -> Option<String> {
        let d = self.differences(self.vendor);
        (!d.is_empty()).then(|| {
            format!(
                "the host CPU ({}) does not behave as bt86's {} model of undefined flags on: {}; \
                 the translator and the interpreter may disagree there",
                self.describe(),
                self.vendor,
                d.join(", ")
            )
        })
    }
}

/// The host, probed on first use.
pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(probe)
}

fn probe() -> Host {
    let leaf0 = std::arch::x86_64::__cpuid(0);
    let name: Vec<u8> = [leaf0.ebx, leaf0.edx, leaf0.ecx].iter().flat_map(|r| r.to_le_bytes()).collect();
    let cpuid_vendor = String::from_utf8_lossy(&name).into_owned();
    let sig = std::arch::x86_64::__cpuid(1).eax;
    let base_family = (sig >> 8) & 0xf;
    let family = if base_family == 0xf { base_family + ((sig >> 20) & 0xff) } else { base_family };
    let model = if base_family >= 6 { ((sig >> 12) & 0xf0) | ((sig >> 4) & 0xf) } else { (sig >> 4) & 0xf };
    let differs: Vec<_> = Vendor::ALL
        .iter()
        .map(|&v| (v, PROBES.iter().filter(|p| (p.native)() != (p.model)(v)).map(|p| p.name).collect::<Vec<_>>()))
        .collect();
    let matching = differs.iter().find(|(_, d)| d.is_empty()).map(|(v, _)| *v);
    let vendor = Vendor::from_cpuid(&cpuid_vendor).or(matching).unwrap_or(Vendor::Intel);
    Host { cpuid_vendor, family, model, stepping: sig & 0xf, vendor, differs }
}

/// One probe: an instruction run natively and under a model, each giving
/// (result, arithmetic flags).
struct Probe {
    name: &'static str,
    native: fn() -> (u32, u32),
    model: fn(Vendor) -> (u32, u32),
}

/// The native flags of interest: the six arithmetic ones.
fn arith(f: u32) -> u32 {
    f & ARITH
}

/// Probes chosen where the models differ (and BSF/BSR, where they agree
/// and the SDM does not): a host that matches neither shows it here.
const PROBES: &[Probe] = &[
    Probe {
        name: "MUL r/m8 (SF ZF AF PF)",
        native: || {
            let mut ax = 0x80u64;
            let f = run!(ZF | AF | FIXED1, ["mul {b:l}"], b = in(reg) 2u64, inout("rax") ax, out("rdx") _);
            (ax as u32 & 0xffff, arith(f))
        },
        model: |v| {
            let (lo, hi, f) = alu::mul(v, Width::B8, 0x80, 2, ZF | AF | FIXED1);
            (hi << 8 | lo, arith(f))
        },
    },
    Probe {
        name: "DIV r/m32 (all six)",
        native: || {
            let (mut ax, mut dx) = (100u64, 0u64);
            let f = run!(ARITH | FIXED1, ["div {b:e}"], b = in(reg) 7u64, inout("rax") ax, inout("rdx") dx);
            (ax as u32 ^ (dx as u32) << 16, arith(f))
        },
        model: |v| {
            let (q, r) = alu::div(Width::B32, 0, 100, 7).unwrap_or_default();
            (q ^ r << 16, arith(alu::div_flags(v, ARITH | FIXED1)))
        },
    },
    Probe {
        name: "SHL r/m8, CL by 2 (OF AF)",
        native: || {
            let mut r = 0x40u64;
            let f = run!(FIXED1, ["shl {r:l}, cl"], r = inout(reg) r, in("rcx") 2u64);
            (r as u32 & 0xff, arith(f))
        },
        model: |v| {
            let (r, f) = alu::shl(v, Width::B8, 0x40, Count::cl(2), FIXED1);
            (r, arith(f))
        },
    },
    Probe {
        name: "SHR r/m32, CL by 3 (OF AF)",
        native: || {
            let mut r = 0x8000_0000u64;
            let f = run!(FIXED1, ["shr {r:e}, cl"], r = inout(reg) r, in("rcx") 3u64);
            (r as u32, arith(f))
        },
        model: |v| {
            let (r, f) = alu::shr(v, Width::B32, 0x8000_0000, Count::cl(3), FIXED1);
            (r, arith(f))
        },
    },
    Probe {
        name: "ROR r/m16, CL by 3 (OF)",
        native: || {
            let mut r = 0x8005u64;
            let f = run!(FIXED1, ["ror {r:x}, cl"], r = inout(reg) r, in("rcx") 3u64);
            (r as u32 & 0xffff, arith(f))
        },
        model: |v| {
            let (r, f) = alu::ror(v, Width::B16, 0x8005, Count::cl(3), FIXED1);
            (r, arith(f))
        },
    },
    Probe {
        name: "ROL r/m8, imm8 by 2 (OF)",
        native: || {
            let mut r = 0x40u64;
            let f = run!(FIXED1, ["rol {r:l}, 2"], r = inout(reg) r);
            (r as u32 & 0xff, arith(f))
        },
        model: |v| {
            let (r, f) = alu::rol(v, Width::B8, 0x40, Count::imm_reg(2), FIXED1);
            (r, arith(f))
        },
    },
    Probe {
        name: "RCL r/m8, CL by 9 (a full turn)",
        native: || {
            let mut r = 0x81u64;
            let f = run!(CF | OF | FIXED1, ["rcl {r:l}, cl"], r = inout(reg) r, in("rcx") 9u64);
            (r as u32 & 0xff, arith(f))
        },
        model: |v| {
            let (r, f) = alu::rcl(v, Width::B8, 0x81, Count::cl(9), CF | OF | FIXED1);
            (r, arith(f))
        },
    },
    Probe {
        name: "SHLD r/m16, r16, CL by 16 (OF AF)",
        native: || {
            let mut r = 0x4001u64;
            let f = run!(FIXED1, ["shld {r:x}, {s:x}, cl"], r = inout(reg) r, s = in(reg) 0x80u64, in("rcx") 16u64);
            (r as u32 & 0xffff, arith(f))
        },
        model: |v| {
            let (r, f) = alu::shld(v, Width::B16, 0x4001, 0x80, Count::cl(16), FIXED1);
            (r, arith(f))
        },
    },
    Probe {
        name: "BSF r32, r/m32 of 0 (destination, flags)",
        native: || {
            let mut r = 0x1234_5678u64;
            let f = run!(ARITH | FIXED1, ["bsf {r:e}, {s:e}"], r = inout(reg) r, s = in(reg) 0u64);
            (r as u32, arith(f))
        },
        model: |_| {
            let (r, f) = alu::bsf(Width::B32, 0, 0x1234_5678, ARITH | FIXED1);
            (r, arith(f))
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_behaves_as_its_model() {
        let h = host();
        assert_eq!(h.disagreement(), None, "{}", h.describe());
        // The models differ on the probes, so the host cannot match both.
        assert!(!h.differences(Vendor::Intel).is_empty() || !h.differences(Vendor::Amd).is_empty());
    }
}
