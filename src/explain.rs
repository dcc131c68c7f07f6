//! `bt86 explain`: what the binary translator does with one guest block.
//!
//! ```text
//!   booted machine, EIP ─► bt::explain_block (decode as the interpreter
//!   cuts blocks, translate into a fresh code buffer)
//!        ─► guest listing: address, bytes, instruction, table decision,
//!                          how the translator translated it
//!        ─► host listing: the block's x86-64 code, with a comment where
//!                         each guest instruction's code starts
//! ```

use crate::engine::bt::{self, BlockExplanation};
use crate::machine::Machine;
use crate::memory::PhysAddr;
use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};
use std::fmt::Write as _;
use translator::table::classify_instruction;

/// The explanation of the block at `eip`, as text; `Err` is a one-line
/// reason the block cannot be explained.
pub fn explain(m: &mut Machine, eip: u32) -> Result<String, String> {
    let x = bt::explain_block(m, eip)?;
    Ok(render(m, &x))
}

fn formatter() -> IntelFormatter {
    let mut f = IntelFormatter::new();
    f.options_mut().set_first_operand_char_index(8);
    f.options_mut().set_hex_prefix("0x");
    f.options_mut().set_hex_suffix("");
    f.options_mut().set_space_after_operand_separator(true);
    f
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn text(f: &mut IntelFormatter, i: &Instruction) -> String {
    let mut s = String::new();
    f.format(i, &mut s);
    s
}

fn render(m: &Machine, x: &BlockExplanation) -> String {
    let mut f = formatter();
    let t = &x.translated;
    let first = x.insns[0].ip32();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "guest block at EIP {first:#010x} (physical {:#010x}): {} instruction{}, memory mode {:?}",
        x.phys,
        x.insns.len(),
        if x.insns.len() == 1 { "" } else { "s" },
        x.mode
    );
    let _ = writeln!(
        s,
        "host code: {} bytes at {:#x} in a fresh translation cache (runtime exit routine {:#x}, callout routine {:#x})",
        t.bytes.len(),
        x.entry,
        x.exit,
        x.callout
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "guest instructions (decision: classify_instruction; translated as: block::translate)");
    let _ = writeln!(
        s,
        "  {:<8}  {:<23} {:<32} {:<20} {:<4} {:<4} {:<4} translated as",
        "address", "bytes", "instruction", "class", "ends", "priv", "sens"
    );
    let guest_bytes = |i: &Instruction| {
        let at = x.phys.wrapping_add(i.ip32().wrapping_sub(first));
        m.ram.slice(PhysAddr(at), i.len()).map(hex).unwrap_or_default()
    };
    let yes = |b: bool| if b { "yes" } else { "-" };
    for (k, i) in x.insns.iter().enumerate() {
        let d = classify_instruction(i);
        let kind = t.kinds.get(k).map_or("(not reached: the block ended before it)".to_string(), |k| format!("{k:?}"));
        let _ = writeln!(
            s,
            "  {:08x}  {:<23} {:<32} {:<20} {:<4} {:<4} {:<4} {kind}",
            i.ip32(),
            guest_bytes(i),
            text(&mut f, i),
            format!("{:?}", d.class),
            yes(d.ends_block),
            yes(d.privileged),
            yes(d.sensitive),
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "host code (x86-64)");
    let mut host: Vec<Instruction> = Vec::new();
    let mut dec = Decoder::with_ip(64, &t.bytes, x.entry as u64, DecoderOptions::NONE);
    while dec.can_decode() {
        host.push(dec.decode());
    }
    // The guest instruction whose main-line code holds `off`, if any.
    let owner = |off: usize| (0..t.kinds.len()).find(|&k| t.starts[k] <= off && off < t.starts[k + 1]);
    let tail = t.starts.last().copied().unwrap_or(t.bytes.len());
    // Tail labels: where main-line branches into the tail land.
    let mut labels: Vec<(usize, String)> = Vec::new();
    for h in &host {
        let (off, target) = (h.ip() as usize - x.entry, h.near_branch_target() as usize);
        if !(x.entry + tail..x.entry + t.bytes.len()).contains(&target) || off >= tail {
            continue;
        }
        let label = match owner(off) {
            Some(k) => format!("slow path of guest {:08x}", x.insns[k].ip32()),
            None if off < t.starts[0] => "not enough budget: refund and leave".to_string(),
            None => continue,
        };
        if !labels.iter().any(|(o, _)| *o == target - x.entry) {
            labels.push((target - x.entry, label));
        }
    }
    for h in &host {
        let off = h.ip() as usize - x.entry;
        if off == 0 {
            let _ = writeln!(s, "  ; the indirect entry's miss: leave for the guest EIP in r9d");
        }
        if off == translator::block::INDIRECT_ENTRY {
            let _ = writeln!(s, "  ; indirect entry (from the indirect-branch cache): is r9d this block's EIP?");
        }
        if off == t.entry {
            let _ = writeln!(s, "  ; block entry: charge {} instructions against the budget", x.insns.len());
        }
        // Every guest instruction whose code starts here (a JMP the path
        // goes on through emits none, so it shares its offset).
        for k in (0..t.kinds.len()).filter(|&k| t.starts[k] == off) {
            let i = &x.insns[k];
            let _ = writeln!(s, "  ; guest {:08x}  {}  [{:?}]", i.ip32(), text(&mut f, i), t.kinds[k]);
        }
        if off == tail {
            let _ = writeln!(s, "  ; block tail: exits, out-of-line slow paths, budget refund");
        }
        for (_, l) in labels.iter().filter(|(o, _)| *o == off) {
            let _ = writeln!(s, "  ; {l}");
        }
        let bytes = &t.bytes[off..off + h.len()];
        let mut line = format!("  {:012x}  {:<33} {}", h.ip(), hex(bytes), text(&mut f, h));
        let target = h.near_branch_target() as usize;
        let imm =
            (h.op_count() == 2 && h.op1_kind() == iced_x86::OpKind::Immediate64).then(|| h.immediate64() as usize);
        let note = if target == x.exit || imm == Some(x.exit) {
            Some("runtime exit routine".to_string())
        } else if target == x.callout || imm == Some(x.callout) {
            Some("runtime callout routine".to_string())
        } else if target != 0 && (x.entry..x.entry + t.bytes.len()).contains(&target) {
            Some(format!("block+{:#x}", target - x.entry))
        } else if imm.is_some() && off < tail && owner(off).is_some() {
            Some("the callout's argument: the decoded guest instruction".to_string())
        } else {
            None
        };
        if let Some(n) = note {
            let _ = write!(line, "    ; {n}");
        }
        let _ = writeln!(s, "{line}");
    }
    s
}
