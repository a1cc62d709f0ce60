//! What a light thread waits for, set by the Rust function that answered the
//! wait marker and taken by the scheduler when the thread's yield reaches it
//! (registering only then means a yield Lua refuses, as PUC 5.1's inside
//! pcall, leaves nothing registered). A socket operation travels with its
//! wait, so the scheduler can finish it for the woken thread.

use coevent_engine::buf::Pattern;
use coevent_engine::reactor::{Dir, Handle, Side, Src, Tid};
use coevent_engine::sockets::Id;
use coevent_engine::until::Key;

/// A socket operation to finish when the wait ends.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Receive(Id, Pattern),
    /// A `receiveuntil` iterator's call, with its matcher.
    Until(Id, Key),
    /// `receiveany(max)`.
    Any(Id, usize),
    Flush(Id),
    /// To this port, once the name resolves or the fd is writable.
    Connect(Id, u16),
    /// `sslhandshake`; whether it keeps the session for Lua.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Handshake(Id, bool),
    /// A listener's next connection.
    Accept(Id),
    /// A datagram socket's.
    Udp(Id, Udp),
}

/// What a datagram socket waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Udp {
    /// `setpeername`, for its name's addresses.
    Peer,
    /// `receive(size)`.
    Receive(usize),
    Send,
}

/// What the wait is on.
#[derive(Clone, Copy, Debug, Default)]
pub enum On {
    #[default]
    Swop,
    /// A side of a socket, until its fd is ready in `Dir` or the timeout (ms) passes.
    Io(Src, Side, Dir, Option<u64>),
    Sleep(u64),
    /// Another thread's end.
    Join(Tid),
    /// A resolver query.
    Resolve(u32),
    /// A place in keepalive pool `pool`'s backlog, for at most the timeout (ms).
    Pool(Handle, Option<u64>),
    /// Its turn in a queue the engine keeps (a listener's acceptors), which
    /// wakes it; for at most the timeout (ms).
    Turn(Option<u64>),
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Pending {
    pub on: On,
    pub op: Option<Op>,
}
