//! coevent's engine, below the Lua boundary: raw syscalls, the epoll reactor,
//! the timer wheel, receive buffering, addresses and name resolution. Nothing
//! here knows Lua.

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
pub mod step;
pub mod stream;
#[cfg(feature = "tls")]
mod stream_tls;
#[allow(unsafe_code)]
pub mod sys;
pub mod sysnames;
pub mod table;
#[cfg(test)]
mod testing;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;
pub mod until;
pub mod wheel;
