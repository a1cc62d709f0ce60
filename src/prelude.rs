//! The prelude's text as the module carries it: without its comment lines
//! and indentation, which cost the smallest module 3 KB. Each line stays a
//! line, so an error's line number is the one of src/prelude.lua.

const SRC: &[u8] = include_bytes!("prelude.lua");

/// Whether `line` is blank once a comment line is dropped.
const fn is_comment(line: &[u8]) -> bool {
    line.len() >= 2 && line[0] == b'-' && line[1] == b'-'
}

/// `SRC` stripped into `out` (when given), and its stripped length.
const fn strip(out: Option<&mut [u8]>) -> usize {
    let mut out = out;
    let (mut i, mut n) = (0, 0);
    while i < SRC.len() {
        // One line: skip its indentation, find its end.
        while i < SRC.len() && (SRC[i] == b' ' || SRC[i] == b'\t') {
            i += 1;
        }
        let start = i;
        while i < SRC.len() && SRC[i] != b'\n' {
            i += 1;
        }
        let (_, rest) = SRC.split_at(start);
        let (line, _) = rest.split_at(i - start);
        if !is_comment(line) {
            let mut k = 0;
            while k < line.len() {
                if let Some(o) = &mut out {
                    o[n] = line[k];
                }
                n += 1;
                k += 1;
            }
        }
        if i < SRC.len() {
            if let Some(o) = &mut out {
                o[n] = b'\n';
            }
            n += 1;
            i += 1;
        }
    }
    n
}

const LEN: usize = strip(None);

const STRIPPED: [u8; LEN] = {
    let mut out = [0u8; LEN];
    strip(Some(&mut out));
    out
};

pub const PRELUDE: &[u8] = &STRIPPED;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stripped_prelude_keeps_every_line() {
        let lines = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count();
        assert_eq!(lines(PRELUDE), lines(SRC));
        assert!(PRELUDE.len() < SRC.len() * 3 / 4, "{} of {} bytes", PRELUDE.len(), SRC.len());
        let text = std::str::from_utf8(PRELUDE).unwrap();
        assert!(text.lines().all(|l| !l.starts_with("--") && !l.starts_with(' ')));
    }
}
