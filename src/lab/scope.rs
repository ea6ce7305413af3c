//! Where the file paths of commands may point. A session from someone else is confined to its
//! own folder: it may only name relative paths inside it.

use anyhow::{Result, bail};
use std::path::PathBuf;

/// Where the file paths of `save`, `load`, `teacher` and `data` may point.
#[derive(Clone, Debug, Default)]
pub struct FileScope {
    /// Relative paths resolve against this folder (None: the working directory).
    pub base: Option<PathBuf>,
    /// Only relative paths without `..` are allowed: a session from someone else may not
    /// reach outside its own folder.
    pub confined: bool,
}

impl FileScope {
    /// The path a command's argument names, or why it may not be used.
    pub fn resolve(&self, text: &str) -> Result<PathBuf> {
        use std::path::Component;
        let path = PathBuf::from(text);
        if self.confined {
            if path.is_absolute() || text.starts_with('~') {
                bail!("`{text}` is refused: a session may only use paths relative to its folder");
            }
            if path
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                bail!("`{text}` is refused: a session may not leave its folder (no `..`)");
            }
        }
        Ok(match &self.base {
            Some(base) => base.join(path),
            None => path,
        })
    }
}
