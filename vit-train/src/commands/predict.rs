//! `vit-train predict`: classify image files with an HF model directory and its own
//! preprocessing (`preprocessor_config.json`), printing the top-k labels per image.

use std::collections::BTreeMap;
use std::path::PathBuf;
use vit_model::kernels::on_kernel_threads;
use vit_model::{Precision, autocast};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use clap::Args;
use serde_json::json;
use vit_data::decode::has_image_extension;
use vit_data::{DataError, DecodeLimits, ImageProcessor};
use vit_model::{ViTConfig, ViTForImageClassification, ViTForwardOptions};

use crate::device::parse_device;
use crate::run::model::{load_classifier, model_processor, resolve_reference};

/// Preprocessed images of one chunk by (height, width): (position in the chunk, CHW values).
type SizeGroups = BTreeMap<(usize, usize), Vec<(usize, Vec<f32>)>>;

/// Arguments of `vit-train predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// An HF model directory (config.json, model.safetensors, preprocessor_config.json) or a Hub
    /// id `owner/name[@revision]`.
    #[arg(long)]
    pub model: PathBuf,
    /// How many labels to show per image (clamped to the number of labels).
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// One JSON object per image: file, top-k labels with probabilities, all logits.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV on stdout: a header, then per image the file and the top-k labels with probabilities.
    #[arg(long)]
    pub csv: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Device (cpu, cuda:0, wgpu, ...).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Precision of the matrix products: f32, bf16 or f16 (mixed precision, as `run.precision`).
    #[arg(long, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Image files, or directories searched recursively for images (sorted by path).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// The prediction for one image.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// The image file.
    pub file: PathBuf,
    /// All logits, in class order.
    pub logits: Vec<f32>,
    /// Softmax of the logits.
    pub probabilities: Vec<f64>,
}

impl Prediction {
    fn new(file: PathBuf, logits: Vec<f32>) -> Self {
        let probabilities = softmax(&logits);
        Self { file, logits, probabilities }
    }

    /// The `k` most probable class indices, most probable first (ties: lower index first).
    pub fn top_k(&self, k: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.probabilities.len()).collect();
        order.sort_by(|&a, &b| self.probabilities[b].total_cmp(&self.probabilities[a]).then(a.cmp(&b)));
        order.truncate(k);
        order
    }
}

/// Softmax in f64 (max-subtracted).
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let exps: Vec<f64> = logits.iter().map(|&v| (v as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// An image error for the command line: the file and what is wrong with it, once (the data
/// crate's message also suggests `skip_corrupt`, a dataset setting that means nothing here).
fn image_error(e: DataError) -> anyhow::Error {
    match e {
        DataError::Decode { path, reason } => anyhow::anyhow!("`{}` is not a readable image: {reason}", path.display()),
        other => anyhow::anyhow!("{other}"),
    }
}

/// Runs every image through the model; images are decoded and preprocessed `batch_size` at a
/// time, grouped by their preprocessed size.
pub fn predict_images(
    model: &ViTForImageClassification,
    config: &ViTConfig,
    processor: &ImageProcessor,
    images: &[PathBuf],
    batch_size: usize,
    device: &Device,
    mut on_prediction: impl FnMut(&Prediction) -> Result<()>,
) -> Result<()> {
    let limits = DecodeLimits::default();
    // Catch missing files and non-images before any (slow) model work.
    for path in images {
        limits.dimensions(path).map_err(image_error)?;
    }
    let channels = config.num_channels;
    let mut noted_resize = false;
    for chunk in images.chunks(batch_size.max(1)) {
        // Preprocessed images of this chunk, grouped by (height, width).
        let mut groups = SizeGroups::new();
        for (i, path) in chunk.iter().enumerate() {
            let image = limits.decode(path).map_err(image_error)?;
            let (h, w) = if processor.do_resize {
                (processor.size.height as usize, processor.size.width as usize)
            } else {
                (image.height() as usize, image.width() as usize)
            };
            let values = processor.process(&image).with_context(|| format!("cannot preprocess {}", path.display()))?;
            groups.entry((h, w)).or_default().push((i, values));
        }
        let mut logits: Vec<Option<Vec<f32>>> = vec![None; chunk.len()];
        for ((h, w), items) in groups {
            let interpolate = h != config.image_size || w != config.image_size;
            if interpolate && !noted_resize {
                eprintln!(
                    "note: images are preprocessed to {h}x{w} but the model was made for {0}x{0}; \
                     interpolating its position embeddings",
                    config.image_size
                );
                noted_resize = true;
            }
            let n = items.len();
            let mut data = Vec::with_capacity(n * channels * h * w);
            for (_, values) in &items {
                data.extend_from_slice(values);
            }
            let pixels = Tensor::<4>::from_data(TensorData::new(data, [n, channels, h, w]), device);
            let options = ViTForwardOptions { interpolate_pos_encoding: interpolate, ..Default::default() };
            let (values, num_labels) = on_kernel_threads(device, || -> Result<(Vec<f32>, usize)> {
                let out = model.forward_with(pixels, None, options)?.logits;
                let [_, num_labels] = out.dims();
                let values = out
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| anyhow::anyhow!("cannot read the logits: {e:?}"))?;
                Ok((values, num_labels))
            })?;
            for ((i, _), row) in items.iter().zip(values.chunks(num_labels)) {
                logits[*i] = Some(row.to_vec());
            }
        }
        for (path, row) in chunk.iter().zip(logits) {
            let row = row.expect("every image of the chunk has logits");
            on_prediction(&Prediction::new(path.clone(), row))?;
        }
    }
    Ok(())
}

/// The JSON line of one prediction.
pub fn prediction_json(p: &Prediction, labels: &[String], k: usize) -> serde_json::Value {
    let top: Vec<serde_json::Value> = p
        .top_k(k)
        .into_iter()
        .map(|i| json!({ "label": labels[i], "index": i, "probability": p.probabilities[i] }))
        .collect();
    json!({ "file": p.file.to_string_lossy(), "top_k": top, "logits": p.logits })
}

/// The text block of one prediction: the file, then `label  prob%` lines.
pub fn prediction_text(p: &Prediction, labels: &[String], k: usize) -> String {
    let top = p.top_k(k);
    let width = top.iter().map(|&i| labels[i].chars().count()).max().unwrap_or(0);
    let mut out = format!("{}\n", p.file.display());
    for i in top {
        out.push_str(&format!("  {:<width$}  {:6.2}%\n", labels[i], 100.0 * p.probabilities[i]));
    }
    out
}

/// The image files named by `inputs`: files as given, directories searched recursively for files
/// with an image extension, sorted by path (hidden entries skipped, symbolic links not followed
/// into directories).
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            out.push(input.clone());
            continue;
        }
        let mut found = Vec::new();
        let mut pending = vec![input.clone()];
        while let Some(dir) = pending.pop() {
            let entries = std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
                let path = entry.path();
                if entry.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let kind = entry.file_type().with_context(|| format!("cannot read {}", path.display()))?;
                if kind.is_dir() {
                    pending.push(path);
                } else if has_image_extension(&path) {
                    found.push(path);
                }
            }
        }
        if found.is_empty() {
            bail!("{} holds no images (searched recursively)", input.display());
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// The CSV header for `k` labels per image.
pub fn csv_header(k: usize) -> String {
    let mut out = String::from("file");
    for i in 1..=k {
        out.push_str(&format!(",label_{i},probability_{i}"));
    }
    out
}

/// A CSV cell, quoted when it needs to be.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// The CSV row of one prediction.
pub fn prediction_csv(p: &Prediction, labels: &[String], k: usize) -> String {
    let mut out = csv_cell(&p.file.to_string_lossy());
    for i in p.top_k(k) {
        out.push_str(&format!(",{},{}", csv_cell(&labels[i]), p.probabilities[i]));
    }
    out
}

/// `vit-train predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let _autocast = autocast(args.precision);
    if args.top_k == 0 {
        bail!("--top-k must be at least 1");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let images = expand_inputs(&args.images)?;
    let device = parse_device(&args.device)?;
    vit_model::precision::check_supported(args.precision, &device).map_err(|e| anyhow::anyhow!("--precision: {e}"))?;
    let model_dir = resolve_reference(&args.model, "--model")?;
    let (model, config) = load_classifier(&model_dir, &device)?;
    let labels = config.labels();
    if labels.len() != model.num_labels() {
        bail!(
            "{}: config.json has {} labels but the classifier has {} outputs",
            args.model.display(),
            labels.len(),
            model.num_labels()
        );
    }
    let processor = model_processor(&model_dir, &config)?;
    let k = args.top_k.min(labels.len());
    if args.csv {
        println!("{}", csv_header(k));
    }
    predict_images(&model, &config, &processor, &images, args.batch_size, &device, |p| {
        if args.json {
            println!("{}", prediction_json(p, &labels, k));
        } else if args.csv {
            println!("{}", prediction_csv(p, &labels, k));
        } else {
            print!("{}", prediction_text(p, &labels, k));
        }
        Ok(())
    })
}
