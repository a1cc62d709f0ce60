//! ngx.re's PCRE2 calls (`coevent_engine::sys::pcre`), the one `unsafe` wrapper
//! over a C library that takes patterns from programs and subjects from the
//! network: any pattern, options and subject compile or fail with an offset
//! inside the pattern, and every search gives offsets inside the subject
//! (or unset), group numbers in range, and ends.
//!
//! Input: `[options: 2 bytes][pattern length][pattern][subject]`. Options, low
//! byte: caseless, multiline, dotall, extended, utf, anchored, dupnames,
//! JavaScript compatibility; high byte: bit 0 JIT, bit 1 the DFA, bits 2-7 the
//! first search's start. Searches go on from each match's end, as gmatch's.

use coevent_engine::sys::pcre::*;

const FLAGS: [u32; 8] = [CASELESS, MULTILINE, DOTALL, EXTENDED, UTF, ANCHORED, DUPNAMES, JAVASCRIPT_COMPAT];

pub fn check(data: &[u8]) {
    let [lo, hi, n, rest @ ..] = data else { return };
    let (pattern, subject) = rest.split_at((*n as usize).min(rest.len()));
    let options = FLAGS.iter().enumerate().filter(|(i, _)| lo >> i & 1 == 1).fold(0, |o, (_, f)| o | f);
    let mut re = match Regex::new(pattern, options) {
        Ok(re) => re,
        Err(e) => {
            assert!(e.offset <= pattern.len(), "compile error at {} of {}", e.offset, pattern.len());
            assert!(!e.message.is_empty());
            return;
        }
    };
    if hi & 1 == 1 {
        re.jit();
    }
    for (group, name) in re.names() {
        assert!((1..=re.captures()).contains(&group), "named group {group} of {}", re.captures());
        assert!(!name.is_empty());
    }
    let dfa = hi & 2 == 2;
    let pairs = if dfa { 1 } else { re.captures() + 1 };
    // Both kinds of search through one Matches: it grows to the regex's groups.
    let mut m = Matches::default();
    let mut start = (hi >> 2) as usize;
    for _ in 0..=subject.len() + 1 {
        let _ = m.search(&re, subject, start, !dfa);
        let ov = match m.search(&re, subject, start, dfa) {
            Ok(Some(ov)) => ov.to_vec(),
            Ok(None) | Err(_) => return,
        };
        assert_eq!(ov.len(), 2 * pairs);
        for p in ov.chunks(2) {
            let set = p[0] != UNSET;
            assert_eq!(set, p[1] != UNSET, "half a group: {ov:?}");
            assert!(!set || (p[0] <= subject.len() && p[1] <= subject.len()), "outside the subject: {ov:?}");
        }
        assert!(ov[0] != UNSET, "a match without group 0: {ov:?}");
        start = ov[1].max(start.min(subject.len()) + 1);
        if start > subject.len() {
            return;
        }
    }
    panic!("searches did not end");
}
