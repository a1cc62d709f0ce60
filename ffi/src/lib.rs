//! coevent's engine, below the Lua boundary: raw syscalls, the epoll reactor,
//! the timer wheel, receive buffering and address parsing. Nothing here knows Lua.

pub mod addr;
pub mod buf;
pub mod dns;
pub mod reactor;
pub mod sys;
pub mod wheel;
