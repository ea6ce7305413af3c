//! The outer losses of the training methods (methods spec §1), per sample, on logits.
//!
//! Pure functions of logits so each can be checked against a hand-computed value; the
//! methods in [`super::Method`] produce the logits (clean, adversarial, teacher) and average.
//! Teacher logits are always detached: the teacher is never trained.

use crate::loss::{cross_entropy, kl_to_target, soft_label};
use burn::prelude::*;
use burn::tensor::Int;
use burn::tensor::activation::softmax;

/// TRADES: CE(S(x), y) + β · KL(p(S(x)) ‖ p(S(x′))). The gradient flows through both the
/// natural and the adversarial logits, as in the TRADES code.
pub fn trades(
    natural: Tensor<2>,
    adversarial: Tensor<2>,
    labels: Tensor<1, Int>,
    beta: f32,
) -> Tensor<1> {
    let clean_probs = softmax(natural.clone(), 1);
    cross_entropy(natural, labels) + kl_to_target(clean_probs, adversarial).mul_scalar(beta)
}

/// KD (Hinton): (1 − α) · CE(S(x), y) + α · τ² · KL(p(T(x)/τ) ‖ p(S(x)/τ)).
pub fn kd(
    student: Tensor<2>,
    teacher: Tensor<2>,
    labels: Tensor<1, Int>,
    alpha: f32,
    temperature: f32,
) -> Tensor<1> {
    let tau = f64::from(temperature);
    let soft = soft_label(teacher.detach(), tau);
    let distill = kl_to_target(soft, student.clone().div_scalar(tau));
    cross_entropy(student, labels).mul_scalar(1.0 - alpha)
        + distill.mul_scalar(alpha * temperature * temperature)
}

/// ARD: α · τ² · s · KL(p(T(x)/τ) ‖ p(S(x′)/τ)) + (1 − α) · CE(S(x), y). `kl_scale` s is
/// 1/classes in ARD's code (its `nn.KLDivLoss()` averages over batch × classes), 1 in IAD's.
pub fn ard(
    natural: Tensor<2>,
    adversarial: Tensor<2>,
    teacher_natural: Tensor<2>,
    labels: Tensor<1, Int>,
    alpha: f32,
    temperature: f32,
    kl_scale: f32,
) -> Tensor<1> {
    let tau = f64::from(temperature);
    let soft = soft_label(teacher_natural.detach(), tau);
    let distill = kl_to_target(soft, adversarial.div_scalar(tau));
    distill.mul_scalar(alpha * temperature * temperature * kl_scale)
        + cross_entropy(natural, labels).mul_scalar(1.0 - alpha)
}

/// IAD (IAD-I): ARD's loss, plus α · (1 − w) · KL(p(S(x)) ‖ p(S(x′))) with w = p(T(x′))_y^β
/// once `introspection` is on (after the warm-up). w, from the teacher, is a constant.
#[allow(clippy::too_many_arguments)]
pub fn iad(
    natural: Tensor<2>,
    adversarial: Tensor<2>,
    teacher_natural: Tensor<2>,
    teacher_adversarial: Tensor<2>,
    labels: Tensor<1, Int>,
    alpha: f32,
    temperature: f32,
    beta: f32,
    introspection: bool,
) -> Tensor<1> {
    let base = ard(
        natural.clone(),
        adversarial.clone(),
        teacher_natural,
        labels.clone(),
        alpha,
        temperature,
        1.0,
    );
    if !introspection {
        return base;
    }
    let weight = teacher_true_class_probability(teacher_adversarial, labels).powf_scalar(beta);
    let own = kl_to_target(softmax(natural, 1), adversarial);
    base + own * weight.neg().add_scalar(1.0).mul_scalar(alpha)
}

/// RSLAD: scale · [α · KL(p(T(x)) ‖ p(S(x′))) + (1 − α) · KL(p(T(x)) ‖ p(S(x)))], τ = 1.
/// The teacher's soft label on the natural image is the target of both terms; the true labels
/// are never used.
pub fn rslad(
    natural: Tensor<2>,
    adversarial: Tensor<2>,
    teacher_natural: Tensor<2>,
    alpha: f32,
    scale: f32,
) -> Tensor<1> {
    let soft = soft_label(teacher_natural.detach(), 1.0);
    let robust = kl_to_target(soft.clone(), adversarial).mul_scalar(alpha);
    let clean = kl_to_target(soft, natural).mul_scalar(1.0 - alpha);
    (robust + clean).mul_scalar(scale)
}

/// p(T)_y per sample, detached.
fn teacher_true_class_probability(teacher: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let n = labels.dims()[0];
    softmax(teacher.detach(), 1)
        .gather(1, labels.reshape([n, 1]))
        .reshape([n])
}
