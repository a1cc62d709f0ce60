//! Raw Linux syscalls: the only `unsafe` in coevent.
//!
//! Every function is a thin wrapper that turns a C return into `io::Result`,
//! retries EINTR where a retry is right, and keeps fds non-blocking + CLOEXEC.

use std::io;
use std::net::SocketAddr;
use std::os::raw::c_int;

use static_assertions::{assert_eq_size, const_assert, const_assert_eq};

// libc marks epoll_event packed on x86_64: 4 bytes of events, then 8 of data.
#[cfg(target_arch = "x86_64")]
assert_eq_size!(libc::epoll_event, [u8; 12]);
#[cfg(target_arch = "x86_64")]
const_assert_eq!(std::mem::offset_of!(libc::epoll_event, u64), 4);
#[cfg(not(target_arch = "x86_64"))]
assert_eq_size!(libc::epoll_event, [u8; 16]);
assert_eq_size!(libc::sockaddr_in, [u8; 16]);
assert_eq_size!(libc::sockaddr_in6, [u8; 28]);
assert_eq_size!(libc::sockaddr_un, [u8; 110]);
const_assert!(std::mem::size_of::<libc::sockaddr_storage>() >= 110);
const_assert_eq!(libc::EPOLLIN, 0x001);

pub type Fd = c_int;

/// An address to connect to: an IP socket address or a unix socket path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Ip(SocketAddr),
    Unix(Vec<u8>),
}

impl Addr {
    fn family(&self) -> c_int {
        match self {
            Addr::Ip(SocketAddr::V4(_)) => libc::AF_INET,
            Addr::Ip(SocketAddr::V6(_)) => libc::AF_INET6,
            Addr::Unix(_) => libc::AF_UNIX,
        }
    }
}

/// Largest unix socket path (sun_path less its NUL).
pub const UNIX_PATH_MAX: usize = 107;

fn cvt(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Retries `f` while it fails with EINTR.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

pub fn epoll_create() -> io::Result<Fd> {
    // SAFETY: no pointers; the kernel returns a new fd or -1.
    cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

/// Registers `fd` once, edge-triggered, for reading and writing; `data` comes back with events.
pub fn epoll_add(epfd: Fd, fd: Fd, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
        u64: data,
    };
    // SAFETY: `ev` is a valid epoll_event that outlives the call.
    cvt(unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

/// An empty event, for sizing the buffer `epoll_wait` fills.
pub const EMPTY_EVENT: libc::epoll_event = libc::epoll_event { events: 0, u64: 0 };

/// Waits up to `timeout_ms` (-1: forever) and fills `events`; EINTR counts as no events.
pub fn epoll_wait(epfd: Fd, events: &mut [libc::epoll_event], timeout_ms: c_int) -> io::Result<usize> {
    let max = events.len().min(c_int::MAX as usize) as c_int;
    // SAFETY: the kernel writes at most `max` events into `events`, which has room for them.
    match cvt(unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), max, timeout_ms) }) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// A new non-blocking, close-on-exec stream socket for `addr`'s family.
pub fn stream_socket(addr: &Addr) -> io::Result<Fd> {
    socket(addr, libc::SOCK_STREAM)
}

/// A new non-blocking, close-on-exec datagram socket for `addr`'s family.
pub fn dgram_socket(addr: &Addr) -> io::Result<Fd> {
    socket(addr, libc::SOCK_DGRAM)
}

fn socket(addr: &Addr, ty: c_int) -> io::Result<Fd> {
    // SAFETY: no pointers; returns a new fd or -1.
    cvt(unsafe { libc::socket(addr.family(), ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })
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

/// Starts a non-blocking connect: Ok(true) connected, Ok(false) in progress.
pub fn connect(fd: Fd, addr: &Addr) -> io::Result<bool> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        Addr::Ip(SocketAddr::V4(a)) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        Addr::Ip(SocketAddr::V6(a)) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
        Addr::Unix(path) => {
            if path.len() > UNIX_PATH_MAX || path.contains(&0) {
                return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
            }
            let mut sun = libc::sockaddr_un { sun_family: libc::AF_UNIX as libc::sa_family_t, sun_path: [0; 108] };
            for (d, s) in sun.sun_path.iter_mut().zip(path) {
                *d = *s as libc::c_char;
            }
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_un, sun) };
            std::mem::size_of::<libc::sa_family_t>() + path.len() + 1
        }
    };
    // SAFETY: `ss` holds a valid address of `len` bytes for the call's duration.
    let r = unsafe { libc::connect(fd, &ss as *const _ as *const libc::sockaddr, len as libc::socklen_t) };
    match cvt(r) {
        Ok(_) => Ok(true),
        // EINTR on a non-blocking connect: it goes on asynchronously.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => Ok(false),
        // A unix listener with a full backlog answers EAGAIN: treat it like a refusal.
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Err(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
        Err(e) => Err(e),
    }
}

/// The pending error of a socket (SO_ERROR): 0 once a connect has succeeded.
pub fn take_error(fd: Fd) -> io::Result<c_int> {
    let mut err: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes of the sizes given.
    let r =
        unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, &mut err as *mut c_int as *mut _, &mut len) };
    cvt(r).map(|_| err)
}

/// Socket options `setoption` can set, each an int.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockOpt {
    NoDelay,
    KeepAlive,
    SndBuf,
    RcvBuf,
}

pub fn set_option(fd: Fd, opt: SockOpt, value: c_int) -> io::Result<()> {
    let (level, name) = match opt {
        SockOpt::NoDelay => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
        SockOpt::KeepAlive => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        SockOpt::SndBuf => (libc::SOL_SOCKET, libc::SO_SNDBUF),
        SockOpt::RcvBuf => (libc::SOL_SOCKET, libc::SO_RCVBUF),
    };
    let len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `value` is a valid c_int for the call's duration.
    cvt(unsafe { libc::setsockopt(fd, level, name, &value as *const c_int as *const _, len) }).map(drop)
}

/// Reads up to `max` bytes into `buf`'s spare capacity (reserving it) and appends them.
pub fn recv(fd: Fd, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let max = max.min(spare.len());
    let n = retry(|| {
        // SAFETY: `spare` has room for `max` bytes; the kernel writes at most that.
        cvt_size(unsafe { libc::recv(fd, spare.as_mut_ptr() as *mut _, max, 0) })
    })?;
    // SAFETY: the kernel initialised the first `n <= max` spare bytes.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Sends what the kernel takes of `b` (MSG_NOSIGNAL: a dead peer is EPIPE, not SIGPIPE).
pub fn send(fd: Fd, b: &[u8]) -> io::Result<usize> {
    // SAFETY: `b` is valid for reads of its length.
    retry(|| cvt_size(unsafe { libc::send(fd, b.as_ptr() as *const _, b.len(), libc::MSG_NOSIGNAL) }))
}

/// Sends each slice as its own datagram, in one sendmmsg; returns how many went.
pub fn send_datagrams(fd: Fd, msgs: &[&[u8]; 2]) -> io::Result<usize> {
    let mut iov = msgs.map(|m| libc::iovec { iov_base: m.as_ptr() as *mut _, iov_len: m.len() });
    // SAFETY: mmsghdr is plain old data; all-zero is "no name, no control".
    let mut hdrs: [libc::mmsghdr; 2] = unsafe { std::mem::zeroed() };
    for (h, v) in hdrs.iter_mut().zip(iov.iter_mut()) {
        h.msg_hdr.msg_iov = v;
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: each header points at one iovec over a live slice; the kernel only reads them.
    retry(|| cvt(unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), 2, libc::MSG_NOSIGNAL) }).map(|n| n as usize))
}

/// Receives up to `bufs.len()` waiting datagrams in one recvmmsg, each into
/// its buffer (cleared first, filled up to its capacity); returns how many came.
pub fn recv_datagrams(fd: Fd, bufs: &mut [Vec<u8>; 2]) -> io::Result<usize> {
    let mut iov = [0, 1].map(|i| {
        bufs[i].clear();
        let spare = bufs[i].spare_capacity_mut();
        libc::iovec { iov_base: spare.as_mut_ptr() as *mut _, iov_len: spare.len() }
    });
    // SAFETY: mmsghdr is plain old data; all-zero is "no name, no control".
    let mut hdrs: [libc::mmsghdr; 2] = unsafe { std::mem::zeroed() };
    for (h, v) in hdrs.iter_mut().zip(iov.iter_mut()) {
        h.msg_hdr.msg_iov = v;
        h.msg_hdr.msg_iovlen = 1;
    }
    let n = retry(|| {
        // SAFETY: each iovec covers a buffer's spare capacity, which outlives the call.
        let r = unsafe { libc::recvmmsg(fd, hdrs.as_mut_ptr(), 2, libc::MSG_DONTWAIT, std::ptr::null_mut()) };
        cvt(r).map(|n| n as usize)
    })?;
    for (b, h) in bufs.iter_mut().zip(&hdrs).take(n) {
        // SAFETY: the kernel wrote `msg_len` (<= the spare capacity) bytes of this datagram.
        unsafe { b.set_len(h.msg_len as usize) };
    }
    Ok(n)
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
    s.to_lowercase()
}

/// A non-blocking pipe, for tests.
#[cfg(test)]
pub fn pipe() -> io::Result<(Fd, Fd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds the kernel writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
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
