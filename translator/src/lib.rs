//! bt86's translator: pure code generation. It is given guest instructions
//! (decoded with iced-x86), the layout of the guest CPU state and the
//! addresses of the runtime's routines, and returns x86-64 host code as
//! bytes. It never touches memory it did not allocate (no unsafe) and never
//! imports the root crate; docs/translator.md describes the design.
//!
//! ```text
//!   runtime::emit_runtime   once per code buffer: enter / exit / callout
//!   table::classify         how each iced Code is handled (every Code decided)
//!   block::translate        per guest block: IDENT instructions inline,
//!                           branches as exits, the rest as callouts
//!   inline                  CLI/STI on the virtual EFLAGS (no callout)
//! ```
#![forbid(unsafe_code)]

pub mod block;
pub mod inline;
pub mod liveness;
pub mod memop;
pub mod regs;
pub mod runtime;
pub mod stack;
pub mod table;
pub mod trap;
pub mod x87;

#[cfg(test)]
pub(crate) mod testutil;

/// The guest's instruction bitness: bt86 guests are IA-32.
pub const GUEST_BITNESS: u32 = 32;

/// Byte offsets the generated code needs: in the guest CPU state, which the
/// runtime routines address through `r13`, and in the scratch area, which
/// everything addresses through `r14`. Inside translated code `r13` holds
/// the instruction budget instead, as an address in the budget window
/// (`budget_base` + budget; see `block` and `runtime`).
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Offset of the eight guest general registers (u32 each, EAX first).
    pub gpr: i32,
    /// Offset of the guest EIP (u32).
    pub eip: i32,
    /// Offset of the guest EFLAGS (u32).
    pub eflags: i32,
    /// Scratch: the instruction budget left (i64) while the Rust side
    /// runs; translated code keeps it in r13, charging each block's length
    /// at entry and leaving when it would go negative.
    pub budget: i32,
    /// Scratch: the budget window's address of budget 0 (u64): readable
    /// for every budget translated code is entered with, unmapped below,
    /// so a block's charge probes `[r13]` and faults when the budget went
    /// negative (the runtime converts between the two forms).
    pub budget_base: i32,
    /// Scratch: the address of the Rust callout function (u64).
    pub callout_fn: i32,
    /// Scratch: the argument the next callout gets (u64).
    pub callout_arg: i32,
    /// Scratch: the index in its block of the instruction being called out (u32).
    pub callout_index: i32,
    /// Scratch: the host address of the code-page byte table (u64).
    pub code_pages: i32,
    /// Scratch: the indirect-branch cache (`runtime::IBTC_ENTRIES` entries).
    pub ibtc: i32,
    /// Scratch: the address of the guest CPU state (u64), set on entry.
    pub state: i32,
    /// Scratch: the guest EIP a block exit leaves for (u32).
    pub exit_eip: i32,
    /// Offset of the guest CR0 (u32): inline CLI/STI test PE.
    pub cr0: i32,
    /// Offset of the guest CPL (u8).
    pub cpl: i32,
    /// Scratch: non-zero when the interrupt controller has a request
    /// pending (u8; set by the runtime on entry and after I/O).
    pub irq_pending: i32,
    /// Scratch: the budget at which an exit leaves the guest in STI's
    /// interrupt shadow (i64, in r13's form, window address; see
    /// `inline`).
    pub shadow_at: i32,
    /// Offset of the guest x87 state: FNSAVE's 108-byte image (`x87`).
    pub fpu: i32,
    /// Scratch: the routine an inline x87 instruction calls first (u64):
    /// the runtime's `x87_load` while the guest FPU state is in the guest
    /// state, its `x87_ready` while the host FPU holds it (`runtime`).
    pub x87_load: i32,
    /// Scratch: the guest's x87 pointers while the host FPU holds its
    /// state: FIP (u32), FOP (u16), FDS (u16), FDP (u32), FCS as loaded
    /// (u16) and whether a non-control instruction ran since (u8), at this
    /// offset and the next 4, 6, 8, 12 and 14 bytes; at +15, 1 while the
    /// host FPU does not hold the guest's state, 0 while it does (u8).
    pub x87_ptrs: i32,
    /// Offset of the guest ES selector (u16); the other segment registers
    /// follow every `seg_size` bytes in the order ES, CS, SS, DS, FS, GS.
    pub seg_selector: i32,
    pub seg_size: i32,
    /// Offset of the guest ES base (u32), the others at the same stride.
    pub seg_base: i32,
    /// Offset of the guest CR4 (u32): inline RDTSC tests TSD.
    pub cr4: i32,
    /// Scratch: the time-stamp counter plus r13 less the block's charge,
    /// kept by the runtime while translated code runs (u64; see
    /// `inline`'s RDTSC).
    pub tsc_base: i32,
    /// Scratch: the low half of the MMU's flush generation (u32), which
    /// a checked exit compares with the one it was linked in.
    pub mmu_gen: i32,
    /// Scratch: where a checked exit that could not go on asks the
    /// runtime to link it (u64: the host address of its generation's
    /// displacement; 0 when none).
    pub relink: i32,
    /// Scratch: the caller's stack pointer at entry (u64), which the exit
    /// routine restores.
    pub entry_rsp: i32,
    /// Scratch: the stack pointer translated code starts on (u64): a stack
    /// of its own, whose top slot holds the runtime's `no_pad` (guest CALLs
    /// run as host calls: `block::Emitter::guest_call`).
    pub host_stack: i32,
}

impl Layout {
    /// A layout for translating without a runtime (benches, the emitted-
    /// bytes digest): plausible, distinct offsets; never run.
    pub const fn detached() -> Layout {
        Layout {
            gpr: 0,
            eip: 32,
            eflags: 36,
            budget: 8,
            budget_base: 0x68,
            callout_fn: 16,
            callout_arg: 24,
            callout_index: 32,
            code_pages: 40,
            ibtc: 0x1000,
            state: 48,
            exit_eip: 56,
            cr0: 0x100,
            cpl: 0x140,
            irq_pending: 0x60,
            shadow_at: 0x58,
            fpu: 0x200,
            x87_load: 0x70,
            x87_ptrs: 0x78,
            seg_selector: 0x48,
            seg_size: 12,
            seg_base: 0x4c,
            cr4: 0x108,
            tsc_base: 0x80,
            mmu_gen: 0x88,
            relink: 0x90,
            entry_rsp: 0x98,
            host_stack: 0xa0,
        }
    }
}

/// The guest flags that live in host RFLAGS inside translated code: the
/// arithmetic flags (CF PF AF ZF SF OF) and DF (CLD/STD are IDENT). Nothing
/// else is ever loaded into RFLAGS: TF would single-step the host and AC
/// would enable alignment checks. The runtime clears DF before any Rust
/// code runs.
pub const ARITH_FLAGS: u32 = 0x8d5 | 0x400;
