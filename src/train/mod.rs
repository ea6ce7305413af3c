//! Training: optimisers and schedules, the training objectives, and the epoch loop.

mod method;
mod optimizer;
mod trainer;

pub use method::Method;
pub use optimizer::{OptimizerConfig, OptimizerKind};
pub use trainer::{BatchReport, EpochMetrics, TrainConfig, Trainer, batch_tensors};
