//! The system's name configuration, as the resolver reads it: resolv.conf
//! (nameservers, search list, options) and the hosts file. Text in, settings
//! out; the files themselves are read (and read again) by `resolver`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::dns::{valid_name, MAX_NAME};

/// What resolv.conf says (glibc's defaults for what it leaves out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// In file order, port 53.
    pub nameservers: Vec<SocketAddr>,
    pub search: Vec<String>,
    /// Dots a name needs to be tried as is before the search list (0..=15).
    pub ndots: u32,
    /// Per-attempt timeout (1..=30 s).
    pub timeout_ms: u64,
    /// Rounds over the nameservers (1..=5).
    pub attempts: u32,
    pub rotate: bool,
}

impl Default for ResolvConf {
    fn default() -> ResolvConf {
        ResolvConf {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout_ms: 5000,
            attempts: 2,
            rotate: false,
        }
    }
}

/// A nameserver address; an IPv6 zone (`%eth0`) is dropped.
fn parse_nameserver(word: &str) -> Option<SocketAddr> {
    let ip = match word.split_once('%') {
        Some((v6, _)) => IpAddr::V6(v6.parse().ok()?),
        None => word.parse().ok()?,
    };
    Some(SocketAddr::new(ip, 53))
}

/// A search domain, trailing dot dropped; names we could never query are skipped.
fn parse_domain(word: &str) -> Option<String> {
    let d = word.strip_suffix('.').unwrap_or(word);
    valid_name(d).then(|| d.to_string())
}

impl ResolvConf {
    /// Parses resolv.conf text like glibc: `nameserver`, `search` (replaces the
    /// list), `domain` (a one-entry list; the last of search/domain wins),
    /// `options ndots:N timeout:N attempts:N rotate`. `#` and `;` start
    /// comments; unknown or unparsable lines and options are ignored.
    pub fn parse(text: &str) -> ResolvConf {
        let mut rc = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => rc.nameservers.extend(words.next().and_then(parse_nameserver)),
                Some("search") => rc.search = words.filter_map(parse_domain).collect(),
                Some("domain") => rc.search = words.next().and_then(parse_domain).into_iter().collect(),
                Some("options") => words.for_each(|w| rc.option(w)),
                _ => {}
            }
        }
        rc
    }

    fn option(&mut self, word: &str) {
        let (key, val) = word.split_once(':').unwrap_or((word, ""));
        let n = val.parse::<u32>().ok();
        match (key, n) {
            ("ndots", Some(n)) => self.ndots = n.min(15),
            // glibc waits at least a second even for timeout:0; attempts:0
            // would never send anything.
            ("timeout", Some(n)) => self.timeout_ms = u64::from(n.clamp(1, 30)) * 1000,
            ("attempts", Some(n)) => self.attempts = n.clamp(1, 5),
            ("rotate", None) if val.is_empty() => self.rotate = true,
            _ => {}
        }
    }

    /// The names to try for `name`, in order: a name ending in '.' is only
    /// itself (dot stripped); one with at least `ndots` dots comes before the
    /// search suffixes, any other after them.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(abs) = name.strip_suffix('.') {
            return if abs.is_empty() { Vec::new() } else { vec![abs.to_string()] };
        }
        if name.is_empty() {
            return Vec::new();
        }
        let searched = self.search.iter().map(|d| format!("{name}.{d}")).filter(|n| n.len() <= MAX_NAME);
        let dots = name.bytes().filter(|&b| b == b'.').count();
        let mut out: Vec<String> = Vec::new();
        let mut add = |n: String| {
            if !out.contains(&n) {
                out.push(n);
            }
        };
        if dots as u64 >= u64::from(self.ndots) {
            add(name.to_string());
            searched.for_each(&mut add);
        } else {
            searched.for_each(&mut add);
            add(name.to_string());
        }
        out
    }
}

/// Every name of hosts-file text (lowercase) with its addresses, in file order.
pub fn hosts_table(text: &str) -> HashMap<String, Vec<IpAddr>> {
    let mut names: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for line in text.lines() {
        let mut f = line.split('#').next().unwrap_or_default().split_whitespace();
        let Some(ip) = f.next().and_then(|ip| ip.parse::<IpAddr>().ok()) else { continue };
        for name in f {
            names.entry(name.to_ascii_lowercase()).or_default().push(ip);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn resolv_conf_all_options() {
        let rc = ResolvConf::parse(
            "# generated\n\
             nameserver 10.0.0.1\n\
             nameserver 10.0.0.2 # primary\n\
             ; a comment\n\
             nameserver 10.0.0.3\n\
             nameserver 10.0.0.4\n\
             search corp.example.com. example.com\n\
             options ndots:3 timeout:2 attempts:4 rotate edns0 single-request\n",
        );
        assert_eq!(
            rc,
            ResolvConf {
                nameservers: vec![sa("10.0.0.1:53"), sa("10.0.0.2:53"), sa("10.0.0.3:53"), sa("10.0.0.4:53")],
                search: vec!["corp.example.com".into(), "example.com".into()],
                ndots: 3,
                timeout_ms: 2000,
                attempts: 4,
                rotate: true,
            }
        );
    }

    #[test]
    fn resolv_conf_defaults_and_caps() {
        let d = ResolvConf::default();
        assert_eq!((d.ndots, d.timeout_ms, d.attempts, d.rotate), (1, 5000, 2, false));
        assert_eq!(ResolvConf::parse(""), d);
        let rc = ResolvConf::parse("options ndots:99 timeout:3600 attempts:9\n");
        assert_eq!((rc.ndots, rc.timeout_ms, rc.attempts), (15, 30_000, 5));
        let rc = ResolvConf::parse("options ndots:0 timeout:0 attempts:0\n");
        assert_eq!((rc.ndots, rc.timeout_ms, rc.attempts), (0, 1000, 1));
        // Later options override earlier ones; bad values are ignored.
        let rc = ResolvConf::parse("options ndots:2\noptions ndots:x timeout:-1 attempts: rotate:1\noptions ndots:4");
        assert_eq!((rc.ndots, rc.timeout_ms, rc.attempts, rc.rotate), (4, 5000, 2, false));
    }

    #[test]
    fn resolv_conf_search_vs_domain() {
        let rc = ResolvConf::parse("search a.com b.com\ndomain c.com\n");
        assert_eq!(rc.search, vec!["c.com"]);
        let rc = ResolvConf::parse("domain c.com\nsearch a.com b.com\n");
        assert_eq!(rc.search, vec!["a.com", "b.com"]);
        let rc = ResolvConf::parse("search a.com\nsearch b.com\n");
        assert_eq!(rc.search, vec!["b.com"]);
        // Names we could not query are dropped.
        let rc = ResolvConf::parse("search . a..b ok.net bad!name\n");
        assert_eq!(rc.search, vec!["ok.net"]);
    }

    #[test]
    fn resolv_conf_ipv6() {
        let rc = ResolvConf::parse("nameserver ::1\nnameserver fe80::1%eth0\nnameserver 2001:db8::53\n");
        assert_eq!(rc.nameservers, vec![sa("[::1]:53"), sa("[fe80::1]:53"), sa("[2001:db8::53]:53")]);
    }

    #[test]
    fn resolv_conf_garbage() {
        let rc = ResolvConf::parse(
            "nameserver\n\
             nameserver not-an-ip\n\
             nameserver 1.2.3.4%eth0\n\
             nameserver 300.1.1.1\n\
             nameservers 9.9.9.9\n\
             \tnameserver   8.8.8.8   extra words\n\
             #nameserver 7.7.7.7\n\
             \u{0}\u{ff}junk line\n\
             sortlist 1.2.3.4/255.0.0.0\n\
             options\n\
             domain\n",
        );
        assert_eq!(rc.nameservers, vec![sa("8.8.8.8:53")]);
        assert_eq!(rc.search, Vec::<String>::new());
        assert_eq!((rc.ndots, rc.timeout_ms, rc.attempts), (1, 5000, 2));
    }

    #[test]
    fn candidates_order() {
        let mut rc = ResolvConf::parse("search a.com b.com\n");
        assert_eq!(rc.candidates("host"), vec!["host.a.com", "host.b.com", "host"]);
        assert_eq!(rc.candidates("www.x"), vec!["www.x", "www.x.a.com", "www.x.b.com"]);
        assert_eq!(rc.candidates("www.x."), vec!["www.x"]);
        assert_eq!(rc.candidates("host."), vec!["host"]);
        assert_eq!(rc.candidates("."), Vec::<String>::new());
        assert_eq!(rc.candidates(""), Vec::<String>::new());
        rc.ndots = 2;
        assert_eq!(rc.candidates("www.x"), vec!["www.x.a.com", "www.x.b.com", "www.x"]);
        assert_eq!(rc.candidates("a.b.c"), vec!["a.b.c", "a.b.c.a.com", "a.b.c.b.com"]);
        rc.ndots = 0;
        assert_eq!(rc.candidates("host"), vec!["host", "host.a.com", "host.b.com"]);
        // No search list: only the name; a too-long combination is skipped.
        let none = ResolvConf::default();
        assert_eq!(none.candidates("host"), vec!["host"]);
        let long = "h".repeat(MAX_NAME - 6);
        let rc = ResolvConf::parse("search a.com bb.com\n");
        assert_eq!(rc.candidates(&long), vec![format!("{long}.a.com"), long.clone()]);
    }

    #[test]
    fn hosts_file() {
        let text =
            "# c\n127.0.0.1 localhost\n::1 localhost ip6-localhost # x\n10.0.0.1 Other.Example # localhost\nbad line\n";
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let t = hosts_table(text);
        assert_eq!(t["localhost"], [v4, v6]);
        assert_eq!(t["ip6-localhost"], [v6]);
        assert_eq!(t["other.example"].len(), 1);
        assert_eq!(t.len(), 3, "{t:?}");
    }
}
