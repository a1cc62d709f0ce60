//! Lua's socket objects, one file per kind: arguments in, Lua values out;
//! the state machines are the engine's.
//!
//! A cosocket is a Lua table (as OpenResty's) holding its id in the engine's
//! socket table and a guard userdata whose collection closes the socket. A
//! table keeps its methods when a finalizer resurrects it, so a call on it
//! reaches Rust and raises "calling 'x' on a collected cosocket".

pub mod tcp;

use std::rc::Rc;

use coevent_ffi::table::Id;
use coevent_ffi::until::Key;
use mlua::{Lua, Result, UserData};

use crate::engine::{Deferred, Engine, Wake};
use crate::op::Op;
use crate::ret::{raise, Ret};

/// The guard: its collection closes the socket and frees its slot.
pub struct Guard {
    eng: Rc<Engine>,
    id: Id,
}

impl Guard {
    pub fn new(eng: &Rc<Engine>, id: Id) -> Guard {
        Guard { eng: eng.clone(), id }
    }
}

impl UserData for Guard {}

impl Drop for Guard {
    fn drop(&mut self) {
        // A finalizer: done now unless it interrupted an engine call.
        match self.eng.core() {
            Some(mut core) => {
                core.close(self.id);
                core.table.remove(self.id);
            }
            None => self.eng.defer(Deferred::Drop(self.id)),
        }
    }
}

/// A `receiveuntil` iterator's hold on its matcher: its collection frees it.
pub struct UntilGuard {
    eng: Rc<Engine>,
    pub key: Key,
}

impl UntilGuard {
    pub fn new(eng: &Rc<Engine>, key: Key) -> UntilGuard {
        UntilGuard { eng: eng.clone(), key }
    }
}

impl UserData for UntilGuard {}

impl Drop for UntilGuard {
    fn drop(&mut self) {
        match self.eng.core() {
            Some(mut core) => {
                core.untils.remove(self.key);
            }
            None => self.eng.defer(Deferred::DropUntil(self.key)),
        }
    }
}

#[cold]
pub fn collected(lua: &Lua, name: &str) -> Result<Ret> {
    raise(lua, &format!("calling '{name}' on a collected cosocket"))
}

/// Finishes a woken thread's socket operation (see `sched::step`).
pub fn complete(lua: &Lua, eng: &Engine, op: Op, wake: Wake) -> Result<Ret> {
    match op {
        Op::Receive(id, p) => tcp::receive_woken(lua, eng, id, p, wake),
        Op::Until(id, key) => tcp::until_woken(lua, eng, id, key, wake),
        Op::Any(id, max) => tcp::receiveany_woken(lua, eng, id, max, wake),
        Op::Flush(id) => tcp::flush_woken(lua, eng, id, wake),
        Op::Connect(id, port) => tcp::connect_woken(lua, eng, id, port, wake),
    }
}
