//! What the socket files share, below all of them: the socket an id names
//! (or the error to raise), the arguments several methods read, and the
//! messages they raise.

use std::rc::Rc;

use coevent_engine::sockets::{Id, Kind, Sock};
use coevent_engine::stream::{Cx, Stream};
use coevent_engine::until::Key;
use mlua::{BString, Either, Lua, Result, UserData, Value};

use crate::engine::{Absent, Core, Deferred, Engine, Held, BUSY};
use crate::ret::{fail, number, raise, type_name, Ret, NOT_IN_LOOP};

/// A userdata whose collection releases what it holds in the engine: a
/// `receiveuntil` matcher, a TLS session (or a socket). One type for all: each userdata type
/// costs the module its own copy of mlua's glue.
pub(super) struct Guard {
    eng: Rc<Engine>,
    pub(super) held: Held,
}

impl Guard {
    pub(super) fn new(eng: &Rc<Engine>, held: Held) -> Guard {
        Guard { eng: eng.clone(), held }
    }

    /// The matcher it holds, if it is a `receiveuntil` iterator's.
    pub(super) fn matcher(&self) -> Option<Key> {
        match self.held {
            Held::Matcher(key) => Some(key),
            _ => None,
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

/// Deepest table nesting `send` accepts (a table that contains itself ends here).
const MAX_DEPTH: usize = 64;

/// The error of a method called on a collected cosocket (see socket/mod.rs).
#[cold]
pub(super) fn collected_message(name: &str) -> String {
    format!("calling '{name}' on a collected cosocket")
}

/// Raises `collected_message`.
#[cold]
pub(super) fn collected(lua: &Lua, name: &str) -> Result<Ret> {
    raise(lua, &collected_message(name))
}

/// The error of a stream method called on a listener.
#[cold]
pub(super) fn listening_message(name: &str) -> String {
    format!("calling '{name}' on a listening cosocket")
}

/// The error to raise for a socket `Core::sock` did not lend.
pub(super) fn absent(a: Absent, name: &str) -> String {
    match a {
        Absent::Collected => collected_message(name),
        Absent::NoLoop => NOT_IN_LOOP.to_string(),
    }
}

/// Socket `id`'s stream and what an operation on it is lent, or the error
/// to raise: the engine is busy, the socket was collected, no loop runs.
pub(super) fn stream<'a>(
    core: &'a mut Core,
    id: Id,
    name: &str,
) -> std::result::Result<(&'a mut Sock, Cx<'a>), String> {
    match core.sock(id) {
        Ok((Sock { kind: Kind::Listener(_), .. }, _)) => Err(listening_message(name)),
        r => r.map_err(|a| absent(a, name)),
    }
}

/// A stream socket's stream. Listeners have methods of their own
/// (socket::listener): every entry point here turns them away first.
pub(super) fn of(sock: &mut Sock) -> &mut Stream {
    match &mut sock.kind {
        Kind::Stream(s) => s,
        Kind::Listener(_) => unreachable!(),
        // The prelude hands a datagram socket's id to the udp functions only.
        Kind::Dgram(_) => unreachable!("a stream operation on a datagram socket"),
    }
}

/// Runs `op` on socket `id`'s stream, or raises why it cannot.
pub(super) fn with(
    lua: &Lua,
    eng: &Engine,
    id: Id,
    name: &str,
    op: impl FnOnce(&mut Sock, Cx) -> Result<Ret>,
) -> Result<Ret> {
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    match stream(&mut core, id, name) {
        Ok((sock, cx)) => op(sock, cx),
        Err(msg) => {
            drop(core);
            raise(lua, &msg)
        }
    }
}

/// The port argument of `connect` and `bind`, as OpenResty reads it:
/// truncated to a whole number, none for a unix socket; out of range or
/// missing, the `nil, err` to return.
pub(super) fn port_arg(lua: &Lua, host: &[u8], port: &Value) -> std::result::Result<u16, Result<Ret>> {
    if host.starts_with(b"unix:") {
        return Ok(0);
    }
    match number(lua, port).map(f64::trunc) {
        Some(p) if (0.0..=65535.0).contains(&p) => Ok(p as u16),
        Some(p) => Err(fail(lua, &format!("bad port number: {}", p as i64))),
        None => Err(fail(lua, "missing the port number")),
    }
}

/// Why `host` is no address, in OpenResty's words where it has them.
pub(super) fn unparsed(host: &[u8], e: &str) -> String {
    let why = match e {
        "empty unix socket path" => "no path in the unix domain socket",
        "unix socket path too long" => "too long path in the unix domain socket",
        _ if host.is_empty() => "no host",
        _ => return e.to_string(),
    };
    format!("failed to parse host name \"{}\": {why}", String::from_utf8_lossy(host))
}

/// Appends `v` to `out`, as OpenResty's send takes it: a string, a number,
/// `nil`, a boolean (sent as `"nil"`, `"true"`, `"false"`) or an array
/// table of strings, numbers and array tables.
pub(super) fn flatten_arg(lua: &Lua, v: &Value, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"nil"),
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::String(_) | Value::Integer(_) | Value::Number(_) | Value::Table(_) => flatten(lua, v, out, 0)?,
        v => return Err(format!("string, number, boolean, nil, or array table expected, got {}", type_name(v))),
    }
    Ok(())
}

/// Appends `v` (a string, a number, or a nested array table of those) to `out`.
fn flatten(lua: &Lua, v: &Value, out: &mut Vec<u8>, depth: usize) -> std::result::Result<(), String> {
    match v {
        Value::String(s) => out.extend_from_slice(&s.as_bytes()),
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(v.clone()) {
            Ok(Some(s)) => out.extend_from_slice(&s.as_bytes()),
            _ => return Err("bad data type number found".into()),
        },
        Value::Table(t) if depth < MAX_DEPTH => {
            // As OpenResty: every key a whole number from 1 (holes are nils,
            // refused below). One pass, strings read as bytes: a Value makes a
            // Lua reference per element, the larger part of a client library's
            // request (bench/callgrind.sh measures it).
            let mut items: Vec<(usize, Either<BString, Value>)> = Vec::new();
            let mut array = true;
            t.for_each(|k: Value, v: Either<BString, Value>| {
                match k {
                    Value::Integer(i) if i >= 1 => items.push((i as usize, v)),
                    Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => items.push((n as usize, v)),
                    _ => array = false,
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
            if !array {
                return Err("non-array table found".into());
            }
            if !items.is_sorted_by_key(|(i, _)| *i) {
                items.sort_unstable_by_key(|(i, _)| *i);
            }
            for (next, (i, v)) in (1..).zip(&items) {
                if *i != next {
                    return Err("bad data type nil found".into());
                }
                match v {
                    Either::Left(b) => out.extend_from_slice(b),
                    Either::Right(v) => flatten(lua, v, out, depth + 1)?,
                }
            }
        }
        Value::Table(_) => return Err("table nested too deep".into()),
        v => return Err(format!("bad data type {} found", type_name(v))),
    }
    Ok(())
}
