//! bt86's translator: pure code generation, no unsafe, no dependency on the
//! root crate. It is a skeleton until the translator issue (#3) is taken:
//! the machine and the reference interpreter come first.
#![forbid(unsafe_code)]

/// The guest's instruction bitness: bt86 guests are IA-32.
pub const GUEST_BITNESS: u32 = 32;
