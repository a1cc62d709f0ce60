//! The reliability suite.
//!
//! - The fault scripts of tests/lua/faults (resets, half-closes, silent and slow
//!   peers, a full accept queue, a peer that reads nothing, closes and kills
//!   under waiters, timeouts racing readiness), each fault hitting one thread
//!   while 50 others do round trips: run in process (vendored Lua 5.4), through
//!   the `coevent` runner, and (ignored by default) through lua5.4, lua5.3,
//!   lua5.1 and luajit with the modules `make modules` builds.
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
//!   and through LuaJIT against redis-server and the peer (ignored by default;
//!   without the variable each runs 10 seconds).
//!
//! As in tests/lua.rs, the scripts count their process's fds, so the peer runs in
//! a child process (this binary again, running only `serve_peer`), an in-process
//! script runs alone, and every test that starts a child process takes `GATE`
//! for reading, or for writing when it needs the machine to itself (10,000
//! connections, the soak): see tests/common.

mod common;
mod peer;

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use common::redis::{raise_nofile, Redis};
use common::{alone, port, root, shared, Run, LUA51, LUA54, LUAJIT, RUNNER};

static SUITE: common::Suite = common::Suite {
    servers: peer::SERVERS,
    dir: "faults",
    // The fault helpers, then the harness.
    path: &["faults", ""],
    // Scripts with a test of their own (below), and the helpers.
    not_listed: &["nofile", "tenk", "support"],
    env: &[],
    time_limit: Duration::from_secs(120),
    valgrind: true,
};

/// Not a test: the peer process (see tests/common); does nothing in a normal run.
#[test]
fn serve_peer() {
    peer::serve_child();
}

common::scripts!(reset, halfclose, stall, closing, race);

/// The peer commands the fault scripts added, from Rust.
#[test]
fn peer_fault_commands() {
    use std::io::Write;
    use std::net::{Shutdown, TcpStream};
    let _g = shared();
    let p = port("PEER_PORT");
    let all = |cmd: &str| peer::answer(p, cmd);
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
    use crate::common::{self, Run, LUA54};

    fn run(script: &str) {
        if !common::valgrind() {
            println!("skipped: set COEVENT_VALGRIND=1 (make valgrind) to run tests/lua/{script}.lua under valgrind");
            return;
        }
        let _g = common::shared();
        let mut r = Run::new(LUA54.0, LUA54.1, script);
        r.dir = common::lua_dir();
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
    base!(receive, send, connect, timeout, threads, concurrency, until, listen, udp);
}

/// Outside `mod valgrind`, which `make test` skips.
#[test]
fn valgrind_lists_every_script() {
    // Reading the directory opens an fd: not while an in-process script counts them.
    let _g = shared();
    let msg = "tests/lua/*.lua and the base! list in tests/faults.rs differ";
    common::assert_listed(&common::lua_dir(), &["harness"], valgrind::BASE, msg);
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
    nofile(LUA54.0, LUA54.1)
}

#[test]
#[ignore = "needs system Lua and make module"]
fn nofile_lua51() {
    nofile(LUA51.0, LUA51.1)
}

#[test]
#[ignore = "needs system Lua and make module"]
fn nofile_luajit() {
    nofile(LUAJIT.0, LUAJIT.1)
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
    // About 1 KiB in all (Lua heap, socket, reactor slot); a socket that kept
    // its receive buffer would add a page.
    // (Not under the adversary of tests/lua/harness.lua: its threads take memory of their own.)
    if std::env::var_os("COEVENT_ADVERSARY").is_none() {
        assert!(per < 3.0 * 1024.0, "{per} bytes per idle connection");
    }
    drop(redis);
}

mod ten_thousand_connections {
    use crate::common::{LUA51, LUA54, LUAJIT};

    #[test]
    #[ignore = "needs redis-server and RLIMIT_NOFILE above 11000; run by make test"]
    fn runner() {
        super::ten_thousand(super::RUNNER, None)
    }

    #[test]
    #[ignore = "needs redis-server, RLIMIT_NOFILE above 11000, system Lua and make module"]
    fn lua54() {
        super::ten_thousand(LUA54.0, LUA54.1)
    }

    #[test]
    #[ignore = "needs redis-server, RLIMIT_NOFILE above 11000, system Lua and make module"]
    fn lua51() {
        super::ten_thousand(LUA51.0, LUA51.1)
    }

    #[test]
    #[ignore = "needs redis-server, RLIMIT_NOFILE above 11000, system Lua and make module"]
    fn luajit() {
        super::ten_thousand(LUAJIT.0, LUAJIT.1)
    }
}

/// The soak through the runner, and through LuaJIT, whose received data
/// comes lent (src/lend.rs).
mod soak {
    #[test]
    #[ignore = "needs redis-server; make soak runs it for SOAK_SECONDS"]
    fn runner() {
        super::soak(super::RUNNER, None)
    }

    #[test]
    #[ignore = "needs redis-server, luajit and make module LUA=jit; make soak runs it for SOAK_SECONDS"]
    fn luajit() {
        super::soak(super::LUAJIT.0, super::LUAJIT.1)
    }
}

fn soak(interp: &str, module: Option<(&str, &str)>) {
    let _alone = alone();
    let seconds: u64 = std::env::var("COEVENT_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let redis = Redis::start(4096, 1000);
    let mut r = Run::new(interp, module, "soak");
    r.dir = root().join("tests").join("soak");
    r.env.push(("COEVENT_REDIS_PORT".into(), redis.port.to_string()));
    r.env.push(("COEVENT_SOAK_SECONDS".into(), seconds.to_string()));
    // The script keeps to `seconds`; this limit catches a hang.
    r.limit = Some(Duration::from_secs(seconds + 120));
    r.run();
    drop(redis);
}
