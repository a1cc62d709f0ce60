//! The TLS servers of tests/tls.rs, in the servers' child process (see
//! tests/common): certificates made here with the openssl crate (a CA, an
//! untrusted CA, and for `localhost`/127.0.0.1 a good, an expired, a
//! self-signed and an unknown-CA certificate, one for another name, and a
//! client certificate), `openssl s_server` for the edge cases (each in
//! `-www` mode: its page says whether the session was resumed), two silent
//! listeners (one swallows the handshake, one resets it), and nginx with
//! `ssl` on TCP and a unix socket serving a 1 MiB file, and a TLS server
//! that counts its handshakes (`PING` answers `+PONG <handshakes so far>`,
//! for the pooled-connection test), and a server that misbehaves on
//! purpose (`bad`: cut handshakes and records, plaintext before TLS). Every
//! child is stopped by its pid when the servers end; the files go with them.
//!
//! The scripted peer of tests/peer runs beside them (the harness wants it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509Name, X509};

use crate::common::{self, accept_tcp};
use crate::peer::Peer;

pub mod bad;

pub const SERVERS: common::Servers = common::Servers {
    marker: "TLSPEER",
    what: "the TLS servers",
    required: "TLS_PORT",
    hint: " (they need openssl and nginx: apt-get install openssl nginx)",
};

/// The body of the test `serve_tlspeer`: see `common::serve`.
pub fn serve_child() {
    common::serve(|| {
        let s = Servers::start();
        let vars = s.vars.clone();
        (s, vars)
    });
}

/// The size of the file nginx serves, and its bytes.
pub const BIG: usize = 1 << 20;

pub fn big_byte(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

pub struct Servers {
    _peer: Peer,
    dir: PathBuf,
    children: Vec<Child>,
    stop: Arc<AtomicBool>,
    pub vars: Vec<(&'static str, String)>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// A certificate for `cn` (and `sans`, DNS names or IPs), signed by
/// `issuer` (None: by itself), valid from `from` to `to` days from now.
fn cert(
    cn: &str,
    sans: &[&str],
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    ca: bool,
    from: i64,
    to: i64,
) -> X509 {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let serial = BigNum::from_u32(SERIAL.fetch_add(1, Ordering::SeqCst)).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |i| i.0.subject_name())).unwrap();
    b.set_pubkey(key).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now + from * 86400).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + to * 86400).unwrap()).unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
    }
    if !sans.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for s in sans {
            if s.parse::<std::net::IpAddr>().is_ok() {
                san.ip(s);
            } else {
                san.dns(s);
            }
        }
        let ext = san.build(&b.x509v3_context(issuer.map(|i| &**i.0), None)).unwrap();
        b.append_extension(ext).unwrap();
    }
    b.sign(issuer.map_or(key, |i| i.1), MessageDigest::sha256()).unwrap();
    b.build()
}

fn write_pair(dir: &Path, name: &str, c: &X509, k: &PKey<Private>) {
    std::fs::write(dir.join(format!("{name}.pem")), c.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), k.private_key_to_pem_pkcs8().unwrap()).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

/// `openssl s_server -www` on a free port with `cert` and `args`; returns once it accepts.
fn s_server(dir: &Path, cert: &str, args: &[&str]) -> (Child, u16) {
    let port = free_port();
    let mut child = Command::new("openssl")
        .arg("s_server")
        .arg("-accept")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(dir.join(format!("{cert}.pem")))
        .arg("-key")
        .arg(dir.join(format!("{cert}.key")))
        .arg("-www")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server (apt-get install openssl)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.expect("s_server's output").starts_with("ACCEPT") {
            break;
        }
    }
    thread::spawn(move || lines.for_each(drop));
    (child, port)
}

fn nginx(dir: &Path) -> (Child, u16, PathBuf) {
    let port = free_port();
    let unix = dir.join("nginx.sock");
    let d = dir.display();
    let conf = format!(
        "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp_body;
  proxy_temp_path {d}/tmp_proxy;
  fastcgi_temp_path {d}/tmp_fastcgi;
  uwsgi_temp_path {d}/tmp_uwsgi;
  scgi_temp_path {d}/tmp_scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    listen unix:{u} ssl;
    ssl_certificate {d}/server.pem;
    ssl_certificate_key {d}/server.key;
    keepalive_requests 100000;
    root {d}/www;
  }}
}}
",
        u = unix.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).is_file()).expect("nginx");
    let mut child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("nginx exited ({status}): {}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default());
        }
        assert!(Instant::now() < end, "nginx did not listen within 10 s");
        thread::sleep(Duration::from_millis(20));
    }
    (child, port, unix)
}

impl Servers {
    pub fn start() -> Servers {
        let peer = Peer::start();
        let mut vars = peer.vars();
        let dir = std::env::temp_dir().join(format!("coevent-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("www")).unwrap();
        let host: &[&str] = &["localhost", "127.0.0.1"];

        let ca_key = key();
        let ca = cert("coevent test CA", &[], &ca_key, None, true, -1, 30);
        write_pair(&dir, "ca", &ca, &ca_key);
        let other_key = key();
        let other_ca = cert("coevent other CA", &[], &other_key, None, true, -1, 30);
        let by_ca = Some((&ca, &ca_key));
        for (name, sans, issuer, from, to) in [
            ("server", host, by_ca, -1, 30),
            ("wrong", &["other.test"][..], by_ca, -1, 30),
            ("expired", host, by_ca, -30, -1),
            ("selfsigned", host, None, -1, 30),
            ("unknown", host, Some((&other_ca, &other_key)), -1, 30),
            ("client", &[][..], by_ca, -1, 30),
        ] {
            let k = key();
            let c =
                cert(if name == "client" { "coevent client" } else { "localhost" }, sans, &k, issuer, false, from, to);
            write_pair(&dir, name, &c, &k);
        }
        let big: Vec<u8> = (0..BIG).map(big_byte).collect();
        std::fs::write(dir.join("www/big.bin"), big).unwrap();

        let mut children = Vec::new();
        let ca_file = dir.join("ca.pem").display().to_string();
        let servers: [(&'static str, &str, Vec<&str>); 8] = [
            ("TLS_PORT", "server", vec![]),
            ("TLS_WRONG_PORT", "wrong", vec![]),
            ("TLS_EXPIRED_PORT", "expired", vec![]),
            ("TLS_SELF_PORT", "selfsigned", vec![]),
            ("TLS_UNKNOWN_PORT", "unknown", vec![]),
            ("TLS_CLIENT_PORT", "server", vec!["-Verify", "1", "-CAfile", &ca_file]),
            ("TLS12_PORT", "server", vec!["-tls1_2"]),
            ("TLS13_PORT", "server", vec!["-tls1_3"]),
        ];
        for (var, cert, args) in servers {
            let (child, port) = s_server(&dir, cert, &args);
            children.push(child);
            vars.push((var, port.to_string()));
        }
        let (child, port, unix) = nginx(&dir);
        children.push(child);
        vars.push(("NGINX_TLS_PORT", port.to_string()));
        vars.push(("NGINX_TLS_UNIX", unix.display().to_string()));
        vars.push(("TLS_DIR", dir.display().to_string()));
        vars.push(("TLS_BIG", BIG.to_string()));

        let stop = Arc::new(AtomicBool::new(false));
        // Swallows the ClientHello and never answers (30 s at most).
        let stall = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        vars.push(("TLS_STALL_PORT", stall.local_addr().unwrap().port().to_string()));
        accept_tcp(stall, stop.clone(), |mut c| {
            thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
                let _ = std::io::copy(&mut c, &mut std::io::sink());
            });
        });
        // Reads a byte of the ClientHello and closes with the rest unread: a reset.
        let reset = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        vars.push(("TLS_RESET_PORT", reset.local_addr().unwrap().port().to_string()));
        accept_tcp(reset, stop.clone(), |mut c| {
            let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = c.read(&mut [0u8; 1]);
            thread::sleep(Duration::from_millis(20));
        });
        // Counts handshakes: each `PING` line gets `+PONG <handshakes so far>`.
        let counting = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        vars.push(("TLS_COUNT_PORT", counting.local_addr().unwrap().port().to_string()));
        let mut acc = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        acc.set_private_key_file(dir.join("server.key"), SslFiletype::PEM).unwrap();
        acc.set_certificate_chain_file(dir.join("server.pem")).unwrap();
        let acc = Arc::new(acc.build());
        vars.push(("TLS_BAD_PORT", bad::start(acc.clone(), stop.clone()).to_string()));
        let shakes = Arc::new(AtomicUsize::new(0));
        accept_tcp(counting, stop.clone(), move |c| {
            let (acc, shakes) = (acc.clone(), shakes.clone());
            thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
                let Ok(s) = acc.accept(c) else { return };
                let n = shakes.fetch_add(1, Ordering::SeqCst) + 1;
                let mut s = BufReader::new(s);
                let mut line = String::new();
                while s.read_line(&mut line).unwrap_or(0) > 0 {
                    if line.trim_end() == "PING" && s.get_mut().write_all(format!("+PONG {n}\r\n").as_bytes()).is_err()
                    {
                        break;
                    }
                    line.clear();
                }
            });
        });
        Servers { _peer: peer, dir, children, stop, vars }
    }
}
