//! ngx.shared.DICT's native half: the store is `coevent_engine::shdict`, one
//! `Dict` per declared dictionary; shdict.lua checks the arguments.

use std::cell::RefCell;
use std::time::Instant;

use coevent_engine::shdict::{self, Dict, Mode, Val};
use mlua::{Lua, MultiValue, Result, Value};

use super::args::{arg, bytes, int, num, op, out, string};

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
pub(super) fn dict_new(_: &Lua, st: &RefCell<Dicts>, a: MultiValue) -> Result<MultiValue> {
    let st = &mut *st.borrow_mut();
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

ops! {
    /// The dictionary methods `dict` carries out.
    enum DictOp = "dict" {
        Get = "get",
        GetStale = "get_stale",
        Set = "set",
        SafeSet = "safe_set",
        Add = "add",
        SafeAdd = "safe_add",
        Replace = "replace",
        Incr = "incr",
        Lpush = "lpush",
        Rpush = "rpush",
        Lpop = "lpop",
        Rpop = "rpop",
        Llen = "llen",
        FlushAll = "flush_all",
        FlushExpired = "flush_expired",
        GetKeys = "get_keys",
        Ttl = "ttl",
        Expire = "expire",
        Capacity = "capacity",
        FreeSpace = "free_space",
    }
}

/// `(op, dict, key, a, b, c)`: the dictionary methods, the key and the
/// argument types already checked by shdict.lua. Results as OpenResty's.
pub(super) fn dict(lua: &Lua, st: &RefCell<Dicts>, a: MultiValue) -> Result<MultiValue> {
    let st = &mut *st.borrow_mut();
    let now = st.now_ms();
    let d = &mut st.dicts[int(&a, 1) as usize];
    let key = bytes(&a, 2);
    let nil_err = |e: shdict::Err| Ok(MultiValue::from_iter([Value::Nil, string(lua, e.as_str())?]));
    match op(&a, 0)? {
        DictOp::Get => match d.get(&key, now) {
            Some((Val::List(_), _)) => nil_err(shdict::Err::NotAList),
            Some((v, f)) => out([from_val(lua, v)?, flags(f)]),
            None => out([Value::Nil]),
        },
        DictOp::GetStale => match d.get_stale(&key, now) {
            Some((Val::List(_), _, _)) => nil_err(shdict::Err::NotAList),
            Some((v, f, stale)) => out([from_val(lua, v)?, flags(f), Value::Boolean(stale)]),
            None => out([Value::Nil]),
        },
        DictOp::Set => store(lua, d, Mode::Set, &key, &a, now),
        DictOp::SafeSet => store(lua, d, Mode::SafeSet, &key, &a, now),
        DictOp::Add => store(lua, d, Mode::Add, &key, &a, now),
        DictOp::SafeAdd => store(lua, d, Mode::SafeAdd, &key, &a, now),
        DictOp::Replace => store(lua, d, Mode::Replace, &key, &a, now),
        // (by, init, init_ttl)
        DictOp::Incr => {
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
        op @ (DictOp::Lpush | DictOp::Rpush) => {
            let Some(v @ (Val::Num(_) | Val::Str(_))) = to_val(arg(&a, 3)) else {
                return out([Value::Nil, string(lua, "bad value type")?]);
            };
            match d.push(&key, v, op == DictOp::Lpush, now) {
                Ok(n) => out([Value::Integer(n as i64)]),
                Err(e) => nil_err(e),
            }
        }
        op @ (DictOp::Lpop | DictOp::Rpop) => match d.pop(&key, op == DictOp::Lpop, now) {
            Ok(Some(v)) => out([from_val(lua, &v)?]),
            Ok(None) => out([Value::Nil]),
            Err(e) => nil_err(e),
        },
        DictOp::Llen => match d.llen(&key, now) {
            Ok(n) => out([Value::Integer(n as i64)]),
            Err(e) => nil_err(e),
        },
        DictOp::FlushAll => {
            d.flush_all(now);
            out([])
        }
        DictOp::FlushExpired => out([Value::Integer(d.flush_expired(now, num(&a, 3) as usize) as i64)]),
        DictOp::GetKeys => {
            let t = lua.create_table()?;
            for (i, k) in d.keys(now, num(&a, 3) as usize).into_iter().enumerate() {
                t.raw_set(i + 1, lua.create_string(k)?)?;
            }
            out([Value::Table(t)])
        }
        DictOp::Ttl => match d.ttl(&key, now) {
            Some(t) => out([Value::Number(t)]),
            None => out([Value::Nil, string(lua, "not found")?]),
        },
        DictOp::Expire => {
            if d.expire(&key, shdict::deadline(now, num(&a, 3)), now) {
                out([Value::Boolean(true)])
            } else {
                out([Value::Nil, string(lua, "not found")?])
            }
        }
        DictOp::Capacity => out([Value::Integer(d.capacity() as i64)]),
        DictOp::FreeSpace => out([Value::Integer(d.free_space() as i64)]),
    }
}

/// set, safe_set, add, safe_add, replace: `(value, exptime, flags)` at 3..5.
fn store(lua: &Lua, d: &mut Dict, mode: Mode, key: &[u8], a: &MultiValue, now: u64) -> Result<MultiValue> {
    let force = !matches!(mode, Mode::SafeSet | Mode::SafeAdd);
    let v = arg(a, 3);
    let val = match v {
        Value::Nil => None,
        v => match to_val(v) {
            Some(v) => Some(v),
            None => return out([Value::Nil, string(lua, "bad value type")?]),
        },
    };
    let expires = shdict::deadline(now, num(a, 4));
    match d.store(mode, key, val, expires, int(a, 5) as u32, now) {
        Ok(forced) => out([Value::Boolean(true), Value::Nil, Value::Boolean(forced)]),
        Err(e @ shdict::Err::NoMemory) if !force => out([Value::Nil, string(lua, e.as_str())?]),
        Err(e) => out([Value::Boolean(false), string(lua, e.as_str())?, Value::Boolean(false)]),
    }
}

/// `size("10m")` → bytes | nil.
pub(super) fn size(_: &Lua, _: &RefCell<Dicts>, a: MultiValue) -> Result<MultiValue> {
    let n = std::str::from_utf8(&bytes(&a, 0)).ok().and_then(shdict::parse_size);
    out([n.map_or(Value::Nil, |n| Value::Integer(n as i64))])
}
