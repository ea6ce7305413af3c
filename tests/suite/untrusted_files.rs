//! A file from someone else costs nothing but an error (issue 21, items 7 and 8): every reader
//! of a user's file reads only regular files (a FIFO would block forever, `/dev/zero` never
//! ends), never more than a cap for its kind, checked before and enforced while reading; gzip
//! data stops at the size its header announces; image dimensions that multiply past
//! `usize::MAX` are caught.
#![cfg(unix)]

use flate2::Compression;
use flate2::write::GzEncoder;
use rslad_tui::bounded_read::{self, Limit, ReadError};
use rslad_tui::checkpoint::{self, SaveInfo};
use rslad_tui::data::{cifar, idx};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::interop;
use rslad_tui::lab::session;
use rslad_tui::zoo::{Arch, Model, ModelSpec};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn fifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    path
}

fn link(dir: &Path, name: &str, target: &Path) -> PathBuf {
    let path = dir.join(name);
    std::os::unix::fs::symlink(target, &path).unwrap();
    path
}

/// Runs `read` on another thread and gives its message, failing the test if it has not
/// returned within 20 s (a FIFO opened for reading waits for a writer that never comes).
fn error_within<T: Send + 'static>(
    what: &str,
    read: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> String {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(read());
    });
    match result.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(_)) => panic!("{what}: read without an error"),
        Ok(Err(message)) => message,
        Err(_) => panic!("{what}: still reading after 20 s (blocked on a FIFO, or endless)"),
    }
}

fn assert_mentions(what: &str, message: &str, needle: &str) {
    assert!(
        message.contains(needle),
        "{what}: `{message}` does not say `{needle}`"
    );
}

#[test]
fn only_regular_files_are_read_and_never_more_than_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let limit = Limit {
        bytes: 100,
        what: "a test file",
    };
    let small = dir.path().join("small");
    std::fs::write(&small, [7u8; 100]).unwrap();
    assert_eq!(bounded_read::read(&small, limit).unwrap(), [7u8; 100]);
    // A symlink to a regular file is a regular file.
    let to_small = link(dir.path(), "to-small", &small);
    assert_eq!(bounded_read::read(&to_small, limit).unwrap().len(), 100);

    let big = dir.path().join("big");
    std::fs::write(&big, [7u8; 101]).unwrap();
    let error = bounded_read::read(&big, limit).unwrap_err();
    assert!(
        matches!(error, ReadError::TooBig { size: 101, .. }),
        "{error}"
    );
    assert_mentions(
        "big",
        &error.to_string(),
        "a test file may be at most 100 bytes",
    );

    for (name, path, kind) in [
        ("FIFO", fifo(dir.path(), "fifo"), "a FIFO (named pipe)"),
        (
            "/dev/zero",
            link(dir.path(), "zero", Path::new("/dev/zero")),
            "a character device",
        ),
        ("folder", dir.path().to_path_buf(), "a folder"),
    ] {
        let message = error_within(name, move || {
            bounded_read::read(&path, limit).map_err(|e| e.to_string())
        });
        assert_mentions(name, &message, &format!("is {kind}, not a regular file"));
    }
}

/// A file whose size says 0 but that holds more (every `/proc` file) is stopped while it is
/// read, as one that grows would be.
#[cfg(target_os = "linux")]
#[test]
fn a_file_holding_more_than_its_size_says_is_stopped_at_the_limit() {
    let path = Path::new("/proc/self/status");
    assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
    let limit = Limit {
        bytes: 64,
        what: "a status file",
    };
    let error = bounded_read::read(path, limit).unwrap_err();
    assert!(matches!(error, ReadError::Grew { .. }), "{error}");
    assert_mentions("status", &error.to_string(), "grew past 64 bytes");
}

fn micro_checkpoint(dir: &Path) -> PathBuf {
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 0, &autodiff_device()).unwrap();
    let path = dir.join("micro");
    let info = SaveInfo {
        dataset: "mnist",
        training: None,
        metrics: &[],
        seed: 0,
    };
    checkpoint::save(&model, &path, &info).unwrap();
    path
}

/// Every reader of a user's file, given a FIFO and a symlink to `/dev/zero`: an error naming
/// the kind of file, at once. (Before: `load fifo`, a FIFO as a session file, `import
/// --weights fifo.pt` blocked forever; a session, card or weights file linked to `/dev/zero`
/// grew to gigabytes.)
#[test]
fn every_reader_of_user_files_refuses_fifos_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    type Reader = fn(&Path) -> Result<(), String>;
    let readers: [(&str, &str, Reader); 8] = [
        ("session", "s.ron", |p| {
            session::load(p).map(drop).map_err(|e| e.to_string())
        }),
        ("checkpoint card", "c.ron", |p| {
            checkpoint::load(p, None, &compute_device())
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("safetensors import", "w.safetensors", |p| {
            let spec = ModelSpec::native(Arch::MicroCnn, 10);
            interop::import_pytorch(p, spec, &compute_device())
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("PyTorch import", "w.pt", |p| {
            let spec = ModelSpec::native(Arch::MicroCnn, 10);
            interop::import_pytorch_pickle(p, spec, &compute_device())
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("IDX", "t10k-images-idx3-ubyte", |p| {
            idx::read_idx(p).map(drop).map_err(|e| e.to_string())
        }),
        ("CIFAR-10", "test_batch.bin", |p| {
            cifar::read_cifar10(&[p])
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("CIFAR-100", "test.bin", |p| {
            cifar::read_cifar100(p).map(drop).map_err(|e| e.to_string())
        }),
        ("AutoAttack journal", "aa.ron", |p| {
            rslad_tui::eval::journal::read(p)
                .map(drop)
                .map_err(|e| format!("{e:#}"))
        }),
    ];
    for (i, (reader, name, read)) in readers.into_iter().enumerate() {
        let fifo_dir = dir.join(format!("fifo-{i}"));
        let zero_dir = dir.join(format!("zero-{i}"));
        std::fs::create_dir_all(&fifo_dir).unwrap();
        std::fs::create_dir_all(&zero_dir).unwrap();
        let fifo = fifo(&fifo_dir, name);
        let message = error_within(reader, move || read(&fifo));
        assert_mentions(reader, &message, "FIFO");
        let zero = link(&zero_dir, name, Path::new("/dev/zero"));
        let message = error_within(reader, move || read(&zero));
        assert_mentions(reader, &message, "character device");
    }

    // A checkpoint whose card is fine and whose weights are a FIFO or endless.
    let stem = micro_checkpoint(dir);
    let weights = stem.with_extension("safetensors");
    for (name, target) in [
        ("FIFO weights", None),
        ("/dev/zero weights", Some(Path::new("/dev/zero"))),
    ] {
        std::fs::remove_file(&weights).unwrap();
        match target {
            None => {
                fifo(dir, "micro.safetensors");
            }
            Some(target) => {
                link(dir, "micro.safetensors", target);
            }
        }
        let stem = stem.clone();
        let message = error_within(name, move || {
            checkpoint::load(&stem, None, &compute_device())
                .map(drop)
                .map_err(|e| e.to_string())
        });
        assert_mentions(name, &message, "not a regular file");
    }
}

fn gzip_member(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A gzip file of under a megabyte whose data goes on for 256 MiB past what its header
/// announces stops after the announced size (before: it was decompressed whole, and a 4 MB
/// file expanding to 3.9 GB grew the program to gigabytes).
#[test]
fn a_gzip_idx_file_is_decompressed_only_as_far_as_its_header_announces() {
    let images = idx::encode_idx(&[1000, 28, 28], &vec![0u8; 1000 * 784]);
    let mut bomb = gzip_member(&images);
    let zeros = gzip_member(&vec![0u8; 64 << 20]);
    for _ in 0..4 {
        bomb.extend_from_slice(&zeros);
    }
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train-images-idx3-ubyte.gz");
    std::fs::write(&path, &bomb).unwrap();
    let started = Instant::now();
    let error = idx::read_idx(&path).unwrap_err().to_string();
    assert_mentions(
        "bomb",
        &error,
        "the decompressed data goes on past the 784000 bytes the header (1000×28×28) calls for",
    );
    println!(
        "refused in {:.3} s: {error}",
        started.elapsed().as_secs_f64()
    );

    // A header that announces more than an IDX file may hold is refused before any data.
    let mut header = vec![0, 0, 0x08, 3];
    for d in [u32::MAX, 28, 28] {
        header.extend_from_slice(&d.to_be_bytes());
    }
    let error = idx::parse_idx(&gzip_member(&header), Path::new("huge.gz"))
        .unwrap_err()
        .to_string();
    assert_mentions(
        "huge header",
        &error,
        "the header announces 4294967295×28×28 elements of data; an IDX file may hold at most",
    );
    // The honest file still reads.
    let honest = idx::parse_idx(&gzip_member(&images), Path::new("honest.gz")).unwrap();
    assert_eq!(honest.dims, [1000, 28, 28]);
}

/// Issue 21, item 7: `channels: 2, height: 2, width: 4611686018427387904` multiplies to 2⁶⁴,
/// which wrapped to 0 and passed the 3×64×64 limit (with empty pixel lists); playback then
/// died with "capacity overflow".
#[test]
fn a_sample_whose_dimensions_overflow_is_refused() {
    let lesson = include_str!("../../sessions/lesson-1-soft-labels.ron");
    let mut parsed = session::parse(lesson, Path::new("lesson-1.ron")).unwrap();
    let sample = parsed
        .entries
        .iter_mut()
        .find_map(|entry| match entry {
            session::Entry::Command { outcome, .. } => outcome.snapshot.sample.as_mut(),
            session::Entry::Mark { .. } => None,
        })
        .expect("the lesson shows a sample");
    sample.channels = 2;
    sample.height = 2;
    sample.width = 1 << 62;
    sample.natural.clear();
    sample.adversarial.clear();
    let text = ron::ser::to_string(&parsed).unwrap();
    let error = session::parse(&text, Path::new("overflow.ron"))
        .expect_err("a sample of 2⁶⁴ pixels was accepted")
        .to_string();
    assert_mentions(
        "overflow",
        &error,
        "sample.channels` describes 2×2×4611686018427387904 images",
    );
}
