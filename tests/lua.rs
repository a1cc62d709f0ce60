//! Runs the Lua test scripts of tests/lua against the scripted peer (tests/peer):
//! in process (vendored Lua 5.4 through `coevent::open`), through the `coevent`
//! runner, and through the system interpreters lua5.4, lua5.1 and luajit with the
//! module built by `make module LUA=...` (ignored by default). Also tests the runner.
//!
//! Scripts count the fds of their process around each case, so:
//! - the peer runs in a child process (this test binary again, running only
//!   `serve_peer`), never beside an in-process script;
//! - an in-process script runs alone: it takes `GATE` for writing, and every test
//!   that starts a child process (pipes are fds) takes it for reading.

mod peer;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{OnceLock, RwLock, RwLockReadGuard};
use std::thread;
use std::time::{Duration, Instant};

use mlua::{Lua, Table};
use peer::Peer;

const TIME_LIMIT: Duration = Duration::from_secs(60);

static GATE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(|e| e.into_inner())
}

/// The peer's variables (`PEER_PORT`, ...), from the peer process started at first use.
fn peer() -> &'static [(String, String)] {
    static PEER: OnceLock<(Child, Vec<(String, String)>)> = OnceLock::new();
    &PEER.get_or_init(start_peer).1
}

/// Starts this binary again as the peer; it lives until its stdin closes (when
/// this process ends).
fn start_peer() -> (Child, Vec<(String, String)>) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "serve_peer", "--nocapture", "--test-threads", "1"])
        .env("COEVENT_SERVE_PEER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the peer process");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut vars = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("the peer's output");
        // The test harness may print `test serve_peer ... ` first on the line.
        let var = line.find("PEER ").map(|i| &line[i + 5..]);
        match var.map(|l| l.split_once(' ').unwrap_or((l, ""))) {
            Some(("ready", _)) => break,
            Some((k, v)) => vars.push((k.to_string(), v.to_string())),
            None => {}
        }
    }
    assert!(vars.iter().any(|(k, _)| k == "PEER_PORT"), "the peer process did not start");
    thread::spawn(move || lines.for_each(drop));
    (child, vars)
}

/// Not a test: the peer process (see `start_peer`); does nothing in a normal run.
#[test]
fn serve_peer() {
    if std::env::var_os("COEVENT_SERVE_PEER").is_none() {
        return;
    }
    let p = Peer::start();
    for (k, v) in p.vars() {
        println!("PEER {k} {v}");
    }
    println!("PEER ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(p);
    // Before the test harness writes to a stdout nobody reads any more.
    std::process::exit(0);
}

fn port(name: &str) -> u16 {
    peer().iter().find(|(k, _)| k == name).and_then(|(_, v)| v.parse().ok()).expect(name)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn lua_dir() -> PathBuf {
    root().join("tests").join("lua")
}

/// The last line a script prints: `N passed, M failed`.
fn check_summary(script: &str, out: &str) {
    let last = out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let ok = last.strip_suffix(" passed, 0 failed").and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n > 0);
    assert!(ok, "{script}: last line {last:?}, want \"N passed, 0 failed\"");
}

enum Msg {
    Line(String),
    Done(Result<(i64, i64), String>),
}

/// Runs a script in this process, alone, and checks that it returned `passed > 0, 0`.
fn in_process(script: &str) {
    let _alone = GATE.write().unwrap_or_else(|e| e.into_inner());
    let vars = peer().to_vec();
    let path = lua_dir().join(format!("{script}.lua"));
    let (tx, rx) = mpsc::channel();
    let t = tx.clone();
    thread::Builder::new()
        .name(script.into())
        .stack_size(16 << 20)
        .spawn(move || {
            let r = run_lua(&path, &vars, t.clone()).map_err(|e| e.to_string());
            let _ = t.send(Msg::Done(r));
        })
        .expect("spawn a Lua thread");
    drop(tx);
    let deadline = Instant::now() + TIME_LIMIT;
    let mut out = String::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Msg::Line(l)) => {
                println!("{l}");
                out.push_str(&l);
                out.push('\n');
            }
            Ok(Msg::Done(Ok((passed, failed)))) => {
                assert!(passed > 0 && failed == 0, "{script}: {passed} passed, {failed} failed");
                return check_summary(script, &out);
            }
            Ok(Msg::Done(Err(e))) => panic!("{script}: {e}"),
            Err(_) => panic!("{script}: no result within {TIME_LIMIT:?}"),
        }
    }
}

fn run_lua(path: &Path, vars: &[(String, String)], tx: Sender<Msg>) -> mlua::Result<(i64, i64)> {
    let lua = Lua::new();
    let package: Table = lua.globals().get("package")?;
    let lua_path: String = package.get("path")?;
    package.set("path", format!("{}/?.lua;{lua_path}", lua_dir().display()))?;
    lua.register_module("coevent", coevent::open(&lua)?)?;
    let g = lua.globals();
    for (k, v) in vars {
        g.set(k.as_str(), v.as_str())?;
    }
    // print goes to the test's captured output, line by line as it comes.
    let emit = lua.create_function(move |_, line: String| {
        let _ = tx.send(Msg::Line(line));
        Ok(())
    })?;
    let print: mlua::Function = lua
        .load("local emit = ...; return function(...) local t = {} for i = 1, select('#', ...) do t[i] = tostring((select(i, ...))) end emit(table.concat(t, '\\t')) end")
        .call(emit)?;
    g.set("print", print)?;
    let code = std::fs::read(path).map_err(mlua::Error::external)?;
    let name = path.strip_prefix(root()).unwrap_or(path);
    lua.load(code).set_name(format!("@{}", name.display())).call(())
}

/// Runs `cmd` with a time limit; returns (status, stdout, stderr).
fn output(mut cmd: Command, what: &str) -> (std::process::ExitStatus, String, String) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        let _ = tx.send((child.wait(), s));
    });
    let Ok((status, stdout)) = rx.recv_timeout(TIME_LIMIT) else {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        panic!("{what}: no result within {TIME_LIMIT:?}");
    };
    (status.expect("wait"), stdout, err.join().unwrap())
}

/// The newest modification time of the files a module is built from.
fn newest_source() -> std::time::SystemTime {
    fn walk(p: &Path, newest: &mut std::time::SystemTime) {
        let Ok(meta) = std::fs::metadata(p) else { return };
        if meta.is_dir() {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                walk(&e.path(), newest);
            }
        } else if let Ok(t) = meta.modified() {
            *newest = (*newest).max(t);
        }
    }
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for p in ["src", "ffi/src", "Cargo.toml", "ffi/Cargo.toml"] {
        walk(&root().join(p), &mut newest);
    }
    newest
}

/// Runs a script through an interpreter: a system Lua with the module built by
/// `make module LUA=<lua>` into build/<dir>, or (no module) the runner.
fn through(interp: &str, module: Option<(&str, &str)>, script: &str) {
    let _g = shared();
    let mut chunk = format!("package.path = '{}/?.lua;' .. package.path ", lua_dir().display());
    if let Some((dir, lua)) = module {
        let so = root().join("build").join(dir).join("coevent.so");
        let make = format!("make module LUA={lua}");
        let built = std::fs::metadata(&so).and_then(|m| m.modified());
        let built = built.unwrap_or_else(|_| panic!("{} is missing: run `{make}`", so.display()));
        assert!(built >= newest_source(), "{} is older than the sources: run `{make}`", so.display());
        chunk += &format!("package.cpath = '{}/?.so;' .. package.cpath ", so.parent().unwrap().display());
    }
    chunk += &format!(
        "local p, f = dofile('{}/{script}.lua') os.exit(((p or 0) > 0 and f == 0) and 0 or 1)",
        lua_dir().display()
    );
    let mut cmd = Command::new(interp);
    cmd.arg("-e").arg(chunk).current_dir(root());
    for (k, v) in peer() {
        cmd.env(format!("COEVENT_{k}"), v);
    }
    let (status, out, err) = output(cmd, &format!("{interp} on {script}.lua"));
    println!("{out}");
    eprintln!("{err}");
    assert!(status.success(), "{interp} {script}.lua: {status}");
    check_summary(script, &out);
}

const RUNNER: &str = env!("CARGO_BIN_EXE_coevent");

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        const SCRIPTS: &[&str] = &[$(stringify!($name)),*];
        mod in_process {
            $(#[test] fn $name() { super::in_process(stringify!($name)) })*
        }
        mod runner {
            $(#[test] fn $name() { super::through(super::RUNNER, None, stringify!($name)) })*
        }
        mod lua54 {
            $(#[test] #[ignore = "needs system Lua and make module"]
              fn $name() { super::through("lua5.4", Some(("lua5.4", "5.4")), stringify!($name)) })*
        }
        mod lua51 {
            $(#[test] #[ignore = "needs system Lua and make module"]
              fn $name() { super::through("lua5.1", Some(("lua5.1", "5.1")), stringify!($name)) })*
        }
        mod luajit {
            $(#[test] #[ignore = "needs system Lua and make module"]
              fn $name() { super::through("luajit", Some(("luajit", "jit")), stringify!($name)) })*
        }
    };
}

scripts!(receive, send, connect, timeout, threads, concurrency);

#[test]
fn every_script_is_listed() {
    let mut found: Vec<String> = std::fs::read_dir(lua_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".lua").map(String::from))
        .filter(|n| n != "harness")
        .collect();
    found.sort();
    let mut listed: Vec<&str> = SCRIPTS.to_vec();
    listed.sort();
    assert_eq!(found, listed, "tests/lua/*.lua and the scripts! list in tests/lua.rs differ");
}

fn runner(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut cmd = Command::new(RUNNER);
    cmd.args(args).current_dir(root());
    output(cmd, "the coevent runner")
}

fn temp_script(name: &str, code: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("coevent-test-{}-{name}.lua", std::process::id()));
    std::fs::write(&p, code).unwrap();
    p
}

#[test]
fn runner_error_in_unwaited_thread() {
    let _g = shared();
    let code = "local L = require('coevent')
local r = L(function()
  newthread(function()
    local function deep_inside() error('boom in an unwaited thread') end
    deep_inside()
  end)
  local t = newthread(function() swop() swop() return 'survivor' end)
  return coroutine_wait(t)
end)
print('result', r)";
    let (status, out, err) = runner(&["-e", code]);
    assert!(status.success(), "exit status {status}, stderr {err}");
    assert_eq!(out, "result\tsurvivor\n");
    assert!(err.contains("coevent: error in light thread: "), "stderr: {err}");
    assert!(err.contains("boom in an unwaited thread"), "stderr: {err}");
    assert!(err.contains("stack traceback:") && err.contains("deep_inside"), "no traceback in stderr: {err}");
}

#[test]
fn runner_eval() {
    let _g = shared();
    let (status, out, err) = runner(&["-e", "print(1+1)"]);
    assert!(status.success(), "{status} {err}");
    assert_eq!(out, "2\n");
}

#[test]
fn runner_script_error_exits_nonzero() {
    let _g = shared();
    let p = temp_script("error", "local x = 1\nerror('kaboom ' .. x)\n");
    let (status, out, err) = runner(&[p.to_str().unwrap()]);
    std::fs::remove_file(&p).unwrap();
    assert!(!status.success(), "exit status {status}");
    assert_eq!(out, "");
    assert!(err.contains("kaboom 1"), "stderr: {err}");
    assert!(err.contains(&format!("{}:2:", p.display())), "no position in stderr: {err}");

    let (status, _, err) = runner(&["-e", "error('eval kaboom')"]);
    assert!(!status.success() && err.contains("eval kaboom"), "{status} {err}");
    let (status, _, err) = runner(&["-e", "syntax error here"]);
    assert!(!status.success() && !err.is_empty(), "{status} {err}");
}

#[test]
fn runner_error_of_the_loop_exits_nonzero() {
    let _g = shared();
    let code = "local L = require('coevent') L(function() swop() error('loop kaboom') end)";
    let (status, _, err) = runner(&["-e", code]);
    assert!(!status.success(), "exit status {status}");
    assert!(err.contains("loop kaboom") && err.contains("stack traceback:"), "stderr: {err}");
}

#[test]
fn runner_sets_arg() {
    let _g = shared();
    let p = temp_script("arg", "print(arg[0], arg[1], arg[2], arg[3], select('#', ...), ...)\n");
    let (status, out, err) = runner(&[p.to_str().unwrap(), "a", "b c"]);
    std::fs::remove_file(&p).unwrap();
    assert!(status.success(), "{status} {err}");
    assert_eq!(out, format!("{}\ta\tb c\tnil\t2\ta\tb c\n", p.display()));

    let (status, out, _) = runner(&["-e", "print(arg[1], ...)", "x"]);
    assert!(status.success());
    assert_eq!(out, "x\tx\n");
}

#[test]
fn runner_usage() {
    let _g = shared();
    let (status, _, err) = runner(&[]);
    assert!(!status.success());
    assert!(err.contains("usage"), "stderr: {err}");
    let (status, _, err) = runner(&["/nonexistent/script.lua"]);
    assert!(!status.success() && err.contains("/nonexistent/script.lua"), "{status} {err}");
}

/// The peer itself, from Rust: what the Lua scripts rely on.
#[test]
fn peer_behaves() {
    let _g = shared();
    let p = port("PEER_PORT");
    let all = |cmd: &str| {
        let mut s = peer::connect(p, cmd);
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v
    };
    assert_eq!(all("lines"), peer::LINES);
    assert_eq!(all("bytes 1000"), (0..1000).map(peer::pattern).collect::<Vec<_>>());
    assert_eq!(all("split 1000 7"), (0..1000).map(peer::pattern).collect::<Vec<_>>());
    assert_eq!(all("drip a\\nb"), b"a\nb");
    assert_eq!(all("close"), b"");
    assert_eq!(all("drain 0"), b"ok 0\n");
    assert_eq!(all("drain 5"), b"short at 0\n");
    assert_eq!(all("ping"), b"");
    assert!(peer().iter().any(|(k, _)| k == "PEER_FULL_PORT"), "could not fill a listener's accept queue");
}
