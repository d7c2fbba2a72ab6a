//! ImageFolder: class order, formats, hidden files, splits, bad files, limits, cache.

mod common;

use std::path::Path;

use burn::data::dataset::Dataset;
use vit_data::dataset::ImageSource;
use vit_data::{DataError, ImageFolder, ImageFolderOptions, SplitMode};

fn opts() -> ImageFolderOptions {
    ImageFolderOptions::default()
}

#[test]
fn classes_sorted_formats_and_hidden_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::write_image(&root.join("dog/a.PNG"), 10, 8, 1);
    common::write_image(&root.join("dog/b.jpg"), 12, 9, 2);
    common::write_image(&root.join("dog/nested/c.bmp"), 7, 7, 3);
    common::write_image(&root.join("cat/d.gif"), 6, 5, 4);
    common::write_image(&root.join("cat/e.tiff"), 6, 5, 5);
    common::write_image(&root.join("cat/f.webp"), 6, 5, 6);
    common::write_image(&root.join("Zebra/g.jpeg"), 9, 9, 7);
    common::write_image(&root.join(".hidden_class/h.png"), 4, 4, 8);
    common::write_image(&root.join("cat/.i.png"), 4, 4, 9);
    std::fs::write(root.join("cat/notes.txt"), "not an image").unwrap();
    std::fs::write(root.join("stray.png"), "files at the root are ignored").unwrap();

    let folder = ImageFolder::open(root, &opts()).unwrap();
    // Sorted by name, byte order like Python's sorted(): uppercase first.
    assert_eq!(folder.class_names(), &["Zebra", "cat", "dog"]);
    assert_eq!(folder.len(), 7);
    let labels: Vec<usize> = (0..7).map(|i| folder.label(i)).collect();
    assert_eq!(labels, vec![0, 1, 1, 1, 2, 2, 2]);
    assert_eq!(folder.cached_images(), 7);
    let img = folder.load(4).unwrap(); // dog/a.PNG
    assert_eq!(img.dimensions(), (10, 8));
    assert_eq!(*img, common::pattern(10, 8, 1));
    assert!(folder.files()[6].ends_with("dog/nested/c.bmp"));

    // Without cache, images are decoded on demand, equal to the cached ones.
    let uncached = ImageFolder::open(root, &ImageFolderOptions { cache_bytes: 0, ..opts() }).unwrap();
    assert_eq!(uncached.cached_images(), 0);
    for i in 0..7 {
        assert_eq!(uncached.load(i).unwrap(), folder.load(i).unwrap());
    }
    // Budget for part of the images only.
    let partial = ImageFolder::open(root, &ImageFolderOptions { cache_bytes: 400, ..opts() }).unwrap();
    assert!(partial.cached_images() > 0 && partial.cached_images() < 7);
    assert!(partial.cached_bytes() <= 400);
}

fn make_classes(root: &Path, counts: &[usize]) {
    for (c, &n) in counts.iter().enumerate() {
        for i in 0..n {
            common::write_image(&root.join(format!("class{c}/{i:03}.png")), 4, 4, (c * 1000 + i) as u32);
        }
    }
}

#[test]
fn seeded_splits() {
    let dir = tempfile::tempdir().unwrap();
    make_classes(dir.path(), &[40, 20, 7]);
    let ds = ImageFolder::open(dir.path(), &opts()).unwrap().into_dataset();
    assert_eq!(ds.len(), 67);

    let (train, valid) = ds.split(0.15, 3, SplitMode::Stratified).unwrap();
    let per_class = |d: &vit_data::ImageDataset| {
        let mut n = [0; 3];
        d.labels().iter().for_each(|&l| n[l] += 1);
        n
    };
    // round(40*.15)=6, round(20*.15)=3, round(7*.15)=1
    assert_eq!(per_class(&valid), [6, 3, 1]);
    assert_eq!(per_class(&train), [34, 17, 6]);
    let mut all: Vec<usize> = train.source_indices().iter().chain(valid.source_indices()).copied().collect();
    all.sort();
    assert_eq!(all, (0..67).collect::<Vec<_>>());
    // Same seed, same split; another seed, another split.
    let (_, valid2) = ds.split(0.15, 3, SplitMode::Stratified).unwrap();
    assert_eq!(valid.source_indices(), valid2.source_indices());
    let (_, valid3) = ds.split(0.15, 4, SplitMode::Stratified).unwrap();
    assert_ne!(valid.source_indices(), valid3.source_indices());

    let (train, valid) = ds.split(0.15, 3, SplitMode::Plain).unwrap();
    assert_eq!((train.len(), valid.len()), (56, 11)); // ceil(67 * 0.15) = 11
    assert!(ds.split(0.0, 3, SplitMode::Plain).unwrap_err().to_string().contains("validation_split"));
    assert!(ds.split(1.5, 3, SplitMode::Plain).is_err());

    // A separate validation folder uses the training class ids.
    let vdir = tempfile::tempdir().unwrap();
    common::write_image(&vdir.path().join("class2/x.png"), 4, 4, 1);
    let (_, valid) =
        vit_data::open_image_folders(dir.path(), Some(vdir.path()), 0.15, 0, SplitMode::Stratified, &opts()).unwrap();
    assert_eq!(valid.labels(), vec![2]);
    assert_eq!(valid.class_names().len(), 3);
    common::write_image(&vdir.path().join("class9/y.png"), 4, 4, 1);
    let err = vit_data::open_image_folders(dir.path(), Some(vdir.path()), 0.15, 0, SplitMode::Stratified, &opts())
        .unwrap_err();
    assert!(err.to_string().contains("class9"), "{err}");
}

/// Writes the four kinds of bad file into `root/bad/` next to good images; returns their paths.
fn bad_files(root: &Path) -> Vec<std::path::PathBuf> {
    make_classes(root, &[3, 3]);
    let bad = root.join("class1");
    let good = std::fs::read(root.join("class0/000.png")).unwrap();
    let big = common::pattern(64, 64, 5);
    big.save(bad.join("truncated.png")).unwrap();
    let bytes = std::fs::read(bad.join("truncated.png")).unwrap();
    std::fs::write(bad.join("truncated.png"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(bad.join("zero.png"), b"").unwrap();
    std::fs::write(bad.join("text.png"), b"this is not a png, just text").unwrap();
    std::fs::write(bad.join("bomb.png"), common::bomb_png()).unwrap();
    assert!(!good.is_empty());
    ["bomb.png", "text.png", "truncated.png", "zero.png"].iter().map(|f| bad.join(f)).collect()
}

#[test]
fn bad_files_are_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let bad = bad_files(dir.path());
    // Each bad file alone makes open() fail, naming it.
    for (i, path) in bad.iter().enumerate() {
        let single = tempfile::tempdir().unwrap();
        make_classes(single.path(), &[2]);
        let target = single.path().join("class0").join(path.file_name().unwrap());
        std::fs::copy(path, &target).unwrap();
        let err = ImageFolder::open(single.path(), &opts()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&target.display().to_string()), "{msg}");
        match i {
            0 => assert!(
                matches!(err, DataError::TooLarge { .. }) && msg.contains("16384") && msg.contains("100000x100000"),
                "{msg}"
            ),
            _ => assert!(matches!(err, DataError::Decode { .. }) && msg.contains("skip_corrupt"), "{msg}"),
        }
    }
    // skip_corrupt: skipped, counted, the rest usable.
    let folder = ImageFolder::open(dir.path(), &ImageFolderOptions { skip_corrupt: true, ..opts() }).unwrap();
    assert_eq!(folder.skipped().len(), 4);
    assert_eq!(folder.len(), 6);
    let mut skipped: Vec<_> = folder.skipped().iter().map(|s| s.path.clone()).collect();
    skipped.sort();
    assert_eq!(skipped, bad);

    // Without cache or verification the truncated file passes the header check and fails when
    // loaded, as a Burn DatasetError naming the file.
    let lazy = tempfile::tempdir().unwrap();
    make_classes(lazy.path(), &[2]);
    std::fs::copy(&bad[2], lazy.path().join("class0/truncated.png")).unwrap();
    let ds = ImageFolder::open(lazy.path(), &ImageFolderOptions { cache_bytes: 0, ..opts() }).unwrap().into_dataset();
    let err = ds.get(2).unwrap_err().to_string();
    assert!(err.contains("truncated.png"), "{err}");
    // With verify it is found at open.
    let opt = ImageFolderOptions { cache_bytes: 0, verify: true, ..opts() };
    assert!(ImageFolder::open(lazy.path(), &opt).unwrap_err().to_string().contains("truncated.png"));
}

#[test]
fn layout_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = ImageFolder::open(&missing, &opts()).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }) && err.to_string().contains("nope"), "{err}");
    let err = ImageFolder::open(dir.path(), &opts()).unwrap_err().to_string();
    assert!(err.contains("no class folders"), "{err}");
    make_classes(dir.path(), &[2]);
    std::fs::create_dir_all(dir.path().join("empty_class")).unwrap();
    std::fs::write(dir.path().join("empty_class/readme.txt"), "x").unwrap();
    let err = ImageFolder::open(dir.path(), &opts()).unwrap_err().to_string();
    assert!(err.contains("empty_class") && err.contains("no readable images"), "{err}");
    // A class whose only image is corrupt is empty after skipping.
    std::fs::write(dir.path().join("empty_class/bad.png"), b"").unwrap();
    let err = ImageFolder::open(dir.path(), &ImageFolderOptions { skip_corrupt: true, ..opts() }).unwrap_err();
    assert!(err.to_string().contains("empty_class"), "{err}");
}
