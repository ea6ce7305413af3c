//! Tests of the data readers, the embedded MNIST subset, shuffling/batching and augmentation.
//!
//! Fixtures are small files written into temporary folders, so every reader is exercised on
//! bytes whose expected decoding the test knows exactly.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use rslad_tui::data::augment::{CropFlip, crop_and_flip, crop_and_flip_image};
use rslad_tui::data::batch::{batches, epoch_order, num_batches};
use rslad_tui::data::cifar::{
    IMAGE_BYTES, encode_cifar10, encode_cifar100, parse_cifar10, parse_cifar100, read_cifar10,
    read_cifar100,
};
use rslad_tui::data::embedded::{SUBSET_LEN, mnist_subset};
use rslad_tui::data::idx::{encode_idx, image_set_from_idx, parse_idx, read_idx};
use rslad_tui::data::{DataSource, DatasetKind, ImageSet, load};
use rslad_tui::error::DataError;
use rslad_tui::rng;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// A deterministic, position-dependent byte pattern, so a misplaced byte shows.
fn pattern(len: usize, salt: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + salt * 17) % 251) as u8)
        .collect()
}

/// The error's full message, which is what a user sees.
fn message<T: std::fmt::Debug>(result: Result<T, DataError>) -> String {
    result.expect_err("expected an error").to_string()
}

fn assert_mentions(msg: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            msg.to_lowercase().contains(&needle.to_lowercase()),
            "error message {msg:?} should mention {needle:?}"
        );
    }
}

/// Writes an MNIST-style folder `<dir>/<sub>/` with `train` and `test` 28×28 images whose
/// labels cycle through 0..10; `gz` chooses which files are gzip-compressed.
fn write_idx_folder(dir: &Path, sub: &str, train: usize, test: usize, gz: [bool; 4]) {
    let files = [
        (
            "train-images-idx3-ubyte",
            vec![train, 28, 28],
            pattern(train * 784, 1),
        ),
        (
            "train-labels-idx1-ubyte",
            vec![train],
            labels_cycling(train),
        ),
        (
            "t10k-images-idx3-ubyte",
            vec![test, 28, 28],
            pattern(test * 784, 2),
        ),
        ("t10k-labels-idx1-ubyte", vec![test], labels_cycling(test)),
    ];
    for ((name, dims, data), gz) in files.into_iter().zip(gz) {
        let raw = encode_idx(&dims, &data);
        let (name, bytes) = if gz {
            (format!("{name}.gz"), gzip(&raw))
        } else {
            (name.to_string(), raw)
        };
        write(&dir.join(sub).join(name), &bytes);
    }
}

fn labels_cycling(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 10) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// IDX

#[test]
fn idx_raw_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a-idx3-ubyte");
    let data = pattern(2 * 3 * 4, 0);
    write(&path, &encode_idx(&[2, 3, 4], &data));

    let array = read_idx(&path).unwrap();
    assert_eq!(array.dims, vec![2, 3, 4]);
    assert_eq!(array.data, data);
}

#[test]
fn idx_gzip_is_detected_by_magic_bytes_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(5 * 7, 3);
    let raw = encode_idx(&[5, 7], &data);

    // Compressed content under a name without .gz ...
    let compressed = dir.path().join("labels-idx2-ubyte");
    write(&compressed, &gzip(&raw));
    // ... and raw content under a name with .gz.
    let misnamed = dir.path().join("labels-idx2-ubyte.gz");
    write(&misnamed, &raw);

    for path in [&compressed, &misnamed] {
        let array = read_idx(path).unwrap();
        assert_eq!(array.dims, vec![5, 7]);
        assert_eq!(array.data, data);
    }
}

#[test]
fn idx_rank_one_round_trip_in_memory() {
    let data = vec![9, 8, 7];
    let array = parse_idx(&gzip(&encode_idx(&[3], &data)), Path::new("mem")).unwrap();
    assert_eq!(array.dims, vec![3]);
    assert_eq!(array.data, data);
}

#[test]
fn idx_rejects_wrong_magic() {
    let mut bytes = encode_idx(&[2], &[1, 2]);
    bytes[0] = 0x12;
    let msg = message(parse_idx(&bytes, Path::new("bad-magic")));
    assert_mentions(&msg, &["bad-magic", "magic", "first two bytes must be 0"]);
}

#[test]
fn idx_rejects_truncated_header() {
    // Not even the 4 magic bytes.
    let msg = message(parse_idx(&[0, 0, 8], Path::new("tiny")));
    assert_mentions(&msg, &["tiny", "truncated header", "found only 3"]);

    // Rank 3 needs 16 header bytes; give 10.
    let bytes = &encode_idx(&[1, 2, 2], &[0; 4])[..10];
    let msg = message(parse_idx(bytes, Path::new("short-dims")));
    assert_mentions(&msg, &["short-dims", "truncated header", "16-byte", "10"]);
}

#[test]
fn idx_rejects_truncated_data_saying_how_much_is_missing() {
    let mut bytes = encode_idx(&[2, 3], &[1; 6]);
    bytes.truncate(bytes.len() - 2);
    let msg = message(parse_idx(&bytes, Path::new("cut")));
    assert_mentions(&msg, &["cut", "truncated data", "6 bytes", "found 4"]);

    // The same file gzip-compressed fails the same way after decompression.
    let msg = message(parse_idx(&gzip(&bytes), Path::new("cut.gz")));
    assert_mentions(&msg, &["truncated data", "6 bytes", "found 4"]);
}

#[test]
fn idx_rejects_non_u8_element_type() {
    let mut bytes = encode_idx(&[1], &[0]);
    bytes[2] = 0x0D; // f32
    bytes.extend_from_slice(&[0, 0, 0]); // a whole f32, so only the type is wrong
    let msg = message(parse_idx(&bytes, Path::new("floats")));
    assert_mentions(&msg, &["floats", "unsupported", "0x0d", "f32", "0x08"]);
}

#[test]
fn idx_rejects_trailing_bytes() {
    let mut bytes = encode_idx(&[2], &[1, 2]);
    bytes.push(3);
    let msg = message(parse_idx(&bytes, Path::new("long")));
    assert_mentions(&msg, &["long", "1 unexpected bytes", "2 bytes", "found 3"]);
}

#[test]
fn idx_rejects_corrupt_gzip() {
    let compressed = gzip(&encode_idx(&[100], &pattern(100, 5)));
    let cut = &compressed[..compressed.len() / 2];
    let msg = message(parse_idx(cut, Path::new("half.gz")));
    assert_mentions(&msg, &["half.gz", "gzip"]);
}

#[test]
fn idx_missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope-idx1-ubyte");
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert_mentions(&err.to_string(), &["nope-idx1-ubyte"]);
}

#[test]
fn idx_image_set_checks_ranks_counts_and_labels() {
    let images = Path::new("imgs");
    let labels = Path::new("lbls");
    let decode = |dims: &[usize], data: &[u8]| parse_idx(&encode_idx(dims, data), images).unwrap();

    let ok = image_set_from_idx(
        decode(&[2, 2, 3], &pattern(12, 0)),
        images,
        decode(&[2], &[4, 9]),
        labels,
        10,
    )
    .unwrap();
    assert_eq!((ok.len(), ok.channels, ok.height, ok.width), (2, 1, 2, 3));
    assert_eq!(ok.labels, vec![4, 9]);
    assert_eq!(ok.pixels, pattern(12, 0));

    let msg = message(image_set_from_idx(
        decode(&[2, 2, 3], &pattern(12, 0)),
        images,
        decode(&[3], &[1, 2, 3]),
        labels,
        10,
    ));
    assert_mentions(&msg, &["imgs", "2 images", "lbls", "3 labels"]);

    let msg = message(image_set_from_idx(
        decode(&[2, 2, 3], &pattern(12, 0)),
        images,
        decode(&[2], &[1, 10]),
        labels,
        10,
    ));
    assert_mentions(&msg, &["lbls", "label 10", "image 1", "10 classes"]);

    let msg = message(image_set_from_idx(
        decode(&[12], &pattern(12, 0)),
        images,
        decode(&[2], &[1, 2]),
        labels,
        10,
    ));
    assert_mentions(&msg, &["imgs", "rank-3", "rank 1"]);

    let msg = message(image_set_from_idx(
        decode(&[2, 2, 3], &pattern(12, 0)),
        images,
        decode(&[2, 1], &[1, 2]),
        labels,
        10,
    ));
    assert_mentions(&msg, &["lbls", "rank-1", "rank 2"]);
}

// ---------------------------------------------------------------------------------------------
// CIFAR

/// The byte at (image, channel, y, x) of the CIFAR fixtures: all four coordinates matter.
fn cifar_pixel(i: usize, c: usize, y: usize, x: usize) -> u8 {
    ((i * 101 + c * 67 + y * 5 + x * 3) % 256) as u8
}

fn cifar_pixels(n: usize) -> Vec<u8> {
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    for i in 0..n {
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    pixels.push(cifar_pixel(i, c, y, x));
                }
            }
        }
    }
    pixels
}

/// Checks pixels of `set` image `i` (fixture image `fixture_i`) at NCHW positions, channel
/// planes included, through both `image_f32` and `batch`.
fn assert_cifar_pixels(set: &ImageSet, i: usize, fixture_i: usize) {
    let image = set.image_f32(i);
    let (batch, _) = set.batch(&[i]);
    assert_eq!(image, batch);
    for (c, y, x) in [
        (0, 0, 0),
        (0, 31, 31),
        (1, 0, 0),
        (1, 5, 17),
        (2, 0, 0),
        (2, 31, 2),
    ] {
        let at = c * 32 * 32 + y * 32 + x;
        let want = f32::from(cifar_pixel(fixture_i, c, y, x)) / 255.0;
        assert_eq!(image[at], want, "image {i} channel {c} at ({y}, {x})");
    }
}

#[test]
fn cifar10_reader_places_labels_and_channel_planes() {
    let dir = tempfile::tempdir().unwrap();
    let labels = [3u8, 0, 9];
    let path = dir.path().join("data_batch_1.bin");
    write(&path, &encode_cifar10(&labels, &cifar_pixels(3)));

    let set = read_cifar10(&[&path]).unwrap();
    assert_eq!(set.len(), 3);
    assert_eq!(
        (set.channels, set.height, set.width, set.num_classes),
        (3, 32, 32, 10)
    );
    assert_eq!(set.labels, labels);
    assert_eq!(set.pixels, cifar_pixels(3));
    for i in 0..3 {
        assert_cifar_pixels(&set, i, i);
    }
    let (_, batch_labels) = set.batch(&[2, 0]);
    assert_eq!(batch_labels, vec![9, 3]);
}

#[test]
fn cifar10_concatenates_batch_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = cifar_pixels(3);
    let first = dir.path().join("a.bin");
    let second = dir.path().join("b.bin");
    write(&first, &encode_cifar10(&[1, 2], &pixels[..2 * IMAGE_BYTES]));
    write(&second, &encode_cifar10(&[7], &pixels[2 * IMAGE_BYTES..]));

    let set = read_cifar10(&[&first, &second]).unwrap();
    assert_eq!(set.labels, vec![1, 2, 7]);
    assert_cifar_pixels(&set, 2, 2);
}

#[test]
fn cifar100_reader_uses_the_fine_label() {
    let dir = tempfile::tempdir().unwrap();
    let labels = [(4u8, 99u8), (19, 0), (0, 42)];
    let path = dir.path().join("train.bin");
    write(&path, &encode_cifar100(&labels, &cifar_pixels(3)));

    let set = read_cifar100(&path).unwrap();
    assert_eq!(set.num_classes, 100);
    assert_eq!(set.labels, vec![99, 0, 42]);
    for i in 0..3 {
        assert_cifar_pixels(&set, i, i);
    }
}

#[test]
fn cifar_rejects_truncated_files() {
    let mut bytes = encode_cifar10(&[1, 2], &cifar_pixels(2));
    bytes.pop();
    let msg = message(parse_cifar10(&bytes, Path::new("data_batch_3.bin")));
    assert_mentions(
        &msg,
        &["data_batch_3.bin", "truncated", "3073-byte records"],
    );

    let mut bytes = encode_cifar100(&[(1, 2)], &cifar_pixels(1));
    bytes.truncate(100);
    let msg = message(parse_cifar100(&bytes, Path::new("test.bin")));
    assert_mentions(&msg, &["test.bin", "truncated", "3074-byte records"]);

    let msg = message(parse_cifar10(&[], Path::new("empty.bin")));
    assert_mentions(&msg, &["empty.bin", "empty"]);
}

#[test]
fn cifar_rejects_out_of_range_labels() {
    let msg = message(parse_cifar10(
        &encode_cifar10(&[9, 10], &cifar_pixels(2)),
        Path::new("data_batch_2.bin"),
    ));
    assert_mentions(
        &msg,
        &["data_batch_2.bin", "label 10", "image 1", "10 classes"],
    );

    let msg = message(parse_cifar100(
        &encode_cifar100(&[(0, 100)], &cifar_pixels(1)),
        Path::new("train.bin"),
    ));
    assert_mentions(&msg, &["train.bin", "label 100", "100 classes"]);

    // A CIFAR-100 file read as CIFAR-10 is caught: its fine labels land in pixel data and
    // the coarse label (here 15) is out of range.
    let msg = message(parse_cifar10(
        &encode_cifar100(&[(15, 2); 3073], &cifar_pixels(3073)),
        Path::new("train.bin"),
    ));
    assert_mentions(&msg, &["train.bin"]);
}

// ---------------------------------------------------------------------------------------------
// Embedded MNIST subset

#[test]
fn embedded_subset_is_ten_thousand_plausible_mnist_images_per_split() {
    let (train, test) = mnist_subset().unwrap();
    for (name, set) in [("train", &train), ("test", &test)] {
        assert_eq!(set.len(), SUBSET_LEN, "{name}");
        assert_eq!(set.len(), 10_000, "{name}");
        assert_eq!((set.channels, set.height, set.width), (1, 28, 28), "{name}");
        assert_eq!(set.pixels.len(), 10_000 * 784, "{name}");
        assert!(set.labels.iter().all(|&l| l < 10), "{name}");
        let counts = set.class_counts();
        assert!(
            counts.iter().all(|&c| c > 800 && c < 1300),
            "{name}: every class should be present in roughly equal numbers, got {counts:?}"
        );
        let mean =
            set.pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / set.pixels.len() as f64 / 255.0;
        assert!((0.12..0.14).contains(&mean), "{name}: mean pixel {mean}");
        let dark = set.pixels.iter().filter(|&&p| p == 0).count() as f64 / set.pixels.len() as f64;
        assert!(
            dark > 0.75,
            "{name}: MNIST is mostly background, got {dark}"
        );
    }
    // The well-known first labels of MNIST's training and test sets.
    assert_eq!(&train.labels[..8], &[5, 0, 4, 1, 9, 2, 1, 3]);
    assert_eq!(&test.labels[..4], &[7, 2, 1, 0]);
}

#[test]
fn load_embedded_mnist_and_refuse_other_kinds() {
    let data = load(DatasetKind::Mnist, &DataSource::Embedded).unwrap();
    assert_eq!(data.kind, DatasetKind::Mnist);
    assert_eq!((data.train.len(), data.test.len()), (10_000, 10_000));
    assert_mentions(&data.origin, &["embedded"]);

    for kind in [
        DatasetKind::FashionMnist,
        DatasetKind::Cifar10,
        DatasetKind::Cifar100,
    ] {
        let msg = message(load(kind, &DataSource::Embedded));
        assert_mentions(
            &msg,
            &["embedded", kind.name(), "scripts/fetch-data.sh", "folder"],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Loading from a data folder

#[test]
fn load_mnist_folder_with_raw_and_gzip_files() {
    let dir = tempfile::tempdir().unwrap();
    write_idx_folder(dir.path(), "mnist", 12, 5, [true, false, false, true]);

    let data = load(
        DatasetKind::Mnist,
        &DataSource::Folder(dir.path().to_path_buf()),
    )
    .unwrap();
    assert_eq!((data.train.len(), data.test.len()), (12, 5));
    assert_eq!(data.train.pixels, pattern(12 * 784, 1));
    assert_eq!(data.test.pixels, pattern(5 * 784, 2));
    assert_eq!(data.train.labels, labels_cycling(12));
    assert_mentions(&data.origin, &["mnist"]);
}

#[test]
fn load_fashion_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_idx_folder(dir.path(), "fashion-mnist", 10, 10, [true; 4]);
    let source = DataSource::parse(dir.path().to_str().unwrap());
    let data = load(DatasetKind::FashionMnist, &source).unwrap();
    assert_eq!(data.train.num_classes, 10);
    assert_eq!(data.test.class_counts(), vec![1; 10]);
    // The MNIST sub-folder is a different data set and is absent here.
    let err = load(DatasetKind::Mnist, &source).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
}

#[test]
fn load_missing_folder_is_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let err = load(DatasetKind::Mnist, &DataSource::Folder(missing.clone())).unwrap_err();
    match &err {
        DataError::MissingFolder { path } => assert_eq!(path, &missing),
        other => panic!("expected MissingFolder, got {other:?}"),
    }
    assert_mentions(&err.to_string(), &["no-such-dir"]);
}

#[test]
fn load_missing_file_names_it_and_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    write_idx_folder(dir.path(), "mnist", 3, 3, [false; 4]);
    fs::remove_file(dir.path().join("mnist/t10k-labels-idx1-ubyte")).unwrap();
    let msg = message(load(
        DatasetKind::Mnist,
        &DataSource::Folder(dir.path().into()),
    ));
    assert_mentions(
        &msg,
        &[
            "t10k-labels-idx1-ubyte",
            "not found",
            ".gz",
            "train-images-idx3-ubyte",
        ],
    );

    let msg = message(load(
        DatasetKind::Cifar10,
        &DataSource::Folder(dir.path().into()),
    ));
    assert_mentions(
        &msg,
        &[
            "cifar-10-batches-bin",
            "data_batch_1.bin",
            "test_batch.bin",
            "yourself",
        ],
    );

    let msg = message(load(
        DatasetKind::Cifar100,
        &DataSource::Folder(dir.path().into()),
    ));
    assert_mentions(&msg, &["cifar-100-binary", "train.bin", "test.bin"]);
}

#[test]
fn load_rejects_images_of_the_wrong_shape() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("mnist");
    write(
        &sub.join("train-images-idx3-ubyte"),
        &encode_idx(&[2, 8, 8], &[0; 128]),
    );
    write(
        &sub.join("train-labels-idx1-ubyte"),
        &encode_idx(&[2], &[0, 1]),
    );
    write(
        &sub.join("t10k-images-idx3-ubyte"),
        &encode_idx(&[2, 8, 8], &[0; 128]),
    );
    write(
        &sub.join("t10k-labels-idx1-ubyte"),
        &encode_idx(&[2], &[0, 1]),
    );
    let msg = message(load(
        DatasetKind::Mnist,
        &DataSource::Folder(dir.path().into()),
    ));
    assert_mentions(&msg, &["1×8×8", "1×28×28"]);
}

#[test]
fn load_rejects_mismatched_counts_in_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_idx_folder(dir.path(), "mnist", 4, 4, [false; 4]);
    write(
        &dir.path().join("mnist/train-labels-idx1-ubyte"),
        &encode_idx(&[3], &[0, 1, 2]),
    );
    let msg = message(load(
        DatasetKind::Mnist,
        &DataSource::Folder(dir.path().into()),
    ));
    assert_mentions(&msg, &["train-images-idx3-ubyte", "4 images", "3 labels"]);
}

#[test]
fn load_cifar_folders() {
    let dir = tempfile::tempdir().unwrap();
    let c10 = dir.path().join("cifar-10-batches-bin");
    for i in 1..=5u8 {
        let pixels = cifar_pixels(2);
        write(
            &c10.join(format!("data_batch_{i}.bin")),
            &encode_cifar10(&[i, i + 1], &pixels),
        );
    }
    write(
        &c10.join("test_batch.bin"),
        &encode_cifar10(&[0], &cifar_pixels(1)),
    );
    let c100 = dir.path().join("cifar-100-binary");
    write(
        &c100.join("train.bin"),
        &encode_cifar100(&[(1, 77), (2, 5)], &cifar_pixels(2)),
    );
    write(
        &c100.join("test.bin"),
        &encode_cifar100(&[(3, 99)], &cifar_pixels(1)),
    );
    let source = DataSource::Folder(dir.path().to_path_buf());

    let data = load(DatasetKind::Cifar10, &source).unwrap();
    assert_eq!(data.train.len(), 10);
    assert_eq!(data.train.labels, vec![1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    assert_eq!(data.test.labels, vec![0]);
    assert_cifar_pixels(&data.train, 9, 1);

    let data = load(DatasetKind::Cifar100, &source).unwrap();
    assert_eq!(data.train.labels, vec![77, 5]);
    assert_eq!(data.test.labels, vec![99]);
    assert_eq!(data.test.num_classes, 100);
}

// ---------------------------------------------------------------------------------------------
// Kinds, sources, image sets

#[test]
fn dataset_kind_names_and_properties() {
    for kind in DatasetKind::ALL {
        assert_eq!(DatasetKind::from_name(kind.name()).unwrap(), kind);
        assert_eq!(kind.name().parse::<DatasetKind>().unwrap(), kind);
        assert_eq!(kind.to_string(), kind.name());
        assert_eq!(kind.class_names().len(), kind.num_classes(), "{kind}");
        let unique: HashSet<_> = kind.class_names().iter().collect();
        assert_eq!(
            unique.len(),
            kind.num_classes(),
            "{kind} class names are distinct"
        );
    }
    assert_eq!(
        DatasetKind::from_name("fashion-mnist").unwrap(),
        DatasetKind::FashionMnist
    );
    assert_eq!(
        DatasetKind::from_name("CIFAR-10").unwrap(),
        DatasetKind::Cifar10
    );
    let msg = message(DatasetKind::from_name("svhn"));
    assert_mentions(&msg, &["svhn", "mnist", "fashion", "cifar10", "cifar100"]);

    assert_eq!(DatasetKind::Mnist.num_classes(), 10);
    assert_eq!(DatasetKind::Cifar100.num_classes(), 100);
    assert_eq!(
        (
            DatasetKind::Mnist.channels(),
            DatasetKind::Mnist.image_size()
        ),
        (1, 28)
    );
    assert_eq!(
        (
            DatasetKind::Cifar10.channels(),
            DatasetKind::Cifar10.image_size()
        ),
        (3, 32)
    );
    assert_eq!(DatasetKind::Mnist.default_epsilon(), 0.3);
    assert_eq!(DatasetKind::FashionMnist.default_epsilon(), 0.1);
    assert_eq!(DatasetKind::Cifar10.default_epsilon(), 8.0 / 255.0);
    assert_eq!(DatasetKind::Cifar100.default_epsilon(), 8.0 / 255.0);
    assert_eq!(DatasetKind::FashionMnist.class_names()[9], "Ankle boot");
    assert_eq!(DatasetKind::Cifar10.class_names()[0], "airplane");
    assert_eq!(DatasetKind::Cifar100.class_names()[99], "worm");
}

#[test]
fn data_source_parse() {
    assert_eq!(DataSource::parse("embedded"), DataSource::Embedded);
    assert_eq!(DataSource::parse("EMBEDDED"), DataSource::Embedded);
    assert_eq!(
        DataSource::parse("./data"),
        DataSource::Folder(PathBuf::from("./data"))
    );
    assert_eq!(
        DataSource::parse("/x/embedded"),
        DataSource::Folder(PathBuf::from("/x/embedded"))
    );
}

#[test]
fn image_set_batch_take_and_scaling() {
    let set = ImageSet {
        pixels: vec![0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8],
        labels: vec![2, 0, 1],
        channels: 1,
        height: 2,
        width: 2,
        num_classes: 3,
    };
    assert_eq!((set.len(), set.image_len(), set.is_empty()), (3, 4, false));
    assert_eq!(set.image_f32(0), vec![0.0, 1.0, 0.2, 0.4]);

    let (images, labels) = set.batch(&[2, 0]);
    assert_eq!(labels, vec![1, 2]);
    assert_eq!(images.len(), 8);
    assert_eq!(&images[..4], &set.image_f32(2)[..]);
    assert_eq!(&images[4..], &set.image_f32(0)[..]);

    let first = set.take(2);
    assert_eq!(first.labels, vec![2, 0]);
    assert_eq!(first.pixels, set.pixels[..8]);
    assert_eq!(set.take(100), set);
    assert!(set.take(0).is_empty());
    assert_eq!(set.class_counts(), vec![1, 1, 1]);
}

// ---------------------------------------------------------------------------------------------
// Shuffling and batching

#[test]
fn epoch_order_is_a_deterministic_permutation_that_changes_per_epoch() {
    let n = 1000;
    let order = epoch_order(n, 42, 0);
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "a permutation of 0..n");
    assert_ne!(order, (0..n).collect::<Vec<_>>(), "actually shuffled");

    assert_eq!(
        epoch_order(n, 42, 0),
        order,
        "same (seed, epoch), same order"
    );
    assert_eq!(epoch_order(n, 42, 7), epoch_order(n, 42, 7));
    assert_ne!(epoch_order(n, 42, 1), order, "another epoch, another order");
    assert_ne!(epoch_order(n, 43, 0), order, "another seed, another order");
    let distinct: HashSet<Vec<usize>> = (0..20).map(|e| epoch_order(n, 42, e)).collect();
    assert_eq!(distinct.len(), 20);

    assert!(epoch_order(0, 1, 0).is_empty());
    assert_eq!(epoch_order(1, 1, 0), vec![0]);
}

#[test]
fn batches_cover_every_index_once_keeping_the_last_partial_batch() {
    let order = epoch_order(103, 5, 2);
    let all: Vec<&[usize]> = batches(&order, 10).collect();
    assert_eq!(all.len(), 11);
    assert_eq!(num_batches(order.len(), 10), 11);
    assert!(all[..10].iter().all(|b| b.len() == 10));
    assert_eq!(all[10].len(), 3);
    let flat: Vec<usize> = all.concat();
    assert_eq!(flat, order, "in order, each index exactly once");

    assert_eq!(batches(&order, 103).count(), 1);
    assert_eq!(batches(&order, 500).next().unwrap().len(), 103);
    assert_eq!(batches(&[], 4).count(), 0);
    assert_eq!(num_batches(0, 4), 0);
    assert_eq!(num_batches(8, 4), 2);
}

// ---------------------------------------------------------------------------------------------
// Augmentation

/// A C×H×W image whose every value is distinct and non-zero.
fn ramp(c: usize, h: usize, w: usize) -> Vec<f32> {
    (0..c * h * w).map(|i| (i + 1) as f32).collect()
}

fn mirror(image: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0.0; c * h * w];
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                out[ch * h * w + y * w + x] = image[ch * h * w + y * w + (w - 1 - x)];
            }
        }
    }
    out
}

#[test]
fn crop_flip_identity_and_mirror() {
    let (c, h, w) = (3, 5, 6);
    let original = ramp(c, h, w);

    for pad in [0, 4] {
        let mut image = original.clone();
        crop_and_flip_image(&mut image, c, h, w, pad, CropFlip::identity(pad));
        assert_eq!(
            image, original,
            "pad {pad}, centred crop, no flip is the identity"
        );

        let mut image = original.clone();
        let flip = CropFlip {
            flip: true,
            ..CropFlip::identity(pad)
        };
        crop_and_flip_image(&mut image, c, h, w, pad, flip);
        assert_eq!(
            image,
            mirror(&original, c, h, w),
            "pad {pad}, centred crop, flipped"
        );
    }
}

#[test]
fn crop_shifts_the_image_and_fills_with_zeros() {
    let (c, h, w, pad) = (2, 6, 6, 2);
    let original = ramp(c, h, w);
    let at = |img: &[f32], ch: usize, y: usize, x: usize| img[ch * h * w + y * w + x];

    // Crop at the padded image's top-left corner: content moves down-right by `pad`.
    let mut image = original.clone();
    let t = CropFlip {
        offset_y: 0,
        offset_x: 0,
        flip: false,
    };
    crop_and_flip_image(&mut image, c, h, w, pad, t);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let want = if y < pad || x < pad {
                    0.0
                } else {
                    at(&original, ch, y - pad, x - pad)
                };
                assert_eq!(at(&image, ch, y, x), want, "({ch}, {y}, {x})");
            }
        }
    }

    // Crop at the bottom-right corner and flip: content moves up-left by `pad`, then mirrors.
    let mut image = original.clone();
    let t = CropFlip {
        offset_y: 2 * pad,
        offset_x: 2 * pad,
        flip: true,
    };
    crop_and_flip_image(&mut image, c, h, w, pad, t);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let xc = w - 1 - x; // column in the unflipped crop
                let want = if y + pad >= h || xc + pad >= w {
                    0.0
                } else {
                    at(&original, ch, y + pad, xc + pad)
                };
                assert_eq!(at(&image, ch, y, x), want, "({ch}, {y}, {x})");
            }
        }
    }
}

#[test]
fn random_crop_and_flip_keeps_shape_and_is_reproducible() {
    let (n, c, h, w, pad) = (16, 3, 8, 8, 4);
    let original: Vec<f32> = (0..n).flat_map(|_| ramp(c, h, w)).collect();

    let run = |seed: u64| {
        let mut batch = original.clone();
        crop_and_flip(
            &mut batch,
            n,
            c,
            h,
            w,
            pad,
            &mut rng::seeded(seed, rng::stream::AUGMENT),
        );
        batch
    };
    let a = run(1);
    assert_eq!(a.len(), original.len());
    assert_eq!(run(1), a, "same seed, same augmentation");
    assert_ne!(run(2), a, "another seed, another augmentation");
    assert_ne!(a, original);
    let image_len = c * h * w;
    // Each output value is either padding or one of that image's own values.
    for image in a.chunks_exact(image_len) {
        assert!(
            image
                .iter()
                .all(|&v| v == 0.0 || (1.0..=image_len as f32).contains(&v))
        );
    }
    // Images of one batch get different transforms.
    let distinct: HashSet<Vec<u32>> = a
        .chunks_exact(image_len)
        .map(|img| img.iter().map(|v| v.to_bits()).collect())
        .collect();
    assert!(distinct.len() > 1);
}

#[test]
fn random_flip_without_padding_is_identity_or_mirror_about_half_the_time() {
    let (n, c, h, w) = (200, 1, 3, 4);
    let original = ramp(c, h, w);
    let mut batch: Vec<f32> = (0..n).flat_map(|_| original.clone()).collect();
    crop_and_flip(
        &mut batch,
        n,
        c,
        h,
        w,
        0,
        &mut rng::seeded(9, rng::stream::AUGMENT),
    );
    let mirrored = mirror(&original, c, h, w);
    let mut flips = 0;
    for image in batch.chunks_exact(c * h * w) {
        if image == mirrored.as_slice() {
            flips += 1;
        } else {
            assert_eq!(image, original.as_slice(), "pad 0 leaves only the flip");
        }
    }
    assert!(
        (60..=140).contains(&flips),
        "p = 0.5 flips, got {flips} of {n}"
    );
}

// ---------------------------------------------------------------------------------------------
// Real data (needs scripts/fetch-data.sh to have run)

/// Loads the full data sets that `scripts/fetch-data.sh` downloads. Ignored by default because
/// it needs the download; run it with
/// `RSLAD_DATA_DIR=./data cargo test --test data_readers -- --ignored`.
#[test]
#[ignore = "needs scripts/fetch-data.sh to have downloaded the data (RSLAD_DATA_DIR, default ./data)"]
fn fetched_folder_has_full_mnist_and_fashion_mnist() {
    let dir =
        std::env::var_os("RSLAD_DATA_DIR").map_or_else(|| PathBuf::from("data"), PathBuf::from);
    let source = DataSource::Folder(dir);
    for (kind, mean_range) in [
        (DatasetKind::Mnist, 0.12..0.14),
        (DatasetKind::FashionMnist, 0.27..0.30),
    ] {
        let data = load(kind, &source).unwrap();
        assert_eq!(
            (data.train.len(), data.test.len()),
            (60_000, 10_000),
            "{kind}"
        );
        let counts = data.train.class_counts();
        assert!(counts.iter().all(|&c| c > 5000), "{kind}: {counts:?}");
        assert_eq!(
            data.test.class_counts().iter().sum::<usize>(),
            10_000,
            "{kind}"
        );
        let mean = data.train.pixels.iter().map(|&p| f64::from(p)).sum::<f64>()
            / data.train.pixels.len() as f64
            / 255.0;
        assert!(mean_range.contains(&mean), "{kind}: mean pixel {mean}");
    }
    // The embedded subset is exactly a prefix of the full MNIST training set.
    let full = load(DatasetKind::Mnist, &source).unwrap();
    let (subset_train, subset_test) = mnist_subset().unwrap();
    assert_eq!(full.train.take(SUBSET_LEN), subset_train);
    assert_eq!(full.test, subset_test);
}
