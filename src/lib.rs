//! coevent: an epoll event loop and coroutine "light threads" for Lua, with
//! cosockets whose calls read as if they blocked (the alilua coevent API).
//!
//! This crate is the thin safe layer between Lua (mlua) and the engine in
//! `coevent-engine`. Rust functions never yield: they answer a private wait marker
//! (noting what they wait for, `op::Pending`), and the Lua prelude yields it to
//! the scheduler. Modules depend one way: `sched` → `socket` → `resolve` →
//! `engine` → the engine crate, with `op` and `ret` below them all; `config`
//! (`L.config`) hands its settings down to `resolve` and the engine.

#![deny(unsafe_code)]

mod config;
mod engine;
mod lend;
#[cfg(feature = "ngx")]
mod ngx;
mod op;
mod prelude;
mod resolve;
mod ret;
mod sched;
mod socket;

use std::rc::Rc;

use coevent_engine::sockets::Id;
use mlua::{BString, FromLuaMulti, Function, Lua, MultiValue, Result, Table, Value};

use engine::Engine;
use ret::{raise_marker, wait_marker, Ret};
use sched::Sched;
use socket::keepalive;
use socket::tcp::{self, Data};
use socket::tls;
use socket::udp;

/// A function for the prelude. An error Lua raised inside it (a finalizer's)
/// goes back as the raise marker, for the prelude to raise as it was: returned
/// as an `Err`, mlua would raise it as an opaque userdata. It counts itself
/// in `Engine::depth`.
fn func<A: FromLuaMulti>(
    lua: &Lua,
    eng: &Rc<Engine>,
    f: impl Fn(&Lua, A) -> Result<Ret> + 'static,
) -> Result<Function> {
    func_nested(lua, eng, false, f)
}

/// `func`, and whether it runs when called from inside another (by a
/// finalizer an allocation inside Rust ran). On PUC 5.1 and LuaJIT a Lua
/// value mlua makes there is made in a protected call nested in another,
/// which is not re-entrant (they pass their function through one registry
/// slot): PUC 5.1 would crash. So there only those that make none run (closing
/// and releasing sockets, starting threads, queued then); the others answer
/// that the engine is busy, with a message made beforehand.
fn func_nested<A: FromLuaMulti>(
    lua: &Lua,
    eng: &Rc<Engine>,
    nested_ok: bool,
    f: impl Fn(&Lua, A) -> Result<Ret> + 'static,
) -> Result<Function> {
    let eng = eng.clone();
    let guard = !nested_ok && cfg!(any(feature = "lua51", feature = "luajit"));
    lua.create_function(move |lua, a: A| {
        if guard && eng.depth.get() > 0 {
            return Ok((raise_marker(), eng.busy(), Value::Nil));
        }
        eng.depth.set(eng.depth.get() + 1);
        let r = f(lua, a).or_else(|e| ret::rethrow(lua, e));
        eng.depth.set(eng.depth.get() - 1);
        r
    })
}

/// Builds the module table `L` (and installs the seed's globals) in `lua`.
pub fn open(lua: &Lua) -> Result<Table> {
    let eng = Rc::new(Engine::new(lua)?);
    let sched = Rc::new(Sched::new(lua, eng.clone())?);
    let c = lua.create_table()?;
    c.raw_set("done", sched.done.clone())?;

    // Functions of one signature share one closure type, so mlua's glue is
    // compiled once for all of them (each copy costs the module kilobytes).
    type Start = fn(&Lua, &Sched, Value, Value, MultiValue) -> Result<Ret>;
    let starts: [(&str, Start); 2] =
        [("run", |l, s, _, f, args| s.run(l, f, args)), ("spawn", |l, s, th, f, args| s.spawn(l, th, f, args))];
    for (name, f) in starts {
        let s = sched.clone();
        let g = move |lua: &Lua, (a, b, args): (Value, Value, MultiValue)| f(lua, &s, a, b, args);
        c.raw_set(name, func_nested(lua, &eng, name == "spawn", g)?)?;
    }
    c.raw_set("body", sched.body.clone())?;

    type Fun = fn(&Lua, &Sched, Value, Value) -> Result<Ret>;
    let funs: [(&str, Fun); 11] = [
        ("tcp", |l, s, _, _| tcp::new(l, s.eng())),
        ("release", |_, s, id, _| socket::release(s.eng(), id)),
        ("udp", |l, s, _, _| udp::new(l, s.eng())),
        ("join", |l, s, t, _| s.join(l, t)),
        ("kill", |l, s, t, _| s.kill(l, t)),
        ("sleep", |l, s, t, _| sched::sleep(l, s.eng(), t)),
        ("swop", |l, s, _, _| sched::swop(l, s.eng())),
        ("resolve", |l, s, name, _| resolve::resolve(l, s.eng(), name)),
        ("config", |l, s, t, _| config::config(l, s.eng(), t)),
        ("receiveuntil", |l, s, p, o| tcp::receiveuntil(l, s.eng(), p, o)),
        ("session", |l, s, n, _| tls::session(l, s.eng(), n)),
    ];
    for (name, f) in funs {
        let s = sched.clone();
        let g = move |lua: &Lua, (a, b): (Value, Value)| f(lua, &s, a, b);
        c.raw_set(name, func_nested(lua, &eng, name == "release", g)?)?;
    }

    // Send is on every round trip: called directly, not through a table.
    let e = eng.clone();
    let send = move |lua: &Lua, (id, a): (i64, Value)| tcp::send(lua, &e, Id::from(id), Data::Value(a));
    c.raw_set("send", func(lua, &eng, send)?)?;
    // The other socket methods: (id, a, b).
    type Op = fn(&Lua, &Engine, Id, Value, Value) -> Result<Ret>;
    let ops: [(&str, Op); 22] = [
        ("receive", |l, e, id, a, _| tcp::receive(l, e, id, a)),
        ("close", |l, e, id, _, _| tcp::close(l, e, id)),
        ("settimeout", |l, e, id, a, _| tcp::settimeout(l, e, id, a)),
        ("setoption", tcp::setoption),
        ("until", tcp::until),
        ("receiveany", |l, e, id, a, _| tcp::receiveany(l, e, id, a)),
        ("setclientcert", tls::setclientcert),
        ("setkeepalive", keepalive::setkeepalive),
        ("getreusedtimes", |l, e, id, _, _| keepalive::getreusedtimes(l, e, id)),
        ("getfd", |l, e, id, _, _| tcp::getfd(l, e, id)),
        ("getpeername", |l, e, id, _, _| tcp::getpeername(l, e, id)),
        ("shutdown", |l, e, id, a, _| tcp::shutdown(l, e, id, a)),
        ("bind", socket::listener::bind),
        ("listen", |l, e, id, a, _| socket::listener::listen(l, e, id, a)),
        ("getsockname", |l, e, id, _, _| socket::listener::getsockname(l, e, id)),
        ("accept", |l, e, id, _, _| socket::listener::accept(l, e, id)),
        ("setpeername", udp::setpeername),
        ("udp_bind", udp::bind),
        ("udp_send", |l, e, id, a, _| udp::send(l, e, id, a)),
        ("udp_receive", |l, e, id, a, _| udp::receive(l, e, id, a)),
        ("udp_settimeout", |l, e, id, a, _| udp::settimeout(l, e, id, a)),
        ("udp_close", |l, e, id, _, _| udp::close(l, e, id)),
    ];
    for (name, op) in ops {
        let e = eng.clone();
        let f = move |lua: &Lua, (id, a, b): (i64, Value, Value)| op(lua, &e, Id::from(id), a, b);
        c.raw_set(name, func_nested(lua, &eng, matches!(name, "close" | "udp_close"), f)?)?;
    }
    // And those of (id, a, b, c, d).
    type Op4 = fn(&Lua, &Engine, Id, Value, [Value; 3]) -> Result<Ret>;
    let ops: [(&str, Op4); 3] = [
        ("connect", tcp::connect),
        ("settimeouts", |l, e, id, a, [b, c, _]| tcp::settimeouts(l, e, id, [a, b, c])),
        ("sslhandshake", tls::sslhandshake),
    ];
    for (name, op) in ops {
        let e = eng.clone();
        let f = move |lua: &Lua, (id, a, b, c, d): (i64, Value, Value, Value, Value)| {
            op(lua, &e, Id::from(id), a, [b, c, d])
        };
        c.raw_set(name, func(lua, &eng, f)?)?;
    }

    if cfg!(feature = "luajit") {
        // See `tcp::Data`; PUC Lua's type() test in the prelude costs more than it saves.
        let e = eng.clone();
        let send_bytes = move |lua: &Lua, (id, b): (i64, BString)| tcp::send(lua, &e, Id::from(id), Data::Bytes(b));
        c.raw_set("send_bytes", func(lua, &eng, send_bytes)?)?;
        c.raw_set("SHORT", tcp::SHORT)?;
        let e = eng.clone();
        c.raw_set("lend", lua.create_function(move |_, ()| Ok(e.lend.start()))?)?;
    }

    let (line, all) = ret::pattern_markers();
    c.raw_set("LINE", line)?;
    c.raw_set("ALL", all)?;
    // PUC 5.1 cannot yield across pcall: there receive calls first (see prelude).
    c.raw_set("YIELD_RECEIVE", !cfg!(feature = "lua51"))?;
    let l: Table = lua.load(prelude::PRELUDE).set_name("=coevent").call((&c, wait_marker(), raise_marker()))?;
    #[cfg(feature = "ngx")]
    config::for_ngx(lua, &c.raw_get::<Table>("NGX")?)?;
    #[cfg(feature = "ngx")]
    ngx::preload(lua, &l, c.raw_get("NGX")?)?;
    Ok(l)
}

/// The entry point mlua generates. Lua 5.1, 5.3 and LuaJIT pass a finalizer's
/// error to whatever allocation ran the collector, Rust frames included: there
/// mlua protects its allocations (a protected call each), so the error reaches
/// Lua as an ordinary error instead of aborting. Lua 5.4 reports and drops such
/// errors itself, so its module skips that cost.
#[cfg(feature = "module")]
#[allow(unsafe_code)]
mod module {
    #[cfg_attr(any(feature = "lua54", feature = "unguarded"), mlua::lua_module(skip_memory_check))]
    #[cfg_attr(not(any(feature = "lua54", feature = "unguarded")), mlua::lua_module)]
    fn coevent(lua: &mlua::Lua) -> mlua::Result<mlua::Table> {
        super::open(lua)
    }
}
