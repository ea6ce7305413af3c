//! Training: optimisers and schedules, the training objectives, and the epoch loop.

mod bn_stats;
mod method;
pub mod objectives;
mod optimizer;
mod recalibrate;
mod teacher_logits;
mod trainer;

pub use bn_stats::{BnStats, RunningStats};
pub use method::{Batch, Method};
pub use optimizer::{OptimizerConfig, OptimizerKind};
pub use recalibrate::{
    RecalibrateConfig, StatShift, StatsSource, Stopped, attack_words, recalibrate, shifts,
};
pub use trainer::{EpochMetrics, StepBatch, StepOutcome, TrainConfig, Trainer};
