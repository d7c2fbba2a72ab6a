//! End-to-end runs of the `vit-train` binary on tiny synthetic data.

mod common;

use std::time::Instant;

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

    for file in ["run_config.toml", "metrics.csv", "curves.png", "best/config.json", "best/model.safetensors", "best/preprocessor_config.json"] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let (model, config, report) =
        ViTForImageClassification::from_pretrained(out.join("best"), &LoadOptions::default(), &Device::flex()).unwrap();
    assert!(report.is_exact(), "{report}");
    assert_eq!(config.labels(), CLASSES.to_vec());
    assert_eq!(model.num_labels(), 3);

    // `vit-train export` of the best epoch's checkpoint gives the same directory.
    let best_epoch = stderr.split("exporting the best epoch (").nth(1).and_then(|s| s.split(')').next()).unwrap();
    let exported = tmp.path().join("exported");
    let run = out.to_str().unwrap();
    assert_ok(&vit_train(&["export", "--run", run, "--epoch", best_epoch, "--output", exported.to_str().unwrap()]));
    for file in ["model.safetensors", "config.json", "preprocessor_config.json"] {
        assert_eq!(std::fs::read(out.join("best").join(file)).unwrap(), std::fs::read(exported.join(file)).unwrap(), "{file}");
    }
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

    let straight = tmp.path().join("straight");
    let config = write_config(tmp.path(), "a.toml", &classification_config(&data, &straight, epochs));
    let start = Instant::now();
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    let full = start.elapsed();

    // The same run, killed with SIGKILL at points spread over its length; each restart of the same
    // command resumes it.
    let resumed = tmp.path().join("resumed");
    let config = write_config(tmp.path(), "b.toml", &classification_config(&data, &resumed, epochs));
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
    assert!(leftovers.iter().all(|n| n.contains(".tmp")), "unexpected files: {leftovers:?}");
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
        (good.replace(&format!("path = \"{}\"", data.display()), "path = \"/nonexistent/images\""), "/nonexistent/images"),
        (good.replace("[run]", "[run]\ndevice = \"cuda:0\""), "--features cuda"),
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

    let second = write_config(tmp.path(), "second.toml", &classification_config(&data, &out, 2).replace("lr = 2e-3", "lr = 1e-3"));
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
    let exported = tmp.path().join("epoch2");
    assert_ok(&vit_train(&["export", "--run", out.to_str().unwrap(), "--epoch", "2", "--output", exported.to_str().unwrap()]));

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
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=300k", "tmpfs", small.to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a small tmpfs here (needs root)");
        return;
    }
    let out = small.join("run");
    let config = write_config(tmp.path(), "c.toml", &classification_config(&data, &out, 2));
    let output = vit_train(&["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let listing: Vec<(String, u64)> = std::fs::read_dir(out.join("checkpoint"))
        .map(|d| d.map(|e| e.unwrap()).map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len())).collect())
        .unwrap_or_default();
    let _ = std::process::Command::new("umount").arg(&small).status();
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("No space left") && stderr.contains("cannot write"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(listing.iter().all(|(n, _)| !n.contains(".tmp")), "temporary files left: {listing:?}");
    // The epoch whose save failed is not a complete checkpoint, so a later resume cannot pick it.
    let complete = ["model-1.bpk", "optim-1.bpk", "scheduler-1.bpk"].iter().all(|f| listing.iter().any(|(n, _)| n == f));
    assert!(!complete, "a failed save left a complete-looking checkpoint: {listing:?}");
}

/// Mounts a tmpfs at `dir` with `options` (e.g. "ro,size=1m"); false where mounting is refused.
fn mount_tmpfs(dir: &std::path::Path, options: &str) -> bool {
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs", dir.to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success())
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
}
