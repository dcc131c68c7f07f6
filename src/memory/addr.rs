//! Typed guest addresses. A linear address (after segmentation, before
//! paging) can never be passed where a physical one is expected.

use std::fmt;

/// A guest physical address: what goes on the memory bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(pub u32);

/// A guest linear address: segment base + offset, before paging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LinAddr(pub u32);

macro_rules! addr_impl {
    ($t:ident) => {
        impl $t {
            /// The address `n` bytes further on, wrapping at 4 GiB as the bus does.
            #[inline]
            pub fn wrapping_add(self, n: u32) -> Self {
                $t(self.0.wrapping_add(n))
            }
            /// The 4 KiB page number.
            #[inline]
            pub fn page(self) -> u32 {
                self.0 >> 12
            }
            /// The offset inside the 4 KiB page.
            #[inline]
            pub fn page_offset(self) -> u32 {
                self.0 & 0xfff
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#010x}", self.0)
            }
        }
    };
}
addr_impl!(PhysAddr);
addr_impl!(LinAddr);
