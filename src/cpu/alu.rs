//! Integer arithmetic with its EFLAGS effects. STUB: filled by the ALU work.
