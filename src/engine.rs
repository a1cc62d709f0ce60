//! State shared by every function of one Lua state's coevent module: the
//! engine's state behind one borrow, what the running thread waits for, and
//! the work finalizers leave for the loop.
//!
//! A GC finalizer can run at any Lua allocation, so no borrow of `Core` is held
//! across a Lua call; the Lua values an operation returns are made under it,
//! and a finalizer that such an allocation runs finds the engine busy: it then
//! closes a socket by deferring the close (`Deferred`), which the loop carries
//! out, never by reaching into the engine mid-operation.

use std::cell::{Cell, RefCell, RefMut};

use coevent_engine::buf::RecvBuf;
use coevent_engine::dgram::Scratch;
use coevent_engine::pool::Pools;
use coevent_engine::reactor::{Reactor, Reason, Tid, Token};
use coevent_engine::resolver::{Answer, Config, Resolver};
use coevent_engine::sockets::{Id, Sock, Table};
use coevent_engine::stream::Cx;
use coevent_engine::until::{Key, Matchers};
use mlua::{Lua, LuaString, Result, Value};

use crate::lend::Lend;
use crate::op::Pending;
use crate::ret::{ret, wait_marker, Ret};

/// Why a thread was woken: stored on its task, handed to its operation.
/// (The rare payloads are boxed: a wake is moved on every round trip.)
#[derive(Debug, Default)]
pub enum Wake {
    #[default]
    Ready,
    Timeout,
    /// Its socket was closed under it; a reader gets what was buffered.
    Closed(Option<Box<RecvBuf>>),
    /// The answer of the query it waited for.
    Answer(Box<Answer>),
}

impl From<Reason> for Wake {
    fn from(r: Reason) -> Wake {
        match r {
            Reason::Ready => Wake::Ready,
            Reason::Timeout => Wake::Timeout,
            Reason::Closed => Wake::Closed(None),
        }
    }
}

/// The engine: the loop's reactor and resolver, the sockets, and the wakes
/// that operations cause for the scheduler to deliver.
#[derive(Default)]
pub struct Core {
    /// Some while a loop runs.
    pub r: Option<Reactor>,
    pub table: Table,
    /// Keepalive pools and their idle connections.
    pub pools: Pools,
    /// The matchers of `receiveuntil`'s live iterators.
    pub untils: Matchers,
    /// The running loop's resolver, made at its first lookup, and its settings.
    pub res: Option<Resolver>,
    pub dns: Config,
    /// A receive buffer's storage, lent to the next socket that reads into an
    /// empty buffer (see `RecvBuf::release`).
    pub spare: Vec<u8>,
    /// The buffers datagram sockets read into.
    pub scratch: Scratch,
    /// Waits that ended (by a close, or the reactor's poll), with why.
    pub woken: Vec<(Token, Reason)>,
    /// Readers a close woke, with what was buffered for them.
    pub orphans: Vec<(Tid, RecvBuf)>,
    /// Threads a query's end answered.
    pub answers: Vec<(Tid, Answer)>,
    /// TLS settings, context and the sessions Lua holds.
    #[cfg(feature = "tls")]
    pub tls: coevent_engine::tls::Client,
}

impl Core {
    /// Socket `id`, and what an operation on it is lent.
    pub fn sock(&mut self, id: Id) -> std::result::Result<(&mut Sock, Cx<'_>), Absent> {
        let sock = self.table.get(id).ok_or(Absent::Collected)?;
        let r = self.r.as_mut().ok_or(Absent::NoLoop)?;
        Ok((sock, Cx { r, spare: &mut self.spare, woken: &mut self.woken }))
    }

    /// The close path of socket `id`: its fd closed, its waits ended, its
    /// waiting reader handed what was buffered. Without a loop nothing is open.
    pub fn close(&mut self, id: Id) {
        let (Some(sock), Some(r)) = (self.table.get(id), self.r.as_mut()) else { return };
        let mut cx = Cx { r, spare: &mut self.spare, woken: &mut self.woken };
        if let Some((Token::Thread(t), buf)) = sock.close(&mut cx, self.res.as_mut(), &mut self.pools) {
            self.orphans.push((t, buf));
        }
    }

    /// Frees what a collected object held.
    pub fn release(&mut self, h: Held) {
        match h {
            Held::Socket(id) => {
                self.close(id);
                self.table.remove(id);
            }
            Held::Matcher(key) => {
                self.untils.remove(key);
            }
            #[cfg(feature = "tls")]
            Held::Session(key) => self.tls.sessions.remove(key),
        }
    }

    /// Ends the loop's part: every socket closed (pooled ones too), every query ended.
    pub fn end_loop(&mut self) {
        if let Some(r) = self.r.as_mut() {
            let mut cx = Cx { r, spare: &mut self.spare, woken: &mut self.woken };
            self.table.close_all(&mut cx, self.res.as_mut(), &mut self.pools);
            self.pools.close_all(r);
            if let Some(mut res) = self.res.take() {
                res.abort(r, &mut Vec::new());
            }
        }
        self.r = None;
        self.res = None;
        self.woken.clear();
        self.orphans.clear();
        self.answers.clear();
    }
}

/// Why `Core::sock` has no socket to lend.
#[derive(Clone, Copy, Debug)]
pub enum Absent {
    /// Its object was collected (an id kept by a resurrected one).
    Collected,
    /// No loop runs: nothing is open.
    NoLoop,
}

/// What a Lua object holds in the engine (see `socket::args::Guard`).
#[derive(Clone, Copy, Debug)]
pub enum Held {
    Socket(Id),
    /// A `receiveuntil` iterator's matcher.
    Matcher(Key),
    /// A TLS session `sslhandshake` returned.
    #[cfg(feature = "tls")]
    Session(coevent_engine::tls::SessionKey),
}

/// Work a finalizer leaves for the loop.
pub enum Deferred {
    /// `close` was called while the engine was busy.
    Close(Id),
    /// An object was collected while the engine was busy.
    Release(Held),
}

pub struct Engine {
    core: RefCell<Core>,
    /// The running light thread's token.
    pub current: Cell<Option<Tid>>,
    /// What the running thread waits for once it yields the marker.
    pub pending: Cell<Pending>,
    /// Rust functions of the prelude on the C stack since Lua last ran: above
    /// one, a function was called by a finalizer that an allocation inside
    /// Rust ran (see `nested`).
    pub depth: Cell<u32>,
    /// The answer the running thread was woken with, for `L.resolve` to take.
    pub answer: RefCell<Option<Answer>>,
    /// LuaJIT's received data on its way to a Lua string.
    pub lend: Lend,
    deferred: RefCell<Vec<Deferred>>,
    /// `BUSY` as a Lua string, made beforehand (see `func_nested`).
    busy: LuaString,
}

/// A running thread's state in flight, put aside while another runs inside it.
pub struct Outer {
    current: Option<Tid>,
    pending: Pending,
    answer: Option<Answer>,
    floor: usize,
}

pub const BUSY: &str = "coevent is busy: called from a finalizer in the middle of an operation";

impl Engine {
    pub fn new(lua: &Lua) -> Result<Engine> {
        Ok(Engine {
            core: RefCell::default(),
            current: Cell::default(),
            pending: Cell::default(),
            depth: Cell::default(),
            answer: RefCell::default(),
            lend: Lend::default(),
            deferred: RefCell::default(),
            busy: lua.create_string(BUSY)?,
        })
    }

    /// The engine's state, or None if it is borrowed: then the caller is a
    /// finalizer run by an allocation inside an engine call.
    pub fn core(&self) -> Option<RefMut<'_, Core>> {
        self.core.try_borrow_mut().ok()
    }

    /// Whether the running Rust function was called from inside another:
    /// by a finalizer, which must not resume threads (mlua is not re-entrant
    /// in the middle of its own calls on PUC 5.1).
    pub fn nested(&self) -> bool {
        self.depth.get() > 1
    }

    /// The running thread's token, or None outside a loop.
    pub fn current(&self) -> Option<Tid> {
        self.current.get()
    }

    /// Thread `tok` starts running, maybe inside another's run (started by a
    /// debug hook or a finalizer there, between a call into Rust and the
    /// yield or the string it leads to): what that one has in flight (its
    /// noted wait, its answer, its lent copies) is put aside, for `leave`.
    pub fn enter(&self, tok: Tid) -> Outer {
        Outer {
            current: self.current.replace(Some(tok)),
            pending: self.pending.take(),
            answer: self.answer.take(),
            floor: self.lend.hold(),
        }
    }

    /// Back to the thread `enter` put aside: the wait the one that ran noted.
    pub fn leave(&self, o: Outer) -> Pending {
        self.current.set(o.current);
        self.answer.replace(o.answer);
        self.lend.restore(o.floor);
        self.pending.replace(o.pending)
    }

    /// `BUSY` for Lua, without making a Lua value.
    pub fn busy(&self) -> Value {
        Value::String(self.busy.clone())
    }

    /// Parks the running thread on `p` when it next yields the marker.
    pub fn park(&self, p: Pending) -> Result<Ret> {
        self.pending.set(p);
        ret(wait_marker())
    }

    pub fn defer(&self, d: Deferred) {
        self.deferred.borrow_mut().push(d);
    }

    /// Carries out what finalizers left.
    pub fn drain(&self) {
        if self.deferred.borrow().is_empty() {
            return;
        }
        let Some(mut core) = self.core() else { return };
        let work = std::mem::take(&mut *self.deferred.borrow_mut());
        for d in work {
            match d {
                Deferred::Close(id) => core.close(id),
                Deferred::Release(h) => core.release(h),
            }
        }
    }
}
