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
//! The monitor's tables are *shadows* of the guest's, as VMware's and
//! Xen's were (docs/privilege-rings.md, "A monitor as the classical ones
//! were built"):
//!
//! - **descriptor compression and truncation** ([`shadow`]): the real
//!   GDT and LDT hold the guest's descriptors with DPL 0 compressed to
//!   DPL 1 (so the guest kernel at CPL 1 can load its own segments) and
//!   with limits truncated below the monitor's region, the top 4 MiB of
//!   the linear address space ([`MONITOR_BASE`]). The real CPU reads the
//!   shadow whenever it runs a sensitive instruction deprivileged, so LAR,
//!   LSL, VERR and VERW see DPL 1 and truncated limits. The shadow is
//!   derived from the guest's table at each read: a perfectly coherent
//!   shadow, as a monitor that write-protects the guest's table pages and
//!   updates the shadow at each write fault keeps it. Those write faults
//!   are not modelled (nor counted): the model does not trap stores.
//!   The accessed bit the real CPU sets in a shadow entry, the monitor
//!   mirrors into the guest's entry.
//!   Expand-down segments are shadowed uncut (their top is fixed at 4 GiB
//!   or 64 KiB); a segment that lies wholly in the monitor's region is
//!   shadowed not present, so loading it faults to the monitor.
//! - **what the truncation refuses, the monitor emulates**: under a
//!   monitor the translated code never maps the monitor's region
//!   (`engine/bt`), so every guest access there reaches the callout that
//!   emulates it, and `--stats` counts them ([`MonitorStats::region`]).
//!   The segment caches the model keeps are the *virtual* CPU's (the
//!   guest's own limits), so emulated accesses behave as at ring 0.
//! - **the IDT is shadowed too**: its gates lead into the monitor, which
//!   reflects each exception, hardware interrupt and INT n to the guest's
//!   handler by delivering it on the virtual CPU, writing the frame ring 0
//!   would get: no stack switch from the guest kernel, and a CS whose RPL
//!   is the virtual CPL, 0, even where the real CS has RPL 1 (a guest
//!   kernel's far jump at CPL 1 loads that). The handler's IRET to RPL 0
//!   then faults at CPL 1 and the monitor emulates it, IF included. INT n's
//!   gate-DPL check at the real CPL against the compressed gate gives the
//!   same answer as the virtual CPU's check at CPL 0 or 3, so INT n is
//!   simply reflected ([`MonitorStats::reflected_int`]).
//! - **virtual interrupts**: the machine's IF is the *virtual* IF. It
//!   changes through the instructions that trap (CLI, STI), through the
//!   monitor's reflection of an interrupt gate, and through the
//!   instructions the monitor emulates after they fault at CPL 1 (an IRET
//!   to ring 0, a POPF that also loads something refused); a POPF or IRET
//!   that runs at CPL 1 without faulting cannot change the real IF (CPL 1
//!   is above IOPL 0), so the monitor never sees the change: the virtual
//!   IF keeps its old value. The monitor delivers a device interrupt only
//!   when the virtual IF is set (the engines' ordinary delivery reads it).
//! - the guest kernel's ring 0 and the real ring 1 are one level in the
//!   model: a sensitive instruction that ends at CPL 1 leaves the virtual
//!   CPL at 0 (the selectors it loaded keep their RPL 1, as on hardware).

use super::descriptor::Descriptor;
use super::pitfall_log::PitfallLog;
use crate::cpu::state::{flags, Seg, TableReg};
use crate::cpu::Fault;
use crate::machine::Machine;
use iced_x86::{Instruction, Mnemonic};

/// The bottom of the monitor's region: the top 4 MiB of the linear address
/// space, where VMware's monitor lived (Bugnion et al., ACM TOCS 30(4),
/// 2012; Linux leaves room for such a hypervisor below its fixmap with
/// `reserve_top_address`). Shadow descriptors stop below it.
pub const MONITOR_BASE: u32 = 0xffc0_0000;
/// The monitor's GDTR: a table inside the monitor's region.
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

/// How long a device interrupt may wait on a clear virtual IF before the
/// monitor calls the guest stuck: 2 s of virtual time (Linux disables
/// interrupts for microseconds to milliseconds; its own lockup detectors
/// wait 10 to 20 s of real time).
pub const STARVED_NS: u64 = 2_000_000_000;
/// The line a Linux kernel prints when it panics.
pub const PANIC_TEXT: &str = "Kernel panic - not syncing";

/// Why the monitor says the guest has stopped making progress (besides a
/// halt with the virtual IF clear and a triple fault, which every engine
/// reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stall {
    /// A device interrupt has waited [`STARVED_NS`] with the virtual IF
    /// clear, since the guest was at `cs:eip` (`linear`).
    Starved { cs: u16, eip: u32, linear: u32 },
    /// The guest printed a kernel panic on the console (the line).
    Panic(String),
}

/// What the monitor counted. Only `privileged` are real host traps under
/// `--trap=real`; the reflections and region accesses are modelled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Privileged instructions the guest executed (each one trapped).
    pub privileged: u64,
    /// Sensitive instructions that ran on the deprivileged CPU.
    pub sensitive: u64,
    /// Of those, how many faulted at CPL 1 and were emulated by the monitor.
    pub sensitive_faults: u64,
    /// Exceptions the monitor reflected to the guest's handlers.
    pub reflected_exceptions: u64,
    /// Hardware interrupts the monitor delivered (virtual IF set).
    pub reflected_interrupts: u64,
    /// INT n, INT3, INTO and INT1 the monitor reflected.
    pub reflected_int: u64,
    /// Guest instructions that reached into the monitor's region (past a
    /// truncated limit): emulated by the monitor.
    pub region: u64,
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
    /// Set while the real, deprivileged CPU runs an instruction: descriptor
    /// reads then see the shadow tables.
    pub shadowing: bool,
    /// The pitfall tracer (on under `bt86 run --engine trap`): each
    /// sensitive instruction is also computed as ring 0 would run it, and
    /// the differences logged.
    pub log: Option<Box<PitfallLog>>,
    /// Since when (virtual time) a device interrupt has been waiting on a
    /// clear virtual IF, and where the guest was then.
    pub starved_since: Option<(u64, Stall)>,
}

/// The descriptor the real CPU finds in the monitor's shadow table where
/// the guest's table holds `d`: DPL 0 compressed to 1; a code or
/// expand-up data segment that reaches into the monitor's region cut to
/// end below it (page-granular when that leaves at least 1 MiB), or not
/// present when it starts inside it.
pub fn shadow(d: Descriptor) -> Descriptor {
    const DPL1: u64 = 1 << 45;
    const PRESENT: u64 = 1 << 47;
    const GRAN: u64 = 1 << 55;
    const LIMIT: u64 = 0xffff | (0xf << 48);
    let mut raw = d.raw;
    if d.dpl() == 0 {
        raw |= DPL1;
    }
    let expand_down = d.is_data() && d.conforming();
    if d.is_segment() && !expand_down && d.base() as u64 + d.limit() as u64 >= MONITOR_BASE as u64 {
        if d.base() >= MONITOR_BASE {
            raw &= !PRESENT;
        } else {
            let room = (MONITOR_BASE - d.base()) as u64;
            let (gran, field) = if room >= 1 << 20 { (GRAN, (room >> 12) - 1) } else { (0, room - 1) };
            raw = (raw & !(LIMIT | GRAN)) | (field & 0xffff) | ((field >> 16) << 48) | gran;
        }
    }
    Descriptor { raw }
}

impl Machine {
    /// Whether descriptor reads now go to the monitor's shadow tables.
    #[inline]
    pub fn shadowing(&self) -> bool {
        self.monitor.as_ref().is_some_and(|m| m.shadowing)
    }

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

    /// Counts an event the monitor reflects to the guest (through the
    /// shadow IDT): `external` for a device interrupt.
    pub fn monitor_reflects(&mut self, external: bool) {
        if let Some(mon) = &mut self.monitor {
            if external {
                mon.stats.reflected_interrupts += 1;
            } else {
                mon.stats.reflected_exceptions += 1;
            }
        }
    }

    /// The monitor's progress watch, between blocks at virtual time `now`:
    /// a kernel panic on the console, or a device interrupt starved by a
    /// clear virtual IF for [`STARVED_NS`].
    pub fn monitor_progress(&mut self, now: u64) -> Option<Stall> {
        let mon = self.monitor.as_mut()?;
        if let Some(line) = self.platform.watched_line() {
            return Some(Stall::Panic(line.to_string()));
        }
        if self.cpu.eflags & flags::IF != 0 || !self.platform.interrupt_pending() {
            mon.starved_since = None;
            return None;
        }
        let cs = self.cpu.seg(Seg::Cs);
        let (cs, eip, linear) = (cs.selector, self.cpu.eip, cs.base.wrapping_add(self.cpu.eip));
        let (since, at) = mon.starved_since.get_or_insert((now, Stall::Starved { cs, eip, linear }));
        (now.saturating_sub(*since) >= STARVED_NS).then(|| at.clone())
    }

    /// Counts a guest access into the monitor's region, which the monitor
    /// emulates (see the module's notes on truncation).
    pub fn monitor_region_access(&mut self) {
        if let Some(mon) = &mut self.monitor {
            mon.stats.region += 1;
        }
    }

    /// Runs sensitive instruction `i`, whose ordinary semantics are `exec`,
    /// on the deprivileged CPU; falls back to the monitor's emulation when
    /// it faults there. Without a monitor, just runs it. With a pitfall
    /// log, also computes what ring 0 would have done and logs a
    /// difference.
    pub fn run_deprivileged(&mut self, i: &Instruction, exec: impl Fn(&mut Machine) -> Fault<()>) -> Fault<()> {
        let Some(mon) = &mut self.monitor else { return exec(self) };
        if matches!(i.mnemonic(), Mnemonic::Int | Mnemonic::Int3 | Mnemonic::Into | Mnemonic::Int1) {
            // Through the shadow IDT into the monitor, which reflects it.
            mon.stats.reflected_int += 1;
            return exec(self);
        }
        mon.stats.sensitive += 1;
        if !self.cpu.protected() {
            return exec(self);
        }
        if self.monitor.as_ref().is_some_and(|m| m.log.is_some()) {
            return super::pitfall_log::run_both_ways(self, i, exec);
        }
        self.deprivileged(i, &exec)
    }

    /// The deprivileged run of a sensitive instruction (see
    /// [`Machine::run_deprivileged`]).
    pub(super) fn deprivileged(&mut self, i: &Instruction, exec: &impl Fn(&mut Machine) -> Fault<()>) -> Fault<()> {
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
        self.set_shadowing(true);
        let r = exec(self);
        self.set_shadowing(false);
        if r.is_err() {
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
        self.unshadow_segments(&saved);
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

    fn set_shadowing(&mut self, on: bool) {
        if let Some(mon) = &mut self.monitor {
            mon.shadowing = on;
        }
    }

    /// The segment registers the deprivileged instruction loaded hold the
    /// shadow's descriptors (DPL 1, a truncated limit); the virtual CPU's
    /// caches hold the guest's own, which the model keeps (the truncation
    /// is modelled by the monitor's region instead).
    fn unshadow_segments(&mut self, saved: &crate::cpu::state::CpuState) {
        for s in 0..self.cpu.seg.len() {
            let seg = self.cpu.seg[s];
            if seg == saved.seg[s] || super::descriptor::is_null(seg.selector) {
                continue;
            }
            // The selector was just loaded from the table, so it reads.
            if let Ok(d) = self.read_descriptor(seg.selector) {
                let accessed = seg.attr & crate::cpu::state::attr::ACCESSED;
                let mut own = d.to_segment(seg.selector);
                own.attr |= accessed;
                self.cpu.seg[s] = own;
            }
        }
    }

    /// SGDT, SIDT, SLDT, STR, SMSW read the real CPU's registers, which
    /// hold the monitor's tables and machine status word (CR0's low 16
    /// bits; the high ones, PG among them, stay the virtual CPU's so the
    /// store itself goes through the guest's own address translation).
    fn with_monitor_registers(&mut self, exec: &impl Fn(&mut Machine) -> Fault<()>) -> Fault<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_ring0_segment_is_compressed_and_cut_below_the_monitor() {
        let d = shadow(Descriptor { raw: 0x00cf_9300_0000_ffff });
        assert_eq!(d.dpl(), 1);
        assert_eq!(d.base(), 0);
        assert_eq!(d.limit(), MONITOR_BASE - 1);
        assert!(d.present());
    }

    #[test]
    fn a_based_segment_keeps_its_base_and_ends_below_the_monitor() {
        // Base 0xc1e00000 (a per-CPU area), 4 GiB limit, DPL 0.
        let d = shadow(Descriptor { raw: 0xc1cf_93e0_0000_ffff });
        assert_eq!(d.base(), 0xc1e0_0000);
        assert_eq!(d.base().wrapping_add(d.limit()), MONITOR_BASE - 1);
        // A small room is byte-granular.
        let d = shadow(Descriptor { raw: 0xffcf_93bf_f000_ffff });
        assert_eq!(d.base(), 0xffbf_f000);
        assert_eq!(d.limit(), 0xfff);
    }

    #[test]
    fn what_stays_below_the_monitor_and_ring3_descriptors_are_unchanged() {
        let small = Descriptor { raw: 0x0040_9300_0000_ffff };
        assert_eq!(shadow(small).raw, small.raw | 1 << 45);
        let user = Descriptor { raw: 0x0000_f300_0000_ffff };
        assert_eq!(shadow(user), user);
    }

    #[test]
    fn a_segment_inside_the_monitor_is_not_present_and_expand_down_is_uncut() {
        let inside = shadow(Descriptor { raw: 0xff40_93c0_0000_00ff });
        assert_eq!(inside.base(), MONITOR_BASE);
        assert!(!inside.present());
        let down = Descriptor { raw: 0x00cf_9700_0000_0000 };
        assert_eq!(shadow(down).limit(), down.limit());
    }
}
