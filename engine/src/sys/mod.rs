//! Raw Linux syscalls: the only `unsafe` in coevent, split as mio splits
//! them (`epoll`, `net`, `sockaddr`).
//!
//! Every function is a thin wrapper that turns a C return into `io::Result`,
//! retries EINTR where a retry is right, and keeps fds non-blocking + CLOEXEC.

use std::io;
use std::os::raw::c_int;

pub mod epoll;
mod net;
#[cfg(feature = "pcre")]
pub mod pcre;
pub mod process;
mod sockaddr;
#[cfg(feature = "tls")]
mod tls;

pub use net::*;
pub use sockaddr::{Addr, UNIX_PATH_MAX};
#[cfg(feature = "tls")]
pub use tls::{cert_matches, offer_session, set_new_session_callback, NewSession};

pub type Fd = c_int;

pub(crate) fn cvt(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub(crate) fn cvt_size(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Retries `f` while it fails with EINTR.
pub(crate) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// Random bytes from the kernel (getrandom; never blocks once the pool is ready).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: `b` has room for the 8 bytes asked for.
    let n = unsafe { libc::getrandom(b.as_mut_ptr() as *mut _, b.len(), libc::GRND_NONBLOCK) };
    if n != 8 {
        // No entropy yet (early boot): the clock is better than nothing.
        return now_ms() ^ (std::process::id() as u64) << 32;
    }
    u64::from_ne_bytes(b)
}

pub fn close(fd: Fd) {
    // SAFETY: the caller owns `fd`; after close it is never used again. Errors (even
    // EINTR) leave the fd closed on Linux, so there is nothing to retry.
    unsafe { libc::close(fd) };
}

/// Milliseconds on the monotonic clock (vDSO: no syscall).
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for writes.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// The error's text as coevent reports it: strerror, lowercased, no "(os error N)".
pub fn error_string(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s,
    };
    s.to_ascii_lowercase()
}

/// A non-blocking pipe, for tests.
#[cfg(test)]
pub fn pipe() -> io::Result<(Fd, Fd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds the kernel writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    Ok((fds[0], fds[1]))
}

/// A second fd for the same open file, for tests.
#[cfg(test)]
pub fn dup(fd: Fd) -> io::Result<Fd> {
    // SAFETY: no pointers; returns a new fd or -1.
    cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })
}

/// A connected pair of non-blocking unix stream sockets, for tests.
#[cfg(test)]
pub fn socketpair() -> io::Result<(Fd, Fd)> {
    let mut fds = [0; 2];
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two fds the kernel writes.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
    Ok((fds[0], fds[1]))
}

/// Writes to an fd, for tests.
#[cfg(test)]
pub fn write(fd: Fd, b: &[u8]) -> io::Result<usize> {
    // SAFETY: `b` is valid for reads of its length.
    cvt_size(unsafe { libc::write(fd, b.as_ptr() as *const _, b.len()) })
}

/// Reads from an fd, for tests.
#[cfg(test)]
pub fn read(fd: Fd, b: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `b` is valid for writes of its length.
    cvt_size(unsafe { libc::read(fd, b.as_mut_ptr() as *mut _, b.len()) })
}
