//! JSON mutations: structural edits of the parsed value (type swaps, extreme numbers, known keys
//! and strings) and literal swaps in the text.

use serde_json::{Map, Number, Value};

use super::bytes::{EXTREME_LITERALS, INTERESTING_U64, bytes, put};
use crate::rng::Rng;

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
        5 => Value::Number(Number::from(-(rng.pick(INTERESTING_U64).min(&(i64::MAX as u64)).to_owned() as i64))),
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
        9 => Value::Array((0..rng.small_len(8)).map(|_| Value::Number(Number::from(rng.below(300)))).collect()),
        10 => {
            let mut m = Map::new();
            for _ in 0..rng.range(0, 3) {
                m.insert(rng.pick(KNOWN_KEYS).to_string(), Value::Number(Number::from(rng.below(300))));
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
                Value::String(s) => s.parse::<u64>().map(|n| Value::Number(n.into())).unwrap_or_else(|_| {
                    if rng.one_in(2) { Value::Array(vec![Value::String(s)]) } else { Value::Bool(true) }
                }),
                Value::Bool(b) => Value::Number((b as u64).into()),
                Value::Array(a) => Value::Object(a.into_iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect()),
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
                    if y >= 0.0 { Value::Number((y as u64).into()) } else { Value::Number((y as i64).into()) }
                } else {
                    Number::from_f64(y).map_or(Value::Null, Value::Number)
                };
            } else {
                *node = interesting_value(rng);
            }
        }
        5 => match node {
            Value::Object(m) if !m.is_empty() => {
                let k = m.keys().nth(rng.below(m.len())).cloned().unwrap_or_default();
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
                let v =
                    if a.is_empty() || rng.one_in(2) { interesting_value(rng) } else { a[rng.below(a.len())].clone() };
                let n = if rng.one_in(8) { rng.small_len(2000) } else { 1 };
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
                let k = m.keys().nth(rng.below(m.len())).cloned().unwrap_or_default();
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
                && !(prev.is_ascii_alphanumeric() || prev == b'.' || prev == b'-' || prev == b'_' || prev == b'"')
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
                let text = if rng.one_in(2) { serde_json::to_vec_pretty(&v) } else { serde_json::to_vec(&v) };
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
