//! The x87 share of the differential test's sequences.
//!
//! A sequence is an x87 one with probability `BT86_DIFF_X87` percent
//! (default [`DEFAULT_SHARE`]), decided from its seed by a generator of its
//! own, so the integer sequences are the same as without x87. In an x87
//! sequence 30, 50 or 85% of the steps are x87 steps (the denser ones keep
//! more of the register stack full), the others the usual integer ones
//! (which feed FCMOVcc's flags and read FCOMI's):
//!
//! ```text
//!   load      FLD/FILD/FBLD of a value just stored into the data area
//!             (zeros, denormals, infinities, NaNs, pseudo-NaNs, unnormals,
//!             extremes) or of the random data; FLD ST(i); the constants
//!   any       any legacy x87 encoding valid in 32-bit mode (iced's Codes,
//!             the undocumented aliases and the 287 no-ops included, FISTTP
//!             left out: SSE3), memory operands as the integer generator
//!             makes them (segment overrides, 16-bit addressing, page ends)
//!   control   FLDCW of a stored word: random rounding and precision, all
//!             exceptions masked or (1 in 5) some unmasked, so #MF happens;
//!             FNSTSW AX then SAHF; FNSTENV/FNSAVE then FLDENV/FRSTOR of
//!             the same bytes; FNINIT, FNCLEX, FWAIT
//! ```
//!
//! The machine runs with CR0.NE set (#MF is vector 16) in most x87
//! sequences, clear in the others (the legacy path: the instruction goes
//! on); a few set CR0.EM or CR0.TS (#NM).

use super::{build, Gen, Op, Rng, DATA, DATA_SIZE};
use iced_x86::{
    Code, EncodingKind, Instruction, MemoryOperand, Mnemonic, OpCodeOperandKind, OpCodeTableKind, Register,
};

pub const DEFAULT_SHARE: u32 = 25;

/// The share of x87 sequences, in percent.
pub fn share() -> u32 {
    std::env::var("BT86_DIFF_X87").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SHARE).min(100)
}

/// An x87 sequence's machine and mix.
#[derive(Clone, Copy)]
pub struct Plan {
    /// CR0 bits set in the machine: NE, sometimes EM, TS, MP.
    pub cr0: u32,
    /// The share of x87 steps, in percent.
    pub density: u32,
}

/// Whether the sequence with this seed is an x87 one, and its plan.
pub fn plan(seed: u64, share: u32) -> Option<Plan> {
    use bt86::cpu::state::cr0;
    let mut r = Rng::new(seed ^ 0x87_87_87_87);
    if !r.chance(share) {
        return None;
    }
    let mut bits = if r.chance(80) { cr0::NE } else { 0 };
    if r.chance(4) {
        bits |= r.pick(&[cr0::EM, cr0::TS, cr0::TS | cr0::MP, cr0::MP]);
    }
    Some(Plan { cr0: bits, density: r.pick(&[30, 50, 50, 85]) })
}

/// Every legacy x87 encoding (escape opcodes D8-DF, also with WAIT
/// first) valid in 32-bit mode whose operands are ST(0), ST(i), AX or
/// memory, and WAIT.
pub fn codes() -> Vec<Code> {
    Code::values()
        .filter(|c| {
            let oc = c.op_code();
            // Register forms have two opcode bytes (FCHS: 0xD9E0).
            let first = if oc.op_code_len() == 2 { oc.op_code() >> 8 } else { oc.op_code() };
            let escape = oc.table() == OpCodeTableKind::Normal && (0xd8..=0xdf).contains(&first);
            (escape || *c == Code::Wait)
                && c.mnemonic() != Mnemonic::Fisttp
                && oc.encoding() == EncodingKind::Legacy
                && oc.mode32()
                && oc.decoder_option() == iced_x86::DecoderOptions::NONE
                && oc.op_kinds().iter().all(|k| {
                    matches!(
                        k,
                        OpCodeOperandKind::st0
                            | OpCodeOperandKind::sti_opcode
                            | OpCodeOperandKind::mem
                            | OpCodeOperandKind::ax
                    )
                })
        })
        .collect()
}

const ST: [Register; 8] = [
    Register::ST0,
    Register::ST1,
    Register::ST2,
    Register::ST3,
    Register::ST4,
    Register::ST5,
    Register::ST6,
    Register::ST7,
];

/// Special values as the bytes of each format, little-endian.
fn special(rng: &mut Rng, size: u32) -> Vec<u8> {
    let mut v: Vec<u8> = match size {
        2 => rng.pick(&[0u16, 1, 0xffff, 0x8000, 0x7fff, 0x0100]).to_le_bytes().to_vec(),
        4 => rng
            .pick(&[
                0u32,
                0x8000_0000,
                0x7f80_0000,
                0xff80_0000,
                0x7fc0_0000,
                0xffc0_0000,
                0x7fa0_0000,
                0x0000_0001,
                0x807f_ffff,
                0x3f80_0000,
                0x4049_0fdb,
                0x7f7f_ffff,
                0x0080_0000,
                0xffff_ffff,
                0x7fff_ffff,
            ])
            .to_le_bytes()
            .to_vec(),
        8 => rng
            .pick(&[
                0u64,
                0x8000_0000_0000_0000,
                0x7ff0_0000_0000_0000,
                0xfff0_0000_0000_0000,
                0x7ff8_0000_0000_0000,
                0x7ff4_0000_0000_0000,
                0x0000_0000_0000_0001,
                0x000f_ffff_ffff_ffff,
                0x3ff0_0000_0000_0000,
                0x3ff0_0000_0000_0001,
                0x7fef_ffff_ffff_ffff,
                0x4330_0000_0000_0001,
                0x7fff_ffff_ffff_ffff,
                0x8000_0000_0000_0001,
            ])
            .to_le_bytes()
            .to_vec(),
        _ => {
            let (exp, man): (u16, u64) = rng.pick(&[
                (0x3fff, 1 << 63),
                (0xbfff, (1 << 63) | 1),
                (0x7fff, 1 << 63),
                (0x7fff, 0xc000_0000_0000_0000),
                (0xffff, 0xa000_0000_0000_0000),
                (0x7fff, 0x4000_0000_0000_0000),
                (0x7fff, 0),
                (0x0000, 1),
                (0x8000, 1 << 63),
                (0x4000, 0x4000_0000_0000_0000),
                (0x7ffe, u64::MAX),
                (0x0001, 1 << 63),
                (0x0000, 0),
                (0x403e, u64::MAX),
                (0x0012, 0x0000_0000_0000_1234),
            ]);
            let mut b = man.to_le_bytes().to_vec();
            b.extend_from_slice(&exp.to_le_bytes());
            b
        }
    };
    v.truncate(size as usize);
    v
}

impl Gen<'_> {
    /// `mov [addr], imm` for each dword (and a trailing word) of `bytes`.
    fn store_bytes(&mut self, addr: u32, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(4).enumerate() {
            let at = MemoryOperand::with_displ(u64::from(addr) + 4 * i as u64, 4);
            let insn = if chunk.len() == 4 {
                build(Code::Mov_rm32_imm32, &[Op::Mem(at), Op::Imm(i32::from_le_bytes(chunk.try_into().unwrap()))])
            } else {
                build(
                    Code::Mov_rm16_imm16,
                    &[Op::Mem(at), Op::Imm(i32::from(u16::from_le_bytes([chunk[0], chunk[1]])))],
                )
            };
            self.out.push(insn);
        }
    }

    fn abs(addr: u32) -> MemoryOperand {
        MemoryOperand::with_displ(u64::from(addr), 4)
    }

    /// A load onto the stack, often of a special value stored just before.
    fn x87_load(&mut self) {
        let (size, code) = self.rng.pick(&[
            (4, Code::Fld_m32fp),
            (8, Code::Fld_m64fp),
            (10, Code::Fld_m80fp),
            (2, Code::Fild_m16int),
            (4, Code::Fild_m32int),
            (8, Code::Fild_m64int),
            (10, Code::Fbld_m80bcd),
        ]);
        match self.rng.below(10) {
            0..=4 => {
                let addr = DATA + self.rng.below(DATA_SIZE - 16);
                let bytes = special(&mut self.rng, size);
                self.store_bytes(addr, &bytes);
                self.out.push(build(code, &[Op::Mem(Self::abs(addr))]));
            }
            5 | 6 => {
                let m = self.mem(size, false);
                self.out.push(build(code, &[Op::Mem(m)]));
            }
            7 => self.out.push(build(Code::Fld_sti, &[Op::Reg(self.rng.pick(&ST))])),
            _ => self.out.push(Instruction::with(self.rng.pick(&[
                Code::Fld1,
                Code::Fldz,
                Code::Fldpi,
                Code::Fldl2e,
                Code::Fldl2t,
                Code::Fldlg2,
                Code::Fldln2,
            ]))),
        }
    }

    /// Any x87 encoding, its operands filled in.
    fn x87_any(&mut self) {
        let code = self.rng.pick(self.x87);
        let oc = code.op_code();
        let mut ops = Vec::new();
        for &k in oc.op_kinds() {
            ops.push(match k {
                OpCodeOperandKind::st0 => Op::Reg(Register::ST0),
                OpCodeOperandKind::sti_opcode => Op::Reg(self.rng.pick(&ST)),
                OpCodeOperandKind::ax => Op::Reg(Register::AX),
                _ => Op::Mem(self.mem(oc.memory_size().size() as u32, false)),
            });
        }
        let mut insn = build(code, &ops);
        self.fix_cs_write(&mut insn);
        self.out.push(insn);
    }

    /// FLDCW of a control word: random rounding and precision control,
    /// the exceptions masked, or some of them unmasked.
    fn x87_fldcw(&mut self) {
        let masks =
            if self.rng.chance(80) { 0x3f } else { 0x3f & !(1u16 << self.rng.below(6)) & self.rng.next() as u16 };
        let cw = masks | ((self.rng.below(4) as u16) << 8) | ((self.rng.below(4) as u16) << 10) | 0x40;
        let cw = if self.rng.chance(5) { self.rng.next() as u16 } else { cw };
        let addr = DATA + self.rng.below(DATA_SIZE - 16);
        self.store_bytes(addr, &cw.to_le_bytes());
        self.out.push(build(Code::Fldcw_m2byte, &[Op::Mem(Self::abs(addr))]));
    }

    fn x87_control(&mut self) {
        match self.rng.below(8) {
            0..=2 => self.x87_fldcw(),
            3 => {
                self.out.push(build(Code::Fnstsw_AX, &[Op::Reg(Register::AX)]));
                if self.rng.chance(50) {
                    self.out.push(Instruction::with(Code::Sahf));
                }
            }
            4 => {
                // An environment or the whole state saved, then loaded back
                // (perhaps after more x87 work).
                let (st, ld, size) = self.rng.pick(&[
                    (Code::Fnstenv_m28byte, Code::Fldenv_m28byte, 28),
                    (Code::Fnstenv_m14byte, Code::Fldenv_m14byte, 14),
                    (Code::Fnsave_m108byte, Code::Frstor_m108byte, 108),
                    (Code::Fnsave_m94byte, Code::Frstor_m94byte, 94),
                ]);
                let addr = DATA + self.rng.below(DATA_SIZE - size);
                self.out.push(build(st, &[Op::Mem(Self::abs(addr))]));
                if self.rng.chance(50) {
                    self.x87_any();
                }
                self.out.push(build(ld, &[Op::Mem(Self::abs(addr))]));
            }
            5 => self.out.push(Instruction::with(Code::Fninit)),
            6 => self.out.push(Instruction::with(Code::Fnclex)),
            _ => self.out.push(Instruction::with(Code::Wait)),
        }
    }

    pub fn x87_step(&mut self) {
        match self.rng.below(10) {
            0..=2 => self.x87_load(),
            3..=8 => self.x87_any(),
            _ => self.x87_control(),
        }
    }

    /// The x87 sequence's start: mostly FNINIT and a value or two.
    pub fn x87_prologue(&mut self) {
        if self.rng.chance(85) {
            self.out.push(Instruction::with(Code::Fninit));
        }
        for _ in 0..self.rng.below(4) {
            self.x87_load();
        }
    }
}
