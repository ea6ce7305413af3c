//! The rows of `compare`'s table as files of their own, `OUT/rows/METHOD.json`, so each
//! (method, student) can be a separate job (`compare --only METHOD`) and `compare --assemble`
//! builds the table from the rows that exist, naming the missing ones (docs/scale.md).

use super::args::TrainingOptions;
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
    /// The same options in words (their `Debug` form), so a refusal can name the one that
    /// differs (absent in rows written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_options_text: Option<String>,
    /// The fingerprint of the options with the teacher's path as it was spelled, which rows
    /// written before the teacher was named by its weights carry: such a row still resumes
    /// when the path is spelled as it was then.
    #[serde(skip)]
    pub path_spelled_training_options: Option<String>,
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

/// The training options as a table tells them apart: the teacher named by its weights'
/// SHA-256 (a shipped teacher by its name), not by how its path was spelled, so that
/// `assets/t` and `/home/me/rslad-tui/assets/t.safetensors` make one table, and a teacher
/// retrained at the same path makes another.
pub fn options_identity(options: &TrainingOptions) -> Result<TrainingOptions> {
    let mut identity = options.clone();
    if let Some(teacher) = &options.teacher
        && !teacher.to_str().is_some_and(crate::teacher::is_shipped)
    {
        let card = crate::checkpoint::read_card(teacher)
            .with_context(|| format!("cannot read the teacher {}", teacher.display()))?;
        identity.teacher = Some(PathBuf::from(format!("sha256:{}", card.weights_sha256)));
    }
    Ok(identity)
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
    let same_options = row.training_options == now.training_options
        || now.path_spelled_training_options.as_ref() == Some(&row.training_options);
    if !same_options {
        let named = match (&row.training_options_text, &now.training_options_text) {
            (Some(then), Some(now)) => option_differences(then, now),
            _ => Vec::new(),
        };
        if named.is_empty() {
            out.push("the training options (epochs, seed, teacher, …) differ".to_string());
        }
        out.extend(named);
    }
    out
}

/// The options that differ between two `Debug` forms of the training options, as
/// "--seed 3 in the row, 4 now" (`Struct { name: value, … }`, split at its top-level commas).
fn option_differences(then: &str, now: &str) -> Vec<String> {
    let then = top_level_fields(then);
    let now = top_level_fields(now);
    now.iter()
        .filter_map(|(name, value)| {
            let before = then
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str());
            (before != Some(value.as_str())).then(|| {
                format!(
                    "--{} {} in the row, {value} now",
                    name.replace('_', "-"),
                    before.unwrap_or("(not recorded)")
                )
            })
        })
        .collect()
}

/// `Name { a: 1, b: [2, 3], c: Some("x, y") }` → [(a, 1), (b, [2, 3]), (c, Some("x, y"))].
fn top_level_fields(debug: &str) -> Vec<(String, String)> {
    let Some(inner) = debug
        .split_once('{')
        .and_then(|(_, rest)| rest.trim_end().strip_suffix('}'))
    else {
        return Vec::new();
    };
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in inner.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' | '[' | '{' if !quoted => depth += 1,
            ')' | ']' | '}' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                fields.push(std::mem::take(&mut field));
                continue;
            }
            _ => {}
        }
        field.push(c);
    }
    fields.push(field);
    fields
        .iter()
        .filter_map(|f| f.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{TableKey, differences, option_differences, top_level_fields};

    #[test]
    fn the_training_option_that_differs_is_named() {
        let then =
            r#"Options { epochs: 3, milestones: [2, 3], teacher: Some("a, b\"c"), seed: 0 }"#;
        let now = r#"Options { epochs: 3, milestones: [2, 3], teacher: Some("a, b\"c"), seed: 4 }"#;
        assert_eq!(
            top_level_fields(then)[2],
            ("teacher".to_string(), r#"Some("a, b\"c")"#.to_string())
        );
        assert_eq!(
            option_differences(then, now),
            ["--seed 0 in the row, 4 now"]
        );
        assert!(option_differences(then, then).is_empty());
    }

    #[test]
    fn a_row_fingerprinted_by_the_teacher_path_still_resumes_under_that_spelling() {
        let key = |options: &str, spelled: Option<&str>| TableKey {
            dataset: "data/mnist".into(),
            student: "micro-cnn".into(),
            epsilon: 0.3,
            test_images: 10,
            autoattack_images: 0,
            autoattack_block: None,
            columns: vec!["FGSM".into()],
            training_options: options.into(),
            training_options_text: None,
            path_spelled_training_options: spelled.map(String::from),
        };
        let old_row = key("path-digest", None);
        assert!(differences(&old_row, &key("weights-digest", Some("path-digest"))).is_empty());
        assert_eq!(
            differences(&old_row, &key("weights-digest", Some("other-path"))),
            ["the training options (epochs, seed, teacher, …) differ"]
        );
    }
}
