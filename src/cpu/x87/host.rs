//! Runs one x87 instruction on the host's FPU with the guest's state
//! (the design is in `mod.rs`; the stub's code in `translator::x87`).
//!
//! Stubs live in a small executable buffer per thread (a W^X
//! `CodeBuffer`, the translation cache's kind of memory), one per
//! instruction form: iced `Code` and register operands, since every memory
//! operand is at `[rsi]`. This file holds the x87's one unsafe block, the
//! call into a stub.

use super::X87;
use crate::cpu::state::flags::{ARITH, FIXED1};
use crate::engine::bt::codebuf::CodeBuffer;
use iced_x86::{Code, Instruction, Register};
use std::cell::RefCell;
use std::collections::HashMap;

/// The largest memory operand a stub touches (an m80 real or BCD).
pub const OPERAND: usize = 10;

/// Bytes of stubs per thread: a stub is about 20 bytes, and there are a
/// few hundred x87 forms; when full, the buffer starts over.
const STUB_BYTES: usize = 64 << 10;

struct Stubs {
    buf: CodeBuffer,
    at: HashMap<(Code, Register, Register), usize>,
}

thread_local! {
    static STUBS: RefCell<Option<Stubs>> = const { RefCell::new(None) };
}

/// The stub for `i`, emitted on first use.
fn stub(s: &mut Stubs, i: &Instruction) -> Result<usize, String> {
    let key = (i.code(), i.op0_register(), i.op1_register());
    if let Some(&at) = s.at.get(&key) {
        return Ok(at);
    }
    let code = translator::x87::host_stub(i).ok_or_else(|| format!("cannot encode {:?} for the host", i.code()))?;
    let at = match s.buf.push(&code) {
        Some(at) => at,
        None => {
            s.buf.flush();
            s.at.clear();
            s.buf.push(&code).ok_or("x87 stub buffer too small")?
        }
    };
    s.at.insert(key, at);
    Ok(at)
}

/// Runs `i` on the host FPU loaded with `state`'s registers, control,
/// status and tag words, its memory operand (if any) in `operand`, and the
/// guest's arithmetic flags `eflags` (for FCMOVcc). Updates those parts of
/// `state` (not the instruction and data pointers: the caller sets them)
/// and returns the host's arithmetic flags after the instruction (for
/// FCOMI and friends).
///
/// The caller guarantees that no unmasked exception is pending in `state`
/// (`X87::pending`) when `i` is a waiting instruction, so the host does
/// not raise #MF.
pub fn run(state: &mut X87, i: &Instruction, operand: &mut [u8; OPERAND], eflags: u32) -> Result<u32, String> {
    if state.pending() {
        return Err("an x87 exception was pending when the host was to run an instruction".into());
    }
    let (fip, fcs, fop, fdp, fds) = (state.fip, state.fcs, state.fop, state.fdp, state.fds);
    let image = state as *mut X87 as *mut u8;
    let flags = STUBS.with(|cell| -> Result<u64, String> {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            let buf = CodeBuffer::new(STUB_BYTES).map_err(|e| format!("x87 stub buffer: {e}"))?;
            *cell = Some(Stubs { buf, at: HashMap::new() });
        }
        let s = cell.as_mut().ok_or("x87 stubs")?;
        let at = stub(s, i)?;
        if !s.buf.holds(at) {
            return Err("x87 stub outside its buffer".into());
        }
        // SAFETY: `at` is the start of a stub in `s.buf`'s executable
        // mapping (checked), emitted by `translator::x87::host_stub`: it
        // follows the System V ABI for `fn(image, operand, flags) ->
        // rflags`, touches no callee-saved register, loads RFLAGS from
        // `flags` with only the arithmetic flags and bit 1 set (no TF, DF
        // or AC), reads and writes 108 bytes at `image` (FRSTOR,
        // FNSAVE: `state`, an `X87`, which is exactly FNSAVE's 108-byte
        // image and is borrowed mutably for the call) and at most OPERAND bytes at
        // `operand` (the instruction's one memory operand, an m80 at most:
        // the caller's array of that size), and leaves the x87 initialised
        // (FNSAVE) as the ABI expects. No exception is pending in the image
        // when a waiting instruction runs (the caller's guarantee), so the
        // host FPU raises nothing.
        let rflags = unsafe {
            let f: extern "sysv64" fn(*mut u8, *mut u8, u64) -> u64 = std::mem::transmute(at);
            f(image, operand.as_mut_ptr(), u64::from((eflags & ARITH) | FIXED1))
        };
        Ok(rflags)
    })?;
    // The host's FNSAVE wrote the host's pointers: the guest's go back.
    (state.fip, state.fcs, state.fop, state.fdp, state.fds) = (fip, fcs, fop, fdp, fds);
    Ok(flags as u32 & ARITH)
}
