//! Guest symbols: the function a guest address is in, from a System.map
//! (`nm -n vmlinux`) or a copy of `/proc/kallsyms`, for `bt86 run
//! --symbols`. Both have one symbol a line:
//!
//! ```text
//!   c1000000 T startup_32          ADDRESS TYPE NAME
//!   c191bc80 T _etext
//!   c1d861b5 T i386_start_kernel
//!   f8a01000 t e1000_probe [e1000] a module's: ignored (modules move)
//! ```
//!
//! What is kept, by nm's type letter:
//!
//! - `t T w W` (code, local or global, and weak functions): names.
//! - `d D b B r R g G s S v V` (data, bss, read-only, small data, weak
//!   objects): not names, but they end the function before them, so an
//!   address in the data after a function is not named after it. A
//!   System.map from nm has them; /proc/kallsyms without
//!   CONFIG_KALLSYMS_ALL (Debian's) has next to none.
//! - `_etext` and `_einittext`, though typed `T`, are the ends of the two
//!   text ranges (as the kernel's own kallsyms lookup takes them), not
//!   functions: the last function of `.text` ends there, and an address in
//!   the rodata that follows is not `_etext+0x1234`.
//! - Everything else is skipped: `a A` (absolute values such as
//!   `__crc_*`, often not addresses at all), `U` (no address), `N`, `?`,
//!   and unparsable lines (a 64-bit address, a `[module]` column).
//!
//! An address is named after the nearest kept symbol at or below it, if
//! that is a function; a function ends where the next kept symbol of any
//! kind starts. Past the last symbol nothing ends the last function (a
//! map of the whole kernel always ends with `_etext`, `_einittext` or
//! data, so this is only a hand-made map's case).
//!
//! Where several symbols share an address (`startup_32`, `_stext` and
//! `_text` at 0xc1000000), the name with the fewest leading underscores
//! wins (linker-script markers have them), then a global one, then the
//! first in the file.

use std::fmt;
use std::path::Path;

/// The end of a text range, though typed as code.
const END_MARKERS: &[&str] = &["_etext", "_einittext"];

/// A guest symbol table: addresses in ascending order, each the start of a
/// function (`Some(name)`) or of something that is not code (`None`).
pub struct Symbols {
    starts: Vec<(u32, Option<Box<str>>)>,
}

/// Why a symbol file gave no symbols. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum SymbolsError {
    #[error("cannot read symbols {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("symbols {path}: {problem}")]
    Parse { path: String, problem: ParseError },
}

/// Why a System.map's text gave no symbols.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty file (expected System.map lines such as `c1000000 T _text`)")]
    Empty,
    /// No line was a symbol; the first line that is not one.
    #[error("line {line}: not a kernel symbol (`ADDRESS TYPE NAME`, as in System.map): {text:?}")]
    NoSymbols { line: usize, text: String },
    #[error("{count} symbols, but no function among them (types t, T, w, W)")]
    NoText { count: usize },
    /// /proc/kallsyms read without the right to see addresses.
    #[error("every address is 0 (/proc/kallsyms read by a user who may not see them: read it as root, kptr_restrict 0 or 1)")]
    Zeroed,
}

/// How a kept symbol counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Function,
    /// Not code: ends the function before it.
    End,
}

/// A symbol as read: address, kind, name, and how it ranks among symbols
/// at the same address (lower wins).
struct Read<'a> {
    addr: u32,
    kind: Kind,
    name: &'a str,
    rank: (usize, bool, usize),
}

impl Symbols {
    /// Reads a System.map or /proc/kallsyms copy.
    pub fn load(path: &Path) -> Result<Symbols, SymbolsError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| SymbolsError::Read { path: shown.clone(), source })?;
        Symbols::parse(&String::from_utf8_lossy(&bytes)).map_err(|problem| SymbolsError::Parse { path: shown, problem })
    }

    /// Parses the text of a System.map or /proc/kallsyms copy.
    pub fn parse(text: &str) -> Result<Symbols, ParseError> {
        let mut read = Vec::new();
        let mut first_bad = None;
        let mut count = 0;
        for (n, line) in text.lines().enumerate() {
            match parse_line(line) {
                Some((addr, ty, name)) => {
                    count += 1;
                    if let Some(kind) = kind(ty, name) {
                        let underscores = name.len() - name.trim_start_matches('_').len();
                        read.push(Read { addr, kind, name, rank: (underscores, ty.is_lowercase(), n) });
                    }
                }
                None if first_bad.is_none() && !line.trim().is_empty() => first_bad = Some((n + 1, line)),
                None => {}
            }
        }
        if count == 0 {
            return Err(match first_bad {
                Some((line, text)) => ParseError::NoSymbols { line, text: text.to_string() },
                None => ParseError::Empty,
            });
        }
        if !read.iter().any(|r| r.kind == Kind::Function) {
            return Err(ParseError::NoText { count });
        }
        if read.iter().all(|r| r.addr == 0) {
            return Err(ParseError::Zeroed);
        }
        Ok(Symbols { starts: starts(read) })
    }

    /// The function `addr` is in, as `name+0xoff`.
    pub fn name(&self, addr: u32) -> Option<String> {
        self.lookup(addr).map(|(name, off)| format!("{name}+{off:#x}"))
    }

    /// The function `addr` is in and the offset into it.
    pub fn lookup(&self, addr: u32) -> Option<(&str, u32)> {
        let i = self.starts.partition_point(|(a, _)| *a <= addr).checked_sub(1)?;
        let (start, name) = &self.starts[i];
        name.as_deref().map(|n| (n, addr - start))
    }

    /// How many addresses start a function.
    pub fn functions(&self) -> usize {
        self.starts.iter().filter(|(_, n)| n.is_some()).count()
    }
}

impl fmt::Debug for Symbols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbols({} functions)", self.functions())
    }
}

/// One line: `Some((addr, type, name))` for a kernel symbol, `None` for
/// anything else.
fn parse_line(line: &str) -> Option<(u32, char, &str)> {
    let mut cols = line.split_whitespace();
    let (addr, ty, name) = (cols.next()?, cols.next()?, cols.next()?);
    if cols.next().is_some() {
        return None; // a module's symbol: `... [module]`
    }
    if addr.len() > 8 {
        return None; // not a 32-bit guest's
    }
    let addr = u32::from_str_radix(addr, 16).ok()?;
    let mut t = ty.chars();
    match (t.next()?, t.next()) {
        (ty, None) if ty.is_ascii_alphabetic() || ty == '?' => Some((addr, ty, name)),
        _ => None,
    }
}

/// How a symbol of nm type `ty` counts, if it is kept (see the module
/// header).
fn kind(ty: char, name: &str) -> Option<Kind> {
    match ty {
        _ if END_MARKERS.contains(&name) => Some(Kind::End),
        't' | 'T' | 'w' | 'W' => Some(Kind::Function),
        'd' | 'D' | 'b' | 'B' | 'r' | 'R' | 'g' | 'G' | 's' | 'S' | 'v' | 'V' => Some(Kind::End),
        _ => None,
    }
}

/// One entry per address: the best-ranked function starting there, or
/// `None` if only non-code starts there.
fn starts(mut read: Vec<Read<'_>>) -> Vec<(u32, Option<Box<str>>)> {
    read.sort_by_key(|r| (r.addr, r.kind != Kind::Function, r.rank));
    let mut out: Vec<(u32, Option<Box<str>>)> = Vec::new();
    for r in read {
        if out.last().is_some_and(|(a, _)| *a == r.addr) {
            continue; // ranked after the one kept
        }
        out.push((r.addr, (r.kind == Kind::Function).then(|| r.name.into())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel's shape: head text with markers sharing its address, a
    /// weak function, the end of .text, init text, a module's symbol.
    const MAP: &str = "\
c1000000 T startup_32
c1000000 T _stext
c1000000 T _text
c1000078 T start_cpu0
c1000100 t local_helper
c1000200 W weak_default
c1000300 T _etext
c1000400 R __start_rodata
c1000800 t setup_once
c1000800 T _sinittext
c1000800 D __init_begin
c1000900 T start_kernel
c1000a00 T _einittext
c1000b00 B __bss_start
f8000000 t mod_probe\t[e1000]
";

    fn map() -> Symbols {
        Symbols::parse(MAP).expect("parse")
    }

    #[test]
    fn names_the_function_at_or_below() {
        let s = map();
        assert_eq!(s.name(0xc100_0000).as_deref(), Some("startup_32+0x0"));
        assert_eq!(s.name(0xc100_0077).as_deref(), Some("startup_32+0x77"));
        assert_eq!(s.name(0xc100_0078).as_deref(), Some("start_cpu0+0x0"));
        assert_eq!(s.name(0xc100_0150).as_deref(), Some("local_helper+0x50"));
        assert_eq!(s.name(0xc100_02ff).as_deref(), Some("weak_default+0xff"));
        assert_eq!(s.name(0xc100_0905).as_deref(), Some("start_kernel+0x5"));
        assert_eq!(s.lookup(0xc100_0905), Some(("start_kernel", 5)));
    }

    #[test]
    fn prefers_a_function_over_markers_at_the_same_address() {
        let s = map();
        // _stext and _text have underscores; __init_begin is data.
        assert_eq!(s.name(0xc100_0800).as_deref(), Some("setup_once+0x0"));
        let alias = Symbols::parse("c1000000 t do_it\nc1000000 T do_it_global\nc1000010 T _etext\n").expect("parse");
        assert_eq!(alias.name(0xc100_0000).as_deref(), Some("do_it_global+0x0"), "global before local");
    }

    #[test]
    fn nothing_outside_the_text() {
        let s = map();
        assert_eq!(s.name(0xbfff_ffff), None, "below the first symbol");
        assert_eq!(s.name(0xc100_0300), None, "at _etext");
        assert_eq!(s.name(0xc100_0350), None, "between _etext and rodata");
        assert_eq!(s.name(0xc100_0500), None, "in rodata");
        assert_eq!(s.name(0xc100_0a00), None, "at _einittext");
        assert_eq!(s.name(0xc100_0b10), None, "in bss");
        assert_eq!(s.name(0xf800_0010), None, "a module's address");
        assert_eq!(s.name(u32::MAX), None);
    }

    #[test]
    fn the_last_function_of_a_map_without_an_end_runs_on() {
        let s = Symbols::parse("00100000 T main\n00100040 t loop\n").expect("parse");
        assert_eq!(s.name(0x0010_1000).as_deref(), Some("loop+0xfc0"));
        assert_eq!(s.name(0x000f_ffff), None);
    }

    #[test]
    fn skips_unparsable_and_foreign_lines() {
        let text = "garbage\n\nffffffff81000000 T startup_64\nc1000000 A __crc_x\nc1000000 TT two\nzz T bad_hex\n\
                    c1000010 T f\nc1000020 T _etext\n";
        let s = Symbols::parse(text).expect("parse");
        assert_eq!(s.functions(), 1);
        assert_eq!(s.name(0xc100_0000), None, "absolute symbols are not names");
        assert_eq!(s.name(0xc100_0012).as_deref(), Some("f+0x2"));
    }

    #[test]
    fn a_file_with_no_symbols_is_an_error_naming_the_line() {
        assert_eq!(Symbols::parse("").unwrap_err(), ParseError::Empty);
        assert_eq!(Symbols::parse("\n  \n").unwrap_err(), ParseError::Empty);
        let e = Symbols::parse("\n#!/bin/sh\necho hi\n").unwrap_err();
        assert_eq!(e, ParseError::NoSymbols { line: 2, text: "#!/bin/sh".into() });
        let only_modules = Symbols::parse("f8000000 t mod_probe [e1000]\n").unwrap_err();
        assert!(matches!(only_modules, ParseError::NoSymbols { line: 1, .. }), "{only_modules}");
        assert_eq!(Symbols::parse("c1400000 D jiffies\n").unwrap_err(), ParseError::NoText { count: 1 });
    }

    #[test]
    fn hidden_kallsyms_addresses_are_an_error() {
        let e = Symbols::parse("00000000 T startup_32\n00000000 T _text\n00000000 t helper\n").unwrap_err();
        assert_eq!(e, ParseError::Zeroed);
    }

    #[test]
    fn load_names_the_file_in_one_line() {
        let e = Symbols::load(Path::new("/nonexistent/System.map")).unwrap_err().to_string();
        assert!(e.starts_with("cannot read symbols /nonexistent/System.map: "), "{e}");
        let path = std::env::temp_dir().join(format!("bt86-symbols-{}.map", std::process::id()));
        std::fs::write(&path, "not a map\n").expect("write");
        let e = Symbols::load(&path).unwrap_err().to_string();
        let _ = std::fs::remove_file(&path);
        assert!(e.contains(&path.display().to_string()) && e.contains("line 1"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}
