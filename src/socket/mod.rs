//! Lua's socket objects, one file per kind: arguments in, Lua values out;
//! the state machines are the engine's. What several files share (the
//! socket an id names, common arguments, messages, the `Guard` userdata) is
//! in `args`, below them all: an object file imports from there, never from
//! another object file nor from this one.
//!
//! A cosocket is a Lua table (as OpenResty's) holding its id in the engine's
//! socket table; its finalizer, made in the prelude, closes the socket
//! (`release`). A table keeps its methods when a finalizer resurrects it, so
//! a call on it reaches Rust and raises "calling 'x' on a collected cosocket".

mod args;
pub mod keepalive;
pub mod listener;
pub mod tcp;
pub mod tls;
pub mod udp;

use coevent_engine::reactor::Tid;
use coevent_engine::sockets::Id;
use mlua::{Lua, Result, Value};

use crate::engine::{Core, Deferred, Engine, Held, Wake};
use crate::op::{Op, Udp};
use crate::ret::{ret, Ret};

/// `release(id)`: the finalizer of a collected cosocket (see the prelude):
/// its socket closed and its slot freed, now unless it interrupted an
/// engine call.
pub fn release(eng: &Engine, id: Value) -> Result<Ret> {
    if let Value::Integer(_) | Value::Number(_) = id {
        let held = Held::Socket(Id::from(id.as_i64().unwrap_or_default()));
        match eng.core() {
            Some(mut core) => core.release(held),
            None => eng.defer(Deferred::Release(held)),
        }
    }
    ret(Value::Nil)
}

/// Finishes a woken thread's socket operation (see `sched::step`).
pub fn complete(lua: &Lua, eng: &Engine, op: Op, wake: Wake) -> Result<Ret> {
    match op {
        Op::Receive(id, p) => tcp::receive_woken(lua, eng, id, p, wake),
        Op::Until(id, key) => tcp::until_woken(lua, eng, id, key, wake),
        Op::Any(id, max) => tcp::receiveany_woken(lua, eng, id, max, wake),
        Op::Flush(id) => tcp::flush_woken(lua, eng, id, wake),
        Op::Connect(id, port) => tcp::connect_woken(lua, eng, id, port, wake),
        Op::Handshake(id, keep) => tls::handshake_woken(lua, eng, id, keep, wake),
        Op::Accept(id) => listener::accept_woken(lua, eng, id, wake),
        Op::Udp(id, op) => udp::complete(lua, eng, id, op, wake),
    }
}

/// Undoes the socket operation of a thread killed while it waited (see
/// `Sched::kill`): what `complete` would have finished. A stream closes,
/// since a half-done read, write, connect or handshake leaves it at no
/// known position.
pub fn abandon(core: &mut Core, op: Op, wake: Wake, tok: Tid) {
    match (op, wake) {
        // A listener stays: the thread leaves its queue.
        (Op::Accept(id), _) => listener::forget(core, id, tok),
        // A read its timeout woke would answer "timeout" and keep the socket.
        (Op::Receive(..) | Op::Until(..) | Op::Any(..), Wake::Timeout) => {}
        // A datagram socket has no position to lose; only a peer half set closes it.
        (Op::Udp(id, op), _) => {
            if op == Udp::Peer {
                core.close(id)
            }
        }
        (
            Op::Receive(id, _)
            | Op::Until(id, _)
            | Op::Any(id, _)
            | Op::Flush(id)
            | Op::Connect(id, _)
            | Op::Handshake(id, _),
            _,
        ) => core.close(id),
    }
}
