//! `coevent.ngx` (src/ngx/): the scripts of tests/lua/ngx, the
//! ngx API itself and Debian's OpenResty client libraries running unmodified
//! against a real redis-server and memcached, run in process, through the
//! runner, and through the system interpreters (ignored by default) as
//! tests/pool.rs does. The libraries are unpacked into bench/.deps/ngx by
//! tests/ngxdeps.sh (`make deps` runs it as root).

mod common;
#[allow(dead_code)]
mod peer;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::dnsmasq::Dnsmasq;
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

/// The websocket server of tests/ngxpeer/ws_echo.py (Debian's python3 and
/// python3-websockets), stopped by pid when dropped.
struct WsEcho {
    child: Child,
    port: u16,
    tls_port: u16,
}

impl WsEcho {
    fn start(cert: &Cert) -> WsEcho {
        let script = common::root().join("tests/ngxpeer/ws_echo.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args([&cert.cert, &cert.key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start /usr/bin/python3 (Debian: apt-get install python3-websockets)");
        let (mut port, mut tls_port) = (0, 0);
        for line in BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok) {
            match line.split_once(' ') {
                Some(("WS_PORT", p)) => port = p.parse().unwrap(),
                Some(("WSS_PORT", p)) => tls_port = p.parse().unwrap(),
                _ if line == "ready" => break,
                _ => {}
            }
        }
        assert!(port != 0, "the websocket server did not start (Debian: apt-get install python3-websockets)");
        WsEcho { child, port, tls_port }
    }
}

impl Drop for WsEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// dnsmasq (tests/common/dnsmasq.rs) with the records tests/lua/ngx/dns.lua asks for.
fn dnsmasq() -> Dnsmasq {
    // A TXT answer past 512 bytes: truncated over UDP, whole over TCP.
    let big = (0..12).map(|i| format!("{i:02}").repeat(30)).collect::<Vec<_>>().join(",");
    let records = [
        "--host-record=a.ngx.test,10.0.0.1,2001:db8::1".into(),
        "--cname=www.ngx.test,a.ngx.test".into(),
        "--srv-host=_sip._tcp.ngx.test,sip.ngx.test,5060,10,20".into(),
        "--mx-host=ngx.test,mail.ngx.test,5".into(),
        "--txt-record=txt.ngx.test,hello world".into(),
        format!("--txt-record=big.ngx.test,{big}"),
    ];
    Dnsmasq::start(&records, false, "a.ngx.test")
}

/// A self-signed certificate for localhost, made by `openssl req` in a
/// temporary directory, removed when dropped.
struct Cert {
    dir: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl Cert {
    fn make() -> Cert {
        let dir = std::env::temp_dir().join(format!("coevent-ngx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let ok = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl req failed (Debian: apt-get install openssl)");
        Cert { dir, cert, key }
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// redis-server on a TLS port only, stopped by pid when dropped.
struct RedisTls {
    child: Child,
    port: u16,
}

impl RedisTls {
    fn start(cert: &Cert) -> RedisTls {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--tls-cert-file")
            .arg(&cert.cert)
            .arg("--tls-key-file")
            .arg(&cert.key)
            .arg("--tls-ca-cert-file")
            .arg(&cert.cert)
            .args(["--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--logfile", ""])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let r = RedisTls { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on its TLS port {port}");
            std::thread::sleep(Duration::from_millis(10));
        }
        r
    }
}

impl Drop for RedisTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        let cert = Cert::make();
        let (peer, redis, mc, ws) =
            (peer::Peer::start(), Redis::start(4096, 1000), Memcached::start(), WsEcho::start(&cert));
        let (dns, redis_tls) = (dnsmasq(), RedisTls::start(&cert));
        let mut vars = peer.vars();
        vars.push(("REDIS_PORT", redis.port.to_string()));
        vars.push(("MEMCACHED_PORT", mc.port.to_string()));
        vars.push(("WS_PORT", ws.port.to_string()));
        vars.push(("NGX_DNS_PORT", dns.port.to_string()));
        vars.push(("WSS_PORT", ws.tls_port.to_string()));
        vars.push(("REDIS_TLS_PORT", redis_tls.port.to_string()));
        ((peer, redis, mc, ws, dns, redis_tls, cert), vars)
    });
}

common::scripts!(api, redis, memcached, libs, websocket, dns);

/// `coevent --ngx`: the script in coevent.ngx's loop, as resty runs one.
fn resty(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(common::RUNNER).args(args).output().expect("run the runner");
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn runner_ngx_flag() {
    let script = r#"
        local d = ngx.shared.dogs
        d:set('a', 1)
        ngx.say('dogs ', d:capacity(), ' ', d:get('a'), ' cats ', ngx.shared.cats:capacity(), ' ', ...)
        ngx.log(ngx.INFO, 'info line')
        ngx.log(ngx.ERR, 'error line')
        ngx.timer.at(60, function(premature) ngx.say('timer premature ', premature) end)
        ngx.sleep(0.001)"#;
    let (ok, out, err) =
        resty(&["--ngx", "--shdict", "dogs 1m", "--shdict", "cats 20k", "--errlog-level", "info", "-e", script, "x"]);
    assert!(ok, "{err}");
    assert_eq!(out, "dogs 1048576 1 cats 20480 x\ntimer premature true\n");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].ends_with("[lua] (command line):5: f(): info line") && lines[0].contains(" [info] "), "{err}");
    assert!(lines[1].contains(" [error] ") && lines[1].ends_with("error line"), "{err}");
    // The default level is warn, as resty's.
    let (ok, _, err) = resty(&["--ngx", "--shdict", "dogs 1m", "--shdict", "cats 20k", "-e", script]);
    assert!(ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    let (ok, _, err) = resty(&["--shdict", "dogs 1m", "-e", "print(1)"]);
    assert!(!ok);
    assert_eq!(err, "coevent: --shdict and --errlog-level go with --ngx\n");
    let (ok, _, err) = resty(&["--ngx", "--shdict", "dogs", "-e", "print(1)"]);
    assert!(!ok);
    assert!(err.contains("--shdict: 'name size' expected, got 'dogs'"), "{err}");
}

/// A script that raises while an `every` timer (and a long `at`) is pending:
/// the error is reported as lua(1) reports one, the timers run premature
/// and the runner ends (it hung, the timer keeping the loop alive).
#[test]
fn runner_ngx_error_with_pending_timers() {
    let script = "ngx.timer.every(0.01, function(p) io.write('every ', tostring(p), '\\n') end)
ngx.timer.at(3600, function(p) io.write('at ', tostring(p), '\\n') end)
local function g() error('boom') end
g()";
    let mut cmd = Command::new(common::RUNNER);
    cmd.args(["--ngx", "-e", script]);
    let (status, out, err) = common::output(cmd, "coevent --ngx raising", Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{err}");
    let want = "coevent: (command line):3: boom\nstack traceback:\n\t[C]: in function 'error'\n\t(command line):3: in local 'g'\n\t(command line):4: in ";
    assert!(err.starts_with(want), "{err}");
    let mut lines: Vec<&str> = out.lines().filter(|l| l.ends_with("true")).collect();
    lines.sort();
    assert_eq!(lines, ["at true", "every true"], "{out}");
}

/// SIGTERM ends `coevent --ngx` as it ends an nginx worker: the pending
/// timers run premature, the script and its user threads are killed, and
/// the runner says so (it survived the first SIGTERM, an `every` timer
/// keeping the loop alive).
#[test]
fn runner_ngx_stop_signal() {
    let script = "ngx.timer.every(0.01, function(p) if p then io.write('every premature\\n') end end)
ngx.thread.spawn(function() ngx.sleep(3600) end)
io.write('ready\\n') io.stdout:flush()
ngx.sleep(3600)";
    let mut child = Command::new(common::RUNNER)
        .args(["--ngx", "-e", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the runner");
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let sent = Command::new("kill").args(["-TERM", &pid.to_string()]).status().is_ok_and(|s| s.success());
    assert!(sent, "kill -TERM {pid}");
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        let _ = tx.send((child.wait(), rest, err));
    });
    let Ok((status, rest, err)) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        panic!("coevent --ngx did not end within 20 s of SIGTERM");
    };
    assert_eq!(status.unwrap().code(), Some(1));
    assert_eq!(err, "coevent: interrupted\n");
    assert_eq!(rest, "every premature\n");
}

/// Arguments are bytes, as lua(1) takes them: one that is not UTF-8 reaches
/// the script as it is (the runner panicked in std::env::args).
#[test]
fn runner_arguments_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let arg = std::ffi::OsStr::from_bytes(b"x\xff");
    let script =
        "ngx.say(#arg[1], ' ', arg[1] == 'x\\255', ' ', (...) == arg[1], ' ', ngx.shared['d\\255']:capacity())";
    let o = Command::new(common::RUNNER)
        .args(["--ngx", "--shdict"])
        .arg(std::ffi::OsStr::from_bytes(b"d\xff 8k"))
        .args(["-e", script])
        .arg(arg)
        .output()
        .expect("run the runner");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "2 true true 8192\n");
}
