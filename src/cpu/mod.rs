//! The virtual CPU: its state, its layout for generated code, and guest
//! exceptions as values.

pub mod alu;
pub mod exception;
pub mod state;
pub mod x87;

pub use exception::{Exception, Fault};
pub use state::{CpuLayout, CpuState, Seg, Segment, TableReg};
