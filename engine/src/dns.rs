//! DNS over UDP, the message side only: building a query, reading the answer
//! section of a response. (The resolv.conf settings that drive the lookup
//! are `sysnames`'.)
//!
//! Everything read from the wire is untrusted: every offset is bounds-checked,
//! compression pointers are followed a bounded number of times, and no input
//! makes these functions panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;

/// Longest dotted name accepted (255 wire octets less the length bytes).
pub const MAX_NAME: usize = 253;

const CLASS_IN: u16 = 1;
const HEADER_LEN: usize = 12;
const MAX_LABEL: usize = 63;
const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
/// A legitimate name has at most 127 labels and needs at most one pointer
/// per label, so more hops than that can only be a loop.
const MAX_HOPS: usize = 128;
/// Answer records read; the rest of a larger answer section is ignored.
const MAX_ANSWERS: u16 = 64;
/// CNAME links followed by `Answer::addresses`.
const MAX_CNAME_HOPS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// A name we were asked to encode is not a valid host name.
    BadName,
    /// The message ends before a field it announces.
    Truncated,
    /// The message is not a response to a single IN question, or a record is inconsistent.
    Malformed,
    /// A compression pointer points outside the message or loops.
    Pointer,
    /// A name in the message is longer than `MAX_NAME`.
    TooLong,
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DnsError::BadName => "bad name",
            DnsError::Truncated => "truncated message",
            DnsError::Malformed => "malformed message",
            DnsError::Pointer => "bad compression pointer",
            DnsError::TooLong => "name too long",
        })
    }
}

impl std::error::Error for DnsError {}

/// Whether `name` (dotted, no trailing dot) is something we will put on the wire:
/// letters, digits, '-' and '_' in labels of 1..=63 bytes, at most `MAX_NAME` in all.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.split('.').all(|l| {
            (1..=MAX_LABEL).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Appends a standard query (RD set, one question, class IN) for `name`
/// (dotted, optional trailing dot, case kept) to `out`. On error `out` is left
/// as it was.
pub fn encode_query(id: u16, name: &str, qtype: u16, out: &mut Vec<u8>) -> Result<(), DnsError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if !valid_name(name) {
        return Err(DnsError::BadName);
    }
    out.reserve(HEADER_LEN + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // qd=1, an=ns=ar=0
    for label in name.split('.') {
        out.push(label.len() as u8); // <= 63, checked above
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// The canonical name, lowercase dotted.
    Cname(String),
    /// Any other type, or any record of a class other than IN.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Lowercase dotted, no trailing dot ("" for the root).
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    pub data: RData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub id: u16,
    pub rcode: u8,
    /// TC bit: the server cut the message short.
    pub truncated: bool,
    /// The question's name, lowercase dotted.
    pub qname: String,
    pub qtype: u16,
    pub answers: Vec<Record>,
}

fn be16(msg: &[u8], pos: usize) -> Result<u16, DnsError> {
    match msg.get(pos..pos.wrapping_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(DnsError::Truncated),
    }
}

fn be32(msg: &[u8], pos: usize) -> Result<u32, DnsError> {
    Ok(u32::from(be16(msg, pos)?) << 16 | u32::from(be16(msg, pos + 2)?))
}

/// Reads the possibly compressed name at `pos`. Returns it lowercase dotted,
/// and the offset just past its in-place part (where the record goes on).
fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut end = None;
    let mut hops = 0;
    loop {
        let len = usize::from(*msg.get(pos).ok_or(DnsError::Truncated)?);
        match len & 0xc0 {
            0x00 if len == 0 => return Ok((name, end.unwrap_or(pos + 1))),
            0x00 => {
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(DnsError::Truncated)?;
                let dot = usize::from(!name.is_empty());
                if name.len() + dot + len > MAX_NAME {
                    return Err(DnsError::TooLong);
                }
                if dot == 1 {
                    name.push('.');
                }
                // Bytes that are not printable, or a dot inside a label, would
                // make the dotted form ambiguous.
                if label.iter().any(|&b| !b.is_ascii_graphic() || b == b'.') {
                    return Err(DnsError::Malformed);
                }
                name.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
                pos += 1 + len;
            }
            0xc0 => {
                let target = (len & 0x3f) << 8 | usize::from(*msg.get(pos + 1).ok_or(DnsError::Truncated)?);
                hops += 1;
                // Names never live in the header.
                if hops > MAX_HOPS || target < HEADER_LEN || target >= msg.len() {
                    return Err(DnsError::Pointer);
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            // 0x40 and 0x80 are extended label types, never used in answers.
            _ => return Err(DnsError::Malformed),
        }
    }
}

/// Reads the resource record at `pos`; returns it and the offset past it.
fn read_record(msg: &[u8], pos: usize) -> Result<(Record, usize), DnsError> {
    let (name, pos) = read_name(msg, pos)?;
    let rtype = be16(msg, pos)?;
    let class = be16(msg, pos + 2)?;
    let ttl = be32(msg, pos + 4)?;
    let rdlen = usize::from(be16(msg, pos + 8)?);
    let start = pos + 10;
    let rdata = msg.get(start..start + rdlen).ok_or(DnsError::Truncated)?;
    let data = match (class, rtype) {
        (CLASS_IN, TYPE_A) => RData::A(<[u8; 4]>::try_from(rdata).map_err(|_| DnsError::Malformed)?.into()),
        (CLASS_IN, TYPE_AAAA) => RData::Aaaa(<[u8; 16]>::try_from(rdata).map_err(|_| DnsError::Malformed)?.into()),
        (CLASS_IN, TYPE_CNAME) => {
            let (target, end) = read_name(msg, start)?;
            if end != start + rdlen {
                return Err(DnsError::Malformed);
            }
            RData::Cname(target)
        }
        _ => RData::Other,
    };
    // RFC 2181 8: a TTL with the top bit set is read as zero.
    let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
    Ok((Record { name, rtype, ttl, data }, start + rdlen))
}

/// Parses a response to a single IN question, decoding the answer section
/// only (at most 64 records; authority and additional are not looked at).
/// With the TC bit set, a record cut off by the end of the message ends the
/// answer section instead of failing the parse.
pub fn parse_response(msg: &[u8]) -> Result<Answer, DnsError> {
    if msg.len() < HEADER_LEN {
        return Err(DnsError::Truncated);
    }
    let id = be16(msg, 0)?;
    let flags = be16(msg, 2)?;
    let qdcount = be16(msg, 4)?;
    let ancount = be16(msg, 6)?;
    if flags & FLAG_QR == 0 || qdcount != 1 {
        return Err(DnsError::Malformed);
    }
    let truncated = flags & FLAG_TC != 0;
    let (qname, pos) = read_name(msg, HEADER_LEN)?;
    let qtype = be16(msg, pos)?;
    if be16(msg, pos + 2)? != CLASS_IN {
        return Err(DnsError::Malformed);
    }
    let mut pos = pos + 4;
    let mut answers = Vec::new();
    for _ in 0..ancount.min(MAX_ANSWERS) {
        match read_record(msg, pos) {
            Ok((rec, next)) => {
                answers.push(rec);
                pos = next;
            }
            Err(DnsError::Truncated) if truncated => break,
            Err(e) => return Err(e),
        }
    }
    Ok(Answer { id, rcode: (flags & 0x0f) as u8, truncated, qname, qtype, answers })
}

impl Answer {
    /// Follows the CNAME chain from `qname` (case-insensitive, at most 8 links)
    /// and returns the addresses of type `qtype` at its end, with the smallest
    /// TTL seen along the chain (`None` when there are no addresses).
    pub fn addresses(&self) -> (Vec<IpAddr>, Option<u32>) {
        let mut name = self.qname.as_str();
        let mut ttl = u32::MAX;
        for _ in 0..=MAX_CNAME_HOPS {
            let here = self.answers.iter().filter(|r| r.name.eq_ignore_ascii_case(name));
            let mut ips = Vec::new();
            for r in here.clone().filter(|r| r.rtype == self.qtype) {
                let ip = match r.data {
                    RData::A(a) => IpAddr::V4(a),
                    RData::Aaaa(a) => IpAddr::V6(a),
                    _ => continue,
                };
                ips.push(ip);
                ttl = ttl.min(r.ttl);
            }
            if !ips.is_empty() {
                return (ips, Some(ttl));
            }
            let mut cnames = here.filter_map(|r| match &r.data {
                RData::Cname(target) => Some((target, r.ttl)),
                _ => None,
            });
            match cnames.next() {
                Some((target, t)) => {
                    ttl = ttl.min(t);
                    name = target;
                }
                None => break,
            }
        }
        (Vec::new(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Header of a response with one question and `an` answers.
    fn header(id: u16, flags: u16, an: u16) -> Vec<u8> {
        let [i0, i1] = id.to_be_bytes();
        let [f0, f1] = flags.to_be_bytes();
        let [a0, a1] = an.to_be_bytes();
        vec![i0, i1, f0, f1, 0, 1, a0, a1, 0, 0, 0, 0]
    }

    /// A resource record: wire name, type, class IN, TTL, rdata.
    fn rr(name: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut v = name.to_vec();
        v.extend_from_slice(&rtype.to_be_bytes());
        v.extend_from_slice(&[0, 1]);
        v.extend_from_slice(&ttl.to_be_bytes());
        v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        v.extend_from_slice(rdata);
        v
    }

    const EXAMPLE_COM: &[u8] = b"\x07example\x03com\x00";

    /// example.com A 93.184.216.34, TTL 3600, name compressed to the question.
    const A_RESP: &[u8] = &[
        0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, // id, QR RD RA, qd 1, an 1
        7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0, 0, 1, 0, 1, // question
        0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34, // answer
    ];

    #[test]
    fn encode_query_bytes() {
        let mut out = vec![0xee];
        encode_query(0x1234, "www.Example.com.", TYPE_AAAA, &mut out).unwrap();
        let want: &[u8] = b"\xee\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
            \x03www\x07Example\x03com\x00\x00\x1c\x00\x01";
        assert_eq!(out, want);

        out.clear();
        encode_query(7, "a-b_c", TYPE_A, &mut out).unwrap();
        assert_eq!(out, b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05a-b_c\x00\x00\x01\x00\x01");
    }

    #[test]
    fn encode_query_rejects_bad_names() {
        let l63 = "a".repeat(63);
        let longest = format!("{l63}.{l63}.{l63}.{}", "b".repeat(61));
        assert_eq!(longest.len(), MAX_NAME);
        let mut out = Vec::new();
        assert_eq!(encode_query(1, &longest, TYPE_A, &mut out), Ok(()));
        assert_eq!(encode_query(1, &format!("{longest}."), TYPE_A, &mut out), Ok(()));
        assert_eq!(encode_query(1, &l63, TYPE_A, &mut out), Ok(()));
        let before = out.clone();
        for bad in [
            "",
            ".",
            "..",
            "a..b",
            ".a",
            "a.b..",
            &format!("{l63}a"),
            &format!("{longest}b"),
            &format!("x{longest}."),
            "a b",
            "a*b",
            "*.example.com",
            "a\0b",
            "caf\u{e9}",
            "a:b",
        ] {
            assert_eq!(encode_query(1, bad, TYPE_A, &mut out), Err(DnsError::BadName), "{bad:?}");
        }
        assert_eq!(out, before);
    }

    #[test]
    fn parse_a() {
        let a = parse_response(A_RESP).unwrap();
        assert_eq!(
            a,
            Answer {
                id: 0xabcd,
                rcode: RCODE_NOERROR,
                truncated: false,
                qname: "example.com".into(),
                qtype: TYPE_A,
                answers: vec![Record {
                    name: "example.com".into(),
                    rtype: TYPE_A,
                    ttl: 3600,
                    data: RData::A(Ipv4Addr::new(93, 184, 216, 34)),
                }],
            }
        );
        assert_eq!(a.addresses(), (vec![IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34))], Some(3600)));
    }

    #[test]
    fn parse_aaaa() {
        let mut m = header(1, 0x8180, 2);
        m.extend_from_slice(EXAMPLE_COM);
        m.extend_from_slice(&[0, 28, 0, 1]);
        let ip: Ipv6Addr = "2606:2800:220:1::248:1893".parse().unwrap();
        m.extend(rr(b"\xc0\x0c", TYPE_AAAA, 100, &ip.octets()));
        m.extend(rr(b"\xc0\x0c", TYPE_AAAA, 50, &Ipv6Addr::LOCALHOST.octets()));
        let a = parse_response(&m).unwrap();
        assert_eq!(a.qtype, TYPE_AAAA);
        assert_eq!(a.answers[0].data, RData::Aaaa(ip));
        assert_eq!(a.addresses(), (vec![IpAddr::V6(ip), IpAddr::V6(Ipv6Addr::LOCALHOST)], Some(50)));
    }

    /// WWW.Example.COM CNAME cdn.example.com (-> question), cdn CNAME EDGE.net
    /// (-> the earlier rdata), then edge.net's addresses with an AAAA mixed in.
    fn cname_chain() -> Vec<u8> {
        let mut m = header(9, 0x8180, 5);
        m.extend_from_slice(b"\x03WWW\x07Example\x03COM\x00\x00\x01\x00\x01");
        assert_eq!(m.len(), 33);
        m.extend(rr(b"\xc0\x0c", TYPE_CNAME, 300, b"\x03cdn\xc0\x10")); // rdata at 45
        assert_eq!(m.len(), 51);
        m.extend(rr(b"\xc0\x2d", TYPE_CNAME, 60, b"\x04EDGE\x03net\x00")); // rdata at 63
        m.extend(rr(b"\xc0\x3f", TYPE_A, 120, &[1, 2, 3, 4]));
        m.extend(rr(b"\xc0\x3f", TYPE_AAAA, 5, &Ipv6Addr::LOCALHOST.octets()));
        m.extend(rr(b"\x04edge\x03NET\x00", TYPE_A, 7200, &[1, 2, 3, 5]));
        m
    }

    #[test]
    fn parse_cname_chain() {
        let a = parse_response(&cname_chain()).unwrap();
        assert_eq!(a.qname, "www.example.com");
        let got: Vec<_> = a.answers.iter().map(|r| (r.name.as_str(), r.rtype, r.ttl, r.data.clone())).collect();
        assert_eq!(
            got,
            vec![
                ("www.example.com", TYPE_CNAME, 300, RData::Cname("cdn.example.com".into())),
                ("cdn.example.com", TYPE_CNAME, 60, RData::Cname("edge.net".into())),
                ("edge.net", TYPE_A, 120, RData::A(Ipv4Addr::new(1, 2, 3, 4))),
                ("edge.net", TYPE_AAAA, 5, RData::Aaaa(Ipv6Addr::LOCALHOST)),
                ("edge.net", TYPE_A, 7200, RData::A(Ipv4Addr::new(1, 2, 3, 5))),
            ]
        );
        // The AAAA's TTL of 5 is not on the A chain; the CNAME's 60 is.
        let ips = vec![IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)), IpAddr::V4(Ipv4Addr::new(1, 2, 3, 5))];
        assert_eq!(a.addresses(), (ips, Some(60)));

        let mut aaaa = a.clone();
        aaaa.qtype = TYPE_AAAA;
        assert_eq!(aaaa.addresses(), (vec![IpAddr::V6(Ipv6Addr::LOCALHOST)], Some(5)));
    }

    fn rec(name: &str, ttl: u32, data: RData) -> Record {
        let rtype = match data {
            RData::A(_) => TYPE_A,
            RData::Aaaa(_) => TYPE_AAAA,
            RData::Cname(_) => TYPE_CNAME,
            RData::Other => 99,
        };
        Record { name: name.into(), rtype, ttl, data }
    }

    #[test]
    fn addresses_chain_limits() {
        let ip = RData::A(Ipv4Addr::new(10, 0, 0, 1));
        let cname = |t: &str| RData::Cname(t.into());
        let mut a = Answer {
            id: 0,
            rcode: 0,
            truncated: false,
            qname: "n0".into(),
            qtype: TYPE_A,
            answers: (0..8).map(|i| rec(&format!("N{i}"), 100 - i, cname(&format!("n{}", i + 1)))).collect(),
        };
        a.answers.push(rec("n8", 500, ip.clone()));
        // Eight links are followed (case-insensitively), TTL is the chain's minimum.
        assert_eq!(a.addresses(), (vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))], Some(93)));
        // A ninth is not.
        a.answers.pop();
        a.answers.push(rec("n8", 500, cname("n9")));
        a.answers.push(rec("n9", 500, ip.clone()));
        assert_eq!(a.addresses(), (vec![], None));
        // A loop ends.
        a.answers = vec![rec("n0", 1, cname("n1")), rec("n1", 1, cname("n0"))];
        assert_eq!(a.addresses(), (vec![], None));
        // No addresses for the name, only for another.
        a.answers = vec![rec("other", 1, ip), rec("n0", 1, RData::Other)];
        assert_eq!(a.addresses(), (vec![], None));
    }

    #[test]
    fn parse_rcodes() {
        // NXDOMAIN with an SOA in authority, which is not parsed.
        let mut m = header(2, 0x8183, 0);
        m[9] = 1;
        m.extend_from_slice(EXAMPLE_COM);
        m.extend_from_slice(&[0, 1, 0, 1]);
        m.extend(rr(b"\xc0\x0c", 6, 900, b"garbage that is not an SOA"));
        let a = parse_response(&m).unwrap();
        assert_eq!((a.rcode, a.truncated, a.answers.len()), (RCODE_NXDOMAIN, false, 0));
        assert_eq!(a.addresses(), (vec![], None));

        let mut m = header(3, 0x8182, 0);
        m.extend_from_slice(EXAMPLE_COM);
        m.extend_from_slice(&[0, 28, 0, 1]);
        let a = parse_response(&m).unwrap();
        assert_eq!((a.id, a.rcode, a.qtype), (3, RCODE_SERVFAIL, TYPE_AAAA));
    }

    #[test]
    fn parse_tc_bit() {
        let mut m = header(4, 0x8380, 3);
        m.extend_from_slice(EXAMPLE_COM);
        m.extend_from_slice(&[0, 1, 0, 1]);
        m.extend(rr(b"\xc0\x0c", TYPE_A, 10, &[1, 1, 1, 1]));
        m.extend(rr(b"\xc0\x0c", TYPE_A, 10, &[2, 2, 2, 2]));
        m.truncate(m.len() - 2); // second record cut, third missing
        let a = parse_response(&m).unwrap();
        assert!(a.truncated);
        assert_eq!(a.addresses(), (vec![IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1))], Some(10)));
        // Without TC the same cut is an error.
        m[2] = 0x81;
        assert_eq!(parse_response(&m), Err(DnsError::Truncated));
    }

    #[test]
    fn parse_bad_pointers() {
        let question = |name: &[u8]| {
            let mut m = header(5, 0x8180, 0);
            m.extend_from_slice(name);
            m.extend_from_slice(&[0, 1, 0, 1]);
            m
        };
        // Pointer to itself, and a two-step loop.
        assert_eq!(parse_response(&question(b"\xc0\x0c")), Err(DnsError::Pointer));
        assert_eq!(parse_response(&question(b"\x01a\xc0\x0c")), Err(DnsError::TooLong));
        assert_eq!(parse_response(&question(b"\xc0\x0e\xc0\x0c")), Err(DnsError::Pointer));
        // Past the end, into the header.
        assert_eq!(parse_response(&question(b"\xc0\xff")), Err(DnsError::Pointer));
        assert_eq!(parse_response(&question(b"\xff\xff")), Err(DnsError::Pointer));
        assert_eq!(parse_response(&question(b"\xc0\x02")), Err(DnsError::Pointer));
        // Pointer cut in half at the end.
        let mut m = header(5, 0x8180, 0);
        m.push(0xc0);
        assert_eq!(parse_response(&m), Err(DnsError::Truncated));
        // Extended label types.
        assert_eq!(parse_response(&question(b"\x41a\x00")), Err(DnsError::Malformed));
        // A loop in an answer's CNAME target.
        let mut m = question(EXAMPLE_COM);
        m[7] = 1;
        let at = (m.len() + 12) as u8;
        m.extend(rr(b"\xc0\x0c", TYPE_CNAME, 1, &[0xc0, at]));
        assert_eq!(parse_response(&m), Err(DnsError::Pointer));
    }

    #[test]
    fn parse_truncated() {
        for n in 0..HEADER_LEN {
            assert_eq!(parse_response(&A_RESP[..n]), Err(DnsError::Truncated));
        }
        // Label running past the end.
        let mut m = header(6, 0x8180, 0);
        m.extend_from_slice(b"\x07exam");
        assert_eq!(parse_response(&m), Err(DnsError::Truncated));
        // rdlength past the end.
        let mut m = A_RESP.to_vec();
        m[A_RESP.len() - 5] = 5;
        assert_eq!(parse_response(&m), Err(DnsError::Truncated));
        // More answers announced than present.
        let mut m = A_RESP.to_vec();
        m[7] = 2;
        assert_eq!(parse_response(&m), Err(DnsError::Truncated));
    }

    #[test]
    fn parse_malformed() {
        let with = |i: usize, b: u8| {
            let mut m = A_RESP.to_vec();
            m[i] = b;
            parse_response(&m)
        };
        assert_eq!(with(2, 0x01), Err(DnsError::Malformed)); // QR clear
        assert_eq!(with(5, 0), Err(DnsError::Malformed)); // no question
        assert_eq!(with(5, 2), Err(DnsError::Malformed)); // two questions
        assert_eq!(with(28, 3), Err(DnsError::Malformed)); // question class CH
        assert_eq!(with(14, b'.'), Err(DnsError::Malformed)); // dot inside a label
        assert_eq!(with(14, b' '), Err(DnsError::Malformed));

        // A with 5 bytes, AAAA with 4.
        let mut m = header(1, 0x8180, 1);
        m.extend_from_slice(EXAMPLE_COM);
        m.extend_from_slice(&[0, 1, 0, 1]);
        let mut a5 = m.clone();
        a5.extend(rr(b"\xc0\x0c", TYPE_A, 1, &[1, 2, 3, 4, 5]));
        assert_eq!(parse_response(&a5), Err(DnsError::Malformed));
        let mut aaaa4 = m.clone();
        aaaa4.extend(rr(b"\xc0\x0c", TYPE_AAAA, 1, &[1, 2, 3, 4]));
        assert_eq!(parse_response(&aaaa4), Err(DnsError::Malformed));
        // A CNAME target that runs past its rdlength.
        let mut cn = m.clone();
        cn.extend(rr(b"\xc0\x0c", TYPE_CNAME, 1, b"\x01a"));
        cn.extend_from_slice(b"\x00");
        assert_eq!(parse_response(&cn), Err(DnsError::Malformed));
    }

    #[test]
    fn parse_other_classes_and_types() {
        let mut m = header(8, 0x8180, 4);
        m.extend_from_slice(EXAMPLE_COM);
        m.extend_from_slice(&[0, 1, 0, 1]);
        // An A of class CH, whose rdata is not checked.
        let mut ch = rr(b"\xc0\x0c", TYPE_A, 1, &[1, 2, 3]);
        ch[5] = 3;
        m.extend(ch);
        m.extend(rr(b"\xc0\x0c", 16, 1, b"\x02hi")); // TXT
        m.extend(rr(b"\xc0\x0c", TYPE_A, 0x8000_0000, &[9, 9, 9, 9])); // TTL read as 0
        m.extend(rr(b"\x00", TYPE_A, 1, &[8, 8, 8, 8])); // the root
        let a = parse_response(&m).unwrap();
        let got: Vec<_> = a.answers.iter().map(|r| (r.name.as_str(), r.rtype, r.ttl, r.data.clone())).collect();
        assert_eq!(
            got,
            vec![
                ("example.com", TYPE_A, 1, RData::Other),
                ("example.com", 16, 1, RData::Other),
                ("example.com", TYPE_A, 0, RData::A(Ipv4Addr::new(9, 9, 9, 9))),
                ("", TYPE_A, 1, RData::A(Ipv4Addr::new(8, 8, 8, 8))),
            ]
        );
        assert_eq!(a.addresses(), (vec![IpAddr::V4(Ipv4Addr::new(9, 9, 9, 9))], Some(0)));
    }

    #[test]
    fn parse_stops_at_64_answers() {
        let mut m = header(1, 0x8180, 70);
        m.extend_from_slice(EXAMPLE_COM);
        m.extend_from_slice(&[0, 1, 0, 1]);
        for i in 0..64 {
            m.extend(rr(b"\xc0\x0c", TYPE_A, 1, &[10, 0, 0, i]));
        }
        m.extend_from_slice(b"\xff\xff not a record");
        let a = parse_response(&m).unwrap();
        assert_eq!(a.answers.len(), 64);
        assert_eq!(a.addresses().0.len(), 64);
    }

    #[test]
    fn parse_long_names() {
        // 253 dotted bytes through a pointer chain is fine, 255 is not.
        let l63 = [&[63u8][..], &[b'a'; 63]].concat();
        let mut m = header(1, 0x8180, 1);
        m.extend_from_slice(&l63); // at 12
        m.extend_from_slice(b"\x3d");
        m.extend_from_slice(&[b'b'; 61]);
        m.push(0);
        m.extend_from_slice(&[0, 1, 0, 1]);
        let mut ok = m.clone();
        ok.extend(rr(&[&l63[..], &l63, b"\xc0\x0c"].concat(), TYPE_A, 1, &[1, 1, 1, 1]));
        let a = parse_response(&ok).unwrap();
        assert_eq!(a.answers[0].name.len(), MAX_NAME);
        assert_eq!(a.qname.len(), 63 + 1 + 61);
        let mut long = m.clone();
        long.extend(rr(&[&l63[..], b"\x01x", &l63, b"\xc0\x0c"].concat(), TYPE_A, 1, &[1, 1, 1, 1]));
        assert_eq!(parse_response(&long), Err(DnsError::TooLong));
    }

    /// What any successful parse must satisfy.
    fn check(a: &Answer) {
        assert!(a.answers.len() <= 64);
        assert!(a.qname.len() <= MAX_NAME);
        for r in &a.answers {
            assert!(r.name.len() <= MAX_NAME && r.ttl <= i32::MAX as u32);
            assert!(!r.name.bytes().any(|b| b.is_ascii_uppercase()));
        }
        let (ips, ttl) = a.addresses();
        assert_eq!(ips.is_empty(), ttl.is_none());
    }

    #[test]
    fn prefixes_never_panic() {
        let full = cname_chain();
        let mut oks = 0;
        for n in 0..full.len() {
            match parse_response(&full[..n]) {
                Ok(a) => {
                    check(&a);
                    oks += 1;
                }
                Err(e) => assert_eq!(e, DnsError::Truncated, "prefix {n}"),
            }
        }
        assert_eq!(oks, 0);
        // With TC set every prefix past the question parses.
        let mut tc = full.clone();
        tc[2] |= 0x02;
        let ok = (0..=tc.len()).filter(|&n| parse_response(&tc[..n]).is_ok()).count();
        assert_eq!(ok, tc.len() + 1 - 33);
    }

    #[test]
    fn mutations_never_panic() {
        let base = cname_chain();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut oks = 0;
        for _ in 0..10_000 {
            let mut m = base.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(m.len() as u64) as usize;
                match rng.below(4) {
                    0 => m[i] ^= 1 << rng.below(8),
                    1 => m[i] = rng.next() as u8,
                    2 => m[i] = 0xc0 | rng.below(4) as u8,
                    _ => m.truncate(i + 1),
                }
            }
            if let Ok(a) = parse_response(&m) {
                check(&a);
                oks += 1;
            }
        }
        // Both outcomes are exercised.
        assert!(oks > 100 && oks < 9_900, "{oks}");
    }

    #[test]
    fn errors_display() {
        assert_eq!(DnsError::Pointer.to_string(), "bad compression pointer");
        assert_eq!(DnsError::Truncated.to_string(), "truncated message");
    }
}
