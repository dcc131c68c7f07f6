//! Criterion bench for the binary translator: host time per guest
//! instruction to translate real guest blocks, cold (nothing cached).
//!
//! Each kernel is first run to completion under `--engine bt`; the blocks
//! it translated (their keys: physical address, EIP, code size, memory
//! mode) are then translated again and again from its final RAM:
//!
//! - `translate/miss/*`: exactly what the engine does on a miss — decode
//!   into the interpreter's decode cache (emptied before each pass),
//!   classify, translate, copy into the code buffer (emptied before each
//!   pass), insert into the maps, link chains;
//! - `translate/emit/*`: `translator::block::translate` alone, on the same
//!   blocks already decoded.
//!
//! Throughput is in guest instructions, so criterion's `elem/s` inverted is
//! the time per guest instruction.

use bt86::bench::WORKLOADS;
use bt86::engine::bt::{Bt, Mode};
use bt86::engine::interp::cache::{ends_block, BlockKey, MAX_BLOCK};
use bt86::engine::interp::Interp;
use bt86::engine::Limits;
use bt86::machine::Machine;
use bt86::memory::PhysAddr;
use bt86::session::{self, RunConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use iced_x86::{Decoder, DecoderOptions, Instruction};
use std::hint::black_box;
use std::time::{Duration, Instant};
use translator::block::{self, Env, GuestInsn, MemPath};

const TINYOS: &[u8] = include_bytes!("../guest-images/bin/tinyos.elf");

/// The kernels: tinyos (paging, user tasks) and a few workloads.
fn images() -> Vec<(&'static str, &'static [u8])> {
    let mut v = vec![("tinyos", TINYOS)];
    for name in ["sort", "bytecode", "lz", "crc32"] {
        v.push((name, WORKLOADS.iter().find(|w| w.name == name).expect("workload").image));
    }
    v
}

/// A kernel after a run under the translator, and the blocks it translated.
struct Run {
    name: &'static str,
    machine: Machine,
    bt: Bt,
    keys: Vec<(BlockKey, Mode)>,
}

fn run(name: &'static str, image: &[u8]) -> Run {
    let cfg = RunConfig { limits: Limits::default(), ..RunConfig::default() };
    let mut machine = session::boot(name, image, &cfg, Box::new(std::io::sink())).expect("boot");
    let mut bt = Bt::new().expect("code buffer");
    bt.run(&mut Interp::new(true), &mut machine, cfg.limits);
    let keys = bt.translated_keys();
    Run { name, machine, bt, keys }
}

fn miss(c: &mut Criterion, runs: &mut [Run]) {
    let mut g = c.benchmark_group("translate/miss");
    g.sample_size(30).measurement_time(Duration::from_secs(5));
    for Run { name, machine: m, bt, keys } in runs {
        // The blocks as they are in the final RAM (a few may have gone).
        bt.clear_cache();
        let mut interp = Interp::new(true);
        let insns: u64 = keys.iter().filter_map(|&(k, mode)| bt.translate_miss(&mut interp, m, k, mode)).sum();
        g.throughput(Throughput::Elements(insns));
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    bt.clear_cache();
                    let mut interp = Interp::new(true);
                    let t = Instant::now();
                    for &(k, mode) in keys.iter() {
                        black_box(bt.translate_miss(&mut interp, m, black_box(k), mode));
                    }
                    spent += t.elapsed();
                    drop(interp);
                }
                spent
            })
        });
    }
    g.finish();
}

fn emit(c: &mut Criterion, runs: &[Run]) {
    let mut g = c.benchmark_group("translate/emit");
    g.sample_size(30).measurement_time(Duration::from_secs(5));
    let layout = translator::Layout::detached();
    let env = Env {
        layout,
        exit: 0x7000_0000,
        callout: 0x7000_0100,
        mem: MemPath::Physical { ram_size: 64 << 20 },
        trap_sites: false,
        inline_sensitive: true,
        loops: true,
        fs_gs: Default::default(),
        inline_rdtsc: false,
        cross_page: false,
        host_calls: false,
        gs_view: false,
    };
    for Run { name, machine: m, keys, .. } in runs {
        // The same blocks, decoded once here as the engine cuts them.
        let blocks: Vec<Vec<GuestInsn>> = keys
            .iter()
            .filter_map(|(k, _)| {
                let page_end = (k.phys | 0xfff) as usize + 1;
                let bytes = m.ram.slice(PhysAddr(k.phys), page_end - k.phys as usize)?;
                let mut d = Decoder::with_ip(if k.code32 { 32 } else { 16 }, bytes, k.eip as u64, DecoderOptions::NONE);
                let mut b = Vec::new();
                let mut i = Instruction::default();
                while d.can_decode() && b.len() < MAX_BLOCK {
                    d.decode_out(&mut i);
                    b.push(GuestInsn { insn: i, arg: b.len() as u64, wraps: false });
                    if i.is_invalid() || ends_block(&i) {
                        break;
                    }
                }
                Some(b)
            })
            .collect();
        let insns: u64 = blocks.iter().map(|b| b.len() as u64).sum();
        g.throughput(Throughput::Elements(insns));
        g.bench_function(*name, |b| {
            b.iter(|| {
                for blk in &blocks {
                    black_box(block::translate(0x7100_0000, black_box(blk), &env).ok());
                }
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let mut runs: Vec<Run> = images().into_iter().map(|(name, image)| run(name, image)).collect();
    miss(c, &mut runs);
    emit(c, &runs);
}

criterion_group!(translate, benches);
criterion_main!(translate);
