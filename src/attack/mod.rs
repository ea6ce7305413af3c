//! L∞ attacks: FGSM and PGD with a choice of loss, start and result selection.
//!
//! Every attack returns points inside the ε-ball around the input, intersected with [0, 1].
//! Attacks work on anything that maps images to logits ([`Classifier`]); the caller decides
//! the model's batch-norm mode by passing an [`eval_view`] or a [`train_view`] of the model.

mod apgd;
pub mod autoattack;
mod dlr;
mod fab;
mod gradient;
mod inputs;
mod pgd;
mod project;
mod square;

pub use apgd::{ApgdConfig, ApgdLoss, ApgdReport, apgd, apgd_targeted, checkpoints};
pub use dlr::{dlr_loss, targeted_dlr_loss};
pub use fab::{FabConfig, fab_targeted, project_linf_box};
pub use gradient::{AttackLoss, Target, input_gradient};
pub use pgd::{AttackOutput, PgdConfig, Selection, Start, fgsm, fgsm_config, pgd, pgd_cancellable};
pub use project::{max_linf_distance, momentum_step, project, project_with_burn_ops, signed_step};
pub use square::{SquareConfig, p_selection, square};

use crate::error::AttackError;
use crate::tensor_util::{predictions, to_vec};
use crate::zoo::Model;
use burn::prelude::*;

/// Anything that maps a batch of images to logits.
pub trait Classifier {
    fn logits(&self, images: Tensor<4>) -> Tensor<2>;
}

impl Classifier for Model {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }
}

/// The model as evaluation attacks (and RSLAD's and TRADES's training attacks) see it: batch
/// norm on running statistics, no parameter gradients, input gradients still flow.
///
/// `valid()` also folds the latest running-statistics update into the shared state, so the
/// view uses the statistics as they are after the last training batch.
pub fn eval_view(model: &Model) -> Model {
    model.valid()
}

/// The model as ARD's and IAD's training attacks see it: batch norm in training mode (batch
/// statistics, running statistics updated, as PyTorch's `model.train()`), but no parameter
/// gradients.
pub fn train_view(model: &Model) -> Model {
    model.clone().no_grad()
}

/// What an AutoAttack component returns for a batch: a point per input, inside the ε-ball
/// and [0, 1], and which inputs it misclassified (checked by the attack's own last forward
/// pass; the composer re-checks with a fresh one).
pub struct AttackOutcome {
    pub adversarial: Tensor<4>,
    pub fooled: Vec<bool>,
}

/// Which batch-norm mode an attack runs in. (`ValueEnum`: `--attack-bn` takes it by name, so
/// the command line needs no copy of this enum.)
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
pub enum BnMode {
    Eval,
    Train,
}

/// The model in the given batch-norm mode, for an attack.
pub fn view(model: &Model, mode: BnMode) -> Model {
    match mode {
        BnMode::Eval => eval_view(model),
        BnMode::Train => train_view(model),
    }
}

/// The predicted class of each row of `logits`, or an error if any row holds a NaN or an
/// infinity: a model whose outputs overflowed "predicts" whatever `argmax` makes of NaN, and
/// every attack on it fails without moving (its gradients are NaN too), so its accuracies
/// would look plausible and mean nothing. `rows` are the rows' indices among all the images
/// evaluated, for the message; `points` names them ("test images", "adversarial images").
pub fn checked_predictions(
    logits: Tensor<2>,
    rows: &[usize],
    points: &'static str,
) -> Result<Vec<i64>, AttackError> {
    let classes = logits.dims()[1].max(1);
    let values = to_vec(logits.clone());
    let bad: Vec<usize> = values
        .chunks(classes)
        .zip(rows)
        .filter(|(row, _)| row.iter().any(|v| !v.is_finite()))
        .map(|(_, &i)| i)
        .collect();
    if let Some(&first) = bad.first() {
        return Err(AttackError::NonFiniteOutputs {
            points,
            count: bad.len(),
            batch: rows.len(),
            first,
        });
    }
    Ok(predictions(logits))
}
