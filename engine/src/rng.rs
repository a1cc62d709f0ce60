//! The unit tests' random numbers: xorshift64, deterministic and
//! dependency-free.

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Log-uniform below 2^bits, so that small and large values both come up.
    pub fn spread(&mut self, bits: u64) -> u64 {
        let b = self.below(bits + 1);
        self.next() & ((1u64 << b) - 1)
    }
}
