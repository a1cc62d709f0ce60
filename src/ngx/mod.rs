//! The Rust half of `coevent.ngx` (the rest is `ngx.lua`): what plain Lua
//! cannot do well — digests, base64, ngx.re on the system's PCRE2, and the
//! shared dictionaries' store (`coevent_ffi::shdict`). Registered in
//! `package.preload`, so `require('coevent.ngx')` needs nothing on LUA_PATH.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use coevent_ffi::shdict::{self, Dict, Mode, Val};
use coevent_ffi::sys::pcre::{self, Matches, Regex};
use hmac::{KeyInit, Mac};
use md5::Digest;
use mlua::{Lua, MultiValue, Result, Table, Value};

/// ngx.decode_base64 takes input with or without its padding, as nginx's decoder.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64_NOPAD: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::STANDARD, GeneralPurposeConfig::new().with_encode_padding(false));

/// Compiled regexes live here, named by index; ngx.lua keeps the index by
/// (pattern, flags), so a pattern is compiled once however often it is used.
/// Past this many the whole cache starts over (patterns made on the fly
/// must not grow memory without bound).
const MAX_REGEXES: usize = 4096;

#[derive(Default)]
struct State {
    /// Each with whether it is searched as a DFA (the `d` flag).
    regexes: Vec<(Regex, bool)>,
    /// Where every search writes its match.
    matches: Matches,
    /// The last match's offsets, out of `matches` while they go to Lua.
    offsets: Vec<usize>,
    dicts: Vec<Dict>,
    epoch: Option<Instant>,
}

impl State {
    fn now_ms(&mut self) -> u64 {
        self.epoch.get_or_insert_with(Instant::now).elapsed().as_millis() as u64
    }
}

// ngx.re's flags, as ngx.lua passes them.
const CASELESS: u32 = 1;
const MULTILINE: u32 = 2;
const DOTALL: u32 = 4;
const EXTENDED: u32 = 8;
const UTF: u32 = 16;
const JIT: u32 = 32;
const ANCHORED: u32 = 64;
const DUPNAMES: u32 = 128;
const DFA: u32 = 256;
const JAVASCRIPT: u32 = 512;

/// The PCRE2 compile option of each flag that has one.
const OPTIONS: [(u32, u32); 8] = [
    (CASELESS, pcre::CASELESS),
    (MULTILINE, pcre::MULTILINE),
    (DOTALL, pcre::DOTALL),
    (EXTENDED, pcre::EXTENDED),
    (UTF, pcre::UTF),
    (ANCHORED, pcre::ANCHORED),
    (DUPNAMES, pcre::DUPNAMES),
    (JAVASCRIPT, pcre::JAVASCRIPT_COMPAT),
];

type Native = fn(&Lua, &RefCell<State>, MultiValue) -> Result<MultiValue>;

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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Digests, base64 and crc32: (op, s, key or no_padding).
fn digest(lua: &Lua, _: &RefCell<State>, a: MultiValue) -> Result<MultiValue> {
    let s = bytes(&a, 1);
    let v = match int(&a, 0) {
        0 => string(lua, hex(&md5::Md5::digest(&s)))?,
        1 => string(lua, md5::Md5::digest(&s))?,
        2 => string(lua, sha1::Sha1::digest(&s))?,
        3 => {
            let mut m = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&bytes(&a, 2)).expect("any key size");
            m.update(&s);
            string(lua, m.finalize().into_bytes())?
        }
        4 => Value::Integer(crc32fast::hash(&s) as i64),
        5 if matches!(arg(&a, 2), Value::Boolean(true)) => string(lua, B64_NOPAD.encode(&s))?,
        5 => string(lua, B64.encode(&s))?,
        _ => match B64.decode(&s) {
            Ok(d) => string(lua, d)?,
            Err(_) => Value::Nil,
        },
    };
    out([v])
}

/// `(pattern, flags)` → index | nil, err (PCRE2's message, as OpenResty's).
fn re_compile(lua: &Lua, st: &RefCell<State>, a: MultiValue) -> Result<MultiValue> {
    let pat = bytes(&a, 0);
    let f = int(&a, 1) as u32;
    let options = OPTIONS.iter().filter(|(flag, _)| f & flag != 0).fold(0, |o, (_, opt)| o | opt);
    match Regex::new(&pat, options) {
        Ok(mut re) => {
            if f & JIT != 0 {
                re.jit();
            }
            let mut st = st.borrow_mut();
            if st.regexes.len() >= MAX_REGEXES {
                st.regexes.clear();
                return out([Value::Boolean(false)]);
            }
            st.regexes.push((re, f & DFA != 0));
            out([Value::Integer(st.regexes.len() as i64 - 1)])
        }
        Err(e) => {
            // OpenResty's form (on PCRE2), PCRE2's words: pcre2_compile()
            // failed: <msg> in "<pattern>", and at "<the rest>" if it stopped
            // before the end.
            let mut err = b"pcre2_compile() failed: ".to_vec();
            err.extend_from_slice(e.message.as_bytes());
            err.extend_from_slice(b" in \"");
            err.extend_from_slice(&pat);
            err.push(b'"');
            if let Some(rest) = pat.get(e.offset..).filter(|r| !r.is_empty()) {
                err.extend_from_slice(b" at \"");
                err.extend_from_slice(rest);
                err.push(b'"');
            }
            out([Value::Nil, string(lua, err)?])
        }
    }
}

/// `(index)` → the capture count and a table of the named groups {n = name}:
/// none with `d`, as in OpenResty (its DFA search gives the whole match alone).
fn re_info(lua: &Lua, st: &RefCell<State>, a: MultiValue) -> Result<MultiValue> {
    let st = st.borrow();
    let (re, dfa) = &st.regexes[int(&a, 0) as usize];
    let names = lua.create_table()?;
    if *dfa {
        return out([Value::Integer(0), Value::Table(names)]);
    }
    for (i, n) in re.names() {
        names.raw_set(i, lua.create_string(n)?)?;
    }
    out([Value::Integer(re.captures() as i64), Value::Table(names)])
}

/// `(index, subject, pos, caps)`: from byte `pos` (0-based), fills caps[2i+1],
/// caps[2i+2] with group i's 1-based start and end (false if unset); returns
/// true, or nothing if there is no match, or nil, err.
fn re_exec(lua: &Lua, st: &RefCell<State>, a: MultiValue) -> Result<MultiValue> {
    let Value::String(subj) = arg(&a, 1) else { return out([Value::Nil]) };
    let Value::Table(caps) = arg(&a, 3) else { return out([Value::Nil]) };
    let subj = subj.as_bytes();
    let pos = int(&a, 2).max(0) as usize;
    // The offsets leave the state before any Lua value is made: that may run
    // a finalizer that uses ngx.re.
    let offsets = {
        let st = &mut *st.borrow_mut();
        let (re, dfa) = &st.regexes[int(&a, 0) as usize];
        match st.matches.search(re, &subj, pos, *dfa) {
            Ok(None) => return out([]),
            Ok(Some(ov)) => {
                let mut o = std::mem::take(&mut st.offsets);
                o.clear();
                o.extend_from_slice(ov);
                o
            }
            // OpenResty's words: the code (PCRE2's, here).
            Err(rc) => return out([Value::Nil, string(lua, format!("pcre_exec() failed: {rc}"))?]),
        }
    };
    for (i, g) in offsets.chunks_exact(2).enumerate() {
        let (s, e) = match (g[0], g[1]) {
            (pcre::UNSET, _) | (_, pcre::UNSET) => (Value::Boolean(false), Value::Boolean(false)),
            (s, e) => (Value::Integer(s as i64 + 1), Value::Integer(e as i64)),
        };
        caps.raw_set(2 * i + 1, s)?;
        caps.raw_set(2 * i + 2, e)?;
    }
    st.borrow_mut().offsets = offsets;
    out([Value::Boolean(true)])
}

/// `(size)` → a new dictionary's index.
fn dict_new(_: &Lua, st: &RefCell<State>, a: MultiValue) -> Result<MultiValue> {
    let mut st = st.borrow_mut();
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
fn dict(lua: &Lua, st: &RefCell<State>, a: MultiValue) -> Result<MultiValue> {
    let mut st = st.borrow_mut();
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
fn size(_: &Lua, _: &RefCell<State>, a: MultiValue) -> Result<MultiValue> {
    let n = std::str::from_utf8(&bytes(&a, 0)).ok().and_then(shdict::parse_size);
    out([n.map_or(Value::Nil, |n| Value::Integer(n as i64))])
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

/// Puts `coevent.ngx` in `package.preload`: loading it runs ngx.lua with
/// `L`, the prelude's part for it (`from_prelude`) and the native functions.
pub fn preload(lua: &Lua, l: &Table, from_prelude: Table) -> Result<()> {
    let st = Rc::new(RefCell::new(State::default()));
    let native = lua.create_table()?;
    let fns: [(&str, Native); 7] = [
        ("digest", digest),
        ("re_compile", re_compile),
        ("re_info", re_info),
        ("re_exec", re_exec),
        ("dict_new", dict_new),
        ("dict", dict),
        ("size", size),
    ];
    for (name, f) in fns {
        let st = st.clone();
        native.raw_set(name, lua.create_function(move |lua, a: MultiValue| f(lua, &st, a))?)?;
    }
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
    #[test]
    fn base64_takes_missing_padding() {
        use base64::Engine as _;
        assert_eq!(super::B64.decode("aGk").unwrap(), b"hi");
        assert_eq!(super::B64.decode("aGk=").unwrap(), b"hi");
    }
}
