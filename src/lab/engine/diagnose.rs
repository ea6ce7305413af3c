//! `diagnose`: the gradient-masking checks of [`crate::diagnose`] on the student, one log line
//! per check (a warning where a check suggests masking), then the verdict.

use super::Engine;
use crate::diagnose::{DiagnoseConfig, diagnose_cancellable, first_images};
use crate::lab::snapshot::LogLevel;
use crate::progress::Progress;
use anyhow::Result;

/// Test images diagnosed unless `n=` says otherwise, and the most it takes (one batch).
const DIAGNOSE_N: usize = 200;
const DIAGNOSE_MAX: usize = 1000;

impl Engine {
    pub(super) fn diagnose(&mut self, n: Option<usize>) -> Result<()> {
        let n = n.unwrap_or(DIAGNOSE_N).min(self.data.test.len());
        if n > DIAGNOSE_MAX {
            anyhow::bail!("diagnose takes at most {DIAGNOSE_MAX} images (n={n})");
        }
        let (x, labels) = first_images(&self.data.test, n, &crate::device::compute_device());
        let mut config = DiagnoseConfig::new(self.epsilon());
        config.seed = self.settings.seed;
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
}
