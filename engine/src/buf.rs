//! Receive patterns and the per-socket receive buffer that satisfies them.

/// What `receive` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `'*l'`: one line, LF terminated, CRs dropped.
    Line,
    /// `'*a'`: everything until the peer closes.
    All,
    /// A byte count: exactly that many bytes.
    Bytes(usize),
}

impl Pattern {
    /// A named pattern: `*l`, `l`, `*a` or `a`. (A numeral is a count; the
    /// Lua layer converts it to a number as Lua does.)
    pub fn parse(s: &[u8]) -> Option<Pattern> {
        match s {
            b"*l" | b"l" => Some(Pattern::Line),
            b"*a" | b"a" => Some(Pattern::All),
            _ => None,
        }
    }

    /// A byte count: a whole number from 0 up.
    pub fn count(n: f64) -> Option<Pattern> {
        // `usize::MAX as f64` is 2^64, one past the largest count: strictly below it.
        (n >= 0.0 && n.fract() == 0.0 && n < usize::MAX as f64).then_some(Pattern::Bytes(n as usize))
    }
}

/// Buffered bytes read from a socket and not yet returned to Lua.
///
/// Bytes live in `data[head..]`; `scanned` counts how many of them are known to
/// hold no LF, so a line search resumes where the last one stopped. An empty
/// buffer can give its storage up (`release`) and take another's (`lend`), so
/// idle sockets hold none.
#[derive(Default, Debug)]
pub struct RecvBuf {
    data: Vec<u8>,
    head: usize,
    scanned: usize,
}

/// The first chunk size read into an empty buffer.
pub const CHUNK: usize = 16 * 1024;

/// The largest storage `release` keeps for reuse.
const POOLED: usize = 4 * CHUNK;

impl RecvBuf {
    pub fn new() -> RecvBuf {
        RecvBuf::default()
    }

    /// Bytes buffered.
    pub fn len(&self) -> usize {
        self.data.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gives the storage up if nothing is buffered: to `pool` if that has none
    /// and it is not oversized, else back to the allocator.
    pub fn release(&mut self, pool: &mut Vec<u8>) {
        if !self.is_empty() || self.data.capacity() == 0 {
            return;
        }
        (self.head, self.scanned) = (0, 0);
        let v = std::mem::take(&mut self.data);
        if pool.capacity() == 0 && v.capacity() <= POOLED {
            *pool = v;
            pool.clear();
        }
    }

    /// The buffered bytes, for a search made outside (`until`).
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.head..]
    }

    /// Consumes the first `n` buffered bytes.
    pub fn skip(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.consume(n);
    }

    /// Takes `pool`'s storage if this buffer has none.
    pub fn lend(&mut self, pool: &mut Vec<u8>) {
        if self.data.capacity() == 0 {
            self.data = std::mem::take(pool);
        }
    }

    /// Readies the buffer for an append and returns it with the room to fill:
    /// `want` bytes if known (a byte count still missing), else a chunk.
    pub fn spare(&mut self, want: Option<usize>) -> (&mut Vec<u8>, usize) {
        // Move the unread bytes to the front when that is free (none left) or
        // pays for itself (they are fewer than those consumed before them).
        if self.head > 0 && (self.head == self.data.len() || self.head >= self.data.capacity() / 2) {
            self.data.drain(..self.head);
            self.head = 0;
        }
        let room = match want {
            Some(n) => n.clamp(1, 1 << 20),
            None => (self.data.capacity() - self.data.len()).max(CHUNK.max(self.len())),
        };
        (&mut self.data, room)
    }

    /// Whether what `p` asks for is buffered, and its length as buffered (a
    /// line's without its LF, CRs included). `take` then takes it at once.
    pub fn find(&mut self, p: Pattern, eof: bool) -> Option<usize> {
        match p {
            Pattern::Line => {
                let start = self.head + self.scanned;
                match self.data[start..].iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        // Everything before the LF holds no LF: `take` finds it at once.
                        self.scanned += i;
                        Some(self.scanned)
                    }
                    None => {
                        self.scanned = self.len();
                        None
                    }
                }
            }
            Pattern::All => eof.then_some(self.len()),
            Pattern::Bytes(n) => (n <= self.len()).then_some(n),
        }
    }

    /// Takes what `find` just found, `n` bytes as it measured them (a line's
    /// LF after them is consumed too), without searching again.
    pub fn take_found(&mut self, p: Pattern, n: usize) -> &[u8] {
        match p {
            Pattern::Line => {
                let end = self.head + n;
                self.take_line(end, end + 1)
            }
            _ => self.take_raw(n),
        }
    }

    /// The length of the line of `n` buffered bytes once its CRs are dropped.
    pub fn line_len(&self, n: usize) -> usize {
        n - self.data[self.head..self.head + n].iter().filter(|&&b| b == b'\r').count()
    }

    /// Takes what `p` asks for if it is buffered. `eof`: the peer has closed, so
    /// `All` is complete.
    pub fn take(&mut self, p: Pattern, eof: bool) -> Option<&[u8]> {
        match p {
            Pattern::Line => {
                let start = self.head + self.scanned;
                match self.data[start..].iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        let end = start + i;
                        Some(self.take_line(end, end + 1))
                    }
                    None => {
                        self.scanned = self.len();
                        None
                    }
                }
            }
            Pattern::All if eof => Some(self.take_raw(self.len())),
            Pattern::All => None,
            Pattern::Bytes(n) if n <= self.len() => Some(self.take_raw(n)),
            Pattern::Bytes(_) => None,
        }
    }

    /// Takes every buffered byte: the partial result of a failed receive.
    /// A partial line comes without its CRs, like a whole one.
    pub fn take_partial(&mut self, p: Pattern) -> &[u8] {
        match p {
            Pattern::Line => self.take_line(self.data.len(), self.data.len()),
            _ => self.take_raw(self.len()),
        }
    }

    fn take_raw(&mut self, n: usize) -> &[u8] {
        let start = self.head;
        self.consume(n);
        &self.data[start..start + n]
    }

    /// Takes `data[head..end]` without CRs, consuming through `next`. The CRs
    /// are squeezed out in place: those bytes are consumed anyway.
    fn take_line(&mut self, end: usize, next: usize) -> &[u8] {
        let start = self.head;
        self.consume(next - start);
        let line = &mut self.data[start..end];
        let first_cr = line.iter().position(|&b| b == b'\r').unwrap_or(line.len());
        let mut n = first_cr;
        for i in first_cr..line.len() {
            if line[i] != b'\r' {
                line[n] = line[i];
                n += 1;
            }
        }
        &self.data[start..start + n]
    }

    fn consume(&mut self, n: usize) {
        self.head += n;
        self.scanned = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(b: &mut RecvBuf, bytes: &[u8]) {
        let (v, _) = b.spare(None);
        v.extend_from_slice(bytes);
    }

    #[test]
    fn patterns() {
        assert_eq!(Pattern::parse(b"*l"), Some(Pattern::Line));
        assert_eq!(Pattern::parse(b"l"), Some(Pattern::Line));
        assert_eq!(Pattern::parse(b"*a"), Some(Pattern::All));
        assert_eq!(Pattern::parse(b"a"), Some(Pattern::All));
        assert_eq!(Pattern::parse(b"12"), None);
        assert_eq!(Pattern::parse(b"*x"), None);
        assert_eq!(Pattern::parse(b""), None);
        assert_eq!(Pattern::count(-1.0), None);
        assert_eq!(Pattern::count(1.5), None);
        assert_eq!(Pattern::count(f64::NAN), None);
        assert_eq!(Pattern::count(f64::INFINITY), None);
        assert_eq!(Pattern::count(0.0), Some(Pattern::Bytes(0)));
        assert_eq!(Pattern::count(18446744073709551616.0), None);
    }

    #[test]
    fn lines_drop_every_cr_and_resume_scanning() {
        let mut b = RecvBuf::new();
        feed(&mut b, b"a\rb");
        assert_eq!(b.take(Pattern::Line, false), None);
        assert_eq!(b.scanned, 3);
        feed(&mut b, b"c\r\nnext\nrest");
        assert_eq!(b.take(Pattern::Line, false).unwrap(), b"abc");
        assert_eq!(b.take(Pattern::Line, false).unwrap(), b"next");
        assert_eq!(b.take(Pattern::Line, false), None);
        assert_eq!(b.take_partial(Pattern::Line), b"rest");
        assert!(b.is_empty());
    }

    #[test]
    fn counts_and_all() {
        let mut b = RecvBuf::new();
        feed(&mut b, b"hello world");
        assert_eq!(b.take(Pattern::Bytes(12), false), None);
        assert_eq!(b.take(Pattern::Bytes(5), false).unwrap(), b"hello");
        assert_eq!(b.take(Pattern::Bytes(0), false).unwrap(), b"");
        assert_eq!(b.take(Pattern::All, false), None);
        assert_eq!(b.take(Pattern::All, true).unwrap(), b" world");
        assert_eq!(b.take(Pattern::All, true).unwrap(), b"");
    }

    #[test]
    fn an_empty_buffer_gives_its_storage_up() {
        let (mut b, mut pool) = (RecvBuf::new(), Vec::new());
        feed(&mut b, b"+PONG\r\nrest");
        assert_eq!(b.take(Pattern::Line, false), Some(&b"+PONG"[..]));
        b.release(&mut pool);
        assert_eq!((b.len(), pool.capacity()), (4, 0));
        assert_eq!(b.take(Pattern::Bytes(4), false), Some(&b"rest"[..]));
        b.release(&mut pool);
        assert_eq!(b.data.capacity(), 0);
        assert!(pool.is_empty() && pool.capacity() > 0);
        let p = pool.as_ptr();
        b.lend(&mut pool);
        assert_eq!((b.data.as_ptr(), pool.capacity()), (p, 0));
        feed(&mut b, b"x\r\ry\rz\n");
        assert_eq!(b.data.as_ptr(), p);
        assert_eq!(b.take(Pattern::Line, false), Some(&b"xyz"[..]));
        // The pool holds one buffer: another empty one goes back to the allocator.
        let mut other = RecvBuf::new();
        feed(&mut other, b"z");
        pool = vec![0; 8];
        other.take(Pattern::Bytes(1), false);
        other.release(&mut pool);
        assert_eq!((other.data.capacity(), pool.len()), (0, 8));
    }

    #[test]
    fn spare_compacts_consumed_front() {
        let mut b = RecvBuf::new();
        feed(&mut b, &[7; 100]);
        b.take(Pattern::Bytes(60), false);
        let (v, room) = b.spare(Some(10));
        assert_eq!((v.len(), room), (40, 10));
        assert_eq!(b.take(Pattern::Bytes(40), false).unwrap(), &[7; 40][..]);
    }
}
