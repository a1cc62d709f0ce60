//! Keepalive pools, OpenResty's: idle connections by pool name, most recent
//! taken first, the least recent closed when a pool is full. An idle
//! connection stays registered with epoll and is watched without a thread
//! (`Token::Idle`): the peer's data, its close or the idle timeout closes it.
//!
//! A pool counts its connections, live and idle, and the connects waiting in
//! its backlog; with a backlog set, at most `size` may live, and connects
//! beyond wait in a queue (up to `backlog` of them) for one to end. A pool
//! whose count falls to 0 is forgotten, its size with it, as OpenResty's.
//!
//! A place that frees up is granted to the first waiter: the connection that
//! `setkeepalive` brings back, or, when a connection ends, the right to
//! connect anew. The grant stays in the queue with the waiter until its
//! thread claims it; a waiter that leaves any other way (killed, its socket
//! closed, its timeout) hands it on, so no place is lost whatever happens
//! between the grant and the claim. The places in use (live, idle and granted)
//! never exceed the size.

use std::collections::{HashMap, VecDeque};

use crate::reactor::{Dir, Reactor, Reason, Side, Tid, Token};
use crate::slab::{Handle, Slab};
use crate::stream::Conn;
use crate::sys;
use crate::wheel::TimerId;

/// OpenResty's `lua_socket_pool_size` and `lua_socket_keepalive_timeout`.
pub const DEFAULT_SIZE: usize = 30;
pub const DEFAULT_IDLE_TIMEOUT: u64 = 60_000;

#[derive(Debug)]
struct Pool {
    key: Box<[u8]>,
    size: usize,
    backlog: Option<usize>,
    /// Live and idle connections, and connects in the backlog.
    count: usize,
    /// Idle connections, the most recent first.
    idle: VecDeque<Handle>,
    /// Connects waiting for a place, in order.
    queue: VecDeque<Waiter>,
}

impl Pool {
    /// Live, idle and granted places: the count but for waiters without a grant.
    fn used(&self) -> usize {
        self.count - self.queue.iter().filter(|w| w.grant.is_none()).count()
    }
}

/// A connect in a pool's backlog, and the place granted to it, once it has one.
#[derive(Debug)]
struct Waiter {
    tid: Tid,
    timer: Option<TimerId>,
    grant: Option<Grant>,
}

#[derive(Debug)]
enum Grant {
    /// A connection `setkeepalive` brought back (with its reuse count and
    /// idle timeout, should it go idle after all).
    Conn(Conn, u32, Option<u64>),
    /// A connection ended: a new one may be made.
    Place,
}

#[derive(Debug)]
struct Idle {
    pool: Handle,
    conn: Conn,
    reused: u32,
    /// When its idle timeout ends (reactor ms), if it has one.
    deadline: Option<u64>,
}

/// What `join` allows a connect that found no idle connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Join {
    /// Connect now (counted).
    Go,
    /// Wait in the backlog (counted); `queue` files the thread.
    Wait,
    /// The backlog is full: "too many waiting connect operations".
    Refused,
}

#[derive(Debug, Default)]
pub struct Pools {
    pools: Slab<Pool>,
    by_key: HashMap<Box<[u8]>, Handle>,
    idle: Slab<Idle>,
}

impl Pools {
    pub fn find(&self, key: &[u8]) -> Option<Handle> {
        self.by_key.get(key).copied()
    }

    /// The pool named `key`, made with `size` and `backlog` if it does not exist.
    pub fn get_or_create(&mut self, key: &[u8], size: usize, backlog: Option<usize>) -> Handle {
        if let Some(p) = self.find(key) {
            return p;
        }
        let pool = Pool { key: key.into(), size, backlog, count: 0, idle: VecDeque::new(), queue: VecDeque::new() };
        let p = self.pools.insert(pool);
        self.by_key.insert(key.into(), p);
        p
    }

    fn pool(&mut self, p: Handle) -> &mut Pool {
        self.pools.get_mut(p).expect("a live pool")
    }

    /// For a new connect: the most recent idle connection of pool `p` and how
    /// many times it was reused before, no longer watched; none while
    /// connects wait in the backlog without a place, which come first.
    pub fn take(&mut self, p: Handle, r: &mut Reactor) -> Option<(Conn, u32)> {
        if self.pool(p).queue.iter().any(|w| w.grant.is_none()) {
            return None;
        }
        self.take_idle(p, r)
    }

    fn take_idle(&mut self, p: Handle, r: &mut Reactor) -> Option<(Conn, u32)> {
        let i = self.pool(p).idle.pop_front()?;
        let idle = self.idle.remove(i).expect("an idle connection");
        r.unwait(idle.conn.src(), Side::Reader);
        Some((idle.conn, idle.reused))
    }

    /// Pool `p`'s count (live and idle connections, and connects in its
    /// backlog), its idle connections and its waiters; None if it is forgotten.
    pub fn stats(&self, p: Handle) -> Option<(usize, usize, usize)> {
        self.pools.get(p).map(|pool| (pool.count, pool.idle.len(), pool.queue.len()))
    }

    /// Counts a connect to pool `p` that found no idle connection.
    pub fn join(&mut self, p: Handle) -> Join {
        let pool = self.pool(p);
        pool.count += 1;
        match pool.backlog {
            Some(b) if pool.count > pool.size + b => {
                pool.count -= 1;
                Join::Refused
            }
            Some(_) if pool.count > pool.size => Join::Wait,
            _ => Join::Go,
        }
    }

    /// Files thread `tid` in pool `p`'s backlog (after `join` said `Wait`).
    pub fn queue(&mut self, p: Handle, tid: Tid) {
        self.pool(p).queue.push_back(Waiter { tid, timer: None, grant: None });
    }

    /// Notes the timer of `tid`'s wait in the backlog.
    pub fn set_timer(&mut self, p: Handle, tid: Tid, timer: TimerId) {
        if let Some(w) = self.pools.get_mut(p).and_then(|pool| pool.queue.iter_mut().find(|w| w.tid == tid)) {
            w.timer = Some(timer);
        }
    }

    /// Thread `tid`, woken in pool `p`'s backlog, claims the place granted to
    /// it: None if it has none; else a connection to take, or None inside to
    /// connect anew in its place. (A place it does not need goes to the next
    /// waiter, whose wake goes to `woken`.)
    pub fn claim(
        &mut self,
        p: Handle,
        tid: Tid,
        r: &mut Reactor,
        woken: &mut Vec<(Token, Reason)>,
    ) -> Option<Option<(Conn, u32)>> {
        let pool = self.pools.get_mut(p)?;
        let i = pool.queue.iter().position(|w| w.tid == tid && w.grant.is_some())?;
        match pool.queue.remove(i)?.grant? {
            Grant::Conn(conn, reused, _) => Some(Some((conn, reused))),
            Grant::Place => {
                // An idle connection meanwhile is taken rather than made anew:
                // its place serves, and the one granted is free again.
                let conn = self.take_idle(p, r);
                if conn.is_some() {
                    self.ended(p, r, woken);
                }
                Some(conn)
            }
        }
    }

    /// Takes thread `tid` out of pool `p`'s backlog, its connect given up
    /// (killed, its socket closed, its timeout): its timer cancelled, its
    /// count gone, a place granted to it handed on (a woken waiter's wake
    /// goes to `woken`). False if it was not there.
    pub fn unqueue(&mut self, p: Handle, tid: Tid, r: &mut Reactor, woken: &mut Vec<(Token, Reason)>) -> bool {
        let Some(pool) = self.pools.get_mut(p) else { return false };
        let Some(i) = pool.queue.iter().position(|w| w.tid == tid) else { return false };
        let w = pool.queue.remove(i).expect("found");
        if let Some(t) = w.timer {
            r.cancel(t);
        }
        match w.grant {
            // The waiter's count and the connection's are one since the grant.
            Some(Grant::Conn(conn, reused, timeout)) => self.give(r, woken, p, conn, reused, timeout),
            Some(Grant::Place) => self.ended(p, r, woken),
            None => self.left(p),
        }
        true
    }

    /// Pool `p` loses one of its count: forgotten at none.
    fn left(&mut self, p: Handle) {
        let pool = self.pool(p);
        pool.count -= 1;
        if pool.count == 0 {
            // Idle connections or waiters would name a pool that is gone.
            assert!(pool.idle.is_empty() && pool.queue.is_empty(), "a pool forgotten in use");
            let pool = self.pools.remove(p).expect("a live pool");
            self.by_key.remove(&pool.key);
        }
    }

    /// A place of pool `p` ended: the first waiter without a place may connect anew.
    fn ended(&mut self, p: Handle, r: &mut Reactor, woken: &mut Vec<(Token, Reason)>) {
        self.left(p);
        let Some(pool) = self.pools.get_mut(p) else { return };
        if pool.used() < pool.size {
            grant(pool, Grant::Place, r, woken);
        }
    }

    /// A counted connection of pool `p` to reuse: to the first waiter
    /// without a place, else idle in the pool, watched until `timeout` ms.
    fn give(
        &mut self,
        r: &mut Reactor,
        woken: &mut Vec<(Token, Reason)>,
        p: Handle,
        conn: Conn,
        reused: u32,
        timeout: Option<u64>,
    ) {
        let pool = self.pool(p);
        if pool.queue.iter().any(|w| w.grant.is_none()) {
            grant(pool, Grant::Conn(conn, reused, timeout), r, woken);
            // The waiter's count goes: the connection's is its place.
            return self.left(p);
        }
        if pool.idle.len() >= pool.size {
            // Full: the least recently used goes, and its count with it.
            let old = pool.idle.pop_back().expect("a full pool");
            pool.count -= 1;
            self.idle.remove(old).expect("an idle connection").conn.close(r);
        }
        let src = conn.src();
        let deadline = timeout.map(|ms| r.now().saturating_add(ms));
        let i = self.idle.insert(Idle { pool: p, conn, reused, deadline });
        self.pool(p).idle.push_front(i);
        r.wait(src, Side::Reader, Dir::Read, Token::Idle(i), timeout);
    }

    /// `setkeepalive`: puts `conn` into pool `key` (made with `size` if it
    /// does not exist), for a waiting connect to take or idle until `timeout`
    /// ms (None: for ever). `pool`: the pool its connection counted in, if
    /// any. A woken connect's wake goes to `woken`.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &mut self,
        r: &mut Reactor,
        woken: &mut Vec<(Token, Reason)>,
        key: &[u8],
        pool: Option<Handle>,
        size: usize,
        conn: Conn,
        reused: u32,
        timeout: Option<u64>,
    ) {
        let p = pool.filter(|&p| self.pools.contains(p)).unwrap_or_else(|| self.get_or_create(key, size, None));
        if pool != Some(p) {
            self.pool(p).count += 1;
        }
        self.give(r, woken, p, conn, reused, timeout);
    }

    /// A wake of the pools' (`Token::Idle` or `Token::Pool`); a thread of a
    /// backlog granted a place is woken through `woken`.
    pub fn on_wake(&mut self, r: &mut Reactor, tok: Token, why: Reason, woken: &mut Vec<(Token, Reason)>) {
        match tok {
            Token::Pool(p) if self.pools.contains(p) => self.ended(p, r, woken),
            Token::Idle(i) => {
                let Some(idle) = self.idle.get(i) else { return };
                let src = idle.conn.src();
                if why == Reason::Ready && !r.hung_up(src, Dir::Read) {
                    if let Err(e) = sys::peek(src.fd) {
                        if e.kind() == std::io::ErrorKind::WouldBlock {
                            // A stale edge: watch on, until the same deadline.
                            r.set_ready(src, Dir::Read, false);
                            let left = idle.deadline.map(|d| d.saturating_sub(r.now()));
                            r.wait(src, Side::Reader, Dir::Read, tok, left);
                            return;
                        }
                    }
                }
                let idle = self.idle.remove(i).expect("checked");
                self.pool(idle.pool).idle.retain(|&x| x != i);
                idle.conn.close(r);
                self.ended(idle.pool, r, woken)
            }
            _ => {}
        }
    }

    /// Closes every idle connection, and those granted (the loop is ending),
    /// and forgets the pools.
    pub fn close_all(&mut self, r: &mut Reactor) {
        for idle in self.idle.drain() {
            idle.conn.close(r);
        }
        for pool in self.pools.iter_mut().map(|(_, pool)| pool) {
            for w in pool.queue.drain(..) {
                if let Some(Grant::Conn(conn, ..)) = w.grant {
                    conn.close(r);
                }
            }
        }
        // Drained, not replaced: the slabs keep their generations, so no
        // handle of this loop finds a pool of the next.
        self.pools.drain();
        self.by_key.clear();
    }
}

/// Grants `place` to the first waiter of `pool` without one: its timer
/// cancelled, its thread woken.
fn grant(pool: &mut Pool, place: Grant, r: &mut Reactor, woken: &mut Vec<(Token, Reason)>) {
    let Some(w) = pool.queue.iter_mut().find(|w| w.grant.is_none()) else { return };
    w.grant = Some(place);
    if let Some(t) = w.timer.take() {
        r.cancel(t);
    }
    woken.push((Token::Thread(w.tid), Reason::Ready));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_conn;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn t(n: u32) -> Tid {
        Tid::test(n)
    }

    fn count(pools: &Pools, p: Handle) -> usize {
        pools.pools.get(p).expect("a live pool").count
    }

    /// Polls until something wakes, and hands each wake to the pools: why
    /// each woke, and the threads they wake.
    fn turn(r: &mut Reactor, pools: &mut Pools) -> (Vec<Reason>, Vec<(Token, Reason)>) {
        let mut woken = Vec::new();
        while woken.is_empty() {
            r.poll(Some(5000), &mut woken).unwrap();
        }
        let mut threads = Vec::new();
        for &(tok, why) in &woken {
            pools.on_wake(r, tok, why, &mut threads);
        }
        (woken.into_iter().map(|(_, why)| why).collect(), threads)
    }

    /// Whether the peer of a connection the pool closed sees its end (a
    /// reset, where the pool closed with the peer's bytes unread).
    fn closed(peer: &mut UnixStream) -> bool {
        peer.set_nonblocking(true).unwrap();
        match peer.read(&mut [0; 1]) {
            Ok(n) => n == 0,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }

    #[test]
    fn most_recent_first_least_recent_evicted() {
        let mut r = Reactor::new().unwrap();
        let mut pools = Pools::default();
        let (mut peers, mut fds, mut woken) = (Vec::new(), Vec::new(), Vec::new());
        for reused in 0..3 {
            let (conn, peer) = test_conn(&mut r);
            fds.push(conn.src().fd);
            peers.push(peer);
            // The first put makes the pool, with 2 places; none counted before.
            pools.put(&mut r, &mut woken, b"k", None, 2, conn, reused, None);
        }
        assert!(woken.is_empty());
        let p = pools.find(b"k").expect("made by the first put");
        assert_eq!(count(&pools, p), 2, "the evicted one no longer counts");
        assert!(closed(&mut peers[0]), "the least recently used was closed");
        let (a, ra) = pools.take(p, &mut r).unwrap();
        let (b, rb) = pools.take(p, &mut r).unwrap();
        assert_eq!((a.src().fd, ra, b.src().fd, rb), (fds[2], 2, fds[1], 1));
        assert!(pools.take(p, &mut r).is_none());
        assert_eq!(r.pending(), 0, "idle watches are not pending waits");
        a.close(&mut r);
        b.close(&mut r);
    }

    #[test]
    fn the_backlog_queues_and_grants_places() {
        let mut r = Reactor::new().unwrap();
        let mut pools = Pools::default();
        let mut woken = Vec::new();
        let p = pools.get_or_create(b"q", 1, Some(1));
        assert_eq!(pools.join(p), Join::Go);
        assert_eq!(pools.join(p), Join::Wait);
        pools.queue(p, t(7));
        assert_eq!(pools.join(p), Join::Refused, "the backlog holds one");
        assert_eq!(pools.join(p), Join::Refused);
        assert!(pools.claim(p, t(7), &mut r, &mut woken).is_none(), "nothing granted yet");
        // The live connection comes back: the waiting connect is granted it.
        let (conn, _peer) = test_conn(&mut r);
        pools.put(&mut r, &mut woken, b"q", Some(p), 1, conn, 0, None);
        assert_eq!(woken, [(Token::Thread(t(7)), Reason::Ready)]);
        assert!(pools.take(p, &mut r).is_none(), "a new connect does not jump the queue");
        let (conn, _) = pools.claim(p, t(7), &mut r, &mut woken).unwrap().expect("the idle connection");
        assert_eq!(count(&pools, p), 1);
        // A second waiter times out; a third gets the place a close frees.
        woken.clear();
        assert_eq!(pools.join(p), Join::Wait);
        pools.queue(p, t(8));
        assert!(pools.unqueue(p, t(8), &mut r, &mut woken));
        assert!(!pools.unqueue(p, t(8), &mut r, &mut woken), "taken out once");
        assert_eq!(pools.join(p), Join::Wait);
        pools.queue(p, t(9));
        conn.close(&mut r);
        pools.on_wake(&mut r, Token::Pool(p), Reason::Closed, &mut woken);
        assert_eq!(woken, [(Token::Thread(t(9)), Reason::Ready)]);
        assert_eq!(count(&pools, p), 1, "the granted connect's place");
        assert!(matches!(pools.claim(p, t(9), &mut r, &mut woken), Some(None)), "a place to connect anew in");
        // Its connection ends too: the pool is forgotten.
        pools.on_wake(&mut r, Token::Pool(p), Reason::Closed, &mut woken);
        assert_eq!(pools.find(b"q"), None);
        let q = pools.get_or_create(b"q", 3, None);
        assert_eq!(q.slot(), p.slot(), "the slot is reused");
        pools.on_wake(&mut r, Token::Pool(p), Reason::Closed, &mut woken);
        assert_eq!(pools.join(q), Join::Go, "a stale pool handle touched nothing");
        assert_eq!(count(&pools, q), 1);
    }

    /// A waiter granted a place that leaves the queue without claiming it
    /// (killed, its socket closed, its timeout in the same turn) hands the
    /// place on: to the next waiter, or back to the pool.
    #[test]
    fn a_granted_place_given_up_goes_to_the_next_waiter() {
        let mut r = Reactor::new().unwrap();
        let mut pools = Pools::default();
        let mut woken = Vec::new();
        let p = pools.get_or_create(b"g", 1, Some(5));
        assert_eq!(pools.join(p), Join::Go);
        for n in 1..=3 {
            assert_eq!(pools.join(p), Join::Wait);
            pools.queue(p, t(n));
            let timer = r.sleep(Token::Thread(t(n)), 60_000);
            pools.set_timer(p, t(n), timer);
        }
        assert_eq!(r.pending(), 3);
        pools.on_wake(&mut r, Token::Pool(p), Reason::Closed, &mut woken);
        assert_eq!(woken, [(Token::Thread(t(1)), Reason::Ready)]);
        assert_eq!(r.pending(), 2, "the granted waiter's timer is cancelled");
        // It gives its place up: the next waiter is granted it.
        woken.clear();
        assert!(pools.unqueue(p, t(1), &mut r, &mut woken));
        assert_eq!(woken, [(Token::Thread(t(2)), Reason::Ready)]);
        assert_eq!((count(&pools, p), r.pending()), (2, 1));
        // A waiter not granted one leaves with its count only.
        woken.clear();
        assert!(pools.unqueue(p, t(3), &mut r, &mut woken));
        assert!(woken.is_empty());
        assert_eq!((count(&pools, p), r.pending()), (1, 0));
        assert!(pools.unqueue(p, t(2), &mut r, &mut woken));
        assert_eq!(pools.find(b"g"), None, "no place is held by anyone");
    }

    #[test]
    fn an_idle_connection_closes_on_data_close_or_timeout() {
        let mut r = Reactor::new().unwrap();
        let mut pools = Pools::default();
        let mut woken = Vec::new();
        let (conn, mut data) = test_conn(&mut r);
        pools.put(&mut r, &mut woken, b"w", None, 5, conn, 0, None);
        let (conn, hangup) = test_conn(&mut r);
        pools.put(&mut r, &mut woken, b"w", None, 5, conn, 0, None);
        let (conn, mut slow) = test_conn(&mut r);
        pools.put(&mut r, &mut woken, b"w", None, 5, conn, 0, Some(30));
        let p = pools.find(b"w").unwrap();
        assert_eq!(count(&pools, p), 3);
        data.write_all(b"+OK\r\n").unwrap();
        drop(hangup);
        let mut reasons = Vec::new();
        while pools.find(b"w").is_some_and(|p| count(&pools, p) > 0) {
            let (why, threads) = turn(&mut r, &mut pools);
            assert!(threads.is_empty());
            reasons.extend(why);
        }
        reasons.sort_by_key(|w| *w as u8);
        assert_eq!(reasons, [Reason::Ready, Reason::Ready, Reason::Timeout]);
        assert!(closed(&mut data) && closed(&mut slow));
        assert_eq!(pools.find(b"w"), None, "forgotten once empty");
    }

    #[test]
    fn a_stale_edge_keeps_watching() {
        let mut r = Reactor::new().unwrap();
        let mut pools = Pools::default();
        let (conn, mut peer) = test_conn(&mut r);
        let src = conn.src();
        pools.put(&mut r, &mut Vec::new(), b"s", None, 5, conn, 0, None);
        let p = pools.find(b"s").unwrap();
        // An edge whose data is gone by the time the pool looks (its wait
        // ended as the reactor ends it).
        let i = pools.pools.get(p).unwrap().idle[0];
        r.unwait(src, Side::Reader);
        pools.on_wake(&mut r, Token::Idle(i), Reason::Ready, &mut Vec::new());
        assert_eq!(r.waiter(src, Side::Reader), Some(Token::Idle(i)), "watched again");
        assert_eq!(count(&pools, p), 1);
        peer.write_all(b"x").unwrap();
        turn(&mut r, &mut pools);
        assert_eq!(pools.find(b"s"), None);
    }
}
