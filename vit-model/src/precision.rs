//! Mixed precision as PyTorch's autocast: [`autocast`] makes the matrix products a thread runs
//! take their operands in bfloat16 or float16, while the weights, LayerNorm, softmax, the losses
//! and every reduction stay float32.
//!
//! ```
//! use vit_model::precision::{Precision, autocast, current};
//! {
//!     let _bf16 = autocast(Precision::Bf16);
//!     assert_eq!(current(), Precision::Bf16);
//!     // forward and backward passes here run their matmuls in bfloat16
//! }
//! assert_eq!(current(), Precision::F32);
//! ```
//!
//! What is cast where:
//! - Dense layers ([`crate::FusedLinear`]) and attention's two products (`Q·Kᵀ`, `P·V`): their
//!   operands (activations, weights and, in the backward pass, the incoming gradients) are rounded
//!   to the low precision; the products accumulate in float32.
//! - On Burn's CPU backend (flex) the operands are rounded (round-to-nearest-even) and our float32
//!   kernels multiply them, so the results are what a bf16/f16 matrix unit with float32
//!   accumulation gives, up to the order of the sums. The attention probabilities stay float32.
//!   On other backends (wgpu, CUDA) the operands are cast to Burn's `BF16`/`F16` dtypes, multiplied
//!   in that dtype, and the product cast back to float32.
//! - The parameters, their gradients and the optimizer state stay float32 (the master weights), so
//!   checkpoints and exports are float32.
//!
//! The setting is per thread, like autocast: the thread that runs a forward pass and its backward
//! pass sets it (the training and evaluation steps do, on whichever thread burn-train runs them).

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

use burn::tensor::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// The precision of matrix products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Float32 throughout (the default).
    #[default]
    F32,
    /// bfloat16 operands (8-bit exponent as float32, 8-bit significand).
    Bf16,
    /// IEEE float16 operands (5-bit exponent: values above 65504 overflow, below 6e-8 vanish;
    /// train with loss scaling).
    F16,
}

impl Precision {
    /// Burn's dtype for the operands.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        }
    }

    /// The name as configs and flags spell it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// Whether products run below float32.
    pub fn is_reduced(self) -> bool {
        self != Precision::F32
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            other => Err(format!("unknown precision `{other}`; expected f32, bf16 or f16")),
        }
    }
}

thread_local! {
    static CURRENT: Cell<Precision> = const { Cell::new(Precision::F32) };
}

/// The precision of this thread's matrix products.
pub fn current() -> Precision {
    CURRENT.with(Cell::get)
}

/// Restores the thread's previous precision when dropped.
#[must_use = "the precision applies while the guard lives"]
#[derive(Debug)]
pub struct AutocastGuard {
    previous: Precision,
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Runs this thread's matrix products in `precision` until the guard is dropped.
pub fn autocast(precision: Precision) -> AutocastGuard {
    let previous = CURRENT.with(|c| c.replace(precision));
    AutocastGuard { previous }
}

/// An error unless `device` can run `precision`'s products: the CPU backend always can (it
/// rounds float32 operands); other backends need the dtype (wgpu's WGSL has no bfloat16, and
/// float16 needs the adapter's `shader-f16`).
pub fn check_supported(precision: Precision, device: &burn::tensor::Device) -> Result<(), String> {
    if !precision.is_reduced() || crate::kernels::is_cpu_backend(device) || device.supports_dtype(precision.dtype()) {
        return Ok(());
    }
    let hint = match precision {
        Precision::Bf16 => "use `f16` where the device supports it, or a CUDA device (wgpu's WGSL has no bfloat16)",
        _ => "use `bf16` where the device supports it (CUDA), or `f32`",
    };
    Err(format!("precision `{precision}` is not supported on device {device:?}; {hint}"))
}

/// `a·b` in this thread's precision, with Burn's dtypes (the path off the CPU kernels): float32
/// operands are cast down, multiplied, and the product cast back to float32.
pub fn matmul<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    let precision = current();
    if precision.is_reduced() && a.dtype() == DType::F32 && b.dtype() == DType::F32 {
        let dtype = precision.dtype();
        a.cast(dtype).matmul(b.cast(dtype)).cast(DType::F32)
    } else {
        a.matmul(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_nest_and_restore() {
        assert_eq!(current(), Precision::F32);
        let outer = autocast(Precision::Bf16);
        {
            let _inner = autocast(Precision::F16);
            assert_eq!(current(), Precision::F16);
            std::thread::spawn(|| assert_eq!(current(), Precision::F32, "per thread")).join().unwrap();
        }
        assert_eq!(current(), Precision::Bf16);
        drop(outer);
        assert_eq!(current(), Precision::F32);
        assert_eq!("BF16".parse::<Precision>(), Ok(Precision::Bf16));
        assert!("f8".parse::<Precision>().unwrap_err().contains("f32, bf16 or f16"));
    }
}
