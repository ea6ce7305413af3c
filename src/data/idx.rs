//! The IDX format of MNIST and Fashion-MNIST.
//!
//! A file is a header followed by the data:
//!
//! ```text
//! 0x00 0x00 <type> <rank>        magic: two zero bytes, element type, number of dimensions
//! <dim 0> ... <dim rank-1>       each a big-endian u32
//! <data>                         product(dims) elements, row-major
//! ```
//!
//! Only unsigned bytes (type 0x08) are supported, which is what the image and label files of
//! both data sets use. A file may be gzip-compressed; that is recognised by the gzip magic
//! bytes rather than the file name, so a renamed file still reads.
//!
//! A file longer than its header says is **rejected**, like a short one: extra bytes mean the
//! header and the data disagree (a wrong or damaged file), and guessing which is right would
//! hide that.
//!
//! A file from someone else costs at most an error: it is read only if it is a regular file of
//! at most [`IDX`] bytes, a header may announce at most that much data, and a gzip file is
//! decompressed only up to the size its header announces (plus one byte, to tell that it goes
//! on), so a small file that expands to gigabytes fails at once.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::{ImageSet, check_labels};
use crate::bounded_read::{self, IDX};
use crate::error::DataError;

/// The four files of an IDX data set, in the order training images, training labels, test
/// images, test labels.
pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The element type code for unsigned bytes.
pub const TYPE_U8: u8 = 0x08;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A decoded IDX file: its dimensions and its bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads and decodes the IDX file at `path` (raw or gzip).
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let bytes = bounded_read::read(path, IDX).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error: error.into(),
    })?;
    parse_idx(&bytes, path)
}

/// Decodes an IDX file's contents (raw or gzip). `origin` names the file in errors.
pub fn parse_idx(bytes: &[u8], origin: &Path) -> Result<IdxArray, DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let raw = gunzip(bytes, origin)?;
        parse_raw(&raw, origin)
    } else {
        parse_raw(bytes, origin)
    }
}

/// Encodes `data` with dimensions `dims` as an uncompressed unsigned-byte IDX file; the
/// inverse of [`parse_idx`], used to write test fixtures.
///
/// # Panics
/// If `data.len()` is not the product of `dims`, or a dimension does not fit in a `u32`.
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    assert_eq!(
        dims.iter().product::<usize>(),
        data.len(),
        "IDX data length must be the product of the dimensions"
    );
    let rank = u8::try_from(dims.len()).expect("IDX rank must fit in a byte");
    let mut out = vec![0, 0, TYPE_U8, rank];
    for &d in dims {
        let d = u32::try_from(d).expect("IDX dimension must fit in a u32");
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Decompresses an IDX file: the header first, then exactly as much data as it announces and
/// one byte more, which if present means the data goes on past what the header says.
fn gunzip(bytes: &[u8], origin: &Path) -> Result<Vec<u8>, DataError> {
    let mut decoder = MultiGzDecoder::new(bytes);
    let mut raw = Vec::new();
    let mut read_up_to = |raw: &mut Vec<u8>, bytes: u64| {
        (&mut decoder)
            .take(bytes)
            .read_to_end(raw)
            .map_err(|e| format_error(origin, format!("gzip data is corrupt or truncated: {e}")))
    };
    read_up_to(&mut raw, 4)?;
    if let Some(&rank) = raw.get(3) {
        read_up_to(&mut raw, 4 * u64::from(rank))?;
    }
    let (dims, header_len) = parse_header(&raw, origin)?;
    let expected = data_len(&dims, origin)?;
    raw.reserve_exact(expected);
    read_up_to(&mut raw, expected as u64 + 1)?;
    if raw.len() > header_len + expected {
        return Err(format_error(
            origin,
            format!(
                "the decompressed data goes on past the {expected} bytes the header ({}) \
                 calls for",
                describe_dims(&dims)
            ),
        ));
    }
    Ok(raw)
}

/// The number of data bytes `dims` call for, at most [`IDX`]'s limit.
fn data_len(dims: &[usize], origin: &Path) -> Result<usize, DataError> {
    let too_large = || {
        format_error(
            origin,
            format!(
                "the header announces {} elements of data; {} may hold at most {} bytes",
                describe_dims(dims),
                IDX.what,
                IDX.bytes
            ),
        )
    };
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(too_large)?;
    if expected as u64 > IDX.bytes {
        return Err(too_large());
    }
    Ok(expected)
}

fn parse_raw(bytes: &[u8], origin: &Path) -> Result<IdxArray, DataError> {
    let (dims, header_len) = parse_header(bytes, origin)?;
    let expected = data_len(&dims, origin)?;
    let found = bytes.len() - header_len;
    if found < expected {
        return Err(format_error(
            origin,
            format!(
                "truncated data: the header ({}) calls for {expected} bytes of data, found {found}",
                describe_dims(&dims)
            ),
        ));
    }
    if found > expected {
        return Err(format_error(
            origin,
            format!(
                "{} unexpected bytes after the data: the header ({}) calls for {expected} bytes \
                 of data, found {found}",
                found - expected,
                describe_dims(&dims)
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header_len..].to_vec(),
    })
}

/// Returns the dimensions and the header's length in bytes.
fn parse_header(bytes: &[u8], origin: &Path) -> Result<(Vec<usize>, usize), DataError> {
    let Some(&[zero0, zero1, elem_type, rank]) = bytes.first_chunk::<4>() else {
        return Err(format_error(
            origin,
            format!(
                "truncated header: an IDX file starts with 4 magic bytes, found only {}",
                bytes.len()
            ),
        ));
    };
    if zero0 != 0 || zero1 != 0 {
        return Err(format_error(
            origin,
            format!(
                "not an IDX file: bad magic number {zero0:#04x} {zero1:#04x} {elem_type:#04x} \
                 {rank:#04x} (the first two bytes must be 0)"
            ),
        ));
    }
    if elem_type != TYPE_U8 {
        return Err(format_error(
            origin,
            format!(
                "unsupported IDX element type {elem_type:#04x} ({}); only unsigned bytes (0x08) \
                 are supported",
                type_name(elem_type)
            ),
        ));
    }
    if rank == 0 {
        return Err(format_error(origin, "IDX rank is 0 (no dimensions)".into()));
    }
    let header_len = 4 + 4 * usize::from(rank);
    if bytes.len() < header_len {
        return Err(format_error(
            origin,
            format!(
                "truncated header: rank {rank} needs a {header_len}-byte header, found only {} \
                 bytes",
                bytes.len()
            ),
        ));
    }
    let dims = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    Ok((dims, header_len))
}

fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "not a valid IDX type",
    }
}

fn describe_dims(dims: &[usize]) -> String {
    dims.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("×")
}

fn format_error(origin: &Path, reason: String) -> DataError {
    DataError::Format {
        path: origin.to_path_buf(),
        reason,
    }
}

/// `dir/name` if it exists, else `dir/name.gz` if that does; `None` if neither.
pub fn find_idx_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// Reads an image file (rank 3: count × height × width) and a label file (rank 1) into an
/// [`ImageSet`] of one-channel images.
pub fn read_image_set(
    images_path: &Path,
    labels_path: &Path,
    num_classes: usize,
) -> Result<ImageSet, DataError> {
    let images = read_idx(images_path)?;
    let labels = read_idx(labels_path)?;
    image_set_from_idx(images, images_path, labels, labels_path, num_classes)
}

/// Combines decoded image and label arrays, checking their ranks, that their counts agree,
/// and that every label is a valid class. The paths name the files in errors.
pub fn image_set_from_idx(
    images: IdxArray,
    images_path: &Path,
    labels: IdxArray,
    labels_path: &Path,
    num_classes: usize,
) -> Result<ImageSet, DataError> {
    let &[count, height, width] = images.dims.as_slice() else {
        return Err(format_error(
            images_path,
            format!(
                "expected images (a rank-3 IDX array: count × height × width), found rank {} ({})",
                images.dims.len(),
                describe_dims(&images.dims)
            ),
        ));
    };
    let &[label_count] = labels.dims.as_slice() else {
        return Err(format_error(
            labels_path,
            format!(
                "expected labels (a rank-1 IDX array), found rank {} ({})",
                labels.dims.len(),
                describe_dims(&labels.dims)
            ),
        ));
    };
    if count != label_count {
        return Err(format_error(
            images_path,
            format!(
                "holds {count} images but {} holds {label_count} labels",
                labels_path.display()
            ),
        ));
    }
    check_labels(&labels.data, num_classes, labels_path)?;
    Ok(ImageSet {
        pixels: images.data,
        labels: labels.data,
        channels: 1,
        height,
        width,
        num_classes,
    })
}
