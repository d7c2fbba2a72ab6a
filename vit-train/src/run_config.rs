//! The run configuration: one TOML file (plus `--set section.key=value` overrides), validated
//! with errors that name the field and suggest the right spelling.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// What a run trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Supervised image classification (`ViTForImageClassification`).
    Classification,
    /// SimMIM masked-image-modelling pretraining (`ViTForMaskedImageModeling`).
    Simmim,
}

/// A whole run: task, model, data, optimizer and run settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// `classification` or `simmim`.
    pub task: Task,
    /// Where the model comes from.
    pub model: ModelSection,
    /// The dataset and its preprocessing.
    pub data: DataSection,
    /// AdamW, schedule, clipping.
    #[serde(default)]
    pub optimizer: OptimizerSection,
    /// Length, checkpoints, output.
    #[serde(default)]
    pub run: RunSection,
}

/// `[model]`: an HF model directory to start from, or an architecture.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// An HF model directory (`config.json` + `model.safetensors`) to fine-tune.
    pub pretrained: Option<PathBuf>,
    /// An architecture to train from scratch: `vit-tiny`, `vit-small`, `vit-base`, `vit-large`.
    pub preset: Option<String>,
    /// Image side the model is made for (default: the preset's 224, or the data's image size).
    pub image_size: Option<usize>,
    /// Patch side (default 16).
    pub patch_size: Option<usize>,
    /// Overrides of the preset's width.
    pub hidden_size: Option<usize>,
    /// Overrides of the preset's depth.
    pub num_hidden_layers: Option<usize>,
    /// Overrides of the preset's heads.
    pub num_attention_heads: Option<usize>,
    /// Overrides of the preset's MLP width.
    pub intermediate_size: Option<usize>,
    /// Overrides of the preset's activation.
    pub hidden_act: Option<String>,
    /// Dropout after embeddings and dense outputs.
    pub hidden_dropout_prob: Option<f64>,
    /// Dropout on attention probabilities.
    pub attention_probs_dropout_prob: Option<f64>,
    /// Whether q, k, v have biases.
    pub qkv_bias: Option<bool>,
    /// Initialisation std.
    pub initializer_range: Option<f64>,
    /// LayerNorm epsilon.
    pub layer_norm_eps: Option<f64>,
    /// SimMIM decoder stride (default: the patch size).
    pub encoder_stride: Option<usize>,
    /// Number of labels (default: the dataset's classes).
    pub num_labels: Option<usize>,
    /// Re-initialise checkpoint weights whose shapes differ (e.g. another number of classes).
    #[serde(default)]
    pub ignore_mismatched_sizes: bool,
    /// Resize position embeddings when the data's image size differs from the model's.
    #[serde(default)]
    pub interpolate_pos_encoding: bool,
}

/// `[data]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// `cifar10`, `cifar100` or `imagefolder`.
    pub dataset: String,
    /// CIFAR: the directory holding (or to receive) the binary release. ImageFolder: the root
    /// with one sub-directory per class (split by `validation_split` unless `validation_dir`).
    pub path: PathBuf,
    /// ImageFolder: a separate validation root with the same classes.
    pub validation_dir: Option<PathBuf>,
    /// CIFAR: download the official archive when absent.
    #[serde(default)]
    pub download: bool,
    /// Side of the images fed to the model.
    pub image_size: usize,
    /// Training augmentation: `none`, `random-resized-crop` (RandomResizedCrop + flip, HF's
    /// run_image_classification), `pad-crop-flip` (pad 4 + random crop + flip, for small images).
    #[serde(default = "default_augmentation")]
    pub augmentation: String,
    /// Share of an ImageFolder root held out for validation (HF's default 0.15).
    #[serde(default = "default_validation_split")]
    pub validation_split: f64,
    /// Images per optimizer micro-batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Images per evaluation batch (default: `batch_size`).
    pub eval_batch_size: Option<usize>,
    /// Threads decoding and augmenting (0: all cores).
    #[serde(default)]
    pub workers: usize,
    /// Normalisation: `half` (mean = std = 0.5, HF's default) or `imagenet`.
    #[serde(default = "default_normalize")]
    pub normalize: String,
    /// Resampling filter: `bilinear` (default), `bicubic`, `nearest`.
    #[serde(default = "default_resample")]
    pub resample: String,
    /// SimMIM: side of a masked cell in pixels (run_mim.py default 32).
    #[serde(default = "default_mask_patch_size")]
    pub mask_patch_size: usize,
    /// SimMIM: share of cells masked (run_mim.py default 0.6).
    #[serde(default = "default_mask_ratio")]
    pub mask_ratio: f64,
    /// ImageFolder: skip unreadable images with a warning instead of stopping.
    #[serde(default)]
    pub skip_corrupt: bool,
}

/// `[optimizer]`: AdamW as HF's Trainer sets it up.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerSection {
    /// Peak learning rate.
    pub lr: f64,
    /// Adam beta1.
    pub beta1: f64,
    /// Adam beta2.
    pub beta2: f64,
    /// Adam epsilon.
    pub eps: f64,
    /// Decoupled weight decay (not applied to biases, LayerNorm, position and CLS embeddings).
    pub weight_decay: f64,
    /// Clip gradients by their global norm over all parameters (0 = no clipping).
    pub max_grad_norm: f64,
    /// Micro-batches per optimizer step.
    pub grad_accumulation: usize,
    /// Warmup steps (overrides `warmup_ratio` when set).
    pub warmup_steps: Option<usize>,
    /// Warmup as a share of all steps.
    pub warmup_ratio: f64,
    /// After warmup: `cosine`, `linear` or `constant`.
    pub schedule: String,
    /// Label smoothing of the classification loss.
    pub label_smoothing: f64,
    /// Layer-wise lr decay for fine-tuning (1 = none): layer i gets lr · decay^(L − i).
    pub layer_decay: f64,
}

impl Default for OptimizerSection {
    fn default() -> Self {
        Self {
            lr: 5e-5,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            grad_accumulation: 1,
            warmup_steps: None,
            warmup_ratio: 0.0,
            schedule: "linear".into(),
            label_smoothing: 0.0,
            layer_decay: 1.0,
        }
    }
}

/// `[run]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Passes over the training data.
    pub epochs: usize,
    /// Train exactly this many optimizer steps (overrides `epochs`).
    pub max_steps: Option<usize>,
    /// Validate and checkpoint every N optimizer steps (and after the last); unset: at the end
    /// of every epoch.
    pub eval_every: Option<usize>,
    /// Seed of initialisation, data order, augmentation, masks and dropout.
    pub seed: u64,
    /// Checkpoints kept besides the best (a checkpoint per evaluation).
    pub keep_last: usize,
    /// Stop when the validation loss has not improved for this many evaluations.
    pub early_stopping_patience: Option<usize>,
    /// Where the run writes everything.
    pub output_dir: PathBuf,
    /// `cpu`, `cuda:0`, `wgpu`, `wgpu:discrete:0`, `vulkan:0`, ...
    pub device: String,
    /// Data-parallel training on several devices (burn-train's multi-device strategy), e.g.
    /// `["cuda:0", "cuda:1"]`; empty: `device` alone.
    pub devices: Vec<String>,
    /// A metrics.csv row (and, when not on a terminal, a log line) every N optimizer steps.
    pub log_every: usize,
    /// SimMIM: write a reconstruction grid (samples/step-N.png) every N micro-batches (0: never).
    pub sample_every: usize,
}

impl Default for RunSection {
    fn default() -> Self {
        Self {
            epochs: 3,
            max_steps: None,
            eval_every: None,
            seed: 42,
            keep_last: 2,
            early_stopping_patience: None,
            output_dir: PathBuf::from("runs/default"),
            device: "cpu".into(),
            devices: Vec::new(),
            log_every: 50,
            sample_every: 500,
        }
    }
}

fn default_augmentation() -> String {
    "random-resized-crop".into()
}
fn default_validation_split() -> f64 {
    0.15
}
fn default_batch_size() -> usize {
    64
}
fn default_normalize() -> String {
    "half".into()
}
fn default_resample() -> String {
    "bilinear".into()
}
fn default_mask_patch_size() -> usize {
    32
}
fn default_mask_ratio() -> f64 {
    0.6
}

impl RunConfig {
    /// Reads `path`, applies `overrides` (`section.key=value`, the value in TOML syntax or a bare
    /// string) and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        Self::parse(&text, overrides).with_context(|| format!("in {}", path.display()))
    }

    /// Parses a config text with overrides.
    pub fn parse(text: &str, overrides: &[String]) -> Result<Self> {
        let mut value: toml::Table = text.parse().map_err(|e: toml::de::Error| anyhow::anyhow!("{e}"))?;
        for item in overrides {
            apply_override(&mut value, item)?;
        }
        let config: RunConfig = RunConfig::deserialize(value).map_err(|e| explain(&e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that TOML types alone cannot.
    pub fn validate(&self) -> Result<()> {
        let d = &self.data;
        match d.dataset.as_str() {
            "cifar10" | "cifar100" | "imagefolder" => {}
            other => bail!("data.dataset: unknown dataset \"{other}\"; expected cifar10, cifar100 or imagefolder"),
        }
        if d.image_size == 0 || d.image_size > 16384 {
            bail!("data.image_size: must be between 1 and 16384, got {}", d.image_size);
        }
        if d.batch_size == 0 {
            bail!("data.batch_size: must be at least 1");
        }
        if !(0.0..1.0).contains(&d.validation_split) {
            bail!("data.validation_split: must be in [0, 1), got {}", d.validation_split);
        }
        match d.augmentation.as_str() {
            "none" | "random-resized-crop" | "pad-crop-flip" => {}
            other => bail!(
                "data.augmentation: unknown \"{other}\"; expected none, random-resized-crop or pad-crop-flip"
            ),
        }
        match d.normalize.as_str() {
            "half" | "imagenet" => {}
            other => bail!("data.normalize: unknown \"{other}\"; expected half or imagenet"),
        }
        match d.resample.as_str() {
            "bilinear" | "bicubic" | "nearest" => {}
            other => bail!("data.resample: unknown \"{other}\"; expected bilinear, bicubic or nearest"),
        }
        let m = &self.model;
        if m.pretrained.is_some() == m.preset.is_some() {
            bail!("model: set exactly one of `pretrained` (an HF model directory) or `preset` (vit-tiny, vit-small, vit-base, vit-large)");
        }
        if let Some(p) = &m.preset
            && !["vit-tiny", "vit-small", "vit-base", "vit-large"].contains(&p.as_str())
        {
            bail!("model.preset: unknown \"{p}\"; expected vit-tiny, vit-small, vit-base or vit-large");
        }
        let o = &self.optimizer;
        if !(o.lr > 0.0 && o.lr.is_finite()) {
            bail!("optimizer.lr: must be positive, got {}", o.lr);
        }
        if o.grad_accumulation == 0 {
            bail!("optimizer.grad_accumulation: must be at least 1");
        }
        if !(0.0..1.0).contains(&o.warmup_ratio) {
            bail!("optimizer.warmup_ratio: must be in [0, 1), got {}", o.warmup_ratio);
        }
        if !matches!(o.schedule.as_str(), "cosine" | "linear" | "constant") {
            bail!("optimizer.schedule: unknown \"{}\"; expected cosine, linear or constant", o.schedule);
        }
        if !(0.0..1.0).contains(&o.label_smoothing) {
            bail!("optimizer.label_smoothing: must be in [0, 1), got {}", o.label_smoothing);
        }
        if !(o.layer_decay > 0.0 && o.layer_decay <= 1.0) {
            bail!("optimizer.layer_decay: must be in (0, 1], got {}", o.layer_decay);
        }
        if o.max_grad_norm < 0.0 {
            bail!("optimizer.max_grad_norm: must be non-negative, got {}", o.max_grad_norm);
        }
        let r = &self.run;
        if r.epochs == 0 && r.max_steps.is_none() {
            bail!("run.epochs: must be at least 1 (or set run.max_steps)");
        }
        if r.max_steps == Some(0) {
            bail!("run.max_steps: must be at least 1");
        }
        if r.eval_every == Some(0) {
            bail!("run.eval_every: must be at least 1 (optimizer steps); leave it out to evaluate at the end of every epoch");
        }
        if r.log_every == 0 {
            bail!("run.log_every: must be at least 1");
        }
        Ok(())
    }

    /// The config as TOML, as saved in the output directory.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// `section.key=value` into the table; the value is TOML (`3`, `1e-4`, `true`, `"x"`) or a bare string.
fn apply_override(table: &mut toml::Table, item: &str) -> Result<()> {
    let (path, raw) = item
        .split_once('=')
        .with_context(|| format!("--set {item}: expected section.key=value"))?;
    let value: toml::Value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let keys: Vec<&str> = path.trim().split('.').collect();
    let (last, sections) = keys.split_last().context("--set: empty key")?;
    let mut current = table;
    for section in sections {
        current = current
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("--set {item}: `{section}` is not a section"))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

/// Rewrites serde's "unknown field `x`, expected one of ..." with a did-you-mean suggestion.
fn explain(message: &str) -> anyhow::Error {
    if let Some(rest) = message.split("unknown field `").nth(1)
        && let Some((unknown, tail)) = rest.split_once('`')
    {
        let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        let best = expected
            .iter()
            .map(|k| (strsim::jaro_winkler(unknown, k), *k))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let hint = match best {
            Some((score, key)) if score > 0.7 => format!("did you mean `{key}`?"),
            _ => format!("expected one of: {}", expected.join(", ")),
        };
        return anyhow::anyhow!("{}\nunknown key `{unknown}`: {hint}", message.trim());
    }
    anyhow::anyhow!("{}", message.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
task = "classification"
[model]
preset = "vit-tiny"
[data]
dataset = "cifar10"
path = "data/cifar10"
image_size = 32
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = RunConfig::parse(MINIMAL, &[]).unwrap();
        assert_eq!(c.optimizer.grad_accumulation, 1);
        assert_eq!(c.data.batch_size, 64);
        assert_eq!(c.run.device, "cpu");
    }

    #[test]
    fn misspelled_key_suggests_the_right_one() {
        let text = MINIMAL.replace("image_size = 32", "image_size = 32\nbatch_sise = 8");
        let err = format!("{:#}", RunConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("batch_sise") && err.contains("did you mean `batch_size`"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let text = MINIMAL.replace("image_size = 32", "image_size = \"big\"");
        let err = format!("{:#}", RunConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("image_size"), "{err}");
    }

    #[test]
    fn overrides_apply_and_are_validated() {
        let c = RunConfig::parse(MINIMAL, &["optimizer.lr=0.01".into(), "run.output_dir=out/x".into()]).unwrap();
        assert_eq!(c.optimizer.lr, 0.01);
        assert_eq!(c.run.output_dir, PathBuf::from("out/x"));
        let err = format!("{:#}", RunConfig::parse(MINIMAL, &["optimizer.schedule=wavy".into()]).unwrap_err());
        assert!(err.contains("optimizer.schedule"), "{err}");
        let err = format!("{:#}", RunConfig::parse(MINIMAL, &["optimizer.lrr=1".into()]).unwrap_err());
        assert!(err.contains("did you mean `lr`"), "{err}");
    }

    #[test]
    fn needs_exactly_one_model_source() {
        let text = MINIMAL.replace("preset = \"vit-tiny\"", "");
        let err = format!("{:#}", RunConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("pretrained") && err.contains("preset"), "{err}");
    }
}

/// A bounded mutation fuzzer over [`RunConfig::parse`] (the run config is read by this binary
/// crate, so it is fuzzed here rather than in `vit-fuzz`). Seeds are the shipped `configs/`;
/// mutations are byte edits, value swaps (wrong types, out-of-range and non-finite numbers),
/// line deletions/duplications/moves and `--set` overrides. Any panic fails the test; the input
/// is printed and, with `VIT_FUZZ_FINDINGS=dir`, saved as `dir/run_config-<hash>.toml`.
/// `VIT_FUZZ_SECONDS` (default 1) and `VIT_FUZZ_SEED` set the budget and seed;
/// `scripts/fuzz.sh` runs it.
#[cfg(test)]
mod fuzz {
    use super::*;

    const SEEDS: &[&str] = &[
        include_str!("../../configs/cifar10.toml"),
        include_str!("../../configs/cifar10-finetune.toml"),
        include_str!("../../configs/imagefolder.toml"),
        include_str!("../../configs/simmim-cifar10.toml"),
        "task = \"classification\"\n[model]\npreset = \"vit-tiny\"\n[data]\ndataset = \"cifar10\"\npath = \"d\"\nimage_size = 32\n",
    ];

    const LITERALS: &[&str] = &[
        "0", "-1", "1", "1.5", "-0.0", "1e999", "-1e999", "nan", "inf", "-inf", "+inf", "0x10", "0o7", "0b1", "1_000",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551616", "1e-400",
        "\"x\"", "\"\"", "'lit'", "'''multi\nline'''", "\"\\u0000\"", "true", "false", "[]", "{}", "[1, \"a\"]",
        "{ a = 1 }", "1979-05-27T07:32:00Z", "07:32:00", "\"vit-tiny\"", "\"simmim\"", "\"cifar100\"", "\"imagefolder\"",
        "\"cosine\"", "\"none\"", "\"imagenet\"", "\"bicubic\"", "0.999999", "1.0",
    ];

    const KEYS: &[&str] = &[
        "task", "pretrained", "preset", "image_size", "patch_size", "hidden_size", "num_hidden_layers",
        "num_attention_heads", "intermediate_size", "hidden_act", "hidden_dropout_prob", "qkv_bias", "encoder_stride",
        "num_labels", "ignore_mismatched_sizes", "interpolate_pos_encoding", "dataset", "path", "validation_dir",
        "download", "augmentation", "validation_split", "batch_size", "eval_batch_size", "workers", "normalize",
        "resample", "mask_patch_size", "mask_ratio", "skip_corrupt", "lr", "beta1", "beta2", "eps", "weight_decay",
        "max_grad_norm", "grad_accumulation", "warmup_steps", "warmup_ratio", "schedule", "label_smoothing",
        "layer_decay", "epochs", "max_steps", "eval_every", "seed", "keep_last", "early_stopping_patience", "output_dir", "device",
        "log_every", "sample_every", "",
    ];

    const SECTIONS: &[&str] = &["model", "data", "optimizer", "run", "", "task", "model.sub", "x"];

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            if n == 0 { 0 } else { (self.next() % n as u64) as usize }
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    fn mutate(rng: &mut Rng, text: &mut String) {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        match rng.below(9) {
            0..=2 => {
                // a value of another type / range
                let with_value: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains('=')).collect();
                if !with_value.is_empty() {
                    let i = with_value[rng.below(with_value.len())];
                    let key = lines[i].split('=').next().unwrap_or_default().to_string();
                    lines[i] = format!("{key}= {}", rng.pick(LITERALS));
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
                lines.insert(at, format!("{} = {}", rng.pick(KEYS), rng.pick(LITERALS)));
            }
            6 => {
                let at = rng.below(lines.len() + 1);
                let header = if rng.below(4) == 0 { format!("[[{}]]", rng.pick(SECTIONS)) } else { format!("[{}]", rng.pick(SECTIONS)) };
                lines.insert(at, header);
            }
            _ => {
                // bytes: flip, insert, delete, truncate (kept valid UTF-8 by lossy conversion)
                let mut bytes = std::mem::take(text).into_bytes();
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    match rng.below(4) {
                        0 => bytes[i] ^= 1 << rng.below(8),
                        1 => bytes.insert(i, *b"=[]{}\"'.,#\n\\".get(rng.below(12)).unwrap_or(&b'x')),
                        2 => {
                            bytes.remove(i);
                        }
                        _ => bytes.truncate(i),
                    }
                }
                *text = String::from_utf8_lossy(&bytes).into_owned();
                return;
            }
        }
        *text = lines.join("\n");
    }

    fn overrides(rng: &mut Rng) -> Vec<String> {
        (0..rng.below(3))
            .map(|_| match rng.below(5) {
                0 => format!("{}={}", rng.pick(KEYS), rng.pick(LITERALS)),
                1 => rng.pick(LITERALS).to_string(),
                2 => format!("{}.{}.{}={}", rng.pick(SECTIONS), rng.pick(KEYS), rng.pick(KEYS), rng.pick(LITERALS)),
                _ => format!("{}.{}={}", rng.pick(SECTIONS), rng.pick(KEYS), rng.pick(LITERALS)),
            })
            .collect()
    }

    fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
        std::env::var(name).ok().and_then(|v| v.parse().ok())
    }

    #[test]
    fn fuzz_parse_never_panics() {
        let seconds: f64 = env("VIT_FUZZ_SECONDS").unwrap_or(1.0);
        let mut rng = Rng(env("VIT_FUZZ_SEED").unwrap_or(0x5eed));
        let findings: Option<PathBuf> = env("VIT_FUZZ_FINDINGS");
        let mut corpus: Vec<String> = SEEDS.iter().map(|s| s.to_string()).collect();
        let mut seen = std::collections::HashSet::new();
        let start = std::time::Instant::now();
        let (mut execs, mut failures) = (0u64, Vec::new());
        while start.elapsed().as_secs_f64() < seconds || execs < SEEDS.len() as u64 {
            let mut text = corpus[rng.below(corpus.len())].clone();
            let sets = if execs < SEEDS.len() as u64 {
                text = SEEDS[execs as usize].to_string();
                Vec::new()
            } else {
                for _ in 0..1 + rng.below(3) {
                    mutate(&mut rng, &mut text);
                }
                overrides(&mut rng)
            };
            execs += 1;
            let result = std::panic::catch_unwind(|| {
                let parsed = RunConfig::parse(&text, &sets);
                if let Ok(c) = &parsed {
                    let saved = c.to_toml();
                    if let Err(e) = RunConfig::parse(&saved, &[]) {
                        panic!("a parsed config, saved, does not parse again: {e:#}\n{saved}");
                    }
                }
                match parsed {
                    Ok(_) => "ok".to_string(),
                    Err(e) => format!("{e:#}").chars().filter(|c| !c.is_ascii_digit()).take(120).collect(),
                }
            });
            match result {
                Ok(outcome) => {
                    if seen.insert(outcome) && corpus.len() < 2048 {
                        corpus.push(text);
                    }
                }
                Err(payload) => {
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    let input = format!("{text}\n# --set {sets:?}\n");
                    eprintln!("FINDING [run_config] panic: {message}\n--- input ---\n{input}---");
                    if let Some(dir) = &findings {
                        let hash = input.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
                        let _ = std::fs::create_dir_all(dir);
                        let _ = std::fs::write(dir.join(format!("run_config-{hash:016x}.toml")), &input);
                    }
                    failures.push(message);
                }
            }
        }
        eprintln!("run_config: {execs} execs in {:.1} s, {} outcomes, {} panics", start.elapsed().as_secs_f64(), seen.len(), failures.len());
        assert!(failures.is_empty(), "RunConfig::parse panicked: {failures:?}");
    }
}
