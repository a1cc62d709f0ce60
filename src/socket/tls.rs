//! `sslhandshake` and `setclientcert` on a stream socket: arguments in, the
//! session out. The TLS session is the engine's (`coevent_engine::tls`); a
//! build without the `tls` feature answers `nil, "tls not built in"`.

use std::rc::Rc;

use coevent_engine::sockets::Id;
use mlua::{Lua, Result, Value};

use crate::engine::{Engine, Wake};
use crate::ret::{fail, Ret};

#[cfg(not(feature = "tls"))]
pub const NOT_BUILT: &str = "tls not built in";

/// `sslhandshake(reused_session, server_name, ssl_verify, send_status_req)`.
/// Returns `true` when no session is to be returned, or for the session the
/// caller passed (a pooled connection: the prelude returns that object),
/// else the new session's number for `session` to wrap.
#[cfg(not(feature = "tls"))]
pub fn sslhandshake(lua: &Lua, _: &Engine, _: Id, _: Value, _: [Value; 3]) -> Result<Ret> {
    fail(lua, NOT_BUILT)
}

#[cfg(not(feature = "tls"))]
pub fn setclientcert(lua: &Lua, _: &Engine, _: Id, _: Value, _: Value) -> Result<Ret> {
    fail(lua, NOT_BUILT)
}

#[cfg(not(feature = "tls"))]
pub fn session(lua: &Lua, _: &Rc<Engine>, _: Value) -> Result<Ret> {
    fail(lua, NOT_BUILT)
}

#[cfg(not(feature = "tls"))]
pub fn handshake_woken(lua: &Lua, _: &Engine, _: Id, _: bool, _: Wake) -> Result<Ret> {
    fail(lua, NOT_BUILT)
}

#[cfg(feature = "tls")]
pub use built::*;

#[cfg(feature = "tls")]
mod built {
    use super::*;

    use coevent_engine::stream::{Cx, State, Step};
    use coevent_engine::tls::{ClientCert, Hello, SessionKey};
    use mlua::AnyUserData;

    use crate::engine::{Held, BUSY};
    use crate::op::{On, Op, Pending};
    use crate::ret::{bad_arg, expected, raise, ret, NOT_IN_LOOP};
    use crate::socket::args::{collected, of, Guard};

    /// The session a Lua value stands for (a session object), if any.
    fn session_key(v: &Value) -> Option<SessionKey> {
        let Value::UserData(ud) = v else { return None };
        match ud.borrow::<Guard>().ok()?.held {
            Held::Session(k) => Some(k),
            _ => None,
        }
    }

    pub fn sslhandshake(
        lua: &Lua,
        eng: &Engine,
        id: Id,
        reused: Value,
        [name, verify, status]: [Value; 3],
    ) -> Result<Ret> {
        // As OpenResty: anything but a session or false is no session.
        let keep = !matches!(reused, Value::Boolean(false));
        let resume = session_key(&reused);
        let name = match &name {
            Value::Nil | Value::Boolean(false) => None,
            Value::String(s) => Some(s.to_string_lossy()),
            Value::Integer(_) | Value::Number(_) => lua.coerce_string(name.clone())?.map(|s| s.to_string_lossy()),
            v => return bad_arg(lua, 2, "sslhandshake", &expected("string", v)),
        };
        let truthy = |v: &Value| !matches!(v, Value::Nil | Value::Boolean(false));
        let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
        let core = &mut *core;
        let Some(sock) = core.table.get(id) else {
            return collected(lua, "sslhandshake");
        };
        let Some(r) = core.r.as_mut() else { return raise(lua, NOT_IN_LOOP) };
        let ctx = match core.tls.context() {
            Ok(ctx) => ctx.clone(),
            Err(e) => return fail(lua, &e),
        };
        let timeout = sock.timeouts.connect;
        let s = of(sock);
        if matches!(s.state, State::Fresh) {
            return raise(lua, "socket is never created nor connected");
        }
        let resume = resume.and_then(|k| core.tls.sessions.get(k)).cloned();
        // Lent out of the stream while its handshake borrows it.
        let cert = s.cert.take();
        let hello = Hello {
            ctx: &ctx,
            name: name.as_deref(),
            verify: truthy(&verify),
            status: truthy(&status),
            cert: cert.as_deref(),
            resume: resume.as_deref(),
            keep,
        };
        let step = s.handshake(&mut Cx { r, spare: &mut core.spare, woken: &mut core.woken }, Some(hello));
        s.cert = cert;
        // A pooled connection given its session back: the prelude returns that object.
        if let (Step::Done(true), Some(_)) = (&step, resume) {
            return ret(Value::Boolean(true));
        }
        handshaking(lua, eng, core, id, keep, timeout, step)
    }

    /// What a handshake's step comes to, for Lua.
    fn handshaking(
        lua: &Lua,
        eng: &Engine,
        core: &mut crate::engine::Core,
        id: Id,
        keep: bool,
        timeout: Option<u64>,
        step: Step<bool>,
    ) -> Result<Ret> {
        match step {
            Step::Done(_) if !keep => ret(Value::Boolean(true)),
            Step::Done(_) => {
                let sess = core.table.get(id).and_then(|sock| of(sock).tls_session());
                match sess {
                    Some(sess) => ret(Value::Integer(core.tls.sessions.insert(sess).number())),
                    None => fail(lua, "closed"),
                }
            }
            Step::Wait(side, dir) => {
                let src = core.table.get(id).and_then(|sock| of(sock).src()).expect("a connected stream");
                eng.park(Pending { on: On::Io(src, side, dir, timeout), op: Some(Op::Handshake(id, keep)) })
            }
            Step::Fail(e) => fail(lua, &e.message()),
        }
    }

    /// The rest of `sslhandshake` after a wait.
    pub fn handshake_woken(lua: &Lua, eng: &Engine, id: Id, keep: bool, wake: Wake) -> Result<Ret> {
        let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
        let core = &mut *core;
        let Ok((sock, mut cx)) = core.sock(id) else { return fail(lua, "closed") };
        let timeout = sock.timeouts.connect;
        let s = of(sock);
        let step = match wake {
            Wake::Ready | Wake::Answer(_) => s.handshake(&mut cx, None),
            Wake::Timeout => Step::Fail(s.handshake_timed_out(&mut cx)),
            Wake::Closed(_) => return fail(lua, "closed"),
        };
        handshaking(lua, eng, core, id, keep, timeout, step)
    }

    /// Wraps session number `n` (as `sslhandshake` returned it) in the
    /// object Lua holds; its collection frees the session.
    pub fn session(lua: &Lua, eng: &Rc<Engine>, n: Value) -> Result<Ret> {
        let Value::Integer(n) = n else { return raise(lua, "bad session") };
        let ud: AnyUserData = lua.create_userdata(Guard::new(eng, Held::Session(SessionKey::from(n))))?;
        ret(Value::UserData(ud))
    }

    /// `setclientcert(cert, key)`: PEM strings (OpenResty takes parsed
    /// cdata; coevent has no FFI, so it parses them). Both nil: none.
    pub fn setclientcert(lua: &Lua, eng: &Engine, id: Id, cert: Value, key: Value) -> Result<Ret> {
        let cc = match (&cert, &key) {
            (Value::Nil, Value::Nil) => None,
            (Value::Nil, _) | (_, Value::Nil) => {
                return fail(lua, "client certificate must be supplied with corresponding private key")
            }
            (Value::String(c), Value::String(k)) => match ClientCert::from_pem(&c.as_bytes(), &k.as_bytes()) {
                Ok(cc) => Some(Box::new(cc)),
                Err(e) => return fail(lua, &e),
            },
            (Value::String(_), v) => return fail(lua, &format!("bad pkey arg: {}", expected("string", v))),
            (v, _) => return fail(lua, &format!("bad cert arg: {}", expected("string", v))),
        };
        let Some(mut core) = eng.core() else { return raise(lua, BUSY) };
        let Some(sock) = core.table.get(id) else {
            drop(core);
            return collected(lua, "setclientcert");
        };
        of(sock).cert = cc;
        ret(Value::Boolean(true))
    }
}
