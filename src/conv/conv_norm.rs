//! A convolution whose inference-mode batch norm (and ReLU) run in its epilogue: each image's
//! output is normalised while it is still in the cache (`rslad_kernels::forward_normalised`)
//! instead of being written, read back by the batch norm's pass and written again. This is the
//! `conv → batch norm → ReLU` block of an attack, an evaluation or a teacher's forward pass:
//! the model fixed, the batch norm on its running statistics.
//!
//! The values are those of the two ops (the convolution's sums, then the batch norm's
//! operations on each in burn's order: [`super::batch_norm`]), bit for bit, and so is the
//! input gradient: the batch norm's backward step, applied to each image as the input gradient
//! reads it (`rslad_kernels::input_grad_normalised`), then the convolution's. (Bit for bit but
//! for a NaN's payload where two NaNs meet, a NaN input and a NaN statistic: which one an
//! operation keeps is the compiler's choice.) Only the input is differentiated: where the
//! weight, the bias or a batch-norm number is tracked the caller runs the two ops.

use super::batch_norm::Channels;
use super::op::{OutputMaskedOp, flex_tensor, on_flex, record_output_masked, values};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::DType;
use rslad_kernels::{ConvGeometry, Isa};
use std::sync::Arc;

/// `norm(conv2d(x, weight, bias))` in one pass on the flex device, the batch norm's numbers
/// from `norm` (`None` where one is tracked); `None` where the caller must run the two ops:
/// another device or dtype, a tracked weight or bias, or a weight or bias on the autodiff
/// device with `x` off it (the convolution's output would be on it, and the batch norm choose
/// its mode by that: [`super::fused_conv_batch_norm`]).
pub(super) fn try_conv_batch_norm(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    geometry: &ConvGeometry,
    norm: impl FnOnce() -> Option<Channels>,
) -> Option<Tensor<4>> {
    if weight.is_tracked() || bias.is_some_and(Tensor::is_tracked) {
        return None;
    }
    let autodiff_operand = weight.is_autodiff() || bias.is_some_and(Tensor::is_autodiff);
    if autodiff_operand && !x.is_autodiff() {
        return None;
    }
    let op = Arc::new(ConvNorm {
        weight: constant(weight)?,
        bias: match bias {
            Some(b) => Some(constant(b)?),
            None => None,
        },
        geometry: *geometry,
        norm: norm()?,
    });
    on_flex(
        x,
        |x| record_output_masked(x, Arc::clone(&op)),
        |x| op.forward(x),
    )
}

/// An untracked operand's f32 values on the flex device, or `None`.
fn constant<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    let t = t.clone().inner().try_into_primitive::<Flex>().ok()?;
    (t.dtype() == DType::F32).then_some(t)
}

/// The fixed operands of one call.
#[derive(Debug)]
struct ConvNorm {
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    geometry: ConvGeometry,
    norm: Channels,
}

impl OutputMaskedOp for ConvNorm {
    fn forward(&self, x: &FlexTensor) -> FlexTensor {
        let bias = self.bias.as_ref().map(values);
        let out = rslad_kernels::forward_normalised(
            Isa::detected(),
            &self.geometry,
            &values(x),
            &values(&self.weight),
            bias.as_deref(),
            &self.norm.norm,
        );
        flex_tensor(out, &self.geometry.out_dims())
    }

    fn relu(&self) -> bool {
        self.norm.norm.relu()
    }

    fn input_grad(&self, dy: &[f32], output: Option<&[f32]>) -> FlexTensor {
        let g = &self.geometry;
        let dx = rslad_kernels::input_grad_normalised(
            Isa::detected(),
            g,
            &values(&self.weight),
            dy,
            output,
            &self.norm.norm,
        );
        flex_tensor(dx, &[g.batch, g.in_channels, g.in_h, g.in_w])
    }
}
