//! Lua values in and out of the Rust functions the prelude calls: the private
//! markers, the three values each returns, argument checks.

use std::ffi::c_void;

use coevent_engine::buf::Pattern;
use mlua::{Error, LightUserData, Lua, Result, Value};

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

/// `nil, prefix .. tostring(v)`: a string's own bytes (UTF-8 or not, as
/// OpenResty's message has them), a number as Lua writes it.
#[cold]
pub fn fail_with(lua: &Lua, prefix: &str, v: &Value) -> Result<Ret> {
    let mut msg = prefix.as_bytes().to_vec();
    match v {
        Value::String(s) => msg.extend_from_slice(&s.as_bytes()),
        Value::Integer(_) | Value::Number(_) => {
            msg.extend_from_slice(&lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec()).unwrap_or_default())
        }
        // A __tostring that gives no UTF-8 (or raises) leaves the type and address.
        v => match v.to_string() {
            Ok(s) => msg.extend_from_slice(s.as_bytes()),
            Err(_) => msg.extend_from_slice(format!("{}: {:p}", type_name(v), v.to_pointer()).as_bytes()),
        },
    }
    Ok((Value::Nil, Value::String(lua.create_string(msg)?), Value::Nil))
}

// The error helpers are cold: kept out of line, they leave the operations that
// call them smaller (9 KB less module, 90 instructions less per round trip on 5.4).
#[cold]
pub fn raise(lua: &Lua, msg: &str) -> Result<Ret> {
    Ok((raise_marker(), Value::String(lua.create_string(msg)?), Value::Nil))
}

/// Raises again, at level 0, an error Lua raised inside a Rust function:
/// on 5.1, 5.3 and LuaJIT a finalizer's error reaches the allocation that ran
/// the collector, and mlua hands it to the function as an `Err`.
#[cold]
pub fn rethrow(lua: &Lua, e: Error) -> Result<Ret> {
    fn text(e: &Error) -> String {
        match e {
            Error::RuntimeError(m) | Error::MemoryError(m) => m.clone(),
            #[cfg(feature = "lua53")]
            Error::GarbageCollectorError(m) => m.clone(),
            Error::CallbackError { cause, .. } => text(cause),
            e => e.to_string(),
        }
    }
    // Making the message may run the collector too, and another finalizer
    // may raise: each try runs one more.
    let msg = text(&e);
    let mut tries = 0;
    loop {
        match lua.create_string(&msg) {
            Ok(s) => return Ok((raise_marker(), Value::String(s), Value::Integer(0))),
            Err(e) if tries == 8 => return Err(e),
            Err(_) => tries += 1,
        }
    }
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
