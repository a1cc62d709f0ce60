//! LuaJIT's received data: handed to the prelude as a length and where a
//! copy is, which LuaJIT's `ffi.string` makes into a Lua string, instead of
//! a string made here. On the guarded modules (docs/guarantees.md) a string
//! made in Rust costs a protected call, about 2,800 instructions; and a
//! finalizer that LuaJIT's allocation runs raises, if it does, in Lua, where
//! that is an ordinary error.
//!
//! The copies go one after another into an area that is never moved, and
//! which starts over only when a resume has ended: a thread makes its string
//! before it next yields, so by then every copy has been read, and a receive
//! that runs before the string is made (a debug hook's) copies elsewhere.
//! A thread run in that gap (started by the hook) starts over only at where
//! the area was filled to when it began: the copies below are another's.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;

use mlua::{LightUserData, Lua, Result, Value};

use crate::ret::Ret;

/// The area's size, and the longest data lent: longer data is made into a
/// string here, where the protected call is small beside its copy.
const AREA: usize = 16 * 1024;
const MAX: usize = 4 * 1024;

#[derive(Default)]
pub struct Lend {
    used: Cell<usize>,
    /// Where a resume's end starts the area over: above the copies still
    /// unread by a thread that another runs inside of.
    floor: Cell<usize>,
    /// Empty until the prelude turns lending on.
    area: RefCell<Box<[u8]>>,
}

impl Lend {
    /// Turns lending on (LuaJIT's prelude, with its `ffi`): the area's
    /// address, to which a lend's offset is added. (An offset, not an
    /// address: LuaJIT compiles no conversion of a light userdata.)
    pub fn start(&self) -> LightUserData {
        let mut area = self.area.borrow_mut();
        *area = vec![0; AREA].into_boxed_slice();
        LightUserData(area.as_mut_ptr() as *mut c_void)
    }

    /// `d` for Lua: `len, offset` if lent, else the string.
    pub fn data(&self, lua: &Lua, d: &[u8]) -> Result<Ret> {
        match self.lend(d) {
            Some(at) => Ok((Value::Integer(d.len() as i64), Value::Integer(at as i64), Value::Nil)),
            None => Ok((Value::String(lua.create_string(d)?), Value::Nil, Value::Nil)),
        }
    }

    /// Copies `d` into the area: its offset, or None if lending is off or
    /// the area has no room.
    fn lend(&self, d: &[u8]) -> Option<usize> {
        let mut area = self.area.try_borrow_mut().ok()?;
        if area.is_empty() || d.len() > MAX {
            return None;
        }
        let at = self.used.get();
        area.get_mut(at..at + d.len())?.copy_from_slice(d);
        self.used.set(at + d.len());
        Some(at)
    }

    /// A thread's run begins, maybe inside another's: what is lent so far
    /// stays until `restore` is given the floor returned.
    pub fn hold(&self) -> usize {
        self.floor.replace(self.used.get())
    }

    pub fn restore(&self, floor: usize) {
        self.floor.set(floor);
    }

    /// A resume has ended: every copy since its run began has been made into
    /// a string.
    pub fn clear(&self) {
        self.used.set(self.floor.get());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lent(r: Ret) -> (i64, usize) {
        match r {
            (Value::Integer(n), Value::Integer(at), Value::Nil) => (n, at as usize),
            r => panic!("not lent: {r:?}"),
        }
    }

    fn made(r: Ret) -> Vec<u8> {
        match r {
            (Value::String(s), Value::Nil, Value::Nil) => s.as_bytes().to_vec(),
            r => panic!("not a string: {r:?}"),
        }
    }

    #[test]
    fn copies_follow_each_other_until_the_area_is_full() {
        let lua = Lua::new();
        let l = Lend::default();
        assert_eq!(made(l.data(&lua, b"off").unwrap()), b"off", "before start: a string");
        l.start();
        assert_eq!(lent(l.data(&lua, b"abc").unwrap()), (3, 0));
        assert_eq!(lent(l.data(&lua, b"").unwrap()), (0, 3));
        let big = vec![7; MAX];
        assert_eq!(made(l.data(&lua, &[1; MAX + 1]).unwrap()).len(), MAX + 1, "longer than MAX");
        for i in 0..(AREA - 3) / MAX {
            assert_eq!(lent(l.data(&lua, &big).unwrap()), (MAX as i64, 3 + i * MAX));
        }
        assert_eq!(made(l.data(&lua, &big).unwrap()), big, "no room left");
        assert_eq!(&l.area.borrow()[..4], b"abc\x07", "the first copies in place");
        l.clear();
        assert_eq!(lent(l.data(&lua, b"xy").unwrap()), (2, 0), "from the start after a resume");
    }

    #[test]
    fn a_run_inside_another_keeps_its_copies() {
        let lua = Lua::new();
        let l = Lend::default();
        l.start();
        let outer = l.hold();
        assert_eq!(lent(l.data(&lua, b"abc").unwrap()), (3, 0), "the outer thread's, unread");
        let inner = l.hold();
        assert_eq!(lent(l.data(&lua, b"de").unwrap()), (2, 3), "the inner thread's");
        l.clear();
        assert_eq!(lent(l.data(&lua, b"f").unwrap()), (1, 3), "after the inner resume: above the outer copy");
        l.restore(inner);
        l.clear();
        assert_eq!(lent(l.data(&lua, b"g").unwrap()), (1, 0), "after the outer resume: from the start");
        l.restore(outer);
    }
}
