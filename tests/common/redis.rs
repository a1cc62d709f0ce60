//! A redis-server for the tests: on a free port of 127.0.0.1, stopped by pid.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A redis-server on a free port of 127.0.0.1, stopped (by pid) when dropped.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// Starts redis-server with RLIMIT_NOFILE raised to `nofile` (see
    /// `raise_nofile`); waits for its "Ready to accept connections" line.
    pub fn start(nofile: u32, maxclients: u32) -> Redis {
        let which = Command::new("sh").args(["-c", "command -v redis-server"]).output();
        assert!(
            which.is_ok_and(|o| o.status.success()),
            "redis-server is missing (Debian: apt-get install redis-server)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{} && exec \"$0\" \"$@\"", raise_nofile(nofile)))
            .arg("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--maxclients", &maxclients.to_string(), "--logfile", "", "--daemonize", "no"])
            .args(["--tcp-backlog", "4096", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start redis-server");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut log = Vec::new();
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) => {
                    let ready = l.contains("Ready to accept connections");
                    log.push(l);
                    if ready {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let mut e = String::new();
                    let _ = child.stderr.take().unwrap().read_to_string(&mut e);
                    let _ = child.wait();
                    panic!("redis-server did not start:\n{}\n{e}", log.join("\n"));
                }
            }
        }
        for l in log.iter().filter(|l| l.contains("maxclients") || l.contains("max number of open files")) {
            println!("redis-server: {l}");
        }
        thread::spawn(move || rx.iter().for_each(drop));
        Redis { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Shell commands that raise RLIMIT_NOFILE to `n`, or to the hard limit if that
/// is lower and cannot be raised (a root without CAP_SYS_RESOURCE).
pub fn raise_nofile(n: u32) -> String {
    format!(
        "ulimit -Hn {n} 2>/dev/null; h=$(ulimit -Hn); n={n}; \
         if [ \"$h\" != unlimited ] && [ \"$h\" -lt {n} ]; then n=$h; fi; ulimit -n $n"
    )
}
