//! Rounding float32 operands to bfloat16 or float16 values (kept in float32 containers), for
//! the matrix products of [`crate::precision::autocast`] on the CPU backend: a product of two
//! rounded values is exact in float32, so our float32 kernels then compute what a bf16/f16
//! matrix unit with float32 accumulation computes.
//!
//! Paths, chosen at run time: float16 rounds through the F16C conversion instructions where the
//! CPU has them, else in software (the `half` crate); bfloat16 rounds with integer arithmetic that
//! the compiler vectorises. `VIT_ROUNDING=scalar` forces the software paths (for tests and for
//! comparing).

use std::borrow::Cow;
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::precision::Precision;

/// Elements per parallel task.
const CHUNK: usize = 1 << 16;

/// A rounding implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundingPath {
    /// Portable code.
    Scalar,
    /// x86 F16C conversions (float16 only; bfloat16 uses the portable code).
    F16c,
}

/// The path this process uses: the fastest the CPU has, unless `VIT_ROUNDING=scalar`.
pub fn active_path() -> RoundingPath {
    static PATH: OnceLock<RoundingPath> = OnceLock::new();
    *PATH.get_or_init(|| {
        if std::env::var("VIT_ROUNDING").is_ok_and(|v| v.eq_ignore_ascii_case("scalar")) {
            return RoundingPath::Scalar;
        }
        best_path()
    })
}

/// The fastest path the CPU supports.
pub fn best_path() -> RoundingPath {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("f16c") && std::is_x86_feature_detected!("avx") {
        return RoundingPath::F16c;
    }
    RoundingPath::Scalar
}

/// `values` rounded to `precision` (borrowed unchanged for float32).
pub(crate) fn rounded(values: &[f32], precision: Precision) -> Cow<'_, [f32]> {
    match precision {
        Precision::F32 => Cow::Borrowed(values),
        _ => Cow::Owned(rounded_with(values, precision, active_path())),
    }
}

/// `values` rounded to `precision` along `path`, in one pass from `values` into a new buffer.
pub fn rounded_with(values: &[f32], precision: Precision, path: RoundingPath) -> Vec<f32> {
    // Zeroed memory of this size comes from the allocator untouched (no pass over it).
    let mut out = vec![0f32; values.len()];
    out.par_chunks_mut(CHUNK)
        .zip(values.par_chunks(CHUNK))
        .for_each(|(dst, src)| round_into(src, dst, precision, path));
    out
}

/// Writes `src` rounded to `precision` into `dst` (of the same length).
fn round_into(src: &[f32], dst: &mut [f32], precision: Precision, path: RoundingPath) {
    match (precision, path) {
        (Precision::F32, _) => dst.copy_from_slice(src),
        (Precision::Bf16, _) => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = round_bf16(v)),
        #[cfg(target_arch = "x86_64")]
        (Precision::F16, RoundingPath::F16c) => {
            // SAFETY: this path is only chosen when the CPU has F16C and AVX.
            unsafe { round_f16_f16c(src, dst) }
        }
        (Precision::F16, _) => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = half::f16::from_f32(v).to_f32()),
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even); NaN stays NaN, overflow gives ±inf.
#[inline]
pub fn round_bf16(x: f32) -> f32 {
    let bits = x.to_bits();
    if x.is_nan() {
        return f32::from_bits(bits | 0x0040_0000);
    }
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1));
    f32::from_bits(rounded & 0xFFFF_0000)
}

/// `src` rounded to float16 and back into `dst`, eight values at a time with F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "f16c,avx")]
unsafe fn round_f16_f16c(src: &[f32], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    assert_eq!(src.len(), dst.len(), "round_f16_f16c: lengths differ");
    let mut dst_chunks = dst.chunks_exact_mut(8);
    let mut src_chunks = src.chunks_exact(8);
    for (d, s) in (&mut dst_chunks).zip(&mut src_chunks) {
        // SAFETY: both chunks hold exactly 8 floats; unaligned loads and stores.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(s.as_ptr()));
            _mm256_storeu_ps(d.as_mut_ptr(), _mm256_cvtph_ps(h));
        }
    }
    for (d, &v) in dst_chunks.into_remainder().iter_mut().zip(src_chunks.remainder()) {
        *d = half::f16::from_f32(v).to_f32();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values around every edge: ties, subnormals, overflow, infinities, NaN, plus a sweep.
    fn probe_values() -> Vec<f32> {
        let mut v = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            1.0 + f32::EPSILON,
            f32::from_bits(0x3F80_8000), // a bf16 tie (1 + 2^-8): rounds to even
            f32::from_bits(0x3F81_8000), // the next tie: rounds up
            65504.0,
            65520.0, // rounds to float16 infinity
            6.0e-8,
            3.0e-8,
            1.0e-40,
            f32::MAX,
            f32::MIN_POSITIVE,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        let mut state = 0x1234_5678_u32;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            v.push(f32::from_bits(state));
        }
        v
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn bfloat16_rounding_equals_the_half_crate() {
        for x in probe_values() {
            let expected = half::bf16::from_f32(x).to_f32();
            assert!(same(round_bf16(x), expected), "{x:e}: {} vs {expected}", round_bf16(x));
        }
        assert_eq!(round_bf16(f32::from_bits(0x3F80_8000)), 1.0);
        assert_eq!(round_bf16(f32::from_bits(0x3F81_8000)).to_bits(), 0x3F82_0000);
    }

    #[test]
    fn every_float16_path_this_cpu_runs_equals_the_half_crate() {
        let values = probe_values();
        let reference: Vec<f32> = values.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect();
        let mut paths = vec![RoundingPath::Scalar];
        if best_path() == RoundingPath::F16c {
            paths.push(RoundingPath::F16c);
        }
        for path in paths {
            let out = rounded_with(&values, Precision::F16, path);
            for ((x, got), want) in values.iter().zip(&out).zip(&reference) {
                assert!(same(*got, *want), "{path:?}: f16({x:e}) = {got:e}, expected {want:e}");
            }
        }
        assert_eq!(rounded_with(&[65520.0], Precision::F16, best_path())[0], f32::INFINITY);
        assert_eq!(rounded_with(&[2.0e-8], Precision::F16, best_path())[0], 0.0);
    }

    #[test]
    fn rounding_across_many_parallel_chunks_keeps_every_value_in_place() {
        // Several chunks, a short last one, and a remainder past the last group of eight.
        let values: Vec<f32> = (0..3 * CHUNK + 1003).map(|i| (i as f32 * 0.37).sin() * 1e3 + i as f32).collect();
        for (precision, path) in [
            (Precision::Bf16, RoundingPath::Scalar),
            (Precision::F16, RoundingPath::Scalar),
            (Precision::F16, best_path()),
        ] {
            let out = rounded_with(&values, precision, path);
            assert_eq!(out.len(), values.len());
            for (i, (x, got)) in values.iter().zip(&out).enumerate() {
                let want = if precision == Precision::Bf16 { round_bf16(*x) } else { half::f16::from_f32(*x).to_f32() };
                assert!(same(*got, want), "{precision} {path:?} [{i}]: {x} -> {got}, expected {want}");
            }
        }
    }

    #[test]
    fn float32_is_borrowed_unchanged() {
        let v = [1.0f32, 2.5e-9];
        assert!(matches!(rounded(&v, Precision::F32), Cow::Borrowed(_)));
    }
}
