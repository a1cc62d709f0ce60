//! The checks behind each fuzz target. Every module uses only `coevent_engine` and
//! std, and exposes `pub fn check(data: &[u8])`, which panics when coevent-engine
//! misbehaves on that input. `fuzz_targets/<name>.rs` hands libFuzzer's inputs
//! to it; `engine/tests/fuzz_seeds.rs` includes the same file with `#[path]` and
//! replays `fuzz/seeds/<name>/` under a plain `cargo test`.

pub mod dns_message;
pub mod model;
pub mod receive_pattern;
pub mod recv_buffer;
pub mod regex;
pub mod until;
