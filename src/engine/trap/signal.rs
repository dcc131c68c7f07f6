//! Host faults translated code takes on purpose, and the SIGSEGV handler
//! that turns them into control flow:
//!
//! - trap sites (`--engine trap`): a translated block runs a privileged
//!   host instruction (`translator::trap`); the host CPU, in user mode,
//!   raises #GP (`si_code` SI_KERNEL); the handler records the trap and
//!   resumes right after the site, where the block calls the monitor's
//!   emulation;
//! - memory sites (paging off, `engine/bt/guard.rs`): a guest access
//!   through the guest view faults past RAM or on a store into a code page
//!   (a page fault whose address lies in the view); the handler resumes at
//!   the access's slow path;
//! - budget sites (`engine/bt/guard.rs`): a block's charge takes the
//!   instruction budget below zero and its load faults in the budget
//!   window's guard; the handler resumes at the block's refund;
//! - divide sites (`translator::block`, `Kind::Divide`): a guest DIV or
//!   IDIV run on the host raises #DE (SIGFPE); the handler resumes at its
//!   slow path, whose callout raises the guest's #DE.
//!
//! Every other SIGSEGV or SIGFPE goes to the handler that was installed
//! before (Rust's stack-overflow check, or the default action). The
//! handler is minimal: it allocates nothing and takes no lock.
//!
//! This file holds the trap engine's unsafe code.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::sync::OnceLock;

/// What a site's fault is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A privileged instruction's #GP (SIGSEGV, SI_KERNEL).
    Trap,
    /// A page fault in the guest view or the budget window (SIGSEGV).
    Memory,
    /// A divide error (SIGFPE).
    Divide,
    /// An inline x87 instruction: a host #MF (SIGFPE), or a page fault
    /// in a view for a memory operand (SIGSEGV).
    X87,
}

/// A host instruction that may fault on purpose.
#[derive(Clone, Copy, Debug)]
struct Site {
    at: usize,
    /// Where execution resumes after the fault.
    resume: usize,
    kind: Kind,
}

thread_local! {
    /// This thread's sites, sorted by address.
    static SITES: RefCell<Vec<Site>> = const { RefCell::new(Vec::new()) };
    /// The address ranges (start, end) of the guest view and the two
    /// linear views: memory sites fault only there.
    static VIEWS: Cell<[(usize, usize); 3]> = const { Cell::new([(0, 0); 3]) };
    /// The last memory-site fault in a view: (host address, a write).
    static LAST_FAULT: Cell<(usize, bool)> = const { Cell::new((0, false)) };
    /// Memory-site faults taken since the sites were set up.
    static MEM_FAULTS: Cell<u64> = const { Cell::new(0) };
    /// The budget window's guard (start, end): budget sites fault there.
    static BUDGET: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// Budget-site faults taken since the sites were set up.
    static BUDGET_FAULTS: Cell<u64> = const { Cell::new(0) };
    /// Set by the handler, taken by the monitor's emulation.
    static PENDING: Cell<bool> = const { Cell::new(false) };
    /// Real traps taken on this thread since the sites were set up.
    static TRAPS: Cell<u64> = const { Cell::new(0) };
    /// The trap stub: `cli; ret`, a site the monitor calls to take a real
    /// trap for a privileged instruction it meets outside translated code.
    static STUB: Cell<usize> = const { Cell::new(0) };
}

/// The SIGSEGV and SIGFPE actions in place before ours.
static PREVIOUS: OnceLock<[Previous; 2]> = OnceLock::new();

struct Previous(libc::sigaction);
// SAFETY: a `sigaction` is plain data (a handler address, flags, a mask),
// written once before any reader and never changed.
unsafe impl Sync for Previous {}
// SAFETY: as above.
unsafe impl Send for Previous {}

/// `si_code` of a SIGSEGV the kernel raises for #GP (`SI_KERNEL`).
const SI_KERNEL: i32 = 0x80;

/// The signals the handler takes, in `PREVIOUS` order.
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGFPE];

/// Installs the handler (once per process).
pub fn install() -> Result<(), String> {
    let mut failed = None;
    PREVIOUS.get_or_init(|| {
        SIGNALS.map(|sig| {
            // SAFETY: sigaction with a zeroed struct as the old-action
            // output and a fully initialised new action; `on_signal` has
            // the SA_SIGINFO signature and is async-signal-safe (no
            // allocation, no locks: thread-locals with const initialisers
            // and Cells only).
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = on_signal as *const () as usize;
                // SA_ONSTACK: on the alternate stack Rust's runtime gives
                // each thread, so a stack overflow still reaches its
                // handler.
                new.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
                libc::sigemptyset(&mut new.sa_mask);
                if libc::sigaction(sig, &new, &mut old) != 0 {
                    failed = Some(std::io::Error::last_os_error());
                }
                Previous(old)
            }
        })
    });
    match failed {
        Some(e) => Err(format!("cannot install the signal handler for translated code's faults: {e}")),
        None => Ok(()),
    }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo_t and ucontext_t to an
    // SA_SIGINFO handler, both live for the handler's duration.
    let (code, uc) = unsafe { ((*info).si_code, &mut *(ctx as *mut libc::ucontext_t)) };
    // SAFETY: as above; si_addr is meaningful for SIGSEGV.
    let addr = unsafe { (*info).si_addr() } as usize;
    let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
    let site = SITES.try_with(|s| s.try_borrow().ok().and_then(|s| lookup(&s, rip))).ok().flatten();
    let segv = sig == libc::SIGSEGV;
    match site.map(|s| s.kind) {
        Some(Kind::Trap) if segv && code == SI_KERNEL => {
            let _ = PENDING.try_with(|p| p.set(true));
            let _ = TRAPS.try_with(|t| t.set(t.get() + 1));
        }
        Some(Kind::Memory | Kind::X87) if segv && in_view(addr) => {
            let _ = MEM_FAULTS.try_with(|t| t.set(t.get() + 1));
            // The page-fault error code's W bit (x86 #PF error code bit 1).
            let write = uc.uc_mcontext.gregs[libc::REG_ERR as usize] & 2 != 0;
            let _ = LAST_FAULT.try_with(|f| f.set((addr, write)));
        }
        Some(Kind::Memory) if segv && within(&BUDGET, addr) => {
            let _ = BUDGET_FAULTS.try_with(|t| t.set(t.get() + 1));
        }
        Some(Kind::Divide | Kind::X87) if sig == libc::SIGFPE => {}
        _ => return forward(sig, info, ctx),
    }
    if let Some(s) = site {
        uc.uc_mcontext.gregs[libc::REG_RIP as usize] = s.resume as i64;
    }
}

/// Whether `addr` lies in one of the views.
fn in_view(addr: usize) -> bool {
    VIEWS.try_with(|v| v.get().iter().any(|r| (r.0..r.1).contains(&addr))).unwrap_or(false)
}

/// Whether `addr` lies in the range a thread-local holds.
fn within(range: &'static std::thread::LocalKey<Cell<(usize, usize)>>, addr: usize) -> bool {
    range.try_with(|r| (r.get().0..r.get().1).contains(&addr)).unwrap_or(false)
}

/// Hands a signal that is not ours to the previous action.
fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let Some(Previous(old)) = PREVIOUS.get().and_then(|p| p.get(SIGNALS.iter().position(|&s| s == sig)?)) else {
        return;
    };
    let handler = old.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: restores the default action; returning re-executes the
        // faulting instruction, which then terminates the process as if we
        // had never been installed.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
    } else if old.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it
        // has this signature; it gets the kernel's own arguments.
        unsafe {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) = std::mem::transmute(handler);
            f(sig, info, ctx);
        }
    } else {
        // SAFETY: a plain handler takes the signal number only.
        unsafe {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}

fn lookup(sites: &[Site], rip: usize) -> Option<Site> {
    let k = sites.partition_point(|s| s.at <= rip).checked_sub(1)?;
    (sites[k].at == rip).then_some(sites[k])
}

/// This thread's sites while a translator runs on it (one at a time);
/// dropped, the thread has none.
pub struct Sites {
    pinned: usize,
}

impl Sites {
    /// Starts a fresh set on this thread; with `stub` (the address of
    /// `cli; ret` in executable memory that outlives this value) as its
    /// first, permanent trap site.
    pub fn new(stub: Option<usize>) -> Result<Sites, String> {
        install()?;
        SITES.with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            s.extend(stub.map(|at| Site { at, resume: at + 1, kind: Kind::Trap }));
        });
        STUB.set(stub.unwrap_or(0));
        PENDING.set(false);
        TRAPS.set(0);
        MEM_FAULTS.set(0);
        BUDGET_FAULTS.set(0);
        VIEWS.set([(0, 0); 3]);
        LAST_FAULT.set((0, false));
        BUDGET.set((0, 0));
        Ok(Sites { pinned: stub.is_some() as usize })
    }

    /// The address range of view `k` (0: the guest view, 1 and 2: the
    /// linear views), where memory sites may fault.
    pub fn set_view(&self, k: usize, start: usize, len: usize) {
        let mut v = VIEWS.get();
        v[k] = (start, start + len);
        VIEWS.set(v);
    }

    /// The budget window's guard, where budget sites fault.
    pub fn set_budget_guard(&self, start: usize, len: usize) {
        BUDGET.set((start, start + len));
    }

    /// Adds the sites of one block, placed above every earlier one (the
    /// code buffer allocates upwards): trap sites `(address, length)`,
    /// memory and budget sites and divide sites `(address, where to
    /// resume)`.
    pub fn add_block(
        &self,
        traps: impl Iterator<Item = (usize, usize)>,
        mem: impl Iterator<Item = (usize, usize)>,
        div: impl Iterator<Item = (usize, usize)>,
        x87: impl Iterator<Item = (usize, usize)>,
    ) {
        SITES.with(|s| {
            let mut s = s.borrow_mut();
            let from = s.len();
            s.extend(traps.map(|(at, len)| Site { at, resume: at + len, kind: Kind::Trap }));
            s.extend(mem.map(|(at, resume)| Site { at, resume, kind: Kind::Memory }));
            s.extend(div.map(|(at, resume)| Site { at, resume, kind: Kind::Divide }));
            s.extend(x87.map(|(at, resume)| Site { at, resume, kind: Kind::X87 }));
            s[from..].sort_unstable_by_key(|x| x.at);
            debug_assert!(from == 0 || s.len() == from || s[from - 1].at < s[from].at);
        });
    }

    /// Forgets every site but the stub (the code buffer was flushed).
    pub fn flush(&self) {
        SITES.with(|s| s.borrow_mut().truncate(self.pinned));
    }

    /// Real traps taken since `new`.
    pub fn taken(&self) -> u64 {
        TRAPS.get()
    }

    /// Memory-site faults taken since `new`.
    pub fn mem_faults(&self) -> u64 {
        MEM_FAULTS.get()
    }

    /// Budget-site faults taken since `new`.
    pub fn budget_faults(&self) -> u64 {
        BUDGET_FAULTS.get()
    }
}

impl Drop for Sites {
    fn drop(&mut self) {
        SITES.with(|s| s.borrow_mut().clear());
        STUB.set(0);
        PENDING.set(false);
        VIEWS.set([(0, 0); 3]);
        BUDGET.set((0, 0));
    }
}

/// Takes the host address and write bit of the last memory-site fault in
/// a view on this thread, if one was taken since the last call.
pub fn take_fault() -> Option<(usize, bool)> {
    let f = LAST_FAULT.replace((0, false));
    (f.0 != 0).then_some(f)
}

/// The monitor's trap hook (`system::depriv::Monitor::take_trap`): when
/// translated code has just trapped at this instruction's site, that was
/// the trap; otherwise (the interpreter is running the instruction) the
/// stub takes a real one now.
pub fn take_trap() {
    if PENDING.replace(false) {
        return;
    }
    let stub = STUB.get();
    if stub == 0 {
        return;
    }
    // SAFETY: `stub` was registered by a live `Sites` (cleared on drop) and
    // points at `cli; ret` in the trap engine's executable code buffer;
    // the CLI faults, the handler above (installed by `Sites::new`) resumes
    // at the RET, which returns here. It touches no memory.
    unsafe {
        let f: extern "sysv64" fn() = std::mem::transmute(stub);
        f();
    }
    PENDING.set(false);
}
