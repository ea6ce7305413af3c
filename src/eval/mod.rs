//! Robustness evaluation: clean accuracy and robust accuracy under each requested attack.
//!
//! A point counts as robust only if the model classifies it correctly both clean and under
//! the attack (the convention of AutoAttack and the RSLAD tables).

pub mod journal;
pub mod shard;

use crate::attack::autoattack::{self, AutoAttackConfig, AutoAttackReport};
use crate::attack::{self, AttackLoss, PgdConfig, Selection, Start, Target};
use crate::data::ImageSet;
use crate::error::AttackError;
use crate::progress::Progress;
use crate::rng::{seeded, stream};
use crate::tensor_util::batch_tensors;
use crate::zoo::Model;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Images per forward pass during evaluation.
pub const EVAL_BATCH: usize = 200;

/// A named evaluation attack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalAttack {
    pub name: String,
    pub config: PgdConfig,
}

impl EvalAttack {
    pub fn fgsm(epsilon: f32) -> EvalAttack {
        EvalAttack {
            name: "FGSM".into(),
            config: attack::fgsm_config(epsilon),
        }
    }

    /// Madry PGD: cross-entropy, uniform start (MNIST: 40 steps of 0.01 at ε 0.3).
    pub fn pgd(epsilon: f32, steps: usize, step_size: f32) -> EvalAttack {
        EvalAttack {
            name: format!("PGD-{steps}"),
            config: PgdConfig {
                epsilon,
                step_size,
                steps,
                loss: AttackLoss::CrossEntropy,
                start: Start::Uniform,
                selection: Selection::WorstCase,
            },
        }
    }

    /// CW∞: PGD on the Carlini–Wagner margin, uniform start.
    pub fn cw(epsilon: f32, steps: usize, step_size: f32) -> EvalAttack {
        EvalAttack {
            name: format!("CW∞-{steps}"),
            config: PgdConfig {
                loss: AttackLoss::CwMargin,
                ..EvalAttack::pgd(epsilon, steps, step_size).config
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackResult {
    pub name: String,
    pub robust_accuracy: f64,
    /// The largest |x′ − x| the attack actually used.
    pub max_perturbation: f32,
    pub seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobustnessReport {
    pub images: usize,
    pub clean_accuracy: f64,
    pub attacks: Vec<AttackResult>,
}

/// Clean accuracy and robust accuracy under each attack on all of `test`.
///
/// An error if `test` is empty (an accuracy of no images is not 0%) or if the model's outputs
/// are not finite on a batch (see [`attack::checked_predictions`]).
pub fn evaluate(
    model: &Model,
    test: &ImageSet,
    attacks: &[EvalAttack],
    seed: u64,
    progress: &dyn Progress,
) -> Result<RobustnessReport, AttackError> {
    let never = AtomicBool::new(false);
    evaluate_cancellable(model, test, attacks, seed, progress, &never)
        .map(|report| report.expect("an evaluation nobody cancels finishes"))
}

/// [`evaluate`], checking `cancel` between batches: `Ok(None)` if it was raised.
pub fn evaluate_cancellable(
    model: &Model,
    test: &ImageSet,
    attacks: &[EvalAttack],
    seed: u64,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Option<RobustnessReport>, AttackError> {
    if test.is_empty() {
        return Err(AttackError::NoImages);
    }
    let view = attack::eval_view(model);
    let device = crate::device::compute_device();
    let indices: Vec<usize> = (0..test.len()).collect();
    let chunks: Vec<&[usize]> = indices.chunks(EVAL_BATCH).collect();

    let mut clean_correct = vec![false; test.len()];
    for chunk in &chunks {
        let (x, _) = batch_tensors(test, chunk, &device);
        let preds = attack::checked_predictions(view.forward(x), chunk, "test images")?;
        for (&i, p) in chunk.iter().zip(preds) {
            clean_correct[i] = p == i64::from(test.labels[i]);
        }
    }

    let mut results = Vec::new();
    for spec in attacks {
        let started = Instant::now();
        let mut rng = seeded(seed, stream::EVAL_ATTACK);
        let mut robust = 0usize;
        let mut max_perturbation = 0.0f32;
        progress.start(&spec.name, test.len() as u64);
        for chunk in &chunks {
            if cancel.load(Ordering::Relaxed) {
                progress.finish();
                return Ok(None);
            }
            let (x, y) = batch_tensors(test, chunk, &device);
            let target = Target::labels(y);
            let Some(output) =
                attack::pgd_cancellable(&view, &x, &target, &spec.config, &mut rng, cancel)
            else {
                progress.finish();
                return Ok(None);
            };
            let adversarial = output.adversarial;
            max_perturbation = max_perturbation.max(attack::max_linf_distance(&adversarial, &x));
            let preds =
                attack::checked_predictions(view.forward(adversarial), chunk, "adversarial images")
                    .inspect_err(|_| progress.finish())?;
            robust += chunk
                .iter()
                .zip(preds)
                .filter(|(i, p)| clean_correct[**i] && *p == i64::from(test.labels[**i]))
                .count();
            progress.advance(chunk.len() as u64);
        }
        progress.finish();
        results.push(AttackResult {
            name: spec.name.clone(),
            robust_accuracy: robust as f64 / test.len() as f64,
            max_perturbation,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    let clean = clean_correct.iter().filter(|&&c| c).count();
    Ok(Some(RobustnessReport {
        images: test.len(),
        clean_accuracy: clean as f64 / test.len() as f64,
        attacks: results,
    }))
}

/// [`autoattack`], checking `cancel` before each batch of each component: `Ok(None)` if it
/// was raised.
pub fn autoattack_cancellable(
    model: &Model,
    test: &ImageSet,
    config: &AutoAttackConfig,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Option<AutoAttackReport>, AttackError> {
    if test.is_empty() {
        return Err(AttackError::NoImages);
    }
    let view = attack::eval_view(model);
    let device = crate::device::compute_device();
    let all: Vec<usize> = (0..test.len()).collect();
    let (x, _) = batch_tensors(test, &all, &device);
    let labels: Vec<i64> = test.labels.iter().map(|&l| i64::from(l)).collect();
    autoattack::run_cancellable(&view, &x, &labels, config, progress, cancel)
}

/// AutoAttack on all of `test` with the model in evaluation mode. An error if `test` is empty,
/// or if the model's outputs on it are not finite.
pub fn autoattack(
    model: &Model,
    test: &ImageSet,
    config: &AutoAttackConfig,
    progress: &dyn Progress,
) -> Result<AutoAttackReport, AttackError> {
    if test.is_empty() {
        return Err(AttackError::NoImages);
    }
    let view = attack::eval_view(model);
    let device = crate::device::compute_device();
    let all: Vec<usize> = (0..test.len()).collect();
    let (x, _) = batch_tensors(test, &all, &device);
    let labels: Vec<i64> = test.labels.iter().map(|&l| i64::from(l)).collect();
    autoattack::run(&view, &x, &labels, config, progress)
}
