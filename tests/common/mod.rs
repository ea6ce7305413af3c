//! Checks shared by the attack tests.
// Each test crate uses its own subset of these.
#![allow(dead_code)]

use burn::prelude::*;
use rslad_tui::attack::{Classifier, max_linf_distance};
use rslad_tui::tensor_util::{predictions, to_vec};

/// The model's predicted class for each image.
pub fn clean_predictions(model: &impl Classifier, x: &Tensor<4>) -> Vec<i64> {
    predictions(model.logits(x.clone()))
}

/// Which images the model gets wrong.
pub fn misclassified(model: &impl Classifier, x: &Tensor<4>, labels: &[i64]) -> Vec<bool> {
    clean_predictions(model, x)
        .iter()
        .zip(labels)
        .map(|(p, y)| p != y)
        .collect()
}

/// Every adversarial point is inside the ε-ball around its natural image and inside [0, 1].
pub fn assert_in_threat_model(adversarial: &Tensor<4>, natural: &Tensor<4>, epsilon: f32) {
    assert_eq!(adversarial.dims(), natural.dims());
    let distance = max_linf_distance(adversarial, natural);
    assert!(
        distance <= epsilon + 1e-6,
        "left the ε-ball: {distance} > {epsilon}"
    );
    assert!(
        to_vec(adversarial.clone())
            .iter()
            .all(|v| (0.0..=1.0).contains(v)),
        "left [0, 1]"
    );
}
