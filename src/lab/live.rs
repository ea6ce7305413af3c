//! What the engine thread and the UI thread share: the snapshot the UI draws (behind a mutex,
//! with a version number so the UI redraws only on change) and the cancel flag that `stop`,
//! `pause` and Ctrl-C raise.

use super::snapshot::{LogLevel, LogLine, Snapshot};
use crate::progress::{BatchReport, Progress};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// The log keeps this many lines (oldest dropped first), so a long session stays bounded.
pub const LOG_LIMIT: usize = 2000;
/// Per-batch losses kept for the trace (an epoch of full MNIST at batch 128 is 469).
pub const BATCH_LOSS_LIMIT: usize = 100_000;

#[derive(Default)]
pub struct Shared {
    snapshot: Mutex<Snapshot>,
    version: AtomicU64,
    /// Raised to stop the running work at the next batch boundary.
    pub cancel: AtomicBool,
    /// Commands sent to the engine and not yet finished (the front end adds, the engine
    /// subtracts), so the front end knows whether anything is running.
    pending: AtomicUsize,
    /// Log lines written since the start, dropped ones included, so a caller can tell which
    /// lines a command wrote even when the log is full.
    logged: AtomicUsize,
}

impl Shared {
    /// A copy of the current snapshot, for drawing.
    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    /// Bumped on every change.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Changes the snapshot.
    pub fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        change(&mut self.lock());
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Clears everything but the log, for a session that starts over (`load session`, a
    /// replay): nothing of the state before may show, or be compared, afterwards.
    pub fn start_over(&self) {
        self.update(|s| {
            let log = std::mem::take(&mut s.log);
            *s = Snapshot {
                log,
                ..Snapshot::default()
            };
        });
    }

    pub fn log(&self, level: LogLevel, text: impl Into<String>) {
        let text = text.into();
        self.logged
            .fetch_add(text.lines().count(), Ordering::AcqRel);
        self.update(|s| {
            for line in text.lines() {
                s.log.push(LogLine {
                    level,
                    text: line.to_string(),
                });
            }
            let excess = s.log.len().saturating_sub(LOG_LIMIT);
            s.log.drain(..excess);
        });
    }

    /// Log lines written so far (see [`Shared::log_since`]).
    pub fn logged(&self) -> usize {
        self.logged.load(Ordering::Acquire)
    }

    /// The log lines written since `logged()` returned `mark` (those still kept).
    pub fn log_since(&self, mark: usize) -> Vec<LogLine> {
        let new = self.logged().saturating_sub(mark);
        let snapshot = self.lock();
        let keep = new.min(snapshot.log.len());
        snapshot.log[snapshot.log.len() - keep..].to_vec()
    }

    /// A command is on its way to the engine.
    pub fn command_sent(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        self.version.fetch_add(1, Ordering::Release);
    }

    /// The engine finished (or skipped) a command.
    pub fn command_done(&self) {
        // Saturating: an engine driven directly (tests) finishes commands nobody sent.
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Whether the engine has work sent and not finished.
    pub fn busy(&self) -> bool {
        self.pending.load(Ordering::Acquire) > 0
    }

    /// Makes Ctrl-C (SIGINT) raise the stop flag, for front ends whose terminal is in its
    /// normal mode while work runs (the REPL, `replay --execute`). Without a handler (another
    /// one is installed) Ctrl-C keeps its default behaviour.
    pub fn stop_on_ctrl_c(self: &std::sync::Arc<Self>) {
        let shared = std::sync::Arc::clone(self);
        let _ = ctrlc::set_handler(move || shared.cancel.store(true, Ordering::Relaxed));
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // A panic while holding the lock leaves a snapshot that is still drawable.
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Progress that goes into the snapshot: the busy line, the batch counter, the per-batch loss
/// trace and the elapsed time.
pub struct LiveProgress<'a> {
    shared: &'a Shared,
    /// The session's compute time before this work began.
    elapsed_before: f64,
    started: Instant,
    phase: Mutex<Phase>,
    /// Training batches this work runs at most (`step batch N`), for the time left.
    batch_limit: Option<u64>,
}

struct Phase {
    label: String,
    total: u64,
    done: u64,
    /// Where this work stops within `total`, if before its end (`step batch N`).
    stop_at: Option<u64>,
    /// Steps already done when this work began (an epoch resumed part-way), not counted in
    /// its pace.
    base: Option<u64>,
    started: Instant,
}

impl Default for Phase {
    fn default() -> Self {
        Phase::new("", 0)
    }
}

impl Phase {
    fn new(label: &str, total: u64) -> Phase {
        Phase {
            label: label.to_string(),
            total,
            done: 0,
            stop_at: None,
            base: None,
            started: Instant::now(),
        }
    }

    /// "epoch 1 22/79 · 2.3/s · 25 s left": where the work stands, how fast it goes, and
    /// how long it will take at that pace (once there is a pace to go by).
    fn describe(&self) -> String {
        let mut text = format!("{} {}/{}", self.label, self.done, self.total);
        let seconds = self.started.elapsed().as_secs_f64();
        let done_here = self.done - self.base.unwrap_or(0).min(self.done);
        if done_here > 0 && seconds > 0.5 {
            let rate = done_here as f64 / seconds;
            text += &format!(" · {rate:.1}/s");
            let end = self.stop_at.unwrap_or(self.total).min(self.total);
            if end > self.done {
                let left = (end - self.done) as f64 / rate;
                text += &format!(" · {} left", duration(left));
            }
        }
        text
    }
}

/// Seconds as "25 s", "3 min 10 s" or "2 h 05 min".
pub fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

impl<'a> LiveProgress<'a> {
    pub fn new(shared: &'a Shared, elapsed_before: f64) -> Self {
        Self {
            shared,
            elapsed_before,
            started: Instant::now(),
            phase: Mutex::new(Phase::default()),
            batch_limit: None,
        }
    }

    /// Training stops after `batches` batches (`step batch N`): the time left counts to there,
    /// not to the end of the epoch.
    pub fn stopping_after(mut self, batches: usize) -> Self {
        self.batch_limit = Some(batches as u64);
        self
    }

    fn publish(&self, extra: impl FnOnce(&mut Snapshot)) {
        let busy = self
            .phase
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .describe();
        let elapsed = self.elapsed_before + self.started.elapsed().as_secs_f64();
        self.shared.update(|s| {
            s.status.busy = Some(busy);
            s.status.elapsed_seconds = elapsed;
            extra(s);
        });
    }
}

impl Progress for LiveProgress<'_> {
    fn start(&self, label: &str, total: u64) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = Phase::new(label, total);
        self.publish(|_| {});
    }

    fn batch(&self, report: &BatchReport) {
        {
            let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
            let done = report.batch as u64;
            let base = *phase.base.get_or_insert(done.saturating_sub(1));
            phase.stop_at = self.batch_limit.map(|limit| base.saturating_add(limit));
            phase.done = done;
        }
        self.publish(|s| {
            s.status.batch = report.batch;
            s.status.batches = report.batches;
            if s.curves.batch_losses.len() < BATCH_LOSS_LIMIT {
                s.curves.batch_losses.push(report.loss);
            }
            s.status.unsaved = true;
        });
    }

    fn advance(&self, steps: u64) {
        self.phase.lock().unwrap_or_else(|e| e.into_inner()).done += steps;
        self.publish(|_| {});
    }

    fn finish(&self) {}
}

#[cfg(test)]
mod tests {
    use super::Phase;
    use std::time::{Duration, Instant};

    #[test]
    fn the_time_left_counts_to_where_the_work_stops() {
        // 10 batches of 50 done in 10 s: 40 s to the epoch's end, 20 s to a stop at batch 30.
        let mut phase = Phase::new("epoch 1", 50);
        phase.started = Instant::now() - Duration::from_secs(10);
        phase.base = Some(0);
        phase.done = 10;
        assert!(
            phase.describe().ends_with("· 40 s left"),
            "{}",
            phase.describe()
        );
        phase.stop_at = Some(30);
        assert!(
            phase.describe().ends_with("· 20 s left"),
            "{}",
            phase.describe()
        );
    }
}
