//! Helpers shared by the translator's unit tests.

use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};

/// Host bytes (64-bit) as Intel syntax, instructions joined by "; ".
pub fn show(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut f = IntelFormatter::new();
    for i in Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE) {
        if !out.is_empty() {
            out.push_str("; ");
        }
        f.format(&i, &mut out);
    }
    out
}
