//! A cosocket's local side: `bind`, `listen`, `accept`, `getsockname`, and
//! the options `bind` takes. Listening turns the socket into the engine's
//! `Kind::Listener`; what it accepts is an ordinary stream socket.

use coevent_engine::listener::{self, Accept, Listener, DEFAULT_BACKLOG};
use coevent_engine::reactor::{Dir, Side, Tid};
use coevent_engine::sockets::{Id, Kind, Sock, Timeouts};
use coevent_engine::stream::State;
use coevent_engine::sys::{self, Addr};
use mlua::{Lua, Result, Value};

use super::args::{absent, port_arg};
use crate::engine::{Core, Engine, Wake, BUSY};
use crate::op::{On, Op, Pending};
use crate::ret::{bad_arg, expected, fail, number, raise, ret, Ret, NOT_IN_LOOP};

/// Socket `id` of a live loop, or the error to raise.
fn sock<'a>(core: &'a mut Core, id: Id, name: &str) -> std::result::Result<&'a mut Sock, String> {
    core.sock(id).map(|(s, _)| s).map_err(|a| absent(a, name))
}

/// `bind(host, port)`: `*`, `localhost`, an IP literal, or `unix:/path`
/// (no port). Before `listen`, or before `connect` (its local address).
pub fn bind(lua: &Lua, eng: &Engine, id: Id, host: Value, port: Value) -> Result<Ret> {
    let Value::String(host) = &host else { return bad_arg(lua, 1, "bind", &expected("string", &host)) };
    let host = host.as_bytes();
    let port = match port_arg(lua, &host, &port) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let addr = match listener::local_addr(&host, port) {
        Ok(a) => a,
        Err(e) => return fail(lua, e),
    };
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let r = match sock(&mut core, id, "bind") {
        Ok(Sock { kind: Kind::Stream(s), .. }) if matches!(s.state, State::Fresh | State::Closed) => {
            s.local.bind(&addr)
        }
        Ok(Sock { kind: Kind::Stream(_), .. }) => return fail(lua, "already connected"),
        Ok(_) => return fail(lua, "already listening"),
        Err(msg) => {
            drop(core);
            return raise(lua, &msg);
        }
    };
    drop(core);
    match r {
        Ok(()) => ret(Value::Integer(1)),
        Err(e) => fail(lua, &sys::error_string(&e)),
    }
}

/// `listen(backlog?)`: the bound socket takes connections (backlog 511 by default).
pub fn listen(lua: &Lua, eng: &Engine, id: Id, backlog: Value) -> Result<Ret> {
    let backlog = match &backlog {
        Value::Nil => DEFAULT_BACKLOG,
        v => match number(lua, v) {
            Some(n) => n.clamp(0.0, i32::MAX as f64) as i32,
            None => return bad_arg(lua, 1, "listen", &expected("number", v)),
        },
    };
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let (sock, mut cx) = match core.sock(id) {
        Ok(s) => s,
        Err(a) => return raise(lua, &absent(a, "listen")),
    };
    let s = match &mut sock.kind {
        Kind::Stream(s) if s.local.bound.is_some() && matches!(s.state, State::Fresh | State::Closed) => s,
        Kind::Listener(_) => return ret(Value::Integer(1)),
        // A datagram socket's methods are udp's (the prelude sends them there).
        _ => return fail(lua, "not bound"),
    };
    match Listener::listen(&mut cx, &mut s.local, backlog) {
        Ok(l) => {
            sock.kind = Kind::Listener(l);
            ret(Value::Integer(1))
        }
        Err(e) => fail(lua, &e.message()),
    }
}

/// `accept()`: the next connection, as a new socket's id (the prelude
/// makes the object).
pub fn accept(lua: &Lua, eng: &Engine, id: Id) -> Result<Ret> {
    let Some(tok) = eng.current() else { return raise(lua, NOT_IN_LOOP) };
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let core = &mut *core;
    let (sock, mut cx) = match core.sock(id) {
        Ok(s) => s,
        Err(a) => return raise(lua, &absent(a, "accept")),
    };
    let timeout = sock.timeouts.read;
    let l = match &mut sock.kind {
        Kind::Listener(l) => l,
        Kind::Stream(s) if matches!(s.state, State::Closed) => return fail(lua, "closed"),
        _ => return fail(lua, "not listening"),
    };
    let src = l.src;
    let on = match l.accept(&mut cx, tok) {
        Accept::Done(s) => {
            let new = core.table.insert(Sock { kind: Kind::Stream(s), timeouts: Timeouts::default() });
            return ret(Value::Integer(new.number()));
        }
        Accept::Fail(e) => return fail(lua, &e.message()),
        Accept::Wait(pause) => {
            let t = match (timeout, pause) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            On::Io(src, Side::Reader, Dir::Read, t)
        }
        Accept::Queue => On::Turn(timeout),
        Accept::Yield => On::Swop,
    };
    eng.park(Pending { on, op: Some(Op::Accept(id)) })
}

/// The rest of `accept` after a wait.
pub fn accept_woken(lua: &Lua, eng: &Engine, id: Id, wake: Wake) -> Result<Ret> {
    match wake {
        Wake::Ready | Wake::Answer(_) => accept(lua, eng, id),
        Wake::Closed(_) => fail(lua, "closed"),
        Wake::Timeout => {
            let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
            let tok = eng.current().expect("in a light thread");
            let timed_out = match core.sock(id) {
                Ok((Sock { kind: Kind::Listener(l), .. }, mut cx)) => l.timed_out(&mut cx, tok),
                _ => return fail(lua, "closed"),
            };
            drop(core);
            match timed_out {
                // A pause after running out of fds is over: try again.
                None => accept(lua, eng, id),
                Some(e) => fail(lua, &e.message()),
            }
        }
    }
}

/// A thread killed in `accept` leaves the listener's queue.
pub fn forget(core: &mut Core, id: Id, tok: Tid) {
    if let Ok((Sock { kind: Kind::Listener(l), .. }, mut cx)) = core.sock(id) {
        l.forget(&mut cx, tok);
    }
}

/// `getsockname()`: the local address and port, or the path of a unix socket.
pub fn getsockname(lua: &Lua, eng: &Engine, id: Id) -> Result<Ret> {
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let fd = match sock(&mut core, id, "getsockname") {
        Ok(Sock { kind: Kind::Listener(l), .. }) => Some(l.src.fd),
        Ok(Sock { kind: Kind::Stream(s), .. }) => s.src().map(|src| src.fd).or(s.local.bound.map(|b| b.0)),
        Ok(_) => None,
        Err(msg) => {
            drop(core);
            return raise(lua, &msg);
        }
    };
    drop(core);
    let Some(fd) = fd else { return fail(lua, "closed") };
    match sys::local_name(fd) {
        Ok(Addr::Ip(a)) => {
            Ok((Value::String(lua.create_string(a.ip().to_string())?), Value::Integer(a.port().into()), Value::Nil))
        }
        Ok(Addr::Unix(path)) => ret(Value::String(lua.create_string(path)?)),
        Err(e) => fail(lua, &sys::error_string(&e)),
    }
}
