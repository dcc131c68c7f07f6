//! The memory forms of `Emitter`: the inline fast paths of memory
//! operands (guest or linear view, checked physical, inline TLB), REP MOVS
//! on the host, and parking the guest flags around checks that clobber
//! them.

use super::*;

/// Parks the guest's arithmetic flags in r10 without touching the stack:
/// LAHF takes SF ZF AF PF CF into AH, SETO takes OF into AL, and guest EAX
/// is swapped back (it lives in rax). Much cheaper than PUSHF/POPF.
pub(super) fn save_flags(ops: &mut VecAssembler<X64Relocation>) {
    asm!(ops
        ; mov r10, rax
        ; lahf
        ; seto al
        ; xchg r10, rax
    );
}

/// Puts back the flags `save_flags` parked in r10: ADD AL,7Fh sets OF
/// exactly when AL was 1, then SAHF restores the rest. DF is untouched by
/// everything in between. Guest EAX comes back from r10.
pub(super) fn restore_flags_from_r10(ops: &mut VecAssembler<X64Relocation>) {
    asm!(ops
        ; xchg r10, rax
        ; add al, 0x7f
        ; sahf
        ; mov rax, r10
    );
}

/// A string instruction the host can run on the guest view
/// (`Emitter::rep_string`), 32-bit addressing, any source segment DS:
/// REP MOVS and REP STOS (memcpy and memset), REPE/REPNE CMPS and SCAS
/// (memcmp, strlen and memchr), which stop early and set the flags, the
/// guest's, in the host's RFLAGS; and any of them, LODS too, without a
/// prefix (a C library's byte loops: `lodsb; scasb` in strcmp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RepString {
    /// Element width: 1, 2 or 4 bytes.
    pub width: u8,
    /// The byte form's opcode: MOVSB A4, STOSB AA, CMPSB A6, SCASB AE (the
    /// word and doubleword forms are the next one).
    pub opcode: u8,
    /// F3 (REP, REPE) or F2 (REPNE); 0 for one iteration, no prefix.
    pub prefix: u8,
    /// Whether RSI moves too (MOVS, CMPS), not RDI alone.
    pub rsi: bool,
}

pub(super) fn host_rep_string(i: &Instruction) -> Option<RepString> {
    let (width, opcode) = match i.code() {
        Code::Movsb_m8_m8 => (1, 0xa4),
        Code::Movsw_m16_m16 => (2, 0xa4),
        Code::Movsd_m32_m32 => (4, 0xa4),
        Code::Stosb_m8_AL => (1, 0xaa),
        Code::Stosw_m16_AX => (2, 0xaa),
        Code::Stosd_m32_EAX => (4, 0xaa),
        Code::Cmpsb_m8_m8 => (1, 0xa6),
        Code::Cmpsw_m16_m16 => (2, 0xa6),
        Code::Cmpsd_m32_m32 => (4, 0xa6),
        Code::Scasb_AL_m8 => (1, 0xae),
        Code::Scasw_AX_m16 => (2, 0xae),
        Code::Scasd_EAX_m32 => (4, 0xae),
        Code::Lodsb_AL_m8 => (1, 0xac),
        Code::Lodsw_AX_m16 => (2, 0xac),
        Code::Lodsd_EAX_m32 => (4, 0xac),
        _ => return None,
    };
    // LODS reads DS:ESI alone; MOVS and CMPS DS:ESI and ES:EDI.
    let rsi = matches!(opcode, 0xa4 | 0xa6 | 0xac);
    let rdi = opcode != 0xac;
    // MOVS and STOS take REP only; CMPS and SCAS REPE or REPNE; LODS none.
    let prefix = match (i.has_rep_prefix(), i.has_repne_prefix()) {
        (false, false) => 0,
        (true, false) if opcode != 0xac => 0xf3,
        (false, true) if matches!(opcode, 0xa6 | 0xae) => 0xf2,
        _ => return None,
    };
    // 32-bit addressing: ES:EDI and seg:ESI, not ES:DI and seg:SI (0x67).
    let kind = |k| (0..i.op_count()).any(|n| i.op_kind(n) == k);
    let flat = (!rdi || kind(OpKind::MemoryESEDI))
        && (!rsi || (kind(OpKind::MemorySegESI) && i.memory_segment() == Register::DS));
    flat.then_some(RepString { width, opcode, prefix, rsi })
}

/// RDI (and for MOVS, RSI) back from host addresses in the view (r15 +
/// offset) to guest offsets, flag-free: `lea` with ~r15 + 1 = -r15, then
/// the upper halves cleared (a copy downwards that ends at offset 0
/// leaves -1).
fn guest_string_offsets(ops: &mut VecAssembler<X64Relocation>, r: RepString) {
    asm!(ops
        ; mov r11, r15
        ; not r11
    );
    if r.rsi {
        asm!(ops
            ; lea rsi, [rsi + r11 + 1]
            ; mov esi, esi
        );
    }
    if r.rdi() {
        asm!(ops
            ; lea rdi, [rdi + r11 + 1]
            ; mov edi, edi
        );
    }
}

impl RepString {
    /// Whether RDI moves (all but LODS).
    fn rdi(self) -> bool {
        self.opcode != 0xac
    }

    /// REPE/REPNE CMPS or SCAS: may stop early, and runs in chunks the
    /// budget covers (`Emitter::rep_string`).
    pub fn conditional(self) -> bool {
        self.prefix != 0 && matches!(self.opcode, 0xa6 | 0xae)
    }
}

/// The red-zone slots of a conditional REP string instruction's chunk
/// (`Emitter::rep_string`): its count, and whether the budget capped it.
const CHUNK: i32 = -16;
const CAPPED: i32 = -24;

/// ECX from the chunk's count left in RCX: the guest's count (parked in
/// r10) less the iterations the chunk ran. Flag-free; clobbers r9.
fn guest_count(ops: &mut VecAssembler<X64Relocation>) {
    asm!(ops
        ; mov r9, [rsp + CHUNK]
        ; not r9
        ; lea rcx, [r10 + rcx]
        ; lea rcx, [rcx + r9 + 1]
    );
}

/// Where a host REP string instruction that faulted part-way resumes
/// (`Emitter::rep_string`): the registers back to guest offsets, and the
/// budget refunded for the iterations not done but the current one (RCX
/// counts it), whose callout then runs the rest — falls into the slow
/// path.
pub(super) fn rep_string_fixup(ops: &mut VecAssembler<X64Relocation>, r: RepString) {
    guest_string_offsets(ops, r);
    if r.prefix != 0 {
        asm!(ops ; lea r13, [r13 + rcx - 1]);
    }
    if r.conditional() {
        guest_count(ops);
    }
}

impl Emitter<'_> {
    /// The inline fast path of a memory instruction; returns the labels of
    /// its out-of-line slow path (emitted at the end of the block) and of
    /// the point after it, which the caller places (after any code that
    /// only the fast path runs). The checks clobber RFLAGS, so the guest flags are
    /// parked in r10 first (`save_flags`): restored on the fast path only
    /// where the block still needs them (`restore_flags`), always on the
    /// slow path, whose callout may let the guest observe them.
    fn mem_fast(&mut self, m: &memop::MemOp, restore_flags: bool) -> (DynamicLabel, DynamicLabel) {
        let slow = self.ops.new_dynamic_label();
        let cont = self.ops.new_dynamic_label();
        let ram_size = match self.env.mem {
            MemPath::Physical { ram_size } => ram_size,
            _ => 0,
        };
        let limit = ram_size.saturating_sub(m.len) as i32;
        let l = self.env.layout;
        let ops = &mut self.ops;
        save_flags(ops);
        ops.extend(m.lea.iter().copied());
        asm!(ops
            ; cmp r8d, limit
            ; ja =>slow
        );
        if m.write {
            asm!(ops
                ; mov r9d, r8d
                ; shr r9d, 12
                ; mov r11, [r14 + l.code_pages]
                ; cmp BYTE [r11 + r9], 0
                ; jne =>slow
                ; lea r9d, [r8 + m.len as i32 - 1]
                ; xor r9d, r8d
                ; cmp r9d, 0xfff
                ; ja =>slow
            );
        }
        if restore_flags {
            restore_flags_from_r10(ops);
        }
        ops.extend(m.op.iter().copied());
        (slow, cont)
    }

    /// The inline-TLB fast path of a memory instruction (paging on); same
    /// contract as `mem_fast`.
    fn mem_tlb(&mut self, m: &memop::MemOp, table: i32, restore_flags: bool) -> (DynamicLabel, DynamicLabel) {
        let slow = self.ops.new_dynamic_label();
        let cont = self.ops.new_dynamic_label();
        let tag = table + if m.write { 4 } else { 0 };
        let ops = &mut self.ops;
        save_flags(ops);
        ops.extend(m.lea.iter().copied());
        // The tag is compared with the page of the access's *last* byte,
        // the slot chosen by its first: an access that crosses into the
        // next page cannot match (that page has another slot), so one
        // compare covers the crossing check too.
        asm!(ops
            ; lea r9d, [r8 + m.len as i32 - 1]
            ; and r9d, 0xffff_f000u32 as i32
            ; mov r11d, r8d
            ; shr r11d, 8
            ; and r11d, ((TLB_ENTRIES - 1) * TLB_ENTRY) as i32
            ; cmp r9d, [r14 + r11 + tag]
            ; jne =>slow
            ; add r8, [r14 + r11 + table + 8]
        );
        if restore_flags {
            restore_flags_from_r10(ops);
        }
        ops.extend(m.op_host.iter().copied());
        (slow, cont)
    }

    /// The guarded access (`MemPath::Guarded`): the address, then the
    /// access, whose offset is returned as the memory site; or the access
    /// alone in its direct form (`MemOp::direct`). Flags untouched.
    fn mem_guarded(&mut self, m: &memop::MemOp) -> (DynamicLabel, DynamicLabel, usize) {
        let slow = self.ops.new_dynamic_label();
        let cont = self.ops.new_dynamic_label();
        if m.direct.is_empty() {
            self.ops.extend(m.lea.iter().copied());
        }
        let site = self.ops.offset().0 + usize::from(m.site_at);
        let op = if m.direct.is_empty() { &m.op } else { &m.direct };
        self.ops.extend(op.iter().copied());
        (slow, cont, site)
    }

    /// REP MOVS (`width` 1, 2 or 4 bytes, 32-bit addressing, flat DS and
    /// ES) as the host's REP MOVS on the guest or linear view, when the
    /// budget covers every iteration (each retires as one instruction, as
    /// in the interpreter: the block charged the first). Flag-free, so the
    /// guest flags (DF included, which the host copy follows) stay in
    /// RFLAGS:
    ///
    /// ```text
    ///       jrcxz done                  ECX = 0: nothing to copy
    ///       mov r9d, ecx; not r9        -ECX-1
    ///       lea r9, [r13 + r9 + 2]      the budget after ECX-1 more
    ///       movzx r11d, byte [r9]       probe: faults when it cannot
    ///       mov r13, r9                   (a site: the slow path)
    ///       lea rsi, [r15 + rsi]        (MOVS only)
    ///       lea rdi, [r15 + rdi]
    ///       rep movs / rep stos         a fault: a site resuming at fixup
    ///       (rsi, rdi back to guest offsets)
    ///  done: ...
    ///  (out of line) fixup: (rsi, rdi back); lea r13, [r13 + rcx - 1]
    ///  slow: the callout
    /// ```
    ///
    /// The guest ranges run in the view, whose reservations around it
    /// fault where the guest's addresses would wrap; any fault (past RAM,
    /// a store into code, an unmapped linear page) leaves the registers at
    /// the iteration it reached, and the fixup refunds the iterations not
    /// done but the current one before the slow path's callout runs the
    /// rest in the interpreter. Places the continue label after it and
    /// returns it, the slow path's label, the probe's site and the copy's
    /// (the slow path emits the fixup: `rep_string_fixup`). STOS stores the
    /// guest's AL, AX or EAX, which live in the host's.
    pub(super) fn rep_string(
        &mut self,
        r: RepString,
        incomplete: DynamicLabel,
    ) -> (DynamicLabel, DynamicLabel, Option<usize>, usize) {
        if r.conditional() {
            return self.rep_string_chunked(r, incomplete);
        }
        let slow = self.ops.new_dynamic_label();
        let cont = self.ops.new_dynamic_label();
        let ops = &mut self.ops;
        // One iteration (no prefix) is the block's own charge: no probe.
        let probe = (r.prefix != 0).then(|| {
            asm!(ops
                ; jrcxz =>cont
                ; mov r9d, ecx
                ; not r9
                ; lea r9, [r13 + r9 + 2]
            );
            let probe = ops.offset().0;
            asm!(ops
                ; movzx r11d, BYTE [r9]
                ; mov r13, r9
            );
            probe
        });
        if r.rsi {
            asm!(ops ; lea rsi, [r15 + rsi]);
        }
        if r.rdi() {
            asm!(ops ; lea rdi, [r15 + rdi]);
        }
        let copy = ops.offset().0;
        // STOS and SCAS use AL, AX or EAX, LODS writes them: the guest's.
        let prefix = (r.prefix != 0).then_some(r.prefix);
        match r.width {
            1 => ops.extend(prefix.into_iter().chain([r.opcode])),
            2 => ops.extend([0x66].into_iter().chain(prefix).chain([r.opcode + 1])),
            _ => ops.extend(prefix.into_iter().chain([r.opcode + 1])),
        }
        guest_string_offsets(ops, r);
        if r.prefix != 0 {
            // CMPS and SCAS may stop early: the iterations not run (ECX
            // left) go back to the budget (0 after MOVS and STOS). LEA:
            // the flags are the instruction's.
            asm!(ops ; lea r13, [r13 + rcx]);
        }
        asm!(ops ; =>cont);
        (slow, cont, probe, copy)
    }

    /// REPE/REPNE CMPS and SCAS (`RepString::conditional`), whose count
    /// is often larger than any budget (strlen's `repne scasb` starts at
    /// ECX = ~0): the host runs as many iterations as the budget covers,
    /// a *chunk*. With ECX ≠ 0 at least one comparison runs and sets every
    /// arithmetic flag, so the flags coming in are dead and the cap may
    /// use them:
    ///
    /// ```text
    ///       jrcxz done
    ///       r10 = ECX; rcx = chunk = min(ECX, budget left + 1); charge it
    ///       [rsp-16] = chunk, [rsp-24] = capped
    ///       repne scas / repe cmps        a fault: a site resuming at fixup
    ///       jrcxz ran_out
    ///  back: (rsi, rdi back); refund what the chunk left; ECX = r10 - ran
    ///  done: ...
    ///  ran_out: not capped, or the condition met at the last element:
    ///       back (complete); else (rsi, rdi back; ECX = r10 - chunk) and
    ///       `incomplete`: the block leaves at the instruction, which goes
    ///       on when the run loop comes back to it
    /// ```
    fn rep_string_chunked(
        &mut self,
        r: RepString,
        incomplete: DynamicLabel,
    ) -> (DynamicLabel, DynamicLabel, Option<usize>, usize) {
        let slow = self.ops.new_dynamic_label();
        let cont = self.ops.new_dynamic_label();
        let (nocap, back, ran_out) =
            (self.ops.new_dynamic_label(), self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
        let (zero, go) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
        let l = self.env.layout;
        let ops = &mut self.ops;
        // JRCXZ reaches 127 bytes: `done` is further, through a JMP.
        asm!(ops
            ; jrcxz =>zero
            ; jmp =>go
            ; =>zero
            ; jmp =>cont
            ; =>go
            ; mov r10, rcx
            ; mov r9, r13
            ; sub r9, [r14 + l.budget_base]
            ; inc r9
            ; xor r11d, r11d
            ; cmp rcx, r9
            ; jbe =>nocap
            ; mov rcx, r9
            ; mov r11d, 1
            ; =>nocap
            ; mov [rsp + CHUNK], rcx
            ; mov [rsp + CAPPED], r11
            // Charge the chunk's iterations after the first (the block's).
            ; mov r9, rcx
            ; not r9
            ; lea r13, [r13 + r9 + 2]
        );
        if r.rsi {
            asm!(ops ; lea rsi, [r15 + rsi]);
        }
        asm!(ops ; lea rdi, [r15 + rdi]);
        let copy = ops.offset().0;
        match r.width {
            1 => ops.extend([r.prefix, r.opcode]),
            2 => ops.extend([0x66, r.prefix, r.opcode + 1]),
            _ => ops.extend([r.prefix, r.opcode + 1]),
        }
        asm!(ops
            ; jrcxz =>ran_out
            ; =>back
        );
        guest_string_offsets(ops, r);
        asm!(ops ; lea r13, [r13 + rcx]);
        guest_count(ops);
        asm!(ops
            ; jmp =>cont
            ; =>ran_out
            ; mov rcx, [rsp + CAPPED]
            ; jrcxz =>back
            ; mov ecx, 0
        );
        // The condition that ends the instruction, met at the last element:
        // REPNE stops on equal (ZF set), REPE on different (ZF clear).
        if r.prefix == 0xf2 {
            asm!(ops ; jz =>back);
        } else {
            asm!(ops ; jnz =>back);
        }
        guest_string_offsets(ops, r);
        guest_count(ops);
        asm!(ops
            ; jmp =>incomplete
            ; =>cont
        );
        (slow, cont, None, copy)
    }

    /// The fast path for the block's memory path (see `mem_fast`); the
    /// memory site of a guarded access.
    pub(super) fn mem(&mut self, m: &memop::MemOp, restore_flags: bool) -> (DynamicLabel, DynamicLabel, Option<usize>) {
        match self.env.mem {
            MemPath::Tlb { table } => {
                let (s, c) = self.mem_tlb(m, table, restore_flags);
                (s, c, None)
            }
            MemPath::Guarded => {
                let (s, c, site) = self.mem_guarded(m);
                (s, c, Some(site))
            }
            _ => {
                let (s, c) = self.mem_fast(m, restore_flags);
                (s, c, None)
            }
        }
    }
}
