//! Guest exceptions as values. A faulting operation returns
//! `Err(Exception::...)`; the engine delivers it through the IDT.

use std::fmt;

/// An architectural exception raised by guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exception {
    /// #DE, vector 0.
    DivideError,
    /// #DB, vector 1 (a trap or fault: DR6 says which).
    Debug,
    /// #BP, vector 3 (INT3; a trap).
    Breakpoint,
    /// #OF, vector 4 (INTO; a trap).
    Overflow,
    /// #BR, vector 5.
    BoundRange,
    /// #UD, vector 6.
    InvalidOpcode,
    /// #NM, vector 7.
    DeviceNotAvailable,
    /// #DF, vector 8 (error code 0).
    DoubleFault,
    /// #TS, vector 10.
    InvalidTss(u32),
    /// #NP, vector 11.
    SegmentNotPresent(u32),
    /// #SS, vector 12.
    StackFault(u32),
    /// #GP, vector 13.
    GeneralProtection(u32),
    /// #PF, vector 14: the faulting linear address goes to CR2.
    PageFault { addr: u32, code: u32 },
    /// #MF, vector 16.
    FloatingPoint,
    /// #AC, vector 17.
    AlignmentCheck,
}

/// Page-fault error code bits (SDM Vol. 3 §4.7).
pub mod pf {
    pub const PRESENT: u32 = 1 << 0;
    pub const WRITE: u32 = 1 << 1;
    pub const USER: u32 = 1 << 2;
    pub const RSVD: u32 = 1 << 3;
    pub const FETCH: u32 = 1 << 4;
}

impl Exception {
    /// #GP(0), the commonest fault.
    pub const GP0: Exception = Exception::GeneralProtection(0);

    /// The IDT vector.
    pub fn vector(self) -> u8 {
        use Exception::*;
        match self {
            DivideError => 0,
            Debug => 1,
            Breakpoint => 3,
            Overflow => 4,
            BoundRange => 5,
            InvalidOpcode => 6,
            DeviceNotAvailable => 7,
            DoubleFault => 8,
            InvalidTss(_) => 10,
            SegmentNotPresent(_) => 11,
            StackFault(_) => 12,
            GeneralProtection(_) => 13,
            PageFault { .. } => 14,
            FloatingPoint => 16,
            AlignmentCheck => 17,
        }
    }

    /// The error code pushed on delivery, if the vector has one.
    pub fn error_code(self) -> Option<u32> {
        use Exception::*;
        match self {
            DoubleFault | AlignmentCheck => Some(0),
            InvalidTss(c) | SegmentNotPresent(c) | StackFault(c) | GeneralProtection(c) => Some(c),
            PageFault { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether this is a trap (EIP saved after the instruction) rather than
    /// a fault (EIP of the faulting instruction).
    pub fn is_trap(self) -> bool {
        matches!(self, Exception::Breakpoint | Exception::Overflow)
    }

    /// Contributory exceptions, for the double-fault rule (SDM Vol. 3 Table 6-5).
    pub fn is_contributory(self) -> bool {
        use Exception::*;
        matches!(self, DivideError | InvalidTss(_) | SegmentNotPresent(_) | StackFault(_) | GeneralProtection(_))
    }

    /// The short mnemonic, as the SDM names it.
    pub fn mnemonic(self) -> &'static str {
        use Exception::*;
        match self {
            DivideError => "#DE",
            Debug => "#DB",
            Breakpoint => "#BP",
            Overflow => "#OF",
            BoundRange => "#BR",
            InvalidOpcode => "#UD",
            DeviceNotAvailable => "#NM",
            DoubleFault => "#DF",
            InvalidTss(_) => "#TS",
            SegmentNotPresent(_) => "#NP",
            StackFault(_) => "#SS",
            GeneralProtection(_) => "#GP",
            PageFault { .. } => "#PF",
            FloatingPoint => "#MF",
            AlignmentCheck => "#AC",
        }
    }
}

impl fmt::Display for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.error_code()) {
            (Exception::PageFault { addr, code }, _) => write!(f, "#PF({code:#x}) at {addr:#010x}"),
            (_, Some(c)) => write!(f, "{}({c:#x})", self.mnemonic()),
            (_, None) => f.write_str(self.mnemonic()),
        }
    }
}

/// Result of a guest operation that may fault.
pub type Fault<T> = Result<T, Exception>;
