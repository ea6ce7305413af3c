//! Batch norm in inference mode (the running statistics), with or without the ReLU that follows
//! it, in one pass on the flex device, recorded in burn's autodiff graph with a backward step
//! for the input.
//!
//! burn's inference batch norm (`ModuleOps::batch_norm`) is four element-wise operations,
//! `((x − mean) / √(var + ε)) · γ + β`, each a pass over the activation and, under autodiff, a
//! node of its own; the ReLU after it is one more of each. Here each value takes the same
//! operations in the same order (no fused multiply-add), so the output is bit-identical, and
//! so is the gradient, which burn-autodiff forms as `(relu'(dy) · γ) · (1 / √(var + ε))`.
//!
//! Only the input is differentiated: where γ, β or a statistic is tracked (an inference-mode
//! forward whose parameters are trained, which no method here runs) burn's operations run.

use super::op::{OutputMaskedOp, flex_tensor, on_flex, record_output_masked, values};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::DType;
use rslad_kernels::{ChannelNorm, map_planes, relu_backward};
use std::sync::Arc;

/// Runs `relu?(batch_norm(x))` with the given statistics on the flex device; `None` where
/// burn's operations must run (another device or dtype, a tracked parameter or statistic).
pub fn try_batch_norm(
    x: &Tensor<4>,
    statistics: [Tensor<1>; 4],
    epsilon: f64,
    relu: bool,
) -> Option<Tensor<4>> {
    let op = Arc::new(inference_channels(x.dims(), statistics, epsilon, relu)?);
    on_flex(
        x,
        |x| record_output_masked(x, Arc::clone(&op)),
        |x| OutputMaskedOp::forward(&*op, x),
    )
}

/// The numbers of an inference-mode batch norm (γ, β, running mean and variance) over an
/// activation of `dims`, as our op holds them; `None` where burn's operations must run: an
/// empty activation, a tracked parameter or statistic, one not of f32 on the flex device.
pub(super) fn inference_channels(
    dims: [usize; 4],
    [gamma, beta, mean, var]: [Tensor<1>; 4],
    epsilon: f64,
    relu: bool,
) -> Option<Channels> {
    let [_, channels, height, width] = dims;
    if channels * height * width == 0 {
        return None;
    }
    let per_channel = |t: Tensor<1>| -> Option<Vec<f32>> {
        if t.is_tracked() || t.dims() != [channels] {
            return None;
        }
        let t = t.inner().try_into_primitive::<Flex>().ok()?;
        (t.dtype() == DType::F32).then(|| values(&t).into_owned())
    };
    Some(Channels::new(
        per_channel(mean)?,
        &per_channel(var)?,
        per_channel(gamma)?,
        per_channel(beta)?,
        epsilon,
        dims,
        relu,
    ))
}

/// Each channel's numbers, as burn's operations hold them.
#[derive(Debug)]
pub(super) struct Channels {
    /// The numbers and the formulas per value, forward and backward (shared with the
    /// convolution's epilogue).
    pub(super) norm: ChannelNorm,
    /// NCHW.
    pub(super) dims: [usize; 4],
}

impl Channels {
    pub(super) fn new(
        mean: Vec<f32>,
        var: &[f32],
        gamma: Vec<f32>,
        beta: Vec<f32>,
        epsilon: f64,
        dims: [usize; 4],
        relu: bool,
    ) -> Self {
        // burn-flex adds a scalar to an f32 tensor as f32; `ChannelNorm` takes the exact
        // reciprocal of the result, as burn-autodiff does for the gradient.
        let std: Vec<f32> = var.iter().map(|v| (v + epsilon as f32).sqrt()).collect();
        Channels {
            norm: ChannelNorm::new(mean, std, gamma, beta, relu),
            dims,
        }
    }

    /// Values per channel plane.
    pub(super) fn plane(&self) -> usize {
        self.dims[2] * self.dims[3]
    }

    /// Channel planes in a batch (NCHW).
    fn planes(&self) -> usize {
        self.dims[0] * self.dims[1]
    }

    /// Maps NCHW inputs element by element, `element(channel)` for each plane, in parallel.
    pub(super) fn map<const K: usize, F: Fn([f32; K]) -> f32>(
        &self,
        inputs: [&[f32]; K],
        element: impl Fn(usize) -> F + Sync,
    ) -> Vec<f32> {
        let channels = self.dims[1];
        map_planes(
            self.planes(),
            self.plane(),
            inputs,
            |p| p,
            |p| element(p % channels),
        )
    }

    /// `relu?(((x − mean) / std) · γ + β)` for NCHW `x`.
    pub(super) fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.map([x], |c| {
            let channel = self.norm.channel(c);
            move |[v]| channel.apply(v)
        })
    }

    /// The input gradient `(relu'(dy) · γ) · (1 / std)`; `output` is the forward's, whose sign
    /// masks `dy` where a ReLU followed.
    fn backward(&self, dy: &[f32], output: Option<&[f32]>) -> Vec<f32> {
        match output {
            Some(output) => self.map([dy, output], |c| {
                let channel = self.norm.channel(c);
                move |[grad, out]| channel.gradient(relu_backward(grad, out))
            }),
            None => self.map([dy], |c| {
                let channel = self.norm.channel(c);
                move |[grad]| channel.gradient(grad)
            }),
        }
    }
}

impl OutputMaskedOp for Channels {
    fn forward(&self, x: &FlexTensor) -> FlexTensor {
        flex_tensor(Channels::forward(self, &values(x)), &self.dims)
    }

    fn relu(&self) -> bool {
        self.norm.relu()
    }

    fn input_grad(&self, dy: &[f32], output: Option<&[f32]>) -> FlexTensor {
        flex_tensor(self.backward(dy, output), &self.dims)
    }
}
