//! dnsmasq as a test nameserver, for tests/dnspeer (tests/dns.rs) and
//! tests/ngx.rs: on a free port of 127.0.0.1, answering only the records it is
//! given (every other name NXDOMAIN, never REFUSED), stopped by its pid when
//! dropped. Debian: dnsmasq-base.

use std::io::{self, Read};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use coevent_engine::dns::{self, TYPE_A};

pub const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// dnsmasq, stopped (by its pid) when dropped.
pub struct Dnsmasq {
    child: Child,
    pub port: u16,
}

impl Dnsmasq {
    /// Starts dnsmasq on a free port of 127.0.0.1 (and ::1 when `v6`) with
    /// `records` (dnsmasq options such as `--host-record=name,addr`), and
    /// waits until it answers `probe`, a name with an A record among them.
    pub fn start(records: &[String], v6: bool, probe: &str) -> Dnsmasq {
        let mut last = String::new();
        // A port found free may be taken before dnsmasq binds it: try another.
        for _ in 0..10 {
            let port = free_port(v6);
            match Dnsmasq::try_start(port, records, v6, probe) {
                Ok(d) => return d,
                Err(e) => last = e,
            }
        }
        panic!("dnsmasq would not start: {last}");
    }

    fn try_start(port: u16, records: &[String], v6: bool, probe: &str) -> Result<Dnsmasq, String> {
        let mut cmd = Command::new(DNSMASQ);
        cmd.args([
            "--keep-in-foreground",
            "--no-daemon",
            &format!("--port={port}"),
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--local-ttl=30",
            // Every name it does not know is NXDOMAIN (never REFUSED).
            "--local=/#/",
        ])
        .args(records);
        if v6 {
            cmd.arg("--listen-address=::1");
        }
        if is_root() {
            // Else it drops to nobody, which is fine too, but root needs no setup.
            cmd.arg("--user=root");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("cannot run {DNSMASQ} (Debian: dnsmasq-base): {e}"))?;
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                return Err(format!("dnsmasq exited ({status}): {err}"));
            }
            if query(port, probe, TYPE_A, Duration::from_millis(100)).is_some() {
                // stderr is not read any more: drain it so dnsmasq never blocks on it.
                let mut err = child.stderr.take().unwrap();
                thread::spawn(move || io::copy(&mut err, &mut io::sink()));
                return Ok(Dnsmasq { child, port });
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                return Err("dnsmasq did not answer within 10 s".into());
            }
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// A port free for both UDP and TCP on 127.0.0.1 (and ::1 when `v6`), as of now.
fn free_port(v6: bool) -> u16 {
    loop {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        let free = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && (!v6
                || (UdpSocket::bind((Ipv6Addr::LOCALHOST, port)).is_ok()
                    && TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok()));
        if free {
            return port;
        }
    }
}

/// One UDP question to 127.0.0.1:`port`; the raw response, if one came in time.
pub fn query(port: u16, name: &str, qtype: u16, wait: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    s.connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    let mut q = Vec::new();
    dns::encode_query(0x5eed, name, qtype, &mut q).ok()?;
    s.send(&q).ok()?;
    let mut buf = vec![0u8; 1500];
    let n = s.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}
