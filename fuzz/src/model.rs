//! A model-based test of the engine's identities: light threads (`Tid`s of a
//! generational slab, as the scheduler's), their wakes, timers and keepalive
//! pools with a backlog, driven by a random sequence of operations as the Lua
//! layer drives them (src/sched.rs, src/socket/tcp.rs and keepalive.rs):
//! spawn a connect into a pool, setkeepalive, close, kill, close a waiting
//! thread's socket, read, sleep, a peer sending or hanging up, and time moving
//! on a simulated clock (`Reactor::fast_forward`). After every step, with the
//! loop quiet, the engine is held against a plain model:
//! - a wake reaches only a thread waiting for it: a sleeper once its deadline
//!   has passed, a reader when its own connection has bytes or has ended, a
//!   queued connect for its place, its timeout or its socket's close; a wake
//!   for a thread that has ended reaches nobody (a thread started since in
//!   its slot least of all);
//! - a reader reads its own connection's bytes only;
//! - no pool place is lost: each pool counts its live and idle connections
//!   and its waiters, never more live than its size, and a connect waits only
//!   while every place is in use;
//! - the reactor's pending waits are the model's.
//!
//! Input: a byte of pool sizes, then operations of two bytes (kind, argument).

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;

use coevent_engine::pool::{Join, Pools};
use coevent_engine::reactor::{Dir, Handle, Reactor, Reason, Side, Src, Tid, Token};
use coevent_engine::slab::Slab;
use coevent_engine::stream::Conn;
use coevent_engine::sys;
use coevent_engine::wheel::TimerId;

const KEYS: [&[u8]; 2] = [b"a", b"b"];
/// At most this many threads (and so fds) at once.
const MAX_THREADS: usize = 64;

/// A connection's far end, and what it sent: every byte is the link's tag.
struct Link {
    src: Src,
    tag: u8,
    peer: Option<UnixStream>,
}

/// A connection a thread holds.
struct Held {
    conn: Conn,
    pool: Handle,
    key: usize,
    reused: u32,
    link: Link,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Was {
    Queued { pool: Handle, key: usize },
    Sleeping,
    Reading,
}

#[derive(Debug)]
enum St {
    /// Running between waits (it may hold a connection).
    Idle,
    /// In a pool's backlog (`closed`: another thread closed its socket).
    Queued {
        pool: Handle,
        key: usize,
        deadline: Option<u64>,
        closed: bool,
    },
    Sleeping {
        timer: TimerId,
        deadline: u64,
    },
    /// On its own connection; `closed`: another thread closed it under it.
    Reading {
        deadline: Option<u64>,
        closed: bool,
    },
    /// In the run queue, woken for `why`.
    Woken {
        why: Reason,
        was: Was,
        closed: bool,
    },
}

struct Task {
    st: St,
    held: Option<Held>,
}

struct Model {
    r: Reactor,
    pools: Pools,
    sizes: [(usize, usize); 2],
    tasks: Slab<Task>,
    runq: VecDeque<Tid>,
    woken: Vec<(Token, Reason)>,
    /// The links of idle connections (in a pool).
    idle: Vec<Link>,
    tags: u8,
    /// COEVENT_MODEL_TRACE set: each step and wake on stderr.
    trace: bool,
}

impl Model {
    fn new(sizes: u8) -> Model {
        let s = |b: u8| (1 + usize::from(b & 1), usize::from(b >> 1 & 3));
        Model {
            r: Reactor::new().expect("epoll"),
            pools: Pools::default(),
            sizes: [s(sizes), s(sizes >> 4)],
            tasks: Slab::default(),
            runq: VecDeque::new(),
            woken: Vec::new(),
            idle: Vec::new(),
            tags: 0,
            trace: std::env::var_os("COEVENT_MODEL_TRACE").is_some(),
        }
    }

    /// A new connection, registered, with its peer.
    fn connect(&mut self, pool: Handle, key: usize) -> Held {
        let (ours, peer) = UnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("non-blocking");
        // Unread small writes fill a unix socket's buffer quickly: a full
        // one drops the peer's bytes rather than blocking the test.
        peer.set_nonblocking(true).expect("non-blocking");
        let src = self.r.add(ours.into_raw_fd()).expect("epoll add");
        self.tags = self.tags.wrapping_add(1);
        Held { conn: Conn::plain(src), pool, key, reused: 0, link: Link { src, tag: self.tags, peer: Some(peer) } }
    }

    /// A connection a pool handed out: its link comes back from the idle ones.
    fn resume(&mut self, conn: Conn, pool: Handle, key: usize, reused: u32) -> Held {
        let i = self.idle.iter().position(|l| l.src == conn.src()).expect("the link of an idle connection");
        Held { conn, pool, key, reused: reused + 1, link: self.idle.swap_remove(i) }
    }

    /// Closes a connection a thread holds: its pool place ends (as `Stream::close`).
    fn close(&mut self, h: Held) {
        // Its reader, if any, is the caller's to have woken.
        self.r.remove(h.conn.src(), &mut self.woken);
        h.conn.close(&mut self.r);
        self.woken.push((Token::Pool(h.pool), Reason::Closed));
    }

    /// The threads in a state that `pick` accepts, the `n`th of them (modulo).
    fn pick(&mut self, n: u8, pick: impl Fn(&Task) -> bool) -> Option<Tid> {
        let all: Vec<Tid> = self.tasks.iter_mut().filter(|(_, t)| pick(t)).map(|(h, _)| h).collect();
        (!all.is_empty()).then(|| all[usize::from(n) % all.len()])
    }

    fn task(&mut self, t: Tid) -> &mut Task {
        self.tasks.get_mut(t).expect("a live thread")
    }

    /// One step: a thing a running thread does, time passing, the wakes
    /// handed out (as when a thread yields), or the next woken thread run.
    fn op(&mut self, kind: u8, arg: u8) {
        if self.trace {
            let sts: Vec<String> =
                self.tasks.iter_mut().map(|(h, t)| format!("{}: {:?} {}", h.slot(), t.st, t.held.is_some())).collect();
            eprintln!("op {} {arg}  runq {:?} tasks {sts:#?}", kind % 13, self.runq);
        }
        match kind % 13 {
            0 if self.tasks.len() >= MAX_THREADS => {}
            0 => self.spawn_connect(usize::from(arg & 1), (arg >> 1 != 0).then_some(u64::from(arg >> 1))),
            1 => {
                if let Some(t) = self.pick(arg, |t| matches!(t.st, St::Idle) && t.held.is_some()) {
                    let h = self.task(t).held.take().expect("held");
                    let timeout = (arg & 3 != 0).then_some(u64::from(arg >> 2) + 1);
                    let (key, size) = (KEYS[h.key], self.sizes[h.key].0);
                    self.idle.push(h.link);
                    self.pools.put(&mut self.r, &mut self.woken, key, Some(h.pool), size, h.conn, h.reused, timeout);
                }
            }
            2 => {
                if let Some(t) = self.pick(arg, |t| matches!(t.st, St::Idle) && t.held.is_some()) {
                    let h = self.task(t).held.take().expect("held");
                    self.close(h);
                }
            }
            3 => {
                if let Some(t) = self.pick(arg, |_| true) {
                    self.kill(t);
                }
            }
            4 => {
                let queued = |t: &Task| match t.st {
                    St::Queued { closed, .. } => !closed,
                    St::Woken { was: Was::Queued { .. }, closed, .. } => !closed,
                    _ => false,
                };
                if let Some(t) = self.pick(arg, queued) {
                    self.close_queued(t);
                }
            }
            5 => {
                if let Some(t) = self.pick(arg, |t| matches!(t.st, St::Idle) && t.held.is_some()) {
                    self.read(t, (arg & 1 != 0).then_some(u64::from(arg >> 1)));
                }
            }
            6 | 7 => {
                let mut links: Vec<&mut Link> = self.idle.iter_mut().collect();
                links.extend(self.tasks.iter_mut().filter_map(|(_, t)| t.held.as_mut().map(|h| &mut h.link)));
                // Not a connection a pool closed a moment ago (its link goes at the step's end).
                let r = &self.r;
                links.retain(|l| l.peer.is_some() && r.live(l.src));
                if links.is_empty() {
                    return;
                }
                let n = links.len();
                let l = &mut links[usize::from(arg) % n];
                if kind % 13 == 6 {
                    let bytes = vec![l.tag; 1 + usize::from(arg % 8)];
                    match l.peer.as_mut().expect("checked").write(&bytes) {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => panic!("the peer's write: {e}"),
                    }
                } else {
                    l.peer = None;
                }
            }
            8 if self.tasks.len() < MAX_THREADS => {
                let t = self.tasks.insert(Task { st: St::Idle, held: None });
                let ms = u64::from(arg % 64);
                let deadline = self.r.now() + ms;
                let timer = self.r.sleep(Token::Thread(t), ms);
                self.task(t).st = St::Sleeping { timer, deadline };
            }
            8 => {}
            9 => {
                self.r.fast_forward(u64::from(arg % 80));
                self.r.poll(Some(0), &mut self.woken).expect("epoll_wait");
                self.deliver();
            }
            11 => self.deliver(),
            12 => {
                // The running thread yields first: what it caused is handed out.
                self.deliver();
                if let Some(t) = self.runq.pop_front() {
                    self.run(t);
                    self.deliver();
                }
            }
            _ => {
                if let Some(t) = self.pick(arg, |t| matches!(t.st, St::Reading { closed: false, .. })) {
                    // Another thread closes the socket a reader waits on.
                    let h = self.task(t).held.take().expect("a reader holds its connection");
                    if let St::Reading { closed, .. } = &mut self.task(t).st {
                        *closed = true;
                    }
                    self.close(h);
                }
            }
        }
        self.idle_gone();
        self.check();
    }

    fn spawn_connect(&mut self, key: usize, timeout: Option<u64>) {
        let (size, backlog) = self.sizes[key];
        let pool = self.pools.get_or_create(KEYS[key], size, Some(backlog));
        let t = self.tasks.insert(Task { st: St::Idle, held: None });
        if let Some((conn, reused)) = self.pools.take(pool, &mut self.r) {
            let h = self.resume(conn, pool, key, reused);
            self.task(t).held = Some(h);
            return;
        }
        match self.pools.join(pool) {
            Join::Go => self.task(t).held = Some(self.connect(pool, key)),
            Join::Refused => {
                self.tasks.remove(t);
            }
            Join::Wait => {
                self.pools.queue(pool, t);
                let deadline = timeout.map(|ms| {
                    let deadline = self.r.now() + ms;
                    let timer = self.r.sleep(Token::Thread(t), ms);
                    self.pools.set_timer(pool, t, timer);
                    deadline
                });
                self.task(t).st = St::Queued { pool, key, deadline, closed: false };
            }
        }
    }

    /// A receive: what is there is read (and must be its own link's bytes),
    /// else it waits.
    fn read(&mut self, t: Tid, timeout: Option<u64>) {
        let h = self.task(t).held.as_mut().expect("held");
        let src = h.conn.src();
        let mut buf = [0; 64];
        loop {
            match sys::recv_into(src.fd, &mut buf) {
                Ok(0) => {
                    // The peer hung up: the connection ends.
                    let h = self.task(t).held.take().expect("held");
                    return self.close(h);
                }
                Ok(n) => assert!(buf[..n].iter().all(|&b| b == h.link.tag), "another connection's bytes"),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        self.r.set_ready(src, Dir::Read, false);
        let deadline = timeout.map(|ms| self.r.now() + ms);
        self.r.wait(src, Side::Reader, Dir::Read, Token::Thread(t), timeout);
        self.task(t).st = St::Reading { deadline, closed: false };
    }

    /// Another thread closes `t`'s socket while `t` waits in a backlog (as
    /// `Sock::close`): it is taken out and woken as closed.
    fn close_queued(&mut self, t: Tid) {
        let pool = match &mut self.task(t).st {
            St::Queued { pool, closed, .. } | St::Woken { was: Was::Queued { pool, .. }, closed, .. } => {
                *closed = true;
                *pool
            }
            st => panic!("not queued: {st:?}"),
        };
        if self.pools.unqueue(pool, t, &mut self.r, &mut self.woken) {
            self.woken.push((Token::Thread(t), Reason::Closed));
        }
    }

    /// `L.kill`: ends `t` where it waits, as `Sched::kill` does.
    fn kill(&mut self, t: Tid) {
        let task = self.tasks.remove(t).expect("a live thread");
        self.runq.retain(|&x| x != t);
        match task.st {
            St::Idle => {}
            // Its connect is left half done: its socket closes.
            St::Queued { pool, .. } | St::Woken { was: Was::Queued { pool, .. }, .. } => {
                self.pools.unqueue(pool, t, &mut self.r, &mut self.woken);
            }
            St::Sleeping { timer, .. } => {
                assert!(self.r.cancel(timer), "a sleeper's timer is live until it wakes");
            }
            St::Woken { was: Was::Sleeping, .. } => {}
            // A receive's socket closes unless the receive timed out.
            St::Reading { .. } => {
                if let Some(h) = &task.held {
                    self.r.unwait(h.conn.src(), Side::Reader);
                }
            }
            St::Woken { was: Was::Reading, .. } => {}
        }
        // What it holds goes (its socket collected, or closed by the kill).
        if let Some(h) = task.held {
            self.close(h);
        }
    }

    /// Hands out the wakes gathered (as `Sched::deliver`), the pools' own
    /// appending the wakes of the places they grant, then runs the woken
    /// threads, delivering after each, until the loop is quiet.
    fn turn(&mut self) {
        loop {
            self.deliver();
            let Some(t) = self.runq.pop_front() else { break };
            self.run(t);
        }
        self.idle_gone();
    }

    /// Idle connections a pool closed (a peer's data or hang-up, the idle
    /// timeout, an eviction) are gone: their links go too.
    fn idle_gone(&mut self) {
        let r = &self.r;
        self.idle.retain(|l| r.live(l.src));
    }

    fn deliver(&mut self) {
        let mut woken = std::mem::take(&mut self.woken);
        let mut i = 0;
        while let Some(&(tok, why)) = woken.get(i) {
            i += 1;
            match tok {
                Token::Thread(t) => self.wake(t, why),
                Token::Idle(_) | Token::Pool(_) => self.pools.on_wake(&mut self.r, tok, why, &mut woken),
                Token::Query(_) => panic!("no queries here"),
            }
        }
        woken.clear();
        self.woken = woken;
    }

    /// A wake for `t`: dropped if `t` ended; else it must be one that `t`'s
    /// wait can end with.
    fn wake(&mut self, t: Tid, why: Reason) {
        if self.trace {
            eprintln!("  wake {t:?} {why:?}: {:?}", self.tasks.get(t).map(|t| &t.st));
        }
        let now = self.r.now();
        let Some(task) = self.tasks.get_mut(t) else { return };
        let (was, closed) = match (&task.st, why) {
            // A second wake for a wait that already ended: dropped.
            (St::Woken { .. }, _) => return,
            (St::Idle, _) => panic!("{why:?} reached a thread that waits for nothing"),
            (St::Queued { pool, key, deadline, closed }, _) => {
                match why {
                    Reason::Timeout => assert!(deadline.is_some_and(|d| now >= d), "a backlog timeout before its time"),
                    Reason::Closed => assert!(closed, "a queued connect woken as closed, its socket open"),
                    Reason::Ready => {}
                }
                (Was::Queued { pool: *pool, key: *key }, *closed)
            }
            (St::Sleeping { deadline, .. }, Reason::Timeout) => {
                assert!(now >= *deadline, "a sleeper woken at {now}, due at {deadline}");
                (Was::Sleeping, false)
            }
            (St::Sleeping { .. }, _) => panic!("a sleeper woken by {why:?}"),
            (St::Reading { deadline, closed }, _) => {
                match why {
                    Reason::Timeout => assert!(deadline.is_some_and(|d| now >= d), "a receive timed out early"),
                    Reason::Closed => assert!(closed, "a reader woken as closed, its connection open"),
                    Reason::Ready => {
                        let h = task.held.as_ref().expect("a reader holds its connection");
                        assert!(self.r.is_ready(h.conn.src(), Dir::Read), "a reader woken with nothing to read");
                    }
                }
                (Was::Reading, *closed)
            }
        };
        task.st = St::Woken { why, was, closed };
        self.runq.push_back(t);
    }

    /// Runs a woken thread to its next step, as the operations' `*_woken` do.
    fn run(&mut self, t: Tid) {
        let St::Woken { why, was, closed } = self.task(t).st else { panic!("ran a thread not woken") };
        self.task(t).st = St::Idle;
        match was {
            Was::Sleeping => {}
            Was::Reading if closed || why == Reason::Timeout => {}
            Was::Reading => self.read(t, None),
            // Its socket was closed: its connect fails, nothing to give back.
            Was::Queued { .. } if closed => {
                self.tasks.remove(t);
            }
            Was::Queued { pool, key } => match self.pools.claim(pool, t, &mut self.r, &mut self.woken) {
                Some(Some((conn, reused))) => self.task(t).held = Some(self.resume(conn, pool, key, reused)),
                Some(None) => self.task(t).held = Some(self.connect(pool, key)),
                None => {
                    assert_ne!(why, Reason::Ready, "woken for a place it was not granted");
                    self.pools.unqueue(pool, t, &mut self.r, &mut self.woken);
                    self.tasks.remove(t);
                }
            },
        }
    }

    /// The engine against the model: the pending waits and the pools' books
    /// once the wakes are handed out (a close's reaches its pool then), the
    /// places once the loop is quiet too.
    fn check(&mut self) {
        if !self.woken.is_empty() {
            return;
        }
        let quiet = self.runq.is_empty();
        let mut pending = 0;
        let (mut live, mut queued) = ([0; 2], [0; 2]);
        for (_, t) in self.tasks.iter_mut() {
            match t.st {
                St::Idle | St::Woken { closed: true, .. } | St::Woken { was: Was::Sleeping | Was::Reading, .. } => {}
                St::Queued { key, deadline, closed, .. } => {
                    queued[key] += usize::from(!closed);
                    pending += usize::from(deadline.is_some() && !closed);
                }
                St::Woken { was: Was::Queued { key, .. }, .. } => queued[key] += 1,
                St::Sleeping { .. } | St::Reading { .. } => pending += 1,
            }
            if let Some(h) = &t.held {
                live[h.key] += 1;
            }
        }
        assert_eq!(self.r.pending(), pending, "the reactor's pending waits");
        let mut idle_total = 0;
        for k in 0..KEYS.len() {
            let size = self.sizes[k].0;
            let Some(p) = self.pools.find(KEYS[k]) else {
                assert_eq!((live[k], queued[k]), (0, 0), "pool {k} forgotten while in use");
                continue;
            };
            let (count, idle, waiting) = self.pools.stats(p).expect("found");
            idle_total += idle;
            assert_eq!((count, waiting), (live[k] + idle + queued[k], queued[k]), "pool {k}: count, waiters");
            assert!(live[k] <= size, "pool {k}: {} live, {size} places", live[k]);
            if quiet {
                let (l, q) = (live[k], queued[k]);
                assert!(q == 0 || l == size, "pool {k}: {q} connects wait while {l} of {size} places are in use");
            }
        }
        // Granted, not yet claimed, a connection is neither idle nor held.
        assert!(idle_total <= self.idle.len());
        if quiet {
            assert_eq!(idle_total, self.idle.len(), "idle connections");
        }
    }

    /// Ends every thread and closes everything: nothing may be left waiting.
    fn end(mut self) {
        self.turn();
        self.check();
        while let Some(t) = self.pick(0, |_| true) {
            self.kill(t);
            self.turn();
        }
        self.check();
        self.pools.close_all(&mut self.r);
        assert_eq!(self.r.pending(), 0);
    }
}

pub fn check(data: &[u8]) {
    let Some((&sizes, ops)) = data.split_first() else { return };
    let mut m = Model::new(sizes);
    for op in ops.chunks_exact(2).take(2000) {
        m.op(op[0], op[1]);
    }
    m.end();
}
