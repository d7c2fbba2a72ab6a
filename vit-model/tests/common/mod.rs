//! Shared helpers of the vit-model tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The Hugging Face reference fixtures: those copied into the repository, or the directory named
/// by `VIT_FIXTURES_DIR` (e.g. fresh ones from `scripts/make_fixtures.py`).
pub fn fixture_dir(case: &str) -> PathBuf {
    let root = std::env::var_os("VIT_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-vit"));
    root.join(case)
}

/// Every fixture case.
pub const CASES: [&str; 6] = ["cls_tiny", "cls_interp", "headmask", "model_pooler", "mim", "cls_gray"];

/// Max absolute difference of two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The device the tests run on: `VIT_TEST_DEVICE` = `cpu` (default), `wgpu`, `vulkan` or `cuda`
/// (the last three need the matching cargo feature of vit-model).
pub fn test_device() -> burn::tensor::Device {
    match std::env::var("VIT_TEST_DEVICE").as_deref() {
        #[cfg(feature = "wgpu")]
        Ok("wgpu") => burn::tensor::Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "vulkan")]
        Ok("vulkan") => burn::tensor::Device::vulkan(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "cuda")]
        Ok("cuda") => burn::tensor::Device::cuda(0),
        Ok("cpu") | Err(_) => burn::tensor::Device::flex(),
        Ok(other) => panic!("VIT_TEST_DEVICE={other}: not a device this test binary was built for"),
    }
}
