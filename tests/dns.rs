//! The resolver from Lua: the scripts of tests/lua/dns against a real dnsmasq
//! and the servers of tests/dnspeer, run in process (vendored Lua 5.4 through
//! `coevent::open`), through the `coevent` runner, and through lua5.4, lua5.3,
//! lua5.1 and luajit with the modules `make modules` builds (ignored by default).
//!
//! As in tests/lua.rs, the servers (and dnsmasq) run in a child process (this
//! binary again, running only `serve_dnspeer`), and an in-process script runs
//! alone: see tests/common.
//!
//! Runs through a child process (the runner, the interpreters) also get
//! `COEVENT_HOSTS` and `COEVENT_RESOLV_CONF`, for the cases that test them.

mod common;
mod dnspeer;

use std::time::Duration;

use coevent_engine::dns::{self, TYPE_A, TYPE_AAAA};
use common::{shared, var};

static SUITE: common::Suite = common::Suite {
    servers: dnspeer::SERVERS,
    dir: "dns",
    path: &[""],
    not_listed: &[],
    env: &[("COEVENT_HOSTS", "DNS_ENV_HOSTS"), ("COEVENT_RESOLV_CONF", "DNS_ENV_RESOLV_CONF")],
    time_limit: Duration::from_secs(60),
    valgrind: false,
};

/// Not a test: the servers' process (see tests/common); does nothing in a
/// normal run. They stop dnsmasq when dropped.
#[test]
fn serve_dnspeer() {
    dnspeer::serve_child();
}

common::scripts!(resolve, connect, config, udp);

/// dnsmasq itself, from Rust: what the Lua scripts rely on.
#[test]
fn dnsmasq_answers_as_configured() {
    let _g = shared();
    let port: u16 = var("DNS_PORT").unwrap().parse().unwrap();
    let ask = |name: &str, qtype: u16| {
        // UDP: a query dnsmasq drops while the scripts keep it busy is asked again, as resolvers do.
        let m = (0..3)
            .find_map(|_| dnspeer::query(port, name, qtype, Duration::from_secs(2)))
            .expect("an answer from dnsmasq");
        let a = dns::parse_response(&m).unwrap();
        (a.rcode, a.addresses().0.iter().map(|ip| ip.to_string()).collect::<Vec<_>>())
    };
    let ok = |ips: &[&str]| (dns::RCODE_NOERROR, ips.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(ask("v4.test", TYPE_A), ok(&["127.0.0.1"]));
    assert_eq!(ask("v4.test", TYPE_AAAA), ok(&[]));
    assert_eq!(ask("v6.test", TYPE_A), ok(&[]));
    assert_eq!(ask("v6.test", TYPE_AAAA), ok(&["::1"]));
    assert_eq!(ask("both.test", TYPE_A), ok(&["127.0.0.1"]));
    assert_eq!(ask("both.test", TYPE_AAAA), ok(&["::1"]));
    assert_eq!(ask("alias.test", TYPE_A), ok(&["127.0.0.1"]));
    assert_eq!(ask("alias.test", TYPE_AAAA), ok(&["::1"]));
    assert_eq!(ask("db.corp.test", TYPE_A), ok(&["127.0.0.1"]));
    assert_eq!(ask("nx.test", TYPE_A), (dns::RCODE_NXDOMAIN, vec![]));
    assert_eq!(ask("unknown.test", TYPE_AAAA), (dns::RCODE_NXDOMAIN, vec![]));
    assert_eq!(ask("fromhosts.test", TYPE_A), (dns::RCODE_NXDOMAIN, vec![]), "dnsmasq must not know the hosts names");

    let servfail: u16 = var("DNS_SERVFAIL_PORT").unwrap().parse().unwrap();
    let m = dnspeer::query(servfail, "any.test", TYPE_A, Duration::from_secs(2)).expect("a SERVFAIL");
    assert_eq!(dns::parse_response(&m).unwrap().rcode, dns::RCODE_SERVFAIL);
    let silent: u16 = var("DNS_SILENT_PORT").unwrap().parse().unwrap();
    assert!(dnspeer::query(silent, "any.test", TYPE_A, Duration::from_millis(100)).is_none());
}
