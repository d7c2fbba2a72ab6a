//! Untrusted configs, checkpoints and inputs are errors that name what is wrong, never panics,
//! aborts or runaway allocations: model size limits, checkpoint shapes checked before the model
//! is built, non-finite weights, and the inputs and output file of a forward pass.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::Device;
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use vit_model::checkpoint::safetensors_file;
use vit_model::forward::{FORWARD_OUTPUT_FORMAT, ForwardFileOptions, forward_files, forward_files_with};
use vit_model::{
    DEFAULT_MAX_WEIGHT_BYTES, LoadOptions, ModelKind, PretrainedViT, ViTConfig, ViTError, ViTForImageClassification,
    ViTForMaskedImageModeling, ViTModel,
};

use common::fixture_dir;

fn cls_tiny_config() -> String {
    std::fs::read_to_string(fixture_dir("cls_tiny").join("config.json")).unwrap()
}

/// A model directory: the cls_tiny weights under `config`.
fn dir_with_config(config: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(fixture_dir("cls_tiny").join("model.safetensors"), tmp.path().join("model.safetensors")).unwrap();
    std::fs::write(tmp.path().join("config.json"), config).unwrap();
    tmp
}

fn load_classifier(dir: &Path, options: &LoadOptions) -> Result<(), ViTError> {
    ViTForImageClassification::from_pretrained(dir, options, &Device::flex()).map(|_| ())
}

// ---- 1. Model size bounds ----

#[test]
fn huge_hidden_size_is_refused_before_allocating() {
    // 1e9 × the other sizes is ~190 GB of weights: this used to abort the process.
    let config = cls_tiny_config().replace("\"hidden_size\": 64", "\"hidden_size\": 1000000000");
    let dir = dir_with_config(&config);
    let err = load_classifier(dir.path(), &LoadOptions::default()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ViTError::ModelTooLarge(_)), "{message}");
    assert!(message.contains("GiB") && message.contains("hidden_size = 1000000000"), "{message}");
    assert!(message.contains("max_weight_bytes"), "{message}");
    // Every other loading path refuses it too.
    let device = Device::flex();
    assert!(matches!(
        ViTModel::from_pretrained(dir.path(), &LoadOptions::default(), &device).map(|_| ()),
        Err(ViTError::ModelTooLarge(_))
    ));
    assert!(matches!(
        ViTForMaskedImageModeling::from_pretrained(dir.path(), &LoadOptions::default(), &device).map(|_| ()),
        Err(ViTError::ModelTooLarge(_))
    ));
}

#[test]
fn a_million_layers_are_refused_before_allocating() {
    let config = cls_tiny_config().replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1000000");
    let dir = dir_with_config(&config);
    let message = load_classifier(dir.path(), &LoadOptions::default()).unwrap_err().to_string();
    assert!(message.contains("num_hidden_layers = 1000000") && message.contains("encoder layers"), "{message}");
}

#[test]
fn the_limit_is_a_setting() {
    let dir = fixture_dir("cls_tiny");
    let tiny = ViTConfig::load(&dir).unwrap();
    let bytes = tiny.weight_bytes().unwrap();
    let exact = LoadOptions { max_weight_bytes: bytes, ..LoadOptions::default() };
    load_classifier(&dir, &exact).unwrap();
    let below = LoadOptions { max_weight_bytes: bytes - 1, ..LoadOptions::default() };
    let message = load_classifier(&dir, &below).unwrap_err().to_string();
    assert!(message.contains(&format!("({} parameters)", bytes / 4)), "{message}");
    let kind = ModelKind::ImageClassification;
    assert!(tiny.check_size_of(kind, bytes).is_ok() && tiny.check_size_of(kind, bytes - 1).is_err());
    // `check_size` bounds the largest class the config can build (here SimMIM, with its decoder).
    let largest = tiny.weight_bytes_of(ModelKind::MaskedImageModeling).unwrap();
    assert!(largest > bytes);
    assert!(tiny.check_size(largest).is_ok() && tiny.check_size(largest - 1).is_err());
}

#[test]
fn checked_constructors_refuse_oversized_configs() {
    let device = Device::flex();
    let huge = ViTConfig { num_hidden_layers: 1_000_000, ..ViTConfig::base() };
    assert!(matches!(
        ViTModel::try_new(&huge, true, true, DEFAULT_MAX_WEIGHT_BYTES, &device),
        Err(ViTError::ModelTooLarge(_))
    ));
    assert!(matches!(
        ViTForImageClassification::try_new(&huge, DEFAULT_MAX_WEIGHT_BYTES, &device),
        Err(ViTError::ModelTooLarge(_))
    ));
    assert!(matches!(ViTForMaskedImageModeling::new(&huge, &device), Err(ViTError::ModelTooLarge(_))));
    // They validate too.
    let invalid = ViTConfig { num_attention_heads: 5, ..ViTConfig::tiny() };
    assert!(matches!(
        ViTForImageClassification::try_new(&invalid, DEFAULT_MAX_WEIGHT_BYTES, &device),
        Err(ViTError::InvalidConfig(_))
    ));
    // And build what fits, exactly as `new` does.
    let small = ViTConfig { num_hidden_layers: 1, ..ViTConfig::tiny() }.with_num_labels(3);
    let model = ViTForImageClassification::try_new(&small, DEFAULT_MAX_WEIGHT_BYTES, &device).unwrap();
    assert_eq!(burn::module::Module::num_params(&model) as u64, small.parameter_count().unwrap());
}

#[test]
fn counts_that_overflow_are_invalid_configs() {
    let path = Path::new("config.json");
    let json = format!(r#"{{"num_hidden_layers": {}}}"#, u64::MAX);
    let message = ViTConfig::from_json_str(&json, path).unwrap_err().to_string();
    assert!(message.contains("2^64") && message.contains("num_hidden_layers"), "{message}");
}

#[test]
fn sizes_are_exact_and_estimates_documented() {
    let config = ViTConfig::base().with_num_labels(1000);
    assert_eq!(config.parameter_count(), Some(86_567_656));
    assert_eq!(config.weight_bytes(), Some(346_270_624));
    // SimMIM drops the classifier, adds the mask token and the decoder.
    let mim = config.parameter_count_of(ModelKind::MaskedImageModeling).unwrap();
    assert_eq!(mim, 86_567_656 - (768 * 1000 + 1000) + 768 + (768 * 16 * 16 * 3 + 16 * 16 * 3));
    // ~178 MB per image for ViT-B/16 at 224.
    let per_image = config.activation_bytes(1).unwrap();
    assert!((170_000_000..190_000_000).contains(&per_image), "{per_image}");
    assert_eq!(config.activation_bytes(4), Some(4 * per_image));
}

// ---- 2. Checkpoint shapes before the model is built ----

/// Saves a 1-layer, width-4 classifier with `labels` labels; returns its config.
fn save_tiny(dir: &Path, labels: usize) -> ViTConfig {
    let config = ViTConfig {
        hidden_size: 4,
        num_hidden_layers: 1,
        num_attention_heads: 1,
        intermediate_size: 4,
        image_size: 8,
        patch_size: 4,
        encoder_stride: 4,
        ..ViTConfig::default()
    }
    .with_num_labels(labels);
    ViTForImageClassification::new(&config, &Device::flex()).save_pretrained(&config, dir).unwrap();
    config
}

#[test]
fn wrong_shapes_are_reported_as_before() {
    // (That nothing is built first is tests/shape_check_first.rs's concern.)
    let tmp = tempfile::tempdir().unwrap();
    let saved = save_tiny(tmp.path(), 3);
    let config = ViTConfig { num_hidden_layers: 4, ..saved.with_num_labels(5) };
    let err = ViTForImageClassification::from_pretrained_config(
        tmp.path(),
        &config,
        &LoadOptions::default(),
        &Device::flex(),
    )
    .map(|_| ())
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, ViTError::ShapeMismatch { key, found, expected, .. }
            if key == "classifier.bias" && found == &[3] && expected == &[5]),
        "{message}"
    );
    assert!(message.contains("ignore_mismatched_sizes"), "{message}");
    // With `ignore_mismatched_sizes` the head is re-initialised and reported, the missing layers too.
    let ignore = LoadOptions { ignore_mismatched_sizes: true, ..LoadOptions::default() };
    let (_, report) =
        ViTForImageClassification::from_pretrained_config(tmp.path(), &config, &ignore, &Device::flex()).unwrap();
    assert_eq!(report.mismatched_keys.len(), 2);
    assert_eq!(report.missing_keys.len(), 3 * 16);
}

#[test]
fn shape_check_follows_the_base_model_prefix() {
    // A ViTModel checkpoint (no `vit.` prefix) of another width, into a classifier: the error
    // names the key the model expects, as before.
    let tmp = tempfile::tempdir().unwrap();
    let base = ViTConfig::load(fixture_dir("model_pooler")).unwrap();
    let (model, _, _) =
        ViTModel::from_pretrained(fixture_dir("model_pooler"), &LoadOptions::default(), &Device::flex()).unwrap();
    model.save_pretrained(&base, tmp.path()).unwrap();
    let narrower = ViTConfig { hidden_size: base.hidden_size / 2, ..base.clone() };
    let err = ViTForImageClassification::from_pretrained_config(
        tmp.path(),
        &narrower,
        &LoadOptions::default(),
        &Device::flex(),
    )
    .map(|_| ())
    .unwrap_err();
    assert!(matches!(&err, ViTError::ShapeMismatch { key, .. } if key.starts_with("vit.embeddings.")), "{err}");
}

// ---- 3. Non-finite weights ----

/// Rewrites `dir/model.safetensors` with `value` at index 1 of tensor `key`.
fn poison(dir: &Path, key: &str, value: f32) {
    let path = dir.join("model.safetensors");
    let mut tensors = safetensors_file::read_file(&path).unwrap();
    tensors.get_mut(key).unwrap().data[1] = value;
    std::fs::write(&path, safetensors_file::to_bytes(&tensors).unwrap()).unwrap();
}

#[test]
fn non_finite_weights_are_refused_unless_allowed() {
    let key = "vit.encoder.layer.0.attention.attention.query.weight";
    for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let tmp = tempfile::tempdir().unwrap();
        save_tiny(tmp.path(), 3);
        poison(tmp.path(), key, value);
        let err = load_classifier(tmp.path(), &LoadOptions::default()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(&err, ViTError::NonFiniteWeights { key: k, count: 1, index: 1, .. } if k == key), "{message}");
        assert!(message.contains(key) && message.contains("allow_non_finite"), "{message}");

        let allow = LoadOptions { allow_non_finite: true, ..LoadOptions::default() };
        let (model, _, report) =
            ViTForImageClassification::from_pretrained(tmp.path(), &allow, &Device::flex()).unwrap();
        assert!(report.is_exact(), "{report}");
        let loaded = model.to_hf_tensors().unwrap();
        assert_eq!(loaded[key].data[1].to_bits(), value.to_bits());
    }
}

#[test]
fn non_finite_weights_are_named_by_their_checkpoint_key() {
    // A base-model checkpoint (keys without `vit.`) loaded into a classifier.
    let tmp = tempfile::tempdir().unwrap();
    let config = save_tiny(tmp.path(), 3);
    let (classifier, _, _) =
        ViTForImageClassification::from_pretrained(tmp.path(), &LoadOptions::default(), &Device::flex()).unwrap();
    let base_dir = tempfile::tempdir().unwrap();
    classifier.vit.save_pretrained(&config, base_dir.path()).unwrap();
    poison(base_dir.path(), "layernorm.weight", f32::NAN);
    let err = load_classifier(base_dir.path(), &LoadOptions::default()).unwrap_err();
    assert!(matches!(&err, ViTError::NonFiniteWeights { key, .. } if key == "layernorm.weight"), "{err}");
    // A poisoned tensor the model does not use is dropped, not refused.
    let err =
        ViTModel::from_pretrained(base_dir.path(), &LoadOptions::default(), &Device::flex()).map(|_| ()).unwrap_err();
    assert!(matches!(err, ViTError::NonFiniteWeights { .. }), "{err}");
    let tmp2 = tempfile::tempdir().unwrap();
    save_tiny(tmp2.path(), 3);
    poison(tmp2.path(), "classifier.weight", f32::NAN);
    let (_, _, report) = ViTModel::from_pretrained(tmp2.path(), &LoadOptions::default(), &Device::flex()).unwrap();
    assert_eq!(report.unexpected_keys, vec!["classifier.bias".to_string(), "classifier.weight".to_string()]);
}

// ---- 4. forward_files ----

/// Writes a safetensors inputs file.
fn write_inputs(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| (name.to_string(), TensorView::new(*dtype, shape.clone(), bytes).unwrap()))
        .collect();
    std::fs::write(path, safetensors::tensor::serialize(views, None).unwrap()).unwrap();
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn i64_bytes(values: &[i64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn pixels(batch: usize, side: usize) -> (&'static str, Dtype, Vec<usize>, Vec<u8>) {
    let n = batch * 3 * side * side;
    let values: Vec<f32> = (0..n).map(|i| (i % 17) as f32 / 17.0 - 0.5).collect();
    ("pixel_values", Dtype::F32, vec![batch, 3, side, side], f32_bytes(&values))
}

fn forward_err(model: &Path, inputs: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let (input_path, output_path) = (tmp.path().join("in.safetensors"), tmp.path().join("out.safetensors"));
    write_inputs(&input_path, inputs);
    let err = forward_files(model, &input_path, &output_path, false, &Device::flex()).map(|_| ()).unwrap_err();
    assert!(matches!(err, ViTError::InvalidInput(_)), "{err}");
    assert!(!output_path.exists());
    err.to_string()
}

#[test]
fn forward_rejects_bad_inputs_with_clear_errors() {
    let cls = fixture_dir("cls_tiny");
    // An empty batch.
    let message = forward_err(&cls, &[pixels(0, 32)]);
    assert!(message.contains("pixel_values") && message.contains("batch of 0"), "{message}");
    // Labels outside [0, num_labels), either side.
    for bad in [10i64, -1, 1 << 40] {
        let labels = ("labels", Dtype::I64, vec![2], i64_bytes(&[3, bad]));
        let message = forward_err(&cls, &[pixels(2, 32), labels]);
        assert!(message.contains("labels") && message.contains("[0, 10)") && message.contains("index 1"), "{message}");
    }
    // As many labels as images.
    let message = forward_err(&cls, &[pixels(2, 32), ("labels", Dtype::I64, vec![3], i64_bytes(&[0, 1, 2]))]);
    assert!(message.contains("labels") && message.contains("[2]"), "{message}");
    // A head mask of the wrong size: 4 heads, 2 layers.
    let message = forward_err(&cls, &[pixels(2, 32), ("head_mask", Dtype::F32, vec![3], f32_bytes(&[1.0; 3]))]);
    assert!(message.contains("head_mask") && message.contains("[4]") && message.contains("[2, 4]"), "{message}");
    let message = forward_err(&cls, &[pixels(2, 32), ("head_mask", Dtype::F32, vec![1, 2, 4], f32_bytes(&[1.0; 8]))]);
    assert!(message.contains("head_mask"), "{message}");
    // A classifier has no mask token.
    let mask = ("bool_masked_pos", Dtype::BOOL, vec![2, 16], vec![0u8; 32]);
    let message = forward_err(&cls, &[pixels(2, 32), mask]);
    assert!(message.contains("bool_masked_pos") && message.contains("mask token"), "{message}");

    let mim = fixture_dir("mim");
    // A mask of the wrong shape: 32x32 images of 4x4 patches have 64 patches.
    let mask = ("bool_masked_pos", Dtype::BOOL, vec![2, 16], vec![0u8; 32]);
    let message = forward_err(&mim, &[pixels(2, 32), mask]);
    assert!(message.contains("bool_masked_pos") && message.contains("[2, 64]"), "{message}");
    // Labels are for classifiers.
    let message = forward_err(&mim, &[pixels(2, 32), ("labels", Dtype::I64, vec![2], i64_bytes(&[0, 1]))]);
    assert!(message.contains("labels") && message.contains("ViTForMaskedImageModeling"), "{message}");
    // Wrong channels and sizes.
    let message = forward_err(&cls, &[("pixel_values", Dtype::F32, vec![1, 1, 32, 32], f32_bytes(&[0.0; 1024]))]);
    assert!(message.contains("num_channels = 3"), "{message}");
    let message = forward_err(&cls, &[pixels(1, 16)]);
    assert!(message.contains("interpolate_pos_encoding"), "{message}");
}

#[test]
fn forward_with_valid_labels_still_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (input_path, output_path) = (tmp.path().join("in.safetensors"), tmp.path().join("out.safetensors"));
    write_inputs(&input_path, &[pixels(2, 32), ("labels", Dtype::I64, vec![2], i64_bytes(&[0, 9]))]);
    let (outputs, _) =
        forward_files(&fixture_dir("cls_tiny"), &input_path, &output_path, false, &Device::flex()).unwrap();
    assert!(outputs["loss"].data[0].is_finite());
}

#[test]
fn forward_refuses_an_oversized_model() {
    let config = cls_tiny_config().replace("\"hidden_size\": 64", "\"hidden_size\": 1000000000");
    let dir = dir_with_config(&config);
    let tmp = tempfile::tempdir().unwrap();
    let (input_path, output_path) = (tmp.path().join("in.safetensors"), tmp.path().join("out.safetensors"));
    write_inputs(&input_path, &[pixels(1, 32)]);
    let err = forward_files(dir.path(), &input_path, &output_path, false, &Device::flex()).map(|_| ()).unwrap_err();
    assert!(matches!(err, ViTError::ModelTooLarge(_)), "{err}");
}

#[test]
fn forward_output_overwrites_only_its_own_files() {
    let device = Device::flex();
    let model = fixture_dir("cls_tiny");
    let tmp = tempfile::tempdir().unwrap();
    let (input_path, output_path) = (tmp.path().join("in.safetensors"), tmp.path().join("out.safetensors"));
    write_inputs(&input_path, &[pixels(1, 32)]);

    // A fresh output carries the marker.
    forward_files(&model, &input_path, &output_path, false, &device).unwrap();
    let header = safetensors_file::read_header(&output_path).unwrap();
    assert_eq!(header.metadata.get("format").map(String::as_str), Some(FORWARD_OUTPUT_FORMAT));
    assert!(header.tensors.contains_key("logits"));
    // A previous output is replaced.
    forward_files(&model, &input_path, &output_path, false, &device).unwrap();

    // Anything else is kept: another file, a safetensors file of weights, the inputs themselves.
    let precious = tmp.path().join("notes.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let weights = tmp.path().join("model.safetensors");
    std::fs::copy(model.join("model.safetensors"), &weights).unwrap();
    for existing in [&precious, &weights, &input_path] {
        let before = std::fs::read(existing).unwrap();
        let err = forward_files(&model, &input_path, existing, false, &device).map(|_| ()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ViTError::WouldOverwrite { .. }), "{message}");
        assert!(message.contains("overwrite") && message.contains(FORWARD_OUTPUT_FORMAT), "{message}");
        assert_eq!(std::fs::read(existing).unwrap(), before);
    }
    // Unless asked to.
    let options = ForwardFileOptions { overwrite: true, ..ForwardFileOptions::default() };
    forward_files_with(&model, &input_path, &precious, &options, &device).unwrap();
    assert!(safetensors_file::read_header(&precious).unwrap().tensors.contains_key("logits"));
    // A directory is never replaced.
    let err = forward_files_with(&model, &input_path, tmp.path(), &options, &device).map(|_| ()).unwrap_err();
    assert!(matches!(err, ViTError::WouldOverwrite { .. }), "{err}");
}

#[test]
fn forward_file_options_pass_load_options_through() {
    let tmp = tempfile::tempdir().unwrap();
    let (input_path, output_path) = (tmp.path().join("in.safetensors"), tmp.path().join("out.safetensors"));
    write_inputs(&input_path, &[pixels(1, 32)]);
    let options = ForwardFileOptions {
        load: LoadOptions { max_weight_bytes: 1024, ..LoadOptions::default() },
        ..ForwardFileOptions::default()
    };
    let err = forward_files_with(&fixture_dir("cls_tiny"), &input_path, &output_path, &options, &Device::flex())
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, ViTError::ModelTooLarge(_)), "{err}");
}

/// The header reader agrees with the full reader on valid files and refuses what it refuses.
#[test]
fn header_reader_matches_the_full_reader() {
    for case in common::CASES {
        let path = fixture_dir(case).join("model.safetensors");
        let header = safetensors_file::read_header(&path).unwrap();
        let full = safetensors_file::read_file(&path).unwrap();
        let shapes: BTreeMap<String, Vec<usize>> = header.tensors.into_iter().map(|(k, (_, s))| (k, s)).collect();
        let full_shapes: BTreeMap<String, Vec<usize>> = full.into_iter().map(|(k, t)| (k, t.shape)).collect();
        assert_eq!(shapes, full_shapes, "{case}");
        assert_eq!(header.metadata.get("format").map(String::as_str), Some("pt"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let weights = std::fs::read(fixture_dir("cls_tiny").join("model.safetensors")).unwrap();
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("short", weights[..5].to_vec()),
        ("truncated", weights[..weights.len() - 1].to_vec()),
        ("longer", [weights.as_slice(), &[0u8]].concat()),
        ("lying", [&(u64::MAX / 2).to_le_bytes()[..], &weights[8..]].concat()),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let message = safetensors_file::read_header(&path).unwrap_err().to_string();
        assert!(message.contains("not a valid safetensors"), "{name}: {message}");
        assert!(safetensors_file::read_file(&path).is_err(), "{name}");
    }
}
