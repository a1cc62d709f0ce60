//! `coevent`: a Lua interpreter (vendored Lua) with `require('coevent')` built in,
//! like OpenResty's `resty`. `coevent script.lua [args...]` or `coevent -e 'chunk'`.

use std::process::ExitCode;

use mlua::{Error, Function, Lua, Result, Table};

const USAGE: &str = "usage: coevent script.lua [args...] | coevent -e 'chunk' [args...]";

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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
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
