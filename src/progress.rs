//! Progress reporting for long work, independent of how it is shown.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Progress on standard error: a bar on a terminal; where standard error is not one (a pipe,
/// a log file, a batch job) a plain line at most every [`PLAIN_EVERY`], so long work is never
/// silent.
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    plain: Option<Mutex<Plain>>,
}

/// How often a plain progress line is written.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

struct Plain {
    label: String,
    total: u64,
    done: u64,
    loss: Option<f64>,
    started: Instant,
    printed: Instant,
}

impl Default for Bars {
    fn default() -> Self {
        use std::io::IsTerminal;
        Bars {
            bar: Mutex::new(None),
            plain: (!std::io::stderr().is_terminal()).then(|| {
                Mutex::new(Plain {
                    label: String::new(),
                    total: 0,
                    done: 0,
                    loss: None,
                    started: Instant::now(),
                    printed: Instant::now(),
                })
            }),
        }
    }
}

impl Plain {
    /// Writes the line if the last one is old enough (or `now` is asked for).
    fn report(&mut self, now: bool) {
        if !now && self.printed.elapsed() < PLAIN_EVERY {
            return;
        }
        self.printed = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = self.done as f64 / seconds.max(1e-9);
        let left = if self.done > 0 && self.total > self.done {
            format!(
                ", about {:.0} s left",
                (self.total - self.done) as f64 / rate
            )
        } else {
            String::new()
        };
        let loss = self
            .loss
            .map_or(String::new(), |l| format!(", loss {l:.4}"));
        eprintln!(
            "{}: {}/{} after {seconds:.0} s ({rate:.2}/s{left}){loss}",
            self.label, self.done, self.total
        );
    }
}

impl Progress for Bars {
    fn start(&self, label: &str, total: u64) {
        if let Some(plain) = &self.plain {
            let mut plain = plain.lock().expect("progress lock");
            *plain = Plain {
                label: label.to_string(),
                total,
                done: 0,
                loss: None,
                started: Instant::now(),
                printed: Instant::now(),
            };
            return;
        }
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
        if let Some(plain) = &self.plain {
            let mut plain = plain.lock().expect("progress lock");
            plain.done = report.batch as u64;
            plain.loss = Some(report.loss);
            plain.report(false);
            return;
        }
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.set_position(report.batch as u64);
            bar.set_message(format!("loss {:.4}", report.loss));
        }
    }

    fn advance(&self, steps: u64) {
        if let Some(plain) = &self.plain {
            let mut plain = plain.lock().expect("progress lock");
            plain.done += steps;
            plain.report(false);
            return;
        }
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.inc(steps);
        }
    }

    fn finish(&self) {
        if self.plain.is_some() {
            return;
        }
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}
