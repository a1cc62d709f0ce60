//! `connect`'s host argument: a unix path, an IP literal, or a name (looked up
//! in the hosts file, then by the resolver).

use std::net::IpAddr;

use crate::sys::UNIX_PATH_MAX;

/// What a host names, before any lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Host<'a> {
    Unix(&'a [u8]),
    Ip(IpAddr),
    Name(&'a str),
}

/// Classifies a host: `unix:/path`, an IPv4 or IPv6 literal (brackets allowed), or a name.
pub fn parse_host(host: &[u8]) -> Result<Host<'_>, &'static str> {
    if let Some(path) = host.strip_prefix(b"unix:") {
        return match path.len() {
            0 => Err("empty unix socket path"),
            n if n > UNIX_PATH_MAX || path.contains(&0) => Err("unix socket path too long"),
            _ => Ok(Host::Unix(path)),
        };
    }
    let s = std::str::from_utf8(host).map_err(|_| "no such host")?;
    if let Some(ip) = ip_literal(s) {
        return Ok(Host::Ip(ip));
    }
    if s.is_empty() || s.len() > 253 || s.bytes().any(|b| b.is_ascii_whitespace() || b == b'#' || b == 0) {
        return Err("no such host");
    }
    Ok(Host::Name(s))
}

/// An IPv4 or IPv6 literal, IPv6 with or without its brackets (in pairs).
pub fn ip_literal(s: &str) -> Option<IpAddr> {
    s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(s).parse().ok()
}

/// A local address to bind to: an IPv4 or IPv6 literal, without brackets
/// and never a name (as OpenResty's `bind` reads it). Shared by every kind
/// of socket that binds.
pub fn local_ip(text: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(parse_host(b"unix:/tmp/x"), Ok(Host::Unix(b"/tmp/x")));
        assert_eq!(parse_host(b"unix:"), Err("empty unix socket path"));
        assert_eq!(parse_host(&[b"unix:/".as_slice(), &[b'a'; 200]].concat()), Err("unix socket path too long"));
        assert_eq!(parse_host(b"127.0.0.1"), Ok(Host::Ip("127.0.0.1".parse().unwrap())));
        assert_eq!(parse_host(b"[::1]"), Ok(Host::Ip("::1".parse().unwrap())));
        assert_eq!(parse_host(b"::1"), Ok(Host::Ip("::1".parse().unwrap())));
        assert_eq!(parse_host(b"example.com"), Ok(Host::Name("example.com")));
        assert_eq!(parse_host(b""), Err("no such host"));
        assert_eq!(parse_host(b"a b"), Err("no such host"));
        assert_eq!(local_ip(b"127.0.0.2"), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(local_ip(b"::1"), Some("::1".parse().unwrap()));
        for bad in [&b"[::1]"[..], b"localhost", b"1.2.3", b"1.2.3.4:5", b""] {
            assert_eq!(local_ip(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
