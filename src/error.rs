//! Errors a user can cause, each with a message that says what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    #[error("unknown model '{name}'; available: {available}")]
    UnknownModel { name: String, available: String },
    #[error("{arch} expects {expected}, but the configuration asks for {got}")]
    BadConfig {
        arch: &'static str,
        expected: String,
        got: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("data folder {path} not found (run scripts/fetch-data.sh, or pass --data embedded)")]
    MissingFolder { path: PathBuf },
    #[error("{path} not found; expected {layout}")]
    MissingFile { path: PathBuf, layout: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid checkpoint: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("checkpoint {path} does not match: {differences}")]
    Mismatch { path: PathBuf, differences: String },
}

/// Errors of the AutoAttack components that depend on the model, not on a bug.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttackError {
    #[error("{attack} needs a model with at least {needed} classes; this one has {classes}")]
    TooFewClasses {
        attack: &'static str,
        needed: usize,
        classes: usize,
    },
    #[error("{0}")]
    Invalid(String),
}
