//! Keepalive pools against a real redis-server: the scripts of tests/lua/pool,
//! run in process (vendored Lua 5.4 through `coevent::open`), through the
//! `coevent` runner, and through lua5.4, lua5.3, lua5.1 and luajit with the
//! modules `make modules` builds (ignored by default). Redis's own view
//! (`CLIENT ID`, `CLIENT LIST`, `CLIENT KILL`) tells which connection a
//! request went over, so reuse, eviction and the pool's watch on idle
//! connections are checked from the server's side.
//!
//! As in tests/lua.rs, the servers (the peer and redis-server) run in a child
//! process (this binary again, running only `serve_redis`), and an in-process
//! script runs alone: see tests/common.

mod common;
// The peer as a library: this suite serves it with redis-server.
#[allow(dead_code)]
mod peer;

use std::time::Duration;

use common::redis::Redis;

static SUITE: common::Suite = common::Suite {
    servers: common::Servers {
        marker: "REDIS",
        what: "redis-server and the peer",
        required: "REDIS_PORT",
        hint: " (is redis-server installed? Debian: apt-get install redis-server)",
    },
    dir: "pool",
    // The redis helpers, then the harness.
    path: &["pool", ""],
    not_listed: &["resp"],
    env: &[],
    time_limit: Duration::from_secs(60),
    valgrind: false,
};

/// Not a test: the servers' process (see tests/common); does nothing in a
/// normal run. redis-server stops (by pid) when they are dropped.
#[test]
fn serve_redis() {
    common::serve(|| {
        let (peer, redis) = (peer::Peer::start(), Redis::start(4096, 1000));
        let mut vars = peer.vars();
        vars.push(("REDIS_PORT", redis.port.to_string()));
        ((peer, redis), vars)
    });
}

common::scripts!(keepalive, backlog);
