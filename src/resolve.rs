//! Names from Lua: `L.resolve(name)`, and the lookup step
//! `connect` shares. The resolver itself is in `coevent_engine::resolver`.

use coevent_engine::addr::{self, Host};
use coevent_engine::reactor::{Reason, Token};
use coevent_engine::resolver::{Config, Error, Lookup, Resolver};
use mlua::{Lua, Result, Value};

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

/// New settings for the resolver (`L.config`): the next lookup builds a
/// resolver from them; threads waiting on the old one's queries wake and
/// look up again.
pub fn reconfigure(core: &mut Core, dns: Config) {
    core.dns = dns;
    if let (Some(mut res), Some(r)) = (core.res.take(), core.r.as_mut()) {
        let mut woken = Vec::new();
        res.abort(r, &mut woken);
        core.woken.extend(woken.into_iter().map(|t| (Token::Thread(t), Reason::Ready)));
    }
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
