//! `cosocket.tcp()`: a TCP or unix stream socket. Each operation is "try, else
//! wait": the engine's stream does what buffers and cached readiness allow;
//! when it must wait, the operation answers the wait marker with its `Op`,
//! and the scheduler finishes it (`*_woken`) when the wait ends.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use coevent_engine::addr::{self, Host};
use coevent_engine::buf::Pattern;
use coevent_engine::pool::{self, Join};
use coevent_engine::resolver::Lookup;
use coevent_engine::sockets::{Id, Kind, Sock, Timeouts, DEFAULT_TIMEOUT};
use coevent_engine::stream::{Cx, Error, State, Step, Stream};
use coevent_engine::sys::{self, Addr, Shutdown, SockOpt};
use coevent_engine::until::{Key, Until};
use mlua::{BString, Lua, Result, Value};

use super::args::{collected, flatten_arg, listening_message, of, port_arg, stream, unparsed, with, Guard};
use crate::engine::{Core, Engine, Held, Wake, BUSY};
use crate::op::{On, Op, Pending};
use crate::resolve;
use crate::ret::{
    bad_arg, expected, fail, fail_partial, marked_pattern, number, raise, ret, type_name, Ret, NOT_IN_LOOP,
};

/// Strings up to this long cross into `send` as a copy (see `Data`); longer
/// copies would cost more than the reference they save.
pub const SHORT: usize = 4096;

/// A new socket's id (see `socket`).
pub fn new(lua: &Lua, eng: &Engine) -> Result<Ret> {
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let id = core.table.insert(Sock::stream());
    ret(Value::Integer(id.number()))
}

/// The addresses of `ips` at `port`.
fn at(ips: Vec<IpAddr>, port: u16) -> Vec<Addr> {
    ips.into_iter().map(|ip| Addr::Ip(SocketAddr::new(ip, port))).collect()
}

fn is_listener(core: &mut Core, id: Id) -> bool {
    matches!(core.table.get(id), Some(Sock { kind: Kind::Listener(_), .. }))
}

/// What a connect's step comes to, for Lua.
fn connecting(
    lua: &Lua,
    eng: &Engine,
    id: Id,
    port: u16,
    s: &Stream,
    timeout: Option<u64>,
    step: Step<()>,
) -> Result<Ret> {
    match step {
        Step::Done(()) => ret(Value::Integer(1)),
        Step::Wait(side, dir) => {
            let src = s.src().expect("a connect in flight");
            eng.park(Pending { on: On::Io(src, side, dir, timeout), op: Some(Op::Connect(id, port)) })
        }
        Step::Fail(e) => fail(lua, &e.message()),
    }
}

/// The keepalive pool a `connect` names: its key (None: the host's), and
/// the size and backlog it is made with if it does not exist (size 0: not
/// made by connect).
#[derive(Default)]
struct PoolArgs {
    key: Option<Vec<u8>>,
    size: usize,
    backlog: Option<usize>,
}

/// `connect`'s options table, argument `n`, read as OpenResty reads it.
fn pool_args(lua: &Lua, t: &mlua::Table, n: u32) -> Result<std::result::Result<PoolArgs, Ret>> {
    let mut a = PoolArgs::default();
    let bad = |what: String| bad_arg(lua, n, "connect", &what).map(Err);
    match t.get::<Value>("pool_size")? {
        Value::Nil => {}
        v => match number(lua, &v).map(f64::trunc) {
            Some(s) if s > 0.0 => a.size = s.min(u32::MAX as f64) as usize,
            Some(s) => return bad(format!("bad \"pool_size\" option value: {}", s as i64)),
            None => return bad(format!("bad \"pool_size\" option type: {}", type_name(&v))),
        },
    }
    if let Some(b) = number(lua, &t.get::<Value>("backlog")?).map(f64::trunc) {
        if b < 0.0 {
            return bad(format!("bad \"backlog\" option value: {}", b as i64));
        }
        a.backlog = Some(b.min(u32::MAX as f64) as usize);
        if a.size == 0 {
            a.size = pool::DEFAULT_SIZE;
        }
    }
    match t.get::<Value>("pool")? {
        Value::Nil => {}
        v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => {
            a.key = lua.coerce_string(v)?.map(|k| k.as_bytes().to_vec())
        }
        v => return bad(format!("bad \"pool\" option type: {}", type_name(&v))),
    }
    Ok(Ok(a))
}

/// `connect(host, port, options?)` (or `("unix:path", options?)`, or the
/// seed's `(host, port, pool_size, pool_key)`): closes what the socket had,
/// takes a connection from the keepalive pool if it has one, else connects
/// to the first of the host's addresses that takes the connection. As
/// OpenResty: a number is a host name too, the port is truncated to a whole
/// number, and a port that is missing or out of range is an error returned.
pub fn connect(lua: &Lua, eng: &Engine, id: Id, host: Value, args: [Value; 3]) -> Result<Ret> {
    let [port, c, d] = args;
    // A string as it is: coercing one is a protected call, dear on LuaJIT
    // (bench/callgrind.sh).
    let coerced;
    let host = match &host {
        Value::String(h) => h,
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(host.clone())? {
            Some(h) => {
                coerced = h;
                &coerced
            }
            None => return bad_arg(lua, 1, "connect", &expected("string", &host)),
        },
        _ => return bad_arg(lua, 1, "connect", &expected("string", &host)),
    };
    let (port, pa) = match (port, &c) {
        (Value::Table(t), _) => (Value::Nil, pool_args(lua, &t, 2)?),
        (port, Value::Table(t)) => (port, pool_args(lua, t, 3)?),
        // The seed's positional pool size and key.
        (port, Value::Integer(_) | Value::Number(_)) => {
            let size = number(lua, &c).map_or(0.0, f64::trunc).clamp(0.0, u32::MAX as f64) as usize;
            let key = match d {
                Value::Nil => None,
                d => lua.coerce_string(d)?.map(|k| k.as_bytes().to_vec()),
            };
            (port, Ok(PoolArgs { key, size, backlog: None }))
        }
        (port, _) => (port, Ok(PoolArgs::default())),
    };
    let pa = match pa {
        Ok(pa) => pa,
        Err(raised) => return Ok(raised),
    };
    let host = host.as_bytes();
    let port_n = match port_arg(lua, &host, &port) {
        Ok(p) => p,
        Err(r) => return r,
    };
    // OpenResty's pool key: the host, with ":port" when a port was given.
    let key = match pa.key {
        Some(k) => k,
        None => {
            let mut k = host.to_vec();
            match &port {
                Value::String(p) if number(lua, &port).is_some() => {
                    k.push(b':');
                    k.extend_from_slice(&p.as_bytes());
                }
                p => {
                    if let Some(p) = number(lua, p) {
                        k.push(b':');
                        push_int(&mut k, p as i64);
                    }
                }
            }
            k
        }
    };
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    if let Err(msg) = stream(&mut core, id, "connect") {
        drop(core);
        return raise(lua, &msg);
    }
    // Reconnecting closes the old connection first, as OpenResty does (a
    // socket not connected keeps what `bind` made).
    if !closed(of(core.table.get(id).expect("checked above"))) {
        core.close(id);
    }
    let core = &mut *core;
    let p = match pa.size {
        0 => core.pools.find(&key),
        size => Some(core.pools.get_or_create(&key, size, pa.backlog)),
    };
    let (Some(sock), Some(r)) = (core.table.get(id), core.r.as_mut()) else { unreachable!("checked above") };
    let timeout = sock.timeouts.connect;
    let s = of(sock);
    s.key.clear();
    s.reused = 0;
    s.server = false;
    let Some(p) = p else {
        s.key.extend_from_slice(&key);
        return dial(lua, eng, core, id, &host, port_n);
    };
    if let Some((conn, reused)) = core.pools.take(p, r) {
        s.resume(conn, p, reused + 1);
        return ret(Value::Integer(1));
    }
    match core.pools.join(p) {
        Join::Go => s.pool = Some(p),
        Join::Refused => return fail(lua, "too many waiting connect operations"),
        Join::Wait => {
            let Some(tok) = eng.current() else { return raise(lua, NOT_IN_LOOP) };
            core.pools.queue(p, tok);
            s.state = State::Queued { pool: p, host: host.to_vec(), port: port_n, tok };
            return eng.park(Pending { on: On::Pool(p, timeout), op: Some(Op::Connect(id, port_n)) });
        }
    }
    dial(lua, eng, core, id, &host, port_n)
}

/// Connects socket `id` (closed) to `host`'s addresses.
fn dial(lua: &Lua, eng: &Engine, core: &mut Core, id: Id, host: &[u8], port: u16) -> Result<Ret> {
    let addrs = match addr::parse_host(host) {
        Ok(Host::Unix(path)) => vec![Addr::Unix(path.to_vec())],
        Ok(Host::Ip(ip)) => vec![Addr::Ip(SocketAddr::new(ip, port))],
        Ok(Host::Name(name)) => return resolving(lua, eng, core, id, name.to_string(), port),
        Err(e) => {
            let (sock, mut cx) = core.sock(id).expect("a live socket");
            // Its place in a pool, if it had one, goes back.
            of(sock).close(&mut cx);
            return fail(lua, &unparsed(host, e));
        }
    };
    let (sock, mut cx) = core.sock(id).expect("a live socket");
    let timeout = sock.timeouts.connect;
    let s = of(sock);
    let step = s.connect(&mut cx, addrs);
    connecting(lua, eng, id, port, s, timeout, step)
}

/// `n`'s decimal digits: `write!` costs a pooled connect measurably more
/// (bench/callgrind.sh).
fn push_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let (mut buf, mut i, mut u) = ([0u8; 20], 20, n.unsigned_abs());
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// The resolving part of connect, until the name's addresses are known.
fn resolving(lua: &Lua, eng: &Engine, core: &mut Core, id: Id, name: String, port: u16) -> Result<Ret> {
    match resolve::lookup(core, &name) {
        Lookup::Done(a) => {
            let (sock, mut cx) = core.sock(id).expect("a live socket");
            let timeout = sock.timeouts.connect;
            let s = of(sock);
            let step = s.resolved(&mut cx, a.map(|ips| at(ips, port)).map_err(|e| e.as_str()));
            connecting(lua, eng, id, port, s, timeout, step)
        }
        Lookup::Wait(q) => {
            let (sock, _) = core.sock(id).expect("a live socket");
            let wait = eng.current().map(|t| (q, t));
            of(sock).state = State::Resolving { name, port, wait };
            eng.park(Pending { on: On::Resolve(q), op: Some(Op::Connect(id, port)) })
        }
    }
}

/// The rest of `connect` after a wait.
pub fn connect_woken(lua: &Lua, eng: &Engine, id: Id, port: u16, wake: Wake) -> Result<Ret> {
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let core = &mut *core;
    let Ok((sock, mut cx)) = core.sock(id) else { return fail(lua, "closed") };
    let timeout = sock.timeouts.connect;
    let s = of(sock);
    let step = match (wake, &s.state) {
        (wake, State::Queued { .. }) => return queued_woken(lua, eng, core, id, wake),
        (Wake::Answer(a), State::Resolving { .. }) => {
            s.resolved(&mut cx, a.map(|ips| at(ips, port)).map_err(|e| e.as_str()))
        }
        // The resolver was replaced (`L.config`): ask the new one.
        (Wake::Ready, State::Resolving { name, .. }) => {
            let name = name.clone();
            return resolving(lua, eng, core, id, name, port);
        }
        (Wake::Ready, State::Connecting { .. }) => s.connect_ready(&mut cx),
        (Wake::Timeout, State::Connecting { .. }) => Step::Fail(s.connect_timed_out(&mut cx)),
        _ => return fail(lua, "closed"),
    };
    connecting(lua, eng, id, port, s, timeout, step)
}

/// The rest of a connect that waited in a pool's backlog: a place (its
/// idle connection, or a new one), or its timeout.
fn queued_woken(lua: &Lua, eng: &Engine, core: &mut Core, id: Id, wake: Wake) -> Result<Ret> {
    let (Some(sock), Some(r)) = (core.table.get(id), core.r.as_mut()) else { return fail(lua, "closed") };
    let s = of(sock);
    let State::Queued { pool: p, tok, port, .. } = s.state else { return fail(lua, "closed") };
    let State::Queued { host, .. } = std::mem::replace(&mut s.state, State::Closed) else { unreachable!() };
    // A place granted before its timeout fired (in the same turn) is taken all the same.
    let place = match wake {
        Wake::Ready | Wake::Timeout => core.pools.claim(p, tok, r, &mut core.woken),
        _ => None,
    };
    match place {
        Some(Some((conn, reused))) => {
            s.resume(conn, p, reused + 1);
            ret(Value::Integer(1))
        }
        // Its place in the count goes to the connection it makes.
        Some(None) => {
            s.pool = Some(p);
            dial(lua, eng, core, id, &host, port)
        }
        None => {
            core.pools.unqueue(p, tok, r, &mut core.woken);
            fail(lua, if matches!(wake, Wake::Timeout) { "timeout" } else { "closed" })
        }
    }
}

/// `receive(pattern)`.
pub fn receive(lua: &Lua, eng: &Engine, id: Id, pat: Value) -> Result<Ret> {
    let p = match &pat {
        Value::Nil => Some(Pattern::All),
        Value::LightUserData(_) => marked_pattern(&pat),
        // A count is truncated to a whole number, as OpenResty's lua_tointeger does.
        Value::String(st) => Pattern::parse(&st.as_bytes()).or_else(|| number(lua, &pat).and_then(count)),
        v => number(lua, v).and_then(count),
    };
    let Some(p) = p else {
        let what = match &pat {
            // A string that is no number and no '*x' is named in the message.
            Value::String(st)
                if number(lua, &pat).is_none() && !(st.as_bytes().len() == 2 && st.as_bytes()[0] == b'*') =>
            {
                format!("bad pattern argument: {}", st.to_string_lossy())
            }
            _ => "bad pattern argument".to_string(),
        };
        // OpenResty looks at the socket first: a closed one answers so.
        return with(lua, eng, id, "receive", |sock, _| match closed(of(sock)) {
            true => fail(lua, "closed"),
            false => bad_arg(lua, 1, "receive", &what),
        });
    };
    receive_with(lua, eng, id, p)
}

fn count(n: f64) -> Option<Pattern> {
    Pattern::count(n.trunc())
}

/// Never connected, or closed: OpenResty's receive answers `nil, "closed"`
/// there, with no partial.
fn closed(s: &Stream) -> bool {
    matches!(s.state, State::Fresh | State::Closed)
}

fn receive_with(lua: &Lua, eng: &Engine, id: Id, p: Pattern) -> Result<Ret> {
    with(lua, eng, id, "receive", |sock, mut cx| {
        let timeout = sock.timeouts.read;
        let s = of(sock);
        if closed(s) {
            return fail(lua, "closed");
        }
        let r = match s.receive(&mut cx, p) {
            // Made under the engine's borrow: a finalizer this allocation
            // runs finds the engine busy (see engine).
            Step::Done(d) => eng.lend.data(lua, d),
            Step::Wait(side, dir) => {
                let src = s.src().expect("a connected stream");
                eng.park(Pending { on: On::Io(src, side, dir, timeout), op: Some(Op::Receive(id, p)) })
            }
            Step::Fail(f) => partial(lua, &f.err.message(), &f.partial),
        };
        // An empty buffer goes back to the pool: an idle socket holds none.
        s.release(cx.spare);
        r
    })
}

/// `nil, err, partial`.
fn partial(lua: &Lua, err: &str, partial: &[u8]) -> Result<Ret> {
    fail_partial(lua, err, Value::String(lua.create_string(partial)?))
}

/// The rest of `receive` after a wait.
pub fn receive_woken(lua: &Lua, eng: &Engine, id: Id, p: Pattern, wake: Wake) -> Result<Ret> {
    match wake {
        Wake::Ready | Wake::Answer(_) => receive_with(lua, eng, id, p),
        // A read timeout leaves the socket open.
        Wake::Timeout => {
            let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
            let f = match core.table.get(id) {
                Some(sock) => of(sock).receive_timed_out(p),
                None => return partial(lua, "timeout", b""),
            };
            drop(core);
            partial(lua, "timeout", &f.partial)
        }
        Wake::Closed(None) => partial(lua, "closed", b""),
        Wake::Closed(Some(mut buf)) => partial(lua, "closed", buf.take_partial(p)),
    }
}

/// `receiveuntil(pattern, options?)`: a new matcher, and the guard that
/// frees it when the iterator holding it is collected.
pub fn receiveuntil(lua: &Lua, eng: &Rc<Engine>, pattern: Value, options: Value) -> Result<Ret> {
    // OpenResty's order: the options first, then the pattern.
    let inclusive = match &options {
        Value::Nil => false,
        Value::Table(t) => match t.get::<Value>("inclusive")? {
            Value::Nil => false,
            Value::Boolean(b) => b,
            v => return raise(lua, &format!("bad \"inclusive\" option value type: {}", type_name(&v))),
        },
        v => return bad_arg(lua, 2, "receiveuntil", &expected("table", v)),
    };
    let pat = match &pattern {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(pattern.clone())? {
            Some(s) => s.as_bytes().to_vec(),
            None => return bad_arg(lua, 1, "receiveuntil", &expected("string", &pattern)),
        },
        v => return bad_arg(lua, 1, "receiveuntil", &expected("string", v)),
    };
    if pat.is_empty() {
        return fail(lua, "pattern is empty");
    }
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let key = core.untils.insert(Until::new(&pat, inclusive));
    drop(core);
    // Made without the engine's borrow; if it fails, the matcher goes too.
    match lua.create_userdata(Guard::new(eng, Held::Matcher(key))) {
        Ok(guard) => ret(Value::UserData(guard)),
        Err(e) => {
            if let Some(mut core) = eng.core() {
                core.untils.remove(key);
            }
            Err(e)
        }
    }
}

/// Socket `id`'s stream, matcher `key` and what an operation is lent.
fn with_until(
    lua: &Lua,
    eng: &Engine,
    id: Id,
    key: Key,
    op: impl FnOnce(&mut Stream, &mut Until, Cx, Option<u64>) -> Result<Ret>,
) -> Result<Ret> {
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let core = &mut *core;
    if is_listener(core, id) {
        return raise(lua, &listening_message("receiveuntil"));
    }
    let Some(sock) = core.table.get(id) else { return collected(lua, "receiveuntil") };
    let Some(r) = core.r.as_mut() else { return raise(lua, NOT_IN_LOOP) };
    let Some(u) = core.untils.get(key) else { return fail(lua, "closed") };
    let timeout = sock.timeouts.read;
    op(of(sock), u, Cx { r, spare: &mut core.spare, woken: &mut core.woken }, timeout)
}

/// A call of a `receiveuntil` iterator: `it(size?)`.
pub fn until(lua: &Lua, eng: &Engine, id: Id, guard: Value, size: Value) -> Result<Ret> {
    let Value::UserData(guard) = &guard else { return raise(lua, "bad receiveuntil iterator") };
    let Some(key) = guard.borrow::<Guard>()?.matcher() else { return raise(lua, "bad receiveuntil iterator") };
    // luaL_checkinteger, as LuaJIT has it: a fraction is cut off.
    let size = match &size {
        Value::Nil => 0,
        v => match number(lua, v) {
            Some(n) if n > 0.0 => n.min(usize::MAX as f64) as usize,
            Some(_) => 0,
            None => return bad_arg(lua, 1, "iterator", &expected("number", v)),
        },
    };
    until_step(lua, eng, id, key, Some(size))
}

/// Runs a call of the iterator (`size` Some) or its rest after a wait.
fn until_step(lua: &Lua, eng: &Engine, id: Id, key: Key, size: Option<usize>) -> Result<Ret> {
    with_until(lua, eng, id, key, |s, u, mut cx, timeout| {
        if size.is_some() && !s.is_connected() {
            // OpenResty's word for a socket closed before the call: no partial.
            return fail(lua, "closed");
        }
        // The matcher's output is emptied once copied out; a wait keeps it,
        // and a busy call leaves it to the call that waits.
        let r = match s.receive_until(&mut cx, u, size) {
            Step::Done(Some(d)) => {
                let r = eng.lend.data(lua, d);
                u.release();
                r
            }
            // Past a limited call's boundary: nil, nil, nil (the prelude makes three).
            Step::Done(None) => ret(Value::Nil),
            Step::Wait(side, dir) => {
                let src = s.src().expect("a connected stream");
                return eng.park(Pending { on: On::Io(src, side, dir, timeout), op: Some(Op::Until(id, key)) });
            }
            Step::Fail(f) if f.err == Error::BusyReading => return fail(lua, &f.err.message()),
            Step::Fail(f) => partial(lua, &f.err.message(), &f.partial),
        };
        s.release(cx.spare);
        r
    })
}

/// The rest of an iterator's call after a wait.
pub fn until_woken(lua: &Lua, eng: &Engine, id: Id, key: Key, wake: Wake) -> Result<Ret> {
    let (err, buf) = match wake {
        Wake::Ready | Wake::Answer(_) => return until_step(lua, eng, id, key, None),
        Wake::Timeout => ("timeout", None),
        Wake::Closed(buf) => ("closed", buf),
    };
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let Some(u) = core.untils.get(key) else {
        drop(core);
        return partial(lua, err, b"");
    };
    let v = match buf {
        // A read timeout leaves the socket and the started boundary.
        None if err == "timeout" => u.timed_out().to_vec(),
        None => u.ended_stream().to_vec(),
        Some(mut buf) => {
            let mut v = u.ended_stream().to_vec();
            v.extend_from_slice(buf.take_partial(Pattern::All));
            v
        }
    };
    u.release();
    drop(core);
    partial(lua, err, &v)
}

/// `receiveany(max)`: what is buffered or arrives first, at most `max` bytes.
pub fn receiveany(lua: &Lua, eng: &Engine, id: Id, max: Value) -> Result<Ret> {
    // As OpenResty: a closed socket is reported before the argument is looked at.
    let open = with(lua, eng, id, "receiveany", |sock, _| ret(Value::Boolean(of(sock).is_connected())))?;
    match open.0 {
        Value::Boolean(true) => {}
        Value::Boolean(false) => return fail(lua, "closed"),
        _ => return Ok(open),
    }
    let max = match number(lua, &max) {
        Some(n) if n >= 1.0 => n.min(usize::MAX as f64) as usize,
        _ => return bad_arg(lua, 1, "receiveany", "bad max argument"),
    };
    receiveany_step(lua, eng, id, max)
}

fn receiveany_step(lua: &Lua, eng: &Engine, id: Id, max: usize) -> Result<Ret> {
    with(lua, eng, id, "receiveany", |sock, mut cx| {
        let timeout = sock.timeouts.read;
        let s = of(sock);
        let r = match s.receive_any(&mut cx, max) {
            Step::Done(d) => eng.lend.data(lua, d),
            Step::Wait(side, dir) => {
                let src = s.src().expect("a connected stream");
                eng.park(Pending { on: On::Io(src, side, dir, timeout), op: Some(Op::Any(id, max)) })
            }
            Step::Fail(f) if f.err == Error::BusyReading => fail(lua, &f.err.message()),
            Step::Fail(f) => partial(lua, &f.err.message(), &f.partial),
        };
        s.release(cx.spare);
        r
    })
}

/// The rest of `receiveany` after a wait.
pub fn receiveany_woken(lua: &Lua, eng: &Engine, id: Id, max: usize, wake: Wake) -> Result<Ret> {
    match wake {
        Wake::Ready | Wake::Answer(_) => receiveany_step(lua, eng, id, max),
        // Nothing had arrived: nothing to give back; the socket stays open.
        Wake::Timeout => partial(lua, "timeout", b""),
        Wake::Closed(None) => partial(lua, "closed", b""),
        Wake::Closed(Some(mut buf)) => {
            let n = buf.len().min(max);
            partial(lua, "closed", buf.take_partial(Pattern::Bytes(n)))
        }
    }
}

/// What `send` was given. On LuaJIT a short string comes copied (`Bytes`):
/// there the reference mlua makes to a Lua string argument costs more than a
/// copy (bench/callgrind.sh measures it).
pub enum Data {
    Bytes(BString),
    Value(Value),
}

/// What a send's step comes to, for Lua.
fn sending(lua: &Lua, eng: &Engine, id: Id, s: &Stream, timeout: Option<u64>, step: Step<usize>) -> Result<Ret> {
    match step {
        Step::Done(n) => ret(Value::Integer(n as i64)),
        Step::Wait(side, dir) => {
            let src = s.src().expect("a connected stream");
            eng.park(Pending { on: On::Io(src, side, dir, timeout), op: Some(Op::Flush(id)) })
        }
        Step::Fail(e) => fail(lua, &e.message()),
    }
}

/// `send(data)`: sends what the kernel takes now, keeps the rest (copied) for the flush.
pub fn send(lua: &Lua, eng: &Engine, id: Id, data: Data) -> Result<Ret> {
    let mut bad = None;
    let r = with(lua, eng, id, "send", |sock, mut cx| {
        let timeout = sock.timeouts.send;
        let s = of(sock);
        let step = match &data {
            Data::Bytes(b) => s.send(&mut cx, b),
            Data::Value(Value::String(st)) => s.send(&mut cx, &st.as_bytes()),
            Data::Value(v) => match s.send_filled(&mut cx, |out| flatten_arg(lua, v, out)) {
                Ok(step) => step,
                Err(e) => {
                    bad = Some(e);
                    return ret(Value::Nil);
                }
            },
        };
        sending(lua, eng, id, s, timeout, step)
    });
    match bad {
        Some(e) => bad_arg(lua, 1, "send", &e),
        None => r,
    }
}

/// The rest of `send` after a wait.
pub fn flush_woken(lua: &Lua, eng: &Engine, id: Id, wake: Wake) -> Result<Ret> {
    with(lua, eng, id, "send", |sock, mut cx| {
        let timeout = sock.timeouts.send;
        let s = of(sock);
        let step = match wake {
            Wake::Ready | Wake::Answer(_) => s.flush(&mut cx),
            // The stream's position is lost: it closes.
            Wake::Timeout => Step::Fail(s.flush_timed_out(&mut cx)),
            Wake::Closed(_) => return fail(lua, "closed"),
        };
        sending(lua, eng, id, s, timeout, step)
    })
}

/// `close()`: 1, or nil, "closed" if it was not open.
pub fn close(lua: &Lua, eng: &Engine, id: Id) -> Result<Ret> {
    let Some(mut core) = eng.core() else {
        // A finalizer in the middle of an engine call: the loop closes it next.
        eng.defer(crate::engine::Deferred::Close(id));
        return ret(Value::Integer(1));
    };
    if is_listener(&mut core, id) {
        core.close(id);
        return ret(Value::Integer(1));
    }
    let open = match stream(&mut core, id, "close") {
        Ok((sock, _)) => !matches!(of(sock).state, State::Fresh | State::Closed),
        Err(msg) => {
            drop(core);
            return raise(lua, &msg);
        }
    };
    if !open {
        drop(core);
        return fail(lua, "closed");
    }
    core.close(id);
    ret(Value::Integer(1))
}

/// `settimeout(ms)`: for the following connect, send and receive. As
/// OpenResty: what is not a number counts as 0, a fraction is truncated, 0
/// means the default (60 s), and below 0 or from 2^31 on raises.
pub fn settimeout(lua: &Lua, eng: &Engine, id: Id, ms: Value) -> Result<Ret> {
    let ms = number(lua, &ms).unwrap_or(0.0).trunc();
    if !(0.0..2_147_483_648.0).contains(&ms) {
        return raise(lua, "bad timeout value");
    }
    let t = Some(ms as u64);
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let Some(sock) = core.table.get(id) else {
        drop(core);
        return collected(lua, "settimeout");
    };
    sock.timeouts = match t {
        Some(0) => coevent_engine::sockets::Timeouts::default(),
        t => coevent_engine::sockets::Timeouts { connect: t, send: t, read: t },
    };
    ret(Value::Nil)
}

/// `settimeouts(connect, send, read)`, in ms, as OpenResty reads them: a
/// value that is no number is 0, and 0 is the default (60 s); below 0 or
/// from 2^31 on raises.
pub fn settimeouts(lua: &Lua, eng: &Engine, id: Id, ms: [Value; 3]) -> Result<Ret> {
    let mut t = [None; 3];
    for (t, v) in t.iter_mut().zip(&ms) {
        let n = number(lua, v).filter(|n| !n.is_nan()).unwrap_or(0.0).trunc();
        if !(0.0..2147483648.0).contains(&n) {
            return raise(lua, "bad timeout value");
        }
        *t = Some(if n == 0.0 { DEFAULT_TIMEOUT } else { n as u64 });
    }
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let Some(sock) = core.table.get(id) else {
        drop(core);
        return collected(lua, "settimeouts");
    };
    sock.timeouts = Timeouts { connect: t[0], send: t[1], read: t[2] };
    ret(Value::Nil)
}

/// `setoption(name, value)`: socket options and the receive limits. As
/// OpenResty's: `true`, or `nil, err` for a missing or unknown option; a
/// never connected socket raises. Booleans and numbers are taken for any
/// option (true is 1).
pub fn setoption(lua: &Lua, eng: &Engine, id: Id, name: Value, value: Value) -> Result<Ret> {
    let limit = matches!(&name, Value::String(n) if matches!(&*n.as_bytes(), b"max-line" | b"max-receive"));
    if limit {
        return setlimit(lua, eng, id, &name.to_string()?, value);
    }
    // reuseaddr and reuseport before a connection are for `bind` (socket::listener).
    let reuse = matches!(&name, Value::String(n) if matches!(&*n.as_bytes(), b"reuseaddr" | b"reuseport"));
    let fd = {
        let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
        match core.table.get(id).map(|s| &mut s.kind) {
            Some(Kind::Listener(l)) => Some(Some(l.src.fd)),
            Some(Kind::Stream(s)) if matches!(s.state, State::Fresh) && !reuse => None,
            Some(Kind::Stream(s)) => Some(s.src().filter(|_| s.is_connected()).map(|src| src.fd)),
            // A datagram socket's options are not this function's (see `of`).
            Some(Kind::Dgram(_)) | None => {
                drop(core);
                return collected(lua, "setoption");
            }
        }
    };
    let Some(fd) = fd else { return raise(lua, "socket is never created nor connected") };
    let opt = match &name {
        Value::Nil => return fail(lua, "missing the \"option\" argument"),
        _ if value.is_nil() => return fail(lua, "missing the \"value\" argument"),
        Value::String(n) => match &*n.as_bytes() {
            b"tcp-nodelay" => Some(SockOpt::NoDelay),
            b"keepalive" => Some(SockOpt::KeepAlive),
            b"reuseaddr" => Some(SockOpt::ReuseAddr),
            b"reuseport" => Some(SockOpt::ReusePort),
            b"sndbuf" => Some(SockOpt::SndBuf),
            b"rcvbuf" => Some(SockOpt::RcvBuf),
            _ => None,
        },
        _ => None,
    };
    let Some(opt) = opt else {
        return crate::ret::fail_with(lua, "unsupported option ", &name);
    };
    let v = match &value {
        Value::Boolean(b) => *b as i32,
        Value::Integer(_) | Value::Number(_) => match number(lua, &value).map(f64::trunc) {
            Some(n) if (i32::MIN as f64..=i32::MAX as f64).contains(&n) => n as i32,
            _ => return bad_arg(lua, 2, "setoption", &format!("{} out of range", name.to_string()?)),
        },
        v => return bad_arg(lua, 2, "setoption", &expected("number", v)),
    };
    let Some(fd) = fd else {
        return match reuse {
            true => set_reuse(lua, eng, id, opt, v != 0),
            false => fail(lua, "closed"),
        };
    };
    match sys::set_option(fd, opt, v) {
        Ok(()) => ret(Value::Boolean(true)),
        Err(e) => fail(lua, &sys::error_string(&e)),
    }
}

/// `setoption('max-line' | 'max-receive', n)`: the receive limits (coevent's own).
fn setlimit(lua: &Lua, eng: &Engine, id: Id, name: &str, value: Value) -> Result<Ret> {
    let n = match number(lua, &value) {
        // Past usize::MAX a limit is no limit: clamped.
        Some(n) if n >= 1.0 && n.fract() == 0.0 => n.min(usize::MAX as f64) as usize,
        _ => return bad_arg(lua, 2, "setoption", &format!("{name} must be a whole number >= 1")),
    };
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    if is_listener(&mut core, id) {
        drop(core);
        return fail(lua, "unsupported option on a listener");
    }
    let Some(sock) = core.table.get(id) else {
        drop(core);
        return collected(lua, "setoption");
    };
    let limits = &mut of(sock).limits;
    if name == "max-line" {
        limits.max_line = n;
    } else {
        limits.max_receive = n;
    }
    ret(Value::Boolean(true))
}

/// `setoption('reuseaddr' | 'reuseport', on)` on a socket not connected:
/// kept for `bind`, and set at once on a bound fd.
pub fn set_reuse(lua: &Lua, eng: &Engine, id: Id, opt: SockOpt, on: bool) -> Result<Ret> {
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let r = match core.table.get(id).map(|s| &mut s.kind) {
        Some(Kind::Stream(s)) => s.local.set(opt, on),
        _ => return fail(lua, "closed"),
    };
    drop(core);
    match r {
        Ok(()) => ret(Value::Boolean(true)),
        Err(e) => fail(lua, &sys::error_string(&e)),
    }
}

/// `getfd()`: the socket's fd while it has one.
pub fn getfd(lua: &Lua, eng: &Engine, id: Id) -> Result<Ret> {
    with(lua, eng, id, "getfd", |sock, _| match of(sock).src() {
        Some(src) => ret(Value::Integer(i64::from(src.fd))),
        None => fail(lua, "closed"),
    })
}

/// `getpeername()`: the peer's address and port (a unix socket's path), as luasocket's.
pub fn getpeername(lua: &Lua, eng: &Engine, id: Id) -> Result<Ret> {
    let addr = with(lua, eng, id, "getpeername", |sock, _| {
        let s = of(sock);
        let Some(src) = s.src().filter(|_| s.is_connected()) else { return fail(lua, "closed") };
        match sys::peer_name(src.fd) {
            Ok(Addr::Ip(a)) => {
                let ip = lua.create_string(a.ip().to_string())?;
                Ok((Value::String(ip), Value::Integer(i64::from(a.port())), Value::Nil))
            }
            Ok(Addr::Unix(path)) => ret(Value::String(lua.create_string(path)?)),
            Err(e) => fail(lua, &sys::error_string(&e)),
        }
    })?;
    Ok(addr)
}

/// `shutdown('send' | 'receive' | 'both')`: a half-close (default both);
/// `'send'` lets the peer see the end of the stream while this side reads on.
pub fn shutdown(lua: &Lua, eng: &Engine, id: Id, how: Value) -> Result<Ret> {
    let how = match &how {
        Value::Nil => Shutdown::Both,
        Value::String(h) => match &*h.as_bytes() {
            b"send" => Shutdown::Write,
            b"receive" => Shutdown::Read,
            b"both" => Shutdown::Both,
            _ => return bad_arg(lua, 1, "shutdown", "invalid shutdown method"),
        },
        v => return bad_arg(lua, 1, "shutdown", &expected("string", v)),
    };
    with(lua, eng, id, "shutdown", |sock, _| match of(sock).shutdown(how) {
        Ok(()) => ret(Value::Integer(1)),
        Err(e) => fail(lua, &e.message()),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn push_int() {
        for n in [0, 7, 6379, 65535, -1, -80, i64::MAX, i64::MIN] {
            let mut k = b"h:".to_vec();
            super::push_int(&mut k, n);
            assert_eq!(k, format!("h:{n}").into_bytes());
        }
    }
}
