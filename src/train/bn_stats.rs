//! Which of the two training-mode forwards of TRADES and RSLAD (the student on x′, then on x)
//! update the batch-norm running statistics (issue 20's batch-norm hypothesis), or whether a
//! third forward, on the points a strong attack finds, does instead.
//!
//! In the reference code both do, so the statistics settle near a mix of adversarial and
//! natural inputs while the student is attacked, and evaluated, on them in eval mode; SAT's are
//! all adversarial. Each forward still normalises with its own batch's statistics whatever the
//! mode: only what is remembered for eval mode changes, never the loss or its gradient.

use crate::attack;
use crate::checkpoint;
use crate::zoo::{Model, is_running_stat};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Which forwards update the running statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum BnStats {
    /// Both, adversarial first (the reference code: PyTorch's `model.train()`).
    #[default]
    Both,
    /// The adversarial forward only, as in SAT.
    Adversarial,
    /// The natural forward only.
    Natural,
    /// Neither: a third training-mode forward, on the batch attacked as SAT attacks it
    /// (cross-entropy from a uniform start, the training attack's ε, step size and steps,
    /// against the student in eval mode), is the only one that updates them: one momentum-0.1
    /// update per training step from strong-attack points, where `recalibrate` re-estimates
    /// them once after training. It costs one more attack per batch (none for a student
    /// without batch norm, where every mode is the same).
    Strong,
}

impl BnStats {
    pub const ALL: [BnStats; 4] = [
        BnStats::Both,
        BnStats::Adversarial,
        BnStats::Natural,
        BnStats::Strong,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BnStats::Both => "both",
            BnStats::Adversarial => "adversarial",
            BnStats::Natural => "natural",
            BnStats::Strong => "strong",
        }
    }

    pub fn from_name(name: &str) -> Option<BnStats> {
        BnStats::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The student's logits on `adversarial` and then on `natural`, both in training mode, with
    /// the running statistics left as if only the forwards this mode names had run. `strong`
    /// makes the inputs of [`BnStats::Strong`]'s third forward (called only in that mode, after
    /// the statistics are back as they were before this batch).
    pub fn two_forwards(
        self,
        model: &Model,
        adversarial: Tensor<4>,
        natural: Tensor<4>,
        strong: impl FnOnce() -> Tensor<4>,
    ) -> (Tensor<2>, Tensor<2>) {
        // Without batch norm there are no statistics to keep: every mode is the reference's
        // two forwards, with no third attack.
        let mode = if model.spec().arch.has_batch_norm() {
            self
        } else {
            BnStats::Both
        };
        match mode {
            BnStats::Both => (model.forward(adversarial), model.forward(natural)),
            BnStats::Adversarial => {
                let adversarial = model.forward(adversarial);
                let kept = RunningStats::of(model);
                let natural = model.forward(natural);
                kept.restore(model);
                (adversarial, natural)
            }
            BnStats::Natural => {
                let kept = RunningStats::of(model);
                let adversarial = model.forward(adversarial);
                kept.restore(model);
                (adversarial, model.forward(natural))
            }
            BnStats::Strong => {
                let kept = RunningStats::of(model);
                let logits = (model.forward(adversarial), model.forward(natural));
                kept.restore(model);
                // A forward that updates the statistics and builds no parameter gradients.
                let _ = attack::train_view(model).forward(strong().autodiff());
                logits
            }
        }
    }
}

/// A copy of every batch-norm running statistic of a model, by parameter id, with its module
/// path (`bn1.running_mean`, as in checkpoints).
pub struct RunningStats {
    values: HashMap<ParamId, (String, TensorData)>,
}

impl RunningStats {
    /// The statistics as they stand now (updates still pending are folded in first: a
    /// `RunningState` keeps the last update per thread until it is read).
    pub fn of(model: &Model) -> RunningStats {
        let mut collector = StatCollector {
            path: Vec::new(),
            values: HashMap::new(),
        };
        // `valid` folds the pending updates in and copies the values out.
        model.valid().visit(&mut collector);
        RunningStats {
            values: collector.values,
        }
    }

    /// The values by module path.
    pub fn by_name(&self) -> BTreeMap<String, Vec<f32>> {
        self.values
            .values()
            .map(|(name, data)| {
                let values = data
                    .clone()
                    .try_into_vec::<f32>()
                    .expect("running statistics are f32");
                (name.clone(), values)
            })
            .collect()
    }

    /// Puts these statistics back into `model` (and every copy sharing its state).
    pub fn restore(&self, model: &Model) {
        // Fold pending updates in first, so none lands on top of the restored values later.
        let _ = model.valid();
        // `RunningState::map` writes the shared value in place: mapping a clone is enough.
        let _ = model.clone().map(&mut StatRestorer { stats: self });
    }
}

struct StatCollector {
    path: Vec<String>,
    values: HashMap<ParamId, (String, TensorData)>,
}

impl ModuleVisitor for StatCollector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        checkpoint::enter(&mut self.path, name, container_type);
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        checkpoint::exit(&mut self.path, container_type);
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.path.last().is_some_and(|name| is_running_stat(name)) {
            let name = checkpoint::path_name(&self.path);
            self.values
                .insert(param.id, (name, param.val().into_data()));
        }
    }
}

struct StatRestorer<'a> {
    stats: &'a RunningStats,
}

impl ModuleMapper for StatRestorer<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some((_, data)) = self.stats.values.get(&param.id) else {
            return param;
        };
        let device = param.val().device();
        Param::initialized(param.id, Tensor::from_data(data.clone(), &device))
    }
}
