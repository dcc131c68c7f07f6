//! `--timeout` is honoured promptly whatever the guest runs. The guest
//! loops over `rep stosb` with ECX = 0xF0000000 from 2 MiB, so almost
//! every iteration stores past the end of RAM (dropped, element by
//! element: nothing runs them in bulk) and one instruction runs for
//! billions of iterations. bt86 must end it with status 12 (instruction,
//! exception or time limit) soon after the timeout, under every engine:
//! the host-time check cannot wait for a number of blocks, and no block
//! (nor REP) may run with an unbounded budget.
//!
//! The three engines run at once (the test takes about the timeout); the
//! bound on each is generous, for a debug build on a loaded machine.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn timeout_ends_a_rep_stosb_over_4_gib_under_every_engine() {
    // l: mov edi, 0x200000; mov ecx, 0xf0000000; cld; rep stosb; jmp l
    // (from above the code, up to 0xf0200000 without wrapping into it)
    let code = [0xbf, 0x00, 0x00, 0x20, 0x00, 0xb9, 0x00, 0x00, 0x00, 0xf0, 0xfc, 0xf3, 0xaa, 0xeb, 0xf1];
    let k = common::multiboot_kernel("timeout", &code);
    let start = Instant::now();
    let mut children: Vec<(&str, Child)> = ["interp", "bt", "trap"]
        .into_iter()
        .map(|engine| {
            let child = Command::new(env!("CARGO_BIN_EXE_bt86"))
                .args(["run", k.to_str().expect("path"), "--engine", engine, "--timeout", "2"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run bt86");
            (engine, child)
        })
        .collect();
    let bound = Duration::from_secs(30);
    let mut failures = Vec::new();
    for (engine, child) in children.iter_mut() {
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break Some(s);
            }
            if start.elapsed() > bound {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        match status {
            Some(s) if s.code() == Some(12) => {}
            Some(s) => failures.push(format!("{engine}: status {:?}", s.code())),
            None => failures.push(format!("{engine}: still running after {bound:?} (killed)")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
