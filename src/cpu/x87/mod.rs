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
//! The state ([`X87`]) is laid out as FNSAVE's 32-bit image, so the host's
//! FRSTOR and FNSAVE work on it in place, in the interpreter's stubs and
//! in translated code alike; after each host FNSAVE the guest's pointers
//! are written back over the host's.

pub mod host;

/// Control word bits.
pub mod cw {
    /// The six exception masks (IM DM ZM OM UM PM).
    pub const MASKS: u16 = 0x3f;
    /// After FNINIT: all exceptions masked, 64-bit precision, round to
    /// nearest.
    pub const INIT: u16 = 0x037f;
    /// The bits a loaded control word keeps (masks, PC, RC, the old
    /// infinity-control bit 12); bit 6 always reads 1, bits 7 and 13–15 0.
    /// Measured on this project's Intel host (FLDCW and FLDENV of 0xffff,
    /// 0x0000, 0x6040, 0xe0c0 and 0x1000 read back 0x1f7f, 0x0040, 0x0040,
    /// 0x0040, 0x1040); Bochs models the same for both vendors
    /// (`(cw & ~0xe0c0) | 0x0040`). FLDCW runs on the host; FLDENV and
    /// FRSTOR, which the interpreter decodes itself, apply this.
    pub const KEPT: u16 = 0x1f3f;
    pub const ONE: u16 = 0x0040;
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

/// The x87 state of the guest CPU, laid out as FNSAVE's 32-bit image
/// (SDM Vol. 1 Figure 8-11), so the host's FRSTOR and FNSAVE work on it
/// in place (`host.rs`, and translated code). The fields are the guest's:
/// after the host's FNSAVE the pointers are put back (the host's are host
/// addresses), and the reserved halves are not part of the state
/// (`PartialEq` leaves them out).
#[derive(Clone, Debug)]
#[repr(C)]
pub struct X87 {
    pub cw: u16,
    cw_hi: u16,
    pub sw: u16,
    sw_hi: u16,
    /// The full tag word: two bits per physical register (0 valid, 1 zero,
    /// 2 special, 3 empty), register 0 in bits 1:0; always what the
    /// registers hold (FNSAVE on the host computes it, and so does
    /// loading one from memory).
    pub tw: u16,
    tw_hi: u16,
    pub fip: u32,
    pub fcs: u16,
    /// The last non-control instruction's opcode, low 11 bits.
    pub fop: u16,
    pub fdp: u32,
    pub fds: u16,
    fds_hi: u16,
    /// ST(0)..ST(7), 80 bits each, little-endian, in stack order (physical
    /// register R((TOP + i) mod 8) is ST(i)).
    pub st: [[u8; 10]; 8],
}

/// The size of an FNSAVE image in the 32-bit protected-mode layout.
pub const SAVE32: usize = 108;
/// The size of the 32-bit environment (FNSTENV); 16-bit: 14.
pub const ENV32: usize = 28;
pub const ENV16: usize = 14;

const _: () = assert!(std::mem::size_of::<X87>() == SAVE32);

impl PartialEq for X87 {
    fn eq(&self, o: &X87) -> bool {
        (self.cw, self.sw, self.tw, self.fip, self.fcs, self.fop & 0x7ff, self.fdp, self.fds, self.st)
            == (o.cw, o.sw, o.tw, o.fip, o.fcs, o.fop & 0x7ff, o.fdp, o.fds, o.st)
    }
}

impl Eq for X87 {}

impl Default for X87 {
    fn default() -> Self {
        Self::init()
    }
}

impl X87 {
    /// The state after FNINIT, with every register zero (bt86's state at
    /// boot, as QEMU's).
    pub fn init() -> X87 {
        X87 {
            cw: cw::INIT,
            cw_hi: 0xffff,
            sw: 0,
            sw_hi: 0xffff,
            tw: 0xffff,
            tw_hi: 0xffff,
            fip: 0,
            fcs: 0,
            fop: 0,
            fdp: 0,
            fds: 0,
            fds_hi: 0xffff,
            st: [[0; 10]; 8],
        }
    }

    /// FNINIT: control, status and tag words and the pointers as at
    /// [`init`](Self::init); the physical registers keep their contents
    /// (only their tags say empty), as the hardware leaves them.
    pub fn reinit(&mut self) {
        let regs = self.physical();
        *self = X87::init();
        self.set_physical(&regs);
    }

    /// TOP, the physical register that is ST(0).
    #[inline]
    pub fn top(&self) -> usize {
        ((self.sw & sw::TOP) >> sw::TOP_SHIFT) as usize
    }

    /// The physical registers R0..R7.
    pub fn physical(&self) -> [[u8; 10]; 8] {
        std::array::from_fn(|r| self.st[(r + 8 - self.top()) & 7])
    }

    /// Sets the physical registers R0..R7 (under the current TOP).
    fn set_physical(&mut self, regs: &[[u8; 10]; 8]) {
        let top = self.top();
        self.st = std::array::from_fn(|i| regs[(top + i) & 7]);
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
        let regs = self.physical();
        self.tw = (0..8).fold(0, |acc, r| {
            let t = if (tw >> (2 * r)) & 3 == 3 { 3 } else { tag_of(&regs[r]) };
            acc | (t << (2 * r))
        });
    }

    /// The environment in the 32-bit (`ENV32` bytes) or 16-bit (`ENV16`)
    /// protected-mode layout; the 32-bit layout's reserved halves are
    /// stored as 0xFFFF, as Intel CPUs store them.
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

    /// The environment's fields from `b`; the tag word returned, not set.
    fn set_env(&mut self, b: &[u8], wide: bool) -> u16 {
        let h = |k: usize| u16::from_le_bytes([b[k], b[k + 1]]);
        let d = |k: usize| u32::from_le_bytes([b[k], b[k + 1], b[k + 2], b[k + 3]]);
        if wide {
            (self.cw, self.sw) = ((h(0) & cw::KEPT) | cw::ONE, h(4));
            (self.fip, self.fcs, self.fop, self.fdp, self.fds) = (d(12), h(16), h(18) & 0x7ff, d(20), h(24));
            h(8)
        } else {
            (self.cw, self.sw) = ((h(0) & cw::KEPT) | cw::ONE, h(2));
            (self.fip, self.fcs, self.fop, self.fdp, self.fds) = (h(6).into(), h(8), 0, h(10).into(), h(12));
            h(4)
        }
    }

    /// FLDENV: loads an environment in either layout (`wide`: 32-bit); the
    /// physical registers stay (a new TOP renames them).
    pub fn load_env(&mut self, b: &[u8], wide: bool) {
        let regs = self.physical();
        let tw = self.set_env(b, wide);
        self.set_physical(&regs);
        self.load_tags(tw);
        self.summarise();
    }

    /// FNSAVE's image: the environment, then ST(0)..ST(7).
    pub fn save(&self, wide: bool) -> Vec<u8> {
        let mut b = self.env(wide);
        for r in &self.st {
            b.extend_from_slice(r);
        }
        b
    }

    /// FRSTOR: the inverse of [`save`](Self::save).
    pub fn restore(&mut self, b: &[u8], wide: bool) {
        let env = if wide { ENV32 } else { ENV16 };
        let tw = self.set_env(b, wide);
        for (i, r) in self.st.iter_mut().enumerate() {
            r.copy_from_slice(&b[env + 10 * i..env + 10 * i + 10]);
        }
        self.load_tags(tw);
        self.summarise();
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
