//! Nothing lost, nothing panics: `--overwrite`, checkpoint sets, resume with another model,
//! non-finite settings and values, and outputs that already exist — each run of the binary on tiny
//! synthetic data.

mod common;

use std::path::Path;

use common::*;

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a failed run that did not panic; returns its stderr.
fn assert_fails(output: &std::process::Output) -> String {
    let stderr = stderr_of(output);
    assert!(!output.status.success(), "the run should have failed:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn overwrite_starts_over_and_moves_the_previous_run_aside_until_it_has_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out, config) = finished_run(tmp.path(), 4, 1);
    // The same config again with --overwrite: a fresh run, not a resume.
    let stderr = assert_ok(&vit_train(&["--config", config.to_str().unwrap(), "--overwrite"]));
    assert!(!stderr.contains("resuming"), "{stderr}");
    assert!(stderr.contains("previous run is now"), "{stderr}");
    assert_eq!(valid_rows(&out).len(), 1, "one run's rows, not two");
    let siblings: Vec<String> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!siblings.iter().any(|n| n.contains(".old-")), "the previous run is deleted once replaced: {siblings:?}");
}

#[test]
fn overwrite_refuses_to_delete_its_own_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let data = out.join("data");
    make_image_folder(&data, 4);
    let config = write_config(tmp.path(), "a.toml", &classification_config(&data, &out, 1));
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    // Fine-tuning from the run's own export, replacing the run: both inputs live inside it.
    let text = classification_config(&data, &out, 1).replace(
        "preset = \"vit-tiny\"\npatch_size = 8\nhidden_size = 48\nnum_hidden_layers = 2\nnum_attention_heads = 4\nintermediate_size = 96",
        &format!("pretrained = {:?}", out.join("best").to_str().unwrap()),
    );
    let config = write_config(tmp.path(), "b.toml", &text);
    let stderr = assert_fails(&vit_train(&["--config", config.to_str().unwrap(), "--overwrite"]));
    assert!(stderr.contains("model.pretrained") && stderr.contains("inside run.output_dir"), "{stderr}");
    assert!(out.join("best/model.safetensors").is_file(), "the model it was to load is still there");
    assert!(data.join(CLASSES[0]).is_dir(), "the data is still there");
}

#[test]
fn resuming_with_another_architecture_is_refused_before_any_file_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out, _) = finished_run(tmp.path(), 4, 1);
    let saved = std::fs::read(out.join("run_config.toml")).unwrap();
    let model_config = std::fs::read(out.join("model_config.json")).unwrap();
    let text = classification_config(&data, &out, 2).replace("hidden_size = 48", "hidden_size = 64");
    let config = write_config(tmp.path(), "b.toml", &text);
    let stderr = assert_fails(&vit_train(&["--config", config.to_str().unwrap(), "--resume"]));
    assert!(stderr.contains("hidden_size") && stderr.contains("48") && stderr.contains("64"), "{stderr}");
    assert_eq!(std::fs::read(out.join("run_config.toml")).unwrap(), saved, "run_config.toml was rewritten");
    assert_eq!(std::fs::read(out.join("model_config.json")).unwrap(), model_config);
    // The original config still resumes (here: trains its one more epoch).
    let config = write_config(tmp.path(), "c.toml", &classification_config(&data, &out, 2));
    assert_ok(&vit_train(&["--config", config.to_str().unwrap(), "--resume"]));
    let export = tmp.path().join("export");
    assert_ok(&vit_train(&["export", "--run", out.to_str().unwrap(), "--output", export.to_str().unwrap()]));
}

#[test]
fn non_finite_settings_name_their_field() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 2);
    let good = classification_config(&data, &tmp.path().join("run"), 1);
    for (field, value) in [
        ("beta1", "nan"),
        ("beta2", "inf"),
        ("eps", "-1e-8"),
        ("weight_decay", "nan"),
        ("max_grad_norm", "nan"),
        ("label_smoothing", "nan"),
    ] {
        let text: String = good
            .lines()
            .filter(|l| !l.starts_with(&format!("{field} =")))
            .map(|l| if l == "[optimizer]" { format!("{l}\n{field} = {value}\n") } else { format!("{l}\n") })
            .collect();
        let config = write_config(tmp.path(), &format!("{field}.toml"), &text);
        let stderr = assert_fails(&vit_train(&["--config", config.to_str().unwrap()]));
        assert!(stderr.contains(&format!("optimizer.{field}")), "{field}: {stderr}");
    }
}

#[test]
fn skipping_non_finite_steps_gives_up_after_too_many_in_a_row_and_exports_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 8);
    let out = tmp.path().join("run");
    // An absurd learning rate: the first step blows the weights up, every later loss is NaN.
    let text = classification_config(&data, &out, 8)
        .replace("lr = 2e-3", "lr = 1e30")
        .replace("warmup_ratio = 0.1", "warmup_ratio = 0.0")
        .replace("[optimizer]", "[optimizer]\nmax_grad_norm = 0.0");
    let config = write_config(tmp.path(), "a.toml", &text);
    let stderr =
        assert_fails(&vit_train(&["--config", config.to_str().unwrap(), "--skip-nonfinite", "--max-skips", "3"]));
    assert!(stderr.contains("in a row") && stderr.contains("--max-skips"), "{stderr}");
    assert!(!out.join("best/model.safetensors").exists(), "non-finite weights were exported");
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_previous_set() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 4);
    let out = tmp.path().join("run");
    let text = classification_config(&data, &out, 2).replace("keep_last = 1", "keep_last = 2");
    let config = write_config(tmp.path(), "a.toml", &text);
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    // Checkpoint 2 truncated (a disk error, a copy cut short), and a stale temporary file.
    let model2 = out.join("checkpoint/model-2.bpk");
    let bytes = std::fs::read(&model2).unwrap();
    std::fs::write(&model2, &bytes[..bytes.len() / 2]).unwrap();
    let stale = out.join("checkpoint/.optim-3.bpk.tmp-4242");
    std::fs::write(&stale, b"half").unwrap();
    let longer = write_config(tmp.path(), "b.toml", &text.replace("epochs = 2", "epochs = 3"));
    let stderr = assert_ok(&vit_train(&["--config", longer.to_str().unwrap(), "--resume"]));
    assert!(stderr.contains("model-2.bpk") && stderr.contains("checkpoint 1"), "{stderr}");
    assert!(!stale.exists(), "stale temporary files are removed on start");
    assert_eq!(valid_rows(&out).len(), 3);

    // Every set damaged: a clear error, not a silent fresh start.
    for entry in std::fs::read_dir(out.join("checkpoint")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bpk") {
            std::fs::write(&path, b"garbage").unwrap();
        }
    }
    let stderr = assert_fails(&vit_train(&["--config", longer.to_str().unwrap(), "--resume"]));
    assert!(stderr.contains("no intact checkpoint") && stderr.contains("--overwrite"), "{stderr}");
}

#[test]
fn export_does_not_replace_a_model_directory_unasked() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out, _) = finished_run(tmp.path(), 4, 1);
    let target = tmp.path().join("model");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("config.json"), b"{\"mine\": true}").unwrap();
    let run = out.to_str().unwrap();
    let stderr = assert_fails(&vit_train(&["export", "--run", run, "--output", target.to_str().unwrap()]));
    assert!(stderr.contains("not empty") && stderr.contains("--overwrite"), "{stderr}");
    assert_eq!(std::fs::read(target.join("config.json")).unwrap(), b"{\"mine\": true}");
    assert_ok(&vit_train(&["export", "--run", run, "--output", target.to_str().unwrap(), "--overwrite"]));
    assert_eq!(
        std::fs::read(target.join("model.safetensors")).unwrap(),
        std::fs::read(out.join("best/model.safetensors")).unwrap()
    );
}

#[test]
fn forward_does_not_overwrite_a_file_it_did_not_write() {
    use std::collections::BTreeMap;
    use vit_model::checkpoint::HfTensor;
    use vit_model::checkpoint::safetensors_file::to_bytes;
    let tmp = tempfile::tempdir().unwrap();
    let (_, out, _) = finished_run(tmp.path(), 4, 1);
    let model = out.join("best");
    let pixels = HfTensor { shape: vec![1, 3, 32, 32], data: vec![0.25; 3 * 32 * 32] };
    let inputs = tmp.path().join("inputs.safetensors");
    std::fs::write(&inputs, to_bytes(&BTreeMap::from([("pixel_values".to_string(), pixels)])).unwrap()).unwrap();
    let forward = |output: &Path, extra: &[&str]| {
        let (m, i, o) = (model.to_str().unwrap(), inputs.to_str().unwrap(), output.to_str().unwrap());
        let mut args = vec!["forward", "--model", m, "--inputs", i, "--output", o];
        args.extend(extra);
        vit_train(&args)
    };
    // The model's own config.json given as the output by mistake: refused, untouched.
    let config_json = model.join("config.json");
    let before = std::fs::read(&config_json).unwrap();
    let stderr = assert_fails(&forward(&config_json, &[]));
    assert!(stderr.contains("config.json") && stderr.contains("--overwrite"), "{stderr}");
    assert_eq!(std::fs::read(&config_json).unwrap(), before);
    // A previous forward output is replaced without asking; anything else only with --overwrite.
    let output = tmp.path().join("out.safetensors");
    assert_ok(&forward(&output, &[]));
    assert_ok(&forward(&output, &[]));
    let other = tmp.path().join("other.bin");
    std::fs::write(&other, b"mine").unwrap();
    assert_fails(&forward(&other, &[]));
    assert_ok(&forward(&other, &["--overwrite"]));
}

#[test]
fn a_model_too_large_for_the_limit_is_refused_before_anything_is_allocated() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 2);
    let out = tmp.path().join("run");
    let text = classification_config(&data, &out, 1).replace("hidden_size = 48", "hidden_size = 1000000000");
    let config = write_config(tmp.path(), "a.toml", &text);
    let stderr = assert_fails(&vit_train(&["--config", config.to_str().unwrap()]));
    assert!(stderr.contains("GiB") && stderr.contains("model.max_weight_gib"), "{stderr}");
    assert!(!out.exists(), "nothing is written before the checks pass");
}
