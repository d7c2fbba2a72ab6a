//! Reading and writing `model.safetensors` (single or sharded) as named f32 tensors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Result, ViTError};

/// One checkpoint tensor, converted to f32, in the checkpoint's (PyTorch) layout.
#[derive(Debug, Clone, PartialEq)]
pub struct HfTensor {
    /// The shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// The weights file of a model directory, and where each key lives.
#[derive(Debug)]
pub struct CheckpointFiles {
    /// The file or index the weights were found through, for messages.
    pub origin: PathBuf,
    /// Shard files in the order to read them.
    pub shards: Vec<PathBuf>,
}

/// Finds the weights of an HF model directory: `model.safetensors`, or the shards listed by
/// `model.safetensors.index.json`. A pickle checkpoint is refused with a conversion hint.
pub fn locate(dir: &Path) -> Result<CheckpointFiles> {
    if !dir.is_dir() {
        return Err(ViTError::io(
            "cannot open model directory",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        ));
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(CheckpointFiles { origin: single.clone(), shards: vec![single] });
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| ViTError::io("cannot read", &index, e))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ViTError::Json { path: index.clone(), message: format!("not valid JSON: {e}") })?;
        let map = value.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| ViTError::Json {
            path: index.clone(),
            message: "field `weight_map`: expected an object of tensor name → shard file".into(),
        })?;
        let mut shards: Vec<PathBuf> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (key, file) in map {
            let file = file.as_str().ok_or_else(|| ViTError::Json {
                path: index.clone(),
                message: format!("field `weight_map.{key}`: expected a file name string"),
            })?;
            if file.contains('/') || file.contains('\\') || file.starts_with("..") {
                return Err(ViTError::Json {
                    path: index.clone(),
                    message: format!(
                        "field `weight_map.{key}`: shard `{file}` must be a file name in the model directory"
                    ),
                });
            }
            let shard = dir.join(file);
            if seen.insert(shard.clone()) {
                shards.push(shard);
            }
        }
        return Ok(CheckpointFiles { origin: index, shards });
    }
    for pickle in ["pytorch_model.bin", "model.bin", "pytorch_model.bin.index.json"] {
        if dir.join(pickle).exists() {
            return Err(ViTError::Safetensors {
                path: dir.join(pickle),
                message: "pickle checkpoints are never loaded (they can run code). Convert it in Python with \
                          `AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`"
                    .into(),
            });
        }
    }
    Err(ViTError::io(
        "no weights in",
        dir,
        std::io::Error::new(std::io::ErrorKind::NotFound, "expected model.safetensors or model.safetensors.index.json"),
    ))
}

/// Reads every tensor of one safetensors file of weights, converted to f32.
pub fn read_file(path: &Path) -> Result<BTreeMap<String, HfTensor>> {
    read_typed(path, false).map(|m| m.into_iter().map(|(k, (_, t))| (k, t)).collect())
}

/// Reads every tensor of one safetensors file of inputs: floats, and also integers and booleans
/// (as 0/1), converted to f32 and returned with their stored dtype.
pub fn read_inputs(path: &Path) -> Result<BTreeMap<String, (Dtype, HfTensor)>> {
    read_typed(path, true)
}

fn read_typed(path: &Path, allow_integers: bool) -> Result<BTreeMap<String, (Dtype, HfTensor)>> {
    let bytes = std::fs::read(path).map_err(|e| ViTError::io("cannot read", path, e))?;
    let bad = |message: String| ViTError::Safetensors { path: path.to_path_buf(), message };
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a valid safetensors file ({e}); re-download or re-export it")))?;
    let mut out = BTreeMap::new();
    // `tensors()` comes in hash order: sort, so that the same file always reports the same error.
    let mut tensors = file.tensors();
    tensors.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (name, view) in tensors {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Dtype::F16 => raw.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Dtype::BF16 => raw.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Dtype::F64 => {
                raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")) as f32).collect()
            }
            Dtype::BOOL | Dtype::U8 if allow_integers => raw.iter().map(|&b| b as f32).collect(),
            Dtype::I64 if allow_integers => {
                raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")) as f32).collect()
            }
            Dtype::I32 if allow_integers => {
                raw.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("chunks of 4")) as f32).collect()
            }
            other => {
                return Err(bad(format!(
                    "tensor '{name}' has dtype {other:?}; expected F32, F16, BF16 or F64{}",
                    if allow_integers { ", or I64, I32, U8, BOOL" } else { "" }
                )));
            }
        };
        let shape = view.shape().to_vec();
        if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(data.len()) {
            return Err(bad(format!("tensor '{name}' has {} values for shape {shape:?}", data.len())));
        }
        out.insert(name, (view.dtype(), HfTensor { shape, data }));
    }
    Ok(out)
}

/// Reads every tensor of a model directory (all shards).
pub fn read_dir(dir: &Path) -> Result<(PathBuf, BTreeMap<String, HfTensor>)> {
    let files = locate(dir)?;
    let mut all = BTreeMap::new();
    for shard in &files.shards {
        all.extend(read_file(shard)?);
    }
    Ok((files.origin, all))
}

/// Serialises named f32 tensors as a safetensors file with `{"format": "pt"}` metadata,
/// the form `transformers` writes and expects.
pub fn to_bytes(tensors: &BTreeMap<String, HfTensor>) -> Result<Vec<u8>> {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.shape.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views = raw
        .iter()
        .map(|(k, shape, bytes)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (k.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| ViTError::Safetensors { path: PathBuf::from("<memory>"), message: e.to_string() })?;
    let metadata = Some([("format".to_string(), "pt".to_string())].into_iter().collect());
    safetensors::tensor::serialize(views, metadata)
        .map_err(|e| ViTError::Safetensors { path: PathBuf::from("<memory>"), message: e.to_string() })
}
