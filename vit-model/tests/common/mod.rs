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
pub const CASES: [&str; 5] = ["cls_tiny", "cls_interp", "headmask", "model_pooler", "mim"];

/// Max absolute difference of two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
