//! `y = x·W + b` and its three gradients on row-major f32 slices, straight onto the `gemm`
//! crate (the matmul kernels Burn's CPU backend uses) with no intermediate tensors: the bias is
//! written into the output first and the product accumulated onto it, transposes are strides.
//! Every reduction has a fixed order, so results do not depend on thread timing.

use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::checked;
use super::strided_gemm::strided_gemm;

/// Rows per parallel task in the element-wise passes.
const ROWS_PER_TASK: usize = 64;

fn parallelism(m: usize, n: usize, k: usize) -> Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= 64 * 64 * 64 { Parallelism::Rayon(0) } else { Parallelism::None }
}

/// Elements per parallel task of rows of `width`: a chunk larger than the buffer is the whole
/// buffer, so saturating is exact; never 0 (`par_chunks` refuses that).
fn task_len(width: usize) -> usize {
    width.saturating_mul(ROWS_PER_TASK).max(1)
}

/// An uninitialised buffer of `len` floats that `fill` must write completely.
fn filled(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote all `len` elements (every caller below writes each one).
    unsafe { out.set_len(len) };
    out
}

/// `x·W + b` for `x` `[rows, d_in]`, `W` `[d_in, d_out]`, `b` `[d_out]`: `[rows, d_out]`.
pub(crate) fn forward(x: &[f32], weight: &[f32], bias: &[f32], rows: usize, d_in: usize, d_out: usize) -> Vec<f32> {
    assert_eq!(x.len(), checked::mul(rows, d_in, "linear: input length"), "linear: input length");
    assert_eq!(weight.len(), checked::mul(d_in, d_out, "linear: weight length"), "linear: weight length");
    assert_eq!(bias.len(), d_out, "linear: bias length");
    let len = checked::mul(rows, d_out, "linear: output length");
    if len == 0 {
        return Vec::new();
    }
    let mut out = filled(len, |out| {
        out.par_chunks_mut(task_len(d_out)).for_each(|chunk| {
            for row in chunk.chunks_mut(d_out) {
                for (o, &b) in row.iter_mut().zip(bias) {
                    o.write(b);
                }
            }
        })
    });
    // SAFETY: the pointers cover the asserted lengths with the given row-major strides (each below
    // `isize::MAX` elements, as the slices exist).
    unsafe {
        strided_gemm(
            (rows, d_out, d_in),
            out.as_mut_ptr(),
            (d_out, 1),
            true,
            x.as_ptr(),
            (d_in, 1),
            weight.as_ptr(),
            (d_out, 1),
            1.0,
            parallelism(rows, d_out, d_in),
        );
    }
    out
}

/// `∂L/∂x = g·Wᵀ` for `g` `[rows, d_out]`: `[rows, d_in]`.
pub(crate) fn backward_input(weight: &[f32], grad: &[f32], rows: usize, d_in: usize, d_out: usize) -> Vec<f32> {
    assert_eq!(
        weight.len(),
        checked::mul(d_in, d_out, "linear backward: weight length"),
        "linear backward: weight length"
    );
    assert_eq!(
        grad.len(),
        checked::mul(rows, d_out, "linear backward: gradient length"),
        "linear backward: gradient length"
    );
    let len = checked::mul(rows, d_in, "linear backward: input gradient length");
    let mut out = Vec::with_capacity(len);
    // SAFETY: not accumulating, so gemm writes every element of `out` without reading it;
    // Wᵀ is W read with swapped strides.
    unsafe {
        strided_gemm(
            (rows, d_in, d_out),
            out.as_mut_ptr(),
            (d_in, 1),
            false,
            grad.as_ptr(),
            (d_out, 1),
            weight.as_ptr(),
            (1, d_out),
            1.0,
            parallelism(rows, d_in, d_out),
        );
        out.set_len(len);
    }
    out
}

/// `∂L/∂W = xᵀ·g`: `[d_in, d_out]`.
pub(crate) fn backward_weight(x: &[f32], grad: &[f32], rows: usize, d_in: usize, d_out: usize) -> Vec<f32> {
    assert_eq!(x.len(), checked::mul(rows, d_in, "linear backward: input length"), "linear backward: input length");
    assert_eq!(
        grad.len(),
        checked::mul(rows, d_out, "linear backward: gradient length"),
        "linear backward: gradient length"
    );
    let len = checked::mul(d_in, d_out, "linear backward: weight gradient length");
    let mut out = Vec::with_capacity(len);
    // SAFETY: as in `backward_input`; xᵀ is x read with swapped strides.
    unsafe {
        strided_gemm(
            (d_in, d_out, rows),
            out.as_mut_ptr(),
            (d_out, 1),
            false,
            x.as_ptr(),
            (1, d_in),
            grad.as_ptr(),
            (d_out, 1),
            1.0,
            parallelism(d_in, d_out, rows),
        );
        out.set_len(len);
    }
    out
}

/// `∂L/∂b`: the column sums of `g`, summed in fixed blocks of rows and then block by block.
pub(crate) fn backward_bias(grad: &[f32], rows: usize, d_out: usize) -> Vec<f32> {
    assert_eq!(
        grad.len(),
        checked::mul(rows, d_out, "linear backward: gradient length"),
        "linear backward: gradient length"
    );
    if d_out == 0 {
        return Vec::new();
    }
    let partials: Vec<Vec<f32>> = grad
        .par_chunks(task_len(d_out))
        .map(|block| {
            let mut sum = vec![0f32; d_out];
            for row in block.chunks(d_out) {
                for (s, &g) in sum.iter_mut().zip(row) {
                    *s += g;
                }
            }
            sum
        })
        .collect();
    let mut total = vec![0f32; d_out];
    for partial in partials {
        for (t, p) in total.iter_mut().zip(partial) {
            *t += p;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], w: &[f32], rows: usize, d_in: usize, d_out: usize) -> Vec<f64> {
        let mut out = vec![0f64; rows * d_out];
        for r in 0..rows {
            for o in 0..d_out {
                out[r * d_out + o] = (0..d_in).map(|i| x[r * d_in + i] as f64 * w[i * d_out + o] as f64).sum();
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    fn assert_close(a: &[f32], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((*x as f64 - y).abs() < 1e-4 * y.abs().max(1.0), "{x} vs {y}");
        }
    }

    #[test]
    fn forward_and_gradients_match_the_definitions() {
        let (rows, d_in, d_out) = (150, 37, 29);
        let x = values(rows * d_in, 1);
        let w = values(d_in * d_out, 2);
        let b = values(d_out, 3);
        let g = values(rows * d_out, 4);

        let mut expected = naive(&x, &w, rows, d_in, d_out);
        for (i, e) in expected.iter_mut().enumerate() {
            *e += b[i % d_out] as f64;
        }
        assert_close(&forward(&x, &w, &b, rows, d_in, d_out), &expected);

        // g·Wᵀ: Wᵀ as a row-major [d_out, d_in] matrix.
        let wt: Vec<f32> = (0..d_out * d_in).map(|j| w[(j % d_in) * d_out + j / d_in]).collect();
        assert_close(&backward_input(&w, &g, rows, d_in, d_out), &naive(&g, &wt, rows, d_out, d_in));

        let xt: Vec<f32> = (0..d_in * rows).map(|j| x[(j % rows) * d_in + j / rows]).collect();
        assert_close(&backward_weight(&x, &g, rows, d_in, d_out), &naive(&xt, &g, d_in, rows, d_out));

        let sums: Vec<f64> = (0..d_out).map(|o| (0..rows).map(|r| g[r * d_out + o] as f64).sum()).collect();
        assert_close(&backward_bias(&g, rows, d_out), &sums);
    }

    #[test]
    fn results_are_bit_identical_from_run_to_run() {
        let (rows, d_in, d_out) = (4160, 192, 768);
        let x = values(rows * d_in, 5);
        let g = values(rows * d_out, 6);
        let w = values(d_in * d_out, 7);
        assert_eq!(backward_bias(&g, rows, d_out), backward_bias(&g, rows, d_out));
        assert_eq!(backward_weight(&x, &g, rows, d_in, d_out), backward_weight(&x, &g, rows, d_in, d_out));
        assert_eq!(backward_input(&w, &g, rows, d_in, d_out), backward_input(&w, &g, rows, d_in, d_out));
    }
}
