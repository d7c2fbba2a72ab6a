//! The one way our kernels call the `gemm` crate: each matrix is a pointer and its
//! (row, column) strides in elements, so a transpose is just swapped strides.

use std::sync::atomic::{AtomicBool, Ordering};

use gemm::{Parallelism, gemm};

static SLICING: AtomicBool = AtomicBool::new(true);

/// Whether long-reduction products are sliced across threads by us (the default) or threaded by
/// the `gemm` crate itself: a switch for benchmarks that compare the two.
pub fn set_sliced_gemm(enabled: bool) {
    SLICING.store(enabled, Ordering::Relaxed);
}

/// Narrowest slice of the split dimension one thread takes.
const MIN_SLICE: usize = 64;
/// Slices start at multiples of the f32 micro-kernel's 16 rows.
const SLICE_ALIGN: usize = 16;

/// `dst (m×n) = lhs (m×k)·rhs (k×n) · beta`, added onto `dst` when `accumulate` (otherwise `dst`
/// is written without being read, so it may be uninitialised).
///
/// With `Parallelism::Rayon` and a reduction longer than both output sides (the weight gradients
/// `xᵀ·dy`, `k` = every token of the batch), the larger of `m` and `n` is cut into one slice per
/// thread and each slice is a single-threaded product: the crate's own threading scales poorly on
/// those shapes (`cargo bench -p vit-model --bench precision_kernels`: ViT-Ti's dense layers
/// over a CIFAR batch). Every output element is still one thread's fixed-order sum, so results do
/// not depend on the thread count.
///
/// # Safety
/// Each pointer must cover its matrix at the given strides, and `dst` must not alias the inputs.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn strided_gemm(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_strides: (usize, usize),
    accumulate: bool,
    lhs: *const f32,
    lhs_strides: (usize, usize),
    rhs: *const f32,
    rhs_strides: (usize, usize),
    beta: f32,
    parallelism: Parallelism,
) {
    let threads = match parallelism {
        Parallelism::None => 1,
        Parallelism::Rayon(0) => rayon::current_num_threads(),
        Parallelism::Rayon(t) => t,
    };
    let split_rows = m >= n;
    let long = if split_rows { m } else { n };
    let slices = threads.min(long / MIN_SLICE).max(1);
    if slices == 1 || k < m.max(n) || !SLICING.load(Ordering::Relaxed) {
        // SAFETY: the caller's contract.
        unsafe {
            gemm_call((m, n, k), dst, dst_strides, accumulate, lhs, lhs_strides, rhs, rhs_strides, beta, parallelism)
        };
        return;
    }
    let width = long.div_ceil(slices).next_multiple_of(SLICE_ALIGN);
    let (dst, lhs, rhs) = (SendPtr(dst), SendPtr(lhs.cast_mut()), SendPtr(rhs.cast_mut()));
    rayon::scope(|scope| {
        for start in (0..long).step_by(width) {
            let len = width.min(long - start);
            scope.spawn(move |_| {
                let (dst, lhs, rhs) = (dst.get(), lhs.get().cast_const(), rhs.get().cast_const());
                // A slice of `dst`'s rows takes the same rows of `lhs`; a slice of its columns, the
                // same columns of `rhs`.
                let (dims, dst_step, lhs_step, rhs_step) = if split_rows {
                    ((len, n, k), dst_strides.0, lhs_strides.0, 0)
                } else {
                    ((m, len, k), dst_strides.1, 0, rhs_strides.1)
                };
                // SAFETY: slice `start..start + len` of the split dimension lies inside every matrix,
                // and the slices of `dst` are disjoint, so no two threads write one element.
                unsafe {
                    gemm_call(
                        dims,
                        dst.add(start * dst_step),
                        dst_strides,
                        accumulate,
                        lhs.add(start * lhs_step),
                        lhs_strides,
                        rhs.add(start * rhs_step),
                        rhs_strides,
                        beta,
                        Parallelism::None,
                    )
                }
            });
        }
    });
}

/// A pointer that may cross to rayon tasks: used by the products here and in
/// [`super::bf16_tiles`], whose tasks read shared inputs and write disjoint parts of the output.
#[derive(Clone, Copy)]
pub(super) struct SendPtr(pub(super) *mut f32);

// SAFETY: every user's tasks read shared inputs and write disjoint elements through it.
unsafe impl Send for SendPtr {}
// SAFETY: as for `Send`: the pointer itself is only copied out, never changed.
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so that closures capture the whole `SendPtr`).
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

/// One `gemm` call (the crate takes (column, row) strides).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_call(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_strides: (usize, usize),
    accumulate: bool,
    lhs: *const f32,
    lhs_strides: (usize, usize),
    rhs: *const f32,
    rhs_strides: (usize, usize),
    beta: f32,
    parallelism: Parallelism,
) {
    // SAFETY: the caller's contract.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst,
            dst_strides.1 as isize,
            dst_strides.0 as isize,
            accumulate,
            lhs,
            lhs_strides.1 as isize,
            lhs_strides.0 as isize,
            rhs,
            rhs_strides.1 as isize,
            rhs_strides.0 as isize,
            1.0,
            beta,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a (m×k)·b (k×n)` in f64, row-major.
    fn reference(a: &[f32], b: &[f32], (m, n, k): (usize, usize, usize)) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for p in 0..k {
                let x = a[i * k + p] as f64;
                for j in 0..n {
                    out[i * n + j] += x * b[p * n + j] as f64;
                }
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32).map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    /// `lhsᵀ·rhs` with `lhs` stored `k×m` (a weight gradient's shape), sliced or not.
    fn product(a_t: &[f32], b: &[f32], (m, n, k): (usize, usize, usize), parallelism: Parallelism) -> Vec<f32> {
        let mut out = vec![0.5f32; m * n];
        // SAFETY: `a_t` is k×m, `b` k×n, `out` m×n, all row-major and disjoint.
        unsafe {
            strided_gemm(
                (m, n, k),
                out.as_mut_ptr(),
                (n, 1),
                true,
                a_t.as_ptr(),
                (1, m),
                b.as_ptr(),
                (n, 1),
                1.0,
                parallelism,
            )
        };
        out
    }

    #[test]
    fn sliced_products_equal_the_single_threaded_one_bit_for_bit() {
        // Rows sliced (m ≥ n), columns sliced (n > m), a ragged last slice, and the unsliced path.
        for dims in [(200, 72, 300), (40, 150, 260), (130, 130, 131), (70, 60, 500), (300, 200, 100)] {
            let (m, n, k) = dims;
            let a_t = values(k * m, 7);
            let b = values(k * n, 11);
            let single = product(&a_t, &b, dims, Parallelism::None);
            let a: Vec<f32> = (0..m * k).map(|idx| a_t[(idx % k) * m + idx / k]).collect();
            for (got, want) in single.iter().zip(reference(&a, &b, dims)) {
                assert!(
                    (*got as f64 - 0.5 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "{dims:?}: {got} vs {want} + 0.5"
                );
            }
            for threads in [2, 3, 4] {
                assert_eq!(product(&a_t, &b, dims, Parallelism::Rayon(threads)), single, "{dims:?}, {threads} threads");
            }
        }
    }
}
