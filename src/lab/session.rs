//! Sessions: the ordered commands of a workbench or REPL run with their timestamps, markers,
//! and the results each command produced (its log lines and the snapshot the views showed
//! after it), saved as versioned RON. Weights are referenced by path and SHA-256, never inlined.
//!
//! A session file may come from someone else, so reading one is defensive: the file size is
//! capped before parsing, every list and string has a limit, a newer format is refused by
//! name, and a malformed file gets an error with the line, column and field, never a panic.

use super::snapshot::limits::{Problem, check_log, not_sha256, too_long, too_many};
use super::snapshot::{LogLine, Snapshot};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The session format this program writes and the newest it reads.
pub const SESSION_FORMAT: u32 = 1;

/// Limits on what a session file may hold (a snapshot's own are in
/// [`super::snapshot::limits`]).
pub mod limits {
    pub use crate::lab::snapshot::limits::TEXT_CHARS;
    /// The file, read before parsing.
    pub const FILE_BYTES: u64 = 64 << 20;
    /// Entries: a long session's own journal holds one per command and marker (the journal
    /// stops short of this and of `FILE_BYTES`, so what it writes reads back).
    pub const ENTRIES: usize = 100_000;
    pub const LINE_CHARS: usize = 1_000;
    pub const TITLE_CHARS: usize = crate::lab::command::MARK_TITLE_LIMIT;
    pub const NOTE_CHARS: usize = crate::lab::command::MARK_NOTE_LIMIT;
    pub const FILES: usize = 16;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub format: u32,
    /// e.g. "rslad-tui 0.1.0".
    pub created_by: String,
    /// The backend that computed the results (replays on another may differ slightly).
    pub backend: String,
    /// The device it ran on; `replay --execute` uses it unless `--device` says otherwise.
    #[serde(default)]
    pub device: crate::device::DeviceChoice,
    /// The seed the session started from; it starts from the workbench's default session
    /// (shipped teacher, fresh micro-cnn, RSLAD, embedded MNIST) with this seed.
    pub seed: u64,
    /// Every setting of that starting point, in one line; a replay checks that it starts
    /// from the same.
    #[serde(default)]
    pub settings: String,
    /// The title and introduction playback shows first (`title "TITLE" INTRO`); empty in
    /// sessions recorded without.
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub intro: String,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    Command {
        /// The line as typed.
        line: String,
        /// Seconds since the session started.
        at: f64,
        outcome: Box<Outcome>,
    },
    Mark {
        title: String,
        note: String,
        at: f64,
    },
}

/// What a command produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The error, if the command failed (a failed command changes nothing).
    pub error: Option<String>,
    /// The log lines the command wrote.
    pub log: Vec<LogLine>,
    /// The snapshot after the command, without its log (the lines are in `log`), and without
    /// its sample when `sample_unchanged`.
    pub snapshot: Snapshot,
    /// The sample view is the same as after the previous command (not stored again: it is
    /// the largest part of a snapshot).
    #[serde(default)]
    pub sample_unchanged: bool,
    /// Weight files the command wrote or read, by path (as typed) and hash.
    pub files: Vec<FileRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    pub path: String,
    pub sha256: String,
}

impl Session {
    pub fn new(seed: u64) -> Session {
        Session {
            format: SESSION_FORMAT,
            created_by: format!("rslad-tui {}", env!("CARGO_PKG_VERSION")),
            backend: crate::device::backend_id(),
            device: crate::device::selection().open.choice,
            seed,
            settings: String::new(),
            title: String::new(),
            intro: String::new(),
            entries: Vec::new(),
        }
    }

    /// The markers, as (entry index, title).
    pub fn markers(&self) -> Vec<(usize, &str)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Entry::Mark { title, .. } => Some((i, title.as_str())),
                Entry::Command { .. } => None,
            })
            .collect()
    }
}

#[derive(Debug, Error)]
pub enum SessionError {
    // The cause is in the message, so it is not also a `source` (which `{:#}` would print a
    // second time).
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is {size} bytes; a session file may be at most {limit} bytes")]
    TooBig {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path}, line {line}, column {column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{path} was written by a newer rslad-tui (session format {found}; this one reads up to \
         {SESSION_FORMAT}): update rslad-tui to open it"
    )]
    NewerFormat { path: PathBuf, found: u32 },
    #[error("{path}: field `{field}` {problem}")]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
    },
}

/// Only the version, read first so a newer file gets a clear message whatever else changed.
#[derive(Deserialize)]
struct FormatProbe {
    format: u32,
}

/// Reads and checks a session file.
pub fn load(path: &Path) -> Result<Session, SessionError> {
    // Only a regular file, capped before and while reading (src/bounded_read.rs).
    let limit = crate::bounded_read::Limit {
        bytes: limits::FILE_BYTES,
        what: "a session file",
    };
    let bytes = crate::bounded_read::read(path, limit).map_err(|error| match error {
        crate::bounded_read::ReadError::TooBig { size, .. } => SessionError::TooBig {
            path: path.to_path_buf(),
            size,
            limit: limits::FILE_BYTES,
        },
        other => SessionError::Read {
            path: path.to_path_buf(),
            error: other.into(),
        },
    })?;
    let text = String::from_utf8(bytes).map_err(|e| SessionError::Invalid {
        path: path.to_path_buf(),
        field: "(file)".into(),
        problem: format!("is not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })?;
    parse(&text, path)
}

/// Parses session text; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<Session, SessionError> {
    let syntax = |e: ron::error::SpannedError| SessionError::Syntax {
        path: path.to_path_buf(),
        line: e.position.line,
        column: e.position.col,
        message: e.code.to_string(),
    };
    // A newer file may not parse as this version's structure: check the version first.
    if let Ok(probe) = ron::from_str::<FormatProbe>(text)
        && probe.format > SESSION_FORMAT
    {
        return Err(SessionError::NewerFormat {
            path: path.to_path_buf(),
            found: probe.format,
        });
    }
    let session: Session = ron::from_str(text).map_err(syntax)?;
    if session.format > SESSION_FORMAT {
        return Err(SessionError::NewerFormat {
            path: path.to_path_buf(),
            found: session.format,
        });
    }
    validate(&session).map_err(|(field, problem)| SessionError::Invalid {
        path: path.to_path_buf(),
        field,
        problem,
    })?;
    Ok(session)
}

/// Writes a session atomically (a temporary file renamed over the old one).
pub fn save(session: &Session, path: &Path) -> Result<(), SessionError> {
    let write_error = |error| SessionError::Write {
        path: path.to_path_buf(),
        error,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    let pretty = ron::ser::PrettyConfig::default().compact_arrays(true);
    let text = ron::ser::to_string_pretty(session, pretty)
        .map_err(|e| write_error(std::io::Error::other(e)))?;
    crate::atomic::write(path, text.as_bytes()).map_err(write_error)
}

fn finite(field: &str, value: f64) -> Result<(), Problem> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err((
            field.to_string(),
            format!("must be a time ≥ 0; got {value}"),
        ))
    }
}

/// Checks every list and string against [`limits`].
pub fn validate(session: &Session) -> Result<(), Problem> {
    too_long("created_by", &session.created_by, limits::TEXT_CHARS)?;
    too_long("backend", &session.backend, limits::TEXT_CHARS)?;
    too_long("settings", &session.settings, limits::TEXT_CHARS)?;
    too_long("title", &session.title, limits::TITLE_CHARS)?;
    too_long("intro", &session.intro, limits::NOTE_CHARS)?;
    too_many("entries", session.entries.len(), limits::ENTRIES)?;
    for (i, entry) in session.entries.iter().enumerate() {
        let at = |field: &str| format!("entries[{i}].{field}");
        match entry {
            Entry::Mark { title, note, at: t } => {
                too_long(&at("title"), title, limits::TITLE_CHARS)?;
                too_long(&at("note"), note, limits::NOTE_CHARS)?;
                finite(&at("at"), *t)?;
            }
            Entry::Command {
                line,
                at: t,
                outcome,
            } => {
                too_long(&at("line"), line, limits::LINE_CHARS)?;
                finite(&at("at"), *t)?;
                validate_outcome(&at("outcome"), outcome)?;
            }
        }
    }
    Ok(())
}

fn validate_outcome(field: &str, o: &Outcome) -> Result<(), Problem> {
    let f = |name: &str| format!("{field}.{name}");
    let Outcome {
        error,
        log,
        snapshot,
        sample_unchanged: _,
        files,
    } = o;
    if let Some(error) = error {
        too_long(&f("error"), error, limits::TEXT_CHARS)?;
    }
    check_log(&f("log"), log)?;
    too_many(&f("files"), files.len(), limits::FILES)?;
    for (i, file) in files.iter().enumerate() {
        let FileRef { path, sha256 } = file;
        too_long(&f(&format!("files[{i}].path")), path, limits::LINE_CHARS)?;
        not_sha256(&f(&format!("files[{i}].sha256")), sha256)?;
    }
    super::snapshot::limits::check(&f("snapshot"), snapshot)
}

/// The file a session name stands for: `NAME.ron` in `dir`.
pub fn named_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.ron"))
}

/// The autosaved journal of the current session: beside the command history
/// (`$RSLAD_TUI_JOURNAL` overrides).
pub fn journal_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RSLAD_TUI_JOURNAL") {
        return Some(PathBuf::from(path));
    }
    super::history::default_path().map(|h| h.with_file_name("journal.ron"))
}
