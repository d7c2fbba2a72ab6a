//! Run-config TOML mutations: values of other types and ranges, known keys and section headers,
//! line deletions/duplications, byte edits, and `--set` overrides.
//!
//! An input is the config text followed by its overrides, one per trailing line:
//! `#--set section.key=value` (a value spanning lines continues on `#--set+ ` lines). To TOML
//! those lines are comments, so an input is also a config file that `vit-train` reads alone.

use super::bytes::{EXTREME_LITERALS, bytes, put};
use crate::rng::Rng;

/// Starts a trailing override line.
pub const SET_LINE: &str = "#--set ";
/// Continues the previous override on a new line (its value holds a newline).
pub const SET_MORE: &str = "#--set+ ";

/// Most overrides a mutation leaves.
const MAX_SETS: usize = 8;

/// Values of every TOML type, out-of-range and non-finite numbers, and the config's own strings.
const LITERALS: &[&str] = &[
    "0",
    "-1",
    "1",
    "1.5",
    "-0.0",
    "1e999",
    "-1e999",
    "nan",
    "inf",
    "-inf",
    "+inf",
    "0x10",
    "0o7",
    "0b1",
    "1_000",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551616",
    "1e-400",
    "\"x\"",
    "\"\"",
    "'lit'",
    "'''multi\nline'''",
    "\"\\u0000\"",
    "true",
    "false",
    "[]",
    "{}",
    "[1, \"a\"]",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "\"vit-tiny\"",
    "\"simmim\"",
    "\"cifar100\"",
    "\"imagefolder\"",
    "\"cosine\"",
    "\"none\"",
    "\"imagenet\"",
    "\"bicubic\"",
    "0.999999",
    "1.0",
];

/// Keys of the run config's sections (and the empty key).
pub const RUN_CONFIG_KEYS: &[&str] = &[
    "task",
    "pretrained",
    "preset",
    "image_size",
    "patch_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "qkv_bias",
    "encoder_stride",
    "num_labels",
    "ignore_mismatched_sizes",
    "interpolate_pos_encoding",
    "dataset",
    "path",
    "validation_dir",
    "download",
    "augmentation",
    "validation_split",
    "batch_size",
    "eval_batch_size",
    "workers",
    "normalize",
    "resample",
    "mask_patch_size",
    "mask_ratio",
    "skip_corrupt",
    "lr",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "max_grad_norm",
    "grad_accumulation",
    "warmup_steps",
    "warmup_ratio",
    "schedule",
    "label_smoothing",
    "layer_decay",
    "epochs",
    "max_steps",
    "eval_every",
    "seed",
    "keep_last",
    "early_stopping_patience",
    "output_dir",
    "device",
    "log_every",
    "sample_every",
    "",
];

/// Section names: the config's own, the empty one, a key used as a section, a nested one.
pub const SECTIONS: &[&str] = &["model", "data", "optimizer", "run", "", "task", "model.sub", "x"];

/// Bytes the byte edits insert: TOML's punctuation.
const PUNCTUATION: &[u8] = b"=[]{}\"'.,#\n\\";

/// Splits an input into the config text and its `--set` overrides (the trailing
/// [`SET_LINE`]/[`SET_MORE`] lines; a [`SET_MORE`] line with no override before it stays text).
pub fn split_toml(input: &str) -> (String, Vec<String>) {
    let lines: Vec<&str> = input.split('\n').collect();
    let is_set = |l: &str| l.starts_with(SET_LINE) || l.starts_with(SET_MORE);
    let mut end = lines.len();
    // The newline that ends the last override line.
    if end >= 2 && lines[end - 1].is_empty() && is_set(lines[end - 2]) {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && is_set(lines[start - 1]) {
        start -= 1;
    }
    while start < end && lines[start].starts_with(SET_MORE) {
        start += 1;
    }
    if start == end {
        return (input.to_string(), Vec::new());
    }
    let mut sets: Vec<String> = Vec::new();
    for line in &lines[start..end] {
        match (line.strip_prefix(SET_MORE), sets.last_mut()) {
            (Some(more), Some(last)) => {
                last.push('\n');
                last.push_str(more);
            }
            _ => sets.push(line[SET_LINE.len()..].to_string()),
        }
    }
    (lines[..start].join("\n"), sets)
}

/// The input for a config text and its overrides (the inverse of [`split_toml`]).
pub fn join_toml(text: &str, sets: &[String]) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !sets.is_empty() {
        out.push('\n');
    }
    for set in sets {
        for (i, line) in set.split('\n').enumerate() {
            out.push_str(if i == 0 { SET_LINE } else { SET_MORE });
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn literal(rng: &mut Rng) -> &'static str {
    let literals = if rng.one_in(4) { EXTREME_LITERALS } else { LITERALS };
    rng.pick::<&str>(literals)
}

/// One `--set` argument: a known key with a value, a bare value (no `=`), or a dotted path.
fn override_item(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 => format!("{}={}", rng.pick(RUN_CONFIG_KEYS), literal(rng)),
        1 => literal(rng).to_string(),
        2 => format!(
            "{}.{}.{}={}",
            rng.pick(SECTIONS),
            rng.pick(RUN_CONFIG_KEYS),
            rng.pick(RUN_CONFIG_KEYS),
            literal(rng)
        ),
        _ => format!("{}.{}={}", rng.pick(SECTIONS), rng.pick(RUN_CONFIG_KEYS), literal(rng)),
    }
}

/// A mutation of the overrides: a fresh set of 0 to 2, one more, one fewer, or another value.
fn mutate_overrides(rng: &mut Rng, sets: &mut Vec<String>) {
    match rng.below(4) {
        0 => *sets = (0..rng.below(3)).map(|_| override_item(rng)).collect(),
        1 if sets.len() < MAX_SETS => sets.push(override_item(rng)),
        2 if !sets.is_empty() => {
            sets.remove(rng.below(sets.len()));
        }
        _ => {
            if sets.is_empty() {
                sets.push(override_item(rng));
            } else {
                let i = rng.below(sets.len());
                let path = sets[i].split('=').next().unwrap_or_default().to_string();
                sets[i] = format!("{path}={}", literal(rng));
            }
        }
    }
}

/// A mutation of the lines: a value swap, a line deleted/duplicated, a `key = value` line or a
/// section header inserted.
fn mutate_lines(rng: &mut Rng, text: &mut String) {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match rng.below(7) {
        0..=2 => {
            // a value of another type / range
            let with_value: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains('=')).collect();
            if !with_value.is_empty() {
                let i = *rng.pick(&with_value);
                let key = lines[i].split('=').next().unwrap_or_default().to_string();
                lines[i] = format!("{key}= {}", literal(rng));
            }
        }
        3 if !lines.is_empty() => {
            lines.remove(rng.below(lines.len()));
        }
        4 if !lines.is_empty() => {
            let line = lines[rng.below(lines.len())].clone();
            let at = rng.below(lines.len() + 1);
            lines.insert(at, line);
        }
        5 => {
            let at = rng.below(lines.len() + 1);
            lines.insert(at, format!("{} = {}", rng.pick(RUN_CONFIG_KEYS), literal(rng)));
        }
        _ => {
            let at = rng.below(lines.len() + 1);
            let section = rng.pick(SECTIONS);
            lines.insert(at, if rng.one_in(4) { format!("[[{section}]]") } else { format!("[{section}]") });
        }
    }
    *text = lines.join("\n");
}

/// A byte edit of the text: a bit flip, a punctuation byte inserted, a byte deleted, or a
/// truncation (kept valid UTF-8 by a lossy conversion).
fn mutate_text_bytes(rng: &mut Rng, text: &mut String) {
    let mut b = std::mem::take(text).into_bytes();
    if !b.is_empty() {
        let i = rng.below(b.len());
        match rng.below(4) {
            0 => b[i] ^= 1 << rng.below(8),
            1 => b.insert(i, *rng.pick(PUNCTUATION)),
            2 => {
                b.remove(i);
            }
            _ => b.truncate(i),
        }
    }
    *text = String::from_utf8_lossy(&b).into_owned();
}

/// A mutation of a run-config input (text and trailing `#--set` lines).
pub fn toml(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
    if rng.one_in(12) {
        // Generic byte edits of the whole input (overrides included), splices from the corpus.
        return bytes(rng, data, others);
    }
    let (mut text, mut sets) = split_toml(&String::from_utf8_lossy(data));
    match rng.below(11) {
        0..=6 => mutate_lines(rng, &mut text),
        7..=8 => mutate_overrides(rng, &mut sets),
        _ => mutate_text_bytes(rng, &mut text),
    }
    *data = join_toml(&text, &sets).into_bytes();
    put(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_round_trip() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("a = 1\n", &[]),
            ("a = 1", &["run.epochs=2"]),
            ("a = 1\n", &["run.epochs=2"]),
            ("\n", &["a"]),
            ("a = 1\n", &["x", "data.path='''multi\nline'''", "k=\"\""]),
            ("[model]\n#--set+ kept as text\n", &["model.preset=vit-tiny"]),
        ];
        for (text, sets) in cases {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let input = join_toml(text, &sets);
            let (back_text, back_sets) = split_toml(&input);
            assert_eq!((back_text.as_str(), back_sets), (*text, sets), "{input:?}");
        }
    }

    #[test]
    fn only_trailing_set_lines_are_overrides() {
        let (text, sets) = split_toml("#--set a=1\nb = 2\n#--set+ x\n#--set c=3\n#--set+ d\n");
        assert_eq!(text, "#--set a=1\nb = 2\n#--set+ x");
        assert_eq!(sets, ["c=3\nd"]);
    }

    #[test]
    fn mutations_keep_the_encoding() {
        let mut rng = Rng::new(7);
        let seed = join_toml("task = \"classification\"\n[model]\npreset = \"vit-tiny\"\n", &["run.epochs=1".into()]);
        let mut data = seed.clone().into_bytes();
        for _ in 0..2000 {
            toml(&mut rng, &mut data, std::slice::from_ref(&seed.clone().into_bytes()));
            let (text, sets) = split_toml(&String::from_utf8_lossy(&data));
            let again = join_toml(&text, &sets);
            assert_eq!(split_toml(&again), (text, sets));
            if rng.one_in(50) {
                data = seed.clone().into_bytes();
            }
        }
    }
}
