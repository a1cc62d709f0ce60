//! ngx.re's native half on the system's PCRE2 (`coevent_engine::sys::pcre`):
//! compile, a pattern's captures, one search. re.lua makes the captures'
//! strings and the replacements.

use std::cell::RefCell;

use coevent_engine::sys::pcre::{self, Matches, Regex};
use mlua::{Lua, MultiValue, Result, Table, Value};

use super::args::{arg, bytes, int, out, string};

/// Compiled regexes live here, named by index; re.lua keeps the index by
/// (pattern, flags), so a pattern is compiled once however often it is used.
/// Past this many the whole cache starts over (patterns made on the fly
/// must not grow memory without bound).
const MAX_REGEXES: usize = 4096;

/// The compiled regexes, named by index, and where searches write.
#[derive(Default)]
pub(super) struct Regexes {
    /// Each with whether it is searched as a DFA (the `d` flag).
    regexes: Vec<(Regex, bool)>,
    /// Where every search writes its match.
    matches: Matches,
    /// The last match's offsets, out of `matches` while they go to Lua.
    offsets: Vec<usize>,
}

// The bits of the flags re.lua passes (FLAGS gives it their letters).
const CASELESS: u32 = 1;
const MULTILINE: u32 = 2;
const DOTALL: u32 = 4;
const EXTENDED: u32 = 8;
const UTF: u32 = 16;
const JIT: u32 = 32;
const ANCHORED: u32 = 64;
const DUPNAMES: u32 = 128;
const DFA: u32 = 256;
const JAVASCRIPT: u32 = 512;
const KNOWN: u32 = CASELESS | MULTILINE | DOTALL | EXTENDED | UTF | JIT | ANCHORED | DUPNAMES | DFA | JAVASCRIPT;

/// ngx.re's option letters: the bit of each (re.lua gets them at load as
/// `N.re_flags`, letter → bit) and its PCRE2 compile option, if it has one.
/// `o` (compile once) has no bit: the cache is always on.
const FLAGS: [(&str, u32, u32); 12] = [
    ("i", CASELESS, pcre::CASELESS),
    ("m", MULTILINE, pcre::MULTILINE),
    ("s", DOTALL, pcre::DOTALL),
    ("x", EXTENDED, pcre::EXTENDED),
    ("u", UTF, pcre::UTF),
    ("U", UTF, pcre::UTF),
    ("j", JIT, 0),
    ("a", ANCHORED, pcre::ANCHORED),
    ("D", DUPNAMES, pcre::DUPNAMES),
    ("d", DFA, 0),
    ("J", JAVASCRIPT, pcre::JAVASCRIPT_COMPAT),
    ("o", 0, 0),
];

/// The table re.lua reads its letters in: letter → bit.
pub(super) fn flags(lua: &Lua) -> Result<Table> {
    lua.create_table_from(FLAGS.iter().map(|&(letter, bit, _)| (letter, bit)))
}

/// `(pattern, flags)` → index | nil, err (PCRE2's message, as OpenResty's).
pub(super) fn re_compile(lua: &Lua, st: &RefCell<Regexes>, a: MultiValue) -> Result<MultiValue> {
    let pat = bytes(&a, 0);
    let f = int(&a, 1) as u32;
    if f & !KNOWN != 0 {
        return Err(mlua::Error::runtime("coevent.ngx: no such ngx.re flag"));
    }
    let options = FLAGS.iter().filter(|(_, bit, _)| f & bit != 0).fold(0, |o, (_, _, opt)| o | opt);
    match Regex::new(&pat, options) {
        Ok(mut re) => {
            if f & JIT != 0 {
                re.jit();
            }
            let st = &mut *st.borrow_mut();
            if st.regexes.len() >= MAX_REGEXES {
                st.regexes.clear();
                return out([Value::Boolean(false)]);
            }
            st.regexes.push((re, f & DFA != 0));
            out([Value::Integer(st.regexes.len() as i64 - 1)])
        }
        Err(e) => {
            // OpenResty's form (on PCRE2), PCRE2's words: pcre2_compile()
            // failed: <msg> in "<pattern>", and at "<the rest>" if it stopped
            // before the end.
            let mut err = b"pcre2_compile() failed: ".to_vec();
            err.extend_from_slice(e.message.as_bytes());
            err.extend_from_slice(b" in \"");
            err.extend_from_slice(&pat);
            err.push(b'"');
            if let Some(rest) = pat.get(e.offset..).filter(|r| !r.is_empty()) {
                err.extend_from_slice(b" at \"");
                err.extend_from_slice(rest);
                err.push(b'"');
            }
            out([Value::Nil, string(lua, err)?])
        }
    }
}

/// `(index)` → the capture count and a table of the named groups {n = name}:
/// none with `d`, as in OpenResty (its DFA search gives the whole match alone).
pub(super) fn re_info(lua: &Lua, st: &RefCell<Regexes>, a: MultiValue) -> Result<MultiValue> {
    let st = st.borrow();
    let (re, dfa) = &st.regexes[int(&a, 0) as usize];
    let names = lua.create_table()?;
    if *dfa {
        return out([Value::Integer(0), Value::Table(names)]);
    }
    for (i, n) in re.names() {
        names.raw_set(i, lua.create_string(n)?)?;
    }
    out([Value::Integer(re.captures() as i64), Value::Table(names)])
}

/// `(index, subject, pos, caps)`: from byte `pos` (0-based), fills caps[2i+1],
/// caps[2i+2] with group i's 1-based start and end (false if unset); returns
/// true, or nothing if there is no match, or nil, err.
pub(super) fn re_exec(lua: &Lua, st: &RefCell<Regexes>, a: MultiValue) -> Result<MultiValue> {
    let Value::String(subj) = arg(&a, 1) else { return out([Value::Nil]) };
    let Value::Table(caps) = arg(&a, 3) else { return out([Value::Nil]) };
    let subj = subj.as_bytes();
    let pos = int(&a, 2).max(0) as usize;
    // The offsets leave the state before any Lua value is made: that may run
    // a finalizer that uses ngx.re.
    let offsets = {
        let st = &mut *st.borrow_mut();
        let (re, dfa) = &st.regexes[int(&a, 0) as usize];
        match st.matches.search(re, &subj, pos, *dfa) {
            Ok(None) => return out([]),
            Ok(Some(ov)) => {
                let mut o = std::mem::take(&mut st.offsets);
                o.clear();
                o.extend_from_slice(ov);
                o
            }
            // OpenResty's words: the code (PCRE2's, here).
            Err(rc) => return out([Value::Nil, string(lua, format!("pcre_exec() failed: {rc}"))?]),
        }
    };
    for (i, g) in offsets.chunks_exact(2).enumerate() {
        let (s, e) = match (g[0], g[1]) {
            (pcre::UNSET, _) | (_, pcre::UNSET) => (Value::Boolean(false), Value::Boolean(false)),
            (s, e) => (Value::Integer(s as i64 + 1), Value::Integer(e as i64)),
        };
        caps.raw_set(2 * i + 1, s)?;
        caps.raw_set(2 * i + 2, e)?;
    }
    st.borrow_mut().offsets = offsets;
    out([Value::Boolean(true)])
}

#[cfg(test)]
mod tests {
    use super::{FLAGS, KNOWN};

    /// Every bit re_compile knows has a letter, and every letter's bit is known.
    #[test]
    fn flags_and_letters_agree() {
        let lettered = FLAGS.iter().fold(0, |all, (_, bit, _)| all | bit);
        assert_eq!(lettered, KNOWN);
    }
}
