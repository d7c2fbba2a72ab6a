//! Operands rounded to bfloat16 and laid out as the tile units read them.
//!
//! - The left operand `A` (m×k) in blocks of [`BLOCK`] rows, each row `kp` values long (k
//!   zero-padded to a multiple of [`BLOCK`]): a tile of 16 rows × 32 values is 16 loads of 64
//!   bytes, `kp` values apart.
//! - The right operand `B` (k×n) in blocks of [`BLOCK`] columns, each block `kp / 2` rows of
//!   [`BLOCK`] column pairs: row `p` holds `B[2p][j]` and `B[2p + 1][j]` side by side for every
//!   column `j` of the block (the pair layout of `tdpbf16ps`).
//!
//! Padding rows, columns and k values are zero, so whole blocks can be multiplied.

use rayon::prelude::*;

use crate::kernels::low_precision::round_bf16;

/// Rows and columns of an output block; k values per step of the tile units.
pub(super) const BLOCK: usize = 32;

/// The bfloat16 bits of `x` rounded to nearest even (NaN stays NaN).
pub(super) fn bf16_bits(x: f32) -> u16 {
    (round_bf16(x).to_bits() >> 16) as u16
}

/// The float32 value of bfloat16 bits.
pub(super) fn bf16_value(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// A read-only matrix: a pointer and its (row, column) strides in elements.
#[derive(Clone, Copy)]
pub(super) struct Matrix {
    ptr: *const f32,
    strides: (usize, usize),
}

// SAFETY: a `Matrix` is only read, and the caller of `Matrix::new` vouches for the memory while
// the packing runs.
unsafe impl Send for Matrix {}
// SAFETY: as for `Send`.
unsafe impl Sync for Matrix {}

impl Matrix {
    /// # Safety
    /// `ptr` must cover every element the packing reads at these strides while it runs.
    pub(super) unsafe fn new(ptr: *const f32, strides: (usize, usize)) -> Self {
        Self { ptr, strides }
    }

    fn at(&self, row: usize, col: usize) -> f32 {
        // SAFETY: `Matrix::new`'s contract; callers stay inside the matrix's extents.
        unsafe { *self.ptr.add(row * self.strides.0 + col * self.strides.1) }
    }

    /// Row `row`'s first `len` values, when its columns are adjacent.
    fn row(&self, row: usize, len: usize) -> Option<&[f32]> {
        // SAFETY: `Matrix::new`'s contract; with a column stride of 1 the row is contiguous.
        (self.strides.1 == 1).then(|| unsafe { std::slice::from_raw_parts(self.ptr.add(row * self.strides.0), len) })
    }
}

/// `A` (m×k) in row blocks: `m.div_ceil(BLOCK) * BLOCK * kp` values.
pub(super) fn pack_rows(a: Matrix, m: usize, k: usize, kp: usize) -> Vec<u16> {
    assert!(kp >= k && kp.is_multiple_of(BLOCK) && kp > 0, "pack_rows: k {k} padded to {kp}");
    let mut out = vec![0u16; m.div_ceil(BLOCK) * BLOCK * kp];
    out.par_chunks_mut(BLOCK * kp).enumerate().for_each(|(block, dst)| {
        let rows = BLOCK.min(m - block * BLOCK);
        let row0 = block * BLOCK;
        // Walk the source along its unit stride.
        if a.strides.1 <= a.strides.0 {
            for r in 0..rows {
                let dst = &mut dst[r * kp..r * kp + k];
                match a.row(row0 + r, k) {
                    Some(src) => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = bf16_bits(v)),
                    None => dst.iter_mut().enumerate().for_each(|(p, d)| *d = bf16_bits(a.at(row0 + r, p))),
                }
            }
        } else {
            for p in 0..k {
                for r in 0..rows {
                    dst[r * kp + p] = bf16_bits(a.at(row0 + r, p));
                }
            }
        }
    });
    out
}

/// `B` (k×n) in column blocks of row pairs: `n.div_ceil(BLOCK) * kp * BLOCK` values.
pub(super) fn pack_column_pairs(b: Matrix, k: usize, n: usize, kp: usize) -> Vec<u16> {
    assert!(kp >= k && kp.is_multiple_of(BLOCK) && kp > 0, "pack_column_pairs: k {k} padded to {kp}");
    let mut out = vec![0u16; n.div_ceil(BLOCK) * kp * BLOCK];
    out.par_chunks_mut(kp * BLOCK).enumerate().for_each(|(block, dst)| {
        let cols = BLOCK.min(n - block * BLOCK);
        let col0 = block * BLOCK;
        let index = |p: usize, j: usize| (p / 2) * 2 * BLOCK + j * 2 + p % 2;
        if b.strides.1 <= b.strides.0 {
            for p in 0..k {
                for j in 0..cols {
                    dst[index(p, j)] = bf16_bits(b.at(p, col0 + j));
                }
            }
        } else {
            for j in 0..cols {
                for p in 0..k {
                    dst[index(p, j)] = bf16_bits(b.at(p, col0 + j));
                }
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_hold_every_value_once_and_zeros_elsewhere() {
        let (m, k, n) = (35, 5, 33);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 + 1.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| i as f32 + 1.0).collect();
        for transposed in [false, true] {
            // The same logical matrices stored row-major or column-major.
            let (a_store, a_strides): (Vec<f32>, _) = if transposed {
                ((0..m * k).map(|i| a[(i % m) * k + i / m]).collect(), (1, m))
            } else {
                (a.clone(), (k, 1))
            };
            let (b_store, b_strides): (Vec<f32>, _) = if transposed {
                ((0..k * n).map(|i| b[(i % k) * n + i / k]).collect(), (1, k))
            } else {
                (b.clone(), (n, 1))
            };
            // SAFETY: the strides cover the stores.
            let pa = pack_rows(unsafe { Matrix::new(a_store.as_ptr(), a_strides) }, m, k, 32);
            let pb = pack_column_pairs(unsafe { Matrix::new(b_store.as_ptr(), b_strides) }, k, n, 32);
            assert_eq!(pa.len(), 64 * 32);
            assert_eq!(pb.len(), 2 * 32 * 32);
            for i in 0..64 {
                for p in 0..32 {
                    let want = if i < m && p < k { a[i * k + p] } else { 0.0 };
                    assert_eq!(bf16_value(pa[i * 32 + p]), want, "A[{i}][{p}], transposed {transposed}");
                }
            }
            for j in 0..64 {
                for p in 0..32 {
                    let want = if j < n && p < k { b[p * n + j] } else { 0.0 };
                    let got = pb[(j / 32) * 32 * 32 + (p / 2) * 64 + (j % 32) * 2 + p % 2];
                    assert_eq!(bf16_value(got), want, "B[{p}][{j}], transposed {transposed}");
                }
            }
        }
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        // 1 + 2^-8 is halfway between two bfloat16 values: ties go to the even one (1.0).
        assert_eq!(bf16_value(bf16_bits(1.0 + 1.0 / 256.0)), 1.0);
        assert_eq!(bf16_value(bf16_bits(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        assert!(bf16_value(bf16_bits(f32::NAN)).is_nan());
    }
}
