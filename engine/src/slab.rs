//! A generational slab: values in reusable slots, each reached by a `Handle`
//! that names its slot and the slot's generation. Removing a value bumps the
//! generation, so a handle kept past its value's removal (a wake on its way to
//! a thread that was killed, a pool that was forgotten) finds nothing, even
//! when the slot holds a new value by then.

/// A slot and its generation when the value was put there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle {
    slot: u32,
    gen: u32,
}

impl Handle {
    /// The slot, for tables indexed beside the slab (never for identity).
    pub fn slot(self) -> u32 {
        self.slot
    }

    /// A handle of generation 0, for the engine's unit tests.
    #[cfg(test)]
    pub(crate) fn test(slot: u32) -> Handle {
        Handle { slot, gen: 0 }
    }
}

#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Slab<T> {
        Slab { slots: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    pub fn insert(&mut self, x: T) -> Handle {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                assert!(self.slots.len() < u32::MAX as usize, "slab full");
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.1 = Some(x);
        self.len += 1;
        Handle { slot, gen: s.0 }
    }

    pub fn get(&self, h: Handle) -> Option<&T> {
        match self.slots.get(h.slot as usize) {
            Some((gen, Some(x))) if *gen == h.gen => Some(x),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, h: Handle) -> Option<&mut T> {
        match self.slots.get_mut(h.slot as usize) {
            Some((gen, Some(x))) if *gen == h.gen => Some(x),
            _ => None,
        }
    }

    pub fn contains(&self, h: Handle) -> bool {
        self.get(h).is_some()
    }

    /// Takes the value out; its handle goes stale.
    pub fn remove(&mut self, h: Handle) -> Option<T> {
        self.get(h)?;
        let s = &mut self.slots[h.slot as usize];
        s.0 = s.0.wrapping_add(1);
        self.free.push(h.slot);
        self.len -= 1;
        s.1.take()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every value, with its handle.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Handle, &mut T)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, (gen, x))| Some((Handle { slot: i as u32, gen: *gen }, x.as_mut()?)))
    }

    /// Takes every value out; every handle goes stale.
    pub fn drain(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for (i, (gen, x)) in self.slots.iter_mut().enumerate() {
            if let Some(x) = x.take() {
                *gen = gen.wrapping_add(1);
                self.free.push(i as u32);
                out.push(x);
            }
        }
        self.len = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_handle_finds_nothing_in_its_reused_slot() {
        let mut s = Slab::default();
        let a = s.insert('a');
        assert_eq!(s.remove(a), Some('a'));
        assert_eq!(s.remove(a), None, "removed once");
        let b = s.insert('b');
        assert_eq!(b.slot(), a.slot(), "the slot is reused");
        assert_ne!(a, b);
        assert_eq!((s.get(a), s.contains(a)), (None, false));
        assert_eq!(s.get_mut(a), None);
        assert_eq!((s.get(b), s.len()), (Some(&'b'), 1));
        let c = s.insert('c');
        assert_eq!(s.drain(), ['b', 'c']);
        assert!(s.is_empty() && s.get(b).is_none() && s.get(c).is_none());
        let d = s.insert('d');
        assert!(d.slot() < 2 && d != b && d != c);
        let e = s.insert('e');
        assert_eq!(s.slots.len(), 2, "every slot reused");
        assert_eq!(s.iter_mut().map(|(h, x)| (h, *x)).collect::<Vec<_>>(), [(e, 'e'), (d, 'd')]);
        assert_eq!(s.remove(e), Some('e'));
    }
}
