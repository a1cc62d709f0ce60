//! A socket's local side before it connects or listens (`bind` and its
//! options): what a stream and a listener both start from.

use std::io;
use std::os::raw::c_int;

use crate::sys::{self, Addr, Fd, SockOpt};

/// A socket's local side before it connects or listens: the options `bind`
/// sets, and the fd it bound (with its address family).
#[derive(Debug, Default)]
pub struct Local {
    pub bound: Option<(Fd, c_int)>,
    /// SO_REUSEADDR, on unless turned off (as nginx and luasocket's `bind` have it).
    no_reuseaddr: bool,
    reuseport: bool,
}

impl Local {
    /// `setoption('reuseaddr' | 'reuseport', on)` before `bind`: kept for it,
    /// and set at once on a bound fd.
    pub fn set(&mut self, opt: SockOpt, on: bool) -> io::Result<()> {
        match opt {
            SockOpt::ReuseAddr => self.no_reuseaddr = !on,
            SockOpt::ReusePort => self.reuseport = on,
            _ => return Err(io::Error::from_raw_os_error(libc::ENOPROTOOPT)),
        }
        match self.bound {
            Some((fd, _)) => sys::set_option(fd, opt, on as c_int),
            None => Ok(()),
        }
    }

    /// Binds a new socket of `addr`'s family to it, or the bound one again
    /// (which the kernel refuses).
    pub fn bind(&mut self, addr: &Addr) -> io::Result<()> {
        if let Some((fd, _)) = self.bound {
            return sys::bind(fd, addr);
        }
        let fd = sys::stream_socket(addr)?;
        let ip = matches!(addr, Addr::Ip(_));
        let r = (|| {
            if ip && !self.no_reuseaddr {
                sys::set_option(fd, SockOpt::ReuseAddr, 1)?;
            }
            if self.reuseport {
                sys::set_option(fd, SockOpt::ReusePort, 1)?;
            }
            sys::bind(fd, addr)
        })();
        match r {
            Ok(()) => self.bound = Some((fd, addr.family())),
            Err(_) => sys::close(fd),
        }
        r
    }

    /// The bound fd for a connect to `addr`: None if nothing is bound, an
    /// error if `addr` is of another family than the bound address.
    pub fn take_for(&mut self, addr: &Addr) -> Option<io::Result<Fd>> {
        let (fd, family) = self.bound?;
        if family != addr.family() {
            return Some(Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT)));
        }
        self.bound = None;
        Some(Ok(fd))
    }

    pub fn close(&mut self) {
        if let Some((fd, _)) = self.bound.take() {
            sys::close(fd);
        }
    }
}
