//! ViTImageProcessor parity with Hugging Face (Pillow backend) and preprocessor_config.json I/O.

use std::path::{Path, PathBuf};

mod common;

use vit_data::{DataError, ImageProcessor, ImageSize, Resample};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Reference processor output for `name`, from the stored uint8 Pillow resize.
fn reference(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixtures().join("pil_reference.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    assert_eq!(t.shape(), &[3, 224, 224]);
    // Exactly transformers' arithmetic: float64 rescale cast to float32, float32 normalise.
    t.data().iter().map(|&u| (((u as f64) * (1.0 / 255.0)) as f32 - 0.5) / 0.5).collect()
}

#[test]
fn matches_hugging_face_pillow_backend() {
    let mut report = String::new();
    let (mut worst, mut worst_mean) = (0f32, 0f32);
    for image in ["astronaut", "chelsea", "coffee"] {
        let decoded = image::open(fixtures().join(format!("{image}.png"))).unwrap();
        for (resample, tag) in [(Resample::Bilinear, "bilinear"), (Resample::Bicubic, "bicubic")] {
            let processor = ImageProcessor { resample, ..ImageProcessor::default() };
            let ours = processor.process(&decoded).unwrap();
            let theirs = reference(&format!("{image}.pil.{tag}"));
            assert_eq!(ours.len(), theirs.len());
            let diffs: Vec<f32> = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).collect();
            let max = diffs.iter().cloned().fold(0f32, f32::max);
            let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
            let off = diffs.iter().filter(|&&d| d > 1e-4).count();
            report += &format!(
                "{image} {tag}: {}x{} -> 224x224, max {max:.5}, mean {mean:.6}, {off} of {} values differ\n",
                decoded.width(),
                decoded.height(),
                diffs.len()
            );
            worst = worst.max(max);
            worst_mean = worst_mean.max(mean);
        }
    }
    report += &compare_with_shared_float_tensors();
    println!("{report}");
    assert!(worst <= 0.01, "max abs diff {worst}:\n{report}");
    assert!(worst_mean <= 0.001, "mean abs diff {worst_mean}:\n{report}");
}

#[test]
fn preprocessor_config_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let processor = ImageProcessor {
        size: ImageSize { height: 384, width: 320 },
        resample: Resample::Bicubic,
        image_mean: vit_data::IMAGENET_DEFAULT_MEAN.to_vec(),
        image_std: vit_data::IMAGENET_DEFAULT_STD.to_vec(),
        do_normalize: false,
        ..ImageProcessor::default()
    };
    let path = processor.save(dir.path()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["image_processor_type"], "ViTImageProcessor");
    assert_eq!(json["resample"], 3);
    assert_eq!(json["size"]["height"], 384);
    assert_eq!(ImageProcessor::load(dir.path(), 3).unwrap(), processor);
}

#[test]
fn save_is_atomic_and_names_the_file_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let first = ImageProcessor::new(32, 32);
    first.save(dir.path()).unwrap();
    let second = ImageProcessor::new(64, 48).with_normalization(vit_data::Normalization::Imagenet);
    let path = second.save(dir.path()).unwrap();
    assert_eq!(ImageProcessor::load(dir.path(), 3).unwrap(), second);
    // Replaced through a temporary sibling that does not stay behind.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [std::ffi::OsString::from("preprocessor_config.json")]);
    assert!(!vit_io::temp_sibling(&path).exists());

    let missing = dir.path().join("no-such-dir");
    let err = first.save(&missing).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-dir/preprocessor_config.json"), "{err}");
}

#[test]
fn normalization_presets_set_mean_and_std() {
    let p = ImageProcessor::new(8, 8).with_normalization(vit_data::Normalization::Imagenet);
    assert_eq!(p.image_mean, vit_data::IMAGENET_DEFAULT_MEAN);
    assert_eq!(p.image_std, vit_data::IMAGENET_DEFAULT_STD);
    let p = p.with_normalization(vit_data::Normalization::Half);
    assert_eq!(p, ImageProcessor::new(8, 8));
    let gray = ImageProcessor::new(8, 8).with_num_channels(1).with_normalization(vit_data::Normalization::Imagenet);
    assert_eq!((gray.image_mean, gray.image_std), (vec![0.485], vec![0.229]));
}

#[test]
fn reads_hugging_face_files_and_ignores_unknown_fields() {
    let hf = r#"{
      "do_normalize": true, "do_rescale": true, "do_resize": true,
      "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "ViTImageProcessor",
      "image_std": [0.5, 0.5, 0.5], "resample": 2, "rescale_factor": 0.00392156862745098,
      "size": {"height": 224, "width": 224}, "do_convert_rgb": null, "something_new": [1, 2]
    }"#;
    let p = ImageProcessor::from_json_str(hf, Path::new("x.json"), 3).unwrap();
    assert_eq!(p, ImageProcessor::default());
    // Old feature-extractor files: size as an int, scalar mean.
    let old = r#"{"feature_extractor_type": "ViTFeatureExtractor", "size": 32, "image_mean": 0.5, "image_std": 0.5}"#;
    let p = ImageProcessor::from_json_str(old, Path::new("x.json"), 1).unwrap();
    assert_eq!((p.size, p.image_mean.clone(), p.num_channels), (ImageSize { height: 32, width: 32 }, vec![0.5], 1));
    // Missing file: the error names it.
    let err = ImageProcessor::load(Path::new("/nonexistent/model"), 3).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/model/preprocessor_config.json"), "{err}");
}

#[test]
fn bad_fields_name_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("preprocessor_config.json");
    for (text, field) in [
        (r#"{"do_resize": "yes"}"#, "do_resize"),
        (r#"{"size": {"height": -3, "width": 2}}"#, "size"),
        (r#"{"size": "big"}"#, "size"),
        (r#"{"resample": 9}"#, "resample"),
        (r#"{"resample": "bilinear"}"#, "resample"),
        (r#"{"image_mean": [0.5, "a", 0.5]}"#, "image_mean"),
        (r#"{"image_std": [0.5, 0.5]}"#, "image_std"),
        (r#"{"image_std": [0.5, 0.0, 0.5]}"#, "image_std"),
        (r#"{"rescale_factor": "1/255"}"#, "rescale_factor"),
    ] {
        std::fs::write(&path, text).unwrap();
        let err = ImageProcessor::load(dir.path(), 3).unwrap_err();
        match &err {
            DataError::ConfigField { path: p, field: f, .. } => {
                assert_eq!(p, &path);
                assert_eq!(f, field, "{text}");
            }
            other => panic!("{text}: unexpected error {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("preprocessor_config.json") && msg.contains(field), "{msg}");
    }
    std::fs::write(&path, "{not json").unwrap();
    let err = ImageProcessor::load(dir.path(), 3).unwrap_err();
    assert!(matches!(err, DataError::Json { .. }) && err.to_string().contains("preprocessor_config.json"));
}

#[test]
fn channel_conversions() {
    use image::{DynamicImage, ImageBuffer, Luma, Rgba};
    let p = ImageProcessor { do_resize: false, ..ImageProcessor::default() };
    // RGBA: alpha dropped, like PIL convert("RGB").
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(2, 1, Rgba([255u8, 0, 51, 0])));
    let out = p.process(&rgba).unwrap();
    assert_eq!(out, vec![1.0, 1.0, -1.0, -1.0, -0.6, -0.6]);
    // 16-bit gray to 1 channel.
    let p1 = p.clone().with_num_channels(1);
    let gray16 = DynamicImage::ImageLuma16(ImageBuffer::from_pixel(1, 1, Luma([65535u16])));
    assert_eq!(p1.process(&gray16).unwrap(), vec![1.0]);
    // RGB to L uses Pillow's weights: pure red is 76.
    let red = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(1, 1, image::Rgb([255u8, 0, 0])));
    let v = p1.process(&red).unwrap()[0];
    assert!((v - ((76.0 / 255.0) - 0.5) / 0.5).abs() < 1e-6);
    // Palette PNG decodes to RGB.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palette.png");
    // 2x1 indexed PNG: palette [(10, 20, 30), (200, 100, 0)], pixels [1, 0].
    let png = common::raw_png(2, 1, 3, Some(&[10, 20, 30, 200, 100, 0]), &[0, 1, 0]);
    std::fs::write(&path, png).unwrap();
    let img = vit_data::DecodeLimits::default().decode_rgb(&path).unwrap();
    assert_eq!(img.as_raw(), &vec![200, 100, 0, 10, 20, 30]);
}

/// HF's `ViTImageProcessor` (Pillow backend, 32x32 bilinear, mean = std = 0.5) on
/// `Image.open(png).convert("L")`: the pixel values of vit-model's `cls_gray` fixture case.
#[test]
fn grayscale_processing_equals_hugging_face_on_photographs() {
    let io = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vit-model/tests/fixtures/hf-vit/cls_gray/io.safetensors");
    let bytes = std::fs::read(io).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor("pixel_values").unwrap();
    assert_eq!(view.shape(), [2, 1, 32, 32]);
    let expected: Vec<f32> =
        view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let processor = ImageProcessor::new(32, 32).with_num_channels(1);
    for (i, name) in ["chelsea.png", "coffee.png"].iter().enumerate() {
        let rgb = vit_data::DecodeLimits::default().decode_rgb(&fixtures().join(name)).unwrap();
        let ours = processor.process_rgb(&rgb).unwrap();
        let theirs = &expected[i * 1024..(i + 1) * 1024];
        let worst = ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "{name}: max abs diff {worst}");
    }
}

#[test]
fn grayscale_processing_converts_to_luma_before_the_resize() {
    // As Pillow: `image.convert("L")` first, then the resize; on a real photograph the other
    // order (resize the colour image, then take the luma) differs.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chelsea.png");
    let rgb = vit_data::DecodeLimits::default().decode_rgb(&path).unwrap();
    let p1 = ImageProcessor::new(32, 32).with_num_channels(1);
    let ours = p1.process_rgb(&rgb).unwrap();
    let gray = image::DynamicImage::ImageLuma8(image::DynamicImage::ImageRgb8(rgb.clone()).to_luma8());
    let luma_first = vit_data::convert::to_gray_rgb(&rgb);
    assert_eq!(ours, p1.process_rgb(&luma_first).unwrap());
    // The `image` crate's luma weights differ from Pillow's, so only the shape is compared.
    assert_eq!(p1.process(&gray).unwrap().len(), ours.len());
    let p3 = ImageProcessor::new(32, 32);
    let resized_first: Vec<f32> = {
        let rgb_out = p3.process_rgb(&rgb).unwrap();
        let plane = 32 * 32;
        (0..plane)
            .map(|i| {
                let px = [0, 1, 2].map(|c| ((rgb_out[c * plane + i] * 0.5 + 0.5) * 255.0).round() as u8);
                (vit_data::convert::pil_luma(px) as f32 / 255.0 - 0.5) / 0.5
            })
            .collect()
    };
    assert_ne!(ours, resized_first);
    assert_eq!(vit_data::convert::to_gray_rgb(&luma_first), luma_first, "a gray image is a fixed point");
}

/// When the project's shared fixtures are present (not in a fresh clone), also compare with the
/// original float32 tensors (pil: must be equal to float rounding) and report the torchvision
/// backend's distance for information.
fn compare_with_shared_float_tensors() -> String {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/images/pixel_values.safetensors");
    let Ok(bytes) = std::fs::read(&shared) else {
        return String::new();
    };
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut report = String::from("vs shared float32 tensors:\n");
    for image in ["astronaut", "chelsea", "coffee"] {
        let decoded = image::open(fixtures().join(format!("{image}.png"))).unwrap();
        for (resample, tag) in [(Resample::Bilinear, "bilinear"), (Resample::Bicubic, "bicubic")] {
            let ours = ImageProcessor { resample, ..ImageProcessor::default() }.process(&decoded).unwrap();
            for backend in ["pil", "torchvision"] {
                let t = st.tensor(&format!("{image}.{backend}.{tag}")).unwrap();
                let theirs: Vec<f32> =
                    t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                let diffs: Vec<f32> = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).collect();
                let max = diffs.iter().cloned().fold(0f32, f32::max);
                let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
                report += &format!("  {image} {backend} {tag}: max {max:.2e}, mean {mean:.2e}\n");
                if backend == "pil" {
                    assert!(max <= 1e-6, "{image} pil {tag}: {max}");
                }
            }
        }
    }
    report
}
