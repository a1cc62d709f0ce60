//! `ngx.shared.DICT`'s store: a dictionary with a byte budget, expiry and
//! LRU eviction, OpenResty's semantics (lua-nginx-module's shdict), without
//! Lua. Per process: coevent has no shared-memory zone. Times are
//! milliseconds on a clock the caller passes in, so the tests drive it.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// What a value holds. Lists hold strings and numbers, as OpenResty's.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Bool(bool),
    Num(f64),
    Str(Vec<u8>),
    List(VecDeque<Val>),
}

/// Bytes an entry costs beyond its key and value: about the node and the
/// list links of OpenResty's slab, so the number of entries a size holds is
/// of the same order.
pub const OVERHEAD: usize = 64;
/// OpenResty evicts at most this many old entries to make room for one.
const EVICT_MAX: usize = 30;

#[derive(Debug)]
struct Entry {
    val: Val,
    flags: u32,
    /// The first millisecond it is dead in; `NEVER` for none. (The API's 0
    /// for never is mapped to it, so a flush at time 0 can expire.)
    expires: u64,
    tick: u64,
}

#[derive(Debug, PartialEq)]
pub enum Err {
    NoMemory,
    Exists,
    NotFound,
    NotANumber,
    NotAList,
}

impl Err {
    /// OpenResty's words.
    pub fn as_str(&self) -> &'static str {
        match self {
            Err::NoMemory => "no memory",
            Err::Exists => "exists",
            Err::NotFound => "not found",
            Err::NotANumber => "not a number",
            Err::NotAList => "value not a list",
        }
    }
}

/// How `store` treats an entry of the key: set, add (only if absent or
/// expired), replace (only if present); the safe ones never evict live entries.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Mode {
    Set,
    SafeSet,
    Add,
    SafeAdd,
    Replace,
}

#[derive(Debug)]
pub struct Dict {
    cap: usize,
    used: usize,
    map: HashMap<Vec<u8>, Entry>,
    /// Least recently used first.
    lru: BTreeMap<u64, Vec<u8>>,
    tick: u64,
}

fn val_size(v: &Val) -> usize {
    match v {
        Val::Bool(_) => 1,
        Val::Num(_) => 8,
        Val::Str(s) => s.len(),
        Val::List(l) => l.iter().map(|v| val_size(v) + 16).sum(),
    }
}

const NEVER: u64 = u64::MAX;

fn live(e: &Entry, now: u64) -> bool {
    e.expires > now
}

/// The API's expiry (0: never) as an entry keeps it.
fn kept(expires: u64) -> u64 {
    if expires == 0 {
        NEVER
    } else {
        expires
    }
}

/// An expiry time in ms from a ttl in seconds (0: never). A ttl past a C
/// long of milliseconds (`math.huge`, `1e300`, `2^63`), or NaN, is never, as
/// OpenResty's conversion makes it; below that the sum saturates.
pub fn deadline(now: u64, ttl: f64) -> u64 {
    let ms = (ttl * 1000.0).ceil();
    if ttl > 0.0 && ms < i64::MAX as f64 {
        now.saturating_add((ms as u64).max(1))
    } else {
        0
    }
}

impl Dict {
    pub fn new(cap: usize) -> Dict {
        Dict { cap, used: 0, map: HashMap::new(), lru: BTreeMap::new(), tick: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn free_space(&self) -> usize {
        self.cap.saturating_sub(self.used)
    }

    fn touch(&mut self, key: &[u8]) {
        if let Some(e) = self.map.get_mut(key) {
            self.lru.remove(&e.tick);
            self.tick += 1;
            e.tick = self.tick;
            self.lru.insert(self.tick, key.to_vec());
        }
    }

    fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.map.remove(key)?;
        self.lru.remove(&e.tick);
        self.used -= key.len() + val_size(&e.val) + OVERHEAD;
        Some(e)
    }

    /// The value of a live entry (marked recently used), with its flags.
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<(&Val, u32)> {
        match self.map.get(key) {
            Some(e) if live(e, now) => {}
            _ => return None,
        }
        self.touch(key);
        self.map.get(key).map(|e| (&e.val, e.flags))
    }

    /// Any entry, expired or not: (value, flags, stale).
    pub fn get_stale(&mut self, key: &[u8], now: u64) -> Option<(&Val, u32, bool)> {
        self.map.get(key).map(|e| (&e.val, e.flags, !live(e, now)))
    }

    /// Makes room for `need` more bytes: expired entries first, then (if
    /// `forcible`) up to EVICT_MAX of the least recently used. Returns
    /// whether a live entry was evicted, or None if there is no room.
    fn room(&mut self, need: usize, now: u64, force: bool) -> Option<bool> {
        if need > self.cap {
            return None;
        }
        if self.used + need <= self.cap {
            return Some(false);
        }
        self.flush_expired(now, 0);
        let mut forced = false;
        let mut n = 0;
        while self.used + need > self.cap {
            if !force || n == EVICT_MAX {
                return None;
            }
            let (_, key) = self.lru.pop_first()?;
            let e = self.remove(&key).expect("entry of the lru");
            forced |= live(&e, now);
            n += 1;
        }
        Some(forced)
    }

    /// set, add, replace and their safe forms. `val` None deletes.
    /// Ok(forcible).
    pub fn store(
        &mut self,
        mode: Mode,
        key: &[u8],
        val: Option<Val>,
        expires: u64,
        flags: u32,
        now: u64,
    ) -> Result<bool, Err> {
        let present = self.map.get(key).is_some_and(|e| live(e, now));
        let force = !matches!(mode, Mode::SafeSet | Mode::SafeAdd);
        match mode {
            Mode::Add | Mode::SafeAdd if present => return Err(Err::Exists),
            Mode::Replace if !present => return Err(Err::NotFound),
            _ => {}
        }
        let old = self.remove(key);
        let Some(val) = val else { return Ok(false) };
        let expires = kept(expires);
        let need = key.len() + val_size(&val) + OVERHEAD;
        let Some(forced) = self.room(need, now, force) else {
            // OpenResty's set drops the old value when the new one fits nowhere.
            if let (Some(old), false) = (old, matches!(mode, Mode::Set | Mode::SafeSet)) {
                self.insert(key, old.val, old.expires, old.flags);
            }
            return Err(Err::NoMemory);
        };
        self.insert(key, val, expires, flags);
        Ok(forced)
    }

    fn insert(&mut self, key: &[u8], val: Val, expires: u64, flags: u32) {
        self.used += key.len() + val_size(&val) + OVERHEAD;
        self.tick += 1;
        self.lru.insert(self.tick, key.to_vec());
        self.map.insert(key.to_vec(), Entry { val, flags, expires, tick: self.tick });
    }

    /// incr(key, by, init, init_ttl): Ok((new value, forcible)).
    pub fn incr(&mut self, key: &[u8], by: f64, init: Option<(f64, u64)>, now: u64) -> Result<(f64, bool), Err> {
        match self.map.get_mut(key) {
            Some(e) if live(e, now) => {
                let Val::Num(n) = &mut e.val else { return Err(Err::NotANumber) };
                *n += by;
                let n = *n;
                self.touch(key);
                Ok((n, false))
            }
            _ => {
                let Some((init, expires)) = init else { return Err(Err::NotFound) };
                let v = init + by;
                let forced = self.store(Mode::Set, key, Some(Val::Num(v)), expires, 0, now)?;
                Ok((v, forced))
            }
        }
    }

    /// lpush (front) / rpush: the list's new length.
    pub fn push(&mut self, key: &[u8], v: Val, front: bool, now: u64) -> Result<usize, Err> {
        match self.map.get(key) {
            Some(e) if live(e, now) => {
                if !matches!(e.val, Val::List(_)) {
                    return Err(Err::NotAList);
                }
                let need = val_size(&v) + 16;
                self.room(need, now, true).ok_or(Err::NoMemory)?;
                // room() may have evicted the list itself.
                let Some(e) = self.map.get_mut(key) else {
                    return self.push(key, v, front, now);
                };
                let Val::List(l) = &mut e.val else { unreachable!() };
                if front {
                    l.push_front(v)
                } else {
                    l.push_back(v)
                }
                let n = l.len();
                self.used += need;
                self.touch(key);
                Ok(n)
            }
            _ => {
                self.store(Mode::Set, key, Some(Val::List(VecDeque::from([v]))), 0, 0, now)?;
                Ok(1)
            }
        }
    }

    /// lpop / rpop. An emptied list goes away, as OpenResty's.
    pub fn pop(&mut self, key: &[u8], front: bool, now: u64) -> Result<Option<Val>, Err> {
        let Some(e) = self.map.get_mut(key).filter(|e| live(e, now)) else { return Ok(None) };
        let Val::List(l) = &mut e.val else { return Err(Err::NotAList) };
        let v = if front { l.pop_front() } else { l.pop_back() };
        let empty = l.is_empty();
        if let Some(v) = &v {
            self.used -= val_size(v) + 16;
        }
        if empty {
            self.remove(key);
        }
        Ok(v)
    }

    pub fn llen(&mut self, key: &[u8], now: u64) -> Result<usize, Err> {
        match self.map.get(key).filter(|e| live(e, now)) {
            None => Ok(0),
            Some(Entry { val: Val::List(l), .. }) => Ok(l.len()),
            Some(_) => Err(Err::NotAList),
        }
    }

    /// Marks every entry expired (get_stale still sees them), as OpenResty's.
    pub fn flush_all(&mut self, now: u64) {
        for e in self.map.values_mut() {
            e.expires = now;
        }
    }

    /// Removes expired entries, at most `max` (0: all); returns how many.
    pub fn flush_expired(&mut self, now: u64, max: usize) -> usize {
        let dead: Vec<Vec<u8>> = self
            .lru
            .values()
            .filter(|k| !live(&self.map[*k], now))
            .take(if max == 0 { usize::MAX } else { max })
            .cloned()
            .collect();
        for k in &dead {
            self.remove(k);
        }
        dead.len()
    }

    /// Live keys, at most `max` (0: all), least recently used first.
    pub fn keys(&self, now: u64, max: usize) -> Vec<&[u8]> {
        let live_keys = self.lru.values().filter(|k| live(&self.map[*k], now));
        live_keys.take(if max == 0 { usize::MAX } else { max }).map(|k| k.as_slice()).collect()
    }

    /// Seconds left (0: never expires), or None if absent.
    pub fn ttl(&self, key: &[u8], now: u64) -> Option<f64> {
        let e = self.map.get(key).filter(|e| live(e, now))?;
        Some(if e.expires == NEVER { 0.0 } else { (e.expires - now) as f64 / 1000.0 })
    }

    /// Sets a live entry's expiry; false if absent.
    pub fn expire(&mut self, key: &[u8], expires: u64, now: u64) -> bool {
        match self.map.get_mut(key).filter(|e| live(e, now)) {
            Some(e) => {
                e.expires = kept(expires);
                true
            }
            None => false,
        }
    }
}

/// A size as lua_shared_dict and resty's --shdict write it: "10m", "512k", "4096".
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, mul) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024),
        b'm' | b'M' => (&s[..s.len() - 1], 1024 * 1024),
        b'g' | b'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<usize>().ok()?.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<Val> {
        Some(Val::Str(v.as_bytes().to_vec()))
    }

    #[test]
    fn set_get_expiry_and_stale() {
        let mut d = Dict::new(1 << 20);
        assert_eq!(d.store(Mode::Set, b"k", s("v"), deadline(0, 1.5), 7, 0), Ok(false));
        assert_eq!(d.get(b"k", 1499), Some((&Val::Str(b"v".to_vec()), 7)));
        assert_eq!(d.ttl(b"k", 500), Some(1.0));
        assert_eq!(d.get(b"k", 1500), None);
        assert_eq!(d.get_stale(b"k", 1500), Some((&Val::Str(b"v".to_vec()), 7, true)));
        assert_eq!(d.store(Mode::Replace, b"k", s("w"), 0, 0, 1500), Err(Err::NotFound));
        assert_eq!(d.store(Mode::Add, b"k", s("w"), 0, 0, 1500), Ok(false));
        assert_eq!(d.store(Mode::Add, b"k", s("x"), 0, 0, 1500), Err(Err::Exists));
        assert_eq!(d.ttl(b"k", 9999), Some(0.0));
        assert!(d.expire(b"k", deadline(2000, 1.0), 2000));
        assert_eq!(d.keys(2999, 0), vec![b"k".as_slice()]);
        assert!(d.keys(3000, 0).is_empty());
        assert_eq!(d.flush_expired(3000, 0), 1);
        assert_eq!(d.free_space(), 1 << 20);
    }

    #[test]
    fn lru_eviction_is_forcible_and_safe_set_is_not() {
        let per = 1 + 100 + OVERHEAD;
        let mut d = Dict::new(per * 3);
        let v = || Some(Val::Str(vec![b'x'; 100]));
        for k in [b"a", b"b", b"c"] {
            assert_eq!(d.store(Mode::Set, k, v(), 0, 0, 0), Ok(false));
        }
        assert_eq!(d.free_space(), 0);
        d.get(b"a", 0); // a is now the most recent: b goes first
        assert_eq!(d.store(Mode::SafeSet, b"d", v(), 0, 0, 0), Err(Err::NoMemory));
        assert_eq!(d.store(Mode::Set, b"d", v(), 0, 0, 0), Ok(true));
        assert_eq!(d.keys(0, 0), vec![b"c".as_slice(), b"a", b"d"]);
        // An expired entry makes room without forcing.
        d.expire(b"c", 5, 0);
        assert_eq!(d.store(Mode::Set, b"e", v(), 0, 0, 10), Ok(false));
        assert_eq!(d.keys(10, 2), vec![b"a".as_slice(), b"d"]);
        // Too big for the whole dictionary.
        assert_eq!(d.store(Mode::Set, b"f", Some(Val::Str(vec![0; per * 3])), 0, 0, 10), Err(Err::NoMemory));
    }

    #[test]
    fn incr_and_lists() {
        let mut d = Dict::new(1 << 16);
        assert_eq!(d.incr(b"n", 1.0, None, 0), Err(Err::NotFound));
        assert_eq!(d.incr(b"n", 2.0, Some((10.0, 0)), 0), Ok((12.0, false)));
        assert_eq!(d.incr(b"n", -0.5, None, 0), Ok((11.5, false)));
        d.store(Mode::Set, b"s", s("x"), 0, 0, 0).unwrap();
        assert_eq!(d.incr(b"s", 1.0, None, 0), Err(Err::NotANumber));
        assert_eq!(d.push(b"s", Val::Num(1.0), true, 0), Err(Err::NotAList));
        assert_eq!(d.push(b"l", Val::Num(1.0), true, 0), Ok(1));
        assert_eq!(d.push(b"l", Val::Num(2.0), true, 0), Ok(2));
        assert_eq!(d.push(b"l", Val::Str(b"z".to_vec()), false, 0), Ok(3));
        assert_eq!(d.llen(b"l", 0), Ok(3));
        assert_eq!(d.pop(b"l", true, 0), Ok(Some(Val::Num(2.0))));
        assert_eq!(d.pop(b"l", false, 0), Ok(Some(Val::Str(b"z".to_vec()))));
        assert_eq!(d.pop(b"l", false, 0), Ok(Some(Val::Num(1.0))));
        assert_eq!(d.pop(b"l", false, 0), Ok(None));
        assert_eq!(d.llen(b"l", 0), Ok(0));
        d.flush_all(5);
        assert_eq!(d.get(b"n", 5), None);
        assert!(d.get_stale(b"n", 5).is_some());
    }

    #[test]
    fn flush_all_in_the_first_millisecond() {
        let mut d = Dict::new(1 << 16);
        d.store(Mode::Set, b"a", s("x"), 0, 0, 0).unwrap();
        d.store(Mode::Set, b"b", s("y"), deadline(0, 10.0), 0, 0).unwrap();
        d.flush_all(0);
        assert_eq!(d.get(b"a", 0), None);
        assert_eq!(d.get(b"b", 0), None);
        assert_eq!(d.get_stale(b"a", 0), Some((&Val::Str(b"x".to_vec()), 0, true)));
        assert!(d.keys(0, 0).is_empty());
        // Written after the flush, in the same millisecond: alive.
        d.store(Mode::Set, b"c", s("z"), 0, 0, 0).unwrap();
        assert_eq!(d.get(b"c", 0), Some((&Val::Str(b"z".to_vec()), 0)));
        assert_eq!(d.flush_expired(0, 0), 2);
    }

    #[test]
    fn huge_ttls_never_expire() {
        let now = 1_000;
        for ttl in [f64::INFINITY, 1e300, 2f64.powi(63), 1e16, f64::NAN] {
            assert_eq!(deadline(now, ttl), 0, "{ttl}");
        }
        // The largest that fits stays a deadline, saturated.
        assert_eq!(deadline(now, 9e15), now + 9_000_000_000_000_000_000);
        assert_eq!(deadline(u64::MAX - 5, 1.0), u64::MAX);
        let mut d = Dict::new(1 << 16);
        d.store(Mode::Set, b"k", s("v"), deadline(now, f64::INFINITY), 0, now).unwrap();
        assert_eq!(d.get(b"k", now + 1), Some((&Val::Str(b"v".to_vec()), 0)));
        assert_eq!(d.ttl(b"k", now + 1), Some(0.0));
        assert_eq!(d.incr(b"n", 1.0, Some((1.0, deadline(now, 1e300))), now), Ok((2.0, false)));
        assert_eq!(d.ttl(b"n", now + 1), Some(0.0));
        assert!(d.expire(b"n", deadline(now, 2f64.powi(63)), now));
        assert_eq!(d.get(b"n", u64::MAX - 1), Some((&Val::Num(2.0), 0)));
        d.store(Mode::Set, b"s", s("v"), deadline(now, 9e15), 0, now).unwrap();
        assert_eq!(d.get(b"s", now + 1), Some((&Val::Str(b"v".to_vec()), 0)));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("x"), None);
    }
}
