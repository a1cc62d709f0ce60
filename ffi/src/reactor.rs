//! The reactor: one epoll instance, a table of registered fds with their cached
//! readiness and waiters, and a timer wheel.
//!
//! Waiters are opaque `u32` tokens (the Lua layer's thread ids). A wait ends in
//! exactly one way: readiness clears it, or its deadline passes and clears it,
//! leaving `TimedOut` behind for the next operation on that fd to see.
//!
//! The waits on one fd and direction share one wheel timer, which readiness
//! leaves in place: the next wait, whose deadline is later, keeps it, and when
//! it fires before the current wait's deadline it is set again for that
//! deadline. So a wait that readiness ends (the common case) costs no timer
//! insert or cancel, and a connection busy for a minute re-arms its timer about
//! once.

use std::io;

use crate::sys::{self, Fd};
use crate::wheel::{TimerId, Wheel};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Read = 0,
    Write = 1,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Wait {
    #[default]
    Idle,
    On {
        token: u32,
        deadline: Option<u64>,
    },
    TimedOut,
}

#[derive(Default, Debug)]
struct Slot {
    open: bool,
    ready: [bool; 2],
    /// The peer hung up (or the socket failed) in this direction: no edge will
    /// follow, so the direction stays ready whatever a short read or write said.
    hup: [bool; 2],
    wait: [Wait; 2],
    /// Each direction's wheel timer and when it fires (see the module comment).
    timer: [Option<(TimerId, u64)>; 2],
}

/// Timer payloads: a sleeping token, or (with this bit) a wait on an fd.
const FD_WAIT: u64 = 1 << 63;

fn fd_payload(fd: Fd, dir: Dir) -> u64 {
    FD_WAIT | (dir as u64) << 32 | fd as u32 as u64
}

pub struct Reactor {
    epfd: Fd,
    slots: Vec<Slot>,
    wheel: Wheel,
    base: u64,
    now: u64,
    events: Vec<libc::epoll_event>,
    fired: Vec<u64>,
    /// Fd waits in progress, and sleeps: what can still wake a token.
    waits: usize,
    sleeps: usize,
}

impl Reactor {
    pub fn new() -> io::Result<Reactor> {
        Ok(Reactor {
            epfd: sys::epoll_create()?,
            slots: Vec::new(),
            wheel: Wheel::new(),
            base: sys::now_ms(),
            now: 0,
            events: vec![sys::EMPTY_EVENT; 256],
            fired: Vec::new(),
            waits: 0,
            sleeps: 0,
        })
    }

    /// Milliseconds since the reactor started, read afresh (vDSO, no
    /// syscall): a deadline taken late in a long loop turn must count from
    /// when it is taken, not from the turn's poll, or it fires early.
    pub fn now(&mut self) -> u64 {
        self.now = (sys::now_ms() - self.base).max(self.now);
        self.now
    }

    /// Registers a new fd (once, edge-triggered). Writes are assumed possible
    /// until a send says otherwise; reads wait for the first edge.
    pub fn add(&mut self, fd: Fd) -> io::Result<()> {
        sys::epoll_add(self.epfd, fd, fd as u64)?;
        let i = fd as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, Slot::default);
        }
        self.slots[i] = Slot { open: true, ready: [false, true], ..Slot::default() };
        Ok(())
    }

    /// Forgets `fd` before its close, pushing its waiters onto `woken`. An fd
    /// that `add` refused is not there, which is fine.
    pub fn remove(&mut self, fd: Fd, woken: &mut Vec<u32>) {
        if self.slots.get(fd as usize).is_none_or(|s| !s.open) {
            return;
        }
        for dir in [Dir::Read, Dir::Write] {
            if let Some(token) = self.end_wait(fd, dir) {
                woken.push(token);
            }
            if let Some((id, _)) = self.slots[fd as usize].timer[dir as usize] {
                self.wheel.cancel(id);
            }
        }
        self.slots[fd as usize] = Slot::default();
    }

    fn slot(&mut self, fd: Fd) -> &mut Slot {
        let s = &mut self.slots[fd as usize];
        debug_assert!(s.open, "fd {fd} is not registered");
        s
    }

    pub fn is_ready(&self, fd: Fd, dir: Dir) -> bool {
        let s = &self.slots[fd as usize];
        s.ready[dir as usize] || s.hup[dir as usize]
    }

    pub fn set_ready(&mut self, fd: Fd, dir: Dir, ready: bool) {
        self.slot(fd).ready[dir as usize] = ready;
    }

    /// The token waiting on `fd` in `dir`, if any.
    pub fn waiter(&self, fd: Fd, dir: Dir) -> Option<u32> {
        match self.slots[fd as usize].wait[dir as usize] {
            Wait::On { token, .. } => Some(token),
            _ => None,
        }
    }

    /// Parks `token` until `fd` is ready in `dir` or `timeout` ms pass.
    pub fn wait(&mut self, fd: Fd, dir: Dir, token: u32, timeout: Option<u64>) {
        let deadline = timeout.map(|ms| self.now().saturating_add(ms));
        if let Some(d) = deadline {
            match self.slot(fd).timer[dir as usize] {
                // It fires in time, and is set again then if the wait goes on.
                Some((_, at)) if at <= d => {}
                old => {
                    if let Some((id, _)) = old {
                        self.wheel.cancel(id);
                    }
                    let id = self.wheel.insert(d, fd_payload(fd, dir));
                    self.slot(fd).timer[dir as usize] = Some((id, d));
                }
            }
        }
        self.waits += 1;
        let w = &mut self.slot(fd).wait[dir as usize];
        debug_assert!(matches!(w, Wait::Idle | Wait::TimedOut), "second waiter on fd {fd}");
        *w = Wait::On { token, deadline };
    }

    /// True once if the last wait on `fd` in `dir` ended by its timer.
    pub fn take_timeout(&mut self, fd: Fd, dir: Dir) -> bool {
        let w = &mut self.slot(fd).wait[dir as usize];
        let timed_out = *w == Wait::TimedOut;
        if timed_out {
            *w = Wait::Idle;
        }
        timed_out
    }

    /// Takes back a wait (its thread was killed).
    pub fn unwait(&mut self, fd: Fd, dir: Dir) {
        self.end_wait(fd, dir);
    }

    /// Cancels a sleep that has not fired.
    pub fn cancel(&mut self, id: TimerId) {
        self.wheel.cancel(id);
        self.sleeps -= 1;
    }

    /// Ends a wait by readiness or removal and returns its token; its timer
    /// stays for the next wait.
    fn end_wait(&mut self, fd: Fd, dir: Dir) -> Option<u32> {
        match std::mem::take(&mut self.slots[fd as usize].wait[dir as usize]) {
            Wait::On { token, .. } => {
                self.waits -= 1;
                Some(token)
            }
            _ => None,
        }
    }

    /// Wakes `token` after `ms` milliseconds.
    pub fn sleep(&mut self, token: u32, ms: u64) -> TimerId {
        debug_assert!(token as u64 & FD_WAIT == 0);
        let deadline = self.now().saturating_add(ms);
        self.sleeps += 1;
        self.wheel.insert(deadline, token as u64)
    }

    /// Waits still pending: anything that can wake a token later.
    pub fn pending(&self) -> usize {
        self.waits + self.sleeps
    }

    /// One loop turn's poll: waits for events (no longer than `timeout` ms if
    /// given, never past the next timer), then pushes every woken token.
    pub fn poll(&mut self, timeout: Option<u64>, woken: &mut Vec<u32>) -> io::Result<()> {
        let until_timer = self.wheel.next_deadline().map(|d| d.saturating_sub(self.now()));
        let ms = match (timeout, until_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let ms = ms.map_or(-1, |ms| ms.min(i32::MAX as u64) as i32);
        let n = sys::epoll_wait(self.epfd, &mut self.events, ms)?;
        for i in 0..n {
            let ev = self.events[i];
            let (bits, fd) = (ev.events as i32, { ev.u64 } as Fd);
            if !self.slots.get(fd as usize).is_some_and(|s| s.open) {
                continue;
            }
            let hup = bits & (libc::EPOLLHUP | libc::EPOLLERR) != 0;
            let rdhup = hup || bits & libc::EPOLLRDHUP != 0;
            if rdhup || bits & libc::EPOLLIN != 0 {
                self.wake(fd, Dir::Read, rdhup, woken);
            }
            if hup || bits & libc::EPOLLOUT != 0 {
                self.wake(fd, Dir::Write, hup, woken);
            }
        }
        if n == self.events.len() {
            // A full batch: more may be waiting, so take more next time.
            self.events.resize(n * 2, sys::EMPTY_EVENT);
        }
        let now = self.now();
        self.fired.clear();
        self.wheel.poll(now, &mut self.fired);
        for &p in &self.fired {
            if p & FD_WAIT == 0 {
                self.sleeps -= 1;
                woken.push(p as u32);
                continue;
            }
            let (fd, dir) = (p as u32 as Fd, if p >> 32 & 1 == 0 { Dir::Read } else { Dir::Write });
            let s = &mut self.slots[fd as usize];
            s.timer[dir as usize] = None;
            match s.wait[dir as usize] {
                Wait::On { token, deadline: Some(d) } if d <= now => {
                    s.wait[dir as usize] = Wait::TimedOut;
                    self.waits -= 1;
                    woken.push(token);
                }
                // Set for an earlier wait: set it again for this one's deadline.
                Wait::On { deadline: Some(d), .. } => s.timer[dir as usize] = Some((self.wheel.insert(d, p), d)),
                _ => {}
            }
        }
        Ok(())
    }

    fn wake(&mut self, fd: Fd, dir: Dir, hup: bool, woken: &mut Vec<u32>) {
        let s = &mut self.slots[fd as usize];
        s.ready[dir as usize] = true;
        s.hup[dir as usize] |= hup;
        if let Some(token) = self.end_wait(fd, dir) {
            woken.push(token);
        }
    }

    /// Closes every fd still registered (the loop is ending).
    pub fn close_all(&mut self) {
        for (fd, s) in self.slots.iter_mut().enumerate() {
            if s.open {
                sys::close(fd as Fd);
                *s = Slot::default();
            }
        }
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        self.close_all();
        sys::close(self.epfd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (Fd, Fd) {
        sys::pipe().unwrap()
    }

    /// Polls until `n` tokens have woken (giving up after about 20 s).
    fn poll_until(r: &mut Reactor, n: usize) -> Vec<u32> {
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
        r.add(rd).unwrap();
        r.wait(rd, Dir::Read, 7, Some(10_000));
        assert_eq!(r.waiter(rd, Dir::Read), Some(7));
        assert_eq!(r.pending(), 1);
        let mut woken = Vec::new();
        r.poll(Some(0), &mut woken).unwrap();
        assert!(woken.is_empty());
        sys::write(wr, b"x").unwrap();
        r.poll(Some(1000), &mut woken).unwrap();
        assert_eq!(woken, [7]);
        assert!(r.is_ready(rd, Dir::Read));
        assert_eq!((r.pending(), r.waiter(rd, Dir::Read)), (0, None));
        assert!(!r.take_timeout(rd, Dir::Read));
        // The timer stays for the next wait, which keeps it: no insert, no cancel.
        let timer = r.slots[rd as usize].timer[0];
        assert_eq!(r.wheel.len(), 1);
        r.set_ready(rd, Dir::Read, false);
        r.wait(rd, Dir::Read, 8, Some(10_000));
        assert_eq!((r.slots[rd as usize].timer[0], r.wheel.len(), r.pending()), (timer, 1, 1));
        // Removing the fd takes its timer out too.
        woken.clear();
        r.remove(rd, &mut woken);
        assert_eq!((woken, r.wheel.len(), r.pending()), (vec![8], 0, 0));
        sys::close(rd);
        sys::close(wr);
    }

    /// A reactor and a pipe whose first read wait, of `timeout` ms, readiness ended.
    fn after_a_ready_wait(timeout: u64) -> (Reactor, Fd, Fd) {
        let mut r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        r.add(rd).unwrap();
        r.wait(rd, Dir::Read, 1, Some(timeout));
        sys::write(wr, b"x").unwrap();
        assert_eq!(poll_until(&mut r, 1), [1]);
        r.set_ready(rd, Dir::Read, false);
        (r, rd, wr)
    }

    #[test]
    fn a_kept_timer_that_fires_early_is_set_again_for_the_wait() {
        let (mut r, rd, wr) = after_a_ready_wait(30);
        // 20 ms later a second 30 ms wait keeps the timer, due 10 ms too soon.
        r.sleep(9, 20);
        assert_eq!(poll_until(&mut r, 1), [9]);
        let start = r.now();
        r.wait(rd, Dir::Read, 2, Some(30));
        assert_eq!(r.wheel.len(), 1);
        assert_eq!(poll_until(&mut r, 1), [2]);
        assert!(r.now() >= start + 30, "timed out at {} ms, deadline {}", r.now(), start + 30);
        assert!(r.take_timeout(rd, Dir::Read));
        assert_eq!((r.wheel.len(), r.pending()), (0, 0));
        sys::close(wr);
    }

    #[test]
    fn a_shorter_timeout_gets_an_earlier_timer() {
        let (mut r, rd, wr) = after_a_ready_wait(100_000);
        let start = r.now();
        r.wait(rd, Dir::Read, 2, Some(5));
        assert_eq!(r.wheel.len(), 1, "the later timer was replaced");
        assert_eq!(poll_until(&mut r, 1), [2]);
        assert!(r.take_timeout(rd, Dir::Read));
        assert!(r.now() < start + 5_000);
        sys::close(wr);
    }

    #[test]
    fn a_timer_left_behind_wakes_nobody() {
        let (mut r, rd, wr) = after_a_ready_wait(5);
        // The 5 ms timer fires meanwhile; only the sleeper wakes.
        r.sleep(9, 20);
        assert_eq!(poll_until(&mut r, 1), [9]);
        assert!(!r.take_timeout(rd, Dir::Read));
        assert_eq!((r.wheel.len(), r.pending()), (0, 0));
        sys::close(wr);
    }

    /// Reads what the pipe holds, as a receive would, and notes it drained.
    fn drain(r: &mut Reactor, rd: Fd) {
        while sys::read(rd, &mut [0; 64]).is_ok_and(|n| n > 0) {}
        r.set_ready(rd, Dir::Read, false);
    }

    /// Random waits (1-20 ms timeouts), writes and polls on eight pipes: every
    /// wait ends exactly once, by its deadline only once that has passed, by
    /// readiness only when there is something to read; no timer outlives its use.
    #[test]
    fn random_waits_end_once_each_at_their_deadline_or_by_readiness() {
        const PIPES: usize = 8;
        let mut rng = crate::rng::Rng(0x9e37_79b9_7f4a_7c15);
        let mut r = Reactor::new().unwrap();
        let pipes: Vec<(Fd, Fd)> = (0..PIPES).map(|_| pipe()).collect();
        for &(rd, _) in &pipes {
            r.add(rd).unwrap();
        }
        // Per pipe: the earliest its wait may time out, and whether it holds
        // bytes not read yet.
        let mut waiting: [Option<u64>; PIPES] = [None; PIPES];
        let mut unread = [false; PIPES];
        let (mut timeouts, mut readies) = (0, 0);
        let mut woken = Vec::new();
        for _ in 0..600 {
            let i = rng.below(PIPES as u64) as usize;
            let (rd, wr) = pipes[i];
            match rng.below(3) {
                0 if waiting[i].is_none() => {
                    // A receive waits only when the socket is drained.
                    if r.is_ready(rd, Dir::Read) {
                        drain(&mut r, rd);
                        unread[i] = false;
                    }
                    let ms = 1 + rng.below(20);
                    let start = r.now();
                    r.wait(rd, Dir::Read, i as u32, Some(ms));
                    waiting[i] = Some(start + ms);
                }
                1 => {
                    sys::write(wr, b"x").unwrap();
                    unread[i] = true;
                }
                _ => r.poll(Some(rng.below(3)), &mut woken).unwrap(),
            }
            for t in woken.drain(..) {
                let i = t as usize;
                let earliest = waiting[i].take().expect("woken once, while waiting");
                if r.take_timeout(pipes[i].0, Dir::Read) {
                    assert!(r.now() >= earliest, "timed out at {} ms, before {earliest}", r.now());
                    timeouts += 1;
                } else {
                    assert!(unread[i], "woken by readiness with nothing to read");
                    drain(&mut r, pipes[i].0);
                    unread[i] = false;
                    readies += 1;
                }
            }
            assert_eq!(r.pending(), waiting.iter().flatten().count());
            assert!(r.wheel.len() <= PIPES, "{} timers for {PIPES} fds", r.wheel.len());
        }
        assert!(timeouts > 20 && readies > 20, "{timeouts} timeouts, {readies} wake-ups by readiness");
        for (rd, wr) in pipes {
            r.remove(rd, &mut woken);
            sys::close(rd);
            sys::close(wr);
        }
        assert_eq!((r.pending(), r.wheel.len()), (0, 0));
    }

    #[test]
    fn a_timer_ends_the_wait_and_leaves_timed_out() {
        let mut r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        r.add(rd).unwrap();
        r.wait(rd, Dir::Read, 3, Some(5));
        r.sleep(9, 1);
        let mut woken = Vec::new();
        while woken.len() < 2 {
            r.poll(None, &mut woken).unwrap();
        }
        assert_eq!(woken, [9, 3]);
        assert!(r.now() >= 5);
        assert_eq!(r.waiter(rd, Dir::Read), None);
        assert!(r.take_timeout(rd, Dir::Read));
        assert!(!r.take_timeout(rd, Dir::Read));
        // A late edge finds no waiter: readiness is cached, nobody is woken.
        sys::write(wr, b"x").unwrap();
        woken.clear();
        r.poll(Some(1000), &mut woken).unwrap();
        assert!(woken.is_empty());
        assert!(r.is_ready(rd, Dir::Read));
        sys::close(wr);
    }

    #[test]
    fn a_hang_up_keeps_reads_ready_after_a_short_read() {
        let mut r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        r.add(rd).unwrap();
        sys::write(wr, b"last").unwrap();
        sys::close(wr);
        let mut woken = Vec::new();
        r.poll(Some(1000), &mut woken).unwrap();
        // Data and hang-up came in one edge: after draining the data the read
        // must still be tried (to see EOF), as no further edge will come.
        r.set_ready(rd, Dir::Read, false);
        assert!(r.is_ready(rd, Dir::Read));
        r.remove(rd, &mut woken);
        sys::close(rd);
    }

    #[test]
    fn remove_wakes_both_waiters() {
        let mut r = Reactor::new().unwrap();
        let (rd, wr) = pipe();
        r.add(rd).unwrap();
        r.wait(rd, Dir::Read, 1, Some(1000));
        r.set_ready(rd, Dir::Write, false);
        r.wait(rd, Dir::Write, 2, None);
        assert_eq!(r.pending(), 2);
        let mut woken = Vec::new();
        r.remove(rd, &mut woken);
        assert_eq!((woken, r.pending()), (vec![1, 2], 0));
        sys::close(rd);
        sys::close(wr);
    }
}
