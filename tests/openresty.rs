//! The oracle: OpenResty itself. Every case file of tests/oracle (plain Lua
//! against the cosocket API, printing what each call returns or raises) runs
//! twice against the scripted peer of tests/peer: in nginx with OpenResty's
//! Lua module (`ngx.socket.tcp`; tests/oracle/adapter/openresty.lua, one HTTP
//! request per case) and through the `coevent` runner (`cosocket.tcp`;
//! tests/oracle/adapter/coevent.lua). The two outputs must be the same line for
//! line, except for a case with tests/oracle/expected/<case>.openresty and
//! <case>.coevent: a known difference (docs/differences.md), where each side
//! must print exactly its file.
//!
//! OpenResty's module is not installed but unpacked into bench/.deps/openresty
//! by `bash bench/deps.sh openresty` (see there why), and nginx is started with
//! `load_module` and `LD_LIBRARY_PATH` pointing into it. Without those files the
//! test says `skipped` and passes. `COEVENT_ORACLE_BLESS=1` rewrites the
//! expected files of the known differences from this run.

// The oracle uses the peer's servers, not the script drivers of common or the peer's client helpers.
#[allow(unused_macros, unused_imports)]
mod common;
#[allow(dead_code)]
mod peer;
// Its misbehaving TLS server (`bad`), for the TLS cases.
#[allow(dead_code)]
mod tlspeer;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{output, port, root, shared, var, RUNNER};

static SUITE: common::Suite = common::Suite {
    servers: peer::SERVERS,
    dir: "",
    path: &[""],
    not_listed: &[],
    env: &[],
    time_limit: Duration::from_secs(60),
    valgrind: false,
};

/// Not a test: the peer process (see tests/common); does nothing in a normal run.
#[test]
fn serve_peer() {
    peer::serve_child();
}

const NDK: &str = "/usr/lib/nginx/modules/ndk_http_module.so";

fn oracle_dir() -> PathBuf {
    root().join("tests").join("oracle")
}

/// OpenResty's files: (nginx, the unpacked tree), or why they are not there.
fn openresty() -> Result<(PathBuf, PathBuf), String> {
    let tree = root().join("bench/.deps/openresty");
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].iter().map(PathBuf::from).find(|p| p.is_file());
    let Some(nginx) = nginx else { return Err("no nginx (bash bench/deps.sh openresty)".into()) };
    for f in [Path::new(NDK).to_path_buf(), tree.join("usr/lib/nginx/modules/ngx_http_lua_module.so")] {
        if !f.is_file() {
            return Err(format!("no {} (bash bench/deps.sh openresty)", f.display()));
        }
    }
    Ok((nginx, tree))
}

/// nginx with the Lua module, one process, on a free port; stopped when dropped.
struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    fn start(nginx: &Path, tree: &Path, dns_port: u16) -> Nginx {
        let dir = std::env::temp_dir().join(format!("coevent-oracle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let (d, t) = (dir.display(), tree.display());
        let adapter = oracle_dir().join("adapter/openresty.lua");
        // master_process off: the one process serves (and stays the user it was started as).
        let conf = format!(
            "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
load_module {NDK};
load_module {t}/usr/lib/nginx/modules/ngx_http_lua_module.so;
events {{ worker_connections 256; }}
http {{
  access_log off;
  lua_package_path \"{t}/usr/share/lua/5.1/?.lua;{libs}/?.lua;;\";
  lua_socket_log_errors off;
  lua_shared_dict oracle 1m;
  resolver 127.0.0.1:{dns_port} ipv6=off;
  client_body_temp_path {d}/tmp_body;
  proxy_temp_path {d}/tmp_proxy;
  fastcgi_temp_path {d}/tmp_fastcgi;
  uwsgi_temp_path {d}/tmp_uwsgi;
  scgi_temp_path {d}/tmp_scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /case {{ content_by_lua_file {adapter}; }}
  }}
}}
",
            adapter = adapter.display(),
            // Debian's client libraries, for the library cases (tests/oracle/ngx_libs.lua).
            libs = root().join("bench/.deps/ngx/usr/share/lua/5.1").display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .env("LD_LIBRARY_PATH", tree.join("usr/lib/x86_64-linux-gnu"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", nginx.display()));
        let mut n = Nginx { child, port, dir };
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Ok(Some(status)) = n.child.try_wait() {
                panic!("nginx exited ({status}) at start:\n{}", n.log());
            }
            assert!(Instant::now() < end, "nginx did not listen within 10 s:\n{}", n.log());
            thread::sleep(Duration::from_millis(20));
        }
        n
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// GET /case?...: the case's output, or why there is none.
    fn run(&self, query: &str) -> Result<String, String> {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(s, "GET /case?{query} HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| e.to_string())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).map_err(|e| format!("read: {e}"))?;
        let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP answer: {answer:?}"))?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("{}\n{body}", head.lines().next().unwrap_or("")));
        }
        Ok(body.to_string())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The case files, by name.
fn cases() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(oracle_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".lua").map(str::to_string))
        .collect();
    v.sort();
    v
}

/// Where two outputs part, line by line, or None if they are the same.
fn diff(a_name: &str, a: &str, b_name: &str, b: &str) -> Option<String> {
    if a == b {
        return None;
    }
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let w = a_name.len().max(b_name.len());
    let mut out = String::new();
    for i in 0..al.len().max(bl.len()) {
        let (x, y) = (al.get(i).copied(), bl.get(i).copied());
        if x == y {
            continue;
        }
        let _ = writeln!(out, "  line {}:", i + 1);
        let _ = writeln!(out, "    {a_name:w$} | {}", x.unwrap_or("(no line)"));
        let _ = writeln!(out, "    {b_name:w$} | {}", y.unwrap_or("(no line)"));
    }
    if out.is_empty() {
        out = format!("  the same lines, other bytes: {a:?}\n  against {b:?}\n");
    }
    Some(out)
}

#[test]
#[ignore = "needs OpenResty (bench/deps.sh)"]
fn oracle() {
    let (nginx, tree) = match openresty() {
        Ok(files) => files,
        Err(why) => {
            // Past the test harness's capture (it takes print!, not writes to
            // the stream): a skip shows in every run's output.
            let _ = writeln!(std::io::stderr(), "skipped: 1 (the OpenResty oracle: {why})");
            return;
        }
    };
    let _g = shared();
    // In this process: a thread, gone with it.
    let bad_port = tlspeer::bad::start(tlspeer::bad::self_signed(), Default::default());
    let vars = [
        ("port", port("PEER_PORT").to_string()),
        ("unix", var("PEER_UNIX").expect("PEER_UNIX").to_string()),
        ("refused", port("PEER_REFUSED_PORT").to_string()),
        ("dns", port("PEER_DNS_PORT").to_string()),
        ("udp", port("PEER_UDP_PORT").to_string()),
        ("udp_unix", var("PEER_UDP_UNIX").expect("PEER_UDP_UNIX").to_string()),
        ("udp_refused", port("PEER_UDP_REFUSED_PORT").to_string()),
        ("tls_bad", bad_port.to_string()),
    ];
    let ngx = Nginx::start(&nginx, &tree, port("PEER_DNS_PORT"));
    let dir = oracle_dir();
    let expected = dir.join("expected");
    let bless = std::env::var("COEVENT_ORACLE_BLESS").is_ok_and(|v| v == "1");
    let (mut failures, mut same, mut known) = (String::new(), 0, 0);
    let cases = cases();
    assert!(cases.len() > 5, "no case files in {}", dir.display());
    for case in &cases {
        let mut query = format!("dir={}&case={}", enc(&dir.display().to_string()), enc(case));
        for (k, v) in &vars {
            let _ = write!(query, "&{k}={}", enc(v));
        }
        let or = match ngx.run(&query) {
            Ok(out) => out,
            Err(e) => {
                let _ = writeln!(failures, "{case}: OpenResty failed: {e}\n{}", ngx.log());
                continue;
            }
        };
        let mut cmd = Command::new(RUNNER);
        cmd.arg(dir.join("adapter/coevent.lua")).arg(&dir).arg(case).args(vars.iter().map(|(_, v)| v));
        let (status, co, err) = output(cmd, "the coevent runner", SUITE.time_limit);
        if !status.success() || !err.is_empty() {
            let _ = writeln!(failures, "{case}: coevent exited {status}, stderr:\n{err}");
            continue;
        }
        let (want_or, want_co) = (expected.join(format!("{case}.openresty")), expected.join(format!("{case}.coevent")));
        if want_or.exists() || want_co.exists() {
            known += 1;
            if bless {
                std::fs::write(&want_or, &or).unwrap();
                std::fs::write(&want_co, &co).unwrap();
            }
            let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
            for (side, got, want) in [("openresty", &or, want_or), ("coevent", &co, want_co)] {
                if let Some(d) = diff("expected", &read(&want), side, got) {
                    let _ = writeln!(
                        failures,
                        "{case}: a known difference changed: {side} against {}\n{d}",
                        want.display()
                    );
                }
            }
        } else if let Some(d) = diff("openresty", &or, "coevent", &co) {
            let _ = writeln!(failures, "{case}: coevent differs from OpenResty\n{d}");
        } else {
            same += 1;
        }
    }
    println!("oracle: {} cases, {same} the same as OpenResty, {known} known differences", cases.len());
    assert!(failures.is_empty(), "\n{failures}");
}
