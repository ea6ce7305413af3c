//! Square Attack (Andriushchenko et al. 2020, L∞): the p schedule against the reference's
//! breakpoints, the threat model, known answers on linear classifiers, a gradient-masked model
//! that only a score-based attack breaks, restarts, reproducibility and refusals.

use crate::common::*;

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rslad_tui::attack::{
    self, ApgdConfig, ApgdLoss, AttackOutcome, Classifier, SquareConfig, apgd, p_selection, square,
};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::error::AttackError;
use rslad_tui::tensor_util::to_vec;
use rslad_tui::zoo::{Arch, Model, ModelSpec};

const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;

// ---------------------------------------------------------------------------------------------
// p schedule

#[test]
fn p_halves_at_the_reference_breakpoints() {
    // `p_selection` of the reference for a 10 000-query run: p_init while it ≤ 10, then halved
    // once more after each of 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000.
    let expected = [
        (0, 0),
        (10, 0),
        (11, 1),
        (50, 1),
        (51, 2),
        (200, 2),
        (201, 3),
        (500, 3),
        (501, 4),
        (1000, 4),
        (1001, 5),
        (2000, 5),
        (2001, 6),
        (4000, 6),
        (4001, 7),
        (6000, 7),
        (6001, 8),
        (8000, 8),
        (8001, 9),
        (9999, 9),
    ];
    for (iteration, halvings) in expected {
        assert_eq!(
            p_selection(0.8, iteration, 10_000),
            0.8 / (1u32 << halvings) as f32,
            "iteration {iteration}"
        );
    }
}

#[test]
fn p_schedule_is_rescaled_to_the_query_budget() {
    // int(it / 5000 · 10000) = 2·it: the breakpoints fall at 5, 25, 100, …, 4000 iterations.
    let p = |it| p_selection(0.8, it, 5000);
    assert_eq!(p(5), 0.8); // rescaled 10
    assert_eq!(p(6), 0.4); // rescaled 12
    assert_eq!(p(25), 0.4); // 50
    assert_eq!(p(26), 0.2); // 52
    assert_eq!(p(100), 0.2); // 200
    assert_eq!(p(101), 0.1); // 202
    assert_eq!(p(4000), 0.8 / 256.0); // 8000
    assert_eq!(p(4001), 0.8 / 512.0); // 8002
    assert_eq!(p(4999), 0.8 / 512.0);
    // 100 queries: iteration 1 is already rescaled to 100 (two halvings), iteration 0 is not.
    assert_eq!(p_selection(0.5, 0, 100), 0.5);
    assert_eq!(p_selection(0.5, 1, 100), 0.125);
    assert_eq!(p_selection(0.5, 99, 100), 0.5 / 512.0);
    // No queries, no iterations: p_init.
    assert_eq!(p_selection(0.3, 0, 0), 0.3);
}

#[test]
fn the_standard_configuration_is_autoattacks() {
    assert_eq!(
        SquareConfig::standard(0.3),
        SquareConfig {
            epsilon: 0.3,
            queries: 5000,
            p_init: 0.8,
            restarts: 1
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Classifiers

fn random_images(n: usize, h: usize, w: usize, seed: u64) -> Tensor<4> {
    let mut rng = StdRng::seed_from_u64(seed);
    // Include exact 0s and 1s: the [0, 1] clipping must hold at the edges too.
    let values: Vec<f32> = (0..n * h * w)
        .map(|_| match rng.gen_range(0..4) {
            0 => 0.0,
            1 => 1.0,
            _ => rng.gen_range(0.0..1.0),
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [n, 1, h, w]), &compute_device())
}

/// logits = x·W + b on flattened one-channel images: the worst case in the ε-ball ∩ [0, 1] is
/// known in closed form.
struct Linear {
    classes: usize,
    /// `[pixels × classes]`, row-major.
    weights: Vec<f32>,
    bias: Vec<f32>,
    weight_tensor: Tensor<2>,
    bias_tensor: Tensor<2>,
}

impl Linear {
    /// Weights constant on `block`×`block` tiles of a 28×28 image, plus a little per-pixel
    /// noise: the kind of spatially coherent weights a square search can exploit.
    fn tiled(classes: usize, block: usize, seed: u64) -> Linear {
        let mut rng = StdRng::seed_from_u64(seed);
        let tiles = SIDE.div_ceil(block);
        let tile: Vec<f32> = (0..tiles * tiles * classes)
            .map(|_| rng.gen_range(-0.1..0.1))
            .collect();
        let weights: Vec<f32> = (0..PIXELS * classes)
            .map(|i| {
                let (pixel, class) = (i / classes, i % classes);
                let (row, column) = (pixel / SIDE, pixel % SIDE);
                let t = (row / block) * tiles + column / block;
                tile[t * classes + class] + rng.gen_range(-0.01..0.01)
            })
            .collect();
        let bias: Vec<f32> = (0..classes).map(|_| rng.gen_range(-0.5..0.5)).collect();
        Linear::from_parts(classes, weights, bias)
    }

    fn from_parts(classes: usize, weights: Vec<f32>, bias: Vec<f32>) -> Linear {
        let device = compute_device();
        let pixels = weights.len() / classes;
        Linear {
            classes,
            weight_tensor: Tensor::from_data(
                TensorData::new(weights.clone(), [pixels, classes]),
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

    fn logits_of(&self, x: &[f32]) -> Vec<f64> {
        (0..self.classes)
            .map(|j| {
                f64::from(self.bias[j])
                    + x.iter()
                        .enumerate()
                        .map(|(p, &xp)| self.w(p, j) * f64::from(xp))
                        .sum::<f64>()
            })
            .collect()
    }

    /// max_{j≠y} z_j − z_y at x (positive: misclassified).
    fn wrongness(&self, x: &[f32], label: usize) -> f64 {
        let z = self.logits_of(x);
        (0..self.classes)
            .filter(|&j| j != label)
            .map(|j| z[j] - z[label])
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// The maximum of `wrongness` over the ε-ball ∩ [0, 1] around x: for each j the linear
    /// form is maximised pixel by pixel at an end of [max(0, x_p − ε), min(1, x_p + ε)], i.e.
    /// each pixel moves by ε·sign(w_pj − w_py), clipped to [0, 1].
    fn worst_wrongness(&self, x: &[f32], label: usize, epsilon: f32) -> f64 {
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
}

impl Classifier for Linear {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        images.flatten::<2>(1, 3).matmul(self.weight_tensor.clone()) + self.bias_tensor.clone()
    }
}

/// A gradient-masked model: the linear logits rounded to a grid of `step` — piecewise
/// constant, so the input gradient is zero almost everywhere — while its decisions still flip
/// inside the ball wherever the linear model's do (up to `step`).
struct Staircase {
    linear: Linear,
    step: f32,
}

impl Classifier for Staircase {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.linear
            .logits(images)
            .div_scalar(self.step)
            .round()
            .mul_scalar(self.step)
    }
}

fn micro_cnn(seed: u64) -> Model {
    let model = Model::build(
        ModelSpec::native(Arch::MicroCnn, 10),
        seed,
        &autodiff_device(),
    )
    .unwrap();
    attack::eval_view(&model)
}

fn count(flags: &[bool]) -> usize {
    flags.iter().filter(|&&f| f).count()
}

fn few_queries(epsilon: f32, queries: usize) -> SquareConfig {
    SquareConfig {
        queries,
        ..SquareConfig::standard(epsilon)
    }
}

fn run(
    model: &impl Classifier,
    x: &Tensor<4>,
    y: &[i64],
    config: &SquareConfig,
    seed: u64,
) -> AttackOutcome {
    square(model, x, y, config, &mut StdRng::seed_from_u64(seed)).unwrap()
}

/// Whether the closed form says a point can be misclassified at `epsilon`: `Some(false)` when
/// even the worst case keeps it at least `gap` inside its class, `Some(true)` when three
/// quarters of the way from x to the worst case already misclassify it by `gap` (a random
/// search need not reach the exact corner), `None` in between or when x itself is within `gap`
/// of the decision boundary.
fn closed_form_verdict(
    model: &Linear,
    x: &[f32],
    label: usize,
    epsilon: f32,
    gap: f64,
) -> Option<bool> {
    let clean = model.wrongness(x, label);
    let worst = model.worst_wrongness(x, label, epsilon);
    if clean > -gap {
        None
    } else if worst <= -gap {
        Some(false)
    } else if clean + 0.75 * (worst - clean) >= gap {
        Some(true)
    } else {
        None
    }
}

/// `per_side` images the linear model classifies correctly and can be fooled on at `epsilon`,
/// then `per_side` it cannot, all clearly so (see [`closed_form_verdict`]), labelled with the
/// linear model's class. The images vary in brightness and contrast, so that their margins do.
fn pick_points(
    model: &Linear,
    epsilon: f32,
    gap: f64,
    per_side: usize,
    seed: u64,
) -> (Tensor<4>, Vec<i64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut picked: [Vec<(Vec<f32>, i64)>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..20_000 {
        let mean = rng.gen_range(0.0..1.0f32);
        let spread = rng.gen_range(0.0..0.8f32);
        let image: Vec<f32> = (0..PIXELS)
            .map(|_| (mean + spread * rng.gen_range(-1.0..1.0f32)).clamp(0.0, 1.0))
            .collect();
        let z = model.logits_of(&image);
        let label = (0..model.classes)
            .max_by(|&a, &b| z[a].total_cmp(&z[b]))
            .unwrap();
        if let Some(breakable) = closed_form_verdict(model, &image, label, epsilon, gap) {
            let side = &mut picked[usize::from(!breakable)];
            if side.len() < per_side {
                side.push((image, label as i64));
            }
        }
        if picked.iter().all(|side| side.len() == per_side) {
            let points: Vec<(Vec<f32>, i64)> = picked.into_iter().flatten().collect();
            let labels = points.iter().map(|(_, y)| *y).collect();
            let values = points.into_iter().flat_map(|(x, _)| x).collect();
            let x = Tensor::from_data(
                TensorData::new(values, [2 * per_side, 1, SIDE, SIDE]),
                &compute_device(),
            );
            return (x, labels);
        }
    }
    panic!("too few clear points at ε = {epsilon} with a gap of {gap}");
}

// ---------------------------------------------------------------------------------------------
// Threat model

#[test]
fn square_stays_in_the_epsilon_ball_and_the_unit_box() {
    let model = micro_cnn(3);
    let n = 5;
    let x = random_images(n, SIDE, SIDE, 11);
    // Labels the model gets right, but one: that point is not attacked.
    let mut y = clean_predictions(&model, &x);
    y[4] = (y[4] + 1) % 10;
    for epsilon in [0.0, 0.05, 0.3] {
        // 40 queries run the whole rescaled p schedule, from 25-pixel squares to 1-pixel ones.
        let outcome = run(&model, &x, &y, &few_queries(epsilon, 40), 5);
        assert_in_threat_model(&outcome.adversarial, &x, epsilon);
        // `fooled` is exactly "the returned point is misclassified".
        assert_eq!(
            outcome.fooled,
            misclassified(&model, &outcome.adversarial, &y),
            "ε = {epsilon}"
        );
        let adversarial = to_vec(outcome.adversarial.clone());
        assert_eq!(
            adversarial[4 * PIXELS..],
            to_vec(x.clone())[4 * PIXELS..],
            "a point misclassified already is returned unchanged"
        );
        assert!(outcome.fooled[4]);
        if epsilon == 0.0 {
            assert_eq!(adversarial, to_vec(x.clone()), "moved with ε = 0");
            assert_eq!(outcome.fooled, [false, false, false, false, true]);
        }
    }
}

#[test]
fn square_stays_in_the_threat_model_on_non_square_images() {
    // 3×10 images: the side of the first square (round(√(0.8·30)) = 5) is capped at 3.
    let mut rng = StdRng::seed_from_u64(21);
    let weights: Vec<f32> = (0..30 * 3).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let model = Linear::from_parts(3, weights, vec![0.0; 3]);
    let x = random_images(6, 3, 10, 22);
    let y = clean_predictions(&model, &x);
    let outcome = run(&model, &x, &y, &few_queries(0.2, 50), 3);
    assert_in_threat_model(&outcome.adversarial, &x, 0.2);
    assert_eq!(
        outcome.fooled,
        misclassified(&model, &outcome.adversarial, &y)
    );
    assert!(count(&outcome.fooled) > 0, "a 0.2 ball broke nothing");
}

// ---------------------------------------------------------------------------------------------
// Known answers on linear classifiers

#[test]
fn on_a_linear_model_square_fools_exactly_the_breakable_points() {
    let model = Linear::tiled(4, 7, 41);
    let epsilon = 0.1;
    let (x, mut y) = pick_points(&model, epsilon, 0.1, 5, 42);
    let n = y.len();
    let pixels = to_vec(x.clone());
    // The first 5 points are breakable, the last 5 are not…
    let mut breakable: Vec<bool> = (0..n).map(|i| i < 5).collect();
    // …but one unbreakable point the model already gets wrong: fooled without an attack,
    // returned unchanged.
    y[n - 1] = (y[n - 1] + 1) % 4;
    breakable[n - 1] = true;

    let outcome = run(&model, &x, &y, &few_queries(epsilon, 1000), 7);
    assert_in_threat_model(&outcome.adversarial, &x, epsilon);
    assert_eq!(outcome.fooled, breakable);
    let adversarial = to_vec(outcome.adversarial.clone());
    assert_eq!(adversarial[(n - 1) * PIXELS..], pixels[(n - 1) * PIXELS..]);
    for i in 0..n - 1 {
        let range = i * PIXELS..(i + 1) * PIXELS;
        let found = model.wrongness(&adversarial[range.clone()], y[i] as usize);
        // The returned point really is (or is not) misclassified, and no point beats the
        // closed-form worst case.
        assert_eq!(found > 0.0, breakable[i], "point {i}");
        let worst = model.worst_wrongness(&pixels[range], y[i] as usize, epsilon);
        assert!(found <= worst + 1e-4, "point {i}: {found} beyond {worst}");
    }
}

#[test]
fn square_reaches_most_of_the_closed_form_worst_case() {
    // At a radius where nothing breaks, the search runs its full budget on every point; the
    // margin it finds (the lowest-margin point is returned) must cover most of the distance to
    // the closed-form optimum, and a larger budget must get at least as close.
    let model = Linear::tiled(4, 7, 43);
    let n = 6;
    let x = random_images(n, SIDE, SIDE, 44);
    let pixels = to_vec(x.clone());
    let y = clean_predictions(&model, &x);
    let epsilon = 0.02;
    let progress = |queries| {
        let outcome = run(&model, &x, &y, &few_queries(epsilon, queries), 9);
        assert_eq!(count(&outcome.fooled), 0, "the radius is meant to be safe");
        let adversarial = to_vec(outcome.adversarial);
        (0..n)
            .map(|i| {
                let range = i * PIXELS..(i + 1) * PIXELS;
                let label = y[i] as usize;
                let clean = model.wrongness(&pixels[range.clone()], label);
                let worst = model.worst_wrongness(&pixels[range.clone()], label, epsilon);
                assert!(worst < 0.0, "point {i} is breakable at ε = {epsilon}");
                (model.wrongness(&adversarial[range], label) - clean) / (worst - clean)
            })
            .collect::<Vec<f64>>()
    };
    let short = progress(100);
    let long = progress(1000);
    for (i, &fraction) in long.iter().enumerate() {
        assert!(fraction >= 0.8, "point {i}: {fraction:.2} of the way");
        assert!(fraction <= 1.0 + 1e-4, "point {i} beyond the optimum");
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&long) > mean(&short));
}

// ---------------------------------------------------------------------------------------------
// Gradient masking

#[test]
fn square_breaks_a_gradient_masked_model_that_apgd_cannot_move() {
    let step = 0.05;
    let masked = Staircase {
        linear: Linear::tiled(4, 7, 51),
        step,
    };
    // Rounding moves each logit by at most step/2, so a gap of 2·step on the linear model's
    // closed form decides the masked model too.
    let epsilon = 0.1;
    let (x, y) = pick_points(&masked.linear, epsilon, 2.0 * f64::from(step), 5, 52);
    assert_eq!(y, clean_predictions(&masked, &x));
    let breakable: Vec<bool> = (0..y.len()).map(|i| i < 5).collect();

    // The input gradient of the masked logits is exactly zero (the linear one's is not).
    let gradient_magnitude = |model: &dyn Fn(Tensor<4>) -> Tensor<2>| {
        let leaf = x.clone().autodiff().require_grad();
        let grads = model(leaf.clone()).sum().backward();
        leaf.grad(&grads)
            .map(|g| to_vec(g.without_autodiff().abs().sum().reshape([1]))[0])
            .unwrap_or(0.0)
    };
    assert_eq!(gradient_magnitude(&|t| masked.logits(t)), 0.0);
    assert!(gradient_magnitude(&|t| masked.linear.logits(t)) > 0.0);

    // A gradient attack stays where its random start put it…
    let mut rng = StdRng::seed_from_u64(3);
    let config = ApgdConfig {
        iterations: 20,
        ..ApgdConfig::standard(epsilon, ApgdLoss::CrossEntropy)
    };
    let white_box = apgd(&masked, &x, &y, &config, &mut rng).unwrap().outcome;
    // …while the score-based search finds every breakable point.
    let outcome = run(&masked, &x, &y, &few_queries(epsilon, 1000), 4);
    assert_in_threat_model(&outcome.adversarial, &x, epsilon);
    assert_eq!(outcome.fooled, breakable);
    assert_eq!(
        outcome.fooled,
        misclassified(&masked, &outcome.adversarial, &y)
    );
    assert!(
        count(&white_box.fooled) < count(&breakable),
        "APGD fooled {} of {} breakable points on a model without gradients",
        count(&white_box.fooled),
        count(&breakable)
    );
}

// ---------------------------------------------------------------------------------------------
// Restarts and reproducibility

#[test]
fn more_restarts_only_add_fooled_points() {
    // The first run is the same from the same seed, so more restarts fool a superset.
    let model = micro_cnn(4);
    let n = 16;
    let x = random_images(n, SIDE, SIDE, 71);
    let y = clean_predictions(&model, &x);
    let fooled = |restarts| {
        let config = SquareConfig {
            restarts,
            ..few_queries(0.1, 3)
        };
        run(&model, &x, &y, &config, 12).fooled
    };
    assert_eq!(count(&fooled(0)), 0, "no restart, no attack");
    let one = fooled(1);
    let four = fooled(4);
    for i in 0..n {
        assert!(!one[i] || four[i], "point {i}: fooled by 1 restart, not 4");
    }
    assert!(count(&four) > count(&one), "restarts added nothing");
    assert!(
        count(&four) < n,
        "nothing left unfooled: the test says nothing"
    );
}

#[test]
fn square_is_reproducible_from_its_seed() {
    let model = micro_cnn(8);
    let x = random_images(4, SIDE, SIDE, 81);
    let y = clean_predictions(&model, &x);
    let config = few_queries(0.1, 20);
    let attack = |seed| {
        let outcome = run(&model, &x, &y, &config, seed);
        (to_vec(outcome.adversarial), outcome.fooled)
    };
    assert_eq!(attack(3), attack(3));
    assert_ne!(attack(3).0, attack(4).0);
}

// ---------------------------------------------------------------------------------------------
// Budgets, refusals, edge cases

#[test]
fn zero_queries_or_restarts_attack_nothing() {
    let model = Linear::tiled(3, 7, 61);
    let x = random_images(4, SIDE, SIDE, 62);
    let mut y = clean_predictions(&model, &x);
    y[1] = (y[1] + 1) % 3;
    for config in [
        few_queries(0.3, 0),
        SquareConfig {
            restarts: 0,
            ..SquareConfig::standard(0.3)
        },
    ] {
        let outcome = run(&model, &x, &y, &config, 1);
        assert_eq!(to_vec(outcome.adversarial), to_vec(x.clone()), "{config:?}");
        assert_eq!(outcome.fooled, [false, true, false, false], "{config:?}");
    }
}

#[test]
fn square_refuses_invalid_configurations() {
    let model = Linear::tiled(3, 7, 63);
    let x = random_images(2, SIDE, SIDE, 64);
    let y = clean_predictions(&model, &x);
    let attempt =
        |config: SquareConfig| square(&model, &x, &y, &config, &mut StdRng::seed_from_u64(1));
    let standard = SquareConfig::standard(0.1);
    for epsilon in [-0.1, f32::NAN, f32::INFINITY] {
        let result = attempt(SquareConfig {
            epsilon,
            ..standard
        });
        assert!(
            matches!(result, Err(AttackError::Invalid(_))),
            "ε = {epsilon}"
        );
    }
    for p_init in [0.0, -0.5, 1.5, f32::NAN] {
        let result = attempt(SquareConfig { p_init, ..standard });
        assert!(
            matches!(result, Err(AttackError::Invalid(_))),
            "p_init = {p_init}"
        );
    }
    // p_init = 1 (the first square covers the whole image) is allowed.
    assert!(
        attempt(SquareConfig {
            p_init: 1.0,
            queries: 5,
            ..standard
        })
        .is_ok()
    );
    // Labels: one per image, each a class of the model.
    let mut rng = StdRng::seed_from_u64(1);
    assert!(matches!(
        square(&model, &x, &y[..1], &standard, &mut rng),
        Err(AttackError::Invalid(_))
    ));
    assert!(matches!(
        square(&model, &x, &[0, 3], &standard, &mut rng),
        Err(AttackError::Invalid(_))
    ));
}

#[test]
fn square_needs_two_classes() {
    let x = random_images(2, SIDE, SIDE, 65);
    let one = Linear::from_parts(1, vec![0.01; PIXELS], vec![0.0]);
    let mut rng = StdRng::seed_from_u64(1);
    let config = few_queries(0.1, 5);
    assert_eq!(
        square(&one, &x, &[0, 0], &config, &mut rng).err(),
        Some(AttackError::TooFewClasses {
            attack: "Square",
            needed: 2,
            classes: 1
        })
    );
    let two = Linear::tiled(2, 7, 66);
    let y = clean_predictions(&two, &x);
    assert!(square(&two, &x, &y, &config, &mut rng).is_ok());
}

#[test]
fn an_empty_batch_needs_no_attack() {
    let model = Linear::tiled(4, 7, 91);
    let x = random_images(0, SIDE, SIDE, 92);
    let mut rng = StdRng::seed_from_u64(1);
    let outcome = square(&model, &x, &[], &SquareConfig::standard(0.1), &mut rng).unwrap();
    assert!(outcome.fooled.is_empty());
    assert_eq!(outcome.adversarial.dims(), [0, 1, SIDE, SIDE]);
}
