//! Names from Lua: `L.resolve(name)`, `L.config{...}`, and the lookup step
//! `connect` shares. The resolver itself is in `coevent_ffi::resolver`.

use std::net::SocketAddr;

use coevent_ffi::addr::{self, ip_literal, Host};
use coevent_ffi::reactor::{Reason, Token};
use coevent_ffi::resolver::{Config, Error, Lookup, Resolver};
use mlua::{Lua, Result, Table, Value};

use crate::engine::{Core, Engine, BUSY};
use crate::op::{On, Pending};
use crate::ret::{bad_arg, expected, fail, raise, ret, Ret, NOT_IN_LOOP};

/// Looks `name` up: the hosts file, the cache, or a query to wait for. The
/// resolver is made at the loop's first lookup.
pub fn lookup(core: &mut Core, name: &str) -> Lookup {
    let Some(r) = core.r.as_mut() else { return Lookup::Done(Err(Error::NoSuchHost)) };
    if core.res.is_none() {
        match Resolver::new(&core.dns) {
            Ok(new) => core.res = Some(new),
            Err(e) => return Lookup::Done(Err(e)),
        }
    }
    core.res.as_mut().expect("made above").lookup(r, name)
}

/// `L.resolve(name)` → a list of address strings | nil, err. Woken by its
/// query's end, it finds the answer the scheduler kept for it.
pub fn resolve(lua: &Lua, eng: &Engine, name: Value) -> Result<Ret> {
    if eng.current().is_none() {
        return raise(lua, NOT_IN_LOOP);
    }
    let Value::String(s) = &name else {
        return bad_arg(lua, 1, "resolve", &expected("string", &name));
    };
    // Names are bytes: one that is no host name resolves to nothing.
    let bytes = s.as_bytes();
    let answer = match eng.answer.take() {
        Some(a) => a,
        None => match addr::parse_host(&bytes) {
            Ok(Host::Ip(ip)) => Ok(vec![ip]),
            Ok(Host::Name(n)) => {
                let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
                match lookup(&mut core, n) {
                    Lookup::Done(a) => a,
                    Lookup::Wait(q) => return eng.park(Pending { on: On::Resolve(q), op: None }),
                }
            }
            Ok(Host::Unix(_)) | Err(_) => Err(Error::NoSuchHost),
        },
    };
    let ips = match answer {
        Ok(ips) => ips,
        Err(e) => return fail(lua, e.as_str()),
    };
    let list = lua.create_table_with_capacity(ips.len(), 0)?;
    for ip in ips {
        list.raw_push(ip.to_string())?;
    }
    ret(Value::Table(list))
}

/// `L.config{ resolv_conf = path, hosts = path, nameservers = {'ip[:port]', ...},
/// dns_cache_size = n }` and the `ssl_*` keys (`socket::tls::configure`). Any key left out goes back to its default. Takes
/// effect for the next lookup.
pub fn config(lua: &Lua, eng: &Engine, t: Value) -> Result<Ret> {
    let Value::Table(t) = &t else {
        return bad_arg(lua, 1, "config", &expected("table", &t));
    };
    let mut cfg = Config::default();
    let mut ssl = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let key = match &k {
            Value::String(k) => k.to_string_lossy(),
            // A __tostring that gives no UTF-8 leaves the type (mlua's conversion error is no answer).
            _ => {
                let k = k.to_string().unwrap_or_else(|_| crate::ret::type_name(&k).to_string());
                return bad_arg(lua, 1, "config", &format!("unknown option '{k}'"));
            }
        };
        match (key.as_str(), &v) {
            (k, _) if k.starts_with("ssl_") => ssl.push((key, v)),
            ("resolv_conf", Value::String(p)) => cfg.resolv_conf = Some(p.to_string_lossy()),
            ("hosts", Value::String(p)) => cfg.hosts = Some(p.to_string_lossy()),
            ("nameservers", Value::Table(list)) => match nameservers(list) {
                Ok(ns) => cfg.nameservers = Some(ns),
                Err(msg) => return bad_arg(lua, 1, "config", &msg),
            },
            ("dns_cache_size", v) => match crate::ret::number(lua, v) {
                Some(n) if n >= 0.0 && n.fract() == 0.0 => cfg.cache_size = Some(n.min(usize::MAX as f64) as usize),
                _ => return bad_arg(lua, 1, "config", "dns_cache_size: a whole number >= 0 expected"),
            },
            ("resolv_conf" | "hosts", v) => {
                return bad_arg(lua, 1, "config", &format!("{key}: {}", expected("string", v)));
            }
            ("nameservers", v) => return bad_arg(lua, 1, "config", &format!("{key}: {}", expected("table", v))),
            _ => return bad_arg(lua, 1, "config", &format!("unknown option '{key}'")),
        }
    }
    let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
    if let Err(msg) = crate::socket::tls::configure(lua, &mut core, &ssl) {
        drop(core);
        return bad_arg(lua, 1, "config", &msg);
    }
    core.dns = cfg;
    // The next lookup builds a resolver from the new settings; threads waiting
    // on the old one's queries wake and look up again.
    if let (Some(mut res), Some(r)) = (core.res.take(), core.r.as_mut()) {
        let mut woken = Vec::new();
        res.abort(r, &mut woken);
        core.woken.extend(woken.into_iter().map(|t| (Token::Thread(t), Reason::Ready)));
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
