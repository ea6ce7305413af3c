//! Re-estimating a batch-norm model's running statistics with its weights fixed (issue 20).
//!
//! A student trained by TRADES or RSLAD with the reference's two training-mode forwards
//! remembers statistics of a mix of natural and adversarial inputs, and eval mode, in which it
//! is attacked, normalises with them. Whether its weakness under strong attacks lies in its
//! weights or in those statistics can be told apart by keeping the weights and gathering the
//! statistics again from one kind of input only: training-mode forwards (which update the
//! running statistics exactly as training does, momentum 0.1) with no optimiser step.
//!
//! For adversarial statistics each batch is attacked first, as SAT's training does: PGD with
//! cross-entropy from a uniform start, against the model in eval mode as its statistics stand
//! at that batch. After `batches` batches the statistics the model came with weigh 0.9^batches
//! (3·10⁻⁵ after 100).

use super::bn_stats::RunningStats;
use super::trainer::augmented_batch;
use crate::attack::{self, PgdConfig, Target};
use crate::data::ImageSet;
use crate::data::batch::{batches, epoch_order};
use crate::rng::{seeded, stream};
use crate::tensor_util::batch_tensors;
use crate::zoo::Model;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which inputs the new statistics come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum StatsSource {
    /// Adversarial examples of the training images (PGD, cross-entropy, uniform start).
    Adversarial,
    /// The training images themselves.
    Natural,
}

impl StatsSource {
    pub fn name(self) -> &'static str {
        match self {
            StatsSource::Adversarial => "adversarial",
            StatsSource::Natural => "natural",
        }
    }
}

#[derive(Clone, Debug)]
pub struct RecalibrateConfig {
    pub source: StatsSource,
    /// The attack for [`StatsSource::Adversarial`] (ignored for natural statistics): SAT's,
    /// [`super::Method::ce_attack`], whose start is uniform.
    pub attack: PgdConfig,
    pub batches: usize,
    pub batch_size: usize,
    /// Random crop and flip, as training applies them on CIFAR (`DatasetKind::augments`).
    pub augment: bool,
    /// Orders the training images (and seeds the attack's random starts and the augmentation).
    pub seed: u64,
}

/// "PGD-10, ε 0.3, step 0.05, uniform start": the attack as the log and the card name it.
pub fn attack_words(attack: &PgdConfig) -> String {
    format!(
        "PGD-{}, ε {}, step {}, uniform start",
        attack.steps, attack.epsilon, attack.step_size
    )
}

/// How far one batch-norm layer's statistics moved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatShift {
    /// The layer's module path (`bn1`, `layer1.0.bn2`, ...).
    pub layer: String,
    pub channels: usize,
    /// Mean over channels of |old mean − new mean| / new standard deviation.
    pub mean_shift: f64,
    /// Geometric mean over channels of old variance / new variance.
    pub variance_ratio: f64,
}

/// What stopped a recalibration before it finished.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    Cancelled,
    /// No training images, or a batch size of 0: nothing to gather statistics from.
    NoImages,
}

/// Gathers `model`'s running statistics again from `config.batches` batches of `train` (in
/// place; every copy of the model shares them) and returns how far each layer's moved.
/// Batches are built on `device` (the plain compute device; they are made autodiff for the
/// training-mode forward). `progress` is told after each batch how many are done; `cancel` is
/// checked between batches; a cancelled run puts the statistics back as they were.
pub fn recalibrate(
    model: &Model,
    train: &ImageSet,
    config: &RecalibrateConfig,
    device: &Device,
    progress: &mut dyn FnMut(usize),
    cancel: &AtomicBool,
) -> Result<Vec<StatShift>, Stopped> {
    if train.is_empty() || config.batch_size == 0 {
        return Err(Stopped::NoImages);
    }
    let kept = RunningStats::of(model);
    let mut rng = seeded(config.seed, stream::ATTACK);
    let mut augment_rng = seeded(config.seed, stream::AUGMENT);
    let mut done = 0;
    let mut epoch = 0;
    while done < config.batches {
        let order = epoch_order(train.len(), config.seed, epoch);
        for indices in batches(&order, config.batch_size) {
            if done == config.batches {
                break;
            }
            if cancel.load(Ordering::SeqCst) {
                kept.restore(model);
                return Err(Stopped::Cancelled);
            }
            let (x, labels) = if config.augment {
                augmented_batch(train, indices, &mut augment_rng, device)
            } else {
                batch_tensors(train, indices, device)
            };
            let input = match config.source {
                StatsSource::Natural => x,
                StatsSource::Adversarial => {
                    let view = attack::eval_view(model);
                    let target = Target::labels(labels);
                    attack::pgd(&view, &x, &target, &config.attack, &mut rng).adversarial
                }
            };
            // A training-mode forward on the autodiff model updates the running statistics;
            // `train_view` builds no parameter gradients, and nothing is stepped.
            let _ = attack::train_view(model).forward(input.autodiff());
            done += 1;
            progress(done);
        }
        epoch += 1;
    }
    Ok(shifts(&kept.by_name(), &RunningStats::of(model).by_name()))
}

/// Per layer, how far the statistics in `after` are from those in `before`.
pub fn shifts(
    before: &BTreeMap<String, Vec<f32>>,
    after: &BTreeMap<String, Vec<f32>>,
) -> Vec<StatShift> {
    let mut layers = Vec::new();
    for (name, old_mean) in before {
        let Some(layer) = name.strip_suffix(".running_mean") else {
            continue;
        };
        let var_name = format!("{layer}.running_var");
        let (Some(new_mean), Some(old_var), Some(new_var)) =
            (after.get(name), before.get(&var_name), after.get(&var_name))
        else {
            continue;
        };
        let channels = old_mean.len();
        let mut shift = 0.0;
        let mut log_ratio = 0.0;
        for c in 0..channels {
            // burn's batch norm divides by √(var + 1e-5): the same floor keeps both finite.
            let (old_var, new_var) = (f64::from(old_var[c]) + 1e-5, f64::from(new_var[c]) + 1e-5);
            shift += (f64::from(old_mean[c]) - f64::from(new_mean[c])).abs() / new_var.sqrt();
            log_ratio += (old_var / new_var).ln();
        }
        let channels_f = channels.max(1) as f64;
        layers.push(StatShift {
            layer: layer.to_string(),
            channels,
            mean_shift: shift / channels_f,
            variance_ratio: (log_ratio / channels_f).exp(),
        });
    }
    layers
}
