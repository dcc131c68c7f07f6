//! The fuzzer's bytes run as guest code under the binary translator
//! (`--engine bt`) and under the interpreter (`bt86::engine::guestcode`,
//! which describes the input layout). bt86 must not crash or hang on any
//! of them, and the translator must end every run exactly as the
//! interpreter does: the same exit, CPU state, retired count and RAM. A
//! difference panics, which libFuzzer reports as a crash and saves. See
//! docs/fuzzing.md.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = bt86::engine::guestcode::bt_matches_interp(data) {
        panic!("{e}");
    }
});
