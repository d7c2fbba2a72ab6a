//! Shared helpers of the vit-train end-to-end tests: synthetic data and running the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{Rgb, RgbImage};

/// The three synthetic classes: horizontal stripes, vertical stripes, a checkerboard.
pub const CLASSES: [&str; 3] = ["checker", "horizontal", "vertical"];

/// One 32x32 image of `class` with a random colour and noise, deterministic in `seed`.
pub fn pattern(class: usize, seed: u64) -> RgbImage {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let colour = [60 + next() % 190, 60 + next() % 190, 60 + next() % 190];
    let phase = (next() % 8) as u32;
    let mut img = RgbImage::new(32, 32);
    for y in 0..32u32 {
        for x in 0..32u32 {
            let on = match class {
                0 => ((x + phase) / 4 + (y + phase) / 4).is_multiple_of(2),
                1 => ((y + phase) / 4).is_multiple_of(2),
                _ => ((x + phase) / 4).is_multiple_of(2),
            };
            let noise = (next() % 40) as i64 - 20;
            let px =
                |c: u64| if on { (c as i64 + noise).clamp(0, 255) as u8 } else { (20 + noise).clamp(0, 255) as u8 };
            img.put_pixel(x, y, Rgb([px(colour[0]), px(colour[1]), px(colour[2])]));
        }
    }
    img
}

/// An ImageFolder of `per_class` images per class under `root`.
pub fn make_image_folder(root: &Path, per_class: usize) {
    for (c, name) in CLASSES.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            pattern(c, (c * 100_003 + i) as u64).save(dir.join(format!("{i:04}.png"))).unwrap();
        }
    }
}

/// A classification config for a tiny ViT on `data`, writing to `out`.
pub fn classification_config(data: &Path, out: &Path, epochs: usize) -> String {
    format!(
        r#"task = "classification"
[model]
preset = "vit-tiny"
patch_size = 8
hidden_size = 48
num_hidden_layers = 2
num_attention_heads = 4
intermediate_size = 96
[data]
dataset = "imagefolder"
path = "{}"
image_size = 32
augmentation = "pad-crop-flip"
validation_split = 0.25
batch_size = 16
[optimizer]
lr = 2e-3
weight_decay = 0.05
warmup_ratio = 0.1
schedule = "cosine"
[run]
epochs = {epochs}
seed = 7
keep_last = 1
output_dir = "{}"
log_every = 5
"#,
        data.display(),
        out.display()
    )
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `vit-train` with `args`.
pub fn vit_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vit-train")).args(args).output().expect("vit-train runs")
}

/// Runs the vit-train binary with `env` added to its environment.
pub fn vit_train_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vit-train"));
    command.args(args).envs(env.iter().copied());
    command.output().expect("vit-train runs")
}

/// Asserts a successful run and returns its stderr.
pub fn assert_ok(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "vit-train failed:\n{stderr}");
    stderr
}

/// Validation rows of a run's metrics.csv: (epoch, loss, accuracy).
pub fn valid_rows(run: &Path) -> Vec<(usize, f64, Option<f64>)> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    csv.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            (cols[2] == "valid").then(|| (cols[1].parse().unwrap(), cols[3].parse().unwrap(), cols[4].parse().ok()))
        })
        .collect()
}

/// Loss of the first training log row of a run (close to the untrained model's loss).
pub fn first_train_loss(run: &Path) -> f64 {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let line = csv.lines().skip(1).find(|l| l.split(',').nth(2) == Some("train")).unwrap();
    line.split(',').nth(3).unwrap().parse().unwrap()
}

/// An ImageFolder of `count` images of one random colour each plus a vertical ramp (masked
/// pixels are predictable from the visible ones), for SimMIM runs.
pub fn make_smooth_folder(root: &Path, count: usize) {
    let dir = root.join("all");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..count {
        let base = pattern(0, i as u64 + 999).get_pixel(0, 0).0;
        let colour = if base.iter().all(|&c| c < 40) { [200, 120, 60] } else { base };
        let img = RgbImage::from_fn(32, 32, |_, y| Rgb(colour.map(|c| (c as u32 * (16 + y) / 48).min(255) as u8)));
        img.save(dir.join(format!("{i:04}.png"))).unwrap();
    }
}

/// A finished classification run on an ImageFolder of `per_class` images per class under `root`:
/// (the data folder, the run directory, the config file it ran with).
pub fn finished_run(root: &Path, per_class: usize, epochs: usize) -> (PathBuf, PathBuf, PathBuf) {
    let data = root.join("data");
    make_image_folder(&data, per_class);
    let out = root.join("run");
    let config = write_config(root, "finished.toml", &classification_config(&data, &out, epochs));
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    (data, out, config)
}

/// Mounts a tmpfs at `dir` with `options` (e.g. "ro,size=1m"); false where mounting is refused.
pub fn mount_tmpfs(dir: &Path, options: &str) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs", dir.to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success())
}
