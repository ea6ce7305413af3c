//! `step` and `step batch`: training, and the teacher's reference lines after the first epoch.

use super::Engine;
use crate::checkpoint::retrained_note;
use crate::eval;
use crate::lab::live::LiveProgress;
use crate::lab::snapshot::LogLevel;
use crate::text::count;
use crate::train::StepOutcome;
use anyhow::{Result, bail};
use std::sync::Arc;

impl Engine {
    pub(super) fn step_epochs(&mut self, epochs: usize) -> Result<()> {
        for _ in 0..epochs {
            if !self.run_batches(usize::MAX)? {
                break;
            }
        }
        Ok(())
    }

    pub(super) fn step_batches(&mut self, batches: usize) -> Result<()> {
        self.run_batches(batches).map(|_| ())
    }

    /// Trains up to `max` batches; false if stopped.
    fn run_batches(&mut self, max: usize) -> Result<bool> {
        if self.trainer.epoch_position() == (0, 0) {
            self.shared.update(|s| s.curves.batch_losses.clear());
        }
        let shared = Arc::clone(&self.shared);
        let mut progress = LiveProgress::new(&shared, self.elapsed_now());
        if max < usize::MAX {
            progress = progress.stopping_after(max);
        }
        let before = (self.trainer.epochs_done(), self.trainer.epoch_position().0);
        let outcome = self
            .trainer
            .step_batches(&self.data, max, &progress, &self.shared.cancel);
        drop(progress);
        let trained = (self.trainer.epochs_done(), self.trainer.epoch_position().0) != before;
        if trained && self.recalibrated().is_some() {
            // Training forwards gather the statistics again: no longer the recalibrated ones,
            // and neither the attack tables nor a saved card may say they are.
            self.statistics_note = self.statistics_note.take().map(|n| retrained_note(&n));
        }
        match outcome {
            StepOutcome::Batches(n) => {
                let (done, total) = self.trainer.epoch_position();
                self.info(format!(
                    "{} of epoch {}: {done}/{total} done",
                    count(n, "batch", "batches"),
                    self.trainer.epochs_done() + 1
                ));
                // The panels show the student as it is now, not as it was before the batches.
                self.refresh_sample();
                Ok(true)
            }
            StepOutcome::EpochDone(m) => {
                let robust = m.test_robust_accuracy.map_or(String::new(), |r| {
                    format!(", {} {:.2}%", self.robust_label(), 100.0 * r)
                });
                self.info(format!(
                    "epoch {} done in {:.1} s: loss {:.4}, clean {:.2}%{robust}",
                    m.epoch,
                    m.seconds,
                    m.loss,
                    100.0 * m.test_clean_accuracy
                ));
                if self.trainer.epochs_done() == 1 {
                    self.measure_teacher();
                }
                self.refresh_sample();
                Ok(true)
            }
            StepOutcome::Diverged { batch, loss } => {
                self.refresh_sample();
                let lr = self.settings.optimizer.lr.get();
                bail!(
                    "the loss became {loss} at batch {batch} of epoch {}: that batch was not \
                     applied, so the student is as it was after batch {} (its last good state). \
                     Lower the learning rate (now {lr}), e.g. `lr {}`, then `step` resumes",
                    self.trainer.epochs_done() + 1,
                    batch - 1,
                    lr / 10.0
                )
            }
            StepOutcome::Cancelled => {
                let (done, total) = self.trainer.epoch_position();
                self.shared.log(
                    LogLevel::Warning,
                    format!(
                        "stopped after batch {done}/{total} of epoch {}; the student is as it was \
                         after that batch; `step` resumes the epoch",
                        self.trainer.epochs_done() + 1
                    ),
                );
                self.refresh_sample();
                Ok(false)
            }
        }
    }

    /// The teacher's accuracy on the per-epoch evaluation, drawn as reference lines.
    pub(super) fn measure_teacher(&mut self) {
        let Some(teacher) = &self.teacher else {
            return;
        };
        let test = self
            .data
            .test
            .take(self.trainer.config.eval_n.min(self.data.test.len()));
        // Long enough to be seen: say what runs, and show the teacher it runs on.
        self.publish_all();
        self.info(format!(
            "measuring the teacher ({}) on the per-epoch evaluation ({}, clean and {}) for the \
             curves' reference lines",
            teacher.label,
            crate::text::count(test.len(), "test image", "test images"),
            self.robust_label()
        ));
        let progress = self.progress();
        let report = match eval::evaluate_cancellable(
            &teacher.model,
            &test,
            self.trainer.config.eval_attack.as_slice(),
            self.settings.seed,
            &progress,
            &self.shared.cancel,
        ) {
            Ok(Some(report)) => report,
            Ok(None) => return,
            Err(error) => {
                drop(progress);
                self.shared.log(
                    LogLevel::Warning,
                    format!("the teacher's reference lines are left out: {error}"),
                );
                return;
            }
        };
        self.shared.update(|s| {
            s.curves.teacher_clean = Some(100.0 * report.clean_accuracy);
            s.curves.teacher_robust = report.attacks.first().map(|a| 100.0 * a.robust_accuracy);
        });
    }
}
