//! What a translation covers: a path through decoded blocks of the page
//! it starts in (`path`, choosing the way at each branch with
//! `successor`), or one instruction that runs off the end of its page
//! (`straddler`).

use super::Mode;
use crate::engine::interp::cache::{Block, BlockKey};
use crate::engine::interp::Interp;
use crate::machine::Machine;
use crate::memory::{Access, LinAddr};
use iced_x86::{FlowControl, Instruction, OpKind};
use std::rc::Rc;
use translator::block::GuestInsn;

/// A translation is a path through up to this many decoded blocks of the
/// page it starts in (`successor` picks the way at each branch, `path`
/// builds it): a
/// loop whose body the interpreter cuts in two then charges its budget
/// and jumps once per iteration, and a jump back to a loop's head (an
/// interpreter's dispatch, say) runs on into it, leaving by side exits
/// where the path's branches go the other way.
const MAX_JOINED: usize = 4;
/// ... and up to this many guest instructions.
const MAX_JOINED_INSNS: usize = 48;

/// The guest path a translation starting at `key` covers (see
/// `MAX_JOINED`): its instructions, with the decoded blocks they point
/// into (the translation keeps those alive for its callouts).
pub(super) fn path(
    interp: &mut Interp,
    m: &mut Machine,
    key: BlockKey,
    mode: Mode,
) -> Option<(Vec<GuestInsn>, Vec<Rc<Block>>)> {
    let block = interp.decoded_block(m, key)?;
    let mut insns: Vec<GuestInsn> =
        block.insns.iter().map(|d| GuestInsn { insn: d.insn, arg: d as *const _ as u64, wraps: false }).collect();
    let mut blocks = vec![block];
    // Flat segments only: there a CS limit never falls inside a page.
    // `starts`: the blocks of the path since it last left its start.
    let mut starts = vec![key.eip];
    while !matches!(mode, Mode::Other { .. }) && blocks.len() < MAX_JOINED && insns.len() < MAX_JOINED_INSNS {
        let Some(next) = successor(&insns[insns.len() - 1].insn, key.eip) else { break };
        // In the same page (translations are dropped by the page they
        // start in).
        if next >> 12 != key.eip >> 12 {
            break;
        }
        if next == key.eip {
            // Back at the start: a loop. The path runs it again
            // (unrolled) only if a whole second copy fits, so that
            // the translation still ends at its own start.
            if 2 * blocks.len() > MAX_JOINED || 2 * insns.len() > MAX_JOINED_INSNS {
                break;
            }
            starts.clear();
        } else if starts.contains(&next) {
            // A loop that does not pass through the start.
            break;
        }
        let phys = key.phys.wrapping_add(next.wrapping_sub(key.eip));
        let Some(b) = interp.decoded_block(m, BlockKey { phys, eip: next, code32: key.code32 }) else { break };
        if b.insns.iter().any(|d| d.insn.is_invalid()) {
            break;
        }
        insns.extend(b.insns.iter().map(|d| GuestInsn { insn: d.insn, arg: d as *const _ as u64, wraps: false }));
        blocks.push(b);
        starts.push(next);
    }
    Some((insns, blocks))
}

/// An instruction that runs off the end of its page, as a translation of
/// its own. The decode cache holds only what lies within one page, so the
/// interpreter fetches and decodes such an instruction at every execution
/// (a hot one in a loop made a held-out program 14x slower than native).
/// Its bytes come from the two physical pages as they are mapped now; the
/// second page is returned, and the translation is kept for writes to
/// either page (`Bt::translate`) and, with paging on, entered only by the
/// dispatcher, which checks that the second page still maps there
/// (`Bt::try_run`). `None` where the interpreter must decide (the second
/// page faults or is not RAM, the segments are not flat).
pub(super) fn straddler(m: &mut Machine, key: BlockKey, mode: Mode) -> Option<(Vec<GuestInsn>, Vec<Rc<Block>>, u32)> {
    if matches!(mode, Mode::Other { .. }) {
        return None;
    }
    let next = second_page(m, key.eip)?;
    let first = 0x1000 - (key.phys & 0xfff) as usize;
    if first >= 15 {
        return None;
    }
    let mut bytes = [0u8; 15];
    bytes[..first].copy_from_slice(m.ram.slice(crate::memory::PhysAddr(key.phys), first)?);
    bytes[first..].copy_from_slice(m.ram.slice(crate::memory::PhysAddr(next), 15 - first)?);
    let block = crate::engine::interp::cache::DecodeCache::single(key, &bytes, m.monitor.is_some())?;
    m.mmu.mark_code(key.phys >> 12);
    m.mmu.mark_code(next >> 12);
    let insns =
        block.insns.iter().map(|d| GuestInsn { insn: d.insn, arg: d as *const _ as u64, wraps: false }).collect();
    Some((insns, vec![block], next))
}

/// The physical address of the page after the one `eip` is in (flat
/// segments: EIP is the linear address), fetched as the CPU would.
pub(super) fn second_page(m: &mut Machine, eip: u32) -> Option<u32> {
    let next = LinAddr((eip | 0xfff).wrapping_add(1));
    let who = m.privilege();
    m.mmu.translate(&m.cpu, &mut m.ram, next, Access::Fetch, who).ok().map(|p| p.0)
}

/// Where a path that starts at `start` goes on after a decoded block that
/// ends with `last`, if it goes on: a direct JMP at its target; a Jcc at
/// the side it likely takes — back to the path's start when one side goes
/// there (the loop the path is in: a compiler's `while (a[i] == b[i])
/// i++;` falls through to the loop's head and branches backwards out of
/// it), back to its target when it branches backwards (a loop), on
/// through its fall-through when it branches forwards (the static rule
/// CPUs follow for a branch they have no history of). `path` decides
/// whether the block there joins (same page, a loop unrolled only whole).
fn successor(last: &Instruction, start: u32) -> Option<u32> {
    let direct = matches!(last.op0_kind(), OpKind::NearBranch32 | OpKind::NearBranch16);
    let target = last.near_branch_target() as u32;
    if direct && last.flow_control() == FlowControl::UnconditionalBranch {
        return Some(target);
    }
    if !last.is_jcc_short_or_near() || last.condition_code() == iced_x86::ConditionCode::None {
        return None;
    }
    let fall = last.next_ip32();
    Some(if fall == start {
        fall
    } else if target <= last.ip32() {
        target
    } else {
        fall
    })
}

#[cfg(test)]
mod tests {
    use super::successor;
    use iced_x86::{Decoder, DecoderOptions};

    fn at(ip: u32, bytes: &[u8]) -> iced_x86::Instruction {
        Decoder::with_ip(32, bytes, u64::from(ip), DecoderOptions::NONE).decode()
    }

    #[test]
    fn a_jcc_goes_on_back_to_the_start_then_backwards_then_through() {
        // jne 0x1000 at 0x1010 (backwards): its target, a loop.
        let back = at(0x1010, &[0x75, 0xee]);
        assert_eq!(successor(&back, 0x2000), Some(0x1000));
        // jne 0x1020 at 0x1010 (forwards): its fall-through.
        let fwd = at(0x1010, &[0x75, 0x0e]);
        assert_eq!(successor(&fwd, 0x2000), Some(0x1012));
        // The same backward jne when its fall-through is the path's start
        // (the loop's head, `while (a[i] == b[i]) i++;`): the start.
        assert_eq!(successor(&back, 0x1012), Some(0x1012));
        // jmp 0x1000: its target; ret: nowhere.
        assert_eq!(successor(&at(0x1010, &[0xeb, 0xee]), 0x1012), Some(0x1000));
        assert_eq!(successor(&at(0x1010, &[0xc3]), 0x1012), None);
    }
}
