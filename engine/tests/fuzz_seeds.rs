//! Replays the committed fuzz seeds (`fuzz/seeds/<target>/*`, crashes found
//! by fuzzing included) through the checks the fuzz targets run, on stable and
//! without libFuzzer: the check modules are the very files the fuzz crate uses.

use std::path::Path;

#[path = "../../fuzz/src/dns_message.rs"]
mod dns_message;
#[path = "../../fuzz/src/model.rs"]
mod model;
#[path = "../../fuzz/src/receive_pattern.rs"]
mod receive_pattern;
#[path = "../../fuzz/src/recv_buffer.rs"]
mod recv_buffer;
#[cfg(feature = "pcre")]
#[path = "../../fuzz/src/regex.rs"]
mod regex;
#[path = "../../fuzz/src/until.rs"]
mod until;

/// Runs `check` on every seed of `target`, reporting all failing files at once.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(f.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(failed.is_empty(), "{target}: {} of {} seeds fail: {failed:?}", failed.len(), files.len());
}

#[test]
fn receive_pattern_seeds() {
    replay("receive_pattern", receive_pattern::check);
}

#[test]
fn recv_buffer_seeds() {
    replay("recv_buffer", recv_buffer::check);
}

#[test]
fn dns_message_seeds() {
    replay("dns_message", dns_message::check);
}

#[test]
fn until_seeds() {
    replay("until", until::check);
}

#[cfg(feature = "pcre")]
#[test]
fn regex_seeds() {
    replay("regex", regex::check);
}

#[test]
fn model_seeds() {
    replay("model", model::check);
}
