//! `y = x·W + b` and its three gradients on row-major f32 slices, straight onto the `gemm`
//! crate (the matmul kernels Burn's CPU backend uses) with no intermediate tensors: the bias is
//! written into the output first and the product accumulated onto it, transposes are strides.
//! Every reduction has a fixed order, so results do not depend on thread timing.

use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::bf16_tiles::{TileUnit, bf16_gemm};
use super::checked;
use super::strided_gemm::strided_gemm;

/// The kernels a dense layer's products run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Products {
    /// The float32 `gemm` crate, on the operands as given (rounded beforehand under autocast).
    F32,
    /// bfloat16 tiles: the operands are rounded while they are packed.
    Bf16Tiles(TileUnit),
}

/// `dst = lhs·rhs` (added onto `dst` when `accumulate`) on `products`' kernels.
///
/// # Safety
/// As [`strided_gemm`].
#[allow(clippy::too_many_arguments)]
unsafe fn multiply(
    products: Products,
    dims: (usize, usize, usize),
    dst: *mut f32,
    dst_strides: (usize, usize),
    accumulate: bool,
    lhs: *const f32,
    lhs_strides: (usize, usize),
    rhs: *const f32,
    rhs_strides: (usize, usize),
) {
    let (m, n, k) = dims;
    // SAFETY: the caller's contract (a tile unit only exists once it has been enabled).
    unsafe {
        match products {
            Products::F32 => strided_gemm(
                dims,
                dst,
                dst_strides,
                accumulate,
                lhs,
                lhs_strides,
                rhs,
                rhs_strides,
                1.0,
                parallelism(m, n, k),
            ),
            Products::Bf16Tiles(unit) => {
                bf16_gemm(unit, dims, dst, dst_strides, accumulate, lhs, lhs_strides, rhs, rhs_strides)
            }
        }
    }
}

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
pub(crate) fn forward(
    products: Products,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    rows: usize,
    d_in: usize,
    d_out: usize,
) -> Vec<f32> {
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
        multiply(
            products,
            (rows, d_out, d_in),
            out.as_mut_ptr(),
            (d_out, 1),
            true,
            x.as_ptr(),
            (d_in, 1),
            weight.as_ptr(),
            (d_out, 1),
        );
    }
    out
}

/// `∂L/∂x = g·Wᵀ` for `g` `[rows, d_out]`: `[rows, d_in]`.
pub(crate) fn backward_input(
    products: Products,
    weight: &[f32],
    grad: &[f32],
    rows: usize,
    d_in: usize,
    d_out: usize,
) -> Vec<f32> {
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
        multiply(
            products,
            (rows, d_in, d_out),
            out.as_mut_ptr(),
            (d_in, 1),
            false,
            grad.as_ptr(),
            (d_out, 1),
            weight.as_ptr(),
            (1, d_out),
        );
        out.set_len(len);
    }
    out
}

/// `∂L/∂W = xᵀ·g`: `[d_in, d_out]`.
pub(crate) fn backward_weight(
    products: Products,
    x: &[f32],
    grad: &[f32],
    rows: usize,
    d_in: usize,
    d_out: usize,
) -> Vec<f32> {
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
        multiply(
            products,
            (d_in, d_out, rows),
            out.as_mut_ptr(),
            (d_out, 1),
            false,
            x.as_ptr(),
            (1, d_in),
            grad.as_ptr(),
            (d_out, 1),
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
        assert_close(&forward(Products::F32, &x, &w, &b, rows, d_in, d_out), &expected);

        // g·Wᵀ: Wᵀ as a row-major [d_out, d_in] matrix.
        let wt: Vec<f32> = (0..d_out * d_in).map(|j| w[(j % d_in) * d_out + j / d_in]).collect();
        assert_close(&backward_input(Products::F32, &w, &g, rows, d_in, d_out), &naive(&g, &wt, rows, d_out, d_in));

        let xt: Vec<f32> = (0..d_in * rows).map(|j| x[(j % rows) * d_in + j / rows]).collect();
        assert_close(&backward_weight(Products::F32, &x, &g, rows, d_in, d_out), &naive(&xt, &g, d_in, rows, d_out));

        let sums: Vec<f64> = (0..d_out).map(|o| (0..rows).map(|r| g[r * d_out + o] as f64).sum()).collect();
        assert_close(&backward_bias(&g, rows, d_out), &sums);
    }

    #[test]
    fn bf16_tiles_equal_the_float32_kernels_on_rounded_operands() {
        use crate::kernels::low_precision::round_bf16;
        let round = |v: Vec<f32>| -> Vec<f32> { v.into_iter().map(round_bf16).collect() };
        let tiles = Products::Bf16Tiles(TileUnit::Emulated);
        let (rows, d_in, d_out) = (150, 37, 29);
        let (x, w, b, g) = (values(rows * d_in, 1), values(d_in * d_out, 2), values(d_out, 3), values(rows * d_out, 4));
        let (xr, wr, gr) = (round(x.clone()), round(w.clone()), round(g.clone()));
        let close = |tiles: Vec<f32>, f32s: Vec<f32>, what: &str| {
            assert_eq!(tiles.len(), f32s.len(), "{what}");
            for (t, f) in tiles.iter().zip(&f32s) {
                assert!((t - f).abs() <= 1e-5 * (1.0 + f.abs()), "{what}: {t} vs {f}");
            }
        };
        close(
            forward(tiles, &x, &w, &b, rows, d_in, d_out),
            forward(Products::F32, &xr, &wr, &b, rows, d_in, d_out),
            "forward",
        );
        close(
            backward_input(tiles, &w, &g, rows, d_in, d_out),
            backward_input(Products::F32, &wr, &gr, rows, d_in, d_out),
            "input gradient",
        );
        close(
            backward_weight(tiles, &x, &g, rows, d_in, d_out),
            backward_weight(Products::F32, &xr, &gr, rows, d_in, d_out),
            "weight gradient",
        );
        assert_ne!(
            forward(tiles, &x, &w, &b, rows, d_in, d_out),
            forward(Products::F32, &x, &w, &b, rows, d_in, d_out),
            "the tiles round their operands"
        );
    }

    #[test]
    fn results_are_bit_identical_from_run_to_run() {
        let (rows, d_in, d_out) = (4160, 192, 768);
        let x = values(rows * d_in, 5);
        let g = values(rows * d_out, 6);
        let w = values(d_in * d_out, 7);
        assert_eq!(backward_bias(&g, rows, d_out), backward_bias(&g, rows, d_out));
        assert_eq!(
            backward_weight(Products::F32, &x, &g, rows, d_in, d_out),
            backward_weight(Products::F32, &x, &g, rows, d_in, d_out)
        );
        assert_eq!(
            backward_input(Products::F32, &w, &g, rows, d_in, d_out),
            backward_input(Products::F32, &w, &g, rows, d_in, d_out)
        );
    }
}
