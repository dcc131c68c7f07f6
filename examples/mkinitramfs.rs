//! A reproducible initramfs writer: reads a manifest in the format of the
//! kernel's `usr/gen_init_cpio` and writes an uncompressed "newc" cpio
//! archive (the format `Documentation/driver-api/early-userspace/
//! buffer-format.rst` describes), with every mtime 0 and inode numbers
//! given in manifest order, so the same manifest and files always give
//! the same bytes. `scripts/fetch-linux.sh` compresses it with `gzip -n`.
//!
//! ```text
//! cargo run --release --example mkinitramfs -- MANIFEST OUT.cpio
//!
//! dir   NAME MODE UID GID
//! file  NAME SOURCE MODE UID GID
//! slink NAME TARGET MODE UID GID
//! nod   NAME MODE UID GID c|b MAJOR MINOR
//! # comments and blank lines are ignored
//! ```
//!
//! Written for bt86 (no host cpio needed, no device nodes on the host).

use std::fmt::Write as _;
use std::process::ExitCode;

/// One archive member.
struct Entry {
    name: String,
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: (u32, u32),
    data: Vec<u8>,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [manifest, out] = args.as_slice() else {
        eprintln!("usage: mkinitramfs MANIFEST OUT.cpio");
        return ExitCode::from(2);
    };
    match run(manifest, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkinitramfs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(manifest: &str, out: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(manifest).map_err(|e| format!("{manifest}: {e}"))?;
    let mut archive = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = parse_line(line).map_err(|e| format!("{manifest}:{}: {e}", n + 1))?;
        let ino = u32::try_from(n + 1).map_err(|_| "manifest too long".to_string())?;
        write_entry(&mut archive, &entry, ino)?;
    }
    let trailer = Entry { name: "TRAILER!!!".into(), mode: 0, uid: 0, gid: 0, rdev: (0, 0), data: Vec::new() };
    write_entry(&mut archive, &trailer, 0)?;
    std::fs::write(out, archive).map_err(|e| format!("{out}: {e}"))
}

fn parse_line(line: &str) -> Result<Entry, String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let num = |s: &str, radix: u32| u32::from_str_radix(s, radix).map_err(|_| format!("bad number {s:?}"));
    let ids = |i: usize| -> Result<(u32, u32, u32), String> {
        match w.get(i..i + 3) {
            Some([m, u, g]) => Ok((num(m, 8)?, num(u, 10)?, num(g, 10)?)),
            _ => Err("expected MODE UID GID".into()),
        }
    };
    let name = w.get(1).ok_or("missing name")?.trim_start_matches('/').to_string();
    let mut e = Entry { name, mode: 0, uid: 0, gid: 0, rdev: (0, 0), data: Vec::new() };
    let (kind, mode_at) = match w.first().copied() {
        Some("dir") => (S_IFDIR, 2),
        Some("file") => (S_IFREG, 3),
        Some("slink") => (S_IFLNK, 3),
        Some("nod") => (0, 2),
        other => return Err(format!("unknown entry type {other:?}")),
    };
    let (mode, uid, gid) = ids(mode_at)?;
    (e.mode, e.uid, e.gid) = (kind | (mode & 0o7777), uid, gid);
    match w[0] {
        "file" => {
            let src = w[2];
            e.data = std::fs::read(src).map_err(|err| format!("{src}: {err}"))?;
        }
        "slink" => e.data = w[2].as_bytes().to_vec(),
        "nod" => {
            let [t, major, minor] = w.get(5..8).ok_or("expected c|b MAJOR MINOR")? else {
                return Err("expected c|b MAJOR MINOR".into());
            };
            e.mode |= match *t {
                "c" => S_IFCHR,
                "b" => S_IFBLK,
                _ => return Err(format!("device type {t:?} is not c or b")),
            };
            e.rdev = (num(major, 10)?, num(minor, 10)?);
        }
        _ => {}
    }
    Ok(e)
}

/// Appends one newc header ("070701", thirteen 8-digit hex fields), the
/// NUL-terminated name and the data, each padded to 4 bytes.
fn write_entry(out: &mut Vec<u8>, e: &Entry, ino: u32) -> Result<(), String> {
    let size = u32::try_from(e.data.len()).map_err(|_| format!("{}: larger than 4 GiB", e.name))?;
    let namesize = u32::try_from(e.name.len() + 1).map_err(|_| "name too long".to_string())?;
    let nlink = if e.mode & 0o170000 == S_IFDIR { 2 } else { 1 };
    let fields = [ino, e.mode, e.uid, e.gid, nlink, 0, size, 0, 0, e.rdev.0, e.rdev.1, namesize, 0];
    let mut hdr = String::from("070701");
    for f in fields {
        let _ = write!(hdr, "{f:08x}");
    }
    out.extend_from_slice(hdr.as_bytes());
    out.extend_from_slice(e.name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(&e.data);
    pad4(out);
    Ok(())
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}
