//! The `Emitter`'s block-level pieces: the exits (stored EIP, chainable
//! jumps), the budget charge and the loop back to a translation's start,
//! host DIV, the indirect-branch cache's jump and entry check, and the
//! callout.

use super::*;

/// The opcodes of `jmp rel32` and `call rel32`.
const JMP: u8 = 0xe9;
const CALL: u8 = 0xe8;

impl Emitter<'_> {
    pub(super) fn here(&self) -> usize {
        self.base + self.ops.offset().0
    }

    /// Stores EIP, then jumps to `exit` (a jump the runtime may re-point
    /// at the block for `eip`). Returns the offset of the jump's rel32.
    pub(super) fn exit(&mut self, eip: u32) -> usize {
        self.exit_by(eip, JMP)
    }

    /// `exit`, its transfer a `jmp` or a `call` (`guest_call`).
    fn exit_by(&mut self, eip: u32, opcode: u8) -> usize {
        let l = self.env.layout;
        let ops = &mut self.ops;
        asm!(ops
            ; mov DWORD [r14 + l.exit_eip], eip as i32
        );
        let rel = self.env.exit as i64 - (self.here() as i64 + 5);
        self.ops.push(opcode);
        let at = self.ops.offset().0;
        self.ops.push_i32(rel as i32);
        at
    }

    /// A chainable exit to `target` by a `jmp` or a `call`: a checked one
    /// (`checked_exit`) where the target's page may map elsewhere, with
    /// paging on, when another page or this page's last 15 bytes (a
    /// straddling instruction's translation depends on the next page too).
    fn chainable_exit(&mut self, target: u32, opcode: u8) -> ChainableExit {
        if self.page.is_some_and(|p| p != target >> 12 || target & 0xfff > 0x1000 - 15) {
            return self.checked_exit(target, opcode);
        }
        ChainableExit { rel32_at: self.exit_by(target, opcode), target, check: None }
    }

    /// Leaves for `target` as `exit` does, but for the translation's own
    /// first instruction (`own`: its EIP and its entry's offset, given
    /// when `Env::loops` allows) jumps straight to the entry, where a
    /// chained exit would arrive, without storing EIP.
    pub(super) fn leave(&mut self, target: u32, own: Option<(u32, usize)>) -> Option<ChainableExit> {
        match own {
            Some((eip, entry)) if eip == target => {
                let rel = entry as i64 - (self.ops.offset().0 as i64 + 5);
                self.ops.push(JMP);
                self.ops.push_i32(rel as i32);
                None
            }
            _ => Some(self.chainable_exit(target, JMP)),
        }
    }

    /// An exit to another page with paging on, or to an instruction that
    /// may run off the end of this one (`chainable_exit`), its last
    /// transfer a `jmp` or a `call`. Chaining it to the
    /// translation for `target` assumes the page maps where it did when
    /// linked, which holds until the MMU flushes (a CR3 write, INVLPG):
    /// so it compares the flush generation with the one it was linked in,
    /// flag-free (guest ECX parked in r10, JRCXZ on the difference),
    /// and goes on through the rel32 only when they are equal. Otherwise,
    /// and while it is not linked (the rel32 points at the same path), it
    /// leaves, asking the runtime (`Layout::relink`) to link it to the
    /// translation it dispatches to next:
    ///
    /// ```text
    ///       mov [r14 + exit_eip], target
    ///       mov r10, rcx; mov ecx, [r14 + mmu_gen]
    ///       lea ecx, [rcx + disp32]        ; disp32 = -(generation linked in)
    ///       jrcxz ok
    ///       mov rcx, r10
    ///   unlinked:
    ///       lea r11, [disp32's address]; mov [r14 + relink], r11
    ///       jmp exit
    ///   ok: mov rcx, r10
    ///       jmp rel32                       ; the target's entry, or unlinked
    /// ```
    fn checked_exit(&mut self, target: u32, opcode: u8) -> ChainableExit {
        let l = self.env.layout;
        let ok = self.ops.new_dynamic_label();
        let unlinked = self.ops.new_dynamic_label();
        let ops = &mut self.ops;
        asm!(ops
            ; mov DWORD [r14 + l.exit_eip], target as i32
            ; mov r10, rcx
            ; mov ecx, [r14 + l.mmu_gen]
        );
        // lea ecx, [rcx + disp32]: the disp32 always four bytes.
        ops.extend([0x8d, 0x89]);
        let generation_at = ops.offset().0;
        ops.push_i32(1);
        asm!(ops
            ; jrcxz =>ok
            ; mov rcx, r10
            ; =>unlinked
        );
        let unlinked_at = ops.offset().0;
        // lea r11, [rip + rel]: back to the displacement.
        ops.extend([0x4c, 0x8d, 0x1d]);
        let rel = generation_at as i64 - (ops.offset().0 as i64 + 4);
        ops.push_i32(rel as i32);
        asm!(ops
            ; mov [r14 + l.relink], r11
        );
        let rel = self.env.exit as i64 - (self.here() as i64 + 5);
        self.ops.push(JMP);
        self.ops.push_i32(rel as i32);
        let ops = &mut self.ops;
        asm!(ops
            ; =>ok
            ; mov rcx, r10
        );
        let rel = unlinked_at as i64 - (ops.offset().0 as i64 + 5);
        ops.push(opcode);
        let rel32_at = ops.offset().0;
        ops.push_i32(rel as i32);
        ChainableExit { rel32_at, target, check: Some((generation_at, unlinked_at)) }
    }

    /// A guest CALL's transfer, after it pushed `ret` (its return address)
    /// on the guest stack: to `to`, or with `None` to the guest EIP in r9d
    /// through the indirect-branch cache. With `Env::host_calls` it is a
    /// host `call`, followed by the *return pad* the guest's RET comes back
    /// to by a host `ret` (`guest_ret`), so that the host's return-stack
    /// predictor predicts it (the indirect-branch cache's jump, one per RET
    /// site, mispredicts a function returning to several callers). The pad
    /// checks the EIP the RET popped (r9d) against `ret` and goes on to
    /// the return address's translation, or else through the cache (the
    /// guest rewrote its stack or switched stacks: correct, only slower).
    /// Translated code runs on a stack of its own, deep enough for every
    /// CALL of one entry (`bt::guard::HostStack`); an exit drops what is
    /// left on it. Flags untouched (guest ECX parked in r10 for JRCXZ).
    ///
    /// ```text
    ///       call <target's translation>       ; or call [ibtc + r9w * 8]
    ///   pad: r9d == ret? → exit to ret (chained) ; else the cache for r9d
    /// ```
    pub(super) fn guest_call(&mut self, to: Option<u32>, ret: u32, own: Option<(u32, usize)>) -> Vec<ChainableExit> {
        let mut exits = Vec::new();
        if !self.env.host_calls {
            match to {
                Some(t) => exits.extend(self.leave(t, own)),
                None => self.indirect(),
            }
            return exits;
        }
        let l = self.env.layout;
        match to {
            // Unchained, the call reaches the exit routine, which drops the
            // host return address with the rest of the stack.
            Some(t) => exits.push(self.chainable_exit(t, CALL)),
            None => {
                let ops = &mut self.ops;
                asm!(ops
                    ; movzx r11d, r9w
                    ; call QWORD [r14 + r11 * 8 + l.ibtc]
                );
            }
        }
        let hit = self.ops.new_dynamic_label();
        let ops = &mut self.ops;
        asm!(ops
            ; mov r10, rcx
            ; lea ecx, [r9 + 0i32.wrapping_sub(ret as i32)]
            ; jrcxz =>hit
            ; mov rcx, r10
        );
        self.indirect();
        let ops = &mut self.ops;
        asm!(ops
            ; =>hit
            ; mov rcx, r10
        );
        exits.extend(self.leave(ret, own));
        exits
    }

    /// A guest RET's transfer to the EIP it popped into r9d: with
    /// `Env::host_calls` a host `ret`, into the return pad of the CALL
    /// that made the last host call outstanding (`guest_call`), or, with
    /// none outstanding, into the runtime's `no_pad` (the stack's top
    /// slot), which goes on through the indirect-branch cache. Flags
    /// untouched.
    pub(super) fn guest_ret(&mut self) {
        if !self.env.host_calls {
            return self.indirect();
        }
        self.ops.push(0xc3);
    }

    /// Charges the block's `len` instructions against the budget, which
    /// lives in r13 while translated code runs (a register, so a loop's
    /// blocks do not chain through a store and a reload each time round).
    /// r13 holds the budget as an address in the budget window, readable
    /// for every budget translated code is entered with and unmapped just
    /// below (`Layout::budget_base`), so the check is a load: when the
    /// charge takes the budget below zero the load faults, and the SIGSEGV
    /// handler resumes at the returned refund label (the load's offset,
    /// also returned, is the memory site). No flags, no branch, no
    /// register but r9 (a scratch register) touched.
    pub(super) fn charge(&mut self, len: u32) -> (DynamicLabel, usize) {
        let refund = self.ops.new_dynamic_label();
        let ops = &mut self.ops;
        asm!(ops ; lea r13, [r13 - len as i32]);
        let probe = ops.offset().0;
        asm!(ops ; movzx r9d, BYTE [r13]);
        (refund, probe)
    }

    /// A Jcc (condition nibble `cc`) back to the block's first
    /// instruction, whose entry is at offset `entry`, with `rest` instructions of the
    /// block after it. Taken, it refunds them and runs the block again from
    /// its charge; not taken, it falls through. The last instruction of
    /// its block (`rest` 0, then the caller ends the block with the
    /// fall-through exit) is a Jcc straight to the entry; otherwise the
    /// inverse Jcc skips the refund and the jump back.
    pub(super) fn loop_back(&mut self, cc: u8, rest: u32, entry: usize) {
        let ops = &mut self.ops;
        if rest == 0 {
            let rel = entry as i64 - (ops.offset().0 as i64 + 6);
            ops.push(0x0f);
            ops.push(0x80 + cc);
            ops.push_i32(rel as i32);
            return;
        }
        // j!cc +12; lea r13, [r13 + rest] (disp32 form, 7 bytes); jmp entry
        ops.extend([0x70 + (cc ^ 1), 12, 0x4d, 0x8d, 0xad]);
        ops.push_i32(rest as i32);
        let rel = entry as i64 - (ops.offset().0 as i64 + 5);
        ops.push(JMP);
        ops.push_i32(rel as i32);
    }

    /// DIV or IDIV by a register (`host`: its host encoding) run on the
    /// host. The host instruction raises #DE exactly when the guest's
    /// would (a zero divisor, a quotient too wide), and a faulting
    /// instruction changes nothing, so the fault (SIGFPE) resumes at the
    /// slow path with the guest state exact: the callout then raises the
    /// guest's #DE. Returns the slow-path label, the label after and the
    /// divide site's offset, as `mem` does. The flags it leaves are
    /// undefined: the host vendor's, which is the machine's vendor model
    /// (the runtime refuses any other), as for every IDENT instruction.
    pub(super) fn divide(&mut self, host: &[u8]) -> (DynamicLabel, DynamicLabel, usize) {
        let slow = self.ops.new_dynamic_label();
        let cont = self.ops.new_dynamic_label();
        let site = self.ops.offset().0;
        let ops = &mut self.ops;
        ops.extend(host.iter().copied());
        asm!(ops ; =>cont);
        (slow, cont, site)
    }

    /// Jumps to the translation for the guest EIP in r9d through the
    /// indirect-branch cache: 65,536 host addresses indexed by the EIP's
    /// low 16 bits, each a translation's indirect entry (which checks the
    /// whole EIP, `indirect_entry`) or the runtime's miss routine (which
    /// leaves for the EIP). Flags and registers untouched.
    pub(super) fn indirect(&mut self) {
        let l = self.env.layout;
        let ops = &mut self.ops;
        asm!(ops
            ; movzx r11d, r9w
            ; jmp QWORD [r14 + r11 * 8 + l.ibtc]
        );
    }

    /// The start of every block: a translation reached through the
    /// indirect-branch cache checks that r9d holds its own first EIP
    /// `eip`, without touching the flags: guest ECX is parked in r10, ECX
    /// becomes `r9d - eip` and JRCXZ goes on exactly when they are equal.
    /// A mismatch (another EIP with the same low bits) leaves for r9d
    /// through the stub before it. (LOOP, which would fall through on a
    /// match, is a microcoded instruction of several cycles on Intel
    /// cores; JRCXZ is two micro-ops everywhere.) Returns the entry's
    /// offset.
    pub(super) fn indirect_entry(&mut self, eip: u32) -> usize {
        let l = self.env.layout;
        let miss = self.ops.new_dynamic_label();
        let hit = self.ops.new_dynamic_label();
        let ops = &mut self.ops;
        asm!(ops
            ; =>miss
            ; mov rcx, r10
            ; mov [r14 + l.exit_eip], r9d
        );
        let rel = self.env.exit as i64 - (self.here() as i64 + 5);
        self.ops.push(JMP);
        self.ops.push_i32(rel as i32);
        debug_assert_eq!(self.ops.offset().0, INDIRECT_ENTRY);
        let ops = &mut self.ops;
        asm!(ops
            ; mov r10, rcx
            ; lea ecx, [r9 + 0i32.wrapping_sub(eip as i32)]
            ; jrcxz =>hit
            ; jmp =>miss
            ; =>hit
            ; mov rcx, r10
        );
        ops.offset().0
    }

    /// Calls the runtime's callout routine for instruction `index`.
    pub(super) fn callout(&mut self, arg: u64, index: u32) {
        let l = self.env.layout;
        let callout = self.env.callout as i64;
        let ops = &mut self.ops;
        asm!(ops
            ; mov r11, QWORD arg as i64
            ; mov [r14 + l.callout_arg], r11
            ; mov DWORD [r14 + l.callout_index], index as i32
            ; mov r11, QWORD callout
            ; call r11
        );
    }
}
