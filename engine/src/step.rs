//! What every operation of the engine's objects is lent (`Cx`) and what it
//! answers (`Step`, with an `Error` on failure); `Io`, what one read or write
//! of a transport came to. Below the objects (stream, listener, dgram, tls),
//! which all speak it.

use std::borrow::Cow;
use std::io;

use crate::reactor::{Dir, Reactor, Reason, Side, Token};
use crate::sys;

/// What an operation came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<T, E = Error> {
    Done(T),
    /// Park as `side` until the fd is ready in `dir`, then try again.
    Wait(Side, Dir),
    Fail(E),
}

#[derive(Debug)]
pub enum Error {
    Closed,
    Timeout,
    TooLarge,
    LineTooLong,
    BusyReading,
    BusyWriting,
    BusyConnecting,
    /// `setkeepalive` with bytes received and not read.
    UnreadData,
    /// `setkeepalive` when the peer has sent more or closed.
    Dubious,
    /// A name that did not resolve, with the resolver's word for why.
    Resolve(&'static str),
    /// A failed TLS handshake or verification, in OpenResty's words.
    Tls(String),
    Os(io::Error),
}

impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.message() == other.message()
    }
}

impl Eq for Error {}

impl Error {
    /// The error as Lua sees it (OpenResty's words where it has them).
    pub fn message(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Error::Closed => "closed",
            Error::Timeout => "timeout",
            Error::TooLarge => "too large",
            Error::LineTooLong => "line too long",
            Error::BusyReading => "socket busy reading",
            Error::BusyWriting => "socket busy writing",
            Error::BusyConnecting => "socket busy connecting",
            Error::UnreadData => "unread data in buffer",
            Error::Dubious => "connection in dubious state",
            Error::Resolve(e) => e,
            Error::Tls(e) => return Cow::Owned(e.clone()),
            Error::Os(e) => return Cow::Owned(sys::error_string(e)),
        })
    }
}

/// What the engine lends an operation.
pub struct Cx<'a> {
    pub r: &'a mut Reactor,
    /// A receive buffer's storage, lent to the next socket that reads into an
    /// empty buffer (see `RecvBuf::release`), so idle sockets hold none.
    pub spare: &'a mut Vec<u8>,
    /// Waits a close ended, with why.
    pub woken: &'a mut Vec<(Token, Reason)>,
}

/// One transport read or write: bytes moved, or the readiness to wait for.
pub(crate) enum Io {
    Moved(usize),
    Wait(Dir),
    Eof,
    Err(io::Error),
}
