//! The floor of the benchmark: no Lua, one epoll loop, the fewest syscalls a
//! client can make. Each fd is registered once, edge-triggered; a read shorter
//! than the room offered means the socket is drained, so a PING round trip costs
//! one send and one recv plus a share of one epoll_wait.
//!
//! floor ping  HOST PORT N M     N connections, each M "PING\r\n" -> "+PONG\r\n"
//! floor count HOST PORT SIZE K  one connection: K times "GET SIZE\n", read SIZE bytes
//! floor all   HOST PORT SIZE K  K connections, one after another: "ALL SIZE\n",
//!                               read until the server closes
//!
//! Prints `RESULT wall=<s> ok=<units done> bytes=<bytes read>`; exits 1 on any error.

use std::io;
use std::net::Ipv4Addr;
use std::process::exit;
use std::time::Instant;

const ET: u32 =
    (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
const READABLE: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
const HUP: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
const WRITABLE: u32 = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// Every wait is bounded: no event for this long is an error.
const WAIT_MS: i32 = 30_000;

fn die(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("floor: {what}: {e}");
    exit(1)
}

struct Epoll {
    fd: i32,
    evs: Vec<libc::epoll_event>,
}

impl Epoll {
    fn new(cap: usize) -> Epoll {
        // SAFETY: plain syscall with a flag argument.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            die("epoll_create1", io::Error::last_os_error());
        }
        Epoll { fd, evs: vec![libc::epoll_event { events: 0, u64: 0 }; cap] }
    }

    fn add(&self, fd: i32, token: u64) {
        let mut ev = libc::epoll_event { events: ET, u64: token };
        // SAFETY: ev is a valid epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            die("epoll_ctl", io::Error::last_os_error());
        }
    }

    /// Waits for events; returns how many are in `self.evs`.
    fn wait(&mut self) -> usize {
        loop {
            // SAFETY: evs is a valid buffer of evs.len() events.
            let n = unsafe {
                libc::epoll_wait(self.fd, self.evs.as_mut_ptr(), self.evs.len() as i32, WAIT_MS)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                die("epoll_wait", e);
            }
            if n == 0 {
                die("epoll_wait", "no event for 30 s");
            }
            return n as usize;
        }
    }

    /// Waits until the one registered fd shows one of `mask`; returns the union
    /// of the events seen (a hang-up seen here must not be forgotten: no edge
    /// comes after it).
    fn wait_for(&mut self, mask: u32) -> u32 {
        let mut seen = 0;
        loop {
            let n = self.wait();
            for e in &self.evs[..n] {
                seen |= e.events;
            }
            if seen & mask != 0 {
                return seen;
            }
        }
    }
}

fn connect_nb(ip: Ipv4Addr, port: u16) -> i32 {
    // SAFETY: plain syscalls on a fresh fd; sockaddr_in is fully initialised.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            die("socket", io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        );
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as u16;
        sa.sin_port = port.to_be();
        sa.sin_addr.s_addr = u32::from(ip).to_be();
        let r = libc::connect(
            fd,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                die("connect", e);
            }
        }
        fd
    }
}

fn so_error(fd: i32) {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for the call.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if err != 0 {
        die("connect", io::Error::from_raw_os_error(err));
    }
}

/// Sends a short request whole (it always fits in an empty send buffer).
fn send_small(fd: i32, data: &[u8]) {
    // SAFETY: data is a valid slice.
    let n = unsafe {
        libc::send(fd, data.as_ptr() as *const libc::c_void, data.len(), libc::MSG_NOSIGNAL)
    };
    if n != data.len() as isize {
        die("send", io::Error::last_os_error());
    }
}

/// One recv: Some(n) (0 = EOF) or None for EAGAIN.
fn recv(fd: i32, buf: &mut [u8]) -> Option<usize> {
    loop {
        // SAFETY: buf is a valid writable slice.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n >= 0 {
            return Some(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) => return None,
            Some(libc::EINTR) => continue,
            _ => die("recv", e),
        }
    }
}

fn close(fd: i32) {
    // SAFETY: fd is owned here and closed once.
    unsafe { libc::close(fd) };
}

struct Conn {
    fd: i32,
    left: u32,
    got: usize,
    connected: bool,
}

fn ping(ip: Ipv4Addr, port: u16, n: usize, m: u32) -> (u64, u64) {
    let mut ep = Epoll::new(1024);
    let mut conns: Vec<Conn> = (0..n)
        .map(|i| {
            let fd = connect_nb(ip, port);
            ep.add(fd, i as u64);
            Conn { fd, left: m, got: 0, connected: false }
        })
        .collect();
    let mut done = 0;
    let mut ok = 0u64;
    let mut buf = [0u8; 64];
    while done < n {
        let k = ep.wait();
        for i in 0..k {
            let ev = ep.evs[i];
            let c = &mut conns[ev.u64 as usize];
            if c.fd < 0 {
                continue;
            }
            if !c.connected {
                if ev.events & WRITABLE != 0 {
                    so_error(c.fd);
                    c.connected = true;
                    if m == 0 {
                        close(c.fd);
                        c.fd = -1;
                        done += 1;
                    } else {
                        send_small(c.fd, b"PING\r\n");
                    }
                }
                continue;
            }
            if ev.events & READABLE == 0 {
                continue;
            }
            loop {
                match recv(c.fd, &mut buf) {
                    None => break,
                    Some(0) => die("recv", "server closed"),
                    Some(r) => {
                        if c.got + r > 7 || buf[..r] != b"+PONG\r\n"[c.got..c.got + r] {
                            die("recv", "not +PONG");
                        }
                        c.got += r;
                        if r < buf.len() {
                            break; // short read: drained
                        }
                    }
                }
            }
            if c.got == 7 {
                c.got = 0;
                c.left -= 1;
                ok += 1;
                if c.left > 0 {
                    send_small(c.fd, b"PING\r\n");
                } else {
                    close(c.fd);
                    c.fd = -1;
                    done += 1;
                }
            }
        }
    }
    (ok, 7 * ok)
}

fn read_exact(ep: &mut Epoll, fd: i32, buf: &mut [u8]) {
    let mut got = 0;
    while got < buf.len() {
        let room = buf.len() - got;
        match recv(fd, &mut buf[got..]) {
            None => {
                ep.wait_for(READABLE);
            }
            Some(0) => die("recv", "server closed"),
            Some(r) => {
                got += r;
                if r < room && got < buf.len() {
                    ep.wait_for(READABLE); // short read: drained
                }
            }
        }
    }
}

fn read_all(ep: &mut Epoll, fd: i32, out: &mut Vec<u8>, mut seen: u32) {
    const ROOM: usize = 64 * 1024;
    loop {
        out.reserve(ROOM);
        let len = out.len();
        let room = out.capacity() - len;
        // SAFETY: spare capacity is valid for writes of `room` bytes; only the bytes
        // recv wrote become part of the Vec.
        let spare = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().add(len), room) };
        match recv(fd, spare) {
            None => seen |= ep.wait_for(READABLE),
            Some(0) => return,
            Some(r) => {
                // SAFETY: recv initialised r bytes past len.
                unsafe { out.set_len(len + r) };
                // A short read means drained, unless the peer's FIN was already
                // seen: then the next recv gives EOF and no edge will come.
                if r < room && seen & HUP == 0 {
                    seen |= ep.wait_for(READABLE);
                }
            }
        }
    }
}

fn count(ip: Ipv4Addr, port: u16, size: usize, k: u32) -> (u64, u64) {
    let mut ep = Epoll::new(8);
    let fd = connect_nb(ip, port);
    ep.add(fd, 0);
    ep.wait_for(WRITABLE);
    so_error(fd);
    let req = format!("GET {size}\n");
    let mut buf = vec![0u8; size];
    for _ in 0..k {
        send_small(fd, req.as_bytes());
        read_exact(&mut ep, fd, &mut buf);
    }
    close(fd);
    (k as u64, k as u64 * size as u64)
}

fn all(ip: Ipv4Addr, port: u16, size: usize, k: u32) -> (u64, u64) {
    let mut ep = Epoll::new(8);
    let req = format!("ALL {size}\n");
    let mut bytes = 0u64;
    for _ in 0..k {
        let fd = connect_nb(ip, port);
        ep.add(fd, 0);
        let seen = ep.wait_for(WRITABLE);
        so_error(fd);
        send_small(fd, req.as_bytes());
        let mut out = Vec::new();
        read_all(&mut ep, fd, &mut out, seen & HUP);
        if out.len() != size {
            die("all", format!("got {} bytes, wanted {size}", out.len()));
        }
        bytes += out.len() as u64;
        close(fd);
    }
    (k as u64, bytes)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 6 {
        eprintln!("usage: floor ping|count|all HOST PORT N|SIZE M|K");
        exit(2);
    }
    let ip: Ipv4Addr = a[2].parse().unwrap_or_else(|e| die("host", e));
    let port: u16 = a[3].parse().unwrap_or_else(|e| die("port", e));
    let x: usize = a[4].parse().unwrap_or_else(|e| die("arg 4", e));
    let y: u32 = a[5].parse().unwrap_or_else(|e| die("arg 5", e));
    let t0 = Instant::now();
    let (ok, bytes) = match a[1].as_str() {
        "ping" => ping(ip, port, x, y),
        "count" => count(ip, port, x, y),
        "all" => all(ip, port, x, y),
        m => die("mode", m),
    };
    let wall = t0.elapsed().as_secs_f64();
    println!("RESULT wall={wall:.6} ok={ok} bytes={bytes}");
}
