//! `receive`'s count: `Pattern::count` of the f64 the Lua layer passes (a Lua
//! number, or a numeral Lua converted).
//!
//! Input: the first byte chooses how the rest encodes it, by `(first >> 1) % 4`:
//! 0 raw IEEE bits (NaN, infinities, subnormals, -0), 1 a signed integer, 2 a
//! neighbour (within 127 ulps) of ±2^k, 3 an integer plus a fraction. Modes 1-3
//! make whole numbers and the 2^64 edge common, which raw bits almost never hit.
//! (The low bit once chose a string pattern; it is skipped so the seeds keep
//! their numbers. The names `*l`, `l`, `*a`, `a` are a plain match, unit-tested in ffi.)

use coevent_engine::buf::Pattern;

pub fn check(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    check_count(number(sel >> 1, rest));
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
}
