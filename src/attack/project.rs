//! Projection onto the threat model: the L∞ ball of radius ε around x, intersected with [0, 1].

use crate::tensor_util::to_vec;
use burn::prelude::*;

/// The closest point to `candidate` inside the ε-ball around `natural` and inside [0, 1].
pub fn project(candidate: Tensor<4>, natural: &Tensor<4>, epsilon: f32) -> Tensor<4> {
    let lower = natural.clone().sub_scalar(epsilon);
    let upper = natural.clone().add_scalar(epsilon);
    candidate.max_pair(lower).min_pair(upper).clamp(0.0, 1.0)
}

/// One signed-gradient step and its projection, `project(current + sign(gradient) · step_size,
/// natural, ε)` (sign 0 at a zero or NaN gradient, as burn's): on the flex device in one pass
/// that takes each value through burn's operations in their order (the same bits), elsewhere
/// burn's seven passes.
pub fn signed_step(
    current: Tensor<4>,
    gradient: Tensor<4>,
    step_size: f32,
    natural: &Tensor<4>,
    epsilon: f32,
) -> Tensor<4> {
    let fused = crate::conv::elementwise([&current, &gradient, natural], |[x, g, n]| {
        let sign = if g.is_nan() || g == 0.0 {
            0.0
        } else {
            1.0f32.copysign(g)
        };
        let moved = x + sign * step_size;
        // max_pair, min_pair and clamp as burn defines them: a NaN stays.
        let (lower, upper) = (n - epsilon, n + epsilon);
        let above = if moved < lower { lower } else { moved };
        let within = if upper < above { upper } else { above };
        within.clamp(0.0, 1.0)
    });
    fused.unwrap_or_else(|| {
        project(
            current + gradient.sign().mul_scalar(step_size),
            natural,
            epsilon,
        )
    })
}

/// max |a − b| over all elements, for checking that an attack kept to its budget.
pub fn max_linf_distance(a: &Tensor<4>, b: &Tensor<4>) -> f32 {
    let diff = (a.clone() - b.clone()).abs().max();
    to_vec(diff.reshape([1]))[0]
}
