//! End-to-end tests of `vit-train predict` and `vit-train eval` on a tiny model directory and
//! images written by the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::tensor::{Device, Tensor, TensorData};
use image::{Rgb, RgbImage};
use vit_data::ImageProcessor;
use vit_model::{LoadOptions, PretrainedViT, ViTConfig, ViTForImageClassification};

const LABELS: [&str; 3] = ["a", "b", "c"];

fn vit_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vit-train")).args(args).output().expect("vit-train runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_ok(o: &Output) {
    assert!(o.status.success(), "vit-train failed:\nstdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

fn assert_fails(o: &Output) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "vit-train should have failed:\nstdout:\n{}\nstderr:\n{err}", stdout(o));
    assert!(!err.contains("panicked"), "vit-train panicked:\n{err}");
    err
}

/// A tiny 16x16 classifier with `labels`, saved as an HF directory (with preprocessor_config.json).
fn make_model(dir: &Path, labels: &[&str]) {
    let config = ViTConfig {
        hidden_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 64,
        image_size: 16,
        patch_size: 8,
        ..Default::default()
    }
    .with_labels(labels.iter().map(|s| s.to_string()).collect());
    let model = ViTForImageClassification::new(&config, &Device::flex());
    model.save_pretrained(&config, dir).unwrap();
    ImageProcessor::new(16, 16).save(dir).unwrap();
}

/// A deterministic colourful image.
fn image(width: u32, height: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let v = x.wrapping_mul(37 + seed) ^ y.wrapping_mul(91 + 3 * seed) ^ seed.wrapping_mul(2654435761);
        Rgb([(v % 251) as u8, ((v >> 3) % 241) as u8, ((v >> 7) % 239) as u8])
    })
}

/// An ImageFolder `root/<class>/*.png` of `per_class` 16x16 images per class of [`LABELS`].
fn make_folder(root: &Path, per_class: u32, seed: u32) -> Vec<(PathBuf, usize)> {
    let mut out = Vec::new();
    for (c, name) in LABELS.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let path = dir.join(format!("{i:03}.png"));
            image(16, 16, seed + 10 * c as u32 + i).save(&path).unwrap();
            out.push((path, c));
        }
    }
    out
}

fn write_config(dir: &Path, data: &Path, extra_data: &str) -> PathBuf {
    let text = format!(
        "task = \"classification\"\n[model]\npreset = \"vit-tiny\"\n[data]\ndataset = \"imagefolder\"\npath = {:?}\n\
         image_size = 16\nbatch_size = 4\nvalidation_split = 0.5\n{extra_data}\n[run]\noutput_dir = {:?}\n",
        data.to_str().unwrap(),
        dir.join("run").to_str().unwrap()
    );
    let path = dir.join("eval.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Logits computed in the test with the saved model and the model directory's processor.
fn direct_logits(model_dir: &Path, path: &Path) -> Vec<f32> {
    let device = Device::flex();
    let (model, config, _) =
        ViTForImageClassification::from_pretrained(model_dir, &LoadOptions::default(), &device).unwrap();
    let processor = ImageProcessor::load(model_dir, config.num_channels).unwrap();
    let values = processor.process(&image::open(path).unwrap()).unwrap();
    let pixels = Tensor::<4>::from_data(TensorData::new(values, [1, 3, 16, 16]), &device);
    model.forward(pixels).unwrap().into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

#[test]
fn predict_text_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tmp.path().join("model");
    make_model(&model_dir, &LABELS);
    // Different sizes: the processor resizes each to 16x16.
    let files: Vec<PathBuf> = [(20, 24), (16, 16), (40, 12)]
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| {
            let p = tmp.path().join(format!("img{i}.png"));
            image(w, h, i as u32 * 7 + 1).save(&p).unwrap();
            p
        })
        .collect();
    let file_args: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    let model_arg = model_dir.to_str().unwrap();

    // JSON, top-k larger than the number of labels: clamped to 3.
    let mut args = vec!["predict", "--model", model_arg, "--json", "--top-k", "10"];
    args.extend(&file_args);
    let out = vit_train(&args);
    assert_ok(&out);
    let lines: Vec<serde_json::Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len(), files.len());
    for (line, file) in lines.iter().zip(&files) {
        assert_eq!(line["file"].as_str().unwrap(), file.to_str().unwrap());
        let logits: Vec<f32> = line["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(logits.len(), 3);
        let top = line["top_k"].as_array().unwrap();
        assert_eq!(top.len(), 3, "top_k is clamped to the number of labels");
        let sum: f64 = top.iter().map(|t| t["probability"].as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-6, "probabilities sum to {sum}");
        let probs: Vec<f64> = top.iter().map(|t| t["probability"].as_f64().unwrap()).collect();
        assert!(probs.windows(2).all(|w| w[0] >= w[1]), "sorted: {probs:?}");
        let first = top[0]["index"].as_u64().unwrap() as usize;
        assert_eq!(top[0]["label"].as_str().unwrap(), LABELS[first]);

        let direct = direct_logits(&model_dir, file);
        assert_eq!(first, argmax(&direct), "top-1 vs the directly computed logits {direct:?}");
        for (a, b) in logits.iter().zip(&direct) {
            assert!((a - b).abs() < 1e-4, "logits {logits:?} vs direct {direct:?}");
        }
    }

    // Text, default top-k (5, clamped to 3), and --top-k 2.
    let mut args = vec!["predict", "--model", model_arg];
    args.extend(&file_args);
    let out = vit_train(&args);
    assert_ok(&out);
    let text = stdout(&out);
    for f in &files {
        assert!(text.contains(f.to_str().unwrap()), "{text}");
    }
    assert_eq!(text.lines().filter(|l| l.trim_end().ends_with('%')).count(), 3 * files.len(), "{text}");
    let mut args = vec!["predict", "--model", model_arg, "--top-k", "2"];
    args.extend(&file_args[..1]);
    let out = vit_train(&args);
    assert_ok(&out);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3, "{text}");
    let top1 = &lines[0]["top_k"][0];
    let expected = format!("{:.2}%", 100.0 * top1["probability"].as_f64().unwrap());
    let row = text.lines().nth(1).unwrap();
    assert!(row.trim_start().starts_with(top1["label"].as_str().unwrap()) && row.ends_with(&expected), "{text}");
}

#[test]
fn predict_without_preprocessor_config_uses_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tmp.path().join("model");
    make_model(&model_dir, &LABELS);
    std::fs::remove_file(model_dir.join("preprocessor_config.json")).unwrap();
    let img = tmp.path().join("x.png");
    image(16, 16, 3).save(&img).unwrap();
    let out = vit_train(&["predict", "--model", model_dir.to_str().unwrap(), img.to_str().unwrap()]);
    assert_ok(&out);
    assert!(stderr(&out).contains("preprocessor_config.json"), "{}", stderr(&out));
}

#[test]
fn predict_errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tmp.path().join("model");
    make_model(&model_dir, &LABELS);
    let good = tmp.path().join("good.png");
    image(16, 16, 1).save(&good).unwrap();
    let missing = tmp.path().join("missing.png");
    let fake = tmp.path().join("fake.png");
    std::fs::write(&fake, "this is not a picture\n").unwrap();
    let m = model_dir.to_str().unwrap();

    for bad in [&missing, &fake] {
        let out = vit_train(&["predict", "--model", m, good.to_str().unwrap(), bad.to_str().unwrap()]);
        let err = assert_fails(&out);
        assert!(err.contains(bad.to_str().unwrap()), "the error names the file:\n{err}");
    }
    let out = vit_train(&["predict", "--model", tmp.path().join("nomodel").to_str().unwrap(), good.to_str().unwrap()]);
    assert_fails(&out);
    let out = vit_train(&["predict", "--model", m, "--top-k", "0", good.to_str().unwrap()]);
    assert_fails(&out);
}

#[test]
fn eval_reports_accuracy_and_confusion() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tmp.path().join("model");
    make_model(&model_dir, &LABELS);
    let data = tmp.path().join("data");
    make_folder(&data, 4, 0);
    let config = write_config(tmp.path(), &data, "");
    let (m, c) = (model_dir.to_str().unwrap(), config.to_str().unwrap());

    let out = vit_train(&["eval", "--model", m, "--config", c, "--json"]);
    assert_ok(&out);
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON object");
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "{report}");
    let matrix: Vec<Vec<u64>> = serde_json::from_value(report["confusion_matrix"].clone()).unwrap();
    assert_eq!(matrix.len(), 3);
    assert!(matrix.iter().all(|r| r.len() == 3));
    let total: u64 = matrix.iter().flatten().sum();
    assert_eq!(total, 6, "half of 12 images are validation images: {report}");
    assert_eq!(report["num_images"].as_u64().unwrap(), total);
    let diag: u64 = (0..3).map(|i| matrix[i][i]).sum();
    assert!((accuracy - diag as f64 / total as f64).abs() < 1e-12);
    assert!(report["top5_accuracy"].is_null(), "3 classes: no top-5");
    let per_class = report["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 3);
    for (i, p) in per_class.iter().enumerate() {
        assert_eq!(p["label"].as_str().unwrap(), LABELS[i]);
        assert_eq!(p["correct"].as_u64().unwrap(), matrix[i][i]);
        assert_eq!(p["total"].as_u64().unwrap(), matrix[i].iter().sum::<u64>());
    }

    // Text report.
    let out = vit_train(&["eval", "--model", m, "--config", c]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("accuracy") && text.contains("confusion matrix"), "{text}");
    assert!(text.contains(&format!("{diag}/6")), "{text}");
}

#[test]
fn eval_matches_directly_computed_predictions() {
    // A separate validation directory of 16x16 images: the eval transform is then the processor's.
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tmp.path().join("model");
    make_model(&model_dir, &LABELS);
    let train = tmp.path().join("train");
    make_folder(&train, 1, 500);
    let valid = tmp.path().join("valid");
    let images = make_folder(&valid, 3, 900);
    let extra = format!("validation_dir = {:?}\neval_batch_size = 2", valid.to_str().unwrap());
    let config = write_config(tmp.path(), &train, &extra);
    let out =
        vit_train(&["eval", "--model", model_dir.to_str().unwrap(), "--config", config.to_str().unwrap(), "--json"]);
    assert_ok(&out);
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let matrix: Vec<Vec<u64>> = serde_json::from_value(report["confusion_matrix"].clone()).unwrap();
    let mut expected = vec![vec![0u64; 3]; 3];
    for (path, class) in &images {
        expected[*class][argmax(&direct_logits(&model_dir, path))] += 1;
    }
    assert_eq!(matrix, expected, "{report}");
}

#[test]
fn eval_rejects_a_model_with_other_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_folder(&data, 2, 0);
    let config = write_config(tmp.path(), &data, "");
    for (name, labels) in [("renamed", &["a", "b", "x"][..]), ("fewer", &["a", "b"][..])] {
        let model_dir = tmp.path().join(name);
        make_model(&model_dir, labels);
        let out = vit_train(&["eval", "--model", model_dir.to_str().unwrap(), "--config", config.to_str().unwrap()]);
        let err = assert_fails(&out);
        assert!(err.contains("do not match the dataset's classes"), "{err}");
        assert!(err.contains(&format!("{labels:?}")), "lists the model's labels:\n{err}");
        assert!(err.contains(r#"["a", "b", "c"]"#), "lists the dataset's classes:\n{err}");
    }
}

#[test]
fn predict_finds_images_in_directories_and_writes_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tmp.path().join("model");
    make_model(&model_dir, &LABELS);
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(photos.join("b/deeper")).unwrap();
    let paths = [photos.join("z.png"), photos.join("b/a.png"), photos.join("b/deeper/c.png")];
    for (i, p) in paths.iter().enumerate() {
        image(16, 16, i as u32 + 3).save(p).unwrap();
    }
    std::fs::write(photos.join("notes.txt"), b"not an image").unwrap();
    let model_arg = model_dir.to_str().unwrap();
    // Batches of 2 over 3 images: the same predictions as one batch.
    let run = |batch: &str| {
        let out = vit_train(&[
            "predict",
            "--model",
            model_arg,
            "--csv",
            "--top-k",
            "2",
            "--batch-size",
            batch,
            photos.to_str().unwrap(),
        ]);
        assert_ok(&out);
        stdout(&out)
    };
    let csv = run("2");
    assert_eq!(csv, run("16"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "file,label_1,probability_1,label_2,probability_2");
    let mut sorted: Vec<String> = paths.iter().map(|p| p.to_str().unwrap().to_string()).collect();
    sorted.sort();
    let files: Vec<&str> = lines[1..].iter().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(files, sorted, "every image under the directory, recursively, sorted");
    for (line, file) in lines[1..].iter().zip(&sorted) {
        let cells: Vec<&str> = line.split(',').collect();
        let direct = direct_logits(&model_dir, Path::new(file));
        assert_eq!(cells[1], LABELS[argmax(&direct)]);
        let (p1, p2): (f64, f64) = (cells[2].parse().unwrap(), cells[4].parse().unwrap());
        assert!(p1 >= p2 && p1 <= 1.0 && p2 >= 0.0, "{line}");
    }
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = assert_fails(&vit_train(&["predict", "--model", model_arg, empty.to_str().unwrap()]));
    assert!(err.contains("holds no images"), "{err}");
    let err =
        assert_fails(&vit_train(&["predict", "--model", model_arg, "--batch-size", "0", photos.to_str().unwrap()]));
    assert!(err.contains("--batch-size"), "{err}");
}

/// Runs `vit-train` with `HF_HOME=hf_home` and offline, so that Hub ids resolve from the cache.
fn vit_train_offline(hf_home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vit-train"))
        .args(args)
        .env("HF_HOME", hf_home)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .output()
        .expect("vit-train runs")
}

#[test]
fn hub_ids_resolve_from_hugging_face_s_cache() {
    let tmp = tempfile::tempdir().unwrap();
    // A cache laid out as huggingface_hub lays it out: refs/main names the snapshot of a commit.
    let hf_home = tmp.path().join("hf");
    let repo = hf_home.join("hub/models--test-org--tiny-vit");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    make_model(&snapshot, &LABELS);
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let images = make_folder(&tmp.path().join("images"), 1, 5);
    let image = images[0].0.to_str().unwrap();

    let by_dir = vit_train_offline(&hf_home, &["predict", "--json", "--model", snapshot.to_str().unwrap(), image]);
    let by_id = vit_train_offline(&hf_home, &["predict", "--json", "--model", "test-org/tiny-vit", image]);
    let by_commit =
        vit_train_offline(&hf_home, &["predict", "--json", "--model", &format!("test-org/tiny-vit@{commit}"), image]);
    for o in [&by_dir, &by_id, &by_commit] {
        assert_ok(o);
    }
    let logits = |o: &Output| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&stdout(o)).unwrap()["logits"].clone()
    };
    assert_eq!(logits(&by_id), logits(&by_dir));
    assert_eq!(logits(&by_commit), logits(&by_dir));
    assert!(stderr(&by_id).contains(&format!("test-org/tiny-vit at commit {commit}")), "{}", stderr(&by_id));

    // Fine-tuning from a Hub id; the run's config keeps the id.
    let data = tmp.path().join("data");
    make_folder(&data, 4, 1);
    let config = write_config(tmp.path(), &data, "augmentation = \"none\"").to_str().unwrap().to_string();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("preset = \"vit-tiny\"", "pretrained = \"test-org/tiny-vit\"");
    let text = text.replace("[run]", "[run]\nmax_steps = 1");
    std::fs::write(&config, &text).unwrap();
    assert_ok(&vit_train_offline(&hf_home, &["--config", &config]));
    let saved = std::fs::read_to_string(tmp.path().join("run/run_config.toml")).unwrap();
    assert!(saved.contains("pretrained = \"test-org/tiny-vit\""), "{saved}");

    // Not in the cache while offline: a clear error naming the repo and what to do.
    let err = assert_fails(&vit_train_offline(&hf_home, &["predict", "--model", "test-org/missing", image]));
    assert!(err.contains("test-org/missing") && err.contains("HF_HUB_OFFLINE"), "{err}");
    let err = assert_fails(&vit_train_offline(&hf_home, &["predict", "--model", "a/b/c", image]));
    assert!(err.contains("a/b/c"), "{err}");
}
