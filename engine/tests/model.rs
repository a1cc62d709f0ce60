//! The engine's model-based test (fuzz/src/model.rs: threads, wakes, timers
//! and keepalive pools against a plain model) over random operation
//! sequences from a fixed seed: the same budget on every run, under `make
//! test`; `fuzz/run.sh model` searches further (docs/testing.md).

#[path = "../../fuzz/src/model.rs"]
mod model;

/// xorshift64*: the sequences, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_sequences_hold_the_model() {
    let mut rng = Rng(0x5eed_c0e7_e47a_11ed);
    for run in 0..2000 {
        let len = 2 + rng.next() as usize % 800;
        let input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if std::panic::catch_unwind(|| model::check(&input)).is_err() {
            panic!("run {run} failed; its input: {input:?}");
        }
    }
}
