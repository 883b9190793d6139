//! A filter that recurses deeper than its thread's stack ends the process
//! with one `error:` line and exit 2, instead of Rust's abort (exit 134).
//!
//! jaq's interpreter recurses in its own code (each call of a jq function,
//! each nested iterator), and freeing, comparing or printing a value
//! nested a million deep recurses as deep; neither offers a depth counter
//! to hook. So the bound is the stack itself: while a filter compiles or
//! runs, a fault next to the stack pointer of the thread that runs it is
//! a stack overflow of the filter's making. Nothing can be unwound from
//! there, so the handler writes the error and calls `_exit`. That is safe
//! for `edit` because a filter runs before anything is written and while
//! no lock is held: the stored document is as it was.
//!
//! Any other fault goes to the handler that was there before (Rust's,
//! which names the stack overflow, or the default action).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The exit code: the filter is at fault, as for a filter that does not
/// compile (`Error::Usage`).
const EXIT: i32 = 2;

const MESSAGE: &[u8] = b"error: the jq filter went too deep: it recursed, or built a value \
nested, deeper than etagstore's stack holds; nothing written (edit KEY -- jq FILTER runs jq \
instead)\n";

/// `MESSAGE` under `--error-format json` (docs/contract.md's schema).
const JSON_MESSAGE: &[u8] = b"{\"code\":\"usage\",\"exit\":2,\"message\":\"the jq filter went \
too deep: it recursed, or built a value nested, deeper than etagstore's stack holds; nothing \
written (edit KEY -- jq FILTER runs jq instead)\"}\n";

/// The thread (`pthread_self`) running a filter, 0 when none is.
static RUNNING_ON: AtomicUsize = AtomicUsize::new(0);

/// The handlers that were installed before ours: SIGSEGV's and SIGBUS's.
static PREVIOUS: OnceLock<[(libc::c_int, libc::sigaction); 2]> = OnceLock::new();

/// Marks the calling thread as running a filter until it is dropped.
pub struct Running {
    before: usize,
}

/// Installs the handler (once per process) and marks this thread as
/// running a filter.
pub fn running() -> Running {
    PREVIOUS.get_or_init(install);
    let me = unsafe { libc::pthread_self() } as usize;
    Running {
        before: RUNNING_ON.swap(me, Ordering::SeqCst),
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING_ON.store(self.before, Ordering::SeqCst);
    }
}

/// How far the main thread's stack may grow while a filter runs. Linux
/// grows it on demand up to RLIMIT_STACK (8 MiB by default) and keeps at
/// least 128 MiB below it free of other mappings, so raising the soft limit
/// gives jq's depths (10,000 nested arrays) room at no cost until used.
const MAIN_STACK: libc::rlim_t = 112 << 20;

fn install() -> [(libc::c_int, libc::sigaction); 2] {
    let on_main_thread = unsafe { libc::getpid() == libc::gettid() };
    if on_main_thread {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        unsafe {
            if libc::getrlimit(libc::RLIMIT_STACK, &mut limit) == 0
                && limit.rlim_cur != libc::RLIM_INFINITY
                && limit.rlim_cur < MAIN_STACK
            {
                limit.rlim_cur = MAIN_STACK.min(limit.rlim_max);
                libc::setrlimit(libc::RLIMIT_STACK, &limit);
            }
        }
    }
    [libc::SIGSEGV, libc::SIGBUS].map(|signal| unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_fault
            as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
            as usize;
        // SA_ONSTACK: an overflowed stack has no room for the handler; Rust
        // gives every thread it starts an alternate signal stack.
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        let mut previous: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, &action, &mut previous);
        (signal, previous)
    })
}

extern "C" fn on_fault(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let me = unsafe { libc::pthread_self() } as usize;
    if RUNNING_ON.load(Ordering::SeqCst) == me && near_stack_pointer(info, context) {
        unsafe {
            let message = if crate::error::printing_json() {
                JSON_MESSAGE
            } else {
                MESSAGE
            };
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::_exit(EXIT);
        }
    }
    // Not ours: put the previous handler back; the faulting instruction
    // runs again and faults into it.
    if let Some(previous) = PREVIOUS.get() {
        for (s, action) in previous {
            if *s == signal {
                unsafe { libc::sigaction(signal, action, std::ptr::null_mut()) };
            }
        }
    }
}

/// Whether the fault's address is within a MiB below (or a page above) the
/// stack pointer of the interrupted code: a push, a call or a stack probe
/// that ran off the stack.
fn near_stack_pointer(info: *mut libc::siginfo_t, context: *mut libc::c_void) -> bool {
    let Some(sp) = stack_pointer(context) else {
        // No way to tell: a fault in safe Rust code is a stack overflow.
        return true;
    };
    let address = unsafe { (*info).si_addr() } as usize;
    address <= sp.saturating_add(4096) && sp.saturating_sub(address) <= 1 << 20
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn stack_pointer(context: *mut libc::c_void) -> Option<usize> {
    let context = context as *const libc::ucontext_t;
    Some(unsafe { (*context).uc_mcontext.gregs[libc::REG_RSP as usize] } as usize)
}

#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
fn stack_pointer(context: *mut libc::c_void) -> Option<usize> {
    let context = context as *const libc::ucontext_t;
    Some(unsafe { (*context).uc_mcontext.sp } as usize)
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn stack_pointer(_context: *mut libc::c_void) -> Option<usize> {
    None
}
