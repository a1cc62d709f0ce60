//! Datagram sockets (UDP, unix datagram): a peer set once (`open`, after a
//! name's lookup if need be), then whole datagrams each way. No Lua here;
//! like `stream`, each operation answers `Done`, `Wait` or `Fail`.
//!
//! Reads take up to two datagrams in one recvmmsg: one means the queue is
//! drained, so the next receive waits for an edge without a failed read
//! first (a request/response round trip costs one send and one read), and
//! the second is kept for the next receive. Errors are per datagram (an
//! ICMP port unreachable comes back as "connection refused" on the next
//! call): they never close the socket.

use std::borrow::Cow;
use std::io::{self, ErrorKind::WouldBlock};
use std::net::{IpAddr, SocketAddr};

use crate::reactor::{Dir, Reactor, Side, Src, Tid};
use crate::step::{Cx, Step};
use crate::sys::{self, Addr};

/// The largest datagram a receive returns (OpenResty's): the rest of a
/// longer one is dropped.
pub const MAX_DATAGRAM: usize = 65536;

/// Receives done without a wait after which the reader lets the other
/// threads run a turn: a socket that always has a datagram queued (a flood)
/// would otherwise keep its reader running for ever.
const BUDGET: u8 = 32;

#[derive(Debug)]
pub enum Error {
    Closed,
    Timeout,
    /// Another thread waits on the same side.
    Busy,
    Resolve(&'static str),
    Os(io::Error),
}

impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.message() == other.message()
    }
}

impl Error {
    /// The error as Lua sees it: OpenResty's words.
    pub fn message(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Error::Closed => "closed",
            Error::Timeout => "timeout",
            Error::Busy => "socket busy",
            Error::Resolve(e) => e,
            Error::Os(e) => return Cow::Owned(sys::error_string(e)),
        })
    }
}

/// The two buffers a read fills, shared by every datagram socket of a loop
/// (made at the first receive).
#[derive(Default)]
pub struct Scratch([Vec<u8>; 2]);

#[derive(Debug, Default)]
pub enum State {
    /// No peer: never set, or closed.
    #[default]
    Idle,
    /// Waiting for `name`'s addresses; `wait`: the query and the thread waiting on it.
    Resolving {
        name: String,
        port: u16,
        wait: Option<(u32, Tid)>,
    },
    Open(Conn),
}

#[derive(Debug)]
pub struct Conn {
    src: Src,
    /// A datagram the last read took beyond the one it returned.
    queued: Option<Vec<u8>>,
    /// The datagram a send waits to hand over.
    out: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Dgram {
    pub state: State,
    /// The local address the next `open` binds to (`bind`).
    pub local: Option<SocketAddr>,
    /// Receives done since the last wait (see `BUDGET`).
    streak: u8,
}

impl Dgram {
    pub fn new() -> Dgram {
        Dgram::default()
    }

    /// The registered fd, while there is one.
    pub fn src(&self) -> Option<Src> {
        match &self.state {
            State::Open(c) => Some(c.src),
            _ => None,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// The query and thread of a name being looked up, for the close path.
    pub fn resolving(&self) -> Option<(u32, Tid)> {
        match self.state {
            State::Resolving { wait, .. } => wait,
            _ => None,
        }
    }

    /// Closes the fd, waking every waiter as closed.
    pub fn close(&mut self, cx: &mut Cx) {
        if let State::Open(c) = std::mem::take(&mut self.state) {
            cx.r.remove(c.src, cx.woken);
            sys::close(c.src.fd);
        }
    }

    /// A socket for `peer`: bound to the local address if one was set (a
    /// unix one to a name of the kernel's, so the peer can answer), then
    /// connected. Whatever it had is closed first.
    pub fn open(&mut self, cx: &mut Cx, peer: &Addr) -> Result<(), Error> {
        self.close(cx);
        let fd = sys::dgram_socket(peer).map_err(Error::Os)?;
        let bound = match (peer, self.local) {
            (Addr::Unix(_), _) => sys::autobind(fd),
            (Addr::Ip(_), Some(local)) => sys::bind(fd, &Addr::Ip(local)),
            (Addr::Ip(_), None) => Ok(()),
        };
        let src = bound.and_then(|()| sys::connect(fd, peer)).and_then(|_| cx.r.add(fd));
        match src {
            Ok(src) => {
                self.state = State::Open(Conn { src, queued: None, out: Vec::new() });
                self.streak = 0;
                Ok(())
            }
            Err(e) => {
                sys::close(fd);
                Err(Error::Os(e))
            }
        }
    }

    /// The answer for a name: its first address, at `port`, is the peer.
    pub fn resolved(&mut self, cx: &mut Cx, port: u16, ips: Result<Vec<IpAddr>, &'static str>) -> Result<(), Error> {
        self.state = State::Idle;
        match ips.map(|ips| ips.first().copied()) {
            Ok(Some(ip)) => self.open(cx, &Addr::Ip(SocketAddr::new(ip, port))),
            Ok(None) => Err(Error::Resolve("no such host")),
            Err(e) => Err(Error::Resolve(e)),
        }
    }

    /// Whether this receive should let the other threads run a turn first
    /// (see `BUDGET`); it then goes on without asking again.
    pub fn turn_due(&mut self) -> bool {
        let due = self.streak >= BUDGET;
        if due {
            self.streak = 0;
        }
        due
    }

    /// `receive(size)`: the next datagram, its first `size` bytes, borrowed
    /// until the next call.
    pub fn receive<'a>(&'a mut self, cx: &mut Cx, scratch: &'a mut Scratch, size: usize) -> Step<&'a [u8], Error> {
        let State::Open(c) = &mut self.state else { return Step::Fail(Error::Closed) };
        let src = c.src;
        if cx.r.waiter(src, Side::Reader).is_some() {
            return Step::Fail(Error::Busy);
        }
        let size = size.min(MAX_DATAGRAM);
        if let Some(q) = c.queued.take() {
            // Kept in the scratch only for the length of the borrow.
            let b = &mut scratch.0[0];
            b.clear();
            b.extend_from_slice(&q[..q.len().min(size)]);
            self.streak = self.streak.saturating_add(1);
            return Step::Done(b);
        }
        if !cx.r.is_ready(src, Dir::Read) {
            self.streak = 0;
            return Step::Wait(Side::Reader, Dir::Read);
        }
        for b in &mut scratch.0 {
            b.clear();
            b.reserve_exact(MAX_DATAGRAM);
        }
        match sys::recv_datagrams(src.fd, &mut scratch.0) {
            Ok(n) => {
                if n == 2 {
                    c.queued = Some(scratch.0[1].clone());
                } else {
                    // Fewer than asked for: the queue is drained.
                    cx.r.set_ready(src, Dir::Read, false);
                }
                self.streak = self.streak.saturating_add(1);
                let b = &scratch.0[0];
                Step::Done(&b[..b.len().min(size)])
            }
            Err(e) if e.kind() == WouldBlock => {
                cx.r.set_ready(src, Dir::Read, false);
                self.streak = 0;
                Step::Wait(Side::Reader, Dir::Read)
            }
            Err(e) => {
                // Datagrams may follow the error: still ready.
                cx.r.clear_hup(src);
                Step::Fail(Error::Os(e))
            }
        }
    }

    /// `send`: the datagram `fill` writes (copied: a send that must wait
    /// keeps it) goes whole, now or once the socket takes it; `fill`'s error
    /// sends nothing.
    pub fn send_filled<E>(
        &mut self,
        cx: &mut Cx,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Step<(), Error>, E> {
        let State::Open(c) = &mut self.state else { return Ok(Step::Fail(Error::Closed)) };
        if cx.r.waiter(c.src, Side::Writer).is_some() {
            return Ok(Step::Fail(Error::Busy));
        }
        c.out.clear();
        fill(&mut c.out)?;
        Ok(self.flush(cx))
    }

    /// Hands the kernel the datagram `send` holds; `Wait` until it takes it.
    pub fn flush(&mut self, cx: &mut Cx) -> Step<(), Error> {
        let State::Open(c) = &mut self.state else { return Step::Fail(Error::Closed) };
        let step = flush(cx.r, c.src, &c.out);
        if !matches!(step, Step::Wait(..)) {
            c.out.clear();
            if c.out.capacity() > MAX_DATAGRAM {
                c.out = Vec::new();
            }
        }
        step
    }

    /// A send whose wait timed out: its datagram is dropped, the socket stays.
    pub fn send_timed_out(&mut self) -> Error {
        if let State::Open(c) = &mut self.state {
            c.out = Vec::new();
        }
        Error::Timeout
    }
}

fn flush(r: &mut Reactor, src: Src, b: &[u8]) -> Step<(), Error> {
    if !r.is_ready(src, Dir::Write) {
        return Step::Wait(Side::Writer, Dir::Write);
    }
    match sys::send(src.fd, b) {
        // A datagram goes whole or not at all.
        Ok(_) => Step::Done(()),
        Err(e) if e.kind() == WouldBlock => {
            r.set_ready(src, Dir::Write, false);
            Step::Wait(Side::Writer, Dir::Write)
        }
        Err(e) => {
            r.clear_hup(src);
            Step::Fail(Error::Os(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::{Reason, Token};
    use std::net::{Ipv4Addr, UdpSocket};
    use std::os::unix::net::UnixDatagram;

    struct Env {
        r: Reactor,
        spare: Vec<u8>,
        woken: Vec<(Token, Reason)>,
        scratch: Scratch,
    }

    impl Env {
        fn new() -> Env {
            Env { r: Reactor::new().unwrap(), spare: Vec::new(), woken: Vec::new(), scratch: Scratch::default() }
        }

        fn cx(&mut self) -> Cx<'_> {
            Cx { r: &mut self.r, spare: &mut self.spare, woken: &mut self.woken }
        }

        /// Waits as the scheduler would and says why the wait ended.
        fn wait(&mut self, d: &Dgram, side: Side, dir: Dir, timeout: u64) -> Reason {
            self.r.wait(d.src().unwrap(), side, dir, Token::Thread(Tid::test(1)), Some(timeout));
            let mut woken = Vec::new();
            while woken.is_empty() {
                self.r.poll(None, &mut woken).unwrap();
            }
            woken[0].1
        }

        /// Receives, waiting as long as it must.
        fn receive(&mut self, d: &mut Dgram, size: usize) -> Result<Vec<u8>, Error> {
            loop {
                let mut cx = Cx { r: &mut self.r, spare: &mut self.spare, woken: &mut self.woken };
                match d.receive(&mut cx, &mut self.scratch, size) {
                    Step::Done(b) => return Ok(b.to_vec()),
                    Step::Fail(e) => return Err(e),
                    Step::Wait(side, dir) => assert_eq!(self.wait(d, side, dir, 5000), Reason::Ready),
                }
            }
        }
    }

    impl Dgram {
        fn send(&mut self, cx: &mut Cx, b: &[u8]) -> Step<(), Error> {
            let Ok(step) = self.send_filled(cx, |out| {
                out.extend_from_slice(b);
                Ok::<(), std::convert::Infallible>(())
            });
            step
        }
    }

    fn udp_peer() -> (UdpSocket, Addr) {
        let p = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let a = Addr::Ip(p.local_addr().unwrap());
        (p, a)
    }

    /// A socket open to a UDP peer that has its address (from a first datagram).
    fn introduced(env: &mut Env) -> (Dgram, UdpSocket, std::net::SocketAddr) {
        let (peer, addr) = udp_peer();
        let mut d = Dgram::new();
        d.open(&mut env.cx(), &addr).unwrap();
        d.send(&mut env.cx(), b"hi");
        let (_, me) = peer.recv_from(&mut [0; 4]).unwrap();
        (d, peer, me)
    }

    #[test]
    fn a_round_trip_costs_one_send_and_one_read() {
        let mut env = Env::new();
        let (peer, addr) = udp_peer();
        let mut d = Dgram::new();
        d.open(&mut env.cx(), &addr).unwrap();
        // Nothing has come: the receive waits without reading.
        assert!(matches!(d.receive(&mut env.cx(), &mut Scratch::default(), 10), Step::Wait(Side::Reader, Dir::Read)));
        assert_eq!(d.send(&mut env.cx(), b"ping"), Step::Done(()));
        let mut b = [0; 16];
        let (n, from) = peer.recv_from(&mut b).unwrap();
        assert_eq!(&b[..n], b"ping");
        peer.send_to(b"pong", from).unwrap();
        assert_eq!(env.receive(&mut d, MAX_DATAGRAM).unwrap(), b"pong");
        // One datagram came: the socket is known drained.
        assert!(!env.r.is_ready(d.src().unwrap(), Dir::Read));
    }

    #[test]
    fn each_receive_is_one_datagram_cut_to_its_size() {
        let mut env = Env::new();
        let (mut d, peer, me) = introduced(&mut env);
        for m in [&b"first"[..], b"second", b"third", b""] {
            peer.send_to(m, me).unwrap();
        }
        assert_eq!(env.receive(&mut d, 3).unwrap(), b"fir");
        assert_eq!(env.receive(&mut d, 100).unwrap(), b"second", "kept from the first read");
        assert_eq!(env.receive(&mut d, 100).unwrap(), b"third");
        assert_eq!(env.receive(&mut d, 100).unwrap(), b"");
        let big = vec![7u8; 65507];
        peer.send_to(&big, me).unwrap();
        assert_eq!(env.receive(&mut d, usize::MAX).unwrap(), big);
    }

    #[test]
    fn icmp_unreachable_is_refused_on_the_next_call_and_the_socket_goes_on() {
        let mut env = Env::new();
        let (peer, addr) = udp_peer();
        drop(peer);
        let mut d = Dgram::new();
        d.open(&mut env.cx(), &addr).unwrap();
        assert_eq!(d.send(&mut env.cx(), b"anyone?"), Step::Done(()));
        let e = env.receive(&mut d, 10).unwrap_err();
        assert_eq!(e.message(), "connection refused");
        assert!(d.is_open());
        // The error was taken: the next receive waits again, and times out.
        let Step::Wait(side, dir) = d.receive(&mut env.cx(), &mut Scratch::default(), 10) else { panic!() };
        assert_eq!(env.wait(&d, side, dir, 5), Reason::Timeout);
        // A peer bound there now answers.
        let Addr::Ip(a) = addr else { unreachable!() };
        let Ok(peer) = UdpSocket::bind(a) else { return };
        assert_eq!(d.send(&mut env.cx(), b"again"), Step::Done(()));
        let (_, me) = peer.recv_from(&mut [0; 8]).unwrap();
        peer.send_to(b"here", me).unwrap();
        assert_eq!(env.receive(&mut d, 10).unwrap(), b"here");
    }

    #[test]
    fn unix_datagrams_and_a_send_that_waits_for_room() {
        let dir = std::env::temp_dir().join(format!("coevent-dgram-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("peer.sock");
        let _ = std::fs::remove_file(&path);
        let peer = UnixDatagram::bind(&path).unwrap();
        let mut env = Env::new();
        let mut d = Dgram::new();
        d.open(&mut env.cx(), &Addr::Unix(path.as_os_str().as_encoded_bytes().to_vec())).unwrap();
        assert_eq!(d.send(&mut env.cx(), b"hello"), Step::Done(()));
        let mut b = [0; 16];
        let (n, from) = peer.recv_from(&mut b).unwrap();
        assert_eq!(&b[..n], b"hello");
        // Autobound: the peer can answer.
        peer.send_to_addr(b"hi there", &from).unwrap();
        assert_eq!(env.receive(&mut d, 100).unwrap(), b"hi there");
        // The peer's queue fills (max_dgram_qlen): a send waits, and goes once it has room.
        let mut step = Step::Done(());
        for _ in 0..10_000 {
            step = d.send(&mut env.cx(), b"x");
            if step != Step::Done(()) {
                break;
            }
        }
        assert_eq!(step, Step::Wait(Side::Writer, Dir::Write));
        env.r.wait(d.src().unwrap(), Side::Writer, Dir::Write, Token::Thread(Tid::test(2)), None);
        assert_eq!(d.send(&mut env.cx(), b"y"), Step::Fail(Error::Busy));
        env.r.unwait(d.src().unwrap(), Side::Writer);
        peer.recv(&mut b).unwrap();
        assert_eq!(env.wait(&d, Side::Writer, Dir::Write, 5000), Reason::Ready);
        assert_eq!(d.flush(&mut env.cx()), Step::Done(()));
        // A timed-out send drops its datagram; the socket stays.
        assert_eq!(d.send(&mut env.cx(), b"z"), Step::Wait(Side::Writer, Dir::Write));
        assert_eq!(env.wait(&d, Side::Writer, Dir::Write, 5), Reason::Timeout);
        assert_eq!(d.send_timed_out(), Error::Timeout);
        assert!(d.is_open());
        d.close(&mut env.cx());
        assert_eq!(d.send(&mut env.cx(), b"late"), Step::Fail(Error::Closed));
        assert_eq!(env.r.pending(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_flood_lets_other_threads_run() {
        let mut env = Env::new();
        let (mut d, peer, me) = introduced(&mut env);
        for i in 0..100u8 {
            peer.send_to(&[i], me).unwrap();
        }
        let mut turns = 0;
        for i in 0..100u8 {
            if d.turn_due() {
                turns += 1;
            }
            assert_eq!(env.receive(&mut d, 1).unwrap(), [i]);
        }
        assert_eq!(turns, 100 / BUDGET as usize);
    }

    #[test]
    fn bind_and_names() {
        let mut env = Env::new();
        let (peer, addr) = udp_peer();
        let mut d = Dgram::new();
        let me = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap();
        d.local = Some(me);
        d.resolved(&mut env.cx(), addr_port(&addr), Ok(vec![Ipv4Addr::LOCALHOST.into()])).unwrap();
        d.send(&mut env.cx(), b"from a known port");
        let (_, from) = peer.recv_from(&mut [0; 32]).unwrap();
        assert_eq!(from, me);
        d.close(&mut env.cx());
        d.state = State::Resolving { name: "x.test".into(), port: 1, wait: None };
        assert_eq!(d.resolved(&mut env.cx(), 1, Err("no such host")), Err(Error::Resolve("no such host")));
        assert!(!d.is_open());
        // A local address of the other family.
        d.local = Some("[::1]:0".parse().unwrap());
        let e = d.open(&mut env.cx(), &addr).unwrap_err();
        assert!(matches!(e, Error::Os(_)), "{e:?}");
        assert!(!d.is_open());
        assert_eq!(env.r.pending(), 0);
    }

    fn addr_port(a: &Addr) -> u16 {
        match a {
            Addr::Ip(a) => a.port(),
            Addr::Unix(_) => 0,
        }
    }
}
