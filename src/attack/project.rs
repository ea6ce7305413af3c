//! Projection onto the threat model: the L∞ ball of radius ε around x, intersected with [0, 1].

use crate::tensor_util::to_vec;
use burn::prelude::*;

/// The closest point to `candidate` inside the ε-ball around `natural` and inside [0, 1]: on the
/// flex device in one pass with the bits of [`project_with_burn_ops`], elsewhere those
/// operations.
pub fn project(candidate: Tensor<4>, natural: &Tensor<4>, epsilon: f32) -> Tensor<4> {
    let fused =
        crate::conv::elementwise([&candidate, natural], |[x, n]| project_value(x, n, epsilon));
    fused.unwrap_or_else(|| project_with_burn_ops(candidate, natural, epsilon))
}

/// [`project`] as burn's operations (four passes): the reference the one-pass versions follow.
pub fn project_with_burn_ops(candidate: Tensor<4>, natural: &Tensor<4>, epsilon: f32) -> Tensor<4> {
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
        project_value(x + sign(g) * step_size, n, epsilon)
    });
    fused.unwrap_or_else(|| {
        project_with_burn_ops(
            current + gradient.sign().mul_scalar(step_size),
            natural,
            epsilon,
        )
    })
}

/// APGD's update (Croce & Hein 2020, eq. 2): `z = P(x + η·sign(∇))`, then
/// `P(x + a(z − x) + (1 − a)(x − x_prev))`, with `step` η per element (each image's own) and
/// `a` as the caller passes it to `mul_scalar`; one pass on the flex device with burn's bits,
/// burn's operations elsewhere.
pub fn momentum_step(
    [current, previous, gradient, step]: [&Tensor<4>; 4],
    natural: &Tensor<4>,
    epsilon: f32,
    a: f64,
) -> Tensor<4> {
    // burn's scalars reach f32 tensors as f32.
    let (keep, rest) = (a as f32, (1.0 - a) as f32);
    let inputs = [current, previous, gradient, step, natural];
    let fused = crate::conv::elementwise(inputs, |[x, p, g, s, n]| {
        let momentum = x - p;
        let z = project_value(x + sign(g) * s, n, epsilon);
        project_value((x + (z - x) * keep) + momentum * rest, n, epsilon)
    });
    fused.unwrap_or_else(|| {
        let momentum = current.clone() - previous.clone();
        let z = project_with_burn_ops(
            current.clone() + gradient.clone().sign() * step.clone(),
            natural,
            epsilon,
        );
        let moved =
            current.clone() + (z - current.clone()).mul_scalar(a) + momentum.mul_scalar(1.0 - a);
        project_with_burn_ops(moved, natural, epsilon)
    })
}

/// burn-flex's `sign`: 0 at zero and NaN, else ±1.
fn sign(g: f32) -> f32 {
    if g.is_nan() || g == 0.0 {
        0.0
    } else {
        1.0f32.copysign(g)
    }
}

/// [`project`] for one value: `max_pair`, `min_pair` and `clamp` as burn defines them (the
/// candidate wins a comparison with NaN, so a NaN stays).
fn project_value(candidate: f32, natural: f32, epsilon: f32) -> f32 {
    let (lower, upper) = (natural - epsilon, natural + epsilon);
    let above = if candidate < lower { lower } else { candidate };
    let within = if upper < above { upper } else { above };
    within.clamp(0.0, 1.0)
}

/// max |a − b| over all elements, for checking that an attack kept to its budget.
pub fn max_linf_distance(a: &Tensor<4>, b: &Tensor<4>) -> f32 {
    let diff = (a.clone() - b.clone()).abs().max();
    to_vec(diff.reshape([1]))[0]
}
