//! The run plan's checks, end to end: what is refused before training starts, and that nothing in
//! the output directory is touched when it is.

mod common;

use burn::tensor::Device;
use common::{CLASSES, assert_ok, make_image_folder, vit_train, write_config};
use vit_model::{PretrainedViT, ViTConfig, ViTForImageClassification};

/// A 32x32 classifier for the three synthetic classes, saved as an HF model directory.
fn pretrained_32(dir: &std::path::Path) {
    let config = ViTConfig {
        hidden_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 64,
        image_size: 32,
        patch_size: 8,
        ..Default::default()
    }
    .with_labels(CLASSES.iter().map(|s| s.to_string()).collect());
    ViTForImageClassification::new(&config, &Device::flex()).save_pretrained(&config, dir).unwrap();
}

fn finetune_config(data: &std::path::Path, model: &std::path::Path, out: &std::path::Path, extra: &str) -> String {
    format!(
        "task = \"classification\"\n[model]\npretrained = {:?}\n{extra}\n[data]\ndataset = \"imagefolder\"\n\
         path = {:?}\nimage_size = 16\naugmentation = \"none\"\nvalidation_split = 0.25\nbatch_size = 8\n\
         [run]\nmax_steps = 2\nlog_every = 1\noutput_dir = {:?}\n",
        model.to_str().unwrap(),
        data.to_str().unwrap(),
        out.to_str().unwrap()
    )
}

#[test]
fn a_model_of_another_image_size_needs_interpolate_pos_encoding() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, model) = (tmp.path().join("data"), tmp.path().join("model"));
    make_image_folder(&data, 8);
    pretrained_32(&model);

    let refused = tmp.path().join("refused");
    let config = write_config(tmp.path(), "a.toml", &finetune_config(&data, &model, &refused, ""));
    let out = vit_train(&["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a 32x32 model trained at 16x16 must be refused:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for expected in ["16x16", "32x32", "model.interpolate_pos_encoding"] {
        assert!(stderr.contains(expected), "expected `{expected}` in:\n{stderr}");
    }
    assert!(!refused.exists(), "nothing is written before the checks pass");

    let trained = tmp.path().join("trained");
    let text = finetune_config(&data, &model, &trained, "interpolate_pos_encoding = true");
    let config = write_config(tmp.path(), "b.toml", &text);
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    assert!(trained.join("best/model.safetensors").is_file());
}

#[test]
fn architecture_fields_cannot_override_a_pretrained_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, model) = (tmp.path().join("data"), tmp.path().join("model"));
    make_image_folder(&data, 4);
    pretrained_32(&model);
    let out_dir = tmp.path().join("run");
    let text = finetune_config(&data, &model, &out_dir, "hidden_size = 64\nnum_hidden_layers = 3")
        .replace("image_size = 16", "image_size = 32");
    let config = write_config(tmp.path(), "a.toml", &text);
    let out = vit_train(&["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("model.hidden_size") && stderr.contains("model.num_hidden_layers"), "{stderr}");
    assert!(!out_dir.exists(), "nothing is written before the checks pass");
}
