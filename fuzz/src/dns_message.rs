//! The DNS codec of `coevent_engine::dns`.
//!
//! Input: `first byte % 5` picks a check, the rest feeds it.
//! - 0 any bytes as a response: `parse_response` never panics, and what it
//!   returns is consistent with the bytes (header fields, name syntax, TTLs,
//!   `addresses`).
//! - 1 any bytes (lossy UTF-8) as a name for `encode_query`: it encodes
//!   exactly the valid host names, byte for byte as the reference below, and
//!   the query turned into a response (QR set, no answers) parses back to the
//!   same id, qtype and (lowercased) name.
//! - 2 the same with a name generated from the bytes so that it is usually
//!   valid: `b >> 6 == 3` is a dot, `2` a run of `next byte % 70` copies of a
//!   character (to reach the 63 and 253 limits), else one character of
//!   `[a-zA-Z0-9-_][b & 63]`.
//! - 3 a response built from the bytes (a question, then A, AAAA, CNAME and
//!   other records, names compressed or not, any TTL, TC and rcode bits):
//!   `parse_response` gives exactly the records put in.
//! - 4 resolv.conf text (lossy UTF-8; its first line is a name):
//!   `ResolvConf::parse` keeps its options in range and `candidates` lists the
//!   name and its search forms without duplicates, in the documented order.

use coevent_engine::dns::{self, Answer, DnsError, RData, Record};
use coevent_engine::sysnames::ResolvConf;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ALPHABET: &[u8; 64] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

pub fn check(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let mut inp = Input(rest);
    match sel % 5 {
        0 => {
            if let Ok(a) = dns::parse_response(rest) {
                check_answer(rest, &a);
            }
        }
        1 => {
            let (id, qtype, prefix) = (inp.be16(), inp.be16(), inp.byte() % 16);
            let name = String::from_utf8_lossy(inp.0).into_owned();
            round_trip(id, &name, qtype, prefix);
        }
        2 => {
            let (id, qtype, prefix) = (inp.be16(), inp.be16(), inp.byte() % 16);
            let name = gen_name(&mut inp, usize::MAX);
            round_trip(id, &name, qtype, prefix);
        }
        3 => built_response(&mut inp),
        _ => resolv_conf(&String::from_utf8_lossy(rest)),
    }
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn be16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn be32(&mut self) -> u32 {
        u32::from(self.be16()) << 16 | u32::from(self.be16())
    }
}

/// A name from the input (see the module doc), at most `max_chars` input bytes long.
fn gen_name(inp: &mut Input, max_chars: usize) -> String {
    let mut name = String::new();
    let mut n = 0;
    while !inp.0.is_empty() && n < max_chars {
        let b = inp.byte();
        n += 1;
        match b >> 6 {
            3 => name.push('.'),
            2 => {
                let c = char::from(ALPHABET[usize::from(b & 63)]);
                let k = usize::from(inp.byte() % 70);
                name.extend(std::iter::repeat_n(c, k));
            }
            _ => name.push(char::from(ALPHABET[usize::from(b & 63)])),
        }
    }
    name
}

/// RFC 1035 host names as coevent accepts them: one optional trailing dot;
/// labels of 1..=63 letters, digits, '-' or '_'; at most 253 characters
/// dotted (255 octets on the wire).
fn valid_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The wire form of a valid dotted name.
fn wire_name(name: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for l in name.strip_suffix('.').unwrap_or(name).split('.').filter(|l| !l.is_empty()) {
        w.push(l.len() as u8);
        w.extend_from_slice(l.as_bytes());
    }
    w.push(0);
    w
}

fn round_trip(id: u16, name: &str, qtype: u16, prefix: u8) {
    let prefix: Vec<u8> = (0..prefix).collect();
    let mut out = prefix.clone();
    let res = dns::encode_query(id, name, qtype, &mut out);
    let valid = valid_name(name);
    if !valid {
        assert_eq!(res, Err(DnsError::BadName), "encode_query({name:?})");
        assert_eq!(out, prefix, "encode_query({name:?}) failed but changed out");
        return;
    }
    assert_eq!(res, Ok(()), "encode_query({name:?})");
    assert_eq!(out[..prefix.len()], prefix[..], "encode_query({name:?}) changed what was in out");
    let q = &out[prefix.len()..];
    // Header: id, RD, one question; then the question, class IN.
    let mut want = id.to_be_bytes().to_vec();
    want.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    want.extend(wire_name(name));
    want.extend_from_slice(&qtype.to_be_bytes());
    want.extend_from_slice(&[0, 1]);
    assert_eq!(q, &want[..], "encode_query({name:?})");

    // The server's answer with no records: the query with QR set.
    let mut resp = q.to_vec();
    resp[2] |= 0x80;
    let a = dns::parse_response(&resp).unwrap_or_else(|e| panic!("response to {name:?}: {e}"));
    let qname = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let expect = Answer { id, rcode: 0, truncated: false, qname, qtype, answers: vec![] };
    assert_eq!(a, expect, "response to {name:?}");
    check_answer(&resp, &a);
    // Cut anywhere, it is truncated, with or without TC (nothing to drop).
    for cut in [resp.len() - 1, resp.len() / 2] {
        assert_eq!(dns::parse_response(&resp[..cut]), Err(DnsError::Truncated), "{name:?} cut at {cut}");
    }
}

/// A name as parse_response returns it: lowercase dotted, no empty label,
/// no dot or non-printable byte in a label.
fn check_parsed_name(what: &str, n: &str) {
    assert!(n.len() <= dns::MAX_NAME, "{what} {n:?} longer than {}", dns::MAX_NAME);
    if n.is_empty() {
        return; // the root
    }
    for l in n.split('.') {
        assert!((1..=63).contains(&l.len()), "{what} {n:?}: label {l:?}");
        assert!(l.bytes().all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()), "{what} {n:?}");
    }
}

/// What holds for any successful parse of `msg`.
fn check_answer(msg: &[u8], a: &Answer) {
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    assert_eq!(a.id, u16::from_be_bytes([msg[0], msg[1]]));
    assert!(flags & 0x8000 != 0, "parsed a message without QR");
    assert_eq!(u16::from_be_bytes([msg[4], msg[5]]), 1, "parsed a message without exactly one question");
    assert_eq!(a.truncated, flags & 0x0200 != 0);
    assert_eq!(u16::from(a.rcode), flags & 0x000f);
    let ancount = usize::from(u16::from_be_bytes([msg[6], msg[7]]));
    assert!(a.answers.len() <= ancount.min(64), "{} answers, {ancount} announced", a.answers.len());
    check_parsed_name("qname", &a.qname);
    for r in &a.answers {
        check_parsed_name("owner", &r.name);
        assert!(r.ttl <= i32::MAX as u32, "TTL {} has the top bit set", r.ttl);
        match &r.data {
            RData::A(_) => assert_eq!(r.rtype, dns::TYPE_A),
            RData::Aaaa(_) => assert_eq!(r.rtype, dns::TYPE_AAAA),
            RData::Cname(t) => {
                assert_eq!(r.rtype, dns::TYPE_CNAME);
                check_parsed_name("CNAME target", t);
            }
            RData::Other => {}
        }
    }
    let (ips, ttl) = a.addresses();
    assert_eq!(ips.is_empty(), ttl.is_none(), "addresses() = {ips:?}, {ttl:?}");
    for ip in &ips {
        match (a.qtype, ip) {
            (dns::TYPE_A, IpAddr::V4(_)) | (dns::TYPE_AAAA, IpAddr::V6(_)) => {}
            _ => panic!("addresses() gave {ip} for qtype {}", a.qtype),
        }
        let listed = a.answers.iter().any(|r| match r.data {
            RData::A(v4) => IpAddr::V4(v4) == *ip,
            RData::Aaaa(v6) => IpAddr::V6(v6) == *ip,
            _ => false,
        });
        assert!(listed, "addresses() gave {ip}, which no record holds");
    }
    if let Some(t) = ttl {
        assert!(a.answers.iter().any(|r| r.ttl == t), "addresses() TTL {t} is no record's");
    }
}

/// A response assembled from the input, and the Answer it must parse to.
fn built_response(inp: &mut Input) {
    let id = inp.be16();
    let ctl = inp.byte();
    let (tc, rcode) = (ctl & 0x10 != 0, ctl & 0x0f);
    let qtype = match inp.byte() % 4 {
        0 => dns::TYPE_A,
        1 => dns::TYPE_AAAA,
        2 => dns::TYPE_CNAME,
        _ => 16,
    };
    let qlen = usize::from(inp.byte() % 24);
    let mut qname = gen_name(inp, qlen);
    if !valid_name(&qname) {
        qname = "Example.COM".into();
    }
    let mut msg = Vec::new();
    dns::encode_query(id, &qname, qtype, &mut msg).unwrap();
    msg[2] |= 0x80;
    msg[2] |= if tc { 0x02 } else { 0 };
    msg[3] |= rcode;
    let lower = |s: &str| s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    let qname = lower(&qname);

    // Owner and CNAME target names: the question's (as a pointer) or a literal.
    let name = |inp: &mut Input, kind: u8| -> (Vec<u8>, String) {
        if kind & 1 == 0 {
            return (vec![0xc0, 12], qname.clone());
        }
        let len = usize::from(inp.byte() % 12);
        let n = gen_name(inp, len);
        let n = if valid_name(&n) { n } else { "X".into() };
        (wire_name(&n), lower(&n))
    };
    let mut answers = Vec::new();
    let mut records = 0u16;
    while !inp.0.is_empty() && records < 70 {
        let kind = inp.byte();
        let (owner_wire, owner) = name(inp, kind);
        let ttl = inp.be32();
        let (rtype, rdata, data) = match (kind >> 1) % 4 {
            0 => {
                let b = [inp.byte(), inp.byte(), inp.byte(), inp.byte()];
                (dns::TYPE_A, b.to_vec(), RData::A(Ipv4Addr::from(b)))
            }
            1 => {
                let b: [u8; 16] = std::array::from_fn(|_| inp.byte());
                (dns::TYPE_AAAA, b.to_vec(), RData::Aaaa(Ipv6Addr::from(b)))
            }
            2 => {
                let (w, t) = name(inp, kind >> 3);
                (dns::TYPE_CNAME, w, RData::Cname(t))
            }
            _ => {
                let n = usize::from(inp.byte() % 16);
                let b: Vec<u8> = (0..n).map(|_| inp.byte()).collect();
                (99, b, RData::Other)
            }
        };
        msg.extend(owner_wire);
        msg.extend_from_slice(&rtype.to_be_bytes());
        msg.extend_from_slice(&[0, 1]);
        msg.extend_from_slice(&ttl.to_be_bytes());
        msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        msg.extend(rdata);
        records += 1;
        if answers.len() < 64 {
            let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
            answers.push(Record { name: owner, rtype, ttl, data });
        }
    }
    msg[6..8].copy_from_slice(&records.to_be_bytes());
    let want = Answer { id, rcode, truncated: tc, qname, qtype, answers };
    let got = dns::parse_response(&msg);
    assert_eq!(got.as_ref(), Ok(&want), "built response {msg:02x?}");
    check_answer(&msg, &want);
    // Cut by one byte: past 64 records nothing read is lost; else with TC
    // the whole records before the cut one parse, without TC it is an error.
    let got = dns::parse_response(&msg[..msg.len() - 1]);
    if records > 64 {
        assert_eq!(got.as_ref(), Ok(&want), "cut after record 64");
    } else if tc && records > 0 {
        let mut shorter = want.clone();
        shorter.answers.pop();
        assert_eq!(got.as_ref(), Ok(&shorter), "cut with TC");
    } else {
        assert_eq!(got, Err(DnsError::Truncated), "cut without TC");
    }
}

fn resolv_conf(text: &str) {
    let (name, conf) = text.split_once('\n').unwrap_or((text, ""));
    let rc = ResolvConf::parse(conf);
    assert!(rc.ndots <= 15, "ndots {}", rc.ndots);
    assert!(
        (1000..=30_000).contains(&rc.timeout_ms) && rc.timeout_ms.is_multiple_of(1000),
        "timeout {}",
        rc.timeout_ms
    );
    assert!((1..=5).contains(&rc.attempts), "attempts {}", rc.attempts);
    for ns in &rc.nameservers {
        assert_eq!(ns.port(), 53);
    }
    for d in &rc.search {
        assert!(valid_name(d) && !d.ends_with('.'), "search domain {d:?}");
    }

    let c = rc.candidates(name);
    for (i, x) in c.iter().enumerate() {
        assert!(!c[..i].contains(x), "candidates({name:?}) lists {x:?} twice: {c:?}");
    }
    if let Some(abs) = name.strip_suffix('.') {
        let want: Vec<String> = if abs.is_empty() { vec![] } else { vec![abs.into()] };
        return assert_eq!(c, want, "candidates({name:?})");
    }
    if name.is_empty() {
        return assert!(c.is_empty());
    }
    // The name itself once, plus name.domain for each domain that fits.
    let mut searched: Vec<String> = Vec::new();
    for d in &rc.search {
        let s = format!("{name}.{d}");
        if s.len() <= dns::MAX_NAME && s != name && !searched.contains(&s) {
            searched.push(s);
        }
    }
    let dots = name.bytes().filter(|&b| b == b'.').count() as u64;
    let mut want = Vec::new();
    if dots >= u64::from(rc.ndots) {
        want.push(name.to_string());
        want.extend(searched);
    } else {
        want.extend(searched);
        want.push(name.to_string());
    }
    assert_eq!(c, want, "candidates({name:?}) with ndots {} search {:?}", rc.ndots, rc.search);
}
