//! Lua's socket objects, one file per kind: arguments in, Lua values out;
//! the state machines are the engine's.
//!
//! A cosocket is a Lua table (as OpenResty's) holding its id in the engine's
//! socket table and a guard userdata whose collection closes the socket. A
//! table keeps its methods when a finalizer resurrects it, so a call on it
//! reaches Rust and raises "calling 'x' on a collected cosocket".

pub mod listener;
pub mod tcp;

use std::rc::Rc;

use coevent_ffi::until::Key;
use mlua::{Lua, Result, UserData};

use crate::engine::{Deferred, Engine, Held, Wake};
use crate::op::Op;
use crate::ret::{raise, Ret};

/// A userdata whose collection releases what it holds in the engine: a
/// socket (closed, its slot freed) or a `receiveuntil` matcher. One type for
/// both: each userdata type costs the module its own copy of mlua's glue.
pub struct Guard {
    eng: Rc<Engine>,
    held: Held,
}

impl Guard {
    pub fn new(eng: &Rc<Engine>, held: Held) -> Guard {
        Guard { eng: eng.clone(), held }
    }

    /// The matcher it holds, if it is a `receiveuntil` iterator's.
    pub fn matcher(&self) -> Option<Key> {
        match self.held {
            Held::Matcher(key) => Some(key),
            Held::Socket(_) => None,
        }
    }
}

impl UserData for Guard {}

impl Drop for Guard {
    fn drop(&mut self) {
        // A finalizer: done now unless it interrupted an engine call.
        match self.eng.core() {
            Some(mut core) => core.release(self.held),
            None => self.eng.defer(Deferred::Release(self.held)),
        }
    }
}

#[cold]
pub fn collected(lua: &Lua, name: &str) -> Result<Ret> {
    raise(lua, &format!("calling '{name}' on a collected cosocket"))
}

/// Finishes a woken thread's socket operation (see `sched::step`).
pub fn complete(lua: &Lua, eng: &Rc<Engine>, op: Op, wake: Wake) -> Result<Ret> {
    match op {
        Op::Receive(id, p) => tcp::receive_woken(lua, eng, id, p, wake),
        Op::Until(id, key) => tcp::until_woken(lua, eng, id, key, wake),
        Op::Any(id, max) => tcp::receiveany_woken(lua, eng, id, max, wake),
        Op::Flush(id) => tcp::flush_woken(lua, eng, id, wake),
        Op::Connect(id, port) => tcp::connect_woken(lua, eng, id, port, wake),
        Op::Accept(id) => listener::accept_woken(lua, eng, id, wake),
    }
}
