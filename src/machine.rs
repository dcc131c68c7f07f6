//! `Machine` = CPU state + guest RAM + the platform's devices + the virtual
//! clock. Every engine runs the same `Machine`; they differ only in how they
//! execute guest instructions.

use crate::cpu::CpuState;
use crate::devices::Platform;
use crate::memory::GuestRam;

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
    realtime: Option<std::time::Instant>,
}

impl Clock {
    /// A deterministic clock at zero.
    pub fn deterministic() -> Clock {
        Clock { retired: 0, realtime: None }
    }

    /// A clock that follows host time.
    pub fn realtime() -> Clock {
        Clock { retired: 0, realtime: Some(std::time::Instant::now()) }
    }

    /// Whether virtual time follows retired instructions.
    pub fn is_deterministic(&self) -> bool {
        self.realtime.is_none()
    }

    /// Current virtual time in nanoseconds.
    #[inline]
    pub fn now(&self) -> u64 {
        match self.realtime {
            None => self.retired,
            Some(t0) => t0.elapsed().as_nanos() as u64,
        }
    }

    /// The retired-instruction count at which virtual time reaches `t`
    /// (deterministic mode), so an engine can stop exactly there.
    #[inline]
    pub fn retired_at(&self, t: u64) -> u64 {
        match self.realtime {
            None => t,
            // Host time cannot be reached by counting: check again soon.
            Some(_) => self.retired + 10_000,
        }
    }
}

/// The whole virtual machine.
pub struct Machine {
    pub cpu: CpuState,
    pub ram: GuestRam,
    pub platform: Platform,
    pub clock: Clock,
}

/// How to build a [`Machine`].
pub struct MachineConfig {
    pub mem_size: u32,
    pub realtime: bool,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig { mem_size: DEFAULT_MEM, realtime: false }
    }
}

impl Machine {
    /// A machine in its reset state whose serial port writes to `serial_out`.
    pub fn new(config: &MachineConfig, serial_out: Box<dyn std::io::Write + Send>) -> std::io::Result<Machine> {
        Ok(Machine {
            cpu: CpuState::reset(),
            ram: GuestRam::new(config.mem_size)?,
            platform: Platform::new(serial_out),
            clock: if config.realtime { Clock::realtime() } else { Clock::deterministic() },
        })
    }
}
