//! `RecvBuf` against a deliberately naive model (a `VecDeque<u8>`): the same
//! sequence of appends and takes must give the same results and leave the same
//! number of bytes, and the buffer's memory must stay bounded however many
//! bytes stream through it. Like `receive`, every feed first lends the buffer
//! a shared spare storage, and every take gives the storage back once the
//! buffer is empty.
//!
//! Input: a sequence of ops, each an op byte followed by its operands (a
//! missing operand reads as 0). `op % 8`:
//! - 0 feed from the input: `spare(want)`, then append the next `min(L, room)`
//!   input bytes, L being the next byte.
//! - 1 feed synthesized bytes: `spare(want)`, then append `room * a / 255`
//!   bytes (a: next byte) repeating a template of `1 + (op >> 5)` input bytes,
//!   so megabytes can stream through from a short input.
//!
//!   For both feeds `want` is chosen by `(op >> 3) & 3`: 0 `None`; 1
//!   `Some(next byte)`; 2 what `receive` passes: `Some(n - len)` if the last
//!   count asked for `n > len`, else `None`; 3 `Some(next 4 bytes LE)`, the
//!   top bit meaning `usize::MAX`. Like `sys::recv`, a feed first reserves
//!   `room` in the Vec, then appends at most `room` bytes.
//! - 2 `take(Line, eof = op & 8)`
//! - 3 `take(Bytes(n))`, n by `(op >> 3) & 3`: next byte; next 2 bytes; next 3
//!   bytes; `usize::MAX - next byte`.
//! - 4 `take(All, false)`; 5 `take(All, true)`
//! - 6 `take_partial(p)`, p by `(op >> 3) % 3`: Line, All, Bytes(next byte).
//! - 7 `take(Bytes(len + next byte as i8))`: counts right around what is buffered.

use coevent_engine::buf::{Pattern, RecvBuf, CHUNK};
use std::collections::VecDeque;

/// Synthesized bytes appended per input: twice the capacity bound for a small
/// backlog (4 × CHUNK = 64 KiB, see `feed`), so a buffer that failed to reclaim
/// consumed bytes would exceed it, and still fast to run.
const MAX_SYNTH: usize = 128 << 10;
/// Ops per input, to keep executions short.
const MAX_OPS: usize = 512;
/// `spare(Some(n))` reads at most this much.
const MAX_WANT: usize = 1 << 20;

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    fn le(&mut self, n: usize) -> usize {
        self.bytes(n).iter().rev().fold(0, |v, &b| v << 8 | usize::from(b))
    }
}

/// The reference: bytes in a queue, each pattern written the obvious way.
/// (`no_lf`, how many leading bytes hold no LF, and the bulk copies in `drain`
/// only spare per-byte work: the coverage instrumentation makes every
/// per-byte loop here some 50 times slower than the code under test.)
#[derive(Default)]
struct Model {
    q: VecDeque<u8>,
    no_lf: usize,
}

impl Model {
    /// Removes and returns the first `n` bytes.
    fn drain(&mut self, n: usize) -> Vec<u8> {
        let (a, b) = self.q.as_slices();
        let from_a = n.min(a.len());
        let mut v = Vec::with_capacity(n);
        v.extend_from_slice(&a[..from_a]);
        v.extend_from_slice(&b[..n - from_a]);
        self.q.drain(..n);
        self.no_lf = self.no_lf.saturating_sub(n);
        v
    }

    fn drop_crs(mut v: Vec<u8>) -> Vec<u8> {
        if v.contains(&b'\r') {
            v.retain(|&b| b != b'\r');
        }
        v
    }

    fn take(&mut self, p: Pattern, eof: bool) -> Option<Vec<u8>> {
        let len = self.q.len();
        match p {
            Pattern::Line => {
                let Some(i) = self.q.range(self.no_lf..).position(|&b| b == b'\n') else {
                    self.no_lf = len;
                    return None;
                };
                // The first LF ends the line; it and every CR before it go.
                let mut line = self.drain(self.no_lf + i + 1);
                line.pop();
                Some(Model::drop_crs(line))
            }
            Pattern::All => eof.then(|| self.drain(len)),
            Pattern::Bytes(n) => (n <= len).then(|| self.drain(n)),
        }
    }

    fn take_partial(&mut self, p: Pattern) -> Vec<u8> {
        let all = self.drain(self.q.len());
        match p {
            Pattern::Line => Model::drop_crs(all),
            _ => all,
        }
    }
}

fn show(b: Option<&[u8]>) -> String {
    match b {
        None => "None".into(),
        Some(b) if b.len() <= 48 => format!("{:?}", String::from_utf8_lossy(b)),
        Some(b) => format!("{} bytes, {:?}…", b.len(), String::from_utf8_lossy(&b[..48])),
    }
}

fn same(step: usize, what: &dyn std::fmt::Display, got: Option<&[u8]>, want: Option<&[u8]>) {
    assert!(got == want, "op {step} {what}: RecvBuf gave {}, the model {}", show(got), show(want));
}

struct Run {
    buf: RecvBuf,
    model: Model,
    /// The last byte count taken, as `receive` remembers it to size its read.
    last_count: Option<usize>,
    synth: usize,
    /// Largest `len()` seen when `spare` was called.
    peak_len: usize,
    /// Largest room `spare(Some(_))` gave.
    peak_want_room: usize,
    /// The engine's one spare storage: every feed borrows it, every take
    /// gives the storage back once the buffer is empty (as `receive` does).
    pool: Vec<u8>,
}

impl Run {
    fn feed(&mut self, step: usize, op: u8, inp: &mut Input) {
        let len = self.buf.len();
        let want = match (op >> 3) & 3 {
            0 => None,
            1 => Some(usize::from(inp.byte())),
            2 => self.last_count.filter(|&n| n > len).map(|n| n - len),
            _ => {
                let v = inp.le(4);
                Some(if v & 0x8000_0000 != 0 { usize::MAX } else { v })
            }
        };
        let synthesized = op % 8 == 1;
        // Operands are read before spare() borrows the buffer.
        let (count, template) = if synthesized {
            (usize::from(inp.byte()), inp.bytes(1 + usize::from(op >> 5)))
        } else {
            (usize::from(inp.byte()), &[][..])
        };
        self.buf.lend(&mut self.pool);
        let (v, room) = self.buf.spare(want);
        match want {
            Some(n) => assert_eq!(room, n.clamp(1, MAX_WANT), "op {step}: spare(Some({n})) room"),
            None => assert!(room >= CHUNK && room >= len, "op {step}: spare(None) room {room} with {len} buffered"),
        }
        // What sys::recv does: room for `room` bytes, then the kernel writes some.
        v.reserve(room);
        let before = v.len();
        if synthesized {
            let k = ((room as u128 * count as u128 / 255) as usize).min(MAX_SYNTH - self.synth);
            self.synth += k;
            let template = if template.is_empty() { &b"x\r\n"[..] } else { template };
            // The template repeated to k bytes, in doubling copies.
            v.extend_from_slice(&template[..k.min(template.len())]);
            while v.len() - before < k {
                let have = v.len() - before;
                v.extend_from_within(before..before + have.min(k - have));
            }
        } else {
            v.extend_from_slice(inp.bytes(count.min(room)));
        }
        let added = &v[before..];
        assert!(added.len() <= room);
        self.model.q.extend(added);

        // Memory: `spare` moves the unread bytes to the front once the consumed
        // ones fill half the capacity, so a grow (to at most max(2 cap,
        // vec len + room)) happens only when cap < 2 (len + room), and the
        // capacity stays within 4 (peak len + largest room), however many bytes
        // went through. Room is at most max(CHUNK, len) for None (when it
        // grows) and 1 MiB for Some.
        self.peak_len = self.peak_len.max(len);
        if want.is_some() {
            self.peak_want_room = self.peak_want_room.max(room);
        }
        let bound = 4 * (self.peak_len + CHUNK.max(self.peak_len).max(self.peak_want_room));
        assert!(
            v.capacity() <= bound,
            "op {step}: capacity {} > {bound} (peak len {}, peak Some room {}, {} buffered, {} synthesized)",
            v.capacity(),
            self.peak_len,
            self.peak_want_room,
            self.model.q.len(),
            self.synth
        );
    }

    fn take(&mut self, step: usize, p: Pattern, eof: bool) {
        if let Pattern::Bytes(n) = p {
            self.last_count = Some(n);
        }
        let want = self.model.take(p, eof);
        let got = self.buf.take(p, eof);
        same(step, &format_args!("take({p:?}, {eof})"), got, want.as_deref());
        self.buf.release(&mut self.pool);
    }

    fn take_partial(&mut self, step: usize, p: Pattern) {
        let want = self.model.take_partial(p);
        let got = self.buf.take_partial(p);
        same(step, &format_args!("take_partial({p:?})"), Some(got), Some(&want));
        self.buf.release(&mut self.pool);
    }
}

pub fn check(data: &[u8]) {
    let mut run = Run {
        buf: RecvBuf::new(),
        model: Model::default(),
        last_count: None,
        synth: 0,
        peak_len: 0,
        peak_want_room: 0,
        pool: Vec::new(),
    };
    let mut inp = Input(data);
    let mut step = 0;
    while !inp.0.is_empty() && step < MAX_OPS {
        let op = inp.byte();
        match op % 8 {
            0 | 1 => run.feed(step, op, &mut inp),
            2 => run.take(step, Pattern::Line, op & 8 != 0),
            3 => {
                let n = match (op >> 3) & 3 {
                    0 => inp.le(1),
                    1 => inp.le(2),
                    2 => inp.le(3),
                    _ => usize::MAX - inp.le(1),
                };
                run.take(step, Pattern::Bytes(n), op & 32 != 0)
            }
            4 => run.take(step, Pattern::All, false),
            5 => run.take(step, Pattern::All, true),
            6 => {
                let p = match (op >> 3) % 3 {
                    0 => Pattern::Line,
                    1 => Pattern::All,
                    _ => Pattern::Bytes(inp.le(1)),
                };
                run.take_partial(step, p)
            }
            _ => {
                let n = run.buf.len() as isize + isize::from(inp.byte() as i8);
                run.take(step, Pattern::Bytes(n.max(0) as usize), false)
            }
        }
        assert_eq!(run.buf.len(), run.model.q.len(), "op {step}: len() after op {op}");
        assert_eq!(run.buf.is_empty(), run.model.q.is_empty(), "op {step}: is_empty()");
        step += 1;
    }
    // Whatever is left comes out whole.
    run.take(step, Pattern::All, true);
    assert_eq!(run.buf.len(), 0);
}
