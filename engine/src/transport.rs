//! How a stream's bytes reach the peer: a plain fd, or a TLS session
//! (`tls`), which may need the other direction's readiness than its caller's
//! (the `Io::Wait` names the direction).

use std::io::ErrorKind::WouldBlock;

use crate::reactor::{Dir, Reactor, Src};
use crate::step::Io;
use crate::sys;

/// How bytes reach the peer.
#[derive(Debug)]
pub enum Transport {
    Plain(Src),
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::Tls>),
}

impl Transport {
    pub(crate) fn src(&self) -> Src {
        match self {
            Transport::Plain(src) => *src,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.src(),
        }
    }

    /// Whether bytes the peer sent are held above the fd (TLS records).
    pub(crate) fn holds_data(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.pending() > 0,
        }
    }

    /// Appends at most `room` bytes to `v`. (Inlined into the receives: the
    /// plain round trip is the hot path; bench/callgrind.sh counts its
    /// instructions.)
    #[inline(always)]
    pub(crate) fn recv(&mut self, r: &mut Reactor, v: &mut Vec<u8>, room: usize) -> Io {
        let src = match self {
            Transport::Plain(src) => *src,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => return t.recv(r, v, room),
        };
        if !r.is_ready(src, Dir::Read) {
            return Io::Wait(Dir::Read);
        }
        match sys::recv(src.fd, v, room) {
            Ok(0) => Io::Eof,
            Ok(n) => {
                // A short read drained the socket: the next read waits for an edge.
                if n < room {
                    r.set_ready(src, Dir::Read, false);
                }
                Io::Moved(n)
            }
            Err(e) if e.kind() == WouldBlock => {
                r.set_ready(src, Dir::Read, false);
                Io::Wait(Dir::Read)
            }
            Err(e) => Io::Err(e),
        }
    }

    #[inline(always)]
    pub(crate) fn send(&mut self, r: &mut Reactor, b: &[u8]) -> Io {
        let src = match self {
            Transport::Plain(src) => *src,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => return t.send(r, b),
        };
        if !r.is_ready(src, Dir::Write) {
            return Io::Wait(Dir::Write);
        }
        match sys::send(src.fd, b) {
            Ok(n) => {
                if n < b.len() {
                    r.set_ready(src, Dir::Write, false);
                }
                Io::Moved(n)
            }
            Err(e) if e.kind() == WouldBlock => {
                r.set_ready(src, Dir::Write, false);
                Io::Wait(Dir::Write)
            }
            Err(e) => Io::Err(e),
        }
    }
}
