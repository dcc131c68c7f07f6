//! BT/BTS/BTR/BTC, BSF/BSR and the BCD adjustments. Filled in with the
//! ALU library's bit and BCD functions.

use crate::cpu::{Exception, Fault};
use crate::machine::Machine;
use iced_x86::Instruction;

pub fn bit_test(m: &mut Machine, i: &Instruction) -> Fault<()> {
    Err(m.unsupported(format!("{:?}", i.mnemonic())))
}

pub fn bit_scan(m: &mut Machine, i: &Instruction) -> Fault<()> {
    Err(m.unsupported(format!("{:?}", i.mnemonic())))
}

pub fn bcd(m: &mut Machine, i: &Instruction) -> Fault<()> {
    let _ = Exception::InvalidOpcode;
    Err(m.unsupported(format!("{:?}", i.mnemonic())))
}
