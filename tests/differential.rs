//! Differential test: random user-level instruction sequences, generated with
//! iced-x86's encoder from fixed-seed xorshift generators, run under `bt` and
//! under `interp` (and, for a share of them, in lockstep), which must agree
//! on the exit status, the whole final `CpuState`, the retired-instruction
//! count and guest RAM.
//!
//! Each guest is a flat binary at 1 MiB (`loader::load_flat`: flat 32-bit
//! protected mode, paging off):
//!
//! ```text
//!   0x01000  IDT, 256 interrupt gates, CS 0x08   (cpu.idtr set before running)
//!   0x02000  handler v: mov [SAVE],eax; mov eax,0x100+v; out 0xf4,eax
//!   0x03000  SAVE (EAX at the end of the run)
//!   0x09000  data area, 16 KiB of random bytes (memory operands, page crossings)
//!   0x0f000  stack (ESP starts at 0xec00)
//!   0x100000 prologue (ESP, GS, EFLAGS, general registers), the random
//!            sequence, epilogue: mov [SAVE],eax; mov eax,0x400; out 0xf4,eax
//! ```
//!
//! A run therefore ends with status `0x801` (the sequence ran to its end) or
//! `0x201 + 2*vector` (an exception or `int n` stopped it). The number of
//! sequences can be changed with `BT86_DIFF_SEQS`, the base seed with
//! `BT86_DIFF_SEED`.
//!
//! In a share of the sequences FS and GS are flat data segments with a
//! base (the descriptor cache of selector 0x10 with its base changed, as
//! Linux's per-CPU `%fs` and a thread's `%gs`), and the addresses through
//! them are offset to land in the data area, wrapping at 4 GiB.
//!
//! A share of the sequences (`BT86_DIFF_X87` percent, default 25) mix x87
//! instructions in, with the exceptions sometimes unmasked (#MF) and CR0's
//! NE/EM/TS/MP varied: `differential/x87.rs`.

use bt86::cpu::state::{Seg, TableReg};
use bt86::engine::Limits;
use bt86::loader::load_flat;
use bt86::memory::PhysAddr;
use bt86::session::{self, EngineKind, Outcome, RunConfig};
use bt86::{Machine, MachineConfig};
use iced_x86::{
    Code, Decoder, DecoderOptions, Encoder, EncodingKind, Formatter, Instruction, InstructionInfoFactory,
    IntelFormatter, MemoryOperand, Mnemonic, OpAccess, OpCodeOperandKind, Register, RepPrefixKind,
};
use std::collections::{BTreeMap, BTreeSet};

#[path = "differential/x87.rs"]
mod x87;

const MEM_SIZE: u32 = 2 << 20;
const CODE: u32 = 0x10_0000;
const IDT: u32 = 0x1000;
const HANDLERS: u32 = 0x2000;
const SAVE: u32 = 0x3000;
const DATA: u32 = 0x9000;
const DATA_SIZE: u32 = 0x4000;
const STACK_TOP: u32 = 0xec00;
const END_VALUE: u32 = 0x400;
const MAX_INSNS: u64 = 20_000;

/// Stores through a CS override (#GP(0): the code segment is not
/// writable). This test found `bt` performing them (seed 195911420); fixed
/// — memory operands through CS now take the callout's checks. Set
/// `BT86_DIFF_NO_CS_WRITES` to leave them out.
fn cs_writes() -> bool {
    std::env::var_os("BT86_DIFF_NO_CS_WRITES").is_none()
}

// ---------------------------------------------------------------- PRNG ---

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u32) -> u32 {
        ((self.next() >> 32) % u64::from(n)) as u32
    }
    fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u32) as usize]
    }
    /// An interesting 32-bit value: edge cases more often than chance would.
    fn value(&mut self) -> u32 {
        match self.below(10) {
            0 => self.pick(&[0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff]),
            1 => self.below(64),
            2 => 0u32.wrapping_sub(self.below(64)),
            3 => 1 << self.below(32),
            _ => self.next() as u32,
        }
    }
}

// ----------------------------------------------------------- generator ---

const R8: [Register; 8] =
    [Register::AL, Register::CL, Register::DL, Register::BL, Register::AH, Register::CH, Register::DH, Register::BH];
// ESP/SP are never an explicit operand: only PUSH/POP move the stack.
const R16: [Register; 7] =
    [Register::AX, Register::CX, Register::DX, Register::BX, Register::BP, Register::SI, Register::DI];
const R32: [Register; 7] =
    [Register::EAX, Register::ECX, Register::EDX, Register::EBX, Register::EBP, Register::ESI, Register::EDI];
const SEGS: [Register; 6] = [Register::ES, Register::CS, Register::SS, Register::DS, Register::FS, Register::GS];

/// The mnemonics whose every legacy 32-bit-mode form is generated from its
/// operand kinds.
const GENERIC: &[Mnemonic] = &[
    Mnemonic::Add,
    Mnemonic::Or,
    Mnemonic::Adc,
    Mnemonic::Sbb,
    Mnemonic::And,
    Mnemonic::Sub,
    Mnemonic::Xor,
    Mnemonic::Cmp,
    Mnemonic::Test,
    Mnemonic::Inc,
    Mnemonic::Dec,
    Mnemonic::Neg,
    Mnemonic::Not,
    Mnemonic::Rol,
    Mnemonic::Ror,
    Mnemonic::Rcl,
    Mnemonic::Rcr,
    Mnemonic::Shl,
    Mnemonic::Sal,
    Mnemonic::Shr,
    Mnemonic::Sar,
    Mnemonic::Shld,
    Mnemonic::Shrd,
    Mnemonic::Mul,
    Mnemonic::Imul,
    Mnemonic::Bt,
    Mnemonic::Bts,
    Mnemonic::Btr,
    Mnemonic::Btc,
    Mnemonic::Bsf,
    Mnemonic::Bsr,
    Mnemonic::Movzx,
    Mnemonic::Movsx,
    Mnemonic::Lea,
    Mnemonic::Xchg,
    // Virtual time: the retired count, which both engines must agree on.
    Mnemonic::Rdtsc,
    Mnemonic::Xadd,
    Mnemonic::Cmpxchg,
    Mnemonic::Cmpxchg8b,
    Mnemonic::Mov,
    Mnemonic::Seto,
    Mnemonic::Setno,
    Mnemonic::Setb,
    Mnemonic::Setae,
    Mnemonic::Sete,
    Mnemonic::Setne,
    Mnemonic::Setbe,
    Mnemonic::Seta,
    Mnemonic::Sets,
    Mnemonic::Setns,
    Mnemonic::Setp,
    Mnemonic::Setnp,
    Mnemonic::Setl,
    Mnemonic::Setge,
    Mnemonic::Setle,
    Mnemonic::Setg,
    Mnemonic::Cmovo,
    Mnemonic::Cmovno,
    Mnemonic::Cmovb,
    Mnemonic::Cmovae,
    Mnemonic::Cmove,
    Mnemonic::Cmovne,
    Mnemonic::Cmovbe,
    Mnemonic::Cmova,
    Mnemonic::Cmovs,
    Mnemonic::Cmovns,
    Mnemonic::Cmovp,
    Mnemonic::Cmovnp,
    Mnemonic::Cmovl,
    Mnemonic::Cmovge,
    Mnemonic::Cmovle,
    Mnemonic::Cmovg,
    Mnemonic::Lahf,
    Mnemonic::Sahf,
    Mnemonic::Cbw,
    Mnemonic::Cwde,
    Mnemonic::Cwd,
    Mnemonic::Cdq,
    Mnemonic::Clc,
    Mnemonic::Stc,
    Mnemonic::Cmc,
    Mnemonic::Cld,
    Mnemonic::Std,
    Mnemonic::Bswap,
    Mnemonic::Nop,
    Mnemonic::Push,
    Mnemonic::Pop,
    Mnemonic::Pushf,
    Mnemonic::Pushfd,
    Mnemonic::Daa,
    Mnemonic::Das,
    Mnemonic::Aaa,
    Mnemonic::Aas,
    Mnemonic::Aam,
    Mnemonic::Aad,
];

fn supported_kind(k: OpCodeOperandKind) -> bool {
    use OpCodeOperandKind as K;
    matches!(
        k,
        K::r8_or_mem
            | K::r16_or_mem
            | K::r32_or_mem
            | K::r8_reg
            | K::r16_reg
            | K::r32_reg
            | K::r16_rm
            | K::r32_rm
            | K::r8_opcode
            | K::r16_opcode
            | K::r32_opcode
            | K::mem
            | K::mem_offs
            | K::al
            | K::ax
            | K::eax
            | K::cl
            | K::imm8
            | K::imm16
            | K::imm32
            | K::imm8sex16
            | K::imm8sex32
            | K::imm8_const_1
    )
}

/// Every generic code: a legacy encoding valid in 32-bit mode whose
/// operands this generator can fill in.
fn generic_codes() -> Vec<Code> {
    Code::values()
        .filter(|c| {
            let oc = c.op_code();
            GENERIC.contains(&c.mnemonic())
                && oc.encoding() == EncodingKind::Legacy
                && oc.mode32()
                // Not the encodings a decoder option enables (CMPXCHG486's 0F A6/A7).
                && oc.decoder_option() == DecoderOptions::NONE
                && oc.operand_size() != 64
                && oc.address_size() != 64
                && (0..oc.op_count()).all(|i| supported_kind(oc.op_kind(i)))
                // MOV to/from segment, control and debug registers are not user level.
                && !(c.mnemonic() == Mnemonic::Mov && oc.op_count() != 2)
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Op {
    Reg(Register),
    Mem(MemoryOperand),
    Imm(i32),
}

fn build(code: Code, ops: &[Op]) -> Instruction {
    use Op::*;
    let r = match *ops {
        [] => Ok(Instruction::with(code)),
        [Reg(a)] => Instruction::with1(code, a),
        [Mem(a)] => Instruction::with1(code, a),
        [Imm(a)] => Instruction::with1(code, a),
        [Imm(a), Reg(b)] => Instruction::with2(code, a, b),
        [Reg(a), Reg(b)] => Instruction::with2(code, a, b),
        [Reg(a), Mem(b)] => Instruction::with2(code, a, b),
        [Reg(a), Imm(b)] => Instruction::with2(code, a, b),
        [Mem(a), Reg(b)] => Instruction::with2(code, a, b),
        [Mem(a), Imm(b)] => Instruction::with2(code, a, b),
        [Reg(a), Reg(b), Reg(c)] => Instruction::with3(code, a, b, c),
        [Reg(a), Reg(b), Imm(c)] => Instruction::with3(code, a, b, c),
        [Reg(a), Mem(b), Imm(c)] => Instruction::with3(code, a, b, c),
        [Mem(a), Reg(b), Reg(c)] => Instruction::with3(code, a, b, c),
        [Mem(a), Reg(b), Imm(c)] => Instruction::with3(code, a, b, c),
        _ => panic!("no constructor for {code:?} with {} operands", ops.len()),
    };
    r.unwrap_or_else(|e| panic!("{code:?}: {e}"))
}

fn mov_imm(reg: Register, v: u32) -> Instruction {
    let code = match reg.size() {
        1 => Code::Mov_r8_imm8,
        2 => Code::Mov_r16_imm16,
        _ => Code::Mov_r32_imm32,
    };
    let mask = match reg.size() {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    };
    build(code, &[Op::Reg(reg), Op::Imm((v & mask) as i32)])
}

struct Gen<'a> {
    rng: Rng,
    generic: &'a [Code],
    /// The x87 codes `x87_any` picks from.
    x87: &'a [Code],
    out: Vec<Instruction>,
    /// GS holds the 64 KiB data segment (selector 0x20) in this sequence.
    gs_limited: bool,
    /// The bases FS and GS (when not `gs_limited`) have in this sequence:
    /// flat data segments (a 4 GiB limit) whose descriptor cache was
    /// given a base, as a kernel's per-CPU segment or a thread's TLS
    /// segment has. Addresses through them are offset so the linear
    /// address lands in the data area, wrapping at 4 GiB as needed.
    fs_base: u32,
    gs_base: u32,
    cs_writes: bool,
}

impl Gen<'_> {
    /// A target address in the data area, often right before a page end.
    fn data_addr(&mut self, size: u32) -> u32 {
        if self.rng.chance(25) {
            let page = 1 + self.rng.below(DATA_SIZE / 0x1000 - 1);
            DATA + page * 0x1000 - 1 - self.rng.below(size.max(1) + 1)
        } else {
            DATA + self.rng.below(DATA_SIZE - 16)
        }
    }

    /// A memory operand reaching the data area (or the stack), loading the
    /// base and index registers it needs first. `simple` asks for an
    /// absolute address only.
    fn mem(&mut self, size: u32, simple: bool) -> MemoryOperand {
        let seg = if self.rng.chance(25) { self.rng.pick(&SEGS) } else { Register::None };
        let mut ea = self.data_addr(size);
        if seg == Register::GS && self.rng.chance(10) {
            // Near the 64 KiB limit: #GP when GS is the 16-bit data segment.
            ea = 0x1_0000 - 1 - self.rng.below(4);
        }
        match seg {
            Register::FS => ea = ea.wrapping_sub(self.fs_base),
            Register::GS if !self.gs_limited => ea = ea.wrapping_sub(self.gs_base),
            _ => {}
        }
        let mode = if simple { 0 } else { self.rng.below(6) };
        match mode {
            1 | 2 => {
                let base = self.rng.pick(&R32);
                let disp = match self.rng.below(3) {
                    0 => 0,
                    1 => self.rng.below(256) as i32 - 128,
                    _ => self.rng.next() as i32,
                };
                self.out.push(mov_imm(base, ea.wrapping_sub(disp as u32)));
                let size = if disp == 0 {
                    0
                } else if (-128..128).contains(&disp) {
                    1
                } else {
                    4
                };
                MemoryOperand::new(base, Register::None, 1, i64::from(disp), size, false, seg)
            }
            3 => {
                let base = self.rng.pick(&R32);
                let index = loop {
                    let r = self.rng.pick(&R32);
                    if r != base {
                        break r;
                    }
                };
                let scale = self.rng.pick(&[1u32, 2, 4, 8]);
                let iv = self.rng.value();
                let disp = self.rng.below(256) as i32 - 128;
                let bv = ea.wrapping_sub(disp as u32).wrapping_sub(iv.wrapping_mul(scale));
                self.out.push(mov_imm(index, iv));
                self.out.push(mov_imm(base, bv));
                MemoryOperand::new(base, index, scale, i64::from(disp), 1, false, seg)
            }
            4 => {
                // [esp + disp8]: the stack, which only PUSH/POP move.
                let disp = 4 * self.rng.below(16) as i32;
                MemoryOperand::new(Register::ESP, Register::None, 1, i64::from(disp), 1, false, seg)
            }
            5 => {
                // 16-bit addressing (0x67).
                let (base, index) = self.rng.pick(&[
                    (Register::BX, Register::SI),
                    (Register::BX, Register::DI),
                    (Register::BP, Register::SI),
                    (Register::BP, Register::DI),
                    (Register::SI, Register::None),
                    (Register::DI, Register::None),
                    (Register::BX, Register::None),
                    (Register::BP, Register::None),
                ]);
                let disp = if self.rng.chance(50) { 0 } else { self.rng.below(256) as i32 - 128 };
                let mut rest = ea.wrapping_sub(disp as u32);
                if index != Register::None {
                    let iv = if base == Register::None { rest } else { self.rng.below(0x100) };
                    self.out.push(mov_imm(index, iv));
                    rest = rest.wrapping_sub(iv);
                }
                if base != Register::None {
                    self.out.push(mov_imm(base, rest));
                }
                let dsize = if disp == 0 && base != Register::BP { 0 } else { 1 };
                MemoryOperand::new(base, index, 1, i64::from(disp), dsize, false, seg)
            }
            _ => MemoryOperand::new(Register::None, Register::None, 1, i64::from(ea), 4, false, seg),
        }
    }

    fn imm(&mut self, bits: u32, signed8: bool) -> i32 {
        let v = self.rng.value();
        if signed8 {
            return (v as u8 as i8) as i32;
        }
        match bits {
            8 => (v & 0xff) as i32,
            16 => (v & 0xffff) as i32,
            _ => v as i32,
        }
    }

    fn reg_or_mem(&mut self, regs: &[Register], size: u32, simple: bool) -> Op {
        if self.rng.chance(60) {
            Op::Reg(self.rng.pick(regs))
        } else {
            Op::Mem(self.mem(size, simple))
        }
    }

    fn generic(&mut self) {
        use OpCodeOperandKind as K;
        let code = self.rng.pick(self.generic);
        let oc = code.op_code();
        let mn = code.mnemonic();
        let is_bt = matches!(mn, Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc);
        let shift = matches!(
            mn,
            Mnemonic::Rol
                | Mnemonic::Ror
                | Mnemonic::Rcl
                | Mnemonic::Rcr
                | Mnemonic::Shl
                | Mnemonic::Sal
                | Mnemonic::Shr
                | Mnemonic::Sar
                | Mnemonic::Shld
                | Mnemonic::Shrd
        );
        // BT* m, r address memory at a register bit offset: keep it small
        // and the memory operand absolute so the two cannot interfere.
        let bt_mem_reg = is_bt && oc.op_kind(1) != K::imm8;
        // 16-bit SHLD/SHRD with a count above 16 leave the result undefined
        // (SDM) and hosts differ, so the translator calls the interpreter's
        // handler for them (`table::rules`); counts above 16 are generated
        // like any shift's. Absolute memory keeps CL free to set.
        let shxd16 = matches!(mn, Mnemonic::Shld | Mnemonic::Shrd) && oc.operand_size() == 16;
        let simple = bt_mem_reg || shxd16;
        let mut ops = Vec::new();
        for i in 0..oc.op_count() {
            let op = match oc.op_kind(i) {
                K::r8_or_mem => self.reg_or_mem(&R8, 1, simple),
                K::r16_or_mem => self.reg_or_mem(&R16, 2, simple),
                K::r32_or_mem => self.reg_or_mem(&R32, 4, simple),
                K::r8_reg | K::r8_opcode => Op::Reg(self.rng.pick(&R8)),
                K::r16_reg | K::r16_rm | K::r16_opcode => Op::Reg(self.rng.pick(&R16)),
                K::r32_reg | K::r32_rm | K::r32_opcode => Op::Reg(self.rng.pick(&R32)),
                K::mem => Op::Mem(self.mem(8, false)),
                K::mem_offs => Op::Mem(MemoryOperand::with_displ(u64::from(self.data_addr(4)), 4)),
                K::al => Op::Reg(Register::AL),
                K::ax => Op::Reg(Register::AX),
                K::eax => Op::Reg(Register::EAX),
                K::cl => Op::Reg(Register::CL),
                K::imm8 if shift => Op::Imm(self.rng.pick(&[0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 255])),
                K::imm8 => Op::Imm(self.imm(8, false)),
                K::imm16 => Op::Imm(self.imm(16, false)),
                K::imm32 => Op::Imm(self.imm(32, false)),
                K::imm8sex16 | K::imm8sex32 => Op::Imm(self.imm(8, true)),
                K::imm8_const_1 => Op::Imm(1),
                k => panic!("{code:?}: operand kind {k:?}"),
            };
            ops.push(op);
        }
        if bt_mem_reg {
            if let (Op::Mem(_), Op::Reg(r)) = (ops[0], ops[1]) {
                let off = self.rng.below(512) as i32 - 256;
                self.out.push(mov_imm(r, off as u32));
            }
        }
        if shxd16 && oc.op_kind(2) == K::cl {
            // Counts on both sides of 16 (and above 31, masked to 5 bits).
            let c = self.rng.pick(&[0, 1, 8, 15, 16, 17, 20, 31, 32, 40]);
            self.out.push(mov_imm(Register::CL, c));
        }
        let mut insn = build(code, &ops);
        self.fix_cs_write(&mut insn);
        self.out.push(insn);
    }

    /// A write through CS is #GP(0): let only a few of them through.
    fn fix_cs_write(&mut self, insn: &mut Instruction) {
        if insn.segment_prefix() != Register::CS {
            return;
        }
        let mut f = InstructionInfoFactory::new();
        let writes = f.info(insn).used_memory().iter().any(|m| {
            matches!(m.access(), OpAccess::Write | OpAccess::ReadWrite | OpAccess::CondWrite | OpAccess::ReadCondWrite)
        });
        if writes && !(self.cs_writes && self.rng.chance(5)) {
            insn.set_segment_prefix(Register::DS);
        }
    }

    fn string_op(&mut self) {
        let a16 = self.rng.chance(25);
        let size = self.rng.pick(&[1u32, 2, 4]);
        let count = self.rng.below(24);
        let (si, di, cx) = if a16 {
            (Register::SI, Register::DI, Register::CX)
        } else {
            (Register::ESI, Register::EDI, Register::ECX)
        };
        let lo = DATA + 0x100;
        let span = DATA_SIZE - 0x200;
        let src = lo + self.rng.below(span);
        let dst = lo + self.rng.below(span);
        // With DF=1 on entry (random EFLAGS) the strings run downwards.
        match self.rng.below(4) {
            0 => self.out.push(Instruction::with(Code::Cld)),
            1 => self.out.push(Instruction::with(Code::Std)),
            _ => {}
        }
        self.out.push(mov_imm(si, src));
        self.out.push(mov_imm(di, dst));
        self.out.push(mov_imm(cx, count));
        if self.rng.chance(50) {
            // CMPS/SCAS find equal elements more often in copied data.
            self.out.push(build(Code::Mov_r32_imm32, &[Op::Reg(Register::EAX), Op::Imm(self.rng.value() as i32)]));
        }
        let seg = if self.rng.chance(30) { self.rng.pick(&SEGS) } else { Register::None };
        let asz = if a16 { 16 } else { 32 };
        let rep = self.rng.pick(&[RepPrefixKind::None, RepPrefixKind::Repe, RepPrefixKind::Repne]);
        let insn = match (self.rng.below(5), size) {
            (0, 1) => Instruction::with_movsb(asz, seg, rep),
            (0, 2) => Instruction::with_movsw(asz, seg, rep),
            (0, _) => Instruction::with_movsd(asz, seg, rep),
            (1, 1) => Instruction::with_stosb(asz, rep),
            (1, 2) => Instruction::with_stosw(asz, rep),
            (1, _) => Instruction::with_stosd(asz, rep),
            (2, 1) => Instruction::with_lodsb(asz, seg, rep),
            (2, 2) => Instruction::with_lodsw(asz, seg, rep),
            (2, _) => Instruction::with_lodsd(asz, seg, rep),
            (3, 1) => Instruction::with_cmpsb(asz, seg, rep),
            (3, 2) => Instruction::with_cmpsw(asz, seg, rep),
            (3, _) => Instruction::with_cmpsd(asz, seg, rep),
            (_, 1) => Instruction::with_scasb(asz, rep),
            (_, 2) => Instruction::with_scasw(asz, rep),
            (_, _) => Instruction::with_scasd(asz, rep),
        };
        self.out.push(insn.expect("string instruction"));
    }

    fn divide(&mut self) {
        let size = self.rng.pick(&[1u32, 2, 4]);
        let signed = self.rng.chance(50);
        let code = match (signed, size) {
            (false, 1) => Code::Div_rm8,
            (false, 2) => Code::Div_rm16,
            (false, _) => Code::Div_rm32,
            (true, 1) => Code::Idiv_rm8,
            (true, 2) => Code::Idiv_rm16,
            (true, _) => Code::Idiv_rm32,
        };
        // Mostly a dividend that fits; sometimes as it comes (#DE likely).
        if self.rng.chance(95) {
            let setup = match (signed, size) {
                (false, 1) => mov_imm(Register::AH, 0),
                (false, 2) => mov_imm(Register::DX, 0),
                (false, _) => mov_imm(Register::EDX, 0),
                (true, 1) => Instruction::with(Code::Cbw),
                (true, 2) => Instruction::with(Code::Cwd),
                (true, _) => Instruction::with(Code::Cdq),
            };
            self.out.push(setup);
        }
        let regs: &[Register] = match size {
            1 => &R8,
            2 => &R16,
            _ => &R32,
        };
        let op = self.reg_or_mem(regs, size, false);
        if self.rng.chance(5) {
            // An explicit zero divisor.
            if let Op::Reg(r) = op {
                self.out.push(mov_imm(r, 0));
            }
        }
        self.out.push(build(code, &[op]));
    }

    fn flags_read(&mut self) {
        match self.rng.below(3) {
            0 => {
                self.out.push(Instruction::with(Code::Pushfd));
                self.out.push(build(Code::Pop_r32, &[Op::Reg(self.rng.pick(&R32))]));
            }
            1 => self.out.push(Instruction::with(Code::Lahf)),
            _ => {
                // POPF of a value with only arithmetic flags and DF changed.
                let v = (self.rng.next() as u32 & 0x8d5) | (self.rng.below(2) << 10) | 2;
                self.out.push(build(Code::Pushd_imm32, &[Op::Imm(v as i32)]));
                self.out.push(Instruction::with(Code::Popfd));
            }
        }
    }

    fn fault(&mut self) {
        let insn = match self.rng.below(if self.cs_writes { 5 } else { 4 }) {
            0 => Instruction::with(Code::Ud2),
            1 => Instruction::with(Code::Int3),
            2 => Instruction::with(Code::Into),
            3 => build(Code::Int_imm8, &[Op::Imm(self.rng.below(256) as i32)]),
            _ => {
                // A write through CS: #GP(0).
                let m = MemoryOperand::new(Register::None, Register::None, 1, i64::from(DATA), 4, false, Register::CS);
                build(Code::Mov_rm32_r32, &[Op::Mem(m), Op::Reg(Register::EAX)])
            }
        };
        self.out.push(insn);
    }

    fn step(&mut self) {
        match self.rng.below(1000) {
            0..=779 => self.generic(),
            780..=859 => self.string_op(),
            860..=919 => self.divide(),
            920..=986 => self.flags_read(),
            987..=996 => self.leave(),
            _ => self.fault(),
        }
    }

    /// LEAVE with EBP in the stack (a frame a few slots up) or anywhere in
    /// the data area (ESP follows it there, which later stack accesses
    /// then use).
    fn leave(&mut self) {
        if self.rng.chance(70) {
            let up = 4 * self.rng.below(8) as i64;
            let m = MemoryOperand::new(Register::ESP, Register::None, 1, up, 1, false, Register::None);
            self.out.push(build(Code::Lea_r32_m, &[Op::Reg(Register::EBP), Op::Mem(m)]));
        } else {
            let at = self.data_addr(4);
            self.out.push(mov_imm(Register::EBP, at));
        }
        self.out.push(Instruction::with(Code::Leaved));
    }
}

// --------------------------------------------------------------- image ---

struct Program {
    image: Vec<u8>,
    /// Byte range of the random sequence within `image`.
    seq: std::ops::Range<usize>,
    data: Vec<u8>,
    gs_limited: bool,
    fs_base: u32,
    gs_base: u32,
    /// CR0 bits set in the machine (x87 sequences: NE, EM, TS, MP).
    cr0: u32,
}

fn encode_all(insns: &[Instruction], ip: u32, out: &mut Vec<u8>) {
    let mut enc = Encoder::new(32);
    let mut at = u64::from(ip) + out.len() as u64;
    for i in insns {
        let n = enc.encode(i, at).unwrap_or_else(|e| panic!("encoding {i}: {e}"));
        at += n as u64;
    }
    out.extend_from_slice(&enc.take_buffer());
}

fn end_insns(value: u32) -> Vec<Instruction> {
    vec![
        build(Code::Mov_moffs32_EAX, &[Op::Mem(MemoryOperand::with_displ(u64::from(SAVE), 4)), Op::Reg(Register::EAX)]),
        build(Code::Mov_r32_imm32, &[Op::Reg(Register::EAX), Op::Imm(value as i32)]),
        build(Code::Out_imm8_EAX, &[Op::Imm(0xf4), Op::Reg(Register::EAX)]),
    ]
}

/// `x87`: the x87 codes and, for an x87 sequence, its plan.
fn generate(seed: u64, generic: &[Code], x87: (&[Code], Option<x87::Plan>), len: u32) -> Program {
    let (x87, plan) = x87;
    let mut g = Gen {
        rng: Rng::new(seed),
        generic,
        x87,
        out: Vec::new(),
        gs_limited: false,
        fs_base: 0,
        gs_base: 0,
        cs_writes: cs_writes(),
    };
    g.gs_limited = g.rng.chance(30);
    if g.rng.chance(40) {
        g.fs_base = g.rng.value();
    }
    if !g.gs_limited && g.rng.chance(40) {
        g.gs_base = g.rng.value();
    }
    let mut pro = vec![mov_imm(Register::ESP, STACK_TOP)];
    if g.gs_limited {
        pro.push(mov_imm(Register::AX, 0x20));
        pro.push(build(Code::Mov_Sreg_r32m16, &[Op::Reg(Register::GS), Op::Reg(Register::EAX)]));
    }
    let flags = (g.rng.next() as u32 & 0x8d5) | (g.rng.below(2) << 10) | 2;
    pro.push(build(Code::Pushd_imm32, &[Op::Imm(flags as i32)]));
    pro.push(Instruction::with(Code::Popfd));
    for r in R32 {
        let v = g.rng.value();
        pro.push(mov_imm(r, v));
    }
    if plan.is_some() {
        g.x87_prologue();
    }
    for _ in 0..len {
        if plan.is_some_and(|p| g.rng.chance(p.density)) {
            g.x87_step();
        } else {
            g.step();
        }
    }
    let mut image = Vec::new();
    encode_all(&pro, CODE, &mut image);
    let start = image.len();
    encode_all(&g.out, CODE, &mut image);
    let seq = start..image.len();
    encode_all(&end_insns(END_VALUE), CODE, &mut image);
    let data = (0..DATA_SIZE).map(|_| g.rng.next() as u8).collect();
    Program {
        image,
        seq,
        data,
        gs_limited: g.gs_limited,
        fs_base: g.fs_base,
        gs_base: g.gs_base,
        cr0: plan.map_or(0, |p| p.cr0),
    }
}

/// IDT and handlers, the same for every program.
fn system_area() -> (Vec<u8>, Vec<u8>) {
    let mut idt = Vec::new();
    let mut handlers = Vec::new();
    for v in 0..256u32 {
        let h = HANDLERS + 16 * v;
        idt.extend_from_slice(&(h as u16).to_le_bytes());
        idt.extend_from_slice(&0x08u16.to_le_bytes());
        idt.extend_from_slice(&[0, 0x8e]); // present, DPL 0, 32-bit interrupt gate
        idt.extend_from_slice(&((h >> 16) as u16).to_le_bytes());
        let mut code = Vec::new();
        encode_all(&end_insns(0x100 + v), h, &mut code);
        assert!(code.len() <= 16);
        code.resize(16, 0xcc);
        handlers.extend_from_slice(&code);
    }
    (idt, handlers)
}

fn machine(p: &Program, sys: &(Vec<u8>, Vec<u8>)) -> Machine {
    let mut m =
        Machine::new(&MachineConfig { mem_size: MEM_SIZE, ..MachineConfig::default() }, Box::new(std::io::sink()))
            .expect("machine");
    load_flat(&mut m, &p.image, PhysAddr(CODE)).expect("load");
    m.ram.slice_mut(PhysAddr(IDT), sys.0.len()).expect("idt").copy_from_slice(&sys.0);
    m.ram.slice_mut(PhysAddr(HANDLERS), sys.1.len()).expect("handlers").copy_from_slice(&sys.1);
    m.ram.slice_mut(PhysAddr(DATA), p.data.len()).expect("data").copy_from_slice(&p.data);
    m.cpu.idtr = TableReg { base: IDT, limit: 0x7ff };
    m.cpu.cr0 |= p.cr0;
    // FS and GS keep the flat data descriptor's cache but for the base.
    m.cpu.seg[Seg::Fs as usize].base = p.fs_base;
    if !p.gs_limited {
        m.cpu.seg[Seg::Gs as usize].base = p.gs_base;
    }
    m
}

fn disassemble(bytes: &[u8], ip: u64, mark: Option<u32>) -> String {
    let mut d = Decoder::with_ip(32, bytes, ip, DecoderOptions::NONE);
    let mut f = IntelFormatter::new();
    let mut s = String::new();
    for i in &mut d {
        let mut t = String::new();
        f.format(&i, &mut t);
        let hex: String =
            bytes[(i.ip() - ip) as usize..(i.next_ip() - ip) as usize].iter().map(|b| format!("{b:02x}")).collect();
        let here = if mark == Some(i.ip() as u32) { "=>" } else { "  " };
        s.push_str(&format!("{here} {:08x}  {hex:<30} {t}\n", i.ip()));
    }
    s
}

fn compare(bt: &Outcome, it: &Outcome) -> Vec<String> {
    let mut diffs = Vec::new();
    if bt.exit != it.exit {
        diffs.push(format!("exit: bt {:?}, interp {:?}", bt.exit, it.exit));
    }
    if bt.retired != it.retired {
        diffs.push(format!("retired: bt {}, interp {}", bt.retired, it.retired));
    }
    let (a, b) = (&bt.machine.cpu, &it.machine.cpu);
    if a != b {
        let names = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
        for (i, n) in names.iter().enumerate() {
            if a.gpr[i] != b.gpr[i] {
                diffs.push(format!("{n}: bt {:#010x}, interp {:#010x}", a.gpr[i], b.gpr[i]));
            }
        }
        if a.eip != b.eip {
            diffs.push(format!("eip: bt {:#010x}, interp {:#010x}", a.eip, b.eip));
        }
        if a.eflags != b.eflags {
            diffs.push(format!(
                "eflags: bt {:#010x}, interp {:#010x} (xor {:#x})",
                a.eflags,
                b.eflags,
                a.eflags ^ b.eflags
            ));
        }
        let mut a2 = a.clone();
        a2.gpr = b.gpr;
        a2.eip = b.eip;
        a2.eflags = b.eflags;
        if a2 != *b {
            diffs.push(format!("other CPU state:\n  bt     {a:?}\n  interp {b:?}"));
        }
    }
    let (ra, rb) = (bt.machine.ram.bytes(), it.machine.ram.bytes());
    if ra != rb {
        let at = ra.iter().zip(rb).position(|(x, y)| x != y).unwrap_or(0);
        let n = ra.iter().zip(rb).filter(|(x, y)| x != y).count();
        diffs.push(format!("RAM: {n} bytes differ, first at {at:#x} (bt {:#04x}, interp {:#04x})", ra[at], rb[at]));
    }
    diffs
}

#[test]
fn random_sequences_agree_under_bt_and_interp() {
    let seqs: u64 = std::env::var("BT86_DIFF_SEQS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let base: u64 = std::env::var("BT86_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x0bad_5eed);
    let generic = generic_codes();
    let (x87_codes, x87_share) = (x87::codes(), x87::share());
    let mut x87_seqs = 0u64;
    let sys = system_area();
    let limits = Limits { max_insns: Some(MAX_INSNS), timeout: None, max_exceptions: Some(4) };
    let cfg = |engine| RunConfig { engine, mem_size: MEM_SIZE, limits, ..RunConfig::default() };
    let (cfg_bt, cfg_interp) = (cfg(EngineKind::Bt), cfg(EngineKind::Interp));

    let mut codes = BTreeSet::new();
    let mut mnemonics = BTreeSet::new();
    let mut endings: BTreeMap<String, u64> = BTreeMap::new();
    let mut retired = 0u64;
    let mut lockstep_blocks = 0u64;
    let mut failures = Vec::new();
    let mut bad_seeds = Vec::new();

    for n in 0..seqs {
        let seed = base.wrapping_add(n);
        let len = 20 + (seed % 41) as u32;
        let plan = x87::plan(seed, x87_share);
        x87_seqs += u64::from(plan.is_some());
        let p = generate(seed, &generic, (&x87_codes, plan), len);
        for i in Decoder::with_ip(32, &p.image[p.seq.clone()], 0, DecoderOptions::NONE) {
            codes.insert(i.code());
            mnemonics.insert(format!("{:?}", i.mnemonic()).to_lowercase());
        }
        let bt = session::run(machine(&p, &sys), &cfg_bt);
        let it = session::run(machine(&p, &sys), &cfg_interp);
        let mut diffs = compare(&bt, &it);
        if n % 4 == 0 {
            let ls = session::run_lockstep(machine(&p, &sys), machine(&p, &sys), &cfg_bt);
            if let Some((blocks, report)) = &ls.lockstep {
                lockstep_blocks += blocks;
                if let Some(r) = report {
                    diffs.push(format!("lockstep: {r}"));
                }
            }
            if ls.exit != it.exit || ls.retired != it.retired || ls.machine.cpu != it.machine.cpu {
                diffs.push(format!(
                    "lockstep run ended differently from interp: {:?} after {} (interp {:?} after {})",
                    ls.exit, ls.retired, it.exit, it.retired
                ));
            }
        }
        let status = it.exit.status();
        if !matches!(it.exit, bt86::engine::Exit::GuestExit(_)) {
            diffs.push(format!("the guest did not exit by itself: {:?}", it.exit));
        }
        let ending = match status {
            s if s == ((END_VALUE << 1) | 1) as i32 => "completed".to_string(),
            s if (0x201..0x401).contains(&s) => format!("vector {}", (s - 0x201) / 2),
            s => format!("status {s:#x}"),
        };
        *endings.entry(ending).or_default() += 1;
        retired += it.retired;
        if !diffs.is_empty() {
            // The faulting/stopping EIP of interp, when inside the sequence.
            let vector = status.wrapping_sub(0x201) / 2;
            let err = if matches!(vector, 8 | 10..=14 | 17) { 4 } else { 0 };
            let frame_eip = u32::from_le_bytes(
                it.machine.ram.bytes()[(it.machine.cpu.gpr[4] + err) as usize..][..4].try_into().unwrap_or([0; 4]),
            );
            failures.push(format!(
                "seed {seed} (BT86_DIFF_SEED={seed} BT86_DIFF_SEQS=1), FS base {:#x}, GS {} (base {:#x}), CR0 bits {:#x}: \n{}\nsequence (=> where interp's \
                 exception frame points, if it stopped on one):\n{}",
                p.fs_base,
                if p.gs_limited { "64 KiB" } else { "flat" },
                p.gs_base,
                p.cr0,
                diffs.join("\n"),
                disassemble(&p.image[p.seq.clone()], u64::from(CODE) + p.seq.start as u64, Some(frame_eip))
            ));
            bad_seeds.push(seed);
        }
    }

    println!(
        "differential: {seqs} sequences ({x87_seqs} with x87), {retired} instructions retired (interp), \
         {lockstep_blocks} lockstep blocks"
    );
    println!("endings: {endings:?}");
    println!("{} distinct iced Codes covered, {} mnemonics:", codes.len(), mnemonics.len());
    println!("{}", mnemonics.into_iter().collect::<Vec<_>>().join(" "));
    if !failures.is_empty() {
        failures.truncate(3);
        panic!(
            "{} sequence(s) differ between bt and interp (seeds {bad_seeds:?}); the first ones:\n{}",
            bad_seeds.len(),
            failures.join("\n\n")
        );
    }
}
