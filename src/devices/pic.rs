//! The 8259A programmable interrupt controller pair of the PC/AT: master at
//! 0x20/0x21, slave at 0xA0/0xA1, the slave's INT output on master IR2.
//!
//! ```text
//!  IRQ0..7  ─► master ─INT─► CPU          IRQ8..15 ─► slave ─INT─► master IR2
//! ```
//!
//! Behaviour follows the Intel 8259A datasheet (order no. 231468):
//! - ICW1 starts initialisation: IMR, ISR and IRR are cleared, IR7 becomes
//!   the lowest priority, special mask mode and the read-register select are
//!   reset. As the datasheet says, the edge sense latch is reset too: an
//!   input that is already high must go low and high again to be latched.
//! - Edge mode (ICW1.LTIM = 0) latches IRR on a rising edge; a latched
//!   request stays in IRR until acknowledged even if the line drops (this is
//!   also QEMU's i8259). Level mode (LTIM = 1) makes IRR follow the line.
//! - INTA with nothing left to serve returns IR7 of that chip without
//!   setting ISR: the spurious interrupt (IRQ 7, or IRQ 15 via the slave, in
//!   which case the master's IR2 stays in service, as on real hardware).
//! - OCW2 handles non-specific/specific EOI, the rotate variants and set
//!   priority; OCW3 selects IRR/ISR reads, the poll command and special mask.

use super::{IoSize, PioDevice};

/// ICW1 is recognised by bit 4 on the command port.
const ICW1_INIT: u8 = 0x10;
/// ICW1 bit 0: ICW4 follows.
const ICW1_IC4: u8 = 0x01;
/// ICW1 bit 1: single 8259, no ICW3.
const ICW1_SNGL: u8 = 0x02;
/// ICW1 bit 3: level-triggered mode.
const ICW1_LTIM: u8 = 0x08;
/// ICW4 bit 1: automatic end of interrupt.
const ICW4_AEOI: u8 = 0x02;
/// ICW4 bit 4: special fully nested mode.
const ICW4_SFNM: u8 = 0x10;
/// OCW3 is recognised by bits 4..3 = 01; OCW2 by 00.
const OCW_SELECT_MASK: u8 = 0x18;
const OCW3_TAG: u8 = 0x08;
/// OCW3 bit 2: poll command.
const OCW3_POLL: u8 = 0x04;
/// OCW3 bit 1: "read register" command valid, bit 0: read ISR (else IRR).
const OCW3_RR: u8 = 0x02;
const OCW3_RIS: u8 = 0x01;
/// OCW3 bit 6: special mask mode command valid, bit 5: set (else reset).
const OCW3_ESMM: u8 = 0x40;
const OCW3_SMM: u8 = 0x20;
/// The master input the slave is cascaded on.
const CASCADE_IRQ: u8 = 2;

/// Where a chip is in its initialisation sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InitState {
    Ready,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A.
#[derive(Clone, Debug)]
pub struct Pic8259 {
    irr: u8,
    isr: u8,
    imr: u8,
    /// Input line levels as last sampled (edge detection).
    lines: u8,
    base: u8,
    /// IR number that has the highest priority (rotation).
    lowest_plus_one: u8,
    init: InitState,
    icw4_needed: bool,
    single: bool,
    level_mode: bool,
    auto_eoi: bool,
    rotate_on_aeoi: bool,
    sfnm: bool,
    read_isr: bool,
    poll: bool,
    special_mask: bool,
}

impl Default for Pic8259 {
    fn default() -> Self {
        Pic8259 {
            irr: 0,
            isr: 0,
            imr: 0,
            lines: 0,
            base: 0,
            lowest_plus_one: 0,
            init: InitState::Ready,
            icw4_needed: false,
            single: false,
            level_mode: false,
            auto_eoi: false,
            rotate_on_aeoi: false,
            sfnm: false,
            read_isr: false,
            poll: false,
            special_mask: false,
        }
    }
}

impl Pic8259 {
    /// Drives input `irq` (0..7) to `level`.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        let bit = 1u8 << (irq & 7);
        if level {
            if self.level_mode || self.lines & bit == 0 {
                self.irr |= bit;
            }
            self.lines |= bit;
        } else {
            if self.level_mode {
                self.irr &= !bit;
            }
            self.lines &= !bit;
        }
    }

    /// Priority (0 = highest) of the best bit in `mask`, 8 if none.
    fn priority(&self, mask: u8) -> u8 {
        (0..8).find(|p| mask & (1 << ((p + self.lowest_plus_one) & 7)) != 0).unwrap_or(8)
    }

    /// The IR this chip would present at INTA, if any.
    pub fn pending(&self) -> Option<u8> {
        let req = self.priority(self.irr & !self.imr);
        if req == 8 {
            return None;
        }
        let mut in_service = self.isr;
        if self.special_mask {
            in_service &= !self.imr;
        }
        if self.sfnm {
            in_service &= !(1 << CASCADE_IRQ);
        }
        (req < self.priority(in_service)).then_some((req + self.lowest_plus_one) & 7)
    }

    /// INT output to the CPU or to the master.
    pub fn output(&self) -> bool {
        self.pending().is_some()
    }

    /// The INTA cycle for `irq`: ISR set (unless auto-EOI), IRR cleared.
    fn intack(&mut self, irq: u8) {
        let bit = 1u8 << irq;
        if self.auto_eoi {
            if self.rotate_on_aeoi {
                self.lowest_plus_one = (irq + 1) & 7;
            }
        } else {
            self.isr |= bit;
        }
        self.irr &= !bit;
        if self.level_mode && self.lines & bit != 0 {
            self.irr |= bit;
        }
    }

    fn write_command(&mut self, v: u8) {
        if v & ICW1_INIT != 0 {
            self.icw1(v);
        } else if v & OCW_SELECT_MASK == OCW3_TAG {
            self.ocw3(v);
        } else if v & OCW_SELECT_MASK == 0 {
            self.ocw2(v);
        }
    }

    fn icw1(&mut self, v: u8) {
        let lines = self.lines;
        // The recorded line levels survive: a line that is high now needs a
        // new low-to-high transition before it is latched again.
        *self = Pic8259 { lines, ..Pic8259::default() };
        self.icw4_needed = v & ICW1_IC4 != 0;
        self.single = v & ICW1_SNGL != 0;
        self.level_mode = v & ICW1_LTIM != 0;
        self.init = InitState::Icw2;
    }

    fn ocw2(&mut self, v: u8) {
        let irq = v & 7;
        match v >> 5 {
            0 => self.rotate_on_aeoi = false,
            4 => self.rotate_on_aeoi = true,
            cmd @ (1 | 5) => {
                let p = self.priority(self.isr);
                if p != 8 {
                    let served = (p + self.lowest_plus_one) & 7;
                    self.isr &= !(1 << served);
                    if cmd == 5 {
                        self.lowest_plus_one = (served + 1) & 7;
                    }
                }
            }
            3 => self.isr &= !(1 << irq),
            7 => {
                self.isr &= !(1 << irq);
                self.lowest_plus_one = (irq + 1) & 7;
            }
            6 => self.lowest_plus_one = (irq + 1) & 7,
            _ => {} // 2: no operation
        }
    }

    fn ocw3(&mut self, v: u8) {
        if v & OCW3_POLL != 0 {
            self.poll = true;
        }
        if v & OCW3_RR != 0 {
            self.read_isr = v & OCW3_RIS != 0;
        }
        if v & OCW3_ESMM != 0 {
            self.special_mask = v & OCW3_SMM != 0;
        }
    }

    fn write_data(&mut self, v: u8) {
        self.init = match self.init {
            InitState::Ready => {
                self.imr = v;
                InitState::Ready
            }
            InitState::Icw2 => {
                self.base = v & 0xf8;
                match (self.single, self.icw4_needed) {
                    (false, _) => InitState::Icw3,
                    (true, true) => InitState::Icw4,
                    (true, false) => InitState::Ready,
                }
            }
            InitState::Icw3 if self.icw4_needed => InitState::Icw4,
            InitState::Icw3 => InitState::Ready,
            InitState::Icw4 => {
                self.auto_eoi = v & ICW4_AEOI != 0;
                self.sfnm = v & ICW4_SFNM != 0;
                InitState::Ready
            }
        };
    }

    /// Poll command read: acknowledges like INTA, returns 0x80 | IR.
    fn poll_read(&mut self) -> u8 {
        self.poll = false;
        match self.pending() {
            Some(irq) => {
                self.intack(irq);
                0x80 | irq
            }
            None => 0,
        }
    }

    fn read(&mut self, data_port: bool) -> u8 {
        if self.poll {
            return self.poll_read();
        }
        match (data_port, self.read_isr) {
            (true, _) => self.imr,
            (false, true) => self.isr,
            (false, false) => self.irr,
        }
    }
}

/// The cascaded master/slave pair.
#[derive(Clone, Debug, Default)]
pub struct PicPair {
    pub master: Pic8259,
    pub slave: Pic8259,
}

impl PicPair {
    /// Drives ISA interrupt line `irq` (0..15) to `level`.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        match irq {
            0..=7 => self.master.set_irq(irq, level),
            8..=15 => self.slave.set_irq(irq - 8, level),
            _ => {}
        }
        self.cascade();
    }

    /// Propagates the slave's INT output to master IR2.
    fn cascade(&mut self) {
        let out = self.slave.output();
        self.master.set_irq(CASCADE_IRQ, out);
    }

    /// Whether the master latches its requests on edges (ICW1.LTIM = 0):
    /// then driving a line to the level it already has changes nothing.
    pub fn master_edge_triggered(&self) -> bool {
        !self.master.level_mode
    }

    /// Whether the master asserts INTR to the CPU.
    pub fn interrupt_pending(&self) -> bool {
        self.master.output()
    }

    /// The INTA sequence: returns the vector and updates ISR/IRR on the
    /// master and, through the cascade, on the slave.
    pub fn acknowledge(&mut self) -> u8 {
        let vector = match self.master.pending() {
            Some(CASCADE_IRQ) if !self.master.single => {
                self.master.intack(CASCADE_IRQ);
                match self.slave.pending() {
                    Some(irq) => {
                        self.slave.intack(irq);
                        self.slave.base + irq
                    }
                    None => self.slave.base + 7,
                }
            }
            Some(irq) => {
                self.master.intack(irq);
                self.master.base + irq
            }
            None => self.master.base + 7,
        };
        self.cascade();
        vector
    }
}

/// Master command/data ports.
const MASTER_CMD: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
/// Slave command/data ports.
const SLAVE_CMD: u16 = 0xa0;
const SLAVE_DATA: u16 = 0xa1;

impl PioDevice for PicPair {
    fn name(&self) -> &'static str {
        "pic"
    }

    fn ports(&self) -> &'static [(u16, u16)] {
        &[(MASTER_CMD, MASTER_DATA), (SLAVE_CMD, SLAVE_DATA)]
    }

    fn read(&mut self, port: u16, _size: IoSize, _now: u64) -> u32 {
        let v = match port {
            MASTER_CMD | MASTER_DATA => self.master.read(port == MASTER_DATA),
            SLAVE_CMD | SLAVE_DATA => self.slave.read(port == SLAVE_DATA),
            _ => 0xff,
        };
        self.cascade();
        u32::from(v)
    }

    fn write(&mut self, port: u16, _size: IoSize, value: u32, _now: u64) {
        let v = value as u8;
        match port {
            MASTER_CMD => self.master.write_command(v),
            MASTER_DATA => self.master.write_data(v),
            SLAVE_CMD => self.slave.write_command(v),
            SLAVE_DATA => self.slave.write_data(v),
            _ => {}
        }
        self.cascade();
    }
}

#[cfg(test)]
#[path = "pic_tests.rs"]
mod tests;
