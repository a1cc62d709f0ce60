//! `setkeepalive` and `getreusedtimes`: a stream's connection moves into a
//! keepalive pool of the engine's (`coevent_engine::pool`), and `connect` takes
//! it out again.

use coevent_engine::pool::{DEFAULT_IDLE_TIMEOUT, DEFAULT_SIZE};
use coevent_engine::sockets::Id;
use coevent_engine::stream::Cx;
use mlua::{Lua, Result, Value};

use super::args::{collected, of, with};
use crate::engine::{Engine, BUSY};
use crate::ret::{bad_arg, expected, fail, number, raise, ret, Ret, NOT_IN_LOOP};

/// `setkeepalive(timeout?, size?)`: the connection into its pool, idle for
/// at most `timeout` ms (0: no limit; default 60 s), the pool made with
/// `size` places (default 30) if it does not exist. Afterwards the socket
/// reads as closed.
pub fn setkeepalive(lua: &Lua, eng: &Engine, id: Id, timeout: Value, size: Value) -> Result<Ret> {
    // Both checked before anything changes, as OpenResty does.
    let timeout = match &timeout {
        Value::Nil => Some(DEFAULT_IDLE_TIMEOUT),
        v => match number(lua, v).map(f64::trunc) {
            // Below 0 wraps to a huge msec in OpenResty: no limit either.
            Some(n) if n > 0.0 => Some(n.min(u64::MAX as f64) as u64),
            Some(_) => None,
            None => return bad_arg(lua, 1, "setkeepalive", &expected("number", v)),
        },
    };
    let size = match &size {
        Value::Nil => DEFAULT_SIZE as f64,
        v => match number(lua, v) {
            Some(n) => n.trunc(),
            None => return bad_arg(lua, 2, "setkeepalive", &expected("number", v)),
        },
    };
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    let core = &mut *core;
    let Some(sock) = core.table.get(id) else { return collected(lua, "setkeepalive") };
    let Some(r) = core.r.as_mut() else { return raise(lua, NOT_IN_LOOP) };
    let s = of(sock);
    if s.server {
        // OpenResty's request sockets have no setkeepalive at all.
        return raise(lua, "setkeepalive: a connection a listener accepted cannot go into a pool");
    }
    if size < 1.0 && s.is_connected() && s.pool.is_none() && core.pools.find(&s.key).is_none() {
        let what = format!("bad \"pool_size\" option value: {}", size as i64);
        return bad_arg(lua, 2, "setkeepalive", &what);
    }
    let mut cx = Cx { r: &mut *r, spare: &mut core.spare, woken: &mut core.woken };
    let conn = match s.keepalive(&mut cx) {
        Ok(conn) => conn,
        Err(e) => return fail(lua, &e.message()),
    };
    let size = size.min(u32::MAX as f64) as usize;
    core.pools.put(r, &mut core.woken, &s.key, s.pool.take(), size, conn, s.reused, timeout);
    ret(Value::Integer(1))
}

/// `getreusedtimes()`: how many times the connection came from a pool.
pub fn getreusedtimes(lua: &Lua, eng: &Engine, id: Id) -> Result<Ret> {
    with(lua, eng, id, "getreusedtimes", |sock, _| {
        let s = of(sock);
        match s.is_connected() {
            true => ret(Value::Integer(i64::from(s.reused))),
            false => fail(lua, "closed"),
        }
    })
}
