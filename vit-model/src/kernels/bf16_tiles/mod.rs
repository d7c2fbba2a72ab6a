//! bfloat16 matrix products on tile units, for the dense layers under `bf16` autocast on the CPU
//! backend: Intel AMX (`tdpbf16ps`) where the CPU and the OS allow it, otherwise the rounded
//! float32 path of [`crate::kernels::low_precision`]. Chosen once per process at run time
//! ([`active_bf16_kernel`]), so one binary runs everywhere.
//!
//! A product `C (m×n) = A (m×k)·B (k×n)` rounds both operands to bfloat16 (nearest even) while
//! packing them once (`packing`), then computes each 32×32 block of `C` as four 16×16 float32
//! tiles that take 32 values of k per step. Products of bfloat16 values are exact in float32, so
//! the results equal the rounded-operand float32 path's up to the order of the sums.
//!
//! The AMX unit is only ever run after it has reproduced the software model of the same tiles
//! (`emulated`, which every CPU runs and the tests check) on a test product; a unit that
//! disagrees is reported on stderr and not used.

mod amx;
mod emulated;
mod packing;

use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;

use rayon::prelude::*;

use super::strided_gemm::SendPtr;
use packing::{BLOCK, Matrix, pack_column_pairs, pack_rows};

/// How the CPU backend multiplies bfloat16 operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// AMX tiles (`tdpbf16ps`).
    Amx,
    /// The software model of the AMX tiles: exact but slow (for tests and comparisons).
    EmulatedTiles,
    /// Operands rounded to bfloat16 values in float32 containers and multiplied by the float32
    /// kernels (every CPU).
    RoundedF32,
}

impl Bf16Kernel {
    /// The name `VIT_BF16_KERNEL` takes.
    pub fn name(self) -> &'static str {
        match self {
            Bf16Kernel::Amx => "amx",
            Bf16Kernel::EmulatedTiles => "emulated",
            Bf16Kernel::RoundedF32 => "f32",
        }
    }

    /// The tile unit this kernel multiplies on, if any.
    pub(crate) fn tile_unit(self) -> Option<TileUnit> {
        match self {
            Bf16Kernel::Amx => Some(TileUnit::Amx),
            Bf16Kernel::EmulatedTiles => Some(TileUnit::Emulated),
            Bf16Kernel::RoundedF32 => None,
        }
    }
}

impl fmt::Display for Bf16Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether this process can run AMX products, or why not.
pub fn amx_status() -> Result<(), String> {
    static STATUS: OnceLock<Result<(), String>> = OnceLock::new();
    STATUS
        .get_or_init(|| {
            amx::enable()?;
            amx_agrees_with_the_model()
        })
        .clone()
}

/// The fastest kernel this CPU runs: AMX where [`amx_status`] allows, else rounded float32.
pub fn best_bf16_kernel() -> Bf16Kernel {
    if amx_status().is_ok() { Bf16Kernel::Amx } else { Bf16Kernel::RoundedF32 }
}

/// The kernel of this process: [`best_bf16_kernel`], unless `VIT_BF16_KERNEL` (`amx`, `emulated`
/// or `f32`) names another (an unusable or unknown name is reported on stderr and ignored).
pub fn process_bf16_kernel() -> Bf16Kernel {
    static KERNEL: OnceLock<Bf16Kernel> = OnceLock::new();
    *KERNEL.get_or_init(|| {
        let Ok(name) = std::env::var("VIT_BF16_KERNEL") else {
            return best_bf16_kernel();
        };
        match name.to_ascii_lowercase().as_str() {
            "f32" => Bf16Kernel::RoundedF32,
            "emulated" => Bf16Kernel::EmulatedTiles,
            "amx" => match amx_status() {
                Ok(()) => Bf16Kernel::Amx,
                Err(why) => {
                    eprintln!("VIT_BF16_KERNEL=amx: {why}; bfloat16 products run on the float32 kernels");
                    Bf16Kernel::RoundedF32
                }
            },
            other => {
                let best = best_bf16_kernel();
                eprintln!("VIT_BF16_KERNEL={other} is not a kernel (amx, emulated or f32); using {best}");
                best
            }
        }
    })
}

/// One line on the bfloat16 kernel of this thread, with why AMX is not used where it is not.
pub fn bf16_kernel_report() -> String {
    match (active_bf16_kernel(), amx_status()) {
        (Bf16Kernel::Amx, _) => "bf16 products on AMX tiles".into(),
        (Bf16Kernel::EmulatedTiles, _) => {
            "bf16 products on the software model of AMX (VIT_BF16_KERNEL=emulated)".into()
        }
        (Bf16Kernel::RoundedF32, Ok(())) => "bf16 products on the float32 kernels (VIT_BF16_KERNEL=f32)".into(),
        (Bf16Kernel::RoundedF32, Err(why)) => format!(
            "bf16 products on the float32 kernels (no AMX: {why}); rounding the operands makes them slower than \
             f32 here, so choose bf16 on this CPU for its numerics, not its speed"
        ),
    }
}

thread_local! {
    static OVERRIDE: Cell<Option<Bf16Kernel>> = const { Cell::new(None) };
}

/// Restores the thread's previous kernel when dropped.
#[must_use = "the kernel applies while the guard lives"]
#[derive(Debug)]
pub struct Bf16KernelGuard {
    previous: Option<Bf16Kernel>,
}

impl Drop for Bf16KernelGuard {
    fn drop(&mut self) {
        OVERRIDE.with(|o| o.set(self.previous));
    }
}

/// Runs this thread's bfloat16 products on `kernel` until the guard is dropped (for tests and
/// benchmarks; `Amx` where [`amx_status`] refuses falls back to [`Bf16Kernel::RoundedF32`]).
pub fn use_bf16_kernel(kernel: Bf16Kernel) -> Bf16KernelGuard {
    let kernel = if kernel == Bf16Kernel::Amx && amx_status().is_err() { Bf16Kernel::RoundedF32 } else { kernel };
    let previous = OVERRIDE.with(|o| o.replace(Some(kernel)));
    Bf16KernelGuard { previous }
}

/// The kernel this thread's bfloat16 products run on.
pub fn active_bf16_kernel() -> Bf16Kernel {
    OVERRIDE.with(Cell::get).unwrap_or_else(process_bf16_kernel)
}

/// A unit that multiplies one packed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TileUnit {
    Amx,
    Emulated,
}

impl TileUnit {
    /// # Safety
    /// As [`emulated::block`]; for `Amx`, [`amx_status`] must have returned `Ok` (or, inside
    /// it, [`amx::enable`]).
    unsafe fn block(self, a: *const u16, b: *const u16, kp: usize, out: &mut [f32; BLOCK * BLOCK]) {
        // SAFETY: the caller's contract.
        unsafe {
            match self {
                TileUnit::Amx => amx::block(a, b, kp, out),
                TileUnit::Emulated => emulated::block(a, b, kp, out),
            }
        }
    }
}

/// `dst (m×n) = lhs (m×k)·rhs (k×n)` with both operands rounded to bfloat16 and float32 sums,
/// added onto `dst` when `accumulate` (otherwise `dst` is written without being read). Strides
/// are (row, column) in elements, as [`super::strided_gemm::strided_gemm`] takes them.
///
/// # Safety
/// Each pointer must cover its matrix at its strides, `dst` must not alias the inputs, and for
/// [`TileUnit::Amx`] [`amx_status`] must have returned `Ok`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn bf16_gemm(
    unit: TileUnit,
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_strides: (usize, usize),
    accumulate: bool,
    lhs: *const f32,
    lhs_strides: (usize, usize),
    rhs: *const f32,
    rhs_strides: (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    let kp = k.max(1).next_multiple_of(BLOCK);
    // SAFETY: the caller's contract covers both operands.
    let (a, b) = unsafe { (Matrix::new(lhs, lhs_strides), Matrix::new(rhs, rhs_strides)) };
    let (a, b) = rayon::join(|| pack_rows(a, m, k, kp), || pack_column_pairs(b, k, n, kp));
    let (row_blocks, col_blocks) = (m.div_ceil(BLOCK), n.div_ceil(BLOCK));
    let out = SendPtr(dst);
    let run = |t: usize| {
        let (ib, jb) = (t % row_blocks, t / row_blocks);
        let mut block = [0f32; BLOCK * BLOCK];
        // SAFETY: the packed blocks hold `BLOCK * kp` values each; the caller vouches for `unit`.
        unsafe { unit.block(a.as_ptr().add(ib * BLOCK * kp), b.as_ptr().add(jb * kp * BLOCK), kp, &mut block) };
        let (rows, cols) = (BLOCK.min(m - ib * BLOCK), BLOCK.min(n - jb * BLOCK));
        for (i, values) in block.chunks_exact(BLOCK).take(rows).enumerate() {
            let values = &values[..cols];
            // SAFETY: row ib·BLOCK + i, columns jb·BLOCK.. of `dst` lie inside it, and only this
            // task writes them.
            let first = unsafe { out.get().add((ib * BLOCK + i) * dst_strides.0 + jb * BLOCK * dst_strides.1) };
            if dst_strides.1 == 1 && !accumulate {
                // SAFETY: as above, the `cols` values from `first` are adjacent; `dst` may be
                // uninitialised, so it is written without making a reference to it.
                unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), first, cols) };
            } else if dst_strides.1 == 1 {
                // SAFETY: as above; accumulating, `dst` is initialised.
                let row = unsafe { std::slice::from_raw_parts_mut(first, cols) };
                row.iter_mut().zip(values).for_each(|(d, v)| *d += v);
            } else {
                for (j, &value) in values.iter().enumerate() {
                    // SAFETY: as above.
                    unsafe {
                        let d = first.add(j * dst_strides.1);
                        *d = if accumulate { *d + value } else { value };
                    }
                }
            }
        }
    };
    let blocks = row_blocks * col_blocks;
    if m.saturating_mul(n).saturating_mul(k) >= 64 * 64 * 64 {
        (0..blocks).into_par_iter().for_each(run);
    } else {
        (0..blocks).for_each(run);
    }
}

/// `Ok` when the AMX unit reproduces the software model on a product with ragged edges (the
/// unit has been enabled).
fn amx_agrees_with_the_model() -> Result<(), String> {
    let (m, n, k) = (40, 50, 70);
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 24.0).collect();
    let product = |unit| {
        let mut c = vec![0f32; m * n];
        // SAFETY: row-major buffers of the stated sizes; `amx::enable` succeeded.
        unsafe { bf16_gemm(unit, (m, n, k), c.as_mut_ptr(), (n, 1), false, a.as_ptr(), (k, 1), b.as_ptr(), (n, 1)) };
        c
    };
    let (amx, model) = (product(TileUnit::Amx), product(TileUnit::Emulated));
    let worst = amx.iter().zip(&model).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0f32, f32::max);
    if worst <= 1e-5 {
        Ok(())
    } else {
        let why = format!("the AMX unit disagrees with its software model (relative difference {worst:e})");
        eprintln!("warning: {why}; bfloat16 products run on the float32 kernels");
        Err(why)
    }
}

#[cfg(test)]
mod tests;
