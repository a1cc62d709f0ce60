//! coevent's engine, below the Lua boundary: raw syscalls, the epoll reactor,
//! the timer wheel, receive buffering, addresses and name resolution. Nothing
//! here knows Lua.
//!
//! Modules import one way, each only from the rows below it
//! (`make check` runs tools/import-cycles.py, which fails on a circle):
//!
//! ```text
//! sockets                      the sockets of a Lua state: one close path
//! stream_tls                   a stream's sslhandshake (joins stream and tls)
//! listener  pool  dgram        accept (hands out Streams); keepalive pools of Conns; datagrams
//! stream                       the connected stream's state machine; Conn
//! transport                    a stream's bytes: a plain fd or a tls::Tls
//! tls                          TLS sessions over libssl
//! step  local                  what an operation is lent and answers; bind's local side
//! resolver                     names on the reactor: hosts file, then DNS
//! sysnames                     resolv.conf and the hosts file
//! dns  addr                    the DNS codec; connect's host argument
//! reactor                      epoll, registered fds, their waits and timers
//! wheel  slab                  the timer wheel; generational slots
//! buf  until  shdict           receive buffer and patterns; receiveuntil; ngx.shared's store
//! sys                          raw syscalls: the only unsafe code
//! ```
//! Test-only: `testing` (shared fixtures), `rng`.

#![deny(unsafe_code)]

pub mod addr;
pub mod buf;
pub mod dgram;
pub mod dns;
pub mod listener;
pub mod local;
pub mod pool;
pub mod reactor;
pub mod resolver;
#[cfg(test)]
mod rng;
pub mod shdict;
pub mod slab;
pub mod sockets;
pub mod step;
pub mod stream;
#[cfg(feature = "tls")]
mod stream_tls;
#[allow(unsafe_code)]
pub mod sys;
pub mod sysnames;
#[cfg(test)]
mod testing;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;
pub mod until;
pub mod wheel;
