//! The pitfall tracer (`--pitfalls`, and its summary in `--stats`): under
//! a monitor, each sensitive instruction is computed both ways at the
//! instruction — as ring 0 would run it on the virtual CPU, then as the
//! deprivileged CPU runs it — and every difference in the result (fault or
//! not), the registers or the bytes stored is logged with the instruction's
//! address. The first run is undone through the machine's write journal.
//!
//! Both runs start from the same state, so the log names the instruction
//! where the guest was first misled; what follows from it (a wrong branch,
//! a hang) is the guest's own code running on what it was told.

use crate::cpu::state::{flags, CpuState, Seg};
use crate::cpu::{Exception, Fault};
use crate::machine::Machine;
use crate::memory::PhysAddr;
use iced_x86::{Instruction, Mnemonic};
use std::collections::{BTreeMap, VecDeque};

/// How many recent events the log keeps for the stop report.
pub const RECENT: usize = 512;
/// How many first addresses it keeps per instruction.
pub const FIRST: usize = 4;

/// One sensitive instruction whose deprivileged result differed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PitfallEvent {
    /// The instruction's CS selector (the virtual one) and EIP.
    pub cs: u16,
    pub eip: u32,
    /// Its linear address (CS base + EIP), what `--symbols` names.
    pub linear: u32,
    /// Virtual time: instructions retired before it.
    pub retired: u64,
    /// The log's key for it (`pushfd`, `push cs`, `mov ds`...).
    pub what: String,
    /// What differs, as ring 0 had it and as the deprivileged CPU had it.
    pub ring0: String,
    pub deprivileged: String,
}

/// Per instruction: how often it differed and where first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    /// Linear addresses of its first differing executions (distinct).
    pub first: Vec<u32>,
    /// What differed the first time: as ring 0 had it, as the
    /// deprivileged CPU had it.
    pub example: (String, String),
}

/// What the tracer found in a run.
#[derive(Clone, Debug, Default)]
pub struct PitfallLog {
    /// Sensitive instructions computed both ways.
    pub checked: u64,
    /// Of those, how many differed.
    pub differed: u64,
    pub by_insn: BTreeMap<String, Tally>,
    /// Every instruction address that differed: its key and count.
    pub sites: BTreeMap<u32, (String, u64)>,
    /// The last [`RECENT`] events, oldest first.
    pub recent: VecDeque<PitfallEvent>,
    /// The first [`EARLIEST`] events.
    pub earliest: Vec<PitfallEvent>,
}

/// How many of the first events the log keeps.
pub const EARLIEST: usize = 64;

impl PitfallLog {
    fn record(&mut self, e: PitfallEvent) {
        self.differed += 1;
        self.sites.entry(e.linear).or_insert_with(|| (e.what.clone(), 0)).1 += 1;
        let t = self.by_insn.entry(e.what.clone()).or_default();
        t.count += 1;
        if t.count == 1 {
            t.example = (e.ring0.clone(), e.deprivileged.clone());
        }
        if t.first.len() < FIRST && !t.first.contains(&e.linear) {
            t.first.push(e.linear);
        }
        if self.earliest.len() < EARLIEST {
            self.earliest.push(e.clone());
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(e);
    }

    /// The instructions that differed, most frequent first.
    pub fn ranked(&self) -> Vec<(&str, &Tally)> {
        let mut v: Vec<_> = self.by_insn.iter().map(|(k, t)| (k.as_str(), t)).collect();
        v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        v
    }
}

/// The log's name for an instruction: its mnemonic, with the segment
/// register for the segment forms (`push cs`, `mov ss`).
pub fn key(i: &Instruction) -> String {
    let mn = format!("{:?}", i.mnemonic()).to_lowercase();
    let seg = (0..i.op_count()).map(|k| i.op_register(k)).find(|r| r.is_segment_register());
    match (i.mnemonic(), seg) {
        (Mnemonic::Mov | Mnemonic::Push | Mnemonic::Pop, Some(r)) => {
            format!("{mn} {}", format!("{r:?}").to_lowercase())
        }
        _ => mn,
    }
}

/// Runs sensitive instruction `i` as ring 0 would, undoes it, runs it on
/// the deprivileged CPU (which is what the guest gets) and logs any
/// difference.
pub(super) fn run_both_ways(m: &mut Machine, i: &Instruction, exec: impl Fn(&mut Machine) -> Fault<()>) -> Fault<()> {
    let start = m.cpu.clone();
    let fatal = m.fatal.clone();
    debug_assert!(m.journal.is_none(), "a sensitive instruction inside another's run");
    m.journal = Some(Vec::new());
    let r0 = exec(m);
    let ring0 = m.cpu.clone();
    let ring0_writes = undo(m);
    m.cpu = start.clone();
    m.fatal = fatal;
    m.journal = Some(Vec::new());
    let r1 = m.deprivileged(i, &exec);
    let depriv_writes = m.journal.take().unwrap_or_default();
    let (a, b) = differences(m, (&r0, &ring0, &ring0_writes), (&r1, &depriv_writes));
    if let Some(log) = m.monitor.as_mut().and_then(|mon| mon.log.as_mut()) {
        log.checked += 1;
        if !a.is_empty() {
            log.record(PitfallEvent {
                cs: start.seg(Seg::Cs).selector,
                eip: i.ip32(),
                linear: start.seg(Seg::Cs).base.wrapping_add(i.ip32()),
                retired: m.clock.retired,
                what: key(i),
                ring0: a.join(" "),
                deprivileged: b.join(" "),
            });
        }
    }
    r1
}

/// Undoes the journalled stores, newest first, and returns the bytes the
/// run left (address, value).
fn undo(m: &mut Machine) -> BTreeMap<u32, u8> {
    let journal = m.journal.take().unwrap_or_default();
    let stored = journal.iter().map(|&(pa, _)| (pa.0, m.ram.read_u8(pa))).collect();
    for &(pa, old) in journal.iter().rev() {
        m.ram.write_u8(pa, old);
    }
    stored
}

type Outcome<'a> = (&'a Fault<()>, &'a CpuState, &'a BTreeMap<u32, u8>);

/// The differences between the ring-0 run and the deprivileged one (whose
/// state is the machine's now), as two parallel lists of `name=value`.
fn differences(
    m: &Machine,
    (r0, c0, w0): Outcome,
    (r1, journal1): (&Fault<()>, &Vec<(PhysAddr, u8)>),
) -> (Vec<String>, Vec<String>) {
    let c1 = &m.cpu;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut diff = |name: &str, x: String, y: String| {
        if x != y {
            a.push(format!("{name}={x}"));
            b.push(format!("{name}={y}"));
        }
    };
    diff("result", outcome(r0), outcome(r1));
    const GPR: [&str; 8] = ["EAX", "ECX", "EDX", "EBX", "ESP", "EBP", "ESI", "EDI"];
    for (k, name) in GPR.iter().enumerate() {
        diff(name, hex(c0.gpr[k]), hex(c1.gpr[k]));
    }
    diff("EIP", hex(c0.eip), hex(c1.eip));
    diff("CPL", c0.cpl.to_string(), c1.cpl.to_string());
    diff("IF", bit(c0.eflags, flags::IF), bit(c1.eflags, flags::IF));
    diff("IOPL", iopl(c0.eflags), iopl(c1.eflags));
    let rest = !(flags::IF | flags::IOPL);
    diff("EFLAGS", hex(c0.eflags & rest), hex(c1.eflags & rest));
    const SEG: [&str; 6] = ["ES", "CS", "SS", "DS", "FS", "GS"];
    for (k, name) in SEG.iter().enumerate() {
        diff(name, format!("{:#06x}", c0.seg[k].selector), format!("{:#06x}", c1.seg[k].selector));
    }
    // Stored bytes: every address either run wrote.
    let mut w1: BTreeMap<u32, u8> = BTreeMap::new();
    let mut before: BTreeMap<u32, u8> = BTreeMap::new();
    for &(pa, old) in journal1 {
        before.entry(pa.0).or_insert(old);
        w1.insert(pa.0, m.ram.read_u8(pa));
    }
    let live = |at: u32| m.ram.read_u8(PhysAddr(at));
    let addrs: Vec<u32> =
        w0.keys().chain(w1.keys()).copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let value0 = |at: u32| w0.get(&at).copied().unwrap_or_else(|| before.get(&at).copied().unwrap_or_else(|| live(at)));
    let value1 = |at: u32| w1.get(&at).copied().unwrap_or_else(|| live(at));
    for run in runs(&addrs) {
        let x: Vec<u8> = run.clone().map(value0).collect();
        let y: Vec<u8> = run.clone().map(value1).collect();
        diff(&format!("[{:#010x}]", run.start), le(&x), le(&y));
    }
    (a, b)
}

/// Consecutive addresses grouped into ranges of at most 4 bytes.
fn runs(addrs: &[u32]) -> Vec<std::ops::Range<u32>> {
    let mut out: Vec<std::ops::Range<u32>> = Vec::new();
    for &at in addrs {
        match out.last_mut() {
            Some(r) if r.end == at && r.end - r.start < 4 => r.end += 1,
            _ => out.push(at..at + 1),
        }
    }
    out
}

/// Bytes as a little-endian hexadecimal number.
fn le(bytes: &[u8]) -> String {
    let v = bytes.iter().rev().fold(0u64, |v, &b| (v << 8) | b as u64);
    format!("{v:#0w$x}", w = 2 + 2 * bytes.len())
}

fn hex(v: u32) -> String {
    format!("{v:#010x}")
}

fn bit(v: u32, mask: u32) -> String {
    ((v & mask != 0) as u8).to_string()
}

fn iopl(v: u32) -> String {
    ((v & flags::IOPL) >> 12).to_string()
}

fn outcome(r: &Fault<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => exception(*e),
    }
}

/// An exception as the SDM writes it: `#GP(0x0060)`.
pub fn exception(e: Exception) -> String {
    match e.error_code() {
        Some(code) if !matches!(e, Exception::PageFault { .. }) => format!("{}({code:#06x})", e.mnemonic()),
        _ => e.mnemonic().to_string(),
    }
}

/// A guest address with the function `name` gives it, if any.
fn place(at: u32, name: &dyn Fn(u32) -> Option<String>) -> String {
    match name(at) {
        Some(f) => format!("{at:08x} ({f})"),
        None => format!("{at:08x}"),
    }
}

impl PitfallLog {
    /// The instructions that differed, most frequent first, each with its
    /// first addresses: the `--stats` summary and the head of the report.
    pub fn summary(&self, name: &dyn Fn(u32) -> Option<String>) -> String {
        use std::fmt::Write;
        let mut s =
            format!("pitfalls: {} of {} sensitive instructions differed from ring 0\n", self.differed, self.checked);
        for (what, t) in self.ranked() {
            let first: Vec<String> = t.first.iter().map(|&a| place(a, name)).collect();
            let _ = writeln!(s, "  {what:<10} {:>10}  first at {}", t.count, first.join(", "));
            let _ = writeln!(s, "      first time: ring 0 {} | deprivileged {}", t.example.0, t.example.1);
        }
        s
    }

    /// The newest events, newest first, one a line: at most `n`, each
    /// address once (its newest event).
    pub fn newest(&self, n: usize, name: &dyn Fn(u32) -> Option<String>) -> String {
        describe(self.recent.iter().rev(), n, name)
    }

    /// The first events, oldest first, as [`PitfallLog::newest`].
    pub fn first_events(&self, n: usize, name: &dyn Fn(u32) -> Option<String>) -> String {
        describe(self.earliest.iter(), n, name)
    }

    /// Differences per instruction and guest function (as `name` gives it,
    /// offset dropped), most frequent first; empty when `name` knows none.
    pub fn by_function(&self, name: &dyn Fn(u32) -> Option<String>) -> Vec<(String, String, u64)> {
        let mut acc: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (&at, (what, n)) in &self.sites {
            if let Some(f) = name(at) {
                let func = f.split('+').next().unwrap_or(&f).to_string();
                *acc.entry((what.clone(), func)).or_default() += n;
            }
        }
        let mut v: Vec<_> = acc.into_iter().map(|((w, f), n)| (w, f, n)).collect();
        v.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
        v
    }
}

/// Events one a line, at most `n`, each address once.
fn describe<'a>(
    events: impl Iterator<Item = &'a PitfallEvent>,
    n: usize,
    name: &dyn Fn(u32) -> Option<String>,
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut seen = std::collections::HashSet::new();
    for e in events.filter(|e| seen.insert(e.linear)).take(n) {
        let func = name(e.linear).map(|f| format!(" {f}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  #{:<11} {:<8} {:04x}:{:08x}{func}\n      ring 0: {}\n      deprivileged: {}",
            e.retired, e.what, e.cs, e.eip, e.ring0, e.deprivileged
        );
    }
    s
}
