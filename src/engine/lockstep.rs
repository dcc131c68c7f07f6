//! Lockstep checking: the binary translator runs the machine while a
//! shadow machine, booted identically, follows under the interpreter. After
//! every block the translator runs, the shadow is brought to the same
//! retired-instruction count and the two CPU states are compared; at the
//! end the guest RAM is compared too. The first difference stops the run
//! with both states.

use super::bt::Bt;
use super::interp::{Accel, Interp};
use super::Limits;
use crate::cpu::CpuState;
use crate::machine::{Fatal, Machine};

/// The first point where the two engines disagreed.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// EIP at the start of the block that diverged.
    pub block_eip: u32,
    /// Instructions retired when the states were compared.
    pub retired: u64,
    pub bt: Box<CpuState>,
    pub interp: Box<CpuState>,
}

impl Divergence {
    /// The fields that differ, one per line, bt's value first; the block
    /// is named after its function when `symbols` know it (its linear
    /// address taken with the interpreter's CS base after the block).
    pub fn describe(&self, symbols: Option<&crate::symbols::Symbols>) -> String {
        let linear = self.interp.seg(crate::cpu::Seg::Cs).base.wrapping_add(self.block_eip);
        let func = symbols.and_then(|s| s.name(linear)).map(|f| format!(" ({f})")).unwrap_or_default();
        let mut out = format!(
            "bt and interp diverge after the block at {:#010x}{func} ({} instructions retired):\n",
            self.block_eip, self.retired
        );
        let (a, b) = (&self.bt, &self.interp);
        let names = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
        for (k, name) in names.iter().enumerate() {
            if a.gpr[k] != b.gpr[k] {
                out += &format!("  {name}: bt {:#010x}  interp {:#010x}\n", a.gpr[k], b.gpr[k]);
            }
        }
        let mut field = |name: &str, x: String, y: String| {
            if x != y {
                out += &format!("  {name}: bt {x}  interp {y}\n");
            }
        };
        field("eip", format!("{:#010x}", a.eip), format!("{:#010x}", b.eip));
        field("eflags", format!("{:#010x}", a.eflags), format!("{:#010x}", b.eflags));
        field("segments", format!("{:?}", a.seg), format!("{:?}", b.seg));
        field(
            "cr0/2/3/4",
            format!("{:x?}", [a.cr0, a.cr2, a.cr3, a.cr4]),
            format!("{:x?}", [b.cr0, b.cr2, b.cr3, b.cr4]),
        );
        field("cpl", a.cpl.to_string(), b.cpl.to_string());
        field("other state", format!("{a:?}"), format!("{b:?}"));
        out
    }
}

/// The translator with a shadow interpreter machine beside it.
pub struct Lockstep<'a> {
    pub bt: Bt,
    shadow: &'a mut Machine,
    shadow_interp: Interp,
    pub divergence: Option<Divergence>,
    /// Blocks whose results were compared.
    pub compared: u64,
}

impl<'a> Lockstep<'a> {
    /// Lockstep over `shadow`, which must be booted exactly as the machine
    /// the translator will run.
    pub fn new(bt: Bt, shadow: &'a mut Machine) -> Lockstep<'a> {
        Lockstep { bt, shadow, shadow_interp: Interp::new(true), divergence: None, compared: 0 }
    }

    /// Brings the shadow to the same retired count (and through the same
    /// number of faults, which retire nothing) and compares.
    fn check(&mut self, m: &mut Machine, faults: u64, block_eip: u32) {
        self.catch_up(m, faults);
        let unsupported = matches!(m.fatal, Some(Fatal::Unsupported(_)));
        if unsupported && self.shadow.fatal.is_none() {
            // The instruction that stopped the translated block retired
            // nothing: the shadow meets it next, and must stop on it too.
            self.shadow_interp.step_one(self.shadow);
        }
        self.compared += 1;
        let same = self.shadow.clock.retired == m.clock.retired
            && self.shadow.cpu == m.cpu
            && (!unsupported || self.shadow.fatal == m.fatal);
        if !same && self.divergence.is_none() {
            self.divergence = Some(Divergence {
                block_eip,
                retired: m.clock.retired,
                bt: Box::new(m.cpu.clone()),
                interp: Box::new(self.shadow.cpu.clone()),
            });
            m.fatal = Some(Fatal::Divergence);
        }
    }

    /// Runs the shadow to the machine's retired count and fault count.
    fn catch_up(&mut self, m: &Machine, faults: u64) {
        let limits = Limits { max_insns: Some(m.clock.retired), ..Limits::default() };
        self.shadow_interp.run(self.shadow, limits);
        while self.shadow_interp.stats.exceptions < faults && self.shadow.clock.retired == m.clock.retired {
            if self.shadow_interp.step_one(self.shadow).is_some() {
                break;
            }
        }
    }

    /// Compares guest RAM at the end of a run; returns the first differing
    /// physical address.
    pub fn compare_ram(&self, m: &Machine) -> Option<u32> {
        let (a, b) = (m.ram.bytes(), self.shadow.ram.bytes());
        a.iter().zip(b).position(|(x, y)| x != y).map(|p| p as u32)
    }

    /// Runs until the machine stops or the engines diverge.
    pub fn run(&mut self, interp: &mut Interp, m: &mut Machine, limits: Limits) -> super::Exit {
        self.bt.set_chaining(false);
        let exit = interp.run_with(m, limits, self);
        // The interpreter may have run blocks after the last one compared:
        // bring the shadow to the same point before RAM is compared.
        if self.divergence.is_none() {
            self.catch_up(m, interp.stats.exceptions);
        }
        exit
    }
}

impl Accel for Lockstep<'_> {
    fn try_run(&mut self, interp: &mut Interp, m: &mut Machine, budget: u64) -> bool {
        let eip = m.cpu.eip;
        if !self.bt.try_run(interp, m, budget) {
            return false;
        }
        self.check(m, interp.stats.exceptions, eip);
        true
    }

    fn invalidate_page(&mut self, page: u32) {
        self.bt.invalidate_page(page);
    }
}
