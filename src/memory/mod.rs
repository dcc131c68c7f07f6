//! Guest memory: physical RAM, and the address newtypes. Segmentation and
//! paging (linear → physical) live with the CPU's memory access path in
//! `paging` and the interpreter.

pub mod addr;
pub mod paging;
pub mod ram;

pub use addr::{LinAddr, PhysAddr};
pub use ram::GuestRam;
