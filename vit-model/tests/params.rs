//! Parameter counts equal transformers'.

use burn::module::Module;
use burn::tensor::Device;
use vit_model::{ViTConfig, ViTForImageClassification, ViTForMaskedImageModeling, ViTModel};

#[test]
fn vit_base_with_1000_labels_has_transformers_parameter_count() {
    let config = ViTConfig::base().with_num_labels(1000);
    let model = ViTForImageClassification::new(&config, &Device::flex());
    // sum(p.numel() for p in ViTForImageClassification(ViTConfig(num_labels=1000)).parameters())
    assert_eq!(model.num_params(), 86_567_656);
    // The count from the config alone, before anything is built, is exact.
    assert_eq!(config.parameter_count(), Some(86_567_656));
}

#[test]
fn other_classes_match_transformers() {
    let device = Device::flex();
    let config = ViTConfig { num_hidden_layers: 2, ..ViTConfig::small() };
    // ViTModel(ViTConfig(hidden_size=384, num_attention_heads=6, intermediate_size=1536,
    //   num_hidden_layers=2)): default add_pooling_layer=True, use_mask_token=False.
    let expected_model = 4_068_864;
    assert_eq!(ViTModel::new(&config, true, false, &device).num_params(), expected_model);
    // ViTForMaskedImageModeling (4,217,088) adds a mask token and the 1x1 decoder, drops the pooler.
    let expected_mim = expected_model - (384 * 384 + 384) + 384 + (384 * 16 * 16 * 3 + 16 * 16 * 3);
    assert_eq!(ViTForMaskedImageModeling::new(&config, &device).unwrap().num_params(), expected_mim);
}
