//! The host side of COM1's receiver: what bt86 reads on its standard input
//! reaches the guest's serial port, as with `qemu-system-i386 -nographic`.
//!
//! ```text
//!   stdin ──► reader thread ──► Escape ──► channel ──► SerialInput ──► Uart
//!             (blocking read)   Ctrl-A x     (Input)   pending bytes,   RX FIFO,
//!                               Ctrl-A h               fed as the FIFO  at the run
//!                               Ctrl-A Ctrl-A          has room         loop's polls
//! ```
//!
//! The reader thread blocks in `read`; the run loop never does, except when
//! the guest CPU is halted: then it waits on the channel in host time (see
//! [`SerialInput::wait`]), so an idle guest at a shell prompt wakes on the
//! first key and its virtual clock does not race ahead of the person
//! typing. Bytes go into the UART no faster than its FIFO has room, so
//! none are lost to an overrun; like a real line, what arrives while the
//! guest resets its FIFO is lost (QEMU behaves the same).
//!
//! The escape character is QEMU's (Ctrl-A), on every kind of standard
//! input, as QEMU's stdio multiplexer does: `Ctrl-A x` ends the run,
//! `Ctrl-A h` prints the keys, `Ctrl-A Ctrl-A` sends one Ctrl-A to the
//! guest, and any other key after Ctrl-A is dropped.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

/// The escape character (Ctrl-A), as QEMU's.
pub const ESCAPE: u8 = 0x01;

/// How often (virtual ns) a running guest's serial input is looked at
/// while the console is open: 1 ms, so a key reaches a busy guest within
/// a millisecond of virtual time, 16 bytes (a FIFO) at a time.
pub const POLL_NS: u64 = 1_000_000;

/// What the escape decoder makes of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Bytes for the guest.
    Bytes(Vec<u8>),
    /// `Ctrl-A x`: end the run.
    Quit,
    /// `Ctrl-A h` (or `?`): show the escape keys.
    Help,
}

/// The escape keys, for `Ctrl-A h` (lines end in CR LF: the terminal may
/// be in raw mode).
pub const HELP: &str = "\r\nC-a h    print this help\r\nC-a x    exit bt86\r\nC-a C-a  send C-a to the guest\r\n";

/// Splits input into guest bytes and escape commands; an escape at the
/// end of one read is kept for the next.
#[derive(Debug, Default)]
pub struct Escape {
    armed: bool,
}

impl Escape {
    /// Decodes `bytes`, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Input> {
        let mut out = Vec::new();
        let mut run = Vec::new();
        for &b in bytes {
            if !std::mem::take(&mut self.armed) {
                if b == ESCAPE {
                    self.armed = true;
                } else {
                    run.push(b);
                }
                continue;
            }
            let command = match b {
                ESCAPE => {
                    run.push(ESCAPE);
                    continue;
                }
                b'x' | b'X' => Input::Quit,
                b'h' | b'H' | b'?' => Input::Help,
                _ => continue,
            };
            if !run.is_empty() {
                out.push(Input::Bytes(std::mem::take(&mut run)));
            }
            out.push(command);
        }
        if !run.is_empty() {
            out.push(Input::Bytes(run));
        }
        out
    }
}

/// Serial input for a [`super::Platform`]: what the reader thread sent
/// and the UART has not taken yet.
pub struct SerialInput {
    rx: Receiver<Input>,
    pending: VecDeque<u8>,
    /// The reader may still send (its input has not ended).
    open: bool,
    quit: bool,
}

impl SerialInput {
    /// Input read from `source` on a thread of its own, until it ends or
    /// fails (either closes the input; the guest runs on without it).
    pub fn spawn<R: Read + Send + 'static>(source: R) -> std::io::Result<SerialInput> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("bt86 serial input".into()).spawn(move || read_loop(source, &tx))?;
        Ok(SerialInput::from_channel(rx))
    }

    /// Input from a channel (the tests feed one directly).
    pub fn from_channel(rx: Receiver<Input>) -> SerialInput {
        SerialInput { rx, pending: VecDeque::new(), open: true, quit: false }
    }

    /// Takes what the reader sent since the last call.
    fn drain(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(i) => self.accept(i),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.open = false;
                    return;
                }
            }
        }
    }

    fn accept(&mut self, input: Input) {
        match input {
            Input::Bytes(b) => self.pending.extend(b),
            Input::Quit => self.quit = true,
            // The reader thread printed it.
            Input::Help => {}
        }
    }

    /// Up to `room` bytes for the UART, oldest first.
    pub fn take(&mut self, room: usize) -> Vec<u8> {
        self.drain();
        let n = room.min(self.pending.len());
        self.pending.drain(..n).collect()
    }

    /// Whether `Ctrl-A x` was typed.
    pub fn quit_requested(&self) -> bool {
        self.quit
    }

    /// Whether the run loop must keep looking: more may come, or bytes
    /// are waiting for room in the FIFO.
    pub fn polling(&self) -> bool {
        self.open || !self.pending.is_empty()
    }

    /// Whether more input may still come (a halted guest may be waiting
    /// for a key, so it is not halted for good).
    pub fn open(&self) -> bool {
        self.open
    }

    /// A halted guest waits up to `max` of host time for input. Returns
    /// how long it waited, or `None` at once when no input can come or
    /// some is already waiting for the UART.
    pub fn wait(&mut self, max: Duration) -> Option<Duration> {
        self.drain();
        if !self.open || !self.pending.is_empty() || self.quit {
            return None;
        }
        let start = Instant::now();
        match self.rx.recv_timeout(max) {
            Ok(i) => self.accept(i),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.open = false,
        }
        Some(start.elapsed().min(max))
    }
}

/// The reader thread: decode, print the help where asked, send the rest.
fn read_loop<R: Read>(mut source: R, tx: &Sender<Input>) {
    let mut escape = Escape::default();
    let mut buf = [0u8; 256];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        for input in escape.feed(&buf[..n]) {
            if input == Input::Help {
                eprint!("{HELP}");
            }
            let quit = input == Input::Quit;
            if tx.send(input).is_err() || quit {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_qemus() {
        let mut e = Escape::default();
        assert_eq!(e.feed(b"ls\r"), vec![Input::Bytes(b"ls\r".to_vec())]);
        assert_eq!(e.feed(b"a\x01\x01b"), vec![Input::Bytes(b"a\x01b".to_vec())]);
        assert_eq!(e.feed(b"a\x01hb"), vec![Input::Bytes(b"a".to_vec()), Input::Help, Input::Bytes(b"b".to_vec())]);
        // An unknown key after the escape is dropped with it.
        assert_eq!(e.feed(b"\x01zq"), vec![Input::Bytes(b"q".to_vec())]);
        // The escape may end one read and its key start the next.
        assert_eq!(e.feed(b"y\x01"), vec![Input::Bytes(b"y".to_vec())]);
        assert_eq!(e.feed(b"x"), vec![Input::Quit]);
    }

    #[test]
    fn bytes_wait_for_room_and_none_are_lost() {
        let (tx, rx) = mpsc::channel();
        let mut s = SerialInput::from_channel(rx);
        tx.send(Input::Bytes((0..40).collect())).unwrap();
        assert_eq!(s.take(16), (0..16).collect::<Vec<u8>>());
        assert_eq!(s.take(0), Vec::<u8>::new());
        assert_eq!(s.take(100), (16..40).collect::<Vec<u8>>());
        assert!(s.polling());
        drop(tx);
        assert_eq!(s.take(1), Vec::<u8>::new());
        assert!(!s.polling() && !s.open());
        assert_eq!(s.wait(Duration::from_secs(5)), None, "closed input is not waited for");
    }

    #[test]
    fn a_halted_wait_ends_at_the_first_input() {
        let (tx, rx) = mpsc::channel();
        let mut s = SerialInput::from_channel(rx);
        let waited = s.wait(Duration::from_millis(1)).expect("open input is waited for");
        assert!(waited <= Duration::from_millis(1));
        tx.send(Input::Bytes(vec![b'k'])).unwrap();
        // Bytes waiting for the UART: no wait.
        assert_eq!(s.wait(Duration::from_secs(60)), None);
        assert_eq!(s.take(16), vec![b'k']);
        tx.send(Input::Quit).unwrap();
        // A quit waiting is not waited past.
        assert_eq!(s.wait(Duration::from_secs(60)), None);
        assert!(s.quit_requested());
    }

    #[test]
    fn the_reader_thread_reads_to_the_end() {
        let mut s = SerialInput::spawn(std::io::Cursor::new(b"echo hi\r\x01\x01".to_vec())).unwrap();
        let mut got = Vec::new();
        while s.polling() {
            s.wait(Duration::from_millis(50));
            got.extend(s.take(16));
        }
        assert_eq!(got, b"echo hi\r\x01");
        assert!(!s.quit_requested());
    }
}
