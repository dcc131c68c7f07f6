//! Execution engines. They all run the same [`crate::Machine`].

pub mod interp;
