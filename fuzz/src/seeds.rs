//! Seed inputs: the repository's fixture files (and shipped run configs) where present, plus small
//! built-in ones that cover every dtype, image format and CIFAR layout the readers handle.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};
use serde_json::{Value, json};

use crate::mutate::{join_safetensors, join_toml};

/// The workspace root this crate was built in (the fixtures live under it).
pub fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

const HF_CASES: &[&str] = &["cls_tiny", "cls_interp", "headmask", "model_pooler", "mim"];

fn read(path: PathBuf) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn hf_files(root: &Path, file: &str) -> Vec<Vec<u8>> {
    HF_CASES
        .iter()
        .filter_map(|case| read(root.join("vit-model/tests/fixtures/hf-vit").join(case).join(file)))
        .collect()
}

/// A small safetensors file with one tensor per (name, dtype, shape), with patterned data.
pub fn safetensors_file(tensors: &[(&str, &str, &[u64])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut body = Vec::new();
    for (name, dtype, shape) in tensors {
        let size = crate::mutate::dtype_size(dtype).unwrap_or(1);
        let n = shape.iter().product::<u64>() as usize * size;
        let start = body.len();
        body.extend((0..n).map(|i| (i * 37 % 251) as u8));
        header.insert(name.to_string(), json!({"dtype": dtype, "shape": shape, "data_offsets": [start, body.len()]}));
    }
    join_safetensors(&Value::Object(header), &body, true)
}

/// `model.safetensors` / `io.safetensors` fixtures and built-in files with every dtype.
pub fn safetensors(root: &Path) -> Vec<Vec<u8>> {
    let mut seeds = hf_files(root, "model.safetensors");
    seeds.extend(hf_files(root, "io.safetensors"));
    seeds.push(safetensors_file(&[
        ("f32", "F32", &[2, 3]),
        ("f16", "F16", &[3]),
        ("bf16", "BF16", &[2, 2]),
        ("f64", "F64", &[2]),
        ("scalar", "F32", &[]),
        ("empty", "F32", &[0, 4]),
    ]));
    seeds.push(safetensors_file(&[
        ("pixel_values", "F32", &[1, 3, 4, 4]),
        ("labels", "I64", &[1]),
        ("idx", "I32", &[3]),
        ("bytes", "U8", &[5]),
        ("bool_masked_pos", "BOOL", &[1, 4]),
    ]));
    seeds.push(safetensors_file(&[("bad", "I16", &[2]), ("fp8", "F8_E4M3", &[4])]));
    seeds.push(safetensors_file(&[]));
    seeds
}

/// `model.safetensors.index.json` texts.
pub fn index() -> Vec<Vec<u8>> {
    let seeds = [
        json!({
            "metadata": {"total_size": 1234},
            "weight_map": {
                "vit.embeddings.cls_token": "model-00001-of-00002.safetensors",
                "vit.embeddings.patch_embeddings.projection.weight": "model-00001-of-00002.safetensors",
                "classifier.weight": "model-00002-of-00002.safetensors",
            }
        }),
        json!({"weight_map": {}}),
        json!({"weight_map": {"a": "../model.safetensors"}}),
    ];
    seeds.iter().map(|v| serde_json::to_vec_pretty(v).unwrap_or_default()).collect()
}

/// `config.json` fixtures and built-in variants (num_labels, torch_dtype, nulls, problem_type).
pub fn config(root: &Path) -> Vec<Vec<u8>> {
    let mut seeds = hf_files(root, "config.json");
    for v in [
        json!({}),
        json!({"model_type": "vit", "num_labels": 3, "torch_dtype": "float32", "problem_type": "multi_label_classification"}),
        json!({"hidden_size": 48, "num_attention_heads": 3, "intermediate_size": 96, "num_hidden_layers": 1,
               "image_size": 30, "patch_size": 5, "num_channels": 1, "encoder_stride": 5, "qkv_bias": false,
               "hidden_act": "gelu_new", "pooler_act": "relu", "pooler_output_size": null, "dtype": null,
               "id2label": {"0": "cat", "1": "dog"}, "label2id": {"cat": 0, "dog": 1}}),
    ] {
        seeds.push(serde_json::to_vec_pretty(&v).unwrap_or_default());
    }
    seeds
}

/// `preprocessor_config.json` texts in the shapes HF writes.
pub fn processor() -> Vec<Vec<u8>> {
    [
        json!({
            "do_normalize": true,
            "do_rescale": true,
            "do_resize": true,
            "image_mean": [0.5, 0.5, 0.5],
            "image_processor_type": "ViTImageProcessor",
            "image_std": [0.5, 0.5, 0.5],
            "resample": 2,
            "rescale_factor": 0.00392156862745098,
            "size": {"height": 8, "width": 6}
        }),
        json!({
            "do_resize": true,
            "image_mean": [0.485, 0.456, 0.406],
            "image_std": [0.229, 0.224, 0.225],
            "resample": 3,
            "size": {"shortest_edge": 7},
            "feature_extractor_type": "ViTFeatureExtractor"
        }),
        json!({"size": 5, "image_mean": 0.5, "image_std": 0.25, "resample": 0, "do_resize": false}),
        json!({}),
    ]
    .iter()
    .map(|v| serde_json::to_vec_pretty(v).unwrap_or_default())
    .collect()
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Option<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).ok()?;
    Some(out.into_inner())
}

/// The PNG fixtures and small images in every format the decoder guesses.
pub fn images(root: &Path) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = ["astronaut.png", "chelsea.png", "coffee.png"]
        .iter()
        .filter_map(|f| read(root.join("vit-data/tests/fixtures").join(f)))
        .collect();
    let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_fn(7, 5, |x, y| Rgb([x as u8 * 30, y as u8 * 50, 128])));
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_fn(6, 4, |x, y| Rgba([x as u8 * 40, y as u8 * 60, 9, 200])));
    let gray = DynamicImage::ImageLuma8(ImageBuffer::from_fn(5, 5, |x, y| Luma([(x * y * 10) as u8])));
    let gray16 = DynamicImage::ImageLuma16(ImageBuffer::from_fn(4, 3, |x, y| Luma([(x * 9000 + y * 300) as u16])));
    let gray_alpha =
        DynamicImage::ImageLumaA8(ImageBuffer::from_fn(3, 3, |x, y| LumaA([(x * 80) as u8, (y * 100) as u8])));
    let rgb32f =
        DynamicImage::ImageRgb32F(ImageBuffer::from_fn(3, 2, |x, y| Rgb([x as f32 * 0.3, y as f32 * 0.5, 0.25])));
    let rgba16 = DynamicImage::ImageRgba16(ImageBuffer::from_fn(3, 3, |x, y| {
        Rgba([x as u16 * 20000, y as u16 * 20000, 7, 65535])
    }));
    let wanted: &[(&DynamicImage, ImageFormat)] = &[
        (&rgb, ImageFormat::Png),
        (&rgba, ImageFormat::Png),
        (&gray, ImageFormat::Png),
        (&gray16, ImageFormat::Png),
        (&gray_alpha, ImageFormat::Png),
        (&rgba16, ImageFormat::Png),
        (&rgb, ImageFormat::Jpeg),
        (&gray, ImageFormat::Jpeg),
        (&rgb, ImageFormat::Bmp),
        (&rgba, ImageFormat::Bmp),
        (&rgb, ImageFormat::Gif),
        (&rgb, ImageFormat::Tiff),
        (&gray16, ImageFormat::Tiff),
        (&rgba, ImageFormat::WebP),
        (&rgb, ImageFormat::Ico),
        (&rgb, ImageFormat::Tga),
        (&rgb, ImageFormat::Pnm),
        (&rgb, ImageFormat::Qoi),
        (&rgba, ImageFormat::Farbfeld),
        (&rgb32f, ImageFormat::Hdr),
        (&rgb32f, ImageFormat::OpenExr),
    ];
    for (image, format) in wanted {
        if let Some(bytes) = encode(image, *format) {
            seeds.push(bytes);
        }
    }
    // Palette PNGs with transparency, plain and interlaced, by hand (the encoder writes neither).
    seeds.push(tiny_png(3, 2, 0, &[0, 0x1b, 0, 0xe4]));
    // Adam7 of 3x2: passes 1 (1x1), 4 (1x1: x=2,y=0), 6 (1x1: x=1,y=0), 7 (3x1: row 1).
    seeds.push(tiny_png(3, 2, 1, &[0, 0x40, 0, 0x80, 0, 0xc0, 0, 0x1b]));
    seeds
}

/// A PNG of `width`x`height` with colour type 3 (palette) and 2-bit depth, `interlace` as given,
/// from raw (already filtered) scanline bytes, stored with an uncompressed deflate block.
fn tiny_png(width: u32, height: u32, interlace: u8, raw: &[u8]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crate::mutate::crc32(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[2, 3, 0, 0, interlace]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"PLTE", &[255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]);
    chunk(&mut out, b"tRNS", &[255, 128]);
    // zlib: header, one stored block, adler32
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend_from_slice(&(raw.len() as u16).to_le_bytes());
    z.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
    z.extend_from_slice(raw);
    let (mut a, mut b) = (1u32, 0u32);
    for &x in raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// CIFAR inputs: a kind byte (0 CIFAR-10, 1 CIFAR-100 fine, 2 CIFAR-100 coarse) and records.
pub fn cifar() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (kind, labels, records) in [(0u8, 1usize, 3usize), (1, 2, 2), (2, 2, 1)] {
        let mut v = vec![kind];
        for r in 0..records {
            for l in 0..labels {
                v.push(((r + l) * 3 % 10) as u8);
            }
            v.extend((0..3072).map(|i| (i * 7 + r) as u8));
        }
        seeds.push(v);
    }
    seeds
}

/// Run-config inputs: the shipped `configs/*.toml` and a minimal config, alone and with `--set`
/// overrides (encoded as trailing `#--set` lines, see [`join_toml`]).
pub fn run_config(root: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("configs"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let mut seeds: Vec<Vec<u8>> = files.into_iter().filter_map(read).collect();
    let minimal = "task = \"classification\"\n[model]\npreset = \"vit-tiny\"\n[data]\ndataset = \"cifar10\"\npath = \"d\"\nimage_size = 32\n";
    seeds.push(minimal.as_bytes().to_vec());
    let sets = ["run.epochs=2", "optimizer.lr=1e-4", "data.augmentation=none"].map(String::from);
    seeds.push(join_toml(minimal, &sets).into_bytes());
    seeds
}
