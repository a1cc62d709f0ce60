//! epoll: one instance, fds registered once, edge-triggered.

use std::io;
use std::os::raw::c_int;

use static_assertions::{assert_eq_size, const_assert_eq};

use super::{cvt, Fd};

// libc marks epoll_event packed on x86_64: 4 bytes of events, then 8 of data.
#[cfg(target_arch = "x86_64")]
assert_eq_size!(libc::epoll_event, [u8; 12]);
#[cfg(target_arch = "x86_64")]
const_assert_eq!(std::mem::offset_of!(libc::epoll_event, u64), 4);
#[cfg(not(target_arch = "x86_64"))]
assert_eq_size!(libc::epoll_event, [u8; 16]);
const_assert_eq!(libc::EPOLLIN, 0x001);

pub type Event = libc::epoll_event;

/// An empty event, for sizing the buffer `wait` fills.
pub const EMPTY: Event = libc::epoll_event { events: 0, u64: 0 };

pub fn create() -> io::Result<Fd> {
    // SAFETY: no pointers; the kernel returns a new fd or -1.
    cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

/// Registers `fd` once, edge-triggered, for reading and writing; `data` comes back with events.
pub fn add(epfd: Fd, fd: Fd, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
        u64: data,
    };
    // SAFETY: `ev` is a valid epoll_event that outlives the call.
    cvt(unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

/// Waits up to `timeout_ms` (-1: forever) and fills `events`; EINTR counts as no events.
pub fn wait(epfd: Fd, events: &mut [Event], timeout_ms: c_int) -> io::Result<usize> {
    let max = events.len().min(c_int::MAX as usize) as c_int;
    // SAFETY: the kernel writes at most `max` events into `events`, which has room for them.
    match cvt(unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), max, timeout_ms) }) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}
