//! bt86: a pure-software x86 virtual machine.
//!
//! ```text
//!   loader ──► Machine { CpuState, GuestRam, Platform, Clock }
//!                 │
//!        ┌────────┼─────────┐
//!     interp      bt       trap        (engine/)
//!        └────────┴─────────┘
//!          system/: the one meaning of every privileged
//!                   and sensitive instruction
//! ```
//!
//! See docs/architecture.md.

pub mod bench;
pub mod cpu;
pub mod devices;
pub mod engine;
pub mod explain;
pub mod loader;
pub mod machine;
pub mod memory;
pub mod pitfalls;
pub mod session;
pub mod symbols;
pub mod system;
pub mod terminal;

pub use machine::{Machine, MachineConfig};
