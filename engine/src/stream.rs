//! The connected stream's state machine: connect (address after address),
//! receive patterns, send and flush, close. No Lua here: each operation tries
//! what buffers and cached readiness allow and answers `Done`, `Wait` (which
//! side waits for which readiness) or `Fail`; after a wait the caller tries
//! again, or reports the wait's timeout (`*_timed_out`).
//!
//! Bytes move through a `Transport` (`transport`): a plain fd, or a TLS
//! session (`tls`), which may need the other direction's readiness than its
//! caller's (the `Wait` names both).

use std::io::{self, ErrorKind::WouldBlock};

use crate::buf::{Pattern, RecvBuf};
use crate::local::Local;
use crate::reactor::{Dir, Handle, Reactor, Reason, Side, Src, Tid, Token};
use crate::step::Io;
// Re-exported: the Lua layer names them by these paths.
pub use crate::step::{Cx, Error, Step};
use crate::sys::{self, Addr, SockOpt};
use crate::transport::Transport;
use crate::until::{Scan, Until};

/// A failed receive: the error and what was buffered (the partial result).
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    pub err: Error,
    pub partial: Vec<u8>,
}

impl Failure {
    fn new(err: Error) -> Failure {
        Failure { err, partial: Vec::new() }
    }
}

/// Limits against a hostile peer: the longest line, the most bytes one
/// receive may gather.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_line: usize,
    pub max_receive: usize,
}

/// Default limits of `receive` (`setoption('max-line'|'max-receive', n)`).
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;
pub const DEFAULT_MAX_RECEIVE: usize = 64 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_line: DEFAULT_MAX_LINE, max_receive: DEFAULT_MAX_RECEIVE }
    }
}

/// A live connection: its transport and buffers. Moved whole into a
/// keepalive pool and out again (see `pool`).
#[derive(Debug)]
pub struct Conn {
    pub(crate) t: Transport,
    buf: RecvBuf,
    /// The peer has closed its side.
    eof: bool,
    /// `shutdown` ended a direction of ours: never reusable.
    shut: bool,
    /// Bytes a send could not hand to the kernel yet, and how many of them went.
    out: Vec<u8>,
    sent: usize,
    /// What the pending send returns once it is done: its data's length.
    owed: usize,
}

impl Conn {
    /// A new connection over the plain fd.
    pub fn plain(src: Src) -> Conn {
        Conn {
            t: Transport::Plain(src),
            buf: RecvBuf::new(),
            eof: false,
            shut: false,
            out: Vec::new(),
            sent: 0,
            owed: 0,
        }
    }

    pub fn src(&self) -> Src {
        self.t.src()
    }

    /// Whether bytes received are buffered and not read yet.
    pub(crate) fn unread(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Closes an idle connection: no thread waits on it.
    pub fn close(self, r: &mut Reactor) {
        close_src(&mut Cx { r, spare: &mut Vec::new(), woken: &mut Vec::new() }, self.t.src());
    }
}

#[derive(Debug, Default)]
pub enum State {
    #[default]
    Fresh,
    /// Waiting for `name`'s addresses; `wait`: the query and the thread waiting on it.
    Resolving {
        name: String,
        port: u16,
        wait: Option<(u32, Tid)>,
    },
    /// A connect in flight to `addr`, with the addresses still to try after it.
    Connecting {
        src: Src,
        addr: Addr,
        rest: Vec<Addr>,
    },
    /// Waiting in keepalive pool `pool`'s backlog (thread `tok`) for a
    /// connection to `host` to be allowed.
    Queued {
        pool: Handle,
        host: Vec<u8>,
        port: u16,
        tok: Tid,
    },
    Connected(Conn),
    Closed,
}

#[derive(Debug, Default)]
pub struct Stream {
    pub state: State,
    pub limits: Limits,
    /// The keepalive pool this connection counts in, while it lives.
    pub pool: Option<Handle>,
    /// How many times its connection came from a pool.
    pub reused: u32,
    /// The pool key `setkeepalive` files the connection under, when it did
    /// not count in a pool already.
    pub key: Vec<u8>,
    /// `setclientcert`'s, for the handshakes that follow.
    #[cfg(feature = "tls")]
    pub cert: Option<Box<crate::tls::ClientCert>>,
    /// What `bind` did before a connect or a listen.
    pub local: Local,
    /// Accepted by a listener: a client's connection, never to be filed in a
    /// pool that a connect could take it from.
    pub server: bool,
}

/// `send` keeps at most this much queue storage once a send is done.
const OUT_KEPT: usize = 64 * 1024;

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    /// A connection a listener accepted, registered as `src`.
    pub fn accepted(src: Src, ip: bool) -> Stream {
        let mut s = Stream { server: true, ..Stream::new() };
        let peer = if ip { Addr::Ip(([0, 0, 0, 0], 0).into()) } else { Addr::Unix(Vec::new()) };
        s.established(src, &peer);
        s
    }

    /// The registered fd, while there is one.
    pub fn src(&self) -> Option<Src> {
        match &self.state {
            State::Connecting { src, .. } => Some(*src),
            State::Connected(c) => Some(c.t.src()),
            _ => None,
        }
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected(_))
    }

    /// Closes the fd (or drops the name being resolved), waking every waiter
    /// as closed. Returns a waiting reader with what was buffered for it, so
    /// no byte read from the peer is lost. The resolver's waiter, if any, is
    /// the caller's to take back (see `State::Resolving`).
    pub fn close(&mut self, cx: &mut Cx) -> Option<(Token, RecvBuf)> {
        if let Some(p) = self.pool.take() {
            cx.woken.push((Token::Pool(p), Reason::Closed));
        }
        let mut orphan = None;
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Connecting { src, .. } => close_src(cx, src),
            #[allow(unused_mut)]
            State::Connected(mut c) => {
                #[cfg(feature = "tls")]
                if let Transport::Tls(t) = &mut c.t {
                    t.shutdown(cx.r);
                }
                let src = c.t.src();
                orphan = cx.r.waiter(src, Side::Reader).map(|t| (t, c.buf));
                close_src(cx, src);
            }
            State::Fresh | State::Resolving { .. } | State::Queued { .. } | State::Closed => {}
        }
        self.local.close();
        orphan
    }

    /// Takes a connection out of a pool (see `pool`).
    pub fn resume(&mut self, conn: Conn, pool: Handle, reused: u32) {
        self.state = State::Connected(conn);
        self.pool = Some(pool);
        self.reused = reused;
    }

    /// `shutdown(how)`: ends a direction (or both) of the connection, which
    /// can then never go into a pool.
    pub fn shutdown(&mut self, how: sys::Shutdown) -> Result<(), Error> {
        let State::Connected(c) = &mut self.state else { return Err(Error::Closed) };
        c.shut = true;
        sys::shutdown(c.t.src().fd, how).map_err(Error::Os)
    }

    /// `setkeepalive`: the connection, for a pool, if it is idle and whole,
    /// leaving the stream closed. A peer that has sent more or closed, or a
    /// `shutdown` of ours, makes it fail, and close.
    pub fn keepalive(&mut self, cx: &mut Cx) -> Result<Conn, Error> {
        let c = match &mut self.state {
            State::Connected(c) if c.shut => {
                self.close(cx);
                return Err(Error::Closed);
            }
            State::Connected(c) if !c.eof && !cx.r.hung_up(c.t.src(), Dir::Read) => c,
            State::Resolving { .. } | State::Connecting { .. } | State::Queued { .. } => {
                return Err(Error::BusyConnecting)
            }
            _ => return Err(Error::Closed),
        };
        let src = c.t.src();
        if cx.r.waiter(src, Side::Reader).is_some() {
            return Err(Error::BusyReading);
        }
        if cx.r.waiter(src, Side::Writer).is_some() {
            return Err(Error::BusyWriting);
        }
        if !c.buf.is_empty() || c.t.holds_data() {
            return Err(Error::UnreadData);
        }
        // Readiness not seen drained: look whether the peer sent anything.
        if cx.r.is_ready(src, Dir::Read) {
            match sys::peek(src.fd) {
                Err(e) if e.kind() == WouldBlock => cx.r.set_ready(src, Dir::Read, false),
                _ => {
                    self.close(cx);
                    return Err(Error::Dubious);
                }
            }
        }
        c.buf.release(cx.spare);
        let State::Connected(c) = std::mem::replace(&mut self.state, State::Closed) else { unreachable!() };
        Ok(c)
    }

    /// Starts connecting to the first of `addrs` (the stream must be closed
    /// or fresh).
    pub fn connect(&mut self, cx: &mut Cx, mut addrs: Vec<Addr>) -> Step<()> {
        debug_assert!(self.src().is_none());
        addrs.reverse();
        self.try_next(cx, addrs, Error::Resolve("no such host"))
    }

    /// Starts a connect to the next address of `rest` (reversed); `err` is
    /// the error if none is left or takes it.
    fn try_next(&mut self, cx: &mut Cx, mut rest: Vec<Addr>, mut err: Error) -> Step<()> {
        while let Some(addr) = rest.pop() {
            // A bound socket (`bind`) tries its one fd, on the first address of its family.
            let fd = match self.local.take_for(&addr) {
                Some(Ok(fd)) => {
                    rest.clear();
                    Ok(fd)
                }
                Some(Err(e)) => Err(e),
                None => sys::stream_socket(&addr),
            };
            let fd = match fd {
                Ok(fd) => fd,
                Err(e) => {
                    err = Error::Os(e);
                    continue;
                }
            };
            let src = match cx.r.add(fd) {
                Ok(src) => src,
                Err(e) => {
                    sys::close(fd);
                    err = Error::Os(e);
                    continue;
                }
            };
            match sys::connect(fd, &addr) {
                Ok(true) => return self.established(src, &addr),
                Ok(false) => {
                    cx.r.set_ready(src, Dir::Write, false);
                    self.state = State::Connecting { src, addr, rest };
                    return Step::Wait(Side::Writer, Dir::Write);
                }
                Err(e) => {
                    close_src(cx, src);
                    err = Error::Os(e);
                }
            }
        }
        self.close(cx);
        Step::Fail(err)
    }

    fn established(&mut self, src: Src, addr: &Addr) -> Step<()> {
        if matches!(addr, Addr::Ip(_)) {
            // Requests are written whole; Nagle would only delay them.
            let _ = sys::set_option(src.fd, SockOpt::NoDelay, 1);
        }
        let conn = Conn::plain(src);
        self.state = State::Connected(conn);
        Step::Done(())
    }

    /// The answer for the name a `Resolving` stream waited on: connect to
    /// its addresses, or fail with the resolver's word for why.
    pub fn resolved(&mut self, cx: &mut Cx, addrs: Result<Vec<Addr>, &'static str>) -> Step<()> {
        match addrs {
            Ok(addrs) => {
                self.state = State::Fresh;
                self.connect(cx, addrs)
            }
            Err(e) => {
                self.close(cx);
                Step::Fail(Error::Resolve(e))
            }
        }
    }

    /// The rest of a connect after its wait ended by readiness.
    pub fn connect_ready(&mut self, cx: &mut Cx) -> Step<()> {
        let State::Connecting { src, .. } = self.state else { return Step::Fail(Error::Closed) };
        if !cx.r.is_ready(src, Dir::Write) {
            return Step::Wait(Side::Writer, Dir::Write);
        }
        let State::Connecting { src, addr, rest } = std::mem::replace(&mut self.state, State::Closed) else {
            unreachable!()
        };
        match sys::take_error(src.fd) {
            Ok(0) => self.established(src, &addr),
            r => {
                close_src(cx, src);
                let e = match r {
                    Ok(e) => io::Error::from_raw_os_error(e),
                    Err(e) => e,
                };
                self.try_next(cx, rest, Error::Os(e))
            }
        }
    }

    /// A connect whose wait timed out: closed, with no other address tried.
    pub fn connect_timed_out(&mut self, cx: &mut Cx) -> Error {
        self.close(cx);
        Error::Timeout
    }

    /// `receive(p)`: the bytes `p` asks for, borrowed until the next call.
    /// A failure other than a count over the limit closes the stream.
    pub fn receive(&mut self, cx: &mut Cx, p: Pattern) -> Step<&[u8], Failure> {
        let limits = self.limits;
        if matches!(p, Pattern::Bytes(n) if n > limits.max_receive) {
            // Refused before reading anything: the stream is intact, the socket stays open.
            return Step::Fail(Failure::new(Error::TooLarge));
        }
        let State::Connected(c) = &mut self.state else { return Step::Fail(Failure::new(Error::Closed)) };
        if cx.r.waiter(c.t.src(), Side::Reader).is_some() {
            return Step::Fail(Failure::new(Error::BusyReading));
        }
        // Read until `p` is buffered, or an error (a limit passed: the stream
        // cannot be followed any more).
        let err = loop {
            match c.buf.find(p, c.eof) {
                Some(n) if p == Pattern::Line && n > limits.max_line && c.buf.line_len(n) > limits.max_line => {
                    break Error::LineTooLong
                }
                Some(n) => {
                    let State::Connected(c) = &mut self.state else { unreachable!() };
                    return Step::Done(c.buf.take_found(p, n));
                }
                None if p == Pattern::Line && c.buf.len() > limits.max_line => break Error::LineTooLong,
                None if p == Pattern::All && c.buf.len() > limits.max_receive => break Error::TooLarge,
                None if c.eof => break Error::Closed,
                None => {}
            }
            let have = c.buf.len();
            let want = match p {
                Pattern::Bytes(n) => Some(n - have),
                _ => None,
            };
            c.buf.lend(cx.spare);
            let (v, room) = c.buf.spare(want);
            // Never gather more than one byte past the limit.
            let room = match p {
                Pattern::All => room.min(limits.max_receive.saturating_add(1).saturating_sub(have)),
                _ => room,
            };
            match c.t.recv(cx.r, v, room) {
                Io::Moved(_) => {}
                Io::Eof => c.eof = true,
                Io::Wait(dir) => return Step::Wait(Side::Reader, dir),
                Io::Err(e) => break Error::Os(e),
            }
        };
        let partial = match err {
            Error::LineTooLong | Error::TooLarge => Vec::new(),
            _ => c.buf.take_partial(p).to_vec(),
        };
        self.close(cx);
        Step::Fail(Failure { err, partial })
    }

    /// A receive whose wait timed out: what was buffered, as its partial
    /// result; the stream stays open.
    pub fn receive_timed_out(&mut self, p: Pattern) -> Failure {
        let partial = match &mut self.state {
            State::Connected(c) => c.buf.take_partial(p).to_vec(),
            _ => Vec::new(),
        };
        Failure { err: Error::Timeout, partial }
    }

    /// `receiveuntil`'s iterator: the bytes before `u`'s boundary (with it,
    /// if inclusive), or at most about `size` of them (see `until`), borrowed
    /// from `u` until its `release`. `size`: Some (0: no limit) starts a call,
    /// None goes on with one after its wait. `Done(None)`: the call after a
    /// limited one that reached the boundary. Past `max_receive` held bytes the
    /// call fails as too large; every failure but busy closes the stream, with
    /// what the call had read, the started boundary included, as its partial.
    /// (The limit counts the bytes before the boundary.)
    pub fn receive_until<'u>(
        &mut self,
        cx: &mut Cx,
        u: &'u mut Until,
        size: Option<usize>,
    ) -> Step<Option<&'u [u8]>, Failure> {
        let max = self.limits.max_receive;
        let State::Connected(c) = &mut self.state else { return Step::Fail(Failure::new(Error::Closed)) };
        if cx.r.waiter(c.t.src(), Side::Reader).is_some() {
            return Step::Fail(Failure::new(Error::BusyReading));
        }
        if let Some(size) = size {
            if std::mem::take(&mut u.ended) {
                return Step::Done(None);
            }
            u.begin(size);
        }
        let err = loop {
            // Everything buffered is scanned once: the bytes of a partial
            // match move into `u`, so a scan never starts over.
            let (k, scan) = u.scan(c.buf.bytes());
            c.buf.skip(k);
            if scan != Scan::More {
                return Step::Done(Some(u.output()));
            }
            // The bytes before the boundary count (a started boundary is
            // shorter than the pattern).
            let out = u.output().len();
            if out > max {
                break Error::TooLarge;
            }
            if c.eof {
                break Error::Closed;
            }
            c.buf.lend(cx.spare);
            let (v, room) = c.buf.spare(None);
            // Never gather more than one byte past the limit (room >= 1).
            let room = room.min(max.saturating_add(1) - out);
            match c.t.recv(cx.r, v, room) {
                Io::Moved(_) => {}
                Io::Eof => c.eof = true,
                Io::Wait(dir) => return Step::Wait(Side::Reader, dir),
                Io::Err(e) => break Error::Os(e),
            }
        };
        let partial = match err {
            Error::TooLarge => {
                u.reset();
                Vec::new()
            }
            _ => u.ended_stream().to_vec(),
        };
        u.release();
        self.close(cx);
        Step::Fail(Failure { err, partial })
    }

    /// `receiveany(max)`: what is buffered, at most `max` bytes, reading
    /// once if nothing is. A failure but busy closes the stream.
    pub fn receive_any(&mut self, cx: &mut Cx, max: usize) -> Step<&[u8], Failure> {
        let State::Connected(c) = &mut self.state else { return Step::Fail(Failure::new(Error::Closed)) };
        if cx.r.waiter(c.t.src(), Side::Reader).is_some() {
            return Step::Fail(Failure::new(Error::BusyReading));
        }
        let err = loop {
            if !c.buf.is_empty() {
                let State::Connected(c) = &mut self.state else { unreachable!() };
                let n = c.buf.len().min(max);
                return Step::Done(c.buf.take(Pattern::Bytes(n), false).expect("buffered"));
            }
            if c.eof {
                break Error::Closed;
            }
            c.buf.lend(cx.spare);
            let (v, room) = c.buf.spare(None);
            match c.t.recv(cx.r, v, room) {
                Io::Moved(_) => {}
                Io::Eof => c.eof = true,
                Io::Wait(dir) => return Step::Wait(Side::Reader, dir),
                Io::Err(e) => break Error::Os(e),
            }
        };
        self.close(cx);
        Step::Fail(Failure::new(err))
    }

    /// Gives an empty receive buffer's storage back to the pool (after the
    /// bytes a receive returned have been copied out).
    pub fn release(&mut self, spare: &mut Vec<u8>) {
        if let State::Connected(c) = &mut self.state {
            c.buf.release(spare);
        }
    }

    /// `send`: hands the kernel what it takes of `b` now and keeps the rest
    /// (copied) for `flush`. Done with `b`'s length once all of it has gone.
    pub fn send(&mut self, cx: &mut Cx, b: &[u8]) -> Step<usize> {
        let c = match self.writable(cx) {
            Ok(c) => c,
            Err(e) => return Step::Fail(e),
        };
        if c.out.is_empty() {
            // Straight out when nothing is queued.
            let n = match c.t.send(cx.r, b) {
                Io::Moved(n) => n,
                Io::Wait(_) | Io::Eof => 0,
                Io::Err(e) => {
                    self.close(cx);
                    return Step::Fail(Error::Os(e));
                }
            };
            if n == b.len() {
                return Step::Done(n);
            }
            c.out.extend_from_slice(&b[n..]);
        } else {
            c.out.extend_from_slice(b);
        }
        c.owed = b.len();
        self.flush(cx)
    }

    /// `send` of data that `fill` appends to the queue (a table's pieces);
    /// `fill`'s error leaves the queue as it was.
    pub fn send_filled<E>(
        &mut self,
        cx: &mut Cx,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Step<usize>, E> {
        let c = match self.writable(cx) {
            Ok(c) => c,
            Err(e) => return Ok(Step::Fail(e)),
        };
        let queued = c.out.len();
        if let Err(e) = fill(&mut c.out) {
            c.out.truncate(queued);
            return Err(e);
        }
        c.owed = c.out.len() - queued;
        Ok(self.flush(cx))
    }

    /// The connection, if a send may start on it.
    fn writable(&mut self, cx: &mut Cx) -> Result<&mut Conn, Error> {
        let State::Connected(c) = &mut self.state else { return Err(Error::Closed) };
        if cx.r.waiter(c.t.src(), Side::Writer).is_some() {
            return Err(Error::BusyWriting);
        }
        Ok(c)
    }

    /// Sends what `send` queued; answers `Wait` until it is all gone.
    pub fn flush(&mut self, cx: &mut Cx) -> Step<usize> {
        let State::Connected(c) = &mut self.state else { return Step::Fail(Error::Closed) };
        while c.sent < c.out.len() {
            match c.t.send(cx.r, &c.out[c.sent..]) {
                Io::Moved(n) => c.sent += n,
                Io::Wait(dir) => return Step::Wait(Side::Writer, dir),
                Io::Eof => return Step::Wait(Side::Writer, Dir::Write),
                Io::Err(e) => {
                    self.close(cx);
                    return Step::Fail(Error::Os(e));
                }
            }
        }
        c.out.clear();
        if c.out.capacity() > OUT_KEPT {
            c.out = Vec::new();
        }
        c.sent = 0;
        Step::Done(std::mem::take(&mut c.owed))
    }

    /// A send whose wait timed out: the stream's position is lost, so it closes.
    pub fn flush_timed_out(&mut self, cx: &mut Cx) -> Error {
        self.close(cx);
        Error::Timeout
    }
}

fn close_src(cx: &mut Cx, src: Src) {
    cx.r.remove(src, cx.woken);
    sys::close(src.fd);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Env;
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};

    impl Env {
        /// Waits as the scheduler would: until the wait ends, and says why.
        fn wait(&mut self, s: &Stream, side: Side, dir: Dir, timeout: u64) -> Reason {
            self.r.wait(s.src().unwrap(), side, dir, Token::Thread(Tid::test(1)), Some(timeout));
            let mut woken = Vec::new();
            while woken.is_empty() {
                self.r.poll(None, &mut woken).unwrap();
            }
            assert_eq!(woken.len(), 1);
            woken[0].1
        }
    }

    /// A stream connected to the returned peer (a unix socket pair).
    fn pair(env: &mut Env) -> (Stream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let src = env.r.add(std::os::fd::IntoRawFd::into_raw_fd(a)).unwrap();
        let mut s = Stream::new();
        assert_eq!(s.established(src, &Addr::Unix(Vec::new())), Step::Done(()));
        (s, b)
    }

    /// Receives `p`, waiting as long as it must.
    fn receive(env: &mut Env, s: &mut Stream, p: Pattern) -> Result<Vec<u8>, Failure> {
        loop {
            match s.receive(&mut env.cx(), p) {
                Step::Done(d) => return Ok(d.to_vec()),
                Step::Fail(f) => return Err(f),
                Step::Wait(side, dir) => assert_eq!(env.wait(s, side, dir, 5000), Reason::Ready),
            }
        }
    }

    #[test]
    fn patterns_across_reads() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        assert!(matches!(s.receive(&mut env.cx(), Pattern::Line), Step::Wait(Side::Reader, Dir::Read)));
        peer.write_all(b"+PO").unwrap();
        peer.write_all(b"NG\r\nabc").unwrap();
        assert_eq!(receive(&mut env, &mut s, Pattern::Line).unwrap(), b"+PONG");
        peer.write_all(b"defg").unwrap();
        assert_eq!(receive(&mut env, &mut s, Pattern::Bytes(5)).unwrap(), b"abcde");
        peer.write_all(b"\r\nlast").unwrap();
        drop(peer);
        assert_eq!(receive(&mut env, &mut s, Pattern::All).unwrap(), b"fg\r\nlast");
        assert_eq!(receive(&mut env, &mut s, Pattern::All).unwrap(), b"", "an empty string once closed");
        let f = receive(&mut env, &mut s, Pattern::Line).unwrap_err();
        assert_eq!((f.err, f.partial), (Error::Closed, Vec::new()));
        assert!(!s.is_connected());
    }

    #[test]
    fn the_peer_closing_mid_count_gives_the_partial() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        peer.write_all(b"a\r\rb").unwrap();
        drop(peer);
        assert_eq!(
            receive(&mut env, &mut s, Pattern::Line),
            Err(Failure { err: Error::Closed, partial: b"ab".to_vec() })
        );
    }

    #[test]
    fn limits() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        s.limits = Limits { max_line: 4, max_receive: 8 };
        // A count over the limit is refused before any read; the stream stays.
        assert_eq!(receive(&mut env, &mut s, Pattern::Bytes(9)), Err(Failure::new(Error::TooLarge)));
        assert!(s.is_connected());
        // CRs do not count towards a line's length.
        peer.write_all(b"ab\r\r\rcd\n").unwrap();
        assert_eq!(receive(&mut env, &mut s, Pattern::Line).unwrap(), b"abcd");
        peer.write_all(b"abcde\n").unwrap();
        assert_eq!(receive(&mut env, &mut s, Pattern::Line), Err(Failure::new(Error::LineTooLong)));
        assert!(!s.is_connected(), "past a limit the stream is dropped");

        let (mut s, mut peer) = pair(&mut env);
        s.limits.max_receive = 8;
        peer.write_all(&[b'x'; 100]).unwrap();
        assert_eq!(receive(&mut env, &mut s, Pattern::All), Err(Failure::new(Error::TooLarge)));
    }

    /// `setoption('max-receive', 2^64)` once made the room of `'*a'` wrap to
    /// nothing: it returned "" at once.
    #[test]
    fn the_largest_limit_does_not_wrap() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        s.limits = Limits { max_line: usize::MAX, max_receive: usize::MAX };
        peer.write_all(b"all of it\nand more").unwrap();
        drop(peer);
        assert_eq!(receive(&mut env, &mut s, Pattern::Line).unwrap(), b"all of it");
        assert_eq!(receive(&mut env, &mut s, Pattern::All).unwrap(), b"and more");
    }

    #[test]
    fn a_timed_out_receive_keeps_the_stream_and_its_bytes() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        peer.write_all(b"par").unwrap();
        env.r.poll(Some(1000), &mut Vec::new()).unwrap();
        let Step::Wait(side, dir) = s.receive(&mut env.cx(), Pattern::Line) else { panic!() };
        assert_eq!(env.wait(&s, side, dir, 5), Reason::Timeout);
        assert_eq!(s.receive_timed_out(Pattern::Line), Failure { err: Error::Timeout, partial: b"par".to_vec() });
        assert!(s.is_connected());
        peer.write_all(b"tial\n").unwrap();
        assert_eq!(receive(&mut env, &mut s, Pattern::Line).unwrap(), b"tial");
    }

    #[test]
    fn a_close_hands_the_waiting_reader_its_bytes() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        peer.write_all(b"0123456789").unwrap();
        env.r.poll(Some(1000), &mut Vec::new()).unwrap();
        let Step::Wait(side, dir) = s.receive(&mut env.cx(), Pattern::Bytes(20)) else { panic!() };
        env.r.wait(s.src().unwrap(), side, dir, Token::Thread(Tid::test(4)), None);
        // A second reader finds the socket busy.
        let busy = s.receive(&mut env.cx(), Pattern::Line);
        assert_eq!(busy, Step::Fail(Failure::new(Error::BusyReading)));
        let (tok, mut buf) = s.close(&mut env.cx()).expect("a reader waited");
        assert_eq!(tok, Token::Thread(Tid::test(4)));
        assert_eq!(buf.take_partial(Pattern::Bytes(20)), b"0123456789");
        assert_eq!(env.woken, [(Token::Thread(Tid::test(4)), Reason::Closed)]);
        assert_eq!(env.r.pending(), 0);
        assert!(s.close(&mut env.cx()).is_none(), "closed once");
    }

    /// One call of a `receiveuntil` iterator, waiting as long as it must.
    fn until(env: &mut Env, s: &mut Stream, u: &mut Until, size: usize) -> Result<Option<Vec<u8>>, Failure> {
        until_from(env, s, u, Some(size))
    }

    /// `until`, or its rest after a wait (`size` None).
    fn until_from(
        env: &mut Env,
        s: &mut Stream,
        u: &mut Until,
        mut size: Option<usize>,
    ) -> Result<Option<Vec<u8>>, Failure> {
        loop {
            match s.receive_until(&mut env.cx(), u, size.take()) {
                Step::Done(d) => {
                    let d = d.map(<[u8]>::to_vec);
                    u.release();
                    return Ok(d);
                }
                Step::Fail(f) => return Err(f),
                Step::Wait(side, dir) => assert_eq!(env.wait(s, side, dir, 5000), Reason::Ready),
            }
        }
    }

    #[test]
    fn until_boundaries_split_across_reads() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        let mut u = Until::new(b"--abc", false);
        assert!(matches!(s.receive_until(&mut env.cx(), &mut u, Some(0)), Step::Wait(Side::Reader, Dir::Read)));
        peer.write_all(b"one---a").unwrap();
        env.r.poll(Some(1000), &mut Vec::new()).unwrap();
        assert!(matches!(s.receive_until(&mut env.cx(), &mut u, None), Step::Wait(..)));
        peer.write_all(b"bc--ab--abctail").unwrap();
        assert_eq!(until_from(&mut env, &mut s, &mut u, None).unwrap().unwrap(), b"one-");
        assert_eq!(until(&mut env, &mut s, &mut u, 0).unwrap().unwrap(), b"--ab");
        // What follows stays buffered for other reads.
        assert_eq!(receive(&mut env, &mut s, Pattern::Bytes(4)).unwrap(), b"tail");
        // Limited: at most the size, then "" at the boundary, then nothing.
        peer.write_all(b"12345--abc").unwrap();
        assert_eq!(until(&mut env, &mut s, &mut u, 3).unwrap().unwrap(), b"123");
        assert_eq!(until(&mut env, &mut s, &mut u, 3).unwrap().unwrap(), b"45");
        assert_eq!(until(&mut env, &mut s, &mut u, 3).unwrap(), None);
        // The peer closing mid-boundary: the partial keeps its started bytes.
        peer.write_all(b"xy--ab").unwrap();
        drop(peer);
        let f = until(&mut env, &mut s, &mut u, 0).unwrap_err();
        assert_eq!((f.err, f.partial), (Error::Closed, b"xy--ab".to_vec()));
        assert!(!s.is_connected());
        let f = until(&mut env, &mut s, &mut u, 0).unwrap_err();
        assert_eq!(f, Failure::new(Error::Closed));
    }

    #[test]
    fn until_timeouts_keep_the_stream_and_the_started_boundary() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        let mut u = Until::new(b"--abc", true);
        peer.write_all(b"xx--ab").unwrap();
        env.r.poll(Some(1000), &mut Vec::new()).unwrap();
        let Step::Wait(side, dir) = s.receive_until(&mut env.cx(), &mut u, Some(0)) else { panic!() };
        assert_eq!(env.wait(&s, side, dir, 5), Reason::Timeout);
        assert_eq!(u.timed_out(), b"xx");
        u.release();
        assert!(s.is_connected());
        peer.write_all(b"c!").unwrap();
        assert_eq!(until(&mut env, &mut s, &mut u, 0).unwrap().unwrap(), b"--abc", "inclusive");
        assert_eq!(receive(&mut env, &mut s, Pattern::Bytes(1)).unwrap(), b"!");
    }

    #[test]
    fn until_is_bounded_by_max_receive() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        s.limits.max_receive = 8;
        let mut u = Until::new(b"--", false);
        peer.write_all(b"123456789-").unwrap();
        assert_eq!(until(&mut env, &mut s, &mut u, 0).unwrap_err(), Failure::new(Error::TooLarge));
        assert!(!s.is_connected());
        assert_eq!(u.held(), 0);
        // Eight bytes and the boundary fit.
        let (mut s, mut peer2) = pair(&mut env);
        s.limits.max_receive = 8;
        peer2.write_all(b"12345678--").unwrap();
        assert_eq!(until(&mut env, &mut s, &mut u, 0).unwrap().unwrap(), b"12345678");
        drop(peer);
    }

    #[test]
    fn receive_any_takes_what_there_is() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        let any = |env: &mut Env, s: &mut Stream, max| loop {
            match s.receive_any(&mut env.cx(), max) {
                Step::Done(d) => return Ok(d.to_vec()),
                Step::Fail(f) => return Err(f),
                Step::Wait(side, dir) => assert_eq!(env.wait(s, side, dir, 5000), Reason::Ready),
            }
        };
        assert!(matches!(s.receive_any(&mut env.cx(), 10), Step::Wait(Side::Reader, Dir::Read)));
        peer.write_all(b"hello").unwrap();
        assert_eq!(any(&mut env, &mut s, 3).unwrap(), b"hel");
        assert_eq!(any(&mut env, &mut s, 10).unwrap(), b"lo");
        peer.write_all(b"z").unwrap();
        assert_eq!(any(&mut env, &mut s, 10).unwrap(), b"z");
        drop(peer);
        assert_eq!(any(&mut env, &mut s, 10).unwrap_err(), Failure::new(Error::Closed));
        assert!(!s.is_connected());
    }

    #[test]
    fn send_queues_what_the_kernel_refuses_and_flushes_it() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        let big = vec![7u8; 4 << 20];
        let mut step = s.send(&mut env.cx(), &big);
        assert_eq!(step, Step::Wait(Side::Writer, Dir::Write));
        env.r.wait(s.src().unwrap(), Side::Writer, Dir::Write, Token::Thread(Tid::test(2)), None);
        assert_eq!(s.send(&mut env.cx(), b"x"), Step::Fail(Error::BusyWriting));
        env.r.unwait(s.src().unwrap(), Side::Writer);
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; 4 << 20];
            peer.read_exact(&mut got).unwrap();
            got.iter().all(|&b| b == 7)
        });
        while let Step::Wait(side, dir) = step {
            assert_eq!(env.wait(&s, side, dir, 5000), Reason::Ready);
            step = s.flush(&mut env.cx());
        }
        assert_eq!(step, Step::Done(4 << 20));
        assert!(reader.join().unwrap());
    }

    #[test]
    fn send_filled_takes_pieces_or_leaves_nothing() {
        let mut env = Env::new();
        let (mut s, mut peer) = pair(&mut env);
        let r = s.send_filled(&mut env.cx(), |out| {
            out.extend_from_slice(b"half");
            Err("bad piece")
        });
        assert_eq!(r, Err("bad piece"));
        let r = s.send_filled(&mut env.cx(), |out| {
            out.extend_from_slice(b"PING");
            out.extend_from_slice(b"\r\n");
            Ok::<(), ()>(())
        });
        assert_eq!(r, Ok(Step::Done(6)));
        let mut got = [0u8; 6];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"PING\r\n");
    }

    #[test]
    fn connect_tries_each_address_in_turn() {
        let dir = std::env::temp_dir().join(format!("coevent-stream-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("listener.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let mut env = Env::new();
        let mut s = Stream::new();
        let nobody = Addr::Unix(dir.join("nobody.sock").as_os_str().as_encoded_bytes().to_vec());
        let there = Addr::Unix(path.as_os_str().as_encoded_bytes().to_vec());
        let mut step = s.connect(&mut env.cx(), vec![nobody.clone(), there]);
        while let Step::Wait(side, dir) = step {
            assert_eq!(env.wait(&s, side, dir, 5000), Reason::Ready);
            step = s.connect_ready(&mut env.cx());
        }
        assert_eq!(step, Step::Done(()));
        assert!(s.is_connected());
        let (mut peer, _) = listener.accept().unwrap();
        assert_eq!(s.send(&mut env.cx(), b"hi"), Step::Done(2));
        let mut got = [0u8; 2];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        s.close(&mut env.cx());

        let mut s = Stream::new();
        let step = s.connect(&mut env.cx(), vec![nobody]);
        assert_eq!(step.map_err_message(), Some("no such file or directory".into()));
        assert!(matches!(s.state, State::Closed));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_name_s_answer_connects_or_fails_with_the_resolver_s_word() {
        let mut env = Env::new();
        let mut s = Stream::new();
        s.state = State::Resolving { name: "x.test".into(), port: 1, wait: None };
        assert_eq!(s.resolved(&mut env.cx(), Err("no such host")), Step::Fail(Error::Resolve("no such host")));
        assert!(matches!(s.state, State::Closed));
        s.state = State::Resolving { name: "x.test".into(), port: 1, wait: None };
        let step = s.resolved(&mut env.cx(), Ok(vec![Addr::Unix(b"/nonexistent/coevent.sock".to_vec())]));
        assert_eq!(step.map_err_message(), Some("no such file or directory".into()));
    }

    impl<T> Step<T> {
        fn map_err_message(self) -> Option<String> {
            match self {
                Step::Fail(e) => Some(e.message().into_owned()),
                _ => None,
            }
        }
    }
}
