//! What the drivers of the Lua test scripts share (tests/lua.rs, tests/dns.rs,
//! tests/faults.rs): the servers' child process, running a script in process
//! (vendored Lua 5.4 through `coevent::open`) or through the `coevent` runner or
//! a system interpreter (lua5.4, lua5.3, lua5.1, luajit with the module of `make module`,
//! lua5.4 under valgrind), the summary line check, the list check, the time limit.
//!
//! Each driver defines `static SUITE: common::Suite` (its servers, its scripts)
//! and lists its scripts with `common::scripts!`.
//!
//! Scripts count the fds of their process around each case, so:
//! - the servers run in a child process (the test binary again, running only
//!   `serve_<marker>`), never beside an in-process script;
//! - an in-process script runs alone: it takes `GATE` for writing, and every test
//!   that makes fds in this process (pipes to a child are fds) takes it for
//!   reading (or for writing, when it needs the machine to itself).

// Each driver uses a part of this module.
#![allow(dead_code)]

pub mod dnsmasq;
pub mod redis;

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use mlua::{Lua, Table};

/// A driver's servers (tests/peer, tests/dnspeer): they run in a child process,
/// the test binary again running only the test `serve_<marker, lower case>` with
/// `COEVENT_SERVE_<marker>` set (its body: `serve`); it prints
/// `<marker> <name> <value>` lines, then `<marker> ready`.
pub struct Servers {
    pub marker: &'static str,
    /// The servers, in messages: "the peer".
    pub what: &'static str,
    /// A variable the servers always print; `hint` is added to "did not start".
    pub required: &'static str,
    pub hint: &'static str,
}

/// A driver's servers and scripts.
pub struct Suite {
    pub servers: Servers,
    /// The scripts: tests/lua/<dir>/<name>.lua.
    pub dir: &'static str,
    /// `package.path` for the scripts: these directories of tests/lua ("": itself), in order.
    pub path: &'static [&'static str],
    /// The `.lua` files of `dir` that the `scripts!` list leaves out.
    pub not_listed: &'static [&'static str],
    /// `(env, var)`: a run in a child process also gets `env` set to the servers' `var`.
    pub env: &'static [(&'static str, &'static str)],
    pub time_limit: Duration,
    /// Runs through lua5.4 go under valgrind when COEVENT_VALGRIND=1, and every
    /// child run gets COEVENT_VALGRIND set to 1 or 0.
    pub valgrind: bool,
}

/// Under valgrind a script runs 20 to 50 times slower.
pub const VALGRIND_TIME_LIMIT: Duration = Duration::from_secs(900);

pub const RUNNER: &str = env!("CARGO_BIN_EXE_coevent");

/// The system interpreters: the binary, and the module of `make module LUA=<lua>` in build/<dir>.
pub const LUA54: (&str, Option<(&str, &str)>) = ("lua5.4", Some(("lua5.4", "5.4")));
pub const LUA53: (&str, Option<(&str, &str)>) = ("lua5.3", Some(("lua5.3", "5.3")));
pub const LUA51: (&str, Option<(&str, &str)>) = ("lua5.1", Some(("lua5.1", "5.1")));
pub const LUAJIT: (&str, Option<(&str, &str)>) = ("luajit", Some(("luajit", "jit")));
/// lua5.4 with the module of `make module LUA=5.4 PROFILE=small TLS=0`.
pub const LUA54_SMALL: (&str, Option<(&str, &str)>) =
    ("lua5.4", Some(("lua5.4-small-notls", "5.4 PROFILE=small TLS=0")));
/// lua5.4 with the module of `make module LUA=5.4 PROFILE=small BUILD_STD=1 TLS=0`.
pub const LUA54_SMALL_STD: (&str, Option<(&str, &str)>) =
    ("lua5.4", Some(("lua5.4-small-std-notls", "5.4 PROFILE=small BUILD_STD=1 TLS=0")));

/// Whether std's sources (rustup's rust-src) are there for the BUILD_STD=1
/// modules: without them `make modules` skips those, and so do their tests.
pub fn has_rust_src() -> bool {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().expect("rustc");
    let src = Path::new(String::from_utf8_lossy(&sysroot.stdout).trim()).join("lib/rustlib/src/rust/library");
    if !src.is_dir() {
        println!("skipped: no rust-src (rustup component add rust-src) for make module BUILD_STD=1");
    }
    src.is_dir()
}

/// Through lua5.4 and the BUILD_STD=1 module.
pub fn through_std(script: &str) {
    if has_rust_src() {
        through(LUA54_SMALL_STD.0, LUA54_SMALL_STD.1, script);
    }
}

fn suite() -> &'static Suite {
    &crate::SUITE
}

static GATE: RwLock<()> = RwLock::new(());

pub fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(|e| e.into_inner())
}

pub fn alone() -> RwLockWriteGuard<'static, ()> {
    GATE.write().unwrap_or_else(|e| e.into_inner())
}

pub fn valgrind() -> bool {
    std::env::var("COEVENT_VALGRIND").is_ok_and(|v| v == "1")
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn lua_dir() -> PathBuf {
    root().join("tests").join("lua")
}

/// tests/lua/<suite dir>.
pub fn scripts_dir() -> PathBuf {
    lua_dir().join(suite().dir)
}

/// `package.path` for the scripts (to go before the default one).
fn lua_path() -> String {
    let dir = |d: &str| if d.is_empty() { lua_dir() } else { lua_dir().join(d) };
    suite().path.iter().map(|d| format!("{}/?.lua;", dir(d).display())).collect()
}

/// The servers' variables, from the child process started at first use.
pub fn peer() -> &'static [(String, String)] {
    static PEER: OnceLock<(Child, Vec<(String, String)>)> = OnceLock::new();
    &PEER.get_or_init(start_peer).1
}

pub fn var(name: &str) -> Option<&'static str> {
    peer().iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub fn port(name: &str) -> u16 {
    var(name).and_then(|v| v.parse().ok()).expect(name)
}

/// Starts this binary again as the servers; they live until its stdin closes
/// (when this process ends).
fn start_peer() -> (Child, Vec<(String, String)>) {
    let s = &suite().servers;
    let exe = std::env::current_exe().expect("the test binary");
    let test = format!("serve_{}", s.marker.to_lowercase());
    let mut child = Command::new(exe)
        .args(["--exact", &test, "--nocapture", "--test-threads", "1"])
        .env(format!("COEVENT_SERVE_{}", s.marker), "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {} process: {e}", s.what));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut vars = Vec::new();
    let marker = format!("{} ", s.marker);
    for line in lines.by_ref() {
        let line = line.unwrap_or_else(|e| panic!("{}'s output: {e}", s.what));
        // The test harness may print `test serve_... ` first on the line.
        let var = line.find(&marker).map(|i| &line[i + marker.len()..]);
        match var.map(|l| l.split_once(' ').unwrap_or((l, ""))) {
            Some(("ready", _)) => break,
            Some((k, v)) => vars.push((k.to_string(), v.to_string())),
            None => {}
        }
    }
    assert!(vars.iter().any(|(k, _)| k == s.required), "{} process did not start{}", s.what, s.hint);
    thread::spawn(move || lines.for_each(drop));
    (child, vars)
}

/// The body of the test `serve_<marker>`: in the servers' process (see
/// `start_peer`), starts them, prints their variables and serves until stdin
/// closes; does nothing in a normal run.
pub fn serve<P>(start: impl FnOnce() -> (P, Vec<(&'static str, String)>)) {
    let marker = suite().servers.marker;
    if std::env::var_os(format!("COEVENT_SERVE_{marker}")).is_none() {
        return;
    }
    let (p, vars) = start();
    for (k, v) in vars {
        println!("{marker} {k} {v}");
    }
    println!("{marker} ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(p);
    // Before the test harness writes to a stdout nobody reads any more.
    std::process::exit(0);
}

/// For the servers: a thread that takes connections (`accept`) until `stop` is
/// set, handing each to `each`.
pub fn accept_each<C>(
    mut accept: impl FnMut() -> std::io::Result<C> + Send + 'static,
    stop: Arc<AtomicBool>,
    each: impl Fn(C) + Send + 'static,
) {
    thread::spawn(move || loop {
        let c = accept();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if let Ok(c) = c {
            each(c);
        }
    });
}

/// `accept_each` on a TCP listener, with TCP_NODELAY.
pub fn accept_tcp(l: TcpListener, stop: Arc<AtomicBool>, each: impl Fn(TcpStream) + Send + 'static) {
    let each = move |c: TcpStream| {
        let _ = c.set_nodelay(true);
        each(c)
    };
    accept_each(move || l.accept().map(|(c, _)| c), stop, each);
}

/// `accept_each` on a unix listener.
pub fn accept_unix(l: UnixListener, stop: Arc<AtomicBool>, each: impl Fn(UnixStream) + Send + 'static) {
    accept_each(move || l.accept().map(|(c, _)| c), stop, each);
}

/// The last line a script prints: `N passed, M failed`, with `, K skipped`
/// when cases skipped (tests/lua/harness.lua). Returns (passed, failed, skipped).
pub fn summary(line: &str) -> Option<(u32, u32, u32)> {
    let (counts, skipped) = match line.split_once(", ") {
        Some((p, rest)) => match rest.split_once(", ") {
            Some((f, s)) => ((p, f), s.strip_suffix(" skipped")?.parse().ok()?),
            None => ((p, rest), 0),
        },
        None => return None,
    };
    let passed = counts.0.strip_suffix(" passed")?.parse().ok()?;
    let failed = counts.1.strip_suffix(" failed")?.parse().ok()?;
    Some((passed, failed, skipped))
}

/// A script's last line says none failed and some ran (a script whose every
/// case skipped, e.g. one that needs LuaJIT's ffi on PUC Lua, passes too).
pub fn check_summary(script: &str, out: &str) {
    let last = out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let ok = summary(last).is_some_and(|(p, f, s)| f == 0 && p + s > 0);
    assert!(ok, "{script}: last line {last:?}, want \"N passed, 0 failed\" (and \", K skipped\" if any)");
}

/// The `.lua` files of `dir` but `skip` are those of `listed`.
pub fn assert_listed(dir: &Path, skip: &[&str], listed: &[&str], msg: &str) {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".lua").map(String::from))
        .filter(|n| !skip.contains(&n.as_str()))
        .collect();
    found.sort();
    let mut listed = listed.to_vec();
    listed.sort();
    assert_eq!(found, listed, "{msg}");
}

enum Msg {
    Line(String),
    Done(Result<(i64, i64, Option<i64>), String>),
}

/// Runs a script in this process, alone, and checks that it returned
/// `passed, 0, skipped` with some passed or skipped, and printed so.
pub fn in_process(script: &str) {
    let _alone = alone();
    let limit = suite().time_limit;
    let vars = peer().to_vec();
    let path = scripts_dir().join(format!("{script}.lua"));
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
    let deadline = Instant::now() + limit;
    let mut out = String::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Msg::Line(l)) => {
                println!("{l}");
                out.push_str(&l);
                out.push('\n');
            }
            Ok(Msg::Done(Ok((passed, failed, skipped)))) => {
                let skipped = skipped.unwrap_or(0);
                assert!(
                    passed + skipped > 0 && failed == 0,
                    "{script}: {passed} passed, {failed} failed, {skipped} skipped"
                );
                return check_summary(script, &out);
            }
            Ok(Msg::Done(Err(e))) => panic!("{script}: {e}"),
            Err(_) => panic!("{script}: no result within {limit:?}"),
        }
    }
}

fn run_lua(path: &Path, vars: &[(String, String)], tx: Sender<Msg>) -> mlua::Result<(i64, i64, Option<i64>)> {
    let lua = Lua::new();
    let package: Table = lua.globals().get("package")?;
    let old: String = package.get("path")?;
    package.set("path", format!("{}{old}", lua_path()))?;
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

/// Runs `cmd` with a time limit (killing it by pid past the limit), printing its
/// stdout as it comes; returns (status, stdout, stderr).
pub fn output(mut cmd: Command, what: &str, limit: Duration) -> (ExitStatus, String, String) {
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
        // Line by line, printed as it comes (the soak reports as it goes), kept
        // byte for byte (a missing last newline too).
        let (mut s, mut so) = (String::new(), BufReader::new(&mut so));
        let mut line = String::new();
        while so.read_line(&mut line).is_ok_and(|n| n > 0) {
            println!("{}", line.strip_suffix('\n').unwrap_or(&line));
            s.push_str(&line);
            line.clear();
        }
        let _ = tx.send((child.wait(), s));
    });
    let Ok((status, stdout)) = rx.recv_timeout(limit) else {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        panic!("{what}: no result within {limit:?}");
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
    for p in ["src", "engine/src", "Cargo.toml", "engine/Cargo.toml"] {
        walk(&root().join(p), &mut newest);
    }
    newest
}

/// How to run a script in a child process.
pub struct Run<'a> {
    /// The runner, or a system interpreter with the module of `make module LUA=<lua>` in build/<dir>.
    pub interp: &'a str,
    pub module: Option<(&'a str, &'a str)>,
    /// The script: <dir>/<script>.lua (dir: the suite's scripts by default).
    pub dir: PathBuf,
    pub script: &'a str,
    /// Shell commands run first (`ulimit -n 64`), then the interpreter is exec'd.
    pub shell: Option<&'a str>,
    /// Under valgrind (lua5.4 only).
    pub valgrind: bool,
    pub env: Vec<(String, String)>,
    /// The time limit, if not the suite's (VALGRIND_TIME_LIMIT under valgrind).
    pub limit: Option<Duration>,
}

impl<'a> Run<'a> {
    pub fn new(interp: &'a str, module: Option<(&'a str, &'a str)>, script: &'a str) -> Run<'a> {
        Run { interp, module, dir: scripts_dir(), script, shell: None, valgrind: false, env: Vec::new(), limit: None }
    }

    /// Runs it; checks the exit status and the summary line (valgrind's report
    /// too). Returns stdout.
    pub fn run(&self) -> String {
        let s = suite();
        let mut chunk = format!("package.path = '{}' .. package.path ", lua_path());
        if let Some((dir, lua)) = self.module {
            let so = root().join("build").join(dir).join("coevent.so");
            let make = format!("make module LUA={lua}");
            let built = std::fs::metadata(&so).and_then(|m| m.modified());
            let built = built.unwrap_or_else(|_| panic!("{} is missing: run `{make}`", so.display()));
            assert!(built >= newest_source(), "{} is older than the sources: run `{make}`", so.display());
            chunk += &format!("package.cpath = '{}/?.so;' .. package.cpath ", so.parent().unwrap().display());
        }
        let file = self.dir.join(format!("{}.lua", self.script));
        if self.valgrind {
            // lua.c closes the state when the chunk returns: the module's sockets and
            // engine are freed under valgrind's eyes. Failed cases show in the summary.
            chunk += &format!("dofile('{}')", file.display());
        } else {
            chunk += &format!(
                "local p, f, s = dofile('{}') os.exit(((p or 0) + (s or 0) > 0 and f == 0) and 0 or 1)",
                file.display()
            );
        }
        let mut argv: Vec<String> = Vec::new();
        if self.valgrind {
            argv.extend(
                [
                    "valgrind",
                    "--leak-check=full",
                    "--errors-for-leak-kinds=definite",
                    "--show-leak-kinds=definite",
                    "--error-exitcode=1",
                    "--num-callers=40",
                    // The module is dlclosed before the report: keep its symbols for it.
                    "--keep-debuginfo=yes",
                ]
                .map(String::from),
            );
        }
        argv.extend([self.interp.to_string(), "-e".into(), chunk]);
        let mut cmd = match self.shell {
            Some(sh) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(format!("{sh} && exec \"$0\" \"$@\"")).args(&argv);
                c
            }
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.current_dir(root());
        for (k, v) in peer() {
            cmd.env(format!("COEVENT_{k}"), v);
        }
        for (env, name) in s.env {
            cmd.env(env, var(name).unwrap_or_else(|| panic!("no {name} from {}", s.servers.what)));
        }
        if s.valgrind {
            cmd.env("COEVENT_VALGRIND", if self.valgrind { "1" } else { "0" });
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let shown = file.strip_prefix(lua_dir()).unwrap_or(&file).with_extension("");
        let what = format!("{} on {}.lua", self.interp, shown.display());
        let limit = self.limit.unwrap_or(if self.valgrind { VALGRIND_TIME_LIMIT } else { s.time_limit });
        let (status, out, err) = output(cmd, &what, limit);
        eprintln!("{err}");
        if self.valgrind {
            let summary = err.lines().rev().find(|l| l.contains("ERROR SUMMARY:")).unwrap_or("");
            let lost = err.lines().find(|l| l.contains("definitely lost:") || l.contains("no leaks are possible"));
            println!(
                "valgrind, {what}: {}; {}",
                summary.split("== ").last().unwrap_or(""),
                lost.unwrap_or("").split("== ").last().unwrap_or("")
            );
            assert!(summary.contains("ERROR SUMMARY: 0 errors"), "{what} under valgrind: {summary:?}");
            if let Some(lost) = lost {
                assert!(
                    !lost.contains("definitely lost:") || lost.contains("definitely lost: 0 bytes in 0 blocks"),
                    "{what} under valgrind: {lost}"
                );
            }
        }
        assert!(status.success(), "{what}: {status}");
        check_summary(self.script, &out);
        out
    }
}

/// A script through an interpreter (the runner: no module); lua5.4 under
/// valgrind when the suite allows it and COEVENT_VALGRIND=1.
pub fn through(interp: &str, module: Option<(&str, &str)>, script: &str) {
    let _g = shared();
    let mut r = Run::new(interp, module, script);
    r.valgrind = suite().valgrind && interp == "lua5.4" && valgrind();
    r.run();
}

/// The tests of the scripts `$name` of the suite: `in_process::$name`,
/// `runner::$name`, and (ignored) `lua54::$name`, `lua53::$name`,
/// `lua51::$name`, `luajit::$name`; and `every_script_is_listed`. The size
/// variants of the module get a smoke run of their own (tests/lua.rs, `make size`).
macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        const SCRIPTS: &[&str] = &[$(stringify!($name)),*];
        mod in_process {
            $(#[test] fn $name() { crate::common::in_process(stringify!($name)) })*
        }
        mod runner {
            use crate::common::{through, RUNNER};
            $(#[test] fn $name() { through(RUNNER, None, stringify!($name)) })*
        }
        mod lua54 {
            use crate::common::{through, LUA54};
            $(#[test] #[ignore = "needs system Lua and make module"]
              fn $name() { through(LUA54.0, LUA54.1, stringify!($name)) })*
        }
        mod lua53 {
            use crate::common::{through, LUA53};
            $(#[test] #[ignore = "needs system Lua and make module"]
              fn $name() { through(LUA53.0, LUA53.1, stringify!($name)) })*
        }
        mod lua51 {
            use crate::common::{through, LUA51};
            $(#[test] #[ignore = "needs system Lua and make module"]
              fn $name() { through(LUA51.0, LUA51.1, stringify!($name)) })*
        }
        mod luajit {
            use crate::common::{through, LUAJIT};
            $(#[test] #[ignore = "needs system Lua and make module"]
              fn $name() { through(LUAJIT.0, LUAJIT.1, stringify!($name)) })*
        }

        #[test]
        fn every_script_is_listed() {
            // Reading the directory opens an fd: not while a script counts them.
            let _g = crate::common::shared();
            let dir = crate::common::scripts_dir();
            let shown = std::path::Path::new("tests/lua").join(crate::SUITE.dir).join("*.lua");
            let msg = format!("{} and the scripts! list in {} differ", shown.display(), file!());
            crate::common::assert_listed(&dir, crate::SUITE.not_listed, SCRIPTS, &msg);
        }
    };
}
pub(crate) use scripts;
