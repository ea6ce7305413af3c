//! The "binary version" of CIFAR-10 and CIFAR-100.
//!
//! Each file is a plain sequence of fixed-size records, with no header:
//!
//! ```text
//! CIFAR-10:  <label>                <3072 pixel bytes>
//! CIFAR-100: <coarse label> <fine label> <3072 pixel bytes>
//! ```
//!
//! The pixel bytes are the red plane, then green, then blue, each 32×32 row-major, which is
//! already the CHW layout [`ImageSet`] uses, so a record's pixels are copied as they are.
//! For CIFAR-100 the fine label (100 classes) is used; the coarse super-class is ignored.

use std::path::Path;

use super::{ImageSet, check_labels};
use crate::bounded_read::{self, CIFAR};
use crate::error::DataError;

/// CIFAR images are 3 × 32 × 32.
pub const CHANNELS: usize = 3;
pub const SIZE: usize = 32;
/// Pixel bytes in one record.
pub const IMAGE_BYTES: usize = CHANNELS * SIZE * SIZE;

/// The record layout of one of the two variants.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Label bytes before the pixels.
    label_bytes: usize,
    /// Which of those bytes is the label used.
    label_index: usize,
    num_classes: usize,
    name: &'static str,
}

const CIFAR10: Layout = Layout {
    label_bytes: 1,
    label_index: 0,
    num_classes: 10,
    name: "CIFAR-10",
};

const CIFAR100: Layout = Layout {
    label_bytes: 2,
    label_index: 1,
    num_classes: 100,
    name: "CIFAR-100",
};

impl Layout {
    fn record_len(self) -> usize {
        self.label_bytes + IMAGE_BYTES
    }
}

/// Reads CIFAR-10 batch files and concatenates them in the order given (the five training
/// batches make the 50,000-image training set).
pub fn read_cifar10(paths: &[impl AsRef<Path>]) -> Result<ImageSet, DataError> {
    let mut set = empty(CIFAR10);
    for path in paths {
        let path = path.as_ref();
        parse_into(&read_bytes(path)?, path, CIFAR10, &mut set)?;
    }
    Ok(set)
}

/// Reads one CIFAR-100 file (`train.bin` or `test.bin`), keeping the fine labels.
pub fn read_cifar100(path: &Path) -> Result<ImageSet, DataError> {
    read(path, CIFAR100)
}

/// Decodes the contents of a CIFAR-10 batch file; `origin` names it in errors.
pub fn parse_cifar10(bytes: &[u8], origin: &Path) -> Result<ImageSet, DataError> {
    parse(bytes, origin, CIFAR10)
}

/// Decodes the contents of a CIFAR-100 file; `origin` names it in errors.
pub fn parse_cifar100(bytes: &[u8], origin: &Path) -> Result<ImageSet, DataError> {
    parse(bytes, origin, CIFAR100)
}

fn read(path: &Path, layout: Layout) -> Result<ImageSet, DataError> {
    parse(&read_bytes(path)?, path, layout)
}

/// The file's bytes, if it is a regular file of at most [`CIFAR`] bytes (the largest real one,
/// CIFAR-100's `train.bin`, is 154 MB).
fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    bounded_read::read(path, CIFAR).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error: error.into(),
    })
}

fn parse(bytes: &[u8], origin: &Path, layout: Layout) -> Result<ImageSet, DataError> {
    let mut set = empty(layout);
    parse_into(bytes, origin, layout, &mut set)?;
    Ok(set)
}

/// Appends the records in `bytes` to `set`, so that several batch files make one set without
/// copying the pixels twice.
fn parse_into(
    bytes: &[u8],
    origin: &Path,
    layout: Layout,
    set: &mut ImageSet,
) -> Result<(), DataError> {
    let record_len = layout.record_len();
    if bytes.is_empty() {
        return Err(format_error(origin, format!("empty {} file", layout.name)));
    }
    if !bytes.len().is_multiple_of(record_len) {
        return Err(format_error(
            origin,
            format!(
                "truncated or not a {} binary file: its {} bytes are not a whole number of \
                 {record_len}-byte records ({} whole records and {} bytes left over)",
                layout.name,
                bytes.len(),
                bytes.len() / record_len,
                bytes.len() % record_len
            ),
        ));
    }
    let first_new = set.labels.len();
    set.pixels.reserve(bytes.len() / record_len * IMAGE_BYTES);
    for record in bytes.chunks_exact(record_len) {
        let (labels, pixels) = record.split_at(layout.label_bytes);
        set.labels.push(labels[layout.label_index]);
        set.pixels.extend_from_slice(pixels);
    }
    check_labels(&set.labels[first_new..], layout.num_classes, origin)
}

fn empty(layout: Layout) -> ImageSet {
    ImageSet {
        pixels: Vec::new(),
        labels: Vec::new(),
        channels: CHANNELS,
        height: SIZE,
        width: SIZE,
        num_classes: layout.num_classes,
    }
}

fn format_error(origin: &Path, reason: String) -> DataError {
    DataError::Format {
        path: origin.to_path_buf(),
        reason,
    }
}

/// Encodes images as a CIFAR-10 batch file; the inverse of [`parse_cifar10`], for test
/// fixtures. `pixels` holds `labels.len()` images of [`IMAGE_BYTES`] each.
///
/// # Panics
/// If `pixels.len() != labels.len() * IMAGE_BYTES`.
pub fn encode_cifar10(labels: &[u8], pixels: &[u8]) -> Vec<u8> {
    encode(labels.iter().map(|&l| vec![l]), pixels)
}

/// Encodes images as a CIFAR-100 file; `labels` holds `(coarse, fine)` pairs.
///
/// # Panics
/// If `pixels.len() != labels.len() * IMAGE_BYTES`.
pub fn encode_cifar100(labels: &[(u8, u8)], pixels: &[u8]) -> Vec<u8> {
    encode(labels.iter().map(|&(c, f)| vec![c, f]), pixels)
}

fn encode(labels: impl ExactSizeIterator<Item = Vec<u8>>, pixels: &[u8]) -> Vec<u8> {
    assert_eq!(
        pixels.len(),
        labels.len() * IMAGE_BYTES,
        "one {IMAGE_BYTES}-byte image per label"
    );
    labels
        .zip(pixels.chunks_exact(IMAGE_BYTES))
        .flat_map(|(label, image)| label.into_iter().chain(image.iter().copied()))
        .collect()
}
