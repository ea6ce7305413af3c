//! The core of every gradient attack: a per-sample loss and its gradient with respect to the
//! input only.

use super::Classifier;
use crate::loss;
use crate::tensor_util::{predictions, to_vec};
use burn::prelude::*;
use burn::tensor::Int;

/// The loss an attack maximises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AttackLoss {
    /// Cross-entropy with the true label (FGSM, PGD-SAT, ARD, IAD).
    CrossEntropy,
    /// KL divergence from a fixed soft label (TRADES: the model's own natural prediction;
    /// RSLAD: the teacher's soft label on the natural image).
    KlToTarget,
    /// Carlini–Wagner margin max_{i≠y} z_i − z_y (CW∞).
    CwMargin,
}

impl AttackLoss {
    pub fn name(self) -> &'static str {
        match self {
            AttackLoss::CrossEntropy => "ce",
            AttackLoss::KlToTarget => "kl",
            AttackLoss::CwMargin => "cw",
        }
    }
}

/// What an attack is measured against: hard labels, a soft label, or both.
#[derive(Clone, Debug)]
pub struct Target {
    /// True labels, needed by CE and CW losses and to tell whether a point is misclassified.
    pub labels: Option<Tensor<1, Int>>,
    /// Probabilities `[n, classes]`, needed by the KL loss.
    pub soft: Option<Tensor<2>>,
}

impl Target {
    pub fn labels(labels: Tensor<1, Int>) -> Target {
        Target {
            labels: Some(labels),
            soft: None,
        }
    }

    pub fn soft(soft: Tensor<2>) -> Target {
        Target {
            labels: None,
            soft: Some(soft),
        }
    }

    fn require_labels(&self, loss: AttackLoss) -> Tensor<1, Int> {
        self.labels
            .clone()
            .unwrap_or_else(|| panic!("the {} attack loss needs labels", loss.name()))
    }

    /// The per-sample loss of `logits` against this target.
    pub fn loss(&self, loss: AttackLoss, logits: Tensor<2>) -> Tensor<1> {
        match loss {
            AttackLoss::CrossEntropy => loss::cross_entropy(logits, self.require_labels(loss)),
            AttackLoss::CwMargin => loss::cw_margin(logits, self.require_labels(loss)),
            AttackLoss::KlToTarget => {
                let soft = self
                    .soft
                    .clone()
                    .expect("the kl attack loss needs a soft label");
                loss::kl_to_target(soft, logits)
            }
        }
    }
}

/// What one forward/backward pass of an attack learns about the current points.
pub struct GradientStep {
    /// ∇ₓ Σᵢ lossᵢ: each sample's gradient of its own loss.
    pub gradient: Tensor<4>,
    /// The per-sample loss at the current points.
    pub loss: Vec<f32>,
    /// The predicted class at the current points.
    pub predictions: Vec<i64>,
}

/// The per-sample loss at `images` and its gradient with respect to the images only.
///
/// The images become an autodiff leaf; the classifier's own parameters take part only as
/// constants when it is an [`eval_view`](super::eval_view), so no weight gradients are computed.
pub fn input_gradient(
    classifier: &impl Classifier,
    images: &Tensor<4>,
    target: &Target,
    loss: AttackLoss,
) -> GradientStep {
    let leaf = images.clone().without_autodiff().autodiff().require_grad();
    let logits = classifier.logits(leaf.clone());
    let per_sample = target.loss(loss, logits.clone());
    let grads = per_sample.clone().sum().backward();
    let gradient = leaf
        .grad(&grads)
        .expect("the input of an attack is an autodiff leaf")
        .without_autodiff();
    GradientStep {
        gradient,
        loss: to_vec(per_sample.detach().without_autodiff()),
        predictions: predictions(logits.detach().without_autodiff()),
    }
}
