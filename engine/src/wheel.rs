//! Hierarchical timer wheel with millisecond resolution.
//!
//! Six levels of 64 slots; a slot on level `l` spans `64^l` ms, so the wheel
//! reaches about 2^36 ms (~2 years) past `elapsed`. A timer sits on the level
//! of the highest bit where its deadline differs from `elapsed`, so every timer
//! on level `l` is due before any timer on level `l + 1`: the earliest timer is
//! in the first occupied slot of the lowest non-empty level. When time reaches
//! a slot above level 0 its timers cascade to lower levels; a level-0 slot holds
//! one exact deadline, so its timers simply fire.
//!
//! Entries live in a slab reused through a free list and are linked into their
//! slot by `u32` indices, so insert and cancel are O(1) and allocation-free once
//! the slab has grown. A `TimerId` carries its entry's generation: cancelling a
//! timer that has fired (or was cancelled) finds another generation and does
//! nothing, even when the entry serves a new timer by then.

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Furthest a deadline may lie past `elapsed`: 63 top-level slots. The top
/// level is used as a ring (a deadline can cross a 2^36 boundary), and staying
/// short of a full turn keeps timers out of its current slot.
const MAX_SPAN: u64 = 63 << (SLOT_BITS * (LEVELS as u32 - 1));
/// End of a slot list or of the free list.
const NIL: u32 = u32::MAX;
/// `Entry::list` of a slab entry that is on the free list.
const FREE: u16 = u16::MAX;

/// Handle to a timer: its entry and the entry's generation then. Stale once
/// the timer fires or is cancelled (see `Wheel::cancel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerId {
    idx: u32,
    gen: u32,
}

struct Entry<P> {
    deadline: u64,
    payload: P,
    /// Bumped each time the entry is released.
    gen: u32,
    /// Neighbours in the slot list (or `NIL`); `next` also links the free list.
    prev: u32,
    next: u32,
    /// Index into `Wheel::heads` (`level * 64 + slot`), or `FREE`.
    list: u16,
}

/// Timers carrying a payload `P` each, given back when they fire.
pub struct Wheel<P = u64> {
    /// Current time in ms; only moves forward.
    elapsed: u64,
    slab: Vec<Entry<P>>,
    free: u32,
    len: usize,
    /// Per level, bit `s` is set iff slot `s` is non-empty.
    occupied: [u64; LEVELS],
    heads: [u32; LEVELS * SLOTS],
}

impl<P: Copy> Default for Wheel<P> {
    fn default() -> Wheel<P> {
        Wheel::new()
    }
}

impl<P: Copy> Wheel<P> {
    pub fn new() -> Wheel<P> {
        Wheel { elapsed: 0, slab: Vec::new(), free: NIL, len: 0, occupied: [0; LEVELS], heads: [NIL; LEVELS * SLOTS] }
    }

    /// Schedules `payload` at absolute time `deadline` (ms). Past deadlines
    /// fire at the next poll; deadlines beyond the span are clamped to it.
    pub fn insert(&mut self, deadline: u64, payload: P) -> TimerId {
        let max = self.elapsed.saturating_add(MAX_SPAN);
        let deadline = deadline.clamp(self.elapsed, max);
        let idx = if self.free != NIL {
            let idx = self.free;
            let e = &mut self.slab[idx as usize];
            self.free = e.next;
            (e.deadline, e.payload) = (deadline, payload);
            idx
        } else {
            assert!(self.slab.len() < NIL as usize, "timer wheel full");
            self.slab.push(Entry { deadline, payload, gen: 0, prev: NIL, next: NIL, list: FREE });
            (self.slab.len() - 1) as u32
        };
        self.link(idx);
        self.len += 1;
        TimerId { idx, gen: self.slab[idx as usize].gen }
    }

    /// Removes a pending timer and returns its payload; None if `id` is stale
    /// (its timer fired or was cancelled already).
    pub fn cancel(&mut self, id: TimerId) -> Option<P> {
        let e = self.slab.get(id.idx as usize)?;
        if e.gen != id.gen || e.list == FREE {
            return None;
        }
        self.unlink(id.idx);
        Some(self.release(id.idx))
    }

    /// Advances to `now` and appends the payloads of all timers due by then
    /// to `fired`, in deadline order.
    pub fn poll(&mut self, now: u64, fired: &mut Vec<P>) {
        let now = now.max(self.elapsed);
        while let Some((level, start)) = self.next_slot() {
            if start > now {
                break;
            }
            // Relative to the slot's start its timers all sit on lower levels,
            // so re-linking them cascades them down; level 0 ones are due.
            self.elapsed = start;
            let slot = (start >> (SLOT_BITS * level as u32)) & SLOT_MASK;
            let mut idx = std::mem::replace(&mut self.heads[level * SLOTS + slot as usize], NIL);
            self.occupied[level] &= !(1 << slot);
            while idx != NIL {
                let next = self.slab[idx as usize].next;
                if level == 0 {
                    debug_assert_eq!(self.slab[idx as usize].deadline, start);
                    fired.push(self.release(idx));
                } else {
                    self.link(idx);
                }
                idx = next;
            }
        }
        self.elapsed = now;
    }

    /// When `poll` should next be called: never after the earliest deadline,
    /// but possibly before it when that timer still has to cascade down.
    pub fn next_deadline(&self) -> Option<u64> {
        self.next_slot().map(|(_, start)| start)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Level and start time of the earliest non-empty slot.
    fn next_slot(&self) -> Option<(usize, u64)> {
        let level = self.occupied.iter().position(|&o| o != 0)?;
        let shift = SLOT_BITS * level as u32;
        let pos = self.elapsed >> shift;
        // Occupied slots are at or after the current one (ahead of it above
        // level 0, wrapping only on the top level), so rotating the current
        // slot to bit 0 makes the first set bit the earliest.
        let ahead = self.occupied[level].rotate_right((pos & SLOT_MASK) as u32);
        Some((level, (pos + u64::from(ahead.trailing_zeros())) << shift))
    }

    /// Pushes entry `idx` onto the slot its deadline maps to from `elapsed`.
    fn link(&mut self, idx: u32) {
        let deadline = self.slab[idx as usize].deadline;
        let level = level_for(self.elapsed, deadline);
        let slot = (deadline >> (SLOT_BITS * level as u32)) & SLOT_MASK;
        let list = level * SLOTS + slot as usize;
        let head = self.heads[list];
        if head != NIL {
            self.slab[head as usize].prev = idx;
        }
        let e = &mut self.slab[idx as usize];
        e.prev = NIL;
        e.next = head;
        e.list = list as u16;
        self.heads[list] = idx;
        self.occupied[level] |= 1 << slot;
    }

    fn unlink(&mut self, idx: u32) {
        let e = &self.slab[idx as usize];
        let (prev, next, list) = (e.prev, e.next, e.list as usize);
        if prev == NIL {
            self.heads[list] = next;
        } else {
            self.slab[prev as usize].next = next;
        }
        if next != NIL {
            self.slab[next as usize].prev = prev;
        }
        if self.heads[list] == NIL {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
    }

    /// Puts an unlinked entry on the free list and returns its payload.
    fn release(&mut self, idx: u32) -> P {
        let e = &mut self.slab[idx as usize];
        e.list = FREE;
        e.gen = e.gen.wrapping_add(1);
        e.next = self.free;
        self.free = idx;
        self.len -= 1;
        e.payload
    }
}

/// Level of `deadline` seen from `elapsed`: the highest differing bit, in
/// 6-bit steps. Past the top level (a deadline across a 2^36 boundary) the
/// top level's slots serve as a ring.
fn level_for(elapsed: u64, deadline: u64) -> usize {
    let bit = 63 - ((elapsed ^ deadline) | SLOT_MASK).leading_zeros();
    (bit / SLOT_BITS).min(LEVELS as u32 - 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::collections::HashMap;

    /// Polls at each `next_deadline` until empty; returns `(poll time,
    /// payload)` per fired timer. Each poll must fire or cascade something.
    fn drain_stepwise(w: &mut Wheel) -> Vec<(u64, u64)> {
        let budget = 6 * w.len();
        let (mut out, mut fired, mut polls) = (Vec::new(), Vec::new(), 0);
        while let Some(at) = w.next_deadline() {
            assert!(at >= w.elapsed);
            w.poll(at, &mut fired);
            out.extend(fired.drain(..).map(|p| (at, p)));
            polls += 1;
            assert!(polls <= budget, "no progress at {at}");
        }
        out
    }

    fn sorted(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
        v.sort_unstable();
        v
    }

    #[test]
    fn matches_sorted_model() {
        for seed in [1, 0x9e37_79b9_7f4a_7c15, 12_345] {
            let mut rng = Rng(seed);
            let mut w = Wheel::new();
            // (clamped deadline, payload, id) of each pending timer.
            let mut model: Vec<(u64, u64, TimerId)> = Vec::new();
            let (mut now, mut payload, mut fired) = (0u64, 0u64, Vec::new());
            for _ in 0..3000 {
                for _ in 0..rng.below(8) {
                    // Mostly future deadlines on all levels (some past the
                    // span), some in the past.
                    let d = if rng.below(10) == 0 { now.saturating_sub(rng.below(100)) } else { now + rng.spread(38) };
                    payload += 1;
                    let id = w.insert(d, payload);
                    model.push((d.clamp(now, now + MAX_SPAN), payload, id));
                }
                if !model.is_empty() && rng.below(3) == 0 {
                    let (_, p, id) = model.swap_remove(rng.below(model.len() as u64) as usize);
                    assert_eq!(w.cancel(id), Some(p));
                }
                assert_eq!(w.len(), model.len());
                match (w.next_deadline(), model.iter().map(|e| e.0).min()) {
                    (None, None) => {}
                    (Some(next), Some(earliest)) => {
                        assert!(next <= earliest, "{next} > {earliest}");
                        assert!(next > now || earliest <= now);
                    }
                    other => panic!("next_deadline vs model: {other:?}"),
                }
                // Irregular steps, some across several levels, some stale.
                let target = match rng.below(16) {
                    0 | 1 => now + rng.spread(38),
                    2 => now.saturating_sub(rng.below(50)),
                    3 => now,
                    _ => now + rng.below(100),
                };
                w.poll(target, &mut fired);
                now = now.max(target);
                let (mut due, rest): (Vec<_>, Vec<_>) = model.iter().partition(|e| e.0 <= now);
                model = rest;
                due.sort_unstable_by_key(|e| e.0);
                let deadline_of: HashMap<u64, u64> = due.iter().map(|e| (e.1, e.0)).collect();
                let got: Vec<u64> = fired.drain(..).map(|p| deadline_of[&p]).collect();
                let want: Vec<u64> = due.iter().map(|e| e.0).collect();
                // Same length + every payload due + deadline order = exact match.
                assert_eq!(got, want);
                assert_eq!(w.len(), model.len());
            }
            let want = sorted(model.iter().map(|e| (e.0, e.1)).collect());
            assert_eq!(sorted(drain_stepwise(&mut w)), want);
        }
    }

    #[test]
    fn stepping_next_deadline_fires_exactly_on_time() {
        let mut rng = Rng(7);
        let mut w = Wheel::new();
        w.poll(rng.next() >> 20, &mut Vec::new());
        let start = w.elapsed;
        let mut want = Vec::new();
        for p in 0..2000 {
            let d = start + rng.spread(37);
            w.insert(d, p);
            want.push((d.min(start + MAX_SPAN), p));
        }
        let got = drain_stepwise(&mut w);
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(sorted(got), sorted(want));
    }

    #[test]
    fn early_next_deadline_cascades() {
        let mut w = Wheel::new();
        let mut fired = Vec::new();
        w.poll(60, &mut fired);
        w.insert(70, 1); // level 1 from 60: crosses the 64 ms boundary
        assert_eq!(w.next_deadline(), Some(64));
        w.poll(64, &mut fired);
        assert!(fired.is_empty());
        assert_eq!(w.next_deadline(), Some(70));
        w.poll(69, &mut fired);
        assert!(fired.is_empty());
        w.poll(70, &mut fired);
        assert_eq!(fired, [1]);
    }

    #[test]
    fn window_boundaries() {
        for shift in [6, 12, 18, 24, 30, 36] {
            let b = 1u64 << shift;
            let mut w = Wheel::new();
            w.poll(b - 3, &mut Vec::new());
            let deadlines = [b - 2, b - 1, b, b + 1, b + 63, b + 64, b + 4095, b + 4096];
            let deadlines = deadlines.into_iter().chain([2 * b - 1, 2 * b, 2 * b + 5]);
            let mut want = Vec::new();
            for (p, d) in deadlines.enumerate() {
                w.insert(d, p as u64);
                want.push((d.min(b - 3 + MAX_SPAN), p as u64));
            }
            assert_eq!(sorted(drain_stepwise(&mut w)), sorted(want), "boundary 2^{shift}");
        }
    }

    #[test]
    fn cancel_within_one_slot() {
        // Level 0 (one deadline) and level 1 (mixed deadlines) slots.
        for deadlines in [[10; 5], [100, 101, 120, 100, 127]] {
            let mut w = Wheel::new();
            let ids: Vec<TimerId> = (0..5).map(|p| w.insert(deadlines[p], p as u64)).collect();
            // Both list ends (whatever the link order) and the middle.
            for p in [0, 4, 2] {
                assert_eq!(w.cancel(ids[p]), Some(p as u64));
            }
            assert_eq!(w.len(), 2);
            let want = sorted(vec![(deadlines[1], 1), (deadlines[3], 3)]);
            assert_eq!(sorted(drain_stepwise(&mut w)), want);
            // Emptying a slot by cancel clears its occupancy bit.
            let id = w.insert(deadlines[0], 9);
            w.cancel(id);
            assert_eq!(w.next_deadline(), None);
            assert!(w.is_empty());
        }
    }

    #[test]
    fn cancel_cascaded() {
        let mut w = Wheel::new();
        let mut fired = Vec::new();
        let ids: Vec<TimerId> = [1000, 1001, 1002].iter().map(|&d| w.insert(d, d)).collect();
        assert_eq!(w.next_deadline(), Some(960)); // level 1, slot 15
        w.poll(960, &mut fired);
        assert!(fired.is_empty());
        assert!(ids.iter().all(|id| usize::from(w.slab[id.idx as usize].list) < SLOTS));
        assert_eq!(w.cancel(ids[1]), Some(1001));
        w.poll(5000, &mut fired);
        assert_eq!(fired, [1000, 1002]);

        // Cascaded from the top level down to level 0 in one big poll.
        let a = w.insert(5000 + (1 << 33), 1);
        w.insert(5000 + (1 << 33) + 1, 2);
        w.poll(5000 + (1 << 33) - 1, &mut fired);
        assert_eq!(fired, [1000, 1002]);
        assert!(usize::from(w.slab[a.idx as usize].list) < SLOTS);
        assert_eq!(w.cancel(a), Some(1));
        w.poll(u64::MAX, &mut fired);
        assert_eq!(fired, [1000, 1002, 2]);
        assert!(w.is_empty());
    }

    #[test]
    fn far_deadlines() {
        const DAY: u64 = 86_400_000;
        let t0 = 12_345;
        let mut w = Wheel::new();
        w.poll(t0, &mut Vec::new());
        w.insert(t0 + 3 * DAY + 7, 1);
        w.insert(t0 + 400 * DAY, 2);
        w.insert(u64::MAX, 3);
        w.insert(t0 + MAX_SPAN + 1, 4);
        w.insert(t0 + MAX_SPAN, 5);
        let want = vec![
            (t0 + 3 * DAY + 7, 1),
            (t0 + 400 * DAY, 2),
            (t0 + MAX_SPAN, 3),
            (t0 + MAX_SPAN, 4),
            (t0 + MAX_SPAN, 5),
        ];
        assert_eq!(sorted(drain_stepwise(&mut w)), want);

        // Clamped across a 2^36 boundary: the top level wraps.
        let t1 = (1 << 36) - 5;
        w.poll(t1, &mut Vec::new());
        w.insert(u64::MAX, 1);
        w.insert(t1 + (1 << 35), 2);
        let want = vec![(t1 + (1 << 35), 2), (t1 + MAX_SPAN, 1)];
        assert_eq!(drain_stepwise(&mut w), want);

        // Near the end of time the span saturates.
        w.poll(u64::MAX - 10, &mut Vec::new());
        w.insert(u64::MAX, 1);
        assert_eq!(drain_stepwise(&mut w), [(u64::MAX, 1)]);
    }

    #[test]
    fn past_deadline_fires_at_next_poll() {
        let mut w = Wheel::new();
        let mut fired = Vec::new();
        w.poll(1000, &mut fired);
        w.insert(5, 1);
        w.insert(1000, 2);
        w.insert(0, 3);
        assert_eq!(w.next_deadline(), Some(1000));
        w.poll(999, &mut fired); // behind elapsed: treated as elapsed
        fired.sort_unstable();
        assert_eq!(fired, [1, 2, 3]);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn slab_is_reused() {
        let mut rng = Rng(99);
        let mut w = Wheel::new();
        for _ in 0..100_000 {
            let id = w.insert(rng.spread(40), 0);
            w.cancel(id);
        }
        assert_eq!(w.slab.len(), 1);
        let mut fired = Vec::new();
        let mut now = 0;
        for round in 0..100_000 / 64 {
            let ids: Vec<TimerId> = (0..64).map(|p| w.insert(now + rng.spread(20), p)).collect();
            if round % 2 == 0 {
                for id in ids {
                    w.cancel(id);
                }
            } else {
                now += 1 << 20;
                w.poll(now, &mut fired);
                assert_eq!(fired.len(), 64);
                fired.clear();
            }
        }
        assert_eq!(w.slab.len(), 64);
        assert!(w.slab.capacity() < 128);
    }

    /// A stale id (its timer fired, or was cancelled) cancels nothing, not
    /// even the timer that reuses its entry.
    #[test]
    fn a_stale_id_cancels_nothing() {
        let mut w = Wheel::new();
        let fired_id = w.insert(1, 1);
        w.poll(1, &mut Vec::new());
        assert_eq!(w.cancel(fired_id), None, "fired");
        let cancelled = w.insert(5, 2);
        assert_eq!(cancelled.idx, fired_id.idx, "the entry is reused");
        assert_eq!(w.cancel(cancelled), Some(2));
        assert_eq!(w.cancel(cancelled), None, "cancelled twice");
        let live = w.insert(9, 3);
        assert_eq!(live.idx, fired_id.idx);
        assert_eq!((w.cancel(fired_id), w.cancel(cancelled), w.len()), (None, None, 1));
        assert_eq!(w.cancel(TimerId { idx: 400, gen: 0 }), None, "out of the slab");
        let mut fired = Vec::new();
        w.poll(9, &mut fired);
        assert_eq!((fired, w.len()), (vec![3], 0));
    }
}
