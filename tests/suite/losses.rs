//! Each loss against a value computed by hand, and its input gradient against finite
//! differences on a small smooth classifier.

use burn::prelude::*;
use burn::tensor::{Int, TensorData};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rslad_tui::attack::{AttackLoss, Classifier, Target, input_gradient};
use rslad_tui::device::compute_device;
use rslad_tui::loss;
use rslad_tui::tensor_util::to_vec;

fn logits(rows: &[[f32; 3]]) -> Tensor<2> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), 3]), &compute_device())
}

fn labels(values: &[i64]) -> Tensor<1, Int> {
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

#[test]
fn cross_entropy_matches_hand_computation() {
    // −log(e³ / (e¹ + e² + e³)) = 0.407606; −log(e¹ / (…)) = 2.407606.
    let ce = loss::cross_entropy(logits(&[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]), labels(&[2, 0]));
    close(&to_vec(ce), &[0.407_606, 2.407_606], 1e-5);
}

#[test]
fn kl_matches_hand_computation_and_treats_zero_mass_as_zero() {
    // KL([.5, .5, 0] ‖ uniform) = log 1.5; KL([.7, .2, .1] ‖ softmax(2, 1, 0)) = 0.0057874.
    let target = logits(&[[0.5, 0.5, 0.0], [0.7, 0.2, 0.1]]);
    let kl = loss::kl_to_target(target, logits(&[[0.0, 0.0, 0.0], [2.0, 1.0, 0.0]]));
    close(&to_vec(kl), &[0.405_465, 0.005_787_4], 1e-5);
}

#[test]
fn kl_of_a_distribution_to_itself_is_zero() {
    let z = logits(&[[0.3, -1.2, 2.0]]);
    let p = loss::soft_label(z.clone(), 1.0);
    close(&to_vec(loss::kl_to_target(p, z)), &[0.0], 1e-6);
}

#[test]
fn cw_margin_is_best_other_logit_minus_true_logit() {
    let margin = loss::cw_margin(logits(&[[1.0, 5.0, 3.0], [1.0, 5.0, 3.0]]), labels(&[0, 1]));
    close(&to_vec(margin), &[4.0, -2.0], 1e-6);
}

#[test]
fn soft_label_applies_the_temperature() {
    // softmax([2, 0, 0] / 2) = e¹ / (e¹ + 2) for the first class.
    let p = to_vec(loss::soft_label(logits(&[[2.0, 0.0, 0.0]]), 2.0));
    let e = std::f32::consts::E;
    close(&p, &[e / (e + 2.0), 1.0 / (e + 2.0), 1.0 / (e + 2.0)], 1e-6);
}

/// logits = W₂ tanh(W₁ x + b₁): smooth, so finite differences are meaningful everywhere.
struct SmoothNet {
    w1: Tensor<2>,
    b1: Tensor<2>,
    w2: Tensor<2>,
}

impl SmoothNet {
    fn new(inputs: usize, hidden: usize, classes: usize, rng: &mut StdRng) -> SmoothNet {
        let device = compute_device();
        let mut matrix = |rows: usize, cols: usize, scale: f32| {
            let values: Vec<f32> = (0..rows * cols)
                .map(|_| rng.gen_range(-scale..scale))
                .collect();
            Tensor::<2>::from_data(TensorData::new(values, [rows, cols]), &device)
        };
        SmoothNet {
            w1: matrix(inputs, hidden, 0.5),
            b1: matrix(1, hidden, 0.5),
            w2: matrix(hidden, classes, 1.0),
        }
    }
}

impl Classifier for SmoothNet {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        let x = images.flatten::<2>(1, 3);
        (x.matmul(self.w1.clone()) + self.b1.clone())
            .tanh()
            .matmul(self.w2.clone())
    }
}

fn finite_difference_check(loss: AttackLoss) {
    let mut rng = StdRng::seed_from_u64(7);
    let (n, c, h, w, classes) = (3, 1, 4, 4, 5);
    let net = SmoothNet::new(c * h * w, 8, classes, &mut rng);
    let device = compute_device();
    let pixels: Vec<f32> = (0..n * c * h * w)
        .map(|_| rng.gen_range(0.2..0.8))
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(pixels.clone(), [n, c, h, w]), &device);
    let y = labels(&[0, 3, 4]);
    let soft = loss::soft_label(
        Tensor::<2>::from_data(
            TensorData::new(
                (0..n * classes)
                    .map(|_| rng.gen_range(-2.0..2.0))
                    .collect::<Vec<f32>>(),
                [n, classes],
            ),
            &device,
        ),
        1.0,
    );
    let target = Target {
        labels: Some(y),
        soft: Some(soft),
    };

    let analytic = to_vec(input_gradient(&net, &x, &target, loss).gradient);
    let total_loss = |values: &[f32]| -> f64 {
        let x = Tensor::<4>::from_data(TensorData::new(values.to_vec(), [n, c, h, w]), &device);
        to_vec(target.loss(loss, net.logits(x)))
            .iter()
            .map(|&v| f64::from(v))
            .sum()
    };
    let step = 1e-2f32;
    for index in (0..pixels.len()).step_by(5) {
        let mut plus = pixels.clone();
        let mut minus = pixels.clone();
        plus[index] += step;
        minus[index] -= step;
        let numeric = (total_loss(&plus) - total_loss(&minus)) / (2.0 * f64::from(step));
        let exact = f64::from(analytic[index]);
        assert!(
            (numeric - exact).abs() <= 2e-3 + 2e-2 * exact.abs(),
            "{loss:?}: pixel {index}: finite difference {numeric}, autodiff {exact}"
        );
    }
}

#[test]
fn cross_entropy_input_gradient_matches_finite_differences() {
    finite_difference_check(AttackLoss::CrossEntropy);
}

#[test]
fn kl_input_gradient_matches_finite_differences() {
    finite_difference_check(AttackLoss::KlToTarget);
}

#[test]
fn cw_margin_input_gradient_matches_finite_differences() {
    finite_difference_check(AttackLoss::CwMargin);
}
