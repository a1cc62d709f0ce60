//! Keepalive pools, OpenResty's: idle connections by pool name, most recent
//! taken first, the least recent closed when a pool is full. An idle
//! connection stays registered with epoll and is watched without a thread
//! (`Token::Idle`): the peer's data, its close or the idle timeout closes it.
//!
//! A pool counts its connections, live and idle, and the connects waiting in
//! its backlog; with a backlog set, at most `size` may live, and connects
//! beyond wait in a queue (up to `backlog` of them) for one to end. A pool
//! whose count falls to 0 is forgotten, its size with it, as OpenResty's.

use std::collections::{HashMap, VecDeque};

use crate::reactor::{Dir, Reactor, Reason, Side, Token};
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
    /// Idle connections (indices into `Pools::idle`), the most recent first.
    idle: VecDeque<u32>,
    /// Connects waiting for a place: their threads and timeout timers.
    queue: VecDeque<(u32, Option<TimerId>)>,
}

#[derive(Debug)]
struct Idle {
    pool: u32,
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
    pools: Vec<Option<Pool>>,
    free: Vec<u32>,
    by_key: HashMap<Box<[u8]>, u32>,
    idle: Vec<Option<Idle>>,
    idle_free: Vec<u32>,
}

impl Pools {
    pub fn find(&self, key: &[u8]) -> Option<u32> {
        self.by_key.get(key).copied()
    }

    /// The pool named `key`, made with `size` and `backlog` if it does not exist.
    pub fn get_or_create(&mut self, key: &[u8], size: usize, backlog: Option<usize>) -> u32 {
        if let Some(p) = self.find(key) {
            return p;
        }
        let pool = Pool { key: key.into(), size, backlog, count: 0, idle: VecDeque::new(), queue: VecDeque::new() };
        let p = fill(&mut self.pools, &mut self.free, pool);
        self.by_key.insert(key.into(), p);
        p
    }

    fn pool(&mut self, p: u32) -> &mut Pool {
        self.pools[p as usize].as_mut().expect("a live pool")
    }

    /// The most recent idle connection of pool `p`, and how many times it
    /// was reused before, no longer watched.
    pub fn take(&mut self, p: u32, r: &mut Reactor) -> Option<(Conn, u32)> {
        let i = self.pool(p).idle.pop_front()?;
        let idle = self.idle[i as usize].take().expect("an idle connection");
        self.idle_free.push(i);
        r.unwait(idle.conn.src(), Side::Reader);
        Some((idle.conn, idle.reused))
    }

    /// Counts a connect to pool `p` that found no idle connection.
    pub fn join(&mut self, p: u32) -> Join {
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

    /// Files thread `tok` in pool `p`'s backlog (after `join` said `Wait`).
    pub fn queue(&mut self, p: u32, tok: u32) {
        self.pool(p).queue.push_back((tok, None));
    }

    /// Notes the timer of `tok`'s wait in the backlog.
    pub fn set_timer(&mut self, p: u32, tok: u32, timer: TimerId) {
        if let Some(w) = self.pool(p).queue.iter_mut().find(|w| w.0 == tok) {
            w.1 = Some(timer);
        }
    }

    /// Takes thread `tok` out of pool `p`'s backlog (its connect ended
    /// there): its timer if it was there, for the caller to cancel unless
    /// it fired.
    pub fn unqueue(&mut self, p: u32, tok: u32) -> Option<Option<TimerId>> {
        let pool = self.pool(p);
        let i = pool.queue.iter().position(|w| w.0 == tok)?;
        let (_, timer) = pool.queue.remove(i).expect("found");
        self.left(p);
        Some(timer)
    }

    /// Pool `p` loses one of its count: forgotten at none. (A connect out of
    /// the backlog that took an idle connection: it counted twice.)
    pub fn left(&mut self, p: u32) {
        let pool = self.pool(p);
        pool.count -= 1;
        if pool.count == 0 {
            debug_assert!(pool.idle.is_empty() && pool.queue.is_empty());
            let pool = self.pools[p as usize].take().expect("a live pool");
            self.by_key.remove(&pool.key);
            self.free.push(p);
        }
    }

    /// A connection of pool `p` ended: its place goes to the first connect
    /// in the backlog, whose thread is returned to wake (its timer cancelled).
    fn ended(&mut self, p: u32, r: &mut Reactor) -> Option<u32> {
        self.left(p);
        let (tok, timer) = self.pools[p as usize].as_mut()?.queue.pop_front()?;
        if let Some(t) = timer {
            r.cancel(t);
        }
        Some(tok)
    }

    /// `setkeepalive`: puts `conn` into pool `key` (made with `size` if it
    /// does not exist), watched until `timeout` ms (None: for ever). `pool`:
    /// the pool its connection counted in, if any. Returns a thread of the
    /// backlog to wake, given the connection or the place.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &mut self,
        r: &mut Reactor,
        key: &[u8],
        pool: Option<u32>,
        size: usize,
        conn: Conn,
        reused: u32,
        timeout: Option<u64>,
    ) -> Option<u32> {
        let p = pool.unwrap_or_else(|| self.get_or_create(key, size, None));
        if self.pool(p).idle.len() >= self.pool(p).size {
            // Full: the least recently used goes, and its count with it.
            let old = self.pool(p).idle.pop_back().expect("a full pool");
            let idle = self.idle[old as usize].take().expect("an idle connection");
            self.idle_free.push(old);
            idle.conn.close(r);
            self.pool(p).count -= 1;
        }
        if pool.is_none() {
            self.pool(p).count += 1;
        }
        let src = conn.src();
        let deadline = timeout.map(|ms| r.now().saturating_add(ms));
        let entry = Idle { pool: p, conn, reused, deadline };
        let i = fill(&mut self.idle, &mut self.idle_free, entry);
        self.pool(p).idle.push_front(i);
        r.wait(src, Side::Reader, Dir::Read, Token::Idle(i), timeout);
        // A connect waiting for a place takes this connection.
        let (tok, timer) = self.pool(p).queue.pop_front()?;
        if let Some(t) = timer {
            r.cancel(t);
        }
        Some(tok)
    }

    /// A wake of the pools' (`Token::Idle` or `Token::Pool`); returns a thread
    /// of a backlog to wake.
    pub fn on_wake(&mut self, r: &mut Reactor, tok: Token, why: Reason) -> Option<u32> {
        match tok {
            Token::Pool(p) => self.ended(p, r),
            Token::Idle(i) => {
                let idle = self.idle[i as usize].as_ref()?;
                let src = idle.conn.src();
                if why == Reason::Ready && !r.hung_up(src, Dir::Read) {
                    if let Err(e) = sys::peek(src.fd) {
                        if e.kind() == std::io::ErrorKind::WouldBlock {
                            // A stale edge: watch on, until the same deadline.
                            r.set_ready(src, Dir::Read, false);
                            let left = idle.deadline.map(|d| d.saturating_sub(r.now()));
                            r.wait(src, Side::Reader, Dir::Read, tok, left);
                            return None;
                        }
                    }
                }
                let idle = self.idle[i as usize].take().expect("checked");
                self.idle_free.push(i);
                self.pool(idle.pool).idle.retain(|&x| x != i);
                idle.conn.close(r);
                self.ended(idle.pool, r)
            }
            Token::Thread(_) | Token::Query(_) => None,
        }
    }

    /// Closes every idle connection (the loop is ending) and forgets the pools.
    pub fn close_all(&mut self, r: &mut Reactor) {
        for idle in self.idle.drain(..).flatten() {
            idle.conn.close(r);
        }
        *self = Pools::default();
    }
}

/// Puts `x` into a free slot of `v` (listed in `free`) or a new one; its index.
fn fill<T>(v: &mut Vec<Option<T>>, free: &mut Vec<u32>, x: T) -> u32 {
    match free.pop() {
        Some(i) => {
            v[i as usize] = Some(x);
            i
        }
        None => {
            v.push(Some(x));
            (v.len() - 1) as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::test_conn;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    /// Polls until something wakes, and hands each wake to the pools.
    fn turn(r: &mut Reactor, pools: &mut Pools) -> (Vec<(Token, Reason)>, Vec<u32>) {
        let mut woken = Vec::new();
        while woken.is_empty() {
            r.poll(Some(5000), &mut woken).unwrap();
        }
        let threads = woken.iter().filter_map(|&(t, why)| pools.on_wake(r, t, why)).collect();
        (woken, threads)
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
        let (mut peers, mut fds) = (Vec::new(), Vec::new());
        for reused in 0..3 {
            let (conn, peer) = test_conn(&mut r);
            fds.push(conn.src().fd);
            peers.push(peer);
            // The first put makes the pool, with 2 places; none counted before.
            assert_eq!(pools.put(&mut r, b"k", None, 2, conn, reused, None), None);
        }
        let p = pools.find(b"k").expect("made by the first put");
        assert_eq!(pools.pool(p).count, 2, "the evicted one no longer counts");
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
    fn the_backlog_queues_and_hands_places_on() {
        let mut r = Reactor::new().unwrap();
        let mut pools = Pools::default();
        let p = pools.get_or_create(b"q", 1, Some(1));
        assert_eq!(pools.join(p), Join::Go);
        assert_eq!(pools.join(p), Join::Wait);
        pools.queue(p, 7);
        assert_eq!(pools.join(p), Join::Refused, "the backlog holds one");
        assert_eq!(pools.join(p), Join::Refused);
        // The live connection comes back: the waiting connect is woken to take it.
        let (conn, _peer) = test_conn(&mut r);
        assert_eq!(pools.put(&mut r, b"q", Some(p), 1, conn, 0, None), Some(7));
        let (conn, _) = pools.take(p, &mut r).unwrap();
        pools.left(p);
        assert_eq!(pools.pool(p).count, 1);
        // A second waiter times out; a third gets the place a close frees.
        assert_eq!(pools.join(p), Join::Wait);
        pools.queue(p, 8);
        assert_eq!(pools.unqueue(p, 8), Some(None));
        assert_eq!(pools.unqueue(p, 8), None, "taken out once");
        assert_eq!(pools.join(p), Join::Wait);
        pools.queue(p, 9);
        conn.close(&mut r);
        assert_eq!(pools.on_wake(&mut r, Token::Pool(p), Reason::Closed), Some(9));
        assert_eq!(pools.pool(p).count, 1, "the woken connect's place");
        // Its connection ends too: the pool is forgotten.
        assert_eq!(pools.on_wake(&mut r, Token::Pool(p), Reason::Closed), None);
        assert_eq!(pools.find(b"q"), None);
        assert_eq!(pools.get_or_create(b"q", 3, None), p, "the slot is reused");
    }

    #[test]
    fn an_idle_connection_closes_on_data_close_or_timeout() {
        let mut r = Reactor::new().unwrap();
        let mut pools = Pools::default();
        let (conn, mut data) = test_conn(&mut r);
        pools.put(&mut r, b"w", None, 5, conn, 0, None);
        let (conn, hangup) = test_conn(&mut r);
        pools.put(&mut r, b"w", None, 5, conn, 0, None);
        let (conn, mut slow) = test_conn(&mut r);
        pools.put(&mut r, b"w", None, 5, conn, 0, Some(30));
        let p = pools.find(b"w").unwrap();
        assert_eq!(pools.pool(p).count, 3);
        data.write_all(b"+OK\r\n").unwrap();
        drop(hangup);
        let mut reasons = Vec::new();
        while pools.find(b"w").is_some_and(|p| pools.pool(p).count > 0) {
            let (woken, threads) = turn(&mut r, &mut pools);
            assert!(threads.is_empty());
            reasons.extend(woken.into_iter().map(|(_, why)| why));
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
        pools.put(&mut r, b"s", None, 5, conn, 0, None);
        let p = pools.find(b"s").unwrap();
        // An edge whose data is gone by the time the pool looks (its wait
        // ended as the reactor ends it).
        let i = pools.pool(p).idle[0];
        r.unwait(src, Side::Reader);
        assert_eq!(pools.on_wake(&mut r, Token::Idle(i), Reason::Ready), None);
        assert_eq!(r.waiter(src, Side::Reader), Some(Token::Idle(i)), "watched again");
        assert_eq!(pools.pool(p).count, 1);
        peer.write_all(b"x").unwrap();
        turn(&mut r, &mut pools);
        assert_eq!(pools.find(b"s"), None);
    }
}
