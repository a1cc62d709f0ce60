//! coevent: an epoll event loop and coroutine "light threads" for Lua, with
//! cosockets whose calls read as if they blocked (the alilua coevent API).
//!
//! This crate is the thin safe layer between Lua (mlua) and the engine in
//! `coevent-ffi`. Rust functions never yield: they answer a private wait marker,
//! and the Lua prelude yields it to the scheduler (see `engine::Pending`).

#![deny(unsafe_code)]

mod engine;
mod resolve;
mod sched;
mod socket;

use std::rc::Rc;

use mlua::{BString, Lua, MultiValue, Result, Table, Value};

use engine::{raise_marker, wait_marker, Engine, Ret};
use socket::{Cosocket, Data, Socket};

/// Builds the module table `L` (and installs the seed's globals) in `lua`.
pub fn open(lua: &Lua) -> Result<Table> {
    let eng = Rc::new(Engine::new(lua)?);
    let body = sched::body(lua, &eng)?;
    let c = lua.create_table()?;
    c.raw_set("done", eng.done.clone())?;

    let e = eng.clone();
    let b = body.clone();
    let run = move |lua: &Lua, (f, args): (Value, MultiValue)| sched::run(lua, &e, &b, f, args);
    c.raw_set("run", lua.create_function(run)?)?;
    let e = eng.clone();
    let spawn = move |lua: &Lua, (f, args): (Value, MultiValue)| -> Result<Ret> {
        if e.current().is_none() {
            return engine::raise(lua, engine::NOT_IN_LOOP);
        }
        let Value::Function(f) = f else {
            return engine::bad_arg(lua, 1, "newthread", &engine::expected("function", &f));
        };
        let th = sched::spawn(lua, &e, &body, f, args)?;
        engine::ret(Value::Thread(th))
    };
    c.raw_set("spawn", lua.create_function(spawn)?)?;
    let e = eng.clone();
    c.raw_set("join", lua.create_function(move |lua, t: Value| sched::join(lua, &e, t))?)?;
    let e = eng.clone();
    c.raw_set("kill", lua.create_function(move |lua, t: Value| sched::kill(lua, &e, t))?)?;
    let e = eng.clone();
    c.raw_set("sleep", lua.create_function(move |lua, s: Value| sched::sleep(lua, &e, s))?)?;
    let e = eng.clone();
    c.raw_set("swop", lua.create_function(move |lua, ()| sched::swop(lua, &e))?)?;
    let e = eng.clone();
    c.raw_set("resolve", lua.create_function(move |lua, name: Value| resolve::resolve(lua, &e, name))?)?;
    let e = eng.clone();
    c.raw_set("config", lua.create_function(move |lua, t: Value| resolve::config(lua, &e, t))?)?;
    let e = eng.clone();
    let tcp = move |lua: &Lua, ()| {
        let (s, id) = Cosocket::new(&e);
        Ok((lua.create_userdata(s)?, id))
    };
    c.raw_set("tcp", lua.create_function(tcp)?)?;

    type Op = fn(&Lua, &mut Socket, Value, Value) -> Result<Ret>;
    let ops: [(&str, Op); 6] = [
        ("connect", socket::connect),
        ("receive", |l, s, a, _| socket::receive(l, s, a)),
        ("send", |l, s, a, _| socket::send(l, s, Data::Value(a))),
        ("close", |l, s, _, _| socket::close(l, s)),
        ("settimeout", |l, s, a, _| socket::settimeout(l, s, a)),
        ("setoption", socket::setoption),
    ];
    for (name, op) in ops {
        let e = eng.clone();
        let f = lua.create_function(move |lua, (id, a, b): (i64, Value, Value)| {
            socket::with(lua, &e, name, id, |s| op(lua, s, a, b))
        })?;
        c.raw_set(name, f)?;
    }

    if cfg!(feature = "luajit") {
        // See `socket::Data`; PUC Lua's type() test in the prelude costs more than it saves.
        let e = eng.clone();
        let send_bytes = move |lua: &Lua, (id, b): (i64, BString)| {
            socket::with(lua, &e, "send", id, |s| socket::send(lua, s, Data::Bytes(b)))
        };
        c.raw_set("send_bytes", lua.create_function(send_bytes)?)?;
        c.raw_set("SHORT", socket::SHORT)?;
    }

    let (line, all) = engine::pattern_markers();
    c.raw_set("LINE", line)?;
    c.raw_set("ALL", all)?;
    // PUC 5.1 cannot yield across pcall: there receive calls first (see prelude).
    c.raw_set("YIELD_RECEIVE", !cfg!(feature = "lua51"))?;
    let (l, methods): (Table, Table) =
        lua.load(include_str!("prelude.lua")).set_name("=coevent").call((c, wait_marker(), raise_marker()))?;
    lua.set_named_registry_value(socket::METHODS, methods)?;
    Ok(l)
}

#[cfg(feature = "module")]
#[allow(unsafe_code)] // the entry point mlua generates
mod module {
    #[mlua::lua_module(skip_memory_check)]
    fn coevent(lua: &mlua::Lua) -> mlua::Result<mlua::Table> {
        super::open(lua)
    }
}
