//! Per-sample losses on logits, shared by attacks and training objectives.
//!
//! Every function returns one value per sample (`[batch]`), so attacks can sum them (the
//! gradient of a sum gives each sample its own gradient) and trainers can average them.
//! Notation of the methods spec: p(z) = softmax(z), KL(P‖Q) = Σ_c P_c (log P_c − log Q_c).

use burn::prelude::*;
use burn::tensor::Int;
use burn::tensor::activation::{log_softmax, softmax};

/// Cross-entropy with hard labels: −log p(z)_y.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let n = labels.dims()[0];
    let log_p = log_softmax(logits, 1);
    log_p.gather(1, labels.reshape([n, 1])).reshape([n]).neg()
}

/// KL(P ‖ p(logits)) for a fixed target distribution P (rows of `target_probs` sum to 1).
/// Terms with P_c = 0 contribute 0, as in the limit P log P → 0.
pub fn kl_to_target(target_probs: Tensor<2>, logits: Tensor<2>) -> Tensor<1> {
    let log_q = log_softmax(logits, 1);
    // log(max(P, tiny)) only matters where P > 0; where P = 0 the product is 0 either way.
    let log_p = target_probs.clone().clamp_min(1e-30).log();
    (target_probs * (log_p - log_q))
        .sum_dim(1)
        .squeeze_dim::<1>(1)
}

/// The temperature-scaled soft label p(z/τ), detached from any graph.
pub fn soft_label(logits: Tensor<2>, temperature: f64) -> Tensor<2> {
    softmax(logits.div_scalar(temperature), 1).detach()
}

/// The Carlini–Wagner margin max_{i≠y} z_i − z_y (positive when the sample is misclassified).
pub fn cw_margin(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [n, classes] = logits.dims();
    let one_hot = labels.clone().one_hot::<2>(classes).float();
    let true_logit = logits
        .clone()
        .gather(1, labels.reshape([n, 1]))
        .reshape([n]);
    // Push the true class far down so the max runs over the other classes only.
    let others = logits - one_hot.mul_scalar(1e9);
    others.max_dim(1).reshape([n]) - true_logit
}
