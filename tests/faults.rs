//! The reliability suite.
//!
//! - The fault scripts of tests/lua/faults (resets, half-closes, silent and slow
//!   peers, a full accept queue, a peer that reads nothing, closes and kills
//!   under waiters, timeouts racing readiness), each fault hitting one thread
//!   while 50 others do round trips: run in process (vendored Lua 5.4), through
//!   the `coevent` runner, and (ignored by default) through lua5.4, lua5.1 and
//!   luajit with the modules `make modules` builds.
//! - Fd exhaustion: tests/lua/faults/nofile.lua under `ulimit -n 64`, through the
//!   runner and the system interpreters.
//! - 10,000 concurrent connections to a redis-server started here
//!   (tests/lua/faults/tenk.lua through the runner, RLIMIT_NOFILE raised to
//!   25000 or the hard limit), with the memory each idle connection costs
//!   printed (ignored by default: it needs redis-server).
//! - `make valgrind` (COEVENT_VALGRIND=1): the lua5.4 runs of the fault scripts
//!   and the scripts of tests/lua go through valgrind, failing on any error it
//!   reports (invalid reads or writes, uninitialised values) or a definite leak.
//! - `make soak` (COEVENT_SOAK_SECONDS): tests/soak/soak.lua through the runner
//!   against redis-server and the peer (ignored by default; without the
//!   variable it runs 10 seconds).
//!
//! As in tests/lua.rs, the scripts count their process's fds, so the peer runs in
//! a child process (this binary again, running only `serve_peer`), an in-process
//! script runs alone (it takes `GATE` for writing), and every test that starts a
//! child process takes `GATE` for reading (or for writing, when it needs the
//! machine to itself: 10,000 connections, the soak).

mod peer;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use mlua::{Lua, Table};
use peer::Peer;

const TIME_LIMIT: Duration = Duration::from_secs(120);
/// Under valgrind a script runs 20 to 50 times slower.
const VALGRIND_TIME_LIMIT: Duration = Duration::from_secs(900);

static GATE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> RwLockWriteGuard<'static, ()> {
    GATE.write().unwrap_or_else(|e| e.into_inner())
}

fn valgrind() -> bool {
    std::env::var("COEVENT_VALGRIND").is_ok_and(|v| v == "1")
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
    std::process::exit(0);
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn lua_dir() -> PathBuf {
    root().join("tests").join("lua")
}

fn faults_dir() -> PathBuf {
    lua_dir().join("faults")
}

/// `package.path` for the scripts: the fault helpers, then the harness.
fn lua_path() -> String {
    format!("{}/?.lua;{}/?.lua;", faults_dir().display(), lua_dir().display())
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

/// Runs a fault script in this process, alone, and checks that it returned `passed > 0, 0`.
fn in_process(script: &str) {
    let _alone = alone();
    let vars = peer().to_vec();
    let path = faults_dir().join(format!("{script}.lua"));
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
    let old: String = package.get("path")?;
    package.set("path", format!("{}{old}", lua_path()))?;
    lua.register_module("coevent", coevent::open(&lua)?)?;
    let g = lua.globals();
    for (k, v) in vars {
        g.set(k.as_str(), v.as_str())?;
    }
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
fn output(mut cmd: Command, what: &str, limit: Duration) -> (std::process::ExitStatus, String, String) {
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
        // Line by line, printed as it comes (the soak reports as it goes).
        let mut s = String::new();
        for line in BufReader::new(&mut so).lines().map_while(Result::ok) {
            println!("{line}");
            s.push_str(&line);
            s.push('\n');
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
    for p in ["src", "ffi/src", "Cargo.toml", "ffi/Cargo.toml"] {
        walk(&root().join(p), &mut newest);
    }
    newest
}

const RUNNER: &str = env!("CARGO_BIN_EXE_coevent");

/// How to run a script in a child process.
struct Run<'a> {
    /// The runner, or a system interpreter with the module of `make module LUA=<lua>` in build/<dir>.
    interp: &'a str,
    module: Option<(&'a str, &'a str)>,
    /// The script: tests/lua/faults/<script>.lua, or tests/lua/<script>.lua.
    dir: PathBuf,
    script: &'a str,
    /// Shell commands run first (`ulimit -n 64`), then the interpreter is exec'd.
    shell: Option<&'a str>,
    /// Under valgrind (lua5.4 only).
    valgrind: bool,
    env: Vec<(String, String)>,
    /// The time limit, if not TIME_LIMIT (VALGRIND_TIME_LIMIT under valgrind).
    limit: Option<Duration>,
}

impl<'a> Run<'a> {
    fn new(interp: &'a str, module: Option<(&'a str, &'a str)>, script: &'a str) -> Run<'a> {
        Run { interp, module, dir: faults_dir(), script, shell: None, valgrind: false, env: Vec::new(), limit: None }
    }

    /// Runs it; checks the exit status and the summary line (valgrind's report
    /// too). Returns stdout.
    fn run(&self) -> String {
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
            chunk +=
                &format!("local p, f = dofile('{}') os.exit(((p or 0) > 0 and f == 0) and 0 or 1)", file.display());
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
        cmd.env("COEVENT_VALGRIND", if self.valgrind { "1" } else { "0" });
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let what = format!("{} on {}.lua", self.interp, self.script);
        let limit = self.limit.unwrap_or(if self.valgrind { VALGRIND_TIME_LIMIT } else { TIME_LIMIT });
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

/// A fault script through an interpreter; lua5.4 under valgrind when COEVENT_VALGRIND=1.
fn through(interp: &str, module: Option<(&str, &str)>, script: &str) {
    let _g = shared();
    let mut r = Run::new(interp, module, script);
    r.valgrind = interp == "lua5.4" && valgrind();
    r.run();
}

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

scripts!(reset, halfclose, stall, closing, race);

/// Scripts of tests/lua/faults with a test of their own (below), and the helpers.
const SPECIAL: &[&str] = &["nofile", "tenk", "support"];

#[test]
fn every_script_is_listed() {
    let mut found: Vec<String> = std::fs::read_dir(faults_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".lua").map(String::from))
        .filter(|n| !SPECIAL.contains(&n.as_str()))
        .collect();
    found.sort();
    let mut listed: Vec<&str> = SCRIPTS.to_vec();
    listed.sort();
    assert_eq!(found, listed, "tests/lua/faults/*.lua and the scripts! list in tests/faults.rs differ");
}

fn port(name: &str) -> u16 {
    peer().iter().find(|(k, _)| k == name).and_then(|(_, v)| v.parse().ok()).expect(name)
}

/// The peer commands the fault scripts added, from Rust.
#[test]
fn peer_fault_commands() {
    use std::io::Write;
    use std::net::{Shutdown, TcpStream};
    let _g = shared();
    let p = port("PEER_PORT");
    let all = |cmd: &str| {
        let mut s = peer::connect(p, cmd);
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v
    };
    assert_eq!(all("closeafter 0 a\\nb c"), b"a\nb c");
    assert_eq!(all("slow 1 abc"), b"abc");
    let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
    s.write_all(b"lateecho 1000\nxyz").unwrap();
    let mut b = [0u8; 3];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"xyz");
    drop(s);
    let key = format!("rust-{}", std::process::id());
    let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
    s.write_all(format!("halfclose {key} hi\n").as_bytes()).unwrap();
    let mut got = [0u8; 2];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi");
    assert_eq!(s.read(&mut got).unwrap(), 0, "the peer shut down its writing side");
    s.write_all(&(0..1000).map(peer::pattern).collect::<Vec<u8>>()).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(all(&format!("tally {key}")), b"ok 1000\n");
}

/// The scripts of tests/lua under valgrind (`make valgrind`); without
/// COEVENT_VALGRIND=1 they say so and pass (tests/lua.rs runs them plainly).
mod valgrind {
    fn run(script: &str) {
        if !super::valgrind() {
            println!("skipped: set COEVENT_VALGRIND=1 (make valgrind) to run tests/lua/{script}.lua under valgrind");
            return;
        }
        let _g = super::shared();
        let mut r = super::Run::new("lua5.4", Some(("lua5.4", "5.4")), script);
        r.dir = super::lua_dir();
        r.valgrind = true;
        r.run();
    }
    macro_rules! base {
        ($($name:ident),*) => {
            pub const BASE: &[&str] = &[$(stringify!($name)),*];
            $(#[test] #[ignore = "needs valgrind, lua5.4 and make module; run by make valgrind"]
              fn $name() { run(stringify!($name)) })*
        };
    }
    base!(receive, send, connect, timeout, threads, concurrency);
}

/// Outside `mod valgrind`, which `make test` skips.
#[test]
fn valgrind_lists_every_script() {
    let mut found: Vec<String> = std::fs::read_dir(lua_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".lua").map(String::from))
        .filter(|n| n != "harness")
        .collect();
    found.sort();
    let mut listed = valgrind::BASE.to_vec();
    listed.sort();
    assert_eq!(found, listed, "tests/lua/*.lua and the base! list in tests/faults.rs differ");
}

/// tests/lua/faults/nofile.lua with RLIMIT_NOFILE at 64.
fn nofile(interp: &str, module: Option<(&str, &str)>) {
    let _g = shared();
    let mut r = Run::new(interp, module, "nofile");
    r.shell = Some("ulimit -n 64");
    r.run();
}

#[test]
fn nofile_runner() {
    nofile(RUNNER, None)
}

#[test]
#[ignore = "needs system Lua and make module"]
fn nofile_lua54() {
    nofile("lua5.4", Some(("lua5.4", "5.4")))
}

#[test]
#[ignore = "needs system Lua and make module"]
fn nofile_lua51() {
    nofile("lua5.1", Some(("lua5.1", "5.1")))
}

#[test]
#[ignore = "needs system Lua and make module"]
fn nofile_luajit() {
    nofile("luajit", Some(("luajit", "jit")))
}

/// A redis-server on a free port of 127.0.0.1, stopped (by pid) when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts redis-server with RLIMIT_NOFILE raised to `nofile` (see
    /// `raise_nofile`); waits for its "Ready to accept connections" line.
    fn start(nofile: u32, maxclients: u32) -> Redis {
        let which = Command::new("sh").args(["-c", "command -v redis-server"]).output();
        assert!(
            which.is_ok_and(|o| o.status.success()),
            "redis-server is missing (Debian: apt-get install redis-server)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{} && exec \"$0\" \"$@\"", raise_nofile(nofile)))
            .arg("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--maxclients", &maxclients.to_string(), "--logfile", "", "--daemonize", "no"])
            .args(["--tcp-backlog", "4096", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start redis-server");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut log = Vec::new();
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) => {
                    let ready = l.contains("Ready to accept connections");
                    log.push(l);
                    if ready {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let mut e = String::new();
                    let _ = child.stderr.take().unwrap().read_to_string(&mut e);
                    let _ = child.wait();
                    panic!("redis-server did not start:\n{}\n{e}", log.join("\n"));
                }
            }
        }
        for l in log.iter().filter(|l| l.contains("maxclients") || l.contains("max number of open files")) {
            println!("redis-server: {l}");
        }
        thread::spawn(move || rx.iter().for_each(drop));
        Redis { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Shell commands that raise RLIMIT_NOFILE to `n`, or to the hard limit if that
/// is lower and cannot be raised (a root without CAP_SYS_RESOURCE).
fn raise_nofile(n: u32) -> String {
    format!(
        "ulimit -Hn {n} 2>/dev/null; h=$(ulimit -Hn); n={n}; \
         if [ \"$h\" != unlimited ] && [ \"$h\" -lt {n} ]; then n=$h; fi; ulimit -n $n"
    )
}

/// The RLIMIT_NOFILE `raise_nofile(n)` gets; fails below `need`.
fn require_nofile(n: u32, need: u32) -> u32 {
    let o = Command::new("sh").arg("-c").arg(format!("{} && ulimit -n", raise_nofile(n))).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let got = out.trim().parse::<u32>().unwrap_or(0);
    assert!(
        o.status.success() && got >= need,
        "RLIMIT_NOFILE can go to {got} only, {need} needed (run as root, or raise the hard limit): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    got
}

/// A `KEY value` line the script printed.
fn figure<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {key} line in the output"))
}

/// tests/lua/faults/tenk.lua: 10,000 connections to redis-server at once.
fn ten_thousand(interp: &str, module: Option<(&str, &str)>) {
    let _alone = alone();
    const N: u32 = 10_000;
    let nofile = require_nofile(25_000, N + 1000);
    println!("RLIMIT_NOFILE {nofile}");
    let redis = Redis::start(25_000, 20_000);
    let mut r = Run::new(interp, module, "tenk");
    let shell = raise_nofile(25_000);
    r.shell = Some(&shell);
    r.env.push(("COEVENT_REDIS_PORT".into(), redis.port.to_string()));
    r.env.push(("COEVENT_TENK".into(), N.to_string()));
    let out = r.run();
    let per: f64 = figure(&out, "TENK per_connection_bytes").parse().unwrap();
    println!("{interp}: memory per idle connection: {per:.0} bytes of RSS ({:.1} KiB)", per / 1024.0);
    assert!(per < 64.0 * 1024.0, "{per} bytes per idle connection");
    drop(redis);
}

mod ten_thousand_connections {
    #[test]
    #[ignore = "needs redis-server and RLIMIT_NOFILE above 11000; run by make test"]
    fn runner() {
        super::ten_thousand(super::RUNNER, None)
    }

    #[test]
    #[ignore = "needs redis-server, RLIMIT_NOFILE above 11000, system Lua and make module"]
    fn lua54() {
        super::ten_thousand("lua5.4", Some(("lua5.4", "5.4")))
    }

    #[test]
    #[ignore = "needs redis-server, RLIMIT_NOFILE above 11000, system Lua and make module"]
    fn lua51() {
        super::ten_thousand("lua5.1", Some(("lua5.1", "5.1")))
    }

    #[test]
    #[ignore = "needs redis-server, RLIMIT_NOFILE above 11000, system Lua and make module"]
    fn luajit() {
        super::ten_thousand("luajit", Some(("luajit", "jit")))
    }
}

#[test]
#[ignore = "needs redis-server; make soak runs it for SECONDS"]
fn soak() {
    let _alone = alone();
    let seconds: u64 = std::env::var("COEVENT_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let redis = Redis::start(4096, 1000);
    let mut r = Run::new(RUNNER, None, "soak");
    r.dir = root().join("tests").join("soak");
    r.env.push(("COEVENT_REDIS_PORT".into(), redis.port.to_string()));
    r.env.push(("COEVENT_SOAK_SECONDS".into(), seconds.to_string()));
    // The script keeps to `seconds`; this limit catches a hang.
    r.limit = Some(Duration::from_secs(seconds + 120));
    r.run();
    drop(redis);
}
