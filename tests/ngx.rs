//! `coevent.ngx` (src/ngx.lua, src/ngx.rs): the scripts of tests/lua/ngx, the
//! ngx API itself and Debian's OpenResty client libraries running unmodified
//! against a real redis-server and memcached, run in process, through the
//! runner, and through the system interpreters (ignored by default) as
//! tests/pool.rs does. The libraries are unpacked into bench/.deps/ngx by
//! tests/ngxdeps.sh (`make deps` runs it as root).

mod common;
#[allow(dead_code)]
mod peer;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::redis::Redis;

static SUITE: common::Suite = common::Suite {
    servers: common::Servers {
        marker: "NGX",
        what: "redis-server, memcached and the peer",
        required: "MEMCACHED_PORT",
        hint: " (are redis-server and memcached installed? run tests/ngxdeps.sh as root)",
    },
    dir: "ngx",
    // The scripts' helpers, the harness, then Debian's libraries.
    path: &["ngx", "", "../../bench/.deps/ngx/usr/share/lua/5.1"],
    not_listed: &[],
    env: &[],
    time_limit: Duration::from_secs(60),
    valgrind: false,
};

/// memcached on a free port of 127.0.0.1, stopped by pid when dropped.
struct Memcached {
    child: Child,
    port: u16,
}

impl Memcached {
    fn start() -> Memcached {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new("memcached");
        cmd.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0", "-c", "1024"]);
        if nix_root() {
            cmd.args(["-u", "root"]);
        }
        let child = cmd.stdin(Stdio::null()).spawn().expect("start memcached (Debian: apt-get install memcached)");
        let m = Memcached { child, port };
        // memcached says nothing when it listens: its port answering is the sign.
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "memcached did not listen on {port}");
            std::thread::sleep(Duration::from_millis(10));
        }
        m
    }
}

fn nix_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Not a test: the servers' process (see tests/common); does nothing in a normal run.
#[test]
fn serve_ngx() {
    common::serve(|| {
        let (peer, redis, mc) = (peer::Peer::start(), Redis::start(4096, 1000), Memcached::start());
        let mut vars = peer.vars();
        vars.push(("REDIS_PORT", redis.port.to_string()));
        vars.push(("MEMCACHED_PORT", mc.port.to_string()));
        ((peer, redis, mc), vars)
    });
}

common::scripts!(api, redis, memcached);
