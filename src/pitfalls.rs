//! `bt86 pitfalls`: the pitfall guest kernel (guest-images/kernels/pitfalls.c)
//! under each engine, as one table. The kernel runs at ring 0 and prints,
//! for each check, what ring-0 code expects (derived from its own tables
//! and registers) and what it observed:
//!
//! ```text
//! PITFALL <instruction> | <ring-0 expectation> | <observed>
//! ```
//!
//! Every cell of the table comes from those lines; this file adds only the
//! explanation of each row ([`explain`]) and whether Robin & Irvine list
//! the instruction as sensitive but unprivileged.

use crate::engine::Limits;
use crate::session::{self, Capture, EngineKind, RunConfig, TrapMode};
use std::fmt::Write as _;
use std::time::Duration;

/// The pitfall kernel, embedded so `bt86 pitfalls` and the no-argument
/// demo need no files.
pub static KERNEL: &[u8] = include_bytes!("../guest-images/bin/pitfalls.elf");

/// One check as the kernel printed it under one engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub instruction: String,
    pub expectation: String,
    pub observed: String,
}

impl Check {
    pub fn matches(&self) -> bool {
        self.observed == self.expectation
    }
}

/// What the table knows about an instruction besides what the kernel said.
pub struct Explanation {
    /// Sensitive but unprivileged (Robin & Irvine, USENIX Security 2000; IRET
    /// as some later lists add it): runs at CPL 1 without trapping.
    pub sensitive: bool,
    pub why: &'static str,
}

/// Why a row comes out as it does under trap-and-emulate, and how binary
/// translation fixes it; `None` for an instruction the kernel printed that
/// this table does not know.
pub fn explain(instruction: &str) -> Option<Explanation> {
    let (sensitive, why) = match instruction {
        "sgdt" => (true, "reads the real GDTR: the monitor's table (bt: a callout returns the guest's)"),
        "sidt" => (true, "reads the real IDTR: the monitor's table (bt: a callout returns the guest's)"),
        "sldt" => (true, "reads the real LDTR: the monitor's (bt: a callout returns the guest's)"),
        "str" => (true, "reads the real TR: the monitor's TSS (bt: a callout returns the guest's)"),
        "smsw" => (true, "reads the real CR0's low bits: the host's MP and NE (bt: the guest's CR0)"),
        "pushf" => (true, "pushes the real IF, always 1 under a monitor, and IOPL (bt: the virtual flags)"),
        "popf" => (true, "at CPL 1 > IOPL, POPF drops IF silently: the monitor never sees it (bt: emulated)"),
        "iret" => (true, "IRET at CPL 1 > IOPL cannot set IF either: ring 3 runs with interrupts off"),
        "push cs" => (true, "CS.RPL is the CPL: the guest kernel finds itself in ring 1 (bt: RPL 0)"),
        "mov ss" => (true, "SS.RPL is the CPL too: ring 1 shows (bt: RPL 0)"),
        "pop ds" => (true, "the SS pushed has RPL 1; the shadow's DPL-1 segment takes it, so DS shows ring 1"),
        "lar" => (true, "reads the monitor's shadow descriptor: DPL 0 compressed to 1 (bt: the guest's)"),
        "lsl" => (true, "reads the shadow's limit, cut below the monitor at 0xffc00000 (bt: the guest's)"),
        "verr" => (true, "DPL 0 compressed to 1 passes the check at CPL 1: compression hides this one"),
        "verw" => (true, "DPL 0 compressed to 1 passes the check at CPL 1: compression hides this one"),
        "call far" => (true, "the return CS pushed is the real one, RPL 1: the kernel finds itself in ring 1"),
        "jmp far" => (true, "a jump to conforming code keeps the real CPL, 1, in CS.RPL"),
        "ret far" => (true, "RETF to PUSH CS's RPL 1 is a same-level return into the DPL-1 shadow: hidden"),
        "int" => (true, "the shadow IDT leads into the monitor, which writes the frame ring 0 would: hidden"),
        "cli" => (false, "privileged: traps at CPL 1 and the monitor emulates it (trap-and-emulate works)"),
        "mov cr0" => (false, "privileged: traps at CPL 1 and the monitor emulates it (trap-and-emulate works)"),
        "in" => (false, "privileged at IOPL 0: traps and the monitor emulates it (trap-and-emulate works)"),
        _ => return None,
    };
    Some(Explanation { sensitive, why })
}

/// The engines the table is built from, in column order.
pub const ENGINES: &[EngineKind] = &[EngineKind::Trap(TrapMode::Real), EngineKind::Bt, EngineKind::Interp];

/// The column heading for an engine.
pub fn heading(e: EngineKind) -> &'static str {
    match e {
        EngineKind::Trap(TrapMode::Real) => "trap-and-emulate",
        EngineKind::Trap(TrapMode::Simulated) => "trap-and-emulate (simulated traps)",
        EngineKind::Bt => "bt",
        EngineKind::Interp => "interp",
    }
}

/// Parses the kernel's serial output into its checks.
pub fn parse(output: &str) -> Result<Vec<Check>, String> {
    let mut checks = Vec::new();
    for line in output.lines() {
        let Some(rest) = line.strip_prefix("PITFALL ") else { continue };
        let parts: Vec<&str> = rest.split(" | ").collect();
        let [instruction, expectation, observed] = parts[..] else {
            return Err(format!("malformed pitfall line: {line:?}"));
        };
        checks.push(Check {
            instruction: instruction.trim().to_string(),
            expectation: expectation.trim().to_string(),
            observed: observed.trim().to_string(),
        });
    }
    if !output.lines().any(|l| l.trim() == "pitfalls: done") {
        return Err("the pitfall kernel did not finish".into());
    }
    if checks.is_empty() {
        return Err("the pitfall kernel printed no checks".into());
    }
    Ok(checks)
}

/// Runs the pitfall kernel under `engine` and returns its checks.
pub fn run(engine: EngineKind) -> Result<Vec<Check>, String> {
    let cfg = RunConfig {
        engine,
        limits: Limits { max_insns: Some(2_000_000_000), timeout: Some(Duration::from_secs(60)), max_exceptions: None },
        ..RunConfig::default()
    };
    let cap = Capture::default();
    let m = session::boot("pitfalls.elf", KERNEL, &cfg, Box::new(cap.clone())).map_err(|e| e.to_string())?;
    let out = session::run(m, &cfg);
    if let Some(msg) = out.exit.message(&out.machine) {
        return Err(format!("{}: {msg}", engine.name()));
    }
    parse(&String::from_utf8_lossy(&cap.contents())).map_err(|e| format!("{}: {e}", engine.name()))
}

/// The table: one row per check, one column per engine (each `(engine,
/// checks)` as `run` returned them, all from the same kernel).
pub struct Table {
    pub columns: Vec<(EngineKind, Vec<Check>)>,
}

impl Table {
    /// The rows' instructions and ring-0 expectations, from the first
    /// column (every engine runs the same kernel, so they agree).
    fn rows(&self) -> Vec<(&str, &str)> {
        self.columns
            .first()
            .map(|(_, c)| c.iter().map(|c| (c.instruction.as_str(), c.expectation.as_str())).collect())
            .unwrap_or_default()
    }

    fn cell(&self, col: usize, row: usize) -> Option<&Check> {
        self.columns[col].1.get(row)
    }

    /// The table as text: an observed value marked `ok` where it matches
    /// ring 0 and `DIFFERS` where it does not.
    pub fn render(&self) -> String {
        let rows = self.rows();
        let mut header = vec!["instruction".to_string(), "ring-0 expectation".to_string()];
        header.extend(self.columns.iter().map(|(e, _)| heading(*e).to_string()));
        header.push("why (under trap-and-emulate)".into());
        let mut lines = vec![header];
        for (r, (insn, expect)) in rows.iter().enumerate() {
            let mut line = vec![insn.to_string(), expect.to_string()];
            for c in 0..self.columns.len() {
                line.push(match self.cell(c, r) {
                    Some(k) if k.matches() => format!("{}  ok", k.observed),
                    Some(k) => format!("{}  DIFFERS", k.observed),
                    None => "-".into(),
                });
            }
            line.push(explain(insn).map_or("(not explained)", |e| e.why).to_string());
            lines.push(line);
        }
        let cols = lines[0].len();
        let width: Vec<usize> =
            (0..cols).map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
        let mut s = String::new();
        for (n, l) in lines.iter().enumerate() {
            for (c, cell) in l.iter().enumerate() {
                if c + 1 == cols {
                    let _ = write!(s, "{cell}");
                } else {
                    let _ = write!(s, "{cell:<w$}  ", w = width[c]);
                }
            }
            s.push('\n');
            if n == 0 {
                s.push_str(&"-".repeat(width.iter().sum::<usize>() + 2 * (cols - 1)));
                s.push('\n');
            }
        }
        s
    }

    /// The table as JSON: `{"rows": [{"instruction", "expectation",
    /// "sensitive", "why", "engines": {name: {"observed", "matches"}}}]}`.
    pub fn json(&self) -> String {
        let rows = self.rows();
        let mut out = Vec::new();
        for (r, (insn, expect)) in rows.iter().enumerate() {
            let mut engines = serde_json::Map::new();
            for (c, (e, _)) in self.columns.iter().enumerate() {
                if let Some(k) = self.cell(c, r) {
                    engines.insert(
                        e.name().to_string(),
                        serde_json::json!({ "observed": k.observed, "matches": k.matches() }),
                    );
                }
            }
            let ex = explain(insn);
            out.push(serde_json::json!({
                "instruction": insn,
                "expectation": expect,
                "sensitive": ex.as_ref().map(|e| e.sensitive),
                "why": ex.as_ref().map(|e| e.why),
                "engines": engines,
            }));
        }
        serde_json::to_string_pretty(&serde_json::json!({ "rows": out })).unwrap_or_default()
    }

    /// Instructions whose rows differ between engine columns `a` and `b`
    /// (what the demo prints).
    pub fn differing(&self, a: usize, b: usize) -> Vec<(&Check, &Check)> {
        let (ca, cb) = (&self.columns[a].1, &self.columns[b].1);
        ca.iter().zip(cb).filter(|(x, y)| x.observed != y.observed).collect()
    }
}

/// The no-argument demo: the pitfall kernel under trap-and-emulate and
/// under the translator, the rows where they differ, and what agrees.
pub fn demo() -> Result<String, String> {
    let trap = EngineKind::Trap(TrapMode::Real);
    let full = Table { columns: vec![(trap, run(trap)?), (EngineKind::Bt, run(EngineKind::Bt)?)] };
    let (differ, same): (Vec<usize>, Vec<usize>) = (0..full.columns[0].1.len())
        .partition(|&r| full.differing(0, 1).iter().any(|(a, _)| *a == &full.columns[0].1[r]));
    let pick = |rows: &[usize], c: usize| rows.iter().filter_map(|&r| full.columns[c].1.get(r).cloned()).collect();
    let shown = Table { columns: vec![(trap, pick(&differ, 0)), (EngineKind::Bt, pick(&differ, 1))] };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "bt86: one guest kernel (guest-images/kernels/pitfalls.c) checks {} x86 instructions from ring 0,",
        full.columns[0].1.len()
    );
    let _ = writeln!(s, "bt86: once under classical trap-and-emulate (kernel deprivileged to ring 1, as before VT-x)");
    let _ = writeln!(
        s,
        "bt86: and once under binary translation. Where they differ:
"
    );
    s.push_str(&shown.render());
    let agree: Vec<&str> = same.iter().map(|&r| full.columns[0].1[r].instruction.as_str()).collect();
    let _ = writeln!(
        s,
        "
bt86: the same under both: {}",
        agree.join(", ")
    );
    let _ = writeln!(
        s,
        "bt86: `bt86 pitfalls` prints every row under every engine; docs/privilege-rings.md explains them."
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_and_rejects_malformed_or_unfinished_output() {
        let out = "pitfalls: hi\nPITFALL sgdt | base=0x1 limit=0x2 | base=0x1 limit=0x2\nPITFALL str | 0x0028 | 0x0060\npitfalls: done\n";
        let rows = parse(out).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].matches());
        assert!(!rows[1].matches());
        assert_eq!(rows[1].observed, "0x0060");
        assert!(parse("PITFALL sgdt | a\npitfalls: done\n").is_err());
        assert!(parse("PITFALL sgdt | a | a\n").is_err());
        assert!(parse("pitfalls: done\n").is_err());
    }

    #[test]
    fn renders_every_cell_and_valid_json() {
        let a = vec![Check { instruction: "sgdt".into(), expectation: "x".into(), observed: "y".into() }];
        let b = vec![Check { instruction: "sgdt".into(), expectation: "x".into(), observed: "x".into() }];
        let t = Table { columns: vec![(EngineKind::Trap(TrapMode::Real), a), (EngineKind::Bt, b)] };
        let text = t.render();
        assert!(text.contains("y  DIFFERS") && text.contains("x  ok"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&t.json()).unwrap();
        assert_eq!(v["rows"][0]["engines"]["trap"]["matches"], false);
        assert_eq!(v["rows"][0]["engines"]["bt"]["observed"], "x");
        assert_eq!(t.differing(0, 1).len(), 1);
    }
}
