//! Reading and writing `model.safetensors` (single or sharded) as named f32 tensors.

use crate::precision::Precision;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use safetensors::tensor::Metadata;
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

/// The largest header a safetensors file may have (the `safetensors` crate's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The header of a safetensors file: what it holds, without its data.
#[derive(Debug, Clone, PartialEq)]
pub struct SafetensorsHeader {
    /// Every tensor's dtype and shape, by name.
    pub tensors: BTreeMap<String, (Dtype, Vec<usize>)>,
    /// The `__metadata__` entries (e.g. `{"format": "pt"}`).
    pub metadata: BTreeMap<String, String>,
}

/// Reads the header of a safetensors file, and only the header: its data is not read, but its
/// length is checked against the offsets the header gives, so a truncated or lying file is an
/// error here as it is for [`read_file`].
pub fn read_header(path: &Path) -> Result<SafetensorsHeader> {
    let invalid = |why: String| ViTError::Safetensors {
        path: path.to_path_buf(),
        message: format!("not a valid safetensors file ({why}); re-download or re-export it"),
    };
    let mut file = std::fs::File::open(path).map_err(|e| ViTError::io("cannot read", path, e))?;
    let file_len = file.metadata().map_err(|e| ViTError::io("cannot read", path, e))?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes).map_err(|_| invalid(format!("{file_len} bytes, too short for a header")))?;
    let n = u64::from_le_bytes(len_bytes);
    if n > MAX_HEADER_BYTES {
        return Err(invalid(format!("header length {n} is over the limit of {MAX_HEADER_BYTES} bytes")));
    }
    if n > file_len.saturating_sub(8) {
        return Err(invalid(format!("header length {n} runs past the end of the {file_len}-byte file")));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(|e| ViTError::io("cannot read", path, e))?;
    let text = std::str::from_utf8(&header).map_err(|e| invalid(format!("header is not UTF-8: {e}")))?;
    let metadata: Metadata =
        serde_json::from_str(text).map_err(|e| invalid(format!("header is not a valid tensor table: {e}")))?;
    let data_len = metadata.data_len() as u64;
    let file_data_len = file_len.saturating_sub(8 + n);
    if data_len != file_data_len {
        return Err(invalid(format!("the header gives {data_len} bytes of data but the file has {file_data_len}")));
    }
    let tensors = metadata.tensors().into_iter().map(|(name, info)| (name, (info.dtype, info.shape.clone()))).collect();
    let metadata = metadata.metadata().clone().unwrap_or_default().into_iter().collect();
    Ok(SafetensorsHeader { tensors, metadata })
}

/// The dtypes weights may have.
fn is_float(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64)
}

/// The shape of every tensor of a model directory's weights (all shards), read from the
/// headers alone, with the file or index they were found through. Tensors that are not floats
/// are refused as [`read_dir`] refuses them.
pub fn read_dir_shapes(dir: &Path) -> Result<(PathBuf, BTreeMap<String, Vec<usize>>)> {
    let files = locate(dir)?;
    let mut all = BTreeMap::new();
    for shard in &files.shards {
        let header = read_header(shard)?;
        for (name, (dtype, shape)) in header.tensors {
            if !is_float(dtype) {
                return Err(ViTError::Safetensors {
                    path: shard.clone(),
                    message: format!("tensor '{name}' has dtype {dtype:?}; expected F32, F16, BF16 or F64"),
                });
            }
            all.insert(name, shape);
        }
    }
    Ok((files.origin, all))
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
    to_bytes_with_metadata(tensors, &[("format", "pt")])
}

/// Serialises named f32 tensors as a safetensors file with the given `__metadata__` entries.
pub fn to_bytes_with_metadata(tensors: &BTreeMap<String, HfTensor>, metadata: &[(&str, &str)]) -> Result<Vec<u8>> {
    to_bytes_in(tensors, Precision::F32, metadata)
}

/// Serialises named tensors as a safetensors file of `precision`'s dtype (F32, BF16 or F16,
/// rounded to nearest even) with the given `__metadata__` entries.
pub fn to_bytes_in(
    tensors: &BTreeMap<String, HfTensor>,
    precision: Precision,
    metadata: &[(&str, &str)],
) -> Result<Vec<u8>> {
    let encode = |data: &[f32]| -> Vec<u8> {
        match precision {
            Precision::F32 => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Precision::Bf16 => data.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect(),
            Precision::F16 => data.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
        }
    };
    let dtype = match precision {
        Precision::F32 => Dtype::F32,
        Precision::Bf16 => Dtype::BF16,
        Precision::F16 => Dtype::F16,
    };
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(k, t)| (k.clone(), t.shape.clone(), encode(&t.data))).collect();
    let views = raw
        .iter()
        .map(|(k, shape, bytes)| {
            safetensors::tensor::TensorView::new(dtype, shape.clone(), bytes).map(|v| (k.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| ViTError::Safetensors { path: PathBuf::from("<memory>"), message: e.to_string() })?;
    let metadata = Some(metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    safetensors::tensor::serialize(views, metadata)
        .map_err(|e| ViTError::Safetensors { path: PathBuf::from("<memory>"), message: e.to_string() })
}
