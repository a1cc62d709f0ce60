//! Receive patterns and the per-socket receive buffer that satisfies them.

use std::borrow::Cow;

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
    /// Parses a string pattern: `*l`, `l`, `*a`, `a`, or a decimal count (Lua coerces).
    pub fn parse(s: &[u8]) -> Option<Pattern> {
        match s {
            b"*l" | b"l" => Some(Pattern::Line),
            b"*a" | b"a" => Some(Pattern::All),
            _ => Pattern::count(lua_number(s)?),
        }
    }

    /// A byte count: a whole number from 0 up.
    pub fn count(n: f64) -> Option<Pattern> {
        // `usize::MAX as f64` is 2^64, one past the largest count: strictly below it.
        (n >= 0.0 && n.fract() == 0.0 && n < usize::MAX as f64).then_some(Pattern::Bytes(n as usize))
    }
}

/// A decimal number in a string, as Lua converts one: around it only the C
/// locale's spaces (isspace), not Unicode ones.
pub fn lua_number(s: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(s).ok()?;
    s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b').parse().ok()
}

/// Buffered bytes read from a socket and not yet returned to Lua.
///
/// Bytes live in `data[head..]`; `scanned` counts how many of them are known to
/// hold no LF, so a line search resumes where the last one stopped.
#[derive(Default, Debug)]
pub struct RecvBuf {
    data: Vec<u8>,
    head: usize,
    scanned: usize,
    line: Vec<u8>,
}

/// The first chunk size read into an empty buffer.
pub const CHUNK: usize = 16 * 1024;

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

    /// Takes what `p` asks for if it is buffered. `eof`: the peer has closed, so
    /// `All` is complete.
    pub fn take(&mut self, p: Pattern, eof: bool) -> Option<Cow<'_, [u8]>> {
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
    pub fn take_partial(&mut self, p: Pattern) -> Cow<'_, [u8]> {
        match p {
            Pattern::Line => self.take_line(self.data.len(), self.data.len()),
            _ => self.take_raw(self.len()),
        }
    }

    fn take_raw(&mut self, n: usize) -> Cow<'_, [u8]> {
        let start = self.head;
        self.consume(n);
        Cow::Borrowed(&self.data[start..start + n])
    }

    /// Takes `data[head..end]` without CRs, consuming through `next`.
    fn take_line(&mut self, end: usize, next: usize) -> Cow<'_, [u8]> {
        let start = self.head;
        self.consume(next - start);
        let line = &self.data[start..end];
        if !line.contains(&b'\r') {
            return Cow::Borrowed(line);
        }
        self.line.clear();
        self.line.extend(line.iter().filter(|&&b| b != b'\r'));
        Cow::Borrowed(&self.line)
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
        assert_eq!(Pattern::parse(b"12"), Some(Pattern::Bytes(12)));
        assert_eq!(Pattern::parse(b" 0x10 "), None);
        assert_eq!(Pattern::parse(b"*x"), None);
        assert_eq!(Pattern::parse(b""), None);
        assert_eq!(Pattern::count(-1.0), None);
        assert_eq!(Pattern::count(1.5), None);
        assert_eq!(Pattern::count(f64::NAN), None);
        assert_eq!(Pattern::count(f64::INFINITY), None);
        assert_eq!(Pattern::count(0.0), Some(Pattern::Bytes(0)));
        assert_eq!(Pattern::count(18446744073709551616.0), None);
        assert_eq!(Pattern::parse("\u{a0}12".as_bytes()), None);
        assert_eq!(Pattern::parse(b"\t12\x0b\n"), Some(Pattern::Bytes(12)));
    }

    #[test]
    fn lines_drop_every_cr_and_resume_scanning() {
        let mut b = RecvBuf::new();
        feed(&mut b, b"a\rb");
        assert_eq!(b.take(Pattern::Line, false), None);
        assert_eq!(b.scanned, 3);
        feed(&mut b, b"c\r\nnext\nrest");
        assert_eq!(b.take(Pattern::Line, false).unwrap().as_ref(), b"abc");
        assert_eq!(b.take(Pattern::Line, false).unwrap().as_ref(), b"next");
        assert_eq!(b.take(Pattern::Line, false), None);
        assert_eq!(b.take_partial(Pattern::Line).as_ref(), b"rest");
        assert!(b.is_empty());
    }

    #[test]
    fn counts_and_all() {
        let mut b = RecvBuf::new();
        feed(&mut b, b"hello world");
        assert_eq!(b.take(Pattern::Bytes(12), false), None);
        assert_eq!(b.take(Pattern::Bytes(5), false).unwrap().as_ref(), b"hello");
        assert_eq!(b.take(Pattern::Bytes(0), false).unwrap().as_ref(), b"");
        assert_eq!(b.take(Pattern::All, false), None);
        assert_eq!(b.take(Pattern::All, true).unwrap().as_ref(), b" world");
        assert_eq!(b.take(Pattern::All, true).unwrap().as_ref(), b"");
    }

    #[test]
    fn spare_compacts_consumed_front() {
        let mut b = RecvBuf::new();
        feed(&mut b, &[7; 100]);
        b.take(Pattern::Bytes(60), false);
        let (v, room) = b.spare(Some(10));
        assert_eq!((v.len(), room), (40, 10));
        assert_eq!(b.take(Pattern::Bytes(40), false).unwrap().as_ref(), &[7; 40][..]);
    }
}
