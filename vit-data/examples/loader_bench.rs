//! Loader throughput (not a test): images/s of augmentation + normalisation + batching, for
//! CIFAR-sized images held in memory and a folder of 224-px-class JPEGs.
//!
//! `cargo run --release -p vit-data --example loader_bench [-- --images 512 --workers 2]`

use std::path::Path;
use std::time::Instant;

use burn::data::dataloader::DataLoaderBuilder;
use burn::tensor::Device;
use image::{Rgb, RgbImage};
use vit_data::{
    Augmentation, Cifar, CifarKind, EvalResize, ImageBatcher, ImageDataset, ImageFolder, ImageFolderOptions,
    ImageProcessor, ImageSize, Resample, Transform,
};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Pseudo-random bytes (xorshift), for synthetic data.
fn noise(n: usize, mut state: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Runs one epoch of `dataset` through a Burn data loader; returns images/s.
fn epoch(dataset: &ImageDataset, batcher: &ImageBatcher, batch: usize, workers: usize) -> f64 {
    let loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(batch)
        .shuffle(1)
        .num_workers(workers)
        .set_device(Device::flex())
        .build(dataset.clone());
    let start = Instant::now();
    let mut n = 0;
    for b in loader.iter() {
        n += b.expect("batch").pixel_values.dims()[0];
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Host-side batching alone (augment + normalise with rayon, no Burn loader, no tensors).
fn prepare_only(dataset: &ImageDataset, batcher: &ImageBatcher, batch: usize) -> f64 {
    let samples: Vec<_> = (0..dataset.source_indices().len()).map(|i| dataset.sample(i, 0).expect("sample")).collect();
    let start = Instant::now();
    for chunk in samples.chunks(batch) {
        std::hint::black_box(batcher.prepare(chunk));
    }
    samples.len() as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let workers = arg("--workers", 2);
    let cifar_n = arg("--cifar", 20_000);
    let folder_n = arg("--images", 512);
    println!("rayon threads: {}, loader workers: {workers}", rayon::current_num_threads());

    // CIFAR-10-sized synthetic data in memory.
    let mut records = Vec::with_capacity(cifar_n * 3073);
    let pixels = noise(cifar_n * 3072, 7);
    for i in 0..cifar_n {
        records.push((i % 10) as u8);
        records.extend_from_slice(&pixels[i * 3072..(i + 1) * 3072]);
    }
    let names = (0..10).map(|i| format!("c{i}")).collect();
    let cifar = Cifar::from_records(CifarKind::Cifar10, &records, Path::new("synthetic"), names).expect("records");
    let cifar = cifar.into_dataset();
    let s32 = ImageSize { height: 32, width: 32 };
    let p32 = ImageProcessor::new(32, 32);
    for (name, aug) in [
        ("pad-crop+flip", Augmentation::PadCropFlip),
        ("random-resized-crop+flip", Augmentation::RandomResizedCropFlip),
    ] {
        let b = ImageBatcher::new(Transform::train(s32, Resample::Bilinear, aug), &p32, 0).expect("batcher");
        println!(
            "CIFAR 32x32 {name:26} prepare-only {:>9.0} img/s | Burn loader b128 {:>9.0} img/s",
            prepare_only(&cifar, &b, 128),
            epoch(&cifar, &b, 128, workers)
        );
    }

    // A folder of JPEGs (ImageNet-like 500x375) resized to 224.
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = Instant::now();
    for i in 0..folder_n {
        let path = dir.path().join(format!("class{}", i % 4)).join(format!("{i:05}.jpg"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let n = noise(500 * 375, i as u64 + 1);
        let img = RgbImage::from_fn(500, 375, |x, y| {
            let v = n[(y * 500 + x) as usize] / 4;
            Rgb([(x / 2) as u8 + v, (y / 2) as u8 + v, ((x + y + i as u32) % 256) as u8 / 2 + v])
        });
        img.save(&path).expect("save jpeg");
    }
    println!("wrote {folder_n} JPEGs 500x375 in {:.1}s", t0.elapsed().as_secs_f64());
    let s224 = ImageSize { height: 224, width: 224 };
    let p224 = ImageProcessor::default();
    for (label, cache) in [("cached", 2u64 << 30), ("decode every epoch", 0)] {
        let t0 = Instant::now();
        let folder = ImageFolder::open(dir.path(), &ImageFolderOptions { cache_bytes: cache, ..Default::default() })
            .expect("open");
        let open_s = t0.elapsed().as_secs_f64();
        let ds = folder.into_dataset();
        for (name, t) in [
            ("train rrc+flip", Transform::train(s224, Resample::Bilinear, Augmentation::RandomResizedCropFlip)),
            ("eval resize", Transform::eval(s224, Resample::Bilinear, EvalResize::Exact)),
        ] {
            let b = ImageBatcher::new(t, &p224, 0).expect("batcher");
            let prepare = if cache > 0 { format!("{:>7.0}", prepare_only(&ds, &b, 64)) } else { "    n/a".into() };
            println!(
                "ImageFolder 224 {label:18} {name:15} prepare-only {prepare} img/s | Burn loader b64 {:>7.0} img/s (open {open_s:.2}s)",
                epoch(&ds, &b, 64, workers)
            );
        }
    }
}
