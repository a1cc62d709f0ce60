//! `cosocket.udp()`: a UDP or unix datagram socket, OpenResty's
//! `ngx.socket.udp`. As with tcp, each operation is "try, else wait" on the
//! engine's `Dgram`, and the scheduler finishes a waiting one (`complete`).
//! The arity checks are the prelude's.

use std::net::SocketAddr;

use coevent_engine::addr::{self, Host};
use coevent_engine::dgram::{Dgram, Error, Scratch, State, MAX_DATAGRAM};
use coevent_engine::reactor::{Side, Src};
use coevent_engine::resolver::Lookup;
use coevent_engine::sockets::{Id, Kind, Sock, Timeouts};
use coevent_engine::stream::{Cx, Step};
use coevent_engine::sys::Addr;
use mlua::{Lua, Result, Value};

use super::args::{collected, flatten_arg, unparsed};
use crate::engine::{Core, Engine, Wake, BUSY};
use crate::op::{On, Op, Pending, Udp};
use crate::resolve;
use crate::ret::{bad_arg, expected, fail, number, raise, ret, type_name, Ret, NOT_IN_LOOP};

/// A new socket's id (see `socket`).
pub fn new(lua: &Lua, eng: &Engine) -> Result<Ret> {
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let id = core.table.insert(Sock::dgram());
    ret(Value::Integer(id.number()))
}

/// What an operation on a datagram socket is lent.
struct Parts<'a> {
    d: &'a mut Dgram,
    timeouts: Timeouts,
    cx: Cx<'a>,
    scratch: &'a mut Scratch,
}

/// Runs `op` on socket `id`, or raises why it cannot: the engine is busy,
/// the socket was collected, no loop runs.
fn with(lua: &Lua, eng: &Engine, id: Id, name: &str, op: impl FnOnce(Parts) -> Result<Ret>) -> Result<Ret> {
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let Core { table, r, spare, woken, scratch, .. } = &mut *core;
    let Some(sock) = table.get(id) else { return collected(lua, name) };
    let Some(r) = r.as_mut() else { return raise(lua, NOT_IN_LOOP) };
    let timeouts = sock.timeouts;
    op(Parts { d: of(sock), timeouts, cx: Cx { r, spare, woken }, scratch })
}

fn of(sock: &mut Sock) -> &mut Dgram {
    match &mut sock.kind {
        Kind::Dgram(d) => d,
        // The prelude hands a stream's or a listener's id to the tcp functions only.
        Kind::Stream(_) | Kind::Listener(_) => unreachable!("a datagram operation on a stream"),
    }
}

/// `setpeername(host, port?)` (`port` nil: not given): closes what the
/// socket had, then takes the host's first address as the peer. As
/// OpenResty: a port out of range is an error returned, not raised.
pub fn setpeername(lua: &Lua, eng: &Engine, id: Id, host: Value, port: Value) -> Result<Ret> {
    let Some(host) = lua.coerce_string(host.clone())? else {
        return bad_arg(lua, 1, "setpeername", &expected("string", &host));
    };
    let port = match port_arg(lua, &port) {
        Port::Ok(p) => p,
        Port::Bad(r) => return r,
        // The prelude's mark of a port given as nil.
        Port::NotNumber(Value::LightUserData(_)) => return bad_arg(lua, 2, "setpeername", "number expected, got nil"),
        Port::NotNumber(v) => return bad_arg(lua, 2, "setpeername", &expected("number", v)),
    };
    let host = host.as_bytes();
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    if core.table.get(id).is_none() {
        drop(core);
        return collected(lua, "setpeername");
    }
    if core.r.is_none() {
        drop(core);
        return raise(lua, NOT_IN_LOOP);
    }
    core.close(id);
    let peer = match addr::parse_host(&host) {
        Ok(Host::Unix(path)) => Addr::Unix(path.to_vec()),
        Ok(Host::Ip(ip)) => Addr::Ip(SocketAddr::new(ip, port)),
        Ok(Host::Name(name)) => return resolving(lua, eng, &mut core, id, name.to_string(), port),
        Err(e) => {
            drop(core);
            return fail(lua, &unparsed(&host, e));
        }
    };
    let (sock, mut cx) = core.sock(id).expect("checked above");
    let r = of(sock).open(&mut cx, &peer);
    drop(core);
    opened(lua, r)
}

/// A port argument: none (nil) is 0; a number, or a string Lua reads as
/// one, is cut to a whole number, and out of range returned as OpenResty
/// does.
enum Port<'a> {
    Ok(u16),
    Bad(Result<Ret>),
    NotNumber(&'a Value),
}

fn port_arg<'a>(lua: &Lua, v: &'a Value) -> Port<'a> {
    match v {
        Value::Nil => Port::Ok(0),
        v => match number(lua, v).map(f64::trunc) {
            Some(p) if (0.0..=65535.0).contains(&p) => Port::Ok(p as u16),
            Some(p) => Port::Bad(fail(lua, &format!("bad port number: {}", p as i64))),
            None => Port::NotNumber(v),
        },
    }
}

fn opened(lua: &Lua, r: std::result::Result<(), Error>) -> Result<Ret> {
    match r {
        Ok(()) => ret(Value::Integer(1)),
        Err(e) => fail(lua, &e.message()),
    }
}

/// The resolving part of setpeername, until the name's addresses are known.
fn resolving(lua: &Lua, eng: &Engine, core: &mut Core, id: Id, name: String, port: u16) -> Result<Ret> {
    match resolve::lookup(core, &name) {
        Lookup::Done(a) => {
            let (sock, mut cx) = core.sock(id).expect("a live socket");
            let r = of(sock).resolved(&mut cx, port, a.map_err(|e| e.as_str()));
            opened(lua, r)
        }
        Lookup::Wait(q) => {
            let (sock, _) = core.sock(id).expect("a live socket");
            let wait = eng.current().map(|t| (q, t));
            of(sock).state = State::Resolving { name, port, wait };
            eng.park(Pending { on: On::Resolve(q), op: Some(Op::Udp(id, Udp::Peer)) })
        }
    }
}

/// `bind(address, port?)`: the local address of the next setpeername's
/// socket (OpenResty's, with tcp's optional port).
pub fn bind(lua: &Lua, eng: &Engine, id: Id, address: Value, port: Value) -> Result<Ret> {
    // As tcp's: the port is looked at first.
    let port = match port_arg(lua, &port) {
        Port::Ok(p) => p,
        Port::Bad(r) => return r,
        Port::NotNumber(v) => {
            return fail(lua, &format!("expecting port to be anumber but got type: {}", type_name(v)))
        }
    };
    let Some(text) = lua.coerce_string(address.clone())? else {
        return bad_arg(lua, 1, "bind", &expected("string", &address));
    };
    let Some(ip) = addr::local_ip(&text.as_bytes()) else { return fail(lua, "bad address") };
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let Some(sock) = core.table.get(id) else {
        drop(core);
        return collected(lua, "bind");
    };
    of(sock).local = Some(SocketAddr::new(ip, port));
    ret(Value::Integer(1))
}

/// `send(data)`: 1 once the datagram is handed over. As OpenResty: a
/// closed socket is reported before the data is looked at.
pub fn send(lua: &Lua, eng: &Engine, id: Id, data: Value) -> Result<Ret> {
    let mut bad = None;
    let r = with(lua, eng, id, "send", |mut p| {
        let step = match p.d.send_filled(&mut p.cx, |out| flatten_arg(lua, &data, out)) {
            Ok(step) => step,
            Err(e) => {
                bad = Some(e);
                return ret(Value::Nil);
            }
        };
        sending(lua, eng, id, p, step)
    });
    match bad {
        Some(e) => bad_arg(lua, 1, "send", &e),
        None => r,
    }
}

fn sending(lua: &Lua, eng: &Engine, id: Id, p: Parts, step: Step<(), Error>) -> Result<Ret> {
    match step {
        Step::Done(()) => ret(Value::Integer(1)),
        Step::Wait(side, dir) => {
            let src = p.d.src().expect("an open socket");
            eng.park(Pending { on: On::Io(src, side, dir, p.timeouts.send), op: Some(Op::Udp(id, Udp::Send)) })
        }
        Step::Fail(e) => fail(lua, &e.message()),
    }
}

/// `receive(size?)`: one datagram, at most `size` bytes of it (65536 at
/// most, the default). As OpenResty: the socket is looked at before the size.
pub fn receive(lua: &Lua, eng: &Engine, id: Id, size: Value) -> Result<Ret> {
    with(lua, eng, id, "receive", |mut p| {
        let Some(src) = p.d.src() else { return fail(lua, "closed") };
        if p.cx.r.waiter(src, Side::Reader).is_some() {
            return fail(lua, "socket busy");
        }
        // luaL_optnumber, then a cast to size_t: a fraction is cut off, below 0 is huge.
        let size = match &size {
            Value::Nil => MAX_DATAGRAM,
            v => match number(lua, v).map(f64::trunc) {
                Some(n) if n >= 0.0 => n.min(MAX_DATAGRAM as f64) as usize,
                Some(_) => MAX_DATAGRAM,
                None => return bad_arg(lua, 1, "receive", &expected("number", v)),
            },
        };
        if p.d.turn_due() {
            // Let the other threads run a turn, then go on (see `Dgram::turn_due`).
            return eng.park(Pending { on: On::Swop, op: Some(Op::Udp(id, Udp::Receive(size))) });
        }
        receiving(lua, eng, id, p.d.receive(&mut p.cx, p.scratch, size), Some(src), p.timeouts, size)
    })
}

fn receiving(
    lua: &Lua,
    eng: &Engine,
    id: Id,
    step: Step<&[u8], Error>,
    src: Option<Src>,
    t: Timeouts,
    size: usize,
) -> Result<Ret> {
    match step {
        // Made under the engine's borrow: a finalizer this allocation runs finds the engine busy.
        Step::Done(b) => eng.lend.data(lua, b),
        Step::Wait(side, dir) => {
            let src = src.expect("an open socket");
            eng.park(Pending { on: On::Io(src, side, dir, t.read), op: Some(Op::Udp(id, Udp::Receive(size))) })
        }
        Step::Fail(e) => fail(lua, &e.message()),
    }
}

/// Finishes a woken thread's operation.
pub fn complete(lua: &Lua, eng: &Engine, id: Id, op: Udp, wake: Wake) -> Result<Ret> {
    match (op, wake) {
        (Udp::Receive(size), Wake::Ready | Wake::Answer(_)) => with(lua, eng, id, "receive", |mut p| {
            let src = p.d.src();
            receiving(lua, eng, id, p.d.receive(&mut p.cx, p.scratch, size), src, p.timeouts, size)
        }),
        (Udp::Send, Wake::Ready | Wake::Answer(_)) => with(lua, eng, id, "send", |mut p| {
            let step = p.d.flush(&mut p.cx);
            sending(lua, eng, id, p, step)
        }),
        (Udp::Send, Wake::Timeout) => with(lua, eng, id, "send", |p| fail(lua, &p.d.send_timed_out().message())),
        (Udp::Peer, wake) => peer_woken(lua, eng, id, wake),
        // A read timeout leaves the socket as it was.
        (_, Wake::Timeout) => fail(lua, "timeout"),
        (_, Wake::Closed(_)) => fail(lua, "closed"),
    }
}

/// The rest of `setpeername` after its name's lookup.
fn peer_woken(lua: &Lua, eng: &Engine, id: Id, wake: Wake) -> Result<Ret> {
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let core = &mut *core;
    let Ok((sock, mut cx)) = core.sock(id) else { return fail(lua, "closed") };
    let d = of(sock);
    match (wake, &d.state) {
        (Wake::Answer(a), &State::Resolving { port, .. }) => {
            let r = d.resolved(&mut cx, port, a.map_err(|e| e.as_str()));
            opened(lua, r)
        }
        // The resolver was replaced (`L.config`): ask the new one.
        (Wake::Ready, State::Resolving { name, port, .. }) => {
            let (name, port) = (name.clone(), *port);
            resolving(lua, eng, core, id, name, port)
        }
        _ => fail(lua, "closed"),
    }
}

/// `settimeout(ms)`, as OpenResty's for udp: what is not a number counts as
/// 0, and 0 or below means the default (60 s). For receive and send.
pub fn settimeout(lua: &Lua, eng: &Engine, id: Id, ms: Value) -> Result<Ret> {
    let ms = number(lua, &ms).unwrap_or(0.0).trunc();
    let t = match ms >= 1.0 && ms < i64::MAX as f64 {
        true => Some(ms as u64),
        false => None,
    };
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let Some(sock) = core.table.get(id) else {
        drop(core);
        return collected(lua, "settimeout");
    };
    sock.timeouts = match t {
        Some(t) => Timeouts { connect: Some(t), send: Some(t), read: Some(t) },
        None => Timeouts::default(),
    };
    ret(Value::Nil)
}

/// `close()`: 1, or nil, "closed" if it had no peer. A thread waiting on it
/// wakes with "closed".
pub fn close(lua: &Lua, eng: &Engine, id: Id) -> Result<Ret> {
    let Some(mut core) = eng.core() else {
        // A finalizer in the middle of an engine call: the loop closes it next.
        eng.defer(crate::engine::Deferred::Close(id));
        return ret(Value::Integer(1));
    };
    let Some(sock) = core.table.get(id) else {
        drop(core);
        return collected(lua, "close");
    };
    if matches!(of(sock).state, State::Idle) {
        drop(core);
        return fail(lua, "closed");
    }
    core.close(id);
    ret(Value::Integer(1))
}
