//! The example servers (examples/serve_*.lua) through the `coevent` runner,
//! each on 127.0.0.1 at a free port, against real clients started here:
//! curl, redis-cli, redis-benchmark, and Python clients for the edge cases
//! (tests/clients/edge.py). Servers are stopped by pid with SIGTERM (or
//! SIGINT), which must end them cleanly: exit status 0.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

const RUNNER: &str = env!("CARGO_BIN_EXE_coevent");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A server and the lines it prints after "listening on HOST:PORT".
struct Server {
    child: Option<Child>,
    port: u16,
    lines: Receiver<String>,
    reader: Option<thread::JoinHandle<()>>,
}

/// A test that fails leaves no server behind.
impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Server {
    /// Runs `coevent [pre...] examples/<script> args...` under `shell` (e.g.
    /// `ulimit -n 8192`), waiting for `listening` lines (one per worker).
    fn start(pre: &[&str], script: &str, args: &[&str], shell: &str, listening: usize) -> Server {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("{shell} exec \"$0\" \"$@\"")).arg(RUNNER).args(pre);
        cmd.arg(root().join("examples").join(script)).args(args);
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{script}: {e}"));
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        let reader = thread::spawn(move || out.lines().map_while(|l| l.ok()).for_each(|l| drop(tx.send(l))));
        let mut port = 0;
        for _ in 0..listening {
            let l = lines.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("{script} did not start"));
            let p = l.strip_prefix("listening on 127.0.0.1:").unwrap_or_else(|| panic!("{script}: {l}"));
            port = p.parse().unwrap();
        }
        Server { child: Some(child), port, lines, reader: Some(reader) }
    }

    /// Sends `sig` to it and waits for its end: whether it exited with 0,
    /// and the lines it printed.
    fn stop(mut self, sig: &str) -> (bool, Vec<String>) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || drop(tx.send(child.wait())));
        let status = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| {
            let _ = Command::new("kill").args(["-9", &pid]).status();
            panic!("the server did not end within 20 s of {sig}")
        });
        // Everything it printed, up to the end of its output.
        let _ = self.reader.take().expect("reading").join();
        let lines = self.lines.try_iter().collect();
        (status.unwrap().success(), lines)
    }
}

/// Runs a client to its end; its stdout, checking that it exited with 0.
fn client(program: &str, args: &[&str]) -> String {
    let out: Output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (Debian: apt-get install curl redis-tools python3)"));
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{program} {args:?}: {}\nstdout: {o}\nstderr: {e}", out.status);
    o.into_owned()
}

fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

#[test]
fn http_keep_alive_with_curl() {
    let srv = Server::start(&[], "serve_http.lua", &["0"], "", 1);
    // 20 requests on one connection: curl connects once, then reuses it.
    let urls: Vec<String> = (0..20).map(|_| url(srv.port, "/")).collect();
    let mut args = vec!["-s", "-w", "%{http_code} %{num_connects}\n"];
    args.extend(urls.iter().map(String::as_str));
    let want = format!("hello\n200 1\n{}", "hello\n200 0\n".repeat(19));
    assert_eq!(client("curl", &args), want);
    // Connection: close is honoured, and HTTP/1.0 closes by default.
    let head = client("curl", &["-si", "-H", "Connection: close", &url(srv.port, "/")]);
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n"
    );
    assert_eq!(client("curl", &["-s", "--http1.0", &url(srv.port, "/")]), "hello\n");
    let (nope, home) = (url(srv.port, "/nope"), url(srv.port, "/"));
    let codes = client("curl", &["-s", "-w", "%{http_code} ", "-o", "/dev/null", &nope, "-o", "/dev/null", &home]);
    assert_eq!(codes, "404 200 ");
    let (ok, lines) = srv.stop("-INT");
    assert!(ok && lines.is_empty(), "exit 0 on SIGINT, nothing printed: {lines:?}");
}

#[test]
fn http_static_file_with_curl() {
    let dir = std::env::temp_dir().join(format!("coevent-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("data.bin"), &body).unwrap();
    let srv = Server::start(&[], "serve_http.lua", &["0", dir.to_str().unwrap()], "", 1);
    let out = dir.join("got.bin");
    let u = url(srv.port, "/static/data.bin");
    client("curl", &["-s", "-o", out.to_str().unwrap(), &u, "-o", "/dev/null", &u]);
    assert!(std::fs::read(&out).unwrap() == body, "the file came back intact");
    assert!(srv.stop("-TERM").0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resp_with_redis_cli_and_redis_benchmark() {
    let srv = Server::start(&[], "serve_resp.lua", &["0"], "", 1);
    let p = srv.port.to_string();
    let cli = |args: &[&str]| client("redis-cli", &[&["-p", p.as_str()], args].concat());
    assert_eq!(cli(&["PING"]), "PONG\n");
    assert_eq!(cli(&["SET", "greeting", "hello world"]), "OK\n");
    assert_eq!(cli(&["GET", "greeting"]), "hello world\n");
    assert_eq!(cli(&["GET", "missing"]), "\n");
    assert_eq!(cli(&["ECHO", "echoed"]), "echoed\n");
    assert_eq!(cli(&["NOSUCH"]), "ERR unknown command 'NOSUCH'\n\n");
    let out = client("redis-benchmark", &["-p", &p, "-q", "-n", "20000", "-c", "50", "-t", "ping,set,get"]);
    for t in ["PING_INLINE", "PING_MBULK", "SET", "GET"] {
        let done =
            out.split(['\r', '\n']).any(|l| l.starts_with(&format!("{t}: ")) && l.contains("requests per second"));
        assert!(done, "redis-benchmark finished {t}: {out}");
    }
    assert!(!out.to_lowercase().contains("error"), "{out}");
    // Every test of a default run (INCR, lists, sets, hashes, sorted sets,
    // LRANGE, MSET), fewer requests each: each is answered, none with an error.
    let out = client("redis-benchmark", &["-p", &p, "-q", "-n", "500", "-c", "50"]);
    let done = out.split(['\r', '\n']).filter(|l| l.contains(" requests per second")).count();
    assert_eq!(done, 20, "{out}");
    assert!(!out.to_lowercase().contains("error"), "{out}");
    assert_eq!(cli(&["LRANGE", "mylist", "0", "1"]), "VXK\nVXK\n", "the payload redis-benchmark pushed");
    assert!(srv.stop("-TERM").0);
}

fn edge(port: u16, case: &str) -> String {
    client("python3", &[root().join("tests/clients/edge.py").to_str().unwrap(), &port.to_string(), case])
}

#[test]
fn echo_edge_cases_with_python() {
    // A silent client: idle connections end after 300 ms.
    let idle = Server::start(&[], "serve_echo.lua", &["0", "300"], "", 1);
    assert_eq!(edge(idle.port, "silent"), "closed in time\n");
    let (ok, lines) = idle.stop("-TERM");
    assert!(ok && lines == ["served 1 connections"], "{lines:?}");
    // The rest: fds for 2,000 clients and more.
    let srv = Server::start(&[], "serve_echo.lua", &["0"], "ulimit -n 8192 &&", 1);
    assert_eq!(edge(srv.port, "reset"), "after the reset: still here\n");
    assert_eq!(edge(srv.port, "many"), "answered 2000 of 2000\n");
    assert_eq!(edge(srv.port, "halfclose"), "echoed 256000 bytes intact then EOF\n");
    let (ok, lines) = srv.stop("-TERM");
    assert!(ok, "exit 0");
    assert_eq!(lines, ["served 2003 connections"]);
}

/// Served counts of stopped echo servers: each served some, all of `n`.
fn check_spread(lines: &[String], n: u32, servers: usize) {
    let counts: Vec<u32> =
        lines.iter().filter_map(|l| l.strip_prefix("served ")?.strip_suffix(" connections")?.parse().ok()).collect();
    assert_eq!(counts.len(), servers, "{lines:?}");
    assert_eq!(counts.iter().sum::<u32>(), n, "{lines:?}");
    assert!(counts.iter().all(|&c| c > 0), "every process served some: {lines:?}");
}

#[test]
fn two_processes_share_a_port_with_reuseport() {
    let a = Server::start(&[], "serve_echo.lua", &["0"], "", 1);
    let port = a.port.to_string();
    let b = Server::start(&[], "serve_echo.lua", &[&port], "", 1);
    assert_eq!(edge(a.port, "spread"), "answered 100 of 100\n");
    let (ok_a, mut lines) = a.stop("-TERM");
    let (ok_b, lines_b) = b.stop("-TERM");
    assert!(ok_a && ok_b);
    lines.extend(lines_b);
    check_spread(&lines, 100, 2);
}

#[test]
fn workers_share_a_port_and_end_on_sigterm() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let srv = Server::start(&["-w", "2"], "serve_echo.lua", &[&port], "", 2);
    assert_eq!(edge(srv.port, "spread"), "answered 100 of 100\n");
    let (ok, lines) = srv.stop("-TERM");
    assert!(ok, "the parent exits 0 once both workers did");
    check_spread(&lines, 100, 2);
}
