//! The Rust half of `coevent.ngx` (the Lua half is init.lua and its parts,
//! beside this file): what plain Lua cannot do well — digests and base64
//! (digest.rs), ngx.re on the system's PCRE2 (re.rs), and the shared
//! dictionaries' store (shdict.rs over `coevent_ffi::shdict`); here, the
//! small natives and the loader. Registered in `package.preload`, so
//! `require('coevent.ngx')` needs nothing on LUA_PATH.

/// A list of operations one native function takes, named once: the enum the
/// Rust side matches on, and the names the Lua side gets at load
/// (`N.op_names`: a string of them, which init.lua makes `N.ops`, name →
/// place from 0). A number that names no operation is an error.
macro_rules! ops {
    ($(#[$doc:meta])* enum $name:ident = $kind:literal { $($v:ident = $lua:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(super) enum $name {
            $($v,)*
        }

        impl super::Op for $name {
            const KIND: &'static str = $kind;
            const ALL: &'static [(Self, &'static str)] = &[$(($name::$v, $lua),)*];
            const NAMES: &'static str = concat!($($lua, " ",)*);
        }
    };
}

mod digest;
mod re;
mod shdict;

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Lua, MultiValue, Result, Table, Value};

/// What the natives keep between calls, behind one borrow.
#[derive(Default)]
struct State {
    re: re::Regexes,
    dict: shdict::Dicts,
}

type Native = fn(&Lua, &RefCell<State>, MultiValue) -> Result<MultiValue>;

/// What `ops!` makes: an operation's number is its place in `ALL`.
trait Op: Copy + 'static {
    /// What `N.ops` calls the list, and errors name.
    const KIND: &'static str;
    const ALL: &'static [(Self, &'static str)];
    /// ALL's names in its order, each followed by a space: what Lua gets.
    const NAMES: &'static str;
}

/// Argument `i`, an operation's number, as the operation.
fn op<O: Op>(a: &MultiValue, i: usize) -> Result<O> {
    Ok(O::ALL[op_index(arg(a, i), O::ALL.len(), O::KIND)?].0)
}

fn op_index(v: &Value, len: usize, kind: &str) -> Result<usize> {
    let n = match v {
        Value::Integer(n) => usize::try_from(*n).ok(),
        Value::Number(n) if n.fract() == 0.0 && *n >= 0.0 => Some(*n as usize),
        _ => None,
    };
    n.filter(|&n| n < len).ok_or_else(|| no_op(kind))
}

/// Out of the natives' way, and without formatting the number (less code in
/// the module for an error that only a bug in the Lua half can raise).
#[cold]
#[inline(never)]
fn no_op(kind: &str) -> mlua::Error {
    mlua::Error::runtime(format!("coevent.ngx: no such {kind} operation"))
}

fn arg(a: &MultiValue, i: usize) -> &Value {
    a.get(i).unwrap_or(&Value::Nil)
}

fn bytes(a: &MultiValue, i: usize) -> Vec<u8> {
    match arg(a, i) {
        Value::String(s) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

fn int(a: &MultiValue, i: usize) -> i64 {
    match arg(a, i) {
        Value::Integer(n) => *n,
        Value::Number(n) => *n as i64,
        _ => 0,
    }
}

fn num(a: &MultiValue, i: usize) -> f64 {
    match arg(a, i) {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        _ => 0.0,
    }
}

fn out<const N: usize>(v: [Value; N]) -> Result<MultiValue> {
    Ok(MultiValue::from_iter(v))
}

fn string(lua: &Lua, b: impl AsRef<[u8]>) -> Result<Value> {
    Ok(Value::String(lua.create_string(b)?))
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
    let st = Rc::new(RefCell::new(State::default()));
    let native = lua.create_table()?;
    let fns: [(&str, Native); 7] = [
        ("digest", digest::digest),
        ("re_compile", re::re_compile),
        ("re_info", re::re_info),
        ("re_exec", re::re_exec),
        ("dict_new", shdict::dict_new),
        ("dict", shdict::dict),
        ("size", shdict::size),
    ];
    for (name, f) in fns {
        let st = st.clone();
        native.raw_set(name, lua.create_function(move |lua, a: MultiValue| f(lua, &st, a))?)?;
    }
    let ops = lua.create_table()?;
    ops.raw_set(digest::DigestOp::KIND, digest::DigestOp::NAMES)?;
    ops.raw_set(shdict::DictOp::KIND, shdict::DictOp::NAMES)?;
    native.raw_set("op_names", ops)?;
    native.raw_set("re_flags", re::flags(lua)?)?;
    native.raw_set("null", Value::LightUserData(mlua::LightUserData(std::ptr::null_mut())))?;
    native.raw_set("pid", lua.create_function(|_, ()| Ok(std::process::id()))?)?;
    // The runner's stop signals (a module leaves signals to its host): whether
    // they are caught, and whether one came.
    use coevent_ffi::sys::process;
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

    use super::digest::DigestOp;
    use super::shdict::DictOp;
    use super::{op, Op};

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
