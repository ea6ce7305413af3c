//! APGD (Croce & Hein 2020): the checkpoint schedule and the DLR losses against the reference's
//! numbers, the threat model, known answers on linear classifiers, the zero-gradient flag on a
//! masked model, restarts and reproducibility.

use crate::common::*;

use burn::prelude::*;
use burn::tensor::{Int, TensorData};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rslad_tui::attack::{
    self, ApgdConfig, ApgdLoss, Classifier, apgd, apgd_targeted, checkpoints, dlr_loss,
    targeted_dlr_loss,
};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::error::AttackError;
use rslad_tui::tensor_util::to_vec;
use rslad_tui::zoo::{Arch, Model, ModelSpec};

const PIXELS: usize = 28 * 28;

// ---------------------------------------------------------------------------------------------
// Checkpoint schedule

#[test]
fn checkpoints_for_100_iterations_are_the_reference_ones() {
    assert_eq!(checkpoints(100), [22, 41, 57, 70, 80, 87, 93, 99]);
}

#[test]
fn checkpoints_increase_strictly_and_stay_within_the_run() {
    // For N = 10 the reference has n_iter_2 = max(int(2.2), 1) = 2, n_iter_min = 1,
    // size_decr = 1: checks after 2, then every iteration, the last one on iteration 10.
    assert_eq!(checkpoints(10), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for n in 1..=300 {
        let list = checkpoints(n);
        assert!(!list.is_empty(), "{n} iterations have no checkpoint");
        assert!(list.windows(2).all(|w| w[0] < w[1]), "{n}: {list:?}");
        assert!(list.iter().all(|&c| (1..=n).contains(&c)), "{n}: {list:?}");
        // The first interval is ⌊0.22 N⌋ (at least 1).
        assert_eq!(list[0], ((0.22 * n as f64) as usize).max(1), "{n}");
    }
    assert!(checkpoints(0).is_empty());
}

// ---------------------------------------------------------------------------------------------
// DLR losses

fn logits(rows: &[&[f32]]) -> Tensor<2> {
    let classes = rows[0].len();
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(
        TensorData::new(flat, [rows.len(), classes]),
        &compute_device(),
    )
}

fn ints(values: &[i64]) -> Tensor<1, Int> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len()]),
        &compute_device(),
    )
}

fn close(actual: &[f32], expected: &[f32], tolerance: f32) {
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            (a - e).abs() <= tolerance,
            "got {actual:?}, expected {expected:?}"
        );
    }
}

const ROWS: [&[f32]; 5] = [
    &[3.0, 1.0, 0.0, -1.0],
    &[1.0, 3.0, 0.0, 2.0],
    &[2.0, 2.0, 1.0, 0.0],
    &[1.0, 3.0, 3.0, 0.0],
    &[4.0, 2.0, 2.0, 2.0],
];
const LABELS: [i64; 5] = [0, 0, 1, 0, 0];
const TARGETS: [i64; 5] = [1, 3, 0, 2, 3];

#[test]
fn dlr_loss_matches_hand_computation() {
    // −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3):
    // [3, 1, 0, −1], y 0: −(3 − 1) / (3 − 0) = −2/3
    // [1, 3, 0, 2], y 0:  −(1 − 3) / (3 − 1) = 1           (sorted 3, 2, 1, 0)
    // [2, 2, 1, 0], y 1:  −(2 − 2) / (2 − 1) = 0           (tie at the top with the label)
    // [1, 3, 3, 0], y 0:  −(1 − 3) / (3 − 1) = 1           (sorted 3, 3, 1, 0: π3 = 1)
    // [4, 2, 2, 2], y 0:  −(4 − 2) / (4 − 2) = −1          (three-way tie below the top)
    let loss = dlr_loss(logits(&ROWS), ints(&LABELS)).unwrap();
    close(&to_vec(loss), &[-2.0 / 3.0, 1.0, 0.0, 1.0, -1.0], 1e-6);
}

#[test]
fn targeted_dlr_loss_matches_hand_computation() {
    // −(z_y − z_t) / (z_π1 − ½(z_π3 + z_π4)):
    // [3, 1, 0, −1], y 0, t 1: −(3 − 1) / (3 − ½(0 − 1)) = −2 / 3.5 = −0.5714286
    // [1, 3, 0, 2],  y 0, t 3: −(1 − 2) / (3 − ½(1 + 0)) =  1 / 2.5 =  0.4
    // [2, 2, 1, 0],  y 1, t 0: −(2 − 2) / (2 − ½(1 + 0)) =  0
    // [1, 3, 3, 0],  y 0, t 2: −(1 − 3) / (3 − ½(1 + 0)) =  2 / 2.5 =  0.8
    // [4, 2, 2, 2],  y 0, t 3: −(4 − 2) / (4 − ½(2 + 2)) = −2 / 2   = −1
    let loss = targeted_dlr_loss(logits(&ROWS), ints(&LABELS), ints(&TARGETS)).unwrap();
    close(&to_vec(loss), &[-2.0 / 3.5, 0.4, 0.0, 0.8, -1.0], 1e-6);
}

#[test]
fn dlr_losses_ignore_shifts_and_scales_of_the_logits() {
    let scaled: Vec<Vec<f32>> = ROWS
        .iter()
        .map(|r| r.iter().map(|z| 7.5 * z - 40.0).collect())
        .collect();
    let scaled: Vec<&[f32]> = scaled.iter().map(|r| r.as_slice()).collect();
    let plain = to_vec(dlr_loss(logits(&ROWS), ints(&LABELS)).unwrap());
    let moved = to_vec(dlr_loss(logits(&scaled), ints(&LABELS)).unwrap());
    close(&moved, &plain, 1e-5);
    let plain = to_vec(targeted_dlr_loss(logits(&ROWS), ints(&LABELS), ints(&TARGETS)).unwrap());
    let moved = to_vec(targeted_dlr_loss(logits(&scaled), ints(&LABELS), ints(&TARGETS)).unwrap());
    close(&moved, &plain, 1e-5);
}

#[test]
fn dlr_gradient_reaches_the_ranked_logits() {
    // Row [3, 1, 0, −1], y 0: L = −(z0 − z1) / (z0 − z2), so
    // ∂L/∂z0 = −(z1 − z2)/(z0 − z2)² = −1/9, ∂L/∂z1 = 1/(z0 − z2) = 1/3,
    // ∂L/∂z2 = −(z0 − z1)/(z0 − z2)² = −2/9, ∂L/∂z3 = 0.
    let leaf = logits(&ROWS[..1]).autodiff().require_grad();
    let grads = dlr_loss(leaf.clone(), ints(&[0])).unwrap().sum().backward();
    let gradient = to_vec(leaf.grad(&grads).unwrap().without_autodiff());
    close(&gradient, &[-1.0 / 9.0, 1.0 / 3.0, -2.0 / 9.0, 0.0], 1e-6);
}

#[test]
fn dlr_losses_refuse_too_few_classes() {
    let two = logits(&[&[1.0, 2.0]]);
    assert_eq!(
        dlr_loss(two, ints(&[0])).err(),
        Some(AttackError::TooFewClasses {
            attack: "DLR",
            needed: 3,
            classes: 2
        })
    );
    let three = logits(&[&[1.0, 2.0, 3.0]]);
    assert_eq!(
        targeted_dlr_loss(three, ints(&[0]), ints(&[1])).err(),
        Some(AttackError::TooFewClasses {
            attack: "targeted DLR",
            needed: 4,
            classes: 3
        })
    );
    // Three classes are enough for the untargeted loss.
    assert!(dlr_loss(logits(&[&[1.0, 2.0, 3.0]]), ints(&[0])).is_ok());
    // A label outside the classes is an error, not an out-of-bounds read.
    assert!(matches!(
        dlr_loss(logits(&ROWS), ints(&[0, 0, 1, 0, 4])),
        Err(AttackError::Invalid(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Classifiers for the attack tests

fn random_images(n: usize, seed: u64) -> Tensor<4> {
    let mut rng = StdRng::seed_from_u64(seed);
    // Include exact 0s and 1s: the [0, 1] clipping must hold at the edges too.
    let values: Vec<f32> = (0..n * PIXELS)
        .map(|_| match rng.gen_range(0..4) {
            0 => 0.0,
            1 => 1.0,
            _ => rng.gen_range(0.0..1.0),
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [n, 1, 28, 28]), &compute_device())
}

/// logits = x·W + b on flattened 28×28 images: the worst case in the ε-ball ∩ [0, 1] is known
/// in closed form.
struct Linear {
    classes: usize,
    /// `[784 × classes]`, row-major.
    weights: Vec<f32>,
    bias: Vec<f32>,
    weight_tensor: Tensor<2>,
    bias_tensor: Tensor<2>,
}

impl Linear {
    fn new(classes: usize, seed: u64) -> Linear {
        let mut rng = StdRng::seed_from_u64(seed);
        let weights: Vec<f32> = (0..PIXELS * classes)
            .map(|_| rng.gen_range(-0.1..0.1))
            .collect();
        let bias: Vec<f32> = (0..classes).map(|_| rng.gen_range(-0.5..0.5)).collect();
        let device = compute_device();
        Linear {
            classes,
            weight_tensor: Tensor::from_data(
                TensorData::new(weights.clone(), [PIXELS, classes]),
                &device,
            ),
            bias_tensor: Tensor::from_data(TensorData::new(bias.clone(), [1, classes]), &device),
            weights,
            bias,
        }
    }

    fn w(&self, pixel: usize, class: usize) -> f64 {
        f64::from(self.weights[pixel * self.classes + class])
    }

    /// max over the ε-ball ∩ [0, 1] around x of max_{j≠y} z_j − z_y: for each j the linear
    /// form (b_j − b_y) + Σ_p (W_pj − W_py) x′_p is maximised pixel by pixel at an end of
    /// [max(0, x_p − ε), min(1, x_p + ε)]. Positive iff the point can be misclassified.
    fn worst_margin(&self, x: &[f32], label: usize, epsilon: f32) -> f64 {
        (0..self.classes)
            .filter(|&j| j != label)
            .map(|j| {
                let bias = f64::from(self.bias[j]) - f64::from(self.bias[label]);
                let pixels: f64 = x
                    .iter()
                    .enumerate()
                    .map(|(p, &xp)| {
                        let d = self.w(p, j) - self.w(p, label);
                        let lo = f64::from((xp - epsilon).max(0.0));
                        let hi = f64::from((xp + epsilon).min(1.0));
                        (d * lo).max(d * hi)
                    })
                    .sum();
                bias + pixels
            })
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// The class the model predicts for one flattened image.
    fn predict(&self, x: &[f32]) -> usize {
        let z: Vec<f64> = (0..self.classes)
            .map(|j| {
                f64::from(self.bias[j])
                    + x.iter()
                        .enumerate()
                        .map(|(p, &xp)| self.w(p, j) * f64::from(xp))
                        .sum::<f64>()
            })
            .collect();
        (0..self.classes)
            .max_by(|&a, &b| z[a].total_cmp(&z[b]))
            .unwrap()
    }
}

impl Classifier for Linear {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        images.flatten::<2>(1, 3).matmul(self.weight_tensor.clone()) + self.bias_tensor.clone()
    }
}

/// A gradient-masked model: the input is rounded to the nearest 1/2 (zero gradient almost
/// everywhere) and the logits are blown up by 1e4 (saturated softmax).
struct Masked(Linear);

impl Classifier for Masked {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        let rounded = images.mul_scalar(2.0).round().div_scalar(2.0);
        self.0.logits(rounded).mul_scalar(1e4)
    }
}

/// A radius at which some points of `x` can be misclassified and some cannot, every one of
/// them at least `gap` away from the decision (so float rounding cannot decide the answer).
fn split_epsilon(model: &Linear, x: &[f32], labels: &[i64], gap: f64) -> (f32, Vec<bool>) {
    let n = labels.len();
    for step in 1..=300 {
        let epsilon = step as f32 * 0.0005;
        let margins: Vec<f64> = (0..n)
            .map(|i| {
                model.worst_margin(
                    &x[i * PIXELS..(i + 1) * PIXELS],
                    labels[i] as usize,
                    epsilon,
                )
            })
            .collect();
        let breakable: Vec<bool> = margins.iter().map(|&m| m > 0.0).collect();
        let count = breakable.iter().filter(|&&b| b).count();
        if 3 * count >= n && 3 * count <= 2 * n && margins.iter().all(|m| m.abs() >= gap) {
            return (epsilon, breakable);
        }
    }
    panic!("no radius splits the points with a gap of {gap}");
}

// ---------------------------------------------------------------------------------------------
// Attacks

fn small_config(epsilon: f32, loss: ApgdLoss) -> ApgdConfig {
    ApgdConfig {
        iterations: 6,
        restarts: 2,
        ..ApgdConfig::standard(epsilon, loss)
    }
}

#[test]
fn apgd_and_apgd_t_stay_in_the_epsilon_ball_and_the_unit_box() {
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 3, &autodiff_device()).unwrap();
    let view = attack::eval_view(&model);
    let x = random_images(4, 11);
    // Labels the model gets right, so every point is attacked.
    let y = clean_predictions(&view, &x);
    let mut rng = StdRng::seed_from_u64(5);
    // 25 iterations: checkpoints after 5, 9, 12, 14, 15, …, 25, so steps are halved and
    // iterates sent back to the best point many times; 2 restarts; step 2ε ≫ ε at the start.
    let config = |epsilon, loss| ApgdConfig {
        iterations: 25,
        ..small_config(epsilon, loss)
    };
    for epsilon in [0.0, 0.05, 0.3] {
        let runs = [
            apgd(
                &view,
                &x,
                &y,
                &config(epsilon, ApgdLoss::CrossEntropy),
                &mut rng,
            ),
            apgd(&view, &x, &y, &config(epsilon, ApgdLoss::Dlr), &mut rng),
            apgd_targeted(
                &view,
                &x,
                &y,
                &config(epsilon, ApgdLoss::TargetedDlr),
                &mut rng,
            ),
        ];
        for run in runs {
            let report = run.unwrap();
            let outcome = &report.outcome;
            assert_in_threat_model(&outcome.adversarial, &x, epsilon);
            // `fooled` is exactly "the returned point is misclassified".
            let wrong: Vec<bool> = clean_predictions(&view, &outcome.adversarial)
                .iter()
                .zip(&y)
                .map(|(p, l)| p != l)
                .collect();
            assert_eq!(outcome.fooled, wrong, "ε = {epsilon}");
            if epsilon == 0.0 {
                assert!(outcome.fooled.iter().all(|&f| !f), "fooled with ε = 0");
            }
            assert!(report.zero_gradient_at_start.iter().all(|&z| !z));
        }
    }
}

#[test]
fn on_a_two_class_linear_model_apgd_ce_fools_exactly_the_breakable_points() {
    let model = Linear::new(2, 31);
    let n = 12;
    let x = random_images(n, 32);
    let pixels = to_vec(x.clone());
    let mut y = clean_predictions(&model, &x);
    // One point the model already gets wrong: fooled without an attack, returned unchanged.
    y[0] = 1 - y[0];
    let (epsilon, breakable) = split_epsilon(&model, &pixels, &y, 0.05);
    let mut rng = StdRng::seed_from_u64(7);
    let config = ApgdConfig::standard(epsilon, ApgdLoss::CrossEntropy);
    let report = apgd(&model, &x, &y, &config, &mut rng).unwrap();
    assert_eq!(report.outcome.fooled, breakable, "ε = {epsilon}");
    assert_in_threat_model(&report.outcome.adversarial, &x, epsilon);

    // With two classes sign(∇CE) = sign(W_other − W_y) everywhere, so the first step of 2ε
    // lands on the maximiser of the margin, and every returned point (the misclassifying one
    // for broken points, the best-loss one for the others) is that corner of the box.
    let adversarial = to_vec(report.outcome.adversarial.clone());
    for i in 0..n {
        let range = i * PIXELS..(i + 1) * PIXELS;
        let (x_i, adv_i) = (&pixels[range.clone()], &adversarial[range]);
        if i == 0 {
            assert_eq!(adv_i, x_i, "a point misclassified already is not attacked");
            continue;
        }
        let (label, other) = (y[i] as usize, 1 - y[i] as usize);
        for p in 0..PIXELS {
            let d = model.w(p, other) - model.w(p, label);
            let corner = (x_i[p] + epsilon * d.signum() as f32).clamp(0.0, 1.0);
            assert!(
                (adv_i[p] - corner).abs() < 1e-5,
                "point {i}, pixel {p}: {} vs {corner}",
                adv_i[p]
            );
        }
        assert_eq!(model.predict(adv_i) != y[i] as usize, breakable[i]);
    }
}

#[test]
fn on_a_five_class_linear_model_apgd_ce_and_apgd_t_each_fool_exactly_the_breakable_points() {
    // The closed form is a maximum over the wrong classes; with every point well away from
    // the boundary, APGD-CE and APGD-T (each on its own, on all points) must both find exactly
    // the breakable points.
    let model = Linear::new(5, 41);
    let n = 12;
    let x = random_images(n, 42);
    let pixels = to_vec(x.clone());
    let y = clean_predictions(&model, &x);
    let (epsilon, breakable) = split_epsilon(&model, &pixels, &y, 0.1);
    let mut rng = StdRng::seed_from_u64(8);
    let ce = apgd(
        &model,
        &x,
        &y,
        &ApgdConfig::standard(epsilon, ApgdLoss::CrossEntropy),
        &mut rng,
    )
    .unwrap();
    // target_classes 9 with 5 classes: all 4 other classes are tried.
    let targeted = apgd_targeted(
        &model,
        &x,
        &y,
        &ApgdConfig::standard(epsilon, ApgdLoss::TargetedDlr),
        &mut rng,
    )
    .unwrap();
    for (name, report) in [("APGD-CE", &ce), ("APGD-T", &targeted)] {
        let outcome = &report.outcome;
        assert_in_threat_model(&outcome.adversarial, &x, epsilon);
        assert_eq!(outcome.fooled, breakable, "{name}, ε = {epsilon}");
        // The returned points of fooled samples really are misclassified, and only those.
        let adversarial = to_vec(outcome.adversarial.clone());
        for i in 0..n {
            let predicted = model.predict(&adversarial[i * PIXELS..(i + 1) * PIXELS]);
            assert_eq!(
                predicted != y[i] as usize,
                outcome.fooled[i],
                "{name}, point {i}"
            );
        }
    }
}

#[test]
fn a_masked_model_is_flagged_for_zero_gradients() {
    let masked = Masked(Linear::new(4, 51));
    let x = random_images(5, 52);
    let y = clean_predictions(&masked, &x);
    let mut rng = StdRng::seed_from_u64(9);
    for loss in [ApgdLoss::CrossEntropy, ApgdLoss::Dlr] {
        let report = apgd(&masked, &x, &y, &small_config(0.1, loss), &mut rng).unwrap();
        // Every point is attacked (the labels are the clean predictions), and rounding cuts
        // the gradient at every random start to exactly zero.
        assert_eq!(report.zero_gradient_at_start, [true; 5], "{loss:?}");
    }
    let report = apgd_targeted(
        &masked,
        &x,
        &y,
        &small_config(0.1, ApgdLoss::TargetedDlr),
        &mut rng,
    )
    .unwrap();
    assert_eq!(report.zero_gradient_at_start, [true; 5]);

    // The same linear model without the mask has a gradient.
    let plain = Linear::new(4, 51);
    let y = clean_predictions(&plain, &x);
    let config = small_config(0.1, ApgdLoss::CrossEntropy);
    let report = apgd(&plain, &x, &y, &config, &mut rng).unwrap();
    assert_eq!(report.zero_gradient_at_start, [false; 5]);
}

#[test]
fn apgd_refuses_what_it_cannot_do() {
    let x = random_images(2, 61);
    let mut rng = StdRng::seed_from_u64(1);
    let two = Linear::new(2, 62);
    let y2 = clean_predictions(&two, &x);
    assert_eq!(
        apgd(&two, &x, &y2, &small_config(0.1, ApgdLoss::Dlr), &mut rng).err(),
        Some(AttackError::TooFewClasses {
            attack: "DLR",
            needed: 3,
            classes: 2
        })
    );
    let three = Linear::new(3, 63);
    let y3 = clean_predictions(&three, &x);
    assert_eq!(
        apgd_targeted(
            &three,
            &x,
            &y3,
            &small_config(0.1, ApgdLoss::TargetedDlr),
            &mut rng
        )
        .err(),
        Some(AttackError::TooFewClasses {
            attack: "targeted DLR",
            needed: 4,
            classes: 3
        })
    );
    // Three classes suffice for untargeted DLR.
    assert!(apgd(&three, &x, &y3, &small_config(0.1, ApgdLoss::Dlr), &mut rng).is_ok());
    let invalid = |result: Result<attack::ApgdReport, AttackError>| {
        matches!(result, Err(AttackError::Invalid(_)))
    };
    let targeted_config = small_config(0.1, ApgdLoss::TargetedDlr);
    assert!(invalid(apgd(&three, &x, &y3, &targeted_config, &mut rng)));
    let ce_config = small_config(0.1, ApgdLoss::CrossEntropy);
    assert!(invalid(apgd_targeted(
        &three, &x, &y3, &ce_config, &mut rng
    )));
    assert!(invalid(apgd(&three, &x, &[0], &ce_config, &mut rng)));
    assert!(invalid(apgd(&three, &x, &[0, 3], &ce_config, &mut rng)));
    let negative = small_config(-0.1, ApgdLoss::CrossEntropy);
    assert!(invalid(apgd(&three, &x, &y3, &negative, &mut rng)));
}

#[test]
fn more_restarts_only_add_fooled_points() {
    // The first run draws the same start from the same seed, so a longer run of restarts
    // fools a superset of the points; and since each restart starts afresh (a restart from
    // the same start would repeat the same deterministic run), it fools strictly more here.
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 4, &autodiff_device()).unwrap();
    let view = attack::eval_view(&model);
    let n = 16;
    let x = random_images(n, 71);
    let y = clean_predictions(&view, &x);
    let fooled = |restarts| {
        // One iteration, so the random start matters.
        let config = ApgdConfig {
            restarts,
            iterations: 1,
            ..ApgdConfig::standard(0.03, ApgdLoss::CrossEntropy)
        };
        let mut rng = StdRng::seed_from_u64(12);
        apgd(&view, &x, &y, &config, &mut rng)
            .unwrap()
            .outcome
            .fooled
    };
    let none = fooled(0);
    assert!(none.iter().all(|&f| !f), "no restart, no attack");
    let one = fooled(1);
    let three = fooled(3);
    for i in 0..n {
        assert!(
            !one[i] || three[i],
            "point {i} was fooled by 1 restart but not by 3"
        );
    }
    let count = |v: &[bool]| v.iter().filter(|&&f| f).count();
    assert!(count(&three) > count(&one), "restarts added nothing");
    assert!(
        count(&three) < n,
        "nothing left unfooled: the test says nothing"
    );
}

#[test]
fn apgd_is_reproducible_from_its_seed() {
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 8, &autodiff_device()).unwrap();
    let view = attack::eval_view(&model);
    let x = random_images(4, 81);
    let y = clean_predictions(&view, &x);
    let run = |seed, loss| {
        let mut rng = StdRng::seed_from_u64(seed);
        let config = ApgdConfig {
            iterations: 5,
            target_classes: 2,
            ..ApgdConfig::standard(0.1, loss)
        };
        let report = match loss {
            ApgdLoss::TargetedDlr => apgd_targeted(&view, &x, &y, &config, &mut rng),
            _ => apgd(&view, &x, &y, &config, &mut rng),
        }
        .unwrap();
        (to_vec(report.outcome.adversarial), report.outcome.fooled)
    };
    for loss in [ApgdLoss::CrossEntropy, ApgdLoss::TargetedDlr] {
        assert_eq!(run(3, loss), run(3, loss), "{loss:?}");
        assert_ne!(run(3, loss).0, run(4, loss).0, "{loss:?}");
    }
}

#[test]
fn an_empty_batch_needs_no_attack() {
    let model = Linear::new(4, 91);
    let x = random_images(0, 92);
    let mut rng = StdRng::seed_from_u64(1);
    let config = ApgdConfig::standard(0.1, ApgdLoss::CrossEntropy);
    let report = apgd(&model, &x, &[], &config, &mut rng).unwrap();
    assert!(report.outcome.fooled.is_empty());
    assert!(report.zero_gradient_at_start.is_empty());
}
