//! `Machine` = CPU state + guest RAM + the platform's devices + the virtual
//! clock. Every engine runs the same `Machine`; they differ only in how they
//! execute guest instructions.

use crate::cpu::alu::Vendor;
use crate::cpu::CpuState;
use crate::devices::cmos::RtcMode;
use crate::devices::Platform;
use crate::memory::{GuestRam, Mmu, PhysAddr};

/// Default guest RAM, as QEMU's default `-m`.
pub const DEFAULT_MEM: u32 = 128 << 20;

/// Virtual time. In deterministic mode (the default) time is a pure
/// function of retired guest instructions: one instruction is one
/// nanosecond, a 1 GHz virtual CPU. The TSC counts the same nanoseconds.
/// With `realtime`, time is the host's monotonic clock since start.
#[derive(Debug)]
pub struct Clock {
    /// Guest instructions retired so far (see docs/architecture.md for what
    /// counts as retired).
    pub retired: u64,
    /// Virtual time that passed while the CPU was halted, waiting for an
    /// interrupt (deterministic mode jumps straight to the next deadline).
    pub idle: u64,
    realtime: Option<std::time::Instant>,
}

impl Clock {
    /// A deterministic clock at zero.
    pub fn deterministic() -> Clock {
        Clock { retired: 0, idle: 0, realtime: None }
    }

    /// A clock that follows host time.
    pub fn realtime() -> Clock {
        Clock { retired: 0, idle: 0, realtime: Some(std::time::Instant::now()) }
    }

    /// A halted CPU waits until virtual time `t`.
    pub fn idle_until(&mut self, t: u64) {
        match self.realtime {
            None => self.idle = self.idle.max(t.saturating_sub(self.retired)),
            Some(t0) => {
                let now = t0.elapsed().as_nanos() as u64;
                if t > now {
                    std::thread::sleep(std::time::Duration::from_nanos((t - now).min(10_000_000)));
                }
            }
        }
    }

    /// Whether virtual time follows retired instructions.
    pub fn is_deterministic(&self) -> bool {
        self.realtime.is_none()
    }

    /// Current virtual time in nanoseconds.
    #[inline]
    pub fn now(&self) -> u64 {
        match self.realtime {
            None => self.retired + self.idle,
            Some(t0) => t0.elapsed().as_nanos() as u64,
        }
    }

    /// The retired-instruction count at which virtual time reaches `t`
    /// (deterministic mode), so an engine can stop exactly there.
    #[inline]
    pub fn retired_at(&self, t: u64) -> u64 {
        match self.realtime {
            None => t.saturating_sub(self.idle),
            // Host time cannot be reached by counting: check again soon.
            Some(_) => self.retired + 10_000,
        }
    }
}

/// A condition that stops the machine for good: bt86's own failures, each
/// with its distinct even exit status (see `main.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fatal {
    /// The guest used something bt86 does not implement.
    Unsupported(String),
    /// A fault while delivering a double fault: the CPU shuts down.
    TripleFault,
    /// The host could not provide something the engine needs.
    Host(String),
    /// Lockstep checking found the translator and the interpreter in
    /// different states (the details are in the lockstep report).
    Divergence,
}

/// The whole virtual machine. `#[repr(C)]` with the CPU state first, so
/// translated code holding a `*mut Machine` addresses `CpuState` fields at
/// the offsets `CpuLayout` publishes.
#[repr(C)]
pub struct Machine {
    pub cpu: CpuState,
    pub ram: GuestRam,
    pub mmu: Mmu,
    pub platform: Platform,
    pub clock: Clock,
    /// Set when the machine must stop (see [`Fatal`]).
    pub fatal: Option<Fatal>,
    /// What WRMSR to the TSC added to virtual time.
    pub cpu_tsc_offset: u64,
    /// Set under `--engine trap`: the CPU runs the guest deprivileged
    /// under a monitor (`system/depriv.rs`).
    pub monitor: Option<crate::system::depriv::Monitor>,
    /// While set, every byte `write_phys` stores is recorded with the value
    /// it replaced (the pitfall tracer runs an instruction twice and undoes
    /// the first run: `system/pitfall_log.rs`).
    pub journal: Option<Vec<(PhysAddr, u8)>>,
    /// Whose answers the ALU gives where the SDM leaves a flag or result
    /// undefined (`cpu/alu/vendor`); fixed when the machine is built.
    pub vendor: Vendor,
}

/// How to build a [`Machine`].
#[derive(Clone, Debug)]
pub struct MachineConfig {
    pub mem_size: u32,
    pub realtime: bool,
    /// The vendor model of undefined flags: by default the host's, which
    /// the translator and the trap engine require (they run IDENT code).
    pub vendor: Vendor,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig { mem_size: DEFAULT_MEM, realtime: false, vendor: Vendor::host() }
    }
}

impl Machine {
    /// A machine in its reset state whose serial port writes to `serial_out`.
    pub fn new(config: &MachineConfig, serial_out: Box<dyn std::io::Write + Send>) -> std::io::Result<Machine> {
        let mut platform = Platform::with_config(
            serial_out,
            config.mem_size as u64,
            if config.realtime { RtcMode::Realtime } else { RtcMode::Deterministic },
        );
        // On a PC board MCR.OUT2 gates COM1's interrupt line; QEMU does not
        // model the gate, and the guest contract is QEMU's (DESIGN §2).
        platform.set_uart_out2_gate(false);
        Ok(Machine {
            cpu: CpuState::reset(),
            ram: GuestRam::new(config.mem_size)?,
            mmu: Mmu::new(config.mem_size),
            platform,
            fatal: None,
            cpu_tsc_offset: 0,
            monitor: None,
            journal: None,
            vendor: config.vendor,
            clock: if config.realtime { Clock::realtime() } else { Clock::deterministic() },
        })
    }
}

impl Machine {
    /// Records that the guest needs an unimplemented feature and returns
    /// the #UD the current instruction ends with; the engine stops at once.
    pub fn unsupported(&mut self, what: impl Into<String>) -> crate::cpu::Exception {
        if self.fatal.is_none() {
            self.fatal = Some(Fatal::Unsupported(what.into()));
        }
        crate::cpu::Exception::InvalidOpcode
    }
}
