//! AutoAttack as a whole: the exact robust accuracy of linear models (computable in closed
//! form), the per-component bookkeeping, the sanity flags on masked, random and
//! probability-output models, and clear refusals.

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rslad_tui::attack::Classifier;
use rslad_tui::attack::autoattack::{
    self, AutoAttackConfig, AutoAttackReport, Component, SanityFlag, Version,
};
use rslad_tui::device::autodiff_device;
use rslad_tui::error::AttackError;
use rslad_tui::progress::Silent;
use rslad_tui::tensor_util::{predictions, to_vec};
use std::cell::RefCell;

/// Images are 1×4×4: small enough that the exact answer is cheap and Square's squares cover
/// the image quickly.
const SIDE: usize = 4;
const PIXELS: usize = SIDE * SIDE;

/// f(x) = Wᵀx + b on the flattened image.
pub(crate) struct Linear {
    classes: usize,
    /// `[PIXELS × classes]`, row-major.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Linear {
    pub(crate) fn new(classes: usize, seed: u64) -> Linear {
        let mut rng = StdRng::seed_from_u64(seed);
        Linear {
            classes,
            weights: (0..PIXELS * classes)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect(),
            bias: (0..classes).map(|_| rng.gen_range(-0.2..0.2)).collect(),
        }
    }

    fn weight(&self, pixel: usize, class: usize) -> f32 {
        self.weights[pixel * self.classes + class]
    }

    fn host_logits(&self, x: &[f32]) -> Vec<f32> {
        (0..self.classes)
            .map(|k| {
                self.bias[k]
                    + x.iter()
                        .enumerate()
                        .map(|(i, v)| v * self.weight(i, k))
                        .sum::<f32>()
            })
            .collect()
    }

    /// The smallest margin z_y − z_j over j ≠ y and over the ε-ball ∩ [0, 1], in closed form:
    /// each pixel moves to whichever end of its interval lowers (w_y − w_j)·x the most.
    /// Positive exactly when the point is robust.
    fn worst_margin(&self, x: &[f32], label: usize, epsilon: f32) -> f32 {
        let logits = self.host_logits(x);
        (0..self.classes)
            .filter(|&j| j != label)
            .map(|j| {
                let shift: f32 = x
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let direction = self.weight(i, label) - self.weight(i, j);
                        let low = (-epsilon).max(-v);
                        let high = epsilon.min(1.0 - v);
                        (direction * low).min(direction * high)
                    })
                    .sum();
                logits[label] - logits[j] + shift
            })
            .fold(f32::INFINITY, f32::min)
    }

    fn tensors(&self) -> (Tensor<2>, Tensor<2>) {
        let device = autodiff_device();
        (
            Tensor::from_data(
                TensorData::new(self.weights.clone(), [PIXELS, self.classes]),
                &device,
            ),
            Tensor::from_data(
                TensorData::new(self.bias.clone(), [1, self.classes]),
                &device,
            ),
        )
    }
}

impl Classifier for Linear {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        let (w, b) = self.tensors();
        images.flatten::<2>(1, 3).matmul(w) + b
    }
}

/// Gradient masking on purpose: the input is rounded to the nearest 1/2 (zero gradient almost
/// everywhere), the decisions are still those of a linear model on the rounded image.
pub(crate) struct Rounded(pub(crate) Linear);

impl Classifier for Rounded {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.0
            .logits(images.mul_scalar(2.0).round().div_scalar(2.0))
    }
}

/// A model with randomness in its forward pass (input noise), as with dropout left on.
struct Noisy {
    model: Linear,
    rng: RefCell<StdRng>,
}

impl Classifier for Noisy {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        let dims = images.dims();
        let count = dims.iter().product();
        let noise: Vec<f32> = {
            let mut rng = self.rng.borrow_mut();
            (0..count).map(|_| rng.gen_range(-0.01..0.01)).collect()
        };
        let noise = Tensor::<4>::from_data(TensorData::new(noise, dims), &images.device());
        self.model.logits(images + noise)
    }
}

/// Outputs softmax probabilities instead of logits.
struct Softmaxed(Linear);

impl Classifier for Softmaxed {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        burn::tensor::activation::softmax(self.0.logits(images), 1)
    }
}

fn random_images(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * PIXELS).map(|_| rng.r#gen::<f32>()).collect()
}

/// `n` images whose pixels lie within 0.1 of the rounding thresholds 0.25 and 0.75 of
/// [`Rounded`]: where its input gradient is zero but a small ε changes its output.
pub(crate) fn near_rounding_thresholds(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * PIXELS)
        .map(|_| {
            let centre = if rng.r#gen::<bool>() { 0.25 } else { 0.75 };
            centre + rng.gen_range(-0.1..0.1)
        })
        .collect()
}

pub(crate) fn tensor(values: &[f32]) -> Tensor<4> {
    let n = values.len() / PIXELS;
    Tensor::from_data(
        TensorData::new(values.to_vec(), [n, 1, SIDE, SIDE]),
        &autodiff_device(),
    )
}

fn config(epsilon: f32, version: Version) -> AutoAttackConfig {
    AutoAttackConfig {
        epsilon,
        version,
        seed: 7,
        batch_size: 16,
    }
}

fn run(
    model: &impl Classifier,
    x: &[f32],
    labels: &[i64],
    config: &AutoAttackConfig,
) -> AutoAttackReport {
    autoattack::run(model, &tensor(x), labels, config, &Silent).expect("AutoAttack runs")
}

/// Checks every property a report must have whatever the model.
fn assert_consistent(report: &AutoAttackReport, model: &impl Classifier, x: &[f32], y: &[i64]) {
    let n = y.len();
    assert_eq!(report.images, n);
    assert_eq!(report.robust.len(), n);
    assert!(report.max_perturbation <= report.epsilon + 1e-6);
    let robust = report.robust.iter().filter(|&&r| r).count();
    assert!((report.robust_accuracy - robust as f64 / n as f64).abs() < 1e-12);
    // Points flow from one component to the next: each attacks what the earlier ones left.
    let clean_correct = (report.clean_accuracy * n as f64).round() as usize;
    let mut remaining = clean_correct;
    for result in &report.components {
        assert_eq!(result.attacked, remaining, "{:?}", result.component);
        assert!(result.broken <= result.attacked);
        remaining -= result.broken;
    }
    assert_eq!(remaining, robust, "broken points do not add up");
    // The adversarial points of broken images are misclassified and inside the threat model.
    let adversarial = &report.adversarial;
    assert_eq!(adversarial.len(), x.len());
    let predicted = predictions(model.logits(tensor(adversarial)));
    let clean = predictions(model.logits(tensor(x)));
    for i in 0..n {
        let broken = clean[i] == y[i] && !report.robust[i];
        if broken {
            assert_ne!(predicted[i], y[i], "point {i} counted broken but is not");
        }
        for p in i * PIXELS..(i + 1) * PIXELS {
            assert!((adversarial[p] - x[p]).abs() <= report.epsilon + 1e-6);
            assert!((0.0..=1.0).contains(&adversarial[p]));
        }
    }
}

#[test]
fn autoattack_finds_exactly_the_non_robust_points_of_a_linear_model() {
    let model = Linear::new(10, 1);
    let epsilon = 0.1;
    let all = random_images(200, 2);
    let labels_all = predictions(model.logits(tensor(&all)));
    // Keep points whose exact worst-case margin is clearly positive or clearly negative, so the
    // answer does not hinge on float rounding at the decision boundary.
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut exact = Vec::new();
    for i in 0..200 {
        let point = &all[i * PIXELS..(i + 1) * PIXELS];
        let margin = model.worst_margin(point, labels_all[i] as usize, epsilon);
        if margin.abs() > 0.02 && y.len() < 48 {
            x.extend_from_slice(point);
            y.push(labels_all[i]);
            exact.push(margin > 0.0);
        }
    }
    let robust_count = exact.iter().filter(|&&r| r).count();
    assert!(
        robust_count > 5 && robust_count < y.len() - 5,
        "the test needs both robust and non-robust points: {robust_count} of {}",
        y.len()
    );

    let report = run(&model, &x, &y, &config(epsilon, Version::Standard));
    assert_consistent(&report, &model, &x, &y);
    assert_eq!(report.clean_accuracy, 1.0);
    assert_eq!(
        report.robust, exact,
        "AutoAttack disagrees with the exact answer"
    );
    assert!(report.flags.is_empty(), "{:?}", report.flags);
    let names: Vec<Component> = report.components.iter().map(|c| c.component).collect();
    assert_eq!(
        names,
        [
            Component::ApgdCe,
            Component::ApgdT,
            Component::FabT,
            Component::Square
        ]
    );
}

#[test]
fn misclassified_points_count_as_not_robust_and_are_not_attacked() {
    let model = Linear::new(10, 3);
    let x = random_images(12, 4);
    let mut y = predictions(model.logits(tensor(&x)));
    for label in y.iter_mut().take(4) {
        *label = (*label + 1) % 10;
    }
    let report = run(
        &model,
        &x,
        &y,
        &config(0.0, Version::Custom(vec![Component::ApgdCe])),
    );
    assert_consistent(&report, &model, &x, &y);
    assert!((report.clean_accuracy - 8.0 / 12.0).abs() < 1e-12);
    assert_eq!(report.components[0].attacked, 8);
    // ε = 0 leaves nothing to find.
    assert_eq!(report.components[0].broken, 0);
    assert_eq!(report.max_perturbation, 0.0);
    assert!(report.robust[4..].iter().all(|&r| r) && !report.robust[..4].iter().any(|&r| r));
}

#[test]
fn a_masked_model_defeats_the_gradient_attacks_and_the_report_says_so() {
    let model = Rounded(Linear::new(10, 5));
    // ε = 0.2 can move the pixels across the rounding thresholds, but the rounded input has a
    // zero gradient, so gradient attacks see nothing.
    let x = near_rounding_thresholds(24, 6);
    let y = predictions(model.logits(tensor(&x)));
    let report = run(&model, &x, &y, &config(0.2, Version::Standard));
    assert_consistent(&report, &model, &x, &y);

    let broken = |c: Component| {
        report
            .components
            .iter()
            .find(|r| r.component == c)
            .unwrap()
            .broken
    };
    let square = broken(Component::Square);
    assert!(square > 0, "Square broke nothing: {:?}", report.components);
    assert!(
        report
            .flags
            .iter()
            .any(|f| matches!(f, SanityFlag::ZeroGradient { component: Component::ApgdCe, points } if *points > 0)),
        "no zero-gradient flag: {:?}",
        report.flags
    );
    assert!(
        report
            .flags
            .contains(&SanityFlag::SquareAfterWhiteBox { points: square }),
        "no Square flag: {:?}",
        report.flags
    );
    for flag in &report.flags {
        assert!(!flag.message().is_empty());
    }
}

#[test]
fn a_random_forward_pass_is_flagged() {
    let model = Noisy {
        model: Linear::new(10, 8),
        rng: RefCell::new(StdRng::seed_from_u64(9)),
    };
    let x = random_images(8, 10);
    let y = predictions(model.model.logits(tensor(&x)));
    let report = run(
        &model,
        &x,
        &y,
        &config(0.05, Version::Custom(vec![Component::ApgdCe])),
    );
    assert!(
        report
            .flags
            .iter()
            .any(|f| matches!(f, SanityFlag::NonDeterministic { max_difference } if *max_difference > 0.0)),
        "{:?}",
        report.flags
    );
    // The rand version is meant for such models and does not flag them.
    let rand = run(&model, &x, &y, &config(0.05, Version::Rand));
    assert!(
        !rand
            .flags
            .iter()
            .any(|f| matches!(f, SanityFlag::NonDeterministic { .. })),
        "{:?}",
        rand.flags
    );
    // A deterministic model is not flagged.
    let plain = run(
        &model.model,
        &x,
        &y,
        &config(0.05, Version::Custom(vec![Component::ApgdCe])),
    );
    assert!(plain.flags.is_empty(), "{:?}", plain.flags);
}

#[test]
fn the_rand_version_runs_apgd_ce_then_apgd_dlr() {
    let model = Linear::new(10, 11);
    let x = random_images(6, 12);
    let y = predictions(model.logits(tensor(&x)));
    let report = run(&model, &x, &y, &config(0.1, Version::Rand));
    assert_consistent(&report, &model, &x, &y);
    assert_eq!(report.version, "rand");
    let names: Vec<Component> = report.components.iter().map(|c| c.component).collect();
    assert_eq!(names, [Component::ApgdCe, Component::ApgdDlr]);
}

#[test]
fn probability_outputs_are_flagged() {
    let model = Softmaxed(Linear::new(10, 13));
    let x = random_images(6, 14);
    let y = predictions(model.logits(tensor(&x)));
    let report = run(
        &model,
        &x,
        &y,
        &config(0.05, Version::Custom(vec![Component::ApgdCe])),
    );
    assert!(report.flags.contains(&SanityFlag::ProbabilityOutputs));
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let model = Linear::new(10, 15);
    let x = random_images(10, 16);
    let y = predictions(model.logits(tensor(&x)));
    let version = Version::Custom(vec![Component::ApgdT, Component::Square]);
    let strip = |mut r: AutoAttackReport| {
        for c in &mut r.components {
            c.seconds = 0.0;
        }
        r
    };
    let first = strip(run(&model, &x, &y, &config(0.08, version.clone())));
    let second = strip(run(&model, &x, &y, &config(0.08, version)));
    assert_eq!(first, second);
}

#[test]
fn too_few_classes_are_refused_before_any_work() {
    let x = random_images(4, 17);
    let three = Linear::new(3, 18);
    let y = predictions(three.logits(tensor(&x)));
    let error = autoattack::run(
        &three,
        &tensor(&x),
        &y,
        &config(0.1, Version::Standard),
        &Silent,
    )
    .expect_err("APGD-T needs 4 classes");
    assert!(matches!(
        error,
        AttackError::TooFewClasses {
            attack: "apgd-t",
            needed: 4,
            classes: 3
        }
    ));
    assert!(error.to_string().contains("at least 4 classes"), "{error}");

    let two = Linear::new(2, 19);
    let y = predictions(two.logits(tensor(&x)));
    let error = autoattack::run(&two, &tensor(&x), &y, &config(0.1, Version::Rand), &Silent)
        .expect_err("APGD-DLR needs 3 classes");
    assert!(matches!(
        error,
        AttackError::TooFewClasses {
            attack: "apgd-dlr",
            needed: 3,
            ..
        }
    ));
    // Two classes are enough for APGD-CE, FAB-T and Square.
    let custom = Version::Custom(vec![Component::ApgdCe, Component::FabT, Component::Square]);
    let report = run(&two, &x, &y, &config(0.1, custom));
    assert_consistent(&report, &two, &x, &y);
}

#[test]
fn bad_configurations_get_clear_errors() {
    let model = Linear::new(10, 20);
    let x = random_images(2, 21);
    let y = predictions(model.logits(tensor(&x)));
    let attempt = |config: AutoAttackConfig| {
        autoattack::run(&model, &tensor(&x), &y, &config, &Silent)
            .expect_err("refused")
            .to_string()
    };
    assert!(attempt(config(-0.1, Version::Standard)).contains("ε"));
    assert!(attempt(config(f32::NAN, Version::Standard)).contains("ε"));
    assert!(attempt(config(0.1, Version::Custom(vec![]))).contains("at least one"));
    let twice = Version::Custom(vec![Component::Square, Component::Square]);
    assert!(attempt(config(0.1, twice)).contains("twice"));
    let mut zero_batch = config(0.1, Version::Standard);
    zero_batch.batch_size = 0;
    assert!(attempt(zero_batch).contains("batch size"));
    let wrong_labels = autoattack::run(
        &model,
        &tensor(&x),
        &[0],
        &config(0.1, Version::Standard),
        &Silent,
    );
    assert!(wrong_labels.err().unwrap().to_string().contains("labels"));

    let unknown = Component::parse("deepfool").err().unwrap().to_string();
    assert!(
        unknown.contains("deepfool") && unknown.contains("fab-t"),
        "{unknown}"
    );
    for c in Component::ALL {
        assert_eq!(Component::parse(c.name()).unwrap(), c);
    }
    assert_eq!(Component::parse(" APGD-T ").unwrap(), Component::ApgdT);
}

#[test]
fn an_empty_batch_gives_an_empty_report() {
    let model = Linear::new(10, 22);
    let report = run(&model, &[], &[], &config(0.1, Version::Standard));
    assert_eq!(report.images, 0);
    assert!(report.robust.is_empty());
    assert_eq!(report.max_perturbation, 0.0);
    assert!(to_vec(tensor(&[])).is_empty());
}

/// The reports of consecutive blocks of images, merged, are the report of all of them: the
/// exact answer of the linear model, counts that add up, accuracies over all images.
#[test]
fn merged_blocks_report_on_all_images() {
    let model = Linear::new(10, 1);
    let epsilon = 0.1;
    let all = random_images(200, 12);
    let labels_all = predictions(model.logits(tensor(&all)));
    // Clear margins only, as in the exact test above, so rounding decides nothing.
    let (mut x, mut y, mut exact) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..200 {
        let point = &all[i * PIXELS..(i + 1) * PIXELS];
        let margin = model.worst_margin(point, labels_all[i] as usize, epsilon);
        if margin.abs() > 0.02 && y.len() < 40 {
            x.extend_from_slice(point);
            y.push(labels_all[i]);
            exact.push(margin > 0.0);
        }
    }
    assert_eq!(y.len(), 40);
    let split = [0, 15, 28, 40];
    let blocks: Vec<AutoAttackReport> = split
        .windows(2)
        .map(|w| {
            run(
                &model,
                &x[w[0] * PIXELS..w[1] * PIXELS],
                &y[w[0]..w[1]],
                &config(epsilon, Version::Standard),
            )
        })
        .collect();
    let merged = AutoAttackReport::merge(&blocks).expect("blocks merge");
    assert_consistent(&merged, &model, &x, &y);
    assert_eq!(
        merged.robust, exact,
        "merged report disagrees with the exact answer"
    );
    for (index, component) in merged.components.iter().enumerate() {
        let broken: usize = blocks.iter().map(|b| b.components[index].broken).sum();
        assert_eq!(component.broken, broken);
    }
    let robust = exact.iter().filter(|&&r| r).count() as f64 / 40.0;
    assert!((merged.robust_accuracy - robust).abs() < 1e-12);
    assert!(AutoAttackReport::merge(&[]).is_err());
}

/// Flags are decided again on the merged whole: zero-gradient points add up, and Square's flag
/// counts all the points it broke.
#[test]
fn merged_blocks_sum_their_sanity_flags() {
    let model = Rounded(Linear::new(10, 5));
    let x = near_rounding_thresholds(24, 6);
    let y = predictions(model.logits(tensor(&x)));
    let halves: Vec<AutoAttackReport> = [0..12, 12..24]
        .into_iter()
        .map(|r| {
            run(
                &model,
                &x[r.start * PIXELS..r.end * PIXELS],
                &y[r],
                &config(0.2, Version::Standard),
            )
        })
        .collect();
    let merged = AutoAttackReport::merge(&halves).unwrap();
    let zero = |report: &AutoAttackReport| {
        report.flags.iter().find_map(|f| match f {
            SanityFlag::ZeroGradient {
                component: Component::ApgdCe,
                points,
            } => Some(*points),
            _ => None,
        })
    };
    let sum: usize = halves.iter().map(|h| zero(h).unwrap_or(0)).sum();
    assert!(sum > 0);
    assert_eq!(zero(&merged), Some(sum));
    let square = merged.components.last().unwrap().broken;
    assert!(square > 0);
    assert!(
        merged
            .flags
            .contains(&SanityFlag::SquareAfterWhiteBox { points: square })
    );
    // Blocks of different evaluations do not merge.
    let other = run(&model, &x[..PIXELS], &y[..1], &config(0.2, Version::Rand));
    assert!(AutoAttackReport::merge(&[halves[0].clone(), other]).is_err());
}

/// A report merged from itself alone is itself, flags and adversarial points included.
#[test]
fn one_block_merges_to_itself() {
    let model = Rounded(Linear::new(10, 5));
    let x = near_rounding_thresholds(16, 14);
    let y = predictions(model.logits(tensor(&x)));
    let report = run(&model, &x, &y, &config(0.2, Version::Standard));
    assert!(!report.flags.is_empty(), "the test wants flags to merge");
    assert_eq!(
        AutoAttackReport::merge(std::slice::from_ref(&report)).unwrap(),
        report
    );
}

/// A report as a block of `images` images in which Square broke `square_broken` points
/// after APGD-CE broke none, with the given flags.
fn block(images: usize, square_broken: usize, flags: Vec<SanityFlag>) -> AutoAttackReport {
    let robust_after = images - square_broken;
    let result = |component, broken, robust| autoattack::ComponentResult {
        component,
        attacked: images,
        broken,
        robust_accuracy: robust as f64 / images as f64,
        seconds: 1.0,
    };
    AutoAttackReport {
        version: "custom".into(),
        epsilon: 0.3,
        images,
        clean_accuracy: 1.0,
        robust_accuracy: robust_after as f64 / images as f64,
        components: vec![
            result(Component::ApgdCe, 0, images),
            result(Component::Square, square_broken, robust_after),
        ],
        max_perturbation: 0.3,
        flags,
        robust: (0..images).map(|i| i >= square_broken).collect(),
        adversarial: Vec::new(),
    }
}

/// Flags are decided on the merged whole: one Square break is 0.25% of a 400-image block
/// (flagged there) but 0.1% of 1000 images (not flagged); probability outputs need every
/// block to show them; a block of another ε does not merge.
#[test]
fn merged_flags_are_decided_on_the_whole() {
    let square = SanityFlag::SquareAfterWhiteBox { points: 1 };
    let small = block(400, 1, vec![square.clone()]);
    let large = block(600, 0, vec![]);
    let merged = AutoAttackReport::merge(&[small.clone(), large.clone()]).unwrap();
    assert_eq!(merged.images, 1000);
    assert_eq!(merged.components[1].broken, 1);
    assert!((merged.robust_accuracy - 0.999).abs() < 1e-12);
    assert!(merged.flags.is_empty(), "{:?}", merged.flags);
    let three = AutoAttackReport::merge(&[small.clone(), block(400, 2, vec![])]).unwrap();
    assert_eq!(three.flags, [SanityFlag::SquareAfterWhiteBox { points: 3 }]);

    let probabilities = block(10, 0, vec![SanityFlag::ProbabilityOutputs]);
    let both = AutoAttackReport::merge(&[probabilities.clone(), probabilities.clone()]).unwrap();
    assert_eq!(both.flags, [SanityFlag::ProbabilityOutputs]);
    let one = AutoAttackReport::merge(&[probabilities, block(10, 0, vec![])]).unwrap();
    assert!(one.flags.is_empty(), "{:?}", one.flags);

    let other_epsilon = AutoAttackReport {
        epsilon: 0.1,
        ..large
    };
    assert!(AutoAttackReport::merge(&[small, other_epsilon]).is_err());
}
