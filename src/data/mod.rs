//! Image classification data sets: readers for the on-disk formats (IDX for MNIST and
//! Fashion-MNIST, the CIFAR binary records), the embedded MNIST subset, seeded shuffling and
//! batching, and CIFAR augmentation.
//!
//! Everything here is plain Rust on `u8`/`f32` buffers so that it can be tested without a
//! tensor backend; the training code turns batches into tensors.

pub mod augment;
pub mod batch;
pub mod cifar;
pub mod embedded;
pub mod idx;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::DataError;

/// A set of labelled images stored compactly as bytes.
///
/// Pixels are kept as `u8` (one per channel value, NCHW order) rather than `f32`: CIFAR-10's
/// training set is 150 MB as bytes and would be 600 MB as floats. Conversion to `[0, 1]`
/// happens per batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// `len() * channels * height * width` values, image after image, each image channel
    /// plane after channel plane, each plane row-major.
    pub pixels: Vec<u8>,
    /// One class index per image, each `< num_classes`.
    pub labels: Vec<u8>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub num_classes: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of values in one image (`channels * height * width`).
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The raw bytes of image `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`, like slice indexing.
    pub fn image_bytes(&self, i: usize) -> &[u8] {
        let len = self.image_len();
        &self.pixels[i * len..(i + 1) * len]
    }

    /// Image `i` scaled to `[0, 1]`, in CHW order.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image_f32(&self, i: usize) -> Vec<f32> {
        self.image_bytes(i).iter().map(|&b| to_unit(b)).collect()
    }

    /// The images at `indices`, scaled to `[0, 1]` and concatenated in NCHW order, with their
    /// labels as `i64` (the type cross-entropy losses take).
    ///
    /// # Panics
    /// If an index is out of range: indices come from [`batch::epoch_order`] over this set, so
    /// a bad one is a programming error, not bad input.
    pub fn batch(&self, indices: &[usize]) -> (Vec<f32>, Vec<i64>) {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend(self.image_bytes(i).iter().map(|&b| to_unit(b)));
            labels.push(i64::from(self.labels[i]));
        }
        (images, labels)
    }

    /// The first `n` images (all of them if there are fewer), e.g. for a quick evaluation.
    pub fn take(&self, n: usize) -> ImageSet {
        self.slice(0, n)
    }

    /// Images `start..end`, both clamped to the set (empty if `start >= end`).
    pub fn slice(&self, start: usize, end: usize) -> ImageSet {
        let end = end.min(self.len());
        let start = start.min(end);
        ImageSet {
            pixels: self.pixels[start * self.image_len()..end * self.image_len()].to_vec(),
            labels: self.labels[start..end].to_vec(),
            ..self.shape_only()
        }
    }

    /// How many images each class has (index = class).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &label in &self.labels {
            if let Some(count) = counts.get_mut(usize::from(label)) {
                *count += 1;
            }
        }
        counts
    }

    /// An empty set with the same image shape and class count.
    fn shape_only(&self) -> ImageSet {
        ImageSet {
            pixels: Vec::new(),
            labels: Vec::new(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            num_classes: self.num_classes,
        }
    }
}

/// Byte to `[0, 1]`, the input range the attacks' epsilons are defined in.
fn to_unit(b: u8) -> f32 {
    f32::from(b) / 255.0
}

/// Rejects a label that is not a valid class, naming the file and the position, so a file
/// from the wrong data set (e.g. CIFAR-100 labels read as CIFAR-10) fails at load time
/// instead of as an out-of-bounds index deep inside the loss.
pub(crate) fn check_labels(
    labels: &[u8],
    num_classes: usize,
    origin: &Path,
) -> Result<(), DataError> {
    match labels.iter().position(|&l| usize::from(l) >= num_classes) {
        None => Ok(()),
        Some(i) => Err(DataError::Format {
            path: origin.to_path_buf(),
            reason: format!(
                "label {} of image {i} is out of range: this data set has {num_classes} classes \
                 (labels 0..{num_classes})",
                labels[i]
            ),
        }),
    }
}

/// The data sets the workbench knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    Mnist,
    FashionMnist,
    Cifar10,
    Cifar100,
}

const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// CIFAR-100 fine labels, in label order (alphabetical, as in the data set's `meta` file).
const CIFAR100_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

impl DatasetKind {
    /// Every kind, in the order help texts list them.
    pub const ALL: [DatasetKind; 4] = [
        DatasetKind::Mnist,
        DatasetKind::FashionMnist,
        DatasetKind::Cifar10,
        DatasetKind::Cifar100,
    ];

    /// The short name used on the command line and in saved configurations.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
        }
    }

    /// Parses a name, case-insensitively; besides [`name`](Self::name) it accepts the
    /// spellings people commonly type ("fashion-mnist", "cifar-10", ...).
    pub fn from_name(name: &str) -> Result<Self, DataError> {
        let lower = name.trim().to_ascii_lowercase();
        match lower.as_str() {
            "mnist" => Ok(DatasetKind::Mnist),
            "fashion" | "fashion-mnist" | "fashion_mnist" | "fashionmnist" => {
                Ok(DatasetKind::FashionMnist)
            }
            "cifar10" | "cifar-10" | "cifar_10" => Ok(DatasetKind::Cifar10),
            "cifar100" | "cifar-100" | "cifar_100" => Ok(DatasetKind::Cifar100),
            _ => Err(DataError::Invalid(format!(
                "unknown data set '{name}'; available: {}",
                DatasetKind::ALL.map(DatasetKind::name).join(", ")
            ))),
        }
    }

    pub fn num_classes(self) -> usize {
        self.class_names().len()
    }

    /// Colour channels per image (1 for the grey-scale sets, 3 for CIFAR).
    pub fn channels(self) -> usize {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => 1,
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 3,
        }
    }

    /// Side length of the (square) images in pixels.
    pub fn image_size(self) -> usize {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => 28,
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 32,
        }
    }

    /// The L∞ budget (in `[0, 1]` pixel units) conventionally used in the literature for this
    /// data set, so that results are comparable with published numbers.
    pub fn default_epsilon(self) -> f32 {
        match self {
            DatasetKind::Mnist => 0.3,
            DatasetKind::FashionMnist => 0.1,
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 8.0 / 255.0,
        }
    }

    /// Human-readable class names, indexed by label.
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            DatasetKind::Mnist => &MNIST_CLASSES,
            DatasetKind::FashionMnist => &FASHION_CLASSES,
            DatasetKind::Cifar10 => &CIFAR10_CLASSES,
            DatasetKind::Cifar100 => &CIFAR100_CLASSES,
        }
    }

    /// The sub-folder of a data folder that holds this data set.
    pub fn folder_name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar-10-batches-bin",
            DatasetKind::Cifar100 => "cifar-100-binary",
        }
    }

    /// Whether augmentation (random crop and flip) is customary: it is for the natural
    /// images of CIFAR, not for centred digits and garments.
    pub fn augments(self) -> bool {
        matches!(self, DatasetKind::Cifar10 | DatasetKind::Cifar100)
    }

    /// What a data folder must contain for this data set, for error messages.
    fn layout(self) -> String {
        let dir = self.folder_name();
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => format!(
                "<data>/{dir}/{{{}}}, each raw or with a .gz suffix \
                 (scripts/fetch-data.sh downloads them)",
                idx::IDX_FILES.join(", ")
            ),
            DatasetKind::Cifar10 => format!(
                "<data>/{dir}/{{data_batch_1.bin, ..., data_batch_5.bin, test_batch.bin}}: \
                 the \"CIFAR-10 binary version\" from {CIFAR_URL}, which you must download and \
                 unpack yourself"
            ),
            DatasetKind::Cifar100 => format!(
                "<data>/{dir}/{{train.bin, test.bin}}: the \"CIFAR-100 binary version\" from \
                 {CIFAR_URL}, which you must download and unpack yourself"
            ),
        }
    }
}

const CIFAR_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar.html";

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatasetKind::from_name(s)
    }
}

/// Where to read a data set from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The MNIST subset compiled into the binary, so the workbench runs with no downloads.
    Embedded,
    /// A data folder laid out as [`load`] describes.
    Folder(PathBuf),
}

impl DataSource {
    /// "embedded" (any case) selects the embedded subset; anything else is a folder path.
    pub fn parse(s: &str) -> DataSource {
        if s.eq_ignore_ascii_case("embedded") {
            DataSource::Embedded
        } else {
            DataSource::Folder(PathBuf::from(s))
        }
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::Embedded => f.write_str("embedded"),
            DataSource::Folder(path) => write!(f, "{}", path.display()),
        }
    }
}

impl FromStr for DataSource {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DataSource::parse(s))
    }
}

/// A data set's training and test splits.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub kind: DatasetKind,
    pub train: ImageSet,
    pub test: ImageSet,
    /// Where the data came from, for logs and saved run records.
    pub origin: String,
}

/// Loads `kind` from `source`.
///
/// The embedded source has only MNIST. A folder must be laid out as:
///
/// ```text
/// <dir>/mnist/{train-images-idx3-ubyte, train-labels-idx1-ubyte,
///              t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte}   (each raw or .gz)
/// <dir>/fashion-mnist/  the same four names
/// <dir>/cifar-10-batches-bin/{data_batch_1.bin .. data_batch_5.bin, test_batch.bin}
/// <dir>/cifar-100-binary/{train.bin, test.bin}
/// ```
///
/// Every file is checked (header, length, image/label counts, label range, image shape)
/// before anything is returned.
pub fn load(kind: DatasetKind, source: &DataSource) -> Result<Dataset, DataError> {
    let dataset = match source {
        DataSource::Embedded => load_embedded(kind)?,
        DataSource::Folder(dir) => load_folder(kind, dir)?,
    };
    check_shape(&dataset)?;
    Ok(dataset)
}

fn load_embedded(kind: DatasetKind) -> Result<Dataset, DataError> {
    if kind != DatasetKind::Mnist {
        return Err(DataError::Invalid(format!(
            "the embedded data has only MNIST, not {kind}; run scripts/fetch-data.sh \
             (MNIST and Fashion-MNIST) or give a data folder laid out as {}",
            kind.layout()
        )));
    }
    let (train, test) = embedded::mnist_subset()?;
    Ok(Dataset {
        kind,
        train,
        test,
        origin: embedded::ORIGIN.to_string(),
    })
}

fn load_folder(kind: DatasetKind, dir: &Path) -> Result<Dataset, DataError> {
    if !dir.is_dir() {
        return Err(DataError::MissingFolder {
            path: dir.to_path_buf(),
        });
    }
    let sub = dir.join(kind.folder_name());
    let (train, test) = match kind {
        DatasetKind::Mnist | DatasetKind::FashionMnist => load_idx_folder(kind, &sub)?,
        DatasetKind::Cifar10 => load_cifar10_folder(kind, &sub)?,
        DatasetKind::Cifar100 => load_cifar100_folder(kind, &sub)?,
    };
    Ok(Dataset {
        kind,
        train,
        test,
        origin: sub.display().to_string(),
    })
}

fn load_idx_folder(kind: DatasetKind, sub: &Path) -> Result<(ImageSet, ImageSet), DataError> {
    let file = |name: &str| idx::find_idx_file(sub, name).ok_or_else(|| missing(kind, sub, name));
    let [train_images, train_labels, test_images, test_labels] = idx::IDX_FILES;
    let train = idx::read_image_set(
        &file(train_images)?,
        &file(train_labels)?,
        kind.num_classes(),
    )?;
    let test = idx::read_image_set(&file(test_images)?, &file(test_labels)?, kind.num_classes())?;
    Ok((train, test))
}

fn load_cifar10_folder(kind: DatasetKind, sub: &Path) -> Result<(ImageSet, ImageSet), DataError> {
    let train_files = (1..=5)
        .map(|i| existing(kind, sub, &format!("data_batch_{i}.bin")))
        .collect::<Result<Vec<_>, _>>()?;
    let test_file = existing(kind, sub, "test_batch.bin")?;
    Ok((
        cifar::read_cifar10(&train_files)?,
        cifar::read_cifar10(&[test_file])?,
    ))
}

fn load_cifar100_folder(kind: DatasetKind, sub: &Path) -> Result<(ImageSet, ImageSet), DataError> {
    let train_file = existing(kind, sub, "train.bin")?;
    let test_file = existing(kind, sub, "test.bin")?;
    Ok((
        cifar::read_cifar100(&train_file)?,
        cifar::read_cifar100(&test_file)?,
    ))
}

/// `sub/name` if it is a file, else an error that explains the expected layout.
fn existing(kind: DatasetKind, sub: &Path, name: &str) -> Result<PathBuf, DataError> {
    let path = sub.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(missing(kind, sub, name))
    }
}

fn missing(kind: DatasetKind, sub: &Path, name: &str) -> DataError {
    DataError::MissingFile {
        path: sub.join(name),
        layout: kind.layout(),
    }
}

/// A well-formed file of the wrong data set (say Fashion-MNIST's 28×28 files in the CIFAR
/// folder) would otherwise only fail when the model sees the first batch.
fn check_shape(dataset: &Dataset) -> Result<(), DataError> {
    let kind = dataset.kind;
    let want = (kind.channels(), kind.image_size(), kind.image_size());
    for (split, set) in [("training", &dataset.train), ("test", &dataset.test)] {
        let got = (set.channels, set.height, set.width);
        if got != want {
            return Err(DataError::Invalid(format!(
                "{}: the {split} images are {}×{}×{}, but {kind} images are {}×{}×{}",
                dataset.origin, got.0, got.1, got.2, want.0, want.1, want.2
            )));
        }
        if set.is_empty() {
            return Err(DataError::Invalid(format!(
                "{}: the {split} split has no images",
                dataset.origin
            )));
        }
    }
    Ok(())
}
