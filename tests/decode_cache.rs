//! A guest that makes the interpreter decode a block at every byte of a
//! large run of code (issue: the decode cache grew without bound, gigabytes
//! of host memory for a 128 MiB guest): the cache must stay within its
//! budget, starting over when full, and the guest must still run right.

use bt86::engine::guestcode::CODE;
use bt86::engine::interp::cache::MAX_CACHED_INSNS;
use bt86::engine::interp::Interp;
use bt86::engine::{Exit, Limits};
use bt86::loader::load_flat;
use bt86::memory::PhysAddr;
use bt86::{Machine, MachineConfig};
use iced_x86::code_asm::*;

const SLED: u32 = 0x20_0000;
/// Bytes of sled: every one is called, and the block decoded there runs
/// to the next RET (every 64 bytes), 32 instructions on average: about
/// 4 Mi cached instructions without a bound, four times the budget.
const SLED_LEN: u32 = 128 << 10;

fn guest() -> Result<Vec<u8>, IcedError> {
    // for (esi = SLED; esi < SLED + SLED_LEN; esi++) call esi;
    // mov [0x1000], ebx (calls made); hlt
    let mut a = CodeAssembler::new(32)?;
    let mut top = a.create_label();
    a.mov(esp, 0xf000u32)?;
    a.mov(esi, SLED)?;
    a.xor(ebx, ebx)?;
    a.set_label(&mut top)?;
    a.call(esi)?;
    a.inc(ebx)?;
    a.inc(esi)?;
    a.cmp(esi, SLED + SLED_LEN)?;
    a.jb(top)?;
    a.mov(dword_ptr(0x1000), ebx)?;
    a.hlt()?;
    a.assemble(u64::from(CODE))
}

fn machine() -> Machine {
    let cfg = MachineConfig { mem_size: 4 << 20, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink())).expect("machine");
    load_flat(&mut m, &guest().expect("asm"), PhysAddr(CODE)).expect("fits");
    let sled = &mut m.ram.bytes_mut()[SLED as usize..(SLED + SLED_LEN) as usize];
    for (k, b) in sled.iter_mut().enumerate() {
        *b = if k % 64 == 63 { 0xc3 } else { 0x90 };
    }
    m
}

#[test]
fn the_decode_cache_stays_within_its_budget() {
    let limits = Limits { max_insns: Some(50_000_000), timeout: None, max_exceptions: Some(1) };
    let mut m = machine();
    let mut interp = Interp::new(true);
    let exit = interp.run(&mut m, limits);
    assert_eq!(exit, Exit::HaltForever, "at {:#x}, {} retired", m.cpu.eip, m.clock.retired);
    assert_eq!(m.ram.read_u32(PhysAddr(0x1000)), SLED_LEN, "every byte of the sled was called");
    assert!(interp.cached_insns() <= MAX_CACHED_INSNS, "{} cached", interp.cached_insns());
    assert!(interp.stats.decode_cache_flushes >= 2, "flushes: {}", interp.stats.decode_cache_flushes);
    println!(
        "decode cache: {} instructions held, {} flushes, {} blocks decoded",
        interp.cached_insns(),
        interp.stats.decode_cache_flushes,
        interp.stats.blocks_decoded
    );
}
