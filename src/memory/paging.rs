//! Two-level IA-32 paging (SDM Vol. 3 §4.3): 4 KiB pages through a page
//! table, 4 MiB pages straight from the directory when CR4.PSE is set.
//! The walk sets accessed and dirty bits in guest memory as the hardware
//! does, and checks U/S and R/W with CR0.WP.

use super::{GuestRam, LinAddr, PhysAddr};
use crate::cpu::exception::pf;
use crate::cpu::state::{cr0, cr4};
use crate::cpu::{CpuState, Exception, Fault};

/// Page-table entry bits.
pub mod pte {
    pub const P: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const US: u32 = 1 << 2;
    pub const PWT: u32 = 1 << 3;
    pub const PCD: u32 = 1 << 4;
    pub const A: u32 = 1 << 5;
    pub const D: u32 = 1 << 6;
    /// In a directory entry: a 4 MiB page.
    pub const PS: u32 = 1 << 7;
    pub const G: u32 = 1 << 8;
}

/// What an access wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Fetch,
}

/// Who is asking: CPL 3 code, or the supervisor (CPL 0–2, and implicit
/// system accesses such as descriptor-table and TSS reads at any CPL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    User,
    Supervisor,
}

/// The outcome of a successful walk: where the page is and what it allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// Physical address of the 4 KiB frame holding the linear address.
    pub frame: u32,
    /// Combined U/S of both levels: user code may access the page.
    pub user: bool,
    /// Combined R/W of both levels.
    pub writable: bool,
    /// The dirty bit is set (so a later write need not walk again).
    pub dirty: bool,
    /// A global page (CR4.PGE): survives CR3 reloads in the TLB.
    pub global: bool,
}

/// Whether an access with the given rights is allowed (SDM Vol. 3 §4.6).
#[inline]
pub fn allowed(user_page: bool, writable: bool, access: Access, who: Privilege, cr0v: u32) -> bool {
    match who {
        Privilege::User => user_page && (access != Access::Write || writable),
        Privilege::Supervisor => access != Access::Write || writable || cr0v & cr0::WP == 0,
    }
}

fn fault(lin: LinAddr, present: bool, access: Access, who: Privilege) -> Exception {
    let mut code = if present { pf::PRESENT } else { 0 };
    if access == Access::Write {
        code |= pf::WRITE;
    }
    if who == Privilege::User {
        code |= pf::USER;
    }
    // The I/D bit is only reported with NX (PAE), which this CPU lacks.
    Exception::PageFault { addr: lin.0, code }
}

/// Walks the page tables for `lin`, checking the access and updating the
/// accessed and dirty bits.
pub fn walk(cpu: &CpuState, ram: &mut GuestRam, lin: LinAddr, access: Access, who: Privilege) -> Fault<Walk> {
    let pde_addr = PhysAddr((cpu.cr3 & 0xffff_f000) | ((lin.0 >> 22) << 2));
    let pde = ram.read_u32(pde_addr);
    if pde & pte::P == 0 {
        return Err(fault(lin, false, access, who));
    }
    let write = access == Access::Write;
    if pde & pte::PS != 0 && cpu.cr4 & cr4::PSE != 0 {
        let user = pde & pte::US != 0;
        let writable = pde & pte::RW != 0;
        if !allowed(user, writable, access, who, cpu.cr0) {
            return Err(fault(lin, true, access, who));
        }
        let new = pde | pte::A | if write { pte::D } else { 0 };
        if new != pde {
            ram.write_u32(pde_addr, new);
        }
        return Ok(Walk {
            frame: (pde & 0xffc0_0000) | (lin.0 & 0x003f_f000),
            user,
            writable,
            dirty: new & pte::D != 0,
            global: pde & pte::G != 0 && cpu.cr4 & cr4::PGE != 0,
        });
    }
    let pte_addr = PhysAddr((pde & 0xffff_f000) | (((lin.0 >> 12) & 0x3ff) << 2));
    let pte = ram.read_u32(pte_addr);
    if pte & pte::P == 0 {
        return Err(fault(lin, false, access, who));
    }
    let user = pde & pte & pte::US != 0;
    let writable = pde & pte & pte::RW != 0;
    if !allowed(user, writable, access, who, cpu.cr0) {
        return Err(fault(lin, true, access, who));
    }
    if pde & pte::A == 0 {
        ram.write_u32(pde_addr, pde | pte::A);
    }
    let new = pte | pte::A | if write { pte::D } else { 0 };
    if new != pte {
        ram.write_u32(pte_addr, new);
    }
    Ok(Walk {
        frame: pte & 0xffff_f000,
        user,
        writable,
        dirty: new & pte::D != 0,
        global: pte & pte::G != 0 && cpu.cr4 & cr4::PGE != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::state::cr0;

    fn setup() -> (CpuState, GuestRam) {
        let mut cpu = CpuState::reset();
        cpu.cr0 = cr0::PE | cr0::PG;
        cpu.cr3 = 0x1000;
        let mut ram = GuestRam::new(16 << 20).unwrap();
        // PDE 0 → page table at 0x2000 (user, writable).
        ram.write_u32(PhysAddr(0x1000), 0x2000 | pte::P | pte::RW | pte::US);
        // 0x0000_5000 → frame 0x9000, user read-only.
        ram.write_u32(PhysAddr(0x2000 + 5 * 4), 0x9000 | pte::P | pte::US);
        // 0x0000_6000 → frame 0xa000, supervisor writable.
        ram.write_u32(PhysAddr(0x2000 + 6 * 4), 0xa000 | pte::P | pte::RW);
        (cpu, ram)
    }

    #[test]
    fn maps_and_sets_accessed_and_dirty() {
        let (cpu, mut ram) = setup();
        let w = walk(&cpu, &mut ram, LinAddr(0x6123), Access::Write, Privilege::Supervisor).unwrap();
        assert_eq!(w.frame, 0xa000);
        let pte6 = ram.read_u32(PhysAddr(0x2000 + 6 * 4));
        assert_eq!(pte6 & (pte::A | pte::D), pte::A | pte::D);
        assert_ne!(ram.read_u32(PhysAddr(0x1000)) & pte::A, 0);
        walk(&cpu, &mut ram, LinAddr(0x5000), Access::Read, Privilege::User).unwrap();
        assert_eq!(ram.read_u32(PhysAddr(0x2000 + 5 * 4)) & (pte::A | pte::D), pte::A);
    }

    #[test]
    fn error_codes() {
        let (mut cpu, mut ram) = setup();
        let e = walk(&cpu, &mut ram, LinAddr(0x7000), Access::Read, Privilege::User).unwrap_err();
        assert_eq!(e, Exception::PageFault { addr: 0x7000, code: pf::USER });
        let e = walk(&cpu, &mut ram, LinAddr(0x5004), Access::Write, Privilege::User).unwrap_err();
        assert_eq!(e, Exception::PageFault { addr: 0x5004, code: pf::PRESENT | pf::WRITE | pf::USER });
        let e = walk(&cpu, &mut ram, LinAddr(0x6000), Access::Read, Privilege::User).unwrap_err();
        assert_eq!(e, Exception::PageFault { addr: 0x6000, code: pf::PRESENT | pf::USER });
        // Supervisor writes to a read-only page succeed unless CR0.WP.
        assert!(walk(&cpu, &mut ram, LinAddr(0x5000), Access::Write, Privilege::Supervisor).is_ok());
        cpu.cr0 |= cr0::WP;
        let e = walk(&cpu, &mut ram, LinAddr(0x5000), Access::Write, Privilege::Supervisor).unwrap_err();
        assert_eq!(e, Exception::PageFault { addr: 0x5000, code: pf::PRESENT | pf::WRITE });
    }

    #[test]
    fn large_pages_need_pse() {
        let (mut cpu, mut ram) = setup();
        ram.write_u32(PhysAddr(0x1000 + 4), 0x0040_0000 | pte::P | pte::RW | pte::PS);
        cpu.cr4 = crate::cpu::state::cr4::PSE;
        let w = walk(&cpu, &mut ram, LinAddr(0x0045_6789), Access::Read, Privilege::Supervisor).unwrap();
        assert_eq!(w.frame, 0x0045_6000);
    }
}
