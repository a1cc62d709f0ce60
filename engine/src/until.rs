//! `receiveuntil`'s matcher: finds a boundary string in a stream of bytes
//! that arrives in pieces, in O(n) of the bytes scanned. The bytes of a
//! partial match are consumed into the state (`m` bytes of the pattern), so
//! a scan resumes where the last one stopped and the buffer is never
//! rescanned; the bytes before the boundary go to `out`.
//!
//! It returns what OpenResty's iterator returns, call for call: the same
//! chunks for a size-limited call (which can end up to the pattern's length
//! minus one past the size, when the bytes of a broken partial match are
//! given back at once), the same end of a limited call at the boundary
//! (`ended`: the next call gives nothing, `nil, nil, nil`). Where OpenResty
//! walks a table of recovery edges, this follows the KMP failure function:
//! both find the longest prefix of the pattern that ends the bytes seen.

/// Where a scan stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// Every byte given was consumed and the boundary is not complete.
    More,
    /// A size-limited call has its bytes (`out`).
    Chunk,
    /// The boundary: `out` holds the bytes before it (and it, if inclusive).
    Found,
}

/// One `receiveuntil` iterator's matcher.
#[derive(Debug)]
pub struct Until {
    pat: Box<[u8]>,
    /// `fail[i]`: the longest proper border of `pat[..=i]`.
    fail: Box<[u32]>,
    /// Bytes of the pattern matched so far (consumed, not yet in `out`).
    m: usize,
    inclusive: bool,
    /// A size-limited call reached the boundary: the next call returns nothing.
    pub ended: bool,
    /// The running call's size limit (`limited`) and what is left of it.
    limited: bool,
    rest: usize,
    /// The running call's bytes.
    out: Vec<u8>,
}

/// `out` keeps at most this much storage between calls.
const OUT_KEPT: usize = 64 * 1024;

impl Until {
    /// A matcher for `pat`, which is not empty.
    pub fn new(pat: &[u8], inclusive: bool) -> Until {
        assert!(!pat.is_empty(), "an empty boundary");
        assert!(pat.len() < u32::MAX as usize, "a boundary too long");
        let mut fail = vec![0u32; pat.len()];
        let mut k = 0;
        for i in 1..pat.len() {
            while k > 0 && pat[i] != pat[k] {
                k = fail[k - 1] as usize;
            }
            if pat[i] == pat[k] {
                k += 1;
            }
            fail[i] = k as u32;
        }
        Until {
            pat: pat.into(),
            fail: fail.into(),
            m: 0,
            inclusive,
            ended: false,
            limited: false,
            rest: 0,
            out: Vec::new(),
        }
    }

    pub fn pattern(&self) -> &[u8] {
        &self.pat
    }

    /// Starts a call: `size` bytes at most (about: see the module), 0 for no
    /// limit. What an earlier call left in `out` is dropped.
    pub fn begin(&mut self, size: usize) {
        self.out.clear();
        (self.limited, self.rest) = (size > 0, size);
    }

    /// The call's bytes so far.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Bytes held for the running call: its output and the partial match.
    pub fn held(&self) -> usize {
        self.out.len() + self.m
    }

    /// The partial result of a call that timed out: its output. The partial
    /// match stays, for the next call to finish or give back.
    pub fn timed_out(&mut self) -> &[u8] {
        &self.out
    }

    /// The partial result of a call the stream's end (or an error) ended:
    /// its output and the bytes of the partial match, which are the stream's
    /// too. (OpenResty drops the latter.) The matcher starts afresh.
    pub fn ended_stream(&mut self) -> &[u8] {
        let m = std::mem::take(&mut self.m);
        self.out.extend_from_slice(&self.pat[..m]);
        &self.out
    }

    /// Forgets the call and the partial match (the stream went past a limit).
    pub fn reset(&mut self) {
        self.m = 0;
        self.out.clear();
    }

    /// Empties `out` once its bytes are copied out, keeping modest storage.
    pub fn release(&mut self) {
        self.out.clear();
        if self.out.capacity() > OUT_KEPT {
            self.out = Vec::new();
        }
    }

    /// The longest prefix of the pattern ending `pat[..m]` + `c`, where `c`
    /// breaks the match (`c != pat[m]`). Amortized O(1): each step down the
    /// failure links undoes a byte of the match.
    fn next(&self, m: usize, c: u8) -> usize {
        let mut t = m;
        while t > 0 && self.pat[t] != c {
            t = self.fail[t - 1] as usize;
        }
        if self.pat[t] == c {
            t + 1
        } else {
            0
        }
    }

    /// Counts `k` given bytes against a limited call: whether it is done.
    fn spend(&mut self, k: usize) -> bool {
        if !self.limited {
            return false;
        }
        if self.rest <= k {
            self.rest = 0;
            return true;
        }
        self.rest -= k;
        false
    }

    /// Scans `data` from its start: how many of its bytes were consumed, and
    /// why it stopped. Bytes after a `Chunk` or `Found` are left for the next call.
    pub fn scan(&mut self, data: &[u8]) -> (usize, Scan) {
        let n = self.pat.len();
        let first = self.pat[0];
        let mut i = 0;
        while i < data.len() {
            if self.m == 0 {
                // Straight to the next byte that may start the boundary.
                let mut run = data[i..].iter().position(|&b| b == first).unwrap_or(data.len() - i);
                if self.limited {
                    run = run.min(self.rest);
                }
                self.out.extend_from_slice(&data[i..i + run]);
                i += run;
                if self.limited && run > 0 {
                    self.rest -= run;
                    if self.rest == 0 {
                        return (i, Scan::Chunk);
                    }
                }
                if i == data.len() {
                    break;
                }
            }
            let c = data[i];
            if c == self.pat[self.m] {
                self.m += 1;
                i += 1;
                if self.m == n {
                    self.m = 0;
                    self.ended = self.limited;
                    if self.inclusive {
                        self.out.extend_from_slice(&self.pat);
                    }
                    return (i, Scan::Found);
                }
                continue;
            }
            // The match breaks: its bytes that no longer prefix the
            // boundary are the stream's. As OpenResty, a fall back to a
            // match of two or more consumes `c`; else `c` is looked at
            // again from nothing.
            let t = self.next(self.m, c);
            let k = if t >= 2 { self.m + 1 - t } else { self.m };
            self.out.extend_from_slice(&self.pat[..k]);
            if t >= 2 {
                i += 1;
                self.m = t;
            } else {
                self.m = 0;
            }
            if self.spend(k) {
                return (i, Scan::Chunk);
            }
        }
        (i, Scan::More)
    }
}

/// The matchers of live iterators, by key: a generational slab.
#[derive(Default, Debug)]
pub struct Matchers {
    slots: Vec<(u32, Option<Until>)>,
    free: Vec<u32>,
}

/// A matcher's slot and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    index: u32,
    generation: u32,
}

impl Matchers {
    pub fn insert(&mut self, u: Until) -> Key {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push((0, None));
            (self.slots.len() - 1) as u32
        });
        let slot = &mut self.slots[index as usize];
        slot.1 = Some(u);
        Key { index, generation: slot.0 }
    }

    pub fn get(&mut self, k: Key) -> Option<&mut Until> {
        match self.slots.get_mut(k.index as usize) {
            Some((g, Some(u))) if *g == k.generation => Some(u),
            _ => None,
        }
    }

    pub fn remove(&mut self, k: Key) -> Option<Until> {
        self.get(k)?;
        let slot = &mut self.slots[k.index as usize];
        slot.0 = slot.0.wrapping_add(1);
        self.free.push(k.index);
        slot.1.take()
    }

    /// Live matchers.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// What one call returned: its bytes, and whether it ended at the boundary.
    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Got {
        Data(Vec<u8>, Scan),
        /// The call after a limited one that reached the boundary.
        Nothing,
        /// The stream ended: the partial result.
        Closed(Vec<u8>),
    }

    /// Calls with `sizes` in turn (cycling) over `stream` arriving in
    /// `reads`-sized pieces, until the stream is used up.
    fn run(u: &mut Until, stream: &[u8], reads: &[usize], sizes: &[usize]) -> Vec<Got> {
        let (mut avail, mut pos, mut r, mut got) = (Vec::new(), 0, 0, Vec::new());
        for call in 0.. {
            if u.ended {
                u.ended = false;
                got.push(Got::Nothing);
                continue;
            }
            u.begin(sizes[call % sizes.len()]);
            loop {
                let (k, s) = u.scan(&avail);
                avail.drain(..k);
                if s != Scan::More {
                    got.push(Got::Data(u.output().to_vec(), s));
                    u.release();
                    break;
                }
                if pos == stream.len() {
                    got.push(Got::Closed(u.ended_stream().to_vec()));
                    return got;
                }
                let n = reads[r % reads.len()].clamp(1, stream.len() - pos);
                r += 1;
                avail.extend_from_slice(&stream[pos..pos + n]);
                pos += n;
            }
        }
        unreachable!()
    }

    /// The oracle: the stream cut at each leftmost boundary, naively found.
    fn naive(pat: &[u8], stream: &[u8]) -> Vec<Vec<u8>> {
        let (mut segs, mut pos) = (Vec::new(), 0);
        loop {
            match (pos..=stream.len().saturating_sub(pat.len())).find(|&i| stream[i..].starts_with(pat)) {
                Some(i) if stream.len() >= pat.len() => {
                    segs.push(stream[pos..i].to_vec());
                    pos = i + pat.len();
                }
                _ => {
                    segs.push(stream[pos..].to_vec());
                    return segs;
                }
            }
        }
    }

    /// The calls' bytes joined into segments, one per boundary (inclusive
    /// ones checked and stripped).
    fn segments(got: &[Got], pat: &[u8], inclusive: bool) -> Vec<Vec<u8>> {
        let (mut segs, mut cur) = (Vec::new(), Vec::new());
        for g in got {
            match g {
                Got::Data(d, s) => {
                    cur.extend_from_slice(d);
                    if *s == Scan::Found {
                        if inclusive {
                            assert!(cur.ends_with(pat), "an inclusive chunk ends with the boundary");
                            cur.truncate(cur.len() - pat.len());
                        }
                        segs.push(std::mem::take(&mut cur));
                    }
                }
                Got::Nothing => {}
                Got::Closed(d) => {
                    cur.extend_from_slice(d);
                    segs.push(std::mem::take(&mut cur));
                }
            }
        }
        segs
    }

    fn data(d: &[u8], s: Scan) -> Got {
        Got::Data(d.to_vec(), s)
    }

    #[test]
    fn failure_function() {
        assert_eq!(&*Until::new(b"aabaaab", false).fail, &[0, 1, 0, 1, 2, 2, 3]);
        assert_eq!(&*Until::new(b"--abc", false).fail, &[0, 1, 0, 0, 0]);
    }

    #[test]
    fn self_overlapping_boundaries() {
        let mut u = Until::new(b"aab", false);
        let got = run(&mut u, b"xaaabyaab", &[1], &[0]);
        assert_eq!(got, [data(b"xa", Scan::Found), data(b"y", Scan::Found), Got::Closed(b"".to_vec())]);
        let mut u = Until::new(b"--abc", false);
        let got = run(&mut u, b"---abc--ab--abc-", &[100], &[0]);
        assert_eq!(got, [data(b"-", Scan::Found), data(b"--ab", Scan::Found), Got::Closed(b"-".to_vec())]);
    }

    #[test]
    fn the_closing_partial_keeps_the_started_boundary() {
        let mut u = Until::new(b"--abc", false);
        let got = run(&mut u, b"xy--ab", &[2], &[0]);
        assert_eq!(got, [Got::Closed(b"xy--ab".to_vec())]);
    }

    /// OpenResty's chunks for a limited call, traced by hand through its
    /// ngx_http_lua_socket_read_until.
    #[test]
    fn limited_calls_as_openresty() {
        // The boundary right after a full chunk: "" at it, then nothing.
        let mut u = Until::new(b"--", false);
        let got = run(&mut u, b"ab--cd", &[100], &[2]);
        let want = [data(b"ab", Scan::Chunk), data(b"", Scan::Found), Got::Nothing, data(b"cd", Scan::Chunk)];
        assert_eq!(got, [&want[..], &[Got::Closed(Vec::new())]].concat());
        // A broken match is given back whole, past the size.
        let mut u = Until::new(b"abc", false);
        let got = run(&mut u, b"xabdabc", &[100], &[1]);
        let want = [data(b"x", Scan::Chunk), data(b"ab", Scan::Chunk), data(b"d", Scan::Chunk), data(b"", Scan::Found)];
        assert_eq!(got, [&want[..], &[Got::Nothing, Got::Closed(Vec::new())]].concat());
        // Inclusive: the boundary comes with the last chunk.
        let mut u = Until::new(b"--", true);
        let got = run(&mut u, b"abc--", &[1], &[2]);
        assert_eq!(got, [data(b"ab", Scan::Chunk), data(b"c--", Scan::Found), Got::Nothing, Got::Closed(Vec::new())]);
    }

    #[test]
    fn the_slab_outlives_its_keys_harmlessly() {
        let mut m = Matchers::default();
        let a = m.insert(Until::new(b"x", false));
        assert!(m.remove(a).is_some());
        assert!(m.remove(a).is_none());
        let b = m.insert(Until::new(b"y", false));
        assert!(m.get(a).is_none());
        assert_eq!(m.get(b).unwrap().pattern(), b"y");
        assert_eq!(m.len(), 1);
    }

    /// Random boundaries over small alphabets (overlaps everywhere), random
    /// reads and sizes: the bytes between boundaries are the naive search's,
    /// a limited call's chunk passes its size by less than the boundary's
    /// length, and the work is linear.
    #[test]
    fn random_streams_against_naive_search() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let k = 2 + rng.below(3) as u8;
            let byte = |rng: &mut Rng| b'a' + rng.below(u64::from(k)) as u8;
            let pat: Vec<u8> = (0..1 + rng.below(7)).map(|_| byte(&mut rng)).collect();
            let stream: Vec<u8> = (0..rng.spread(8)).map(|_| byte(&mut rng)).collect();
            let reads: Vec<usize> = (0..1 + rng.below(4)).map(|_| 1 + rng.spread(5) as usize).collect();
            let sizes: Vec<usize> = (0..1 + rng.below(4)).map(|_| rng.spread(4) as usize).collect();
            let inclusive = rng.below(2) == 1;
            let mut u = Until::new(&pat, inclusive);
            let got = run(&mut u, &stream, &reads, &sizes);
            assert_eq!(segments(&got, &pat, inclusive), naive(&pat, &stream), "{pat:?} in {stream:?}");
            for (call, g) in got.iter().enumerate() {
                let size = sizes[call % sizes.len()];
                if let (Got::Data(d, s), true) = (g, size > 0) {
                    let boundary = if inclusive && *s == Scan::Found { pat.len() } else { 0 };
                    assert!(d.len() < size + pat.len() + boundary, "{d:?} for size {size}, {pat:?}");
                    if *s == Scan::Chunk {
                        assert!(d.len() >= size, "a chunk ends at its size");
                    }
                }
            }
        }
    }

    #[test]
    fn linear_in_the_bytes_scanned() {
        // The classic worst case of a naive search: a^n against a^(k)b.
        let mut u = Until::new(&[&[b'a'; 1000][..], b"b"].concat(), false);
        let stream = vec![b'a'; 1 << 20];
        let start = std::time::Instant::now();
        u.begin(0);
        for piece in stream.chunks(4096) {
            assert_eq!(u.scan(piece), (piece.len(), Scan::More));
        }
        assert_eq!(u.held(), 1 << 20);
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "quadratic?");
    }
}
