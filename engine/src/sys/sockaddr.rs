//! Socket addresses in both directions: `Addr` to the kernel's sockaddr
//! (connect, bind, sendto) and back (accept, getpeername, recvfrom).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::raw::c_int;

use static_assertions::{assert_eq_size, const_assert};

assert_eq_size!(libc::sockaddr_in, [u8; 16]);
assert_eq_size!(libc::sockaddr_in6, [u8; 28]);
assert_eq_size!(libc::sockaddr_un, [u8; 110]);
const_assert!(std::mem::size_of::<libc::sockaddr_storage>() >= 110);

/// An IP socket address or a unix socket path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Ip(SocketAddr),
    Unix(Vec<u8>),
}

/// Largest unix socket path (sun_path less its NUL).
pub const UNIX_PATH_MAX: usize = 107;

impl Addr {
    pub fn family(&self) -> c_int {
        match self {
            Addr::Ip(SocketAddr::V4(_)) => libc::AF_INET,
            Addr::Ip(SocketAddr::V6(_)) => libc::AF_INET6,
            Addr::Unix(_) => libc::AF_UNIX,
        }
    }
}

/// Room for any address the kernel hands back or takes.
pub(super) struct Raw {
    pub ss: libc::sockaddr_storage,
    pub len: libc::socklen_t,
}

impl Raw {
    pub fn empty() -> Raw {
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
        let ss = unsafe { std::mem::zeroed() };
        Raw { ss, len: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t }
    }

    pub fn ptr(&self) -> *const libc::sockaddr {
        &self.ss as *const _ as *const libc::sockaddr
    }

    pub fn mut_ptr(&mut self) -> *mut libc::sockaddr {
        &mut self.ss as *mut _ as *mut libc::sockaddr
    }

    /// `a` as the kernel takes it.
    pub fn encode(a: &Addr) -> io::Result<Raw> {
        let mut raw = Raw::empty();
        let len = match a {
            Addr::Ip(SocketAddr::V4(a)) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write(raw.mut_ptr() as *mut libc::sockaddr_in, sin) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            Addr::Ip(SocketAddr::V6(a)) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { std::ptr::write(raw.mut_ptr() as *mut libc::sockaddr_in6, sin6) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
            Addr::Unix(path) => {
                if path.len() > UNIX_PATH_MAX || path.contains(&0) {
                    return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
                }
                let mut sun = libc::sockaddr_un { sun_family: libc::AF_UNIX as libc::sa_family_t, sun_path: [0; 108] };
                for (d, s) in sun.sun_path.iter_mut().zip(path) {
                    *d = *s as libc::c_char;
                }
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
                unsafe { std::ptr::write(raw.mut_ptr() as *mut libc::sockaddr_un, sun) };
                std::mem::size_of::<libc::sa_family_t>() + path.len() + 1
            }
        };
        raw.len = len as libc::socklen_t;
        Ok(raw)
    }

    /// The address the kernel wrote, if of a family coevent knows.
    pub fn decode(&self) -> Option<Addr> {
        let len = self.len as usize;
        match self.ss.ss_family as c_int {
            libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family and length say the storage holds a sockaddr_in.
                let sin = unsafe { &*(self.ptr() as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(Addr::Ip(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into()))
            }
            libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family and length say the storage holds a sockaddr_in6.
                let s6 = unsafe { &*(self.ptr() as *const libc::sockaddr_in6) };
                let ip = Ipv6Addr::from(s6.sin6_addr.s6_addr);
                let a = SocketAddrV6::new(ip, u16::from_be(s6.sin6_port), s6.sin6_flowinfo, s6.sin6_scope_id);
                Some(Addr::Ip(a.into()))
            }
            libc::AF_UNIX => {
                // SAFETY: the family says the storage holds a sockaddr_un.
                let sun = unsafe { &*(self.ptr() as *const libc::sockaddr_un) };
                let n = len.saturating_sub(std::mem::size_of::<libc::sa_family_t>()).min(sun.sun_path.len());
                let path = sun.sun_path[..n].iter().map(|&c| c as u8).take_while(|&c| c != 0).collect();
                Some(Addr::Unix(path))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_round_trips() {
        for a in [
            Addr::Ip("127.0.0.1:6379".parse().unwrap()),
            Addr::Ip("[::1]:53".parse().unwrap()),
            Addr::Ip("[fe80::1%2]:80".parse().unwrap()),
            Addr::Unix(b"/tmp/x.sock".to_vec()),
        ] {
            assert_eq!(Raw::encode(&a).unwrap().decode(), Some(a));
        }
        assert!(Raw::encode(&Addr::Unix(vec![b'a'; UNIX_PATH_MAX + 1])).is_err());
        assert!(Raw::encode(&Addr::Unix(b"a\0b".to_vec())).is_err());
    }
}
