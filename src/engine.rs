//! State shared by every function of one Lua state's coevent module.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;

use coevent_ffi::buf::Pattern;
use coevent_ffi::reactor::{Dir, Reactor};
use coevent_ffi::resolver::{Config, Resolver};
use coevent_ffi::sys::{self, Fd};
use mlua::{LightUserData, Lua, Result, Table, Value};

use crate::sched::Sched;
use crate::socket::{SockRef, Sockets};

/// What a thread that yields the wait marker is waiting for; set by the Rust
/// function that answered "wait", taken by the scheduler when the yield reaches
/// it. Registering only then means a yield Lua refuses (PUC 5.1 inside pcall)
/// leaves nothing registered.
#[derive(Clone, Copy, Debug, Default)]
pub enum Pending {
    #[default]
    None,
    Io(Fd, Dir, Option<u64>),
    Sleep(u64),
    Swop,
    Join(u32),
    /// A resolver query.
    Resolve(u32),
}

/// A socket operation the scheduler finishes for a woken thread, so the
/// thread is resumed with the result instead of calling again.
#[derive(Clone, Copy, Debug)]
pub enum OpKind {
    Receive(Pattern),
    Flush,
    Connect,
}

pub struct Engine {
    /// Some while a loop runs.
    pub reactor: RefCell<Option<Reactor>>,
    pub sched: RefCell<Sched>,
    pub socks: RefCell<Sockets>,
    /// The running light thread's token.
    pub current: Cell<Option<u32>>,
    pub pending: Cell<Pending>,
    /// Which socket operation the pending wait belongs to, if any, and (once
    /// `socket::with` has seen it) the socket.
    pub op: Cell<Option<OpKind>>,
    pub pending_op: RefCell<Option<(SockRef, OpKind)>>,
    /// The running loop's resolver, made at its first lookup, and its settings.
    pub resolver: RefCell<Option<Resolver>>,
    pub dns: RefCell<Config>,
    /// Counts loops: a socket from an ended loop is closed.
    pub epoch: Cell<u64>,
    /// A receive buffer's storage, lent to the next socket that reads into an
    /// empty buffer (see `RecvBuf::release`).
    pub spare: RefCell<Vec<u8>>,
    /// Fds of sockets collected while the reactor was borrowed; closed next turn.
    pub graveyard: RefCell<Vec<Fd>>,
    /// Threads woken by a close (see `take_closed_under`).
    pub closed_under: RefCell<Vec<u32>>,
    /// The traceback of the error a light thread is ending with.
    pub traceback: RefCell<Option<String>>,
    /// `threads[token]`: light threads past the first few thousand (see
    /// `sched::HELD`).
    pub threads: Table,
    /// `done[thread]`: a finished thread's outcome, `{true, results...}` or `{false, err}`.
    /// Weak-keyed, so results nobody can wait for any more are collected.
    pub done: Table,
}

// The markers are these statics' addresses (distinct values, so no linker can
// fold them into one).
static WAIT_TAG: u8 = 0;
static RAISE_TAG: u8 = 1;
static LINE_TAG: u8 = 2;
static ALL_TAG: u8 = 3;

/// Markers the prelude passes for `'*l'` and `'*a'`, so the common patterns
/// cross into Rust without a string.
pub fn pattern_markers() -> (Value, Value) {
    (marker(&LINE_TAG), marker(&ALL_TAG))
}

fn marker(tag: &'static u8) -> Value {
    Value::LightUserData(LightUserData(tag as *const u8 as *mut c_void))
}

/// The pattern a marker stands for.
pub fn marked_pattern(v: &Value) -> Option<Pattern> {
    match v {
        Value::LightUserData(p) if std::ptr::eq(p.0 as *const u8, &LINE_TAG) => Some(Pattern::Line),
        Value::LightUserData(p) if std::ptr::eq(p.0 as *const u8, &ALL_TAG) => Some(Pattern::All),
        _ => None,
    }
}

/// The private marker a light thread yields to wait, returned by Rust functions
/// that would block.
pub fn wait_marker() -> Value {
    marker(&WAIT_TAG)
}

/// Returned first by a Rust function whose caller in the prelude must raise the
/// message that follows (a bad argument): an error raised from Rust would reach
/// Lua as an opaque userdata, not a string with the caller's position.
pub fn raise_marker() -> Value {
    marker(&RAISE_TAG)
}

pub fn is_wait(v: &Value) -> bool {
    matches!(v, Value::LightUserData(p) if std::ptr::eq(p.0 as *const u8, &WAIT_TAG))
}

/// The three values every prelude-facing Rust function returns.
pub type Ret = (Value, Value, Value);

pub fn ret(v: Value) -> Result<Ret> {
    Ok((v, Value::Nil, Value::Nil))
}

/// `nil, err`.
pub fn fail(lua: &Lua, err: &str) -> Result<Ret> {
    fail_partial(lua, err, Value::Nil)
}

/// `nil, err, partial` (receive's failures).
pub fn fail_partial(lua: &Lua, err: &str, partial: Value) -> Result<Ret> {
    Ok((Value::Nil, Value::String(lua.create_string(err)?), partial))
}

// The error helpers are cold: kept out of line, they leave the operations that
// call them smaller (9 KB less module, 90 instructions less per round trip on 5.4).
#[cold]
pub fn raise(lua: &Lua, msg: &str) -> Result<Ret> {
    Ok((raise_marker(), Value::String(lua.create_string(msg)?), Value::Nil))
}

/// `bad argument #n to 'f' (what)`, as luaL_argerror words it.
#[cold]
pub fn bad_arg(lua: &Lua, n: u32, f: &str, what: &str) -> Result<Ret> {
    raise(lua, &format!("bad argument #{n} to '{f}' ({what})"))
}

/// `(x expected, got y)`.
#[cold]
pub fn expected(what: &str, got: &Value) -> String {
    format!("{what} expected, got {}", type_name(got))
}

/// The type's name as Lua's `type()` says it.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) | Value::Number(_) => "number",
        Value::LightUserData(_) => "userdata",
        v => v.type_name(),
    }
}

/// A number argument, or a string Lua converts to one (as luaL_checknumber:
/// by Lua itself, so hex and spaces are read exactly as Lua reads them).
pub fn number(lua: &Lua, v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(_) => lua.coerce_number(v.clone()).ok().flatten(),
        _ => None,
    }
}

pub const NOT_IN_LOOP: &str = "not inside a coevent loop (run it in a function given to L(...))";

impl Engine {
    pub fn new(lua: &Lua) -> Result<Engine> {
        let done = lua.create_table()?;
        let mt = lua.create_table()?;
        mt.raw_set("__mode", "k")?;
        done.set_metatable(Some(mt))?;
        Ok(Engine {
            threads: lua.create_table()?,
            reactor: RefCell::new(None),
            resolver: RefCell::new(None),
            dns: RefCell::new(Config::default()),
            sched: RefCell::new(Sched::default()),
            socks: RefCell::new(Sockets::default()),
            current: Cell::new(None),
            pending: Cell::new(Pending::None),
            op: Cell::new(None),
            pending_op: RefCell::new(None),
            epoch: Cell::new(0),
            spare: RefCell::new(Vec::new()),
            graveyard: RefCell::new(Vec::new()),
            traceback: RefCell::new(None),
            closed_under: RefCell::new(Vec::new()),
            done,
        })
    }

    /// The running thread's token, or None outside a loop.
    pub fn current(&self) -> Option<u32> {
        self.current.get()
    }

    /// Parks the running thread on `p` when it next yields the marker.
    pub fn park(&self, p: Pending) -> Result<Ret> {
        // Forget an operation noted by a wait whose yield failed (5.1's pcall).
        self.op.set(None);
        self.pending_op.borrow_mut().take();
        self.pending.set(p);
        ret(wait_marker())
    }

    /// Parks it on `p` for socket operation `op`, which the scheduler finishes
    /// when the wait ends (see `sched::step`).
    pub fn park_op(&self, p: Pending, op: OpKind) -> Result<Ret> {
        let r = self.park(p);
        self.op.set(Some(op));
        r
    }

    /// Closes a socket's fd: wakes its waiters (they find it closed) and forgets it.
    pub fn close_fd(&self, fd: Fd) {
        let mut woken = Vec::new();
        if let Some(r) = self.reactor.borrow_mut().as_mut() {
            r.remove(fd, &mut woken);
        }
        sys::close(fd);
        self.sched.borrow_mut().ready(&woken);
        self.closed_under.borrow_mut().extend(woken);
    }

    /// True once for a thread woken by the close of the socket it waited on:
    /// its operation ends with "closed", whatever the socket holds by now
    /// (another thread may have connected it again).
    pub fn take_closed_under(&self, tok: Option<u32>) -> bool {
        let mut c = self.closed_under.borrow_mut();
        match c.iter().position(|&t| Some(t) == tok) {
            Some(i) => {
                c.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Closes what the GC left for later (see `Socket`'s Drop).
    pub fn bury(&self) {
        let fds = std::mem::take(&mut *self.graveyard.borrow_mut());
        for fd in fds {
            self.close_fd(fd);
        }
    }
}
