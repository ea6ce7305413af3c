//! Auto-PGD in L∞ (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an
//! ensemble of diverse parameter-free attacks"): APGD-CE, APGD-DLR and APGD-T.
//!
//! PGD with a step size that needs no tuning: it starts at 2ε, and at checkpoints chosen in
//! advance it is halved (and the iterate sent back to the best point so far) whenever the
//! loss stopped rising. A momentum term of 0.25 smooths the iterates.
//!
//! Everything here mirrors fra31/auto-attack, `autoattack/autopgd_base.py`:
//! [`apgd`] is `APGDAttack.perturb` (with `best_loss=False`), [`apgd_targeted`] is
//! `APGDAttack_targeted.perturb`, and both run `APGDAttack.attack_single_run` on the points
//! not yet fooled. Differences from the reference, each deliberate, are listed on the public
//! functions.

use super::dlr::{dlr_loss, require_classes, targeted_dlr_loss};
use super::inputs::{check_label_count, check_labels_in_range, other_classes_by_logit};
use super::{AttackOutcome, Classifier, momentum_step, project};
use crate::error::AttackError;
use crate::loss::cross_entropy;
use crate::tensor_util::{
    images, labels as label_tensor, predictions, row_indices, sample_mask, to_vec,
};
use burn::prelude::*;
use burn::tensor::{Int, TensorData};
use rand::Rng;
use rand::rngs::StdRng;

/// The loss APGD maximises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ApgdLoss {
    /// Cross-entropy with the true label (APGD-CE, the first AutoAttack component).
    CrossEntropy,
    /// Untargeted DLR (APGD-DLR, AutoAttack's "plus" and "rand" versions); ≥ 3 classes.
    Dlr,
    /// Targeted DLR, for [`apgd_targeted`] only (APGD-T); ≥ 4 classes.
    TargetedDlr,
}

impl ApgdLoss {
    fn name(self) -> &'static str {
        match self {
            ApgdLoss::CrossEntropy => "cross-entropy",
            ApgdLoss::Dlr => "DLR",
            ApgdLoss::TargetedDlr => "targeted DLR",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ApgdConfig {
    /// L∞ radius of the threat model.
    pub epsilon: f32,
    /// Iterations of one run (the reference's `n_iter`).
    pub iterations: usize,
    /// Runs with a fresh random start on the points still not fooled (`n_restarts`); for
    /// APGD-T, per target class.
    pub restarts: usize,
    pub loss: ApgdLoss,
    /// Step-size halving threshold: halve when the loss rose in at most this fraction of the
    /// steps since the last checkpoint (`rho`, 0.75).
    pub rho: f32,
    /// How many target classes APGD-T tries (`n_target_classes`, 9).
    pub target_classes: usize,
    /// Gradient samples averaged per step (`eot_iter`): 1 in the standard version, 20 in the
    /// rand version for models with randomness.
    pub eot_iterations: usize,
}

impl ApgdConfig {
    /// The configuration of standard AutoAttack: 100 iterations, 1 restart, ρ = 0.75 and
    /// 9 target classes for APGD-T.
    pub fn standard(epsilon: f32, loss: ApgdLoss) -> Self {
        ApgdConfig {
            epsilon,
            iterations: 100,
            restarts: 1,
            loss,
            rho: 0.75,
            target_classes: 9,
            eot_iterations: 1,
        }
    }

    fn validate(&self) -> Result<(), AttackError> {
        if !self.epsilon.is_finite() || self.epsilon < 0.0 {
            return Err(AttackError::Invalid(format!(
                "APGD needs a finite ε ≥ 0, got {}",
                self.epsilon
            )));
        }
        if !(0.0..=1.0).contains(&self.rho) {
            return Err(AttackError::Invalid(format!(
                "APGD's ρ is a fraction of steps in [0, 1], got {}",
                self.rho
            )));
        }
        Ok(())
    }
}

/// What [`apgd`] and [`apgd_targeted`] return.
pub struct ApgdReport {
    /// A point per input inside the ε-ball and [0, 1], and which inputs are misclassified:
    /// a misclassifying iterate for fooled points (the natural image for points the model
    /// already gets wrong, as the reference returns them), the highest-loss iterate otherwise.
    pub outcome: AttackOutcome,
    /// Points whose input gradient was exactly zero at the start (a gradient-masking flag):
    /// the gradient at the random start of the first run that attacked the point, as the
    /// reference's `check_zero_gradients`. False for points never attacked.
    pub zero_gradient_at_start: Vec<bool>,
}

/// The iterations (counted from 1) after which APGD may halve its step size; for 100
/// iterations exactly 22, 41, 57, 70, 80, 87, 93, 99.
///
/// Mirrors `init_hyperparam` and the `counter3 == k` test of `attack_single_run`: the first
/// interval is ⌊0.22 N⌋, each next one ⌊0.03 N⌋ shorter, never under ⌊0.06 N⌋ (every one of
/// these at least 1). The last checkpoint may fall on iteration N itself (for N = 10 the list is
/// 2, 3, …, 10), exactly where the reference checks too.
pub fn checkpoints(iterations: usize) -> Vec<usize> {
    schedule(iterations).iter().map(|c| c.end).collect()
}

/// Untargeted APGD with the CE or DLR loss (`APGDAttack.perturb`).
///
/// Points the model already misclassifies are not attacked (fooled, returned unchanged);
/// each restart attacks the points still not fooled from a fresh random start.
///
/// Deviation from the reference: for points never fooled the reference returns the natural
/// image; this returns the highest-loss point found (over all restarts), which the reference
/// computes only in its `best_loss=True` mode.
pub fn apgd(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    labels: &[i64],
    config: &ApgdConfig,
    rng: &mut StdRng,
) -> Result<ApgdReport, AttackError> {
    if config.loss == ApgdLoss::TargetedDlr {
        return Err(AttackError::Invalid(
            "the targeted DLR loss belongs to APGD-T: call apgd_targeted".to_string(),
        ));
    }
    let Some(batch) = Batch::prepare(classifier, natural, labels, config)? else {
        return Ok(empty_report(natural));
    };
    if config.loss == ApgdLoss::Dlr {
        require_classes("DLR", 3, batch.classes)?;
    }
    let mut results = Results::new(&batch);
    for _ in 0..config.restarts {
        let active = results.active();
        if active.is_empty() {
            break;
        }
        let objective = Objective::new(config.loss, &batch, &active, None);
        let run = single_run(classifier, &batch.subset(&active), &objective, config, rng)?;
        results.absorb(&active, run);
    }
    Ok(results.finish())
}

/// APGD-T (`APGDAttack_targeted.perturb`): for target rank k = 2 ..= target_classes + 1 (the
/// k-th most likely class on the clean input), `restarts` runs of targeted-DLR APGD on the
/// points not yet fooled. A point counts as fooled when misclassified as any wrong class.
///
/// `config.loss` must be [`ApgdLoss::TargetedDlr`] (the reference asserts the same). With
/// fewer than target_classes + 1 classes every other class is tried once (the reference
/// would index out of range). Deviations from the reference: the ranking of target classes
/// leaves out the true class, which changes nothing for the attacked points (the true class
/// is their top class) except under an exact tie for the top logit, where the reference could
/// pick the true class itself as target; unfooled points get their highest-loss point over
/// all targets, as in [`apgd`].
pub fn apgd_targeted(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    labels: &[i64],
    config: &ApgdConfig,
    rng: &mut StdRng,
) -> Result<ApgdReport, AttackError> {
    if config.loss != ApgdLoss::TargetedDlr {
        return Err(AttackError::Invalid(format!(
            "APGD-T maximises the targeted DLR loss, not {}: set loss to ApgdLoss::TargetedDlr",
            config.loss.name()
        )));
    }
    let Some(batch) = Batch::prepare(classifier, natural, labels, config)? else {
        return Ok(empty_report(natural));
    };
    require_classes("targeted DLR", 4, batch.classes)?;
    let ranking = other_classes_by_logit(&batch.clean_logits, batch.classes, &batch.labels);
    let last_rank = (config.target_classes + 1).min(batch.classes);
    let mut results = Results::new(&batch);
    for rank in 2..=last_rank {
        for _ in 0..config.restarts {
            let active = results.active();
            if active.is_empty() {
                break;
            }
            let targets: Vec<i64> = active.iter().map(|&p| ranking[p][rank - 2]).collect();
            let objective = Objective::new(config.loss, &batch, &active, Some(&targets));
            let run = single_run(classifier, &batch.subset(&active), &objective, config, rng)?;
            results.absorb(&active, run);
        }
    }
    Ok(results.finish())
}

fn empty_report(natural: &Tensor<4>) -> ApgdReport {
    ApgdReport {
        outcome: AttackOutcome {
            adversarial: natural.clone(),
            fooled: Vec::new(),
        },
        zero_gradient_at_start: Vec::new(),
    }
}

/// The inputs of an attack, checked, with the model's clean logits.
struct Batch {
    natural: Tensor<4>,
    labels: Vec<i64>,
    classes: usize,
    /// `[n × classes]`, row-major.
    clean_logits: Vec<f32>,
    clean_predictions: Vec<i64>,
}

impl Batch {
    /// `None` for an empty batch, which needs no attack.
    fn prepare(
        classifier: &impl Classifier,
        natural: &Tensor<4>,
        labels: &[i64],
        config: &ApgdConfig,
    ) -> Result<Option<Batch>, AttackError> {
        config.validate()?;
        let natural = natural.clone().without_autodiff();
        let n = natural.dims()[0];
        check_label_count(labels, n)?;
        if n == 0 {
            return Ok(None);
        }
        let logits = classifier.logits(natural.clone()).without_autodiff();
        let classes = logits.dims()[1];
        check_labels_in_range(labels, classes)?;
        Ok(Some(Batch {
            natural,
            labels: labels.to_vec(),
            classes,
            clean_predictions: predictions(logits.clone()),
            clean_logits: to_vec(logits),
        }))
    }

    fn len(&self) -> usize {
        self.labels.len()
    }

    /// The natural images of the given points.
    fn subset(&self, points: &[usize]) -> Tensor<4> {
        self.natural
            .clone()
            .select(0, row_indices(points, &self.natural.device()))
    }
}

/// The per-sample loss of one run, on the points it attacks.
struct Objective {
    loss: ApgdLoss,
    labels: Vec<i64>,
    label_tensor: Tensor<1, Int>,
    target_tensor: Option<Tensor<1, Int>>,
}

impl Objective {
    fn new(loss: ApgdLoss, batch: &Batch, points: &[usize], targets: Option<&[i64]>) -> Self {
        let device = batch.natural.device();
        let labels: Vec<i64> = points.iter().map(|&p| batch.labels[p]).collect();
        Objective {
            loss,
            label_tensor: label_tensor(&labels, &device),
            target_tensor: targets.map(|t| label_tensor(t, &device)),
            labels,
        }
    }

    fn per_sample(&self, logits: Tensor<2>) -> Result<Tensor<1>, AttackError> {
        let labels = self.label_tensor.clone();
        match (self.loss, &self.target_tensor) {
            (ApgdLoss::CrossEntropy, _) => Ok(cross_entropy(logits, labels)),
            (ApgdLoss::Dlr, _) => dlr_loss(logits, labels),
            (ApgdLoss::TargetedDlr, Some(targets)) => {
                targeted_dlr_loss(logits, labels, targets.clone())
            }
            (ApgdLoss::TargetedDlr, None) => Err(AttackError::Invalid(
                "the targeted DLR loss needs target classes".to_string(),
            )),
        }
    }
}

/// One forward/backward pass at the current points.
struct Evaluation {
    gradient: Tensor<4>,
    loss: Vec<f32>,
    /// Per point: is the model wrong here?
    misclassified: Vec<bool>,
}

/// The per-sample loss at `points` and its gradient with respect to the points only (the
/// reference's `torch.autograd.grad(loss_indiv.sum(), [x_adv])`). With `eot` > 1 the gradient
/// is the mean over `eot` forward/backward passes and the loss and predictions are those of the
/// last pass, as in the reference's expectation over transformation.
fn evaluate(
    classifier: &impl Classifier,
    points: &Tensor<4>,
    objective: &Objective,
    eot: usize,
) -> Result<Evaluation, AttackError> {
    let mut gradient_sum: Option<Tensor<4>> = None;
    let mut last = None;
    for _ in 0..eot.max(1) {
        let leaf = points.clone().without_autodiff().autodiff().require_grad();
        let logits = classifier.logits(leaf.clone());
        let per_sample = objective.per_sample(logits.clone())?;
        let grads = per_sample.clone().sum().backward();
        // A model that cuts the input out of its graph has, for the attack, a zero gradient.
        let gradient = match leaf.grad(&grads) {
            Some(gradient) => gradient.without_autodiff(),
            None => points.zeros_like(),
        };
        gradient_sum = Some(match gradient_sum {
            Some(sum) => sum + gradient,
            None => gradient,
        });
        last = Some((logits, per_sample));
    }
    let (logits, per_sample) = last.expect("at least one pass");
    let gradient = gradient_sum
        .expect("at least one pass")
        .div_scalar(eot.max(1) as f32);
    let predicted = predictions(logits.detach().without_autodiff());
    Ok(Evaluation {
        gradient,
        loss: to_vec(per_sample.detach().without_autodiff()),
        misclassified: predicted
            .iter()
            .zip(&objective.labels)
            .map(|(p, y)| p != y)
            .collect(),
    })
}

/// What one run (`attack_single_run`) found for each of its points.
struct RunResult {
    /// The highest-loss iterate (`x_best`) and its loss.
    best: Tensor<4>,
    best_loss: Vec<f32>,
    /// Whether any iterate was misclassified (`acc == 0`) and the latest such iterate
    /// (`x_best_adv`).
    fooled: Vec<bool>,
    fooling: Tensor<4>,
    zero_gradient_at_start: Vec<bool>,
}

/// One run of APGD on `natural` (`APGDAttack.attack_single_run`, L∞ branch).
fn single_run(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    objective: &Objective,
    config: &ApgdConfig,
    rng: &mut StdRng,
) -> Result<RunResult, AttackError> {
    let dims = natural.dims();
    let device = natural.device();
    let n = dims[0];
    let epsilon = config.epsilon;

    // x + ε·t/‖t‖∞, t ~ U(−1, 1); the reference then clamps to [0, 1]. Projecting does the
    // same and also absorbs float rounding at the edge of the ball.
    let start = natural.clone() + random_direction(dims, rng, &device).mul_scalar(epsilon);
    let mut x_adv = project(start, natural, epsilon);
    let first = evaluate(classifier, &x_adv, objective, config.eot_iterations)?;
    let zero_gradient_at_start = zero_rows(&first.gradient);
    let mut gradient = first.gradient;
    let mut best = x_adv.clone();
    let mut best_gradient = gradient.clone();
    let mut best_loss = first.loss;
    let mut fooled = first.misclassified;
    let mut fooling = x_adv.clone();

    // Step size 2ε per point (`alpha = 2`).
    let mut step = vec![2.0 * epsilon; n];
    let mut previous = x_adv.clone();
    let mut loss_steps = vec![vec![0.0f32; n]; config.iterations];
    let mut schedule = schedule(config.iterations).into_iter().peekable();
    let mut best_loss_last_check = best_loss.clone();
    let mut reduced_last_check = vec![true; n];

    for i in 0..config.iterations {
        // z = P(x_k + η·sign(∇)); x_{k+1} = P(x_k + a(z − x_k) + (1 − a)(x_k − x_{k−1})).
        let a = if i > 0 { 0.75 } else { 1.0 };
        let step_tensor = per_sample_scalars(&step, dims, &device);
        let next = momentum_step(
            [&x_adv, &previous, &gradient, &step_tensor],
            natural,
            epsilon,
            a,
        );
        previous = std::mem::replace(&mut x_adv, next);

        let now = evaluate(classifier, &x_adv, objective, config.eot_iterations)?;
        gradient = now.gradient;
        for (f, &wrong) in fooled.iter_mut().zip(&now.misclassified) {
            *f |= wrong;
        }
        fooling = replace_rows(fooling, &now.misclassified, &x_adv);

        let improved: Vec<bool> = now
            .loss
            .iter()
            .zip(&best_loss)
            .map(|(l, b)| l > b)
            .collect();
        best = replace_rows(best, &improved, &x_adv);
        best_gradient = replace_rows(best_gradient, &improved, &gradient);
        for ((b, &l), &up) in best_loss.iter_mut().zip(&now.loss).zip(&improved) {
            if up {
                *b = l;
            }
        }
        loss_steps[i] = now.loss;

        if let Some(checkpoint) = schedule.next_if(|c| c.end == i + 1) {
            let reduce = halve_step_at_checkpoint(
                &loss_steps,
                i,
                checkpoint.length,
                config.rho,
                &best_loss,
                &best_loss_last_check,
                &reduced_last_check,
            );
            for (s, &r) in step.iter_mut().zip(&reduce) {
                if r {
                    *s /= 2.0;
                }
            }
            x_adv = replace_rows(x_adv, &reduce, &best);
            gradient = replace_rows(gradient, &reduce, &best_gradient);
            reduced_last_check = reduce;
            best_loss_last_check = best_loss.clone();
        }
    }

    Ok(RunResult {
        best,
        best_loss,
        fooled,
        fooling,
        zero_gradient_at_start,
    })
}

/// A checkpoint: the iteration count at which it falls and the length of the interval that
/// ends there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Checkpoint {
    end: usize,
    length: usize,
}

/// The checkpoints of `iterations` iterations (`init_hyperparam` and the `k` updates of
/// `attack_single_run`). Python's `int(f * n)` is the truncation of the same f64 product.
fn schedule(iterations: usize) -> Vec<Checkpoint> {
    let fraction = |f: f64| ((f * iterations as f64) as usize).max(1);
    let first = fraction(0.22); // n_iter_2
    let shortest = fraction(0.06); // n_iter_min
    let decrease = fraction(0.03); // size_decr
    let mut checkpoints = Vec::new();
    let (mut end, mut length) = (0, first);
    while end + length <= iterations {
        end += length;
        checkpoints.push(Checkpoint { end, length });
        length = length.saturating_sub(decrease).max(shortest);
    }
    checkpoints
}

/// Which points halve their step at a checkpoint after iteration `i` (0-based) closing an
/// interval of `length` iterations (`check_oscillation` and `fl_reduce_no_impr`):
///
/// 1. the loss rose in at most ρ·length of the interval's steps, or
/// 2. the step was not halved at the previous checkpoint and the best loss has not improved
///    since then.
///
/// `loss_steps[m]` is the loss after iteration m. As in the reference, the first step of the
/// first interval compares the first iterate's loss with `loss_steps[-1]` — Python wraps that
/// to the last, not yet written, entry, which is still 0 — not with the loss at the start.
fn halve_step_at_checkpoint(
    loss_steps: &[Vec<f32>],
    i: usize,
    length: usize,
    rho: f32,
    best_loss: &[f32],
    best_loss_last_check: &[f32],
    reduced_last_check: &[bool],
) -> Vec<bool> {
    let iterations = loss_steps.len();
    let threshold = length as f64 * f64::from(rho);
    (0..best_loss.len())
        .map(|p| {
            let rises = (0..length)
                .filter(|&c| {
                    let before = (i + iterations - c - 1) % iterations;
                    loss_steps[i - c][p] > loss_steps[before][p]
                })
                .count();
            let oscillating = rises as f64 <= threshold;
            let stalled = !reduced_last_check[p] && best_loss_last_check[p] >= best_loss[p];
            oscillating || stalled
        })
        .collect()
}

/// Per point, t/‖t‖∞ (+1e−12 as the reference's `normalize`) with t ~ U(−1, 1) elementwise.
fn random_direction(dims: [usize; 4], rng: &mut StdRng, device: &Device) -> Tensor<4> {
    let [n, c, h, w] = dims;
    let per_point = c * h * w;
    let mut values: Vec<f32> = (0..n * per_point)
        .map(|_| 2.0 * rng.r#gen::<f32>() - 1.0)
        .collect();
    if per_point > 0 {
        for row in values.chunks_mut(per_point) {
            let norm = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for v in row.iter_mut() {
                *v /= norm + 1e-12;
            }
        }
    }
    images(values, n, c, h, w, device)
}

/// One value per point, broadcast to an image batch.
fn per_sample_scalars(values: &[f32], dims: [usize; 4], device: &Device) -> Tensor<4> {
    let n = values.len();
    Tensor::<4>::from_data(TensorData::new(values.to_vec(), [n, 1, 1, 1]), device).expand(dims)
}

/// Rows of `base` replaced by those of `other` where `mask` is set.
fn replace_rows(base: Tensor<4>, mask: &[bool], other: &Tensor<4>) -> Tensor<4> {
    if !mask.iter().any(|&m| m) {
        return base;
    }
    let mask = sample_mask(mask, base.dims(), &base.device());
    base.mask_where(mask, other.clone())
}

/// Per point, whether every entry of its gradient is exactly 0 (the reference's
/// `check_zero_gradients`: the sum of absolute values is 0).
fn zero_rows(gradient: &Tensor<4>) -> Vec<bool> {
    let n = gradient.dims()[0];
    let sums = gradient.clone().abs().flatten::<2>(1, 3).sum_dim(1);
    let sums = to_vec(sums);
    debug_assert_eq!(sums.len(), n);
    sums.iter().map(|&s| s == 0.0).collect()
}

/// What the runs found so far for the whole batch (the bookkeeping of `perturb`).
struct Results {
    fooled: Vec<bool>,
    /// Rows of fooled points: their misclassifying point.
    fooling: Tensor<4>,
    /// Rows of points not fooled: their highest-loss point over all runs so far.
    best: Tensor<4>,
    best_loss: Vec<f32>,
    attacked: Vec<bool>,
    zero_gradient_at_start: Vec<bool>,
}

impl Results {
    /// Points the model already misclassifies start fooled, at the natural image.
    fn new(batch: &Batch) -> Results {
        let n = batch.len();
        Results {
            fooled: batch
                .clean_predictions
                .iter()
                .zip(&batch.labels)
                .map(|(p, y)| p != y)
                .collect(),
            fooling: batch.natural.clone(),
            best: batch.natural.clone(),
            best_loss: vec![f32::NEG_INFINITY; n],
            attacked: vec![false; n],
            zero_gradient_at_start: vec![false; n],
        }
    }

    /// The points still to attack.
    fn active(&self) -> Vec<usize> {
        (0..self.fooled.len())
            .filter(|&p| !self.fooled[p])
            .collect()
    }

    /// Takes in a run on the points `active`.
    fn absorb(&mut self, active: &[usize], run: RunResult) {
        for (j, &p) in active.iter().enumerate() {
            if !self.attacked[p] {
                self.attacked[p] = true;
                self.zero_gradient_at_start[p] = run.zero_gradient_at_start[j];
            }
        }
        self.fooling = write_rows(self.fooling.clone(), active, &run.fooling, &run.fooled);
        let better: Vec<bool> = active
            .iter()
            .enumerate()
            .map(|(j, &p)| !run.fooled[j] && run.best_loss[j] > self.best_loss[p])
            .collect();
        self.best = write_rows(self.best.clone(), active, &run.best, &better);
        for (j, &p) in active.iter().enumerate() {
            if better[j] {
                self.best_loss[p] = run.best_loss[j];
            }
            self.fooled[p] |= run.fooled[j];
        }
    }

    fn finish(self) -> ApgdReport {
        let adversarial = replace_rows(self.best, &self.fooled, &self.fooling);
        ApgdReport {
            outcome: AttackOutcome {
                adversarial,
                fooled: self.fooled,
            },
            zero_gradient_at_start: self.zero_gradient_at_start,
        }
    }
}

/// `full` with row `positions[j]` replaced by row j of `rows` wherever `take[j]` is set.
fn write_rows(full: Tensor<4>, positions: &[usize], rows: &Tensor<4>, take: &[bool]) -> Tensor<4> {
    if !take.iter().any(|&t| t) {
        return full;
    }
    let n = full.dims()[0];
    let mut source: Vec<usize> = (0..n).collect();
    for (j, &p) in positions.iter().enumerate() {
        if take[j] {
            source[p] = n + j;
        }
    }
    let device = full.device();
    Tensor::cat(vec![full, rows.clone()], 0).select(0, row_indices(&source, &device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_intervals_shrink_by_three_down_to_six() {
        let lengths: Vec<usize> = schedule(100).iter().map(|c| c.length).collect();
        assert_eq!(lengths, [22, 19, 16, 13, 10, 7, 6, 6]);
        assert!(schedule(0).is_empty());
        // n_iter_2 = max(int(0.22), 1) = 1: a checkpoint after the only iteration.
        assert_eq!(schedule(1), [Checkpoint { end: 1, length: 1 }]);
    }

    fn steps(rows: &[&[f32]]) -> Vec<Vec<f32>> {
        rows.iter().map(|r| r.to_vec()).collect()
    }

    #[test]
    fn step_halves_when_the_loss_rose_in_at_most_rho_of_the_steps() {
        // One point, 8 iterations, checkpoint after iteration index 7 closing 4 steps.
        // Steps 4..8 compare 5>4? 6>5? 5>6? 7>5?: 3 rises; 3 ≤ 0.75·4 = 3 → halve.
        let loss = steps(&[&[1.], &[2.], &[3.], &[4.], &[5.], &[6.], &[5.], &[7.]]);
        let halve = |rho| halve_step_at_checkpoint(&loss, 7, 4, rho, &[7.], &[0.], &[true]);
        assert_eq!(halve(0.75), [true]);
        // With ρ = 0.7, 3 > 2.8 rises: the step stays.
        assert_eq!(halve(0.7), [false]);
    }

    #[test]
    fn step_halves_when_not_halved_before_and_the_best_loss_stalled() {
        // 4 rises of 4 steps: no oscillation.
        let loss = steps(&[&[0.], &[0.], &[0.], &[0.], &[1.], &[2.], &[3.], &[4.]]);
        let decide = |last_best: f32, reduced_last: bool| {
            halve_step_at_checkpoint(&loss, 7, 4, 0.75, &[4.], &[last_best], &[reduced_last])[0]
        };
        assert!(!decide(3.0, false), "the best loss improved");
        assert!(
            decide(4.0, false),
            "not halved last time and no improvement"
        );
        assert!(!decide(4.0, true), "halved last time: condition 2 is off");
    }

    #[test]
    fn the_first_interval_compares_its_first_loss_with_zero_as_the_reference() {
        // 4 iterations, first checkpoint after 2 (length 2). loss_steps[-1] wraps to the unset
        // last entry (0): the first step counts as a rise iff its loss is above 0.
        let positive = steps(&[&[0.5], &[0.4], &[0.], &[0.]]);
        let negative = steps(&[&[-0.5], &[-0.6], &[0.], &[0.]]);
        let halve = |loss: &[Vec<f32>], rho| {
            halve_step_at_checkpoint(loss, 1, 2, rho, &[0.], &[0.], &[true])[0]
        };
        // 1 rise of 2 vs 0 rises of 2, with ρ = 0.25 (threshold 0.5).
        assert!(!halve(&positive, 0.25));
        assert!(halve(&negative, 0.25));
    }
}
