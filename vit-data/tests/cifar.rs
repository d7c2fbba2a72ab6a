//! CIFAR binary parsing on synthetic files, and the official release's exact file sizes.

use std::path::Path;

use vit_data::dataset::ImageSource;
use vit_data::{Cifar, CifarKind, CifarLoadOptions, CifarSplit, DataError};

/// A record: labels then the R, G, B planes; pixel (x, y) of plane c is `c*100 + x + y` (mod 256)
/// plus `salt`.
fn record(labels: &[u8], salt: u8) -> Vec<u8> {
    let mut r = labels.to_vec();
    for c in 0..3u32 {
        for y in 0..32u32 {
            for x in 0..32u32 {
                r.push(((c * 100 + x + y) as u8).wrapping_add(salt));
            }
        }
    }
    r
}

const CIFAR10_NAMES: &str = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";

/// Loads synthetic data (files of a few records) in the official layout.
fn load_synthetic(dir: &Path, kind: CifarKind, split: CifarSplit) -> vit_data::Result<Cifar> {
    Cifar::load_with(dir, kind, split, &CifarLoadOptions::SYNTHETIC)
}

fn write_cifar10(dir: &Path) {
    let d = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&d).unwrap();
    for b in 1..=5u8 {
        let mut bytes = record(&[b], b);
        bytes.extend(record(&[9], 0));
        std::fs::write(d.join(format!("data_batch_{b}.bin")), bytes).unwrap();
    }
    std::fs::write(d.join("test_batch.bin"), record(&[3], 7)).unwrap();
    std::fs::write(d.join("batches.meta.txt"), CIFAR10_NAMES).unwrap();
}

#[test]
fn cifar10_layout_labels_and_pixels() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path());
    // Both the parent folder and the archive folder are accepted.
    let train = load_synthetic(dir.path(), CifarKind::Cifar10, CifarSplit::Train).unwrap();
    let again =
        load_synthetic(&dir.path().join("cifar-10-batches-bin"), CifarKind::Cifar10, CifarSplit::Train).unwrap();
    assert_eq!(train.labels(), again.labels());
    assert_eq!(train.len(), 10);
    assert_eq!(train.labels(), &[1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
    assert_eq!(train.class_names()[9], "truck");
    let img = train.image(0).unwrap();
    assert_eq!(img.dimensions(), (32, 32));
    // pixel (x=3, y=2): R = 0+5+salt1, G = 100+5+1, B = 200+5+1
    assert_eq!(img.get_pixel(3, 2).0, [6, 106, 206]);
    let test = load_synthetic(dir.path(), CifarKind::Cifar10, CifarSplit::Test).unwrap();
    assert_eq!((test.len(), test.label(0)), (1, 3));
    let ds = test.into_dataset();
    assert_eq!(burn::data::dataset::Dataset::len(&ds), 1);
}

#[test]
fn cifar100_fine_and_coarse() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cifar-100-binary");
    std::fs::create_dir_all(&d).unwrap();
    let mut train = record(&[4, 77], 0);
    train.extend(record(&[19, 99], 1));
    std::fs::write(d.join("train.bin"), &train).unwrap();
    std::fs::write(d.join("test.bin"), record(&[0, 0], 2)).unwrap();
    let fine: String = (0..100).map(|i| format!("fine{i}\n")).collect();
    let coarse: String = (0..20).map(|i| format!("coarse{i}\n")).collect();
    std::fs::write(d.join("fine_label_names.txt"), fine).unwrap();
    std::fs::write(d.join("coarse_label_names.txt"), coarse).unwrap();
    let f = load_synthetic(dir.path(), CifarKind::Cifar100Fine, CifarSplit::Train).unwrap();
    assert_eq!(f.labels(), &[77, 99]);
    assert_eq!(f.class_names().len(), 100);
    let c = load_synthetic(dir.path(), CifarKind::Cifar100Coarse, CifarSplit::Train).unwrap();
    assert_eq!(c.labels(), &[4, 19]);
    assert_eq!(c.class_names()[19], "coarse19");
    assert_eq!(c.image(1).unwrap().get_pixel(0, 0).0, [1, 101, 201]);
}

#[test]
fn truncated_and_corrupt_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path());
    let bad = dir.path().join("cifar-10-batches-bin/data_batch_3.bin");
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes.truncate(3073 + 100);
    std::fs::write(&bad, bytes).unwrap();
    let err = load_synthetic(dir.path(), CifarKind::Cifar10, CifarSplit::Train).unwrap_err();
    assert!(matches!(err, DataError::Truncated { size: 3173, record: 3073, .. }), "{err:?}");
    assert!(err.to_string().contains("data_batch_3.bin"), "{err}");

    let err = Cifar::from_records(CifarKind::Cifar10, &record(&[12], 0), Path::new("x.bin"), vec![]).unwrap_err();
    assert!(err.to_string().contains("x.bin") && err.to_string().contains("label 12"), "{err}");
}

#[test]
fn missing_files_explain_where_to_put_them() {
    let dir = tempfile::tempdir().unwrap();
    let err = Cifar::load(dir.path(), CifarKind::Cifar10, CifarSplit::Train).unwrap_err().to_string();
    for needle in [
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "cifar-10-batches-bin",
        "data_batch_1.bin",
        "test_batch.bin",
        "batches.meta.txt",
        &dir.path().display().to_string(),
    ] {
        assert!(err.contains(needle), "`{needle}` missing from: {err}");
    }
    let err = Cifar::load(dir.path(), CifarKind::Cifar100Fine, CifarSplit::Train).unwrap_err().to_string();
    assert!(err.contains("cifar-100-binary.tar.gz") && err.contains("fine_label_names.txt"), "{err}");
}

#[test]
fn official_file_sizes() {
    assert_eq!(CifarKind::Cifar10.official_file_bytes(CifarSplit::Train), 30_730_000);
    assert_eq!(CifarKind::Cifar10.official_file_bytes(CifarSplit::Test), 30_730_000);
    for kind in [CifarKind::Cifar100Fine, CifarKind::Cifar100Coarse] {
        assert_eq!(kind.official_file_bytes(CifarSplit::Train), 153_700_000);
        assert_eq!(kind.official_file_bytes(CifarSplit::Test), 30_740_000);
    }
}

/// Writes `path` as `size` bytes (sparse zeros: label 0, black pixels) starting with `first`.
fn write_sized(path: &Path, first: &[u8], size: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    std::io::Write::write_all(&mut f, first).unwrap();
    f.set_len(size).unwrap();
}

#[test]
fn official_loader_requires_exact_sizes() {
    const FILE: u64 = 30_730_000;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("batches.meta.txt"), CIFAR10_NAMES).unwrap();
    // The official test file loads: 10000 records.
    write_sized(&d.join("test_batch.bin"), &record(&[3], 7), FILE);
    let test = Cifar::load(dir.path(), CifarKind::Cifar10, CifarSplit::Test).unwrap();
    assert_eq!((test.len(), test.label(0), test.label(9999)), (10_000, 3, 0));
    assert_eq!(test.image(0).unwrap().get_pixel(3, 2).0, [12, 112, 212]);

    // data_batch_4 truncated at a record boundary (one record short), then padded by one record:
    // each is an error naming the file, its size and the official size, even though a whole
    // number of records; nothing else is read.
    for b in [1, 2, 3, 5] {
        write_sized(&d.join(format!("data_batch_{b}.bin")), &[], FILE);
    }
    for size in [FILE - 3073, FILE + 3073, 3073, 0] {
        write_sized(&d.join("data_batch_4.bin"), &[], size);
        let err = Cifar::load(dir.path(), CifarKind::Cifar10, CifarSplit::Train).unwrap_err();
        assert!(matches!(err, DataError::WrongSize { size: s, expected: FILE, .. } if s == size), "{err:?}");
        let msg = err.to_string();
        for needle in [
            d.join("data_batch_4.bin").display().to_string(),
            format!("{size} bytes"),
            "30730000 bytes".to_string(),
            "10000 records of 3073 bytes".to_string(),
            "download the dataset again".to_string(),
            format!("delete `{}`", d.display()),
            "data.download = true".to_string(),
        ] {
            assert!(msg.contains(&needle), "`{needle}` missing from: {msg}");
        }
    }
    // Synthetic data in the official layout: the size check is off, the record check stays.
    write_sized(&d.join("data_batch_4.bin"), &[], FILE - 3073);
    let train = Cifar::load_with(dir.path(), CifarKind::Cifar10, CifarSplit::Train, &CifarLoadOptions::SYNTHETIC);
    assert_eq!(train.unwrap().len(), 49_999);
    write_sized(&d.join("data_batch_4.bin"), &[], FILE - 1);
    let err =
        Cifar::load_with(dir.path(), CifarKind::Cifar10, CifarSplit::Train, &CifarLoadOptions::SYNTHETIC).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
    assert_eq!(CifarLoadOptions::default(), CifarLoadOptions::OFFICIAL);
    const { assert!(CifarLoadOptions::OFFICIAL.exact_size && !CifarLoadOptions::SYNTHETIC.exact_size) };
}

#[test]
fn official_cifar100_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cifar-100-binary");
    let fine: String = (0..100).map(|i| format!("fine{i}\n")).collect();
    let coarse: String = (0..20).map(|i| format!("coarse{i}\n")).collect();
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("fine_label_names.txt"), fine).unwrap();
    std::fs::write(d.join("coarse_label_names.txt"), coarse).unwrap();
    write_sized(&d.join("test.bin"), &record(&[4, 77], 0), 30_740_000);
    let test = Cifar::load(dir.path(), CifarKind::Cifar100Fine, CifarSplit::Test).unwrap();
    assert_eq!((test.len(), test.label(0)), (10_000, 77));
    // train.bin one record short of 50000.
    write_sized(&d.join("train.bin"), &[], 153_700_000 - 3074);
    let err = Cifar::load(dir.path(), CifarKind::Cifar100Coarse, CifarSplit::Train).unwrap_err();
    assert!(matches!(err, DataError::WrongSize { size: 153_696_926, expected: 153_700_000, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("train.bin") && msg.contains("50000 records of 3074 bytes"), "{msg}");
    // A test.bin of CIFAR-10's size (another release) is refused too.
    write_sized(&d.join("test.bin"), &[], 30_730_000 - 30_730_000 % 3074);
    let err = Cifar::load(dir.path(), CifarKind::Cifar100Fine, CifarSplit::Test).unwrap_err().to_string();
    assert!(err.contains("test.bin") && err.contains("30740000 bytes"), "{err}");
}
