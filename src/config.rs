//! `L.config{...}`: the one reader of its table. Every key is read here, and
//! each part is handed its settings: the resolver its `Config`
//! (`resolve::reconfigure`), the TLS client its `Settings`, and coevent.ngx,
//! when loaded, its own keys (`split`).

use std::net::SocketAddr;

use coevent_engine::addr::ip_literal;
use coevent_engine::resolver::Config;
#[cfg(feature = "tls")]
use coevent_engine::tls::Settings;
use mlua::{Lua, Result, Table, Value};

use crate::engine::{Engine, BUSY};
use crate::resolve;
use crate::ret::{bad_arg, expected, raise, ret, Ret};
#[cfg(not(feature = "tls"))]
use crate::socket::tls::NOT_BUILT;

/// `L.config{ resolv_conf = path, hosts = path, nameservers = {'ip[:port]', ...},
/// dns_cache_size = n }` and the `ssl_*` keys (`option`). Any key left out
/// goes back to its default. Takes effect for the next lookup and handshake.
pub fn config(lua: &Lua, eng: &Engine, t: Value) -> Result<Ret> {
    let Value::Table(t) = &t else {
        return bad_arg(lua, 1, "config", &expected("table", &t));
    };
    let mut dns = Config::default();
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
            ("resolv_conf", Value::String(p)) => dns.resolv_conf = Some(p.to_string_lossy()),
            ("hosts", Value::String(p)) => dns.hosts = Some(p.to_string_lossy()),
            ("nameservers", Value::Table(list)) => match nameservers(list) {
                Ok(ns) => dns.nameservers = Some(ns),
                Err(msg) => return bad_arg(lua, 1, "config", &msg),
            },
            ("dns_cache_size", v) => match crate::ret::number(lua, v) {
                Some(n) if n >= 0.0 && n.fract() == 0.0 => dns.cache_size = Some(n.min(usize::MAX as f64) as usize),
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
    // TLS first: a bad `ssl_*` key leaves the resolver's settings as they were.
    let tls = tls(lua, &ssl);
    #[cfg(feature = "tls")]
    let tls = tls.and_then(|s| core.tls.configure(s));
    if let Err(msg) = tls {
        drop(core);
        return bad_arg(lua, 1, "config", &msg);
    }
    resolve::reconfigure(&mut core, dns);
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

/// One `ssl_*` key of `L.config` into `s`; Err: the message for its bad argument.
#[cfg(feature = "tls")]
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

/// The TLS client's settings from `L.config`'s `ssl_*` keys, taken as a
/// whole (any left out goes back to its default). Err: the message for
/// `config`'s bad argument.
#[cfg(feature = "tls")]
fn tls(lua: &Lua, keys: &[(String, Value)]) -> std::result::Result<Settings, String> {
    let mut s = Settings::default();
    for (k, v) in keys {
        option(lua, &mut s, k, v)?;
    }
    Ok(s)
}

#[cfg(not(feature = "tls"))]
fn tls(_: &Lua, keys: &[(String, Value)]) -> std::result::Result<(), String> {
    match keys.first() {
        Some((k, _)) => Err(format!("{k}: {NOT_BUILT}")),
        None => Ok(()),
    }
}

/// The keys of `L.config` that coevent.ngx reads (src/ngx.lua): its log
/// level and its shared dictionaries.
#[cfg(feature = "ngx")]
const NGX_KEYS: [&[u8]; 2] = [b"log_level", b"shared_dict"];

/// With coevent.ngx loaded, its `L.config(options)` asks `split(options)`
/// for `{k1, v1, k2, v2, ...}`, its own keys and values in the table's
/// order, and a table of the other keys (nil if none) for `config`. So
/// ngx's keys take effect, or raise, before coevent's are read.
#[cfg(feature = "ngx")]
fn split(lua: &Lua, t: &Table) -> Result<(Table, Option<Table>)> {
    let (mine, rest) = (lua.create_table()?, lua.create_table()?);
    let mut any = false;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        match &k {
            Value::String(s) if NGX_KEYS.contains(&&*s.as_bytes()) => {
                mine.raw_push(k)?;
                mine.raw_push(v)?;
            }
            _ => {
                rest.raw_set(k, v)?;
                any = true;
            }
        }
    }
    Ok((mine, any.then_some(rest)))
}

/// Puts `split` in the prelude's part for ngx.lua, as `config`.
#[cfg(feature = "ngx")]
pub fn for_ngx(lua: &Lua, part: &Table) -> Result<()> {
    part.raw_set("config", lua.create_function(|lua, t: Table| split(lua, &t))?)
}
