//! Scaled dot-product attention, `softmax(Q·Kᵀ·scale)·V`, and its gradients for every
//! (batch, head) pair in parallel, on strided f32 views: Q, K, V and dO are read where they
//! lie (a `[batch, seq, heads, head_dim]` projection seen as `[batch, heads, seq, head_dim]` needs
//! no transpose copy), and outputs are written in `[batch, seq, heads, head_dim]` memory order,
//! so that merging the heads back is free. The probabilities are kept for the backward pass.

use gemm::Parallelism;
use rayon::prelude::*;

use super::simd_math;
use super::strided_gemm::strided_gemm;

/// A `[batch, heads, seq, head_dim]` view into a float buffer.
#[derive(Clone, Copy, Debug)]
pub struct HeadsView<'a> {
    /// The whole buffer the view indexes into.
    pub data: &'a [f32],
    /// Offset of element (0, 0, 0, 0).
    pub offset: usize,
    /// Strides of the four dimensions, in elements (all positive).
    pub strides: [usize; 4],
}

impl HeadsView<'_> {
    fn matrix(&self, b: usize, h: usize) -> *const f32 {
        self.data[self.offset + b * self.strides[0] + h * self.strides[1]..].as_ptr()
    }
}

/// Sizes of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Batch size.
    pub batch: usize,
    /// Number of heads.
    pub heads: usize,
    /// Sequence length.
    pub seq: usize,
    /// Size of one head.
    pub head_dim: usize,
}

impl Dims {
    /// Strides of the `[batch, seq, heads, head_dim]` memory order, as `[b, h, s, d]` strides.
    pub fn merged_strides(&self) -> [usize; 4] {
        let row = self.heads * self.head_dim;
        [self.seq * row, self.head_dim, row, 1]
    }

    fn len(&self) -> usize {
        self.batch * self.heads * self.seq * self.head_dim
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
        // SAFETY: the offset is within the `dims.len()` buffer.
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
        strided_gemm(
            dims,
            dst,
            dst_strides,
            accumulate,
            lhs,
            lhs_strides,
            rhs,
            rhs_strides,
            beta,
            Parallelism::None,
        )
    }
}

/// Forward pass: `(output, probabilities)`; the output is in `[batch, seq, heads, head_dim]`
/// memory order, the probabilities `[batch, heads, seq, seq]` contiguous.
pub fn forward(
    q: HeadsView,
    k: HeadsView,
    v: HeadsView,
    dims: Dims,
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let Dims {
        batch,
        heads,
        seq,
        head_dim,
    } = dims;
    let mut out = Vec::with_capacity(dims.len());
    let mut probs = vec![0f32; batch * heads * seq * seq];
    let shared = SharedOut(out.as_mut_ptr());
    let row_stride = heads * head_dim;
    probs
        .par_chunks_mut(seq * seq)
        .enumerate()
        .for_each(|(pair, p)| {
            let (b, h) = (pair / heads, pair % heads);
            // SAFETY: every matrix lies within its view's buffer (checked by the caller's layout)
            // and each task writes only its own (b, h) block of `out` and `p`.
            unsafe {
                small_gemm(
                    (seq, seq, head_dim),
                    p.as_mut_ptr(),
                    (seq, 1),
                    false,
                    q.matrix(b, h),
                    (q.strides[2], q.strides[3]),
                    k.matrix(b, h),
                    (k.strides[3], k.strides[2]),
                    scale,
                );
            }
            simd_math::softmax_rows(p, seq);
            unsafe {
                small_gemm(
                    (seq, head_dim, seq),
                    shared.matrix(&dims, b, h),
                    (row_stride, 1),
                    false,
                    p.as_ptr(),
                    (seq, 1),
                    v.matrix(b, h),
                    (v.strides[2], v.strides[3]),
                    1.0,
                );
            }
        });
    // SAFETY: the (b, h) blocks of all pairs cover the whole buffer.
    unsafe { out.set_len(dims.len()) };
    (out, probs)
}

/// Backward pass given `∂L/∂output` and the forward's probabilities: `(∂L/∂Q, ∂L/∂K, ∂L/∂V)`,
/// each in `[batch, seq, heads, head_dim]` memory order.
pub fn backward(
    q: HeadsView,
    k: HeadsView,
    v: HeadsView,
    probs: &[f32],
    grad: HeadsView,
    dims: Dims,
    scale: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims {
        heads,
        seq,
        head_dim,
        ..
    } = dims;
    let (mut dq, mut dk, mut dv) = (
        Vec::with_capacity(dims.len()),
        Vec::with_capacity(dims.len()),
        Vec::with_capacity(dims.len()),
    );
    let (dq_out, dk_out, dv_out) = (
        SharedOut(dq.as_mut_ptr()),
        SharedOut(dk.as_mut_ptr()),
        SharedOut(dv.as_mut_ptr()),
    );
    let row_stride = heads * head_dim;
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
                    (grad.strides[2], grad.strides[3]),
                    1.0,
                );
                // dP = dO·Vᵀ
                small_gemm(
                    (seq, seq, head_dim),
                    ds.as_mut_ptr(),
                    (seq, 1),
                    false,
                    grad.matrix(b, h),
                    (grad.strides[2], grad.strides[3]),
                    v.matrix(b, h),
                    (v.strides[3], v.strides[2]),
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
                    (k.strides[2], k.strides[3]),
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
                    (q.strides[2], q.strides[3]),
                    scale,
                );
            }
        },
    );
    // SAFETY: the (b, h) blocks of all pairs cover each whole buffer.
    unsafe {
        dq.set_len(dims.len());
        dk.set_len(dims.len());
        dv.set_len(dims.len());
    }
    (dq, dk, dv)
}
