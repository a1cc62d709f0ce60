//! ngx.shared.DICT's native half: the store is `coevent_ffi::shdict`, one
//! `Dict` per declared dictionary; shdict.lua checks the arguments.

use std::cell::RefCell;
use std::time::Instant;

use coevent_ffi::shdict::{self, Dict, Mode, Val};
use mlua::{Lua, MultiValue, Result, Value};

use super::{arg, bytes, int, num, out, string, State};

/// The dictionaries, named by index, and the clock their deadlines count on.
#[derive(Default)]
pub(super) struct Dicts {
    dicts: Vec<Dict>,
    epoch: Option<Instant>,
}

impl Dicts {
    fn now_ms(&mut self) -> u64 {
        self.epoch.get_or_insert_with(Instant::now).elapsed().as_millis() as u64
    }
}

/// `(size)` → a new dictionary's index.
pub(super) fn dict_new(_: &Lua, st: &RefCell<State>, a: MultiValue) -> Result<MultiValue> {
    let st = &mut st.borrow_mut().dict;
    st.dicts.push(Dict::new(int(&a, 0) as usize));
    out([Value::Integer(st.dicts.len() as i64 - 1)])
}

fn to_val(v: &Value) -> Option<Val> {
    Some(match v {
        Value::Boolean(b) => Val::Bool(*b),
        Value::Integer(n) => Val::Num(*n as f64),
        Value::Number(n) => Val::Num(*n),
        Value::String(s) => Val::Str(s.as_bytes().to_vec()),
        _ => return None,
    })
}

fn from_val(lua: &Lua, v: &Val) -> Result<Value> {
    Ok(match v {
        Val::Bool(b) => Value::Boolean(*b),
        Val::Num(n) if n.fract() == 0.0 && n.abs() < 2f64.powi(53) => Value::Integer(*n as i64),
        Val::Num(n) => Value::Number(*n),
        Val::Str(s) => string(lua, s)?,
        Val::List(_) => Value::Nil,
    })
}

fn flags(f: u32) -> Value {
    if f == 0 {
        Value::Nil
    } else {
        Value::Integer(f as i64)
    }
}

/// `(op, dict, key, a, b, c)`: the dictionary methods, the key and the
/// argument types already checked by ngx.lua. Results as OpenResty's.
pub(super) fn dict(lua: &Lua, st: &RefCell<State>, a: MultiValue) -> Result<MultiValue> {
    let st = &mut st.borrow_mut().dict;
    let now = st.now_ms();
    let d = &mut st.dicts[int(&a, 1) as usize];
    let key = bytes(&a, 2);
    let nil_err = |e: shdict::Err| Ok(MultiValue::from_iter([Value::Nil, string(lua, e.as_str())?]));
    match int(&a, 0) {
        // get, get_stale
        0 => match d.get(&key, now) {
            Some((Val::List(_), _)) => nil_err(shdict::Err::NotAList),
            Some((v, f)) => out([from_val(lua, v)?, flags(f)]),
            None => out([Value::Nil]),
        },
        1 => match d.get_stale(&key, now) {
            Some((Val::List(_), _, _)) => nil_err(shdict::Err::NotAList),
            Some((v, f, stale)) => out([from_val(lua, v)?, flags(f), Value::Boolean(stale)]),
            None => out([Value::Nil]),
        },
        // set, safe_set, add, safe_add, replace: (value, exptime, flags)
        op @ 2..=6 => {
            let mode = [Mode::Set, Mode::SafeSet, Mode::Add, Mode::SafeAdd, Mode::Replace][op as usize - 2];
            let force = !matches!(mode, Mode::SafeSet | Mode::SafeAdd);
            let v = arg(&a, 3);
            let val = match v {
                Value::Nil => None,
                v => match to_val(v) {
                    Some(v) => Some(v),
                    None => return out([Value::Nil, string(lua, "bad value type")?]),
                },
            };
            let expires = shdict::deadline(now, num(&a, 4));
            match d.store(mode, &key, val, expires, int(&a, 5) as u32, now) {
                Ok(forced) => out([Value::Boolean(true), Value::Nil, Value::Boolean(forced)]),
                Err(e @ shdict::Err::NoMemory) if !force => nil_err(e),
                Err(e) => {
                    Ok(MultiValue::from_iter([Value::Boolean(false), string(lua, e.as_str())?, Value::Boolean(false)]))
                }
            }
        }
        // incr: (by, init, init_ttl)
        7 => {
            let init = match arg(&a, 4) {
                Value::Nil => None,
                _ => Some((num(&a, 4), shdict::deadline(now, num(&a, 5)))),
            };
            match d.incr(&key, num(&a, 3), init, now) {
                Ok((n, forced)) => {
                    let n = from_val(lua, &Val::Num(n))?;
                    out([n, Value::Nil, Value::Boolean(forced)])
                }
                Err(e) => nil_err(e),
            }
        }
        // lpush, rpush
        op @ 8..=9 => {
            let Some(v @ (Val::Num(_) | Val::Str(_))) = to_val(arg(&a, 3)) else {
                return out([Value::Nil, string(lua, "bad value type")?]);
            };
            match d.push(&key, v, op == 8, now) {
                Ok(n) => out([Value::Integer(n as i64)]),
                Err(e) => nil_err(e),
            }
        }
        // lpop, rpop
        op @ 10..=11 => match d.pop(&key, op == 10, now) {
            Ok(Some(v)) => out([from_val(lua, &v)?]),
            Ok(None) => out([Value::Nil]),
            Err(e) => nil_err(e),
        },
        12 => match d.llen(&key, now) {
            Ok(n) => out([Value::Integer(n as i64)]),
            Err(e) => nil_err(e),
        },
        13 => {
            d.flush_all(now);
            out([])
        }
        14 => out([Value::Integer(d.flush_expired(now, num(&a, 3) as usize) as i64)]),
        15 => {
            let t = lua.create_table()?;
            for (i, k) in d.keys(now, num(&a, 3) as usize).into_iter().enumerate() {
                t.raw_set(i + 1, lua.create_string(k)?)?;
            }
            out([Value::Table(t)])
        }
        16 => match d.ttl(&key, now) {
            Some(t) => out([Value::Number(t)]),
            None => out([Value::Nil, string(lua, "not found")?]),
        },
        17 => {
            if d.expire(&key, shdict::deadline(now, num(&a, 3)), now) {
                out([Value::Boolean(true)])
            } else {
                out([Value::Nil, string(lua, "not found")?])
            }
        }
        18 => out([Value::Integer(d.capacity() as i64)]),
        _ => out([Value::Integer(d.free_space() as i64)]),
    }
}

/// `size("10m")` → bytes | nil.
pub(super) fn size(_: &Lua, _: &RefCell<State>, a: MultiValue) -> Result<MultiValue> {
    let n = std::str::from_utf8(&bytes(&a, 0)).ok().and_then(shdict::parse_size);
    out([n.map_or(Value::Nil, |n| Value::Integer(n as i64))])
}
