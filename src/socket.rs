//! The cosocket object: a TCP or unix stream socket as Lua userdata.
//!
//! Each operation is "try, else wait": it does what the buffers and the cached
//! readiness allow, and answers the wait marker (with `Engine::park_op`) only
//! when it must wait; the prelude yields, and when the wait ends the scheduler
//! calls the operation again (`complete`) and resumes the thread with its result.

use std::cell::{RefCell, RefMut};
use std::io::ErrorKind::WouldBlock;
use std::net::SocketAddr;
use std::rc::Rc;

use coevent_ffi::addr::{self, Host};
use coevent_ffi::buf::{Pattern, RecvBuf};
use coevent_ffi::reactor::{Dir, Reactor};
use coevent_ffi::sys::{self, Addr, Fd, SockOpt};
use mlua::{BString, Lua, Result, Table, UserData, UserDataFields, Value};

use crate::engine::{
    bad_arg, expected, fail, fail_partial, marked_pattern, number, raise, ret, type_name, Engine, OpKind, Pending, Ret,
    NOT_IN_LOOP,
};
use crate::resolve;

/// Where the socket's lifecycle is; a listener and a datagram socket will join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Fresh,
    /// Waiting for the resolver to name `host`'s addresses.
    Resolving,
    Connecting,
    Connected,
    Closed,
}

pub struct Socket {
    eng: Rc<Engine>,
    fd: Fd,
    /// The loop the fd belongs to: when that loop ends, it closes the fd.
    epoch: u64,
    state: State,
    /// Addresses still to try if the current connect fails.
    next_addrs: Vec<Addr>,
    /// While resolving: the name and the port to connect to, and the thread
    /// waiting for the name with the query it waits on.
    host: String,
    port: u16,
    resolving: Option<(u32, u32)>,
    eof: bool,
    buf: RecvBuf,
    /// What a close took from under a waiting reader: that reader's partial
    /// result, so no byte read from the peer is lost.
    orphan: RecvBuf,
    /// Bytes a send could not hand to the kernel yet, and how many of them went.
    out: Vec<u8>,
    sent: usize,
    /// What the pending send returns once it is done: its data's length.
    owed: usize,
    timeout: Option<u64>,
    /// Limits against a hostile peer: the longest line, the most bytes one
    /// receive may gather.
    max_line: usize,
    max_receive: usize,
}

/// The default timeout of connect, send and receive, in ms (OpenResty's).
pub const DEFAULT_TIMEOUT: u64 = 60_000;

/// Default limits of `receive` (`setoption('max-line'|'max-receive', n)`).
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;
pub const DEFAULT_MAX_RECEIVE: usize = 64 * 1024 * 1024;

/// Strings up to this long cross into `send` as a copy (see `Data`); longer
/// copies would cost more than the reference they save.
pub const SHORT: usize = 4096;

/// Deepest table nesting `send` accepts (a table that contains itself ends here).
const MAX_DEPTH: usize = 64;

/// The Lua object: it owns its socket's slot in the engine's `Sockets`. The
/// prelude maps it to the slot's id, which every operation takes instead of
/// the object (a number crosses into Rust for a fraction of what a userdata
/// costs, and can be yielded to the scheduler as cheaply).
pub struct Cosocket {
    eng: Rc<Engine>,
    id: Id,
}

pub type SockRef = Rc<RefCell<Socket>>;

impl Cosocket {
    /// A new socket, and the id the prelude files it under.
    pub fn new(eng: &Rc<Engine>) -> (Cosocket, i64) {
        let s = Rc::new(RefCell::new(Socket::new(eng.clone())));
        let id = eng.socks.borrow_mut().insert(s);
        (Cosocket { eng: eng.clone(), id }, id.number())
    }
}

impl Drop for Cosocket {
    fn drop(&mut self) {
        // The socket itself goes (closing its fd) once no waiting thread holds it.
        let s = self.eng.socks.borrow_mut().remove(self.id);
        drop(s);
    }
}

impl UserData for Cosocket {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", |lua| lua.named_registry_value::<Table>(METHODS));
    }
}

/// A slot's index and generation, packed into an integer that LuaJIT's
/// numbers hold exactly: an id outlives its slot only in a resurrected object.
#[derive(Clone, Copy)]
pub struct Id(u64);

impl Id {
    fn new(index: u32, generation: u16) -> Id {
        Id(u64::from(generation) << 32 | u64::from(index))
    }

    fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    /// All the bits above the index, so that a number with bits set beyond
    /// a generation's matches no slot.
    fn generation(self) -> u64 {
        self.0 >> 32
    }

    fn number(self) -> i64 {
        self.0 as i64
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Id {
        Id(n as u64)
    }
}

/// The live sockets of one Lua state, by id.
#[derive(Default)]
pub struct Sockets {
    slots: Vec<(u16, Option<SockRef>)>,
    free: Vec<u32>,
}

const GENERATIONS: u16 = 1 << 14;

impl Sockets {
    fn insert(&mut self, s: SockRef) -> Id {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[i as usize];
        slot.1 = Some(s);
        Id::new(i, slot.0)
    }

    fn get(&self, id: Id) -> Option<SockRef> {
        match self.slots.get(id.index()) {
            Some((g, Some(s))) if u64::from(*g) == id.generation() => Some(s.clone()),
            _ => None,
        }
    }

    fn remove(&mut self, id: Id) -> Option<SockRef> {
        let slot = &mut self.slots[id.index()];
        slot.0 = (slot.0 + 1) % GENERATIONS;
        self.free.push(id.index() as u32);
        slot.1.take()
    }
}

/// Registry key of the prelude's method table.
pub const METHODS: &str = "coevent.socket";

impl Socket {
    fn new(eng: Rc<Engine>) -> Socket {
        Socket {
            eng,
            fd: -1,
            epoch: 0,
            state: State::Fresh,
            next_addrs: Vec::new(),
            host: String::new(),
            port: 0,
            resolving: None,
            eof: false,
            buf: RecvBuf::new(),
            orphan: RecvBuf::new(),
            out: Vec::new(),
            sent: 0,
            owed: 0,
            timeout: Some(DEFAULT_TIMEOUT),
            max_line: DEFAULT_MAX_LINE,
            max_receive: DEFAULT_MAX_RECEIVE,
        }
    }

    /// The fd, if the socket holds one that its loop has not closed.
    fn live_fd(&self) -> Option<Fd> {
        let live = matches!(self.state, State::Connecting | State::Connected);
        (live && self.epoch == self.eng.epoch.get()).then_some(self.fd)
    }

    fn close_now(&mut self) {
        if let Some(fd) = self.live_fd() {
            if self.eng.reactor.borrow().as_ref().and_then(|r| r.waiter(fd, Dir::Read)).is_some() {
                self.orphan = std::mem::take(&mut self.buf);
            }
            self.eng.close_fd(fd);
        }
        if let Some((tok, q)) = self.resolving.take() {
            // Its connect ends with "closed", now rather than when the name resolves.
            if self.eng.resolver.borrow_mut().as_mut().is_some_and(|res| res.remove_waiter(q, tok)) {
                self.eng.sched.borrow_mut().ready(&[tok]);
                self.eng.closed_under.borrow_mut().push(tok);
            }
        }
        self.state = State::Closed;
        self.eof = false;
        self.buf = RecvBuf::new();
        self.out = Vec::new();
        self.sent = 0;
        self.owed = 0;
    }

    /// Closes the socket and reports `err`, with what was buffered as the partial result.
    fn fail_closing(&mut self, lua: &Lua, err: &str, p: Option<Pattern>) -> Result<Ret> {
        let partial = match p {
            Some(p) => Value::String(lua.create_string(self.buf.take_partial(p))?),
            None => Value::Nil,
        };
        self.close_now();
        fail_partial(lua, err, partial)
    }
}

fn reactor(eng: &Engine) -> RefMut<'_, Reactor> {
    RefMut::map(eng.reactor.borrow_mut(), |r| r.as_mut().expect("loop running"))
}

impl Drop for Socket {
    fn drop(&mut self) {
        let Some(fd) = self.live_fd() else { return };
        // Collected in the middle of an engine call: leave the fd for the loop to close.
        match self.eng.reactor.try_borrow_mut() {
            Ok(mut r) => {
                if let Some(r) = r.as_mut() {
                    r.remove(fd, &mut Vec::new());
                }
                sys::close(fd);
            }
            Err(_) => self.eng.graveyard.borrow_mut().push(fd),
        }
    }
}

/// Runs `op` on the socket `id`, or raises if it is gone or no loop runs.
pub fn with(lua: &Lua, eng: &Engine, name: &str, id: i64, op: impl FnOnce(&mut Socket) -> Result<Ret>) -> Result<Ret> {
    let Some(h) = eng.socks.borrow().get(id.into()) else {
        return raise(lua, &format!("calling '{name}' on a collected cosocket"));
    };
    let mut s = h.borrow_mut();
    if eng.current().is_none() && name != "settimeout" && name != "setoption" {
        return raise(lua, NOT_IN_LOOP);
    }
    let r = op(&mut s)?;
    if let Some(kind) = eng.op.take() {
        *eng.pending_op.borrow_mut() = Some((h.clone(), kind));
    }
    Ok(r)
}

/// Finishes a woken thread's socket operation (see `sched::step`).
pub fn complete(lua: &Lua, sock: &SockRef, kind: OpKind) -> Result<Ret> {
    let mut s = sock.borrow_mut();
    match kind {
        OpKind::Receive(p) => receive_with(lua, &mut s, p),
        OpKind::Flush => flush(lua, &mut s),
        OpKind::Connect => connected(lua, &mut s),
    }
}

/// `connect(host, port)`: starts connecting to the first address.
pub fn connect(lua: &Lua, s: &mut Socket, host: Value, port: Value) -> Result<Ret> {
    let Value::String(host) = &host else {
        return bad_arg(lua, 1, "connect", &expected("string", &host));
    };
    let host = host.as_bytes();
    let port = if host.starts_with(b"unix:") {
        0
    } else {
        match number(lua, &port) {
            Some(p) if (0.0..=65535.0).contains(&p) && p.fract() == 0.0 => p as u16,
            Some(_) => return bad_arg(lua, 2, "connect", "port out of range"),
            None => return bad_arg(lua, 2, "connect", &expected("number", &port)),
        }
    };
    // Reconnecting closes the old connection first, as OpenResty does.
    s.close_now();
    match addr::parse_host(&host) {
        Ok(Host::Unix(path)) => connect_to(lua, s, vec![Addr::Unix(path.to_vec())]),
        Ok(Host::Ip(ip)) => connect_to(lua, s, vec![Addr::Ip(SocketAddr::new(ip, port))]),
        Ok(Host::Name(name)) => {
            (s.host, s.port) = (name.to_string(), port);
            resolved(lua, s)
        }
        Err(e) => fail(lua, e),
    }
}

/// Connects to the first of `addrs` that takes the connection.
fn connect_to(lua: &Lua, s: &mut Socket, mut addrs: Vec<Addr>) -> Result<Ret> {
    addrs.reverse();
    s.next_addrs = addrs;
    try_next(lua, s, "no such host")
}

/// The resolving part of connect, until the name's addresses are known.
fn resolved(lua: &Lua, s: &mut Socket) -> Result<Ret> {
    match resolve::step(&s.eng, &s.host) {
        resolve::Step::Done(Ok(ips)) => {
            s.resolving = None;
            s.state = State::Fresh;
            let port = s.port;
            connect_to(lua, s, ips.into_iter().map(|ip| Addr::Ip(SocketAddr::new(ip, port))).collect())
        }
        resolve::Step::Done(Err(e)) => {
            s.resolving = None;
            s.state = State::Closed;
            fail(lua, e)
        }
        resolve::Step::Wait(q) => {
            s.state = State::Resolving;
            s.resolving = s.eng.current().map(|t| (t, q));
            s.eng.park_op(Pending::Resolve(q), OpKind::Connect)
        }
    }
}

/// Starts a connect to the next address; `err` is the error if none is left.
fn try_next(lua: &Lua, s: &mut Socket, err: &str) -> Result<Ret> {
    let mut err = err.to_string();
    while let Some(a) = s.next_addrs.pop() {
        let fd = match sys::stream_socket(&a) {
            Ok(fd) => fd,
            Err(e) => {
                err = sys::error_string(&e);
                continue;
            }
        };
        (s.fd, s.epoch, s.state) = (fd, s.eng.epoch.get(), State::Connecting);
        let mut r = reactor(&s.eng);
        let started = r.add(fd).and_then(|()| sys::connect(fd, &a));
        match started {
            Ok(true) => {
                drop(r);
                return established(s, &a);
            }
            Ok(false) => {
                r.set_ready(fd, Dir::Write, false);
                drop(r);
                s.next_addrs.push(a);
                return s.eng.park_op(Pending::Io(fd, Dir::Write, s.timeout), OpKind::Connect);
            }
            Err(e) => {
                drop(r);
                err = sys::error_string(&e);
                s.close_now();
            }
        }
    }
    s.state = State::Closed;
    fail(lua, &err)
}

fn established(s: &mut Socket, a: &Addr) -> Result<Ret> {
    if matches!(a, Addr::Ip(_)) {
        // Requests are written whole; Nagle would only delay them.
        let _ = sys::set_option(s.fd, SockOpt::NoDelay, 1);
    }
    s.state = State::Connected;
    s.next_addrs.clear();
    ret(Value::Integer(1))
}

/// The rest of `connect` after a wait: the name resolved, or the socket
/// became writable or timed out.
fn connected(lua: &Lua, s: &mut Socket) -> Result<Ret> {
    if s.eng.take_closed_under(s.eng.current()) {
        return fail(lua, "closed");
    }
    if s.state == State::Resolving {
        return resolved(lua, s);
    }
    let Some(fd) = s.live_fd() else {
        return fail(lua, "closed");
    };
    let mut r = reactor(&s.eng);
    if r.take_timeout(fd, Dir::Write) {
        drop(r);
        s.next_addrs.clear();
        s.close_now();
        return fail(lua, "timeout");
    }
    if !r.is_ready(fd, Dir::Write) {
        drop(r);
        return s.eng.park_op(Pending::Io(fd, Dir::Write, s.timeout), OpKind::Connect);
    }
    drop(r);
    let Some(a) = s.next_addrs.pop() else {
        return fail(lua, "closed");
    };
    match sys::take_error(fd) {
        Ok(0) => established(s, &a),
        Ok(e) => {
            s.close_now();
            try_next(lua, s, &sys::error_string(&std::io::Error::from_raw_os_error(e)))
        }
        Err(e) => {
            s.close_now();
            try_next(lua, s, &sys::error_string(&e))
        }
    }
}

/// `receive(pattern)`.
pub fn receive(lua: &Lua, s: &mut Socket, pat: Value) -> Result<Ret> {
    let p = match &pat {
        Value::Nil => Some(Pattern::All),
        Value::LightUserData(_) => marked_pattern(&pat),
        Value::String(st) => Pattern::parse(&st.as_bytes()).or_else(|| number(lua, &pat).and_then(Pattern::count)),
        v => number(lua, v).and_then(Pattern::count),
    };
    let Some(p) = p else {
        return bad_arg(lua, 1, "receive", "bad pattern argument");
    };
    receive_with(lua, s, p)
}

/// A receive that failed before taking anything: `nil, err, ""`.
#[cold]
fn fail_nothing(lua: &Lua, err: &str) -> Result<Ret> {
    fail_partial(lua, err, Value::String(lua.create_string("")?))
}

/// Receives into a buffer lent by the engine, and gives the buffer back when
/// it empties, so that idle sockets hold none.
fn receive_with(lua: &Lua, s: &mut Socket, p: Pattern) -> Result<Ret> {
    let r = receive_now(lua, s, p);
    s.buf.release(&mut s.eng.spare.borrow_mut());
    r
}

fn receive_now(lua: &Lua, s: &mut Socket, p: Pattern) -> Result<Ret> {
    if matches!(p, Pattern::Bytes(n) if n > s.max_receive) {
        // Refused before reading anything: the stream is intact, the socket stays open.
        return fail_nothing(lua, "too large");
    }
    let cur = s.eng.current();
    // Woken by a close (the token is taken whatever the socket is now).
    if s.eng.take_closed_under(cur) {
        let partial = lua.create_string(s.orphan.take_partial(p))?;
        s.orphan = RecvBuf::new();
        return fail_partial(lua, "closed", Value::String(partial));
    }
    if s.live_fd().is_none() {
        return fail_nothing(lua, "closed");
    }
    let fd = s.fd;
    let mut r = reactor(&s.eng);
    if r.waiter(fd, Dir::Read).is_some_and(|w| Some(w) != cur) {
        return fail_nothing(lua, "socket busy reading");
    }
    if r.take_timeout(fd, Dir::Read) {
        // A read timeout leaves the socket open.
        let partial = lua.create_string(s.buf.take_partial(p))?;
        return fail_partial(lua, "timeout", Value::String(partial));
    }
    loop {
        // Past a limit the stream cannot be followed any more: drop it.
        let over = match s.buf.take(p, s.eof) {
            Some(d) if p == Pattern::Line && d.len() > s.max_line => "line too long",
            Some(d) => return ret(Value::String(lua.create_string(d)?)),
            None => match p {
                Pattern::Line if s.buf.len() > s.max_line => "line too long",
                Pattern::All if s.buf.len() > s.max_receive => "too large",
                _ if s.eof => {
                    drop(r);
                    return s.fail_closing(lua, "closed", Some(p));
                }
                _ => "",
            },
        };
        if !over.is_empty() {
            drop(r);
            s.buf = RecvBuf::new();
            return s.fail_closing(lua, over, Some(p));
        }
        if !r.is_ready(fd, Dir::Read) {
            return s.eng.park_op(Pending::Io(fd, Dir::Read, s.timeout), OpKind::Receive(p));
        }
        let have = s.buf.len();
        let want = match p {
            Pattern::Bytes(n) => Some(n - have),
            _ => None,
        };
        s.buf.lend(&mut s.eng.spare.borrow_mut());
        let (v, room) = s.buf.spare(want);
        // Never gather more than one byte past the limit.
        let room = match p {
            Pattern::All => room.min(s.max_receive + 1 - have),
            _ => room,
        };
        match sys::recv(fd, v, room) {
            Ok(0) => s.eof = true,
            // A short read drained the socket: the next read waits for an edge.
            Ok(n) if n < room => r.set_ready(fd, Dir::Read, false),
            Ok(_) => {}
            Err(e) if e.kind() == WouldBlock => r.set_ready(fd, Dir::Read, false),
            Err(e) => {
                drop(r);
                return s.fail_closing(lua, &sys::error_string(&e), Some(p));
            }
        }
    }
}

/// Appends `v` (a string, a number, or a nested table of those) to `out`.
fn flatten(lua: &Lua, v: &Value, out: &mut Vec<u8>, depth: usize) -> std::result::Result<(), String> {
    match v {
        Value::String(s) => out.extend_from_slice(&s.as_bytes()),
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(v.clone()) {
            Ok(Some(s)) => out.extend_from_slice(&s.as_bytes()),
            _ => return Err("bad data type number found".into()),
        },
        Value::Table(t) if depth < MAX_DEPTH => {
            for i in 1..=t.raw_len() {
                let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                flatten(lua, &v, out, depth + 1)?;
            }
        }
        Value::Table(_) => return Err("table nested too deep".into()),
        v => return Err(format!("bad data type {} found", type_name(v))),
    }
    Ok(())
}

/// What `send` was given. On LuaJIT a short string comes copied (`Bytes`):
/// there the reference mlua makes to a Lua string argument costs more than a
/// copy (about 330 instructions per send; bench/callgrind.sh).
pub enum Data {
    Bytes(BString),
    Value(Value),
}

/// `send(data)`: sends what the kernel takes now, keeps the rest (copied) for `flush`.
pub fn send(lua: &Lua, s: &mut Socket, data: Data) -> Result<Ret> {
    let queued = s.out.len();
    let lua_bytes;
    let direct: Option<&[u8]> = match &data {
        // A lone string goes straight out when nothing is queued.
        Data::Bytes(b) if queued == 0 => Some(b),
        Data::Value(Value::String(st)) if queued == 0 => {
            lua_bytes = st.as_bytes();
            Some(&lua_bytes)
        }
        Data::Bytes(b) => {
            s.out.extend_from_slice(b);
            None
        }
        Data::Value(v) => {
            if let Err(e) = flatten(lua, v, &mut s.out, 0) {
                s.out.truncate(queued);
                return bad_arg(lua, 1, "send", &e);
            }
            None
        }
    };
    let Some(fd) = s.live_fd() else {
        s.out.truncate(queued);
        return fail(lua, "closed");
    };
    let cur = s.eng.current();
    let mut r = reactor(&s.eng);
    if r.waiter(fd, Dir::Write).is_some_and(|w| Some(w) != cur) {
        drop(r);
        s.out.truncate(queued);
        return fail(lua, "socket busy writing");
    }
    if let Some(b) = direct {
        s.owed = b.len();
        let mut n = 0;
        if r.is_ready(fd, Dir::Write) {
            match sys::send(fd, b) {
                Ok(k) => n = k,
                Err(e) if e.kind() == WouldBlock => {}
                Err(e) => {
                    drop(r);
                    return s.fail_closing(lua, &sys::error_string(&e), None);
                }
            }
        }
        if n == b.len() {
            return ret(Value::Integer(n as i64));
        }
        r.set_ready(fd, Dir::Write, false);
        s.out.extend_from_slice(&b[n..]);
    } else {
        s.owed = s.out.len() - queued;
    }
    drop(r);
    flush(lua, s)
}

/// Sends what `send` queued; answers the wait marker until it is all gone.
fn flush(lua: &Lua, s: &mut Socket) -> Result<Ret> {
    if s.eng.take_closed_under(s.eng.current()) || s.live_fd().is_none() {
        return fail(lua, "closed");
    }
    let fd = s.fd;
    let mut r = reactor(&s.eng);
    if r.take_timeout(fd, Dir::Write) {
        drop(r);
        return s.fail_closing(lua, "timeout", None);
    }
    while s.sent < s.out.len() {
        if !r.is_ready(fd, Dir::Write) {
            return s.eng.park_op(Pending::Io(fd, Dir::Write, s.timeout), OpKind::Flush);
        }
        match sys::send(fd, &s.out[s.sent..]) {
            Ok(n) => {
                s.sent += n;
                if s.sent < s.out.len() {
                    r.set_ready(fd, Dir::Write, false);
                }
            }
            Err(e) if e.kind() == WouldBlock => r.set_ready(fd, Dir::Write, false),
            Err(e) => {
                drop(r);
                return s.fail_closing(lua, &sys::error_string(&e), None);
            }
        }
    }
    s.out.clear();
    if s.out.capacity() > 64 * 1024 {
        s.out = Vec::new();
    }
    s.sent = 0;
    ret(Value::Integer(std::mem::take(&mut s.owed) as i64))
}

/// `close()`.
pub fn close(lua: &Lua, s: &mut Socket) -> Result<Ret> {
    if s.live_fd().is_none() && s.state != State::Resolving {
        return fail(lua, "closed");
    }
    s.close_now();
    ret(Value::Integer(1))
}

/// `settimeout(ms)`.
pub fn settimeout(lua: &Lua, s: &mut Socket, ms: Value) -> Result<Ret> {
    match number(lua, &ms) {
        Some(ms) if ms >= 0.0 => {
            s.timeout = Some(ms.min(u64::MAX as f64) as u64);
            ret(Value::Nil)
        }
        Some(_) => bad_arg(lua, 1, "settimeout", "timeout must be >= 0"),
        None => bad_arg(lua, 1, "settimeout", &expected("number", &ms)),
    }
}

/// `setoption(name, value)`: socket options and the receive limits.
pub fn setoption(lua: &Lua, s: &mut Socket, name: Value, value: Value) -> Result<Ret> {
    let name = match &name {
        Value::String(n) => n.to_string_lossy(),
        v => return bad_arg(lua, 1, "setoption", &expected("string", v)),
    };
    let opt = match name.as_str() {
        "max-line" | "max-receive" => {
            let n = match number(lua, &value) {
                Some(n) if n >= 1.0 && n.fract() == 0.0 => n.min(usize::MAX as f64) as usize,
                _ => return bad_arg(lua, 2, "setoption", &format!("{name} must be a whole number >= 1")),
            };
            if name == "max-line" {
                s.max_line = n;
            } else {
                s.max_receive = n;
            }
            return ret(Value::Integer(1));
        }
        "tcp-nodelay" => SockOpt::NoDelay,
        "keepalive" => SockOpt::KeepAlive,
        "sndbuf" => SockOpt::SndBuf,
        "rcvbuf" => SockOpt::RcvBuf,
        _ => return bad_arg(lua, 1, "setoption", &format!("unknown option '{name}'")),
    };
    let v = match (&value, opt) {
        (Value::Boolean(b), SockOpt::NoDelay | SockOpt::KeepAlive) => *b as i32,
        (v, SockOpt::NoDelay | SockOpt::KeepAlive) => return bad_arg(lua, 2, "setoption", &expected("boolean", v)),
        (v, _) => match number(lua, v) {
            Some(n) if n >= 0.0 && n <= i32::MAX as f64 => n as i32,
            Some(_) => return bad_arg(lua, 2, "setoption", &format!("{name} out of range")),
            None => return bad_arg(lua, 2, "setoption", &expected("number", v)),
        },
    };
    let Some(fd) = s.live_fd() else {
        return fail(lua, "closed");
    };
    match sys::set_option(fd, opt, v) {
        Ok(()) => ret(Value::Integer(1)),
        Err(e) => fail(lua, &sys::error_string(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_outlives_its_socket_harmlessly() {
        let lua = Lua::new();
        let eng = Rc::new(Engine::new(&lua).unwrap());
        let (a, old) = Cosocket::new(&eng);
        drop(a);
        let (_b, new) = Cosocket::new(&eng);
        let (old, new) = (Id::from(old), Id::from(new));
        assert_eq!(new.index(), old.index(), "the slot is reused");
        assert!(eng.socks.borrow().get(old).is_none(), "the old id finds nothing");
        assert!(eng.socks.borrow().get(new).is_some());
        // Generations wrap inside the 53 bits a LuaJIT number holds exactly.
        for _ in 0..=GENERATIONS {
            let (c, id) = Cosocket::new(&eng);
            assert!((0..1 << 53).contains(&id));
            drop(c);
        }
    }
}
