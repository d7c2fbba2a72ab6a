//! Running a forward pass on the CPU kernels' own threads.
//!
//! Every parallel CPU op (our kernels, `gemm`, Burn's flex ops) runs on rayon's global pool. A
//! thread outside the pool that issues an op hands it to the pool and sleeps until the pool's
//! threads have finished it, so each op pays a wake-up of the pool and one of the caller: with
//! hundreds of small ops per forward pass that is a tenth of a batch-1 ViT-Ti/16 forward on two
//! cores. Issued from a pool thread, an op is split where it stands and the issuing thread works
//! on its share.

use burn::tensor::Device;

use super::is_cpu_backend;
use crate::precision::{autocast, current};

/// Runs `f` on a thread of rayon's global pool (inline when this thread is one already) when
/// `device` is the CPU backend, with this thread's [`crate::precision`]; elsewhere, on this
/// thread.
///
/// For work that only issues tensor ops (a forward pass and the read of its output). `f` must
/// not wait for other threads that use the pool (a data loader's channel, say): with a pool of
/// one thread, that thread would wait for itself.
pub fn on_kernel_threads<R: Send>(device: &Device, f: impl FnOnce() -> R + Send) -> R {
    if !is_cpu_backend(device) || rayon::current_thread_index().is_some() {
        return f();
    }
    let precision = current();
    rayon::scope(|_| {
        let _autocast = autocast(precision);
        f()
    })
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::*;
    use crate::precision::Precision;

    #[test]
    fn runs_on_a_pool_thread_with_the_callers_precision() {
        let device = Device::flex();
        let _bf16 = autocast(Precision::Bf16);
        let (index, precision) = on_kernel_threads(&device, || (rayon::current_thread_index(), current()));
        assert!(index.is_some(), "not on a pool thread");
        assert_eq!(precision, Precision::Bf16);
        assert_eq!(current(), Precision::Bf16, "the caller's precision is kept");
    }

    #[test]
    fn autodiff_devices_run_there_too() {
        let device = Device::flex().autodiff();
        assert!(on_kernel_threads(&device, rayon::current_thread_index).is_some());
    }

    #[test]
    fn products_run_in_the_callers_precision() {
        let device = Device::flex();
        let x = Tensor::<2>::random([96, 64], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<2>::random([64, 48], Distribution::Normal(0.0, 1.0), &device);
        let f32_product = x.clone().matmul(w.clone()).into_data();
        let _bf16 = autocast(Precision::Bf16);
        let here = crate::precision::matmul(x.clone(), w.clone()).into_data();
        let there = on_kernel_threads(&device, || crate::precision::matmul(x, w).into_data());
        assert_eq!(here, there);
        assert_ne!(here, f32_product, "bfloat16 operands give another product");
    }
}
