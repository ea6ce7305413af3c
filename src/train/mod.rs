//! Training: optimisers and schedules, the training objectives, and the epoch loop.

mod method;
pub mod objectives;
mod optimizer;
mod trainer;

pub use method::{Batch, Method};
pub use optimizer::{OptimizerConfig, OptimizerKind};
pub use trainer::{EpochMetrics, StepOutcome, TrainConfig, Trainer};
