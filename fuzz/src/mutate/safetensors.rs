//! safetensors mutations: the length prefix, the header's fields (dtype, shape, offsets, huge
//! claims) with the prefix kept consistent, or the bytes.

use serde_json::Value;

use super::bytes::{INTERESTING_U64, bytes, put};
use super::json::json_value;
use crate::rng::Rng;

const DTYPES: &[&str] = &[
    "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL", "F8_E4M3", "F8_E5M2",
    "F8_E8M0", "E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64", "f32", "X",
];

/// Bytes per element of a safetensors dtype, for the dtypes this repo reads (else `None`).
pub fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "F64" | "I64" | "U64" | "C64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "U8" | "I8" | "BOOL" | "F8_E4M3" | "F8_E5M2" | "F8_E8M0" | "E8M0" => 1,
        _ => return None,
    })
}

/// Splits a safetensors file into (header JSON, data) when its length prefix is in range.
pub fn split_safetensors(data: &[u8]) -> Option<(Value, Vec<u8>)> {
    let n = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
    let end = 8usize.checked_add(usize::try_from(n).ok()?)?;
    let header = serde_json::from_slice(data.get(8..end)?).ok()?;
    Some((header, data[end..].to_vec()))
}

/// Assembles a safetensors file; `pad` adds spaces to 8-byte alignment as the writer does.
pub fn join_safetensors(header: &Value, body: &[u8], pad: bool) -> Vec<u8> {
    let mut h = serde_json::to_vec(header).unwrap_or_default();
    if pad {
        while !h.len().is_multiple_of(8) {
            h.push(b' ');
        }
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    out
}

fn tensor_names(header: &Value) -> Vec<String> {
    header.as_object().map(|m| m.keys().filter(|k| *k != "__metadata__").cloned().collect()).unwrap_or_default()
}

/// Rewrites tensors' offsets one after another to fit their dtype and shape, and the data to
/// match: a valid file whose tensors have new dtypes and shapes.
fn relayout(rng: &mut Rng, header: &mut Value, body: &mut Vec<u8>) {
    let Some(map) = header.as_object_mut() else {
        return;
    };
    let mut offset = 0usize;
    let mut new_body = Vec::new();
    for (name, info) in map.iter_mut() {
        if name == "__metadata__" {
            continue;
        }
        let Some(dtype) = info.get("dtype").and_then(Value::as_str).and_then(dtype_size) else {
            continue;
        };
        let Some(shape) = info.get("shape").and_then(Value::as_array) else {
            continue;
        };
        let Some(count) = shape.iter().try_fold(1usize, |acc, d| d.as_u64().and_then(|d| acc.checked_mul(d as usize)))
        else {
            continue;
        };
        let Some(nbytes) = count.checked_mul(dtype).filter(|&n| n <= 1 << 20) else {
            continue;
        };
        let old = info
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| Some((a.first()?.as_u64()?, a.get(1)?.as_u64()?)));
        for i in 0..nbytes {
            let from_old = old.and_then(|(s, _)| body.get(usize::try_from(s).ok()?.checked_add(i)?).copied());
            new_body.push(from_old.unwrap_or_else(|| rng.byte()));
        }
        info["data_offsets"] = Value::Array(vec![offset.into(), (offset + nbytes).into()]);
        offset += nbytes;
    }
    *body = new_body;
}

/// A mutation of a safetensors file: length prefix, header fields (dtype, shape, offsets, huge
/// claims) with the prefix kept consistent, or the bytes.
pub fn safetensors(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
    if rng.one_in(5) {
        return bytes(rng, data, others);
    }
    if rng.one_in(6) && data.len() >= 8 {
        // header-length field
        let n = u64::from_le_bytes(data[..8].try_into().unwrap_or([0; 8]));
        let len = data.len() as u64;
        let v = match rng.below(6) {
            0 => *rng.pick(INTERESTING_U64),
            1 => n.wrapping_add(rng.range(1, 16) as u64),
            2 => n.wrapping_sub(rng.range(1, 16) as u64),
            3 => len,
            4 => len - 8,
            _ => len - 7,
        };
        data[..8].copy_from_slice(&v.to_le_bytes());
        return;
    }
    let Some((mut header, mut body)) = split_safetensors(data) else {
        return bytes(rng, data, others);
    };
    // Only tensors whose entry is an object can take field edits (indexing anything else panics).
    let names: Vec<String> = tensor_names(&header).into_iter().filter(|n| header[n].is_object()).collect();
    let name = if names.is_empty() { None } else { Some(rng.pick(&names).clone()) };
    match (rng.below(10), name) {
        (0, Some(name)) => {
            header[&name]["dtype"] = Value::String(rng.pick(DTYPES).to_string());
            if rng.one_in(2) {
                relayout(rng, &mut header, &mut body);
            }
        }
        (1, Some(name)) => {
            let shape: Vec<u64> = match rng.below(6) {
                0 => vec![],
                1 => vec![0],
                2 => vec![*rng.pick(INTERESTING_U64)],
                3 => vec![100_000, 100_000, 10],
                4 => (0..rng.range(1, 6)).map(|_| *rng.pick(INTERESTING_U64)).collect(),
                _ => (0..rng.range(1, 4)).map(|_| rng.range(0, 9) as u64).collect(),
            };
            header[&name]["shape"] = shape.into();
            if rng.one_in(2) {
                relayout(rng, &mut header, &mut body);
            }
        }
        (2, Some(name)) => {
            // a huge, self-consistent claim: 400 GB of F32
            header[&name] = serde_json::json!({
                "dtype": "F32",
                "shape": [100_000u64, 100_000u64, 10u64],
                "data_offsets": [0u64, 400_000_000_000u64],
            });
        }
        (3, Some(name)) => {
            let offs = match rng.below(5) {
                0 => vec![*rng.pick(INTERESTING_U64), *rng.pick(INTERESTING_U64)],
                1 => vec![body.len() as u64, 0],
                2 => vec![0, body.len() as u64 + 1],
                3 => vec![0],
                _ => vec![0, 0, 0],
            };
            header[&name]["data_offsets"] = offs.into();
        }
        (4, _) => {
            let v = &mut header;
            json_value(rng, v);
        }
        (5, Some(name)) => {
            // duplicate a tensor under another name (overlapping data)
            let info = header[&name].clone();
            if let Some(m) = header.as_object_mut() {
                m.insert(format!("{name}.copy"), info);
            }
        }
        (6, _) => {
            if let Some(m) = header.as_object_mut() {
                let meta = match rng.below(3) {
                    0 => serde_json::json!({"format": "pt"}),
                    1 => serde_json::json!({"format": 5}),
                    _ => serde_json::json!(["pt"]),
                };
                m.insert("__metadata__".into(), meta);
            }
        }
        (7, _) => relayout(rng, &mut header, &mut body),
        _ => {
            let mut b = body.clone();
            bytes(rng, &mut b, &[]);
            body = b;
        }
    }
    *data = join_safetensors(&header, &body, rng.below(4) != 0);
    put(data);
}
