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

/// Symbolic links: followed only inside the root, no folder scanned twice, no image twice in a
/// class.
#[cfg(unix)]
mod symlinks {
    use std::os::unix::fs::symlink;
    use std::path::{Path, PathBuf};
    use std::sync::mpsc;
    use std::time::Duration;

    use burn::data::dataset::Dataset;
    use vit_data::dataset::ImageSource;
    use vit_data::{ImageFolder, ImageFolderOptions, SplitMode};

    use super::{common, make_classes, opts};

    /// Opens `root` on another thread, failing the test if the scan takes more than a minute
    /// (two link loops used to hang it).
    fn open_bounded(root: &Path, options: ImageFolderOptions) -> vit_data::Result<ImageFolder> {
        let (tx, rx) = mpsc::channel();
        let root = root.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(ImageFolder::open(&root, &options));
        });
        rx.recv_timeout(Duration::from_secs(60)).expect("the ImageFolder scan did not terminate")
    }

    /// The files of `folder` relative to `root`.
    fn relative(folder: &ImageFolder, root: &Path) -> Vec<String> {
        folder.files().iter().map(|f| f.strip_prefix(root).unwrap().display().to_string()).collect()
    }

    fn skipped(folder: &ImageFolder, root: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            folder.skipped_links().iter().map(|s| s.path.strip_prefix(root).unwrap().display().to_string()).collect();
        v.sort();
        v
    }

    fn labels(folder: &ImageFolder) -> Vec<usize> {
        (0..folder.len()).map(|i| folder.label(i)).collect()
    }

    #[test]
    fn self_loop_lists_each_image_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        make_classes(root, &[3, 2]);
        symlink(".", root.join("class0/loop")).unwrap();
        common::write_image(&root.join("class1/nested/n.png"), 4, 4, 9);
        symlink("..", root.join("class1/nested/up")).unwrap();
        symlink(".", root.join("rootloop")).unwrap();

        let folder = open_bounded(root, opts()).unwrap();
        assert_eq!(folder.class_names(), &["class0", "class1"]);
        assert_eq!(folder.len(), 6);
        assert_eq!(labels(&folder), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(
            relative(&folder, root),
            [
                "class0/000.png",
                "class0/001.png",
                "class0/002.png",
                "class1/000.png",
                "class1/001.png",
                "class1/nested/n.png"
            ]
        );
        assert_eq!(skipped(&folder, root), ["class0/loop", "class1/nested/up", "rootloop"]);
        assert!(folder.skipped_links().iter().all(|s| s.reason.contains("already scanned")));
        assert!(folder.skipped().is_empty());

        // No image on both sides of a split.
        let ds = folder.into_dataset();
        let (train, valid) = ds.split(0.34, 1, SplitMode::Stratified).unwrap();
        let mut all: Vec<usize> = train.source_indices().iter().chain(valid.source_indices()).copied().collect();
        all.sort();
        assert_eq!(all, (0..6).collect::<Vec<_>>());
        assert_eq!(train.len() + valid.len(), 6);
    }

    #[test]
    fn mutual_loops_terminate() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        make_classes(root, &[2, 1]);
        common::write_image(&root.join("class0/x/x.png"), 4, 4, 1);
        common::write_image(&root.join("class0/y/y.png"), 4, 4, 2);
        // Two loops through each other, and two more through the class and the root.
        symlink("../y", root.join("class0/x/to_y")).unwrap();
        symlink("../x", root.join("class0/y/to_x")).unwrap();
        symlink("../class0", root.join("class1/to_class0")).unwrap();
        symlink("../class1", root.join("class0/to_class1")).unwrap();
        symlink("../../..", root.join("class0/x/to_parent_of_root")).unwrap();
        symlink("../..", root.join("class0/y/to_root")).unwrap();

        let folder = open_bounded(root, opts()).unwrap();
        assert_eq!(folder.class_names(), &["class0", "class1"]);
        assert_eq!(
            relative(&folder, root),
            ["class0/000.png", "class0/001.png", "class0/x/x.png", "class0/y/y.png", "class1/000.png"]
        );
        assert_eq!(labels(&folder), vec![0, 0, 0, 0, 1]);
        assert_eq!(
            skipped(&folder, root),
            [
                "class0/to_class1",
                "class0/x/to_parent_of_root",
                "class0/x/to_y",
                "class0/y/to_root",
                "class0/y/to_x",
                "class1/to_class0"
            ]
        );
    }

    #[test]
    fn links_outside_the_root_are_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        for i in 0..4 {
            common::write_image(&outside.path().join(format!("o{i}.png")), 4, 4, 50 + i);
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        make_classes(&root, &[2]);
        symlink(outside.path(), root.join("class0/ext")).unwrap();
        symlink(outside.path().join("o0.png"), root.join("class0/ext.png")).unwrap();
        symlink(outside.path(), root.join("ext_class")).unwrap();
        symlink(dir.path(), root.join("class0/parent")).unwrap();
        // A non-image link is ignored like any non-image file, wherever it leads.
        symlink(outside.path().join("o1.png"), root.join("class0/notes.txt")).unwrap();

        let folder = open_bounded(&root, opts()).unwrap();
        assert_eq!(folder.class_names(), &["class0"]);
        assert_eq!(folder.len(), 2);
        assert_eq!(relative(&folder, &root), ["class0/000.png", "class0/001.png"]);
        assert_eq!(skipped(&folder, &root), ["class0/ext", "class0/ext.png", "class0/parent", "ext_class"]);
        for s in folder.skipped_links() {
            assert!(s.reason.contains("outside the dataset root"), "{s:?}");
            assert!(!s.target.starts_with(root.canonicalize().unwrap()), "{s:?}");
        }
        // A class that only links outside is empty.
        let only = tempfile::tempdir().unwrap();
        make_classes(only.path(), &[1]);
        std::fs::create_dir(only.path().join("linked")).unwrap();
        symlink(outside.path().join("o2.png"), only.path().join("linked/o2.png")).unwrap();
        let err = open_bounded(only.path(), opts()).unwrap_err().to_string();
        assert!(err.contains("linked") && err.contains("no readable images"), "{err}");
    }

    #[test]
    fn links_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        common::write_image(&root.join("cat/a.png"), 4, 4, 1);
        common::write_image(&root.join("cat/sub/s.png"), 4, 4, 2);
        common::write_image(&root.join("dog/b.png"), 4, 4, 3);
        common::write_image(&root.join(".pool/p.png"), 4, 4, 4);
        // Same class, same image: listed once (the real file wins over the links).
        symlink("a.png", root.join("cat/0dup.png")).unwrap();
        symlink("../a.png", root.join("cat/sub/dup.png")).unwrap();
        // Another class: kept, like a copy.
        symlink("../cat/a.png", root.join("dog/shared.png")).unwrap();
        // A folder already scanned as part of another class, and a whole class linked twice.
        symlink("../cat/sub", root.join("dog/more")).unwrap();
        symlink("cat", root.join("kitty")).unwrap();
        // A link to a real class does not take its place (links are followed after the real tree).
        symlink("zebra", root.join("aaa")).unwrap();
        common::write_image(&root.join("zebra/z.png"), 4, 4, 5);
        // A folder reached only through a link is scanned once, for the link's class.
        symlink("../.pool", root.join("dog/pool")).unwrap();
        symlink("../.pool", root.join("zebra/pool")).unwrap();
        // A broken link is an unreadable image.
        symlink("nowhere.png", root.join("zebra/broken.png")).unwrap();

        let err = open_bounded(root, opts()).unwrap_err().to_string();
        assert!(err.contains("broken.png"), "{err}");
        let folder = open_bounded(root, ImageFolderOptions { skip_corrupt: true, ..opts() }).unwrap();
        assert_eq!(folder.class_names(), &["cat", "dog", "zebra"]);
        assert_eq!(
            relative(&folder, root),
            ["cat/a.png", "cat/sub/s.png", "dog/b.png", "dog/pool/p.png", "dog/shared.png", "zebra/z.png"]
        );
        assert_eq!(labels(&folder), vec![0, 0, 1, 1, 1, 2]);
        assert_eq!(
            skipped(&folder, root),
            ["aaa", "cat/0dup.png", "cat/sub/dup.png", "dog/more", "kitty", "zebra/pool"]
        );
        let skipped_images: Vec<PathBuf> = folder.skipped().iter().map(|s| s.path.clone()).collect();
        assert_eq!(skipped_images, vec![root.join("zebra/broken.png")]);
        assert_eq!(*folder.load(4).unwrap(), common::pattern(4, 4, 1));
        let ds = folder.into_dataset();
        assert_eq!(ds.len(), 6);
    }
}
