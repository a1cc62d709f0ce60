//! TLS (`sslhandshake`) from Lua: the scripts of tests/lua/tls against
//! `openssl s_server` edge cases and an nginx with `ssl` (tests/tlspeer),
//! run in process (vendored Lua 5.4 through `coevent::open`), through the
//! `coevent` runner, and through lua5.4, lua5.3, lua5.1 and luajit with the
//! modules `make modules` builds (ignored by default).
//!
//! As in tests/lua.rs, the servers run in a child process (this binary
//! again, running only `serve_tlspeer`), and an in-process script runs
//! alone: see tests/common.

mod common;
// The scripted peer runs beside the TLS servers (the harness wants it).
#[allow(dead_code)]
mod peer;
mod tlspeer;

use std::time::Duration;

static SUITE: common::Suite = common::Suite {
    servers: tlspeer::SERVERS,
    dir: "tls",
    path: &[""],
    not_listed: &[],
    env: &[],
    time_limit: Duration::from_secs(120),
    valgrind: true,
};

/// Not a test: the servers' process (see tests/common); does nothing in a
/// normal run. They stop their children when dropped.
#[test]
fn serve_tlspeer() {
    tlspeer::serve_child();
}

common::scripts!(tls, misbehaving);
