//! Names from Lua: `L.resolve(name)`, `L.config{...}`, and the lookup step
//! `connect` shares. The resolver itself is in `coevent_ffi::resolver`.

use std::net::{IpAddr, SocketAddr};

use coevent_ffi::addr::ip_literal;
use coevent_ffi::resolver::{Config, Lookup, Resolver};
use mlua::{Lua, Result, Table, Value};

use crate::engine::{bad_arg, expected, fail, raise, ret, Engine, Pending, Ret, NOT_IN_LOOP};

/// What a lookup step came to.
pub enum Step {
    Done(std::result::Result<Vec<IpAddr>, &'static str>),
    /// Park on `Pending::Resolve(q)`, then step again.
    Wait(u32),
}

/// Looks `name` up for the running thread: first the answer it was woken
/// for, if any; else the hosts file, the cache, or a query to wait for.
pub fn step(eng: &Engine, name: &str) -> Step {
    let tok = eng.current().expect("inside a loop");
    let mut res = eng.resolver.borrow_mut();
    if res.is_none() {
        match Resolver::new(&eng.dns.borrow()) {
            Ok(new) => *res = Some(new),
            Err(e) => return Step::Done(Err(e.as_str())),
        }
    }
    let res = res.as_mut().expect("made above");
    let mut r = eng.reactor.borrow_mut();
    let r = r.as_mut().expect("loop running");
    let found = match res.take_result(tok, name) {
        Some(a) => Lookup::Done(a),
        None => res.lookup(r, name),
    };
    match found {
        Lookup::Done(a) => Step::Done(a.map_err(|e| e.as_str())),
        Lookup::Wait(q) => Step::Wait(q),
    }
}

/// `L.resolve(name)` → a list of address strings | nil, err.
pub fn resolve(lua: &Lua, eng: &Engine, name: Value) -> Result<Ret> {
    if eng.current().is_none() {
        return raise(lua, NOT_IN_LOOP);
    }
    let Value::String(s) = &name else {
        return bad_arg(lua, 1, "resolve", &expected("string", &name));
    };
    let s = s.to_str()?.to_string();
    let ips = match ip_literal(&s) {
        Some(ip) => vec![ip],
        None => match step(eng, &s) {
            Step::Done(Ok(ips)) => ips,
            Step::Done(Err(e)) => return fail(lua, e),
            Step::Wait(q) => return eng.park(Pending::Resolve(q)),
        },
    };
    let list = lua.create_table_with_capacity(ips.len(), 0)?;
    for ip in ips {
        list.raw_push(ip.to_string())?;
    }
    ret(Value::Table(list))
}

/// `L.config{ resolv_conf = path, hosts = path, nameservers = {'ip[:port]', ...} }`.
/// Any key left out goes back to its default. Takes effect for the next lookup.
pub fn config(lua: &Lua, eng: &Engine, t: Value) -> Result<Ret> {
    let Value::Table(t) = &t else {
        return bad_arg(lua, 1, "config", &expected("table", &t));
    };
    let mut cfg = Config::default();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let key = match &k {
            Value::String(k) => k.to_string_lossy(),
            _ => return bad_arg(lua, 1, "config", &format!("unknown option '{}'", k.to_string()?)),
        };
        match (key.as_str(), &v) {
            ("resolv_conf", Value::String(p)) => cfg.resolv_conf = Some(p.to_string_lossy()),
            ("hosts", Value::String(p)) => cfg.hosts = Some(p.to_string_lossy()),
            ("nameservers", Value::Table(list)) => match nameservers(list) {
                Ok(ns) => cfg.nameservers = Some(ns),
                Err(msg) => return bad_arg(lua, 1, "config", &msg),
            },
            ("resolv_conf" | "hosts", v) => {
                return bad_arg(lua, 1, "config", &format!("{key}: {}", expected("string", v)));
            }
            ("nameservers", v) => return bad_arg(lua, 1, "config", &format!("{key}: {}", expected("table", v))),
            _ => return bad_arg(lua, 1, "config", &format!("unknown option '{key}'")),
        }
    }
    *eng.dns.borrow_mut() = cfg;
    // The next lookup builds a resolver from the new settings; threads waiting
    // on the old one's queries wake and look up again.
    if let Some(mut res) = eng.resolver.borrow_mut().take() {
        let mut woken = Vec::new();
        if let Some(r) = eng.reactor.borrow_mut().as_mut() {
            res.abort(r, &mut woken);
        }
        eng.sched.borrow_mut().ready(&woken);
    }
    ret(Value::Nil)
}

/// `'1.2.3.4'`, `'1.2.3.4:5353'`, `'::1'`, `'[::1]:5353'`; port 53 by default.
/// The error is the whole message for `bad argument #1 to 'config' (...)`.
fn nameservers(list: &Table) -> std::result::Result<Vec<SocketAddr>, String> {
    let mut out = Vec::new();
    for v in list.sequence_values::<Value>() {
        let v = v.map_err(|e| e.to_string())?;
        let Value::String(s) = &v else { return Err(format!("nameservers: {}", expected("string", &v))) };
        let s = s.to_string_lossy();
        let addr = s.parse::<SocketAddr>().ok().or_else(|| ip_literal(&s).map(|ip| (ip, 53).into()));
        out.push(addr.ok_or_else(|| format!("bad nameserver '{s}'"))?);
    }
    if out.is_empty() {
        return Err("nameservers: none given".into());
    }
    Ok(out)
}
