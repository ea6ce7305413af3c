//! The status line and the curves, written into the snapshot from the engine's state after
//! every command.

use super::Engine;
use crate::data::DataSource;
use crate::lab::snapshot::EpochPoint;

impl Engine {
    pub(super) fn publish_all(&self) {
        let (done, total) = self.trainer.epoch_position();
        let batches = if total == 0 {
            self.trainer.batches_per_epoch(&self.data)
        } else {
            total
        };
        let status_dataset = match &self.settings.data.source {
            DataSource::Embedded => format!("{} (embedded)", self.data.kind.name()),
            folder => format!("{} ({folder})", self.data.kind.name()),
        };
        let teacher = self
            .teacher
            .as_ref()
            .map_or("none".to_string(), |t| t.label.clone());
        let student = self.settings.student.to_string();
        let method = self.trainer.config.method.short_label();
        let epsilon = self.epsilon();
        let points: Vec<EpochPoint> = self
            .trainer
            .history
            .iter()
            .map(|m| EpochPoint {
                epoch: m.epoch,
                loss: m.loss,
                clean: 100.0 * m.test_clean_accuracy,
                robust: m.test_robust_accuracy.map(|r| 100.0 * r),
            })
            .collect();
        let robust_label = self.robust_label();
        let (epoch, seed, elapsed) = (self.trainer.epochs_done(), self.settings.seed, self.elapsed);
        self.shared.update(|s| {
            s.status.dataset = status_dataset;
            s.status.teacher = teacher;
            s.status.student = student;
            s.status.method = method;
            s.status.epoch = epoch;
            s.status.batch = done;
            s.status.batches = batches;
            s.status.epsilon = epsilon;
            s.status.seed = seed;
            s.status.elapsed_seconds = elapsed;
            s.status.busy = None;
            s.status.device = crate::device::short_label();
            s.curves.epochs = points;
            s.curves.robust_label = robust_label;
        });
    }
}
