//! A bfloat16 matrix product on AVX512-BF16 (`vdpbf16ps`): operands rounded to bfloat16 (round
//! to nearest even) as they are packed, products summed in float32 — what the float32 kernels
//! compute from operands `low_precision` rounded, up to the order of the sums. Not wired into the
//! model: on the CPUs measured so far it is no faster than the float32 `gemm` (see the bench).
//!
//! Layout: the right operand is packed in panels of [`NR`] columns, each a run of bfloat16 pairs
//! (rows `2q` and `2q + 1` of one column in one 32-bit lane, as `vdpbf16ps` pairs them); the left
//! operand in blocks of [`MR`] rows, each row's pair `q` a 32-bit value broadcast against a panel
//! row. The micro-kernel keeps an `MR × NR` float32 tile in 16 registers.

use rayon::prelude::*;

use vit_model::kernels::low_precision::round_bf16;

/// Rows of the micro-kernel's tile.
const MR: usize = 8;
/// Columns of the micro-kernel's tile (two 16-lane registers).
const NR: usize = 32;
/// Row blocks one parallel task takes (they share each packed panel while it is in cache).
const BLOCKS_PER_TASK: usize = 4;

/// Whether the CPU can run this kernel.
pub fn cpu_has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The bfloat16 bits of `x` rounded to nearest even.
#[inline]
fn bf16_bits(x: f32) -> u32 {
    round_bf16(x).to_bits() >> 16
}

/// `rhs` (`k × n` at `strides`) as panels of [`NR`] columns of bfloat16 pairs, zero-padded.
///
/// # Safety
/// `rhs` must cover the matrix at the given strides.
unsafe fn pack_rhs(k: usize, n: usize, rhs: *const f32, (rs, cs): (usize, usize)) -> Vec<u32> {
    let pairs = k.div_ceil(2);
    let panels = n.div_ceil(NR);
    let mut packed = vec![0u32; panels * pairs * NR];
    let rhs = SendPtr(rhs.cast_mut());
    packed.par_chunks_mut(pairs * NR).enumerate().for_each(|(p, panel)| {
        let rhs = rhs.get().cast_const();
        let cols = NR.min(n - p * NR);
        for q in 0..pairs {
            let row = &mut panel[q * NR..q * NR + cols];
            for (c, lane) in row.iter_mut().enumerate() {
                let col = p * NR + c;
                // SAFETY: row 2q (and 2q + 1 when it exists) and column `col` lie inside the matrix.
                let (even, odd) = unsafe {
                    let even = *rhs.add(2 * q * rs + col * cs);
                    let odd = if 2 * q + 1 < k { *rhs.add((2 * q + 1) * rs + col * cs) } else { 0.0 };
                    (even, odd)
                };
                *lane = bf16_bits(even) | (bf16_bits(odd) << 16);
            }
        }
    });
    packed
}

/// `lhs` (`m × k` at `strides`) as blocks of [`MR`] rows of bfloat16 pairs, zero-padded.
///
/// # Safety
/// `lhs` must cover the matrix at the given strides.
unsafe fn pack_lhs(m: usize, k: usize, lhs: *const f32, (rs, cs): (usize, usize)) -> Vec<u32> {
    let pairs = k.div_ceil(2);
    let blocks = m.div_ceil(MR);
    let mut packed = vec![0u32; blocks * pairs * MR];
    let lhs = SendPtr(lhs.cast_mut());
    packed.par_chunks_mut(pairs * MR).enumerate().for_each(|(b, block)| {
        let lhs = lhs.get().cast_const();
        let rows = MR.min(m - b * MR);
        for q in 0..pairs {
            for r in 0..rows {
                let row = b * MR + r;
                // SAFETY: row `row` and columns 2q (and 2q + 1 when it exists) lie inside the matrix.
                let (even, odd) = unsafe {
                    let even = *lhs.add(row * rs + 2 * q * cs);
                    let odd = if 2 * q + 1 < k { *lhs.add(row * rs + (2 * q + 1) * cs) } else { 0.0 };
                    (even, odd)
                };
                block[q * MR + r] = bf16_bits(even) | (bf16_bits(odd) << 16);
            }
        }
    });
    packed
}

/// `dst (m×n) = lhs (m×k)·rhs (k×n) · beta`, added onto `dst` when `accumulate`, with both
/// operands rounded to bfloat16 and the sums in float32.
///
/// # Safety
/// Each pointer must cover its matrix at the given strides, `dst` must not alias the inputs, and the CPU must have AVX512-BF16
/// ([`cpu_has_avx512_bf16`]).
#[allow(clippy::too_many_arguments)]
pub unsafe fn bf16_gemm(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_strides: (usize, usize),
    accumulate: bool,
    lhs: *const f32,
    lhs_strides: (usize, usize),
    rhs: *const f32,
    rhs_strides: (usize, usize),
    beta: f32,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let pairs = k.div_ceil(2);
    // SAFETY: the caller's contract.
    let (a, b) = unsafe { (pack_lhs(m, k, lhs, lhs_strides), pack_rhs(k, n, rhs, rhs_strides)) };
    let blocks = m.div_ceil(MR);
    let panels = n.div_ceil(NR);
    let dst = SendPtr(dst);
    let task = |first_block: usize| {
        let mut tile = [0f32; MR * NR];
        for p in 0..panels {
            let panel = &b[p * pairs * NR..(p + 1) * pairs * NR];
            for blk in first_block..(first_block + BLOCKS_PER_TASK).min(blocks) {
                let block = &a[blk * pairs * MR..(blk + 1) * pairs * MR];
                // SAFETY: the caller promised AVX512-BF16; both packs hold `pairs` rows.
                unsafe { tile_product(pairs, block.as_ptr(), panel.as_ptr(), &mut tile) };
                let (rows, cols) = (MR.min(m - blk * MR), NR.min(n - p * NR));
                for r in 0..rows {
                    for c in 0..cols {
                        let (i, j) = (blk * MR + r, p * NR + c);
                        // SAFETY: (i, j) lies inside `dst`; tasks own disjoint row blocks.
                        unsafe {
                            let out = dst.get().add(i * dst_strides.0 + j * dst_strides.1);
                            let value = beta * tile[r * NR + c];
                            *out = if accumulate { *out + value } else { value };
                        }
                    }
                }
            }
        }
    };
    if parallel {
        (0..blocks).into_par_iter().step_by(BLOCKS_PER_TASK).for_each(task);
    } else {
        (0..blocks).step_by(BLOCKS_PER_TASK).for_each(task);
    }
}

/// `tile = block · panel` over `pairs` bfloat16 pairs.
///
/// # Safety
/// The CPU must have AVX512-BF16; `block` must hold `pairs · MR` values and `panel` `pairs · NR`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile_product(pairs: usize, block: *const u32, panel: *const u32, tile: &mut [f32; MR * NR]) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for q in 0..pairs {
        // SAFETY: pair q's panel row (NR lanes) and block column (MR values) are in bounds.
        unsafe {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(panel.add(q * NR).cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(panel.add(q * NR + 16).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let a: __m512bh = std::mem::transmute(_mm512_set1_epi32(*block.add(q * MR + r) as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], a, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], a, b1);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row r of the tile holds NR = 32 floats.
        unsafe {
            _mm512_storeu_ps(tile.as_mut_ptr().add(r * NR), acc[0]);
            _mm512_storeu_ps(tile.as_mut_ptr().add(r * NR + 16), acc[1]);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile_product(_: usize, _: *const u32, _: *const u32, _: &mut [f32; MR * NR]) {
    unreachable!("bf16_gemm runs only where cpu_has_avx512_bf16()")
}

#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: the tasks above read the inputs and write disjoint parts of the output.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 4.0 - 2.0
        })
        .collect()
}

/// The product of the rounded operands in float64: what any correct kernel approaches.
fn reference(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
    let mut out = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|l| round_bf16(a[i * k + l]) as f64 * round_bf16(b[l * n + j]) as f64).sum();
        }
    }
    out
}

/// Checks [`bf16_gemm`] against the float64 product of the rounded operands on every edge shape
/// (panics on a mismatch). Needs AVX512-BF16.
pub fn check_against_reference() {
    // Odd k, partial tiles in both directions, one row, one column, and a transposed operand.
    for (m, n, k) in [(1, 1, 1), (7, 33, 5), (8, 32, 2), (19, 70, 131), (64, 96, 768), (3, 1, 64)] {
        let (a, b) = (values(m * k, 7 + m as u32), values(k * n, 11 + n as u32));
        let want = reference(m, n, k, &a, &b);
        for (accumulate, beta, transposed) in [(false, 1.0, false), (true, 0.5, false), (false, 1.0, true)] {
            let mut dst = vec![1.0f32; m * n];
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let (rhs, rhs_strides) = if transposed { (&bt, (1, k)) } else { (&b, (n, 1)) };
            // SAFETY: every matrix is a contiguous buffer at the strides given.
            unsafe {
                bf16_gemm(
                    (m, n, k),
                    dst.as_mut_ptr(),
                    (n, 1),
                    accumulate,
                    a.as_ptr(),
                    (k, 1),
                    rhs.as_ptr(),
                    rhs_strides,
                    beta,
                    m > 8,
                )
            };
            for (idx, (&got, &w)) in dst.iter().zip(&want).enumerate() {
                let w = if accumulate { 1.0 + beta as f64 * w } else { beta as f64 * w };
                let tol = 1e-5 * (k as f64).sqrt() * 4.0 + 1e-5 * w.abs();
                assert!(((got as f64) - w).abs() <= tol, "{m}x{n}x{k} [{idx}]: {got} vs {w}");
            }
        }
    }
}

/// Single-thread throughput of the micro-kernel alone (GFLOP/s), its operands in L1.
pub fn micro_kernel_gflops(seconds: f64) -> f64 {
    let pairs = 128;
    let block = vec![0x3f80_3f80u32; pairs * MR];
    let panel = vec![0x3f80_3f80u32; pairs * NR];
    let mut tile = [0f32; MR * NR];
    let start = std::time::Instant::now();
    let mut calls = 0usize;
    while start.elapsed().as_secs_f64() < seconds {
        for _ in 0..1000 {
            // SAFETY: the caller checked AVX512-BF16; the packs hold `pairs` rows.
            unsafe { tile_product(pairs, block.as_ptr(), panel.as_ptr(), &mut tile) };
            std::hint::black_box(&mut tile);
        }
        calls += 1000;
    }
    (calls * pairs * MR * NR * 4) as f64 / start.elapsed().as_secs_f64() / 1e9
}
