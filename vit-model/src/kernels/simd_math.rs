//! Element-wise math on f32 slices written so that the compiler vectorises it: a rational
//! erf (accurate to a few float ulps on [-4, 4], ±1 beyond), a polynomial exp, and GELU with its
//! derivative built from them. Each kernel is compiled for AVX-512, AVX2 + FMA and plain x86-64
//! / other targets, and the best is picked at run time; slices are cut into chunks run in
//! parallel on rayon's pool.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Elements per parallel task: large enough to amortise scheduling, small enough to balance.
const CHUNK: usize = 1 << 14;

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π).
const INV_SQRT_2PI: f32 = 0.398_942_3;

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// erf(x) as x·P(x²)/Q(x²) within [-1, 1], and exactly ±1 where erf rounds to ±1 in f32
/// (|x| ≥ 3.92), so that `1 + erf` is never negative and exactly 0 in GELU's far negative tail.
/// Absolute error ≤ 5e-7 (largest near |x| = 3.9, a few ulps elsewhere).
#[inline(always)]
fn erf<const FMA: bool>(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = madd::<FMA>(x2, -2.726_142_3e-10, 2.770_681_4e-8);
    p = madd::<FMA>(x2, p, -2.101_024e-6);
    p = madd::<FMA>(x2, p, -5.692_506_4e-5);
    p = madd::<FMA>(x2, p, -7.349_906_3e-4);
    p = madd::<FMA>(x2, p, -2.954_600_1e-3);
    p = madd::<FMA>(x2, p, -1.609_603_3e-2);
    let mut q = madd::<FMA>(x2, -1.456_607_2e-5, -2.133_740_6e-4);
    q = madd::<FMA>(x2, q, -1.682_827e-3);
    q = madd::<FMA>(x2, q, -7.373_329_2e-3);
    q = madd::<FMA>(x2, q, -1.426_474e-2);
    let r = (x * p / q).clamp(-1.0, 1.0);
    if x.abs() >= 3.92 { 1.0f32.copysign(x) } else { r }
}

/// e^x for x ≤ 0 (x below -87 gives e^-87): x = n·ln2 + r, |r| ≤ ln2/2, a degree-7
/// polynomial for e^r, and 2^n built from its exponent bits. NaN gives e^-87 too; the softmax
/// uses [`exp_softmax`], which propagates it.
#[inline(always)]
fn exp_nonpositive<const FMA: bool>(x: f32) -> f32 {
    let x = x.max(-87.0);
    let n = madd::<FMA>(x, std::f32::consts::LOG2_E, 0.5).floor();
    let r = madd::<FMA>(n, -0.693_359_4, x);
    let r = madd::<FMA>(n, 2.121_944_4e-4, r);
    let mut p = madd::<FMA>(1.987_569_1e-4, r, 1.398_199_9e-3);
    p = madd::<FMA>(p, r, 8.333_452e-3);
    p = madd::<FMA>(p, r, 4.166_579_6e-2);
    p = madd::<FMA>(p, r, 0.166_666_65);
    p = madd::<FMA>(p, r, 0.5);
    let e = madd::<FMA>(p, r * r, r) + 1.0;
    // 2^n: n + 127 ∈ [1, 254] lands in the mantissa bits of 2^23 + n + 127 (no float→int
    // conversion, which would not vectorise).
    let biased = (n + (127.0 + 8_388_608.0)).to_bits() & 0xff;
    e * f32::from_bits(biased << 23)
}

/// e^x for x ≤ 0 as `torch.softmax` needs it: NaN stays NaN (so that a row with a NaN, or with
/// +∞ where ∞ − ∞ is NaN, sums to NaN) and x below -87, −∞ included, gives 0. Both are selects,
/// which vectorise, not branches.
#[inline(always)]
fn exp_softmax<const FMA: bool>(x: f32) -> f32 {
    let e = exp_nonpositive::<FMA>(x);
    let e = if x.is_nan() { x } else { e };
    if x < -87.0 { 0.0 } else { e }
}

#[inline(always)]
fn gelu_one<const FMA: bool>(x: f32) -> f32 {
    0.5 * x * (1.0 + erf::<FMA>(x * FRAC_1_SQRT_2))
}

/// d gelu / dx = Φ(x) + x·φ(x).
#[inline(always)]
fn gelu_grad_one<const FMA: bool>(x: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf::<FMA>(x * FRAC_1_SQRT_2));
    let pdf = INV_SQRT_2PI * exp_nonpositive::<FMA>(-0.5 * x * x);
    madd::<FMA>(x, pdf, cdf)
}

#[inline(always)]
fn gelu_chunk<const FMA: bool>(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(gelu_one::<FMA>(v));
    }
}

#[inline(always)]
fn gelu_backward_chunk<const FMA: bool>(x: &[f32], grad: &[f32], out: &mut [MaybeUninit<f32>]) {
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(grad) {
        o.write(g * gelu_grad_one::<FMA>(v));
    }
}

/// Σ row, in 16 interleaved partial sums (so that it vectorises) combined in a fixed order.
#[inline(always)]
fn sum<const FMA: bool>(row: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = row.chunks_exact(16);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    lanes.iter().sum::<f32>() + tail
}

#[inline(always)]
fn softmax_rows_chunk<const FMA: bool>(data: &mut [f32], n: usize) {
    for row in data.chunks_mut(n) {
        // `f32::max` skips NaN; a NaN entry then gives NaN − max = NaN below, and the NaN sum
        // makes the whole row NaN, as in PyTorch. A +∞ max gives ∞ − ∞ = NaN, an all −∞ row
        // −∞ − (−∞) = NaN: all NaN too.
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for v in row.iter_mut() {
            *v = exp_softmax::<FMA>(*v - max);
        }
        let inv = 1.0 / sum::<FMA>(row);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// Defines a function that runs `$body::<FMA>` compiled for the best instruction set present.
macro_rules! multiversion {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    $body::<true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    $body::<true>($($arg),*)
                }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body::<false>($($arg),*)
        }
    };
}

multiversion!(gelu_dispatch, gelu_chunk, (x: &[f32], out: &mut [MaybeUninit<f32>]));
multiversion!(softmax_rows_dispatch, softmax_rows_chunk, (data: &mut [f32], n: usize));
multiversion!(gelu_backward_dispatch, gelu_backward_chunk, (x: &[f32], grad: &[f32], out: &mut [MaybeUninit<f32>]));

/// Softmax of each row of `n` elements, in place, on the calling thread. NaN and infinities
/// propagate as in `torch.softmax`: a row with a NaN or a +∞ is all NaN, −∞ gives 0, and a row of
/// only −∞ is all NaN.
pub(crate) fn softmax_rows(data: &mut [f32], n: usize) {
    assert!(n > 0 && data.len().is_multiple_of(n), "softmax_rows: {} elements are not rows of {n}", data.len());
    softmax_rows_dispatch(data, n)
}

/// GELU (`0.5·x·(1 + erf(x/√2))`) of every element, as a new vector.
pub(crate) fn gelu(x: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    out.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(o, x)| gelu_dispatch(x, o));
    // SAFETY: every one of the first `x.len()` elements was written above.
    unsafe { out.set_len(x.len()) };
    out
}

/// `grad · gelu'(x)` element by element, as a new vector.
pub(crate) fn gelu_backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), grad.len(), "gelu_backward: input and gradient lengths differ");
    let mut out = Vec::with_capacity(x.len());
    out.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(grad.par_chunks(CHUNK)))
        .for_each(|(o, (x, g))| gelu_backward_dispatch(x, g, o));
    // SAFETY: every one of the first `x.len()` elements was written above.
    unsafe { out.set_len(x.len()) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64 by its Taylor series (|x| < 3) and continued fraction (beyond).
    fn erf_f64(x: f64) -> f64 {
        if x.abs() < 3.0 {
            let mut term = x;
            let mut sum = x;
            let x2 = x * x;
            for n in 1..200 {
                term *= -x2 / n as f64;
                let add = term / (2 * n + 1) as f64;
                sum += add;
                if add.abs() < 1e-17 {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc by Lentz's continued fraction.
            let a = x.abs();
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            let erfc = (-a * a).exp() / f / std::f64::consts::PI.sqrt();
            (1.0 - erfc).copysign(x)
        }
    }

    fn grid() -> Vec<f32> {
        let mut xs: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 5e-5).collect();
        xs.extend([-30.0, -12.0, -9.0, 9.0, 12.0, 30.0, 1e-30, -1e-30, 0.0, -0.0, 1e6, -1e6]);
        xs
    }

    #[test]
    fn gelu_matches_the_exact_function() {
        let xs = grid();
        let ys = gelu(&xs);
        let mut worst = 0f64;
        for (&x, &y) in xs.iter().zip(&ys) {
            let x = x as f64;
            let exact = 0.5 * x * (1.0 + erf_f64(x / 2f64.sqrt()));
            let err = (y as f64 - exact).abs() / exact.abs().max(1.0);
            worst = worst.max(err);
        }
        // The largest errors (≈1.2e-6 absolute) are in the tail x ≈ -5.5, where 1 + erf cancels.
        assert!(worst < 2e-6, "worst relative error {worst:e}");
    }

    #[test]
    fn gelu_gradient_matches_the_exact_derivative() {
        let xs = grid();
        let grad: Vec<f32> = xs.iter().enumerate().map(|(i, _)| 1.0 + (i % 7) as f32 * 0.25).collect();
        let ys = gelu_backward(&xs, &grad);
        let mut worst = 0f64;
        for ((&x, &g), &y) in xs.iter().zip(&grad).zip(&ys) {
            let x = x as f64;
            let exact = g as f64
                * (0.5 * (1.0 + erf_f64(x / 2f64.sqrt()))
                    + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt());
            let err = (y as f64 - exact).abs() / exact.abs().max(1.0);
            worst = worst.max(err);
        }
        assert!(worst < 1e-6, "worst relative error {worst:e}");
    }

    #[test]
    fn nan_propagates_and_infinity_passes_through() {
        let ys = gelu(&[f32::NAN, f32::INFINITY]);
        assert!(ys[0].is_nan());
        assert_eq!(ys[1], f32::INFINITY);
        let gs = gelu_backward(&[f32::NAN], &[1.0]);
        assert!(gs[0].is_nan());
    }

    #[test]
    fn softmax_rows_sum_to_one_and_match_the_definition() {
        let n = 37;
        let mut data: Vec<f32> = (0..5 * n).map(|i| ((i * 7919) % 101) as f32 / 7.0 - 6.0).collect();
        let original = data.clone();
        softmax_rows(&mut data, n);
        for (row, orig) in data.chunks(n).zip(original.chunks(n)) {
            let max = orig.iter().cloned().fold(f64::NEG_INFINITY, |m, v| m.max(v as f64));
            let total: f64 = orig.iter().map(|&v| (v as f64 - max).exp()).sum();
            for (&p, &v) in row.iter().zip(orig) {
                let exact = (v as f64 - max).exp() / total;
                assert!((p as f64 - exact).abs() < 1e-7 + 1e-6 * exact, "{p} vs {exact}");
            }
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_result() {
        let xs = grid();
        let mut plain = vec![MaybeUninit::uninit(); xs.len()];
        gelu_chunk::<false>(&xs, &mut plain);
        let best = gelu(&xs);
        for (a, b) in plain.iter().zip(&best) {
            // SAFETY: every element was written by gelu_chunk.
            let a = unsafe { a.assume_init() };
            assert!((a - b).abs() <= 2e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn softmax_special_values_are_the_same_on_every_instruction_set() {
        let n = 19;
        let mut data: Vec<f32> = (0..4 * n).map(|i| (i % 5) as f32).collect();
        data[3] = f32::NAN;
        data[n + 4] = f32::INFINITY;
        data[2 * n + 1] = f32::NEG_INFINITY;
        let mut plain = data.clone();
        softmax_rows_chunk::<false>(&mut plain, n);
        let mut best = data;
        softmax_rows(&mut best, n);
        for (a, b) in plain.iter().zip(&best) {
            assert_eq!(a.is_nan(), b.is_nan(), "{a} vs {b}");
            assert!(a.is_nan() || (a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert!(plain[..2 * n].iter().all(|v| v.is_nan()));
        assert_eq!(plain[2 * n + 1], 0.0);
        assert!(plain[2 * n..].iter().all(|v| v.is_finite()));
    }
}
