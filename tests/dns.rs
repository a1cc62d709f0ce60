//! The resolver from Lua: the scripts of tests/lua/dns against a real dnsmasq
//! and the servers of tests/dnspeer, run in process (vendored Lua 5.4 through
//! `coevent::open`), through the `coevent` runner, and through lua5.4, lua5.1
//! and luajit with the modules `make modules` builds (ignored by default).
//!
//! As in tests/lua.rs, scripts count their process's fds around each case, so
//! the servers (and dnsmasq) run in a child process (this binary again, running
//! only `serve_dnspeer`), and an in-process script runs alone: it takes `GATE`
//! for writing, every test that makes fds in this process takes it for reading.
//!
//! Runs through a child process (the runner, the interpreters) also get
//! `COEVENT_HOSTS` and `COEVENT_RESOLV_CONF`, for the cases that test them.

mod dnspeer;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{OnceLock, RwLock, RwLockReadGuard};
use std::thread;
use std::time::{Duration, Instant};

use coevent_ffi::dns::{self, TYPE_A, TYPE_AAAA};
use dnspeer::DnsPeer;
use mlua::{Lua, Table};

const TIME_LIMIT: Duration = Duration::from_secs(60);

static GATE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(|e| e.into_inner())
}

/// The servers' variables, from the child process started at first use.
fn peer() -> &'static [(String, String)] {
    static PEER: OnceLock<(Child, Vec<(String, String)>)> = OnceLock::new();
    &PEER.get_or_init(start_peer).1
}

/// Starts this binary again as the servers; they live until its stdin closes
/// (when this process ends), then stop dnsmasq.
fn start_peer() -> (Child, Vec<(String, String)>) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "serve_dnspeer", "--nocapture", "--test-threads", "1"])
        .env("COEVENT_SERVE_DNSPEER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the dns peer process");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut vars = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("the dns peer's output");
        // The test harness may print `test serve_dnspeer ... ` first on the line.
        let var = line.find("DNSPEER ").map(|i| &line[i + 8..]);
        match var.map(|l| l.split_once(' ').unwrap_or((l, ""))) {
            Some(("ready", _)) => break,
            Some((k, v)) => vars.push((k.to_string(), v.to_string())),
            None => {}
        }
    }
    assert!(vars.iter().any(|(k, _)| k == "DNS_PORT"), "the dns peer process did not start (is dnsmasq installed?)");
    thread::spawn(move || lines.for_each(drop));
    (child, vars)
}

/// Not a test: the servers' process (see `start_peer`); does nothing in a normal run.
#[test]
fn serve_dnspeer() {
    if std::env::var_os("COEVENT_SERVE_DNSPEER").is_none() {
        return;
    }
    let p = DnsPeer::start();
    for (k, v) in p.vars() {
        println!("DNSPEER {k} {v}");
    }
    println!("DNSPEER ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(p);
    std::process::exit(0);
}

fn var(name: &str) -> Option<&'static str> {
    peer().iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn lua_dir() -> PathBuf {
    root().join("tests").join("lua")
}

fn dns_dir() -> PathBuf {
    lua_dir().join("dns")
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
    let path = dns_dir().join(format!("{script}.lua"));
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
        dns_dir().display()
    );
    let mut cmd = Command::new(interp);
    cmd.arg("-e").arg(chunk).current_dir(root());
    for (k, v) in peer() {
        cmd.env(format!("COEVENT_{k}"), v);
    }
    cmd.env("COEVENT_HOSTS", var("DNS_ENV_HOSTS").unwrap());
    cmd.env("COEVENT_RESOLV_CONF", var("DNS_ENV_RESOLV_CONF").unwrap());
    let (status, out, err) = output(cmd, &format!("{interp} on dns/{script}.lua"));
    println!("{out}");
    eprintln!("{err}");
    assert!(status.success(), "{interp} dns/{script}.lua: {status}");
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

scripts!(resolve, connect, config);

#[test]
fn every_script_is_listed() {
    let mut found: Vec<String> = std::fs::read_dir(dns_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".lua").map(String::from))
        .collect();
    found.sort();
    let mut listed: Vec<&str> = SCRIPTS.to_vec();
    listed.sort();
    assert_eq!(found, listed, "tests/lua/dns/*.lua and the scripts! list in tests/dns.rs differ");
}

/// dnsmasq itself, from Rust: what the Lua scripts rely on.
#[test]
fn dnsmasq_answers_as_configured() {
    let _g = shared();
    let port: u16 = var("DNS_PORT").unwrap().parse().unwrap();
    let ask = |name: &str, qtype: u16| {
        let m = dnspeer::query(port, name, qtype, Duration::from_secs(2)).expect("an answer from dnsmasq");
        let a = dns::parse_response(&m).unwrap();
        (a.rcode, a.addresses().0.iter().map(|ip| ip.to_string()).collect::<Vec<_>>())
    };
    let ok = |ips: &[&str]| (dns::RCODE_NOERROR, ips.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(ask("v4.test", TYPE_A), ok(&["127.0.0.1"]));
    assert_eq!(ask("v4.test", TYPE_AAAA), ok(&[]));
    assert_eq!(ask("v6.test", TYPE_A), ok(&[]));
    assert_eq!(ask("v6.test", TYPE_AAAA), ok(&["::1"]));
    assert_eq!(ask("both.test", TYPE_A), ok(&["127.0.0.1"]));
    assert_eq!(ask("both.test", TYPE_AAAA), ok(&["::1"]));
    assert_eq!(ask("alias.test", TYPE_A), ok(&["127.0.0.1"]));
    assert_eq!(ask("alias.test", TYPE_AAAA), ok(&["::1"]));
    assert_eq!(ask("db.corp.test", TYPE_A), ok(&["127.0.0.1"]));
    assert_eq!(ask("nx.test", TYPE_A), (dns::RCODE_NXDOMAIN, vec![]));
    assert_eq!(ask("unknown.test", TYPE_AAAA), (dns::RCODE_NXDOMAIN, vec![]));
    assert_eq!(ask("fromhosts.test", TYPE_A), (dns::RCODE_NXDOMAIN, vec![]), "dnsmasq must not know the hosts names");

    let servfail: u16 = var("DNS_SERVFAIL_PORT").unwrap().parse().unwrap();
    let m = dnspeer::query(servfail, "any.test", TYPE_A, Duration::from_secs(2)).expect("a SERVFAIL");
    assert_eq!(dns::parse_response(&m).unwrap().rcode, dns::RCODE_SERVFAIL);
    let silent: u16 = var("DNS_SILENT_PORT").unwrap().parse().unwrap();
    assert!(dnspeer::query(silent, "any.test", TYPE_A, Duration::from_millis(100)).is_none());
}
