//! Training objectives. Each method says what its inner attack maximises and what the outer
//! loss is (methods spec §1).

use crate::attack::{self, BnMode, PgdConfig, Target};
use crate::loss;
use crate::zoo::Model;
use burn::prelude::*;
use burn::tensor::Int;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Method {
    /// CE(S(x), y).
    Natural,
    /// Madry PGD adversarial training: x′ maximises CE(S(x′), y); loss CE(S(x′), y).
    Sat { attack: PgdConfig, bn_mode: BnMode },
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Natural => "natural",
            Method::Sat { .. } => "sat",
        }
    }

    /// The batch's mean loss on the autodiff graph of `model`, and the logits whose accuracy
    /// the trainer reports (on the points the loss is computed on). `epsilon_scale` in [0, 1]
    /// shrinks the training attack's ε and step size together (ε warm-up).
    pub fn loss(
        &self,
        model: &Model,
        images: &Tensor<4>,
        labels: &Tensor<1, Int>,
        epsilon_scale: f32,
        rng: &mut StdRng,
    ) -> (Tensor<1>, Tensor<2>) {
        match self {
            Method::Natural => {
                let logits = model.forward(images.clone().autodiff());
                (
                    loss::cross_entropy(logits.clone(), labels.clone()).mean(),
                    logits,
                )
            }
            Method::Sat { attack, bn_mode } => {
                let view = attack::view(model, *bn_mode);
                let target = Target::labels(labels.clone());
                let attack = PgdConfig {
                    epsilon: attack.epsilon * epsilon_scale,
                    step_size: attack.step_size * epsilon_scale,
                    ..*attack
                };
                let adversarial = attack::pgd(&view, images, &target, &attack, rng).adversarial;
                let logits = model.forward(adversarial.autodiff());
                (
                    loss::cross_entropy(logits.clone(), labels.clone()).mean(),
                    logits,
                )
            }
        }
    }
}
