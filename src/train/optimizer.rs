//! Optimisers (SGD with momentum and weight decay, Adam) and step learning-rate schedules.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};

/// Adam's ε as PyTorch has it (`torch.optim.Adam`): the references train with it.
pub const ADAM_EPSILON: f32 = 1e-8;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum OptimizerKind {
    /// SGD with (heavy-ball, undampened, as PyTorch's) momentum.
    Sgd {
        momentum: f64,
    },
    Adam,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub learning_rate: f64,
    /// L2 penalty added to the gradient (PyTorch's `weight_decay`).
    pub weight_decay: f32,
    /// Epochs (counted from 0) at whose start the learning rate is multiplied by `gamma`.
    pub milestones: Vec<usize>,
    pub gamma: f64,
}

impl OptimizerConfig {
    pub fn build(&self) -> ModuleOptimizer {
        let decay = (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay));
        match self.kind {
            OptimizerKind::Sgd { momentum } => {
                let momentum = (momentum > 0.0).then_some(MomentumConfig {
                    momentum,
                    dampening: 0.0,
                    nesterov: false,
                });
                SgdConfig::new()
                    .with_momentum(momentum)
                    .with_weight_decay(decay)
                    .init()
            }
            // PyTorch's ε (burn's default is 1e-5): the references train with torch.optim.Adam.
            OptimizerKind::Adam => AdamConfig::new()
                .with_epsilon(ADAM_EPSILON)
                .with_weight_decay(decay)
                .init(),
        }
    }

    /// The learning rate during `epoch` (0-based) under the step schedule.
    pub fn learning_rate_at(&self, epoch: usize) -> f64 {
        let drops = self.milestones.iter().filter(|&&m| epoch >= m).count();
        self.learning_rate * self.gamma.powi(drops as i32)
    }
}
