//! The deprivileged CPU of classical trap-and-emulate (`--engine trap`):
//! what an IA-32 CPU without VT-x does when a monitor runs the guest kernel
//! at CPL 1 under the monitor's own GDT, IDT, LDT and TSS, with the
//! monitor's EFLAGS.IF (always 1: the monitor must see host interrupts) and
//! IOPL (0: so that CLI, STI and port I/O trap).
//!
//! The machine's `CpuState` stays the *virtual* CPU the monitor maintains:
//! CPL 0 while the guest kernel runs, the guest's own IF and IOPL, the
//! guest's table registers. The model derives what the real, deprivileged
//! CPU would show from it:
//!
//! - privileged instructions (CLI, STI, HLT, IN/OUT, MOV CRn, LGDT, ...)
//!   fault at CPL 1; the monitor takes the trap ([`Monitor::take_trap`]) and
//!   emulates them with the ordinary semantics of the virtual CPU;
//! - sensitive unprivileged instructions (Robin & Irvine) run on the real
//!   CPU without trapping ([`Machine::run_deprivileged`]): the instruction's
//!   ordinary semantics at CPL 1, with CS.RPL = SS.RPL = 1 and the
//!   monitor's IF and IOPL. Whatever *does* fault that way (a segment load
//!   of a DPL-0 selector, IRET to ring 0, INT n through a DPL-0 gate...)
//!   goes to the monitor too, which emulates it correctly; the rest is the
//!   silent misbehaviour Popek & Goldberg's theorem is about. SGDT, SIDT,
//!   SLDT, STR and SMSW read the real registers, which hold the monitor's
//!   values.
//!
//! Modelling decisions (docs/privilege-rings.md explains them):
//! - the monitor's shadow descriptor tables copy the guest's descriptors
//!   unchanged, so LAR, LSL, VERR and VERW see the guest's DPLs but check
//!   them against CPL 1;
//! - the guest kernel's ring 0 and the real ring 1 are one level in the
//!   model: a sensitive instruction that ends at CPL 1 leaves the virtual
//!   CPL at 0 (the selectors it loaded keep their RPL 1, as on hardware);
//! - a hardware change of IF (an interrupt gate clearing it) reaches the
//!   virtual IF; a change the real CPU refuses (POPF or IRET at CPL 1 >
//!   IOPL 0) never happens, so the virtual IF keeps its old value.

use crate::cpu::state::{flags, Seg, TableReg};
use crate::cpu::Fault;
use crate::machine::Machine;
use iced_x86::{Instruction, Mnemonic};

/// The monitor's GDTR: a table at the top of the linear address space,
/// where VMware's monitor lived (Bugnion et al., ACM TOCS 30(4), 2012).
pub const MONITOR_GDTR: TableReg = TableReg { base: 0xffc0_1000, limit: 0x0fff };
/// The monitor's IDTR: 256 gates.
pub const MONITOR_IDTR: TableReg = TableReg { base: 0xffc0_2000, limit: 0x07ff };
/// The monitor's LDT and TSS selectors (in its own GDT).
pub const MONITOR_LDTR: u16 = 0x0068;
pub const MONITOR_TR: u16 = 0x0060;
/// The host's CR0 (PG, WP, NE, ET, MP, PE), as Linux runs: SMSW at CPL 1
/// returns its low bits.
pub const MONITOR_CR0: u32 = 0x8005_0033;
/// The CPL the monitor runs the guest kernel at.
pub const GUEST_KERNEL_CPL: u8 = 1;

/// What the monitor counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Privileged instructions the guest executed (each one trapped).
    pub privileged: u64,
    /// Sensitive instructions that ran on the deprivileged CPU.
    pub sensitive: u64,
    /// Of those, how many faulted at CPL 1 and were emulated by the monitor.
    pub sensitive_faults: u64,
}

/// The trap-and-emulate monitor's part of the machine.
#[derive(Clone, Debug, Default)]
pub struct Monitor {
    pub stats: MonitorStats,
    /// Called once per privileged instruction, before the monitor emulates
    /// it: the trap itself. The trap engine installs one that makes the
    /// host CPU take a real #GP; `None` models the trap (an exit to the
    /// dispatcher) without one.
    pub take_trap: Option<fn()>,
}

impl Machine {
    /// A privileged instruction under a monitor: it traps to the monitor,
    /// which then emulates it on the virtual CPU (the caller does that).
    pub fn monitor_trap(&mut self) {
        if let Some(mon) = &mut self.monitor {
            mon.stats.privileged += 1;
            if let Some(trap) = mon.take_trap {
                trap();
            }
        }
    }

    /// Runs sensitive instruction `i`, whose ordinary semantics are `exec`,
    /// on the deprivileged CPU; falls back to the monitor's emulation when
    /// it faults there. Without a monitor, just runs it.
    pub fn run_deprivileged(&mut self, i: &Instruction, exec: impl Fn(&mut Machine) -> Fault<()>) -> Fault<()> {
        let Some(mon) = &mut self.monitor else { return exec(self) };
        mon.stats.sensitive += 1;
        if !self.cpu.protected() {
            return exec(self);
        }
        if matches!(i.mnemonic(), Mnemonic::Sgdt | Mnemonic::Sidt | Mnemonic::Sldt | Mnemonic::Str | Mnemonic::Smsw) {
            return self.with_monitor_registers(exec);
        }
        let saved = self.cpu.clone();
        let real_cpl = self.cpu.cpl.max(GUEST_KERNEL_CPL);
        self.cpu.cpl = real_cpl;
        for s in [Seg::Cs, Seg::Ss] {
            let seg = &mut self.cpu.seg[s as usize];
            seg.selector = (seg.selector & !3) | real_cpl as u16;
        }
        let (cs, ss) = (*self.cpu.seg(Seg::Cs), *self.cpu.seg(Seg::Ss));
        self.cpu.eflags = (self.cpu.eflags & !flags::IOPL) | flags::IF;
        if exec(self).is_err() {
            // A fault at CPL 1 goes to the monitor, which emulates the
            // instruction on the virtual CPU (where it may fault for real).
            self.cpu = saved;
            if let Some(mon) = &mut self.monitor {
                mon.stats.sensitive_faults += 1;
            }
            return exec(self);
        }
        // Back to the virtual CPU: registers the instruction did not load
        // lose the view's RPL; a guest kernel left at CPL 1 is at its
        // virtual CPL 0.
        if *self.cpu.seg(Seg::Cs) == cs {
            self.cpu.seg[Seg::Cs as usize].selector = saved.seg(Seg::Cs).selector;
        }
        if *self.cpu.seg(Seg::Ss) == ss {
            self.cpu.seg[Seg::Ss as usize].selector = saved.seg(Seg::Ss).selector;
        }
        if saved.cpl == 0 && self.cpu.cpl == GUEST_KERNEL_CPL {
            self.cpu.cpl = 0;
        }
        if self.cpu.eflags & flags::IF != 0 {
            self.cpu.eflags = (self.cpu.eflags & !flags::IF) | (saved.eflags & flags::IF);
        }
        if self.cpu.eflags & flags::IOPL == 0 {
            self.cpu.eflags |= saved.eflags & flags::IOPL;
        }
        Ok(())
    }

    /// SGDT, SIDT, SLDT, STR, SMSW read the real CPU's registers, which
    /// hold the monitor's tables and machine status word (CR0's low 16
    /// bits; the high ones, PG among them, stay the virtual CPU's so the
    /// store itself goes through the guest's own address translation).
    fn with_monitor_registers(&mut self, exec: impl Fn(&mut Machine) -> Fault<()>) -> Fault<()> {
        let (gdtr, idtr) = (self.cpu.gdtr, self.cpu.idtr);
        let (ldtr, tr, cr0) = (self.cpu.ldtr.selector, self.cpu.tr.selector, self.cpu.cr0);
        self.cpu.gdtr = MONITOR_GDTR;
        self.cpu.idtr = MONITOR_IDTR;
        self.cpu.ldtr.selector = MONITOR_LDTR;
        self.cpu.tr.selector = MONITOR_TR;
        self.cpu.cr0 = (cr0 & !0xffff) | (MONITOR_CR0 & 0xffff);
        let r = exec(self);
        self.cpu.gdtr = gdtr;
        self.cpu.idtr = idtr;
        self.cpu.ldtr.selector = ldtr;
        self.cpu.tr.selector = tr;
        self.cpu.cr0 = cr0;
        r
    }
}
