//! FAB-T in L∞: the targeted Fast Adaptive Boundary attack (Croce & Hein 2020, "Minimally
//! distorted adversarial examples with a fast adaptive boundary attack"), the third component
//! of standard AutoAttack.
//!
//! FAB looks for the smallest perturbation that changes the decision. At each step it
//! linearises the margin f_t − f_y between a target class t and the true class y, projects
//! both the current iterate and the original image onto the resulting hyperplane (L∞-minimally,
//! inside [0, 1]), and moves to a convex combination of the two projections, extrapolated by η.
//! When the iterate is adversarial it records it (if it is the smallest so far) and steps back
//! towards the original image by the factor β.
//!
//! Everything here mirrors fra31/auto-attack: [`fab_targeted`] is `FABAttack_PT.perturb` with
//! `targeted=True` and `norm='Linf'` (`fab_base.py`), each run is `attack_single_run` with
//! `is_targeted=True`, and [`project_linf_box`] is `projection_linf` (`fab_projections.py`).
//! Deliberate differences are listed on the public functions.

use super::dlr::{pick, require_classes};
use super::inputs::{check_label_count, check_labels_in_range, other_classes_by_logit};
use super::{AttackOutcome, Classifier};
use crate::error::AttackError;
use crate::tensor_util::{images, labels as label_tensor, predictions, to_vec};
use burn::prelude::*;
use burn::tensor::Int;
use rand::Rng;
use rand::rngs::StdRng;
use rayon::prelude::*;

/// FAB-T's settings. The reference's names are in brackets.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FabConfig {
    /// L∞ radius of the threat model (`eps`): only adversarial points this close count, and
    /// restarts start within half of it.
    pub epsilon: f32,
    /// Iterations of one run (`n_iter`).
    pub iterations: usize,
    /// Runs per target class on the points not yet fooled (`n_restarts`); every run after the
    /// first starts from a random point at L∞ distance ε/2.
    pub restarts: usize,
    /// How many target classes are tried (`n_target_classes`): ranks 2 ..= this + 1 of the
    /// clean logits.
    pub target_classes: usize,
    /// Largest weight of the projection of the original image in a step (`alpha_max`).
    pub alpha_max: f32,
    /// Extrapolation (overshoot) factor of a step, ≥ 1 (`eta`).
    pub eta: f32,
    /// Backward step towards the original image after an adversarial iterate, in (0, 1]
    /// (`beta`).
    pub beta: f32,
}

impl FabConfig {
    /// The configuration of standard AutoAttack's FAB-T: 100 iterations, 1 restart, 9 target
    /// classes, α_max 0.1, η 1.05, β 0.9 (`AutoAttack.set_version('standard')` and the
    /// `FABAttack` defaults).
    pub fn standard(epsilon: f32) -> Self {
        FabConfig {
            epsilon,
            iterations: 100,
            restarts: 1,
            target_classes: 9,
            alpha_max: 0.1,
            eta: 1.05,
            beta: 0.9,
        }
    }

    fn validate(&self) -> Result<(), AttackError> {
        let invalid = |message: String| Err(AttackError::Invalid(message));
        if !self.epsilon.is_finite() || self.epsilon < 0.0 {
            return invalid(format!("FAB needs a finite ε ≥ 0, got {}", self.epsilon));
        }
        if !(0.0..=1.0).contains(&self.alpha_max) {
            return invalid(format!(
                "FAB's α_max is a convex-combination weight in [0, 1], got {}",
                self.alpha_max
            ));
        }
        if !self.eta.is_finite() || self.eta < 1.0 {
            return invalid(format!(
                "FAB's η is an overshoot factor, finite and ≥ 1, got {}",
                self.eta
            ));
        }
        if !(self.beta > 0.0 && self.beta <= 1.0) {
            return invalid(format!(
                "FAB's β is a backward-step factor in (0, 1], got {}",
                self.beta
            ));
        }
        Ok(())
    }
}

/// The 1e−8 under which the reference does not let a projection's length fall when it weighs
/// the two projections of a step.
const SMALLEST_STEP: f64 = 1e-8;

/// FAB-T (`FABAttack_PT.perturb` with `targeted=True`, L∞): for target rank k = 2 ..=
/// target_classes + 1 (the k-th most likely class on the clean input), `restarts` runs on the
/// points not yet fooled. A run keeps the smallest adversarial iterate it finds; a point counts
/// as fooled when that iterate is misclassified (as any wrong class, checked by a fresh forward
/// pass) and at most ε from the input, as in the reference.
///
/// Returned points are always inside the ε-ball ∩ [0, 1]: the fooling point for fooled inputs,
/// the natural image for the others and for inputs the model already misclassifies (those are
/// not attacked and count as fooled). The first run per target starts at the input itself, so
/// with one restart (the standard setting) the attack uses no randomness at all; later restarts
/// draw their start from `rng`.
///
/// Needs at least 2 classes. Deviations from the reference: with fewer than target_classes + 1
/// classes every other class is tried once (the reference would index out of range); the
/// ranking of targets leaves out the true class, which changes nothing for attacked points
/// except under an exact tie for the top clean logit; the projection computes in f64.
pub fn fab_targeted(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    labels: &[i64],
    config: &FabConfig,
    rng: &mut StdRng,
) -> Result<AttackOutcome, AttackError> {
    config.validate()?;
    let natural = natural.clone().without_autodiff();
    let n = natural.dims()[0];
    check_label_count(labels, n)?;
    if n == 0 {
        return Ok(AttackOutcome {
            adversarial: natural,
            fooled: Vec::new(),
        });
    }
    let batch = Batch::prepare(classifier, natural, labels)?;
    let ranking = other_classes_by_logit(&batch.clean_logits, batch.classes, &batch.labels);
    let last_rank = (config.target_classes + 1).min(batch.classes);
    let mut fooled = batch.misclassified_at_start();
    let mut adversarial = batch.pixels.clone();
    for rank in 2..=last_rank {
        for restart in 0..config.restarts {
            let active: Vec<usize> = (0..n).filter(|&p| !fooled[p]).collect();
            if active.is_empty() {
                break;
            }
            let run = Run {
                natural: batch.rows(&active),
                labels: active.iter().map(|&p| batch.labels[p]).collect(),
                targets: active.iter().map(|&p| ranking[p][rank - 2]).collect(),
                shape: batch.shape,
                device: batch.device.clone(),
            };
            let start = run.start(restart > 0, config.epsilon, rng);
            let candidates = run.smallest_adversarial(classifier, start, config);
            let accepted = run.accept(classifier, &candidates, config.epsilon);
            let size = batch.pixels_per_image();
            for (j, &p) in active.iter().enumerate() {
                if accepted[j] {
                    fooled[p] = true;
                    adversarial[p * size..(p + 1) * size]
                        .copy_from_slice(&candidates[j * size..(j + 1) * size]);
                }
            }
        }
    }
    let [_, c, h, w] = batch.shape;
    Ok(AttackOutcome {
        adversarial: images(adversarial, n, c, h, w, &batch.device),
        fooled,
    })
}

/// The step δ of smallest L∞ norm that takes `point` onto the hyperplane {z : w·z = b} while
/// keeping `point` + δ inside the box [0, 1] (`projection_linf` of the reference, for one row).
///
/// When the hyperplane does not meet the box, δ moves every coordinate with w_i ≠ 0 to the
/// edge of the box that gets closest to it (the reference does the same). Coordinates with
/// w_i = 0 never move. `point` is expected inside [0, 1]. Computes in f64.
pub fn project_linf_box(point: &[f32], w: &[f32], b: f32) -> Vec<f32> {
    step_to_hyperplane(point, w, f64::from(b))
}

/// [`project_linf_box`] with the offset in f64: FAB builds it as w·x − f(x), and rounding it
/// to f32 would lose the small margins near the boundary.
///
/// With a budget λ, each coordinate moves by min(λ, room_i) in the direction that brings w·z
/// towards b, where room_i is its distance to that edge of the box; this closes the gap
/// |w·x − b| by R(λ) = Σ_i |w_i| min(λ, room_i), piecewise linear and increasing until every
/// coordinate hits the box. The answer is the smallest λ with R(λ) = gap, found on the
/// segment between consecutive rooms in ascending order (the reference finds the same segment
/// by bisection, a GPU-friendly equivalent of this scan).
fn step_to_hyperplane(point: &[f32], w: &[f32], b: f64) -> Vec<f32> {
    assert_eq!(point.len(), w.len(), "one weight per coordinate");
    let value: f64 = point
        .iter()
        .zip(w)
        .map(|(&x, &wi)| f64::from(x) * f64::from(wi))
        .sum();
    // The reference orients the plane so the point lies on its non-negative side (w·x ≥ b
    // keeps the sign, as its `>= 0`), then lowers w·z.
    let orientation = if value - b >= 0.0 { 1.0 } else { -1.0 };
    let gap = orientation * (value - b);
    // Per moving coordinate: its direction (+1 towards 1, −1 towards 0), room and |w_i|.
    let moves: Vec<(usize, f64, f64, f64)> = point
        .iter()
        .zip(w)
        .enumerate()
        .filter(|&(_, (_, &wi))| wi != 0.0)
        .map(|(i, (&x, &wi))| {
            let x = f64::from(x);
            if orientation * f64::from(wi) < 0.0 {
                (i, 1.0, 1.0 - x, f64::from(wi).abs())
            } else {
                (i, -1.0, x, f64::from(wi).abs())
            }
        })
        .collect();
    let reachable: f64 = moves.iter().map(|&(_, _, room, wi)| wi * room).sum();
    let mut step = vec![0.0f32; point.len()];
    // `gap >= reachable` is the reference's "not c_l and not c2": the whole box lies on one
    // side (or touches the plane only at its corner), so go to that corner.
    let budget = if gap >= reachable {
        f64::INFINITY
    } else {
        smallest_budget(&moves, gap)
    };
    for &(i, direction, room, _) in &moves {
        step[i] = (direction * budget.min(room)) as f32;
    }
    step
}

/// The smallest λ ≥ 0 with Σ_i |w_i| min(λ, room_i) = gap, for gap below the sum at λ = ∞.
fn smallest_budget(moves: &[(usize, f64, f64, f64)], gap: f64) -> f64 {
    // A stable sort: equal rooms stay in coordinate order, which the sums below depend on.
    let mut by_room: Vec<(f64, f64)> = moves.iter().map(|&(_, _, room, wi)| (room, wi)).collect();
    by_room.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Before the k-th smallest room: the first k coordinates are at their edge (closing
    // `saturated`), the rest move by λ each (closing λ·`free`).
    let mut saturated = 0.0;
    let mut free: f64 = by_room.iter().map(|&(_, wi)| wi).sum();
    for &(room, wi) in &by_room {
        if free > 0.0 && saturated + free * room >= gap {
            return ((gap - saturated) / free).max(0.0);
        }
        saturated += wi * room;
        free -= wi;
    }
    // Only float rounding gets here (gap < the total by assumption): every coordinate at its
    // edge is the nearest answer.
    f64::INFINITY
}

/// The inputs, checked, with what the clean forward pass says about them.
struct Batch {
    device: Device,
    shape: [usize; 4],
    /// The natural images, row-major per image.
    pixels: Vec<f32>,
    labels: Vec<i64>,
    classes: usize,
    /// `[n × classes]`, row-major.
    clean_logits: Vec<f32>,
    clean_predictions: Vec<i64>,
}

impl Batch {
    fn prepare(
        classifier: &impl Classifier,
        natural: Tensor<4>,
        labels: &[i64],
    ) -> Result<Batch, AttackError> {
        let logits = classifier.logits(natural.clone()).without_autodiff();
        let classes = logits.dims()[1];
        require_classes("FAB-T", 2, classes)?;
        check_labels_in_range(labels, classes)?;
        Ok(Batch {
            device: natural.device(),
            shape: natural.dims(),
            pixels: to_vec(natural),
            labels: labels.to_vec(),
            classes,
            clean_predictions: predictions(logits.clone()),
            clean_logits: to_vec(logits),
        })
    }

    fn pixels_per_image(&self) -> usize {
        let [_, c, h, w] = self.shape;
        c * h * w
    }

    /// Points the model already gets wrong: fooled without an attack.
    fn misclassified_at_start(&self) -> Vec<bool> {
        self.clean_predictions
            .iter()
            .zip(&self.labels)
            .map(|(p, y)| p != y)
            .collect()
    }

    /// The natural images of the given points, concatenated.
    fn rows(&self, points: &[usize]) -> Vec<f32> {
        let size = self.pixels_per_image();
        points
            .iter()
            .flat_map(|&p| self.pixels[p * size..(p + 1) * size].iter().copied())
            .collect()
    }
}

/// One run of FAB-T on the points not yet fooled, each with its own target class.
struct Run {
    /// The natural images of the run's points (`im2`, flattened `x0`), row-major.
    natural: Vec<f32>,
    labels: Vec<i64>,
    targets: Vec<i64>,
    /// `[m, c, h, w]` with m the number of the run's points.
    shape: [usize; 4],
    device: Device,
}

impl Run {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn size(&self) -> usize {
        let [_, c, h, w] = self.shape;
        c * h * w
    }

    fn tensor(&self, values: Vec<f32>) -> Tensor<4> {
        let [_, c, h, w] = self.shape;
        images(values, self.len(), c, h, w, &self.device)
    }

    /// The natural image, or for a restart x + (ε/2)·t/‖t‖∞ with t ~ U(−1, 1) per pixel,
    /// clipped to [0, 1] (the reference's `use_rand_start`, where min(res2, ε) is still ε).
    fn start(&self, random: bool, epsilon: f32, rng: &mut StdRng) -> Vec<f32> {
        let mut start = self.natural.clone();
        if !random {
            return start;
        }
        for row in start.chunks_mut(self.size().max(1)) {
            let t: Vec<f32> = row.iter().map(|_| 2.0 * rng.r#gen::<f32>() - 1.0).collect();
            let norm = t.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if norm == 0.0 {
                continue;
            }
            for (x, t) in row.iter_mut().zip(&t) {
                *x = (*x + 0.5 * epsilon * t / norm).clamp(0.0, 1.0);
            }
        }
        start
    }

    /// The iterations of `attack_single_run`: per point, the adversarial iterate of smallest
    /// L∞ distance to its natural image, or the natural image where no iterate was adversarial.
    fn smallest_adversarial(
        &self,
        classifier: &impl Classifier,
        start: Vec<f32>,
        config: &FabConfig,
    ) -> Vec<f32> {
        let size = self.size();
        let label_ids = label_tensor(&self.labels, &self.device);
        let target_ids = label_tensor(&self.targets, &self.device);
        let mut x = start;
        let mut best = self.natural.clone();
        let mut best_distance = vec![f32::INFINITY; self.len()];
        for _ in 0..config.iterations {
            let (margin, gradient) =
                margin_gradient(classifier, self.tensor(x.clone()), &label_ids, &target_ids);
            // Each point's step is its own (the same values in any order): in parallel. (Images
            // of no pixels have no step to take; chunks must not be empty.)
            let chunk = size.max(1);
            x.par_chunks_mut(chunk)
                .zip(self.natural.par_chunks(chunk))
                .zip(gradient.par_chunks(chunk))
                .zip(&margin)
                .for_each(|(((x, x0), gradient), &margin)| {
                    fab_step(x, x0, gradient, margin, config)
                });
            let predicted = predictions(classifier.logits(self.tensor(x.clone())));
            for i in 0..self.len() {
                if predicted[i] == self.labels[i] {
                    continue;
                }
                let rows = i * size..(i + 1) * size;
                let distance = linf(&x[rows.clone()], &self.natural[rows.clone()]);
                if distance < best_distance[i] {
                    best_distance[i] = distance;
                    best[rows.clone()].copy_from_slice(&x[rows.clone()]);
                }
                // Back towards the natural image, to look for a closer crossing.
                for (xi, &x0) in x[rows.clone()].iter_mut().zip(&self.natural[rows]) {
                    *xi = x0 + (*xi - x0) * config.beta;
                }
            }
        }
        best
    }

    /// Which candidates fool the model within ε (`perturb`'s `acc_curr`): misclassified by a
    /// fresh forward pass and at most ε from the natural image.
    fn accept(&self, classifier: &impl Classifier, candidates: &[f32], epsilon: f32) -> Vec<bool> {
        let size = self.size();
        let predicted = predictions(classifier.logits(self.tensor(candidates.to_vec())));
        (0..self.len())
            .map(|i| {
                let rows = i * size..(i + 1) * size;
                predicted[i] != self.labels[i]
                    && linf(&candidates[rows.clone()], &self.natural[rows]) <= epsilon
            })
            .collect()
    }
}

/// One FAB step for one point, in place: project the iterate `x` and the natural image `x0`
/// onto the linearised boundary {z : f(x) + ∇f(x)·(z − x) = 0} of f = f_t − f_y, and move to
/// ((x + η·d₁)(1 − α) + (x0 + η·d₂)·α) clipped to [0, 1], with α = min(‖d₁‖ / (‖d₁‖ + ‖d₂‖),
/// α_max), the norms at least 1e−8.
fn fab_step(x: &mut [f32], x0: &[f32], gradient: &[f32], margin: f32, config: &FabConfig) {
    // The plane w·z = b with w = ∇f(x) and b = w·x − f(x).
    let b = x
        .iter()
        .zip(gradient)
        .map(|(&xi, &wi)| f64::from(xi) * f64::from(wi))
        .sum::<f64>()
        - f64::from(margin);
    let d1 = step_to_hyperplane(x, gradient, b);
    let d2 = step_to_hyperplane(x0, gradient, b);
    let norm =
        |d: &[f32]| f64::from(d.iter().fold(0.0f32, |m, v| m.max(v.abs()))).max(SMALLEST_STEP);
    let (a1, a2) = (norm(&d1), norm(&d2));
    let alpha = (a1 / (a1 + a2)).clamp(0.0, f64::from(config.alpha_max)) as f32;
    let eta = config.eta;
    for (((xi, &x0i), &d1i), &d2i) in x.iter_mut().zip(x0).zip(&d1).zip(&d2) {
        let moved = (*xi + eta * d1i) * (1.0 - alpha) + (x0i + eta * d2i) * alpha;
        *xi = moved.clamp(0.0, 1.0);
    }
}

/// f_t − f_y at `points` and its gradient with respect to the points (one backward pass of the
/// summed margins, as `get_diff_logits_grads_batch_targeted`), both on the host. A model that
/// cuts the input out of its graph has, for the attack, a zero gradient.
fn margin_gradient(
    classifier: &impl Classifier,
    points: Tensor<4>,
    labels: &Tensor<1, Int>,
    targets: &Tensor<1, Int>,
) -> (Vec<f32>, Vec<f32>) {
    let leaf = points.clone().without_autodiff().autodiff().require_grad();
    let logits = classifier.logits(leaf.clone());
    let margin = pick(&logits, targets.clone()) - pick(&logits, labels.clone());
    let grads = margin.clone().sum().backward();
    let gradient = match leaf.grad(&grads) {
        Some(gradient) => gradient.without_autodiff(),
        None => points.zeros_like(),
    };
    (to_vec(margin.detach().without_autodiff()), to_vec(gradient))
}

/// max_i |a_i − b_i|.
fn linf(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_found_on_the_right_segment() {
        // Rooms 0.1, 0.5 with weights 1, 1: R(λ) = 2λ up to 0.1, then 0.1 + λ.
        let moves = [(0, 1.0, 0.1, 1.0), (1, 1.0, 0.5, 1.0)];
        assert!((smallest_budget(&moves, 0.1) - 0.05).abs() < 1e-12);
        assert!((smallest_budget(&moves, 0.2) - 0.1).abs() < 1e-12);
        assert!((smallest_budget(&moves, 0.4) - 0.3).abs() < 1e-12);
        assert_eq!(smallest_budget(&moves, 0.0), 0.0);
    }

    /// Equal rooms are taken in coordinate order (the sort is stable): the sum of their
    /// weights, and so the budget, depends on it (1e16 + 1 rounds back to 1e16, 2 + 1e16 does not).
    #[test]
    fn equal_rooms_keep_their_coordinate_order() {
        let big_first = [(0, 1.0, 0.5, 1e16), (1, 1.0, 0.5, 1.0), (2, 1.0, 0.5, 1.0)];
        assert_eq!(smallest_budget(&big_first, 1.0), 1.0 / 1e16);
        let big_last = [(0, 1.0, 0.5, 1.0), (1, 1.0, 0.5, 1.0), (2, 1.0, 0.5, 1e16)];
        assert_eq!(smallest_budget(&big_last, 1.0), 1.0 / (1e16 + 2.0));
    }
}
