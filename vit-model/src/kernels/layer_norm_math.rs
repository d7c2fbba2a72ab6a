//! LayerNorm over the last dimension and its gradients on row-major f32 slices, one pass per
//! row (two-pass mean and variance, as PyTorch computes them), rows in parallel. Parameter
//! gradients are summed in fixed blocks of rows, so results do not depend on thread timing.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 32;

/// Elements per parallel task of rows of `d`: saturating is exact (a chunk larger than the buffer
/// is the whole buffer).
fn task_len(d: usize) -> usize {
    d.saturating_mul(ROWS_PER_TASK)
}

/// Mean and 1/√(var + eps) of one row.
#[inline]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// `(x - mean) / √(var + eps) · gamma + beta` row by row, for `x` of `rows × d`.
pub(crate) fn forward(x: &[f32], gamma: &[f32], beta: &[f32], d: usize, eps: f32) -> Vec<f32> {
    assert!(d > 0 && x.len().is_multiple_of(d), "layer_norm: input length is not a multiple of {d}");
    assert!(gamma.len() == d && beta.len() == d, "layer_norm: parameter length");
    let mut out = Vec::with_capacity(x.len());
    out.spare_capacity_mut()[..x.len()].par_chunks_mut(task_len(d)).zip(x.par_chunks(task_len(d))).for_each(
        |(out, x)| {
            for (o_row, x_row) in out.chunks_mut(d).zip(x.chunks(d)) {
                let (mean, rstd) = moments(x_row, eps);
                for (((o, &v), &g), &b) in o_row.iter_mut().zip(x_row).zip(gamma).zip(beta) {
                    o.write((v - mean) * rstd * g + b);
                }
            }
        },
    );
    // SAFETY: every element was written above.
    unsafe { out.set_len(x.len()) };
    out
}

/// Gradients of [`forward`] given `grad` = ∂L/∂y: `(∂L/∂x, ∂L/∂gamma, ∂L/∂beta)`.
pub(crate) fn backward(x: &[f32], gamma: &[f32], grad: &[f32], d: usize, eps: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(d > 0 && x.len().is_multiple_of(d) && grad.len() == x.len(), "layer_norm backward: lengths");
    assert_eq!(gamma.len(), d, "layer_norm backward: parameter length");
    let mut dx: Vec<f32> = Vec::with_capacity(x.len());
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(task_len(d))
        .zip(x.par_chunks(task_len(d)).zip(grad.par_chunks(task_len(d))))
        .map(|(dx, (x, grad))| {
            let mut dgamma = vec![0f32; d];
            let mut dbeta = vec![0f32; d];
            for ((dx_row, x_row), g_row) in dx.chunks_mut(d).zip(x.chunks(d)).zip(grad.chunks(d)) {
                block_row(dx_row, x_row, g_row, gamma, eps, &mut dgamma, &mut dbeta);
            }
            (dgamma, dbeta)
        })
        .collect();
    // SAFETY: every element was written by `block_row`.
    unsafe { dx.set_len(x.len()) };
    let mut dgamma = vec![0f32; d];
    let mut dbeta = vec![0f32; d];
    for (pg, pb) in partials {
        dgamma.iter_mut().zip(pg).for_each(|(t, p)| *t += p);
        dbeta.iter_mut().zip(pb).for_each(|(t, p)| *t += p);
    }
    (dx, dgamma, dbeta)
}

/// One row of the backward pass: `dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))` with `ĝ = g·gamma`,
/// accumulating the parameter gradients.
#[inline]
fn block_row(
    dx: &mut [MaybeUninit<f32>],
    x: &[f32],
    g: &[f32],
    gamma: &[f32],
    eps: f32,
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let n = x.len() as f32;
    let (mean, rstd) = moments(x, eps);
    let mut sum_gh = 0f32;
    let mut sum_gh_xh = 0f32;
    for ((((&v, &gv), &ga), dg), db) in x.iter().zip(g).zip(gamma).zip(dgamma.iter_mut()).zip(dbeta.iter_mut()) {
        let xh = (v - mean) * rstd;
        let gh = gv * ga;
        sum_gh += gh;
        sum_gh_xh += gh * xh;
        *dg += gv * xh;
        *db += gv;
    }
    let (mean_gh, mean_gh_xh) = (sum_gh / n, sum_gh_xh / n);
    for (((o, &v), &gv), &ga) in dx.iter_mut().zip(x).zip(g).zip(gamma) {
        let xh = (v - mean) * rstd;
        o.write(rstd * (gv * ga - mean_gh - xh * mean_gh_xh));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 250.0 - 2.0).collect()
    }

    /// L = Σ y·w in f64 and its gradients by central differences.
    #[test]
    fn gradients_match_finite_differences() {
        let (rows, d, eps) = (5, 12, 1e-5f32);
        let x = values(rows * d, 1);
        let gamma = values(d, 2);
        let beta = values(d, 3);
        let w = values(rows * d, 4);
        let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
            forward(x, gamma, beta, d, eps).iter().zip(&w).map(|(&y, &w)| y as f64 * w as f64).sum()
        };
        let (dx, dgamma, dbeta) = backward(&x, &gamma, &w, d, eps);
        let h = 1e-2f32;
        let check = |analytic: f32, plus: f64, minus: f64| {
            let numeric = (plus - minus) / (2.0 * h as f64);
            assert!((analytic as f64 - numeric).abs() < 2e-2 * numeric.abs().max(1.0), "{analytic} vs {numeric}");
        };
        for i in [0, 7, 13, 59] {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            check(dx[i], loss(&xp, &gamma, &beta), loss(&xm, &gamma, &beta));
        }
        for i in [0, 5, 11] {
            let (mut gp, mut gm) = (gamma.clone(), gamma.clone());
            gp[i] += h;
            gm[i] -= h;
            check(dgamma[i], loss(&x, &gp, &beta), loss(&x, &gm, &beta));
            let (mut bp, mut bm) = (beta.clone(), beta.clone());
            bp[i] += h;
            bm[i] -= h;
            check(dbeta[i], loss(&x, &gamma, &bp), loss(&x, &gamma, &bm));
        }
    }

    #[test]
    fn rows_are_normalised() {
        let d = 192;
        let x = values(100 * d, 9);
        let y = forward(&x, &vec![1.0; d], &vec![0.0; d], d, 1e-12);
        for row in y.chunks(d) {
            let mean: f32 = row.iter().sum::<f32>() / d as f32;
            let var: f32 = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4, "mean {mean} var {var}");
        }
    }
}
