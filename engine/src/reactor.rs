//! The reactor: one epoll instance, a table of registered fds with their cached
//! readiness and waiters, and a timer wheel.
//!
//! A wait ends in exactly one way, and its reason goes out with its token:
//! readiness (`Ready`), its deadline (`Timeout`) or the fd's removal
//! (`Closed`). Nothing of a past wait stays in the fd's slot.
//!
//! Each registration (`Src`) carries a generation, also in the epoll data, so an
//! event for an fd number that has since been closed and reused (a file
//! description kept open elsewhere by `dup` or `fork` still reports) is dropped.
//!
//! A socket has two sides that may wait at once, a reader and a writer, each for
//! either direction of readiness (a TLS reader may need the fd writable). The
//! waits of one side share one wheel timer, which readiness leaves in place: the
//! next wait, whose deadline is later, keeps it, and when it fires before the
//! current wait's deadline it is set again for that deadline. So a wait that
//! readiness ends (the common case) costs no timer insert or cancel.

use std::io;

pub use crate::slab::Handle;
use crate::sys::{self, epoll, Fd};
use crate::wheel::{TimerId, Wheel};

/// A light thread: its slot in the scheduler and the slot's generation, so a
/// wake that reaches the slot after its thread ended (killed with the wake on
/// its way) finds another generation and is dropped.
pub type Tid = Handle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Read = 0,
    Write = 1,
}

/// Who waits on a socket: its reader or its writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Reader = 0,
    Writer = 1,
}

/// Whom a wait wakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// A light thread.
    Thread(Tid),
    /// A resolver query.
    Query(u32),
    /// An idle connection in a keepalive pool, watched for the peer's data,
    /// close or the idle timeout. Not counted as pending: it wakes no thread.
    Idle(Handle),
    /// Not a wait: a close reports that a pool's connection ended (see `pool`).
    Pool(Handle),
}

impl Token {
    /// Whether its wait can wake a light thread (see `Reactor::pending`).
    fn counted(self) -> bool {
        !matches!(self, Token::Idle(_))
    }
}

/// Why a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Ready,
    Timeout,
    Closed,
}

/// A registered fd: the fd and the generation of its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Src {
    pub fd: Fd,
    gen: u32,
}

impl Src {
    fn data(self) -> u64 {
        u64::from(self.gen) << 32 | u64::from(self.fd as u32)
    }
}

#[derive(Clone, Copy, Debug)]
struct Waiter {
    token: Token,
    dir: Dir,
    deadline: Option<u64>,
}

#[derive(Default, Debug)]
struct Slot {
    gen: u32,
    open: bool,
    ready: [bool; 2],
    /// The peer hung up (or the socket failed) in this direction: no edge will
    /// follow, so the direction stays ready whatever a short read or write said.
    hup: [bool; 2],
    /// By side.
    wait: [Option<Waiter>; 2],
    /// Each side's wheel timer and when it fires (see the module comment).
    timer: [Option<(TimerId, u64)>; 2],
}

/// What a wheel timer is for: a side's wait on an fd, or a sleeping token.
#[derive(Clone, Copy, Debug)]
enum Due {
    Wait(Fd, Side),
    Sleep(Token),
}

pub struct Reactor {
    epfd: Fd,
    slots: Vec<Slot>,
    wheel: Wheel<Due>,
    base: u64,
    /// Added to the clock by `fast_forward`.
    skew: u64,
    now: u64,
    events: Vec<epoll::Event>,
    fired: Vec<Due>,
    /// Fd waits in progress, and sleeps: what can still wake a token.
    waits: usize,
    sleeps: usize,
}

impl Reactor {
    pub fn new() -> io::Result<Reactor> {
        Ok(Reactor {
            epfd: epoll::create()?,
            slots: Vec::new(),
            wheel: Wheel::new(),
            base: sys::now_ms(),
            skew: 0,
            now: 0,
            events: vec![epoll::EMPTY; 256],
            fired: Vec::new(),
            waits: 0,
            sleeps: 0,
        })
    }

    /// Milliseconds since the reactor started, read afresh (vDSO, no
    /// syscall): a deadline taken late in a long loop turn must count from
    /// when it is taken, not from the turn's poll, or it fires early.
    pub fn now(&mut self) -> u64 {
        self.now = (sys::now_ms() - self.base + self.skew).max(self.now);
        self.now
    }

    /// Moves the clock `ms` ahead: timers fire as if that much time had
    /// passed (the model test's simulated time).
    pub fn fast_forward(&mut self, ms: u64) {
        self.skew += ms;
    }

    /// Registers a new fd (once, edge-triggered). Writes are assumed possible
    /// until a send says otherwise; reads wait for the first edge.
    pub fn add(&mut self, fd: Fd) -> io::Result<Src> {
        let i = fd as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, Slot::default);
        }
        let gen = self.slots[i].gen.wrapping_add(1);
        let src = Src { fd, gen };
        self.slots[i] = Slot { gen, ..Slot::default() };
        epoll::add(self.epfd, fd, src.data())?;
        self.slots[i] = Slot { gen, open: true, ready: [false, true], ..Slot::default() };
        Ok(src)
    }

    /// Forgets `src` before its fd's close, pushing its waiters onto `woken`
    /// as `Closed`.
    pub fn remove(&mut self, src: Src, woken: &mut Vec<(Token, Reason)>) {
        if !self.live(src) {
            return;
        }
        for side in [Side::Reader, Side::Writer] {
            if let Some(token) = self.end_wait(src, side) {
                woken.push((token, Reason::Closed));
            }
            if let Some((id, _)) = self.slots[src.fd as usize].timer[side as usize] {
                self.wheel.cancel(id);
            }
        }
        self.slots[src.fd as usize] = Slot { gen: src.gen, ..Slot::default() };
    }

    /// Whether `src` is still registered (its fd not removed since).
    pub fn live(&self, src: Src) -> bool {
        self.get(src).is_some()
    }

    /// `src`'s slot while it is registered: never another registration's
    /// that reuses its fd number.
    fn get(&self, src: Src) -> Option<&Slot> {
        self.slots.get(src.fd as usize).filter(|s| s.open && s.gen == src.gen)
    }

    fn slot(&mut self, src: Src) -> &mut Slot {
        match self.slots.get_mut(src.fd as usize) {
            Some(s) if s.open && s.gen == src.gen => s,
            _ => panic!("{src:?} is not registered"),
        }
    }

    /// Whether the peer hung up in `dir` (no edge will follow).
    pub fn hung_up(&self, src: Src, dir: Dir) -> bool {
        self.get(src).is_some_and(|s| s.hup[dir as usize])
    }

    pub fn is_ready(&self, src: Src, dir: Dir) -> bool {
        self.get(src).is_some_and(|s| s.ready[dir as usize] || s.hup[dir as usize])
    }

    pub fn set_ready(&mut self, src: Src, dir: Dir, ready: bool) {
        self.slot(src).ready[dir as usize] = ready;
    }

    /// Forgets an error `src` reported: a datagram socket's (the ICMP answer
    /// to one datagram) is taken by the call that returns it, and the socket
    /// goes on, waiting for edges again.
    pub fn clear_hup(&mut self, src: Src) {
        self.slot(src).hup = [false; 2];
    }

    /// The token waiting on `src`'s `side`, if any.
    pub fn waiter(&self, src: Src, side: Side) -> Option<Token> {
        self.get(src)?.wait[side as usize].map(|w| w.token)
    }

    /// Parks `token` as `src`'s `side` until the fd is ready in `dir` or
    /// `timeout` ms pass.
    pub fn wait(&mut self, src: Src, side: Side, dir: Dir, token: Token, timeout: Option<u64>) {
        let deadline = timeout.map(|ms| self.now().saturating_add(ms));
        if let Some(d) = deadline {
            match self.slot(src).timer[side as usize] {
                // It fires in time, and is set again then if the wait goes on.
                Some((_, at)) if at <= d => {}
                old => {
                    if let Some((id, _)) = old {
                        self.wheel.cancel(id);
                    }
                    let id = self.wheel.insert(d, Due::Wait(src.fd, side));
                    self.slot(src).timer[side as usize] = Some((id, d));
                }
            }
        }
        self.waits += usize::from(token.counted());
        let w = &mut self.slot(src).wait[side as usize];
        // A second waiter would silently take the first one's place.
        assert!(w.is_none(), "second waiter on {src:?} {side:?}");
        *w = Some(Waiter { token, dir, deadline });
    }

    /// Takes back a wait that has not ended (its thread was killed).
    pub fn unwait(&mut self, src: Src, side: Side) {
        if self.live(src) {
            self.end_wait(src, side);
        }
    }

    /// Cancels a sleep; false if it has fired already (its wake is on its
    /// way, or was delivered) or was cancelled: a stale id cancels nothing.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        let live = self.wheel.cancel(id).is_some();
        self.sleeps -= usize::from(live);
        live
    }

    /// Ends a wait and returns its token; its timer stays for the next wait.
    fn end_wait(&mut self, src: Src, side: Side) -> Option<Token> {
        let w = self.slots[src.fd as usize].wait[side as usize].take()?;
        self.waits -= usize::from(w.token.counted());
        Some(w.token)
    }

    /// Wakes `token` after `ms` milliseconds.
    pub fn sleep(&mut self, token: Token, ms: u64) -> TimerId {
        let deadline = self.now().saturating_add(ms);
        debug_assert!(matches!(token, Token::Thread(_) | Token::Query(_)), "{token:?} never sleeps");
        self.sleeps += 1;
        self.wheel.insert(deadline, Due::Sleep(token))
    }

    /// Waits still pending: anything that can wake a thread later.
    pub fn pending(&self) -> usize {
        self.waits + self.sleeps
    }

    /// One loop turn's poll: waits for events (no longer than `timeout` ms if
    /// given, never past the next timer), then pushes every ended wait.
    pub fn poll(&mut self, timeout: Option<u64>, woken: &mut Vec<(Token, Reason)>) -> io::Result<()> {
        let until_timer = self.wheel.next_deadline().map(|d| d.saturating_sub(self.now()));
        let ms = match (timeout, until_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let ms = ms.map_or(-1, |ms| ms.min(i32::MAX as u64) as i32);
        let n = epoll::wait(self.epfd, &mut self.events, ms)?;
        for i in 0..n {
            let ev = self.events[i];
            let (bits, data) = (ev.events as i32, { ev.u64 });
            let src = Src { fd: data as u32 as Fd, gen: (data >> 32) as u32 };
            if !self.live(src) {
                continue;
            }
            let hup = bits & (libc::EPOLLHUP | libc::EPOLLERR) != 0;
            let rdhup = hup || bits & libc::EPOLLRDHUP != 0;
            if rdhup || bits & libc::EPOLLIN != 0 {
                self.wake(src, Dir::Read, rdhup, woken);
            }
            if hup || bits & libc::EPOLLOUT != 0 {
                self.wake(src, Dir::Write, hup, woken);
            }
        }
        if n == self.events.len() {
            // A full batch: more may be waiting, so take more next time.
            self.events.resize(n * 2, epoll::EMPTY);
        }
        let now = self.now();
        self.fired.clear();
        self.wheel.poll(now, &mut self.fired);
        for &p in &self.fired {
            let (fd, side) = match p {
                Due::Sleep(token) => {
                    self.sleeps -= 1;
                    woken.push((token, Reason::Timeout));
                    continue;
                }
                Due::Wait(fd, side) => (fd, side),
            };
            let s = &mut self.slots[fd as usize];
            s.timer[side as usize] = None;
            match s.wait[side as usize] {
                Some(Waiter { token, deadline: Some(d), .. }) if d <= now => {
                    s.wait[side as usize] = None;
                    self.waits -= usize::from(token.counted());
                    woken.push((token, Reason::Timeout));
                }
                // Set for an earlier wait: set it again for this one's deadline.
                Some(Waiter { deadline: Some(d), .. }) => s.timer[side as usize] = Some((self.wheel.insert(d, p), d)),
                _ => {}
            }
        }
        Ok(())
    }

    fn wake(&mut self, src: Src, dir: Dir, hup: bool, woken: &mut Vec<(Token, Reason)>) {
        let s = &mut self.slots[src.fd as usize];
        s.ready[dir as usize] = true;
        s.hup[dir as usize] |= hup;
        for w in &mut s.wait {
            if let Some(Waiter { token, dir: d, .. }) = *w {
                if d == dir {
                    *w = None;
                    self.waits -= usize::from(token.counted());
                    woken.push((token, Reason::Ready));
                }
            }
        }
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        // The fds registered belong to their owners (the socket table, the
        // resolver), which close them.
        sys::close(self.epfd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Side = Side::Reader;
    fn t(n: u32) -> Token {
        Token::Thread(Handle::test(n))
    }

    fn pipe() -> (Fd, Fd) {
        sys::pipe().unwrap()
    }

    /// Polls until `n` waits have ended (giving up after about 20 s).
    fn poll_until(r: &mut Reactor, n: usize) -> Vec<(Token, Reason)> {
        let mut woken = Vec::new();
        for _ in 0..20 {
            if woken.len() >= n {
                break;
            }
            r.poll(Some(1000), &mut woken).unwrap();
        }
        woken
    }

    #[test]
    fn readiness_wakes_the_waiter_once_and_leaves_its_timer() {
        let mut r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        let src = r.add(rd).unwrap();
        r.wait(src, R, Dir::Read, t(7), Some(10_000));
        assert_eq!(r.waiter(src, R), Some(t(7)));
        assert_eq!(r.pending(), 1);
        let mut woken = Vec::new();
        r.poll(Some(0), &mut woken).unwrap();
        assert!(woken.is_empty());
        sys::write(wr, b"x").unwrap();
        r.poll(Some(1000), &mut woken).unwrap();
        assert_eq!(woken, [(t(7), Reason::Ready)]);
        assert!(r.is_ready(src, Dir::Read));
        assert_eq!((r.pending(), r.waiter(src, R)), (0, None));
        // The timer stays for the next wait, which keeps it: no insert, no cancel.
        let timer = r.slots[rd as usize].timer[0];
        assert_eq!(r.wheel.len(), 1);
        r.set_ready(src, Dir::Read, false);
        r.wait(src, R, Dir::Read, t(8), Some(10_000));
        assert_eq!((r.slots[rd as usize].timer[0], r.wheel.len(), r.pending()), (timer, 1, 1));
        // Removing the fd wakes the waiter as closed and takes its timer out too.
        woken.clear();
        r.remove(src, &mut woken);
        assert_eq!((woken, r.wheel.len(), r.pending()), (vec![(t(8), Reason::Closed)], 0, 0));
        sys::close(rd);
        sys::close(wr);
    }

    /// A reactor and a pipe whose first read wait, of `timeout` ms, readiness ended.
    fn after_a_ready_wait(timeout: u64) -> (Reactor, Src, Fd) {
        let mut r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        let src = r.add(rd).unwrap();
        r.wait(src, R, Dir::Read, t(1), Some(timeout));
        sys::write(wr, b"x").unwrap();
        assert_eq!(poll_until(&mut r, 1), [(t(1), Reason::Ready)]);
        r.set_ready(src, Dir::Read, false);
        (r, src, wr)
    }

    #[test]
    fn a_kept_timer_that_fires_early_is_set_again_for_the_wait() {
        let (mut r, src, wr) = after_a_ready_wait(30);
        // 20 ms later a second 30 ms wait keeps the timer, due 10 ms too soon.
        r.sleep(t(9), 20);
        assert_eq!(poll_until(&mut r, 1), [(t(9), Reason::Timeout)]);
        let start = r.now();
        r.wait(src, R, Dir::Read, t(2), Some(30));
        assert_eq!(r.wheel.len(), 1);
        assert_eq!(poll_until(&mut r, 1), [(t(2), Reason::Timeout)]);
        assert!(r.now() >= start + 30, "timed out at {} ms, deadline {}", r.now(), start + 30);
        assert_eq!((r.wheel.len(), r.pending()), (0, 0));
        sys::close(wr);
    }

    #[test]
    fn a_shorter_timeout_gets_an_earlier_timer() {
        let (mut r, src, wr) = after_a_ready_wait(100_000);
        let start = r.now();
        r.wait(src, R, Dir::Read, t(2), Some(5));
        assert_eq!(r.wheel.len(), 1, "the later timer was replaced");
        assert_eq!(poll_until(&mut r, 1), [(t(2), Reason::Timeout)]);
        assert!(r.now() < start + 5_000);
        sys::close(wr);
    }

    #[test]
    fn a_timer_left_behind_wakes_nobody() {
        let (mut r, _src, wr) = after_a_ready_wait(5);
        // The 5 ms timer fires meanwhile; only the sleeper wakes.
        r.sleep(t(9), 20);
        assert_eq!(poll_until(&mut r, 1), [(t(9), Reason::Timeout)]);
        assert_eq!((r.wheel.len(), r.pending()), (0, 0));
        sys::close(wr);
    }

    /// Reads what the pipe holds, as a receive would, and notes it drained.
    fn drain(r: &mut Reactor, src: Src) {
        while sys::read(src.fd, &mut [0; 64]).is_ok_and(|n| n > 0) {}
        r.set_ready(src, Dir::Read, false);
    }

    /// Random waits (1-20 ms timeouts), writes and polls on eight pipes: every
    /// wait ends exactly once, by its deadline only once that has passed, by
    /// readiness only when there is something to read; no timer outlives its use.
    #[test]
    fn random_waits_end_once_each_at_their_deadline_or_by_readiness() {
        const PIPES: usize = 8;
        let mut rng = crate::rng::Rng(0x9e37_79b9_7f4a_7c15);
        let mut r = Reactor::new().unwrap();
        let pipes: Vec<(Src, Fd)> = (0..PIPES).map(|_| pipe()).map(|(rd, wr)| (r.add(rd).unwrap(), wr)).collect();
        // Per pipe: the earliest its wait may time out, and whether it holds
        // bytes not read yet.
        let mut waiting: [Option<u64>; PIPES] = [None; PIPES];
        let mut unread = [false; PIPES];
        let (mut timeouts, mut readies) = (0, 0);
        let mut woken = Vec::new();
        for _ in 0..600 {
            let i = rng.below(PIPES as u64) as usize;
            let (src, wr) = pipes[i];
            match rng.below(3) {
                0 if waiting[i].is_none() => {
                    // A receive waits only when the socket is drained.
                    if r.is_ready(src, Dir::Read) {
                        drain(&mut r, src);
                        unread[i] = false;
                    }
                    let ms = 1 + rng.below(20);
                    let start = r.now();
                    r.wait(src, R, Dir::Read, t(i as u32), Some(ms));
                    waiting[i] = Some(start + ms);
                }
                1 => {
                    sys::write(wr, b"x").unwrap();
                    unread[i] = true;
                }
                _ => r.poll(Some(rng.below(3)), &mut woken).unwrap(),
            }
            for (t, why) in woken.drain(..) {
                let Token::Thread(i) = t else { panic!("{t:?}") };
                let i = i.slot() as usize;
                let earliest = waiting[i].take().expect("woken once, while waiting");
                match why {
                    Reason::Timeout => {
                        assert!(r.now() >= earliest, "timed out at {} ms, before {earliest}", r.now());
                        timeouts += 1;
                    }
                    Reason::Ready => {
                        assert!(unread[i], "woken by readiness with nothing to read");
                        drain(&mut r, pipes[i].0);
                        unread[i] = false;
                        readies += 1;
                    }
                    Reason::Closed => panic!("closed"),
                }
            }
            assert_eq!(r.pending(), waiting.iter().flatten().count());
            assert!(r.wheel.len() <= PIPES, "{} timers for {PIPES} fds", r.wheel.len());
        }
        assert!(timeouts > 20 && readies > 20, "{timeouts} timeouts, {readies} wake-ups by readiness");
        for (src, wr) in pipes {
            r.remove(src, &mut woken);
            sys::close(src.fd);
            sys::close(wr);
        }
        assert_eq!((r.pending(), r.wheel.len()), (0, 0));
    }

    #[test]
    fn a_timer_ends_the_wait_and_nothing_of_it_stays() {
        let mut r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        let src = r.add(rd).unwrap();
        r.wait(src, R, Dir::Read, t(3), Some(5));
        r.sleep(t(9), 1);
        let mut woken = Vec::new();
        while woken.len() < 2 {
            r.poll(None, &mut woken).unwrap();
        }
        assert_eq!(woken, [(t(9), Reason::Timeout), (t(3), Reason::Timeout)]);
        assert!(r.now() >= 5);
        assert_eq!(r.waiter(src, R), None);
        // A late edge finds no waiter: readiness is cached, nobody is woken.
        sys::write(wr, b"x").unwrap();
        woken.clear();
        r.poll(Some(1000), &mut woken).unwrap();
        assert!(woken.is_empty());
        assert!(r.is_ready(src, Dir::Read));
        // The next wait on the fd starts clean: readiness ends it, as ready.
        r.wait(src, R, Dir::Read, t(4), Some(1000));
        sys::write(wr, b"y").unwrap();
        assert_eq!(poll_until(&mut r, 1), [(t(4), Reason::Ready)]);
        sys::close(wr);
    }

    #[test]
    fn a_hang_up_keeps_reads_ready_after_a_short_read() {
        let mut r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        let src = r.add(rd).unwrap();
        sys::write(wr, b"last").unwrap();
        sys::close(wr);
        let mut woken = Vec::new();
        r.poll(Some(1000), &mut woken).unwrap();
        // Data and hang-up came in one edge: after draining the data the read
        // must still be tried (to see EOF), as no further edge will come.
        r.set_ready(src, Dir::Read, false);
        assert!(r.is_ready(src, Dir::Read));
        r.remove(src, &mut woken);
        sys::close(rd);
    }

    #[test]
    fn remove_wakes_both_sides_as_closed() {
        let mut r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        let src = r.add(rd).unwrap();
        r.wait(src, R, Dir::Read, t(1), Some(1000));
        r.set_ready(src, Dir::Write, false);
        r.wait(src, Side::Writer, Dir::Write, t(2), None);
        assert_eq!(r.pending(), 2);
        let mut woken = Vec::new();
        r.remove(src, &mut woken);
        assert_eq!((woken, r.pending()), (vec![(t(1), Reason::Closed), (t(2), Reason::Closed)], 0));
        sys::close(rd);
        sys::close(wr);
    }

    #[test]
    fn a_side_waits_for_the_direction_it_names() {
        let mut r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        let src = r.add(rd).unwrap();
        // A reader that needs the fd writable (TLS) is not woken by data.
        r.set_ready(src, Dir::Write, false);
        r.wait(src, R, Dir::Write, Token::Query(5), Some(1000));
        sys::write(wr, b"x").unwrap();
        let mut woken = Vec::new();
        r.poll(Some(100), &mut woken).unwrap();
        assert!(woken.is_empty(), "read readiness woke a wait for write: {woken:?}");
        assert!(r.is_ready(src, Dir::Read));
        r.remove(src, &mut woken);
        assert_eq!(woken, [(Token::Query(5), Reason::Closed)]);
        sys::close(rd);
        sys::close(wr);
    }

    /// A file description still open elsewhere (here a dup; a fork does the
    /// same) keeps its epoll registration after its fd's close, and reports
    /// events with the old data: they must not reach the socket that reuses
    /// the fd number (before generations, its hang-up marked the new socket
    /// ready for good while recv said EAGAIN, and its reader spun).
    #[test]
    fn an_event_for_a_reused_fd_number_is_dropped() {
        let mut r = Reactor::new().unwrap();
        let (a, peer) = sys::socketpair().unwrap();
        let old = r.add(a).unwrap();
        let kept = sys::dup(a).unwrap();
        let mut woken = Vec::new();
        r.remove(old, &mut woken);
        sys::close(a);
        let (c, d) = sys::socketpair().unwrap();
        assert_eq!(c, a, "the fd number is reused");
        let new = r.add(c).unwrap();
        assert_ne!(new, old);
        r.poll(Some(0), &mut woken).unwrap();
        r.set_ready(new, Dir::Read, false);
        r.wait(new, R, Dir::Read, t(1), Some(10_000));
        // The old description gets data and a hang-up.
        sys::write(peer, b"stale").unwrap();
        sys::close(peer);
        r.poll(Some(100), &mut woken).unwrap();
        assert!(woken.is_empty(), "a stale event woke the new socket's reader: {woken:?}");
        assert!(!r.is_ready(new, Dir::Read));
        sys::write(d, b"fresh").unwrap();
        assert_eq!(poll_until(&mut r, 1), [(t(1), Reason::Ready)]);
        r.remove(new, &mut woken);
        for fd in [kept, c, d] {
            sys::close(fd);
        }
    }
}
