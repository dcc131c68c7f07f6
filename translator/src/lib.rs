//! bt86's translator: pure code generation, no unsafe, no dependency on the
//! root crate. So far it holds the decision table ([`table`]) that says how
//! every guest instruction is handled; decoding and emission follow (#3).
#![forbid(unsafe_code)]

pub mod table;

/// The guest's instruction bitness: bt86 guests are IA-32.
pub const GUEST_BITNESS: u32 = 32;
