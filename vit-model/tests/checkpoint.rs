//! Loading and saving HF model directories: round trips, head swaps, reports and bad files.

mod common;

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use vit_model::checkpoint::safetensors_file;
use vit_model::{
    LoadOptions, PretrainedViT, ViTConfig, ViTError, ViTForImageClassification, ViTForMaskedImageModeling, ViTModel,
};

use common::{fixture_dir, max_abs_diff};

fn pixels(case: &str, device: &Device) -> Tensor<4> {
    let io = safetensors_file::read_inputs(&fixture_dir(case).join("io.safetensors")).unwrap();
    let (_, p) = &io["pixel_values"];
    Tensor::from_data(TensorData::new(p.data.clone(), p.shape.clone()), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

#[test]
fn save_then_load_is_exact_for_every_class() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();

    // Classification: bytes of the written tensors equal the fixture's, outputs equal.
    let (model, config, _) =
        ViTForImageClassification::from_pretrained(fixture_dir("cls_tiny"), &LoadOptions::default(), &device).unwrap();
    let out_dir = tmp.path().join("cls");
    model.save_pretrained(&config, &out_dir).unwrap();
    let original = safetensors_file::read_file(&fixture_dir("cls_tiny").join("model.safetensors")).unwrap();
    let written = safetensors_file::read_file(&out_dir.join("model.safetensors")).unwrap();
    assert_eq!(original, written, "written tensors differ from the checkpoint");
    let (reloaded, config2, report) =
        ViTForImageClassification::from_pretrained(&out_dir, &LoadOptions::default(), &device).unwrap();
    assert!(report.is_exact(), "{report}");
    assert_eq!(config2.id2label, config.id2label);
    assert_eq!(config2.architectures, Some(vec!["ViTForImageClassification".to_string()]));
    let x = pixels("cls_tiny", &device);
    assert_eq!(values(model.forward(x.clone()).unwrap()), values(reloaded.forward(x).unwrap()));

    // The pooler + mask-token base model and SimMIM.
    for case in ["model_pooler", "mim"] {
        let dir = tmp.path().join(case);
        let original = safetensors_file::read_file(&fixture_dir(case).join("model.safetensors")).unwrap();
        if case == "mim" {
            let (m, c, _) =
                ViTForMaskedImageModeling::from_pretrained(fixture_dir(case), &LoadOptions::default(), &device)
                    .unwrap();
            m.save_pretrained(&c, &dir).unwrap();
        } else {
            let (m, c, _) = ViTModel::from_pretrained(fixture_dir(case), &LoadOptions::default(), &device).unwrap();
            assert!(m.pooler.is_some() && m.embeddings.mask_token.is_some());
            m.save_pretrained(&c, &dir).unwrap();
        }
        let written = safetensors_file::read_file(&dir.join("model.safetensors")).unwrap();
        assert_eq!(original, written, "{case}: written tensors differ");
    }
}

#[test]
fn written_file_has_pytorch_metadata() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let (model, config, _) =
        ViTModel::from_pretrained(fixture_dir("model_pooler"), &LoadOptions::default(), &device).unwrap();
    model.save_pretrained(&config, tmp.path()).unwrap();
    let bytes = std::fs::read(tmp.path().join("model.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().and_then(|m| m.get("format")).map(String::as_str), Some("pt"));
    // No temporary files are left behind.
    let names: Vec<String> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

#[test]
fn base_model_checkpoint_loads_into_a_classifier_with_a_fresh_head() {
    let device = Device::flex();
    let labels: Vec<String> = ["cat", "dog", "bird"].iter().map(|s| s.to_string()).collect();
    let options = LoadOptions { labels: Some(labels.clone()), ..LoadOptions::default() };
    let (model, config, report) =
        ViTForImageClassification::from_pretrained(fixture_dir("model_pooler"), &options, &device).unwrap();
    assert_eq!(model.num_labels(), 3);
    assert_eq!(config.labels(), labels);
    assert_eq!(report.missing_keys, vec!["classifier.bias".to_string(), "classifier.weight".to_string()]);
    assert_eq!(
        report.unexpected_keys,
        vec![
            "vit.embeddings.mask_token".to_string(),
            "vit.pooler.dense.bias".to_string(),
            "vit.pooler.dense.weight".to_string()
        ]
    );
    // The encoder weights did load: the CLS hidden state equals the base model's.
    let (base, _, _) =
        ViTModel::from_pretrained(fixture_dir("model_pooler"), &LoadOptions::default(), &device).unwrap();
    let x = pixels("model_pooler", &device);
    let a = values(base.forward(x.clone()).unwrap());
    let b = values(model.vit.forward(x).unwrap());
    assert_eq!(a, b);
    assert!(report.to_string().contains("newly initialized"));
}

#[test]
fn classifier_checkpoint_loads_into_the_base_model() {
    let device = Device::flex();
    let (model, _, report) =
        ViTModel::from_pretrained(fixture_dir("cls_tiny"), &LoadOptions::default(), &device).unwrap();
    assert!(model.pooler.is_none());
    assert_eq!(report.unexpected_keys, vec!["classifier.bias".to_string(), "classifier.weight".to_string()]);
    assert!(report.missing_keys.is_empty());
}

#[test]
fn head_of_another_size_is_an_error_unless_asked_to_reinitialise() {
    let device = Device::flex();
    let labels: Vec<String> = (0..3).map(|i| format!("c{i}")).collect();
    let options = LoadOptions { labels: Some(labels.clone()), ..LoadOptions::default() };
    let err = ViTForImageClassification::from_pretrained(fixture_dir("cls_tiny"), &options, &device).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ViTError::ShapeMismatch { .. }), "{message}");
    assert!(message.contains("classifier") && message.contains("ignore_mismatched_sizes"), "{message}");

    let options = LoadOptions { labels: Some(labels), ignore_mismatched_sizes: true, ..LoadOptions::default() };
    let (model, _, report) =
        ViTForImageClassification::from_pretrained(fixture_dir("cls_tiny"), &options, &device).unwrap();
    assert_eq!(model.num_labels(), 3);
    assert_eq!(report.mismatched_keys.len(), 2);
    assert_eq!(report.mismatched_keys[1], ("classifier.weight".to_string(), vec![10, 64], vec![3, 64]));
}

#[test]
fn sharded_checkpoint_loads() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let all = safetensors_file::read_file(&fixture_dir("cls_tiny").join("model.safetensors")).unwrap();
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    let mut weight_map = serde_json::Map::new();
    for (i, (k, t)) in all.into_iter().enumerate() {
        let shard = if i % 2 == 0 { "model-00001-of-00002.safetensors" } else { "model-00002-of-00002.safetensors" };
        weight_map.insert(k.clone(), serde_json::Value::String(shard.into()));
        if i % 2 == 0 {
            a.insert(k, t)
        } else {
            b.insert(k, t)
        };
    }
    std::fs::write(tmp.path().join("model-00001-of-00002.safetensors"), safetensors_file::to_bytes(&a).unwrap())
        .unwrap();
    std::fs::write(tmp.path().join("model-00002-of-00002.safetensors"), safetensors_file::to_bytes(&b).unwrap())
        .unwrap();
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
    std::fs::write(tmp.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::copy(fixture_dir("cls_tiny").join("config.json"), tmp.path().join("config.json")).unwrap();

    let (sharded, _, report) =
        ViTForImageClassification::from_pretrained(tmp.path(), &LoadOptions::default(), &device).unwrap();
    assert!(report.is_exact(), "{report}");
    let (single, _, _) =
        ViTForImageClassification::from_pretrained(fixture_dir("cls_tiny"), &LoadOptions::default(), &device).unwrap();
    let x = pixels("cls_tiny", &device);
    assert_eq!(max_abs_diff(&values(sharded.forward(x.clone()).unwrap()), &values(single.forward(x).unwrap())), 0.0);
}

fn model_dir_with(weights: &[u8], config: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("model.safetensors"), weights).unwrap();
    std::fs::write(tmp.path().join("config.json"), config).unwrap();
    tmp
}

fn load_err(dir: &std::path::Path) -> String {
    ViTForImageClassification::from_pretrained(dir, &LoadOptions::default(), &Device::flex())
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_inputs_are_clear_errors() {
    let config = std::fs::read_to_string(fixture_dir("cls_tiny").join("config.json")).unwrap();
    let weights = std::fs::read(fixture_dir("cls_tiny").join("model.safetensors")).unwrap();

    // A directory that does not exist.
    let message = load_err(std::path::Path::new("/nonexistent/model"));
    assert!(message.contains("/nonexistent/model"), "{message}");

    // No weights at all.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), &config).unwrap();
    let message = load_err(tmp.path());
    assert!(message.contains("model.safetensors"), "{message}");

    // A header that claims a huge length, and one whose offsets run past the end of the file.
    let mut lying = weights.clone();
    lying[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let dir = model_dir_with(&lying, &config);
    let message = load_err(dir.path());
    assert!(message.contains("model.safetensors") && message.contains("not a valid safetensors"), "{message}");
    let truncated = &weights[..weights.len() / 2];
    let dir = model_dir_with(truncated, &config);
    assert!(load_err(dir.path()).contains("not a valid safetensors"));

    // A zero-byte file.
    let dir = model_dir_with(&[], &config);
    assert!(load_err(dir.path()).contains("model.safetensors"));

    // A config with a field of the wrong type names the field.
    let bad = config.replace("\"hidden_size\": 64", "\"hidden_size\": \"sixty-four\"");
    let dir = model_dir_with(&weights, &bad);
    let message = load_err(dir.path());
    assert!(message.contains("config.json") && message.contains("hidden_size"), "{message}");

    // A config that does not describe a valid model.
    let bad = config.replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 5");
    let dir = model_dir_with(&weights, &bad);
    let message = load_err(dir.path());
    assert!(message.contains("num_attention_heads"), "{message}");

    // Weights of another architecture (a bigger hidden size) name the key and both shapes.
    let bad = config.replace("\"hidden_size\": 64", "\"hidden_size\": 32");
    let dir = model_dir_with(&weights, &bad);
    let message = load_err(dir.path());
    assert!(
        message.contains("'classifier.weight' has shape [10, 64]") && message.contains("expects [10, 32]"),
        "{message}"
    );

    // Weights stored as integers are refused, naming the tensor and the dtype.
    let ints = safetensors::tensor::serialize(
        vec![(
            "vit.embeddings.cls_token",
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![1, 1, 1], &[0u8; 8]).unwrap(),
        )],
        None,
    )
    .unwrap();
    let dir = model_dir_with(&ints, &config);
    let message = load_err(dir.path());
    assert!(message.contains("cls_token") && message.contains("I64"), "{message}");

    // A pickle checkpoint is refused, not executed.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), &config).unwrap();
    std::fs::write(tmp.path().join("pytorch_model.bin"), b"not loaded").unwrap();
    assert!(load_err(tmp.path()).contains("pickle"));
}

#[test]
fn config_json_round_trips_and_keeps_unknown_fields() {
    let path = fixture_dir("cls_tiny").join("config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = ViTConfig::from_json_str(&text, &path).unwrap();
    assert_eq!(config.hidden_size, 64);
    assert_eq!(config.num_labels(), 10);
    assert_eq!(config.extra.get("transformers_version").and_then(|v| v.as_str()), Some("5.23.0"));
    let original: serde_json::Value = serde_json::from_str(&text).unwrap();
    let written: serde_json::Value = serde_json::from_str(&config.to_json_string()).unwrap();
    assert_eq!(original, written);

    let with_unknown = text.replacen('{', "{\n  \"some_future_field\": [1, 2],", 1);
    let config = ViTConfig::from_json_str(&with_unknown, &path).unwrap();
    assert!(config.to_json_string().contains("some_future_field"));

    let defaults = ViTConfig::from_json_str("{}", &path).unwrap();
    assert_eq!(defaults, ViTConfig::default());
    let bad_act = ViTConfig::from_json_str(r#"{"hidden_act": "gelu_bogus"}"#, &path).unwrap_err().to_string();
    assert!(bad_act.contains("hidden_act") && bad_act.contains("gelu_new"), "{bad_act}");
    let bad_image = ViTConfig::from_json_str(r#"{"image_size": 30, "patch_size": 8}"#, &path).unwrap_err().to_string();
    assert!(bad_image.contains("image_size"), "{bad_image}");
    let legacy = ViTConfig::from_json_str(r#"{"num_labels": 5}"#, &path).unwrap();
    assert_eq!(legacy.num_labels(), 5);
    assert_eq!(legacy.labels()[4], "LABEL_4");
}
