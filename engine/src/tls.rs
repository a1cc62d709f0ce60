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
use crate::step::{Error, Io, Step};
use crate::sys::{self, Fd};

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
    sys::set_new_session_callback::<Keep>(&mut b);
    Ok(b.build())
}

/// Where libssl's new sessions go (`sys::set_new_session_callback`).
struct Keep;

impl sys::NewSession for Keep {
    /// A new session of a connection, kept for its `sslhandshake`'s session
    /// object if it asked for one. (Called from C: it must not panic.)
    fn new_session(ssl: &ssl::SslRef, sess: SslSession) {
        if let Some(keep) = ssl.ex_data(keep_index()) {
            *keep.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(sess);
        }
    }
}

/// The first reason in OpenSSL's error stack, as text.
pub(crate) fn reason(e: &ErrorStack) -> String {
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
    pub(crate) verify: Option<String>,
    pub(crate) established: bool,
    keep: Option<Arc<Session>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Tls").field("src", &self.src).field("established", &self.established).finish()
    }
}

impl Tls {
    pub(crate) fn new(src: Src, h: &Hello) -> Result<Tls, ErrorStack> {
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

    /// Appends at most `room` bytes of plaintext to `v`. (Not inlined: TLS
    /// stays out of the plain transport's inlined path.)
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
    pub(crate) fn handshake(&mut self, r: &mut Reactor) -> Step<()> {
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
    pub(crate) fn verified_for(&self, name: Option<&str>) -> bool {
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

    /// The session to keep for a later handshake: the one this handshake
    /// was asked to keep, else a new one from where it stands.
    pub(crate) fn session(&self) -> Arc<Session> {
        if let Some(k) = &self.keep {
            return k.clone();
        }
        let latest = self.s.ssl().session().map(|s| s.to_owned());
        Arc::new(Session { ctx: self.s.ssl().ssl_context().to_owned(), latest: Mutex::new(latest) })
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

#[cfg(test)]
mod tests {
    use super::*;

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
