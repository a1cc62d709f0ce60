//! The Rust half of `coevent.ngx` (the Lua half is init.lua and its parts,
//! beside this file): what plain Lua cannot do well — digests and base64
//! (digest.rs), ngx.re on the system's PCRE2 (re.rs), and the shared
//! dictionaries' store (shdict.rs over `coevent_engine::shdict`); here, the
//! small natives and the loader. Registered in `package.preload`, so
//! `require('coevent.ngx')` needs nothing on LUA_PATH.

#[macro_use]
mod args;
mod digest;
mod re;
mod shdict;

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Lua, MultiValue, Result, Table, Value};

use args::Op;

/// A native with the state of its part, kept between calls behind one borrow.
type Native<S> = fn(&Lua, &RefCell<S>, MultiValue) -> Result<MultiValue>;

/// Registers `fns` in `native`, each with `st`.
fn register<S: 'static>(lua: &Lua, native: &Table, st: S, fns: &[(&str, Native<S>)]) -> Result<()> {
    let st = Rc::new(RefCell::new(st));
    for &(name, f) in fns {
        let st = st.clone();
        native.raw_set(name, lua.create_function(move |lua, a: MultiValue| f(lua, &st, a))?)?;
    }
    Ok(())
}

/// The Lua half: init.lua makes the `ngx` table and runs each part on it.
const INIT: &str = include_str!("init.lua");
const PARTS: [(&str, &str); 9] = [
    ("thread", include_str!("thread.lua")),
    ("timer", include_str!("timer.lua")),
    ("time", include_str!("time.lua")),
    ("output", include_str!("output.lua")),
    ("digest", include_str!("digest.lua")),
    ("escape", include_str!("escape.lua")),
    ("re", include_str!("re.lua")),
    ("shdict", include_str!("shdict.lua")),
    ("run", include_str!("run.lua")),
];
/// LuaJIT's `bit` for Lua 5.3+: source that only those can compile, which
/// init.lua loads where it is wanted.
const BIT: &str = include_str!("bit.lua");

/// Puts `coevent.ngx` in `package.preload`: loading it runs init.lua with
/// `L`, the prelude's part for it (`from_prelude`), the native functions and
/// the parts.
pub fn preload(lua: &Lua, l: &Table, from_prelude: Table) -> Result<()> {
    let native = lua.create_table()?;
    native.raw_set("digest", lua.create_function(digest::digest)?)?;
    let re: [(&str, Native<re::Regexes>); 3] =
        [("re_compile", re::re_compile), ("re_info", re::re_info), ("re_exec", re::re_exec)];
    register(lua, &native, re::Regexes::default(), &re)?;
    let dict: [(&str, Native<shdict::Dicts>); 3] =
        [("dict_new", shdict::dict_new), ("dict", shdict::dict), ("size", shdict::size)];
    register(lua, &native, shdict::Dicts::default(), &dict)?;
    let ops = lua.create_table()?;
    ops.raw_set(digest::DigestOp::KIND, digest::DigestOp::NAMES)?;
    ops.raw_set(shdict::DictOp::KIND, shdict::DictOp::NAMES)?;
    native.raw_set("op_names", ops)?;
    native.raw_set("re_flags", re::flags(lua)?)?;
    native.raw_set("null", Value::LightUserData(mlua::LightUserData(std::ptr::null_mut())))?;
    native.raw_set("pid", lua.create_function(|_, ()| Ok(std::process::id()))?)?;
    // The runner's stop signals (a module leaves signals to its host): whether
    // they are caught, and whether one came.
    use coevent_engine::sys::process;
    // The running thread's traceback from `level` (the runner loads no `debug`).
    let traceback = lua.create_function(|lua, level: usize| lua.traceback(None, level))?;
    native.raw_set("traceback", traceback)?;
    native.raw_set("signals", lua.create_function(|_, ()| Ok(process::stop_fd().is_some()))?)?;
    native.raw_set("stopping", lua.create_function(|_, ()| Ok(process::stop_requested()))?)?;
    native.raw_set(
        "now",
        lua.create_function(|_, ()| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            Ok(t.as_millis() as f64 / 1000.0)
        })?,
    )?;
    // ngx.log's "file:line: func(): " of its caller (level 2 from here).
    let where_ = lua.create_function(|lua, level: usize| {
        Ok(lua.inspect_stack(level, |d| {
            let src = d.source().short_src.map(|s| s.into_owned()).unwrap_or_default();
            let line = d.current_line().unwrap_or(0);
            match d.names().name {
                Some(n) => format!("{src}:{line}: {n}(): "),
                None => format!("{src}:{line}: "),
            }
        }))
    })?;
    native.raw_set("where", where_)?;
    let parts = lua.create_table()?;
    for (name, src) in PARTS {
        parts.raw_set(name, lua.load(src).set_name(format!("=coevent.ngx.{name}")).into_function()?)?;
    }
    parts.raw_set("bit", BIT)?;
    let l = l.clone();
    let chunk = lua.load(INIT).set_name("=coevent.ngx").into_function()?;
    let loader = lua.create_function(move |_, ()| {
        chunk.call::<Value>((l.clone(), from_prelude.clone(), native.clone(), parts.clone()))
    })?;
    lua.globals().get::<Table>("package")?.get::<Table>("preload")?.raw_set("coevent.ngx", loader)
}

#[cfg(test)]
mod tests {
    use mlua::{MultiValue, Value};

    use super::args::{op, Op};
    use super::digest::DigestOp;
    use super::shdict::DictOp;

    /// The number init.lua gives each name (its place in NAMES, from 0)
    /// comes back as its operation, as an integer and as a float (5.1 and
    /// LuaJIT have no integers).
    fn round_trip<O: Op + PartialEq + std::fmt::Debug>() {
        let names: Vec<&str> = O::NAMES.split_whitespace().collect();
        assert_eq!(names.len(), O::ALL.len());
        for (n, name) in names.into_iter().enumerate() {
            let (want, want_name) = O::ALL[n];
            assert_eq!(name, want_name);
            assert_eq!(op::<O>(&MultiValue::from_iter([Value::Integer(n as i64)]), 0).unwrap(), want);
            assert_eq!(op::<O>(&MultiValue::from_iter([Value::Number(n as f64)]), 0).unwrap(), want);
        }
    }

    #[test]
    fn op_names_round_trip() {
        round_trip::<DictOp>();
        round_trip::<DigestOp>();
    }

    /// A number that names no operation is an error, never some operation.
    #[test]
    fn unknown_op_is_an_error() {
        let n = DictOp::ALL.len() as i64;
        for v in [Value::Integer(n), Value::Integer(-1), Value::Number(1.5), Value::Nil, Value::Boolean(true)] {
            let e = op::<DictOp>(&MultiValue::from_iter([v]), 0).unwrap_err().to_string();
            assert!(e.contains("coevent.ngx: no such dict operation"), "{e}");
        }
    }
}
