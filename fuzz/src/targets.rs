//! The readers under test. Each target turns one input into calls of the public reader API (and
//! of what callers do next with a successful result), and returns a short signature of the
//! outcome (used to keep inputs that reach new behaviour).
//!
//! Property checks (a saved config reloads, an image the processor accepts gives the expected
//! number of values...) panic like any bug would, so they are findings too.

use std::path::{Path, PathBuf};

use vit_data::{Cifar, CifarKind, DecodeLimits, ImageProcessor, ImageSource};
use vit_model::ViTConfig;
use vit_model::checkpoint::safetensors_file;
use vit_train::run::config::RunConfig;

use crate::mutate;
use crate::rng::Rng;
use crate::seeds;

/// Where a target may write the files its readers open.
pub struct Workdir {
    /// A private temporary directory, removed on drop.
    pub dir: PathBuf,
}

impl Workdir {
    /// A fresh directory under the system temp dir.
    pub fn new() -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("vit-fuzz-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("index"))?;
        // A valid shard next to the fuzzed index, so that `read_dir` gets as far as reading it.
        std::fs::write(
            dir.join("index/model-00001-of-00002.safetensors"),
            seeds::safetensors_file(&[("vit.embeddings.cls_token", "F32", &[1, 1, 4])]),
        )?;
        Ok(Workdir { dir })
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("fuzzer: cannot write {}: {e}", path.display()));
        path
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A reader under test.
pub struct Target {
    /// Name used on the command line and in finding file names.
    pub name: &'static str,
    /// What it calls.
    pub about: &'static str,
    /// Its seed inputs (given the workspace root).
    pub seeds: fn(&Path) -> Vec<Vec<u8>>,
    /// One mutation.
    pub mutate: fn(&mut Rng, &mut Vec<u8>, &[Vec<u8>]),
    /// Runs the readers on one input; returns an outcome signature.
    pub exec: fn(&Workdir, &[u8]) -> String,
}

/// Every target, in the order the script runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "safetensors",
        about: "safetensors_file::read_file + read_inputs (+ to_bytes round trip)",
        seeds: seeds::safetensors,
        mutate: mutate::safetensors,
        exec: exec_safetensors,
    },
    Target {
        name: "index",
        about: "safetensors_file::locate + read_dir on model.safetensors.index.json",
        seeds: |_| seeds::index(),
        mutate: mutate::json,
        exec: exec_index,
    },
    Target {
        name: "config",
        about: "ViTConfig::from_json_str (+ accessors, save/reload)",
        seeds: seeds::config,
        mutate: mutate::json,
        exec: exec_config,
    },
    Target {
        name: "processor",
        about: "ImageProcessor::from_json_str for 0..=3 channels (+ normalizer, process, save/reload)",
        seeds: |_| seeds::processor(),
        mutate: mutate::json,
        exec: exec_processor,
    },
    Target {
        name: "image",
        about: "DecodeLimits::dimensions + decode (+ to_rgb8, ImageProcessor::process)",
        seeds: seeds::images,
        mutate: mutate::image,
        exec: exec_image,
    },
    Target {
        name: "cifar",
        about: "Cifar::from_records (+ image, label, load of every record)",
        seeds: |_| seeds::cifar(),
        mutate: mutate::cifar,
        exec: exec_cifar,
    },
    Target {
        name: "run_config",
        about: "RunConfig::parse with the input's `#--set` overrides (+ to_toml and parse again)",
        seeds: seeds::run_config,
        mutate: mutate::toml,
        exec: exec_run_config,
    },
];

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn outcome<T, E: std::fmt::Display>(r: &Result<T, E>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => {
            // Digits and quoted values vary with every input; the rest of the message is what
            // tells code paths apart.
            let mut quoted = false;
            let text: String = e
                .to_string()
                .chars()
                .filter(|&c| {
                    if c == '"' {
                        quoted = !quoted;
                    }
                    !quoted && !c.is_ascii_digit()
                })
                .take(160)
                .collect();
            format!("err:{text}")
        }
    }
}

/// [`outcome`] without the names between backticks: the safetensors crate names "the" tensor at
/// fault in hash order, which would make runs with the same seed differ.
fn outcome_unnamed<T, E: std::fmt::Display>(r: &Result<T, E>) -> String {
    let mut inside = false;
    outcome(r)
        .chars()
        .filter(|&c| {
            if c == '`' {
                inside = !inside;
            }
            !inside
        })
        .collect()
}

fn exec_safetensors(w: &Workdir, input: &[u8]) -> String {
    let path = w.write("model.safetensors", input);
    let weights = safetensors_file::read_file(&path);
    let inputs = safetensors_file::read_inputs(&path);
    if let Ok(tensors) = &weights {
        for (name, t) in tensors {
            let n: usize = t.shape.iter().product();
            assert_eq!(n, t.data.len(), "read_file: tensor {name} has {} values for shape {:?}", t.data.len(), t.shape);
        }
        // What was read can be written back and reads the same.
        let bytes =
            safetensors_file::to_bytes(tensors).unwrap_or_else(|e| panic!("to_bytes of a read file fails: {e}"));
        let again = w.write("again.safetensors", &bytes);
        let back =
            safetensors_file::read_file(&again).unwrap_or_else(|e| panic!("a written file does not read back: {e}"));
        assert_eq!(back.len(), tensors.len(), "round trip changes the tensor count");
        for (name, t) in tensors {
            let b = &back[name];
            assert!(
                b.shape == t.shape && b.data.iter().zip(&t.data).all(|(x, y)| x.to_bits() == y.to_bits()),
                "round trip changes tensor {name}"
            );
        }
    }
    format!("{}|{}", outcome_unnamed(&weights), outcome_unnamed(&inputs))
}

fn exec_index(w: &Workdir, input: &[u8]) -> String {
    let dir = w.dir.join("index");
    std::fs::write(dir.join("model.safetensors.index.json"), input).unwrap_or_else(|e| panic!("fuzzer: {e}"));
    let located = safetensors_file::locate(&dir);
    let read = located.as_ref().ok().map(|_| safetensors_file::read_dir(&dir));
    format!("{}|{}", outcome(&located), read.as_ref().map_or("-".into(), outcome_unnamed))
}

fn exec_config(_: &Workdir, input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let origin = Path::new("fuzz/config.json");
    let parsed = ViTConfig::from_json_str(&text, origin);
    if let Ok(c) = &parsed {
        let _ = (c.num_labels(), c.labels(), c.head_dim(), c.grid_size(), c.num_patches(), c.pooler_output_size());
        c.validate().unwrap_or_else(|e| panic!("a parsed config does not validate: {e}"));
        let saved = c.to_json_string();
        let back = ViTConfig::from_json_str(&saved, origin)
            .unwrap_or_else(|e| panic!("a saved config does not load again: {e}\n{saved}"));
        assert!(
            back.hidden_size == c.hidden_size
                && back.num_hidden_layers == c.num_hidden_layers
                && back.image_size == c.image_size
                && back.patch_size == c.patch_size
                && back.id2label == c.id2label
                && back.label2id == c.label2id
                && back.hidden_act == c.hidden_act
                && back.problem_type == c.problem_type,
            "save/load changes the config:\n{saved}"
        );
    }
    outcome(&parsed)
}

fn exec_processor(_: &Workdir, input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let origin = Path::new("fuzz/preprocessor_config.json");
    let tiny = image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 50, y as u8 * 80, 200]));
    let mut sig = String::new();
    for channels in 0..=3 {
        let parsed = ImageProcessor::from_json_str(&text, origin, channels);
        if let Ok(p) = &parsed {
            p.validate().unwrap_or_else(|e| panic!("a parsed processor does not validate: {e}"));
            let n = p.normalizer().unwrap_or_else(|e| panic!("normalizer of a valid processor: {e}"));
            assert_eq!(n.num_channels(), channels);
            let saved = serde_json::to_string(&p.to_json()).unwrap_or_default();
            let back = ImageProcessor::from_json_str(&saved, origin, channels)
                .unwrap_or_else(|e| panic!("a saved processor does not load again: {e}\n{saved}"));
            assert_eq!((back.size, back.resample, back.do_resize), (p.size, p.resample, p.do_resize), "{saved}");
            // Legal but possibly huge output sizes are only exercised when small.
            let (h, wd) = if p.do_resize { (p.size.height, p.size.width) } else { (3, 5) };
            if (h as u64) * (wd as u64) <= 1 << 16 {
                let out = p.process_rgb(&tiny).unwrap_or_else(|e| panic!("process_rgb with a valid processor: {e}"));
                assert_eq!(out.len(), channels * h as usize * wd as usize);
            }
        }
        sig.push_str(&outcome(&parsed));
        sig.push('|');
    }
    sig
}

fn exec_image(w: &Workdir, input: &[u8]) -> String {
    let path = w.write("image.png", input);
    let limits = DecodeLimits::default();
    let dims = limits.dimensions(&path);
    let decoded = limits.decode(&path);
    let mut sig = format!("{}|{}", outcome(&dims), outcome(&decoded));
    if let Ok(img) = decoded {
        assert!(img.width() > 0 && img.height() > 0);
        sig.push_str(&format!("|{:?}", img.color()));
        // Callers convert to RGB and preprocess: do both while it is cheap.
        if (img.width() as u64) * (img.height() as u64) <= 1 << 20 {
            let rgb = vit_data::convert::to_rgb8(img.clone());
            assert_eq!((rgb.width(), rgb.height()), (img.width(), img.height()));
            for (channels, resample) in [(3, vit_data::Resample::Bicubic), (1, vit_data::Resample::Nearest)] {
                let p = ImageProcessor { resample, ..ImageProcessor::new(9, 7) }.with_num_channels(channels);
                let out = p.process(&img).unwrap_or_else(|e| panic!("process of a decoded image: {e}"));
                assert_eq!(out.len(), channels * 9 * 7);
            }
        }
    }
    sig
}

fn exec_cifar(_: &Workdir, input: &[u8]) -> String {
    let Some((&kind, records)) = input.split_first() else {
        return "empty".into();
    };
    let kind = match kind % 3 {
        0 => CifarKind::Cifar10,
        1 => CifarKind::Cifar100Fine,
        _ => CifarKind::Cifar100Coarse,
    };
    let classes: Vec<String> = (0..kind.num_classes()).map(|i| format!("c{i}")).collect();
    let parsed = Cifar::from_records(kind, records, Path::new("fuzz/data_batch_1.bin"), classes);
    if let Ok(c) = &parsed {
        let n = c.len();
        assert_eq!(n, records.len() / kind.record_bytes());
        for i in 0..=n {
            let image = c.image(i);
            assert_eq!(image.is_some(), i < n, "image({i}) of {n}");
            assert_eq!(c.load(i).is_ok(), i < n);
            let label = c.label(i);
            assert!(i >= n || label < kind.num_classes(), "label {label} of record {i}");
        }
        let _ = (c.labels().len(), c.class_names().len());
    }
    format!("{:?}|{}", kind, outcome(&parsed))
}

fn exec_run_config(_: &Workdir, input: &[u8]) -> String {
    let (text, sets) = mutate::split_toml(&String::from_utf8_lossy(input));
    let parsed = RunConfig::parse(&text, &sets);
    if let Ok(c) = &parsed {
        // What a run saves in its output directory must load again.
        let saved = c.to_toml();
        if let Err(e) = RunConfig::parse(&saved, &[]) {
            panic!("a parsed config, saved, does not parse again: {e:#}\n{saved}");
        }
    }
    let message = parsed.as_ref().map_err(|e| run_config_message(&e.to_string()));
    format!("{}|{}", sets.len().min(3), outcome_unnamed(&message))
}

/// What of a run-config error tells code paths apart: without the input lines that TOML syntax
/// errors quote (`N | text`, then a `^` marker), with the `--set` item and the unknown parts of
/// a field path (`data.augmntation` -> `data.?`) left out ([`outcome_unnamed`] then drops the
/// keys and values named between backticks). Else every typo would be a new outcome.
fn run_config_message(message: &str) -> String {
    let quotes_input = |l: &str| l.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ').starts_with('|');
    let mut lines = message.lines().filter(|l| !quotes_input(l));
    let first = lines.next().unwrap_or_default();
    let first = match first.split_once(": ") {
        Some((item, _)) if item.starts_with("--set ") => {
            format!("--set _: {}", first.rsplit_once(": ").map_or("", |(_, what)| what))
        }
        Some((path, rest)) if !path.contains(' ') => {
            let known = |seg: &str| mutate::RUN_CONFIG_KEYS.contains(&seg) || mutate::SECTIONS.contains(&seg);
            let path: Vec<&str> = path.split('.').map(|seg| if known(seg) { seg } else { "?" }).collect();
            format!("{}: {rest}", path.join("."))
        }
        _ => first.to_string(),
    };
    std::iter::once(first.as_str()).chain(lines).collect::<Vec<_>>().join("\n")
}
