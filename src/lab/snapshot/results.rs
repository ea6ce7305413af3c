//! The results board: every attack table of a session side by side, one line per attack row
//! (dataset, model, method, training done, attack, ε, images, clean and robust accuracy), as
//! the Attacks panel draws it and as `results` prints it (aligned text or Markdown).

use super::{AttackTable, Snapshot, Status, TableContext};

/// Tables the board keeps (the oldest are dropped first).
pub const BOARD_LIMIT: usize = 200;

/// Makes `table` the newest: the table the status of an attack shows, and the board's next
/// line, numbered after the board's last table.
pub fn record(snapshot: &mut Snapshot, mut table: AttackTable) {
    if let Some(context) = &mut table.context {
        context.number = next_number(&snapshot.results);
    }
    push(&mut snapshot.results, table.clone());
    snapshot.attack = Some(table);
}

/// The number the next table on `board` gets.
pub fn next_number(board: &[AttackTable]) -> usize {
    board
        .last()
        .and_then(|t| t.context.as_ref())
        .map_or(board.len(), |c| c.number)
        + 1
}

/// Appends a table, dropping the oldest beyond [`BOARD_LIMIT`].
pub fn push(board: &mut Vec<AttackTable>, table: AttackTable) {
    board.push(table);
    let excess = board.len().saturating_sub(BOARD_LIMIT);
    board.drain(..excess);
}

/// The context of a table recorded before tables carried their own: the dataset, student,
/// method and training of the status line recorded beside it, and ε and the number of images
/// from the table's title (`micro-cnn, 200 test images, ε = 0.3`).
pub fn legacy_context(table: &AttackTable, status: &Status, number: usize) -> TableContext {
    let images = table
        .title
        .split(", ")
        .find_map(|part| part.strip_suffix(" test images"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let epsilon = table
        .title
        .split("ε = ")
        .nth(1)
        .and_then(|e| e.trim().parse().ok())
        .unwrap_or(status.epsilon);
    TableContext {
        number,
        dataset: status
            .dataset
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string(),
        model: status.student.clone(),
        method: status.method.clone(),
        epochs: status.epoch,
        batches: status.batch,
        epsilon,
        images,
        recalibrated: String::new(),
    }
}

/// One attack of one table.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultLine {
    /// The table's number in the session.
    pub table: usize,
    pub dataset: String,
    pub model: String,
    pub method: String,
    /// "40 batches", "1 epoch", "2 epochs + 5 batches"; with ", statistics recalibrated
    /// (adversarial)" after a `recalibrate`.
    pub training: String,
    /// The same, short: "40 b", "1 ep", "2 ep + 5 b"; with " · recal adv".
    pub training_short: String,
    pub attack: String,
    pub epsilon: String,
    /// Test images attacked ("" when unknown).
    pub images: String,
    /// Percent.
    pub clean: f64,
    pub robust: f64,
    /// e.g. "max |δ| 0.300 · 2.3 s".
    pub detail: String,
}

/// Every attack row of every table, oldest table first.
pub fn lines<'a>(board: impl IntoIterator<Item = &'a AttackTable>) -> Vec<ResultLine> {
    let mut out = Vec::new();
    for (i, table) in board.into_iter().enumerate() {
        let context = table.context.clone().unwrap_or(TableContext {
            number: i + 1,
            ..TableContext::default()
        });
        for row in &table.rows {
            out.push(ResultLine {
                table: context.number,
                dataset: context.dataset.clone(),
                model: context.model.clone(),
                method: context.method.clone(),
                training: trained(&context, false),
                training_short: trained(&context, true),
                attack: row.name.clone(),
                epsilon: epsilon(context.epsilon),
                images: if context.images > 0 {
                    context.images.to_string()
                } else {
                    String::new()
                },
                clean: table.clean,
                robust: row.robust,
                detail: row.detail.clone(),
            });
        }
    }
    out
}

/// What the student of a table had been through: [`training`], and a `recalibrate` of its
/// batch-norm statistics since, if any.
fn trained(context: &TableContext, short: bool) -> String {
    let training = training(context.epochs, context.batches, short);
    match (context.recalibrated.as_str(), short) {
        ("", _) => training,
        (source, true) => {
            // Chars, not bytes: a session file may hold any text here.
            let abbreviated: String = source.chars().take(3).collect();
            format!("{training} · recal {abbreviated}")
        }
        (source, false) => format!("{training}, statistics recalibrated ({source})"),
    }
}

/// Training done, e.g. "40 batches", "1 epoch", "2 epochs + 5 batches" (`short`: "40 b",
/// "1 ep", "2 ep + 5 b").
pub fn training(epochs: usize, batches: usize, short: bool) -> String {
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 || short {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let (epoch, epochs_word, batch, batches_word) = if short {
        ("ep", "ep", "b", "b")
    } else {
        ("epoch", "epochs", "batch", "batches")
    };
    match (epochs, batches) {
        (0, b) => plural(b, batch, batches_word),
        (e, 0) => plural(e, epoch, epochs_word),
        (e, b) => format!(
            "{} + {}",
            plural(e, epoch, epochs_word),
            plural(b, batch, batches_word)
        ),
    }
}

/// ε as it was typed, most likely: `8/255` for multiples of 1/255 that have no short decimal.
pub fn epsilon(value: f32) -> String {
    let decimal = format!("{value}");
    let k = (value * 255.0).round();
    if decimal.len() > 6 && k >= 1.0 && (value * 255.0 - k).abs() < 1e-3 {
        format!("{k}/255")
    } else {
        decimal
    }
}

/// The columns of a printed board: header, right-aligned, and a value per line.
struct Column {
    header: &'static str,
    right: bool,
    values: Vec<String>,
}

fn columns(lines: &[ResultLine]) -> Vec<Column> {
    let col = |header, right, f: &dyn Fn(&ResultLine) -> String| Column {
        header,
        right,
        values: lines.iter().map(f).collect(),
    };
    vec![
        col("#", true, &|l| l.table.to_string()),
        col("data", false, &|l| l.dataset.clone()),
        col("model", false, &|l| l.model.clone()),
        col("method", false, &|l| l.method.clone()),
        col("trained", false, &|l| l.training.clone()),
        col("attack", false, &|l| l.attack.clone()),
        col("ε", true, &|l| l.epsilon.clone()),
        col("images", true, &|l| l.images.clone()),
        col("clean %", true, &|l| format!("{:.2}", l.clean)),
        col("robust %", true, &|l| format!("{:.2}", l.robust)),
    ]
}

/// What `results` prints: [`plain`], or [`markdown`] with `markdown`.
pub fn text(board: &[AttackTable], markdown: bool) -> String {
    if markdown {
        self::markdown(board)
    } else {
        plain(board)
    }
}

/// The board as aligned text (the log, the REPL): columns whose value is the same on every
/// line move into a heading line above the table.
pub fn plain(board: &[AttackTable]) -> String {
    let lines = lines(board);
    if lines.is_empty() {
        return "no results yet: `attack pgd` or `eval` adds one".into();
    }
    let (shared, varying): (Vec<Column>, Vec<Column>) =
        columns(&lines).into_iter().partition(|c| {
            matches!(c.header, "data" | "model" | "ε" | "images")
                && c.values.iter().all(|v| *v == c.values[0])
        });
    let mut out = String::new();
    let heading: Vec<String> = shared
        .iter()
        .filter(|c| !c.values[0].is_empty())
        .map(|c| match c.header {
            "ε" => format!("ε = {}", c.values[0]),
            "images" => format!("{} test images", c.values[0]),
            _ => c.values[0].clone(),
        })
        .collect();
    out += &format!(
        "results: {} table(s){}{}\n",
        board.len(),
        if heading.is_empty() { "" } else { ", " },
        heading.join(", ")
    );
    let widths: Vec<usize> = varying
        .iter()
        .map(|c| {
            c.values
                .iter()
                .chain([&c.header.to_string()])
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let row = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&varying)
            .zip(&widths)
            .map(|((cell, c), &w)| {
                let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
                if c.right {
                    format!("{pad}{cell}")
                } else {
                    format!("{cell}{pad}")
                }
            })
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    out += &row(varying.iter().map(|c| c.header).collect());
    for i in 0..lines.len() {
        out += &row(varying.iter().map(|c| c.values[i].as_str()).collect());
    }
    out += &flags(board, "warning");
    out
}

/// The board as a Markdown table, every column shown.
pub fn markdown(board: &[AttackTable]) -> String {
    let lines = lines(board);
    if lines.is_empty() {
        return "no results yet: `attack pgd` or `eval` adds one".into();
    }
    let columns = columns(&lines);
    let cell = |v: &str| v.replace('|', "\\|");
    let mut out = format!(
        "| {} |\n|{}|\n",
        columns
            .iter()
            .map(|c| c.header)
            .collect::<Vec<_>>()
            .join(" | "),
        columns
            .iter()
            .map(|c| if c.right { "---:" } else { "---" })
            .collect::<Vec<_>>()
            .join("|")
    );
    for i in 0..lines.len() {
        let cells: Vec<String> = columns.iter().map(|c| cell(&c.values[i])).collect();
        out += &format!("| {} |\n", cells.join(" | "));
    }
    let warnings = flags(board, "- ⚠");
    if !warnings.is_empty() {
        out += "\n";
        out += &warnings;
    }
    out
}

/// Each table's warnings (AutoAttack's sanity flags), one line each, naming the table.
fn flags(board: &[AttackTable], prefix: &str) -> String {
    let mut out = String::new();
    for (i, table) in board.iter().enumerate() {
        let number = table.context.as_ref().map_or(i + 1, |c| c.number);
        for flag in &table.flags {
            out += &format!("{prefix} (table {number}): {flag}\n");
        }
    }
    out
}
