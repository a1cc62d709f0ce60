//! Small helpers for bench/run.sh, std + libc only.
//!
//! benchtool freeport                 print a free TCP port on 127.0.0.1
//! benchtool rusage OUT CMD [ARGS..]  run CMD, then write to OUT one line:
//!                                    `wall_s utime_s stime_s maxrss_kb exit_code`
//!                                    (getrusage of the child via wait4: the
//!                                    total is exact, the user/system split is
//!                                    the kernel's tick-sampled one)
//! benchtool payload-server PORTFILE LIFETIME_S
//!                                    serve payloads on 127.0.0.1 (a free port,
//!                                    written to PORTFILE); a connection sends
//!                                    lines `GET <bytes>` (answered, connection
//!                                    kept) or `ALL <bytes>` (answered, then the
//!                                    server closes); the process exits by itself
//!                                    after LIFETIME_S seconds

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{exit, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn die(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("benchtool: {what}: {e}");
    exit(1)
}

fn freeport() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| die("bind", e));
    println!("{}", l.local_addr().unwrap().port());
}

fn rusage(out: &str, cmd: &[String]) {
    let t0 = Instant::now();
    let child = Command::new(&cmd[0]).args(&cmd[1..]).spawn().unwrap_or_else(|e| die(&cmd[0], e));
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: status and ru are valid for the call; pid is our child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            die("wait4", e);
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let line = format!(
        "{wall:.6} {:.6} {:.6} {} {code}\n",
        tv(ru.ru_utime),
        tv(ru.ru_stime),
        ru.ru_maxrss
    );
    std::fs::write(out, line).unwrap_or_else(|e| die(out, e));
    exit(code);
}

fn serve(mut s: TcpStream, payload: Arc<Vec<u8>>) {
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut it = line.split_whitespace();
        let (verb, n) = (it.next().unwrap_or(""), it.next().and_then(|n| n.parse::<usize>().ok()));
        let n = match n {
            Some(n) if n <= payload.len() => n,
            _ => return,
        };
        if s.write_all(&payload[..n]).is_err() {
            return;
        }
        match verb {
            "GET" => continue,
            _ => return, // ALL: close after the payload
        }
    }
}

fn payload_server(portfile: &str, lifetime: u64) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| die("bind", e));
    let port = l.local_addr().unwrap().port();
    std::fs::write(portfile, format!("{port}\n")).unwrap_or_else(|e| die(portfile, e));
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(lifetime));
        eprintln!("benchtool payload-server: lifetime over, exiting");
        exit(0);
    });
    let payload: Arc<Vec<u8>> = Arc::new((0..4 << 20).map(|i| b'a' + (i % 26) as u8).collect());
    for s in l.incoming() {
        match s {
            Ok(s) => {
                let p = payload.clone();
                std::thread::spawn(move || serve(s, p));
            }
            Err(e) => eprintln!("benchtool payload-server: accept: {e}"),
        }
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("freeport") => freeport(),
        Some("rusage") if a.len() >= 4 => rusage(&a[2], &a[3..]),
        Some("payload-server") if a.len() == 4 => {
            payload_server(&a[2], a[3].parse().unwrap_or_else(|e| die("lifetime", e)))
        }
        _ => {
            eprintln!("usage: benchtool freeport | rusage OUT CMD [ARGS..] | payload-server PORTFILE LIFETIME_S");
            exit(2)
        }
    }
}
