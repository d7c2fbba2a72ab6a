//! One forward pass of a model directory on named inputs, every output under HF's names.
//!
//! The engine of `vit-train forward` and of the parity tests: inputs are `pixel_values` and
//! optionally `bool_masked_pos`, `labels`, `head_mask`; outputs are `logits` | `reconstruction`,
//! `loss`, `last_hidden_state`, `pooler_output`, `hidden_states.{i}` and `attentions.{i}`.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use safetensors::Dtype;

use crate::architecture::Architecture;
use crate::checkpoint::{HfTensor, LoadOptions, LoadReport, PretrainedViT, safetensors_file};
use crate::config::ViTConfig;
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
    let (_, weights) = safetensors_file::read_dir(dir)?;
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
    let known = ["pixel_values", "bool_masked_pos", "labels", "head_mask"];
    if let Some(unknown) = inputs.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ViTError::InvalidInput(format!("unknown input `{unknown}`; expected {}", known.join(", "))));
    }
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
    };

    let config = ViTConfig::load(dir.join("config.json"))?;
    let mut out = BTreeMap::new();
    let (hidden_states, attentions, report);
    match architecture_of(&config, dir)? {
        Architecture::ViTForImageClassification => {
            let (model, _, r) = ViTForImageClassification::from_pretrained(dir, &LoadOptions::default(), device)?;
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
            let (model, _, r) = ViTForMaskedImageModeling::from_pretrained(dir, &LoadOptions::default(), device)?;
            let o = model.forward_with(pixel_values, options)?;
            out.insert("reconstruction".to_string(), output(o.reconstruction));
            if let Some(loss) = o.loss {
                out.insert("loss".to_string(), scalar(loss));
            }
            out.insert("last_hidden_state".to_string(), output(o.last_hidden_state));
            (hidden_states, attentions, report) = (o.hidden_states, o.attentions, r);
        }
        Architecture::ViTModel => {
            let (model, _, r) = ViTModel::from_pretrained(dir, &LoadOptions::default(), device)?;
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

/// Reads `inputs.safetensors`, runs [`run_forward`] and writes the outputs to `output`.
pub fn forward_files(
    model_dir: &Path,
    inputs: &Path,
    output_path: &Path,
    interpolate_pos_encoding: bool,
    device: &Device,
) -> Result<(BTreeMap<String, HfTensor>, LoadReport)> {
    let inputs = safetensors_file::read_inputs(inputs)?;
    let (outputs, report) = run_forward(model_dir, &inputs, interpolate_pos_encoding, device)?;
    let bytes = safetensors_file::to_bytes(&outputs)?;
    vit_io::write_atomic(output_path, &bytes).map_err(|e| ViTError::io("cannot write", output_path, e))?;
    Ok((outputs, report))
}
