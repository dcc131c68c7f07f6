//! What a translation is made from and what it gives back: the guest
//! instructions (`GuestInsn`), the environment a block is translated for
//! (`Env`, `MemPath`) and the translation (`Translated`, its `Kind`s and
//! chainable exits). `block.rs` does the translating.

use crate::{memop, Layout};
use iced_x86::{Instruction, Register};

/// One guest instruction to translate, with the argument its callout gets
/// (the runtime's handle for the decoded instruction).
#[derive(Clone, Copy, Debug)]
pub struct GuestInsn {
    pub insn: Instruction,
    pub arg: u64,
    /// Its memory address has wrapped around 4 GiB before: no direct
    /// `[r15 + reg + disp]` form (`memop::MemOp::direct`), whose 64-bit
    /// sum would leave the view (a fault and a callout) every time.
    pub wraps: bool,
}

/// The runtime's routines, as host addresses, and what the block may
/// assume about the machine.
#[derive(Clone, Copy, Debug)]
pub struct Env {
    pub layout: Layout,
    pub exit: usize,
    pub callout: usize,
    /// How memory operands may be reached inline.
    pub mem: MemPath,
    /// `--engine trap` with real traps: each privileged instruction's
    /// callout is preceded by a trap site (`crate::trap`).
    pub trap_sites: bool,
    /// CLI and STI inline on the virtual EFLAGS (`crate::inline`); off
    /// when they must reach a monitor's deprivileged CPU (`--engine trap`).
    pub inline_sensitive: bool,
    /// A conditional branch back to the block's own first instruction
    /// jumps straight to its entry (the charge) instead of leaving through
    /// an exit: a loop the translation holds whole costs one taken branch
    /// per iteration. Off where every block must return to the dispatcher
    /// (`--lockstep`).
    pub loops: bool,
    /// Which of FS and GS memory operands reach inline (`memop::SegBase`);
    /// the rest are callouts.
    pub fs_gs: FsGs,
    /// RDTSC inline (`crate::inline`): the counter is virtual time, which
    /// translated code computes from its budget. Off with host time.
    pub inline_rdtsc: bool,
    /// Paging on with chaining: exits to another page are checked exits
    /// (`ChainableExit::check`), chained only while the MMU has not
    /// flushed since they were linked.
    pub cross_page: bool,
    /// Guest CALLs as host calls, so that a guest RET returns with the
    /// host's return prediction (`Emitter::guest_call`); needs chaining.
    pub host_calls: bool,
    /// The runtime sets the host's GS base to the view's base at entry
    /// (`runtime::emit_runtime`'s `gs_view`): on the guarded path an
    /// address with two registers is one instruction (`memop::Forms::Gs`).
    pub gs_view: bool,
}

/// FS and GS, each whether it is a segment translated code reaches
/// inline at any base (`memop::SegBase`): a translation is specialised on
/// it, as on the flat segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FsGs {
    pub fs: bool,
    pub gs: bool,
}

impl Env {
    /// The forms of a memory access this translation uses.
    pub fn forms(&self) -> memop::Forms {
        match self.mem {
            MemPath::Guarded if self.gs_view => memop::Forms::Gs,
            m => m.forms(),
        }
    }

    /// How memory operands through `seg` reach their segment's base, when
    /// it is FS or GS and inline.
    pub fn seg_base(&self, seg: Register) -> Option<memop::SegBase> {
        let n = match seg {
            Register::FS if self.fs_gs.fs => 4,
            Register::GS if self.fs_gs.gs => 5,
            _ => return None,
        };
        let l = &self.layout;
        Some(memop::SegBase { state: l.state, base: l.seg_base + n * l.seg_size })
    }
}

/// How translated code reaches guest memory without a callout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemPath {
    /// Only through callouts (segments with bases or limits).
    None,
    /// Paging off, flat segments: the linear address is the physical
    /// address, RAM is `ram_size` bytes at r15.
    Physical { ram_size: u32 },
    /// Paging off, flat segments, RAM at r15 in a guest view that faults
    /// past RAM and on stores into code pages (`src/engine/bt/guard.rs`):
    /// no check and no flag parking; the access itself is a memory site
    /// (`Translated::mem_sites`) whose fault resumes at its slow path.
    Guarded,
    /// Paging on, flat segments: a direct-mapped TLB of 256 entries at
    /// `[r14 + table]`, each `{ read_tag: u32, write_tag: u32, addend: u64 }`
    /// indexed by bits 12–19 of the linear address; a tag is the linear page
    /// base it maps (1 when empty), `addend` turns a linear address into a
    /// host address.
    Tlb { table: i32 },
}

impl MemPath {
    /// The form of memory operations this path runs (`memop::plan_forms`).
    fn forms(self) -> memop::Forms {
        match self {
            MemPath::Tlb { .. } => memop::Forms::Host,
            _ => memop::Forms::Physical,
        }
    }
}

/// Bytes per inline-TLB entry, and entries per table.
pub const TLB_ENTRY: usize = 16;
pub const TLB_ENTRIES: usize = 256;

/// Callout index flags: the slow path of an inline memory access, which
/// the runtime may use to fill its inline TLB after the access.
pub const CALLOUT_MEM_READ: u32 = 1 << 8;
pub const CALLOUT_MEM_WRITE: u32 = 1 << 9;

/// How each guest instruction was translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ident,
    /// IDENT with an inline memory fast path (and a callout slow path).
    IdentMem,
    /// A branch that may leave: the block's end, or a Jcc inside the path
    /// (a side exit), or one back to the translation's start.
    Exit,
    /// A direct JMP inside the path: the path goes on at its target, and
    /// it emits no code.
    Joined,
    Callout,
    /// A sensitive instruction inline (`crate::inline`; a callout slow path).
    Inline,
    /// DIV or IDIV by a register, run on the host (its #DE resumes at a
    /// callout slow path).
    Divide,
}

/// An exit that may be chained: the offset of its jump's rel32 in the
/// block's bytes, and the guest EIP it goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainableExit {
    pub rel32_at: usize,
    pub target: u32,
    /// A checked exit (to another page, paging on): the offsets of its
    /// generation displacement (what the runtime patches, with the rel32,
    /// to link it, and the address it asks to be linked by) and of its
    /// unlinked path (where the rel32 points while it is not linked).
    pub check: Option<(usize, usize)>,
}

/// A translated block.
#[derive(Clone, Debug)]
pub struct Translated {
    pub bytes: Vec<u8>,
    /// Per guest instruction, how it was translated.
    pub kinds: Vec<Kind>,
    /// Exits to a known guest EIP, which the runtime may chain.
    pub exits: Vec<ChainableExit>,
    /// Where each translated guest instruction's main-line host code starts
    /// in `bytes`, then one more entry: where the block's tail (exits,
    /// out-of-line slow paths, the budget refund) starts. For `bt86 explain`.
    pub starts: Vec<usize>,
    /// Trap sites (`Env::trap_sites`): offset in `bytes` and length of each
    /// host instruction that faults; execution resumes right after it.
    pub traps: Vec<(usize, usize)>,
    /// Memory sites (`MemPath::Guarded`, and every block's budget
    /// charge): offset in `bytes` of each host access that may fault, and
    /// of the slow path a fault resumes at.
    pub mem_sites: Vec<(usize, usize)>,
    /// Where the block is entered (chained exits, the dispatcher, loops),
    /// after its indirect entry (offset `INDIRECT_ENTRY`).
    pub entry: usize,
    /// Divide sites (`Kind::Divide`): offset of each host DIV or IDIV that
    /// raises #DE exactly when the guest's would, and of the slow path its
    /// fault (SIGFPE) resumes at.
    pub div_sites: Vec<(usize, usize)>,
    /// x87 sites (`translator::x87`): offset of each inline x87
    /// instruction, whose host #MF (SIGFPE) or, with a memory operand,
    /// page fault in a view resumes at the slow path's offset.
    pub x87_sites: Vec<(usize, usize)>,
}

/// Offset of a translation's indirect entry (`Emitter::indirect_entry`),
/// after the 15-byte stub its check leaves through.
pub const INDIRECT_ENTRY: usize = 15;
