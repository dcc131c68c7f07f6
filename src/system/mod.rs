//! The one meaning of every privileged and sensitive instruction. The
//! interpreter, the translator's callouts and the trap engine all call these
//! functions; each is a method on [`crate::Machine`] that checks privilege,
//! reads descriptors, and either commits the whole effect or returns the
//! guest exception with nothing changed.
//!
//! | file          | instructions                                                   |
//! |---------------|----------------------------------------------------------------|
//! | descriptor.rs | descriptor formats, GDT/LDT/IDT reads                         |
//! | segment.rs    | MOV/POP/LxS to segment registers, pushes and pops              |
//! | interrupt.rs  | exception and interrupt delivery, INT n, double/triple fault   |
//! | transfer.rs   | far JMP/CALL/RET, call gates, IRET, SYSENTER/SYSEXIT, POPF flags |
//! | task.rs       | hardware task switches: TSS and task-gate targets, IDT task gates, IRET with NT |
//! | control.rs    | MOV CR/DR, LGDT/LIDT/LLDT/LTR, LMSW, CLTS, CPUID, RDTSC, MSRs, CLI/STI, I/O permission |
//! | query.rs      | LAR, LSL, VERR, VERW                                           |
//! | depriv.rs     | the deprivileged CPU under a trap-and-emulate monitor          |
//! | pitfall_log.rs | `--pitfalls`: sensitive instructions run both ways, differences logged |

pub mod control;
pub mod depriv;
pub mod descriptor;
pub mod interrupt;
pub mod io;
pub mod pitfall_log;
pub mod query;
pub mod segment;
pub mod task;
pub mod transfer;

#[cfg(test)]
pub(crate) mod tests;

pub use interrupt::EventKind;
pub use task::TaskSwitch;
