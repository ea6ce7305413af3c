//! Attacks keep to their threat model, PGD's best-so-far loss never falls with more steps, and
//! on a linear classifier FGSM and PGD find the closed-form worst case.

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rslad_tui::attack::{
    self, AttackLoss, BnMode, Classifier, PgdConfig, Selection, Start, Target, max_linf_distance,
};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::tensor_util::{labels, to_vec};
use rslad_tui::zoo::{Arch, Model, ModelSpec};

fn random_images(n: usize, seed: u64) -> Tensor<4> {
    let mut rng = StdRng::seed_from_u64(seed);
    // Include exact 0s and 1s: the [0, 1] clipping must hold at the edges too.
    let values: Vec<f32> = (0..n * 28 * 28)
        .map(|_| match rng.gen_range(0..4) {
            0 => 0.0,
            1 => 1.0,
            _ => rng.gen_range(0.0..1.0),
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [n, 1, 28, 28]), &compute_device())
}

fn random_labels(n: usize, seed: u64) -> Vec<i64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(0..10)).collect()
}

fn assert_in_threat_model(adversarial: &Tensor<4>, natural: &Tensor<4>, epsilon: f32) {
    let distance = max_linf_distance(adversarial, natural);
    assert!(
        distance <= epsilon + 1e-6,
        "left the ε-ball: {distance} > {epsilon}"
    );
    let values = to_vec(adversarial.clone());
    assert!(
        values.iter().all(|v| (0.0..=1.0).contains(v)),
        "left [0, 1]"
    );
}

#[test]
fn every_attack_stays_in_the_epsilon_ball_and_the_unit_box() {
    let device = autodiff_device();
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 3, &device).unwrap();
    let x = random_images(6, 11);
    let y = labels(&random_labels(6, 12), &compute_device());
    let soft = rslad_tui::loss::soft_label(attack::eval_view(&model).forward(x.clone()), 1.0);
    let target = Target {
        labels: Some(y),
        soft: Some(soft),
    };
    let mut rng = StdRng::seed_from_u64(5);
    for mode in [BnMode::Eval, BnMode::Train] {
        let view = attack::view(&model, mode);
        for epsilon in [0.0, 0.05, 0.3] {
            let adversarial = attack::fgsm(&view, &x, &target, epsilon, &mut rng).adversarial;
            assert_in_threat_model(&adversarial, &x, epsilon);
            for loss in [
                AttackLoss::CrossEntropy,
                AttackLoss::KlToTarget,
                AttackLoss::CwMargin,
            ] {
                for start in [Start::None, Start::Uniform, Start::SmallGaussian] {
                    for selection in [Selection::Last, Selection::BestLoss, Selection::WorstCase] {
                        // A step larger than ε must still be projected back.
                        let config = PgdConfig {
                            epsilon,
                            step_size: 0.2,
                            steps: 3,
                            loss,
                            start,
                            selection,
                        };
                        let out = attack::pgd(&view, &x, &target, &config, &mut rng);
                        assert_in_threat_model(&out.adversarial, &x, epsilon);
                    }
                }
            }
        }
    }
}

#[test]
fn pgd_best_loss_never_falls_with_more_steps() {
    let model = Model::build(ModelSpec::native(Arch::SmallCnn, 10), 4, &autodiff_device()).unwrap();
    let view = attack::eval_view(&model);
    let x = random_images(8, 21);
    let target = Target::labels(labels(&random_labels(8, 22), &compute_device()));
    let mut previous: Option<Vec<f32>> = None;
    for steps in [0, 1, 3, 8] {
        let config = PgdConfig {
            epsilon: 0.3,
            step_size: 0.05,
            steps,
            loss: AttackLoss::CrossEntropy,
            start: Start::Uniform,
            selection: Selection::BestLoss,
        };
        // The same seed gives the same start, so more steps see a superset of iterates.
        let mut rng = StdRng::seed_from_u64(99);
        let loss = attack::pgd(&view, &x, &target, &config, &mut rng)
            .loss
            .unwrap();
        if let Some(previous) = &previous {
            for (now, before) in loss.iter().zip(previous) {
                assert!(
                    now >= before,
                    "{steps} steps: loss fell from {before} to {now}"
                );
            }
        }
        previous = Some(loss);
    }
    let first_and_last: Vec<f32> = previous.unwrap();
    assert!(first_and_last.iter().all(|l| l.is_finite()));
}

/// logits = x·W + b with two classes: the worst case in the ε-ball ∩ [0, 1] is known exactly.
struct Linear {
    weight: Tensor<2>,
    bias: Tensor<2>,
    weights: Vec<f32>,
}

impl Linear {
    fn new(seed: u64) -> Linear {
        let mut rng = StdRng::seed_from_u64(seed);
        let weights: Vec<f32> = (0..784 * 2).map(|_| rng.gen_range(-0.1..0.1)).collect();
        let device = compute_device();
        Linear {
            weight: Tensor::from_data(TensorData::new(weights.clone(), [784, 2]), &device),
            bias: Tensor::from_data(TensorData::new(vec![0.1f32, -0.1], [1, 2]), &device),
            weights,
        }
    }

    /// x + ε·sign(w_other − w_true), clipped to [0, 1]: the maximiser of the (linear) margin,
    /// and so of the cross-entropy, which increases with it.
    fn worst_case(&self, x: &[f32], label: usize, epsilon: f32) -> Vec<f32> {
        x.iter()
            .enumerate()
            .map(|(i, &xi)| {
                let direction = self.weights[i * 2 + (1 - label)] - self.weights[i * 2 + label];
                (xi + epsilon * direction.signum()).clamp(0.0, 1.0)
            })
            .collect()
    }
}

impl Classifier for Linear {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        images.flatten::<2>(1, 3).matmul(self.weight.clone()) + self.bias.clone()
    }
}

#[test]
fn on_a_linear_classifier_fgsm_and_pgd_find_the_closed_form_worst_case() {
    let model = Linear::new(31);
    let x = random_images(4, 32);
    let y = [0i64, 1, 1, 0];
    let target = Target::labels(labels(&y, &compute_device()));
    let pixels = to_vec(x.clone());
    let epsilon = 0.3;
    let mut rng = StdRng::seed_from_u64(1);

    let fgsm = to_vec(attack::fgsm(&model, &x, &target, epsilon, &mut rng).adversarial);
    let pgd_config = PgdConfig {
        epsilon,
        step_size: 0.01,
        steps: 40,
        loss: AttackLoss::CrossEntropy,
        start: Start::None,
        selection: Selection::Last,
    };
    let pgd = to_vec(attack::pgd(&model, &x, &target, &pgd_config, &mut rng).adversarial);
    // From a uniform start up to ε away on the wrong side, 40 steps of 0.02 still reach the corner.
    let cw_config = PgdConfig {
        loss: AttackLoss::CwMargin,
        start: Start::Uniform,
        step_size: 0.02,
        ..pgd_config
    };
    let cw = to_vec(attack::pgd(&model, &x, &target, &cw_config, &mut rng).adversarial);

    for (i, &label) in y.iter().enumerate() {
        let range = i * 784..(i + 1) * 784;
        let expected = model.worst_case(&pixels[range.clone()], label as usize, epsilon);
        for (name, result) in [("FGSM", &fgsm), ("PGD", &pgd), ("CW", &cw)] {
            for (got, want) in result[range.clone()].iter().zip(&expected) {
                assert!(
                    (got - want).abs() < 1e-5,
                    "{name}, sample {i}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn attacks_are_reproducible_from_their_seed() {
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 8, &autodiff_device()).unwrap();
    let view = attack::eval_view(&model);
    let x = random_images(4, 41);
    let target = Target::labels(labels(&random_labels(4, 42), &compute_device()));
    let config = PgdConfig {
        epsilon: 0.3,
        step_size: 0.01,
        steps: 5,
        loss: AttackLoss::CrossEntropy,
        start: Start::Uniform,
        selection: Selection::Last,
    };
    let run = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        to_vec(attack::pgd(&view, &x, &target, &config, &mut rng).adversarial)
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

/// A small test set of random images with random labels.
fn random_set(n: usize) -> rslad_tui::data::ImageSet {
    let mut rng = StdRng::seed_from_u64(5);
    rslad_tui::data::ImageSet {
        pixels: (0..n * 784).map(|_| rng.gen_range(0..=255u8)).collect(),
        labels: (0..n).map(|_| rng.gen_range(0..10u8)).collect(),
        channels: 1,
        height: 28,
        width: 28,
        num_classes: 10,
    }
}

/// Every float tensor of the model (weights, biases, batch-norm parameters and statistics)
/// set to `value`.
struct Fill(f32);

impl burn::module::ModuleMapper for Fill {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let values = param.val().ones_like().mul_scalar(self.0);
        burn::module::Param::initialized(param.id, values)
    }
}

/// Issue 21, item 13: `eval --n 0` printed 0.00% for every attack (and AutoAttack an empty
/// report) and exited 0; an accuracy of no images is an error.
#[test]
fn evaluating_no_images_is_an_error() {
    use rslad_tui::attack::autoattack::AutoAttackConfig;
    use rslad_tui::error::AttackError;
    use rslad_tui::eval::{self, EvalAttack};
    use rslad_tui::progress::Silent;
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 0, &compute_device()).unwrap();
    let empty = random_set(0);
    let attacks = [EvalAttack::fgsm(0.3), EvalAttack::pgd(0.3, 2, 0.1)];
    assert_eq!(
        eval::evaluate(&model, &empty, &attacks, 0, &Silent),
        Err(AttackError::NoImages)
    );
    let config = AutoAttackConfig::standard(0.3);
    assert_eq!(
        eval::autoattack(&model, &empty, &config, &Silent),
        Err(AttackError::NoImages)
    );
    let message = AttackError::NoImages.to_string();
    assert!(message.contains("no images to evaluate"), "{message}");
    // One image is enough.
    let report = eval::evaluate(&model, &random_set(1), &attacks, 0, &Silent).unwrap();
    assert_eq!(report.images, 1);
}

/// Issue 21, item 14: with weights of 3e38 every logit overflows to NaN or ∞; `eval` reported
/// FGSM accuracy equal to clean with max |δ| 0 (the attack's gradient is NaN, so it never
/// moves). Outputs that are not finite are an error, before any attack runs.
#[test]
fn outputs_that_are_not_finite_are_an_error_not_an_accuracy() {
    use rslad_tui::attack::autoattack::AutoAttackConfig;
    use rslad_tui::error::AttackError;
    use rslad_tui::eval::{self, EvalAttack};
    use rslad_tui::progress::Silent;
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 0, &compute_device())
        .unwrap()
        .map(&mut Fill(3e38));
    let test = random_set(30);
    let attacks = [EvalAttack::fgsm(0.3)];
    let error = eval::evaluate(&model, &test, &attacks, 0, &Silent).unwrap_err();
    assert_eq!(
        error,
        AttackError::NonFiniteOutputs {
            points: "test images",
            count: 30,
            batch: 30,
            first: 0,
        }
    );
    assert!(error.to_string().contains("not finite"), "{error}");
    let error =
        eval::autoattack(&model, &test, &AutoAttackConfig::standard(0.3), &Silent).unwrap_err();
    assert!(
        matches!(error, AttackError::NonFiniteOutputs { .. }),
        "{error}"
    );
}

/// Natural images in [0, 1], iterates in [−0.4, 1.4] (outside the box and the ball) with a NaN at
/// index 5, and gradients in [−1, 1] starting with 0, −0, NaN and a tiny positive value.
fn step_inputs(seed: u64, dims: [usize; 4]) -> [Vec<f32>; 3] {
    let mut rng = StdRng::seed_from_u64(seed);
    let len: usize = dims.iter().product();
    let natural: Vec<f32> = (0..len).map(|_| rng.gen_range(0.0..1.0)).collect();
    let mut current: Vec<f32> = (0..len).map(|_| rng.gen_range(-0.4..1.4)).collect();
    let mut gradient: Vec<f32> = (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect();
    gradient[..4].copy_from_slice(&[0.0, -0.0, f32::NAN, 1e-30]);
    current[5] = f32::NAN;
    [natural, current, gradient]
}

fn bits(t: Tensor<4>) -> Vec<u32> {
    to_vec(t).iter().map(|v| v.to_bits()).collect()
}

/// PGD's step and projection in one pass: the same bits as burn's seven operations
/// (`project(x + sign(∇) · η, natural, ε)`), with zero, −0 and NaN gradients (sign 0), a NaN
/// iterate, iterates outside [0, 1] and outside the ball; on the flex device it is the fused pass
/// that runs, on the autodiff device burn's operations.
#[test]
fn the_signed_step_matches_burns_operations_bit_for_bit() {
    let dims = [3, 2, 5, 7];
    let [natural, current, gradient] = step_inputs(77, dims);
    for device in [compute_device(), autodiff_device()] {
        let tensor = |v: &[f32]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), dims), &device);
        let (x, g, n) = (tensor(&current), tensor(&gradient), tensor(&natural));
        let fused_ran = rslad_tui::conv::elementwise([&x, &g, &n], |_| 0.0).is_some();
        assert_eq!(fused_ran, !device.is_autodiff());
        for (step_size, epsilon) in [(0.01, 0.3), (0.05, 0.1), (0.5, 0.0)] {
            let burns = attack::project_with_burn_ops(
                x.clone() + g.clone().sign().mul_scalar(step_size),
                &n,
                epsilon,
            );
            let ours = attack::signed_step(x.clone(), g.clone(), step_size, &n, epsilon);
            assert_eq!(
                bits(ours.clone()),
                bits(burns),
                "η {step_size}, ε {epsilon}"
            );
            assert!(to_vec(ours)[5].is_nan(), "a NaN iterate stays NaN");
        }
    }
}

/// The projection alone in one pass: the same bits as burn's `max_pair`, `min_pair` and `clamp`,
/// with a NaN candidate, candidates outside [0, 1] and outside the ball, and ε = 0; on the
/// autodiff device burn's operations run.
#[test]
fn the_projection_matches_burns_operations_bit_for_bit() {
    let dims = [3, 2, 5, 7];
    let [natural, current, _] = step_inputs(80, dims);
    for device in [compute_device(), autodiff_device()] {
        let tensor = |v: &[f32]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), dims), &device);
        let (x, n) = (tensor(&current), tensor(&natural));
        for epsilon in [0.3, 0.1, 0.0] {
            let burns = attack::project_with_burn_ops(x.clone(), &n, epsilon);
            let ours = attack::project(x.clone(), &n, epsilon);
            assert_eq!(bits(ours.clone()), bits(burns), "ε {epsilon}");
            let ours = to_vec(ours);
            assert!(ours[5].is_nan(), "a NaN candidate stays NaN");
            let inside = ours
                .iter()
                .zip(&natural)
                .enumerate()
                .filter(|(i, _)| *i != 5);
            for (_, (&p, &n)) in inside {
                assert!((0.0..=1.0).contains(&p) && (p - n).abs() <= epsilon + 1e-6);
            }
        }
    }
}

/// APGD's momentum update in one pass: the same bits as burn's operations, `z = P(x + η·sign(∇))`
/// then `P(x + a(z − x) + (1 − a)(x − x_prev))`, with a step per image (a broadcast tensor),
/// a = 1 (the first iteration) and 0.75, zero, −0 and NaN gradients and a NaN iterate.
#[test]
fn the_momentum_step_matches_burns_operations_bit_for_bit() {
    let dims = [3, 2, 5, 7];
    let [natural, current, gradient] = step_inputs(78, dims);
    // The iterate before: inside [0, 1].
    let previous = step_inputs(79, dims)[0].clone();
    let device = compute_device();
    let tensor = |v: &[f32]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), dims), &device);
    let (x, p, g, n) = (
        tensor(&current),
        tensor(&previous),
        tensor(&gradient),
        tensor(&natural),
    );
    let steps = TensorData::new(vec![0.6f32, 0.15, 0.0375], [3, 1, 1, 1]);
    let step = Tensor::<4>::from_data(steps, &device).expand(dims);
    assert!(rslad_tui::conv::elementwise([&x, &p, &g, &step, &n], |_| 0.0).is_some());
    for (a, epsilon) in [(1.0, 0.3), (0.75, 0.3), (0.75, 0.0)] {
        let momentum = x.clone() - p.clone();
        let z =
            attack::project_with_burn_ops(x.clone() + g.clone().sign() * step.clone(), &n, epsilon);
        let moved = x.clone() + (z - x.clone()).mul_scalar(a) + momentum.mul_scalar(1.0 - a);
        let burns = attack::project_with_burn_ops(moved, &n, epsilon);
        let ours = attack::momentum_step([&x, &p, &g, &step], &n, epsilon, a);
        assert_eq!(bits(ours.clone()), bits(burns), "a {a}, ε {epsilon}");
        assert!(to_vec(ours)[5].is_nan(), "a NaN iterate stays NaN");
    }
}
