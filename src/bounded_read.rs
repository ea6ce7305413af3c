//! Reading a file that may come from someone else, so that it can cost the user nothing but an
//! error message: only regular files are read (never a FIFO, which would block forever, a
//! device such as `/dev/zero`, which never ends, a socket or a folder, also not through a
//! symlink), and never more than a cap for its kind of file. The cap is checked on the size
//! before reading and enforced while reading, for a file that grows or whose size lies
//! (`/proc` files say 0).
//!
//! Decompressed data (gzip IDX files) is bounded by the reader of that format, by the size its
//! header announces (`data::idx`).

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// The most a kind of file may hold, and what it is called in messages. (A session file's,
/// 64 MiB, is with the other limits of sessions, `session::limits::FILE_BYTES`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub bytes: u64,
    pub what: &'static str,
}

/// A checkpoint card: configuration and per-epoch metrics, a few KiB even after hundreds
/// of epochs.
pub const CARD: Limit = Limit {
    bytes: 8 << 20,
    what: "a checkpoint card",
};

/// Weights (a checkpoint's safetensors, an imported PyTorch file): the largest model of the
/// zoo, `wrn-34-10`, is 46.2 M f32 values, 185 MB; 512 MiB leaves room for a PyTorch file
/// that also holds an SGD momentum buffer.
pub const WEIGHTS: Limit = Limit {
    bytes: 512 << 20,
    what: "a weights file",
};

/// An IDX file, compressed or not, and the data a header may announce: 10× MNIST's largest
/// file (the 47 MB of training images).
pub const IDX: Limit = Limit {
    bytes: 512 << 20,
    what: "an IDX file",
};

/// A CIFAR binary file: the largest, CIFAR-100's `train.bin`, is 154 MB.
pub const CIFAR: Limit = Limit {
    bytes: 256 << 20,
    what: "a CIFAR binary file",
};

/// An AutoAttack journal (`eval --resume`): a few hundred KiB for 10,000 images.
pub const JOURNAL: Limit = Limit {
    bytes: 64 << 20,
    what: "an AutoAttack journal",
};

/// A row of `compare`'s table (`compare --only`, `--assemble`): under a KiB in practice.
pub const COMPARE_ROW: Limit = Limit {
    bytes: 1 << 20,
    what: "a row of compare's table",
};

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("is {kind}, not a regular file; only regular files are read")]
    NotAFile { kind: &'static str },
    #[error("is {size} bytes; {} may be at most {} bytes ({})", .limit.what, .limit.bytes, mib(.limit.bytes))]
    TooBig { size: u64, limit: Limit },
    #[error(
        "grew past {} bytes while it was read; {} may be at most {} bytes ({})",
        .limit.bytes, .limit.what, .limit.bytes, mib(.limit.bytes)
    )]
    Grew { limit: Limit },
}

impl From<ReadError> for io::Error {
    fn from(error: ReadError) -> io::Error {
        match error {
            ReadError::Io(error) => error,
            other @ ReadError::NotAFile { .. } => {
                io::Error::new(io::ErrorKind::InvalidInput, other)
            }
            other => io::Error::new(io::ErrorKind::FileTooLarge, other),
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// Opens `path` for reading if it is a regular file (a symlink to one is fine) of at most
/// `limit` bytes; returns the file and its size.
///
/// The type is checked before opening, so that nothing with a side effect on open (a FIFO, a
/// terminal, a tape) is opened at all, and again on the opened handle, for a file swapped in
/// between; the open itself does not block (`O_NONBLOCK`) and never makes a terminal the
/// controlling one (`O_NOCTTY`).
pub fn open(path: &Path, limit: Limit) -> Result<(File, u64), ReadError> {
    check_kind(&std::fs::metadata(path)?)?;
    let file = open_without_blocking(path)?;
    let metadata = file.metadata()?;
    check_kind(&metadata)?;
    let size = metadata.len();
    if size > limit.bytes {
        return Err(ReadError::TooBig { size, limit });
    }
    Ok((file, size))
}

/// Checks that `path` may be read under `limit` without reading it, for a library that opens
/// the path itself (the PyTorch reader).
pub fn check(path: &Path, limit: Limit) -> Result<(), ReadError> {
    open(path, limit).map(|_| ())
}

/// The bytes of `path`, read as [`open`] allows and never more than `limit`.
pub fn read(path: &Path, limit: Limit) -> Result<Vec<u8>, ReadError> {
    let (file, size) = open(path, limit)?;
    // `size` is at most the limit; the file may still grow or hold more than it says.
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit.bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit.bytes {
        return Err(ReadError::Grew { limit });
    }
    Ok(bytes)
}

fn check_kind(metadata: &Metadata) -> Result<(), ReadError> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    Err(ReadError::NotAFile {
        kind: describe(&kind),
    })
}

#[cfg(unix)]
fn describe(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn describe(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a folder"
    } else {
        "a special file"
    }
}

#[cfg(unix)]
fn open_without_blocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> io::Result<File> {
    File::open(path)
}
