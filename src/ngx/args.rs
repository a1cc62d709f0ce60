//! What the natives of `coevent.ngx` share: their arguments in, their
//! values out, and the named operations (`ops!`) a native takes.

use mlua::{Lua, MultiValue, Result, Value};

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

        impl $crate::ngx::args::Op for $name {
            const KIND: &'static str = $kind;
            const ALL: &'static [(Self, &'static str)] = &[$(($name::$v, $lua),)*];
            const NAMES: &'static str = concat!($($lua, " ",)*);
        }
    };
}

/// What `ops!` makes: an operation's number is its place in `ALL`.
pub(super) trait Op: Copy + 'static {
    /// What `N.ops` calls the list, and errors name.
    const KIND: &'static str;
    const ALL: &'static [(Self, &'static str)];
    /// ALL's names in its order, each followed by a space: what Lua gets.
    const NAMES: &'static str;
}

/// Argument `i`, an operation's number, as the operation.
pub(super) fn op<O: Op>(a: &MultiValue, i: usize) -> Result<O> {
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

pub(super) fn arg(a: &MultiValue, i: usize) -> &Value {
    a.get(i).unwrap_or(&Value::Nil)
}

pub(super) fn bytes(a: &MultiValue, i: usize) -> Vec<u8> {
    match arg(a, i) {
        Value::String(s) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

pub(super) fn int(a: &MultiValue, i: usize) -> i64 {
    match arg(a, i) {
        Value::Integer(n) => *n,
        Value::Number(n) => *n as i64,
        _ => 0,
    }
}

pub(super) fn num(a: &MultiValue, i: usize) -> f64 {
    match arg(a, i) {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        _ => 0.0,
    }
}

pub(super) fn out<const N: usize>(v: [Value; N]) -> Result<MultiValue> {
    Ok(MultiValue::from_iter(v))
}

pub(super) fn string(lua: &Lua, b: impl AsRef<[u8]>) -> Result<Value> {
    Ok(Value::String(lua.create_string(b)?))
}
