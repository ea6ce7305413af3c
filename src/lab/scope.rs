//! Where the file paths of commands may point. A session from someone else is confined to its
//! own folder: it may only name relative paths inside it, and a path is judged by where it
//! resolves (every symlink on the way followed), not by its text, so a symlinked folder or
//! file inside the session's folder that points outside is refused.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

/// Where the file paths of `save`, `load`, `teacher` and `data` may point.
#[derive(Clone, Debug, Default)]
pub struct FileScope {
    /// Relative paths resolve against this folder (None: the working directory).
    pub base: Option<PathBuf>,
    /// Only relative paths without `..` that resolve inside `base` are allowed: a session
    /// from someone else may not reach outside its own folder.
    pub confined: bool,
}

impl FileScope {
    /// A scope confined to `folder`.
    pub fn confined_to(folder: &Path) -> FileScope {
        FileScope {
            base: Some(folder.to_path_buf()),
            confined: true,
        }
    }

    /// The path a command's argument names, or why it may not be used.
    pub fn resolve(&self, text: &str) -> Result<PathBuf> {
        let path = PathBuf::from(text);
        if self.confined {
            check_text(text, &path)?;
        }
        let joined = match &self.base {
            Some(base) => base.join(path),
            None => path,
        };
        self.check_resolved(text, &joined)?;
        Ok(joined)
    }

    /// [`FileScope::resolve`] for a checkpoint: the files it stands for (`X.safetensors`,
    /// `X.ron`) must resolve inside the folder too (either may be a planted symlink).
    pub fn resolve_checkpoint(&self, text: &str) -> Result<PathBuf> {
        let path = self.resolve(text)?;
        let (weights, card) = crate::checkpoint::paths(&path);
        self.check_resolved(text, &weights)?;
        self.check_resolved(text, &card)?;
        Ok(path)
    }

    /// In a confined scope, refuses `path` (already joined to the base) unless it resolves
    /// inside the base.
    fn check_resolved(&self, text: &str, path: &Path) -> Result<()> {
        let (true, Some(base)) = (self.confined, &self.base) else {
            return Ok(());
        };
        match resolves_inside(base, path) {
            Ok(true) => Ok(()),
            Ok(false) => bail!(
                "`{text}` is refused: it leads outside the session's folder (through a symlink)"
            ),
            Err(error) => bail!("`{text}` is refused: it cannot be resolved ({error})"),
        }
    }
}

/// The textual rules: relative, no `..`, no `~`.
fn check_text(text: &str, path: &Path) -> Result<()> {
    use std::path::Component;
    if path.is_absolute() || text.starts_with('~') {
        bail!("`{text}` is refused: a session may only use paths relative to its folder");
    }
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        bail!("`{text}` is refused: a session may not leave its folder (no `..`)");
    }
    Ok(())
}

/// Whether `path` resolves inside `base`: the deepest part of `path` that exists (a dangling
/// symlink counts as existing, and then fails to resolve) is canonicalized, following every
/// symlink; the rest does not exist yet, and holds no `..` (checked on the text), so it
/// cannot lead anywhere else.
fn resolves_inside(base: &Path, path: &Path) -> std::io::Result<bool> {
    let base = base.canonicalize()?;
    let mut existing = path;
    while std::fs::symlink_metadata(existing).is_err() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => return Ok(true), // nothing of it exists: relative to the working directory
        }
    }
    Ok(existing.canonicalize()?.starts_with(&base))
}
