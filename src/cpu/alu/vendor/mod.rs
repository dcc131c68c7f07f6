//! The vendor model: what bt86's CPU does where the SDM says "undefined".
//!
//! The translator runs most integer instructions on the host (IDENT), so
//! their undefined flags are the host vendor's. The interpreter must give
//! the same answers or lockstep and every differential test fail, so it
//! models both vendors exactly, and a machine picks one when it is built
//! (`MachineConfig::vendor`, `--cpu-vendor`; the host's by default). Every
//! rule that differs between the vendors is in this file; the ALU computes
//! what the SDM defines and asks a [`Vendor`] for the rest.
//!
//! ```text
//!   instruction             undefined        Intel                     AMD
//!   ----------------------  ---------------  ------------------------  --------------------------
//!   MUL IMUL (all forms)    SF ZF AF PF      SF, PF of the low half;   unchanged
//!                                            ZF = AF = 0
//!   DIV IDIV                all six          unchanged                 SF ZF PF = 0, AF = 1
//!   SHL SHR SAR SHLD SHRD   AF (count != 0)  0                         1
//!   shifts, rotates n > 1   OF               the count-1 formula on    the count-1 formula on
//!   (n = count & 31)                         the operands: a, src, CF  the result: r and CF out
//!                                            before                    (SHLD 16, n = 16: OF = CF)
//!   ROL ROR r, imm8 n > 1   OF               unchanged (a memory       as the CL form
//!                                            destination: as by CL)
//!   RCL RCR 8/16, n a       result CF OF     no-op: nothing changes    OF written (result, CF
//!   multiple of 9 / 17                                                 unchanged)
//!   SHL SHR 8/16, n >= w    CF               last bit out; 0 once n > w (both)
//!   ROL ROR, n % w = 0      CF OF            written as for any count (both)
//!   SHLD SHRD 16, n > 16    result CF OF     shift the 48-bit dest:src:dest (both; AMD unverified)
//!   BSF BSR                 CF OF SF AF PF   0, PF = parity of the index (of 0 when src = 0) (both)
//!   BSF BSR, src = 0        destination      unchanged (both)
//!   BT BTS BTR BTC          OF SF AF PF      unchanged (both)
//!   AND OR XOR TEST         AF               0 (both)
//!   AAA AAS / DAA DAS       SF OF / OF       0 / 0 (both; AMD unverified)
//!   AAM / AAD               CF AF OF         0 / those of ADD AL, AH*imm (both; AMD unverified)
//! ```
//!
//! The count-1 formulas (SDM Vol. 2, "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR",
//! "SHLD", "SHRD") can be read off the operands or off the result:
//!
//! ```text
//!   op    on the operands (Intel)     on the result (AMD)
//!   SHL   a[w-1] ^ a[w-2]             r[w-1] ^ CF
//!   SHR   a[w-1]                      r[w-1] ^ r[w-2]
//!   SAR   0                           0
//!   ROL   a[w-1] ^ a[w-2]             r[w-1] ^ CF
//!   ROR   a[w-1] ^ a[0]               r[w-1] ^ r[w-2]
//!   RCL   a[w-1] ^ a[w-2]             r[w-1] ^ CF
//!   RCR   a[w-1] ^ CF before          r[w-1] ^ r[w-2]
//!   SHLD  a[w-1] ^ a[w-2]             r[w-1] ^ CF
//!   SHRD  a[w-1] ^ src[0]             r[w-1] ^ r[w-2]
//! ```
//!
//! Sources. Intel: the vectors recorded on an Emerald Rapids Xeon (family
//! 6, model 0xCF; `tests/vectors/`), every one of which the Intel model
//! reproduces (`tests.rs`); the same generator gave identical vectors on a
//! family 6 model 0xA7 Xeon; and the live host, by the `native` tests,
//! when it is an Intel CPU. Other families are not measured: a host that
//! behaves otherwise is caught by [`probe`] when a machine is built. AMD: an EPYC (Zen,
//! family 0x17/0x19) measured by the `native` tests, which check the
//! register forms with a CL count; what those tests could not reach (the
//! imm8 rotates, 16-bit SHLD/SHRD past 16, the BCD instructions, which do
//! not exist in 64-bit mode) is marked unverified above and follows Intel
//! or the CL form until an AMD host records its vectors with
//! `tests/vectors/gen/run.sh`.
//!
//! What the guest sees in CPUID is a separate choice: the vendor string is
//! always "bt86VirtCPU " (`system/control.rs`), whichever model runs.

pub mod probe;

#[cfg(test)]
mod tests;

use super::{szp, Width};
use crate::cpu::state::flags::{AF, PF, SF, ZF};

/// Whose undefined behaviour the ALU reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vendor {
    Intel,
    Amd,
}

/// The shifts and rotates, for [`Vendor::shift_of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShiftOp {
    Shl,
    Shr,
    Sar,
    Rol,
    Ror,
    Rcl,
    Rcr,
    Shld,
    Shrd,
}

/// One shift or rotate with a non-zero masked count: its operands and the
/// outputs the SDM defines, from which a vendor derives OF.
#[derive(Clone, Copy, Debug)]
pub struct Shifted {
    pub op: ShiftOp,
    pub w: Width,
    /// The count, masked to 5 bits (never 0 here).
    pub n: u32,
    /// Whether the count was an imm8 and the destination a register
    /// ([`Count`](super::Count)).
    pub imm_to_register: bool,
    /// The destination before (masked to the width).
    pub a: u32,
    /// SHLD/SHRD's source (masked); 0 otherwise.
    pub src: u32,
    /// CF before, in bit 0.
    pub cf_in: u32,
    /// The result (masked).
    pub r: u32,
    /// CF after, in bit 0.
    pub cf: u32,
}

impl Vendor {
    /// Both models, for tests and reports.
    pub const ALL: [Vendor; 2] = [Vendor::Intel, Vendor::Amd];

    /// The name on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Intel => "intel",
            Vendor::Amd => "amd",
        }
    }

    /// The model for a CPUID vendor string: AMD's and Hygon's (a Zen
    /// licensee) follow AMD, Intel's follow Intel; anything else is
    /// decided by [`probe`].
    pub fn from_cpuid(vendor: &str) -> Option<Vendor> {
        match vendor {
            "GenuineIntel" => Some(Vendor::Intel),
            "AuthenticAMD" | "HygonGenuine" => Some(Vendor::Amd),
            _ => None,
        }
    }

    /// The host's model: what the translator's IDENT code computes. See
    /// [`probe::host`] for how it is found and checked.
    pub fn host() -> Vendor {
        probe::host().vendor
    }

    /// SF, ZF, AF and PF after MUL or IMUL with low half `lo` (masked).
    #[inline]
    pub(super) fn mul_szap(self, w: Width, lo: u32, eflags: u32) -> u32 {
        match self {
            Vendor::Intel => szp(w, lo) & !ZF,
            Vendor::Amd => eflags & (SF | ZF | AF | PF),
        }
    }

    /// EFLAGS after a DIV or IDIV that did not fault (all six arithmetic
    /// flags are undefined).
    #[inline]
    pub fn div_flags(self, eflags: u32) -> u32 {
        match self {
            Vendor::Intel => eflags,
            Vendor::Amd => (eflags & !(SF | ZF | PF)) | AF,
        }
    }

    /// AF after SHL, SHR, SAR, SHLD or SHRD with a non-zero count.
    #[inline]
    pub(super) fn shift_af(self) -> u32 {
        match self {
            Vendor::Intel => 0,
            Vendor::Amd => AF,
        }
    }

    /// OF (in bit 0) after a shift or rotate with a non-zero count, or
    /// `None` when the instruction leaves OF as it was. For a count of 1
    /// both vendors give the SDM's value.
    #[inline]
    pub(super) fn shift_of(self, s: &Shifted) -> Option<u32> {
        let top = s.w.bits() - 1;
        let bit = |v: u32, k: u32| (v >> k) & 1;
        match self {
            Vendor::Intel => {
                let rotate_by_imm = matches!(s.op, ShiftOp::Rol | ShiftOp::Ror) && s.imm_to_register && s.n != 1;
                let full_turn = matches!(s.op, ShiftOp::Rcl | ShiftOp::Rcr) && s.n % (s.w.bits() + 1) == 0;
                if rotate_by_imm || full_turn {
                    return None;
                }
                let a = s.a;
                Some(match s.op {
                    ShiftOp::Shl | ShiftOp::Rol | ShiftOp::Rcl | ShiftOp::Shld => bit(a, top) ^ bit(a, top - 1),
                    ShiftOp::Shr => bit(a, top),
                    ShiftOp::Sar => 0,
                    ShiftOp::Ror => bit(a, top) ^ bit(a, 0),
                    ShiftOp::Rcr => bit(a, top) ^ s.cf_in,
                    ShiftOp::Shrd => bit(a, top) ^ bit(s.src, 0),
                })
            }
            Vendor::Amd => {
                let r = s.r;
                Some(match s.op {
                    // A 16-bit SHLD by 16 measured OF = CF.
                    ShiftOp::Shld if s.w == Width::B16 && s.n == 16 => s.cf,
                    ShiftOp::Shl | ShiftOp::Rol | ShiftOp::Rcl | ShiftOp::Shld => bit(r, top) ^ s.cf,
                    ShiftOp::Sar => 0,
                    ShiftOp::Shr | ShiftOp::Ror | ShiftOp::Rcr | ShiftOp::Shrd => bit(r, top) ^ bit(r, top - 1),
                })
            }
        }
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Vendor {
    type Err = String;

    fn from_str(s: &str) -> Result<Vendor, String> {
        match s.to_ascii_lowercase().as_str() {
            "intel" => Ok(Vendor::Intel),
            "amd" => Ok(Vendor::Amd),
            _ => Err(format!("unknown CPU vendor {s:?}: intel or amd")),
        }
    }
}
