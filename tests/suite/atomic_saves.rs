//! Saves go through a temporary file: a write that fails half-way leaves the old file intact
//! and nothing else behind, for checkpoints, sessions and the history alike (they all use
//! `atomic::write_with`).

use rslad_tui::atomic::{self, temporary_path};
use std::io::{self, Write};

/// A writer that accepts `budget` bytes and then fails like a full disk.
struct FullDisk<'a> {
    inner: &'a mut dyn Write,
    budget: usize,
}

impl Write for FullDisk<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
        }
        let n = buf.len().min(self.budget);
        self.budget -= n;
        self.inner.write(&buf[..n])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn a_write_that_fails_half_way_leaves_the_old_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("student.safetensors");
    std::fs::write(&path, b"the good old weights").unwrap();
    let new = vec![7u8; 1 << 20];
    let error = atomic::write_with(&path, |w| {
        let mut disk = FullDisk {
            inner: w,
            budget: new.len() / 2,
        };
        disk.write_all(&new)
    })
    .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    assert_eq!(std::fs::read(&path).unwrap(), b"the good old weights");
    assert!(
        !temporary_path(&path).exists(),
        "the partial file is removed"
    );

    atomic::write(&path, &new).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), new);
    assert!(!temporary_path(&path).exists());
}

#[test]
fn a_save_into_a_missing_folder_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/folder/x.ron");
    assert!(atomic::write(&path, b"x").is_err());
    assert!(!path.exists());
}

#[test]
fn a_failed_session_save_keeps_the_previous_session() {
    use rslad_tui::lab::session::{self, Session};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ron");
    session::save(&Session::new(1), &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // A directory where the temporary file must go makes the write fail.
    std::fs::create_dir(temporary_path(&path)).unwrap();
    assert!(session::save(&Session::new(2), &path).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(session::load(&path).unwrap().seed, 1);
}
