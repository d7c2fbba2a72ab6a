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
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash of `x`.
#[inline]
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
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
    fn keyed_and_independent() {
        let draw = |s, e, i, st| sample_rng(s, e, i, st).random::<u64>();
        assert_eq!(
            draw(1, 2, 3, RngStream::Augment),
            draw(1, 2, 3, RngStream::Augment)
        );
        assert_ne!(
            draw(1, 2, 3, RngStream::Augment),
            draw(1, 2, 4, RngStream::Augment)
        );
        assert_ne!(
            draw(1, 2, 3, RngStream::Augment),
            draw(1, 3, 3, RngStream::Augment)
        );
        assert_ne!(
            draw(1, 2, 3, RngStream::Augment),
            draw(2, 2, 3, RngStream::Augment)
        );
        assert_ne!(
            draw(1, 2, 3, RngStream::Augment),
            draw(1, 2, 3, RngStream::Mask)
        );
        // swapping epoch and index gives another stream
        assert_ne!(
            draw(1, 2, 3, RngStream::Augment),
            draw(1, 3, 2, RngStream::Augment)
        );
    }
}
