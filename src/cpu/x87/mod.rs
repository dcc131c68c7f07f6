//! The x87 FPU: its state and the one meaning of its instructions that the
//! interpreter and the translator's callouts share (SDM Vol. 1 ch. 8).
//!
//! # How results are computed: on the host's x87
//!
//! Every x87 instruction that computes (loads, stores, arithmetic,
//! compares, FXAM, the transcendental instructions, FLDCW, FXCH, FFREE...)
//! runs on the host's own FPU: the guest state is loaded with FRSTOR, the
//! guest's instruction runs re-encoded for the host with its memory
//! operand in a buffer, and FNSAVE takes the state back (`host.rs`,
//! `translator::x87`). So the results are the real x87's bit for bit, in
//! every rounding and precision mode, with the status flags (C1 round-up,
//! PE, DE, UE/OE and their masked results, stack faults) and the
//! transcendental instructions' exact answers on this host, which is what
//! the translated code would compute too. The alternative, an exact
//! software x87, would be a large body of code whose transcendental
//! results could still not match the host's; the price of the host is one
//! FRSTOR/FNSAVE pair per instruction in the interpreter.
//!
//! What the host cannot give is synthesised here:
//!
//! - the guest's instruction and operand pointers (FIP, FCS, FOP, FDP,
//!   FDS): the host's would be host addresses. bt86 models a P6-class
//!   CPU: every non-control instruction sets FIP/FCS to its CS:EIP
//!   (prefixes included) and FOP to its opcode's low 11 bits, and one with
//!   a memory operand sets FDP/FDS to the operand's offset and selector;
//!   others leave FDP/FDS as they were. (Recent Intel CPUs store FCS and
//!   FDS as 0 and update FDP only on unmasked exceptions, CPUID.7.EBX bits
//!   13 and 6; bt86's CPUID reports neither.)
//! - the control instructions that do not compute (FNINIT, FNCLEX,
//!   FNSTCW, FNSTSW, FNSTENV, FLDENV, FNSAVE, FRSTOR, FWAIT), with the
//!   16-bit and 32-bit protected-mode layouts of the environment; the
//!   reserved upper halves of the 32-bit layout's words are stored as
//!   0xFFFF, as Intel CPUs store them;
//! - #NM (CR0.EM, CR0.TS with MP for WAIT) and #MF: an unmasked exception
//!   sets ES and B and is raised at the next waiting instruction, from the
//!   guest state, before the host runs anything (with CR0.NE clear: IRQ 13,
//!   and the instruction goes on as with IGNNE#, as QEMU does).
//!
//! The state is kept in the guest's own terms ([`X87`]: physical
//! registers, full tag word, the pointers), converted to and from an
//! FNSAVE image around each host instruction.

pub mod host;

/// Control word bits.
pub mod cw {
    /// The six exception masks (IM DM ZM OM UM PM).
    pub const MASKS: u16 = 0x3f;
    /// After FNINIT: all exceptions masked, 64-bit precision, round to
    /// nearest.
    pub const INIT: u16 = 0x037f;
}

/// Status word bits.
pub mod sw {
    /// The six exception flags (IE DE ZE OE UE PE).
    pub const EXCEPTIONS: u16 = 0x3f;
    /// Stack fault.
    pub const SF: u16 = 1 << 6;
    /// Exception summary.
    pub const ES: u16 = 1 << 7;
    pub const C0: u16 = 1 << 8;
    pub const C1: u16 = 1 << 9;
    pub const C2: u16 = 1 << 10;
    pub const TOP_SHIFT: u16 = 11;
    pub const TOP: u16 = 7 << TOP_SHIFT;
    pub const C3: u16 = 1 << 14;
    /// FPU busy (a copy of ES on a 387 and later).
    pub const B: u16 = 1 << 15;
}

/// The x87 state of the guest CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct X87 {
    pub cw: u16,
    pub sw: u16,
    /// The full tag word: two bits per physical register (0 valid, 1 zero,
    /// 2 special, 3 empty), register 0 in bits 1:0; always what the
    /// registers hold (FNSAVE on the host computes it, and so does
    /// loading one from memory).
    pub tw: u16,
    /// The last non-control instruction's opcode, low 11 bits.
    pub fop: u16,
    pub fip: u32,
    pub fdp: u32,
    pub fcs: u16,
    pub fds: u16,
    /// The physical registers R0..R7, 80 bits each, little-endian (ST(i)
    /// is R((TOP + i) mod 8)).
    pub regs: [[u8; 10]; 8],
}

/// The size of an FNSAVE image in the 32-bit protected-mode layout.
pub const SAVE32: usize = 108;
/// The size of the 32-bit environment (FNSTENV); 16-bit: 14.
pub const ENV32: usize = 28;
pub const ENV16: usize = 14;

impl Default for X87 {
    fn default() -> Self {
        Self::init()
    }
}

impl X87 {
    /// The state after FNINIT (also bt86's state at boot, as QEMU's).
    pub fn init() -> X87 {
        X87 { cw: cw::INIT, sw: 0, tw: 0xffff, fop: 0, fip: 0, fdp: 0, fcs: 0, fds: 0, regs: [[0; 10]; 8] }
    }

    /// FNINIT: control, status and tag words and the pointers as at
    /// [`init`](Self::init); the registers keep their contents (only their
    /// tags say empty), as the hardware leaves them.
    pub fn reinit(&mut self) {
        *self = X87 { regs: self.regs, ..X87::init() };
    }

    /// TOP, the physical register that is ST(0).
    #[inline]
    pub fn top(&self) -> usize {
        ((self.sw & sw::TOP) >> sw::TOP_SHIFT) as usize
    }

    /// Whether an unmasked exception is pending: the next waiting
    /// instruction raises it.
    #[inline]
    pub fn pending(&self) -> bool {
        self.sw & sw::ES != 0
    }

    /// Sets ES and B from the exception flags and the masks, as loading a
    /// status or control word does.
    pub fn summarise(&mut self) {
        if self.sw & sw::EXCEPTIONS & !self.cw & cw::MASKS != 0 {
            self.sw |= sw::ES | sw::B;
        } else {
            self.sw &= !(sw::ES | sw::B);
        }
    }

    /// FNCLEX: the exception flags, SF, ES and B cleared.
    pub fn clear_exceptions(&mut self) {
        self.sw &= !(sw::EXCEPTIONS | sw::SF | sw::ES | sw::B);
    }

    /// Takes the tag word from memory: only "empty" is kept, the other tags
    /// follow the registers' contents (as FLDENV and FRSTOR do).
    fn load_tags(&mut self, tw: u16) {
        self.tw = (0..8).fold(0, |acc, r| {
            let t = if (tw >> (2 * r)) & 3 == 3 { 3 } else { tag_of(&self.regs[r]) };
            acc | (t << (2 * r))
        });
    }

    /// The environment in the 32-bit (`ENV32` bytes) or 16-bit (`ENV16`)
    /// protected-mode layout.
    pub fn env(&self, wide: bool) -> Vec<u8> {
        let mut b = Vec::with_capacity(ENV32);
        if wide {
            for w in [self.cw, self.sw, self.tw] {
                b.extend_from_slice(&[w as u8, (w >> 8) as u8, 0xff, 0xff]);
            }
            b.extend_from_slice(&self.fip.to_le_bytes());
            b.extend_from_slice(&(u32::from(self.fcs) | u32::from(self.fop & 0x7ff) << 16).to_le_bytes());
            b.extend_from_slice(&self.fdp.to_le_bytes());
            b.extend_from_slice(&(u32::from(self.fds) | 0xffff_0000).to_le_bytes());
        } else {
            for w in [self.cw, self.sw, self.tw, self.fip as u16, self.fcs, self.fdp as u16, self.fds] {
                b.extend_from_slice(&w.to_le_bytes());
            }
        }
        b
    }

    /// Loads an environment in either layout (`wide`: 32-bit); the
    /// registers stay.
    pub fn load_env(&mut self, b: &[u8], wide: bool) {
        let h = |k: usize| u16::from_le_bytes([b[k], b[k + 1]]);
        let d = |k: usize| u32::from_le_bytes([b[k], b[k + 1], b[k + 2], b[k + 3]]);
        let tw;
        if wide {
            (self.cw, self.sw, tw) = (h(0), h(4), h(8));
            (self.fip, self.fcs, self.fop, self.fdp, self.fds) = (d(12), h(16), h(18) & 0x7ff, d(20), h(24));
        } else {
            (self.cw, self.sw, tw) = (h(0), h(2), h(4));
            (self.fip, self.fcs, self.fop, self.fdp, self.fds) = (h(6).into(), h(8), 0, h(10).into(), h(12));
        }
        self.load_tags(tw);
        self.summarise();
    }

    /// FNSAVE's image: the environment, then ST(0)..ST(7).
    pub fn save(&self, wide: bool) -> Vec<u8> {
        let mut b = self.env(wide);
        for i in 0..8 {
            b.extend_from_slice(&self.regs[(self.top() + i) & 7]);
        }
        b
    }

    /// FRSTOR: the inverse of [`save`](Self::save).
    pub fn restore(&mut self, b: &[u8], wide: bool) {
        let env = if wide { ENV32 } else { ENV16 };
        let top = ((u16::from_le_bytes([b[if wide { 4 } else { 2 }], b[if wide { 5 } else { 3 }]]) & sw::TOP)
            >> sw::TOP_SHIFT) as usize;
        for i in 0..8 {
            let at = env + 10 * i;
            self.regs[(top + i) & 7].copy_from_slice(&b[at..at + 10]);
        }
        self.load_env(b, wide);
    }
}

/// The tag of a non-empty register: 0 valid, 1 zero, 2 special (NaN,
/// infinity, denormal, and the unsupported encodings).
pub fn tag_of(r: &[u8; 10]) -> u16 {
    let exp = u16::from_le_bytes([r[8], r[9]]) & 0x7fff;
    let mant = u64::from_le_bytes([r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]]);
    let integer = mant >> 63 != 0;
    match exp {
        0 if mant == 0 => 1,
        0 | 0x7fff => 2,
        _ if integer => 0,
        _ => 2,
    }
}

#[cfg(test)]
mod tests;
