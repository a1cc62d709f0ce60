//! `coevent`: a Lua interpreter (vendored Lua) with `require('coevent')` built in,
//! like OpenResty's `resty`. `coevent script.lua [args...]` or `coevent -e 'chunk'`.
//!
//! SIGINT and SIGTERM close every listener (a second one ends the process).
//! `coevent -w N script.lua`: N worker processes run the script (servers share
//! a port with `reuseport`), as nginx's worker_processes; the parent passes
//! SIGINT and SIGTERM on as SIGTERM, restarts none, and exits 0 if all did.

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::ExitCode;

use mlua::{Error, Function, Lua, Result, Table, Value};

const USAGE: &str = "usage: coevent [-w N] [--ngx [--shdict 'name size']... [--errlog-level level]] script.lua [args...] | coevent [...] -e 'chunk' [args...]";

use coevent_engine::sys::process;

/// `--ngx`: the script runs as OpenResty's `resty` runs one (docs/ngx.md).
#[derive(Default)]
struct Ngx {
    on: bool,
    shdicts: Vec<Arg>,
    errlog_level: Option<Arg>,
}

/// A command-line argument: bytes, as lua(1) takes them (not always UTF-8).
type Arg = Vec<u8>;

/// `-e`'s chunk name, or a path as lua(1) shows it.
fn shown(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}

/// Takes the leading options off `args`.
fn options(mut args: &[Arg]) -> Result<(Ngx, &[Arg])> {
    let mut ngx = Ngx::default();
    loop {
        match args {
            [flag, ..] if flag == b"--ngx" => ngx.on = true,
            [flag, v, ..] if flag == b"--shdict" => ngx.shdicts.push(v.clone()),
            [flag, v, ..] if flag == b"--errlog-level" => ngx.errlog_level = Some(v.clone()),
            _ => break,
        }
        args = &args[if args[0] == b"--ngx" { 1 } else { 2 }..];
    }
    if !ngx.on && (!ngx.shdicts.is_empty() || ngx.errlog_level.is_some()) {
        return Err(Error::runtime("--shdict and --errlog-level go with --ngx"));
    }
    Ok((ngx, args))
}

/// `f` inside coevent.ngx's loop (`M.run`), after the dictionaries and the log level are set.
fn run_ngx(lua: &Lua, ngx: &Ngx, f: Function, args: Vec<mlua::LuaString>) -> Result<()> {
    let run: Function = lua
        .load(
            r#"local f, dicts, level = ...
            local L, M = require('coevent'), require('coevent.ngx')
            local shared = {}
            for _, d in ipairs(dicts) do
              local name, size = d:match('^%s*(%S+)%s+(%S+)%s*$')
              if not name then error("--shdict: 'name size' expected, got '" .. d .. "'", 0) end
              shared[name] = size
            end
            L.config({ shared_dict = shared, log_level = level })
            -- M.run's error comes with its traceback: shown as it is, not
            -- with a second one from here.
            local ok, err = pcall(M.run, f, select(4, ...))
            if not ok then return err end"#,
        )
        .set_name("=coevent --ngx")
        .into_function()?;
    let dicts =
        lua.create_sequence_from(ngx.shdicts.iter().map(|s| lua.create_string(s)).collect::<Result<Vec<_>>>()?)?;
    let level = lua.create_string(ngx.errlog_level.as_deref().unwrap_or(b"warn"))?;
    let err: Value = run.call((f, dicts, level, mlua::Variadic::from_iter(args)))?;
    let msg = match err {
        Value::Nil => return Ok(()),
        Value::String(s) => s.to_string_lossy(),
        e @ (Value::Integer(_) | Value::Number(_)) => e.to_string()?,
        // As lua(1) words it.
        e => format!("(error object is a {} value)", e.type_name()),
    };
    Err(Error::runtime(msg))
}

fn run(args: &[Arg]) -> Result<()> {
    let lua = Lua::new();
    let preload: Table = lua.globals().get::<Table>("package")?.get("preload")?;
    preload.set("coevent", lua.create_function(|lua, ()| coevent::open(lua))?)?;

    let (ngx, args) = options(args)?;
    let (chunk, name, arg0, script_args) = match args {
        [flag, code, rest @ ..] if flag == b"-e" => {
            (code.clone(), "=(command line)".to_string(), b"(command line)".to_vec(), rest)
        }
        [path, rest @ ..] if path != b"-e" => {
            let code = std::fs::read(OsStr::from_bytes(path))
                .map_err(|e| Error::runtime(format!("cannot open {}: {e}", shown(path))))?;
            (code, format!("@{}", shown(path)), path.clone(), rest)
        }
        _ => return Err(Error::runtime(USAGE)),
    };
    // `arg` as lua(1) sets it: arg[0] the script, arg[1..] its arguments.
    let arg = lua.create_table()?;
    arg.raw_set(-1, lua.create_string(std::env::args_os().next().unwrap_or_default().into_vec())?)?;
    arg.raw_set(0, lua.create_string(arg0)?)?;
    let script_args = script_args.iter().map(|a| lua.create_string(a)).collect::<Result<Vec<_>>>()?;
    for (i, a) in script_args.iter().enumerate() {
        arg.raw_set(i + 1, a)?;
    }
    lua.globals().set("arg", arg)?;
    let f: Function = lua.load(chunk).set_name(name).into_function()?;
    if ngx.on {
        return run_ngx(&lua, &ngx, f, script_args);
    }
    f.call::<()>(mlua::Variadic::from_iter(script_args))
}

/// Runs `args` in `n` worker processes; the parent waits for them all.
fn workers(n: usize, args: &[Arg]) -> ExitCode {
    let mut pids = Vec::new();
    for i in 0..n {
        match process::fork_worker(i) {
            Ok(None) => return finish(run(args)),
            Ok(Some(pid)) => pids.push(pid),
            Err(e) => {
                eprintln!("coevent: fork: {e}");
                pids.iter().for_each(|&p| process::terminate(p));
                break;
            }
        }
    }
    // The signal handler passes SIGINT and SIGTERM on to the workers.
    let mut ok = pids.len() == n;
    while !pids.is_empty() {
        match process::wait_child() {
            Ok((pid, fine)) => {
                pids.retain(|&p| p != pid);
                ok &= fine;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let mut args: Vec<Arg> = std::env::args_os().skip(1).map(OsStringExt::into_vec).collect();
    if let Err(e) = process::catch_stop_signals() {
        eprintln!("coevent: signals: {e}");
    }
    if args.first().is_some_and(|a| a == b"-w") {
        let n = args.get(1).and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
        match n.filter(|&n| n > 0 && n <= process::MAX_WORKERS) {
            Some(n) => return workers(n, &args.split_off(2)),
            None => return finish(Err(Error::runtime(USAGE))),
        }
    }
    finish(run(&args))
}

fn finish(r: Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = match &e {
                Error::RuntimeError(m) => m.clone(),
                Error::SyntaxError { message, .. } => message.clone(),
                Error::CallbackError { traceback, cause } => format!("{cause}\n{traceback}"),
                e => e.to_string(),
            };
            eprintln!("coevent: {msg}");
            ExitCode::FAILURE
        }
    }
}
