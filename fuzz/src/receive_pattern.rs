//! `receive`'s pattern argument: `Pattern::parse` (a Lua string) and
//! `Pattern::count` (a Lua number, as the f64 the Lua layer passes).
//!
//! Input: the first byte selects what the rest is.
//! - even: the rest is a string pattern, given to `Pattern::parse`;
//! - odd: the rest encodes an f64 given to `Pattern::count`, built as chosen by
//!   `(first >> 1) % 4`: 0 raw IEEE bits (NaN, infinities, subnormals, -0),
//!   1 a signed integer, 2 a neighbour (within 127 ulps) of ±2^k, 3 an
//!   integer plus a fraction. Modes 1-3 make whole numbers and the 2^64 edge
//!   common, which raw bits almost never hit.

use coevent_ffi::buf::Pattern;

pub fn check(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    if sel & 1 == 0 {
        check_string(rest);
    } else {
        check_count(number(sel >> 1, rest));
    }
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}

fn number(mode: u8, b: &[u8]) -> f64 {
    let byte = |i: usize| b.get(i).copied().unwrap_or(0);
    match mode % 4 {
        0 => f64::from_bits(le_u64(b)),
        1 => {
            let v = le_u64(b) as i64;
            v as f64
        }
        2 => {
            let k = i32::from(byte(0) % 80);
            let base = 2f64.powi(k);
            let bits = base.to_bits() as i64 + i64::from(byte(1) as i8);
            let x = f64::from_bits(bits as u64);
            if byte(2) & 1 == 1 {
                -x
            } else {
                x
            }
        }
        _ => {
            let whole = le_u64(&b[b.len().min(1)..]) as u32;
            f64::from(whole) + f64::from(byte(0)) / 256.0
        }
    }
}

/// 2^usize::BITS: the first whole number a usize cannot hold (exact in f64).
fn usize_end() -> f64 {
    2f64.powi(usize::BITS as i32)
}

/// `count(x)` is `Bytes(x)` exactly when `x` is a whole number a usize holds.
fn check_count(x: f64) {
    let got = Pattern::count(x);
    let whole = x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < usize_end();
    match got {
        Some(Pattern::Bytes(n)) => {
            assert!(whole, "count({x:e}) = Bytes({n}) but {x:e} is not a whole number in 0..2^{}", usize::BITS);
            // The byte count is the number itself, not a rounded or saturated one.
            assert_eq!(n as u128, x as u128, "count({x:e}) = Bytes({n})");
            assert_eq!(n as f64, x, "count({x:e}) = Bytes({n})");
        }
        None => assert!(!whole, "count({x:e}) = None for a whole number in range"),
        Some(p) => panic!("count({x:e}) = {p:?}"),
    }
    // A number and its decimal string form are the same pattern (Lua coerces
    // strings to numbers): Rust prints f64 exactly, with and without exponent.
    for s in [format!("{x}"), format!("{x:e}"), format!(" \t{x}\r\n")] {
        assert_eq!(Pattern::parse(s.as_bytes()), got, "parse({s:?}) != count({x:e})");
    }
}

/// Lua's `lisspace` in the C locale: what `tonumber` skips around a numeral.
fn lua_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn trim_lua_space(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !lua_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !lua_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// The pattern a plain decimal `[+-]?D+(.D*)?` of at most 15 digits (all exact
/// in f64, so no rounding can make a fraction whole) must give; None when `t`
/// is not of that shape.
fn plain_decimal(t: &[u8]) -> Option<Option<Pattern>> {
    let (neg, t) = match t {
        [b'-', r @ ..] => (true, r),
        [b'+', r @ ..] => (false, r),
        _ => (false, t),
    };
    let (int, frac) = match t.iter().position(|&b| b == b'.') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, &t[t.len()..]),
    };
    let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if int.is_empty() || !digits(int) || !digits(frac) || int.len() + frac.len() > 15 {
        return None;
    }
    let v = int.iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
    let whole = frac.iter().all(|&d| d == b'0');
    Some((whole && (v == 0 || !neg)).then_some(Pattern::Bytes(v as usize)))
}

fn check_string(s: &[u8]) {
    let got = Pattern::parse(s);
    match s {
        b"*l" | b"l" => return assert_eq!(got, Some(Pattern::Line), "parse({s:?})"),
        b"*a" | b"a" => return assert_eq!(got, Some(Pattern::All), "parse({s:?})"),
        _ => {}
    }
    let t = trim_lua_space(s);
    match got {
        None => {}
        Some(Pattern::Bytes(n)) => {
            // Only what Lua itself would read as a decimal number is a count:
            // a numeral made of these characters, with Lua's spaces around it.
            assert!(
                !t.is_empty() && t.iter().all(|b| b"0123456789+-.eE".contains(b)),
                "parse({:?}) = Bytes({n}), but Lua would not read that as a decimal number",
                String::from_utf8_lossy(s)
            );
            let x: f64 = std::str::from_utf8(t).unwrap().parse().expect("a numeral Rust cannot parse");
            assert_eq!(Pattern::count(x), got, "parse({s:?}) != count({x:e})");
            check_count(x);
        }
        Some(p) => panic!("parse({:?}) = {p:?}: only *l, l, *a, a are Line/All", String::from_utf8_lossy(s)),
    }
    if let Some(want) = plain_decimal(t) {
        assert_eq!(got, want, "parse({:?})", String::from_utf8_lossy(s));
    }
}
