//! The rows of `compare`'s table as files of their own, `OUT/rows/METHOD.json`, so each
//! (method, student) can be a separate job (`compare --only METHOD`) and `compare --assemble`
//! builds the table from the rows that exist, naming the missing ones (docs/scale.md).

use super::compare::{Row, Table};
use crate::bounded_read::{self, ReadError};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Everything a row's numbers depend on besides its method: rows only share a table if these
/// are equal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableKey {
    pub dataset: String,
    pub student: String,
    pub epsilon: f32,
    pub test_images: usize,
    pub autoattack_images: usize,
    /// `--autoattack-block`: AutoAttack in blocks of this many images, each with its own seed
    /// (absent in rows written before it existed: one block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoattack_block: Option<usize>,
    pub columns: Vec<String>,
    /// [`options_fingerprint`] of the shared training options.
    pub training_options: String,
}

/// A row file: the row and the table it belongs to.
#[derive(Debug, Serialize, Deserialize)]
struct RowFile {
    key: TableKey,
    row: Row,
}

/// A short digest of the training options (their every field, as the command line gave them
/// to each job), so that rows trained with other epochs, seed, teacher, … are told apart.
pub fn options_fingerprint(options: &impl std::fmt::Debug) -> String {
    let digest = Sha256::digest(format!("{options:?}").as_bytes());
    format!("{digest:x}")[..16].to_string()
}

/// Where the row of `method` lives in the comparison folder `out`.
pub fn row_path(out: &Path, method: &str) -> PathBuf {
    out.join("rows").join(format!("{method}.json"))
}

/// Writes `row` of the table `key` to its file in `out`, atomically.
pub fn write_row(out: &Path, key: &TableKey, row: &Row) -> Result<()> {
    let path = row_path(out, &row.method);
    let folder = path.parent().expect("a row file has a folder");
    std::fs::create_dir_all(folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let file = RowFile {
        key: key.clone(),
        row: row.clone(),
    };
    crate::atomic::write(&path, serde_json::to_string_pretty(&file)?.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The table `key` from the rows of `methods` found in `out`, in that order, with the
/// methods that have no row yet in `missing`. A row of another table is refused, naming it
/// and what differs.
pub fn assemble(out: &Path, key: &TableKey, methods: &[&str]) -> Result<Table> {
    let mut table = Table::empty(key);
    for &method in methods {
        match read_row(out, key, method)? {
            Some(row) => table.rows.push(row),
            None => table.missing.push(method.to_string()),
        }
    }
    if table.rows.is_empty() {
        bail!(
            "no rows of {} in {}: run `compare --only METHOD` for each method first",
            methods.join(", "),
            out.join("rows").display()
        );
    }
    Ok(table)
}

/// The row of `method` in `out`, if its file exists; a row of another table (or of another
/// method) is refused, naming what differs.
pub fn read_row(out: &Path, key: &TableKey, method: &str) -> Result<Option<Row>> {
    let path = row_path(out, method);
    let bytes = match bounded_read::read(&path, bounded_read::COMPARE_ROW) {
        Ok(bytes) => bytes,
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    };
    let file: RowFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a row of compare's table", path.display()))?;
    let differences = differences(&file.key, key);
    if !differences.is_empty() {
        bail!(
            "{} is a row of another table: {}; run its job again with this command's \
             settings or move it away",
            path.display(),
            differences.join("; ")
        );
    }
    if file.row.method != method {
        bail!(
            "{} holds the row of {}, not {method}",
            path.display(),
            file.row.method
        );
    }
    Ok(Some(file.row))
}

/// What differs between a row's table and this command's, in words.
fn differences(row: &TableKey, now: &TableKey) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, then: String, now: String| {
        if then != now {
            out.push(format!("{what} {then} in the row, {now} now"));
        }
    };
    differ("dataset", row.dataset.clone(), now.dataset.clone());
    differ("student", row.student.clone(), now.student.clone());
    differ("ε", row.epsilon.to_string(), now.epsilon.to_string());
    differ(
        "test images",
        row.test_images.to_string(),
        now.test_images.to_string(),
    );
    differ(
        "AutoAttack images",
        row.autoattack_images.to_string(),
        now.autoattack_images.to_string(),
    );
    let block = |b: Option<usize>| b.map_or("one".to_string(), |b| b.to_string());
    differ(
        "AutoAttack block",
        block(row.autoattack_block),
        block(now.autoattack_block),
    );
    differ("columns", row.columns.join(","), now.columns.join(","));
    if row.training_options != now.training_options {
        out.push("the training options (epochs, seed, teacher, …) differ".to_string());
    }
    out
}
