//! Projected gradient descent (Madry et al. 2018) in L∞, and FGSM as its one-step case.
//!
//! x_{k+1} = Π(x_k + η · sign(∇ₓ loss(x_k))), where Π projects onto the ε-ball around the
//! natural x intersected with [0, 1].

use super::gradient::{AttackLoss, Target, input_gradient};
use super::{Classifier, project, signed_step};
use crate::tensor_util::{images, predictions, sample_mask, to_vec};
use burn::prelude::*;
use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use std::sync::atomic::{AtomicBool, Ordering};

/// Where the first iterate lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Start {
    /// At the natural image (FGSM).
    None,
    /// Uniform in the ε-ball (Madry's PGD, ARD, IAD).
    Uniform,
    /// x + 0.001·N(0, 1) (TRADES and RSLAD training attacks).
    SmallGaussian,
}

/// Which iterate an attack returns for each sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Selection {
    /// The last iterate, as training attacks use it.
    Last,
    /// The iterate with the highest loss seen (monotone in the number of steps).
    BestLoss,
    /// The first misclassified iterate if there is one, else the highest-loss one: the worst
    /// case for the model, used for robust accuracy.
    WorstCase,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PgdConfig {
    pub epsilon: f32,
    pub step_size: f32,
    pub steps: usize,
    pub loss: AttackLoss,
    pub start: Start,
    pub selection: Selection,
}

/// The configuration of FGSM: one step of size ε from the natural image, cross-entropy.
pub fn fgsm_config(epsilon: f32) -> PgdConfig {
    PgdConfig {
        epsilon,
        step_size: epsilon,
        steps: 1,
        loss: AttackLoss::CrossEntropy,
        start: Start::None,
        selection: Selection::WorstCase,
    }
}

pub struct AttackOutput {
    pub adversarial: Tensor<4>,
    /// Per-sample loss at the returned point (`None` for `Selection::Last`, which never
    /// evaluates the final iterate).
    pub loss: Option<Vec<f32>>,
}

/// FGSM (Goodfellow et al. 2015): x + ε·sign(∇ₓ CE), clipped to [0, 1].
pub fn fgsm(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    target: &Target,
    epsilon: f32,
    rng: &mut StdRng,
) -> AttackOutput {
    pgd(classifier, natural, target, &fgsm_config(epsilon), rng)
}

/// PGD in L∞ with the given loss, start and selection. `natural` must be a plain (non-autodiff)
/// tensor of images in [0, 1].
pub fn pgd(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    target: &Target,
    config: &PgdConfig,
    rng: &mut StdRng,
) -> AttackOutput {
    let never = AtomicBool::new(false);
    pgd_cancellable(classifier, natural, target, config, rng, &never)
        .expect("an attack nobody cancels finishes")
}

/// [`pgd`], checking `cancel` before every step: None if it was raised, so an attack with a
/// huge number of steps can still be stopped (evaluation only: a training batch must not be
/// cut short).
pub fn pgd_cancellable(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    target: &Target,
    config: &PgdConfig,
    rng: &mut StdRng,
    cancel: &AtomicBool,
) -> Option<AttackOutput> {
    let natural = natural.clone().without_autodiff();
    let start = random_start(&natural, config.start, config.epsilon, rng);
    let mut current = project(start, &natural, config.epsilon);
    let labels = target.labels.clone().map(|l| to_i64(l.without_autodiff()));
    let mut tracker = match config.selection {
        Selection::Last => None,
        selection => Some(Tracker::new(selection, &current)),
    };

    for step_index in 0..config.steps {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        let step = input_gradient(classifier, &current, target, config.loss);
        // Without a random start the first iterate is the natural image itself, not a
        // candidate: FGSM must return x + ε·sign(∇), even where x is already misclassified.
        let is_candidate = step_index > 0 || config.start != Start::None;
        if let Some(tracker) = tracker.as_mut().filter(|_| is_candidate) {
            tracker.observe(&current, &step.loss, &step.predictions, labels.as_deref());
        }
        current = signed_step(
            current,
            step.gradient,
            config.step_size,
            &natural,
            config.epsilon,
        );
    }

    Some(match tracker {
        None => AttackOutput {
            adversarial: current,
            loss: None,
        },
        Some(mut tracker) => {
            // The final iterate has not been looked at yet: one forward pass.
            let logits = classifier.logits(current.clone()).without_autodiff();
            let loss = to_vec(target.loss(config.loss, logits.clone()));
            tracker.observe(&current, &loss, &predictions(logits), labels.as_deref());
            AttackOutput {
                adversarial: tracker.best,
                loss: Some(tracker.best_loss),
            }
        }
    })
}

fn to_i64(labels: Tensor<1, burn::tensor::Int>) -> Vec<i64> {
    crate::tensor_util::int_to_vec(labels)
}

/// The first iterate before projection. Noise comes from the project's seeded generator.
fn random_start(natural: &Tensor<4>, start: Start, epsilon: f32, rng: &mut StdRng) -> Tensor<4> {
    let dims = natural.dims();
    let count: usize = dims.iter().product();
    let noise: Vec<f32> = match start {
        Start::None => return natural.clone(),
        Start::Uniform => (0..count)
            .map(|_| rng.gen_range(-epsilon..=epsilon))
            .collect(),
        Start::SmallGaussian => (0..count)
            .map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                0.001 * z as f32
            })
            .collect(),
    };
    let [n, c, h, w] = dims;
    natural.clone() + images(noise, n, c, h, w, &natural.device())
}

/// Keeps, per sample, the iterate the selection rule prefers.
struct Tracker {
    selection: Selection,
    best: Tensor<4>,
    best_loss: Vec<f32>,
    fooled: Vec<bool>,
}

impl Tracker {
    fn new(selection: Selection, first: &Tensor<4>) -> Tracker {
        let n = first.dims()[0];
        Tracker {
            selection,
            best: first.clone(),
            best_loss: vec![f32::NEG_INFINITY; n],
            fooled: vec![false; n],
        }
    }

    fn observe(&mut self, point: &Tensor<4>, loss: &[f32], preds: &[i64], labels: Option<&[i64]>) {
        let replace: Vec<bool> = (0..loss.len())
            .map(|i| {
                let improves = loss[i] > self.best_loss[i];
                match (self.selection, labels) {
                    (Selection::WorstCase, Some(labels)) => {
                        let fooled_now = preds[i] != labels[i];
                        // Once fooled, a sample keeps its first fooling point.
                        !self.fooled[i] && (fooled_now || improves)
                    }
                    _ => improves,
                }
            })
            .collect();
        for (i, &take) in replace.iter().enumerate() {
            if take {
                self.best_loss[i] = loss[i];
                if let Some(labels) = labels {
                    self.fooled[i] = preds[i] != labels[i];
                }
            }
        }
        if replace.iter().any(|&r| r) {
            let mask = sample_mask(&replace, point.dims(), &point.device());
            self.best = self.best.clone().mask_where(mask, point.clone());
        }
    }
}
