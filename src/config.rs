//! `L.config{...}`: its table read, and each part handed its settings.

use std::net::SocketAddr;

use coevent_ffi::addr::ip_literal;
use coevent_ffi::reactor::{Reason, Token};
use coevent_ffi::resolver::Config;
#[cfg(feature = "tls")]
use coevent_ffi::tls::Settings;
use mlua::{Lua, Result, Table, Value};

use crate::engine::{Engine, BUSY};
use crate::ret::{bad_arg, expected, raise, ret, Ret};
#[cfg(not(feature = "tls"))]
use crate::socket::tls::NOT_BUILT;

/// `L.config{ resolv_conf = path, hosts = path, nameservers = {'ip[:port]', ...},
/// dns_cache_size = n }` and the `ssl_*` keys (`configure`). Any key left out goes back to its default. Takes
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
    if let Err(msg) = configure(lua, &mut core, &ssl) {
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

#[cfg(feature = "tls")]
/// One `ssl_*` key of `L.config` into `s`; Err: the message for its bad argument.
fn option(lua: &Lua, s: &mut Settings, key: &str, v: &Value) -> std::result::Result<(), String> {
    let string = |v: &Value| match v {
        Value::String(p) => Ok(p.to_string_lossy()),
        v => Err(format!("{key}: {}", expected("string", v))),
    };
    match key {
        "ssl_trusted_certificate" => s.trusted_certificate = Some(string(v)?),
        "ssl_ciphers" => s.ciphers = Some(string(v)?),
        "ssl_verify_depth" => match crate::ret::number(lua, v) {
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= f64::from(i32::MAX) => s.verify_depth = Some(n as u32),
            _ => return Err(format!("{key}: a whole number >= 0 expected")),
        },
        "ssl_protocols" => {
            let Value::Table(t) = v else { return Err(format!("{key}: {}", expected("table", v))) };
            let mut list = Vec::new();
            for p in t.sequence_values::<Value>() {
                list.push(string(&p.map_err(|e| e.to_string())?)?);
            }
            s.protocols = Some(list);
        }
        _ => return Err(format!("unknown option '{key}'")),
    }
    Ok(())
}

/// `L.config`'s `ssl_*` keys, taken as a whole (any left out goes back to
/// its default). Err: the message for `config`'s bad argument.
#[cfg(feature = "tls")]
fn configure(lua: &Lua, core: &mut crate::engine::Core, keys: &[(String, Value)]) -> std::result::Result<(), String> {
    let mut s = coevent_ffi::tls::Settings::default();
    for (k, v) in keys {
        option(lua, &mut s, k, v)?;
    }
    core.tls.configure(s)
}

#[cfg(not(feature = "tls"))]
fn configure(_: &Lua, _: &mut crate::engine::Core, keys: &[(String, Value)]) -> std::result::Result<(), String> {
    match keys.first() {
        Some((k, _)) => Err(format!("{k}: {NOT_BUILT}")),
        None => Ok(()),
    }
}
