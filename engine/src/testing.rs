//! Fixtures shared by several modules' unit tests (compiled for tests only).

use std::os::unix::net::UnixStream;

use crate::reactor::{Reactor, Reason, Token};
use crate::step::Cx;
use crate::stream::Conn;

/// What the engine lends an operation, owned by the test.
pub(crate) struct Env {
    pub r: Reactor,
    pub spare: Vec<u8>,
    pub woken: Vec<(Token, Reason)>,
}

impl Env {
    pub fn new() -> Env {
        Env { r: Reactor::new().unwrap(), spare: Vec::new(), woken: Vec::new() }
    }

    pub fn cx(&mut self) -> Cx<'_> {
        Cx { r: &mut self.r, spare: &mut self.spare, woken: &mut self.woken }
    }
}

/// A connection over a unix socket pair, and its peer.
pub(crate) fn test_conn(r: &mut Reactor) -> (Conn, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let src = r.add(std::os::fd::IntoRawFd::into_raw_fd(a)).unwrap();
    (Conn::plain(src), b)
}
