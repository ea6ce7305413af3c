//! Saving without ever leaving a half-written file in place of a good one: everything is
//! written to a temporary file beside the target, flushed to disk, and renamed over it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The temporary file a save of `path` goes through.
pub fn temporary_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.partial", path.display()))
}

/// Writes `path` with `write`. If anything fails (the closure, a full disk, the rename), the
/// old file is left exactly as it was and the temporary file is removed.
pub fn write_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let temporary = write_temporary(path, write)?;
    replace(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |w| w.write_all(bytes))
}

/// The first half of [`write_with`]: writes the temporary file of `path` with `write` and
/// flushes it to disk, leaving `path` itself untouched; returns the temporary file's path. On
/// failure the temporary file is removed.
pub fn write_temporary(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let temporary = temporary_path(path);
    let result = (|| {
        let mut file = BufWriter::new(create_fresh(&temporary)?);
        write(&mut file)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(temporary),
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            Err(error)
        }
    }
}

/// Creates the temporary file `path` (or a probe) as a new file, never through a symlink: whatever is
/// already there (a file a stopped save left, or a symlink planted by a session's author to
/// make the save write elsewhere) is removed first (`remove_file` removes a link, not what it
/// points to), then the file is created only if nothing is there (`create_new`, `O_EXCL`) and
/// not through a symlink (`O_NOFOLLOW`), so a link planted in between makes the save fail
/// instead of writing through it.
pub fn create_fresh(path: &Path) -> io::Result<File> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is a folder", path.display()),
            ));
        }
        Ok(_) => std::fs::remove_file(path)?,
        Err(_) => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// The second half: renames `from` over `to` in one step (a reader sees the old file or the
/// new one, never a mix) and flushes the folder, so that the rename itself survives a crash
/// of the machine and renames made one after the other reach the disk in that order.
pub fn replace(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    sync_folder(to);
    Ok(())
}

/// Flushes the folder holding `path` (its list of names) to disk. Best effort: not every
/// platform or file system can open a folder for that.
pub fn sync_folder(path: &Path) {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    if let Ok(folder) = File::open(folder) {
        let _ = folder.sync_all();
    }
}
