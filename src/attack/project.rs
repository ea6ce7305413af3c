//! Projection onto the threat model: the L∞ ball of radius ε around x, intersected with [0, 1].

use crate::tensor_util::to_vec;
use burn::prelude::*;

/// The closest point to `candidate` inside the ε-ball around `natural` and inside [0, 1].
pub fn project(candidate: Tensor<4>, natural: &Tensor<4>, epsilon: f32) -> Tensor<4> {
    let lower = natural.clone().sub_scalar(epsilon);
    let upper = natural.clone().add_scalar(epsilon);
    candidate.max_pair(lower).min_pair(upper).clamp(0.0, 1.0)
}

/// max |a − b| over all elements, for checking that an attack kept to its budget.
pub fn max_linf_distance(a: &Tensor<4>, b: &Tensor<4>) -> f32 {
    let diff = (a.clone() - b.clone()).abs().max();
    to_vec(diff.reshape([1]))[0]
}
