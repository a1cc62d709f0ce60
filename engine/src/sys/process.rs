//! The runner's processes: stop signals, and worker processes (fork).
//!
//! SIGINT and SIGTERM set a flag and write to an eventfd that each loop's
//! epoll watches, so a loop blocked in epoll_wait sees the flag at once; a
//! second one ends the process as the signal would have.

use std::io;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::SeqCst};

use super::{cvt, Fd};

static STOP: AtomicBool = AtomicBool::new(false);
static WAKE: AtomicI32 = AtomicI32::new(-1);

/// Most worker processes `fork_worker` makes.
pub const MAX_WORKERS: usize = 64;

/// The workers' pids (0: none), which the handler passes the stop on to.
static WORKERS: [AtomicI32; MAX_WORKERS] = [const { AtomicI32::new(0) }; MAX_WORKERS];

extern "C" fn on_stop(sig: c_int) {
    if STOP.swap(true, SeqCst) {
        // SAFETY: signal and raise are async-signal-safe; the default action ends the process.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        return;
    }
    for w in &WORKERS {
        let pid = w.load(SeqCst);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe; a worker that has ended makes it fail harmlessly.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    let one = 1u64.to_ne_bytes();
    // SAFETY: write is async-signal-safe; `one` is 8 readable bytes, as an eventfd takes.
    unsafe { libc::write(WAKE.load(SeqCst), one.as_ptr() as *const _, one.len()) };
}

/// Catches SIGINT and SIGTERM (see the module comment). Once per process.
pub fn catch_stop_signals() -> io::Result<()> {
    // SAFETY: no pointers; returns a new fd or -1.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    WAKE.store(fd, SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain old data; all-zero is an empty mask and no flags.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_stop as extern "C" fn(c_int) as libc::sighandler_t;
        // No SA_RESTART: a waitpid in the parent of workers returns EINTR.
        // SAFETY: `sa` is a valid sigaction; the handler only touches atomics and async-signal-safe calls.
        cvt(unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) })?;
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM came.
pub fn stop_requested() -> bool {
    STOP.load(SeqCst)
}

/// The eventfd a stop signal writes to, once `catch_stop_signals` has run.
pub fn stop_fd() -> Option<Fd> {
    Some(WAKE.load(SeqCst)).filter(|&fd| fd >= 0)
}

/// Forks worker number `n` (below `MAX_WORKERS`): Ok(None) in the worker,
/// Ok(Some(pid)) in the parent, whose stop signals the worker gets as
/// SIGTERM from then on. The worker gets SIGTERM if the parent dies, and
/// leaves the terminal's process group, so a Ctrl-C reaches it once.
pub fn fork_worker(n: usize) -> io::Result<Option<c_int>> {
    // SAFETY: the runner forks before it starts any thread or Lua state.
    let pid = cvt(unsafe { libc::fork() })?;
    if pid > 0 {
        WORKERS[n].store(pid, SeqCst);
        // A stop that came while it was forked: passed on now.
        if stop_requested() {
            terminate(pid);
        }
        return Ok(Some(pid));
    }
    WORKERS.iter().for_each(|w| w.store(0, SeqCst));
    // SAFETY: plain calls on this process, no pointers.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        libc::setpgid(0, 0);
    }
    Ok(None)
}

/// Waits for a child to end: its pid and whether it exited with status 0.
/// Err(Interrupted) when a signal came first.
pub fn wait_child() -> io::Result<(c_int, bool)> {
    let mut status = 0;
    // SAFETY: `status` is valid for the kernel to write.
    let pid = cvt(unsafe { libc::waitpid(-1, &mut status, 0) })?;
    Ok((pid, libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0))
}

/// Sends SIGTERM to a child.
pub fn terminate(pid: c_int) {
    // SAFETY: no pointers; a pid that has ended makes it fail harmlessly.
    unsafe { libc::kill(pid, libc::SIGTERM) };
}
