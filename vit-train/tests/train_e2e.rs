//! End-to-end runs of the `vit-train` binary on tiny synthetic data.

mod common;

use std::time::{Duration, Instant};

use burn::tensor::Device;
use common::*;
use vit_model::{LoadOptions, PretrainedViT, ViTForImageClassification};

#[test]
fn classification_run_beats_chance_and_exports_a_loadable_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 60);
    let out = tmp.path().join("run");
    let config = write_config(tmp.path(), "run.toml", &classification_config(&data, &out, 12));
    let stderr = assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));

    let rows = valid_rows(&out);
    assert_eq!(rows.len(), 12, "one validation row per epoch");
    let best_acc = rows.iter().filter_map(|r| r.2).fold(0.0, f64::max);
    assert!(best_acc >= 70.0, "validation accuracy {best_acc}% is not clearly above chance (33%): {rows:?}");

    for file in [
        "run_config.toml",
        "metrics.csv",
        "curves.png",
        "best/config.json",
        "best/model.safetensors",
        "best/preprocessor_config.json",
    ] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let (model, config, report) =
        ViTForImageClassification::from_pretrained(out.join("best"), &LoadOptions::default(), &Device::flex()).unwrap();
    assert!(report.is_exact(), "{report}");
    assert_eq!(config.labels(), CLASSES.to_vec());
    assert_eq!(model.num_labels(), 3);

    // `vit-train export` of the best checkpoint gives the same directory.
    let best_epoch = stderr.split("exporting the best checkpoint (").nth(1).and_then(|s| s.split(':').next()).unwrap();
    let exported = tmp.path().join("exported");
    let run = out.to_str().unwrap();
    assert_ok(&vit_train(&["export", "--run", run, "--epoch", best_epoch, "--output", exported.to_str().unwrap()]));
    for file in ["model.safetensors", "config.json", "preprocessor_config.json"] {
        assert_eq!(
            std::fs::read(out.join("best").join(file)).unwrap(),
            std::fs::read(exported.join(file)).unwrap(),
            "{file}"
        );
    }

    // Both carry a model card (Trainer-style) and the training arguments, the same for the same
    // checkpoint.
    for file in ["README.md", "training_args.json"] {
        assert_eq!(
            std::fs::read(out.join("best").join(file)).unwrap(),
            std::fs::read(exported.join(file)).unwrap(),
            "{file}"
        );
    }
    let card = std::fs::read_to_string(exported.join("README.md")).unwrap();
    assert!(
        card.contains("trained from scratch on the imagefolder dataset") && card.contains("- Accuracy: "),
        "{card}"
    );
    let args: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("training_args.json")).unwrap()).unwrap();
    assert_eq!(args["learning_rate"], 2e-3);
    let output = vit_train(&["export", "--run", run, "--epoch", "999", "--output", exported.to_str().unwrap()]);
    assert!(!output.status.success() && String::from_utf8_lossy(&output.stderr).contains("epoch 999"));
}

#[test]
fn simmim_run_lowers_its_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_smooth_folder(&data, 96);
    let out = tmp.path().join("mim");
    let text = format!(
        r#"task = "simmim"
[model]
preset = "vit-tiny"
patch_size = 4
hidden_size = 32
num_hidden_layers = 2
num_attention_heads = 2
intermediate_size = 64
[data]
dataset = "imagefolder"
path = "{}"
image_size = 32
augmentation = "none"
mask_patch_size = 8
mask_ratio = 0.6
batch_size = 12
[optimizer]
lr = 3e-3
weight_decay = 0.05
[run]
epochs = 4
output_dir = "{}"
log_every = 2
sample_every = 20
"#,
        data.display(),
        out.display()
    );
    let config = write_config(tmp.path(), "mim.toml", &text);
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    let rows = valid_rows(&out);
    let (first, last) = (first_train_loss(&out), rows.last().unwrap().1);
    assert!(last < 0.8 * first, "SimMIM validation loss {first} → {last} did not fall clearly: {rows:?}");
    let samples = std::fs::read_dir(out.join("samples")).unwrap().count();
    assert!(samples > 0, "no reconstruction grids were written");
    // The exported SimMIM model is a starting point for classification: its encoder loads.
    let (_, _, report) =
        ViTForImageClassification::from_pretrained(out.join("best"), &LoadOptions::default(), &Device::flex()).unwrap();
    assert!(report.missing_keys.iter().all(|k| k.starts_with("classifier")), "{report}");
}

#[test]
fn runs_killed_at_several_points_and_resumed_end_with_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 60);
    let epochs = 6;
    // With dropout: its masks are drawn from the backend RNG, reseeded per epoch.
    let config_text = |out: &std::path::Path| {
        classification_config(&data, out, epochs).replace("[data]", "hidden_dropout_prob = 0.1\n[data]")
    };

    let straight = tmp.path().join("straight");
    let config = write_config(tmp.path(), "a.toml", &config_text(&straight));
    let start = Instant::now();
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    let full = start.elapsed();

    // The same run, killed with SIGKILL at points spread over its length; each restart of the same
    // command resumes it.
    let resumed = tmp.path().join("resumed");
    let config = write_config(tmp.path(), "b.toml", &config_text(&resumed));
    let mut kills = 0;
    for fraction in [0.55, 0.3, 0.45, 0.25] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vit-train"))
            .args(["--config", config.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills > 0, "no run was interrupted");
    let stderr = assert_ok(&vit_train(&["--config", config.to_str().unwrap(), "--resume"]));
    if !resumed.join("best").exists() || kills == 4 {
        assert!(stderr.contains("resuming"), "{stderr}");
    }
    // Same validation results epoch by epoch, and the same exported weights, bit for bit.
    assert_eq!(valid_rows(&straight), valid_rows(&resumed));
    assert!(
        std::fs::read(straight.join("best/model.safetensors")).unwrap()
            == std::fs::read(resumed.join("best/model.safetensors")).unwrap(),
        "resumed weights differ from the uninterrupted run's"
    );
    let leftovers: Vec<_> = std::fs::read_dir(resumed.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".bpk"))
        .collect();
    // Beside the records: one manifest per committed set; the temporaries of killed writes are
    // removed when the next run starts.
    assert!(
        leftovers.iter().all(|n| n.starts_with("manifest-") && n.ends_with(".json")),
        "unexpected files: {leftovers:?}"
    );
}

/// The highest checkpoint number among `run/checkpoint/model-N.bpk`.
fn latest_checkpoint(run: &std::path::Path) -> Option<usize> {
    std::fs::read_dir(run.join("checkpoint"))
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("model-")?.strip_suffix(".bpk")?.parse().ok())
        .max()
}

/// Starts the run of `config` once per `(checkpoint, delay)` and kills it with SIGKILL `delay`
/// after checkpoint `checkpoint` of `run` appeared (each start resumes the previous one);
/// returns how many were killed before finishing.
fn kill_after_checkpoints(config: &std::path::Path, run: &std::path::Path, points: &[(usize, Duration)]) -> usize {
    let mut kills = 0;
    for &(checkpoint, delay) in points {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vit-train"))
            .args(["--config", config.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() && latest_checkpoint(run).is_none_or(|c| c < checkpoint) {
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    kills
}

/// Starts the run of `config` and kills it with SIGKILL as soon as checkpoint `checkpoint` of
/// `run` is committed (its manifest written), or lets it end if it finishes first.
fn kill_once_committed(config: &std::path::Path, run: &std::path::Path, checkpoint: usize) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vit-train"))
        .args(["--config", config.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let committed = run.join(format!("checkpoint/manifest-{checkpoint}.json"));
    while child.try_wait().unwrap().is_none() && !committed.exists() {
        std::thread::sleep(Duration::from_micros(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// metrics.csv without the images_per_sec column (wall-clock dependent).
fn metrics_without_speed(run: &std::path::Path) -> Vec<String> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    csv.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect()
}

#[test]
fn evaluating_every_n_steps_validates_checkpoints_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // 135 training images in batches of 16: 9 steps per epoch; 3 epochs evaluated every 4 steps
    // (which does not divide 9): validation and a checkpoint after steps 4, 8, ..., 24 and 27.
    make_image_folder(&data, 60);
    // With dropout, whose masks must come out the same after a resume too.
    let text = |out: &std::path::Path| {
        classification_config(&data, out, 3)
            .replace("[run]", "[run]\neval_every = 4")
            .replace("[data]", "hidden_dropout_prob = 0.1\nattention_probs_dropout_prob = 0.1\n[data]")
    };
    let straight = tmp.path().join("straight");
    let config = write_config(tmp.path(), "a.toml", &text(&straight));
    let stderr = assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    assert!(stderr.contains("27 steps, evaluated every 4"), "{stderr}");

    let csv = std::fs::read_to_string(straight.join("metrics.csv")).unwrap();
    let valid: Vec<(u64, String)> = csv
        .lines()
        .filter(|l| l.split(',').nth(2) == Some("valid"))
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].parse().unwrap(), cells[1].to_string())
        })
        .collect();
    let steps: Vec<u64> = valid.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, vec![4, 8, 12, 16, 20, 24, 27], "{csv}");
    // The epoch column: real epochs done, fractional.
    assert_eq!(valid[2].1, "1.33333");
    assert_eq!(valid[6].1, "3");
    let last_train_step = csv.lines().rfind(|l| l.split(',').nth(2) == Some("train")).unwrap();
    assert!(last_train_step.starts_with("27,3,train,"), "{csv}");
    // Checkpoints are numbered by evaluation: the last (keep_last = 1) and the best are kept.
    let best = stderr.split("exporting the best checkpoint (").nth(1).and_then(|s| s.split(':').next()).unwrap();
    let mut kept: Vec<String> = std::fs::read_dir(straight.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    let mut expected: Vec<String> = ["7".to_string(), best.to_string()]
        .iter()
        .flat_map(|n| {
            ["model", "optim", "scheduler"]
                .map(|r| format!("{r}-{n}.bpk"))
                .into_iter()
                .chain([format!("manifest-{n}.json")])
        })
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(kept, expected);
    let exported = tmp.path().join("exported");
    let run = straight.to_str().unwrap();
    assert_ok(&vit_train(&["export", "--run", run, "--epoch", best, "--output", exported.to_str().unwrap()]));
    assert_eq!(
        std::fs::read(straight.join("best/model.safetensors")).unwrap(),
        std::fs::read(exported.join("model.safetensors")).unwrap()
    );

    // Killed at several points (just as a checkpoint appears, and inside segments that span an
    // epoch's end) and resumed by running the same command again: the same run, bit for bit.
    let resumed = tmp.path().join("resumed");
    let config = write_config(tmp.path(), "b.toml", &text(&resumed));
    let ms = Duration::from_millis;
    let kills = kill_after_checkpoints(&config, &resumed, &[(1, ms(0)), (2, ms(3)), (4, ms(6)), (5, ms(1))]);
    assert!(kills >= 2, "only {kills} runs were interrupted");
    let stderr = assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    assert!(stderr.contains("resuming"), "{stderr}");
    assert_eq!(metrics_without_speed(&straight), metrics_without_speed(&resumed));
    assert!(
        std::fs::read(straight.join("best/model.safetensors")).unwrap()
            == std::fs::read(resumed.join("best/model.safetensors")).unwrap(),
        "resumed weights differ from the uninterrupted run's"
    );
}

#[test]
fn max_steps_stops_the_run_inside_an_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // 45 training images in batches of 16: 3 steps per epoch; 4 steps end one step into epoch 2.
    make_image_folder(&data, 20);
    let out = tmp.path().join("run");
    let text = classification_config(&data, &out, 100)
        .replace("[run]", "[run]\nmax_steps = 4")
        .replace("log_every = 5", "log_every = 1");
    let config = write_config(tmp.path(), "max.toml", &text);
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    let rows = metrics_without_speed(&out);
    // (step, epoch) of the rows of a split.
    let cells = |split: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r.split(',').nth(2) == Some(split))
            .map(|r| r.split(',').take(2).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(cells("train"), vec!["1,0.333333", "2,0.666667", "3,1", "4,1.33333"]);
    assert_eq!(cells("valid"), vec!["3,1", "4,1.33333"]);
}

#[test]
fn bad_configs_name_their_field() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 2);
    let good = classification_config(&data, &tmp.path().join("run"), 1);

    let cases = [
        (good.replace("batch_size = 16", "batch_sise = 16"), "did you mean `batch_size`"),
        (good.replace("lr = 2e-3", "lr = \"fast\""), "lr"),
        (good.replace("dataset = \"imagefolder\"", "dataset = \"mnist\""), "data.dataset"),
        (good.replace("schedule = \"cosine\"", "schedule = \"wavy\""), "optimizer.schedule"),
        (
            good.replace(&format!("path = \"{}\"", data.display()), "path = \"/nonexistent/images\""),
            "/nonexistent/images",
        ),
        (good.replace("[run]", "[run]\ndevice = \"cuda:0\""), "--features cuda"),
        (good.replace("patch_size = 8", "patch_size = 8\nnum_channels = 2"), "model.num_channels: must be 1"),
        (good.replace("validation_split = 0.25", "validation_split = 0.0"), "data.validation = \"test\""),
        (good.replace("validation_split = 0.25", "validation = \"test\""), "needs a test set: set data.test_dir"),
        (
            good.replace(
                "validation_split = 0.25",
                "validation_split = 0.25\nvalidation = \"test\"\ntest_dir = \"/t\"",
            ),
            "has no effect",
        ),
        (
            good.replace("dataset = \"imagefolder\"", "dataset = \"cifar10\"\ntest_dir = \"/t\"")
                .replace("validation_split = 0.25", ""),
            "data.test_dir: only for an ImageFolder",
        ),
        (good.replace("lr = 2e-3", "lr = 2e-3\nmin_lr = 1.0"), "optimizer.min_lr"),
        (good.replace("batch_size = 16", "batch_size = 16\nauto_augment = \"rand-m9-x3\""), "auto_augment"),
        (good.replace("batch_size = 16", "batch_size = 16\nauto_augment = \"randaugment\""), "auto_augment"),
        (good.replace("batch_size = 16", "batch_size = 16\ncrop_scale = [0.5, 0.2]"), "data.crop_scale"),
        (good.replace("batch_size = 16", "batch_size = 16\nhflip = 2.0"), "data.hflip"),
        (good.replace("batch_size = 16", "batch_size = 16\nrandom_erasing_mode = \"noise\""), "random_erasing_mode"),
        (good.replace("batch_size = 16", "batch_size = 16\nmixup_mode = \"elements\""), "did you mean \"elem\""),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let config = write_config(tmp.path(), &format!("bad{i}.toml"), text);
        let output = vit_train(&["--config", config.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "case {i} should fail");
        assert!(stderr.contains(expected), "case {i}: expected `{expected}` in:\n{stderr}");
        assert!(!stderr.contains("panicked"), "case {i} panicked:\n{stderr}");
    }
    let output = vit_train(&["--config", "/nonexistent/config.toml"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/config.toml"));
}

#[test]
fn a_different_run_is_not_overwritten_without_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 4);
    let out = tmp.path().join("run");
    let first = write_config(tmp.path(), "first.toml", &classification_config(&data, &out, 1));
    assert_ok(&vit_train(&["--config", first.to_str().unwrap()]));
    let model_before = std::fs::read(out.join("best/model.safetensors")).unwrap();

    let second = write_config(
        tmp.path(),
        "second.toml",
        &classification_config(&data, &out, 2).replace("lr = 2e-3", "lr = 1e-3"),
    );
    let output = vit_train(&["--config", second.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--overwrite"));
    assert_eq!(std::fs::read(out.join("best/model.safetensors")).unwrap(), model_before, "the first run was touched");

    assert_ok(&vit_train(&["--config", second.to_str().unwrap(), "--overwrite"]));
    assert_eq!(valid_rows(&out).len(), 2);
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 8);
    let out = tmp.path().join("run");
    let good = write_config(tmp.path(), "good.toml", &classification_config(&data, &out, 2));
    assert_ok(&vit_train(&["--config", good.to_str().unwrap()]));
    let best_before = std::fs::read(out.join("best/model.safetensors")).unwrap();

    // Resume for two more epochs with an absurd learning rate: the loss blows up.
    let bad_text = classification_config(&data, &out, 4)
        .replace("lr = 2e-3", "lr = 1e30")
        .replace("warmup_ratio = 0.1", "warmup_ratio = 0.0")
        .replace("[optimizer]", "[optimizer]\nmax_grad_norm = 0.0");
    let bad = write_config(tmp.path(), "bad.toml", &bad_text);
    let output = vit_train(&["--config", bad.to_str().unwrap(), "--resume"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("micro-batch") && stderr.contains("last good checkpoint"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read(out.join("best/model.safetensors")).unwrap(), best_before, "the export was replaced");
    // The values are read back at the end of the segment (not every step): the one the non-finite
    // value came from is named, and nothing of epoch 3 is saved.
    assert!(stderr.contains("at micro-batch 6."), "{stderr}");
    let saved: Vec<String> = std::fs::read_dir(out.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(saved.iter().all(|f| !f.contains("-3.")), "a checkpoint of the non-finite epoch was saved: {saved:?}");
    let exported = tmp.path().join("epoch2");
    assert_ok(&vit_train(&[
        "export",
        "--run",
        out.to_str().unwrap(),
        "--epoch",
        "2",
        "--output",
        exported.to_str().unwrap(),
    ]));

    // Asked to, the run skips such steps instead and finishes.
    let output = vit_train(&["--config", bad.to_str().unwrap(), "--resume", "--skip-nonfinite"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("skipped"), "{stderr}");
}

#[test]
fn an_unwritable_output_directory_fails_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 2);
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let config = write_config(tmp.path(), "c.toml", &classification_config(&data, &blocker.join("run"), 1));
    let output = vit_train(&["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("output directory") && stderr.contains("a-file"), "{stderr}");
    assert!(!stderr.contains("epoch 1/"), "training started: {stderr}");
}

#[test]
fn a_full_disk_is_a_clear_error_and_leaves_no_half_written_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 8);
    let small = tmp.path().join("small-disk");
    std::fs::create_dir_all(&small).unwrap();
    // A 300 KiB filesystem: room for the config files, not for a checkpoint. Mounting needs root;
    // where it is refused, say so and skip.
    if !mount_tmpfs(&small, "size=300k") {
        eprintln!("SKIPPED: cannot mount a small tmpfs here (needs root)");
        return;
    }
    let out = small.join("run");
    let config = write_config(tmp.path(), "c.toml", &classification_config(&data, &out, 2));
    let output = vit_train(&["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let listing: Vec<(String, u64)> = std::fs::read_dir(out.join("checkpoint"))
        .map(|d| {
            d.map(|e| e.unwrap())
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
                .collect()
        })
        .unwrap_or_default();
    let _ = std::process::Command::new("umount").arg(&small).status();
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("No space left") && stderr.contains("cannot write"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(listing.iter().all(|(n, _)| !n.contains(".tmp")), "temporary files left: {listing:?}");
    // The epoch whose save failed is not a complete checkpoint, so a later resume cannot pick it.
    let complete =
        ["model-1.bpk", "optim-1.bpk", "scheduler-1.bpk"].iter().all(|f| listing.iter().any(|(n, _)| n == f));
    assert!(!complete, "a failed save left a complete-looking checkpoint: {listing:?}");
}

/// Runs the config and asserts a clear read-only error naming `dir`, before any training.
fn assert_read_only_refused(config: &std::path::Path, dir: &std::path::Path) {
    let output = vit_train(&["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("output directory") && stderr.contains(dir.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("Read-only file system") && stderr.contains("run.output_dir"), "{stderr}");
    assert!(!stderr.contains("epoch 1/") && !stderr.contains("resuming"), "training started: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_read_only_output_directory_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 2);
    // Tests run as root, which ignores permission bits: a read-only mount is what stops root.
    let mount = tmp.path().join("ro");
    std::fs::create_dir_all(&mount).unwrap();
    if !mount_tmpfs(&mount, "ro,size=1m") {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    }
    // The output directory would be created inside a read-only filesystem, or is one itself.
    let inside = mount.join("run");
    let a = write_config(tmp.path(), "a.toml", &classification_config(&data, &inside, 1));
    let b = write_config(tmp.path(), "b.toml", &classification_config(&data, &mount, 1));
    let result = std::panic::catch_unwind(|| {
        assert_read_only_refused(&a, &inside);
        assert_read_only_refused(&b, &mount);
    });
    let _ = std::process::Command::new("umount").arg(&mount).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }

    // A finished run whose directory became read-only: running it again (a resume) is refused
    // before anything is touched.
    assert!(mount_tmpfs(&mount, "rw,size=64m"), "a writable tmpfs mounts where a read-only one did");
    let config = write_config(tmp.path(), "c.toml", &classification_config(&data, &mount, 1));
    let first = vit_train(&["--config", config.to_str().unwrap()]);
    let remounted = std::process::Command::new("mount")
        .args(["-o", "remount,ro", mount.to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success());
    let result = std::panic::catch_unwind(|| {
        assert_ok(&first);
        assert!(remounted, "cannot remount the tmpfs read-only");
        assert_read_only_refused(&config, &mount);
    });
    let _ = std::process::Command::new("umount").arg(&mount).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn gradient_accumulation_steps_the_optimizer_and_schedule_once_per_group() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // 15 training images per class: 45 images, 3 micro-batches of 16 per epoch, so 2 optimizer
    // steps per epoch (2 + the epoch's last, single micro-batch) and 4 in 2 epochs.
    make_image_folder(&data, 20);
    let out = tmp.path().join("run");
    let text = classification_config(&data, &out, 2)
        .replace("schedule = \"cosine\"", "schedule = \"linear\"\ngrad_accumulation = 2")
        .replace("warmup_ratio = 0.1", "warmup_ratio = 0.0")
        .replace("log_every = 5", "log_every = 1");
    let config = write_config(tmp.path(), "acc.toml", &text);
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let lrs: Vec<f64> = csv
        .lines()
        .filter(|l| l.split(',').nth(2) == Some("train"))
        .filter_map(|l| l.split(',').nth(6)?.parse().ok())
        .collect();
    // Linear decay over 4 steps from 2e-3: the last step (index 3) runs at 2e-3 · 1/4.
    let last = *lrs.last().unwrap();
    assert!((last - 5e-4).abs() < 1e-8, "last lr {last}, expected 5e-4: {lrs:?}");

    // Evaluating every 3 steps makes the first segment span the end of epoch 1, whose last,
    // single micro-batch is still a step of its own: the training is the same, and so are the
    // final weights.
    let segmented = tmp.path().join("segmented");
    let text = text
        .replace(&out.display().to_string(), &segmented.display().to_string())
        .replace("[run]", "[run]\neval_every = 3");
    let config = write_config(tmp.path(), "acc3.toml", &text);
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    let last_weights = |run: &std::path::Path| {
        let export = run.with_extension("last");
        assert_ok(&vit_train(&["export", "--run", run.to_str().unwrap(), "--output", export.to_str().unwrap()]));
        std::fs::read(export.join("model.safetensors")).unwrap()
    };
    assert!(last_weights(&out) == last_weights(&segmented), "evaluating every 3 steps changed the training");
}

#[test]
fn a_grayscale_model_trains_on_one_channel_and_predicts_colour_and_gray_images() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for (c, name) in CLASSES.iter().enumerate() {
        let dir = data.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..8 {
            let rgb = common::pattern(c, (c * 100_003 + i) as u64);
            image::DynamicImage::ImageRgb8(rgb).to_luma8().save(dir.join(format!("{i:04}.png"))).unwrap();
        }
    }
    let out = tmp.path().join("run");
    let text = classification_config(&data, &out, 1).replace("patch_size = 8", "patch_size = 8\nnum_channels = 1");
    let config = write_config(tmp.path(), "gray.toml", &text);
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));

    let (_, model_config, report) =
        ViTForImageClassification::from_pretrained(out.join("best"), &LoadOptions::default(), &Device::flex()).unwrap();
    assert!(report.is_exact(), "{report}");
    assert_eq!(model_config.num_channels, 1);
    let processor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("best/preprocessor_config.json")).unwrap()).unwrap();
    assert_eq!(processor["image_mean"].as_array().map(Vec::len), Some(1), "{processor}");

    let colour = tmp.path().join("colour.png");
    common::pattern(1, 5).save(&colour).unwrap();
    let gray = tmp.path().join("gray.png");
    let luma = vit_data::convert::to_gray_rgb(&common::pattern(1, 5));
    image::GrayImage::from_fn(luma.width(), luma.height(), |x, y| image::Luma([luma.get_pixel(x, y).0[0]]))
        .save(&gray)
        .unwrap();
    let best = out.join("best");
    let (colour, gray) = (colour.to_str().unwrap(), gray.to_str().unwrap());
    let output = vit_train(&["predict", "--model", best.to_str().unwrap(), "--json", colour, gray]);
    assert_ok(&output);
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    // A colour image is converted as Pillow's convert("L") before the resize: the same logits as
    // its gray version.
    assert_eq!(lines[0]["logits"], lines[1]["logits"], "{lines:?}");
}

#[test]
fn a_test_set_is_held_out_and_evaluated_once_at_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, test) = (tmp.path().join("data"), tmp.path().join("test"));
    make_image_folder(&data, 8);
    make_image_folder(&test, 4);
    let out = tmp.path().join("run");
    let text = classification_config(&data, &out, 2).replace(
        "validation_split = 0.25",
        &format!("validation_split = 0.25\ntest_dir = {:?}", test.to_str().unwrap()),
    );
    let config = write_config(tmp.path(), "test.toml", &text);
    let stderr = assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    assert!(stderr.contains("test: accuracy") && stderr.contains("on 12 held-out images"), "{stderr}");

    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let test_rows: Vec<&str> = metrics.lines().filter(|l| l.split(',').nth(2) == Some("test")).collect();
    assert_eq!(test_rows.len(), 1, "{metrics}");
    let exported_step = stderr.split("exporting the best checkpoint (").nth(1).unwrap();
    let exported_step = exported_step.split("step ").nth(1).and_then(|s| s.split(',').next()).unwrap();
    assert_eq!(test_rows[0].split(',').next(), Some(exported_step), "the test row is at the exported step");
    assert_eq!(metrics.lines().last(), Some(test_rows[0]), "written last, once");

    // `eval` reports the test split by default, the validation split on request.
    let (best, config) = (out.join("best"), config.to_str().unwrap().to_string());
    let report = assert_stdout(&vit_train(&["eval", "--model", best.to_str().unwrap(), "--config", &config]));
    assert!(report.contains("(test split): 12 images"), "{report}");
    let report = assert_stdout(&vit_train(&[
        "eval",
        "--model",
        best.to_str().unwrap(),
        "--config",
        &config,
        "--split",
        "valid",
    ]));
    assert!(report.contains("(valid split): 6 images"), "a quarter of 24: {report}");
    // Validating on the test set, spelled out: the validation split is the test images.
    let report = assert_stdout(&vit_train(&[
        "eval",
        "--model",
        best.to_str().unwrap(),
        "--config",
        &config,
        "--set",
        "data.validation_split=0.0",
        "--set",
        "data.validation=test",
        "--split",
        "valid",
    ]));
    assert!(report.contains("(valid split): 12 images"), "{report}");
}

fn assert_stdout(output: &std::process::Output) -> String {
    assert_ok(output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The timm/DeiT-style options of a classification run (Mixup/CutMix, label smoothing, drop path,
/// EMA, lr floor and warmup start) on top of the tiny test config.
fn timm_recipe(data: &std::path::Path, out: &std::path::Path, epochs: usize, extra_run: &str) -> String {
    classification_config(data, out, epochs)
        .replace("[data]", "drop_path_rate = 0.2\n[data]")
        .replace(
            "augmentation = \"pad-crop-flip\"",
            "augmentation = \"random-resized-crop\"\ncrop_scale = [0.35, 1.0]\nhflip = 0.3\n\
             auto_augment = \"rand-m9-mstd0.5-inc1\"\nrandom_erasing = 0.25\nrandom_erasing_mode = \"pixel\"",
        )
        .replace("batch_size = 16", "batch_size = 16\nmixup_alpha = 0.8\ncutmix_alpha = 1.0\nmixup_mode = \"elem\"")
        .replace("[optimizer]", "[optimizer]\nlabel_smoothing = 0.1")
        .replace("lr = 2e-3", "lr = 2e-3\nmin_lr = 1e-4\nwarmup_lr = 1e-5")
        .replace("[run]", &format!("[run]\nema_decay = 0.9\nema_warmup = true\n{extra_run}"))
}

#[test]
fn the_timm_recipe_with_a_weight_average_is_validated_exported_on_request_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 20);
    let straight = tmp.path().join("straight");
    let config = write_config(tmp.path(), "a.toml", &timm_recipe(&data, &straight, 4, "export_ema = true"));
    let stderr = assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    assert!(stderr.contains("valid_ema |"), "{stderr}");

    // One valid_ema row per validation, at the same steps as the valid rows, with other numbers.
    let csv = std::fs::read_to_string(straight.join("metrics.csv")).unwrap();
    let rows = |split: &str| -> Vec<Vec<String>> {
        csv.lines()
            .filter(|l| l.split(',').nth(2) == Some(split))
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let (valid, ema) = (rows("valid"), rows("valid_ema"));
    assert_eq!(valid.len(), 4, "{csv}");
    assert_eq!(valid.iter().map(|r| &r[0]).collect::<Vec<_>>(), ema.iter().map(|r| &r[0]).collect::<Vec<_>>());
    assert_ne!(valid.iter().map(|r| &r[3]).collect::<Vec<_>>(), ema.iter().map(|r| &r[3]).collect::<Vec<_>>());

    // export_ema: the exported model is the average of the checkpoint with the lowest valid_ema
    // loss, not the trained weights (which `export_ema = false` exports from the same run).
    let best_ema_step = ema
        .iter()
        .min_by(|a, b| a[3].parse::<f64>().unwrap().total_cmp(&b[3].parse::<f64>().unwrap()))
        .map(|r| r[0].clone())
        .unwrap();
    assert!(stderr.contains(&format!(": step {best_ema_step}, epoch")), "exported by valid_ema: {stderr}");
    let best = stderr.split("exporting the best checkpoint (").nth(1).and_then(|s| s.split(':').next()).unwrap();
    let run = straight.to_str().unwrap();
    let trained = tmp.path().join("trained");
    assert_ok(&vit_train(&[
        "export",
        "--run",
        run,
        "--epoch",
        best,
        "--output",
        trained.to_str().unwrap(),
        "--weights",
        "trained",
    ]));
    let averaged = std::fs::read(straight.join("best/model.safetensors")).unwrap();
    assert_ne!(averaged, std::fs::read(trained.join("model.safetensors")).unwrap());
    let again = tmp.path().join("again");
    assert_ok(&vit_train(&["export", "--run", run, "--epoch", best, "--output", again.to_str().unwrap()]));
    assert_eq!(averaged, std::fs::read(again.join("model.safetensors")).unwrap(), "export = the run's export");

    // Killed and resumed: the same rows (valid_ema included) and weights, bit for bit.
    let resumed = tmp.path().join("resumed");
    let config = write_config(tmp.path(), "b.toml", &timm_recipe(&data, &resumed, 4, "export_ema = true"));
    let ms = Duration::from_millis;
    let kills = kill_after_checkpoints(&config, &resumed, &[(1, ms(0)), (2, ms(2)), (3, ms(1))]);
    assert!(kills >= 1, "no run was interrupted");
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    assert_eq!(metrics_without_speed(&straight), metrics_without_speed(&resumed));
    assert!(averaged == std::fs::read(resumed.join("best/model.safetensors")).unwrap(), "resumed weights differ");
}

/// The exported final weights of `run` (`vit-train export`), by key.
fn final_weights(run: &std::path::Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    let export = run.with_extension("last");
    assert_ok(&vit_train(&["export", "--run", run.to_str().unwrap(), "--output", export.to_str().unwrap()]));
    vit_model::checkpoint::safetensors_file::read_file(&export.join("model.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.data))
        .collect()
}

/// The largest absolute difference between two sets of weights with the same keys and shapes.
fn max_weight_difference(
    a: &std::collections::BTreeMap<String, Vec<f32>>,
    b: &std::collections::BTreeMap<String, Vec<f32>>,
) -> f32 {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter().flat_map(|(k, x)| x.iter().zip(&b[k]).map(|(x, y)| (x - y).abs())).fold(0.0, f32::max)
}

/// A metrics.csv row's (step, epoch, split, lr).
type ScheduleRow = (String, String, String, String);

/// metrics.csv rows as (step, epoch, split, lr) and the loss.
fn schedule_and_losses(run: &std::path::Path) -> (Vec<ScheduleRow>, Vec<f64>) {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (step, epoch, split, loss, lr) = (col("step"), col("epoch"), col("split"), col("loss"), col("lr"));
    csv.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            ((c[step].into(), c[epoch].into(), c[split].into(), c[lr].into()), c[loss].parse().unwrap_or(f64::NAN))
        })
        .unzip()
}

#[test]
fn several_devices_train_as_one_device_with_their_global_batch_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // 36 training images: micro-batches of 16, 16 and 4 per epoch, in groups of 2 (2 optimizer
    // steps per epoch), on one device with batch 16 or as two shares of 8 on two devices.
    make_image_folder(&data, 16);
    let config = |name: &str, batch: usize, devices: &str, accumulation: usize| {
        let out = tmp.path().join(name);
        // Drop path on: each device's share draws what its samples draw on one device.
        let text = classification_config(&data, &out, 2)
            .replace("[model]", "[model]\ndrop_path_rate = 0.2")
            .replace("batch_size = 16", &format!("batch_size = {batch}\neval_batch_size = 16"))
            .replace("schedule = \"cosine\"", &format!("schedule = \"cosine\"\ngrad_accumulation = {accumulation}"))
            .replace("log_every = 5", &format!("log_every = 1\ndevices = {devices}"));
        (write_config(tmp.path(), &format!("{name}.toml"), &text), out)
    };
    let (one_config, one) = config("one", 16, "[]", 2);
    let (two_config, two) = config("two", 8, "[\"cpu\", \"cpu\"]", 2);
    assert_ok(&vit_train(&["--config", one_config.to_str().unwrap()]));
    let stderr = assert_ok(&vit_train(&["--config", two_config.to_str().unwrap()]));
    assert!(stderr.contains("training on 2 devices") && stderr.contains("32 images per optimizer step"), "{stderr}");

    // The same steps, epochs, rows and learning rates; the same losses and weights to float
    // tolerance (the devices' gradients are added in another order).
    let (one_rows, one_losses) = schedule_and_losses(&one);
    let (two_rows, two_losses) = schedule_and_losses(&two);
    assert_eq!(one_rows, two_rows);
    assert!(one_rows.iter().any(|r| r.0 == "4" && r.2 == "valid"), "4 optimizer steps in 2 epochs: {one_rows:?}");
    for (a, b) in one_losses.iter().zip(&two_losses) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "losses {one_losses:?} vs {two_losses:?}");
    }
    let difference = max_weight_difference(&final_weights(&one), &final_weights(&two));
    assert!(difference < 1e-4, "weights differ by {difference}");

    // Killed after each checkpoint and resumed, a two-device run ends where the uninterrupted one
    // did.
    let (straight_config, straight) = config("straight", 8, "[\"cpu\", \"cpu\"]", 1);
    assert_ok(&vit_train(&["--config", straight_config.to_str().unwrap()]));
    let (resumed_config, resumed) = config("resumed", 8, "[\"cpu\", \"cpu\"]", 1);
    kill_once_committed(&resumed_config, &resumed, 1);
    assert!(
        resumed.join("checkpoint/manifest-1.json").exists() && !resumed.join("checkpoint/manifest-2.json").exists(),
        "the run was not interrupted between its checkpoints"
    );
    let stderr = assert_ok(&vit_train(&["--config", resumed_config.to_str().unwrap(), "--resume"]));
    assert!(stderr.contains("resuming"), "{stderr}");
    let (straight_rows, straight_losses) = schedule_and_losses(&straight);
    let (resumed_rows, resumed_losses) = schedule_and_losses(&resumed);
    assert_eq!(straight_rows, resumed_rows);
    for (a, b) in straight_losses.iter().zip(&resumed_losses) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "losses {straight_losses:?} vs {resumed_losses:?}");
    }
    let difference = max_weight_difference(&final_weights(&straight), &final_weights(&resumed));
    assert!(difference < 1e-5, "resumed weights differ by {difference}");

    // The same in float16: the loss scaler the two devices share is checkpointed and restored.
    let f16_config = |name: &str| {
        let (path, out) = config(name, 8, "[\"cpu\", \"cpu\"]", 1);
        let text =
            std::fs::read_to_string(&path).unwrap().replace("log_every = 1", "log_every = 1\nprecision = \"f16\"");
        std::fs::write(&path, text).unwrap();
        (path, out)
    };
    let (straight_config, straight) = f16_config("straight-f16");
    assert_ok(&vit_train(&["--config", straight_config.to_str().unwrap()]));
    let (resumed_config, resumed) = f16_config("resumed-f16");
    kill_once_committed(&resumed_config, &resumed, 1);
    assert!(!resumed.join("checkpoint/manifest-2.json").exists(), "the float16 run was not interrupted");
    let stderr = assert_ok(&vit_train(&["--config", resumed_config.to_str().unwrap(), "--resume"]));
    assert!(stderr.contains("resuming") && !stderr.contains("records no float16 loss scale"), "{stderr}");
    let scaler_at_end = |run: &std::path::Path| {
        let manifest = std::fs::read_to_string(run.join("checkpoint/manifest-2.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&manifest).unwrap()["loss_scaler"].clone()
    };
    let uninterrupted = scaler_at_end(&straight);
    assert!(uninterrupted["finite_steps"].as_u64().is_some_and(|n| n > 0), "{uninterrupted}");
    assert_eq!(uninterrupted, scaler_at_end(&resumed), "the resumed two-device run's loss scaler");
    let (straight_rows, straight_losses) = schedule_and_losses(&straight);
    let (resumed_rows, resumed_losses) = schedule_and_losses(&resumed);
    assert_eq!(straight_rows, resumed_rows);
    for (a, b) in straight_losses.iter().zip(&resumed_losses) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "losses {straight_losses:?} vs {resumed_losses:?}");
    }
}

/// The logits `vit-train predict --json` gives for every image under `images`, by file.
fn predicted_logits(model: &std::path::Path, images: &std::path::Path, precision: &str) -> Vec<Vec<f64>> {
    let output = vit_train(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--json",
        "--precision",
        precision,
        images.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
        })
        .collect()
}

#[test]
fn mixed_precision_trains_to_the_float32_accuracy_resumes_exactly_and_exports_float32() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 40);
    let epochs = 8;
    let config = |name: &str, precision: &str| {
        let out = tmp.path().join(name);
        let text = classification_config(&data, &out, epochs)
            .replace("log_every = 5", &format!("log_every = 5\nprecision = \"{precision}\""));
        (write_config(tmp.path(), &format!("{name}.toml"), &text), out)
    };
    let mut final_accuracy = std::collections::BTreeMap::new();
    let mut f16_stderr = String::new();
    for precision in ["f32", "bf16", "f16"] {
        let (path, out) = config(precision, precision);
        let stderr = assert_ok(&vit_train(&["--config", path.to_str().unwrap()]));
        if precision == "f16" {
            f16_stderr = stderr.clone();
        }
        let rows = valid_rows(&out);
        assert_eq!(rows.len(), epochs);
        assert!(rows.iter().all(|r| r.1.is_finite()), "{precision}: {rows:?}");
        final_accuracy.insert(precision, rows.last().unwrap().2.unwrap());
        match precision {
            "f16" => assert!(stderr.contains("float16 loss scaling:"), "{stderr}"),
            "bf16" => assert!(stderr.contains("matrix products in bfloat16"), "{stderr}"),
            _ => assert!(!stderr.contains("mixed precision"), "{stderr}"),
        }
        // Checkpoints and exports stay float32.
        let header = vit_model::checkpoint::safetensors_file::read_header(&out.join("best/model.safetensors")).unwrap();
        assert!(header.tensors.values().all(|(dtype, _)| format!("{dtype:?}") == "F32"), "{precision}");
    }
    // bfloat16 on the software model of the AMX tiles (the path AMX CPUs take, packing and all):
    // every dense layer of the training steps and the evaluation on it.
    let (path, out) = config("bf16-tiles", "bf16");
    let output = vit_train_env(&["--config", path.to_str().unwrap()], &[("VIT_BF16_KERNEL", "emulated")]);
    let stderr = assert_ok(&output);
    assert!(stderr.contains("software model of AMX"), "{stderr}");
    final_accuracy.insert("bf16 (tiles)", valid_rows(&out).last().unwrap().2.unwrap());
    println!("final validation accuracy by precision: {final_accuracy:?}");
    let f32_accuracy = final_accuracy["f32"];
    assert!(f32_accuracy >= 70.0, "the float32 run did not learn: {final_accuracy:?}");
    assert!((final_accuracy["bf16"] - f32_accuracy).abs() <= 0.5, "{final_accuracy:?}");
    assert!((final_accuracy["bf16 (tiles)"] - f32_accuracy).abs() <= 0.5, "{final_accuracy:?}");
    assert!(final_accuracy["f16"] >= f32_accuracy - 10.0, "float16 diverged: {final_accuracy:?}");

    let latest = tmp.path().join("f32.last-f32");
    let run = tmp.path().join("f32");
    assert_ok(&vit_train(&["export", "--run", run.to_str().unwrap(), "--output", latest.to_str().unwrap()]));

    // bf16 and f32 predictions of the same exported model agree to bf16's precision.
    let model = tmp.path().join("f32/best");
    let (ours, low) = (predicted_logits(&model, &data, "f32"), predicted_logits(&model, &data, "bf16"));
    assert_eq!(ours.len(), 120);
    let worst = ours.iter().flatten().zip(low.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst > 0.0 && worst < 0.1, "bf16 logits differ from float32 by {worst}");

    // A bfloat16 export: half the size, its logits those of the float32 weights to bf16 precision.
    let half = tmp.path().join("f32-bf16");
    let run = tmp.path().join("f32");
    assert_ok(&vit_train(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--dtype",
        "bf16",
        "--output",
        half.to_str().unwrap(),
    ]));
    let header = vit_model::checkpoint::safetensors_file::read_header(&half.join("model.safetensors")).unwrap();
    assert!(header.tensors.values().all(|(dtype, _)| format!("{dtype:?}") == "BF16"));
    let (size, full_size) = (
        std::fs::metadata(half.join("model.safetensors")).unwrap().len(),
        std::fs::metadata(run.join("best/model.safetensors")).unwrap().len(),
    );
    assert!(size as f64 <= 0.5 * full_size as f64 + 8192.0, "{size} vs {full_size} bytes");
    let from_half = predicted_logits(&half, &data, "f32");
    let last = predicted_logits(&run.with_extension("last-f32"), &data, "f32");
    let worst = last.iter().flatten().zip(from_half.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst < 0.1, "bf16 weights change the logits by {worst}");

    // A bf16 run killed after its first checkpoint and resumed ends as the uninterrupted one.
    let (path, resumed) = config("bf16-resumed", "bf16");
    kill_once_committed(&path, &resumed, 2);
    assert!(!resumed.join("best").exists(), "the run was not interrupted");
    assert!(assert_ok(&vit_train(&["--config", path.to_str().unwrap(), "--resume"])).contains("resuming"));
    assert_eq!(metrics_without_speed(&tmp.path().join("bf16")), metrics_without_speed(&resumed));
    assert!(
        std::fs::read(tmp.path().join("bf16/best/model.safetensors")).unwrap()
            == std::fs::read(resumed.join("best/model.safetensors")).unwrap(),
        "the resumed bf16 run's weights differ"
    );

    // A float16 run resumed carries its loss scaler over: each checkpoint's manifest records it.
    let (path, resumed) = config("f16-resumed", "f16");
    kill_once_committed(&path, &resumed, 2);
    let resumed_stderr = assert_ok(&vit_train(&["--config", path.to_str().unwrap(), "--resume"]));
    assert!(!resumed_stderr.contains("records no float16 loss scale"), "{resumed_stderr}");
    let scaler_at_end = |run: &std::path::Path| {
        let manifest = std::fs::read_to_string(run.join(format!("checkpoint/manifest-{epochs}.json"))).unwrap();
        serde_json::from_str::<serde_json::Value>(&manifest).unwrap()["loss_scaler"].clone()
    };
    let uninterrupted = scaler_at_end(&tmp.path().join("f16"));
    assert!(uninterrupted["finite_steps"].as_u64().is_some_and(|n| n > 0), "{uninterrupted}");
    assert_eq!(uninterrupted, scaler_at_end(&resumed), "the resumed run's loss scaler");
    let scaling_line = |stderr: &str| stderr.lines().find(|l| l.contains("float16 loss scaling:")).map(str::to_string);
    assert_eq!(scaling_line(&f16_stderr), scaling_line(&resumed_stderr));
    assert_eq!(metrics_without_speed(&tmp.path().join("f16")), metrics_without_speed(&resumed));

    // A precision that does not exist is named with the ones that do.
    let (path, _) = config("f8", "f8");
    let output = vit_train(&["--config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("run.precision") && stderr.contains("bf16"), "{stderr}");
}

#[test]
fn validation_loss_is_the_mean_over_images_whatever_the_eval_batch_size() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // 12 validation images: one batch of 12, or batches of 5, 5 and 2.
    make_image_folder(&data, 16);
    let rows = |eval_batch: usize| {
        let out = tmp.path().join(format!("eval{eval_batch}"));
        let text = classification_config(&data, &out, 2)
            .replace("batch_size = 16", &format!("batch_size = 16\neval_batch_size = {eval_batch}"));
        assert_ok(&vit_train(&["--config", write_config(tmp.path(), "c.toml", &text).to_str().unwrap()]));
        valid_rows(&out)
    };
    let (whole, split) = (rows(12), rows(5));
    assert_eq!(whole.len(), 2);
    for (a, b) in whole.iter().zip(&split) {
        assert!((a.1 - b.1).abs() <= 1e-5 * a.1.abs().max(1.0), "valid loss {whole:?} vs {split:?}");
        assert_eq!(a.2, b.2, "valid accuracy");
    }
}
