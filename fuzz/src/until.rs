//! `receiveuntil`'s matcher (`coevent_engine::until::Until`) over a stream that
//! arrives in pieces, against two oracles: a naive search (the bytes between
//! boundaries) and a byte-at-a-time model of OpenResty's
//! ngx_http_lua_socket_read_until with its recovery edges computed naively
//! (the exact chunks of size-limited calls).
//!
//! Input: `[len][flags][pattern: len % 16 + 1 bytes][nops][ops: nops bytes][stream]`.
//! flags: bit 0 inclusive; bits 1-2 the alphabet (0: bytes as they are, else
//! 1 + that many letters, so boundaries overlap often). An op: low bit 0,
//! the next read is `op >> 1` bytes (0: all that is left); low bit 1, the
//! next call's size is `op >> 2` (0: no limit), and with bit 1 set, that
//! call times out when it would wait (its partial returned, the match kept;
//! the bytes it waited for arrive for the next call).

use coevent_engine::until::{Scan, Until};

#[derive(Debug, PartialEq, Eq, Clone)]
enum Got {
    Data(Vec<u8>, bool),
    Nothing,
    Timeout(Vec<u8>),
    Closed(Vec<u8>),
}

/// OpenResty's read_until, byte by byte.
struct Model {
    pat: Vec<u8>,
    state: usize,
    ended: bool,
    inclusive: bool,
    limited: bool,
    rest: usize,
    out: Vec<u8>,
}

impl Model {
    /// The recovery edge from `state` on `c`: the longest prefix of two or
    /// more ending `pat[..state]` + `c`, found naively.
    fn edge(&self, state: usize, c: u8) -> Option<usize> {
        let mut seen = self.pat[..state].to_vec();
        seen.push(c);
        (2..=state).rev().find(|&t| seen.ends_with(&self.pat[..t]))
    }

    fn scan(&mut self, data: &[u8]) -> (usize, Scan) {
        let mut i = 0;
        while i < data.len() {
            let c = data[i];
            if c == self.pat[self.state] {
                i += 1;
                self.state += 1;
                if self.state == self.pat.len() {
                    self.ended = self.limited;
                    self.state = 0;
                    if self.inclusive {
                        self.out.extend_from_slice(&self.pat);
                    }
                    return (i, Scan::Found);
                }
                continue;
            }
            if self.state == 0 {
                self.out.push(c);
                i += 1;
                if self.limited {
                    self.rest -= 1;
                    if self.rest == 0 {
                        return (i, Scan::Chunk);
                    }
                }
                continue;
            }
            let (k, t) = match self.edge(self.state, c) {
                Some(t) => {
                    i += 1;
                    (self.state + 1 - t, t)
                }
                None => (self.state, 0),
            };
            self.out.extend_from_slice(&self.pat[..k]);
            self.state = t;
            if self.limited {
                if self.rest <= k {
                    self.rest = 0;
                    return (i, Scan::Chunk);
                }
                self.rest -= k;
            }
        }
        (i, Scan::More)
    }
}

/// What both matchers are driven through.
trait Matcher {
    fn ended(&mut self) -> &mut bool;
    fn begin(&mut self, size: usize);
    fn scan(&mut self, data: &[u8]) -> (usize, Scan);
    fn output(&mut self) -> Vec<u8>;
    fn closed(&mut self) -> Vec<u8>;
}

impl Matcher for Until {
    fn ended(&mut self) -> &mut bool {
        &mut self.ended
    }
    fn begin(&mut self, size: usize) {
        Until::begin(self, size)
    }
    fn scan(&mut self, data: &[u8]) -> (usize, Scan) {
        Until::scan(self, data)
    }
    fn output(&mut self) -> Vec<u8> {
        let v = Until::output(self).to_vec();
        self.release();
        v
    }
    fn closed(&mut self) -> Vec<u8> {
        self.ended_stream().to_vec()
    }
}

impl Matcher for Model {
    fn ended(&mut self) -> &mut bool {
        &mut self.ended
    }
    fn begin(&mut self, size: usize) {
        self.out.clear();
        (self.limited, self.rest) = (size > 0, size);
    }
    fn scan(&mut self, data: &[u8]) -> (usize, Scan) {
        Model::scan(self, data)
    }
    fn output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
    /// What coevent returns (OpenResty would drop the partial match).
    fn closed(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.out);
        v.extend_from_slice(&self.pat[..std::mem::take(&mut self.state)]);
        v
    }
}

/// A read size or a call: (size, times out).
enum Op {
    Read(usize),
    Call(usize, bool),
}

/// Runs `m` over `stream` with the reads and calls of `ops` (each list
/// cycled on its own) until the stream is used up; at most `budget` calls.
fn run(m: &mut dyn Matcher, stream: &[u8], ops: &[Op]) -> Vec<Got> {
    let reads: Vec<usize> = ops.iter().filter_map(|o| if let Op::Read(n) = o { Some(*n) } else { None }).collect();
    let calls: Vec<(usize, bool)> =
        ops.iter().filter_map(|o| if let Op::Call(s, t) = o { Some((*s, *t)) } else { None }).collect();
    let calls = if calls.is_empty() { vec![(0, false)] } else { calls };
    let (mut avail, mut pos, mut r, mut got) = (Vec::<u8>::new(), 0, 0, Vec::new());
    // Each call consumes a byte or ends the stream, or is a timeout or a
    // `Nothing`, which are never all of a cycle: this bounds the loop.
    for call in 0..4 * (stream.len() + 2) * (calls.len() + 1) {
        if *m.ended() {
            *m.ended() = false;
            got.push(Got::Nothing);
            continue;
        }
        let (size, times_out) = calls[call % calls.len()];
        m.begin(size);
        loop {
            let (k, s) = m.scan(&avail);
            assert!(k <= avail.len());
            avail.drain(..k);
            if s != Scan::More {
                got.push(Got::Data(m.output(), s == Scan::Found));
                break;
            }
            if pos == stream.len() {
                got.push(Got::Closed(m.closed()));
                return got;
            }
            let timed_out = times_out;
            let want = reads.get(r % reads.len().max(1)).copied().unwrap_or(0);
            r += 1;
            let n = if want == 0 { stream.len() - pos } else { want.min(stream.len() - pos) };
            avail.extend_from_slice(&stream[pos..pos + n]);
            pos += n;
            if timed_out {
                // The bytes came too late for this call: the next one has them.
                got.push(Got::Timeout(m.output()));
                break;
            }
        }
    }
    got
}

/// The stream cut at each leftmost boundary, naively found.
fn naive(pat: &[u8], stream: &[u8]) -> Vec<Vec<u8>> {
    let (mut segs, mut pos) = (Vec::new(), 0);
    while let Some(i) = (pos..stream.len()).find(|&i| stream[i..].starts_with(pat)) {
        segs.push(stream[pos..i].to_vec());
        pos = i + pat.len();
    }
    segs.push(stream[pos..].to_vec());
    segs
}

pub fn check(data: &[u8]) {
    let [len, flags, rest @ ..] = data else { return };
    let n = usize::from(len % 16) + 1;
    if rest.len() < n + 1 {
        return;
    }
    let letters = (flags >> 1) & 3;
    let map = |b: u8| if letters == 0 { b } else { b'a' + b % (letters + 1) };
    let pat: Vec<u8> = rest[..n].iter().map(|&b| map(b)).collect();
    let nops = usize::from(rest[n]).min(rest.len() - n - 1);
    let ops: Vec<Op> = rest[n + 1..n + 1 + nops]
        .iter()
        .map(|&o| if o & 1 == 0 { Op::Read(usize::from(o >> 1)) } else { Op::Call(usize::from(o >> 2), o & 2 != 0) })
        .collect();
    let stream: Vec<u8> = rest[n + 1 + nops..].iter().map(|&b| map(b)).collect();
    let inclusive = flags & 1 == 1;

    let mut u = Until::new(&pat, inclusive);
    let got = run(&mut u, &stream, &ops);
    let mut model =
        Model { pat: pat.clone(), state: 0, ended: false, inclusive, limited: false, rest: 0, out: Vec::new() };
    let want = run(&mut model, &stream, &ops);
    assert_eq!(got, want, "the calls' results differ from OpenResty's for {pat:?}");

    // The bytes between boundaries are the naive search's; nothing is lost.
    let (mut segs, mut cur) = (Vec::new(), Vec::new());
    let mut closed = false;
    for g in &got {
        match g {
            Got::Data(d, found) => {
                cur.extend_from_slice(d);
                if *found {
                    if inclusive {
                        assert!(cur.ends_with(&pat), "an inclusive result ends with the boundary");
                        cur.truncate(cur.len() - pat.len());
                    }
                    segs.push(std::mem::take(&mut cur));
                }
            }
            Got::Timeout(d) => cur.extend_from_slice(d),
            Got::Nothing => {}
            Got::Closed(d) => {
                cur.extend_from_slice(d);
                segs.push(std::mem::take(&mut cur));
                closed = true;
            }
        }
    }
    if closed {
        assert_eq!(segs, naive(&pat, &stream), "segments of {stream:?} at {pat:?}");
    }
}
