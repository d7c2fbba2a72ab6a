//! Scaled dot-product attention, `softmax(Q·Kᵀ·scale)·V`, and its gradients for every
//! (batch, head) pair in parallel, on strided f32 views: Q, K, V and dO are read where they
//! lie (a `[batch, seq, heads, head_dim]` projection seen as `[batch, heads, seq, head_dim]` needs
//! no transpose copy), and outputs are written in `[batch, seq, heads, head_dim]` memory order,
//! so that merging the heads back is free. The probabilities are kept for the backward pass.

use gemm::Parallelism;
use rayon::prelude::*;

use super::checked;
use super::simd_math;
use super::strided_gemm::strided_gemm;

/// Sizes of one attention call, with the element counts they imply (checked not to overflow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    batch: usize,
    heads: usize,
    seq: usize,
    head_dim: usize,
    /// `batch · heads · seq · head_dim`.
    len: usize,
    /// `batch · heads · seq · seq`.
    probs_len: usize,
}

impl Dims {
    /// The sizes of a `[batch, heads, seq, head_dim]` attention. Panics when the element counts
    /// of its tensors (or of its probabilities) overflow `usize`.
    pub(crate) fn new(batch: usize, heads: usize, seq: usize, head_dim: usize) -> Self {
        let len = checked::product(&[batch, heads, seq, head_dim], "attention: query/key/value elements");
        let probs_len = checked::product(&[batch, heads, seq, seq], "attention: probability elements");
        // The merged row stride must be representable too.
        checked::mul(heads, head_dim, "attention: heads · head_dim");
        Self { batch, heads, seq, head_dim, len, probs_len }
    }

    /// Batch size.
    pub(crate) fn batch(&self) -> usize {
        self.batch
    }

    /// Number of heads.
    pub(crate) fn heads(&self) -> usize {
        self.heads
    }

    /// Sequence length.
    pub(crate) fn seq(&self) -> usize {
        self.seq
    }

    /// Size of one head.
    pub(crate) fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Elements of a query, key, value or output tensor.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Elements of the probabilities `[batch, heads, seq, seq]`.
    pub(crate) fn probs_len(&self) -> usize {
        self.probs_len
    }

    /// Strides of the `[batch, seq, heads, head_dim]` memory order, as `[b, h, s, d]` strides.
    pub(crate) fn merged_strides(&self) -> [usize; 4] {
        // Cannot overflow: checked in `new` (and each is at most `len` when `len > 0`).
        let row = self.heads * self.head_dim;
        [self.seq.saturating_mul(row), self.head_dim, row, 1]
    }
}

/// A `[batch, heads, seq, head_dim]` view into a float buffer, every element of which lies
/// within the buffer (checked by [`HeadsView::new`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadsView<'a> {
    data: &'a [f32],
    offset: usize,
    strides: [usize; 4],
    dims: Dims,
}

impl<'a> HeadsView<'a> {
    /// A view of `data` with element (0, 0, 0, 0) at `offset` and the given strides (in elements),
    /// or `None` when some element of the `dims` extents would lie outside `data` (or its index
    /// overflows, or a stride does not fit an `isize`).
    pub(crate) fn new(data: &'a [f32], offset: usize, strides: [usize; 4], dims: Dims) -> Option<Self> {
        if strides.iter().any(|&s| s > isize::MAX as usize) {
            return None;
        }
        if dims.len() > 0 {
            let extents = [dims.batch, dims.heads, dims.seq, dims.head_dim];
            let mut last = offset;
            for (n, s) in extents.iter().zip(strides) {
                last = last.checked_add((n - 1).checked_mul(s)?)?;
            }
            if last >= data.len() {
                return None;
            }
        }
        Some(Self { data, offset, strides, dims })
    }

    /// The extents of the view.
    pub(crate) fn dims(&self) -> Dims {
        self.dims
    }

    /// The (row, column) strides of one `[seq, head_dim]` matrix.
    fn matrix_strides(&self) -> (usize, usize) {
        (self.strides[2], self.strides[3])
    }

    /// The (row, column) strides of one matrix read transposed, `[head_dim, seq]`.
    fn transposed_strides(&self) -> (usize, usize) {
        (self.strides[3], self.strides[2])
    }

    /// The first element of the (b, h) matrix.
    fn matrix(&self, b: usize, h: usize) -> *const f32 {
        assert!(b < self.dims.batch && h < self.dims.heads, "attention: matrix ({b}, {h}) out of range");
        // In range: `new` checked that the last element of the view lies within `data`.
        self.data[self.offset + b * self.strides[0] + h * self.strides[1]..].as_ptr()
    }
}

/// A raw pointer shared by the parallel tasks, each writing its own (batch, head) block.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: tasks write disjoint elements (distinct (batch, head) pairs).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    fn matrix(self, dims: &Dims, b: usize, h: usize) -> *mut f32 {
        let s = dims.merged_strides();
        // SAFETY: b < batch and h < heads (callers enumerate exactly the `batch · heads` pairs), so
        // the offset is within the `dims.len()` buffer.
        unsafe { self.0.add(b * s[0] + h * s[1]) }
    }
}

/// [`strided_gemm`] on the calling thread (the (batch, head) pairs are the parallel tasks).
#[allow(clippy::too_many_arguments)]
unsafe fn small_gemm(
    dims: (usize, usize, usize),
    dst: *mut f32,
    dst_strides: (usize, usize),
    accumulate: bool,
    lhs: *const f32,
    lhs_strides: (usize, usize),
    rhs: *const f32,
    rhs_strides: (usize, usize),
    beta: f32,
) {
    // SAFETY: the caller's contract, as for `strided_gemm`.
    unsafe {
        strided_gemm(dims, dst, dst_strides, accumulate, lhs, lhs_strides, rhs, rhs_strides, beta, Parallelism::None)
    }
}

/// The common extents of `views`, panicking when they differ.
fn common_dims(what: &str, views: &[(&str, &HeadsView)]) -> Dims {
    let dims = views[0].1.dims();
    for (name, view) in views {
        assert!(view.dims() == dims, "{what}: {name} has extents {:?}, {} has {:?}", view.dims(), views[0].0, dims);
    }
    dims
}

/// Forward pass: `(output, probabilities)`; the output is in `[batch, seq, heads, head_dim]`
/// memory order, the probabilities `[batch, heads, seq, seq]` contiguous. Panics when the views'
/// extents differ.
pub(crate) fn forward(q: HeadsView, k: HeadsView, v: HeadsView, scale: f32) -> (Vec<f32>, Vec<f32>) {
    let dims = common_dims("attention", &[("query", &q), ("key", &k), ("value", &v)]);
    let (heads, seq, head_dim) = (dims.heads, dims.seq, dims.head_dim);
    if dims.len() == 0 {
        // No output elements; with `head_dim == 0` every score is 0 and attention is uniform.
        return (Vec::new(), vec![1.0 / seq as f32; dims.probs_len()]);
    }
    let mut out = Vec::with_capacity(dims.len());
    let mut probs = vec![0f32; dims.probs_len()];
    let shared = SharedOut(out.as_mut_ptr());
    let row_stride = heads * head_dim;
    // `probs` has exactly `batch · heads` chunks of `seq²` (`seq > 0` as `len > 0`).
    probs.par_chunks_mut(seq * seq).enumerate().for_each(|(pair, p)| {
        let (b, h) = (pair / heads, pair % heads);
        // SAFETY: every matrix lies within its view's buffer (checked by `HeadsView::new`) and each
        // task writes only its own (b, h) block of `out` and `p`.
        unsafe {
            small_gemm(
                (seq, seq, head_dim),
                p.as_mut_ptr(),
                (seq, 1),
                false,
                q.matrix(b, h),
                q.matrix_strides(),
                k.matrix(b, h),
                k.transposed_strides(),
                scale,
            );
        }
        simd_math::softmax_rows(p, seq);
        // SAFETY: as above.
        unsafe {
            small_gemm(
                (seq, head_dim, seq),
                shared.matrix(&dims, b, h),
                (row_stride, 1),
                false,
                p.as_ptr(),
                (seq, 1),
                v.matrix(b, h),
                v.matrix_strides(),
                1.0,
            );
        }
    });
    // SAFETY: the (b, h) blocks of all `batch · heads` pairs cover the whole buffer, and gemm
    // wrote each element (not accumulating).
    unsafe { out.set_len(dims.len()) };
    (out, probs)
}

/// Backward pass given `∂L/∂output` and the forward's probabilities: `(∂L/∂Q, ∂L/∂K, ∂L/∂V)`,
/// each in `[batch, seq, heads, head_dim]` memory order. Panics when the views' extents differ or
/// `probs` is not `[batch, heads, seq, seq]`.
pub(crate) fn backward(
    q: HeadsView,
    k: HeadsView,
    v: HeadsView,
    probs: &[f32],
    grad: HeadsView,
    scale: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let dims =
        common_dims("attention backward", &[("query", &q), ("key", &k), ("value", &v), ("output gradient", &grad)]);
    assert_eq!(
        probs.len(),
        dims.probs_len(),
        "attention backward: {} probabilities for extents {dims:?}, expected batch · heads · seq²",
        probs.len()
    );
    let (heads, seq, head_dim) = (dims.heads, dims.seq, dims.head_dim);
    if dims.len() == 0 {
        return (Vec::new(), Vec::new(), Vec::new());
    }
    let (mut dq, mut dk, mut dv) =
        (Vec::with_capacity(dims.len()), Vec::with_capacity(dims.len()), Vec::with_capacity(dims.len()));
    let (dq_out, dk_out, dv_out) = (SharedOut(dq.as_mut_ptr()), SharedOut(dk.as_mut_ptr()), SharedOut(dv.as_mut_ptr()));
    let row_stride = heads * head_dim;
    // `probs` has exactly `batch · heads` chunks of `seq²` (asserted above, `seq > 0`).
    probs.par_chunks(seq * seq).enumerate().for_each_init(
        || vec![0f32; seq * seq],
        |ds, (pair, p)| {
            let (b, h) = (pair / heads, pair % heads);
            // SAFETY: as in `forward`; each task writes its own (b, h) blocks.
            unsafe {
                // dV = Pᵀ·dO
                small_gemm(
                    (seq, head_dim, seq),
                    dv_out.matrix(&dims, b, h),
                    (row_stride, 1),
                    false,
                    p.as_ptr(),
                    (1, seq),
                    grad.matrix(b, h),
                    grad.matrix_strides(),
                    1.0,
                );
                // dP = dO·Vᵀ
                small_gemm(
                    (seq, seq, head_dim),
                    ds.as_mut_ptr(),
                    (seq, 1),
                    false,
                    grad.matrix(b, h),
                    grad.matrix_strides(),
                    v.matrix(b, h),
                    v.transposed_strides(),
                    1.0,
                );
            }
            // dS = P ⊙ (dP − rowsum(dP ⊙ P))
            for (ds_row, p_row) in ds.chunks_mut(seq).zip(p.chunks(seq)) {
                let dot: f32 = ds_row.iter().zip(p_row).map(|(d, p)| d * p).sum();
                for (d, &p) in ds_row.iter_mut().zip(p_row) {
                    *d = p * (*d - dot);
                }
            }
            // SAFETY: as above.
            unsafe {
                // dQ = dS·K·scale
                small_gemm(
                    (seq, head_dim, seq),
                    dq_out.matrix(&dims, b, h),
                    (row_stride, 1),
                    false,
                    ds.as_ptr(),
                    (seq, 1),
                    k.matrix(b, h),
                    k.matrix_strides(),
                    scale,
                );
                // dK = dSᵀ·Q·scale
                small_gemm(
                    (seq, head_dim, seq),
                    dk_out.matrix(&dims, b, h),
                    (row_stride, 1),
                    false,
                    ds.as_ptr(),
                    (1, seq),
                    q.matrix(b, h),
                    q.matrix_strides(),
                    scale,
                );
            }
        },
    );
    // SAFETY: the (b, h) blocks of all `batch · heads` pairs cover each whole buffer, and gemm
    // wrote each element (not accumulating).
    unsafe {
        dq.set_len(dims.len());
        dk.set_len(dims.len());
        dv.set_len(dims.len());
    }
    (dq, dk, dv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contiguous(data: &[f32], dims: Dims) -> HeadsView<'_> {
        let (h, s, d) = (dims.heads(), dims.seq(), dims.head_dim());
        HeadsView::new(data, 0, [h * s * d, s * d, d, 1], dims).expect("in bounds")
    }

    #[test]
    fn views_past_the_buffer_are_refused() {
        let dims = Dims::new(2, 3, 4, 5);
        let data = vec![0f32; dims.len()];
        assert!(HeadsView::new(&data, 0, [60, 20, 5, 1], dims).is_some());
        assert!(HeadsView::new(&data, 1, [60, 20, 5, 1], dims).is_none());
        assert!(HeadsView::new(&data[1..], 0, [60, 20, 5, 1], dims).is_none());
        assert!(HeadsView::new(&data, 0, [61, 20, 5, 1], dims).is_none());
        assert!(HeadsView::new(&data, 0, [usize::MAX / 2, 20, 5, 1], dims).is_none());
        assert!(HeadsView::new(&data, usize::MAX, [60, 20, 5, 1], dims).is_none());
        // An empty view reads nothing.
        assert!(HeadsView::new(&[], 0, [0, 0, 0, 0], Dims::new(0, 3, 4, 5)).is_some());
    }

    #[test]
    #[should_panic(expected = "overflows usize")]
    fn overflowing_extents_panic() {
        Dims::new(1 << 20, 1 << 20, 1 << 20, 1 << 20);
    }

    #[test]
    #[should_panic(expected = "probabilities")]
    fn backward_refuses_too_many_probabilities() {
        let dims = Dims::new(1, 2, 3, 4);
        let data = vec![0.5f32; dims.len()];
        let view = contiguous(&data, dims);
        // One (batch, head) block too many would write past dQ, dK and dV.
        let probs = vec![0f32; dims.probs_len() + 9];
        backward(view, view, view, &probs, view, 1.0);
    }

    #[test]
    #[should_panic(expected = "probabilities")]
    fn backward_refuses_too_few_probabilities() {
        let dims = Dims::new(1, 2, 3, 4);
        let data = vec![0.5f32; dims.len()];
        let view = contiguous(&data, dims);
        // One block too few would leave part of dQ, dK and dV uninitialised.
        let probs = vec![0f32; dims.probs_len() - 9];
        backward(view, view, view, &probs, view, 1.0);
    }

    #[test]
    #[should_panic(expected = "extents")]
    fn views_of_different_extents_panic() {
        let (a, b) = (Dims::new(1, 2, 3, 4), Dims::new(1, 2, 3, 2));
        let (da, db) = (vec![0f32; a.len()], vec![0f32; b.len()]);
        forward(contiguous(&da, a), contiguous(&da, a), contiguous(&db, b), 1.0);
    }

    #[test]
    fn empty_attention_is_empty() {
        let dims = Dims::new(2, 3, 0, 4);
        let view = contiguous(&[], dims);
        let (out, probs) = forward(view, view, view, 1.0);
        assert!(out.is_empty() && probs.is_empty());
        let (dq, dk, dv) = backward(view, view, view, &[], view, 1.0);
        assert!(dq.is_empty() && dk.is_empty() && dv.is_empty());
    }
}
