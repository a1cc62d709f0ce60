//! The servers the Lua resolver tests (tests/lua/dns) talk to, run in a child
//! process by tests/dns.rs:
//!
//! | variable          | what                                                               |
//! |-------------------|--------------------------------------------------------------------|
//! | `DNS_PORT`        | dnsmasq on 127.0.0.1 (and ::1 if `DNS_PORT6` is set, same port): `v4.test` A 127.0.0.1, `v6.test` AAAA ::1, `both.test` both, `alias.test` CNAME both.test, `db.corp.test` A 127.0.0.1, `nx.test` and every other name NXDOMAIN |
//! | `DNS_SILENT_PORT` | a UDP port that reads questions and never answers                   |
//! | `DNS_SERVFAIL_PORT` | answers every question SERVFAIL                                  |
//! | `DNS_COUNT_PORT`  | UDP: A 127.0.0.1 (TTL 60) for any name, AAAA no data; TCP on the same port: send `name\n`, get `N\n`, the number of questions for that name so far |
//! | `ECHO_PORT`, `ECHO_PORT6`, `ECHO_UNIX` | TCP on 127.0.0.1, on ::1, a unix socket: `hello v4\n` (`v6`, `unix`) on accept, then echo until EOF; nothing listens on 127.0.0.1 at `ECHO_PORT6` |
//! | `DNS_HOSTS`       | a hosts file: `fromhosts.test` 127.0.0.1, `v4.test` 127.0.0.9       |
//! | `DNS_RESOLV_CONF` | `search corp.test`, `options ndots:1 timeout:1 attempts:1`          |
//! | `DNS_SLOW_CONF`   | `options timeout:5 attempts:1`                                      |
//! | `DNS_QUICK_CONF`  | `options timeout:1 attempts:1`                                      |
//! | `DNS_EMPTY_HOSTS` | an empty hosts file                                                 |
//! | `DNS_ENV_HOSTS`, `DNS_ENV_RESOLV_CONF` | files for COEVENT_HOSTS / COEVENT_RESOLV_CONF: `fromenv.test` 127.0.0.1; `search env.test` (no such domain, so lookups of single labels fail) |
//!
//! Also `PEER_PORT` and `PEER_UNIX` (the echo peer), which tests/lua/harness.lua requires.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use coevent_engine::dns::{self, TYPE_A};

pub use crate::common::dnsmasq::query;
use crate::common::dnsmasq::Dnsmasq;
use crate::common::{self, accept_tcp, accept_unix};

/// For tests/common: the servers' child process.
pub const SERVERS: common::Servers =
    common::Servers { marker: "DNSPEER", what: "the dns peer", required: "DNS_PORT", hint: " (is dnsmasq installed?)" };

/// The body of the test `serve_dnspeer`: see `common::serve`. The servers stop
/// dnsmasq when dropped.
pub fn serve_child() {
    common::serve(|| {
        let p = DnsPeer::start();
        let vars = p.vars().to_vec();
        (p, vars)
    });
}

/// dnsmasq's records for `DNS_PORT` (see the table above).
fn records() -> Vec<String> {
    [
        "--address=/nx.test/",
        "--host-record=v4.test,127.0.0.1",
        "--host-record=v6.test,::1",
        "--host-record=both.test,127.0.0.1,::1",
        "--host-record=db.corp.test,127.0.0.1",
        "--cname=alias.test,both.test",
    ]
    .map(String::from)
    .to_vec()
}

/// A response to `query` (its header and question kept): `rcode`, and an A
/// record for the question's name if `a` is given.
fn respond(query: &[u8], rcode: u8, a: Option<Ipv4Addr>) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let mut probe = query.to_vec();
    probe[2] |= 0x80;
    let q = dns::parse_response(&probe).ok()?;
    // Header and question only (the question ends 4 bytes after its name).
    let mut m = Vec::new();
    dns::encode_query(q.id, &q.qname, q.qtype, &mut m).ok()?;
    let flags = 0x8180 | u16::from(rcode);
    m[2..4].copy_from_slice(&flags.to_be_bytes());
    if let (Some(ip), TYPE_A) = (a, q.qtype) {
        m[7] = 1;
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        m.extend_from_slice(&ip.octets());
    }
    Some(m)
}

/// Serves UDP questions with `answer` until `stop`.
fn udp_server(s: UdpSocket, stop: Arc<AtomicBool>, answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static) {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !stop.load(Ordering::SeqCst) {
            let Ok((n, from)) = s.recv_from(&mut buf) else { continue };
            if let Some(r) = answer(&buf[..n]) {
                let _ = s.send_to(&r, from);
            }
        }
    });
}

trait Conn: Read + Write + Send + 'static {
    fn close(&self);
}
impl Conn for TcpStream {
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}
impl Conn for UnixStream {
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// `hello <what>\n`, then echo until EOF.
fn echo(mut c: impl Conn, what: &'static str) {
    thread::spawn(move || {
        if c.write_all(format!("hello {what}\n").as_bytes()).is_err() {
            return;
        }
        let mut buf = [0u8; 4096];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        c.close();
    });
}

pub struct DnsPeer {
    /// Kept for its Drop, which stops it.
    _dnsmasq: Dnsmasq,
    vars: Vec<(&'static str, String)>,
    files: Vec<PathBuf>,
    wake: Vec<SocketAddr>,
    unix: PathBuf,
    stop: Arc<AtomicBool>,
    _silent: UdpSocket,
}

impl DnsPeer {
    pub fn start() -> DnsPeer {
        let stop = Arc::new(AtomicBool::new(false));
        let has_v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
        let dnsmasq = Dnsmasq::start(&records(), has_v6, "v4.test");
        let mut vars = vec![("DNS_PORT", dnsmasq.port.to_string())];
        if has_v6 {
            vars.push(("DNS_PORT6", dnsmasq.port.to_string()));
        }
        let mut wake = Vec::new();

        let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        vars.push(("DNS_SILENT_PORT", silent.local_addr().unwrap().port().to_string()));

        let servfail = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        vars.push(("DNS_SERVFAIL_PORT", servfail.local_addr().unwrap().port().to_string()));
        udp_server(servfail, stop.clone(), |q| respond(q, dns::RCODE_SERVFAIL, None));

        // The counting server: UDP and TCP on one port.
        let (cu, ct) = loop {
            let u = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            if let Ok(t) = TcpListener::bind(u.local_addr().unwrap()) {
                break (u, t);
            }
        };
        // Questions per name (lowercase): runs in several processes share this server.
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        vars.push(("DNS_COUNT_PORT", cu.local_addr().unwrap().port().to_string()));
        wake.push(ct.local_addr().unwrap());
        let c = counts.clone();
        udp_server(cu, stop.clone(), move |q| {
            let mut probe = q.to_vec();
            *probe.get_mut(2)? |= 0x80;
            let name = dns::parse_response(&probe).ok()?.qname;
            *c.lock().unwrap().entry(name).or_default() += 1;
            respond(q, dns::RCODE_NOERROR, Some(Ipv4Addr::LOCALHOST))
        });
        accept_tcp(ct, stop.clone(), move |c| {
            let counts = counts.clone();
            thread::spawn(move || {
                let mut name = String::new();
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                if BufReader::new(&c).read_line(&mut name).is_ok() {
                    let n = counts.lock().unwrap().get(&name.trim().to_ascii_lowercase()).copied().unwrap_or(0);
                    let _ = (&c).write_all(format!("{n}\n").as_bytes());
                }
            });
        });

        // The echo peer.
        let l4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l4.local_addr().unwrap().port();
        wake.push(l4.local_addr().unwrap());
        accept_tcp(l4, stop.clone(), |c| echo(c, "v4"));
        vars.push(("ECHO_PORT", port.to_string()));
        vars.push(("PEER_PORT", port.to_string()));
        if has_v6 {
            // A port whose 127.0.0.1 side is free (so a connect there is refused).
            let l6 = loop {
                let l6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
                if TcpListener::bind((Ipv4Addr::LOCALHOST, l6.local_addr().unwrap().port())).is_ok() {
                    break l6;
                }
            };
            vars.push(("ECHO_PORT6", l6.local_addr().unwrap().port().to_string()));
            wake.push(l6.local_addr().unwrap());
            accept_tcp(l6, stop.clone(), |c| echo(c, "v6"));
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        let tmp = |what: &str| {
            let n = N.fetch_add(1, Ordering::Relaxed);
            std::env::temp_dir().join(format!("coevent-dnspeer-{}-{n}-{what}", std::process::id()))
        };
        let unix = tmp("echo.sock");
        let _ = std::fs::remove_file(&unix);
        let ul = UnixListener::bind(&unix).expect("bind a unix socket");
        accept_unix(ul, stop.clone(), |c| echo(c, "unix"));
        vars.push(("ECHO_UNIX", unix.display().to_string()));
        vars.push(("PEER_UNIX", unix.display().to_string()));

        let mut files = Vec::new();
        for (var, text) in [
            ("DNS_HOSTS", "# coevent dns tests\n127.0.0.1 fromhosts.test\n127.0.0.9 v4.test\n"),
            ("DNS_EMPTY_HOSTS", ""),
            ("DNS_RESOLV_CONF", "search corp.test\noptions ndots:1 timeout:1 attempts:1\n"),
            ("DNS_SLOW_CONF", "options timeout:5 attempts:1\n"),
            ("DNS_QUICK_CONF", "options timeout:1 attempts:1\n"),
            ("DNS_ENV_HOSTS", "127.0.0.1 fromenv.test\n"),
            ("DNS_ENV_RESOLV_CONF", "search env.test\noptions timeout:1 attempts:1\n"),
        ] {
            let p = tmp(var);
            std::fs::write(&p, text).unwrap();
            vars.push((var, p.display().to_string()));
            files.push(p);
        }
        DnsPeer { _dnsmasq: dnsmasq, vars, files, wake, unix, stop, _silent: silent }
    }

    /// `(name, value)`: Lua globals, or `COEVENT_<name>` in a child's environment.
    pub fn vars(&self) -> &[(&'static str, String)] {
        &self.vars
    }
}

impl Drop for DnsPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for a in &self.wake {
            let _ = TcpStream::connect(a);
        }
        let _ = UnixStream::connect(&self.unix);
        let _ = std::fs::remove_file(&self.unix);
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}
