//! The snapshot a playback shows: built from the recorded entries (the last command's
//! snapshot, the log of everything shown, the board of every attack table so far), and, while
//! a training entry is revealed, the frames between two recorded snapshots: the batch counter
//! moving, the batch losses growing, each epoch's point appearing when its epoch ends, and the
//! soft-label bars moving from the old probabilities to the new ones. The last frame of a
//! reveal is the recording itself.

use crate::lab::live::LOG_LIMIT;
use crate::lab::session::{Entry, Outcome};
use crate::lab::snapshot::results::{self, legacy_context, next_number};
use crate::lab::snapshot::{AttackTable, LogLevel, LogLine, SampleView, Snapshot, Status};

/// The batches a training entry ran, counted from the start of training (batch `from` done
/// before it, `to` after), with `per_epoch` batches to an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub from: usize,
    pub to: usize,
    pub per_epoch: usize,
}

/// The batches between two statuses, when training moved forward on the same data.
pub fn training_span(before: &Status, after: &Status) -> Option<Span> {
    let n = after.batches;
    if n == 0 || (before.batches != 0 && before.batches != n) {
        return None;
    }
    let from = before.epoch * n + before.batch;
    let to = after.epoch * n + after.batch;
    (to > from).then_some(Span {
        from,
        to,
        per_epoch: n,
    })
}

fn outcome(entry: &Entry) -> Option<&Outcome> {
    match entry {
        Entry::Command { outcome, .. } => Some(outcome),
        Entry::Mark { .. } => None,
    }
}

/// The status after the last command before entry `i` (the default before any).
pub fn status_before(entries: &[Entry], i: usize) -> Status {
    entries[..i.min(entries.len())]
        .iter()
        .rev()
        .find_map(outcome)
        .map(|o| o.snapshot.status.clone())
        .unwrap_or_default()
}

/// What the views show after the first `position` entries.
pub fn snapshot_at(entries: &[Entry], position: usize) -> Snapshot {
    let shown = &entries[..position.min(entries.len())];
    let last = shown.iter().rposition(|e| outcome(e).is_some());
    let mut snapshot = Snapshot::default();
    if let Some(i) = last {
        let recorded = outcome(&shown[i]).expect("a command");
        snapshot = recorded.snapshot.clone();
        if recorded.sample_unchanged {
            // Stored once, with the last command that changed it.
            snapshot.sample = shown[..i]
                .iter()
                .rev()
                .filter_map(outcome)
                .find(|o| !o.sample_unchanged)
                .and_then(|o| o.snapshot.sample.clone());
        }
    }
    snapshot.results = board(shown);
    snapshot.log = log(shown);
    snapshot.status.busy = None;
    snapshot.status.unsaved = false;
    snapshot
}

/// Every attack table the entries made, oldest first: a table is new where a command's
/// recorded table differs from the one before. Tables recorded without their context get it
/// from the status recorded beside them.
fn board(entries: &[Entry]) -> Vec<AttackTable> {
    let mut board = Vec::new();
    let mut previous: Option<&AttackTable> = None;
    for recorded in entries.iter().filter_map(outcome) {
        let table = recorded.snapshot.attack.as_ref();
        if let Some(table) = table
            && previous != Some(table)
        {
            let mut table = table.clone();
            if table.context.is_none() {
                let number = next_number(&board);
                table.context = Some(legacy_context(&table, &recorded.snapshot.status, number));
            }
            results::push(&mut board, table);
        }
        previous = table;
    }
    board
}

/// The log of the entries shown: each command echoed with the lines it wrote and its error,
/// each marker as "■ TITLE" (its note is in the Notes panel); the newest [`LOG_LIMIT`] lines.
fn log(entries: &[Entry]) -> Vec<LogLine> {
    let mut chunks = Vec::new();
    let mut count = 0;
    for entry in entries.iter().rev() {
        let lines = entry_log(entry);
        count += lines.len();
        chunks.push(lines);
        if count >= LOG_LIMIT {
            break;
        }
    }
    let mut log: Vec<LogLine> = chunks.into_iter().rev().flatten().collect();
    let excess = log.len().saturating_sub(LOG_LIMIT);
    log.drain(..excess);
    log
}

fn entry_log(entry: &Entry) -> Vec<LogLine> {
    match entry {
        Entry::Command { line, outcome, .. } => {
            let mut lines = vec![LogLine {
                level: LogLevel::Command,
                text: line.clone(),
            }];
            lines.extend(outcome.log.iter().cloned());
            if let Some(error) = &outcome.error {
                lines.push(LogLine {
                    level: LogLevel::Error,
                    text: error.clone(),
                });
            }
            lines
        }
        Entry::Mark { title, .. } => vec![LogLine {
            level: LogLevel::Warning,
            text: format!("■ {title}"),
        }],
    }
}

/// The frame `fraction` of the way through a training entry `line` that took the views from
/// `shown` to `next`.
pub fn interpolate(
    shown: &Snapshot,
    next: &Snapshot,
    span: &Span,
    fraction: f64,
    line: &str,
) -> Snapshot {
    let fraction = fraction.clamp(0.0, 1.0);
    // Rounded down: the last batch arrives with the recording itself.
    let batches = ((span.to - span.from) as f64 * fraction).floor() as usize;
    let at = (span.from + batches).min(span.to);
    let n = span.per_epoch;
    let epochs = at / n;
    let mut frame = next.clone();
    frame.status.epoch = epochs;
    frame.status.batch = at % n;
    frame.status.elapsed_seconds = shown.status.elapsed_seconds
        + (next.status.elapsed_seconds - shown.status.elapsed_seconds) * fraction;
    frame.curves.epochs = next
        .curves
        .epochs
        .iter()
        .filter(|p| p.epoch <= epochs)
        .cloned()
        .collect();
    frame.curves.batch_losses = losses(shown, next, span, at);
    // The teacher is measured after the first epoch: its lines appear with that epoch's end.
    if epochs <= shown.status.epoch {
        frame.curves.teacher_clean = shown.curves.teacher_clean;
        frame.curves.teacher_robust = shown.curves.teacher_robust;
    }
    frame.sample = blend(shown.sample.as_ref(), next.sample.as_ref(), fraction);
    frame.attack = shown.attack.clone();
    frame.diagnosis = shown.diagnosis.clone();
    frame.results = shown.results.clone();
    frame.log = shown.log.clone();
    frame.log.push(LogLine {
        level: LogLevel::Command,
        text: line.to_string(),
    });
    frame
}

/// The losses of the epoch under way at batch `at` (of the epoch just ended, when `at` ends
/// one), as far as they were recorded: `shown`'s end at batch `span.from`, `next`'s at
/// `span.to`. Batches of epochs neither recorded (the middle of `step 3`) stay out.
fn losses(shown: &Snapshot, next: &Snapshot, span: &Span, at: usize) -> Vec<f64> {
    let n = span.per_epoch;
    let start = if at > 0 && at.is_multiple_of(n) {
        at - n
    } else {
        at - at % n
    };
    let lookup = |losses: &[f64], end: usize, batch: usize| {
        let first = (end + 1).checked_sub(losses.len())?;
        (batch >= first && batch <= end)
            .then(|| losses.get(batch - first).copied())
            .flatten()
    };
    (start + 1..=at)
        .filter_map(|b| {
            lookup(&next.curves.batch_losses, span.to, b)
                .or_else(|| lookup(&shown.curves.batch_losses, span.from, b))
        })
        .collect()
}

/// The sample part of the way from `from` to `to`: the probabilities blended (every bar
/// moves), the images and everything else `from`'s until the end. Only the same image with
/// the same classes blends; otherwise `from` stays.
fn blend(from: Option<&SampleView>, to: Option<&SampleView>, t: f64) -> Option<SampleView> {
    let (Some(from), Some(to)) = (from, to) else {
        return from.cloned();
    };
    if from.index != to.index || from.class_names != to.class_names {
        return Some(from.clone());
    }
    let mix = |a: &[f32], b: &[f32]| -> Option<Vec<f32>> {
        (a.len() == b.len()).then(|| {
            a.iter()
                .zip(b)
                .map(|(a, b)| a + (b - a) * t as f32)
                .collect()
        })
    };
    let mut blended = from.clone();
    if let Some(p) = mix(&from.student_natural, &to.student_natural) {
        blended.student_natural = p;
    }
    if let Some(p) = mix(&from.student_adversarial, &to.student_adversarial) {
        blended.student_adversarial = p;
    }
    if let (Some(a), Some(b)) = (&from.teacher_natural, &to.teacher_natural) {
        blended.teacher_natural = mix(a, b).or(blended.teacher_natural);
    }
    if let (Some(a), Some(b)) = (&from.teacher_adversarial, &to.teacher_adversarial) {
        blended.teacher_adversarial = mix(a, b).or(blended.teacher_adversarial);
    }
    Some(blended)
}
