//! AutoAttack against models whose true robustness is known: a linear classifier (exact robust
//! accuracy in closed form), a gradient-masked model (the flags and Square must catch it), and
//! a randomised model (the determinism check must flag it).

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rslad_tui::attack::Classifier;
use rslad_tui::attack::autoattack::{self, AutoAttackConfig, Component, SanityFlag, Version};
use rslad_tui::device::compute_device;
use rslad_tui::progress::Silent;
use std::sync::Mutex;

const SIDE: usize = 6;
const FEATURES: usize = SIDE * SIDE;

/// logits = x·W + b on 1×6×6 images.
struct Linear {
    weight: Tensor<2>,
    bias: Tensor<2>,
    w: Vec<f32>,
    b: Vec<f32>,
    classes: usize,
}

impl Linear {
    fn new(classes: usize, seed: u64) -> Linear {
        let mut rng = StdRng::seed_from_u64(seed);
        let w: Vec<f32> = (0..FEATURES * classes).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..classes).map(|_| rng.gen_range(-0.5..0.5)).collect();
        let device = compute_device();
        Linear {
            weight: Tensor::from_data(TensorData::new(w.clone(), [FEATURES, classes]), &device),
            bias: Tensor::from_data(TensorData::new(b.clone(), [1, classes]), &device),
            w,
            b,
            classes,
        }
    }

    fn scores(&self, x: &[f32]) -> Vec<f32> {
        (0..self.classes)
            .map(|j| self.b[j] + (0..FEATURES).map(|p| x[p] * self.w[p * self.classes + j]).sum::<f32>())
            .collect()
    }

    /// Exact: a point is robust iff it is classified correctly and no class j can overtake y
    /// anywhere in the box [max(0, x − ε), min(1, x + ε)]: the margin is linear, so its maximum
    /// over the box is attained coordinate-wise at an end.
    fn exactly_robust(&self, x: &[f32], y: usize, epsilon: f32) -> bool {
        (0..self.classes).filter(|&j| j != y).all(|j| {
            let mut margin = f64::from(self.b[j] - self.b[y]);
            for (p, &xp) in x.iter().enumerate() {
                let d = f64::from(self.w[p * self.classes + j] - self.w[p * self.classes + y]);
                let lo = f64::from((xp - epsilon).max(0.0));
                let hi = f64::from((xp + epsilon).min(1.0));
                margin += (d * lo).max(d * hi);
            }
            margin < 0.0
        })
    }
}

impl Classifier for Linear {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        images.flatten::<2>(1, 3).matmul(self.weight.clone()) + self.bias.clone()
    }
}

/// Points labelled with the linear model's own clean prediction, except a few mislabelled.
fn data(model: &Linear, n: usize, seed: u64) -> (Tensor<4>, Vec<f32>, Vec<i64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..n * FEATURES).map(|_| rng.gen_range(0.0..1.0)).collect();
    let labels: Vec<i64> = (0..n)
        .map(|i| {
            let scores = model.scores(&values[i * FEATURES..(i + 1) * FEATURES]);
            let best = (0..model.classes).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
            if i % 10 == 9 { ((best + 1) % model.classes) as i64 } else { best as i64 }
        })
        .collect();
    let x = Tensor::from_data(TensorData::new(values.clone(), [n, 1, SIDE, SIDE]), &compute_device());
    (x, values, labels)
}

fn config(epsilon: f32, version: Version) -> AutoAttackConfig {
    AutoAttackConfig { epsilon, version, seed: 0, batch_size: 64 }
}

#[test]
fn on_a_linear_classifier_autoattack_finds_the_exact_robust_accuracy() {
    let model = Linear::new(10, 1);
    let (x, values, labels) = data(&model, 60, 2);
    let epsilon = 0.04;
    let exact: Vec<bool> = (0..labels.len())
        .map(|i| model.exactly_robust(&values[i * FEATURES..(i + 1) * FEATURES], labels[i] as usize, epsilon))
        .collect();
    let robust_count = exact.iter().filter(|&&r| r).count();
    // The test means something only if some points survive and some fall.
    assert!(robust_count > 5 && robust_count < 55, "{robust_count} exactly robust points");

    let report = autoattack::run(&model, &x, &labels, &config(epsilon, Version::Standard), &Silent).unwrap();
    assert_eq!(report.robust, exact, "AutoAttack's robust set differs from the exact one");
    assert_eq!(report.robust_accuracy, robust_count as f64 / 60.0);
    assert!(report.max_perturbation <= epsilon + 1e-6);
    assert!(report.flags.is_empty(), "a linear model raised {:?}", report.flags);
    let names: Vec<&str> = report.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["apgd-ce", "apgd-t", "fab-t", "square"]);
}

#[test]
fn each_component_attacks_only_the_points_still_robust() {
    let model = Linear::new(10, 3);
    let (x, _, labels) = data(&model, 40, 4);
    let report = autoattack::run(&model, &x, &labels, &config(0.03, Version::Standard), &Silent).unwrap();
    let mut remaining = (report.clean_accuracy * 40.0).round() as usize;
    for component in &report.components {
        assert_eq!(component.attacked, remaining, "{}", component.name);
        remaining -= component.broken;
        assert_eq!((component.robust_accuracy * 40.0).round() as usize, remaining);
    }
    assert_eq!((report.robust_accuracy * 40.0).round() as usize, remaining);
}

/// A linear classifier on the input rounded to quarters, with logits scaled up: its input
/// gradient is exactly zero everywhere, yet it is not robust at all.
struct Masked(Linear);

impl Classifier for Masked {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        let rounded = images.mul_scalar(4.0).round().div_scalar(4.0);
        self.0.logits(rounded).mul_scalar(1000.0)
    }
}

#[test]
fn gradient_masking_is_caught_by_the_flags_and_by_square() {
    let inner = Linear::new(10, 5);
    let (x, _, labels) = data(&inner, 30, 6);
    let model = Masked(inner);
    let clean = rslad_tui::tensor_util::predictions(model.logits(x.clone()));
    let labels: Vec<i64> = clean; // every point starts correctly classified
    let report = autoattack::run(&model, &x, &labels, &config(0.3, Version::Standard), &Silent).unwrap();
    assert_eq!(report.clean_accuracy, 1.0);
    assert!(
        report.flags.iter().any(|f| matches!(f, SanityFlag::ZeroGradient { points } if *points == 30)),
        "{:?}",
        report.flags
    );
    let square = report.components.iter().find(|c| c.name == "square").unwrap();
    assert!(square.broken > 0, "Square should break the masked model");
    assert!(report.flags.iter().any(|f| matches!(f, SanityFlag::SquareAfterWhiteBox { .. })));
    let white_box_robust = report.components[2].robust_accuracy;
    assert!(report.robust_accuracy < white_box_robust);
    // The messages say what they mean.
    assert!(report.flags.iter().any(|f| f.message().contains("gradient masking")));
}

/// Adds fresh noise to the logits at every call.
struct Noisy {
    inner: Linear,
    rng: Mutex<StdRng>,
}

impl Classifier for Noisy {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        let logits = self.inner.logits(images);
        let dims = logits.dims();
        let mut rng = self.rng.lock().unwrap();
        let noise: Vec<f32> = (0..dims[0] * dims[1]).map(|_| rng.gen_range(-0.1..0.1)).collect();
        logits + Tensor::from_data(TensorData::new(noise, dims), &compute_device())
    }
}

#[test]
fn a_randomised_model_is_flagged_as_non_deterministic() {
    let inner = Linear::new(10, 7);
    let (x, _, labels) = data(&inner, 8, 8);
    let model = Noisy { inner, rng: Mutex::new(StdRng::seed_from_u64(0)) };
    let version = Version::Custom(vec![Component::ApgdCe]);
    let report = autoattack::run(&model, &x, &labels, &config(0.02, version), &Silent).unwrap();
    assert!(report.flags.iter().any(|f| matches!(f, SanityFlag::NonDeterministic { .. })));
}

#[test]
fn dlr_based_components_refuse_models_with_too_few_classes() {
    for (classes, component) in [(2, Component::ApgdDlr), (3, Component::ApgdT)] {
        let model = Linear::new(classes, 9);
        let (x, _, labels) = data(&model, 4, 10);
        let version = Version::Custom(vec![component]);
        let error = autoattack::run(&model, &x, &labels, &config(0.1, version), &Silent).unwrap_err();
        assert!(error.to_string().contains("at least"), "{error}");
    }
}

#[test]
fn unknown_components_are_named_in_the_error() {
    let error = Component::from_name("deepfool").unwrap_err().to_string();
    assert!(error.contains("deepfool") && error.contains("fab-t"), "{error}");
}
