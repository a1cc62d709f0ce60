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
        let p = match self.free.pop() {
            Some(p) => {
                self.pools[p as usize] = Some(pool);
                p
            }
            None => {
                self.pools.push(Some(pool));
                (self.pools.len() - 1) as u32
            }
        };
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

    /// Pool `p` loses one of its count: forgotten at none.
    fn left(&mut self, p: u32) {
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
        let i = match self.idle_free.pop() {
            Some(i) => {
                self.idle[i as usize] = Some(entry);
                i
            }
            None => {
                self.idle.push(Some(entry));
                (self.idle.len() - 1) as u32
            }
        };
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
