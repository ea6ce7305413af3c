//! The Difference of Logits Ratio losses of APGD (Croce & Hein 2020, §4), untargeted and
//! targeted.
//!
//! Both are shift- and scale-invariant in the logits, so a model cannot hide behind huge or
//! saturated logits the way it can against cross-entropy. They mirror `APGDAttack.dlr_loss`
//! and `APGDAttack_targeted.dlr_loss_targeted` of fra31/auto-attack (`autopgd_base.py`).
//!
//! π sorts a row of logits in decreasing order: z_π1 ≥ z_π2 ≥ z_π3 ≥ …  The ranking is taken
//! on detached logits and the ranked values are then gathered from the logits themselves, so
//! gradients flow to whichever class holds each rank (as through PyTorch's `sort`).

use crate::error::AttackError;
use crate::tensor_util::int_to_vec;
use burn::prelude::*;
use burn::tensor::Int;

/// The 1e−12 the reference adds to every DLR denominator.
const DENOMINATOR_EPSILON: f32 = 1e-12;

/// Untargeted DLR: −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e−12), per sample.
///
/// Positive exactly when the sample is misclassified. Needs at least 3 classes (z_π3).
pub fn dlr_loss(logits: Tensor<2>, labels: Tensor<1, Int>) -> Result<Tensor<1>, AttackError> {
    let [n, classes] = logits.dims();
    require_classes("DLR", 3, classes)?;
    check_classes_in_range("labels", &labels, n, classes)?;
    let ranked = Ranked::new(&logits, 3);
    let true_logit = pick(&logits, labels.clone());
    // The reference: z_π2 where the top class is y, else z_π1 — the largest other logit.
    let top_is_label = ranked.index(0).equal(labels);
    let best_other = ranked.value(0).mask_where(top_is_label, ranked.value(1));
    let denominator = ranked.value(0) - ranked.value(2);
    Ok((true_logit - best_other).neg() / denominator.add_scalar(DENOMINATOR_EPSILON))
}

/// Targeted DLR: −(z_y − z_t) / (z_π1 − ½(z_π3 + z_π4) + 1e−12), per sample.
///
/// Needs at least 4 classes (z_π4).
pub fn targeted_dlr_loss(
    logits: Tensor<2>,
    labels: Tensor<1, Int>,
    targets: Tensor<1, Int>,
) -> Result<Tensor<1>, AttackError> {
    let [n, classes] = logits.dims();
    require_classes("targeted DLR", 4, classes)?;
    check_classes_in_range("labels", &labels, n, classes)?;
    check_classes_in_range("targets", &targets, n, classes)?;
    let ranked = Ranked::new(&logits, 4);
    let true_logit = pick(&logits, labels);
    let target_logit = pick(&logits, targets);
    let denominator = ranked.value(0) - (ranked.value(2) + ranked.value(3)).mul_scalar(0.5);
    Ok((true_logit - target_logit).neg() / denominator.add_scalar(DENOMINATOR_EPSILON))
}

/// `Err(TooFewClasses)` when a loss needs more classes than the model has.
pub(crate) fn require_classes(
    attack: &'static str,
    needed: usize,
    classes: usize,
) -> Result<(), AttackError> {
    if classes < needed {
        return Err(AttackError::TooFewClasses {
            attack,
            needed,
            classes,
        });
    }
    Ok(())
}

/// One class index per row, each inside [0, classes): anything else would make `gather` read
/// out of bounds.
fn check_classes_in_range(
    what: &str,
    indices: &Tensor<1, Int>,
    rows: usize,
    classes: usize,
) -> Result<(), AttackError> {
    let values = int_to_vec(indices.clone());
    if values.len() != rows {
        return Err(AttackError::Invalid(format!(
            "{} {what} for {rows} rows of logits",
            values.len()
        )));
    }
    match values.iter().find(|&&c| c < 0 || c as usize >= classes) {
        Some(bad) => Err(AttackError::Invalid(format!(
            "class {bad} in the {what} is outside 0..{classes}"
        ))),
        None => Ok(()),
    }
}

/// z_c for one class c per row.
pub(crate) fn pick(logits: &Tensor<2>, classes: Tensor<1, Int>) -> Tensor<1> {
    let n = classes.dims()[0];
    logits
        .clone()
        .gather(1, classes.reshape([n, 1]))
        .reshape([n])
}

/// The first few ranks of each row of logits.
struct Ranked {
    logits: Tensor<2>,
    /// `[n, ranks]`: the class holding each rank, from a sort of the detached logits.
    order: Tensor<2, Int>,
}

impl Ranked {
    fn new(logits: &Tensor<2>, ranks: usize) -> Ranked {
        let n = logits.dims()[0];
        let order = logits
            .clone()
            .detach()
            .argsort_descending(1)
            .slice([0..n, 0..ranks]);
        Ranked {
            logits: logits.clone(),
            order,
        }
    }

    /// The class at rank `r` (0-based: r = 0 is π1).
    fn index(&self, r: usize) -> Tensor<1, Int> {
        let n = self.order.dims()[0];
        self.order.clone().slice([0..n, r..r + 1]).reshape([n])
    }

    /// z_π(r+1), differentiable in the logits.
    fn value(&self, r: usize) -> Tensor<1> {
        pick(&self.logits, self.index(r))
    }
}
