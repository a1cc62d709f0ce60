//! The resolver's state machine on the reactor, against scripted DNS servers:
//! each one a UDP socket and a TCP listener on the same loopback port, served
//! by plain threads, answers built byte by byte. The tests play the Lua layer's
//! part: `lookup`, `add_waiter`, then poll and route query tokens to
//! `on_wake` until the waiter is handed its answer.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use coevent_engine::dns::{self, TYPE_A, TYPE_AAAA, TYPE_CNAME};
use coevent_engine::reactor::{Reactor, Token};
use coevent_engine::resolver::{Answer, Config, Error, Lookup, Resolver, CACHE_SIZE, NEGATIVE_TTL};
use coevent_engine::slab::Slab;

const NOERROR: u8 = 0;
const SERVFAIL: u8 = 2;
const NXDOMAIN: u8 = 3;
const REFUSED: u8 = 5;

/// Longest any single lookup may take here (the slowest waits two 1 s timeouts).
const LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// The scripted server

/// A question the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    tcp: bool,
    id: u16,
    /// Lowercase dotted, as `dns::parse_response` gives it.
    name: String,
    qtype: u16,
}

/// What the server sends back for one question.
enum Out {
    /// A message (over TCP, length-prefixed by the server).
    Msg(Vec<u8>),
    /// A datagram sent from another UDP port of the server's address.
    FromOtherPort(Vec<u8>),
    /// Over TCP: the message written one byte per write.
    Drip(Vec<u8>),
    /// A pause before what follows.
    Sleep(u64),
}

/// Called with the question and every question seen before it (either transport).
type Script = Box<dyn FnMut(&Seen, &[Seen]) -> Vec<Out> + Send>;

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    fn start(script: impl FnMut(&Seen, &[Seen]) -> Vec<Out> + Send + 'static) -> Server {
        Server::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), script).expect("a UDP and a TCP port on 127.0.0.1")
    }

    /// A server that reads the questions and never answers.
    fn silent() -> Server {
        Server::start(|_, _| Vec::new())
    }

    /// Binds UDP and TCP on one free port of `ip`; None if `ip` is not there.
    fn start_on(ip: IpAddr, script: impl FnMut(&Seen, &[Seen]) -> Vec<Out> + Send + 'static) -> Option<Server> {
        let (udp, tcp) = (0..50).find_map(|_| {
            let udp = UdpSocket::bind((ip, 0)).ok()?;
            let tcp = TcpListener::bind(udp.local_addr().ok()?).ok()?;
            Some((udp, tcp))
        })?;
        let addr = udp.local_addr().unwrap();
        let other = UdpSocket::bind((ip, 0)).unwrap();
        let script: Arc<Mutex<Script>> = Arc::new(Mutex::new(Box::new(script)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();

        let (sc, sn, st) = (script.clone(), seen.clone(), stop.clone());
        udp.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        threads.push(thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::SeqCst) {
                let (n, from) = match udp.recv_from(&mut buf) {
                    Ok(x) => x,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
                    Err(e) => panic!("dns server: recv_from: {e}"),
                };
                let Some(q) = parse_query(&buf[..n], false) else { continue };
                for out in ask(&sc, &sn, q) {
                    let _ = match out {
                        Out::Msg(m) | Out::Drip(m) => udp.send_to(&m, from),
                        Out::FromOtherPort(m) => other.send_to(&m, from),
                        Out::Sleep(ms) => {
                            thread::sleep(Duration::from_millis(ms));
                            Ok(0)
                        }
                    };
                }
            }
        }));

        let (sc, sn, st) = (script, seen.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            for conn in tcp.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (sc, sn) = (sc.clone(), sn.clone());
                thread::spawn(move || serve_tcp(conn, &sc, &sn));
            }
        }));
        Some(Server { addr, seen, stop, threads })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// (UDP, TCP) questions received so far.
    fn count(&self) -> (usize, usize) {
        let s = self.seen();
        let tcp = s.iter().filter(|q| q.tcp).count();
        (s.len() - tcp, tcp)
    }

    /// (name, qtype) of every question, in order.
    fn questions(&self) -> Vec<(String, u16)> {
        self.seen().into_iter().map(|q| (q.name, q.qtype)).collect()
    }

    /// Waits (a little) until `n` questions have arrived: a lookup can end
    /// before the second of its two questions is read by the server thread.
    fn wait_count(&self, n: usize) {
        let until = Instant::now() + Duration::from_secs(2);
        while self.seen.lock().unwrap().len() < n && Instant::now() < until {
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Logs `q`, then runs the script on it.
fn ask(script: &Mutex<Script>, seen: &Mutex<Vec<Seen>>, q: Seen) -> Vec<Out> {
    let before = {
        let mut s = seen.lock().unwrap();
        let before = s.clone();
        s.push(q.clone());
        before
    };
    (script.lock().unwrap())(&q, &before)
}

fn serve_tcp(mut conn: TcpStream, script: &Mutex<Script>, seen: &Mutex<Vec<Seen>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = conn.set_nodelay(true);
    loop {
        let mut len = [0u8; 2];
        if conn.read_exact(&mut len).is_err() {
            return;
        }
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        if conn.read_exact(&mut msg).is_err() {
            return;
        }
        let Some(q) = parse_query(&msg, true) else { continue };
        for out in ask(script, seen, q) {
            let (m, drip) = match out {
                Out::Msg(m) | Out::FromOtherPort(m) => (m, false),
                Out::Drip(m) => (m, true),
                Out::Sleep(ms) => {
                    thread::sleep(Duration::from_millis(ms));
                    continue;
                }
            };
            let framed = [&(m.len() as u16).to_be_bytes()[..], &m].concat();
            if drip {
                for b in framed {
                    if conn.write_all(&[b]).is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(1));
                }
            } else if conn.write_all(&framed).is_err() {
                return;
            }
        }
    }
}

/// A query as the resolver sends it: QR clear, RD set, one IN question.
fn parse_query(msg: &[u8], tcp: bool) -> Option<Seen> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 {
        return None;
    }
    assert_eq!(msg[2] & 0x01, 1, "RD set in every query");
    // parse_response reads responses: set QR on a copy.
    let mut m = msg.to_vec();
    m[2] |= 0x80;
    let a = dns::parse_response(&m).ok()?;
    Some(Seen { tcp, id: a.id, name: a.qname, qtype: a.qtype })
}

// ---------------------------------------------------------------------------
// Building responses

fn wire(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in name.split('.').filter(|l| !l.is_empty()) {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

fn rr(name: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut v = wire(name);
    v.extend_from_slice(&rtype.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes());
    v.extend_from_slice(&ttl.to_be_bytes());
    v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    v.extend_from_slice(rdata);
    v
}

fn a_rr(name: &str, ttl: u32, ip: &str) -> Vec<u8> {
    rr(name, TYPE_A, ttl, &ip.parse::<Ipv4Addr>().unwrap().octets())
}

fn aaaa_rr(name: &str, ttl: u32, ip: &str) -> Vec<u8> {
    rr(name, TYPE_AAAA, ttl, &ip.parse::<Ipv6Addr>().unwrap().octets())
}

fn cname_rr(name: &str, ttl: u32, target: &str) -> Vec<u8> {
    rr(name, TYPE_CNAME, ttl, &wire(target))
}

/// A response with any header and question (so also a wrong one).
fn response(id: u16, qname: &str, qtype: u16, rcode: u8, tc: bool, records: &[Vec<u8>]) -> Vec<u8> {
    let mut m = Vec::new();
    dns::encode_query(id, qname, qtype, &mut m).unwrap();
    let flags = 0x8180 | if tc { 0x0200 } else { 0 } | u16::from(rcode);
    m[2..4].copy_from_slice(&flags.to_be_bytes());
    m[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
    for r in records {
        m.extend_from_slice(r);
    }
    m
}

/// The right header and question for `q`, with `rcode` and `records`.
fn reply(q: &Seen, rcode: u8, records: &[Vec<u8>]) -> Vec<u8> {
    response(q.id, &q.name, q.qtype, rcode, false, records)
}

/// The addresses of `q`'s type among `v4` and `v6`, for `q`'s name.
fn records(q: &Seen, v4: &[&str], v6: &[&str], ttl: u32) -> Vec<Vec<u8>> {
    match q.qtype {
        TYPE_A => v4.iter().map(|ip| a_rr(&q.name, ttl, ip)).collect(),
        _ => v6.iter().map(|ip| aaaa_rr(&q.name, ttl, ip)).collect(),
    }
}

fn answer(q: &Seen, v4: &[&str], v6: &[&str], ttl: u32) -> Out {
    Out::Msg(reply(q, NOERROR, &records(q, v4, v6, ttl)))
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

// ---------------------------------------------------------------------------
// The loop

/// Temp files removed when dropped.
struct Files(Vec<PathBuf>);

impl Files {
    fn write(&mut self, what: &str, text: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("coevent-resolver-test-{}-{n}-{what}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        self.0.push(p.clone());
        p.display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A reactor and a resolver, driven as the Lua layer drives them.
struct Loop {
    r: Reactor,
    res: Resolver,
    /// Thread tokens handed an answer, in order, with it.
    woken: Vec<(u32, Answer)>,
    next_tok: u32,
    /// The name each waiting token asked for.
    names: std::collections::HashMap<u32, String>,
    /// The thread handles standing for the tests' numbered tokens.
    tids: Slab<u32>,
    _files: Files,
}

impl Loop {
    /// resolv.conf `conf` (its nameserver lines, if any, replaced by `servers`),
    /// a hosts file with `hosts`.
    fn new(conf: &str, hosts: &str, servers: &[SocketAddr]) -> Loop {
        let mut files = Files(Vec::new());
        let cfg = Config {
            resolv_conf: Some(files.write("resolv.conf", conf)),
            hosts: Some(files.write("hosts", hosts)),
            nameservers: Some(servers.to_vec()),
            cache_size: None,
        };
        Loop {
            r: Reactor::new().unwrap(),
            res: Resolver::new(&cfg).unwrap(),
            woken: Vec::new(),
            next_tok: 1,
            names: Default::default(),
            tids: Slab::default(),
            _files: files,
        }
    }

    /// Short timeouts, one round, no hosts entries.
    fn quick(servers: &[&Server]) -> Loop {
        Loop::new("options timeout:1 attempts:1\n", "", &servers.iter().map(|s| s.addr).collect::<Vec<_>>())
    }

    fn token(&mut self) -> u32 {
        self.next_tok += 1;
        self.next_tok
    }

    /// Starts a lookup for `tok`: Some(answer) if it ended at once, else None
    /// and `tok` waits.
    fn start(&mut self, name: &str, tok: u32) -> Option<Answer> {
        self.names.insert(tok, name.to_string());
        match self.res.lookup(&mut self.r, name) {
            Lookup::Done(a) => Some(a),
            Lookup::Wait(q) => {
                let tid = self.tids.insert(tok);
                assert!(self.res.add_waiter(q, tid), "add_waiter on a query lookup just returned");
                None
            }
        }
    }

    /// One loop turn: a poll, resolver tokens to `on_wake`, the rest noted.
    fn turn(&mut self, ms: u64) {
        let (mut woken, mut answered) = (Vec::new(), Vec::new());
        self.r.poll(Some(ms), &mut woken).unwrap();
        for (t, why) in woken {
            let Token::Query(q) = t else { panic!("a thread token from the reactor: {t:?}") };
            self.res.on_wake(&mut self.r, q, why, &mut answered);
        }
        for (tid, a) in answered {
            self.woken.push((self.tids.remove(tid).expect("a waiting token, answered once"), a));
        }
    }

    /// Turns until `tok` is woken, then takes its answer.
    fn wait(&mut self, tok: u32) -> Answer {
        let until = Instant::now() + LIMIT;
        loop {
            if let Some(i) = self.woken.iter().position(|(t, _)| *t == tok) {
                return self.woken.remove(i).1;
            }
            assert!(Instant::now() < until, "token {tok} not woken within {LIMIT:?}");
            self.turn(50);
        }
    }

    /// A whole lookup, waiting if it must.
    fn resolve(&mut self, name: &str) -> Answer {
        let tok = self.token();
        match self.start(name, tok) {
            Some(a) => a,
            None => self.wait(tok),
        }
    }

    /// A lookup that must end at once (hosts, cache, or no query possible).
    fn at_once(&mut self, name: &str) -> Answer {
        match self.res.lookup(&mut self.r, name) {
            Lookup::Done(a) => a,
            Lookup::Wait(_) => panic!("lookup of {name:?} waits; want an answer at once"),
        }
    }

    /// Turns until the reactor's clock reaches `ms`.
    fn until(&mut self, ms: u64) {
        let until = Instant::now() + LIMIT;
        loop {
            let now = self.r.now();
            if now >= ms {
                break;
            }
            assert!(Instant::now() < until);
            self.turn(ms - now);
        }
    }
}

// ---------------------------------------------------------------------------
// Answers

#[test]
fn a_and_aaaa_over_udp_ipv4_first() {
    // The AAAA answer goes out first: the result still lists IPv4 first.
    let s = Server::start(|q, before| match q.qtype {
        TYPE_A => Vec::new(),
        _ => {
            let a = before.iter().find(|p| p.qtype == TYPE_A).expect("the A question came first");
            vec![answer(q, &[], &["2001:db8::1", "2001:db8::2"], 60), answer(a, &["10.0.0.1", "10.0.0.2"], &[], 60)]
        }
    });
    let mut l = Loop::quick(&[&s]);
    let got = l.resolve("www.example.com");
    assert_eq!(got, Ok(ips(&["10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::2"])));
    assert_eq!(s.questions(), [("www.example.com".into(), TYPE_A), ("www.example.com".into(), TYPE_AAAA)]);
    assert_eq!(s.count(), (2, 0));
    assert_eq!(l.res.pending(), 0);
}

#[test]
fn a_only_and_aaaa_only() {
    let s = Server::start(|q, _| match q.name.as_str() {
        "four.example" => vec![answer(q, &["10.4.4.4"], &[], 60)],
        _ => vec![answer(q, &[], &["2001:db8::6"], 60)],
    });
    let mut l = Loop::quick(&[&s]);
    assert_eq!(l.resolve("four.example"), Ok(ips(&["10.4.4.4"])));
    assert_eq!(l.resolve("six.example"), Ok(ips(&["2001:db8::6"])));
}

#[test]
fn an_ipv6_nameserver() {
    let Some(s) = Server::start_on(IpAddr::V6(Ipv6Addr::LOCALHOST), |q, _| vec![answer(q, &["10.6.6.6"], &[], 60)])
    else {
        eprintln!("no IPv6 loopback: skipped");
        return;
    };
    let mut l = Loop::quick(&[&s]);
    assert_eq!(l.resolve("over.six.example"), Ok(ips(&["10.6.6.6"])));
    assert_eq!(s.count(), (2, 0));
}

#[test]
fn the_hosts_file_comes_first_and_sends_nothing() {
    let s = Server::start(|q, _| vec![answer(q, &["10.0.0.99"], &[], 60)]);
    let hosts = "# test\n10.9.8.7 fromhosts.example alias.example\n::9 fromhosts.example\n";
    let mut l = Loop::new("options timeout:1 attempts:1\n", hosts, &[s.addr]);
    assert_eq!(l.at_once("fromhosts.example"), Ok(ips(&["10.9.8.7", "::9"])));
    assert_eq!(l.at_once("FromHosts.Example."), Ok(ips(&["10.9.8.7", "::9"])));
    assert_eq!(l.at_once("alias.example"), Ok(ips(&["10.9.8.7"])));
    assert_eq!(l.res.pending(), 0);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(s.count(), (0, 0), "a hosts name went to the nameserver");
    // A name not in the file goes out.
    assert_eq!(l.resolve("other.example"), Ok(ips(&["10.0.0.99"])));
}

#[test]
fn a_cname_chain_gives_the_final_addresses() {
    let s = Server::start(|q, _| {
        let mut recs = vec![
            cname_rr(&q.name, 300, "mid.example.net"),
            cname_rr("mid.example.net", 300, "end.example.org"),
            // Decoys: records for names off the chain.
            a_rr("unrelated.example", 300, "10.66.66.66"),
            aaaa_rr("unrelated.example", 300, "2001:db8::666"),
        ];
        recs.extend(match q.qtype {
            TYPE_A => vec![a_rr("end.example.org", 300, "10.1.1.1"), a_rr("end.example.org", 300, "10.1.1.2")],
            _ => vec![aaaa_rr("end.example.org", 300, "2001:db8::11")],
        });
        vec![Out::Msg(reply(q, NOERROR, &recs))]
    });
    let mut l = Loop::quick(&[&s]);
    assert_eq!(l.resolve("alias.example.com"), Ok(ips(&["10.1.1.1", "10.1.1.2", "2001:db8::11"])));
}

#[test]
fn a_answered_aaaa_refused_gives_the_a_addresses() {
    // Refused after the A answer, and before it.
    for refused_first in [false, true] {
        let s = Server::start(move |q, before| match (q.qtype, refused_first) {
            (TYPE_A, false) => vec![answer(q, &["10.5.5.5"], &[], 60)],
            (TYPE_A, true) => Vec::new(),
            (_, false) => vec![Out::Msg(reply(q, REFUSED, &[]))],
            (_, true) => {
                let a = before.iter().find(|p| p.qtype == TYPE_A).unwrap();
                vec![Out::Msg(reply(q, REFUSED, &[])), answer(a, &["10.5.5.5"], &[], 60)]
            }
        });
        let mut l = Loop::quick(&[&s]);
        let t0 = Instant::now();
        assert_eq!(l.resolve("refuses-aaaa.example"), Ok(ips(&["10.5.5.5"])), "refused first: {refused_first}");
        assert!(t0.elapsed() < Duration::from_millis(900), "waited for a timeout: {:?}", t0.elapsed());
    }
}

#[test]
fn a_answered_aaaa_silent_gives_the_a_addresses_after_the_timeout() {
    let s = Server::start(|q, _| match q.qtype {
        TYPE_A => vec![answer(q, &["10.7.7.7"], &[], 60)],
        _ => Vec::new(),
    });
    let mut l = Loop::quick(&[&s]);
    let t0 = Instant::now();
    assert_eq!(l.resolve("drops-aaaa.example"), Ok(ips(&["10.7.7.7"])));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(2500), "took {took:?}");
}

// ---------------------------------------------------------------------------
// Failures and failover

#[test]
fn a_silent_first_nameserver_times_out_then_the_second_answers() {
    let silent = Server::silent();
    let good = Server::start(|q, _| vec![answer(q, &["10.2.2.2"], &["2001:db8::22"], 60)]);
    let mut l = Loop::quick(&[&silent, &good]);
    let t0 = Instant::now();
    assert_eq!(l.resolve("failover.example"), Ok(ips(&["10.2.2.2", "2001:db8::22"])));
    let took = t0.elapsed();
    // timeout:1 is one second per server.
    assert!(took >= Duration::from_millis(950) && took < Duration::from_millis(2500), "took {took:?}");
    assert_eq!(silent.count(), (2, 0));
    assert_eq!(good.count(), (2, 0));
    // The ids of the second try are new.
    let (a, b) = (silent.seen(), good.seen());
    assert!(a.iter().all(|x| b.iter().all(|y| x.id != y.id)), "ids reused across servers: {a:?} {b:?}");
}

#[test]
fn no_answer_anywhere_is_a_timeout_after_every_attempt() {
    let silent = Server::silent();
    let mut l = Loop::new("options timeout:1 attempts:2\n", "", &[silent.addr]);
    let t0 = Instant::now();
    assert_eq!(l.resolve("nobody.example"), Err(Error::Timeout));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_millis(3500), "took {took:?}");
    assert_eq!(silent.count(), (4, 0), "two attempts of A and AAAA");
    assert_eq!(Error::Timeout.as_str(), "dns timeout");
}

#[test]
fn garbage_does_not_extend_the_timeout() {
    // Something arrives every 200 ms for 1.4 s, never an answer: the lookup
    // still ends one timeout (1 s) after the question went out.
    let s = Server::start(|q, _| match q.qtype {
        TYPE_A => (0..7).flat_map(|_| [Out::Msg(b"garbage".to_vec()), Out::Sleep(200)]).collect(),
        _ => Vec::new(),
    });
    let mut l = Loop::quick(&[&s]);
    let t0 = Instant::now();
    assert_eq!(l.resolve("chatty.example"), Err(Error::Timeout));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(950) && took < Duration::from_millis(1600), "took {took:?}");
}

#[test]
fn a_closed_port_fails_over_without_waiting() {
    // ICMP port unreachable: the next server at once, not after the timeout.
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let good = Server::start(|q, _| vec![answer(q, &["10.3.3.3"], &[], 60)]);
    let mut l = Loop::new("options timeout:5 attempts:1\n", "", &[closed, good.addr]);
    let t0 = Instant::now();
    assert_eq!(l.resolve("closed-first.example"), Ok(ips(&["10.3.3.3"])));
    assert!(t0.elapsed() < Duration::from_millis(1000), "took {:?}", t0.elapsed());
}

#[test]
fn servfail_everywhere_is_a_server_failure_and_not_cached() {
    let s1 = Server::start(|q, _| vec![Out::Msg(reply(q, SERVFAIL, &[]))]);
    let s2 = Server::start(|q, _| vec![Out::Msg(reply(q, SERVFAIL, &[]))]);
    let mut l = Loop::quick(&[&s1, &s2]);
    let t0 = Instant::now();
    assert_eq!(l.resolve("broken.example"), Err(Error::ServerFailure));
    assert!(t0.elapsed() < Duration::from_millis(900), "waited for a timeout: {:?}", t0.elapsed());
    assert_eq!((s1.count(), s2.count()), ((2, 0), (2, 0)));
    assert_eq!(Error::ServerFailure.as_str(), "dns server failure");
    // Asked again: not remembered.
    assert_eq!(l.resolve("broken.example"), Err(Error::ServerFailure));
    assert_eq!((s1.count(), s2.count()), ((4, 0), (4, 0)));
}

#[test]
fn servfail_on_the_first_server_fails_over_to_the_second() {
    let s1 = Server::start(|q, _| vec![Out::Msg(reply(q, SERVFAIL, &[]))]);
    let s2 = Server::start(|q, _| vec![answer(q, &["10.8.8.8"], &[], 60)]);
    let mut l = Loop::quick(&[&s1, &s2]);
    assert_eq!(l.resolve("flaky.example"), Ok(ips(&["10.8.8.8"])));
    assert_eq!(s2.count(), (2, 0));
}

#[test]
fn attempts_go_round_the_servers() {
    let s1 = Server::start(|q, _| vec![Out::Msg(reply(q, SERVFAIL, &[]))]);
    let s2 = Server::start(|q, _| vec![Out::Msg(reply(q, SERVFAIL, &[]))]);
    let mut l = Loop::new("options timeout:1 attempts:3\n", "", &[s1.addr, s2.addr]);
    assert_eq!(l.resolve("rounds.example"), Err(Error::ServerFailure));
    s1.wait_count(6);
    s2.wait_count(6);
    assert_eq!((s1.count(), s2.count()), ((6, 0), (6, 0)), "three rounds over both");
}

#[test]
fn nxdomain_is_no_such_host_cached_for_five_seconds() {
    let s = Server::start(|q, _| vec![Out::Msg(reply(q, NXDOMAIN, &[]))]);
    let mut l = Loop::quick(&[&s]);
    assert_eq!(l.resolve("nx.example"), Err(Error::NoSuchHost));
    assert_eq!(Error::NoSuchHost.as_str(), "no such host");
    assert_eq!(NEGATIVE_TTL, 5);
    let t = l.r.now();
    s.wait_count(2);
    let before = s.count();
    assert_eq!(l.at_once("nx.example"), Err(Error::NoSuchHost));
    assert_eq!(l.at_once("NX.Example"), Err(Error::NoSuchHost));
    // Still remembered a little later (well inside the 5 s).
    l.until(t + 300);
    assert_eq!(l.at_once("nx.example"), Err(Error::NoSuchHost));
    thread::sleep(Duration::from_millis(50));
    assert_eq!(s.count(), before, "a cached NXDOMAIN went out again");
}

#[test]
fn a_name_with_no_addresses_is_no_such_host() {
    // NOERROR, no records (the name exists, with other types only).
    let s = Server::start(|q, _| vec![Out::Msg(reply(q, NOERROR, &[rr(&q.name, 16, 60, b"\x02hi")]))]);
    let mut l = Loop::quick(&[&s]);
    assert_eq!(l.resolve("txt-only.example"), Err(Error::NoSuchHost));
    assert_eq!(l.at_once("txt-only.example"), Err(Error::NoSuchHost));
}

#[test]
fn names_no_server_can_be_asked_are_no_such_host_at_once() {
    let s = Server::start(|q, _| vec![answer(q, &["10.0.0.1"], &[], 60)]);
    let mut l = Loop::quick(&[&s]);
    for bad in ["", ".", "bad name.example", "a..b", &format!("{}.example", "x".repeat(64))] {
        assert_eq!(l.at_once(bad), Err(Error::NoSuchHost), "{bad:?}");
    }
    assert_eq!(l.res.pending(), 0);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(s.count(), (0, 0));
}

// ---------------------------------------------------------------------------
// Answers to something else are ignored

/// The server sends `bad(q)` before the right answer to each question; the
/// right answers must win.
fn ignored_before_the_answer(bad: impl Fn(&Seen) -> Vec<Out> + Send + 'static) {
    let s = Server::start(move |q, _| {
        let mut out = bad(q);
        out.push(answer(q, &["10.0.0.1"], &["2001:db8::1"], 60));
        out
    });
    let mut l = Loop::quick(&[&s]);
    let t0 = Instant::now();
    assert_eq!(l.resolve("target.example"), Ok(ips(&["10.0.0.1", "2001:db8::1"])));
    assert!(t0.elapsed() < Duration::from_millis(900), "waited for a timeout: {:?}", t0.elapsed());
    assert_eq!(s.count(), (2, 0), "one question of each type, no retry");
}

/// Bogus addresses of `q`'s type.
fn bogus(q: &Seen, name: &str) -> Vec<Vec<u8>> {
    match q.qtype {
        TYPE_A => vec![a_rr(name, 60, "6.6.6.6")],
        _ => vec![aaaa_rr(name, 60, "2001:db8::666")],
    }
}

#[test]
fn an_answer_with_a_wrong_id_is_ignored() {
    ignored_before_the_answer(|q| {
        let id = q.id.wrapping_add(1);
        vec![Out::Msg(response(id, &q.name, q.qtype, NOERROR, false, &bogus(q, &q.name)))]
    });
}

#[test]
fn an_nxdomain_with_a_wrong_id_is_ignored() {
    ignored_before_the_answer(|q| vec![Out::Msg(response(q.id ^ 0x8000, &q.name, q.qtype, NXDOMAIN, false, &[]))]);
}

#[test]
fn an_answer_to_another_name_is_ignored() {
    ignored_before_the_answer(|q| {
        vec![Out::Msg(response(q.id, "evil.example", q.qtype, NOERROR, false, &bogus(q, "evil.example")))]
    });
}

#[test]
fn an_nxdomain_for_another_name_is_ignored() {
    ignored_before_the_answer(|q| vec![Out::Msg(response(q.id, "evil.example", q.qtype, NXDOMAIN, false, &[]))]);
}

#[test]
fn an_answer_to_another_type_is_ignored() {
    ignored_before_the_answer(|q| {
        // The A question's id with an AAAA question and record, and the reverse.
        let (other, recs) = match q.qtype {
            TYPE_A => (TYPE_AAAA, vec![aaaa_rr(&q.name, 60, "2001:db8::666")]),
            _ => (TYPE_A, vec![a_rr(&q.name, 60, "6.6.6.6")]),
        };
        vec![Out::Msg(response(q.id, &q.name, other, NOERROR, false, &recs))]
    });
}

#[test]
fn garbage_is_ignored() {
    ignored_before_the_answer(|q| {
        let [i0, i1] = q.id.to_be_bytes();
        let mut echoed = Vec::new(); // the question itself: QR clear
        dns::encode_query(q.id, &q.name, q.qtype, &mut echoed).unwrap();
        let mut cut = reply(q, NOERROR, &bogus(q, &q.name));
        cut.truncate(cut.len() - 3); // a record cut short, TC clear
        vec![
            Out::Msg(b"\xff".to_vec()),
            Out::Msg(vec![i0, i1, 0x81]),
            Out::Msg(vec![i0, i1, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]), // no question
            Out::Msg((0..200u32).map(|i| (i * 7 + 3) as u8).collect()),
            Out::Msg(echoed),
            Out::Msg(cut),
        ]
    });
}

#[test]
fn an_answer_from_another_port_is_ignored() {
    ignored_before_the_answer(|q| vec![Out::FromOtherPort(reply(q, NOERROR, &bogus(q, &q.name)))]);
}

#[test]
fn a_second_answer_to_the_same_question_is_ignored() {
    // The right answer, then (same id, same question) a different one: the
    // first counts. Both A and AAAA are answered once before any repeat.
    let s = Server::start(|q, _| {
        vec![answer(q, &["10.0.0.1"], &["2001:db8::1"], 60), Out::Msg(reply(q, NOERROR, &bogus(q, &q.name)))]
    });
    let mut l = Loop::quick(&[&s]);
    assert_eq!(l.resolve("twice.example"), Ok(ips(&["10.0.0.1", "2001:db8::1"])));
}

// ---------------------------------------------------------------------------
// TCP

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    let s = Server::start(|q, _| {
        let full = records(q, &["10.0.1.1", "10.0.1.2", "10.0.1.3"], &["2001:db8::1:1"], 60);
        if q.tcp {
            vec![Out::Msg(reply(q, NOERROR, &full))]
        } else {
            // The first record only, TC set.
            vec![Out::Msg(response(q.id, &q.name, q.qtype, NOERROR, true, &full[..1]))]
        }
    });
    let mut l = Loop::quick(&[&s]);
    let t0 = Instant::now();
    assert_eq!(l.resolve("big.example"), Ok(ips(&["10.0.1.1", "10.0.1.2", "10.0.1.3", "2001:db8::1:1"])));
    assert!(t0.elapsed() < Duration::from_millis(900), "waited for a timeout: {:?}", t0.elapsed());
    let tcp: Vec<_> = s.seen().into_iter().filter(|q| q.tcp).map(|q| (q.name, q.qtype)).collect();
    assert_eq!(tcp, [("big.example".into(), TYPE_A), ("big.example".into(), TYPE_AAAA)]);
}

#[test]
fn tcp_answers_dripped_a_byte_at_a_time() {
    // Length prefixes and messages split over many reads, and a wrong answer
    // over TCP first (ignored there too).
    let s = Server::start(|q, _| {
        if q.tcp {
            let wrong = response(q.id.wrapping_add(1), &q.name, q.qtype, NOERROR, false, &bogus(q, &q.name));
            vec![Out::Drip(wrong), Out::Drip(reply(q, NOERROR, &records(q, &["10.0.2.1"], &["2001:db8::2:1"], 60)))]
        } else {
            vec![Out::Msg(response(q.id, &q.name, q.qtype, NOERROR, true, &[]))]
        }
    });
    let mut l = Loop::quick(&[&s]);
    assert_eq!(l.resolve("drip.example"), Ok(ips(&["10.0.2.1", "2001:db8::2:1"])));
}

#[test]
fn tcp_refused_fails_over_to_the_next_server() {
    // A truncated UDP answer from a server with no TCP listener: the next
    // server, over UDP again.
    let udp_only = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp_only.local_addr().unwrap();
    let t = thread::spawn(move || {
        udp_only.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 512];
        for _ in 0..2 {
            let Ok((n, from)) = udp_only.recv_from(&mut buf) else { return };
            let q = parse_query(&buf[..n], false).unwrap();
            let _ = udp_only.send_to(&response(q.id, &q.name, q.qtype, NOERROR, true, &[]), from);
        }
    });
    let good = Server::start(|q, _| vec![answer(q, &["10.0.3.1"], &[], 60)]);
    let mut l = Loop::new("options timeout:1 attempts:1\n", "", &[addr, good.addr]);
    assert_eq!(l.resolve("tc-no-tcp.example"), Ok(ips(&["10.0.3.1"])));
    t.join().unwrap();
}

// ---------------------------------------------------------------------------
// The cache

#[test]
fn ttl_expiry_sends_a_new_query() {
    let s = Server::start(|q, _| vec![answer(q, &["10.0.4.1"], &["2001:db8::4:1"], 1)]);
    let mut l = Loop::quick(&[&s]);
    let want = Ok(ips(&["10.0.4.1", "2001:db8::4:1"]));
    assert_eq!(l.resolve("short.example"), want);
    let t = l.r.now();
    s.wait_count(2);
    // Within the TTL: from the cache.
    assert_eq!(l.at_once("short.example"), want);
    assert_eq!(l.at_once("SHORT.Example"), want);
    l.until(t + 500);
    assert_eq!(l.at_once("short.example"), want);
    assert_eq!(s.count(), (2, 0));
    // After it: asked again.
    l.until(t + 1000);
    assert_eq!(l.resolve("short.example"), want);
    s.wait_count(4);
    assert_eq!(s.count(), (4, 0));
}

#[test]
fn ttl_zero_is_cached_for_one_second() {
    let s = Server::start(|q, _| vec![answer(q, &["10.0.5.1"], &[], 0)]);
    let mut l = Loop::quick(&[&s]);
    assert_eq!(l.resolve("zero.example"), Ok(ips(&["10.0.5.1"])));
    let t = l.r.now();
    assert_eq!(l.at_once("zero.example"), Ok(ips(&["10.0.5.1"])));
    l.until(t + 1000);
    assert_eq!(l.resolve("zero.example"), Ok(ips(&["10.0.5.1"])));
    s.wait_count(4);
    assert_eq!(s.count(), (4, 0));
}

#[test]
fn the_smallest_ttl_along_a_cname_chain_counts() {
    // The CNAME has TTL 1, the address 3600: the answer expires after 1 s.
    let s = Server::start(|q, _| {
        let mut recs = vec![cname_rr(&q.name, 1, "target.example")];
        if q.qtype == TYPE_A {
            recs.push(a_rr("target.example", 3600, "10.0.6.1"));
        }
        vec![Out::Msg(reply(q, NOERROR, &recs))]
    });
    let mut l = Loop::quick(&[&s]);
    assert_eq!(l.resolve("chain.example"), Ok(ips(&["10.0.6.1"])));
    let t = l.r.now();
    assert_eq!(l.at_once("chain.example"), Ok(ips(&["10.0.6.1"])));
    l.until(t + 1000);
    assert_eq!(l.resolve("chain.example"), Ok(ips(&["10.0.6.1"])));
    s.wait_count(4);
    assert_eq!(s.count(), (4, 0));
}

// ---------------------------------------------------------------------------
// Shared queries, ids

#[test]
fn two_hundred_waiters_share_one_query() {
    let s = Server::start(|q, _| vec![answer(q, &["10.0.7.1"], &["2001:db8::7:1"], 60)]);
    let mut l = Loop::quick(&[&s]);
    // Spellings of one name share its query.
    // (A final dot makes another name: "shared.example." skips the search list.)
    let spellings = ["shared.example", "Shared.Example", "sHARED.example", "SHARED.EXAMPLE"];
    let toks: Vec<u32> = (1000..1200).collect();
    for (i, &tok) in toks.iter().enumerate() {
        assert!(l.start(spellings[i % spellings.len()], tok).is_none(), "waiter {i} did not wait");
    }
    assert_eq!(l.res.pending(), 1);
    let until = Instant::now() + LIMIT;
    while l.woken.len() < toks.len() {
        assert!(Instant::now() < until, "{} of {} woken", l.woken.len(), toks.len());
        l.turn(50);
    }
    let mut woken = l.woken.clone();
    woken.sort_unstable_by_key(|(t, _)| *t);
    assert_eq!(woken.iter().map(|(t, _)| *t).collect::<Vec<_>>(), toks, "each waiter woken exactly once");
    for (tok, a) in woken {
        assert_eq!(a, Ok(ips(&["10.0.7.1", "2001:db8::7:1"])), "waiter {tok}");
    }
    s.wait_count(2);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(s.questions(), [("shared.example".into(), TYPE_A), ("shared.example".into(), TYPE_AAAA)]);
}

#[test]
fn many_names_at_once() {
    // 40 queries in flight together, each answered with its own address;
    // then 40 more (query slots reused).
    let s = Server::start(|q, _| {
        let n: u8 = q.name.trim_start_matches('n').split('.').next().unwrap().parse().unwrap();
        vec![answer(q, &[&format!("10.9.0.{n}")], &[], 60)]
    });
    let mut l = Loop::quick(&[&s]);
    for round in 0..2u32 {
        let names: Vec<String> = (0..40).map(|i| format!("n{}.example", i + 40 * round)).collect();
        for (i, name) in names.iter().enumerate() {
            assert!(l.start(name, 100 + i as u32).is_none());
        }
        assert_eq!(l.res.pending(), 40);
        for (i, name) in names.iter().enumerate() {
            let n = i + 40 * round as usize;
            match l.wait(100 + i as u32) {
                Ok(v) => {
                    assert_eq!(v.len(), 1, "{name}: {v:?}");
                    assert!(v[0].to_string().ends_with(&format!(".{n}")), "{name}: {v:?}");
                }
                e => panic!("{name}: {e:?}"),
            }
        }
        l.woken.clear();
        assert_eq!(l.res.pending(), 0);
    }
}

#[test]
fn query_ids_are_random() {
    let s = Server::start(|q, _| vec![answer(q, &["10.0.8.1"], &[], 60)]);
    let mut l = Loop::quick(&[&s]);
    for i in 0..50 {
        assert_eq!(l.resolve(&format!("id{i}.example")), Ok(ips(&["10.0.8.1"])));
    }
    s.wait_count(100);
    let seen = s.seen();
    assert_eq!(seen.len(), 100);
    let ids: HashSet<u16> = seen.iter().map(|q| q.id).collect();
    // 100 draws from 65536: a collision or two is possible, not more.
    assert!(ids.len() >= 97, "only {} distinct ids in 100 queries: {:?}", ids.len(), seen);
    // Not a counter either.
    let steps: HashSet<u16> = seen.windows(2).map(|w| w[1].id.wrapping_sub(w[0].id)).collect();
    assert!(steps.len() > 50, "ids step regularly: {seen:?}");
    // A second resolver (another loop) does not repeat the first's sequence.
    let mut l2 = Loop::quick(&[&s]);
    assert_eq!(l2.resolve("id0.example"), Ok(ips(&["10.0.8.1"])));
    s.wait_count(102);
    let again = s.seen();
    assert_ne!((again[100].id, again[101].id), (seen[0].id, seen[1].id), "the same ids in two resolvers");
}

#[test]
fn a_query_nobody_waits_for_does_not_answer_the_next_lookup() {
    // lookup answered Wait, but the caller never parked (in coevent: a user
    // coroutine that saw the wait marker, or a yield PUC 5.1 refused inside
    // pcall). When that query ends, its answer must not become the answer of
    // the next lookup of another name.
    let s = Server::start(|q, _| match q.name.as_str() {
        "first.example" => vec![answer(q, &["10.0.9.1"], &[], 60)],
        _ => vec![answer(q, &["10.0.9.2"], &[], 60)],
    });
    let mut l = Loop::quick(&[&s]);
    assert!(matches!(l.res.lookup(&mut l.r, "first.example"), Lookup::Wait(_)));
    let until = Instant::now() + LIMIT;
    while l.res.pending() > 0 {
        assert!(Instant::now() < until);
        l.turn(50);
    }
    // The first name's answer is cached all the same.
    assert_eq!(l.at_once("first.example"), Ok(ips(&["10.0.9.1"])));
    assert_eq!(l.resolve("second.example"), Ok(ips(&["10.0.9.2"])), "another name's answer");
}

// ---------------------------------------------------------------------------
// resolv.conf: search, domain, ndots, rotate

#[test]
fn search_domains_and_ndots() {
    // Only three names exist; the rest are NXDOMAIN.
    let s = Server::start(|q, _| {
        if ["host.two.example", "a.b.two.example", "x.y.z"].contains(&q.name.as_str()) {
            vec![answer(q, &["10.1.0.1"], &[], 60)]
        } else {
            vec![Out::Msg(reply(q, NXDOMAIN, &[]))]
        }
    });
    let mut l = Loop::new("search one.example two.example\noptions ndots:2 timeout:1 attempts:1\n", "", &[s.addr]);
    let asked = |s: &Server, from: usize| -> Vec<String> {
        let mut v: Vec<String> =
            s.seen()[from..].iter().filter(|q| q.qtype == TYPE_A).map(|q| q.name.clone()).collect();
        v.dedup();
        v
    };
    // No dot: the search list first.
    assert_eq!(l.resolve("host"), Ok(ips(&["10.1.0.1"])));
    assert_eq!(asked(&s, 0), ["host.one.example", "host.two.example"]);
    // One dot, below ndots:2: the search list first, then the name itself.
    let n = s.seen().len();
    assert_eq!(l.resolve("a.b"), Ok(ips(&["10.1.0.1"])));
    assert_eq!(asked(&s, n), ["a.b.one.example", "a.b.two.example"]);
    // Two dots: the name itself first.
    let n = s.seen().len();
    assert_eq!(l.resolve("x.y.z"), Ok(ips(&["10.1.0.1"])));
    assert_eq!(asked(&s, n), ["x.y.z"]);
    // (A final dot: see a_final_dot_is_not_the_relative_name.)
    // Nothing anywhere: every candidate, then no such host.
    let n = s.seen().len();
    assert_eq!(l.resolve("nope.nowhere"), Err(Error::NoSuchHost));
    assert_eq!(asked(&s, n), ["nope.nowhere.one.example", "nope.nowhere.two.example", "nope.nowhere"]);
}

#[test]
fn a_final_dot_is_not_the_relative_name() {
    // "host" goes through the search list (and exists as host.corp.example);
    // "host." is the absolute name "host" only, which does not exist.
    let s = Server::start(|q, _| match q.name.as_str() {
        "host.corp.example" => vec![answer(q, &["10.1.2.1"], &[], 60)],
        _ => vec![Out::Msg(reply(q, NXDOMAIN, &[]))],
    });
    let conf = "search corp.example\noptions timeout:1 attempts:1\n";
    let a_questions =
        |s: &Server| -> Vec<String> { s.seen().into_iter().filter(|q| q.qtype == TYPE_A).map(|q| q.name).collect() };
    // Alone: only the absolute name is asked.
    let mut l = Loop::new(conf, "", &[s.addr]);
    let got = l.resolve("host.");
    assert_eq!(a_questions(&s), ["host"], "questions for \"host.\"");
    assert_eq!(got, Err(Error::NoSuchHost), "\"host.\" answered");
    // After the relative name: not answered from its cache entry.
    let mut l = Loop::new(conf, "", &[s.addr]);
    assert_eq!(l.resolve("host"), Ok(ips(&["10.1.2.1"])));
    assert_eq!(l.resolve("host."), Err(Error::NoSuchHost), "the absolute name answered from the relative one");
    // Before it: the relative name is not answered from the absolute one's.
    let mut l = Loop::new(conf, "", &[s.addr]);
    assert_eq!(l.resolve("host."), Err(Error::NoSuchHost));
    assert_eq!(l.resolve("host"), Ok(ips(&["10.1.2.1"])), "the relative name answered from the absolute one");
}

#[test]
fn the_domain_line() {
    let s = Server::start(|q, _| match q.name.as_str() {
        "db.corp.example" => vec![answer(q, &["10.1.1.1"], &[], 60)],
        _ => vec![Out::Msg(reply(q, NXDOMAIN, &[]))],
    });
    let mut l = Loop::new("domain corp.example\noptions timeout:1 attempts:1\n", "", &[s.addr]);
    assert_eq!(l.resolve("db"), Ok(ips(&["10.1.1.1"])));
    assert_eq!(s.questions()[0], ("db.corp.example".into(), TYPE_A));
}

#[test]
fn servers_in_order_or_rotated() {
    let answering = || Server::start(|q, _| vec![answer(q, &["10.2.0.1"], &[], 60)]);
    let (s1, s2) = (answering(), answering());
    let mut l = Loop::quick(&[&s1, &s2]);
    for i in 0..4 {
        assert_eq!(l.resolve(&format!("ordered{i}.example")), Ok(ips(&["10.2.0.1"])));
    }
    s1.wait_count(8);
    assert_eq!((s1.count(), s2.count()), ((8, 0), (0, 0)), "without rotate: the first server only");

    let (s1, s2) = (answering(), answering());
    let mut l = Loop::new("options rotate timeout:1 attempts:1\n", "", &[s1.addr, s2.addr]);
    for i in 0..4 {
        assert_eq!(l.resolve(&format!("rotated{i}.example")), Ok(ips(&["10.2.0.1"])));
    }
    s1.wait_count(4);
    s2.wait_count(4);
    assert_eq!((s1.count(), s2.count()), ((4, 0), (4, 0)), "with rotate: each server in turn");
}

#[test]
fn no_nameserver_at_all_means_the_local_one() {
    // An empty resolv.conf and no nameservers given: 127.0.0.1:53, as glibc.
    // Whatever answers there (or not), the lookup ends with a DNS outcome.
    let mut files = Files(Vec::new());
    let cfg = Config {
        resolv_conf: Some(files.write("resolv.conf", "options timeout:1 attempts:1\n")),
        hosts: Some(files.write("hosts", "")),
        nameservers: None,
        cache_size: None,
    };
    let mut r = Reactor::new().unwrap();
    let mut res = Resolver::new(&cfg).unwrap();
    match res.lookup(&mut r, "coevent-test.invalid") {
        Lookup::Done(a) => assert!(a.is_err(), "{a:?}"),
        Lookup::Wait(q) => {
            assert!(res.add_waiter(q, Slab::default().insert(())));
            let until = Instant::now() + LIMIT;
            let mut got = None;
            while got.is_none() {
                assert!(Instant::now() < until);
                let mut woken = Vec::new();
                r.poll(Some(50), &mut woken).unwrap();
                let mut answered = Vec::new();
                for (t, why) in woken {
                    let Token::Query(q) = t else { panic!("{t:?}") };
                    res.on_wake(&mut r, q, why, &mut answered);
                }
                got = answered.pop().map(|(_, a)| a);
            }
            assert!(got.unwrap().is_err());
        }
    }
}

#[test]
fn abort_wakes_the_waiters_without_an_answer() {
    let silent = Server::silent();
    let mut l = Loop::quick(&[&silent]);
    assert!(l.start("aborted.example", 7).is_none());
    assert!(l.start("aborted.example", 8).is_none());
    assert!(l.start("other.example", 9).is_none());
    let mut woken = Vec::new();
    l.res.abort(&mut l.r, &mut woken);
    let mut woken: Vec<u32> = woken.into_iter().map(|t| l.tids.remove(t).expect("once")).collect();
    woken.sort_unstable();
    assert_eq!(woken, [7, 8, 9]);
    assert_eq!(l.res.pending(), 0);
    assert_eq!(l.r.pending(), 0, "the queries' timers are gone");
}

#[test]
fn the_cache_keeps_the_most_recently_used_names() {
    let s = Server::start(|q, _| vec![answer(q, &["10.1.1.1"], &[], 600)]);
    let mut l = Loop::quick(&[&s]);
    let mut files = Files(Vec::new());
    let cfg = Config {
        resolv_conf: Some(files.write("resolv.conf", "options timeout:1 attempts:1\n")),
        hosts: Some(files.write("hosts", "")),
        nameservers: Some(vec![s.addr]),
        cache_size: Some(3),
    };
    l.res = Resolver::new(&cfg).unwrap();
    for name in ["a.example", "b.example", "c.example"] {
        assert!(l.resolve(name).is_ok());
    }
    // a is used again, so d pushes b out, the least recently used.
    assert!(l.at_once("a.example").is_ok());
    assert!(l.resolve("d.example").is_ok());
    assert_eq!(l.res.cached(), 3);
    assert!(l.at_once("a.example").is_ok());
    assert!(l.at_once("c.example").is_ok());
    assert!(l.at_once("d.example").is_ok());
    let asked = s.count().0;
    assert!(l.resolve("b.example").is_ok());
    assert_eq!(s.count().0, asked + 2, "b was asked again");
    // Names that do not exist are bounded too: a thousand of them leave three.
    for i in 0..1000 {
        let _ = l.resolve(&format!("n{i}.example"));
    }
    assert_eq!(l.res.cached(), 3);
    const { assert!(CACHE_SIZE >= 1024) };
}

#[test]
fn the_hosts_file_is_read_again_when_it_changes() {
    let s = Server::silent();
    let mut l = Loop::new("options timeout:1 attempts:1\n", "10.0.0.1 moved.example\n", &[s.addr]);
    assert_eq!(l.at_once("moved.example"), Ok(ips(&["10.0.0.1"])));
    let path = l._files.0[1].clone();
    std::fs::write(&path, "10.0.0.2 moved.example\n").unwrap();
    // A different mtime, however coarse the file system's clock.
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(10)).unwrap();
    assert_eq!(l.at_once("moved.example"), Ok(ips(&["10.0.0.2"])));
}
