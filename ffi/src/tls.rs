//! TLS client sessions on a connected stream: the openssl crate over the
//! system's libssl. A session is a `Transport` of the stream, so it moves
//! with the stream (into a pool and out) and every receive pattern, send and
//! timeout works over it unchanged.
//!
//! OpenSSL reads and writes the fd through `FdIo`: the engine's recv and
//! send (MSG_NOSIGNAL; OpenSSL's own socket BIO calls write(), and a dead
//! peer would raise SIGPIPE in a host that does not ignore it), with the
//! reactor's cached readiness: a direction known not ready answers
//! WouldBlock without a syscall, and a read or write that drains the socket
//! marks it not ready. WANT_READ and WANT_WRITE become waits in the
//! direction OpenSSL asks for, whichever side waits (a reader may need the
//! fd writable: a key update, a renegotiation).
//!
//! OpenSSL keeps records it has read: a read asks the session first, never
//! the readiness cache, so bytes it holds never wait for an edge that has
//! already come (the plain transport's "a short read drained the socket"
//! holds for the fd, not for what a TLS read returns).

use std::io::{self, ErrorKind::WouldBlock, Read, Write};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    self, ErrorCode, Ssl, SslContext, SslMethod, SslMode, SslOptions, SslSession, SslSessionCacheMode, SslStream,
    SslVerifyMode, StatusType,
};
use openssl::x509::{X509VerifyResult, X509};

use crate::reactor::{Dir, Reactor, Side, Src};
use crate::step::{Cx, Error, Io, Step};
use crate::stream::{State, Stream};
use crate::sys::{self, Fd};
use crate::transport::Transport;

/// `L.config`'s `ssl_*` settings, as OpenResty's `lua_ssl_*` directives.
/// None: OpenSSL's default (the system trust store, through its default
/// paths, so `SSL_CERT_FILE` and `SSL_CERT_DIR` work).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub trusted_certificate: Option<String>,
    pub verify_depth: Option<u32>,
    pub protocols: Option<Vec<String>>,
    pub ciphers: Option<String>,
}

/// The protocol names `ssl_protocols` takes, and what turns each off.
const PROTOCOLS: [(&str, SslOptions); 4] = [
    ("TLSv1", SslOptions::NO_TLSV1),
    ("TLSv1.1", SslOptions::NO_TLSV1_1),
    ("TLSv1.2", SslOptions::NO_TLSV1_2),
    ("TLSv1.3", SslOptions::NO_TLSV1_3),
];

/// The client context of `s`: one per configuration, shared by every
/// handshake. The peer is verified after the handshake (as OpenResty does),
/// so a failed verification reads as OpenSSL's reason, not as an alert.
pub fn context(s: &Settings) -> Result<SslContext, String> {
    let mut b = SslContext::builder(SslMethod::tls_client()).map_err(|e| reason(&e))?;
    // The queue a send retries from may have grown (moved) since.
    b.set_mode(SslMode::ENABLE_PARTIAL_WRITE | SslMode::ACCEPT_MOVING_WRITE_BUFFER);
    // A peer that closes without close_notify has closed (as nginx reads it).
    b.set_options(SslOptions::IGNORE_UNEXPECTED_EOF);
    b.set_verify(SslVerifyMode::NONE);
    match &s.trusted_certificate {
        Some(path) => {
            // OpenSSL's word for a missing file is only "system lib".
            std::fs::File::open(path)
                .map_err(|e| format!("ssl_trusted_certificate: {path}: {}", sys::error_string(&e)))?;
            b.set_ca_file(path).map_err(|e| format!("ssl_trusted_certificate: {path}: {}", reason(&e)))?
        }
        None => b.set_default_verify_paths().map_err(|e| reason(&e))?,
    }
    if let Some(depth) = s.verify_depth {
        b.set_verify_depth(depth);
    }
    if let Some(list) = &s.protocols {
        let mut off = PROTOCOLS.iter().fold(SslOptions::empty(), |o, p| o | p.1);
        for name in list {
            let Some(p) = PROTOCOLS.iter().find(|p| p.0 == name) else {
                return Err(format!("ssl_protocols: unknown protocol '{name}'"));
            };
            off.remove(p.1);
        }
        b.set_options(off);
    }
    if let Some(c) = &s.ciphers {
        b.set_cipher_list(c).map_err(|e| format!("ssl_ciphers: {c}: {}", reason(&e)))?;
    }
    // Sessions are kept by the caller (see `Session`), tickets included.
    b.set_session_cache_mode(SslSessionCacheMode::CLIENT);
    sys::set_new_session_callback(&mut b);
    Ok(b.build())
}

/// A new session of a connection, kept for its `sslhandshake`'s session
/// object if it asked for one. (Called from C: it must not panic.)
pub(crate) fn new_session(ssl: &ssl::SslRef, sess: SslSession) {
    if let Some(keep) = ssl.ex_data(keep_index()) {
        *keep.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(sess);
    }
}

/// The first reason in OpenSSL's error stack, as text.
fn reason(e: &ErrorStack) -> String {
    match e.errors().iter().find_map(|e| e.reason()) {
        Some(r) => r.to_string(),
        None => "ssl error".to_string(),
    }
}

/// The client side's settings, its context (made once per configuration)
/// and the sessions Lua holds.
#[derive(Default)]
pub struct Client {
    settings: Settings,
    ctx: Option<SslContext>,
    pub sessions: Sessions,
}

impl Client {
    /// Takes `s` for the next handshakes; an error leaves the old settings.
    pub fn configure(&mut self, s: Settings) -> Result<(), String> {
        if self.ctx.is_some() && s == self.settings {
            return Ok(());
        }
        self.ctx = Some(context(&s)?);
        self.settings = s;
        Ok(())
    }

    pub fn context(&mut self) -> Result<&SslContext, String> {
        if self.ctx.is_none() {
            self.ctx = Some(context(&self.settings)?);
        }
        Ok(self.ctx.as_ref().expect("made above"))
    }
}

/// A session a later handshake to the same server may resume. It is the
/// newest the connection was given: TLS 1.3 sends its tickets after the
/// handshake, and they replace the one the handshake ended with.
pub struct Session {
    ctx: SslContext,
    latest: Mutex<Option<SslSession>>,
}

impl Session {
    fn latest(&self) -> Option<SslSession> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Where an `Ssl` keeps the `Session` its tickets go to.
fn keep_index() -> Index<Ssl, Arc<Session>> {
    static INDEX: OnceLock<Index<Ssl, Arc<Session>>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().expect("an ex_data index"))
}

/// The sessions Lua objects hold: a generational slab.
#[derive(Default)]
pub struct Sessions {
    slots: Vec<(u32, Option<Arc<Session>>)>,
    free: Vec<u32>,
}

/// A session's slot and generation, packed into an integer for Lua.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionKey(u64);

impl SessionKey {
    pub fn number(self) -> i64 {
        self.0 as i64
    }
}

impl From<i64> for SessionKey {
    fn from(n: i64) -> SessionKey {
        SessionKey(n as u64)
    }
}

impl Sessions {
    pub fn insert(&mut self, s: Arc<Session>) -> SessionKey {
        let i = self.free.pop().unwrap_or_else(|| {
            self.slots.push((0, None));
            (self.slots.len() - 1) as u32
        });
        let slot = &mut self.slots[i as usize];
        slot.1 = Some(s);
        SessionKey(u64::from(slot.0) << 32 | u64::from(i))
    }

    pub fn get(&self, k: SessionKey) -> Option<&Arc<Session>> {
        match self.slots.get((k.0 & 0xffff_ffff) as usize) {
            Some((g, Some(s))) if u64::from(*g) == k.0 >> 32 => Some(s),
            _ => None,
        }
    }

    pub fn remove(&mut self, k: SessionKey) {
        if self.get(k).is_some() {
            let i = (k.0 & 0xffff_ffff) as usize;
            let slot = &mut self.slots[i];
            slot.0 = (slot.0 + 1) % (1 << 20);
            slot.1 = None;
            self.free.push(i as u32);
        }
    }
}

/// `setclientcert`'s certificate (the first of the PEM, the rest its chain)
/// and private key.
pub struct ClientCert {
    cert: X509,
    chain: Vec<X509>,
    key: PKey<Private>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("ClientCert")
    }
}

impl ClientCert {
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<ClientCert, String> {
        let mut chain = X509::stack_from_pem(cert).map_err(|e| format!("bad cert arg: {}", reason(&e)))?;
        if chain.is_empty() {
            return Err("bad cert arg: no certificate found".into());
        }
        let cert = chain.remove(0);
        let key = PKey::private_key_from_pem(key).map_err(|e| format!("bad pkey arg: {}", reason(&e)))?;
        let matches = cert.public_key().map(|p| p.public_eq(&key)).unwrap_or(false);
        if !matches {
            return Err("bad pkey arg: the key does not match the certificate".into());
        }
        Ok(ClientCert { cert, chain, key })
    }
}

/// What one `sslhandshake` asks for.
pub struct Hello<'a> {
    pub ctx: &'a SslContext,
    /// SNI, and the name the certificate must carry if `verify`.
    pub name: Option<&'a str>,
    pub verify: bool,
    /// Ask for the server's OCSP status (`send_status_req`).
    pub status: bool,
    pub cert: Option<&'a ClientCert>,
    /// A session to resume.
    pub resume: Option<&'a Session>,
    /// Keep this connection's session for later (`reused_session ~= false`).
    pub keep: bool,
}

/// The fd as OpenSSL reads and writes it: the engine's syscalls, with the
/// readiness the reactor knows (copied in and out around each call).
#[derive(Debug)]
struct FdIo {
    fd: Fd,
    read: bool,
    write: bool,
    /// The peer hung up (the reactor's `hung_up`): no edge will follow, so a
    /// short read must not mark the fd drained, or OpenSSL, wanting the rest
    /// of a cut record, waits out the timeout instead of reading the EOF.
    hup: bool,
}

impl Read for FdIo {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        if !self.read {
            return Err(WouldBlock.into());
        }
        let r = sys::recv_into(self.fd, b);
        match &r {
            // Short: the socket is drained (an EOF stays readable).
            Ok(n) if *n > 0 && *n < b.len() && !self.hup => self.read = false,
            Err(e) if e.kind() == WouldBlock => self.read = false,
            _ => {}
        }
        r
    }
}

impl Write for FdIo {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if !self.write {
            return Err(WouldBlock.into());
        }
        let r = sys::send(self.fd, b);
        match &r {
            Ok(n) if *n < b.len() => self.write = false,
            Err(e) if e.kind() == WouldBlock => self.write = false,
            _ => {}
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The most a read asks OpenSSL for: one record.
const RECORD: usize = 16 * 1024;

/// A TLS session over a registered fd.
pub struct Tls {
    s: SslStream<FdIo>,
    src: Src,
    /// Verify the peer, and the name to check it for ("": none).
    verify: Option<String>,
    established: bool,
    keep: Option<Arc<Session>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Tls").field("src", &self.src).field("established", &self.established).finish()
    }
}

impl Tls {
    fn new(src: Src, h: &Hello) -> Result<Tls, ErrorStack> {
        let mut ssl = Ssl::new(h.ctx)?;
        // An address gets no SNI (RFC 6066).
        if let Some(name) = h.name.filter(|n| n.parse::<IpAddr>().is_err()) {
            ssl.set_hostname(name)?;
        }
        if h.status {
            ssl.set_status_type(StatusType::OCSP)?;
        }
        if let Some(c) = h.cert {
            ssl.set_certificate(&c.cert)?;
            for x in &c.chain {
                ssl.add_chain_cert(x.clone())?;
            }
            ssl.set_private_key(&c.key)?;
        }
        if let Some(sess) = h.resume.and_then(|r| r.latest().map(|s| (r, s))) {
            sys::offer_session(&mut ssl, &sess.0.ctx, &sess.1)?;
        }
        let keep = h.keep.then(|| Arc::new(Session { ctx: h.ctx.clone(), latest: Mutex::new(None) }));
        if let Some(k) = &keep {
            ssl.set_ex_data(keep_index(), k.clone());
        }
        let s = SslStream::new(ssl, FdIo { fd: src.fd, read: true, write: true, hup: false })?;
        let verify = h.verify.then(|| h.name.unwrap_or("").to_string());
        Ok(Tls { s, src, verify, established: false, keep })
    }

    pub fn src(&self) -> Src {
        self.src
    }

    /// Runs `f` with the reactor's readiness lent to the fd's reads and writes.
    fn io<T>(&mut self, r: &mut Reactor, f: impl FnOnce(&mut SslStream<FdIo>) -> T) -> T {
        let src = self.src;
        let io = self.s.get_mut();
        io.read = r.is_ready(src, Dir::Read);
        io.write = r.is_ready(src, Dir::Write);
        io.hup = r.hung_up(src, Dir::Read);
        let t = f(&mut self.s);
        let io = self.s.get_ref();
        if !io.read {
            r.set_ready(src, Dir::Read, false);
        }
        if !io.write {
            r.set_ready(src, Dir::Write, false);
        }
        t
    }

    /// Appends at most `room` bytes of plaintext to `v`. (Not inlined: the
    /// plain transport's path stays as lean as it was without TLS.)
    #[inline(never)]
    pub(crate) fn recv(&mut self, r: &mut Reactor, v: &mut Vec<u8>, room: usize) -> Io {
        let start = v.len();
        v.resize(start + room.min(RECORD), 0);
        let got = self.io(r, |s| s.ssl_read(&mut v[start..]));
        match got {
            Ok(n) => {
                v.truncate(start + n);
                if n == 0 {
                    Io::Eof
                } else {
                    Io::Moved(n)
                }
            }
            Err(e) => {
                v.truncate(start);
                failed(e, false)
            }
        }
    }

    #[inline(never)]
    pub(crate) fn send(&mut self, r: &mut Reactor, b: &[u8]) -> Io {
        if b.is_empty() {
            return Io::Moved(0);
        }
        match self.io(r, |s| s.ssl_write(b)) {
            Ok(n) => Io::Moved(n),
            Err(e) => failed(e, true),
        }
    }

    /// Drives the handshake; once done, checks the peer if asked to.
    fn handshake(&mut self, r: &mut Reactor) -> Step<()> {
        match self.io(r, |s| s.connect()) {
            Ok(()) => {}
            Err(e) => {
                return match e.code() {
                    ErrorCode::WANT_READ => Step::Wait(Side::Reader, Dir::Read),
                    ErrorCode::WANT_WRITE => Step::Wait(Side::Reader, Dir::Write),
                    _ => Step::Fail(Error::Tls("handshake failed".into())),
                }
            }
        }
        self.established = true;
        if let Some(keep) = &self.keep {
            let mut latest = keep.latest.lock().unwrap_or_else(|e| e.into_inner());
            if latest.is_none() {
                *latest = self.s.ssl().session().map(|s| s.to_owned());
            }
        }
        let Some(name) = &self.verify else { return Step::Done(()) };
        // As OpenResty: the chain, then the name (also for a resumed session,
        // whose verification result is the first connection's).
        let ssl = self.s.ssl();
        match ssl.verify_result() {
            X509VerifyResult::OK => {}
            v => return Step::Fail(Error::Tls(format!("{}: {}", v.as_raw(), v.error_string()))),
        }
        match ssl.peer_certificate() {
            Some(c) if name.is_empty() || sys::cert_matches(&c, name) => Step::Done(()),
            Some(_) => Step::Fail(Error::Tls("certificate host mismatch".into())),
            None => Step::Fail(Error::Tls("handshake failed".into())),
        }
    }

    /// Whether the handshake verified the peer, for `name` if given (None:
    /// the chain alone was asked for, which any verification covers).
    fn verified_for(&self, name: Option<&str>) -> bool {
        match (&self.verify, name) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some(n)) => v.eq_ignore_ascii_case(n),
        }
    }

    /// Says goodbye (close_notify) if the socket takes it now; never waits.
    pub(crate) fn shutdown(&mut self, r: &mut Reactor) {
        if self.established {
            let _ = self.io(r, |s| s.shutdown());
        }
    }

    /// Plaintext OpenSSL has read and not handed out.
    pub fn pending(&self) -> usize {
        self.s.ssl().pending()
    }
}

/// A failed TLS read or write, as the transport reports it.
fn failed(e: ssl::Error, writing: bool) -> Io {
    match e.code() {
        ErrorCode::WANT_READ => Io::Wait(Dir::Read),
        ErrorCode::WANT_WRITE => Io::Wait(Dir::Write),
        ErrorCode::ZERO_RETURN if !writing => Io::Eof,
        ErrorCode::ZERO_RETURN => Io::Err(io::ErrorKind::BrokenPipe.into()),
        ErrorCode::SYSCALL => match e.into_io_error() {
            Ok(e) => Io::Err(e),
            Err(_) if writing => Io::Err(io::ErrorKind::BrokenPipe.into()),
            Err(_) => Io::Eof,
        },
        _ => Io::Err(io::Error::other(e.ssl_error().map_or_else(|| "ssl error".into(), reason))),
    }
}

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
        let t = self.tls()?;
        if let Some(k) = &t.keep {
            return Some(k.clone());
        }
        let latest = t.s.ssl().session().map(|s| s.to_owned());
        Some(Arc::new(Session { ctx: t.s.ssl().ssl_context().to_owned(), latest: Mutex::new(latest) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};

    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::ssl::SslAcceptor;
    use openssl::x509::X509Name;

    use crate::buf::Pattern;
    use crate::reactor::{Reason, Token};
    use crate::sys::Addr;

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
    /// not come (it waited out the timeout: issue 23).
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

    #[test]
    fn settings_are_checked() {
        let s =
            |p: &[&str]| Settings { protocols: Some(p.iter().map(|s| s.to_string()).collect()), ..Settings::default() };
        assert!(context(&s(&["TLSv1.2", "TLSv1.3"])).is_ok());
        assert_eq!(context(&s(&["SSLv3"])).err().unwrap(), "ssl_protocols: unknown protocol 'SSLv3'");
        let c = Settings { ciphers: Some("NOPE".into()), ..Settings::default() };
        assert_eq!(context(&c).unwrap_err(), "ssl_ciphers: NOPE: no cipher match");
        let mut client = Client::default();
        let t = Settings { trusted_certificate: Some("/nonexistent.pem".into()), ..Settings::default() };
        let e = client.configure(t).unwrap_err();
        assert_eq!(e, "ssl_trusted_certificate: /nonexistent.pem: no such file or directory");
        assert!(client.context().is_ok(), "the old settings stay");
    }

    #[test]
    fn sessions_slab_keys_do_not_outlive_their_slot() {
        let ctx = context(&Settings::default()).unwrap();
        let mut ss = Sessions::default();
        let one = || Arc::new(Session { ctx: ctx.clone(), latest: Mutex::new(None) });
        let a = ss.insert(one());
        ss.remove(a);
        let b = ss.insert(one());
        assert!(ss.get(a).is_none());
        assert!(ss.get(b).is_some());
        assert_eq!(SessionKey::from(b.number()), b);
    }
}
