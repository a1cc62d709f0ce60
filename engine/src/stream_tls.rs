//! A stream's TLS: `sslhandshake` turns a connected stream's plain
//! transport into a TLS session (`tls`) and drives the handshake; the
//! session it then holds. Above both `stream` and `tls`, which know nothing
//! of each other's insides.

use std::sync::Arc;

use crate::reactor::Side;
use crate::step::{Cx, Error, Step};
use crate::stream::{State, Stream};
use crate::tls::{reason, Hello, Session, Tls};
use crate::transport::Transport;

impl Stream {
    /// `sslhandshake`: starts TLS on the connection (`hello` Some: the
    /// call; None: its rest after a wait) and drives the handshake.
    /// `Done(true)`: the connection had done its handshake before (a pooled
    /// one). A failure closes the stream.
    pub fn handshake(&mut self, cx: &mut Cx, hello: Option<Hello>) -> Step<bool> {
        let State::Connected(c) = &mut self.state else { return Step::Fail(Error::Closed) };
        let src = c.t.src();
        if let Some(h) = hello {
            if cx.r.waiter(src, Side::Reader).is_some() {
                return Step::Fail(Error::BusyReading);
            }
            if cx.r.waiter(src, Side::Writer).is_some() {
                return Step::Fail(Error::BusyWriting);
            }
            match &c.t {
                // A pooled connection answers at once, but never claims a
                // verification its first handshake did not make.
                Transport::Tls(t) if t.established => {
                    let name = h.name.filter(|n| !n.is_empty());
                    if h.verify && !t.verified_for(name) {
                        let e = match name {
                            Some(n) => format!("pooled connection not verified for {n}"),
                            None => "pooled connection not verified".to_string(),
                        };
                        self.close(cx);
                        return Step::Fail(Error::Tls(e));
                    }
                    return Step::Done(true);
                }
                Transport::Tls(_) => {}
                // Plaintext read before TLS must never come out as if TLS
                // had protected it (STARTTLS injection, CVE-2011-0411): refuse
                // before a byte of TLS is sent; the socket stays as it was.
                Transport::Plain(_) if c.unread() => return Step::Fail(Error::UnreadData),
                Transport::Plain(_) => match Tls::new(src, &h) {
                    Ok(t) => c.t = Transport::Tls(Box::new(t)),
                    Err(e) => {
                        self.close(cx);
                        return Step::Fail(Error::Tls(reason(&e)));
                    }
                },
            }
        }
        let Transport::Tls(t) = &mut c.t else { return Step::Fail(Error::Closed) };
        match t.handshake(cx.r) {
            Step::Done(()) => Step::Done(false),
            Step::Wait(side, dir) => Step::Wait(side, dir),
            Step::Fail(e) => {
                self.close(cx);
                Step::Fail(e)
            }
        }
    }

    /// A handshake whose wait timed out: the stream closes.
    pub fn handshake_timed_out(&mut self, cx: &mut Cx) -> Error {
        self.close(cx);
        Error::Timeout
    }

    /// The TLS session of the connection, if it has one.
    pub fn tls(&self) -> Option<&Tls> {
        match &self.state {
            State::Connected(c) => match &c.t {
                Transport::Tls(t) => Some(t),
                Transport::Plain(_) => None,
            },
            _ => None,
        }
    }

    /// The session the connection keeps for a later handshake: the one its
    /// handshake was asked to keep, else a new one from where it stands.
    pub fn tls_session(&self) -> Option<Arc<Session>> {
        Some(self.tls()?.session())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{self, ErrorKind::WouldBlock, Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};

    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::ssl::{self, SslAcceptor, SslContext, SslMethod};
    use openssl::x509::{X509Name, X509};

    use crate::buf::Pattern;
    use crate::reactor::{Dir, Reactor, Reason, Token};
    use crate::sys::Addr;
    use crate::tls::{context, Settings};

    /// A server's side: a self-signed certificate for `localhost`.
    fn acceptor() -> SslAcceptor {
        let key =
            PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap())
                .unwrap();
        let mut name = X509Name::builder().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "localhost").unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        let mut acc = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        acc.set_private_key(&key).unwrap();
        acc.set_certificate(&cert).unwrap();
        acc.build()
    }

    /// A server on a unix socket running `serve` on each TLS connection, and
    /// a stream connected to it (not yet TLS).
    fn pair(env: &mut Env, serve: impl FnOnce(&mut ssl::SslStream<UnixStream>) + Send + 'static) -> Stream {
        let acc = acceptor();
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("coevent-tls-test-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (c, _) = listener.accept().unwrap();
            if let Ok(mut s) = acc.accept(c) {
                serve(&mut s);
            }
        });
        let mut s = Stream::new();
        let mut step = s.connect(&mut env.cx(), vec![Addr::Unix(path.as_os_str().as_encoded_bytes().to_vec())]);
        while let Step::Wait(side, dir) = step {
            assert_eq!(env.wait(&s, side, dir), Reason::Ready);
            step = s.connect_ready(&mut env.cx());
        }
        assert_eq!(step, Step::Done(()));
        let _ = std::fs::remove_file(&path);
        s
    }

    struct Env {
        r: Reactor,
        spare: Vec<u8>,
        woken: Vec<(crate::reactor::Token, Reason)>,
        ctx: SslContext,
    }

    impl Env {
        fn new() -> Env {
            let ctx = context(&Settings::default()).unwrap();
            Env { r: Reactor::new().unwrap(), spare: Vec::new(), woken: Vec::new(), ctx }
        }

        fn cx(&mut self) -> Cx<'_> {
            Cx { r: &mut self.r, spare: &mut self.spare, woken: &mut self.woken }
        }

        fn wait(&mut self, s: &Stream, side: Side, dir: Dir) -> Reason {
            self.r.wait(s.src().unwrap(), side, dir, Token::Thread(crate::reactor::Tid::test(1)), Some(5000));
            let mut woken = Vec::new();
            while woken.is_empty() {
                self.r.poll(None, &mut woken).unwrap();
            }
            woken[0].1
        }

        fn handshake(&mut self, s: &mut Stream) -> Step<bool> {
            let ctx = self.ctx.clone();
            let hello =
                Hello { ctx: &ctx, name: None, verify: false, status: false, cert: None, resume: None, keep: true };
            let mut step = s.handshake(&mut self.cx(), Some(hello));
            while let Step::Wait(side, dir) = step {
                assert_eq!(self.wait(s, side, dir), Reason::Ready);
                step = s.handshake(&mut self.cx(), None);
            }
            step
        }

        fn receive(&mut self, s: &mut Stream, p: Pattern) -> Result<Vec<u8>, Error> {
            loop {
                match s.receive(&mut self.cx(), p) {
                    Step::Done(d) => return Ok(d.to_vec()),
                    Step::Fail(f) => return Err(f.err),
                    Step::Wait(side, dir) => assert_eq!(self.wait(s, side, dir), Reason::Ready),
                }
            }
        }
    }

    #[test]
    fn patterns_and_sends_over_tls() {
        let mut env = Env::new();
        let mut s = pair(&mut env, |s| {
            s.write_all(b"+PONG\r\nabc").unwrap();
            let mut got = [0u8; 4];
            s.read_exact(&mut got).unwrap();
            s.write_all(&got).unwrap();
            s.write_all(b"defg\nlast").unwrap();
            s.shutdown().unwrap();
        });
        assert_eq!(env.handshake(&mut s), Step::Done(false));
        assert_eq!(env.handshake(&mut s), Step::Done(true), "a second handshake returns at once");
        assert_eq!(env.receive(&mut s, Pattern::Line).unwrap(), b"+PONG");
        let mut step = s.send(&mut env.cx(), b"PING");
        while let Step::Wait(side, dir) = step {
            assert_eq!(env.wait(&s, side, dir), Reason::Ready);
            step = s.flush(&mut env.cx());
        }
        assert_eq!(step, Step::Done(4));
        assert_eq!(env.receive(&mut s, Pattern::Bytes(7)).unwrap(), b"abcPING");
        assert_eq!(env.receive(&mut s, Pattern::Line).unwrap(), b"defg");
        assert_eq!(env.receive(&mut s, Pattern::All).unwrap(), b"last", "close_notify ends '*a'");
        // A second call on an established session returns at once (a pooled connection).
        let ctx = env.ctx.clone();
        let hello =
            Hello { ctx: &ctx, name: None, verify: false, status: false, cert: None, resume: None, keep: false };
        assert_eq!(s.handshake(&mut env.cx(), Some(hello)), Step::Done(true));
        assert!(s.tls_session().is_some());
    }

    /// OpenSSL holds the rest of a record a small read did not take: the
    /// next read gets it at once, though the fd is drained (no edge comes).
    #[test]
    fn bytes_openssl_holds_are_read_without_an_edge() {
        let mut env = Env::new();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut s = pair(&mut env, move |s| {
            s.write_all(b"0123456789").unwrap();
            let _ = rx.recv();
        });
        assert_eq!(env.handshake(&mut s), Step::Done(false));
        assert_eq!(env.receive(&mut s, Pattern::Bytes(4)).unwrap(), b"0123");
        assert!(s.tls().unwrap().pending() > 0, "the rest of the record is OpenSSL's");
        // Whatever the fd's state, the cache saying "drained" must not park the reader.
        env.r.set_ready(s.src().unwrap(), Dir::Read, false);
        match s.receive(&mut env.cx(), Pattern::Bytes(6)) {
            Step::Done(d) => assert_eq!(d, b"456789"),
            other => panic!("waited for an edge that will not come: {other:?}"),
        }
        drop(tx);
    }

    /// A stream connected over TCP on 127.0.0.1 (not yet TLS), and its peer.
    fn tcp_pair(env: &mut Env) -> (Stream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = Stream::new();
        let mut step = s.connect(&mut env.cx(), vec![Addr::Ip(l.local_addr().unwrap())]);
        while let Step::Wait(side, dir) = step {
            assert_eq!(env.wait(&s, side, dir), Reason::Ready);
            step = s.connect_ready(&mut env.cx());
        }
        assert_eq!(step, Step::Done(()));
        (s, l.accept().unwrap().0)
    }

    /// The server's side of a TLS connection over a non-blocking socket:
    /// reads the socket (or, `peek`, leaves what it reads in it, so that a
    /// close resets), writes to it or, `capture`, into `out`.
    #[derive(Debug)]
    struct Tap {
        s: std::net::TcpStream,
        peek: bool,
        peeked: usize,
        capture: bool,
        out: Vec<u8>,
    }

    impl Read for Tap {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            if !self.peek {
                return self.s.read(b);
            }
            let mut all = vec![0; self.peeked + b.len()];
            let n = self.s.peek(&mut all)?;
            if n <= self.peeked {
                return Err(WouldBlock.into());
            }
            b[..n - self.peeked].copy_from_slice(&all[self.peeked..n]);
            let got = n - self.peeked;
            self.peeked = n;
            Ok(got)
        }
    }

    impl Write for Tap {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.capture {
                self.out.extend_from_slice(b);
                return Ok(b.len());
            }
            self.s.write(b)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn hello(ctx: &SslContext) -> Hello<'_> {
        Hello { ctx, name: None, verify: false, status: false, cert: None, resume: None, keep: false }
    }

    /// The server's first flight, answering the ClientHello `s`'s first
    /// handshake step sent to `peer` (read, or peeked with `peek`).
    fn server_flight(env: &mut Env, s: &mut Stream, peer: &std::net::TcpStream, peek: bool) -> Vec<u8> {
        let ctx = env.ctx.clone();
        assert_eq!(s.handshake(&mut env.cx(), Some(hello(&ctx))), Step::Wait(Side::Reader, Dir::Read));
        let peer = peer.try_clone().unwrap();
        peer.set_nonblocking(true).unwrap();
        let tap = Tap { s: peer, peek, peeked: 0, capture: true, out: Vec::new() };
        match acceptor().accept(tap) {
            Err(ssl::HandshakeError::WouldBlock(mid)) => mid.get_ref().out.clone(),
            Err(e) => panic!("the server's flight: {e}"),
            Ok(_) => panic!("a handshake done without the client's Finished"),
        }
    }

    /// A peer that sends a cut handshake: its last bytes and its FIN or
    /// reset reach the client before it polls, so one readiness edge brings
    /// both. The handshake must fail at once, not wait for an edge that will
    /// not come (which would wait out the whole timeout).
    #[test]
    fn a_handshake_cut_mid_record_fails_at_once() {
        let mut env = Env::new();
        let (mut s, peer) = tcp_pair(&mut env);
        let len = server_flight(&mut env, &mut s, &peer, false).len();
        assert!(len > 200, "a flight of {len} bytes");
        for reset in [false, true] {
            // Mid header, mid ServerHello, mid the encrypted records, one byte
            // short (negative: from the end; a signature's length varies).
            for k in [1, 3, 60, len as isize / 2, -1] {
                let (mut s, mut peer) = tcp_pair(&mut env);
                let flight = server_flight(&mut env, &mut s, &peer, reset);
                let k = if k < 0 { flight.len() - k.unsigned_abs() } else { k as usize };
                peer.write_all(&flight[..k]).unwrap();
                if reset {
                    // The ClientHello was peeked, not read: the close resets.
                    drop(peer);
                } else {
                    peer.shutdown(std::net::Shutdown::Write).unwrap();
                }
                assert_eq!(env.wait(&s, Side::Reader, Dir::Read), Reason::Ready);
                let step = s.handshake(&mut env.cx(), None);
                assert_eq!(step, Step::Fail(Error::Tls("handshake failed".into())), "cut at {k}, reset {reset}");
                assert!(!s.is_connected());
            }
        }
    }

    /// The same after the handshake: a record cut short, then the FIN or a
    /// reset, in one edge; the receive fails at once.
    #[test]
    fn a_record_cut_short_fails_the_receive_at_once() {
        for reset in [false, true] {
            let mut env = Env::new();
            let (mut s, peer) = tcp_pair(&mut env);
            let ctx = env.ctx.clone();
            let mut step = s.handshake(&mut env.cx(), Some(hello(&ctx)));
            peer.set_nonblocking(true).unwrap();
            let tap = Tap { s: peer, peek: false, peeked: 0, capture: false, out: Vec::new() };
            let mut server = acceptor().accept(tap);
            // Client and server in turn, each as far as it goes.
            let mut tls = loop {
                server = match server {
                    Err(ssl::HandshakeError::WouldBlock(mid)) => mid.handshake(),
                    Ok(tls) if step == Step::Done(false) => break tls,
                    other => other,
                };
                if let Step::Wait(side, dir) = step {
                    if env.r.is_ready(s.src().unwrap(), dir) || env.wait(&s, side, dir) == Reason::Ready {
                        step = s.handshake(&mut env.cx(), None);
                    }
                }
            };
            let mut sent = s.send(&mut env.cx(), b"go\n");
            while let Step::Wait(side, dir) = sent {
                assert_eq!(env.wait(&s, side, dir), Reason::Ready);
                sent = s.flush(&mut env.cx());
            }
            assert_eq!(sent, Step::Done(3));
            // The client reads what there is (the tickets) and finds the fd drained.
            let first = s.receive(&mut env.cx(), Pattern::Line);
            assert_eq!(first, Step::Wait(Side::Reader, Dir::Read));
            tls.get_mut().s.set_nonblocking(false).unwrap();
            // Reset: the client's "go" stays unread, so the close resets.
            if reset {
                let _ = tls.get_ref().s.peek(&mut [0u8; 1]);
            } else {
                let mut go = [0u8; 3];
                tls.read_exact(&mut go).unwrap();
            }
            tls.write_all(b"whole\n").unwrap();
            tls.get_mut().capture = true;
            tls.write_all(b"cut short\n").unwrap();
            let record = std::mem::take(&mut tls.get_mut().out);
            let mut peer = tls.get_ref().s.try_clone().unwrap();
            peer.write_all(&record[..record.len() / 2]).unwrap();
            if reset {
                drop(peer);
                drop(tls);
            } else {
                peer.shutdown(std::net::Shutdown::Write).unwrap();
            }
            // One edge brings the whole record, the cut one and the FIN or
            // reset (a reset drops what the client had not read).
            assert_eq!(env.wait(&s, Side::Reader, Dir::Read), Reason::Ready);
            let mut lines = Vec::new();
            let err = loop {
                match s.receive(&mut env.cx(), Pattern::Line) {
                    Step::Done(d) => lines.push(d.to_vec()),
                    Step::Fail(f) => break f,
                    Step::Wait(..) => panic!("waits for an edge that will not come (reset {reset})"),
                }
            };
            let (want, why): (&[&[u8]], _) =
                if reset { (&[], "connection reset by peer") } else { (&[b"whole"], "closed") };
            assert_eq!(lines, want, "reset {reset}");
            assert_eq!((err.err.message(), err.partial), (why.into(), Vec::new()), "reset {reset}");
            assert!(!s.is_connected());
        }
    }

    /// Plaintext buffered before TLS starts is refused, not handed out
    /// later as if TLS had protected it (STARTTLS injection).
    #[test]
    fn a_handshake_refuses_plaintext_left_in_the_buffer() {
        let mut env = Env::new();
        let (mut s, mut peer) = tcp_pair(&mut env);
        peer.write_all(b"220 ready\r\nINJECTED\r\n").unwrap();
        assert_eq!(env.receive(&mut s, Pattern::Line).unwrap(), b"220 ready");
        let ctx = env.ctx.clone();
        assert_eq!(s.handshake(&mut env.cx(), Some(hello(&ctx))), Step::Fail(Error::UnreadData));
        assert!(s.tls().is_none() && s.is_connected(), "nothing sent, the socket as it was");
        peer.set_nonblocking(true).unwrap();
        assert_eq!(peer.read(&mut [0u8; 64]).unwrap_err().kind(), WouldBlock, "no ClientHello went out");
        assert_eq!(env.receive(&mut s, Pattern::Line).unwrap(), b"INJECTED");
        assert_eq!(s.handshake(&mut env.cx(), Some(hello(&ctx))), Step::Wait(Side::Reader, Dir::Read));
    }

    /// A connection that did its handshake (a pooled one) answers a second
    /// at once only for a verification it made.
    #[test]
    fn a_done_handshake_never_claims_a_verification_it_did_not_make() {
        let mut env = Env::new();
        let shake = |env: &mut Env, verify: Option<&str>| {
            let mut s = pair(env, |s| {
                let _ = s.read(&mut [0u8; 1]);
            });
            let ctx = env.ctx.clone();
            let mut t = Tls::new(s.src().unwrap(), &hello(&ctx)).unwrap();
            t.established = true;
            t.verify = verify.map(str::to_string);
            let State::Connected(c) = &mut s.state else { unreachable!() };
            c.t = Transport::Tls(Box::new(t));
            s
        };
        let ctx = env.ctx.clone();
        let again = |env: &mut Env, s: &mut Stream, name: Option<&str>, verify: bool| {
            let h = Hello { name, verify, ..hello(&ctx) };
            s.handshake(&mut env.cx(), Some(h))
        };
        let refused = |n: &str| Step::Fail(Error::Tls(n.into()));
        for (first, name, verify, want) in [
            (None, Some("localhost"), false, Step::Done(true)),
            (None, None, false, Step::Done(true)),
            (None, Some("localhost"), true, refused("pooled connection not verified for localhost")),
            (None, None, true, refused("pooled connection not verified")),
            (Some(""), Some("localhost"), true, refused("pooled connection not verified for localhost")),
            (Some(""), None, true, Step::Done(true)),
            (Some("localhost"), Some("LOCALHOST"), true, Step::Done(true)),
            (Some("localhost"), None, true, Step::Done(true)),
            (Some("localhost"), Some("other.test"), true, refused("pooled connection not verified for other.test")),
        ] {
            let mut s = shake(&mut env, first);
            let got = again(&mut env, &mut s, name, verify);
            let closed = !s.is_connected();
            assert_eq!(got, want, "verified for {first:?}, asked for {name:?} verify {verify}");
            assert_eq!(closed, matches!(want, Step::Fail(_)), "a refusal closes");
        }
    }

    #[test]
    fn a_peer_that_speaks_no_tls_fails_the_handshake_and_closes() {
        let mut env = Env::new();
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let _ = b.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
            let _ = b.read(&mut [0u8; 1024]);
        });
        let src = env.r.add(std::os::fd::IntoRawFd::into_raw_fd(a)).unwrap();
        let mut s = Stream::new();
        s.state = State::Connected(crate::stream::Conn::plain(src));
        assert_eq!(env.handshake(&mut s), Step::Fail(Error::Tls("handshake failed".into())));
        assert!(!s.is_connected());
    }
}
