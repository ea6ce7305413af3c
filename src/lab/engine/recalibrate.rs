//! `recalibrate`: the student's batch-norm running statistics gathered again from adversarial
//! or natural training batches, weights unchanged ([`crate::train::recalibrate`]); how far each
//! layer's moved goes to the log, and what was done to the card of the next `save`. Stopped
//! part-way, the student keeps the statistics it had.

use super::Engine;
use crate::checkpoint;
use crate::lab::snapshot::LogLevel;
use crate::progress::Progress;
use crate::settings::attack_defaults;
use crate::train::{Method, RecalibrateConfig, StatsSource, Stopped, attack_words, recalibrate};
use anyhow::{Result, bail};

/// Training batches run unless `batches=` says otherwise: the statistics the student had then
/// weigh 0.9^100 = 3·10⁻⁵.
const RECALIBRATE_BATCHES: usize = 100;

impl Engine {
    /// Where the student's batch-norm statistics came from if `recalibrate` ran with no
    /// training since ("adversarial", "natural"), read from its statistics note; for the
    /// attack tables' context.
    pub(super) fn recalibrated(&self) -> Option<&'static str> {
        self.statistics_note
            .as_deref()
            .and_then(checkpoint::recalibrated_source)
    }

    pub(super) fn recalibrate(
        &mut self,
        source: StatsSource,
        batches: Option<usize>,
    ) -> Result<()> {
        let student = self.trainer.model.spec().arch;
        if !student.has_batch_norm() {
            bail!("{student} has no batch norm: there are no running statistics to gather again");
        }
        let batches = batches.unwrap_or(RECALIBRATE_BATCHES);
        // The training attack's numbers, in SAT's attack (cross-entropy, uniform start).
        let defaults = attack_defaults(self.data.kind);
        let (epsilon, step_size, steps) = match self.trainer.config.method.training_attack() {
            Some(a) => (a.epsilon, a.step_size, a.steps),
            None => (
                self.epsilon(),
                self.settings.step_size(),
                self.settings.attack.steps.unwrap_or(defaults.train_steps),
            ),
        };
        let config = RecalibrateConfig {
            source,
            attack: Method::ce_attack(epsilon, step_size, steps),
            batches,
            batch_size: self.settings.batch_size.get(),
            augment: self.data.kind.augments(),
            seed: self.settings.seed,
        };
        let model = &self.trainer.model;
        let progress = self.progress();
        progress.start(&format!("recalibrate ({})", source.name()), batches as u64);
        let outcome = recalibrate(
            model,
            &self.data.train,
            &config,
            &crate::device::compute_device(),
            &mut |_| progress.advance(1),
            &self.shared.cancel,
        );
        progress.finish();
        drop(progress);
        let shifts = match outcome {
            Ok(shifts) => shifts,
            Err(Stopped::Cancelled) => {
                self.shared.log(
                    LogLevel::Warning,
                    "recalibrate stopped: the student keeps the statistics it had",
                );
                return Ok(());
            }
            Err(Stopped::NoImages) => bail!("the data has no training images"),
        };
        let attack = match source {
            StatsSource::Adversarial => format!(" ({})", attack_words(&config.attack)),
            StatsSource::Natural => String::new(),
        };
        let (epochs, batch) = (self.trainer.epochs_done(), self.trainer.epoch_position().0);
        self.statistics_note = Some(format!(
            "batch-norm statistics re-estimated by the workbench's `recalibrate` after epoch \
             {epochs} and {batch} batches, from {batches} batches of {} {} training images{attack}, \
             seed {}",
            config.batch_size,
            source.name(),
            config.seed
        ));
        self.info(format!(
            "recalibrate {student}: {} statistics from {batches} training batches{attack}, \
             weights unchanged; how far they moved (mean shift in new σ, variance old/new):",
            source.name()
        ));
        for shift in &shifts {
            self.info(format!(
                "  {}: {:.3}σ, ×{:.3} ({} channels)",
                shift.layer, shift.mean_shift, shift.variance_ratio, shift.channels
            ));
        }
        // The student changed: the diagnosis was of the one before, and it is not saved (its
        // card will say what was done, `statistics_note`).
        self.forget_diagnosis();
        self.shared.update(|s| s.status.unsaved = true);
        self.refresh_sample();
        Ok(())
    }
}
