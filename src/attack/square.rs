//! Square Attack in L∞ (Andriushchenko, Croce, Flammarion & Hein 2020, "Square Attack: a
//! query-efficient black-box adversarial attack via random search"), the score-based
//! component of AutoAttack.
//!
//! Random search on the margin z_y − max_{j≠y} z_j: start at vertical stripes x ± ε (one sign
//! per column and channel), then at every iteration push one random square window to the
//! opposite corner of the ε-ball (one sign per channel) and keep the change only when the
//! margin drops. The window side shrinks on a fixed schedule ([`p_selection`]). The model is
//! only queried for logits, never differentiated, so gradient masking does not stop it: Square
//! succeeding where the gradient attacks failed is one of AutoAttack's warning signs.
//!
//! Mirrors fra31/auto-attack, `autoattack/square.py`: [`square`] is `SquareAttack.perturb`
//! running `attack_single_run` (L∞ branch, `loss='margin'`, untargeted, `resc_schedule=True`)
//! on the points not yet fooled. Deliberate differences are listed on [`square`].

use super::dlr::require_classes;
use super::inputs::{check_label_count, check_labels_in_range};
use super::{AttackOutcome, Classifier};
use crate::error::AttackError;
use crate::tensor_util::{images, predictions, to_vec};
use burn::prelude::*;
use rand::Rng;
use rand::rngs::StdRng;

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SquareConfig {
    /// L∞ radius of the threat model.
    pub epsilon: f32,
    /// Iterations of one run, one model query per active point each (`n_queries`); the
    /// stripe start costs one more. 0 means no attack.
    pub queries: usize,
    /// Fraction of the image the first square covers (`p_init`), in (0, 1].
    pub p_init: f32,
    /// Runs from a fresh stripe start on the points still not fooled (`n_restarts`).
    pub restarts: usize,
}

impl SquareConfig {
    /// The configuration of standard AutoAttack: 5000 queries, p_init 0.8, 1 restart.
    pub fn standard(epsilon: f32) -> Self {
        SquareConfig {
            epsilon,
            queries: 5000,
            p_init: 0.8,
            restarts: 1,
        }
    }

    fn validate(&self) -> Result<(), AttackError> {
        if !self.epsilon.is_finite() || self.epsilon < 0.0 {
            return Err(AttackError::Invalid(format!(
                "Square needs a finite ε ≥ 0, got {}",
                self.epsilon
            )));
        }
        if !(self.p_init > 0.0 && self.p_init <= 1.0) {
            return Err(AttackError::Invalid(format!(
                "Square's p_init is a fraction of the image in (0, 1], got {}",
                self.p_init
            )));
        }
        Ok(())
    }
}

/// Iteration indices (on the reference's 10 000-iteration scale) after which p halves.
const HALVINGS: [usize; 9] = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];

/// The fraction of the image the square covers at `iteration` (0-based) of a run of `queries`
/// iterations (`SquareAttack.p_selection` with `resc_schedule=True`).
///
/// The iteration is first rescaled to a 10 000-query run as `int(it / n_queries * 10000)`
/// (the same f64 operations, truncated), then p = p_init / 2^k where k counts the breakpoints
/// 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 strictly below the rescaled index. With
/// `queries == 0` (no iterations) this is p_init.
pub fn p_selection(p_init: f32, iteration: usize, queries: usize) -> f32 {
    if queries == 0 {
        return p_init;
    }
    let rescaled = (iteration as f64 / queries as f64 * 10000.0) as usize;
    let halvings = HALVINGS.iter().filter(|&&b| rescaled > b).count();
    p_init / (1u32 << halvings) as f32
}

/// Square Attack, L∞, margin loss (`SquareAttack.perturb`).
///
/// Points the model already misclassifies are not attacked (fooled, returned unchanged). Each
/// restart attacks the points not yet fooled from a fresh stripe start, and a point counts as
/// fooled when the model's arg-max on the run's final point differs from its label (the
/// reference's re-check in `perturb`). The model sees only the active points of each
/// iteration, without autodiff.
///
/// Faithful details worth knowing: within one iteration every active point gets the same
/// window and the same per-channel signs (`new_deltas` is `[c, h, w]` in the reference); a
/// candidate is kept iff its margin is below the best so far (`loss < loss_min` or
/// `margin <= 0`, which for the margin loss on a not yet fooled point is the same); window
/// offsets are drawn from 0..h−s (`random_int`'s exclusive bound, so the bottom/right-most
/// position is never drawn); the side is max(round(√(p·h·w)), 1) with Python's round-half-even.
/// The re-draw of a window that would change nothing, found in the original Square Attack
/// repository, is not in AutoAttack's version and not here.
///
/// Deviations from the reference, each deliberate:
/// - `queries == 0` (or `restarts == 0`) attacks nothing; the reference would still query the
///   stripe start.
/// - A point never fooled gets the lowest-margin point found over all restarts; the reference
///   returns the natural image (as in this crate's APGD, which returns its highest-loss point).
/// - The side is capped at min(h, w), which only matters for non-square images, where the
///   reference's offsets would be drawn from a negative range.
/// - Randomness comes from `rng` (uniform signs and offsets, as the reference's distributions,
///   not its torch stream).
pub fn square(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    labels: &[i64],
    config: &SquareConfig,
    rng: &mut StdRng,
) -> Result<AttackOutcome, AttackError> {
    config.validate()?;
    let natural = natural.clone().without_autodiff();
    let shape = Shape::of(&natural);
    check_label_count(labels, shape.n)?;
    if shape.n == 0 {
        return Ok(AttackOutcome {
            adversarial: natural,
            fooled: Vec::new(),
        });
    }
    let device = natural.device();
    let x = to_vec(natural);
    let query = Query {
        classifier,
        shape,
        device: &device,
    };
    let clean = query.evaluate(&x, labels)?;
    require_classes("Square", 2, clean.classes)?;

    let mut results = Results::new(x.clone(), shape.point_len(), clean.misclassified);
    if config.queries > 0 {
        for _ in 0..config.restarts {
            let active = results.active();
            if active.is_empty() {
                break;
            }
            let x_active = gather_rows(&x, &active, shape.point_len());
            let y_active: Vec<i64> = active.iter().map(|&p| labels[p]).collect();
            let best = single_run(&query, &x_active, &y_active, config, rng)?;
            // The reference's `output_curr = self.predict(adv_curr)`.
            let check = query.evaluate(&best, &y_active)?;
            results.absorb(&active, &best, &check);
        }
    }
    Ok(AttackOutcome {
        adversarial: images(results.points, shape.n, shape.c, shape.h, shape.w, &device),
        fooled: results.fooled,
    })
}

/// The dimensions of the batch being attacked.
#[derive(Clone, Copy, Debug)]
struct Shape {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
}

impl Shape {
    fn of(x: &Tensor<4>) -> Shape {
        let [n, c, h, w] = x.dims();
        Shape { n, c, h, w }
    }

    fn point_len(&self) -> usize {
        self.c * self.h * self.w
    }

    fn index(&self, channel: usize, row: usize, column: usize) -> usize {
        (channel * self.h + row) * self.w + column
    }
}

/// Black-box access to the classifier: host values in, margins and predictions out.
struct Query<'a, C: Classifier> {
    classifier: &'a C,
    shape: Shape,
    device: &'a Device,
}

/// What one query of a batch of points returns.
struct Evaluation {
    classes: usize,
    /// z_y − max_{j≠y} z_j per point (the reference's `margin_and_loss`).
    margins: Vec<f32>,
    /// arg-max ≠ label per point.
    misclassified: Vec<bool>,
}

impl<C: Classifier> Query<'_, C> {
    /// The model on `points` (`labels.len()` flattened images), no autodiff graph.
    fn evaluate(&self, points: &[f32], labels: &[i64]) -> Result<Evaluation, AttackError> {
        let m = labels.len();
        let Shape { c, h, w, .. } = self.shape;
        let batch = images(points.to_vec(), m, c, h, w, self.device).without_autodiff();
        let logits = self.classifier.logits(batch).without_autodiff();
        let classes = logits.dims()[1];
        check_labels_in_range(labels, classes)?;
        let predicted = predictions(logits.clone());
        let values = to_vec(logits);
        let margins = if classes == 0 {
            vec![f32::NAN; m]
        } else {
            values
                .chunks(classes)
                .zip(labels)
                .map(|(row, &y)| margin(row, y as usize))
                .collect()
        };
        Ok(Evaluation {
            classes,
            margins,
            misclassified: predicted.iter().zip(labels).map(|(p, y)| p != y).collect(),
        })
    }
}

/// z_y − max_{j≠y} z_j (+∞ with a single class, which is refused before any attack).
fn margin(logits: &[f32], label: usize) -> f32 {
    let other = logits
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != label)
        .fold(f32::NEG_INFINITY, |m, (_, &z)| m.max(z));
    logits[label] - other
}

/// One run on `x` (`attack_single_run`, L∞ branch): the best point found for each input.
fn single_run<C: Classifier>(
    query: &Query<'_, C>,
    x: &[f32],
    labels: &[i64],
    config: &SquareConfig,
    rng: &mut StdRng,
) -> Result<Vec<f32>, AttackError> {
    let shape = query.shape;
    let len = shape.point_len();
    let epsilon = config.epsilon;
    let mut best = stripes(x, shape, epsilon, rng);
    let mut best_margin = query.evaluate(&best, labels)?.margins;

    for iteration in 0..config.queries {
        // Points with margin ≤ 0 are fooled (and NaN margins are never attacked, as in the
        // reference's `margin_min > 0` filter).
        let active: Vec<usize> = (0..labels.len())
            .filter(|&j| best_margin[j] > 0.0)
            .collect();
        if active.is_empty() {
            break;
        }
        let p = p_selection(config.p_init, iteration, config.queries);
        let window = Window::draw(p, shape, rng);

        let mut candidates = gather_rows(&best, &active, len);
        for (k, &j) in active.iter().enumerate() {
            let natural = &x[j * len..(j + 1) * len];
            window.apply(&mut candidates[k * len..(k + 1) * len], natural, epsilon);
        }
        let active_labels: Vec<i64> = active.iter().map(|&j| labels[j]).collect();
        let margins = query.evaluate(&candidates, &active_labels)?.margins;

        for (k, &j) in active.iter().enumerate() {
            if margins[k] < best_margin[j] {
                best_margin[j] = margins[k];
                best[j * len..(j + 1) * len].copy_from_slice(&candidates[k * len..(k + 1) * len]);
            }
        }
    }
    Ok(best)
}

/// The start: clamp(x + ε·σ, 0, 1) with one random sign σ per point, channel and column
/// (`random_choice([n, c, 1, w])`).
fn stripes(x: &[f32], shape: Shape, epsilon: f32, rng: &mut StdRng) -> Vec<f32> {
    let len = shape.point_len();
    let mut start = x.to_vec();
    if len == 0 {
        return start;
    }
    for point in start.chunks_mut(len) {
        for channel in 0..shape.c {
            for column in 0..shape.w {
                let shift = random_sign(rng) * epsilon;
                for row in 0..shape.h {
                    let v = &mut point[shape.index(channel, row, column)];
                    *v = (*v + shift).clamp(0.0, 1.0);
                }
            }
        }
    }
    start
}

/// The square of one iteration, shared by every active point: its side, its top-left corner
/// and a sign per channel.
struct Window {
    shape: Shape,
    side: usize,
    top: usize,
    left: usize,
    signs: Vec<f32>,
}

impl Window {
    fn draw(p: f32, shape: Shape, rng: &mut StdRng) -> Window {
        let side = square_side(p, shape);
        let top = random_offset(shape.h - side, rng);
        let left = random_offset(shape.w - side, rng);
        let signs = (0..shape.c).map(|_| random_sign(rng)).collect();
        Window {
            shape,
            side,
            top,
            left,
            signs,
        }
    }

    /// `x_new = clamp(min(max(x_best + new_deltas, x − ε), x + ε), 0, 1)` inside the window
    /// (outside it `new_deltas` is 0 and x_best is already in the ε-ball ∩ [0, 1]).
    fn apply(&self, point: &mut [f32], natural: &[f32], epsilon: f32) {
        for (channel, &sign) in self.signs.iter().enumerate() {
            for row in self.top..self.top + self.side {
                for column in self.left..self.left + self.side {
                    let i = self.shape.index(channel, row, column);
                    let moved = point[i] + 2.0 * epsilon * sign;
                    point[i] = moved
                        .max(natural[i] - epsilon)
                        .min(natural[i] + epsilon)
                        .clamp(0.0, 1.0);
                }
            }
        }
    }
}

/// `max(int(round(sqrt(p * n_features / c))), 1)`, with Python's round-half-even, capped at
/// the image's shorter side.
fn square_side(p: f32, shape: Shape) -> usize {
    let features = shape.point_len() as f64;
    let channels = shape.c.max(1) as f64;
    let side = (f64::from(p) * features / channels)
        .sqrt()
        .round_ties_even() as usize;
    side.max(1).min(shape.h.min(shape.w))
}

/// `random_int(0, span)`: uniform on 0..span (0 when span is 0).
fn random_offset(span: usize, rng: &mut StdRng) -> usize {
    if span == 0 { 0 } else { rng.gen_range(0..span) }
}

/// ±1 with equal probability (`random_choice`).
fn random_sign(rng: &mut StdRng) -> f32 {
    if rng.r#gen::<bool>() { 1.0 } else { -1.0 }
}

/// The rows `indices` of a row-major array of rows of `len` values, concatenated.
fn gather_rows(values: &[f32], indices: &[usize], len: usize) -> Vec<f32> {
    let mut rows = Vec::with_capacity(indices.len() * len);
    for &i in indices {
        rows.extend_from_slice(&values[i * len..(i + 1) * len]);
    }
    rows
}

/// What the runs found so far for the whole batch (the bookkeeping of `perturb`).
struct Results {
    len: usize,
    /// Per point: its misclassifying point if fooled, else its lowest-margin point so far.
    points: Vec<f32>,
    fooled: Vec<bool>,
    best_margin: Vec<f32>,
}

impl Results {
    /// Points the model already misclassifies start fooled, at the natural image.
    fn new(natural: Vec<f32>, len: usize, misclassified: Vec<bool>) -> Results {
        let n = misclassified.len();
        Results {
            len,
            points: natural,
            fooled: misclassified,
            best_margin: vec![f32::INFINITY; n],
        }
    }

    fn active(&self) -> Vec<usize> {
        (0..self.fooled.len())
            .filter(|&p| !self.fooled[p])
            .collect()
    }

    /// Takes in a run's final points on `active` and the model's verdict on them.
    fn absorb(&mut self, active: &[usize], run: &[f32], check: &Evaluation) {
        let len = self.len;
        for (j, &p) in active.iter().enumerate() {
            let take = if check.misclassified[j] {
                self.fooled[p] = true;
                true
            } else if check.margins[j] < self.best_margin[p] {
                self.best_margin[p] = check.margins[j];
                true
            } else {
                false
            };
            if take {
                self.points[p * len..(p + 1) * len].copy_from_slice(&run[j * len..(j + 1) * len]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn mnist() -> Shape {
        Shape {
            n: 1,
            c: 1,
            h: 28,
            w: 28,
        }
    }

    #[test]
    fn square_sides_follow_the_schedule_on_mnist() {
        // max(int(round(sqrt(0.8 / 2^k · 784))), 1) for k = 0..=9, as Python computes them.
        let sides: Vec<usize> = (0..10)
            .map(|k| square_side(0.8 / (1u32 << k) as f32, mnist()))
            .collect();
        assert_eq!(sides, [25, 18, 13, 9, 6, 4, 3, 2, 2, 1]);
        // Colour: n_features / c is still h·w.
        let cifar = Shape {
            n: 1,
            c: 3,
            h: 32,
            w: 32,
        };
        assert_eq!(square_side(0.8, cifar), 29); // round(√819.2 = 28.62)
        // Non-square images: capped at the shorter side.
        let wide = Shape {
            n: 1,
            c: 1,
            h: 2,
            w: 50,
        };
        assert_eq!(square_side(0.8, wide), 2);
    }

    #[test]
    fn windows_stay_inside_the_image_and_never_take_the_last_offset() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = [false; 4];
        for _ in 0..200 {
            let window = Window::draw(0.8, mnist(), &mut rng);
            assert_eq!(window.side, 25);
            assert!(
                window.top < 3 && window.left < 3,
                "offsets 0..h−s, exclusive"
            );
            seen[window.top] = true;
        }
        assert_eq!(seen, [true, true, true, false]);
    }

    #[test]
    fn a_window_moves_to_the_opposite_corner_of_the_ball() {
        let shape = Shape {
            n: 1,
            c: 1,
            h: 2,
            w: 2,
        };
        let window = Window {
            shape,
            side: 1,
            top: 0,
            left: 1,
            signs: vec![1.0],
        };
        let natural = [0.5, 0.5, 0.95, 0.0];
        let mut point = [0.4, 0.4, 1.0, 0.0];
        window.apply(&mut point, &natural, 0.1);
        // Only pixel (0, 1) changes: 0.4 + 0.2 = 0.6 = x + ε.
        assert!((point[1] - 0.6).abs() < 1e-6);
        assert_eq!([point[0], point[2], point[3]], [0.4, 1.0, 0.0]);
        let mut edge = [0.4, 0.4, 1.0, 0.0];
        let window = Window { top: 1, ..window };
        window.apply(&mut edge, &natural, 0.1);
        // Pixel (1, 1) at 0: 0.2 clipped by x + ε = 0.1.
        assert!((edge[3] - 0.1).abs() < 1e-6);
    }
}
