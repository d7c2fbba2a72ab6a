//! A checkpoint whose shapes do not fit the config is refused before the model is built: the
//! failed load allocates almost nothing, where building the model would take hundreds of MB.
//! (Alone in its test binary: the global allocator below counts every thread's allocations.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use burn::tensor::Device;
use vit_model::{LoadOptions, PretrainedViT, ViTConfig, ViTError, ViTForImageClassification};

/// The system allocator, counting the bytes it hands out.
struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size.saturating_sub(layout.size()) as u64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn mismatched_checkpoint_is_refused_before_the_model_is_built() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let saved = ViTConfig {
        hidden_size: 4,
        num_hidden_layers: 1,
        num_attention_heads: 1,
        intermediate_size: 4,
        image_size: 8,
        patch_size: 4,
        encoder_stride: 4,
        ..ViTConfig::default()
    }
    .with_num_labels(3);
    ViTForImageClassification::new(&saved, &device).save_pretrained(&saved, tmp.path()).unwrap();

    // 20M parameters (80 MB of weights, several times that while initialising), well under the
    // size limit; the checkpoint's 3-label head does not fit its 5 labels.
    let config = ViTConfig { intermediate_size: 2_500_000, ..saved.with_num_labels(5) };
    assert_eq!(config.parameter_count().map(|n| n > 20_000_000), Some(true));
    let before = ALLOCATED.load(Ordering::Relaxed);
    let err = ViTForImageClassification::from_pretrained_config(tmp.path(), &config, &LoadOptions::default(), &device)
        .map(|_| ())
        .unwrap_err();
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
    assert!(matches!(&err, ViTError::ShapeMismatch { key, .. } if key == "classifier.bias"), "{err}");
    assert!(allocated < 8 << 20, "{allocated} bytes allocated before the shape mismatch was reported");
}
