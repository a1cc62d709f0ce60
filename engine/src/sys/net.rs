//! Sockets: creation, connect, options, stream and datagram I/O.

use std::io;
use std::os::raw::c_int;

use super::sockaddr::{Addr, Raw};
use super::{cvt, cvt_size, retry, Fd};

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

/// Starts a non-blocking connect: Ok(true) connected, Ok(false) in progress.
pub fn connect(fd: Fd, addr: &Addr) -> io::Result<bool> {
    let raw = Raw::encode(addr)?;
    // SAFETY: `raw` holds a valid address of `raw.len` bytes for the call's duration.
    match cvt(unsafe { libc::connect(fd, raw.ptr(), raw.len) }) {
        Ok(_) => Ok(true),
        // EINTR on a non-blocking connect: it goes on asynchronously.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => Ok(false),
        // A unix listener with a full backlog answers EAGAIN: treat it like a refusal.
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Err(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
        Err(e) => Err(e),
    }
}

/// The peer's address of a connected socket.
pub fn peer_name(fd: Fd) -> io::Result<Addr> {
    let mut raw = Raw::empty();
    // SAFETY: `raw` has room for `raw.len` bytes, which the kernel updates.
    cvt(unsafe { libc::getpeername(fd, raw.mut_ptr(), &mut raw.len) })?;
    raw.decode().ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
}

pub fn listen(fd: Fd, backlog: c_int) -> io::Result<()> {
    // SAFETY: no pointers.
    cvt(unsafe { libc::listen(fd, backlog) }).map(drop)
}

/// Takes a waiting connection: its fd, non-blocking and close-on-exec.
pub fn accept(fd: Fd) -> io::Result<Fd> {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: null address pointers: the kernel writes no address.
    retry(|| cvt(unsafe { libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), flags) }))
}

/// The socket's own address.
pub fn local_name(fd: Fd) -> io::Result<Addr> {
    let mut raw = Raw::empty();
    // SAFETY: `raw` has room for `raw.len` bytes, which the kernel updates.
    cvt(unsafe { libc::getsockname(fd, raw.mut_ptr(), &mut raw.len) })?;
    raw.decode().ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
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

/// Whether the peer sent anything or closed: one byte peeked, left in place
/// (Ok(0) is the peer's close).
pub fn peek(fd: Fd) -> io::Result<usize> {
    let mut b = 0u8;
    // SAFETY: `b` is valid for a write of one byte.
    retry(|| cvt_size(unsafe { libc::recv(fd, &mut b as *mut u8 as *mut _, 1, libc::MSG_PEEK) }))
}

/// Which directions `shutdown` ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    Read,
    Write,
    Both,
}

/// Half-closes (or fully closes) a connected socket's stream.
pub fn shutdown(fd: Fd, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: no pointers.
    cvt(unsafe { libc::shutdown(fd, how) }).map(drop)
}

/// Socket options `setoption` can set, each an int.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockOpt {
    NoDelay,
    KeepAlive,
    ReuseAddr,
    ReusePort,
    SndBuf,
    RcvBuf,
    /// TCP_CORK. Not offered to Lua: the tests' misbehaving TLS peer corks
    /// its last bytes so that they and its FIN reach the client in one segment.
    Cork,
}

pub fn set_option(fd: Fd, opt: SockOpt, value: c_int) -> io::Result<()> {
    let (level, name) = match opt {
        SockOpt::NoDelay => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
        SockOpt::KeepAlive => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        SockOpt::ReuseAddr => (libc::SOL_SOCKET, libc::SO_REUSEADDR),
        SockOpt::ReusePort => (libc::SOL_SOCKET, libc::SO_REUSEPORT),
        SockOpt::SndBuf => (libc::SOL_SOCKET, libc::SO_SNDBUF),
        SockOpt::RcvBuf => (libc::SOL_SOCKET, libc::SO_RCVBUF),
        SockOpt::Cork => (libc::IPPROTO_TCP, libc::TCP_CORK),
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

/// Sends each slice as its own datagram to the connected peer, in one
/// sendmmsg; returns how many went.
pub fn send_datagrams<const N: usize>(fd: Fd, msgs: &[&[u8]; N]) -> io::Result<usize> {
    let mut iov = msgs.map(|m| libc::iovec { iov_base: m.as_ptr() as *mut _, iov_len: m.len() });
    // SAFETY: mmsghdr is plain old data; all-zero is "no name, no control".
    let mut hdrs: [libc::mmsghdr; N] = unsafe { std::mem::zeroed() };
    for (h, v) in hdrs.iter_mut().zip(iov.iter_mut()) {
        h.msg_hdr.msg_iov = v;
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: each header points at one iovec over a live slice; the kernel only reads them.
    retry(|| cvt(unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), N as _, libc::MSG_NOSIGNAL) }).map(|n| n as usize))
}

/// Receives up to N waiting datagrams in one recvmmsg, each into its buffer
/// (cleared first, filled up to its capacity); returns how many came.
pub fn recv_datagrams<const N: usize>(fd: Fd, bufs: &mut [Vec<u8>; N]) -> io::Result<usize> {
    let mut iov = bufs.each_mut().map(|b| {
        b.clear();
        let spare = b.spare_capacity_mut();
        libc::iovec { iov_base: spare.as_mut_ptr() as *mut _, iov_len: spare.len() }
    });
    // SAFETY: mmsghdr is plain old data; all-zero is "no name, no control".
    let mut hdrs: [libc::mmsghdr; N] = unsafe { std::mem::zeroed() };
    for (h, v) in hdrs.iter_mut().zip(iov.iter_mut()) {
        h.msg_hdr.msg_iov = v;
        h.msg_hdr.msg_iovlen = 1;
    }
    let n = retry(|| {
        // SAFETY: each iovec covers a buffer's spare capacity, which outlives the call.
        let r = unsafe { libc::recvmmsg(fd, hdrs.as_mut_ptr(), N as _, libc::MSG_DONTWAIT, std::ptr::null_mut()) };
        cvt(r).map(|n| n as usize)
    })?;
    for (b, h) in bufs.iter_mut().zip(&hdrs).take(n) {
        // SAFETY: the kernel wrote `msg_len` (<= the spare capacity) bytes of this datagram.
        unsafe { b.set_len(h.msg_len as usize) };
    }
    Ok(n)
}

/// Reads up to `b.len()` bytes into `b` (for a TLS session's reads).
pub fn recv_into(fd: Fd, b: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `b` is valid for writes of its length; the kernel writes at most that.
    retry(|| cvt_size(unsafe { libc::recv(fd, b.as_mut_ptr() as *mut _, b.len(), 0) }))
}

/// Binds a socket to a local address: a listener's, or a socket's own before its connect.
pub fn bind(fd: Fd, addr: &Addr) -> io::Result<()> {
    let raw = Raw::encode(addr)?;
    // SAFETY: `raw` holds a valid address of `raw.len` bytes for the call's duration.
    cvt(unsafe { libc::bind(fd, raw.ptr(), raw.len) }).map(drop)
}

/// Gives a unix datagram socket an abstract name of the kernel's choosing
/// (Linux's autobind: a bind of the family alone), so its peer can answer it.
pub fn autobind(fd: Fd) -> io::Result<()> {
    let mut raw = Raw::empty();
    raw.ss.ss_family = libc::AF_UNIX as libc::sa_family_t;
    let len = std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t;
    // SAFETY: `raw` holds the family, the `len` bytes the call reads.
    cvt(unsafe { libc::bind(fd, raw.ptr(), len) }).map(drop)
}
