//! Per-sample random number generators keyed by `(seed, epoch, index)`, so augmentations and
//! masks do not depend on the number of loader workers or on the order samples are visited.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Which consumer draws from a sample's generator; each gets an independent stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RngStream {
    /// Image augmentations.
    Augment = 0,
    /// SimMIM mask generation.
    Mask = 1,
    /// Dataset splitting.
    Split = 2,
    /// The order of an epoch's samples (keyed by epoch, index 0).
    Shuffle = 3,
    /// Mixup/CutMix decisions of a batch (keyed by epoch and the batch's first sample index).
    Mixup = 4,
    /// Random erasing of a normalised sample.
    Erase = 5,
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash of `x`.
#[inline]
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The classic stateful SplitMix64 generator (Steele, Lea & Flood; Vigna's reference
/// `splitmix64.c`): each step adds `0x9E3779B97F4A7C15` to the state and returns the mixed state.
/// Used to seed other generators from one `u64` and to draw simple seeded numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose first output is `splitmix64(seed)`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits: `state += 0x9E3779B97F4A7C15; mix(state)`.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        // `splitmix64` adds the increment itself before mixing.
        let out = splitmix64(self.state);
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        out
    }

    /// `next_u64() % n`: uniform in `0..n` up to a modulo bias below `n / 2^64` (negligible for
    /// the small `n` it is meant for); `0` when `n == 0`, without drawing.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

/// The generator of sample `index` in `epoch` for run `seed`: ChaCha8 seeded with a hash of the
/// four numbers. Same inputs, same sequence, on every platform and with any worker count.
pub fn sample_rng(seed: u64, epoch: u64, index: u64, stream: RngStream) -> ChaCha8Rng {
    let h = splitmix64(seed ^ splitmix64(epoch ^ splitmix64(index ^ splitmix64(stream as u64))));
    ChaCha8Rng::seed_from_u64(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn splitmix64_generator_is_the_reference_sequence() {
        // Vigna's splitmix64.c with seed 0 (first outputs as published with the reference code).
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(g.next_u64(), 0x06C4_5D18_8009_454F);
        // The stream is the hash of successive states.
        let mut g = SplitMix64::new(12345);
        for k in 0..5u64 {
            assert_eq!(g.next_u64(), splitmix64(12345u64.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15))));
        }
    }

    #[test]
    fn below_stays_in_range() {
        let mut g = SplitMix64::new(7);
        assert_eq!(g.below(0), 0);
        assert_eq!(g.below(1), 0);
        let mut h = SplitMix64::new(7);
        h.next_u64();
        assert_eq!(g.clone().next_u64(), h.next_u64(), "below(0) draws nothing, below(1) draws once");
        for n in [2usize, 3, 10, 1 << 40, usize::MAX] {
            for _ in 0..100 {
                assert!(g.below(n) < n);
            }
        }
    }

    #[test]
    fn keyed_and_independent() {
        let draw = |s, e, i, st| sample_rng(s, e, i, st).random::<u64>();
        assert_eq!(draw(1, 2, 3, RngStream::Augment), draw(1, 2, 3, RngStream::Augment));
        assert_ne!(draw(1, 2, 3, RngStream::Augment), draw(1, 2, 4, RngStream::Augment));
        assert_ne!(draw(1, 2, 3, RngStream::Augment), draw(1, 3, 3, RngStream::Augment));
        assert_ne!(draw(1, 2, 3, RngStream::Augment), draw(2, 2, 3, RngStream::Augment));
        assert_ne!(draw(1, 2, 3, RngStream::Augment), draw(1, 2, 3, RngStream::Mask));
        assert_ne!(draw(1, 2, 3, RngStream::Augment), draw(1, 2, 3, RngStream::Mixup));
        assert_ne!(draw(1, 2, 3, RngStream::Shuffle), draw(1, 2, 3, RngStream::Mixup));
        // swapping epoch and index gives another stream
        assert_ne!(draw(1, 2, 3, RngStream::Augment), draw(1, 3, 2, RngStream::Augment));
    }
}
