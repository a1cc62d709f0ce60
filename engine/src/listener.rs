//! Listening sockets: `listen` on what `bind` made (`local::Local`), and
//! `accept`, which hands out each connection as a `Stream`.
//!
//! A listener has one reactor wait for its fd, so the first thread that must
//! wait in `accept` waits there and the others queue behind it (`queue`);
//! whenever an accept ends and nobody waits on the fd, the next in the queue
//! is woken to try. An acceptor takes at most `BATCH` connections in a row
//! before it lets the loop turn, so a flood of new connections cannot starve
//! the established ones. Out of fds, accept fails and the next accept waits
//! `PAUSE` ms before it tries again (the connection stays queued in the
//! kernel), instead of spinning on a listener that stays readable.

use std::io::{self, ErrorKind::WouldBlock};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::raw::c_int;

use crate::local::Local;
use crate::reactor::{Dir, Reason, Side, Src, Tid, Token};
use crate::step::{Cx, Error};
use crate::stream::Stream;
use crate::sys::{self, Addr};

/// `listen`'s default backlog (nginx's).
pub const DEFAULT_BACKLOG: c_int = 511;

/// Connections one acceptor takes in a row before the loop turns.
pub const BATCH: u32 = 32;

/// How long accept rests after running out of fds, in ms.
pub const PAUSE: u64 = 100;

/// What an accept came to.
#[derive(Debug)]
pub enum Accept {
    /// A connection, registered with the reactor.
    Done(Stream),
    /// Wait on the listener's fd for readability, for at most the ms given
    /// if any (the rest of a pause), else the caller's timeout.
    Wait(Option<u64>),
    /// Another thread waits on the fd: wait in the queue until woken.
    Queue,
    /// The batch is over: let the loop turn, then try again.
    Yield,
    Fail(Error),
}

/// A listening socket.
#[derive(Debug)]
pub struct Listener {
    pub src: Src,
    ip: bool,
    /// Threads waiting for their turn on the fd, by token.
    queue: Vec<Tid>,
    /// Connections taken since the last wait or yield.
    batch: u32,
    /// Out of fds: no accept is tried before this time (the reactor's ms).
    pause_until: Option<u64>,
}

impl Listener {
    /// Listens on the fd `local` bound; it is the listener's from then on.
    pub fn listen(cx: &mut Cx, local: &mut Local, backlog: c_int) -> Result<Listener, Error> {
        let Some((fd, family)) = local.bound else {
            return Err(Error::Os(io::Error::from_raw_os_error(libc::EDESTADDRREQ)));
        };
        sys::listen(fd, backlog).map_err(Error::Os)?;
        let src = cx.r.add(fd).map_err(Error::Os)?;
        local.bound = None;
        Ok(Listener { src, ip: family != libc::AF_UNIX, queue: Vec::new(), batch: 0, pause_until: None })
    }

    /// Tries to take a connection for thread `tok`.
    pub fn accept(&mut self, cx: &mut Cx, tok: Tid) -> Accept {
        let src = self.src;
        if cx.r.waiter(src, Side::Reader).is_some() {
            self.queue.push(tok);
            return Accept::Queue;
        }
        if let Some(t) = self.pause_until {
            let now = cx.r.now();
            if now < t {
                return Accept::Wait(Some(t - now));
            }
            self.pause_until = None;
            cx.r.set_ready(src, Dir::Read, true);
        }
        if self.batch >= BATCH {
            self.batch = 0;
            return Accept::Yield;
        }
        if !cx.r.is_ready(src, Dir::Read) {
            return Accept::Wait(None);
        }
        loop {
            match sys::accept(src.fd) {
                Ok(fd) => {
                    let conn = match cx.r.add(fd) {
                        Ok(conn) => conn,
                        Err(e) => {
                            sys::close(fd);
                            return self.ended(cx, Accept::Fail(Error::Os(e)));
                        }
                    };
                    self.batch += 1;
                    return self.ended(cx, Accept::Done(Stream::accepted(conn, self.ip)));
                }
                Err(e) if e.kind() == WouldBlock => {
                    cx.r.set_ready(src, Dir::Read, false);
                    self.batch = 0;
                    return Accept::Wait(None);
                }
                // The connection was gone before it was taken: the next one.
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                Err(e) => {
                    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) {
                        self.pause_until = Some(cx.r.now() + PAUSE);
                    }
                    return self.ended(cx, Accept::Fail(Error::Os(e)));
                }
            }
        }
    }

    /// The rest of an accept whose wait timed out: a pause that is over
    /// tries again, a timeout of the caller's ends it.
    pub fn timed_out(&mut self, cx: &mut Cx, tok: Tid) -> Option<Error> {
        let now = cx.r.now();
        match self.pause_until {
            Some(t) if t <= now && !self.queue.contains(&tok) => None,
            _ => {
                self.forget(cx, tok);
                Some(Error::Timeout)
            }
        }
    }

    /// Takes thread `tok` out of the queue (its accept ended otherwise: a
    /// timeout, a kill) and gives the fd to the next thread if nobody waits on it.
    pub fn forget(&mut self, cx: &mut Cx, tok: Tid) {
        self.queue.retain(|&t| t != tok);
        self.next(cx);
    }

    fn ended(&mut self, cx: &mut Cx, a: Accept) -> Accept {
        self.next(cx);
        a
    }

    /// Wakes the first queued thread to try, if no thread waits on the fd.
    fn next(&mut self, cx: &mut Cx) {
        if cx.r.waiter(self.src, Side::Reader).is_none() && !self.queue.is_empty() {
            cx.woken.push((Token::Thread(self.queue.remove(0)), Reason::Ready));
        }
    }

    /// Closes the fd, waking every thread in accept as closed.
    pub fn close(&mut self, cx: &mut Cx) {
        cx.r.remove(self.src, cx.woken);
        for t in self.queue.drain(..) {
            cx.woken.push((Token::Thread(t), Reason::Closed));
        }
        sys::close(self.src.fd);
    }
}

/// `bind`'s host: `*` (every IPv4 address), `localhost`, an IP literal, or
/// `unix:/path`; shared by stream and datagram sockets.
pub fn local_addr(host: &[u8], port: u16) -> Result<Addr, &'static str> {
    let ip = match host {
        b"*" => Ipv4Addr::UNSPECIFIED.into(),
        b"localhost" => Ipv4Addr::LOCALHOST.into(),
        _ => match crate::addr::parse_host(host)? {
            crate::addr::Host::Unix(path) => return Ok(Addr::Unix(path.to_vec())),
            crate::addr::Host::Ip(ip) => ip,
            crate::addr::Host::Name(_) => return Err("no such host"),
        },
    };
    Ok(Addr::Ip(SocketAddr::new(ip, port)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use crate::testing::Env;

    /// A listener on 127.0.0.1 at a free port, and the port.
    fn listener(env: &mut Env) -> (Listener, u16) {
        let mut local = Local::default();
        local.bind(&local_addr(b"127.0.0.1", 0).unwrap()).unwrap();
        let Some((fd, _)) = local.bound else { panic!() };
        let Ok(Addr::Ip(a)) = sys::local_name(fd) else { panic!() };
        let l = Listener::listen(&mut env.cx(), &mut local, 128).unwrap();
        assert!(local.bound.is_none(), "the fd is the listener's");
        (l, a.port())
    }

    /// Accepts for thread 1, polling while it must wait.
    fn accept(env: &mut Env, l: &mut Listener) -> Stream {
        for _ in 0..100 {
            match l.accept(&mut env.cx(), Tid::test(1)) {
                Accept::Done(s) => return s,
                Accept::Wait(None) => {
                    env.r.wait(l.src, Side::Reader, Dir::Read, Token::Thread(Tid::test(1)), Some(5000));
                    env.woken.clear();
                    while env.woken.is_empty() {
                        env.r.poll(None, &mut env.woken).unwrap();
                    }
                    assert_eq!(env.woken, [(Token::Thread(Tid::test(1)), Reason::Ready)]);
                }
                a => panic!("{a:?}"),
            }
        }
        panic!("no connection");
    }

    #[test]
    fn accepted_connections_are_streams() {
        let mut env = Env::new();
        let (mut l, port) = listener(&mut env);
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut s = accept(&mut env, &mut l);
        assert!(s.is_connected());
        c.write_all(b"ping\n").unwrap();
        let mut got = None;
        for _ in 0..100 {
            match s.receive(&mut env.cx(), crate::buf::Pattern::Line) {
                crate::stream::Step::Done(d) => {
                    got = Some(d.to_vec());
                    break;
                }
                _ => env.r.poll(Some(100), &mut env.woken).unwrap(),
            }
        }
        assert_eq!(got.as_deref(), Some(&b"ping"[..]));
        assert_eq!(s.send(&mut env.cx(), b"pong"), crate::stream::Step::Done(4));
        let mut b = [0; 4];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"pong");
        s.close(&mut env.cx());
        l.close(&mut env.cx());
    }

    #[test]
    fn waiters_queue_behind_the_one_on_the_fd_and_close_wakes_them_all() {
        let mut env = Env::new();
        let (mut l, _) = listener(&mut env);
        assert!(matches!(l.accept(&mut env.cx(), Tid::test(1)), Accept::Wait(None)));
        env.r.wait(l.src, Side::Reader, Dir::Read, Token::Thread(Tid::test(1)), None);
        assert!(matches!(l.accept(&mut env.cx(), Tid::test(2)), Accept::Queue));
        assert!(matches!(l.accept(&mut env.cx(), Tid::test(3)), Accept::Queue));
        // Thread 2 times out: it leaves the queue; thread 1 still holds the fd.
        assert_eq!(l.timed_out(&mut env.cx(), Tid::test(2)).map(|e| e.message()), Some("timeout".into()));
        assert!(env.woken.is_empty());
        // Thread 1 is killed: the fd goes to thread 3.
        env.r.unwait(l.src, Side::Reader);
        l.forget(&mut env.cx(), Tid::test(1));
        assert_eq!(env.woken, [(Token::Thread(Tid::test(3)), Reason::Ready)]);
        env.woken.clear();
        assert!(matches!(l.accept(&mut env.cx(), Tid::test(3)), Accept::Wait(None)));
        env.r.wait(l.src, Side::Reader, Dir::Read, Token::Thread(Tid::test(3)), None);
        assert!(matches!(l.accept(&mut env.cx(), Tid::test(4)), Accept::Queue));
        l.close(&mut env.cx());
        assert_eq!(
            env.woken,
            [(Token::Thread(Tid::test(3)), Reason::Closed), (Token::Thread(Tid::test(4)), Reason::Closed)]
        );
        assert_eq!(env.r.pending(), 0);
    }

    #[test]
    fn a_flood_is_taken_in_batches() {
        let mut env = Env::new();
        let (mut l, port) = listener(&mut env);
        let clients: Vec<_> = (0..BATCH + 5).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
        let mut taken = vec![accept(&mut env, &mut l)];
        while taken.len() < BATCH as usize {
            match l.accept(&mut env.cx(), Tid::test(1)) {
                Accept::Done(s) => taken.push(s),
                a => panic!("{a:?} after {}", taken.len()),
            }
        }
        assert!(matches!(l.accept(&mut env.cx(), Tid::test(1)), Accept::Yield));
        taken.push(accept(&mut env, &mut l));
        for mut s in taken {
            s.close(&mut env.cx());
        }
        l.close(&mut env.cx());
        drop(clients);
    }

    #[test]
    fn bind_then_connect_uses_the_bound_address() {
        let mut env = Env::new();
        let (mut l, port) = listener(&mut env);
        let mut s = Stream::new();
        s.local.bind(&local_addr(b"127.0.0.1", 0).unwrap()).unwrap();
        let Some((fd, _)) = s.local.bound else { panic!() };
        let Ok(Addr::Ip(mine)) = sys::local_name(fd) else { panic!() };
        // An address of another family cannot use the bound fd.
        let v6 = Addr::Ip("[::1]:1".parse().unwrap());
        assert_eq!(s.local.take_for(&v6).unwrap().unwrap_err().raw_os_error(), Some(libc::EAFNOSUPPORT));
        let _ = s.connect(&mut env.cx(), vec![local_addr(b"127.0.0.1", port).unwrap()]);
        let mut peer = accept(&mut env, &mut l);
        let Some(src) = peer.src() else { panic!() };
        assert_eq!(sys::peer_name(src.fd).unwrap(), Addr::Ip(mine));
        peer.close(&mut env.cx());
        s.close(&mut env.cx());
        l.close(&mut env.cx());
    }

    #[test]
    fn address_in_use() {
        let mut env = Env::new();
        let (mut l, port) = listener(&mut env);
        let mut other = Local::default();
        let e = other.bind(&local_addr(b"127.0.0.1", port).unwrap()).unwrap_err();
        assert_eq!(sys::error_string(&e), "address already in use");
        assert!(other.bound.is_none(), "the fd of a failed bind is closed");
        l.close(&mut env.cx());
    }

    #[test]
    fn bind_hosts() {
        let at = |h: &[u8]| local_addr(h, 80);
        assert_eq!(at(b"*"), Ok(Addr::Ip("0.0.0.0:80".parse().unwrap())));
        assert_eq!(at(b"::"), Ok(Addr::Ip("[::]:80".parse().unwrap())));
        assert_eq!(at(b"[::1]"), Ok(Addr::Ip("[::1]:80".parse().unwrap())));
        assert_eq!(at(b"localhost"), Ok(Addr::Ip("127.0.0.1:80".parse().unwrap())));
        assert_eq!(at(b"unix:/tmp/x"), Ok(Addr::Unix(b"/tmp/x".to_vec())));
        assert_eq!(at(b"example.com"), Err("no such host"));
        assert_eq!(at(b"unix:"), Err("empty unix socket path"));
    }
}
