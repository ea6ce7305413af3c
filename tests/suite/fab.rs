//! FAB-T (Croce & Hein 2020): the L∞ box-constrained projection on hand-computed cases and
//! against a brute-force search, the closed-form minimal distance on linear classifiers, the
//! threat model on a small CNN, untouched misclassified points, reproducibility and refusals.

use crate::common::*;

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rslad_tui::attack::{
    self, Classifier, FabConfig, fab_targeted, max_linf_distance, project_linf_box,
};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::error::AttackError;
use rslad_tui::tensor_util::to_vec;
use rslad_tui::zoo::{Arch, Model, ModelSpec};

// ---------------------------------------------------------------------------------------------
// The projection

fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32) {
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            (a - e).abs() <= tolerance,
            "got {actual:?}, expected {expected:?}"
        );
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

fn moved(point: &[f32], step: &[f32]) -> Vec<f32> {
    point.iter().zip(step).map(|(x, d)| x + d).collect()
}

#[test]
fn projection_inside_the_box_moves_every_weighted_coordinate_by_the_same_amount() {
    // x = (0.5, 0.5), w = (1, 2), b = 2: w·x = 1.5 must rise by 0.5; each coordinate moves up
    // by λ, 3λ = 0.5, λ = 1/6.
    let step = project_linf_box(&[0.5, 0.5], &[1.0, 2.0], 2.0);
    assert_close(&step, &[1.0 / 6.0, 1.0 / 6.0], 1e-6);
    // Mixed signs, and a coordinate with zero weight that must not move:
    // x = (0.2, 0.3, 0.6), w = (0, 2, −1), w·x = 0, b = −0.4: coordinate 1 goes down, 2 up,
    // 2λ + λ = 0.4, λ = 0.4/3.
    let step = project_linf_box(&[0.2, 0.3, 0.6], &[0.0, 2.0, -1.0], -0.4);
    assert_close(&step, &[0.0, -0.4 / 3.0, 0.4 / 3.0], 1e-6);
    // A point on the plane stays.
    let step = project_linf_box(&[0.2, 0.3, 0.6], &[0.0, 2.0, -1.0], 0.0);
    assert_close(&step, &[0.0, 0.0, 0.0], 0.0);
}

#[test]
fn projection_where_the_box_binds_spends_more_on_the_free_coordinates() {
    // x = (0.9, 0.5), w = (1, 1), b = 1.8: w·x = 1.4 must rise by 0.4. Without the box
    // λ = 0.2, but coordinate 0 has only 0.1 of room: 0.1 + λ = 0.4, λ = 0.3.
    let point = [0.9, 0.5];
    let step = project_linf_box(&point, &[1.0, 1.0], 1.8);
    assert_close(&step, &[0.1, 0.3], 1e-6);
    assert!((dot(&moved(&point, &step), &[1.0, 1.0]) - 1.8).abs() < 1e-6);
    // Second example: x = (0.2, 0.3, 0.6), w = (0, 2, −1), b = −0.95: coordinate 1 can fall
    // by 0.3 only, so 2·0.3 + λ = 0.95, λ = 0.35 (coordinate 2 still has 0.4 of room).
    let step = project_linf_box(&[0.2, 0.3, 0.6], &[0.0, 2.0, -1.0], -0.95);
    assert_close(&step, &[0.0, -0.3, 0.35], 1e-6);
}

#[test]
fn projection_onto_a_plane_beyond_the_box_goes_to_the_nearest_corner() {
    // x = (0.9, 0.5), w = (1, 1), b = 2.5: the box reaches w·z = 2 at most, at its corner (1, 1).
    let step = project_linf_box(&[0.9, 0.5], &[1.0, 1.0], 2.5);
    assert_close(&step, &[0.1, 0.5], 1e-6);
    // The plane touching the box only at the corner gives the same answer.
    let step = project_linf_box(&[0.9, 0.5], &[1.0, 1.0], 2.0);
    assert_close(&step, &[0.1, 0.5], 1e-6);
    // All-zero weights (a masked model): nothing can move.
    let step = project_linf_box(&[0.9, 0.5], &[0.0, 0.0], 1.0);
    assert_close(&step, &[0.0, 0.0], 0.0);
}

/// Σ_i |w_i| min(λ, room_i): how far a budget λ moves w·z towards the plane (see the doc of
/// `project_linf_box`), computed independently of the library.
fn closing(point: &[f32], w: &[f32], towards_larger: bool, lambda: f64) -> f64 {
    point
        .iter()
        .zip(w)
        .map(|(&x, &wi)| {
            let up = (wi > 0.0) == towards_larger;
            let room = if up { 1.0 - f64::from(x) } else { f64::from(x) };
            f64::from(wi).abs() * lambda.min(room)
        })
        .sum()
}

#[test]
fn projection_agrees_with_a_brute_force_search_for_the_smallest_budget() {
    let mut rng = StdRng::seed_from_u64(17);
    let mut binding = 0;
    for case in 0..200 {
        let dim = rng.gen_range(1..30);
        let point: Vec<f32> = (0..dim)
            .map(|_| match rng.gen_range(0..5) {
                0 => 0.0,
                1 => 1.0,
                _ => rng.r#gen::<f32>(),
            })
            .collect();
        let w: Vec<f32> = (0..dim)
            .map(|_| match rng.gen_range(0..6) {
                0 => 0.0,
                _ => rng.gen_range(-2.0..2.0),
            })
            .collect();
        let b = (dot(&point, &w) + rng.gen_range(-3.0..3.0)) as f32;
        let step = project_linf_box(&point, &w, b);
        let result = moved(&point, &step);
        assert!(
            result.iter().all(|v| (-1e-6..=1.0 + 1e-6).contains(v)),
            "case {case}: left the box"
        );
        assert!(
            step.iter().zip(&w).all(|(d, wi)| *wi != 0.0 || *d == 0.0),
            "case {case}: a zero-weight coordinate moved"
        );
        let value = dot(&point, &w);
        let towards_larger = f64::from(b) > value;
        let gap = (f64::from(b) - value).abs();
        let reachable = closing(&point, &w, towards_larger, f64::INFINITY);
        let norm = step.iter().fold(0.0f32, |m, d| m.max(d.abs()));
        if gap < reachable - 1e-6 {
            // The plane meets the box: land on it, with the smallest budget (bisection on the
            // increasing function λ ↦ closing(λ)).
            assert!(
                (dot(&result, &w) - f64::from(b)).abs() < 1e-4,
                "case {case}: missed the plane"
            );
            let (mut lo, mut hi) = (0.0, 1.0);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if closing(&point, &w, towards_larger, mid) >= gap {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            assert!(
                (f64::from(norm) - hi).abs() < 1e-5,
                "case {case}: ‖δ‖∞ = {norm}, smallest budget {hi}"
            );
            // Without the box every weighted coordinate would move by gap / ‖w‖₁.
            let unconstrained = gap / w.iter().map(|v| f64::from(v.abs())).sum::<f64>();
            if hi > unconstrained + 1e-4 {
                binding += 1;
            }
        } else if gap > reachable + 1e-6 {
            // Out of reach: every weighted coordinate at the edge that helps.
            for i in 0..dim {
                if w[i] != 0.0 {
                    let edge = if (w[i] > 0.0) == towards_larger {
                        1.0
                    } else {
                        0.0
                    };
                    assert!(
                        (result[i] - edge).abs() < 1e-6,
                        "case {case}, coordinate {i}"
                    );
                }
            }
        }
    }
    assert!(binding >= 20, "only {binding} cases where the box binds");
}

// ---------------------------------------------------------------------------------------------
// Classifiers

/// logits = x·W + b on flattened images of `side`×`side` pixels.
struct Linear {
    classes: usize,
    pixels: usize,
    /// `[pixels × classes]`, row-major.
    weights: Vec<f32>,
    bias: Vec<f32>,
    weight_tensor: Tensor<2>,
    bias_tensor: Tensor<2>,
}

impl Linear {
    fn new(weights: Vec<f32>, bias: Vec<f32>) -> Linear {
        let classes = bias.len();
        let pixels = weights.len() / classes;
        let device = compute_device();
        Linear {
            classes,
            pixels,
            weight_tensor: Tensor::from_data(
                TensorData::new(weights.clone(), [pixels, classes]),
                &device,
            ),
            bias_tensor: Tensor::from_data(TensorData::new(bias.clone(), [1, classes]), &device),
            weights,
            bias,
        }
    }

    fn random(classes: usize, pixels: usize, seed: u64) -> Linear {
        let mut rng = StdRng::seed_from_u64(seed);
        let weights = (0..pixels * classes)
            .map(|_| rng.gen_range(-0.1..0.1))
            .collect();
        let bias = (0..classes).map(|_| rng.gen_range(-0.5..0.5)).collect();
        Linear::new(weights, bias)
    }

    fn logit(&self, x: &[f32], class: usize) -> f64 {
        f64::from(self.bias[class])
            + x.iter()
                .enumerate()
                .map(|(p, &v)| f64::from(self.weights[p * self.classes + class]) * f64::from(v))
                .sum::<f64>()
    }

    /// The L∞ distance from x to the plane f_j = f_y, |f_y − f_j| / ‖w_y − w_j‖₁: the minimal
    /// distance to class j's side when the box does not bind.
    fn distance_to(&self, x: &[f32], label: usize, j: usize) -> f64 {
        let norm: f64 = (0..self.pixels)
            .map(|p| {
                let w = |c: usize| f64::from(self.weights[p * self.classes + c]);
                (w(label) - w(j)).abs()
            })
            .sum();
        (self.logit(x, label) - self.logit(x, j)).abs() / norm
    }
}

impl Classifier for Linear {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        images.flatten::<2>(1, 3).matmul(self.weight_tensor.clone()) + self.bias_tensor.clone()
    }
}

fn random_images(n: usize, side: usize, range: (f32, f32), seed: u64) -> Tensor<4> {
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..n * side * side)
        .map(|_| rng.gen_range(range.0..range.1))
        .collect();
    Tensor::from_data(
        TensorData::new(values, [n, 1, side, side]),
        &compute_device(),
    )
}

/// 28×28 images with exact 0s and 1s, so the [0, 1] clipping is tested at the edges too.
fn mnist_like(n: usize, seed: u64) -> Tensor<4> {
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..n * 784)
        .map(|_| match rng.gen_range(0..4) {
            0 => 0.0,
            1 => 1.0,
            _ => rng.gen_range(0.0..1.0),
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [n, 1, 28, 28]), &compute_device())
}

fn row_distances(a: &Tensor<4>, b: &Tensor<4>) -> Vec<f32> {
    let n = a.dims()[0];
    let (a, b) = (to_vec(a.clone()), to_vec(b.clone()));
    let size = a.len() / n.max(1);
    (0..n)
        .map(|i| (i * size..(i + 1) * size).fold(0.0f32, |m, k| m.max((a[k] - b[k]).abs())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Linear models: the minimal distance in closed form

/// A 3-class linear model on 8×8 images where class 2 is never close (bias −100), so for every
/// point the target of rank 2 is the other one of classes 0 and 1 and its boundary is the
/// nearest; pixels in [0.3, 0.7] keep the box from binding at the distances involved.
fn linear_setup() -> (Linear, Tensor<4>, Vec<i64>, Vec<f64>) {
    let mut model = Linear::random(3, 64, 21);
    model.bias[2] = -100.0;
    let model = Linear::new(model.weights, model.bias);
    let x = random_images(10, 8, (0.3, 0.7), 22);
    let y = clean_predictions(&model, &x);
    let pixels = to_vec(x.clone());
    let distances: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(i, &label)| {
            let row = &pixels[i * 64..(i + 1) * 64];
            let label = label as usize;
            assert!(label < 2, "class 2 cannot win");
            let to_other = model.distance_to(row, label, 1 - label);
            assert!(to_other < model.distance_to(row, label, 2));
            // The box cannot bind: even 1.1× the distance stays inside [0, 1].
            assert!(to_other * 1.1 < 0.3, "point {i}: {to_other}");
            to_other
        })
        .collect();
    (model, x, y, distances)
}

#[test]
fn on_a_linear_model_fab_t_finds_the_minimal_distance_within_a_few_percent() {
    let (model, x, y, distances) = linear_setup();
    let mut rng = StdRng::seed_from_u64(1);
    // ε far above every distance: the returned points are FAB's smallest adversarial ones.
    let config = FabConfig {
        iterations: 30,
        ..FabConfig::standard(0.3)
    };
    let outcome = fab_targeted(&model, &x, &y, &config, &mut rng).unwrap();
    assert_eq!(outcome.fooled, vec![true; y.len()]);
    assert_eq!(
        misclassified(&model, &outcome.adversarial, &y),
        outcome.fooled
    );
    let found = row_distances(&outcome.adversarial, &x);
    for (i, (&d, &minimal)) in found.iter().zip(&distances).enumerate() {
        let d = f64::from(d);
        // Nothing closer than the minimum can be misclassified; FAB gets within 3% of it.
        assert!(d >= minimal * (1.0 - 1e-4), "point {i}: {d} < {minimal}");
        assert!(d <= minimal * 1.03, "point {i}: {d} vs minimal {minimal}");
    }
}

#[test]
fn on_a_linear_model_fab_t_fools_exactly_the_points_closer_than_epsilon() {
    let (model, x, y, distances) = linear_setup();
    let mut sorted = distances.clone();
    sorted.sort_by(f64::total_cmp);
    // A radius between two well-separated distances: the points beyond it cannot be fooled at
    // all; those 3% or more inside it must be.
    let gap = sorted
        .windows(2)
        .enumerate()
        .filter(|(k, w)| *k >= 2 && *k + 2 < sorted.len() && w[1] > w[0] * 1.1)
        .map(|(_, w)| (w[0] * 1.04 + w[1] * 0.99) / 2.0)
        .next()
        .expect("two well-separated distances in the middle");
    let epsilon = gap as f32;
    let config = FabConfig {
        iterations: 30,
        ..FabConfig::standard(epsilon)
    };
    let mut rng = StdRng::seed_from_u64(2);
    let outcome = fab_targeted(&model, &x, &y, &config, &mut rng).unwrap();
    assert_in_threat_model(&outcome.adversarial, &x, epsilon);
    let expected: Vec<bool> = distances.iter().map(|&d| d < gap).collect();
    assert!(expected.iter().any(|&e| e) && expected.iter().any(|&e| !e));
    assert_eq!(
        outcome.fooled, expected,
        "ε = {epsilon}, distances {distances:?}"
    );
    assert_eq!(
        misclassified(&model, &outcome.adversarial, &y),
        outcome.fooled
    );
    // Unfooled points come back as their natural image.
    let found = row_distances(&outcome.adversarial, &x);
    for (i, &fooled) in outcome.fooled.iter().enumerate() {
        if !fooled {
            assert_eq!(found[i], 0.0, "point {i}");
        }
    }

    // Just below the smallest distance nothing can be fooled.
    let below = FabConfig {
        epsilon: (sorted[0] * 0.99) as f32,
        ..config
    };
    let outcome = fab_targeted(&model, &x, &y, &below, &mut rng).unwrap();
    assert_eq!(outcome.fooled, vec![false; y.len()]);
    assert_eq!(max_linf_distance(&outcome.adversarial, &x), 0.0);
}

#[test]
fn with_fewer_classes_than_targets_every_other_class_is_tried_once() {
    // Two classes: the only target is the other class; the standard 9 targets must not fail.
    let model = Linear::random(2, 64, 31);
    let x = random_images(6, 8, (0.3, 0.7), 32);
    let y = clean_predictions(&model, &x);
    let config = FabConfig {
        iterations: 20,
        ..FabConfig::standard(0.3)
    };
    let outcome = fab_targeted(&model, &x, &y, &config, &mut StdRng::seed_from_u64(3)).unwrap();
    let pixels = to_vec(x.clone());
    let found = row_distances(&outcome.adversarial, &x);
    for i in 0..y.len() {
        let minimal = model.distance_to(
            &pixels[i * 64..(i + 1) * 64],
            y[i] as usize,
            1 - y[i] as usize,
        );
        if minimal * 1.1 < 0.3 {
            assert!(outcome.fooled[i], "point {i} at distance {minimal}");
            let d = f64::from(found[i]);
            assert!(
                d >= minimal * (1.0 - 1e-4) && d <= minimal * 1.03,
                "point {i}"
            );
        }
    }
    assert!(outcome.fooled.iter().any(|&f| f));
}

// ---------------------------------------------------------------------------------------------
// A small CNN

fn micro_cnn(seed: u64) -> Model {
    let model = Model::build(
        ModelSpec::native(Arch::MicroCnn, 10),
        seed,
        &autodiff_device(),
    )
    .unwrap();
    attack::eval_view(&model)
}

fn small_config(epsilon: f32) -> FabConfig {
    FabConfig {
        iterations: 8,
        target_classes: 2,
        ..FabConfig::standard(epsilon)
    }
}

#[test]
fn fab_t_stays_in_the_epsilon_ball_and_the_unit_box() {
    let view = micro_cnn(3);
    let x = mnist_like(4, 11);
    let y = clean_predictions(&view, &x);
    let mut rng = StdRng::seed_from_u64(5);
    let mut fooled_any = false;
    for epsilon in [0.0, 0.02, 0.3] {
        let config = FabConfig {
            restarts: 2,
            ..small_config(epsilon)
        };
        let outcome = fab_targeted(&view, &x, &y, &config, &mut rng).unwrap();
        assert_in_threat_model(&outcome.adversarial, &x, epsilon);
        // `fooled` is exactly "the returned point is misclassified".
        assert_eq!(
            misclassified(&view, &outcome.adversarial, &y),
            outcome.fooled,
            "ε = {epsilon}"
        );
        if epsilon == 0.0 {
            assert!(outcome.fooled.iter().all(|&f| !f), "fooled with ε = 0");
        }
        fooled_any |= outcome.fooled.iter().any(|&f| f);
    }
    assert!(fooled_any, "FAB-T fooled nothing, even at ε = 0.3");
}

#[test]
fn points_already_misclassified_are_returned_unchanged() {
    let view = micro_cnn(4);
    let x = mnist_like(3, 12);
    let mut y = clean_predictions(&view, &x);
    y[1] = (y[1] + 1) % 10;
    let outcome = fab_targeted(
        &view,
        &x,
        &y,
        &small_config(0.3),
        &mut StdRng::seed_from_u64(6),
    )
    .unwrap();
    assert!(outcome.fooled[1]);
    assert_eq!(row_distances(&outcome.adversarial, &x)[1], 0.0);
}

#[test]
fn restarts_draw_random_starts_from_the_seed_and_only_add_fooled_points() {
    let view = micro_cnn(8);
    let x = mnist_like(16, 13);
    let y = clean_predictions(&view, &x);
    // One iteration against one target at ε = 0.03: the first run leaves a few points that a
    // random start within ε/2 can still fool.
    let run = |seed, restarts| {
        let config = FabConfig {
            restarts,
            iterations: 1,
            target_classes: 1,
            ..FabConfig::standard(0.03)
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let outcome = fab_targeted(&view, &x, &y, &config, &mut rng).unwrap();
        let next: u64 = rng.r#gen();
        (to_vec(outcome.adversarial), outcome.fooled, next)
    };
    let fresh = |seed| StdRng::seed_from_u64(seed).r#gen::<u64>();

    // One restart (the standard setting) starts every run at the input: no randomness, and
    // the generator is left untouched.
    let (one, fooled_one, next) = run(3, 1);
    assert_eq!(next, fresh(3));
    assert_eq!((one.clone(), fooled_one.clone()), {
        let (a, f, _) = run(4, 1);
        (a, f)
    });

    // More restarts: reproducible from the seed, different for another seed, and a superset
    // of the fooled points (the first run is the same run).
    let (three, fooled_three, next) = run(3, 3);
    assert_ne!(next, fresh(3), "restarts drew nothing");
    assert_eq!((three.clone(), fooled_three.clone()), {
        let (a, f, _) = run(3, 3);
        (a, f)
    });
    assert_ne!(three, run(4, 3).0);
    let count = |v: &[bool]| v.iter().filter(|&&f| f).count();
    for i in 0..y.len() {
        assert!(
            !fooled_one[i] || fooled_three[i],
            "point {i} lost by restarts"
        );
    }
    assert!(
        count(&fooled_three) > count(&fooled_one),
        "restarts added nothing"
    );
    assert!(
        count(&fooled_three) < y.len(),
        "nothing left unfooled: the test says nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration and refusals

#[test]
fn the_standard_configuration_is_autoattacks() {
    assert_eq!(
        FabConfig::standard(0.3),
        FabConfig {
            epsilon: 0.3,
            iterations: 100,
            restarts: 1,
            target_classes: 9,
            alpha_max: 0.1,
            eta: 1.05,
            beta: 0.9,
        }
    );
}

#[test]
fn fab_t_refuses_what_it_cannot_do() {
    let x = random_images(2, 8, (0.0, 1.0), 41);
    let mut rng = StdRng::seed_from_u64(1);
    let one = Linear::random(1, 64, 42);
    assert_eq!(
        fab_targeted(&one, &x, &[0, 0], &FabConfig::standard(0.1), &mut rng).err(),
        Some(AttackError::TooFewClasses {
            attack: "FAB-T",
            needed: 2,
            classes: 1
        })
    );
    let model = Linear::random(3, 64, 43);
    let y = clean_predictions(&model, &x);
    let invalid = |config: FabConfig, labels: &[i64], rng: &mut StdRng| {
        matches!(
            fab_targeted(&model, &x, labels, &config, rng),
            Err(AttackError::Invalid(_))
        )
    };
    let standard = FabConfig::standard(0.1);
    assert!(!invalid(standard, &y, &mut rng));
    for bad in [
        FabConfig {
            epsilon: -0.1,
            ..standard
        },
        FabConfig {
            epsilon: f32::NAN,
            ..standard
        },
        FabConfig {
            epsilon: f32::INFINITY,
            ..standard
        },
        FabConfig {
            alpha_max: 1.5,
            ..standard
        },
        FabConfig {
            alpha_max: -0.1,
            ..standard
        },
        FabConfig {
            eta: 0.9,
            ..standard
        },
        FabConfig {
            eta: f32::NAN,
            ..standard
        },
        FabConfig {
            beta: 0.0,
            ..standard
        },
        FabConfig {
            beta: 1.1,
            ..standard
        },
    ] {
        assert!(invalid(bad, &y, &mut rng), "{bad:?} was accepted");
    }
    assert!(invalid(standard, &[0], &mut rng), "too few labels");
    assert!(
        invalid(standard, &[0, 3], &mut rng),
        "label outside the classes"
    );
    assert!(invalid(standard, &[0, -1], &mut rng), "negative label");
}

#[test]
fn an_empty_batch_needs_no_attack() {
    let model = Linear::random(3, 64, 51);
    let x = random_images(0, 8, (0.0, 1.0), 52);
    let outcome = fab_targeted(
        &model,
        &x,
        &[],
        &FabConfig::standard(0.1),
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    assert!(outcome.fooled.is_empty());
    assert_eq!(outcome.adversarial.dims()[0], 0);
}
