//! Runs the Lua test scripts of tests/lua against the scripted peer (tests/peer):
//! in process (vendored Lua 5.4 through `coevent::open`), through the `coevent`
//! runner, and through the system interpreters lua5.4, lua5.3, lua5.1 and luajit
//! with the module built by `make module LUA=...` (ignored by default). Also tests
//! the runner, and (`make size`) the size variants of the module.
//!
//! The peer runs in a child process, and an in-process script runs alone: see
//! tests/common.

mod common;
mod peer;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{output, peer, port, root, shared, RUNNER};

static SUITE: common::Suite = common::Suite {
    servers: peer::SERVERS,
    dir: "",
    path: &[""],
    not_listed: &["harness"],
    env: &[],
    time_limit: Duration::from_secs(60),
    valgrind: false,
};

/// Not a test: the peer process (see tests/common); does nothing in a normal run.
#[test]
fn serve_peer() {
    peer::serve_child();
}

common::scripts!(receive, send, connect, timeout, threads, concurrency, until, listen, udp);

fn runner(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut cmd = Command::new(RUNNER);
    cmd.args(args).current_dir(root());
    output(cmd, "the coevent runner", SUITE.time_limit)
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
    let all = |cmd: &str| peer::answer(p, cmd);
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

/// The size variants of the module (`make size-modules`), run by `make size`
/// and CI, not by `make test`: one script through each (they are the same code
/// as build/lua5.4, built otherwise), and the footprint aim: under 512 KiB.
mod size_variants {
    use crate::common::{self, root, through, LUA54_SMALL};

    /// The script each size variant runs.
    const SMOKE: &str = "threads";

    #[test]
    #[ignore = "needs lua5.4 and make size-modules; run by make size"]
    fn lua54_small() {
        through(LUA54_SMALL.0, LUA54_SMALL.1, SMOKE)
    }

    #[test]
    #[ignore = "needs lua5.4, rust-src and make size-modules; run by make size"]
    fn lua54_small_std() {
        common::through_std(SMOKE)
    }

    /// A module built without TLS says so.
    #[test]
    #[ignore = "needs lua5.4 and make size-modules; run by make size"]
    fn without_tls_sslhandshake_says_so() {
        let so = root().join("build/lua5.4-small-notls/?.so");
        let code = format!(
            "package.cpath = '{}' local L = require('coevent') \
             L(function() print(L.tcp():sslhandshake()) end)",
            so.display()
        );
        let out = std::process::Command::new("lua5.4").args(["-e", &code]).output().expect("lua5.4");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "nil\ttls not built in\n", "{out:?}");
    }

    /// The smallest build of the module (`PROFILE=small BUILD_STD=1 TLS=0`)
    /// stays under 512 KiB, for Lua 5.4 and for LuaJIT, whose module is the
    /// largest (docs/building.md, Footprint: what each part costs).
    #[test]
    #[ignore = "needs rust-src and make size-modules; run by make size"]
    fn smallest_modules_are_under_512_kib() {
        if !common::has_rust_src() {
            return;
        }
        for dir in ["lua5.4-small-std-notls", "luajit-small-std-notls"] {
            let so = root().join("build").join(dir).join("coevent.so");
            let size =
                std::fs::metadata(&so).unwrap_or_else(|e| panic!("{}: {e} (make size-modules)", so.display())).len();
            assert!(size < 512 * 1024, "{}: {size} bytes, over 512 KiB", so.display());
        }
    }
}
