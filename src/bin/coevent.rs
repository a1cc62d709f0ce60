//! `coevent`: a Lua interpreter (vendored Lua) with `require('coevent')` built in,
//! like OpenResty's `resty`. `coevent script.lua [args...]` or `coevent -e 'chunk'`.
//!
//! SIGINT and SIGTERM close every listener (a second one ends the process).
//! `coevent -w N script.lua`: N worker processes run the script (servers share
//! a port with `reuseport`), as nginx's worker_processes; the parent passes
//! SIGINT and SIGTERM on as SIGTERM, restarts none, and exits 0 if all did.

use std::process::ExitCode;

use mlua::{Error, Function, Lua, Result, Table};

const USAGE: &str = "usage: coevent [-w N] script.lua [args...] | coevent [-w N] -e 'chunk' [args...]";

use coevent_ffi::sys::process;

fn run(args: &[String]) -> Result<()> {
    let lua = Lua::new();
    let preload: Table = lua.globals().get::<Table>("package")?.get("preload")?;
    preload.set("coevent", lua.create_function(|lua, ()| coevent::open(lua))?)?;

    let (chunk, name, script_args) = match args {
        [flag, code, rest @ ..] if flag == "-e" => (code.clone().into_bytes(), "=(command line)".to_string(), rest),
        [path, rest @ ..] if path != "-e" => {
            let code = std::fs::read(path).map_err(|e| Error::runtime(format!("cannot open {path}: {e}")))?;
            (code, format!("@{path}"), rest)
        }
        _ => return Err(Error::runtime(USAGE)),
    };
    // `arg` as lua(1) sets it: arg[0] the script, arg[1..] its arguments.
    let arg = lua.create_table()?;
    arg.raw_set(-1, std::env::args().next().unwrap_or_default())?;
    arg.raw_set(0, name.trim_start_matches(['@', '=']))?;
    for (i, a) in script_args.iter().enumerate() {
        arg.raw_set(i + 1, a.as_str())?;
    }
    lua.globals().set("arg", arg)?;
    let f: Function = lua.load(chunk).set_name(name).into_function()?;
    f.call::<()>(mlua::Variadic::from_iter(script_args.iter().map(|a| a.as_str())))
}

/// Runs `args` in `n` worker processes; the parent waits for them all.
fn workers(n: usize, args: &[String]) -> ExitCode {
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
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = process::catch_stop_signals() {
        eprintln!("coevent: signals: {e}");
    }
    if args.first().is_some_and(|a| a == "-w") {
        match args.get(1).and_then(|n| n.parse::<usize>().ok()).filter(|&n| n > 0 && n <= process::MAX_WORKERS) {
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
