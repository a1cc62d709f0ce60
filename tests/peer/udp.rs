//! The peer's datagram servers, for `cosocket.udp`: a UDP one on 127.0.0.1
//! and a unix one, each answering every datagram it reads:
//!
//! | datagram   | answer                                                  |
//! |------------|---------------------------------------------------------|
//! | `many N`   | N datagrams, `1` to `N`                                 |
//! | `big N`    | one datagram of N bytes, byte i = i % 251               |
//! | `silent`   | nothing                                                 |
//! | `whoami`   | the sender's address, `127.0.0.1:PORT` (UDP only)       |
//! | other      | the same bytes back                                     |
//!
//! Also a UDP port nobody listens on (a datagram sent there is answered by
//! ICMP port unreachable), and memcached (`-U`) when it is installed.

use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::pattern;

pub const MEMCACHED: &str = "/usr/bin/memcached";

pub struct Udp {
    pub port: u16,
    pub unix: PathBuf,
    pub refused: u16,
    pub memcached: Option<Memcached>,
}

impl Udp {
    pub fn start(unix: PathBuf) -> Udp {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp");
        let port = s.local_addr().unwrap().port();
        thread::spawn(move || {
            let mut b = vec![0u8; 70_000];
            while let Ok((n, from)) = s.recv_from(&mut b) {
                let who = from.to_string().into_bytes();
                for a in answers(&b[..n], &who) {
                    let _ = s.send_to(&a, from);
                }
            }
        });
        let _ = std::fs::remove_file(&unix);
        let u = UnixDatagram::bind(&unix).expect("bind a unix datagram socket");
        thread::spawn(move || {
            let mut b = vec![0u8; 70_000];
            while let Ok((n, from)) = u.recv_from(&mut b) {
                for a in answers(&b[..n], b"") {
                    let _ = send_unix(&u, &a, &from);
                }
            }
        });
        let refused = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        Udp { port, unix, refused, memcached: Memcached::start() }
    }
}

impl Drop for Udp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.unix);
    }
}

fn send_unix(u: &UnixDatagram, b: &[u8], to: &UnixAddr) -> io::Result<usize> {
    match to.as_pathname() {
        Some(p) => u.send_to(b, p),
        None => u.send_to_addr(b, to),
    }
}

fn answers(m: &[u8], who: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(m);
    let (cmd, arg) = text.split_once(' ').unwrap_or((&text, ""));
    let n = arg.trim().parse::<usize>().unwrap_or(0);
    match cmd {
        "many" => (1..=n).map(|i| i.to_string().into_bytes()).collect(),
        "big" => vec![(0..n).map(pattern).collect()],
        "silent" => Vec::new(),
        "whoami" => vec![who.to_vec()],
        _ => vec![m.to_vec()],
    }
}

/// memcached listening on UDP (and TCP, the same port) on 127.0.0.1; killed when dropped.
pub struct Memcached {
    child: Child,
    pub port: u16,
}

impl Memcached {
    fn start() -> Option<Memcached> {
        if !std::path::Path::new(MEMCACHED).exists() {
            return None;
        }
        for _ in 0..5 {
            let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?.local_addr().ok()?.port();
            let p = port.to_string();
            let mut cmd = Command::new(MEMCACHED);
            cmd.args(["-l", "127.0.0.1", "-U", &p, "-p", &p, "-m", "8", "-c", "64"]);
            // memcached refuses to run as root without -u, and ignores it otherwise.
            cmd.args(["-u", "nobody"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            let Ok(child) = cmd.spawn() else { return None };
            let mut m = Memcached { child, port };
            if m.answers() {
                return Some(m);
            }
            let _ = m.child.kill();
        }
        None
    }

    /// Whether it answers a UDP `version` request within 5 s.
    fn answers(&mut self) -> bool {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let _ = s.send_to(b"\0\x01\0\0\0\x01\0\0version\r\n", (Ipv4Addr::LOCALHOST, self.port));
            let mut b = [0u8; 64];
            if s.recv(&mut b).is_ok_and(|n| b[8..n].starts_with(b"VERSION")) {
                return true;
            }
        }
        false
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
