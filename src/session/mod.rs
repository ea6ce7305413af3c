//! Sessions: the ordered commands of a workbench or REPL run with their timestamps, markers,
//! and the results each command produced (its log lines and the snapshot the views showed
//! after it), saved as versioned RON. Weights are referenced by path and SHA-256, never inlined.
//!
//! A session file may come from someone else, so reading one is defensive: the file size is
//! capped before parsing, every list and string has a limit, a newer format is refused by
//! name, and a malformed file gets an error with the line, column and field, never a panic.

pub mod compare;
pub mod playback;
pub mod replay;
pub mod runner;

use crate::workbench::snapshot::{LogLine, Snapshot};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The session format this program writes and the newest it reads.
pub const SESSION_FORMAT: u32 = 1;

/// Limits on what a session file may hold.
pub mod limits {
    /// The file, read before parsing.
    pub const FILE_BYTES: u64 = 64 << 20;
    pub const ENTRIES: usize = 10_000;
    pub const LINE_CHARS: usize = 1_000;
    pub const TITLE_CHARS: usize = crate::workbench::command::MARK_TITLE_LIMIT;
    pub const NOTE_CHARS: usize = crate::workbench::command::MARK_NOTE_LIMIT;
    pub const TEXT_CHARS: usize = 10_000;
    pub const LOG_LINES: usize = crate::workbench::live::LOG_LIMIT;
    pub const FILES: usize = 16;
    pub const EPOCHS: usize = 100_000;
    pub const BATCH_LOSSES: usize = crate::workbench::live::BATCH_LOSS_LIMIT;
    /// Pixels per image (3×64×64 covers every dataset the zoo takes).
    pub const PIXELS: usize = 3 * 64 * 64;
    pub const CLASSES: usize = 1_000;
    pub const ATTACK_ROWS: usize = 100;
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
            backend: backend_id(),
            device: crate::device::selection().open.choice,
            seed,
            settings: String::new(),
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
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
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
    let read_error = |source| SessionError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > limits::FILE_BYTES {
        return Err(SessionError::TooBig {
            path: path.to_path_buf(),
            size,
            limit: limits::FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
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
    let write_error = |source| SessionError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    let pretty = ron::ser::PrettyConfig::default().compact_arrays(true);
    let text = ron::ser::to_string_pretty(session, pretty)
        .map_err(|e| write_error(std::io::Error::other(e)))?;
    crate::atomic::write(path, text.as_bytes()).map_err(write_error)
}

type Problem = (String, String);

fn too_many(field: &str, len: usize, limit: usize) -> Result<(), Problem> {
    if len > limit {
        Err((
            field.to_string(),
            format!("has {len} items; the limit is {limit}"),
        ))
    } else {
        Ok(())
    }
}

fn too_long(field: &str, text: &str, limit: usize) -> Result<(), Problem> {
    let chars = text.chars().count();
    if chars > limit {
        Err((
            field.to_string(),
            format!("is {chars} characters long; the limit is {limit}"),
        ))
    } else {
        Ok(())
    }
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
    if let Some(error) = &o.error {
        too_long(&f("error"), error, limits::TEXT_CHARS)?;
    }
    too_many(&f("log"), o.log.len(), limits::LOG_LINES)?;
    for (i, line) in o.log.iter().enumerate() {
        too_long(
            &f(&format!("log[{i}].text")),
            &line.text,
            limits::TEXT_CHARS,
        )?;
    }
    too_many(&f("files"), o.files.len(), limits::FILES)?;
    for (i, file) in o.files.iter().enumerate() {
        too_long(
            &f(&format!("files[{i}].path")),
            &file.path,
            limits::LINE_CHARS,
        )?;
        too_long(&f(&format!("files[{i}].sha256")), &file.sha256, 64)?;
    }
    let s = &o.snapshot;
    let st = &s.status;
    for (name, text) in [
        ("dataset", &st.dataset),
        ("teacher", &st.teacher),
        ("student", &st.student),
        ("method", &st.method),
    ] {
        too_long(
            &f(&format!("snapshot.status.{name}")),
            text,
            limits::TEXT_CHARS,
        )?;
    }
    if let Some(busy) = &st.busy {
        too_long(&f("snapshot.status.busy"), busy, limits::TEXT_CHARS)?;
    }
    too_many(&f("snapshot.log"), s.log.len(), limits::LOG_LINES)?;
    too_many(
        &f("snapshot.curves.epochs"),
        s.curves.epochs.len(),
        limits::EPOCHS,
    )?;
    too_many(
        &f("snapshot.curves.batch_losses"),
        s.curves.batch_losses.len(),
        limits::BATCH_LOSSES,
    )?;
    too_long(
        &f("snapshot.curves.robust_label"),
        &s.curves.robust_label,
        limits::TEXT_CHARS,
    )?;
    if let Some(sample) = &s.sample {
        let g = |name: &str| f(&format!("snapshot.sample.{name}"));
        let pixels = sample.channels * sample.height * sample.width;
        if sample.channels == 0 || sample.channels > 3 || pixels > limits::PIXELS {
            return Err((
                g("channels"),
                format!(
                    "describes {}×{}×{} images; at most 3×64×64 are allowed",
                    sample.channels, sample.height, sample.width
                ),
            ));
        }
        for (name, values) in [
            ("natural", &sample.natural),
            ("adversarial", &sample.adversarial),
        ] {
            if values.len() != pixels {
                return Err((
                    g(name),
                    format!("has {} values for {pixels} pixels", values.len()),
                ));
            }
        }
        too_many(&g("class_names"), sample.class_names.len(), limits::CLASSES)?;
        for name in &sample.class_names {
            too_long(&g("class_names"), name, 100)?;
        }
        too_long(&g("attack"), &sample.attack, limits::TEXT_CHARS)?;
        let classes = sample.class_names.len();
        if sample.true_class >= classes.max(1) {
            return Err((g("true_class"), format!("is not below {classes}")));
        }
        let probabilities = [
            ("teacher_natural", sample.teacher_natural.as_ref()),
            ("teacher_adversarial", sample.teacher_adversarial.as_ref()),
            ("student_natural", Some(&sample.student_natural)),
            ("student_adversarial", Some(&sample.student_adversarial)),
        ];
        for (name, values) in probabilities {
            if let Some(values) = values
                && values.len() != classes
            {
                return Err((
                    g(name),
                    format!("has {} values for {classes} classes", values.len()),
                ));
            }
        }
    }
    if let Some(table) = &s.attack {
        too_long(
            &f("snapshot.attack.title"),
            &table.title,
            limits::TEXT_CHARS,
        )?;
        too_many(
            &f("snapshot.attack.rows"),
            table.rows.len(),
            limits::ATTACK_ROWS,
        )?;
        too_many(
            &f("snapshot.attack.flags"),
            table.flags.len(),
            limits::ATTACK_ROWS,
        )?;
        for row in &table.rows {
            too_long(
                &f("snapshot.attack.rows.name"),
                &row.name,
                limits::TEXT_CHARS,
            )?;
            too_long(
                &f("snapshot.attack.rows.detail"),
                &row.detail,
                limits::TEXT_CHARS,
            )?;
        }
        for flag in &table.flags {
            too_long(&f("snapshot.attack.flags"), flag, limits::TEXT_CHARS)?;
        }
    }
    Ok(())
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
    crate::workbench::history::default_path().map(|h| h.with_file_name("journal.ron"))
}

/// The backend and what decides its floating-point results on this machine: the CPU's widest
/// SIMD level and the number of threads (both change summation order). Results are
/// bit-identical between runs with the same id.
pub fn backend_id() -> String {
    if crate::device::selection().open.choice != crate::device::DeviceChoice::Cpu {
        return crate::device::backend_name();
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The convolution path rounds differently from burn's: sessions recorded on one must not
    // be expected to replay bit-identically on the other.
    format!(
        "{} (CPU, {}, {threads} threads, {})",
        crate::device::backend_crate(),
        simd_level(),
        crate::conv::ConvPath::selected().name()
    )
}

/// The matrix-multiply kernel family gemm runs here: it picks one at run time, so the same
/// build rounds differently on machines with and without AVX-512.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if cfg!(feature = "avx512") && std::arch::is_x86_feature_detected!("avx512f") {
            return "x86-64 avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "x86-64 avx2";
        }
        "x86-64"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH
    }
}
