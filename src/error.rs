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
    // The cause is in the message, so it is not also a `source` (which `{:#}` would print a
    // second time: "… (os error 2): … (os error 2)").
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
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
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: not a valid checkpoint: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("checkpoint {path} does not match: {differences}")]
    Mismatch { path: PathBuf, differences: String },
}

/// Errors of evaluations and attacks that depend on the model or the request, not on a bug.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttackError {
    #[error("{attack} needs a model with at least {needed} classes; this one has {classes}")]
    TooFewClasses {
        attack: &'static str,
        needed: usize,
        classes: usize,
    },
    #[error(
        "there are no images to evaluate: an accuracy of 0 images means nothing; ask for at least 1"
    )]
    NoImages,
    #[error(
        "the model's outputs are not finite: NaN or infinite logits on {count} of a batch of \
         {batch} {points} (the first is image {first}); its weights or batch-norm statistics \
         are out of range, and no accuracy measured on it would mean anything"
    )]
    NonFiniteOutputs {
        /// Which images: "test images" or "adversarial images".
        points: &'static str,
        count: usize,
        batch: usize,
        /// Index of the first of them among all the images evaluated.
        first: usize,
    },
    #[error("{0}")]
    Invalid(String),
}
