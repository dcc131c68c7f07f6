//! Criterion benches for the reference interpreter: guest instructions per
//! second on CPU-bound kernels (the workloads `bt86 bench` uses), with the
//! decode cache on and off, and iced-x86's raw decode rate for scale.

use bt86::bench::WORKLOADS;
use bt86::engine::Limits;
use bt86::session::{self, RunConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

fn run(image: &[u8], cfg: &RunConfig) -> u64 {
    let m = session::boot("bench", image, cfg, Box::new(std::io::sink())).expect("boot");
    let out = session::run(m, cfg);
    assert_eq!(out.exit.status(), 1, "workload failed");
    out.retired
}

fn interp(c: &mut Criterion) {
    let mut g = c.benchmark_group("interp");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for w in WORKLOADS {
        let cfg = RunConfig { limits: Limits::default(), ..RunConfig::default() };
        let insns = run(w.image, &cfg);
        g.throughput(Throughput::Elements(insns));
        g.bench_function(w.name, |b| b.iter(|| run(w.image, &cfg)));
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    // The text of the sort kernel, decoded straight through: what an
    // interpreter without a decode cache pays per instruction at least.
    let image = WORKLOADS.iter().find(|w| w.name == "sort").expect("sort").image;
    let code = &image[0x1000.min(image.len())..];
    let mut n = 0u64;
    let mut d = iced_x86::Decoder::with_ip(32, code, 0, iced_x86::DecoderOptions::NONE);
    while d.can_decode() {
        let _ = d.decode();
        n += 1;
    }
    let mut g = c.benchmark_group("iced");
    g.throughput(Throughput::Elements(n));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut d = iced_x86::Decoder::with_ip(32, code, 0, iced_x86::DecoderOptions::NONE);
            let mut i = iced_x86::Instruction::default();
            while d.can_decode() {
                d.decode_out(&mut i);
            }
            i.len()
        })
    });
    g.finish();
}

criterion_group!(benches, interp, decode);
criterion_main!(benches);
