//! Guest memory: physical RAM, and the address newtypes. Segmentation and
//! paging (linear → physical) live with the CPU's memory access path in
//! `paging` and the interpreter.

pub mod access;
pub mod addr;
pub mod mmu;
pub mod paging;
pub mod ram;

pub use addr::{LinAddr, PhysAddr};
pub use mmu::Mmu;
pub use paging::{Access, Privilege};
pub use ram::GuestRam;
