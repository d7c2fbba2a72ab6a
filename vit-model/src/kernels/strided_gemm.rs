//! The one way our kernels call the `gemm` crate: each matrix is a pointer and its
//! (row, column) strides in elements, so a transpose is just swapped strides.

use gemm::{Parallelism, gemm};

/// `dst (m×n) = lhs (m×k)·rhs (k×n) · beta`, added onto `dst` when `accumulate` (otherwise `dst`
/// is written without being read, so it may be uninitialised).
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
    // SAFETY: the caller's contract; gemm takes (column, row) strides.
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
