//! `diagnose`: the gradient-masking checks of [`crate::diagnose`] on the student, one log line
//! per check (a warning where a check suggests masking), then the verdict; the loss profile
//! goes into the snapshot for the Curves panel's plot, with the student it was computed on.

use super::Engine;
use crate::diagnose::{DiagnoseConfig, Diagnosis, diagnose_cancellable, first_images};
use crate::lab::snapshot::{DiagnosisView, ImageLoss, LogLevel};
use crate::progress::Progress;
use anyhow::Result;

/// Test images diagnosed unless `n=` says otherwise, and the most it takes (one batch).
pub const DIAGNOSE_N: usize = 200;
const DIAGNOSE_MAX: usize = 1000;

impl Engine {
    pub(super) fn diagnose(&mut self, n: Option<usize>, image: Option<usize>) -> Result<()> {
        let requested = n.unwrap_or(DIAGNOSE_N);
        if requested > DIAGNOSE_MAX {
            anyhow::bail!("diagnose takes at most {DIAGNOSE_MAX} images (n={requested})");
        }
        let n = requested.min(self.data.test.len());
        if let Some(image) = image.filter(|&i| i >= n) {
            anyhow::bail!(
                "image={image} is not among the {n} diagnosed test images (their indices are \
                 below {n}): give a smaller index or a larger n"
            );
        }
        let (x, labels) = first_images(&self.data.test, n, &crate::device::compute_device());
        let mut config = DiagnoseConfig::new(self.epsilon());
        config.seed = self.settings.seed;
        config.profile_image = image;
        let view = crate::attack::eval_view(&self.trainer.model);
        let progress = self.progress();
        let diagnosis = diagnose_cancellable(
            &view,
            &x,
            &labels,
            &config,
            &mut |check| {
                progress.finish();
                progress.start(&format!("diagnose: {check}"), 1);
            },
            &self.shared.cancel,
        )?;
        progress.finish();
        drop(progress);
        let Some(diagnosis) = diagnosis else {
            self.shared
                .log(LogLevel::Warning, "diagnose stopped before its last check");
            return Ok(());
        };
        let plot = self.diagnosis_view(&diagnosis);
        self.shared.update(|s| s.diagnosis = Some(plot));
        let student = self.trainer.model.spec().arch;
        self.info(format!(
            "diagnose {student} ({}):",
            self.trainer.config.method.short_label()
        ));
        for (warns, line) in diagnosis.marked_lines() {
            let level = if warns {
                LogLevel::Warning
            } else {
                LogLevel::Info
            };
            self.shared.log(level, line);
        }
        Ok(())
    }

    /// What the plot needs from a diagnosis of the student as it is now.
    fn diagnosis_view(&self, diagnosis: &Diagnosis) -> DiagnosisView {
        // No profile (no image classified correctly): no image and empty curves.
        let profile = diagnosis.profile.clone().unwrap_or_default();
        DiagnosisView {
            // The diagnosed images are the first of the test set: their index is the image's.
            image: diagnosis.profile.as_ref().map(|p| p.sample),
            highest_losses: diagnosis
                .highest_losses
                .iter()
                .map(|&(image, loss)| ImageLoss { image, loss })
                .collect(),
            images: diagnosis.images,
            epsilon: diagnosis.epsilon,
            offsets: profile.offsets,
            along_gradient: profile.along_gradient,
            random_max: profile.random_max,
            random_mean: profile.random_mean,
            checks: diagnosis.findings.len(),
            flagged: diagnosis.flagged(),
            model: self.settings.student.to_string(),
            method: self.trainer.config.method.short_label(),
            epochs: self.trainer.epochs_done(),
            batches: self.trainer.epoch_position().0,
        }
    }

    /// Forgets the last diagnosis: the student it was computed on is gone.
    pub(super) fn forget_diagnosis(&self) {
        self.shared.update(|s| s.diagnosis = None);
    }

    /// A fresh or loaded student: no diagnosis of it yet, and its statistics are as trained.
    pub(super) fn student_replaced(&mut self) {
        self.forget_diagnosis();
        self.statistics_note = None;
    }
}
