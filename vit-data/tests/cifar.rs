//! CIFAR binary parsing on synthetic files.

use std::path::Path;

use vit_data::dataset::ImageSource;
use vit_data::{Cifar, CifarKind, CifarSplit, DataError};

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
    let train = Cifar::load(dir.path(), CifarKind::Cifar10, CifarSplit::Train).unwrap();
    let again = Cifar::load(&dir.path().join("cifar-10-batches-bin"), CifarKind::Cifar10, CifarSplit::Train).unwrap();
    assert_eq!(train.labels(), again.labels());
    assert_eq!(train.len(), 10);
    assert_eq!(train.labels(), &[1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
    assert_eq!(train.class_names()[9], "truck");
    let img = train.image(0).unwrap();
    assert_eq!(img.dimensions(), (32, 32));
    // pixel (x=3, y=2): R = 0+5+salt1, G = 100+5+1, B = 200+5+1
    assert_eq!(img.get_pixel(3, 2).0, [6, 106, 206]);
    let test = Cifar::load(dir.path(), CifarKind::Cifar10, CifarSplit::Test).unwrap();
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
    let f = Cifar::load(dir.path(), CifarKind::Cifar100Fine, CifarSplit::Train).unwrap();
    assert_eq!(f.labels(), &[77, 99]);
    assert_eq!(f.class_names().len(), 100);
    let c = Cifar::load(dir.path(), CifarKind::Cifar100Coarse, CifarSplit::Train).unwrap();
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
    let err = Cifar::load(dir.path(), CifarKind::Cifar10, CifarSplit::Train).unwrap_err();
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
