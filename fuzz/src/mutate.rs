//! Mutations: generic byte edits, and format-aware ones for JSON, safetensors, PNG and CIFAR.

use serde_json::{Map, Number, Value};

use crate::rng::Rng;

/// Inputs never grow beyond this many bytes.
pub const MAX_INPUT: usize = 2 << 20;

/// Integers that tend to sit on boundaries (sizes, signs, overflows).
pub const INTERESTING_U64: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    15,
    16,
    31,
    32,
    63,
    64,
    127,
    128,
    255,
    256,
    1023,
    1024,
    4095,
    4096,
    16383,
    16384,
    16385,
    32767,
    32768,
    65535,
    65536,
    100_000,
    1 << 20,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    (1 << 32) + 1,
    1 << 40,
    (1 << 53) + 1,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];

/// Number literals a JSON/TOML reader has to refuse or handle: out of range, negative zero,
/// floats where integers are expected, beyond u64.
pub const EXTREME_LITERALS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "0.0",
    "0.5",
    "-0.5",
    "1.0",
    "1e2",
    "1e-400",
    "1e400",
    "-1e400",
    "1e308",
    "-1e308",
    "5e-324",
    "2.2250738585072014e-308",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "100000000000000000000000000000000000000000000000000",
    "01",
    ".5",
    "NaN",
    "Infinity",
    "-Infinity",
    "nan",
    "inf",
    "0x10",
    "\"12\"",
    "\"\"",
    "null",
    "true",
    "[]",
    "{}",
];

fn put(data: &mut Vec<u8>) {
    data.truncate(MAX_INPUT);
}

/// One generic byte-level mutation of `data`; `others` are inputs to splice from.
pub fn bytes(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
    if data.is_empty() {
        data.extend((0..rng.small_len(16)).map(|_| rng.byte()));
        return;
    }
    let len = data.len();
    match rng.below(13) {
        0 => {
            // bit flips
            for _ in 0..rng.range(1, 4) {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(len);
            data[i] = rng.byte();
        }
        2 => {
            let i = rng.below(len);
            data[i] = *rng.pick(&[
                0u8, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'"', b'{', b'[', b',', b'-', b'e',
            ]);
        }
        3 => {
            // an interesting 16/32/64-bit integer, either endianness
            let v = *rng.pick(INTERESTING_U64);
            let width = *rng.pick(&[2usize, 4, 8]);
            let b: Vec<u8> = if rng.one_in(2) {
                v.to_le_bytes()[..width].to_vec()
            } else {
                v.to_be_bytes()[8 - width..].to_vec()
            };
            let i = rng.below(len);
            for (k, byte) in b.into_iter().enumerate() {
                if let Some(slot) = data.get_mut(i + k) {
                    *slot = byte;
                }
            }
        }
        4 => {
            let i = rng.below(len);
            let delta = rng.range(1, 35) as u8;
            data[i] = if rng.one_in(2) {
                data[i].wrapping_add(delta)
            } else {
                data[i].wrapping_sub(delta)
            };
        }
        5 => {
            // insert random bytes
            let at = rng.below(len + 1);
            let n = rng.small_len(256);
            let ins: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            data.splice(at..at, ins);
        }
        6 => {
            // insert a copy of one of our own chunks
            let from = rng.below(len);
            let n = rng.small_len(len - from);
            let chunk = data[from..from + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        7 => {
            // delete a range
            let from = rng.below(len);
            let n = rng.small_len(len - from);
            data.drain(from..from + n);
        }
        8 => {
            // truncate
            data.truncate(rng.below(len));
        }
        9 if !others.is_empty() => {
            // splice: our prefix, another input's suffix
            let other = rng.pick(others);
            if !other.is_empty() {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
        }
        10 => {
            // overwrite a range with another range of ourselves
            let from = rng.below(len);
            let n = rng.small_len(len - from);
            let chunk = data[from..from + n].to_vec();
            let to = rng.below(len);
            for (k, b) in chunk.into_iter().enumerate() {
                if let Some(slot) = data.get_mut(to + k) {
                    *slot = b;
                }
            }
        }
        11 => {
            // repeat a byte many times (long runs, big numbers in text)
            let at = rng.below(len + 1);
            let b = if rng.one_in(2) {
                data[rng.below(len)]
            } else {
                rng.byte()
            };
            let n = rng.small_len(4096);
            data.splice(at..at, std::iter::repeat_n(b, n));
        }
        _ => {
            let n = rng.small_len(64);
            data.extend((0..n).map(|_| rng.byte()));
        }
    }
    put(data);
}

/// Applies 1 to 4 mutations, each chosen by `one`.
pub fn stacked(
    rng: &mut Rng,
    data: &mut Vec<u8>,
    others: &[Vec<u8>],
    one: fn(&mut Rng, &mut Vec<u8>, &[Vec<u8>]),
) {
    let n = match rng.below(8) {
        0..=3 => 1,
        4..=5 => 2,
        6 => 3,
        _ => 4,
    };
    for _ in 0..n {
        one(rng, data, others);
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

/// Field names the JSON readers know (so that mutations reach their value checks).
pub const KNOWN_KEYS: &[&str] = &[
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "layer_norm_eps",
    "image_size",
    "patch_size",
    "num_channels",
    "qkv_bias",
    "encoder_stride",
    "pooler_output_size",
    "pooler_act",
    "id2label",
    "label2id",
    "num_labels",
    "problem_type",
    "architectures",
    "model_type",
    "torch_dtype",
    "dtype",
    "do_resize",
    "size",
    "height",
    "width",
    "shortest_edge",
    "resample",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "weight_map",
    "metadata",
    "total_size",
    "__metadata__",
    "shape",
    "data_offsets",
];

/// Strings the readers match on (activations, problem types, dtypes, file names).
const KNOWN_STRINGS: &[&str] = &[
    "",
    "vit",
    "gelu",
    "gelu_new",
    "gelu_pytorch_tanh",
    "relu",
    "tanh",
    "silu",
    "swish",
    "quick_gelu",
    "regression",
    "single_label_classification",
    "multi_label_classification",
    "float32",
    "F32",
    "F16",
    "BF16",
    "F64",
    "I64",
    "I32",
    "U8",
    "BOOL",
    "model.safetensors",
    "model-00001-of-00002.safetensors",
    "..",
    ".",
    "../x",
    "a/b",
    "a\\b",
    "\u{0}",
    "é",
    "LABEL_0",
];

fn interesting_value(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2..=4 => Value::Number(Number::from(*rng.pick(INTERESTING_U64))),
        5 => Value::Number(Number::from(
            -(rng.pick(INTERESTING_U64).min(&(i64::MAX as u64)).to_owned() as i64),
        )),
        6 => Number::from_f64(*rng.pick(&[
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            0.999_999,
            1.0,
            1e-300,
            5e-324,
            1e300,
            -1e300,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            1e-12,
            (1u64 << 53) as f64,
            1.8446744073709552e19,
        ]))
        .map_or(Value::Null, Value::Number),
        7 => Value::String(rng.pick(KNOWN_STRINGS).to_string()),
        8 => Value::String("x".repeat(rng.small_len(5000))),
        9 => Value::Array(
            (0..rng.small_len(8))
                .map(|_| Value::Number(Number::from(rng.below(300))))
                .collect(),
        ),
        10 => {
            let mut m = Map::new();
            for _ in 0..rng.range(0, 3) {
                m.insert(
                    rng.pick(KNOWN_KEYS).to_string(),
                    Value::Number(Number::from(rng.below(300))),
                );
            }
            Value::Object(m)
        }
        _ => {
            // deep nesting (serde_json stops at 128 levels)
            let mut v = Value::Null;
            for _ in 0..rng.range(1, 200) {
                v = Value::Array(vec![v]);
            }
            v
        }
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn collect_pointers(v: &Value, here: String, out: &mut Vec<String>) {
    if out.len() > 4096 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                collect_pointers(child, format!("{here}/{}", escape_pointer(k)), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                collect_pointers(child, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(here);
}

/// One structural mutation somewhere in `root`.
pub fn json_value(rng: &mut Rng, root: &mut Value) {
    let mut pointers = Vec::new();
    collect_pointers(root, String::new(), &mut pointers);
    let pointer = rng.pick(&pointers).clone();
    let Some(node) = root.pointer_mut(&pointer) else {
        return;
    };
    match rng.below(10) {
        0..=2 => *node = interesting_value(rng),
        3 => {
            // type swap, keeping the content where there is an obvious way
            *node = match node.take() {
                Value::Number(n) => {
                    if rng.one_in(2) {
                        Value::String(n.to_string())
                    } else {
                        Value::Array(vec![Value::Number(n)])
                    }
                }
                Value::String(s) => s
                    .parse::<u64>()
                    .map(|n| Value::Number(n.into()))
                    .unwrap_or_else(|_| {
                        if rng.one_in(2) {
                            Value::Array(vec![Value::String(s)])
                        } else {
                            Value::Bool(true)
                        }
                    }),
                Value::Bool(b) => Value::Number((b as u64).into()),
                Value::Array(a) => Value::Object(
                    a.into_iter()
                        .enumerate()
                        .map(|(i, v)| (i.to_string(), v))
                        .collect(),
                ),
                Value::Object(m) => {
                    if rng.one_in(2) {
                        Value::Array(m.into_iter().map(|(_, v)| v).collect())
                    } else {
                        Value::Array(m.into_iter().map(|(k, _)| Value::String(k)).collect())
                    }
                }
                Value::Null => Value::Object(Map::new()),
            }
        }
        4 => {
            if let Value::Number(n) = node {
                let x = n.as_f64().unwrap_or(0.0);
                let y = match rng.below(6) {
                    0 => -x,
                    1 => x + 1.0,
                    2 => x - 1.0,
                    3 => x * 1e10,
                    4 => x + 0.5,
                    _ => x * (rng.range(2, 1 << 20) as f64),
                };
                *node = if y.fract() == 0.0 && y.abs() < 1.8e19 {
                    if y >= 0.0 {
                        Value::Number((y as u64).into())
                    } else {
                        Value::Number((y as i64).into())
                    }
                } else {
                    Number::from_f64(y).map_or(Value::Null, Value::Number)
                };
            } else {
                *node = interesting_value(rng);
            }
        }
        5 => match node {
            Value::Object(m) if !m.is_empty() => {
                let k = m
                    .keys()
                    .nth(rng.below(m.len()))
                    .cloned()
                    .unwrap_or_default();
                m.remove(&k);
            }
            Value::Array(a) if !a.is_empty() => {
                a.remove(rng.below(a.len()));
            }
            _ => *node = Value::Null,
        },
        6 => match node {
            Value::Object(m) => {
                m.insert(rng.pick(KNOWN_KEYS).to_string(), interesting_value(rng));
            }
            Value::Array(a) => {
                let v = if a.is_empty() || rng.one_in(2) {
                    interesting_value(rng)
                } else {
                    a[rng.below(a.len())].clone()
                };
                let n = if rng.one_in(8) {
                    rng.small_len(2000)
                } else {
                    1
                };
                for _ in 0..n {
                    a.push(v.clone());
                }
            }
            _ => *node = interesting_value(rng),
        },
        7 => {
            // rename a key (typos, empty key, a key of another reader)
            if let Value::Object(m) = node
                && !m.is_empty()
            {
                let k = m
                    .keys()
                    .nth(rng.below(m.len()))
                    .cloned()
                    .unwrap_or_default();
                if let Some(v) = m.remove(&k) {
                    let new = match rng.below(3) {
                        0 => rng.pick(KNOWN_KEYS).to_string(),
                        1 => format!("{k}_"),
                        _ => String::new(),
                    };
                    m.insert(new, v);
                }
            }
        }
        8 => {
            // integer-keyed maps (id2label): out-of-range / non-numeric / huge indices
            if let Value::Object(m) = node {
                let key = match rng.below(4) {
                    0 => rng.pick(INTERESTING_U64).to_string(),
                    1 => "-1".into(),
                    2 => "x".into(),
                    _ => "18446744073709551616".into(),
                };
                m.insert(key, Value::String("L".into()));
            } else {
                *node = Value::Array(vec![]);
            }
        }
        _ => {
            // a top-level known key with an interesting value
            if let Value::Object(m) = root {
                m.insert(rng.pick(KNOWN_KEYS).to_string(), interesting_value(rng));
            }
        }
    }
}

/// Replaces a number (or `true`/`false`/`null`) in the text with an extreme literal.
pub fn json_literal(rng: &mut Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = (0..data.len())
        .filter(|&i| {
            let c = data[i];
            let prev = if i == 0 { b' ' } else { data[i - 1] };
            (c.is_ascii_digit() || c == b'-' || c == b't' || c == b'f' || c == b'n')
                && !(prev.is_ascii_alphanumeric()
                    || prev == b'.'
                    || prev == b'-'
                    || prev == b'_'
                    || prev == b'"')
        })
        .collect();
    if starts.is_empty() {
        return;
    }
    let at = *rng.pick(&starts);
    let end = at
        + data[at..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+')))
            .unwrap_or(data.len() - at);
    let lit = rng.pick(EXTREME_LITERALS).as_bytes().to_vec();
    data.splice(at..end, lit);
}

/// A mutation of JSON text: structural when it parses, else literal or byte-level.
pub fn json(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
    match rng.below(10) {
        0..=5 => {
            if let Ok(mut v) = serde_json::from_slice::<Value>(data) {
                json_value(rng, &mut v);
                let text = if rng.one_in(2) {
                    serde_json::to_vec_pretty(&v)
                } else {
                    serde_json::to_vec(&v)
                };
                if let Ok(text) = text {
                    *data = text;
                    put(data);
                    return;
                }
            }
            bytes(rng, data, others)
        }
        6..=7 => json_literal(rng, data),
        _ => bytes(rng, data, others),
    }
}

// ---------------------------------------------------------------------------------------------
// safetensors

const DTYPES: &[&str] = &[
    "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL",
    "F8_E4M3", "F8_E5M2", "F8_E8M0", "E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64", "f32", "X",
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
    header
        .as_object()
        .map(|m| m.keys().filter(|k| *k != "__metadata__").cloned().collect())
        .unwrap_or_default()
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
        let Some(dtype) = info
            .get("dtype")
            .and_then(Value::as_str)
            .and_then(dtype_size)
        else {
            continue;
        };
        let Some(shape) = info.get("shape").and_then(Value::as_array) else {
            continue;
        };
        let Some(count) = shape.iter().try_fold(1usize, |acc, d| {
            d.as_u64().and_then(|d| acc.checked_mul(d as usize))
        }) else {
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
            let from_old =
                old.and_then(|(s, _)| body.get(usize::try_from(s).ok()?.checked_add(i)?).copied());
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
    let names: Vec<String> = tensor_names(&header)
        .into_iter()
        .filter(|n| header[n].is_object())
        .collect();
    let name = if names.is_empty() {
        None
    } else {
        Some(rng.pick(&names).clone())
    };
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
                4 => (0..rng.range(1, 6))
                    .map(|_| *rng.pick(INTERESTING_U64))
                    .collect(),
                _ => (0..rng.range(1, 4))
                    .map(|_| rng.range(0, 9) as u64)
                    .collect(),
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

// ---------------------------------------------------------------------------------------------
// Images

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// CRC-32 (ISO-HDLC), as PNG chunks use.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The (offset, length) of each chunk of a PNG, up to the first malformed one.
fn png_chunks(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = PNG_SIGNATURE.len();
    while at + 12 <= data.len() {
        let len = u32::from_be_bytes(data[at..at + 4].try_into().unwrap_or([0; 4])) as usize;
        if at + 12 + len > data.len() {
            break;
        }
        out.push((at, len));
        at += 12 + len;
    }
    out
}

fn fix_crc(data: &mut [u8], at: usize, len: usize) {
    let crc = crc32(&data[at + 4..at + 8 + len]);
    data[at + 8 + len..at + 12 + len].copy_from_slice(&crc.to_be_bytes());
}

/// Dimensions a header might claim.
fn claimed_dimension(rng: &mut Rng) -> u32 {
    *rng.pick(&[
        0u32,
        1,
        2,
        3,
        7,
        32,
        255,
        256,
        4096,
        16383,
        16384,
        16385,
        65535,
        65536,
        100_000,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX,
    ])
}

/// A mutation of an image file: PNG chunk-aware (IHDR width/height/depth/colour type, chunk
/// lengths, CRCs fixed or not), header-field integers for the other formats, or bytes.
pub fn image(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
    if data.starts_with(PNG_SIGNATURE) && rng.below(3) != 0 {
        let chunks = png_chunks(data);
        if chunks.is_empty() {
            return bytes(rng, data, others);
        }
        let fix = rng.below(5) != 0;
        let (at, len) = if rng.one_in(2) {
            chunks[0]
        } else {
            *rng.pick(&chunks)
        };
        match rng.below(7) {
            0 | 1 if &data[at + 4..at + 8] == b"IHDR" && len >= 13 => {
                // width and height: 100000x100000, 0x0, u32::MAX...
                let w = claimed_dimension(rng);
                let h = if rng.one_in(2) {
                    w
                } else {
                    claimed_dimension(rng)
                };
                if rng.below(3) != 0 {
                    data[at + 8..at + 12].copy_from_slice(&w.to_be_bytes());
                }
                if rng.below(3) != 0 {
                    data[at + 12..at + 16].copy_from_slice(&h.to_be_bytes());
                }
            }
            2 if &data[at + 4..at + 8] == b"IHDR" && len >= 13 => {
                // bit depth, colour type, compression, filter, interlace
                let field = at + 16 + rng.below(5);
                data[field] = *rng.pick(&[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 16, 255]);
            }
            3 => {
                // chunk length field
                let v = match rng.below(3) {
                    0 => claimed_dimension(rng),
                    1 => (len as u32).wrapping_add(rng.range(1, 8) as u32),
                    _ => (len as u32).wrapping_sub(rng.range(1, 8) as u32),
                };
                data[at..at + 4].copy_from_slice(&v.to_be_bytes());
                return;
            }
            4 => {
                // insert a chunk of a type the decoder interprets
                let kind = *rng.pick(&[
                    &b"tRNS"[..],
                    b"PLTE",
                    b"acTL",
                    b"fcTL",
                    b"fdAT",
                    b"iCCP",
                    b"zTXt",
                    b"gAMA",
                    b"sBIT",
                    b"cICP",
                    b"IDAT",
                    b"IEND",
                    b"eXIf",
                ]);
                let n = rng.small_len(64);
                let mut chunk = (n as u32).to_be_bytes().to_vec();
                chunk.extend_from_slice(kind);
                chunk.extend((0..n).map(|_| rng.byte()));
                let crc = crc32(&chunk[4..]);
                chunk.extend_from_slice(&crc.to_be_bytes());
                let (after, after_len) = *rng.pick(&chunks);
                let pos = after + 12 + after_len;
                data.splice(pos..pos, chunk);
                return;
            }
            5 => {
                // remove or duplicate a chunk
                let chunk = data[at..at + 12 + len].to_vec();
                if rng.one_in(2) {
                    data.drain(at..at + 12 + len);
                } else {
                    data.splice(at..at, chunk);
                }
                return;
            }
            _ => {
                if len > 0 {
                    for _ in 0..rng.range(1, 4) {
                        let i = at + 8 + rng.below(len);
                        data[i] = if rng.one_in(2) {
                            rng.byte()
                        } else {
                            data[i] ^ (1 << rng.below(8))
                        };
                    }
                }
            }
        }
        if fix {
            fix_crc(data, at, len);
        }
        return;
    }
    if rng.one_in(3) && data.len() > 4 {
        // an integer field in the first 64 bytes (where most formats keep their dimensions)
        let v = claimed_dimension(rng) as u64;
        let width = *rng.pick(&[2usize, 4]);
        let i = rng.below(data.len().min(64));
        let b: Vec<u8> = if rng.one_in(2) {
            v.to_le_bytes()[..width].to_vec()
        } else {
            v.to_be_bytes()[8 - width..].to_vec()
        };
        for (k, byte) in b.into_iter().enumerate() {
            if let Some(slot) = data.get_mut(i + k) {
                *slot = byte;
            }
        }
        return;
    }
    bytes(rng, data, others)
}

// ---------------------------------------------------------------------------------------------
// CIFAR records (first byte: the dataset kind; then the records)

/// A mutation of a CIFAR input: label bytes at record starts, lengths off by a little or by
/// whole records, the kind byte, or bytes.
pub fn cifar(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
    if data.is_empty() {
        return bytes(rng, data, others);
    }
    let record = if data[0].is_multiple_of(3) {
        3073
    } else {
        3074
    };
    let n = (data.len() - 1) / record;
    match rng.below(6) {
        0 if n > 0 => {
            let r = rng.below(n);
            let b = 1 + r * record + rng.below(2);
            if b < data.len() {
                data[b] = *rng.pick(&[0u8, 9, 10, 19, 20, 99, 100, 255]);
            }
        }
        1 => {
            let delta = rng.range(1, 3);
            if rng.one_in(2) {
                data.extend(std::iter::repeat_n(0, delta));
            } else {
                data.truncate(data.len().saturating_sub(delta).max(1));
            }
        }
        2 => {
            if rng.one_in(2) && n > 0 {
                let r = rng.below(n);
                let rec = data[1 + r * record..1 + (r + 1) * record].to_vec();
                data.extend_from_slice(&rec);
            } else {
                data.truncate(1 + record * rng.below(n + 1));
            }
        }
        3 => data[0] = rng.byte(),
        _ => bytes(rng, data, others),
    }
    put(data);
}
