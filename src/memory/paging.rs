//! Two-level IA-32 paging (4 KiB and 4 MiB pages). See the interpreter's
//! memory path.
