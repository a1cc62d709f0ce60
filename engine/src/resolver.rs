//! Name resolution that never blocks the loop: the hosts file, then the
//! nameservers of resolv.conf over UDP (over TCP when an answer comes back
//! truncated), A and AAAA asked together, answers cached for their TTL. One
//! query per name at a time, shared by every thread that asks for it.
//!
//! Queries run on the reactor under their own tokens (`Token::Query`): the
//! loop hands those wake-ups to `on_wake`, which advances the query's state
//! machine and, once it ends, hands its answer to each thread that waits for it.
//!
//! The cache holds at most `Config::cache_size` names (least recently used
//! out first); the hosts file is read once, and again when its mtime changes.

use std::collections::HashMap;
use std::io::ErrorKind::WouldBlock;
use std::net::{IpAddr, SocketAddr};

use crate::dns::{self, RCODE_NOERROR, RCODE_NXDOMAIN, TYPE_A, TYPE_AAAA};
use crate::reactor::{Dir, Reactor, Reason, Side, Src, Tid, Token};
use crate::sys::{self, Addr, Fd};
use crate::sysnames::{hosts_table, ResolvConf};

/// Cached positive answers live at least this long and at most that long (s).
pub const TTL_MIN: u32 = 1;
pub const TTL_MAX: u32 = 3600;
/// How long "no such host" is remembered (s).
pub const NEGATIVE_TTL: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    NoSuchHost,
    ServerFailure,
    Timeout,
    /// This process is out of fds or memory: no server was at fault.
    Exhausted(Exhaustion),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhaustion {
    Fds,
    SystemFds,
    Buffers,
    Memory,
}

impl Error {
    pub fn as_str(self) -> &'static str {
        match self {
            Error::NoSuchHost => "no such host",
            Error::ServerFailure => "dns server failure",
            Error::Timeout => "dns timeout",
            Error::Exhausted(Exhaustion::Fds) => "too many open files",
            Error::Exhausted(Exhaustion::SystemFds) => "too many open files in system",
            Error::Exhausted(Exhaustion::Buffers) => "no buffer space available",
            Error::Exhausted(Exhaustion::Memory) => "cannot allocate memory",
        }
    }

    /// The error for `e` if it is this process running out of something.
    pub fn exhausted(e: &std::io::Error) -> Option<Error> {
        let x = match e.raw_os_error()? {
            libc::EMFILE => Exhaustion::Fds,
            libc::ENFILE => Exhaustion::SystemFds,
            libc::ENOBUFS => Exhaustion::Buffers,
            libc::ENOMEM => Exhaustion::Memory,
            _ => return None,
        };
        Some(Error::Exhausted(x))
    }
}

pub type Answer = Result<Vec<IpAddr>, Error>;

/// Where the resolver's settings come from; None: the environment, then /etc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub resolv_conf: Option<String>,
    pub hosts: Option<String>,
    /// Given directly, these replace resolv.conf's nameservers.
    pub nameservers: Option<Vec<SocketAddr>>,
    /// Most names cached (None: `CACHE_SIZE`).
    pub cache_size: Option<usize>,
}

/// Names cached by default.
pub const CACHE_SIZE: usize = 4096;

impl Config {
    fn path(set: &Option<String>, env: &str, default: &str) -> String {
        set.clone().or_else(|| std::env::var(env).ok()).unwrap_or_else(|| default.into())
    }
}

pub enum Lookup {
    Done(Answer),
    /// Wait for query `q` (see `add_waiter`).
    Wait(u32),
}

struct Cached {
    answer: Answer,
    expires: u64,
}

struct Query {
    /// The cache key: the name asked, lowercase, without a final dot.
    key: String,
    candidates: Vec<String>,
    cand: usize,
    /// Servers tried for this candidate; the next is `first + tries`.
    first: usize,
    tries: usize,
    src: Option<Src>,
    tcp: bool,
    ids: [u16; 2],
    done: [bool; 2],
    /// A server failure answered one of the two questions.
    failed: bool,
    addrs: [Vec<IpAddr>; 2],
    ttl: u32,
    deadline: u64,
    /// The questions: UDP sends `out[..split]` and `out[split..]`; TCP sends
    /// both (length-prefixed) and keeps here what is still to go.
    out: Vec<u8>,
    split: usize,
    /// TCP: bytes read, not yet parsed.
    inbuf: Vec<u8>,
    waiters: Vec<Tid>,
}

pub struct Resolver {
    conf: ResolvConf,
    hosts: Hosts,
    cache: Cache,
    queries: Vec<Option<Query>>,
    free: Vec<u32>,
    inflight: HashMap<String, u32>,
    /// The answer of a query that ended inside `lookup` (no server usable).
    immediate: Option<Answer>,
    in_lookup: bool,
    rng: u64,
    rotate: usize,
}

const TYPES: [u16; 2] = [TYPE_A, TYPE_AAAA];

/// What one response says about the query it answers.
enum Outcome {
    Pending,
    Answered,
    NoName,
    ServerFailure,
    Truncated,
}

impl Resolver {
    /// Reads resolv.conf and the hosts file (once: a loop's resolver keeps
    /// them). A missing file is an empty one; failing to read one for want of
    /// fds is an error, so no resolver is kept that never saw the files.
    pub fn new(cfg: &Config) -> Result<Resolver, Error> {
        let read = |p: String| match std::fs::read_to_string(p) {
            Ok(text) => Ok(text),
            Err(e) => Error::exhausted(&e).map_or(Ok(String::new()), Err),
        };
        let mut conf =
            ResolvConf::parse(&read(Config::path(&cfg.resolv_conf, "COEVENT_RESOLV_CONF", "/etc/resolv.conf"))?);
        if let Some(ns) = &cfg.nameservers {
            conf.nameservers = ns.clone();
        }
        if conf.nameservers.is_empty() {
            // As glibc: no nameserver line means the local one.
            conf.nameservers.push(SocketAddr::from(([127, 0, 0, 1], 53)));
        }
        Ok(Resolver {
            conf,
            hosts: Hosts::read(Config::path(&cfg.hosts, "COEVENT_HOSTS", "/etc/hosts"))?,
            cache: Cache::new(cfg.cache_size.unwrap_or(CACHE_SIZE)),
            queries: Vec::new(),
            free: Vec::new(),
            inflight: HashMap::new(),
            immediate: None,
            in_lookup: false,
            rng: sys::random_u64() | 1,
            rotate: 0,
        })
    }

    /// Answers from the hosts file or the cache, else starts (or joins) a query.
    pub fn lookup(&mut self, r: &mut Reactor, name: &str) -> Lookup {
        // The key keeps a final dot: "host." is absolute, "host" goes through the search list.
        let key = name.to_ascii_lowercase();
        if let Some(ips) = self.hosts.get(&key) {
            return Lookup::Done(Ok(ips));
        }
        if let Some(a) = self.cache.get(&key, r.now()) {
            return Lookup::Done(a);
        }
        if let Some(&q) = self.inflight.get(&key) {
            return Lookup::Wait(q);
        }
        let candidates = self.conf.candidates(&key);
        if candidates.is_empty() {
            return Lookup::Done(Err(Error::NoSuchHost));
        }
        let first = if self.conf.rotate {
            self.rotate += 1;
            self.rotate
        } else {
            0
        };
        let query = Query {
            key: key.clone(),
            candidates,
            cand: 0,
            first,
            tries: 0,
            src: None,
            tcp: false,
            ids: [0; 2],
            done: [false; 2],
            failed: false,
            addrs: [Vec::new(), Vec::new()],
            ttl: u32::MAX,
            deadline: 0,
            out: Vec::new(),
            split: 0,
            inbuf: Vec::new(),
            waiters: Vec::new(),
        };
        let q = match self.free.pop() {
            Some(q) => {
                self.queries[q as usize] = Some(query);
                q
            }
            None => {
                self.queries.push(Some(query));
                (self.queries.len() - 1) as u32
            }
        };
        self.inflight.insert(key, q);
        self.in_lookup = true;
        self.send_try(r, q, &mut Vec::new());
        self.in_lookup = false;
        match self.immediate.take() {
            Some(a) => Lookup::Done(a),
            None => Lookup::Wait(q),
        }
    }

    /// Files thread `tok` to be handed query `q`'s answer; false if it has ended.
    pub fn add_waiter(&mut self, q: u32, tok: Tid) -> bool {
        match self.queries.get_mut(q as usize).and_then(Option::as_mut) {
            Some(query) => {
                query.waiters.push(tok);
                true
            }
            None => false,
        }
    }

    /// Takes back `tok`'s wait for query `q` (its thread was killed, or its
    /// socket closed); false if it was not waiting there.
    pub fn remove_waiter(&mut self, q: u32, tok: Tid) -> bool {
        let Some(query) = self.queries.get_mut(q as usize).and_then(Option::as_mut) else { return false };
        let n = query.waiters.len();
        query.waiters.retain(|&w| w != tok);
        query.waiters.len() < n
    }

    /// Names cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Queries under way (each can wake threads later).
    pub fn pending(&self) -> usize {
        self.inflight.len()
    }

    fn next_id(&mut self) -> u16 {
        // xorshift64*: ids nobody off-path can guess without seeing the seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 48) as u16
    }

    fn query(&mut self, q: u32) -> &mut Query {
        self.queries[q as usize].as_mut().expect("live query")
    }

    /// Asks the current candidate of the next server, over UDP unless `tcp`.
    fn send_try(&mut self, r: &mut Reactor, q: u32, woken: &mut Vec<(Tid, Answer)>) {
        let ids = [self.next_id(), self.next_id()];
        let timeout = self.conf.timeout_ms;
        let ns = &self.conf.nameservers;
        let query = self.queries[q as usize].as_mut().expect("live query");
        let server = Addr::Ip(ns[(query.first + query.tries) % ns.len()]);
        close_query_fd(r, query);
        query.ids = ids;
        query.done = [false; 2];
        query.failed = false;
        query.addrs = [Vec::new(), Vec::new()];
        query.ttl = u32::MAX;
        query.out.clear();
        query.inbuf.clear();
        let name = &query.candidates[query.cand];
        for (id, t) in ids.into_iter().zip(TYPES) {
            let at = query.out.len();
            if query.tcp {
                query.out.extend_from_slice(&[0, 0]);
            }
            if dns::encode_query(id, name, t, &mut query.out).is_err() {
                // A name no server can be asked about.
                return self.next_candidate(r, q, woken);
            }
            if query.tcp {
                let len = (query.out.len() - at - 2) as u16;
                query.out[at..at + 2].copy_from_slice(&len.to_be_bytes());
            }
            if t == TYPE_A {
                query.split = query.out.len();
            }
        }
        let opened = if query.tcp { open_tcp(r, query, &server) } else { open_udp(r, query, &server) };
        match opened {
            Ok(dir) => {
                query.deadline = r.now() + timeout;
                let src = query.src.expect("opened");
                r.wait(src, Side::Reader, dir, Token::Query(q), Some(timeout));
            }
            // Out of fds: asking other servers cannot help, and it is not their fault.
            Err(e) => match Error::exhausted(&e) {
                Some(err) => self.finish(r, q, Err(err), None, woken),
                None => self.next_server(r, q, Error::ServerFailure, woken),
            },
        }
    }

    /// A wake-up for query `q`: its socket is ready, or its timer fired.
    /// Threads whose query ends get their answer in `woken`.
    pub fn on_wake(&mut self, r: &mut Reactor, q: u32, why: Reason, woken: &mut Vec<(Tid, Answer)>) {
        let Some(query) = self.queries.get_mut(q as usize).and_then(Option::as_mut) else { return };
        let Some(src) = query.src else { return };
        if why != Reason::Ready {
            // A server that answers A but drops AAAA (or the reverse): take the half.
            if query.addrs.iter().any(|a| !a.is_empty()) {
                return self.conclude(r, q, woken);
            }
            return self.next_server(r, q, Error::Timeout, woken);
        }
        let outcome = if query.tcp { tcp_step(r, query) } else { udp_step(r, query) };
        let query = self.query(q);
        match outcome {
            Ok(Outcome::Pending) => {
                let left = query.deadline.saturating_sub(r.now());
                if left == 0 {
                    return self.next_server(r, q, Error::Timeout, woken);
                }
                let dir = if query.tcp && !query.out.is_empty() { Dir::Write } else { Dir::Read };
                r.wait(src, Side::Reader, dir, Token::Query(q), Some(left));
            }
            Ok(Outcome::Answered) => self.conclude(r, q, woken),
            Ok(Outcome::NoName) => self.next_candidate(r, q, woken),
            Ok(Outcome::Truncated) => {
                query.tcp = true;
                self.send_try(r, q, woken);
            }
            Ok(Outcome::ServerFailure) | Err(()) => self.next_server(r, q, Error::ServerFailure, woken),
        }
    }

    /// Ends the query with the addresses gathered (IPv4 first), or moves on to
    /// the next candidate if there are none (the name has no such records).
    fn conclude(&mut self, r: &mut Reactor, q: u32, woken: &mut Vec<(Tid, Answer)>) {
        let query = self.query(q);
        let [v4, v6] = std::mem::take(&mut query.addrs);
        let ttl = query.ttl;
        if v4.is_empty() && v6.is_empty() {
            return self.next_candidate(r, q, woken);
        }
        self.finish(r, q, Ok(v4.into_iter().chain(v6).collect()), Some(ttl.clamp(TTL_MIN, TTL_MAX)), woken);
    }

    /// The candidate does not exist: try the next, or end with "no such host".
    fn next_candidate(&mut self, r: &mut Reactor, q: u32, woken: &mut Vec<(Tid, Answer)>) {
        let query = self.query(q);
        query.cand += 1;
        query.tries = 0;
        query.tcp = false;
        if query.cand < query.candidates.len() {
            self.send_try(r, q, woken);
        } else {
            self.finish(r, q, Err(Error::NoSuchHost), Some(NEGATIVE_TTL), woken);
        }
    }

    /// This server failed or was silent: the next one, round and round `attempts` times.
    fn next_server(&mut self, r: &mut Reactor, q: u32, err: Error, woken: &mut Vec<(Tid, Answer)>) {
        let most = self.conf.nameservers.len() * self.conf.attempts.max(1) as usize;
        let query = self.query(q);
        query.tries += 1;
        query.tcp = false;
        if query.tries < most {
            self.send_try(r, q, woken);
        } else {
            self.finish(r, q, Err(err), None, woken);
        }
    }

    /// Ends query `q`, caching its answer for `ttl` seconds if given.
    fn finish(&mut self, r: &mut Reactor, q: u32, answer: Answer, ttl: Option<u32>, woken: &mut Vec<(Tid, Answer)>) {
        let mut query = self.queries[q as usize].take().expect("live query");
        self.free.push(q);
        close_query_fd(r, &mut query);
        self.inflight.remove(&query.key);
        if let Some(ttl) = ttl {
            let expires = r.now() + ttl as u64 * 1000;
            self.cache.insert(query.key.clone(), Cached { answer: answer.clone(), expires });
        }
        if self.in_lookup {
            // Ended inside `lookup` itself: hand the answer back there.
            self.immediate = Some(answer);
            return;
        }
        woken.extend(query.waiters.into_iter().map(|w| (w, answer.clone())));
    }

    /// Ends every query, closing its socket and pushing its waiters (who find
    /// no answer and must look up again) onto `woken`.
    pub fn abort(&mut self, r: &mut Reactor, woken: &mut Vec<Tid>) {
        for query in self.queries.iter_mut().flatten() {
            close_query_fd(r, query);
            woken.append(&mut query.waiters);
        }
        self.queries.clear();
        self.inflight.clear();
    }
}

/// The hosts file, parsed once and read again when its mtime changes.
struct Hosts {
    path: String,
    mtime: Option<std::time::SystemTime>,
    names: HashMap<String, Vec<IpAddr>>,
}

impl Hosts {
    fn read(path: String) -> Result<Hosts, Error> {
        let mut h = Hosts { path, mtime: None, names: HashMap::new() };
        h.reload(h.stat())?;
        Ok(h)
    }

    fn stat(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(&self.path).and_then(|m| m.modified()).ok()
    }

    /// A missing file is an empty one; failing to read one for want of fds
    /// is an error.
    fn reload(&mut self, mtime: Option<std::time::SystemTime>) -> Result<(), Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) => Error::exhausted(&e).map_or(Ok(String::new()), Err)?,
        };
        self.names = hosts_table(&text);
        self.mtime = mtime;
        Ok(())
    }

    /// `key`'s addresses (lowercase, a final dot allowed). One stat a
    /// lookup: glibc opens and reads the file each time.
    fn get(&mut self, key: &str) -> Option<Vec<IpAddr>> {
        let mtime = self.stat();
        if mtime != self.mtime {
            // Out of fds: the names known stay until a read succeeds.
            let _ = self.reload(mtime);
        }
        self.names.get(key.strip_suffix('.').unwrap_or(key)).cloned()
    }
}

/// Answers by name, at most `cap` of them: the least recently used goes
/// first. Finding it is a scan, paid only by a lookup that went to the
/// network and found the cache full.
struct Cache {
    cap: usize,
    tick: u64,
    /// Each answer with its last use.
    map: HashMap<String, (Cached, u64)>,
}

impl Cache {
    fn new(cap: usize) -> Cache {
        Cache { cap, tick: 0, map: HashMap::new() }
    }

    fn get(&mut self, key: &str, now: u64) -> Option<Answer> {
        let (c, used) = self.map.get_mut(key)?;
        if c.expires <= now {
            self.map.remove(key);
            return None;
        }
        self.tick += 1;
        *used = self.tick;
        Some(c.answer.clone())
    }

    fn insert(&mut self, key: String, c: Cached) {
        if self.cap == 0 {
            return;
        }
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            let oldest = self.map.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone());
            self.map.remove(&oldest.expect("a full cache"));
        }
        self.tick += 1;
        self.map.insert(key, (c, self.tick));
    }

    /// Names cached.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

fn close_query_fd(r: &mut Reactor, query: &mut Query) {
    if let Some(src) = query.src.take() {
        r.remove(src, &mut Vec::new());
        sys::close(src.fd);
    }
}

/// Registers a query's new socket, closing it if the reactor refuses it.
fn register(r: &mut Reactor, query: &mut Query, fd: Fd) -> std::io::Result<Src> {
    match r.add(fd) {
        Ok(src) => {
            query.src = Some(src);
            Ok(src)
        }
        Err(e) => {
            sys::close(fd);
            Err(e)
        }
    }
}

/// Opens a connected UDP socket to the server and sends both questions.
fn open_udp(r: &mut Reactor, query: &mut Query, server: &Addr) -> std::io::Result<Dir> {
    let fd = sys::dgram_socket(server)?;
    register(r, query, fd)?;
    sys::connect(fd, server)?;
    // Two datagrams, a question each (servers answer one question per message),
    // in one syscall.
    let (a, aaaa) = query.out.split_at(query.split);
    if sys::send_datagrams(fd, &[a, aaaa])? < 2 {
        return Err(std::io::Error::from(WouldBlock));
    }
    query.out.clear();
    Ok(Dir::Read)
}

/// Starts a TCP connect to the server; the questions go once it is writable.
fn open_tcp(r: &mut Reactor, query: &mut Query, server: &Addr) -> std::io::Result<Dir> {
    let src = register(r, query, sys::stream_socket(server)?)?;
    r.set_ready(src, Dir::Write, false);
    if sys::connect(src.fd, server)? {
        r.set_ready(src, Dir::Write, true);
    }
    Ok(Dir::Write)
}

/// Reads the datagrams waiting, two at a time (one syscall for both answers
/// when they came together), and weighs each answer.
fn udp_step(r: &mut Reactor, query: &mut Query) -> Result<Outcome, ()> {
    let src = query.src.expect("opened");
    let mut bufs = [Vec::with_capacity(UDP_MAX), Vec::with_capacity(UDP_MAX)];
    loop {
        match sys::recv_datagrams(src.fd, &mut bufs) {
            Ok(n) => {
                for b in &bufs[..n] {
                    match weigh(query, b) {
                        Outcome::Pending => {}
                        o => return Ok(o),
                    }
                }
            }
            Err(e) if e.kind() == WouldBlock => {
                r.set_ready(src, Dir::Read, false);
                return Ok(Outcome::Pending);
            }
            // ICMP unreachable and the like: this server will not answer.
            Err(_) => return Err(()),
        }
    }
}

/// Largest UDP answer read (no EDNS is offered, so servers send at most 512).
const UDP_MAX: usize = 1500;

/// Sends what is left of the questions, then reads length-prefixed answers.
fn tcp_step(r: &mut Reactor, query: &mut Query) -> Result<Outcome, ()> {
    let src = query.src.expect("opened");
    let fd = src.fd;
    if !query.out.is_empty() {
        if !r.is_ready(src, Dir::Write) {
            return Ok(Outcome::Pending);
        }
        if sys::take_error(fd).map_err(drop)? != 0 {
            return Err(());
        }
        match sys::send(fd, &query.out) {
            Ok(n) => drop(query.out.drain(..n)),
            Err(e) if e.kind() == WouldBlock => {}
            Err(_) => return Err(()),
        }
        if !query.out.is_empty() {
            r.set_ready(src, Dir::Write, false);
            return Ok(Outcome::Pending);
        }
    }
    loop {
        while query.inbuf.len() >= 2 {
            let len = u16::from_be_bytes([query.inbuf[0], query.inbuf[1]]) as usize;
            if query.inbuf.len() < 2 + len {
                break;
            }
            let msg: Vec<u8> = query.inbuf.drain(..2 + len).skip(2).collect();
            match weigh(query, &msg) {
                Outcome::Pending => {}
                // Still truncated over TCP: take what came.
                Outcome::Truncated => {}
                o => return Ok(o),
            }
        }
        if !r.is_ready(src, Dir::Read) {
            return Ok(Outcome::Pending);
        }
        match sys::recv(fd, &mut query.inbuf, 4096) {
            Ok(0) => return Err(()),
            Ok(_) => {}
            Err(e) if e.kind() == WouldBlock => r.set_ready(src, Dir::Read, false),
            Err(_) => return Err(()),
        }
    }
}

/// Checks one response against the questions and takes what it says.
fn weigh(query: &mut Query, msg: &[u8]) -> Outcome {
    let Ok(a) = dns::parse_response(msg) else { return Outcome::Pending };
    let Some(i) = (0..2).find(|&i| query.ids[i] == a.id && !query.done[i]) else { return Outcome::Pending };
    // An answer to some other question (spoofed or stale) is ignored.
    if a.qtype != TYPES[i] || !a.qname.eq_ignore_ascii_case(&query.candidates[query.cand]) {
        return Outcome::Pending;
    }
    if a.truncated && !query.tcp {
        return Outcome::Truncated;
    }
    match a.rcode {
        RCODE_NOERROR => {
            let (addrs, ttl) = a.addresses();
            query.addrs[i] = addrs;
            // Only answers with addresses set the TTL: "no AAAA" must not
            // shorten how long the A records are kept.
            if let Some(ttl) = ttl {
                query.ttl = query.ttl.min(ttl);
            }
        }
        RCODE_NXDOMAIN => return Outcome::NoName,
        // SERVFAIL, REFUSED...: fatal only if the other type brings nothing
        // either (some servers refuse AAAA yet answer A).
        _ => query.failed = true,
    }
    query.done[i] = true;
    match query.done {
        [true, true] if query.failed && query.addrs.iter().all(Vec::is_empty) => Outcome::ServerFailure,
        [true, true] => Outcome::Answered,
        _ => Outcome::Pending,
    }
}
