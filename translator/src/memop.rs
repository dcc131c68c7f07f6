//! IDENT instructions with a memory operand, for blocks that run with
//! paging off and flat segments (base 0, limit 4 GiB): the guest linear
//! address is the physical address, so the access becomes
//!
//! ```text
//!   lea  r8d, [EA with host registers]   ; 32-bit: wraps like the guest
//!   cmp  r8d, ram_size - len ; ja slow   ; outside RAM: the slow path
//!   (stores) page of r8d holds code, or the store crosses a page: slow
//!   op   ..., [r15 + r8]                  ; the guest's own instruction
//! ```
//!
//! With paging on (and flat segments) the address goes through the
//! runtime's inline TLB instead (see `block::Emitter::mem_tlb`), and the
//! instruction runs on the host address: `op ..., [r8]`.
//!
//! The slow path is a callout that runs the instruction in the
//! interpreter's handler (open bus, self-modifying code, faults, TLB
//! misses).

use crate::regs;
use crate::table::{self, Class};
use iced_x86::{
    Code, Encoder, Instruction, InstructionInfoFactory, InstructionInfoOptions, MemoryOperand, Mnemonic, OpAccess,
    OpKind, Register,
};
use std::cell::RefCell;

/// Host code held inline: translating a block builds many of these and
/// should not allocate for each. Usually one instruction; the inline
/// PUSHFD/POPFD forms (`inline.rs`) need a short sequence.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HostBytes {
    len: u8,
    buf: [u8; HOST_BYTES],
}

/// The most a `HostBytes` holds.
pub const HOST_BYTES: usize = 255;

impl Default for HostBytes {
    fn default() -> Self {
        HostBytes { len: 0, buf: [0; HOST_BYTES] }
    }
}

impl HostBytes {
    /// `bytes` (at most 15 of them: one x86 instruction).
    pub fn new(bytes: &[u8]) -> HostBytes {
        debug_assert!(bytes.len() <= 15);
        Self::try_new(bytes).unwrap_or_default()
    }

    /// `bytes`, if they fit (`HOST_BYTES`).
    pub fn try_new(bytes: &[u8]) -> Option<HostBytes> {
        let mut h = HostBytes { len: bytes.len().try_into().ok()?, buf: [0; HOST_BYTES] };
        h.buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(h)
    }

    /// The host encoding of `i` (64-bit mode, at address 0), or `None` if
    /// iced cannot encode it.
    pub fn encode(i: &Instruction) -> Option<HostBytes> {
        with_encoder(|e, out| encode_into(e, i, 0, out).then(|| HostBytes::new(out)))
    }
}

impl HostBytes {
    /// These bytes with their last four replaced by `imm` (an instruction
    /// that ends in an imm32).
    pub fn with_imm32_at_end(mut self, imm: u32) -> HostBytes {
        let n = self.len as usize;
        self.buf[n - 4..n].copy_from_slice(&imm.to_le_bytes());
        self
    }
}

impl std::ops::Deref for HostBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl std::fmt::Debug for HostBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// What the translator needs to emit one memory instruction's fast path.
#[derive(Clone, Debug)]
pub struct MemOp {
    /// `lea r8d, [EA]` (or `mov r8d, imm32` for an absolute address).
    pub lea: HostBytes,
    /// The instruction with its memory operand at `[r15 + r8]` (guest
    /// physical address in r8, RAM base in r15).
    pub op: HostBytes,
    /// The instruction with its memory operand at `[r8]` (host address in r8).
    pub op_host: HostBytes,
    /// For an address with one register (and a displacement): the
    /// instruction with its memory operand at `[r15 + reg*scale + disp]`,
    /// no LEA (empty otherwise, and for `Forms::Host`). Without the
    /// 32-bit wrap-around of the guest's address, so only for a path
    /// where every address it can form that is not the guest's faults:
    /// `MemPath::Guarded` (the views reserve `guard::BELOW` below their
    /// base and `guard::ABOVE` above).
    pub direct: HostBytes,
    /// Bytes accessed.
    pub len: u32,
    /// Whether the instruction may write the memory operand.
    pub write: bool,
    /// Where in `op`, `op_host` and `direct` the access itself starts (the
    /// guarded path's memory site): after what reads a high-byte register
    /// (`high_byte`); nothing before it changes guest state.
    pub site_at: u8,
}

/// iced's encoder (64-bit) and a buffer for its output, kept per thread
/// so that encoding allocates nothing once warm; and iced's
/// instruction-info factory, which keeps buffers too.
struct Tools {
    encoder: Encoder,
    out: Vec<u8>,
    info: InstructionInfoFactory,
}

thread_local! {
    static TOOLS: RefCell<Tools> = RefCell::new(Tools {
        encoder: Encoder::new(64),
        out: Vec::with_capacity(64),
        info: InstructionInfoFactory::new(),
    });
}

/// Runs `f` with the thread's encoder and an empty output buffer.
pub(crate) fn with_encoder<T>(f: impl FnOnce(&mut Encoder, &mut Vec<u8>) -> T) -> T {
    TOOLS.with(|t| {
        let t = &mut *t.borrow_mut();
        t.out.clear();
        f(&mut t.encoder, &mut t.out)
    })
}

/// Encodes `i` at host address `ip`, appending its bytes to `out`; on
/// failure returns false and leaves `out` as it was.
pub(crate) fn encode_into(e: &mut Encoder, i: &Instruction, ip: u64, out: &mut Vec<u8>) -> bool {
    let len = out.len();
    e.set_buffer(std::mem::take(out));
    let ok = e.encode(i, ip).is_ok();
    *out = e.take_buffer();
    if !ok {
        out.truncate(len);
    }
    ok
}

fn encode(i: &Instruction) -> Option<HostBytes> {
    HostBytes::encode(i)
}

/// The most negative displacement `direct_operand` takes: a frame's or a
/// structure's offset below a pointer, not an absolute address.
pub const MAX_DIRECT_BELOW: i64 = 0x1_0000;

/// `MemOp::direct`'s memory operand for `i`'s (32-bit addressing with
/// one register, base or index, and a displacement): `[r15 + reg*scale +
/// disp]`. The register is a guest register, zero-extended in its host
/// register, so this is the guest address whenever the guest's 32-bit sum
/// does not wrap around, and otherwise lies in a view's guard (a fault,
/// and the slow path: correct, but a callout each time). Not for a
/// displacement below `-MAX_DIRECT_BELOW`: that is an absolute address
/// above 2 GiB with a small register added (a kernel's `[edx +
/// 0xc5a10520]`, the sign-extended disp32 -0x3a5efae0), whose sum wraps
/// around every time; the LEA form wraps as the guest does.
pub fn direct_operand(i: &Instruction) -> Option<MemoryOperand> {
    let (b, x) = (i.memory_base(), i.memory_index());
    if b == Register::None && x == Register::None {
        // An absolute address: `[r15 + disp32]` while it is below 2 GiB
        // (the disp32 is sign-extended), in 32-bit addressing (a 16-bit
        // one's disp16 is an offset that wraps at 64 KiB).
        let disp = i.memory_displacement32();
        let ok = disp < 0x8000_0000 && i.memory_displ_size() == 4;
        return ok
            .then(|| MemoryOperand::new(Register::R15, Register::None, 1, i64::from(disp), 8, false, Register::None));
    }
    let r = match (b, x) {
        (Register::None, r) | (r, Register::None) => r,
        _ => return None,
    };
    if !r.is_gpr32() {
        return None;
    }
    let scale = if x == Register::None { 1 } else { i.memory_index_scale() };
    let disp = i.memory_displacement32() as i32 as i64;
    if disp < -MAX_DIRECT_BELOW {
        return None;
    }
    // 64-bit addressing: iced's size 8 is a disp8 or a sign-extended disp32.
    let size = if disp == 0 { 0 } else { 8 };
    Some(MemoryOperand::new(Register::R15, regs::map(r)?.full_register(), scale, disp, size, false, Register::None))
}

/// `MemOp::direct`'s operand for an address with two registers (and a
/// displacement not below `-MAX_DIRECT_BELOW`), for `Forms::Gs`:
/// `gs:[base + index*scale + disp]`, where GS's base is the view's. Summed
/// in 64 bits like the one-register form, so a sum the guest wraps lands
/// in the view's guard (`guard::ABOVE` covers 4 GiB + 8 × 4 GiB + 2 GiB)
/// and takes the slow path.
fn gs_operand(i: &Instruction) -> Option<MemoryOperand> {
    let (b, x) = (i.memory_base(), i.memory_index());
    if !b.is_gpr32() || !x.is_gpr32() {
        return None;
    }
    let disp = i.memory_displacement32() as i32 as i64;
    if disp < -MAX_DIRECT_BELOW {
        return None;
    }
    let size = if disp == 0 { 0 } else { 8 };
    let (b, x) = (regs::map(b)?.full_register(), regs::map(x)?.full_register());
    Some(MemoryOperand::new(b, x, i.memory_index_scale(), disp, size, false, Register::GS))
}

/// The direct form's operand for `i` under `forms`, if it has one.
pub fn direct_operand_for(i: &Instruction, forms: Forms) -> Option<MemoryOperand> {
    match forms {
        Forms::Host => None,
        Forms::Gs => direct_operand(i).or_else(|| gs_operand(i)),
        _ => direct_operand(i),
    }
}

/// `lea r8d, [EA]` with the guest's address registers in their host
/// registers (or `mov r8d, imm32` for an absolute address): the guest
/// address of `i`'s memory operand, wrapping at 4 GiB as the guest's does.
/// 32-bit addressing only; `None` when a register cannot be mapped.
pub fn lea_r8(i: &Instruction) -> Option<HostBytes> {
    let (b, x) = (i.memory_base(), i.memory_index());
    if b.is_gpr16() || x.is_gpr16() || (b == Register::None && x == Register::None && i.memory_displ_size() == 2) {
        return None;
    }
    if b == Register::None && x == Register::None {
        return encode(&Instruction::with2(Code::Mov_r32_imm32, Register::R8D, i.memory_displacement32()).ok()?);
    }
    let m = MemoryOperand::new(
        regs::map(b)?,
        regs::map(x)?,
        i.memory_index_scale(),
        i.memory_displacement32() as i32 as i64,
        if i.memory_displacement32() == 0 { 0 } else { 4 },
        false,
        Register::None,
    );
    encode(&Instruction::with2(Code::Lea_r32_m, Register::R8D, m).ok()?)
}

/// `i` with its memory operand at `[r15 + r8]` (r8: the guest address,
/// r15: where guest address 0 is on the host) and no segment prefix.
pub fn at_r15_r8(i: &Instruction) -> Option<HostBytes> {
    let mut j = *i;
    j.set_segment_prefix(Register::None);
    j.set_memory_base(Register::R15);
    j.set_memory_index(Register::R8);
    j.set_memory_index_scale(1);
    j.set_memory_displacement64(0);
    j.set_memory_displ_size(0);
    encode(&j)
}

/// Which of the two forms of the operation `plan_forms` encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forms {
    Both,
    /// Only `MemOp::op` (`op_host` left empty): paging off.
    Physical,
    /// As `Physical`, and an address with two registers has a direct form
    /// too, through the host's GS base, which the runtime sets to the
    /// view's base (`gs_operand`): the guarded path, where the host lets
    /// user code write its GS base.
    Gs,
    /// Only `MemOp::op_host` (`op` left empty): the inline TLB.
    Host,
}

/// Where translated code finds the base of a segment it reaches inline
/// although the base need not be 0: FS or GS as a present, writable,
/// expand-up data segment with a 4 GiB limit (the Linux kernel's per-CPU
/// data through `%fs`, i386 thread-local storage through `%gs`). No limit
/// check can fail; the base is read from the guest state at each access,
/// so a segment load that keeps the segment's shape and changes only its
/// base needs no new translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegBase {
    /// Scratch offset (from r14) of the pointer to the guest CPU state.
    pub state: i32,
    /// Offset of the segment's base (u32) in the guest CPU state.
    pub base: i32,
}

impl SegBase {
    /// `lea` (which left the offset in r8d) followed by the base added to
    /// it, without touching the flags, wrapping at 4 GiB as the guest's
    /// linear address does:
    ///
    /// ```text
    ///   mov r9, [r14 + state]; mov r9d, [r9 + base]; lea r8d, [r8 + r9]
    /// ```
    fn after(self, lea: HostBytes) -> Option<HostBytes> {
        let load_state = MemoryOperand::with_base_displ(Register::R14, self.state as i64);
        let load_base = MemoryOperand::with_base_displ(Register::R9, self.base as i64);
        let mut out = lea.to_vec();
        for i in [
            Instruction::with2(Code::Mov_r64_rm64, Register::R9, load_state),
            Instruction::with2(Code::Mov_r32_rm32, Register::R9D, load_base),
            Instruction::with2(
                Code::Lea_r32_m,
                Register::R8D,
                MemoryOperand::with_base_index(Register::R8, Register::R9),
            ),
        ] {
            out.extend_from_slice(&encode(&i.ok()?)?);
        }
        HostBytes::try_new(&out)
    }
}

/// The fast-path pieces of `i`, or `None` when it must be a callout.
pub fn plan(i: &Instruction) -> Option<MemOp> {
    plan_forms(i, Forms::Both, None)
}

/// `plan`, encoding only the form of the operation a block will use;
/// `based`: how to reach the instruction's segment if it is FS or GS
/// (`None`: they are callouts).
pub fn plan_forms(i: &Instruction, forms: Forms, based: Option<SegBase>) -> Option<MemOp> {
    // The instruction's own class: its operands are this function's to
    // fit (a high-byte register beside memory, which the table leaves to
    // the interpreter for IDENT, goes through r11b here).
    if table::classify(i.code()).class != Class::Ident {
        return None;
    }
    let mem = (0..i.op_count()).find(|&n| i.op_kind(n) == OpKind::Memory)?;
    // BT* with a register offset address a bit string beyond the operand.
    if matches!(i.mnemonic(), Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc)
        && i.op1_kind() == OpKind::Register
    {
        return None;
    }
    // FS and GS may have bases: inline only as `based` says; CS is a code
    // segment (never writable, maybe not readable): the callout's checks.
    let based = match i.memory_segment() {
        Register::FS | Register::GS => Some(based?),
        Register::CS => return None,
        _ => None,
    };
    let (b, x) = (i.memory_base(), i.memory_index());
    if b.is_gpr16() || x.is_gpr16() || (b == Register::None && x == Register::None && i.memory_displ_size() == 2) {
        return None;
    }
    let len = i.memory_size().size() as u32;
    if !(1..=4).contains(&len) {
        return None;
    }
    // Registers: the operands and the address.
    let mut used = [Register::None; 7];
    (used[0], used[1]) = (b, x);
    let mut nused = 2;
    let mut j = *i;
    j.set_code(table::host_code(i.code()));
    let mut high = None;
    for n in 0..i.op_count() {
        if n != mem && i.op_kind(n) == OpKind::Register {
            let r = i.op_register(n);
            if let Some(h) = HighByte::of(i, r) {
                // In r11b: no REX conflict (see `HighByte`).
                high = Some(h);
                j.set_op_register(n, Register::R11L);
                continue;
            }
            used[nused] = r;
            nused += 1;
            j.set_op_register(n, regs::map(r)?);
        }
    }
    if !regs::mappable(&used[..nused]) {
        return None;
    }
    let lea = match based {
        Some(b) => b.after(lea_r8(i)?)?,
        None => lea_r8(i)?,
    };
    j.set_segment_prefix(Register::None);
    let direct = match direct_operand_for(i, forms).filter(|_| based.is_none()) {
        Some(m) => {
            let mut d = j;
            d.set_segment_prefix(m.segment_prefix);
            d.set_memory_base(m.base);
            d.set_memory_index(m.index);
            d.set_memory_index_scale(m.scale);
            d.set_memory_displacement64(m.displacement as u64);
            d.set_memory_displ_size(m.displ_size);
            encode(&d)?
        }
        None => HostBytes::default(),
    };
    j.set_memory_base(Register::R15);
    j.set_memory_index(Register::R8);
    j.set_memory_index_scale(1);
    j.set_memory_displacement64(0);
    j.set_memory_displ_size(0);
    let op = if forms == Forms::Host { HostBytes::default() } else { encode(&j)? };
    j.set_memory_base(Register::R8);
    j.set_memory_index(Register::None);
    let op_host = if matches!(forms, Forms::Physical | Forms::Gs) { HostBytes::default() } else { encode(&j)? };
    // Memory usage only: the register usage iced would also work out is
    // not needed.
    let write = TOOLS.with(|t| {
        t.borrow_mut().info.info_options(i, InstructionInfoOptions::NO_REGISTER_USAGE).used_memory().iter().any(|u| {
            matches!(u.access(), OpAccess::Write | OpAccess::ReadWrite | OpAccess::CondWrite | OpAccess::ReadCondWrite)
        })
    });
    let (op, op_host, direct, site_at) = match high {
        None => (op, op_host, direct, 0),
        Some(h) => (h.wrap(op)?, h.wrap(op_host)?, h.wrap(direct)?, h.before()?.len() as u8),
    };
    Some(MemOp { lea, op, op_host, direct, len, write, site_at })
}

/// DIV or IDIV by a memory operand, on the host: the divisor loaded
/// (zero-extended) into r9 through the block's memory fast path, then the
/// host's DIV or IDIV of r9b, r9w or r9d, a divide site as for a divisor
/// in a register (`block::Kind::Divide`): a #DE resumes at a slow path
/// with nothing changed. Compilers divide by a variable in memory
/// (`divl (%ecx,%edi,4)` for `r[a] % r[b]`).
pub struct MemDivide {
    pub load: MemOp,
    pub divide: HostBytes,
}

pub fn divide_by_memory(i: &Instruction, forms: Forms, based: Option<SegBase>) -> Option<MemDivide> {
    if !matches!(i.mnemonic(), Mnemonic::Div | Mnemonic::Idiv) || i.op0_kind() != OpKind::Memory {
        return None;
    }
    let signed = i.mnemonic() == Mnemonic::Idiv;
    let (load, r, div) = match i.memory_size().size() {
        1 => (Code::Movzx_r32_rm8, Register::R9L, if signed { Code::Idiv_rm8 } else { Code::Div_rm8 }),
        2 => (Code::Movzx_r32_rm16, Register::R9W, if signed { Code::Idiv_rm16 } else { Code::Div_rm16 }),
        4 => (Code::Mov_r32_rm32, Register::R9D, if signed { Code::Idiv_rm32 } else { Code::Div_rm32 }),
        _ => return None,
    };
    Some(MemDivide { load: load_into_r9(i, load, forms, based)?, divide: encode(&Instruction::with1(div, r).ok()?)? })
}

/// The fast path of loading `i`'s memory operand into r9d with `load`
/// (`Mov_r32_rm32`, or a MOVZX of a byte or word): an indirect branch's
/// target (`stack`), a divisor (`divide_by_memory`). Planned as the same
/// load into EAX, an IDENT instruction with `i`'s address, then each form
/// the plan holds re-encoded into r9d.
pub fn load_into_r9(i: &Instruction, load: Code, forms: Forms, based: Option<SegBase>) -> Option<MemOp> {
    let m = MemoryOperand::new(
        i.memory_base(),
        i.memory_index(),
        i.memory_index_scale(),
        i.memory_displacement32() as i32 as i64,
        i.memory_displ_size(),
        false,
        i.segment_prefix(),
    );
    let mut plan = plan_forms(&Instruction::with2(load, Register::EAX, m).ok()?, forms, based)?;
    let into_r9 = |m: MemoryOperand| encode(&Instruction::with2(load, Register::R9D, m).ok()?);
    if !plan.op.is_empty() {
        plan.op = into_r9(MemoryOperand::with_base_index(Register::R15, Register::R8))?;
    }
    if !plan.op_host.is_empty() {
        plan.op_host = into_r9(MemoryOperand::with_base(Register::R8))?;
    }
    if !plan.direct.is_empty() {
        plan.direct = into_r9(direct_operand_for(i, forms)?)?;
    }
    Some(plan)
}

/// A high-byte register (AH, CH, DH, BH) beside a memory operand. The
/// host cannot encode it in an instruction with a REX prefix, which
/// `[r15 + r8]` needs, so the instruction runs on r11b instead:
///
/// ```text
///   mov [rsp - 8], edx; movzx r11d, byte [rsp - 7]   DH into r11b, if read
///   <the instruction, r11b for DH>                   the access: the site
///   xchg dl, dh; mov dl, r11b; xchg dl, dh           r11b into DH, if written
/// ```
///
/// Nothing before the access changes guest state (the host stack's red
/// zone holds the copy: signal delivery skips it), so a faulting access
/// needs no undoing; the exchanges and moves leave the flags as the
/// instruction set them. Only for instructions whose one register operand
/// it is, with no implicit use of its low partner (not CMPXCHG, whose
/// comparand is AL).
#[derive(Clone, Copy)]
struct HighByte {
    high: Register,
    /// The low byte of the same register (AL for AH...).
    low: Register,
    full: Register,
    read: bool,
    written: bool,
}

impl HighByte {
    fn of(i: &Instruction, r: Register) -> Option<HighByte> {
        let (low, full) = match r {
            Register::AH => (Register::AL, Register::EAX),
            Register::CH => (Register::CL, Register::ECX),
            Register::DH => (Register::DL, Register::EDX),
            Register::BH => (Register::BL, Register::EBX),
            _ => return None,
        };
        let dest = i.op0_kind() == OpKind::Register;
        let (read, written) = match i.mnemonic() {
            Mnemonic::Mov => (!dest, dest),
            Mnemonic::Add
            | Mnemonic::Adc
            | Mnemonic::Sub
            | Mnemonic::Sbb
            | Mnemonic::And
            | Mnemonic::Or
            | Mnemonic::Xor => (true, dest),
            Mnemonic::Cmp | Mnemonic::Test => (true, false),
            Mnemonic::Xchg => (true, true),
            _ => return None,
        };
        Some(HighByte { high: r, low, full, read, written })
    }

    /// The copy of the high byte into r11b.
    fn before(self) -> Option<Vec<u8>> {
        let mut v = Vec::new();
        if self.read {
            let slot = MemoryOperand::with_base_displ(Register::RSP, -8);
            let byte = MemoryOperand::with_base_displ(Register::RSP, -7);
            v.extend_from_slice(&encode(&Instruction::with2(Code::Mov_rm32_r32, slot, self.full).ok()?)?);
            v.extend_from_slice(&encode(&Instruction::with2(Code::Movzx_r32_rm8, Register::R11D, byte).ok()?)?);
        }
        Some(v)
    }

    /// The copy of r11b into the high byte.
    fn after(self) -> Option<Vec<u8>> {
        let mut v = Vec::new();
        if self.written {
            let swap = encode(&Instruction::with2(Code::Xchg_rm8_r8, self.low, self.high).ok()?)?;
            v.extend_from_slice(&swap);
            v.extend_from_slice(&encode(&Instruction::with2(Code::Mov_r8_rm8, self.low, Register::R11L).ok()?)?);
            v.extend_from_slice(&swap);
        }
        Some(v)
    }

    /// `access` between the two (empty stays empty).
    fn wrap(self, access: HostBytes) -> Option<HostBytes> {
        if access.is_empty() {
            return Some(access);
        }
        let mut v = self.before()?;
        v.extend_from_slice(&access);
        v.extend_from_slice(&self.after()?);
        HostBytes::try_new(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::show;
    use iced_x86::{Decoder, DecoderOptions};

    fn plan_of(bytes: &[u8]) -> Option<MemOp> {
        let i = Decoder::with_ip(32, bytes, 0, DecoderOptions::NONE).decode();
        plan(&i)
    }

    #[test]
    fn load_with_esp_base() {
        // mov eax, [esp+8]
        let p = plan_of(&[0x8b, 0x44, 0x24, 0x08]).unwrap();
        assert_eq!(show(&p.lea), "lea r8d,[r12d+8]");
        assert_eq!(show(&p.op), "mov eax,[r15+r8]");
        assert_eq!(show(&p.direct), "mov eax,[r15+r12+8]");
        assert_eq!((p.len, p.write), (4, false));
    }

    #[test]
    fn an_absolute_address_above_2_gib_has_no_direct_form() {
        // test byte [edx + 0xc5a10520], 7: the sum wraps around 4 GiB.
        let p = plan_of(&[0xf6, 0x82, 0x20, 0x05, 0xa1, 0xc5, 0x07]).unwrap();
        assert!(p.direct.is_empty());
        assert_eq!(show(&p.lea), "lea r8d,[edx-3A5EFAE0h]");
        // mov eax, [ebp - 0x40]: a frame slot keeps it.
        let p = plan_of(&[0x8b, 0x45, 0xc0]).unwrap();
        assert_eq!(show(&p.direct), "mov eax,[r15+rbp-40h]");
        // mov eax, [ecx*4 + 0x105340]: an absolute address below 2 GiB too.
        let p = plan_of(&[0x8b, 0x04, 0x8d, 0x40, 0x53, 0x10, 0x00]).unwrap();
        assert_eq!(show(&p.direct), "mov eax,[r15+rcx*4+105340h]");
        // mov ecx, [0x109000]: an absolute address alone, below 2 GiB.
        let p = plan_of(&[0x8b, 0x0d, 0x00, 0x90, 0x10, 0x00]).unwrap();
        assert_eq!(show(&p.direct), "mov ecx,[r15+109000h]");
        // mov ecx, [0xc1e00000]: above 2 GiB the disp32 would be negative.
        let p = plan_of(&[0x8b, 0x0d, 0x00, 0x00, 0xe0, 0xc1]).unwrap();
        assert!(p.direct.is_empty());
    }

    #[test]
    fn divide_by_memory() {
        let plan = |b: &[u8]| {
            let i = Decoder::with_ip(32, b, 0, DecoderOptions::NONE).decode();
            super::divide_by_memory(&i, Forms::Both, None).unwrap()
        };
        // div dword [ecx + edi*4]
        let d = plan(&[0xf7, 0x34, 0xb9]);
        assert_eq!(show(&d.load.lea), "lea r8d,[ecx+edi*4]");
        assert_eq!(show(&d.load.op), "mov r9d,[r15+r8]");
        assert_eq!(show(&d.load.op_host), "mov r9d,[r8]");
        assert_eq!(show(&d.divide), "div r9d");
        assert_eq!((d.load.len, d.load.write), (4, false));
        // idiv byte [ebp - 0x40]: zero-extended, the direct form too.
        let d = plan(&[0xf6, 0x7d, 0xc0]);
        assert_eq!(show(&d.load.direct), "movzx r9d,byte ptr [r15+rbp-40h]");
        assert_eq!(show(&d.divide), "idiv r9b");
        // div word [ebx]
        assert_eq!(show(&plan(&[0x66, 0xf7, 0x33]).divide), "div r9w");
    }

    #[test]
    fn read_modify_write_with_index() {
        // add [ebx+esi*4-4], ecx
        let p = plan_of(&[0x01, 0x4c, 0xb3, 0xfc]).unwrap();
        assert_eq!(show(&p.lea), "lea r8d,[rbx+rsi*4-4]".replace("rbx", "ebx").replace("rsi", "esi"));
        assert_eq!(show(&p.op), "add [r15+r8],ecx");
        // Two registers: no direct form, but through GS.
        assert!(p.direct.is_empty());
        let i = Decoder::with_ip(32, &[0x01, 0x4c, 0xb3, 0xfc], 0, DecoderOptions::NONE).decode();
        let g = plan_forms(&i, Forms::Gs, None).unwrap();
        assert_eq!(show(&g.direct), "add gs:[rbx+rsi*4-4],ecx");
        assert!(g.op_host.is_empty());
        assert!(plan_forms(&i, Forms::Host, None).unwrap().direct.is_empty());
        assert!(p.write);
        // mov edx, [edx*4+0x105380]; mov byte [eax-1], 7
        assert_eq!(
            show(&plan_of(&[0x8b, 0x14, 0x95, 0x80, 0x53, 0x10, 0x00]).unwrap().direct),
            "mov edx,[r15+rdx*4+105380h]"
        );
        assert_eq!(show(&plan_of(&[0xc6, 0x40, 0xff, 0x07]).unwrap().direct), "mov byte ptr [r15+rax-1],7");
    }

    #[test]
    fn absolute_address_and_byte_store() {
        // mov byte [0x1234], 7
        let p = plan_of(&[0xc6, 0x05, 0x34, 0x12, 0x00, 0x00, 0x07]).unwrap();
        assert_eq!(show(&p.lea), "mov r8d,1234h");
        assert_eq!(show(&p.op), "mov byte ptr [r15+r8],7");
        assert_eq!((p.len, p.write), (1, true));
    }

    #[test]
    fn not_planned() {
        // mov eax, fs:[0]; mov ax, [bx+si]; bt [eax], ecx; cmpxchg [eax], ah
        assert!(plan_of(&[0x64, 0xa1, 0, 0, 0, 0]).is_none());
        assert!(plan_of(&[0x67, 0x66, 0x8b, 0x00]).is_none());
        assert!(plan_of(&[0x0f, 0xa3, 0x08]).is_none());
        assert!(plan_of(&[0x0f, 0xb0, 0x20]).is_none());
    }

    #[test]
    fn high_byte_registers_go_through_r11b() {
        // mov [esi+0x265380], dh: DH copied out through the red zone, the
        // store the site.
        let p = plan_of(&[0x88, 0xb6, 0x80, 0x53, 0x26, 0x00]).unwrap();
        assert_eq!(show(&p.op), "mov [rsp-8],edx; movzx r11d,byte ptr [rsp-7]; mov [r15+r8],r11b");
        assert_eq!(usize::from(p.site_at), p.op.len() - 4);
        assert_eq!(show(&p.direct), "mov [rsp-8],edx; movzx r11d,byte ptr [rsp-7]; mov [r15+rsi+265380h],r11b");
        // mov ah, [esp]: the load first (the site), then into AH.
        let p = plan_of(&[0x8a, 0x24, 0x24]).unwrap();
        assert_eq!(show(&p.op), "mov r11b,[r15+r8]; xchg al,ah; mov al,r11b; xchg al,ah");
        assert_eq!(p.site_at, 0);
        // add bh, [eax]: BH read, the sum back into BH; cmp [ecx], ch: read only.
        let p = plan_of(&[0x02, 0x38]).unwrap();
        assert_eq!(
            show(&p.op),
            "mov [rsp-8],ebx; movzx r11d,byte ptr [rsp-7]; add r11b,[r15+r8]; xchg bl,bh; mov bl,r11b; xchg bl,bh"
        );
        assert_eq!(
            show(&plan_of(&[0x38, 0x29]).unwrap().op_host),
            "mov [rsp-8],ecx; movzx r11d,byte ptr [rsp-7]; cmp [r8],r11b"
        );
    }
}
