//! Progress reporting for long work, independent of how it is shown.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

/// What the trainer reports after each batch, for progress displays.
pub struct BatchReport {
    pub batch: usize,
    pub batches: usize,
    pub loss: f64,
}

/// Receives progress from training and evaluation loops.
pub trait Progress {
    /// A new phase of `total` steps begins.
    fn start(&self, label: &str, total: u64);
    /// One training batch is done.
    fn batch(&self, report: &BatchReport);
    /// `steps` more steps of the current phase are done.
    fn advance(&self, steps: u64);
    fn finish(&self);
}

/// Reports nothing (tests, JSON output).
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn batch(&self, _: &BatchReport) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Progress bars on standard error (hidden automatically when it is not a terminal).
#[derive(Default)]
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bars {
    fn start(&self, label: &str, total: u64) {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:32}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn batch(&self, report: &BatchReport) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.set_position(report.batch as u64);
            bar.set_message(format!("loss {:.4}", report.loss));
        }
    }

    fn advance(&self, steps: u64) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.inc(steps);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}
