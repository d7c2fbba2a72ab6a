//! One forward pass of a model directory on named inputs, every output under HF's names.
//!
//! The engine of `vit-train forward` and of the parity tests: inputs are `pixel_values` and
//! optionally `bool_masked_pos`, `labels`, `head_mask`; outputs are `logits` | `reconstruction`,
//! `loss`, `last_hidden_state`, `pooler_output`, `hidden_states.{i}` and `attentions.{i}`.
//!
//! Every input is checked against the model's config before the model is loaded or run, so that
//! a bad input is an error naming it and the valid shape or range, never a panic inside Burn.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use safetensors::Dtype;

use crate::architecture::Architecture;
use crate::checkpoint::{HfTensor, LoadOptions, LoadReport, PretrainedViT, safetensors_file};
use crate::config::{ProblemType, ViTConfig};
use crate::error::{Result, ViTError};
use crate::heads::classification::{Labels, ViTForImageClassification};
use crate::heads::mim::ViTForMaskedImageModeling;
use crate::model::{HeadMask, ViTForwardOptions, ViTModel};

/// The model class of a directory: `architectures[0]` of its config, or, when absent, the class
/// whose head weights the checkpoint holds.
pub fn architecture_of(config: &ViTConfig, dir: &Path) -> Result<Architecture> {
    if let Some(arch) = config.architectures.as_ref().and_then(|a| a.first()) {
        return Architecture::from_name(arch).ok_or_else(|| ViTError::Json {
            path: dir.join("config.json"),
            message: format!(
                "field `architectures`: unknown class \"{arch}\"; expected {}",
                Architecture::expected_names()
            ),
        });
    }
    let (_, weights) = safetensors_file::read_dir_shapes(dir)?;
    Ok(if weights.contains_key("classifier.weight") {
        Architecture::ViTForImageClassification
    } else if weights.contains_key("decoder.0.weight") {
        Architecture::ViTForMaskedImageModeling
    } else {
        Architecture::ViTModel
    })
}

fn tensor<const D: usize>(name: &str, t: &HfTensor, device: &Device) -> Result<Tensor<D>> {
    if t.shape.len() != D {
        return Err(ViTError::InvalidInput(format!("input `{name}` has shape {:?}; expected {D} dimensions", t.shape)));
    }
    Ok(Tensor::from_data(TensorData::new(t.data.clone(), t.shape.clone()), device))
}

fn output<const D: usize>(t: Tensor<D>) -> HfTensor {
    let data = t.into_data();
    let shape = data.shape().to_vec();
    let data = data.convert::<f32>().try_into_vec::<f32>().expect("float tensors convert to f32");
    HfTensor { shape, data }
}

/// Runs the model in `dir` on `inputs` and returns every output with the load report.
pub fn run_forward(
    dir: &Path,
    inputs: &BTreeMap<String, (Dtype, HfTensor)>,
    interpolate_pos_encoding: bool,
    device: &Device,
) -> Result<(BTreeMap<String, HfTensor>, LoadReport)> {
    run_forward_with(dir, inputs, interpolate_pos_encoding, true, device)
}

/// [`run_forward`], returning the hidden states and attention probabilities only when
/// `with_extras` (without them, attention runs its fused path, as in training).
pub fn run_forward_with(
    dir: &Path,
    inputs: &BTreeMap<String, (Dtype, HfTensor)>,
    interpolate_pos_encoding: bool,
    with_extras: bool,
    device: &Device,
) -> Result<(BTreeMap<String, HfTensor>, LoadReport)> {
    run_forward_loaded(dir, inputs, interpolate_pos_encoding, with_extras, &LoadOptions::default(), device)
}

/// [`run_forward_with`], loading the model with `load` (its size limit, whether non-finite
/// weights are accepted, ...). The inputs are checked against the config before the model is
/// loaded: see [`check_inputs`].
pub fn run_forward_loaded(
    dir: &Path,
    inputs: &BTreeMap<String, (Dtype, HfTensor)>,
    interpolate_pos_encoding: bool,
    with_extras: bool,
    load: &LoadOptions,
    device: &Device,
) -> Result<(BTreeMap<String, HfTensor>, LoadReport)> {
    let known = ["pixel_values", "bool_masked_pos", "labels", "head_mask"];
    if let Some(unknown) = inputs.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ViTError::InvalidInput(format!("unknown input `{unknown}`; expected {}", known.join(", "))));
    }
    let mut config = ViTConfig::load(dir.join("config.json"))?;
    if let Some(labels) = &load.labels {
        config = config.with_labels(labels.clone());
    }
    let architecture = architecture_of(&config, dir)?;
    check_inputs(&config, architecture, inputs, interpolate_pos_encoding)?;

    let (_, pixels) =
        inputs.get("pixel_values").ok_or_else(|| ViTError::InvalidInput("the inputs have no `pixel_values`".into()))?;
    let pixel_values: Tensor<4> = tensor("pixel_values", pixels, device)?;
    let bool_masked_pos = inputs
        .get("bool_masked_pos")
        .map(|(_, t)| tensor::<2>("bool_masked_pos", t, device).map(|m| m.greater_elem(0.5)))
        .transpose()?;
    let head_mask = inputs
        .get("head_mask")
        .map(|(_, t)| match t.shape.len() {
            1 => tensor::<1>("head_mask", t, device).map(HeadMask::AllLayers),
            _ => tensor::<2>("head_mask", t, device).map(HeadMask::PerLayer),
        })
        .transpose()?;
    let options = ViTForwardOptions {
        bool_masked_pos: bool_masked_pos.clone(),
        head_mask,
        output_attentions: with_extras,
        output_hidden_states: with_extras,
        interpolate_pos_encoding,
        stochastic_depth: None,
    };

    let mut out = BTreeMap::new();
    let (hidden_states, attentions, report);
    match architecture {
        Architecture::ViTForImageClassification => {
            let (model, _, r) = ViTForImageClassification::from_pretrained(dir, load, device)?;
            let labels = inputs.get("labels").map(|(dtype, t)| labels_of(*dtype, t, device)).transpose()?;
            let o = model.forward_with(pixel_values, labels, options)?;
            out.insert("logits".to_string(), output(o.logits));
            if let Some(loss) = o.loss {
                out.insert("loss".to_string(), scalar(loss));
            }
            out.insert("last_hidden_state".to_string(), output(o.last_hidden_state));
            (hidden_states, attentions, report) = (o.hidden_states, o.attentions, r);
        }
        Architecture::ViTForMaskedImageModeling => {
            let (model, _, r) = ViTForMaskedImageModeling::from_pretrained(dir, load, device)?;
            let o = model.forward_with(pixel_values, options)?;
            out.insert("reconstruction".to_string(), output(o.reconstruction));
            if let Some(loss) = o.loss {
                out.insert("loss".to_string(), scalar(loss));
            }
            out.insert("last_hidden_state".to_string(), output(o.last_hidden_state));
            (hidden_states, attentions, report) = (o.hidden_states, o.attentions, r);
        }
        Architecture::ViTModel => {
            let (model, _, r) = ViTModel::from_pretrained(dir, load, device)?;
            let o = model.forward_with(pixel_values, options)?;
            out.insert("last_hidden_state".to_string(), output(o.last_hidden_state));
            if let Some(pooled) = o.pooler_output {
                out.insert("pooler_output".to_string(), output(pooled));
            }
            (hidden_states, attentions, report) = (o.hidden_states, o.attentions, r);
        }
    }
    for (i, h) in hidden_states.into_iter().flatten().enumerate() {
        out.insert(format!("hidden_states.{i}"), output(h));
    }
    for (i, a) in attentions.into_iter().flatten().enumerate() {
        out.insert(format!("attentions.{i}"), output(a));
    }
    Ok((out, report))
}

fn is_integer(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::I64 | Dtype::I32 | Dtype::U8)
}

/// Checks the named inputs of a forward pass against the model of class `architecture` built
/// from `config`, from their shapes and values alone (nothing is allocated on the device):
///
/// - `pixel_values` is `[batch, num_channels, height, width]` with `batch ≥ 1`, and `height`
///   and `width` non-zero multiples of `patch_size` (equal to `image_size` unless
///   `interpolate_pos_encoding`);
/// - `bool_masked_pos` is `[batch, (height / patch_size) · (width / patch_size)]`, and the class
///   is not `ViTForImageClassification` (which has no mask token);
/// - `head_mask` is `[num_attention_heads]` or `[num_hidden_layers, num_attention_heads]`;
/// - `labels` are given to `ViTForImageClassification` only; integer labels hold one value per
///   image, and for single-label classification each is a class index in `[0, num_labels)`.
pub fn check_inputs(
    config: &ViTConfig,
    architecture: Architecture,
    inputs: &BTreeMap<String, (Dtype, HfTensor)>,
    interpolate_pos_encoding: bool,
) -> Result<()> {
    let bad = |m: String| Err(ViTError::InvalidInput(m));
    let (_, pixels) =
        inputs.get("pixel_values").ok_or_else(|| ViTError::InvalidInput("the inputs have no `pixel_values`".into()))?;
    let shape = &pixels.shape;
    let &[batch, channels, height, width] = shape.as_slice() else {
        return bad(format!(
            "input `pixel_values` has shape {shape:?}; expected 4 dimensions [batch, num_channels, height, width]"
        ));
    };
    if batch == 0 {
        return bad(format!("input `pixel_values` has shape {shape:?}: a batch of 0 images; expected at least 1"));
    }
    if channels != config.num_channels {
        return bad(format!(
            "input `pixel_values` has shape {shape:?}: {channels} channels, but the model expects num_channels = {}",
            config.num_channels
        ));
    }
    let (p, size) = (config.patch_size, config.image_size);
    if height == 0 || width == 0 || !height.is_multiple_of(p) || !width.is_multiple_of(p) {
        return bad(format!(
            "input `pixel_values` has shape {shape:?}: its height and width must be non-zero multiples of \
             patch_size ({p})"
        ));
    }
    if !interpolate_pos_encoding && (height != size || width != size) {
        return bad(format!(
            "input `pixel_values` has shape {shape:?}: the image size ({height}x{width}) doesn't match the model \
             ({size}x{size}); pass interpolate_pos_encoding to run at another resolution"
        ));
    }
    let patches = (height / p) * (width / p);
    if let Some((_, mask)) = inputs.get("bool_masked_pos") {
        if architecture == Architecture::ViTForImageClassification {
            return bad(format!("input `bool_masked_pos` needs a mask token, which {architecture} does not have"));
        }
        if mask.shape != [batch, patches] {
            return bad(format!(
                "input `bool_masked_pos` has shape {:?}; expected [{batch}, {patches}]: one flag per patch of each \
                 {height}x{width} image (patch_size {p})",
                mask.shape
            ));
        }
    }
    if let Some((_, head_mask)) = inputs.get("head_mask") {
        let (layers, heads) = (config.num_hidden_layers, config.num_attention_heads);
        if head_mask.shape != [heads] && head_mask.shape != [layers, heads] {
            return bad(format!(
                "input `head_mask` has shape {:?}; expected [{heads}] (num_attention_heads) or [{layers}, {heads}] \
                 (num_hidden_layers, num_attention_heads)",
                head_mask.shape
            ));
        }
    }
    if let Some((dtype, labels)) = inputs.get("labels") {
        if architecture != Architecture::ViTForImageClassification {
            return bad(format!(
                "input `labels` is only used by ViTForImageClassification; this model is a {architecture}"
            ));
        }
        let num_labels = config.num_labels();
        let problem = config.problem_type.unwrap_or(if num_labels == 1 {
            ProblemType::Regression
        } else {
            ProblemType::SingleLabelClassification
        });
        if is_integer(*dtype) {
            if labels.data.len() != batch {
                return bad(format!(
                    "input `labels` has shape {:?}: {} values for {batch} images; expected one per image, [{batch}]",
                    labels.shape,
                    labels.data.len()
                ));
            }
            if problem == ProblemType::SingleLabelClassification
                && let Some((i, v)) =
                    labels.data.iter().enumerate().find(|&(_, &v)| !(v >= 0.0 && v < num_labels as f32))
            {
                return bad(format!(
                    "input `labels` holds {v} at index {i}; class indices must be in [0, {num_labels}) \
                     (num_labels = {num_labels})"
                ));
            }
        }
    }
    Ok(())
}

fn scalar(loss: Tensor<1>) -> HfTensor {
    HfTensor { shape: vec![], data: output(loss).data }
}

fn labels_of(dtype: Dtype, t: &HfTensor, device: &Device) -> Result<Labels> {
    match dtype {
        Dtype::I64 | Dtype::I32 | Dtype::U8 => {
            let values: Vec<i64> = t.data.iter().map(|&v| v as i64).collect();
            let n = values.len();
            Ok(Labels::Classes(Tensor::<1, Int>::from_data(TensorData::new(values, [n]), device)))
        }
        _ => {
            let t2 = if t.shape.len() == 1 {
                HfTensor { shape: vec![t.shape[0], 1], data: t.data.clone() }
            } else {
                t.clone()
            };
            Ok(Labels::Targets(tensor::<2>("labels", &t2, device)?))
        }
    }
}

/// The `format` entry of the `__metadata__` of every outputs file [`forward_files_with`]
/// writes; an existing file carrying it is a previous output, which may be replaced.
pub const FORWARD_OUTPUT_FORMAT: &str = "vit-burn forward";

/// How [`forward_files_with`] loads, runs and writes. `Default`: no interpolation, no
/// overwriting of other files, the default [`LoadOptions`].
#[derive(Debug, Clone, Default)]
pub struct ForwardFileOptions {
    /// Resize the position embeddings to the input's size (another resolution than `image_size`).
    pub interpolate_pos_encoding: bool,
    /// Replace the output file even when it exists and is not a previous forward output (one
    /// whose safetensors metadata has `"format": "vit-burn forward"`); such a file is otherwise
    /// kept and the call fails before anything is run.
    pub overwrite: bool,
    /// How the model is loaded: its size limit, whether non-finite weights are accepted, ...
    pub load: LoadOptions,
}

/// Fails unless `path` may be written: it does not exist, it is a previous forward output, or
/// `overwrite`. A directory is never replaced.
pub fn check_output_replaceable(path: &Path, overwrite: bool) -> Result<()> {
    let would_overwrite = |message: String| Err(ViTError::WouldOverwrite { path: path.to_path_buf(), message });
    let Ok(existing) = std::fs::metadata(path) else {
        return Ok(());
    };
    if existing.is_dir() {
        return would_overwrite("is a directory; the outputs are written to a file".into());
    }
    if overwrite {
        return Ok(());
    }
    let format = safetensors_file::read_header(path).ok().and_then(|h| h.metadata.get("format").cloned());
    if format.as_deref() == Some(FORWARD_OUTPUT_FORMAT) {
        return Ok(());
    }
    would_overwrite(format!(
        "exists and is not the output of a previous forward pass (a safetensors file with \
         {{\"format\": \"{FORWARD_OUTPUT_FORMAT}\"}} metadata), so it is kept; choose another path, or \
         overwrite it on purpose (`overwrite`, `--overwrite`)"
    ))
}

/// Reads `inputs.safetensors`, runs [`run_forward`] and writes the outputs to `output`, refusing
/// to replace an existing file that is not a previous forward output: [`forward_files_with`]
/// with `interpolate_pos_encoding` and the other options at their defaults.
pub fn forward_files(
    model_dir: &Path,
    inputs: &Path,
    output_path: &Path,
    interpolate_pos_encoding: bool,
    device: &Device,
) -> Result<(BTreeMap<String, HfTensor>, LoadReport)> {
    let options = ForwardFileOptions { interpolate_pos_encoding, ..ForwardFileOptions::default() };
    forward_files_with(model_dir, inputs, output_path, &options, device)
}

/// Reads `inputs.safetensors`, runs the model of `model_dir` on them with every extra
/// ([`run_forward_loaded`]) and writes the outputs to `output_path` (through a temporary file
/// and a rename) as safetensors with `{"format": "vit-burn forward"}` metadata. Unless
/// `options.overwrite`, an existing `output_path` that is not such a file is an error
/// ([`ViTError::WouldOverwrite`]), raised before anything is read or run.
pub fn forward_files_with(
    model_dir: &Path,
    inputs: &Path,
    output_path: &Path,
    options: &ForwardFileOptions,
    device: &Device,
) -> Result<(BTreeMap<String, HfTensor>, LoadReport)> {
    check_output_replaceable(output_path, options.overwrite)?;
    let inputs = safetensors_file::read_inputs(inputs)?;
    let (outputs, report) =
        run_forward_loaded(model_dir, &inputs, options.interpolate_pos_encoding, true, &options.load, device)?;
    let bytes = safetensors_file::to_bytes_with_metadata(&outputs, &[("format", FORWARD_OUTPUT_FORMAT)])?;
    vit_io::write_atomic(output_path, &bytes).map_err(|e| ViTError::io("cannot write", output_path, e))?;
    Ok((outputs, report))
}
