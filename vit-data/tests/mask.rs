//! SimMIM mask generator: counts, shape, block structure, determinism, errors.

use vit_data::{DataError, MaskGenerator};

#[test]
fn run_mim_defaults() {
    // run_mim.py defaults: 192px, 32px mask patches, model patch 4, ratio 0.6.
    let g = MaskGenerator::new(192, 32, 4, 0.6).unwrap();
    assert_eq!(g.num_patches(), 48 * 48);
    assert_eq!(g.mask_count(), 22); // ceil(36 * 0.6) = ceil(21.6)
    assert_eq!(g.masked_patches(), 22 * 64);
    for index in 0..20 {
        let m = g.generate(7, 0, index);
        assert_eq!(m.len(), 2304);
        assert_eq!(m.iter().filter(|&&b| b).count(), 22 * 64);
        // Each 8x8 block of model patches is all masked or all visible.
        for row in 0..48 {
            for col in 0..48 {
                let block_origin = (row / 8 * 8) * 48 + col / 8 * 8;
                assert_eq!(m[row * 48 + col], m[block_origin]);
            }
        }
    }
}

#[test]
fn deterministic_per_seed_epoch_index() {
    let g = MaskGenerator::new(32, 8, 4, 0.5).unwrap();
    assert_eq!(g.generate(1, 2, 3), g.generate(1, 2, 3));
    let distinct: std::collections::HashSet<Vec<bool>> = (0..20).map(|i| g.generate(1, 2, i)).collect();
    assert!(distinct.len() > 15, "masks barely vary with the index");
    assert_ne!(g.generate(1, 2, 3), g.generate(1, 3, 3));
    assert_ne!(g.generate(1, 2, 3), g.generate(2, 2, 3));
    // scale 1: mask patch = model patch
    let g = MaskGenerator::new(32, 4, 4, 0.6).unwrap();
    assert_eq!(g.num_patches(), 64);
    assert_eq!(g.generate(0, 0, 0).iter().filter(|&&b| b).count(), 39); // ceil(38.4)
}

#[test]
fn clear_errors() {
    let msg = |r: Result<MaskGenerator, DataError>| r.unwrap_err().to_string();
    let m = msg(MaskGenerator::new(200, 32, 4, 0.6));
    assert!(m.contains("mask_patch_size") && m.contains("200") && m.contains("not divisible"), "{m}");
    let m = msg(MaskGenerator::new(192, 32, 6, 0.6));
    assert!(m.contains("patch size 6"), "{m}");
    // A 32-pixel image with 32-pixel mask patches: one cell, which would be fully masked.
    let m = msg(MaskGenerator::new(32, 32, 4, 0.6));
    assert!(m.contains("everything would be masked"), "{m}");
    for ratio in [0.0, 1.0, -0.1, f64::NAN] {
        assert!(msg(MaskGenerator::new(192, 32, 4, ratio)).contains("mask_ratio"));
    }
    assert!(msg(MaskGenerator::new(192, 0, 4, 0.6)).contains("mask_patch_size"));
    assert!(msg(MaskGenerator::new(192, 32, 0, 0.6)).contains("patch_size"));
}
