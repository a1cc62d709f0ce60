//! The sockets of one Lua state: a generational slab, each socket a `Kind`
//! (a stream, a listener or a datagram socket) with the settings
//! every kind shares, and the one close path, which wakes every waiter and
//! closes the fd.

use crate::buf::RecvBuf;
use crate::dgram::Dgram;
use crate::listener::Listener;
use crate::pool::Pools;
use crate::reactor::{Reason, Token};
use crate::resolver::Resolver;
use crate::step::Cx;
use crate::stream::{State, Stream};

/// A slot's index and generation, packed into an integer that LuaJIT's
/// numbers hold exactly: an id outlives its slot only in a resurrected object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Id(u64);

/// Generations wrap at this, keeping ids inside the 53 bits of a double.
const GENERATIONS: u16 = 1 << 14;

impl Id {
    fn new(index: u32, generation: u16) -> Id {
        Id(u64::from(generation) << 32 | u64::from(index))
    }

    fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    /// All the bits above the index, so that a number with bits set beyond
    /// a generation's matches no slot.
    fn generation(self) -> u64 {
        self.0 >> 32
    }

    pub fn number(self) -> i64 {
        self.0 as i64
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Id {
        Id(n as u64)
    }
}

/// The default timeout of connect, send and receive, in ms (OpenResty's).
pub const DEFAULT_TIMEOUT: u64 = 60_000;

/// Milliseconds each kind of operation may wait; None: for ever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Option<u64>,
    pub send: Option<u64>,
    pub read: Option<u64>,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        let t = Some(DEFAULT_TIMEOUT);
        Timeouts { connect: t, send: t, read: t }
    }
}

#[derive(Debug)]
pub enum Kind {
    Stream(Stream),
    Listener(Listener),
    Dgram(Dgram),
}

#[derive(Debug)]
pub struct Sock {
    pub kind: Kind,
    pub timeouts: Timeouts,
}

impl Sock {
    pub fn stream() -> Sock {
        Sock { kind: Kind::Stream(Stream::new()), timeouts: Timeouts::default() }
    }

    pub fn dgram() -> Sock {
        Sock { kind: Kind::Dgram(Dgram::new()), timeouts: Timeouts::default() }
    }

    /// The close path of every socket: ends every wait on it as closed (a
    /// connect waiting for the resolver or in a pool's backlog too) and
    /// closes its fd. Returns a waiting reader with what was buffered for it.
    pub fn close(&mut self, cx: &mut Cx, res: Option<&mut Resolver>, pools: &mut Pools) -> Option<(Token, RecvBuf)> {
        let s = match &mut self.kind {
            Kind::Stream(s) => s,
            Kind::Listener(l) => {
                l.close(cx);
                self.kind = Kind::Stream(Stream { state: State::Closed, ..Stream::default() });
                return None;
            }
            Kind::Dgram(d) => {
                if let Some((q, tok)) = d.resolving() {
                    if res.is_some_and(|res| res.remove_waiter(q, tok)) {
                        cx.woken.push((Token::Thread(tok), Reason::Closed));
                    }
                }
                d.close(cx);
                return None;
            }
        };
        let waiter = match s.state {
            State::Resolving { wait: Some((q, tok)), .. } => {
                res.is_some_and(|res| res.remove_waiter(q, tok)).then_some(tok)
            }
            State::Queued { pool, tok, .. } => pools.unqueue(pool, tok, cx.r, cx.woken).then_some(tok),
            _ => None,
        };
        if let Some(tok) = waiter {
            cx.woken.push((Token::Thread(tok), Reason::Closed));
        }
        s.close(cx)
    }
}

#[derive(Default)]
pub struct Table {
    slots: Vec<(u16, Option<Sock>)>,
    free: Vec<u32>,
}

impl Table {
    pub fn insert(&mut self, s: Sock) -> Id {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[i as usize];
        slot.1 = Some(s);
        Id::new(i, slot.0)
    }

    pub fn get(&mut self, id: Id) -> Option<&mut Sock> {
        match self.slots.get_mut(id.index()) {
            Some((g, Some(s))) if u64::from(*g) == id.generation() => Some(s),
            _ => None,
        }
    }

    /// Takes the socket out of the table (its object was collected); the
    /// caller closes it.
    pub fn remove(&mut self, id: Id) -> Option<Sock> {
        self.get(id)?;
        let slot = &mut self.slots[id.index()];
        slot.0 = (slot.0 + 1) % GENERATIONS;
        self.free.push(id.index() as u32);
        slot.1.take()
    }

    /// Closes every listener (the runner was asked to stop).
    pub fn close_listeners(&mut self, cx: &mut Cx, pools: &mut Pools) {
        for s in self.slots.iter_mut().filter_map(|(_, s)| s.as_mut()) {
            if matches!(s.kind, Kind::Listener(_)) {
                s.close(cx, None, pools);
            }
        }
    }

    /// Closes every socket (the loop is ending): no fd outlives its loop.
    pub fn close_all(&mut self, cx: &mut Cx, mut res: Option<&mut Resolver>, pools: &mut Pools) {
        for s in self.slots.iter_mut().filter_map(|(_, s)| s.as_mut()) {
            s.close(cx, res.as_deref_mut(), pools);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_outlives_its_socket_harmlessly() {
        let mut t = Table::default();
        let old = t.insert(Sock::stream());
        assert!(t.remove(old).is_some());
        assert!(t.remove(old).is_none(), "removed once");
        let new = t.insert(Sock::stream());
        assert_eq!(new.index(), old.index(), "the slot is reused");
        assert!(t.get(old).is_none(), "the old id finds nothing");
        assert!(t.get(new).is_some());
        assert!(t.get(Id::from(new.number() | 1 << 50)).is_none(), "bits past the generation's");
        // Generations wrap inside the 53 bits a LuaJIT number holds exactly.
        for _ in 0..=GENERATIONS {
            let id = t.insert(Sock::stream());
            assert!((0..1 << 53).contains(&id.number()));
            t.remove(id);
        }
    }
}
