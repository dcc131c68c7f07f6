//! Guest RAM: a memfd mapped once (memmap2) covering guest physical
//! addresses `0..size`, a whole number of pages (the command line rounds
//! `-m` up as QEMU does). Accesses outside it behave like an unpopulated bus:
//! reads return all ones, writes are dropped. Nothing here can reach host
//! memory outside the mapping: every access is bounds-checked. The memfd
//! lets the binary translator map the same RAM a second time, as the view
//! its translated code addresses (`engine/bt/guard.rs`).

use super::addr::PhysAddr;
use memmap2::{MmapMut, MmapOptions};

/// Guest physical memory.
pub struct GuestRam {
    map: MmapMut,
    file: std::fs::File,
}

/// The hole QEMU's PC leaves for VGA and option ROMs: guest RAM exists
/// there but the kernel is told (by the e820 map) not to use it.
pub const LOW_MEM_END: u32 = 0xA_0000;
/// Start of extended memory (1 MiB).
pub const HIGH_MEM_START: u32 = 0x10_0000;

/// What QEMU rounds `-m` up to a multiple of (8 KiB, measured with QEMU
/// 7.2: `-m 2049K` gives 2056 KiB of RAM); a whole number of pages.
pub const SIZE_GRANULE: u64 = 8192;

/// A RAM size as QEMU makes it from `-m`: rounded up to `SIZE_GRANULE`.
pub fn round_size(bytes: u64) -> u64 {
    bytes.div_ceil(SIZE_GRANULE).saturating_mul(SIZE_GRANULE)
}

impl GuestRam {
    /// Maps `size` bytes of zeroed guest RAM. The size must be a whole
    /// number of 4 KiB pages: the translator maps RAM's memfd a second time
    /// page by page, and a partial last page would be whole there (reading
    /// zeros and keeping stores where the other engines see open bus).
    pub fn new(size: u32) -> std::io::Result<Self> {
        if size % 4096 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("guest RAM must be a whole number of 4 KiB pages, not {size} bytes"),
            ));
        }
        let fd =
            memfd::MemfdOptions::default().close_on_exec(true).create("bt86-ram").map_err(std::io::Error::other)?;
        let file = fd.into_file();
        file.set_len(size as u64)?;
        // SAFETY: the file is a private memfd nobody else can resize; the
        // mapping lives as long as this struct (which keeps the file too),
        // and any second mapping of it (the translator's guest view) shares
        // its pages on purpose.
        let map = unsafe { MmapOptions::new().len(size as usize).map_mut(&file)? };
        Ok(GuestRam { map, file })
    }

    /// The memfd behind guest RAM.
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// Size in bytes.
    #[inline]
    pub fn size(&self) -> u32 {
        self.map.len() as u32
    }

    /// The whole of RAM as bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The whole of RAM as mutable bytes.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// `len` bytes at `addr`, if they all lie in RAM.
    #[inline]
    pub fn slice(&self, addr: PhysAddr, len: usize) -> Option<&[u8]> {
        let start = addr.0 as usize;
        self.map.get(start..start.checked_add(len)?)
    }

    /// `len` mutable bytes at `addr`, if they all lie in RAM.
    #[inline]
    pub fn slice_mut(&mut self, addr: PhysAddr, len: usize) -> Option<&mut [u8]> {
        let start = addr.0 as usize;
        self.map.get_mut(start..start.checked_add(len)?)
    }

    /// Reads one byte (0xFF outside RAM).
    #[inline]
    pub fn read_u8(&self, addr: PhysAddr) -> u8 {
        self.map.get(addr.0 as usize).copied().unwrap_or(0xff)
    }

    /// Reads a little-endian u16; bytes outside RAM read as 0xFF.
    #[inline]
    pub fn read_u16(&self, addr: PhysAddr) -> u16 {
        match self.slice(addr, 2) {
            Some(b) => u16::from_le_bytes([b[0], b[1]]),
            None => u16::from_le_bytes([self.read_u8(addr), self.read_u8(addr.wrapping_add(1))]),
        }
    }

    /// Reads a little-endian u32; bytes outside RAM read as 0xFF.
    #[inline]
    pub fn read_u32(&self, addr: PhysAddr) -> u32 {
        match self.slice(addr, 4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => {
                let b = |i| self.read_u8(addr.wrapping_add(i));
                u32::from_le_bytes([b(0), b(1), b(2), b(3)])
            }
        }
    }

    /// Writes one byte (dropped outside RAM).
    #[inline]
    pub fn write_u8(&mut self, addr: PhysAddr, v: u8) {
        if let Some(b) = self.map.get_mut(addr.0 as usize) {
            *b = v;
        }
    }

    /// Writes a little-endian u16 (bytes outside RAM are dropped).
    #[inline]
    pub fn write_u16(&mut self, addr: PhysAddr, v: u16) {
        self.write_bytes(addr, &v.to_le_bytes());
    }

    /// Writes a little-endian u32 (bytes outside RAM are dropped).
    #[inline]
    pub fn write_u32(&mut self, addr: PhysAddr, v: u32) {
        self.write_bytes(addr, &v.to_le_bytes());
    }

    /// Copies `data` to `addr`; the part outside RAM is dropped.
    pub fn write_bytes(&mut self, addr: PhysAddr, data: &[u8]) {
        if let Some(dst) = self.slice_mut(addr, data.len()) {
            dst.copy_from_slice(data);
        } else {
            for (i, &b) in data.iter().enumerate() {
                self.write_u8(addr.wrapping_add(i as u32), b);
            }
        }
    }

    /// Copies `len` bytes from `addr`; bytes outside RAM read as 0xFF.
    pub fn read_bytes(&self, addr: PhysAddr, out: &mut [u8]) {
        if let Some(src) = self.slice(addr, out.len()) {
            out.copy_from_slice(src);
        } else {
            for (i, b) in out.iter_mut().enumerate() {
                *b = self.read_u8(addr.wrapping_add(i as u32));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_outside_ram_are_open_bus() {
        let mut ram = GuestRam::new(4096).unwrap();
        ram.write_u32(PhysAddr(4094), 0x1122_3344);
        assert_eq!(ram.read_u16(PhysAddr(4094)), 0x3344);
        assert_eq!(ram.read_u32(PhysAddr(4094)), 0xffff_3344);
        assert_eq!(ram.read_u8(PhysAddr(0xffff_ffff)), 0xff);
    }

    #[test]
    fn little_endian_round_trip() {
        let mut ram = GuestRam::new(8192).unwrap();
        ram.write_u32(PhysAddr(0x100), 0xdead_beef);
        assert_eq!(ram.read_u8(PhysAddr(0x100)), 0xef);
        assert_eq!(ram.read_u16(PhysAddr(0x102)), 0xdead);
    }
}
