//! The serial console: `bt86 run`'s standard input feeds COM1's receiver.
//!
//! Two small guests echo what they receive, upper-cased, and exit through
//! isa-debug-exit (status 33) at a '.': one polls the line status register
//! (the guest is running when input arrives), one sleeps in HLT with every
//! timer masked and takes IRQ 4 (the guest is halted, and only the open
//! console can wake it). The expected output is the input upper-cased, by
//! reasoning, and QEMU's with the same input on its stdin. A pseudo-
//! terminal (util-linux `script`) checks raw mode and its restoration, and
//! the Debian kernel, when fetched, gives a shell a person can type into.

mod common;

use common::{debian_kernel, multiboot_kernel, qemu_available, KERNEL_ENTRY};
use iced_x86::code_asm::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const COM1: u16 = 0x3f8;
/// isa-debug-exit value: status (0x10 << 1) | 1.
const EXIT_VALUE: i32 = 0x10;
const EXIT_STATUS: i32 = 33;

/// Reads LSR until data is ready, then RBR into AL.
fn read_byte(a: &mut CodeAssembler, wait: CodeLabel) -> Result<(), IcedError> {
    a.mov(dx, (COM1 + 5) as u32)?;
    a.in_(al, dx)?;
    a.test(al, 1)?;
    a.jz(wait)?;
    a.mov(dx, COM1 as u32)?;
    a.in_(al, dx)
}

/// AL: exit at '.', else upper-case it and send it.
fn echo_byte(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut send = a.create_label();
    let mut go_on = a.create_label();
    a.cmp(al, b'.' as i32)?;
    a.jne(go_on)?;
    a.mov(al, EXIT_VALUE)?;
    a.out(0xf4, al)?;
    a.set_label(&mut go_on)?;
    a.cmp(al, b'a' as i32)?;
    a.jb(send)?;
    a.cmp(al, b'z' as i32)?;
    a.ja(send)?;
    a.sub(al, 0x20)?;
    a.set_label(&mut send)?;
    a.mov(dx, COM1 as u32)?;
    a.out(dx, al)
}

/// Polls COM1 forever.
fn polling_echo() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut top = a.create_label();
    a.set_label(&mut top)?;
    read_byte(&mut a, top)?;
    echo_byte(&mut a)?;
    a.jmp(top)?;
    a.assemble(u64::from(KERNEL_ENTRY))
}

/// Where the interrupt-driven guest's IRQ 4 handler starts.
const HANDLER: u32 = KERNEL_ENTRY + 0x200;
const IDT: u32 = 0x20_0000;
const IDTR: u32 = 0x20_1000;
/// The PIC's master vector base (reprogrammed by the guest).
const VECTOR_BASE: u32 = 0x20;

/// Masks everything but IRQ 4, enables COM1's receive interrupt, and
/// sleeps; the handler echoes every byte the FIFO holds.
fn interrupt_echo() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    a.mov(esp, 0x9_0000u32)?;
    let gate = IDT + (VECTOR_BASE + 4) * 8;
    a.mov(eax, HANDLER)?;
    a.mov(word_ptr(gate), ax)?;
    a.mov(cx, cs)?;
    a.mov(word_ptr(gate + 2), cx)?;
    a.mov(word_ptr(gate + 4), 0x8e00u32)?;
    a.shr(eax, 16)?;
    a.mov(word_ptr(gate + 6), ax)?;
    a.mov(word_ptr(IDTR), 0x7ffu32)?;
    a.mov(dword_ptr(IDTR + 2), IDT)?;
    a.lidt(ptr(IDTR))?;
    // Both PICs initialised anew; only IRQ 4 unmasked (the PIT's IRQ 0
    // too is masked, so no timer can wake the CPU).
    for (port, v) in [(0x20, 0x11), (0x21, VECTOR_BASE), (0x21, 4), (0x21, 1), (0x21, 0xef)] {
        a.mov(al, v)?;
        a.out(port, al)?;
    }
    for (port, v) in [(0xa0, 0x11), (0xa1, 0x28), (0xa1, 2), (0xa1, 1), (0xa1, 0xff)] {
        a.mov(al, v)?;
        a.out(port, al)?;
    }
    // COM1: IER = received data available; MCR = DTR | RTS | OUT2.
    a.mov(dx, (COM1 + 1) as u32)?;
    a.mov(al, 1)?;
    a.out(dx, al)?;
    a.mov(dx, (COM1 + 4) as u32)?;
    a.mov(al, 0x0b)?;
    a.out(dx, al)?;
    a.sti()?;
    let mut sleep = a.create_label();
    a.set_label(&mut sleep)?;
    a.hlt()?;
    a.jmp(sleep)?;
    let mut main = a.assemble(u64::from(KERNEL_ENTRY))?;
    assert!(main.len() <= (HANDLER - KERNEL_ENTRY) as usize);
    main.resize((HANDLER - KERNEL_ENTRY) as usize, 0x90);

    let mut h = CodeAssembler::new(32)?;
    let mut more = h.create_label();
    let mut done = h.create_label();
    h.push(eax)?;
    h.push(edx)?;
    h.set_label(&mut more)?;
    read_byte(&mut h, done)?;
    echo_byte(&mut h)?;
    h.jmp(more)?;
    h.set_label(&mut done)?;
    h.mov(al, 0x20)?;
    h.out(0x20, al)?;
    h.pop(edx)?;
    h.pop(eax)?;
    h.iretd()?;
    main.extend(h.assemble(u64::from(HANDLER))?);
    Ok(main)
}

/// A child whose stdout is collected by a thread, so the test can wait
/// for text while the child runs.
struct Running {
    child: Child,
    out: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let mut stdout = child.stdout.take().unwrap();
        let (tx, out) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Running { child, out, seen: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(bytes).expect("write to the child");
        stdin.flush().expect("flush");
    }

    /// Waits until the output holds `text`; panics with what came after
    /// `limit`.
    fn expect(&mut self, text: &str, limit: Duration) {
        let start = Instant::now();
        while !String::from_utf8_lossy(&self.seen).contains(text) {
            let left = limit.checked_sub(start.elapsed()).unwrap_or_else(|| {
                panic!("no {text:?} after {limit:?}; output so far:\n{}", String::from_utf8_lossy(&self.seen))
            });
            if let Ok(b) = self.out.recv_timeout(left.min(Duration::from_millis(200))) {
                self.seen.extend(b);
            }
        }
    }

    /// Closes stdin and waits: the whole output, the status and stderr.
    fn finish(mut self, limit: Duration) -> (Vec<u8>, i32, String) {
        drop(self.child.stdin.take());
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("still running after {limit:?}; output:\n{}", String::from_utf8_lossy(&self.seen));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(b) = self.out.recv_timeout(Duration::from_secs(5)) {
            self.seen.extend(b);
        }
        let mut err = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut err).expect("stderr");
        (self.seen, status.code().unwrap_or(-1), err)
    }
}

fn bt86(kernel: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bt86"));
    c.arg("run").arg(kernel).args(args);
    c
}

const ENGINES: [&str; 3] = ["interp", "bt", "trap"];

/// Everything at once on a pipe that then closes: every byte still
/// reaches the guest, in order.
fn piped_all_at_once(kernel: &Path, label: &str) {
    let input = b"hello, console 1234 abc\x01\x01z.";
    // Ctrl-A Ctrl-A sends one Ctrl-A; the guest echoes it unchanged.
    let want = b"HELLO, CONSOLE 1234 ABC\x01Z";
    for engine in ENGINES {
        let mut r = Running::spawn(&mut bt86(kernel, &["--engine", engine, "--timeout", "60"]));
        r.send(input);
        let (out, status, err) = r.finish(Duration::from_secs(90));
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(want), "{label} under {engine}: {err}");
        assert_eq!(status, EXIT_STATUS, "{label} under {engine}: {err}");
    }
    if qemu_available() {
        let mut r = Running::spawn(
            Command::new("timeout")
                .args(["60", "qemu-system-i386", "-kernel"])
                .arg(kernel)
                .args(["-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"])
                .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-m", "128"]),
        );
        // QEMU reads its stdin only once the guest runs, and takes one
        // byte per free FIFO slot, as bt86 does: the same bytes arrive.
        r.send(b"hello, console 1234 abc.");
        let (out, status, _) = r.finish(Duration::from_secs(90));
        assert_eq!(String::from_utf8_lossy(&out), "HELLO, CONSOLE 1234 ABC", "{label} under QEMU");
        assert_eq!(status, EXIT_STATUS, "{label} under QEMU");
    }
}

#[test]
fn a_polling_guest_reads_what_stdin_sends() {
    let kernel = multiboot_kernel("console-poll", &polling_echo().unwrap());
    piped_all_at_once(&kernel, "polling echo");
}

#[test]
fn a_halted_guest_wakes_on_console_input() {
    let kernel = multiboot_kernel("console-irq", &interrupt_echo().unwrap());
    piped_all_at_once(&kernel, "interrupt echo");
}

/// A person types, waits for the answer, types again: the guest sleeps in
/// HLT in between, with no timer, and must not be declared halted for
/// good while the console is open.
#[test]
fn typing_waits_for_answers_then_the_escape_quits() {
    let kernel = multiboot_kernel("console-typing", &interrupt_echo().unwrap());
    for engine in ENGINES {
        let mut r = Running::spawn(&mut bt86(&kernel, &["--engine", engine, "--timeout", "60"]));
        r.send(b"first");
        r.expect("FIRST", Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(300));
        r.send(b" second");
        r.expect("FIRST SECOND", Duration::from_secs(30));
        r.send(b"\x01x");
        let (out, status, err) = r.finish(Duration::from_secs(30));
        assert_eq!(out, b"FIRST SECOND", "{engine}");
        assert_eq!(status, 0, "{engine}: Ctrl-A x ends the run with status 0, as QEMU's: {err}");
        assert!(err.contains("terminated from the console (Ctrl-A x)"), "{engine}: {err}");
    }
}

/// With the console closed (stdin at its end) the same sleeping guest can
/// never wake: bt86 says so, as before there was a console.
#[test]
fn with_stdin_closed_a_guest_halted_with_timers_masked_stops() {
    let kernel = multiboot_kernel("console-closed", &interrupt_echo().unwrap());
    let out = bt86(&kernel, &["--timeout", "60"]).stdin(Stdio::null()).output().expect("run bt86");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{err}");
    assert!(err.contains("it can never wake up"), "{err}");
}

/// util-linux `script`, which runs a command on a new pseudo-terminal.
fn script_available(test: &str) -> bool {
    let ok = Command::new("script").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        println!("{test}: NOT RUN: util-linux `script` is not installed (no pseudo-terminal to test raw mode on)");
        eprintln!("{test}: NOT RUN: util-linux `script` is not installed (no pseudo-terminal to test raw mode on)");
    }
    ok
}

/// On a terminal: raw mode (Ctrl-C and Ctrl-\ reach the guest rather
/// than killing bt86, nothing is echoed locally, no line buffering), and
/// the terminal as it was once bt86 has gone.
#[test]
fn on_a_terminal_keys_go_raw_to_the_guest_and_the_mode_is_restored() {
    let test = "on_a_terminal_keys_go_raw_to_the_guest";
    if !script_available(test) {
        return;
    }
    let kernel = multiboot_kernel("console-tty", &polling_echo().unwrap());
    let inner = format!(
        "stty -a | grep -o -- '-\\?icanon'; {} run {} --timeout 60; echo \"status=$?\"; stty -a | grep -o -- '-\\?icanon'",
        env!("CARGO_BIN_EXE_bt86"),
        kernel.display()
    );
    let mut r = Running::spawn(Command::new("script").args(["-qfec", &inner, "/dev/null"]));
    r.expect("Ctrl-A x quits", Duration::from_secs(30));
    // Ctrl-C (ETX) and Ctrl-\ (FS) are not signals in raw mode, and 'q'
    // arrives without a newline.
    r.send(b"q\x03\x1cw");
    r.expect("Q\x03\x1cW", Duration::from_secs(30));
    r.send(b".");
    let (out, status, _) = r.finish(Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    assert_eq!(status, 0, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"icanon"), "the pseudo-terminal starts cooked: {text}");
    assert!(!text.contains("q\x03"), "no local echo in raw mode: {text}");
    assert!(text.contains(&format!("status={EXIT_STATUS}")), "{text}");
    assert_eq!(lines.last(), Some(&"icanon"), "restored after the run: {text}");
}

/// The Debian kernel with busybox's shell as its first process, on COM1:
/// type a command, read its answer, quit with the escape.
#[test]
fn a_linux_shell_on_the_console() {
    let Some((kernel, initrd)) = debian_kernel("a_linux_shell_on_the_console") else { return };
    let i = initrd.display().to_string();
    let append = "console=ttyS0 quiet rdinit=/bin/sh";
    let mut r = Running::spawn(&mut bt86(
        &kernel,
        &["--engine", "bt", "--initrd", &i, "--append", append, "-m", "128M", "--timeout", "300"],
    ));
    r.expect("/ # ", Duration::from_secs(240));
    // Enter is CR on a terminal; the guest's tty turns it into a newline.
    r.send(b"echo \"answer=$((6 * 7))\"; echo \"pid=$$\"\r");
    r.expect("answer=42", Duration::from_secs(60));
    r.expect("pid=1", Duration::from_secs(60));
    r.send(b"\x01x");
    let (_, status, err) = r.finish(Duration::from_secs(60));
    assert_eq!(status, 0, "{err}");
    assert!(err.contains("terminated from the console"), "{err}");
}
