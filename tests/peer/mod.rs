//! A scripted peer for the integration tests: plain std, one thread per connection.
//!
//! A client connects (TCP on 127.0.0.1, TCP on [::1] when the host has IPv6
//! loopback, or the unix socket) and sends one command line `CMD args\n`; the peer
//! then behaves as the command says:
//!
//! | command       | behaviour                                                          |
//! |---------------|--------------------------------------------------------------------|
//! | `echo`        | echo everything back until EOF                                     |
//! | `lines`       | send `one\r\ntw\ro\r\n\r\nthree\nlast-no-lf`, then close            |
//! | `bytes N`     | send N bytes, byte i = i % 251, then close                         |
//! | `split N K`   | the same N bytes in writes of K bytes, then close                  |
//! | `drip TEXT`   | send TEXT (`\n` in it: a LF) one byte per write, 2 ms apart, then close |
//! | `silent`      | read and discard until EOF, never answer                           |
//! | `sink`        | read nothing; hold the socket (30 s at most, or until the peer stops)|
//! | `drain N`     | read N bytes, check the pattern, answer `ok N\n` / `bad at I\n` / `short at I\n` |
//! | `ping`        | answer every `PING\r\n` with `+PONG\r\n` until EOF                 |
//! | `close`       | close at once                                                      |
//! | `rst`         | close with unread bytes (send `rst\n` and more): the client gets a reset |
//! | `closeafter MS TEXT` | send TEXT (`\n`: a LF), wait MS ms, then close: a reset if the client sent more than the command line (unread) |
//! | `slow MS TEXT`| send TEXT one byte per write, MS ms apart (the first at once), then read and discard until EOF |
//! | `halfclose KEY TEXT` | send TEXT, shut down writing, then read until EOF checking the `bytes` pattern; the verdict (`ok N` / `bad at I`) is kept under KEY |
//! | `tally KEY`   | wait (10 s at most) for KEY's verdict, answer it and a LF, then close |
//! | `lateecho US` | echo each read back after a pause of US microseconds, until EOF    |
//!
//! Also: `refused_port`, a port that was bound and closed (connect is refused),
//! `full_port`, a listener whose accept queue is full (a connect to it times out),
//! and `dns_port`, a UDP nameserver on 127.0.0.1: `peer.test` has the A record
//! 127.0.0.1 (TTL 60) and no AAAA; every other name does not exist. The
//! datagram servers (and memcached) are in udp.rs.

mod udp;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{self, accept_tcp, accept_unix};

/// For tests/common: the peer's child process.
pub const SERVERS: common::Servers =
    common::Servers { marker: "PEER", what: "the peer", required: "PEER_PORT", hint: "" };

/// The body of the test `serve_peer`: see `common::serve`.
pub fn serve_child() {
    common::serve(|| {
        let p = Peer::start();
        let vars = p.vars();
        (p, vars)
    });
}

/// The byte at offset `i` of the `bytes`, `split` and `drain` data.
pub fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

pub const LINES: &[u8] = b"one\r\ntw\ro\r\n\r\nthree\nlast-no-lf";

trait Conn: Read + Write + Send + std::any::Any {}
impl<T: Read + Write + Send + std::any::Any> Conn for T {}

/// Shuts down the writing side of a connection (TCP or unix).
fn shutdown_write(c: &dyn Conn) -> io::Result<()> {
    let any: &dyn std::any::Any = c;
    if let Some(t) = any.downcast_ref::<TcpStream>() {
        return t.shutdown(Shutdown::Write);
    }
    match any.downcast_ref::<UnixStream>() {
        Some(u) => u.shutdown(Shutdown::Write),
        None => Err(io::Error::other("not a socket")),
    }
}

/// The verdicts of `halfclose` connections, by key, for `tally`.
fn verdicts() -> &'static (Mutex<HashMap<String, String>>, Condvar) {
    static V: OnceLock<(Mutex<HashMap<String, String>>, Condvar)> = OnceLock::new();
    V.get_or_init(Default::default)
}

pub struct Peer {
    pub port: u16,
    pub port6: Option<u16>,
    pub unix_path: PathBuf,
    pub refused_port: u16,
    pub full_port: Option<u16>,
    pub dns_port: u16,
    pub udp: udp::Udp,
    stop: Arc<AtomicBool>,
    /// The full listener and the connections that fill its queue.
    _full: Option<(TcpListener, Vec<TcpStream>)>,
}

impl Peer {
    pub fn start() -> Peer {
        let stop = Arc::new(AtomicBool::new(false));
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
        let port = v4.local_addr().unwrap().port();
        spawn_tcp(v4, stop.clone());
        let port6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).ok().map(|l6| {
            let p = l6.local_addr().unwrap().port();
            spawn_tcp(l6, stop.clone());
            p
        });
        static N: AtomicUsize = AtomicUsize::new(0);
        let unix_path = std::env::temp_dir().join(format!(
            "coevent-peer-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&unix_path);
        let ul = UnixListener::bind(&unix_path).expect("bind unix socket");
        let st = stop.clone();
        accept_unix(ul, stop.clone(), move |c| handle(Box::new(c), st.clone()));
        let refused_port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let full = fill_queue();
        let full_port = full.as_ref().map(|(l, _)| l.local_addr().unwrap().port());
        let dns = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp");
        let dns_port = dns.local_addr().unwrap().port();
        thread::spawn(move || nameserver(dns));
        let udp = udp::Udp::start(unix_path.with_extension("dgram"));
        Peer { port, port6, unix_path, refused_port, full_port, dns_port, udp, stop, _full: full }
    }

    /// `(name, value)` of what a script needs: Lua globals `PEER_*`, env `COEVENT_PEER_*`.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("PEER_PORT", self.port.to_string()),
            ("PEER_UNIX", self.unix_path.display().to_string()),
            ("PEER_REFUSED_PORT", self.refused_port.to_string()),
            ("PEER_DNS_PORT", self.dns_port.to_string()),
            ("PEER_UDP_PORT", self.udp.port.to_string()),
            ("PEER_UDP_UNIX", self.udp.unix.display().to_string()),
            ("PEER_UDP_REFUSED_PORT", self.udp.refused.to_string()),
        ];
        v.extend(self.udp.memcached.as_ref().map(|m| ("PEER_MEMCACHED_PORT", m.port.to_string())));
        v.extend(self.port6.map(|p| ("PEER_PORT6", p.to_string())));
        v.extend(self.full_port.map(|p| ("PEER_FULL_PORT", p.to_string())));
        v
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(p) = self.port6 {
            let _ = TcpStream::connect((Ipv6Addr::LOCALHOST, p));
        }
        let _ = UnixStream::connect(&self.unix_path);
        let _ = std::fs::remove_file(&self.unix_path);
    }
}

/// A listener nobody accepts on, its queue filled, so that further SYNs go unanswered.
fn fill_queue() -> Option<(TcpListener, Vec<TcpStream>)> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    let addr = l.local_addr().ok()?;
    let mut conns = Vec::new();
    while conns.len() < 5000 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(30)) {
            Ok(c) => conns.push(c),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Some((l, conns)),
            Err(_) => return None,
        }
    }
    None
}

/// Answers each query: header, the question, and for `peer.test` A one answer.
fn nameserver(sock: UdpSocket) {
    let mut q = [0u8; 512];
    while let Ok((n, from)) = sock.recv_from(&mut q) {
        let (mut end, mut labels) = (12, Vec::new());
        while end < n && q[end] != 0 {
            labels
                .push(String::from_utf8_lossy(q.get(end + 1..end + 1 + q[end] as usize).unwrap_or(&[])).to_lowercase());
            end += 1 + q[end] as usize;
        }
        let Some(question) = q.get(12..end + 5).filter(|_| n >= 12) else { continue };
        let qtype = u16::from_be_bytes([question[question.len() - 4], question[question.len() - 3]]);
        let known = labels == ["peer", "test"];
        let answer = known && qtype == 1;
        let mut r =
            vec![q[0], q[1], 0x80 | (q[2] & 1), if known { 0x80 } else { 0x83 }, 0, 1, 0, answer as u8, 0, 0, 0, 0];
        r.extend_from_slice(question);
        if answer {
            r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        }
        let _ = sock.send_to(&r, from);
    }
}

fn spawn_tcp(l: TcpListener, stop: Arc<AtomicBool>) {
    let st = stop.clone();
    accept_tcp(l, stop, move |c| handle(Box::new(c), st.clone()));
}

fn handle(c: Box<dyn Conn>, stop: Arc<AtomicBool>) {
    let t = thread::Builder::new().stack_size(64 * 1024).spawn(move || {
        let _ = serve(c, &stop);
    });
    t.expect("spawn a peer connection thread");
}

/// Reads the command line byte by byte, so nothing after it is consumed.
fn command(c: &mut dyn Conn) -> io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8];
    while line.len() < 4096 {
        if c.read(&mut b)? == 0 || b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn serve(mut c: Box<dyn Conn>, stop: &AtomicBool) -> io::Result<()> {
    let line = command(&mut *c)?;
    let (cmd, args) = line.split_once(' ').unwrap_or((&line, ""));
    let num = |i: usize| args.split(' ').nth(i).and_then(|a| a.parse::<usize>().ok()).unwrap_or(0);
    let data = |n: usize| (0..n).map(pattern).collect::<Vec<u8>>();
    // The text after the first argument, `\n` in it a LF.
    let text = |args: &str| args.split_once(' ').map_or(String::new(), |(_, t)| t.replace("\\n", "\n"));
    let mut buf = vec![0u8; 16 * 1024];
    match cmd {
        "echo" => loop {
            let n = c.read(&mut buf)?;
            if n == 0 {
                break;
            }
            c.write_all(&buf[..n])?;
        },
        "lines" => c.write_all(LINES)?,
        // A line that never ends: 'x' until the client goes away.
        "endless" => loop {
            buf.fill(b'x');
            if c.write_all(&buf).is_err() {
                break;
            }
        },
        // N bytes of the pattern (N may be GiBs), from one block a whole
        // number of patterns long, so each write continues where the last ended.
        "stream" => {
            let block = data(251 * 256);
            let mut left = num(0);
            while left > 0 {
                let n = block.len().min(left);
                if c.write_all(&block[..n]).is_err() {
                    break;
                }
                left -= n;
            }
        }
        "bytes" => c.write_all(&data(num(0)))?,
        "split" => {
            for chunk in data(num(0)).chunks(num(1).max(1)) {
                c.write_all(chunk)?;
                c.flush()?;
            }
        }
        "drip" => {
            for b in args.replace("\\n", "\n").bytes() {
                c.write_all(&[b])?;
                thread::sleep(Duration::from_millis(2));
            }
        }
        "silent" => while c.read(&mut buf)? > 0 {},
        "sink" => {
            let end = Instant::now() + Duration::from_secs(30);
            while Instant::now() < end && !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10));
            }
        }
        "drain" => {
            let (want, mut got) = (num(0), 0);
            let reply = loop {
                if got == want {
                    break format!("ok {want}\n");
                }
                let n = c.read(&mut buf[..(want - got).min(16 * 1024)])?;
                if n == 0 {
                    break format!("short at {got}\n");
                }
                if let Some(i) = buf[..n].iter().enumerate().position(|(i, &b)| b != pattern(got + i)) {
                    break format!("bad at {}\n", got + i);
                }
                got += n;
            };
            c.write_all(reply.as_bytes())?;
        }
        "ping" => {
            let mut pending = Vec::new();
            loop {
                let n = c.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&buf[..n]);
                let k = pending.windows(6).filter(|w| w == b"PING\r\n").count();
                if let Some(end) = pending.windows(6).rposition(|w| w == b"PING\r\n") {
                    pending.drain(..end + 6);
                }
                c.write_all(&b"+PONG\r\n".repeat(k))?;
            }
        }
        // Dropping the connection with bytes unread makes the kernel send a reset.
        "close" | "rst" => {}
        "closeafter" => {
            c.write_all(text(args).as_bytes())?;
            c.flush()?;
            thread::sleep(Duration::from_millis(num(0) as u64));
        }
        "slow" => {
            for (i, b) in text(args).bytes().enumerate() {
                if i > 0 {
                    thread::sleep(Duration::from_millis(num(0) as u64));
                }
                c.write_all(&[b])?;
            }
            while c.read(&mut buf)? > 0 {}
        }
        "halfclose" => {
            c.write_all(text(args).as_bytes())?;
            shutdown_write(&*c)?;
            let mut got = 0;
            let verdict = loop {
                let n = c.read(&mut buf)?;
                if n == 0 {
                    break format!("ok {got}");
                }
                if let Some(i) = buf[..n].iter().enumerate().position(|(i, &b)| b != pattern(got + i)) {
                    break format!("bad at {}", got + i);
                }
                got += n;
            };
            let key = args.split(' ').next().unwrap_or("").to_string();
            let (map, cv) = verdicts();
            map.lock().unwrap().insert(key, verdict);
            cv.notify_all();
        }
        "tally" => {
            let (map, cv) = verdicts();
            let end = Instant::now() + Duration::from_secs(10);
            let mut m = map.lock().unwrap();
            let verdict = loop {
                if let Some(v) = m.remove(args) {
                    break v;
                }
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break "no verdict".to_string();
                }
                m = cv.wait_timeout(m, left).unwrap().0;
            };
            drop(m);
            c.write_all(format!("{verdict}\n").as_bytes())?;
        }
        "lateecho" => loop {
            let n = c.read(&mut buf)?;
            if n == 0 {
                break;
            }
            thread::sleep(Duration::from_micros(num(0) as u64));
            c.write_all(&buf[..n])?;
        },
        _ => c.write_all(format!("unknown command {line:?}\n").as_bytes())?,
    }
    Ok(())
}

/// Connects to the peer over IPv4, sends a command and shuts the writing side.
#[allow(dead_code)]
pub fn connect(port: u16, cmd: &str) -> TcpStream {
    let mut s = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).unwrap();
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let _ = s.shutdown(Shutdown::Write);
    s
}

/// `connect`, then all the peer sends until it closes.
pub fn answer(port: u16, cmd: &str) -> Vec<u8> {
    let mut v = Vec::new();
    connect(port, cmd).read_to_end(&mut v).unwrap();
    v
}
