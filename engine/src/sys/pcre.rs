//! PCRE2, the system's libpcre2-8 (through `pcre2-sys`), as coevent.ngx's
//! `ngx.re` calls it, which is as OpenResty calls it (lua-nginx-module's
//! ngx_http_lua_regex.c): a pattern compiled with the options the flags ask
//! for, JIT-compiled on request, and searched either by `pcre2_match` (every
//! capture) or by `pcre2_dfa_match` (the `d` flag: the longest match at the
//! first position that matches, no captures).

use std::os::raw::c_int;
use std::ptr::{self, NonNull};
use std::slice;

use pcre2_sys::*;

// Compile options, one per ngx.re flag that has one.
pub const CASELESS: u32 = PCRE2_CASELESS;
pub const MULTILINE: u32 = PCRE2_MULTILINE;
pub const DOTALL: u32 = PCRE2_DOTALL;
pub const EXTENDED: u32 = PCRE2_EXTENDED;
pub const UTF: u32 = PCRE2_UTF;
pub const ANCHORED: u32 = PCRE2_ANCHORED;
pub const DUPNAMES: u32 = PCRE2_DUPNAMES;
/// `J`: PCRE 8's PCRE_JAVASCRIPT_COMPAT, which PCRE2 split into these three
/// (`\u`, `\U` and `\x` as JavaScript reads them, `[]` and `[^]`, and a
/// back reference to an unset group matching the empty string), the three
/// lua-resty-core passes for `J` on PCRE2.
pub const JAVASCRIPT_COMPAT: u32 = PCRE2_ALT_BSUX | PCRE2_ALLOW_EMPTY_CLASS | PCRE2_MATCH_UNSET_BACKREF;

/// The offset of a group that took no part in the match.
pub const UNSET: usize = PCRE2_UNSET;

/// OpenResty's DFA workspace, in ints (NGX_LUA_RE_DFA_MODE_WORKSPACE_COUNT):
/// a pattern that needs more fails with PCRE2_ERROR_DFA_WSSIZE where it
/// fails in OpenResty.
const DFA_WORKSPACE: usize = 100;

/// A pointer PCRE2 may read `len` bytes at, even when `len` is 0 (an empty
/// slice's pointer need not be one to read at; old PCRE2s read it anyway).
fn start_of(s: &[u8]) -> *const u8 {
    static ONE: [u8; 1] = [0];
    if s.is_empty() {
        ONE.as_ptr()
    } else {
        s.as_ptr()
    }
}

/// PCRE2's words for an error code (compile or match).
pub fn error_message(code: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its length; PCRE2 writes at most that,
    // NUL included, and returns the length without the NUL (or < 0).
    let n = unsafe { pcre2_get_error_message_8(code, buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        return format!("error {code}");
    }
    String::from_utf8_lossy(&buf[..n as usize]).into_owned()
}

/// Why a pattern did not compile: PCRE2's message, and the byte offset in
/// the pattern where it stopped.
#[derive(Debug, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    pub offset: usize,
}

/// A compiled pattern.
pub struct Regex {
    code: NonNull<pcre2_code_8>,
    captures: usize,
}

impl Drop for Regex {
    fn drop(&mut self) {
        // SAFETY: `code` came from pcre2_compile and is freed once, here.
        unsafe { pcre2_code_free_8(self.code.as_ptr()) }
    }
}

impl Regex {
    /// Compiles `pattern` (bytes, as OpenResty takes them) with `options`
    /// (the constants above, or'ed).
    pub fn new(pattern: &[u8], options: u32) -> Result<Regex, CompileError> {
        let (mut err, mut offset): (c_int, usize) = (0, 0);
        // SAFETY: the pattern is readable for its length for the call (PCRE2
        // keeps no pointer to it); the out-pointers are live locals; a null
        // compile context means the defaults.
        let code = unsafe {
            pcre2_compile_8(start_of(pattern), pattern.len(), options, &mut err, &mut offset, ptr::null_mut())
        };
        let Some(code) = NonNull::new(code) else {
            return Err(CompileError { message: error_message(err), offset });
        };
        let mut re = Regex { code, captures: 0 };
        re.captures = re.info(PCRE2_INFO_CAPTURECOUNT) as usize;
        Ok(re)
    }

    /// JIT-compiles the pattern, if PCRE2 can (else it stays interpreted, as
    /// in OpenResty, which ignores the failure); `pcre2_match` then uses it.
    pub fn jit(&mut self) -> bool {
        // SAFETY: `code` is live, and `&mut self` makes this the only use of it.
        unsafe { pcre2_jit_compile_8(self.code.as_ptr(), PCRE2_JIT_COMPLETE) == 0 }
    }

    /// The number of capture groups (group 0, the whole match, not counted).
    pub fn captures(&self) -> usize {
        self.captures
    }

    /// A u32 item of pcre2_pattern_info.
    fn info(&self, what: u32) -> u32 {
        let mut v: u32 = 0;
        // SAFETY: `code` is live; every item asked for here is a uint32_t,
        // which `v` has room for.
        let rc = unsafe { pcre2_pattern_info_8(self.code.as_ptr(), what, &mut v as *mut u32 as *mut _) };
        debug_assert_eq!(rc, 0, "pcre2_pattern_info({what})");
        v
    }

    /// The named groups: (group number, name), in PCRE2's name table order
    /// (by name; a duplicated name once per group that has it).
    pub fn names(&self) -> Vec<(usize, &[u8])> {
        let count = self.info(PCRE2_INFO_NAMECOUNT) as usize;
        if count == 0 {
            return Vec::new();
        }
        let size = self.info(PCRE2_INFO_NAMEENTRYSIZE) as usize;
        let mut table: *const u8 = ptr::null();
        // SAFETY: `code` is live; the item is a pointer, written to `table`.
        let rc = unsafe {
            pcre2_pattern_info_8(self.code.as_ptr(), PCRE2_INFO_NAMETABLE, &mut table as *mut *const u8 as *mut _)
        };
        if rc != 0 || table.is_null() {
            return Vec::new();
        }
        // SAFETY: the table lives in the code (as long as `self`): `count`
        // entries of `size` bytes each.
        let table = unsafe { slice::from_raw_parts(table, count * size) };
        table
            .chunks_exact(size)
            .map(|e| {
                // Each entry: the group number (2 bytes, big-endian), the name, a NUL.
                let name = &e[2..];
                let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                ((e[0] as usize) << 8 | e[1] as usize, &name[..end])
            })
            .collect()
    }
}

/// Where matches are written (a pcre2_match_data block), reused from search
/// to search and grown to the regex that needs the most.
pub struct Matches {
    data: NonNull<pcre2_match_data_8>,
    pairs: usize,
}

impl Drop for Matches {
    fn drop(&mut self) {
        // SAFETY: `data` came from pcre2_match_data_create and is freed once, here.
        unsafe { pcre2_match_data_free_8(self.data.as_ptr()) }
    }
}

impl Default for Matches {
    fn default() -> Matches {
        Matches::with_pairs(16)
    }
}

impl Matches {
    fn with_pairs(pairs: usize) -> Matches {
        // SAFETY: plain allocation (null general context: malloc).
        let data = unsafe { pcre2_match_data_create_8(pairs as u32, ptr::null_mut()) };
        let data = NonNull::new(data).expect("pcre2_match_data_create: out of memory");
        Matches { data, pairs }
    }

    /// Searches `subject` from byte `start` (at most its length). The match
    /// is Some(offsets): a (start, end) pair per group, group 0 first, and
    /// `UNSET` for a group that took no part; with `dfa`, group 0 alone, the
    /// longest match. None if there is none, or Err(PCRE2's error code).
    pub fn search(&mut self, re: &Regex, subject: &[u8], start: usize, dfa: bool) -> Result<Option<&[usize]>, i32> {
        let pairs = if dfa { 1 } else { re.captures + 1 };
        if self.pairs < pairs {
            *self = Matches::with_pairs(pairs);
        }
        let start = start.min(subject.len());
        let (code, s, data) = (re.code.as_ptr(), start_of(subject), self.data.as_ptr());
        let rc = if dfa {
            let mut ws = [0 as c_int; DFA_WORKSPACE];
            // SAFETY: `code` and `data` are live; the subject is readable for
            // its length and `start` within it; the workspace is writable for
            // the count given; a null match context means the defaults.
            unsafe {
                pcre2_dfa_match_8(code, s, subject.len(), start, 0, data, ptr::null_mut(), ws.as_mut_ptr(), ws.len())
            }
        } else {
            // SAFETY: as above; `data` has room for every group of `re`.
            unsafe { pcre2_match_8(code, s, subject.len(), start, 0, data, ptr::null_mut()) }
        };
        if rc == PCRE2_ERROR_NOMATCH {
            return Ok(None);
        }
        if rc < 0 {
            return Err(rc);
        }
        // rc == 0: the ovector was too small for every match, which only the
        // DFA's alternatives (all but the longest dropped) can make happen.
        // SAFETY: the ovector lives in `data` (as long as `&mut self`, no
        // search in between), 2 * `self.pairs` >= 2 * `pairs` offsets, every
        // one of the first `pairs` pairs written by the search: a matched
        // group's offsets, or PCRE2_UNSET for the others up to the highest.
        let ov = unsafe { slice::from_raw_parts(pcre2_get_ovector_pointer_8(data), 2 * pairs) };
        Ok(Some(ov))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(pat: &str, opts: u32, subj: &str, start: usize, dfa: bool) -> Result<Option<Vec<usize>>, i32> {
        let re = Regex::new(pat.as_bytes(), opts).unwrap();
        let mut m = Matches::default();
        m.search(&re, subj.as_bytes(), start, dfa).map(|o| o.map(<[usize]>::to_vec))
    }

    #[test]
    fn captures_and_unset_groups() {
        assert_eq!(
            find(r"(\w+) (\d+)(x)?", 0, "hello 1234", 0, false),
            Ok(Some(vec![0, 10, 0, 5, 6, 10, UNSET, UNSET]))
        );
        assert_eq!(find(r"(a)|(b)", 0, "b", 0, false), Ok(Some(vec![0, 1, UNSET, UNSET, 0, 1])));
        assert_eq!(find(r"\d", 0, "a1b2", 2, false), Ok(Some(vec![3, 4])));
        assert_eq!(find(r"x", 0, "abc", 0, false), Ok(None));
        assert_eq!(find(r"", 0, "", 0, false), Ok(Some(vec![0, 0])));
    }

    #[test]
    fn dfa_gives_the_longest_match_and_no_captures() {
        assert_eq!(find(r"<.*?>", 0, "<a><b>", 0, false), Ok(Some(vec![0, 3])));
        assert_eq!(find(r"<.*?>", 0, "<a><b>", 0, true), Ok(Some(vec![0, 6])));
        assert_eq!(find(r"ab|abc|abcd", 0, "xabcd", 0, true), Ok(Some(vec![1, 5])));
        assert_eq!(find(r"(a)(b)", 0, "ab", 0, true), Ok(Some(vec![0, 2])));
        assert_eq!(find(r"x", 0, "ab", 0, true), Ok(None));
    }

    #[test]
    fn dfa_errors() {
        // What the DFA cannot do: a back reference; and OpenResty's 100-int workspace running out.
        assert_eq!(find(r"(a)\1", 0, "aa", 0, true), Err(PCRE2_ERROR_DFA_UITEM));
        assert_eq!(find(&"a?".repeat(40), 0, &"a".repeat(60), 0, true), Err(PCRE2_ERROR_DFA_WSSIZE));
        assert_eq!(error_message(PCRE2_ERROR_DFA_WSSIZE), "workspace size exceeded in DFA matching");
    }

    #[test]
    fn javascript_compat() {
        let js = JAVASCRIPT_COMPAT;
        assert_eq!(find(r"\u0041", js, "xAy", 0, false), Ok(Some(vec![1, 2])));
        assert_eq!(find(r"\U", js, "xUy", 0, false), Ok(Some(vec![1, 2])));
        assert_eq!(find(r"a\xz", js, "axz", 0, false), Ok(Some(vec![0, 3])));
        assert_eq!(find(r"(a)?\1b", js, "b", 0, false), Ok(Some(vec![0, 1, UNSET, UNSET])));
        assert_eq!(find(r"(a)?\1b", 0, "b", 0, false), Ok(None));
        assert_eq!(find(r"[^]", js, "\n", 0, false), Ok(Some(vec![0, 1])));
        assert_eq!(find(r"a[]", js, "a]", 0, false), Ok(None));
        assert!(Regex::new(br"\u0041", 0).is_err());
    }

    #[test]
    fn options() {
        assert_eq!(find("b", ANCHORED, "ab", 0, false), Ok(None));
        assert_eq!(find("b", ANCHORED, "ab", 1, false), Ok(Some(vec![1, 2])));
        assert_eq!(find("^.$", UTF, "中", 0, false), Ok(Some(vec![0, 3])));
        assert_eq!(find("hello", CASELESS, "HeLLo", 0, false), Ok(Some(vec![0, 5])));
        assert_eq!(find("^b", MULTILINE, "a\nb", 0, false), Ok(Some(vec![2, 3])));
        assert_eq!(find("a.b", DOTALL, "a\nb", 0, false), Ok(Some(vec![0, 3])));
        assert_eq!(find("a b # c", EXTENDED, "ab", 0, false), Ok(Some(vec![0, 2])));
        // A subject that is not UTF-8 under `u`: PCRE2's error, not a match.
        let re = Regex::new(b".", UTF).unwrap();
        assert_eq!(Matches::default().search(&re, b"\xff", 0, false), Err(PCRE2_ERROR_UTF8_ERR21));
    }

    #[test]
    fn names_and_counts() {
        let re = Regex::new(br"(?<k>\w+)=(?<v>\w+)(x)?", 0).unwrap();
        assert_eq!(re.captures(), 3);
        assert_eq!(re.names(), vec![(1, &b"k"[..]), (2, &b"v"[..])]);
        let re = Regex::new(br"(?<n>a)|(?<n>b)", DUPNAMES).unwrap();
        assert_eq!(re.names(), vec![(1, &b"n"[..]), (2, &b"n"[..])]);
        assert!(Regex::new(br"(?<n>a)|(?<n>b)", 0).is_err());
        assert_eq!(Regex::new(b"x", 0).unwrap().names(), vec![]);
    }

    #[test]
    fn compile_errors_and_jit() {
        let e = Regex::new(b"(a", 0).err().unwrap();
        assert_eq!(e, CompileError { message: "missing closing parenthesis".into(), offset: 2 });
        let e = Regex::new(b"a)b", 0).err().unwrap();
        assert_eq!(e.offset, 1);
        let mut re = Regex::new(br"(\d+)", 0).unwrap();
        re.jit(); // false where PCRE2 has no JIT: then it is interpreted
        assert_eq!(Matches::default().search(&re, b"ab12", 0, false), Ok(Some(&[2, 4, 2, 4][..])));
        // A pattern that is not UTF-8 compiles (as bytes) unless `u` asks for UTF-8.
        assert!(Regex::new(b"\xff", 0).is_ok());
        assert!(Regex::new(b"\xff", UTF).is_err());
    }

    #[test]
    fn match_data_grows() {
        let mut m = Matches::with_pairs(1);
        let re = Regex::new(b"(a)(b)(c)", 0).unwrap();
        assert_eq!(m.search(&re, b"abc", 0, false), Ok(Some(&[0, 3, 0, 1, 1, 2, 2, 3][..])));
        // Past the subject's end: searched from its end.
        assert_eq!(m.search(&Regex::new(b"$", 0).unwrap(), b"ab", 9, false), Ok(Some(&[2, 2][..])));
    }
}
