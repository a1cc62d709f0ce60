//! The crossings of one round trip, and nothing else: a call into Rust
//! carrying a socket id and the request (`send`), and a resume carrying the
//! reply into a thread that yields back a receive request (marker, id,
//! pattern), as coevent's scheduler does. No I/O, no engine. Two bindings:
//! mlua's safe API, at its cheapest (typed arguments and yields, no memory
//! guards), and the raw Lua C API, which coevent's rules keep out of src/.
//! bench/callgrind.sh counts their instructions (README, Benchmark).
use mlua::{ffi, BString, LightUserData, Lua, LuaString, Result, Table, Thread};
use std::ffi::c_int;

static MARK: u8 = 0;

fn mark() -> LightUserData {
    LightUserData(&MARK as *const u8 as *mut _)
}

/// A receive request, typed: no `Value` is built for it.
type Request = (LightUserData, i64, LightUserData);

fn send_copied(_: &Lua, (_id, data): (i64, BString)) -> Result<usize> {
    Ok(data.len())
}

fn send_referenced(_: &Lua, (_id, data): (i64, LuaString)) -> Result<usize> {
    Ok(data.as_bytes().len())
}

/// Resumes `co` `n` times with a reply; counts the receive requests it yields.
fn drive(lua: &Lua, (co, n): (Thread, i64)) -> Result<i64> {
    let mut requests = 0;
    let _: Request = co.resume(())?;
    for _ in 0..n {
        let (m, _id, _pattern): Request = co.resume(lua.create_string("+PONG")?)?;
        requests += i64::from(m == mark());
    }
    Ok(requests)
}

unsafe extern "C-unwind" fn raw_send(l: *mut ffi::lua_State) -> c_int {
    let mut len = 0;
    // SAFETY: the Lua stack holds the call's arguments; a missing or non-string
    // one reads as 0 or NULL (bench only: no checks beyond the C API's).
    unsafe {
        ffi::lua_tointeger(l, 1);
        ffi::lua_tolstring(l, 2, &mut len);
        ffi::lua_pushinteger(l, len as _);
    }
    1
}

unsafe extern "C-unwind" fn raw_drive(l: *mut ffi::lua_State) -> c_int {
    let mut requests = 0;
    let mut nres = 0;
    // SAFETY: argument 1 is the thread to drive (bench only: unchecked); each
    // resume's values are read and popped before the next resume.
    unsafe {
        let co = ffi::lua_tothread(l, 1);
        let n = ffi::lua_tointeger(l, 2);
        ffi::lua_resume(co, l, 0, &mut nres);
        ffi::lua_settop(co, 0);
        for _ in 0..n {
            ffi::lua_pushlstring(co, c"+PONG".as_ptr(), 5);
            if ffi::lua_resume(co, l, 1, &mut nres) != ffi::LUA_YIELD {
                break;
            }
            requests += i64::from(ffi::lua_touserdata(co, 1) == mark().0);
            ffi::lua_tointeger(co, 2);
            ffi::lua_touserdata(co, 3);
            ffi::lua_settop(co, 0);
        }
        ffi::lua_pushinteger(l, requests as _);
    }
    1
}

#[mlua::lua_module(skip_memory_check)]
fn crossing(lua: &Lua) -> Result<Table> {
    let t = lua.create_table()?;
    t.set("MARK", mark())?;
    t.set("send_copied", lua.create_function(send_copied)?)?;
    t.set("send_referenced", lua.create_function(send_referenced)?)?;
    t.set("drive", lua.create_function(drive)?)?;
    // SAFETY: both are plain lua_CFunctions that keep to the Lua C API's rules.
    unsafe {
        t.set("raw_send", lua.create_c_function(raw_send)?)?;
        t.set("raw_drive", lua.create_c_function(raw_drive)?)?;
    }
    Ok(t)
}
