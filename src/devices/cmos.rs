//! MC146818 RTC and CMOS RAM at 0x70 (index) / 0x71 (data).
//!
//! The wall clock is `base + virtual time`: in deterministic mode `base`
//! is the fixed epoch **2000-01-01 00:00:00 UTC (a Saturday)** and the
//! clock advances with virtual time, so every run reads the same dates; in
//! realtime mode `base` is the host's UTC time when the device was made.
//! Guest writes to the time registers move an offset, not the clock source.
//!
//! Registers A–D: A's UIP bit is set during the last 244 µs of each second
//! (the MC146818's update-in-progress window), so it is never stuck; B
//! defaults to 24-hour BCD and its DM (binary) and 24/12 bits are honoured
//! on reads and writes; C reads 0 (no periodic/alarm/update interrupts:
//! IRQ 8 is not wired); D reads 0x80 (VRT, battery good).
//!
//! CMOS bytes are filled as QEMU's pc_cmos_init does: no floppy (0x10),
//! equipment byte (0x14), base memory 640 KiB (0x15/0x16), extended memory
//! in KiB (0x17/0x18 and 0x30/0x31, capped at 65535), memory above 16 MiB
//! in 64 KiB units (0x34/0x35), century (0x32).

use super::{IoSize, PioDevice};

const INDEX_PORT: u16 = 0x70;
const DATA_PORT: u16 = 0x71;
/// Bit 7 of the index port is the NMI mask (ignored: there is no NMI).
const INDEX_MASK: u8 = 0x7f;

const REG_SECONDS: u8 = 0x00;
const REG_MINUTES: u8 = 0x02;
const REG_HOURS: u8 = 0x04;
const REG_WEEKDAY: u8 = 0x06;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_A: u8 = 0x0a;
const REG_B: u8 = 0x0b;
const REG_C: u8 = 0x0c;
const REG_D: u8 = 0x0d;
const REG_FLOPPY_TYPES: u8 = 0x10;
const REG_EQUIPMENT: u8 = 0x14;
const REG_BASE_MEM_LO: u8 = 0x15;
const REG_EXT_MEM_LO: u8 = 0x17;
const REG_EXT_MEM2_LO: u8 = 0x30;
const REG_CENTURY: u8 = 0x32;
const REG_HIGH_MEM_LO: u8 = 0x34;

const REG_A_UIP_BIT: u8 = 0x80;
/// 32.768 kHz time base, 1024 Hz periodic rate: the value BIOSes leave.
const REG_A_DEFAULT: u8 = 0x26;
const REG_B_DM_BINARY_BIT: u8 = 0x04;
const REG_B_24H_BIT: u8 = 0x02;
const REG_B_DEFAULT: u8 = REG_B_24H_BIT;
const REG_D_VRT_BIT: u8 = 0x80;
const HOURS_PM_BIT: u8 = 0x80;
/// FPU present, PS/2 mouse present (QEMU's equipment byte).
const EQUIPMENT_DEFAULT: u8 = 0x06;
const UIP_WINDOW_NS: u64 = 244_000;

/// 2000-01-01 00:00:00 UTC in Unix seconds.
pub const DETERMINISTIC_EPOCH: i64 = 946_684_800;
const NS_PER_S: u64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Where the wall clock comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcMode {
    /// [`DETERMINISTIC_EPOCH`] plus virtual time.
    Deterministic,
    /// Host UTC at creation plus virtual time (itself host time then).
    Realtime,
}

/// A civil date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DateTime {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

/// Days since 1970-01-01 to (y, m, d): the era-based proleptic Gregorian
/// conversion (400-year eras of 146097 days, years starting in March).
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl DateTime {
    fn from_unix(secs: i64) -> DateTime {
        let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
        let s = secs.rem_euclid(SECS_PER_DAY);
        DateTime { year, month, day, hour: (s / 3600) as u8, minute: (s / 60 % 60) as u8, second: (s % 60) as u8 }
    }

    fn to_unix(self) -> i64 {
        let days = days_from_civil(self.year, self.month.clamp(1, 12), self.day.clamp(1, 31));
        days * SECS_PER_DAY + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second)
    }

    /// RTC day of week: 1 = Sunday.
    fn weekday(self) -> u8 {
        // 1970-01-01 was a Thursday (5).
        ((days_from_civil(self.year, self.month, self.day) + 4).rem_euclid(7) + 1) as u8
    }
}

fn to_bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

fn from_bcd(v: u8) -> u8 {
    (v >> 4).wrapping_mul(10).wrapping_add(v & 0x0f)
}

/// The RTC and its 128 bytes of CMOS RAM.
pub struct Cmos {
    ram: [u8; 128],
    index: u8,
    base_secs: i64,
    /// Seconds added by guest writes to the clock registers.
    offset_secs: i64,
}

impl Cmos {
    /// A CMOS describing `mem_size` bytes of RAM, its clock in `mode`.
    pub fn new(mem_size: u64, mode: RtcMode) -> Cmos {
        let base_secs = match mode {
            RtcMode::Deterministic => DETERMINISTIC_EPOCH,
            RtcMode::Realtime => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(DETERMINISTIC_EPOCH, |d| d.as_secs() as i64),
        };
        let mut c = Cmos { ram: [0; 128], index: 0, base_secs, offset_secs: 0 };
        c.fill_memory_bytes(mem_size);
        c
    }

    fn set16(&mut self, reg: u8, v: u64) {
        let [lo, hi] = (v.min(0xffff) as u16).to_le_bytes();
        self.ram[usize::from(reg)] = lo;
        self.ram[usize::from(reg) + 1] = hi;
    }

    fn fill_memory_bytes(&mut self, mem_size: u64) {
        const MIB: u64 = 1 << 20;
        self.ram[usize::from(REG_A)] = REG_A_DEFAULT;
        self.ram[usize::from(REG_B)] = REG_B_DEFAULT;
        self.ram[usize::from(REG_D)] = REG_D_VRT_BIT;
        self.ram[usize::from(REG_FLOPPY_TYPES)] = 0;
        self.ram[usize::from(REG_EQUIPMENT)] = EQUIPMENT_DEFAULT;
        self.set16(REG_BASE_MEM_LO, 640);
        let ext_kib = (mem_size / 1024).saturating_sub(1024);
        self.set16(REG_EXT_MEM_LO, ext_kib);
        self.set16(REG_EXT_MEM2_LO, ext_kib);
        self.set16(REG_HIGH_MEM_LO, mem_size.saturating_sub(16 * MIB) / 65_536);
    }

    fn now_secs(&self, now: u64) -> i64 {
        self.base_secs + (now / NS_PER_S) as i64 + self.offset_secs
    }

    fn binary(&self) -> bool {
        self.ram[usize::from(REG_B)] & REG_B_DM_BINARY_BIT != 0
    }

    fn encode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            to_bcd(v)
        }
    }

    fn decode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            from_bcd(v)
        }
    }

    fn encode_hours(&self, h: u8) -> u8 {
        if self.ram[usize::from(REG_B)] & REG_B_24H_BIT != 0 {
            return self.encode(h);
        }
        let pm = if h >= 12 { HOURS_PM_BIT } else { 0 };
        let h12 = if h % 12 == 0 { 12 } else { h % 12 };
        self.encode(h12) | pm
    }

    fn decode_hours(&self, v: u8) -> u8 {
        if self.ram[usize::from(REG_B)] & REG_B_24H_BIT != 0 {
            return self.decode(v);
        }
        let h12 = self.decode(v & !HOURS_PM_BIT) % 12;
        if v & HOURS_PM_BIT != 0 {
            h12 + 12
        } else {
            h12
        }
    }

    fn read_reg(&self, reg: u8, now: u64) -> u8 {
        let dt = DateTime::from_unix(self.now_secs(now));
        match reg {
            REG_SECONDS => self.encode(dt.second),
            REG_MINUTES => self.encode(dt.minute),
            REG_HOURS => self.encode_hours(dt.hour),
            REG_WEEKDAY => self.encode(dt.weekday()),
            REG_DAY => self.encode(dt.day),
            REG_MONTH => self.encode(dt.month),
            REG_YEAR => self.encode(dt.year.rem_euclid(100) as u8),
            REG_CENTURY => self.encode(dt.year.div_euclid(100).rem_euclid(100) as u8),
            REG_A => {
                let in_second = now % NS_PER_S;
                let uip = if in_second >= NS_PER_S - UIP_WINDOW_NS { REG_A_UIP_BIT } else { 0 };
                (self.ram[usize::from(REG_A)] & !REG_A_UIP_BIT) | uip
            }
            REG_C => 0,
            REG_D => REG_D_VRT_BIT,
            _ => self.ram[usize::from(reg & INDEX_MASK)],
        }
    }

    fn write_reg(&mut self, reg: u8, v: u8, now: u64) {
        let mut dt = DateTime::from_unix(self.now_secs(now));
        match reg {
            REG_SECONDS => dt.second = self.decode(v).min(59),
            REG_MINUTES => dt.minute = self.decode(v).min(59),
            REG_HOURS => dt.hour = self.decode_hours(v).min(23),
            REG_DAY => dt.day = self.decode(v).clamp(1, 31),
            REG_MONTH => dt.month = self.decode(v).clamp(1, 12),
            REG_YEAR => dt.year = dt.year - dt.year.rem_euclid(100) + i64::from(self.decode(v) % 100),
            REG_CENTURY => dt.year = i64::from(self.decode(v)) * 100 + dt.year.rem_euclid(100),
            REG_A => {
                self.ram[usize::from(REG_A)] = v & !REG_A_UIP_BIT;
                return;
            }
            REG_C | REG_D | REG_WEEKDAY => return, // read-only / derived
            _ => {
                self.ram[usize::from(reg & INDEX_MASK)] = v;
                return;
            }
        }
        let wanted = dt.to_unix();
        self.offset_secs += wanted - self.now_secs(now);
    }
}

impl PioDevice for Cmos {
    fn name(&self) -> &'static str {
        "cmos"
    }

    fn ports(&self) -> &'static [(u16, u16)] {
        &[(INDEX_PORT, DATA_PORT)]
    }

    fn read(&mut self, port: u16, _size: IoSize, now: u64) -> u32 {
        match port {
            DATA_PORT => u32::from(self.read_reg(self.index, now)),
            _ => 0xff, // the index port is write-only
        }
    }

    fn write(&mut self, port: u16, _size: IoSize, value: u32, now: u64) {
        match port {
            INDEX_PORT => self.index = value as u8 & INDEX_MASK,
            _ => self.write_reg(self.index, value as u8, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(c: &mut Cmos, r: u8, now: u64) -> u8 {
        c.write(INDEX_PORT, 1, u32::from(r) | 0x80, now);
        c.read(DATA_PORT, 1, now) as u8
    }

    fn set(c: &mut Cmos, r: u8, v: u8, now: u64) {
        c.write(INDEX_PORT, 1, u32::from(r), now);
        c.write(DATA_PORT, 1, u32::from(v), now);
    }

    #[test]
    fn deterministic_epoch_in_bcd() {
        let mut c = Cmos::new(128 << 20, RtcMode::Deterministic);
        let now = (3600 + 23 * 60 + 45) * NS_PER_S;
        let got: Vec<u8> = [0, 2, 4, 6, 7, 8, 9, 0x32].iter().map(|&r| reg(&mut c, r, now)).collect();
        assert_eq!(got, [0x45, 0x23, 0x01, 7, 0x01, 0x01, 0x00, 0x20]);
        assert_eq!(reg(&mut c, REG_B, 0), 0x02);
        assert_eq!(reg(&mut c, REG_D, 0), 0x80);
    }

    #[test]
    fn binary_and_12_hour_modes() {
        let mut c = Cmos::new(128 << 20, RtcMode::Deterministic);
        set(&mut c, REG_B, REG_B_DM_BINARY_BIT, 0);
        let now = 13 * 3600 * NS_PER_S + 59 * NS_PER_S;
        assert_eq!(reg(&mut c, REG_SECONDS, now), 59);
        assert_eq!(reg(&mut c, REG_HOURS, now), 0x80 | 1);
        set(&mut c, REG_B, 0, 0);
        assert_eq!(reg(&mut c, REG_HOURS, 0), 0x12, "midnight is 12 AM");
    }

    #[test]
    fn uip_is_a_short_window() {
        let mut c = Cmos::new(128 << 20, RtcMode::Deterministic);
        assert_eq!(reg(&mut c, REG_A, 0), 0x26);
        assert_eq!(reg(&mut c, REG_A, NS_PER_S - 1000), 0xa6);
        assert_eq!(reg(&mut c, REG_A, NS_PER_S), 0x26);
    }

    #[test]
    fn guest_sets_the_clock() {
        let mut c = Cmos::new(128 << 20, RtcMode::Deterministic);
        set(&mut c, REG_YEAR, 0x24, 0);
        set(&mut c, REG_MONTH, 0x02, 0);
        set(&mut c, REG_DAY, 0x29, 0);
        set(&mut c, REG_HOURS, 0x23, 0);
        set(&mut c, REG_MINUTES, 0x59, 0);
        set(&mut c, REG_SECONDS, 0x59, 0);
        let later = NS_PER_S;
        assert_eq!(reg(&mut c, REG_DAY, later), 0x01);
        assert_eq!(reg(&mut c, REG_MONTH, later), 0x03);
        assert_eq!(reg(&mut c, REG_YEAR, later), 0x24);
        assert_eq!(reg(&mut c, REG_WEEKDAY, later), 6, "2024-03-01 was a Friday");
    }

    #[test]
    fn memory_bytes_like_qemu() {
        let mut c = Cmos::new(128 << 20, RtcMode::Deterministic);
        assert_eq!(reg(&mut c, 0x10, 0), 0);
        assert_eq!((reg(&mut c, 0x15, 0), reg(&mut c, 0x16, 0)), (0x80, 0x02));
        let ext = u16::from_le_bytes([reg(&mut c, 0x17, 0), reg(&mut c, 0x18, 0)]);
        assert_eq!(ext, 0xffff, "capped at 65535 KiB");
        assert_eq!(u16::from_le_bytes([reg(&mut c, 0x30, 0), reg(&mut c, 0x31, 0)]), ext);
        assert_eq!(u16::from_le_bytes([reg(&mut c, 0x34, 0), reg(&mut c, 0x35, 0)]), 112 * 16);
        let mut small = Cmos::new(32 << 20, RtcMode::Deterministic);
        assert_eq!(u16::from_le_bytes([reg(&mut small, 0x17, 0), reg(&mut small, 0x18, 0)]), 31 * 1024);
        assert_eq!(u16::from_le_bytes([reg(&mut small, 0x34, 0), reg(&mut small, 0x35, 0)]), 256);
    }

    #[test]
    fn civil_conversions_round_trip() {
        for days in [-1, 0, 10_957, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(10_957), (2000, 1, 1));
    }

    #[test]
    fn garbage_never_panics() {
        let mut c = Cmos::new(0, RtcMode::Realtime);
        for r in 0..=255u8 {
            for v in [0u8, 0x59, 0x99, 0xff] {
                set(&mut c, r, v, u64::from(r) << 30);
                let _ = reg(&mut c, r, u64::MAX);
            }
        }
    }
}
