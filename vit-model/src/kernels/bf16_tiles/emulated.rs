//! A software model of the AMX block ([`super::amx::block`]): the same tiles, the same
//! instruction (`tdpbf16ps`, as Intel's pseudo-code defines it), the same order of sums. It runs
//! on any CPU, so the packing and blocking around the tile unit are tested everywhere, and it is
//! the reference an AMX unit is checked against before a process uses it.

use super::packing::{BLOCK, bf16_value};

/// Rows and float32 columns of a tile.
const TILE: usize = 16;

/// `out = A·B` for one block: `a` is a packed row block (`BLOCK` rows of `kp` values), `b` a
/// packed column block (`kp / 2` rows of `BLOCK` pairs), `out` row-major `BLOCK`×`BLOCK`.
///
/// # Safety
/// `a` must cover `BLOCK * kp` values and `b` `kp * BLOCK`; `kp` a multiple of `BLOCK`.
pub(super) unsafe fn block(a: *const u16, b: *const u16, kp: usize, out: &mut [f32; BLOCK * BLOCK]) {
    // SAFETY: the caller's contract.
    let (a, b) = unsafe { (std::slice::from_raw_parts(a, BLOCK * kp), std::slice::from_raw_parts(b, kp * BLOCK)) };
    out.fill(0.0);
    for step in 0..kp / BLOCK {
        for tile_row in 0..2 {
            for tile_col in 0..2 {
                tdpbf16ps(out, tile_row, tile_col, a, b, step, kp);
            }
        }
    }
}

/// Accumulator tile (`tile_row`, `tile_col`) of `out` += A tile `tile_row` · B tile `tile_col`
/// of k step `step`: for each row `m`, pair `p` and column `n`,
/// `c[m][n] += a[m][2p]·b[p][2n]`, then `+= a[m][2p+1]·b[p][2n+1]` (each product of two bfloat16
/// values is exact in float32).
fn tdpbf16ps(
    out: &mut [f32; BLOCK * BLOCK],
    tile_row: usize,
    tile_col: usize,
    a: &[u16],
    b: &[u16],
    step: usize,
    kp: usize,
) {
    for m in 0..TILE {
        let row = tile_row * TILE + m;
        let a_row = &a[row * kp + step * BLOCK..][..BLOCK];
        let c_row = &mut out[row * BLOCK + tile_col * TILE..][..TILE];
        for p in 0..TILE {
            let (a0, a1) = (bf16_value(a_row[2 * p]), bf16_value(a_row[2 * p + 1]));
            let b_row = &b[(step * TILE + p) * 2 * BLOCK + tile_col * 2 * TILE..][..2 * TILE];
            for (c, pair) in c_row.iter_mut().zip(b_row.chunks_exact(2)) {
                *c += a0 * bf16_value(pair[0]);
                *c += a1 * bf16_value(pair[1]);
            }
        }
    }
}
