//! CIFAR record mutations (first byte: the dataset kind; then the records).

use super::bytes::{bytes, put};
use crate::rng::Rng;

/// A mutation of a CIFAR input: label bytes at record starts, lengths off by a little or by
/// whole records, the kind byte, or bytes.
pub fn cifar(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
    if data.is_empty() {
        return bytes(rng, data, others);
    }
    let record = if data[0].is_multiple_of(3) { 3073 } else { 3074 };
    let n = (data.len() - 1) / record;
    match rng.below(6) {
        0 if n > 0 => {
            let r = rng.below(n);
            let b = 1 + r * record + rng.below(2);
            if b < data.len() {
                data[b] = *rng.pick(&[0u8, 9, 10, 19, 20, 99, 100, 255]);
            }
        }
        1 => {
            let delta = rng.range(1, 3);
            if rng.one_in(2) {
                data.extend(std::iter::repeat_n(0, delta));
            } else {
                data.truncate(data.len().saturating_sub(delta).max(1));
            }
        }
        2 => {
            if rng.one_in(2) && n > 0 {
                let r = rng.below(n);
                let rec = data[1 + r * record..1 + (r + 1) * record].to_vec();
                data.extend_from_slice(&rec);
            } else {
                data.truncate(1 + record * rng.below(n + 1));
            }
        }
        3 => data[0] = rng.byte(),
        _ => bytes(rng, data, others),
    }
    put(data);
}
