//! Builders for synthetic Multiboot images.

/// A Multiboot header with `flags` and, when bit 16 is set, the five
/// a.out-kludge address fields.
pub fn header(flags: u32, kludge: Option<[u32; 5]>) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x1BAD_B002u32, flags, 0u32.wrapping_sub(0x1BAD_B002u32.wrapping_add(flags))] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    for x in kludge.into_iter().flatten() {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// One program header for [`elf`].
#[derive(Clone, Debug)]
pub struct Seg {
    pub p_type: u32,
    pub vaddr: u32,
    pub paddr: u32,
    pub data: Vec<u8>,
    pub memsz: u32,
    pub flags: u32,
}

/// A PT_LOAD, R+X, loaded at `addr` (vaddr = paddr).
pub fn load(addr: u32, data: Vec<u8>, memsz: u32) -> Seg {
    Seg { p_type: 1, vaddr: addr, paddr: addr, data, memsz, flags: 5 }
}

/// An ELF32 i386 executable: file header, program headers, then each
/// segment's data in order. `e_machine` is 3 (EM_386).
pub fn elf(entry: u32, segs: &[Seg]) -> Vec<u8> {
    let phoff = 52u32;
    let mut off = phoff + 32 * segs.len() as u32;
    let mut v = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let push16 = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let push32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    push16(&mut v, 2); // e_type ET_EXEC
    push16(&mut v, 3); // e_machine EM_386
    push32(&mut v, 1); // e_version
    push32(&mut v, entry);
    push32(&mut v, phoff);
    push32(&mut v, 0); // e_shoff
    push32(&mut v, 0); // e_flags
    for x in [52u16, 32, segs.len() as u16, 40, 0, 0] {
        push16(&mut v, x); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    }
    for s in segs {
        for x in [s.p_type, off, s.vaddr, s.paddr, s.data.len() as u32, s.memsz, s.flags, 0x1000] {
            push32(&mut v, x);
        }
        off += s.data.len() as u32;
    }
    for s in segs {
        v.extend_from_slice(&s.data);
    }
    v
}

/// Text that starts with a Multiboot header (flags 3) and is padded with
/// `fill` to `len` bytes.
pub fn text(len: usize, fill: u8) -> Vec<u8> {
    let mut t = header(3, None);
    t.resize(len, fill);
    t
}

/// The probe kernel's shape (`probe.elf`, run `elf-128-full`): one PT_LOAD
/// at 1 MiB, 0x8b3 bytes of file data, BSS to 0x102c49, entry 0x100020.
pub fn probe_elf() -> Vec<u8> {
    elf(0x10_0020, &[load(0x10_0000, text(0x8b3, 0x90), 0x2c49)])
}

/// The modules of the probe runs: `mod1` is "MOD1" + 5000 zero bytes,
/// `mod2` is "MOD2" + 100 zero bytes.
pub fn probe_modules(name1: &str) -> Vec<(String, Vec<u8>)> {
    let m = |tag: &[u8], pad: usize| {
        let mut v = tag.to_vec();
        v.resize(4 + pad, 0);
        v
    };
    vec![(name1.to_string(), m(b"MOD1", 5000)), ("mod2".to_string(), m(b"MOD2", 100))]
}
