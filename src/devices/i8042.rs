//! The i8042 keyboard controller at 0x60 (data) / 0x64 (status/command),
//! with a minimal keyboard behind it and no mouse.
//!
//! Enough for kernels that probe it and for the classic reset: the status
//! register never reports "input buffer full" (commands complete at once),
//! replies queue in the output buffer (OBF, IRQ 1 when the command byte
//! enables it), and command 0xFE — any 0xF0–0xFF pulse with bit 0 clear —
//! or an output-port write with bit 0 clear asks for a system reset.
//! Commands as in the IBM PC/AT technical reference and QEMU's pckbd.c.

use super::{IoSize, PioDevice};
use std::collections::VecDeque;

const DATA_PORT: u16 = 0x60;
const STATUS_PORT: u16 = 0x64;

// Status register.
const STATUS_OBF: u8 = 0x01;
const STATUS_SYS: u8 = 0x04;
const STATUS_CMD: u8 = 0x08;
const STATUS_UNLOCKED: u8 = 0x10;

// Command byte.
const CB_KBD_INT: u8 = 0x01;
const CB_SYS: u8 = 0x04;
const CB_KBD_DISABLE: u8 = 0x10;
const CB_AUX_DISABLE: u8 = 0x20;
const CB_XLATE: u8 = 0x40;
/// Keyboard interrupt on, system flag, mouse off, translation on.
const CB_DEFAULT: u8 = CB_KBD_INT | CB_SYS | CB_AUX_DISABLE | CB_XLATE;

// Controller commands (port 0x64).
const CMD_READ_CB: u8 = 0x20;
const CMD_WRITE_CB: u8 = 0x60;
const CMD_AUX_DISABLE: u8 = 0xa7;
const CMD_AUX_ENABLE: u8 = 0xa8;
const CMD_AUX_TEST: u8 = 0xa9;
const CMD_SELF_TEST: u8 = 0xaa;
const CMD_KBD_TEST: u8 = 0xab;
const CMD_KBD_DISABLE: u8 = 0xad;
const CMD_KBD_ENABLE: u8 = 0xae;
const CMD_READ_INPUT: u8 = 0xc0;
const CMD_READ_OUTPUT: u8 = 0xd0;
const CMD_WRITE_OUTPUT: u8 = 0xd1;
const CMD_WRITE_KBD_OBUF: u8 = 0xd2;
const CMD_WRITE_AUX_OBUF: u8 = 0xd3;
const CMD_WRITE_AUX: u8 = 0xd4;
const CMD_A20_DISABLE: u8 = 0xdd;
const CMD_A20_ENABLE: u8 = 0xdf;
const CMD_PULSE_FIRST: u8 = 0xf0;

const SELF_TEST_OK: u8 = 0x55;
const INTERFACE_TEST_OK: u8 = 0x00;
// Output port: bit 0 = not reset, bit 1 = A20.
const OUTPORT_RESET_BIT: u8 = 0x01;
const OUTPORT_A20_BIT: u8 = 0x02;
const OUTPORT_DEFAULT: u8 = OUTPORT_RESET_BIT | OUTPORT_A20_BIT;

// Keyboard commands and replies.
const KBD_ACK: u8 = 0xfa;
const KBD_RESEND: u8 = 0xfe;
const KBD_BAT_OK: u8 = 0xaa;
const KBD_ECHO: u8 = 0xee;
const KBD_CMD_SET_LEDS: u8 = 0xed;
const KBD_CMD_SCANCODE: u8 = 0xf0;
const KBD_CMD_IDENTIFY: u8 = 0xf2;
const KBD_CMD_TYPEMATIC: u8 = 0xf3;
const KBD_CMD_RESET: u8 = 0xff;
const OBUF_LIMIT: usize = 16;

/// What the next byte written to port 0x60 is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DataTarget {
    Keyboard,
    KeyboardArgument,
    CommandByte,
    OutputPort,
    KbdOutputBuffer,
    AuxOutputBuffer,
    Aux,
}

/// The controller and its keyboard.
#[derive(Debug)]
pub struct I8042 {
    obuf: VecDeque<u8>,
    last_read: u8,
    command_byte: u8,
    output_port: u8,
    status_flags: u8,
    target: DataTarget,
    reset_requested: bool,
}

impl Default for I8042 {
    fn default() -> Self {
        I8042 {
            obuf: VecDeque::new(),
            last_read: 0,
            command_byte: CB_DEFAULT,
            output_port: OUTPORT_DEFAULT,
            status_flags: STATUS_UNLOCKED | STATUS_SYS,
            target: DataTarget::Keyboard,
            reset_requested: false,
        }
    }
}

impl I8042 {
    /// Takes a pending reset request (command 0xFE or output port bit 0).
    pub fn take_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset_requested)
    }

    /// IRQ 1: a byte is waiting and the command byte enables the interrupt.
    pub fn irq_line(&self) -> bool {
        !self.obuf.is_empty() && self.command_byte & CB_KBD_INT != 0
    }

    /// Whether the A20 gate (output port bit 1) is enabled.
    pub fn a20(&self) -> bool {
        self.output_port & OUTPORT_A20_BIT != 0
    }

    fn reply(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.obuf.len() < OBUF_LIMIT {
                self.obuf.push_back(b);
            }
        }
    }

    fn status(&self) -> u8 {
        let obf = if self.obuf.is_empty() { 0 } else { STATUS_OBF };
        self.status_flags | obf
    }

    fn write_output_port(&mut self, v: u8) {
        self.output_port = v;
        if v & OUTPORT_RESET_BIT == 0 {
            self.reset_requested = true;
        }
    }

    fn command(&mut self, cmd: u8) {
        self.status_flags |= STATUS_CMD;
        self.target = DataTarget::Keyboard;
        match cmd {
            CMD_READ_CB => self.reply(&[self.command_byte]),
            CMD_WRITE_CB => self.target = DataTarget::CommandByte,
            CMD_AUX_DISABLE => self.command_byte |= CB_AUX_DISABLE,
            CMD_AUX_ENABLE => self.command_byte &= !CB_AUX_DISABLE,
            CMD_AUX_TEST | CMD_KBD_TEST => self.reply(&[INTERFACE_TEST_OK]),
            CMD_SELF_TEST => {
                self.status_flags |= STATUS_SYS;
                self.reply(&[SELF_TEST_OK]);
            }
            CMD_KBD_DISABLE => self.command_byte |= CB_KBD_DISABLE,
            CMD_KBD_ENABLE => self.command_byte &= !CB_KBD_DISABLE,
            CMD_READ_INPUT => self.reply(&[0x80]), // keyboard not inhibited
            CMD_READ_OUTPUT => self.reply(&[self.output_port]),
            CMD_WRITE_OUTPUT => self.target = DataTarget::OutputPort,
            CMD_WRITE_KBD_OBUF => self.target = DataTarget::KbdOutputBuffer,
            CMD_WRITE_AUX_OBUF => self.target = DataTarget::AuxOutputBuffer,
            CMD_WRITE_AUX => self.target = DataTarget::Aux,
            CMD_A20_DISABLE => self.output_port &= !OUTPORT_A20_BIT,
            CMD_A20_ENABLE => self.output_port |= OUTPORT_A20_BIT,
            CMD_PULSE_FIRST..=0xff if cmd & OUTPORT_RESET_BIT == 0 => self.reset_requested = true,
            _ => {}
        }
    }

    fn keyboard_command(&mut self, cmd: u8) {
        match cmd {
            KBD_CMD_RESET => self.reply(&[KBD_ACK, KBD_BAT_OK]),
            KBD_ECHO => self.reply(&[KBD_ECHO]),
            KBD_CMD_IDENTIFY => {
                let id = if self.command_byte & CB_XLATE != 0 { 0x41 } else { 0x83 };
                self.reply(&[KBD_ACK, 0xab, id]);
            }
            KBD_CMD_SET_LEDS | KBD_CMD_SCANCODE | KBD_CMD_TYPEMATIC => {
                self.reply(&[KBD_ACK]);
                self.target = DataTarget::KeyboardArgument;
            }
            0xf4..=0xfe => self.reply(&[KBD_ACK]),
            _ => self.reply(&[KBD_RESEND]),
        }
    }

    fn write_data(&mut self, v: u8) {
        self.status_flags &= !STATUS_CMD;
        let target = std::mem::replace(&mut self.target, DataTarget::Keyboard);
        match target {
            DataTarget::Keyboard => self.keyboard_command(v),
            DataTarget::KeyboardArgument => self.reply(&[KBD_ACK]),
            DataTarget::CommandByte => {
                self.command_byte = v;
                self.status_flags = (self.status_flags & !STATUS_SYS) | (v & CB_SYS);
            }
            DataTarget::OutputPort => self.write_output_port(v),
            DataTarget::KbdOutputBuffer | DataTarget::AuxOutputBuffer => self.reply(&[v]),
            DataTarget::Aux => {} // no mouse: the byte is dropped
        }
    }
}

impl PioDevice for I8042 {
    fn name(&self) -> &'static str {
        "i8042"
    }

    fn ports(&self) -> &'static [(u16, u16)] {
        &[(DATA_PORT, DATA_PORT), (STATUS_PORT, STATUS_PORT)]
    }

    fn read(&mut self, port: u16, _size: IoSize, _now: u64) -> u32 {
        let v = match port {
            DATA_PORT => {
                if let Some(b) = self.obuf.pop_front() {
                    self.last_read = b;
                }
                self.last_read
            }
            _ => self.status(),
        };
        u32::from(v)
    }

    fn write(&mut self, port: u16, _size: IoSize, value: u32, _now: u64) {
        match port {
            DATA_PORT => self.write_data(value as u8),
            _ => self.command(value as u8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(k: &mut I8042, v: u8) {
        k.write(STATUS_PORT, 1, u32::from(v), 0);
    }
    fn data(k: &mut I8042, v: u8) {
        k.write(DATA_PORT, 1, u32::from(v), 0);
    }
    fn read(k: &mut I8042) -> u8 {
        k.read(DATA_PORT, 1, 0) as u8
    }
    fn status(k: &mut I8042) -> u8 {
        k.read(STATUS_PORT, 1, 0) as u8
    }

    #[test]
    fn never_busy_and_self_test() {
        let mut k = I8042::default();
        assert_eq!(status(&mut k) & 0x03, 0);
        cmd(&mut k, 0xaa);
        assert_eq!(status(&mut k) & 0x03, 0x01);
        assert_eq!(read(&mut k), 0x55);
        assert_eq!(status(&mut k) & 0x07, 0x04);
    }

    #[test]
    fn command_byte_round_trip_and_irq() {
        let mut k = I8042::default();
        cmd(&mut k, 0x60);
        data(&mut k, 0x00);
        cmd(&mut k, 0x20);
        assert!(!k.irq_line());
        assert_eq!(read(&mut k), 0x00);
        cmd(&mut k, 0x60);
        data(&mut k, 0x45);
        cmd(&mut k, 0xad);
        cmd(&mut k, 0x20);
        assert!(k.irq_line());
        assert_eq!(read(&mut k), 0x55);
        cmd(&mut k, 0xae);
        cmd(&mut k, 0x20);
        assert_eq!(read(&mut k), 0x45);
    }

    #[test]
    fn keyboard_reset_acks_then_passes() {
        let mut k = I8042::default();
        data(&mut k, 0xff);
        assert_eq!((read(&mut k), read(&mut k)), (0xfa, 0xaa));
        assert_eq!(status(&mut k) & 1, 0);
        assert_eq!(read(&mut k), 0xaa, "an empty buffer repeats the last byte");
        data(&mut k, 0xed);
        data(&mut k, 0x07);
        assert_eq!((read(&mut k), read(&mut k)), (0xfa, 0xfa));
    }

    #[test]
    fn reset_by_pulse_and_by_output_port() {
        let mut k = I8042::default();
        cmd(&mut k, 0xff);
        assert!(!k.take_reset(), "0xFF pulses nothing");
        cmd(&mut k, 0xfe);
        assert!(k.take_reset());
        assert!(!k.take_reset());
        cmd(&mut k, 0xd0);
        assert_eq!(read(&mut k), 0x03);
        cmd(&mut k, 0xd1);
        data(&mut k, 0x01);
        assert!(!k.take_reset());
        assert!(!k.a20());
        cmd(&mut k, 0xd1);
        data(&mut k, 0x02);
        assert!(k.take_reset());
    }

    #[test]
    fn garbage_never_panics() {
        let mut k = I8042::default();
        for v in 0..=255u8 {
            cmd(&mut k, v);
            data(&mut k, v);
            let _ = read(&mut k);
            let _ = status(&mut k);
        }
    }
}
