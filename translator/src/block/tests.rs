//! Unit tests of `block`: what the translator emits for small blocks.

use super::*;
use crate::Layout;
use iced_x86::{Decoder, DecoderOptions};

/// The executable segments of an ELF32 image: (virtual address, bytes).
fn text_of(elf: &[u8]) -> Vec<(u32, &[u8])> {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes([elf[o], elf[o + 1], elf[o + 2], elf[o + 3]]);
    let (phoff, phentsize, phnum) = (u32_at(0x1c) as usize, u16_at(0x2a), u16_at(0x2c));
    (0..phnum)
        .map(|n| phoff + n * phentsize)
        .filter(|&p| u32_at(p) == 1 && u32_at(p + 24) & 1 != 0)
        .map(|p| {
            let (off, vaddr, size) = (u32_at(p + 4) as usize, u32_at(p + 8), u32_at(p + 16) as usize);
            (vaddr, &elf[off..(off + size).min(elf.len())])
        })
        .collect()
}

/// A block starting at every instruction boundary of `code` (a linear
/// sweep), cut like the engines cut them: at a block-ending instruction,
/// the end of the page, or 32 instructions.
fn blocks_of(vaddr: u32, code: &[u8]) -> Vec<Vec<GuestInsn>> {
    let all: Vec<Instruction> = Decoder::with_ip(32, code, vaddr as u64, DecoderOptions::NONE).into_iter().collect();
    (0..all.len())
        .map(|s| {
            let page = all[s].ip32() >> 12;
            let mut b = Vec::new();
            for (k, i) in all[s..].iter().enumerate() {
                if i.ip32() >> 12 != page || (i.next_ip32() - 1) >> 12 != page || k == 32 {
                    break;
                }
                b.push(GuestInsn { insn: *i, arg: 0x1234_5600 + k as u64, wraps: false });
                if i.is_invalid() || i.flow_control() != FlowControl::Next || table::classify(i.code()).ends_block {
                    break;
                }
            }
            b
        })
        .filter(|b| !b.is_empty())
        .collect()
}

/// A digest of everything `translate` returns for every block of every
/// guest image, under each memory path. Emission must not change when
/// only the translator's speed does: run this before and after and
/// compare (`cargo test --release -p translator -- --ignored
/// emitted_bytes_digest --nocapture`).
#[test]
fn a_jcc_inside_a_block_is_a_side_exit_that_refunds_the_rest() {
    // cmp eax, 1; je 0x1100; inc eax; jne 0x1000 (a block the
    // interpreter cuts in two, joined).
    let code = [0x83, 0xf8, 0x01, 0x0f, 0x84, 0xf7, 0x00, 0x00, 0x00, 0x40, 0x75, 0xf4];
    let g = decode_at(0x1000, &code);
    assert_eq!(g.len(), 4);
    let t = translate(0x7100_0000, &g, &Env { loops: false, ..guarded_env() }).unwrap();
    let mut targets: Vec<u32> = t.exits.iter().map(|x| x.target).collect();
    targets.sort();
    // The side exit, the loop's taken branch, the fall-through.
    assert_eq!(targets, [0x1000, 0x100c, 0x1100]);
    let code = crate::testutil::show(&t.bytes);
    // The side exit gives back the two instructions after the JE.
    assert!(code.contains("lea r13,[r13+2]"), "{code}");
    assert_eq!(t.kinds.iter().filter(|k| **k == Kind::Exit).count(), 2);
}

fn decode_at(ip: u64, code: &[u8]) -> Vec<GuestInsn> {
    Decoder::with_ip(32, code, ip, DecoderOptions::NONE)
        .into_iter()
        .map(|insn| GuestInsn { insn, arg: 0, wraps: false })
        .collect()
}

fn guarded_env() -> Env {
    Env {
        layout: Layout::detached(),
        exit: 0x7000_0000,
        callout: 0x7000_0100,
        mem: MemPath::Guarded,
        trap_sites: false,
        inline_sensitive: true,
        loops: true,
        fs_gs: Default::default(),
        inline_rdtsc: false,
        cross_page: false,
        host_calls: false,
        gs_view: false,
    }
}

#[test]
fn a_branch_back_to_the_block_start_jumps_to_its_charge() {
    // The same block: its last JNE goes back to 0x1000, so it is no
    // exit but a JNE to offset 0, where the block charges again.
    let code = [0x83, 0xf8, 0x01, 0x0f, 0x84, 0xf7, 0x00, 0x00, 0x00, 0x40, 0x75, 0xf4];
    let t = translate(0, &decode_at(0x1000, &code), &guarded_env()).unwrap();
    let mut targets: Vec<u32> = t.exits.iter().map(|x| x.target).collect();
    targets.sort();
    assert_eq!(targets, [0x100c, 0x1100]);
    let code = crate::testutil::show(&t.bytes);
    // First the indirect entry's check (r9d == 0x1000, leaving through
    // the stub at 0 otherwise), then the entry with the charge.
    assert!(
        code.starts_with(
            "mov rcx,r10; mov [r14+38h],r9d; jmp 0000000070000000h; \
             mov r10,rcx; lea ecx,[r9-1000h]; jrcxz 0000000000000020h; jmp 0; mov rcx,r10; \
             lea r13,[r13-4]; movzx r9d,byte ptr [r13]"
        ),
        "{code}"
    );
    assert_eq!(crate::testutil::show(&t.bytes[..INDIRECT_ENTRY]).matches("; ").count(), 2);
    assert!(code.contains(&format!("inc eax; jne {:016X}h;", t.entry)), "{code}");
    // A JNE back in the middle of a joined block (then JE 0x1100): the
    // inverse JE skips the refund of the one instruction after it and
    // the jump back.
    let code = [0x83, 0xf8, 0x01, 0x40, 0x75, 0xfa, 0x0f, 0x84, 0xf4, 0x00, 0x00, 0x00];
    let t = translate(0, &decode_at(0x1000, &code), &guarded_env()).unwrap();
    let code = crate::testutil::show(&t.bytes);
    let skip = t.entry + 0x1f;
    assert!(
        code.contains(&format!("inc eax; je short {skip:016X}h; lea r13,[r13+1]; jmp {:016X}h;", t.entry)),
        "{code}"
    );
}

#[test]
fn a_path_elides_its_jmps_and_inverts_a_jcc_it_follows_to_the_target() {
    // 2000: inc eax; jmp 2010 / 2010: dec ecx; jne 2008 / 2008: add
    // eax, ebx; ret — a path on at the JMP's target and back at the JNE's.
    let mut g = decode_at(0x2000, &[0x40, 0xeb, 0x0d]);
    g.extend(decode_at(0x2010, &[0x49, 0x75, 0xf5]));
    g.extend(decode_at(0x2008, &[0x01, 0xd8, 0xc3]));
    let t = translate(0, &g, &guarded_env()).unwrap();
    let code = crate::testutil::show(&t.bytes);
    // The JMP emits nothing; the JNE becomes a JE to a side exit for its
    // fall-through (2013) that refunds the two instructions after it.
    assert!(code.contains("inc eax; dec ecx; je "), "{code}");
    assert!(code.contains("lea r13,[r13+2]; mov dword ptr [r14+38h],2013h;"), "{code}");
    assert_eq!(t.exits.iter().map(|x| x.target).collect::<Vec<_>>(), [0x2013]);
    assert_eq!(t.kinds[1], Kind::Joined);
    // A path that goes on at neither side of a branch is refused.
    let mut g = decode_at(0x2000, &[0x40, 0xeb, 0x0d]);
    g.extend(decode_at(0x2008, &[0x01, 0xd8, 0xc3]));
    assert!(translate(0, &g, &guarded_env()).is_err());
}

#[test]
fn a_register_divide_runs_on_the_host_with_a_divide_site() {
    // div ecx; ret — the flags are live after the DIV (the RET leaves the
    // block); idiv ecx; add eax, 1; ret — ADD overwrites them all. Either
    // way the host DIV's flags stand, as any IDENT instruction's do (the
    // runtime requires the host's vendor model): nothing is parked.
    let live = translate(0, &decode_at(0x1000, &[0xf7, 0xf1, 0xc3]), &guarded_env()).unwrap();
    let dead = translate(0, &decode_at(0x1000, &[0xf7, 0xf9, 0x83, 0xc0, 0x01, 0xc3]), &guarded_env()).unwrap();
    for (t, divide) in [(&live, "div ecx"), (&dead, "idiv ecx")] {
        assert_eq!(t.kinds[0], Kind::Divide);
        assert_eq!(t.div_sites.len(), 1);
        let (at, slow) = t.div_sites[0];
        assert!(slow > at);
        let code = crate::testutil::show(&t.bytes[..at]);
        assert!(!code.contains("lahf"), "flags parked before the divide: {code}");
        let code = crate::testutil::show(&t.bytes[at..]);
        assert!(code.starts_with(divide), "{code}");
        assert!(!code.contains("and ah,1; or ah,10h"), "flags rewritten after the divide: {code}");
    }
    // A memory divisor: its load (one more memory site than `div ecx;
    // ret` has), then the divide site.
    let t = translate(0, &decode_at(0x1000, &[0xf7, 0x33, 0xc3]), &guarded_env()).unwrap();
    assert_eq!((t.kinds[0], t.div_sites.len()), (Kind::IdentMem, 1));
    assert_eq!(t.mem_sites.len(), live.mem_sites.len() + 1);
    let (at, _) = t.div_sites[0];
    assert!(crate::testutil::show(&t.bytes[at..]).starts_with("div r9d"));
}

#[test]
#[ignore = "a tool: prints the digest to compare across versions"]
fn emitted_bytes_digest() {
    let layout = Layout::detached();
    let paths = [MemPath::None, MemPath::Physical { ram_size: 64 << 20 }, MemPath::Tlb { table: 0x5000 }];
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-images/bin");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "elf"))
        .collect();
    names.sort();
    let mut total = 0xcbf2_9ce4_8422_2325u64;
    let fnv = |h: &mut u64, bytes: &[u8]| {
        for &b in bytes {
            *h = (*h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    };
    for path in names {
        let elf = std::fs::read(&path).unwrap();
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let (mut blocks, mut insns) = (0, 0);
        for (vaddr, code) in text_of(&elf) {
            for b in blocks_of(vaddr, code) {
                blocks += 1;
                insns += b.len();
                for mem in paths {
                    let env = Env {
                        layout,
                        exit: 0x7000_0000,
                        callout: 0x7000_0100,
                        mem,
                        trap_sites: false,
                        inline_sensitive: true,
                        loops: true,
                        fs_gs: FsGs { fs: true, gs: true },
                        inline_rdtsc: true,
                        cross_page: false,
                        host_calls: false,
                        gs_view: false,
                    };
                    match translate(0x7100_0000, &b, &env) {
                        Ok(t) => {
                            fnv(&mut h, &t.bytes);
                            fnv(&mut h, format!("{:?}{:?}{:?}", t.kinds, t.exits, t.starts).as_bytes());
                        }
                        Err(e) => fnv(&mut h, e.as_bytes()),
                    }
                }
            }
        }
        println!("{:<16} {blocks:>6} blocks {insns:>7} insns  {h:016x}", path.file_name().unwrap().to_string_lossy());
        fnv(&mut total, &h.to_le_bytes());
    }
    println!("total digest {total:016x}");
}

#[test]
fn every_string_instruction_translates_in_any_width_and_prefix() {
    // REPNE/REPE SCAS and CMPS (chunked), REP MOVS and STOS, and the
    // unprefixed forms, each followed by a tail long enough that a short
    // jump over the string code would be out of reach.
    let tail = [0x01, 0xc3].repeat(40); // add ebx, eax
    for prefix in [&[][..], &[0xf3], &[0xf2]] {
        for op in [0xa4u8, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf] {
            for osize in [&[][..], &[0x66]] {
                let mut code = [osize, prefix, &[op]].concat();
                code.extend_from_slice(&tail);
                let insns = decode_at(0x1000, &code);
                let t = translate(0, &insns, &guarded_env());
                assert!(t.is_ok(), "{code:02x?}: {:?}", t.err());
            }
        }
    }
}

#[test]
fn only_32_bit_addressing_strings_run_on_the_host() {
    // The host's string instruction moves RSI and RDI whole: a 0x67 form
    // (SI and DI, wrapping at 64 KiB) goes to the interpreter. This one
    // (`lodsd [si]`) was run on the host and loaded from the wrong place
    // (found by tests/differential.rs, seed 195912224).
    for op in [0xa4u8, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf] {
        let decode = |code: &[u8]| Decoder::with_ip(32, code, 0x1000, DecoderOptions::NONE).decode();
        assert!(memory::host_rep_string(&decode(&[op])).is_some(), "{op:02x}");
        assert!(memory::host_rep_string(&decode(&[0x67, op])).is_none(), "67 {op:02x}");
        assert!(memory::host_rep_string(&decode(&[0xf3, 0x67, op])).is_none(), "f3 67 {op:02x}");
    }
}

#[test]
fn calls_and_returns_are_host_calls_and_returns_with_host_calls_on() {
    let env = Env { host_calls: true, ..guarded_env() };
    let show = |t: &Translated| crate::testutil::show(&t.bytes);
    // call 0x1100 (E8 rel32 from 0x1000): a host call to the exit routine
    // (chained later), then the pad for 0x1005.
    let t = translate(0x7100_0000, &decode_at(0x1000, &[0xe8, 0xfb, 0x00, 0x00, 0x00]), &env).unwrap();
    let code = show(&t);
    assert!(code.contains("mov dword ptr [r14+38h],1100h; call "), "{code}");
    assert!(code.contains("lea ecx,[r9-1005h]"), "the pad checks the return EIP: {code}");
    assert_eq!(t.exits.iter().map(|x| x.target).collect::<Vec<_>>(), [0x1100, 0x1005]);
    // ret: a host ret (into a pad, or the runtime's no_pad).
    let t = translate(0x7100_0000, &decode_at(0x1000, &[0xc3]), &env).unwrap();
    assert!(show(&t).contains("; ret"), "{}", show(&t));
    // Off: neither.
    let t = translate(0x7100_0000, &decode_at(0x1000, &[0xc3]), &guarded_env()).unwrap();
    assert!(!show(&t).contains("; ret"), "{}", show(&t));
}
