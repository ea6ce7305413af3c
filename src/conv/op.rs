//! The kernels as a burn operation on the flex CPU backend.
//!
//! burn 0.22's tensors dispatch at run time over backends (`burn-dispatch`). With burn's
//! `extension` feature a tensor gives up its concrete primitive
//! (`Tensor::try_into_primitive::<Flex>()`, or `::<Autodiff<Flex>>()` for one on the autodiff
//! device) and takes one back (`Tensor::from_primitive`). Without autodiff we call the forward
//! kernel on the `FlexTensor`s directly; with it we record the operation in burn-autodiff's
//! graph ourselves, as burn records its own `conv2d`, with a [`Backward`] step that runs our
//! input- and weight-gradient kernels for whichever of x, weight and bias is tracked.
//!
//! Anything else (another device, another dtype, gradient checkpointing, a shape the kernels
//! do not cover) returns `None` and the caller runs burn's op.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use rslad_kernels::{ConvGeometry, Isa};
use std::marker::PhantomData;
use std::sync::Arc;

/// burn-autodiff over the flex backend, as the dispatching tensors hold it.
pub(super) type AutodiffFlex = Autodiff<Flex, NoCheckpointing>;

/// Runs the convolution (followed by a ReLU if `relu`) on our kernels if the tensors live on
/// the flex device (with or without autodiff); `None` otherwise, leaving the caller to use
/// burn's ops.
pub fn try_conv2d(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    geometry: &ConvGeometry,
    relu: bool,
) -> Option<Tensor<4>> {
    let tracked = x.is_autodiff() || weight.is_autodiff() || bias.is_some_and(|b| b.is_autodiff());
    if tracked {
        let x = autodiff_primitive(x)?;
        let weight = autodiff_primitive(weight)?;
        let bias = match bias {
            Some(b) => Some(autodiff_primitive(b)?),
            None => None,
        };
        let all_f32 = [x.primitive(), weight.primitive()]
            .into_iter()
            .chain(bias.as_ref().map(|b| b.primitive()))
            .all(|t| t.dtype() == DType::F32);
        if !all_f32 {
            return None;
        }
        let out = autodiff_conv2d(x, weight, bias, *geometry, relu);
        Some(Tensor::from_primitive::<AutodiffFlex>(out))
    } else {
        let x = x.clone().try_into_primitive::<Flex>().ok()?;
        let weight = weight.clone().try_into_primitive::<Flex>().ok()?;
        let bias = match bias {
            Some(b) => Some(b.clone().try_into_primitive::<Flex>().ok()?),
            None => None,
        };
        let all_f32 = [&x, &weight]
            .into_iter()
            .chain(bias.as_ref())
            .all(|t| t.dtype() == DType::F32);
        if !all_f32 {
            return None;
        }
        let out = flex_forward(&x, &weight, bias.as_ref(), geometry, relu);
        Some(Tensor::from_primitive::<Flex>(out))
    }
}

/// The tensor as a primitive of the autodiff flex device; `None` on another device. A constant
/// operand (a plain tensor) joins the graph untracked, as in burn's own binary ops.
pub(super) fn autodiff_primitive<const D: usize>(t: &Tensor<D>) -> Option<AutodiffTensor> {
    t.clone()
        .autodiff()
        .try_into_primitive::<AutodiffFlex>()
        .ok()
}

/// `element` applied to equally shaped plain (not autodiff) f32 tensors on the flex device, in
/// one parallel pass and one allocation; `None` elsewhere (another device, the autodiff device,
/// another dtype or shape), leaving the caller to burn's operations.
pub fn elementwise<const K: usize>(
    inputs: [&Tensor<4>; K],
    element: impl Fn([f32; K]) -> f32 + Sync,
) -> Option<Tensor<4>> {
    let dims = inputs.first()?.dims();
    if inputs.iter().any(|t| t.is_autodiff() || t.dims() != dims) {
        return None;
    }
    let primitives: Vec<FlexTensor> = inputs
        .iter()
        .map(|t| (*t).clone().try_into_primitive::<Flex>().ok())
        .collect::<Option<_>>()?;
    if primitives.iter().any(|p| p.dtype() != DType::F32) {
        return None;
    }
    let values: Vec<_> = primitives.iter().map(values).collect();
    let inputs: [&[f32]; K] = std::array::from_fn(|k| &*values[k]);
    let [n, c, h, w] = dims;
    let out = rslad_kernels::map_planes(n * c, h * w, inputs, |p| p, |_| &element);
    Some(Tensor::from_primitive::<Flex>(flex_tensor(out, &dims)))
}

/// A one-input op of ours whose backward step needs only its own numbers and, where a ReLU
/// ends it, its output (batch norm in inference mode, alone or in a convolution's epilogue).
pub(super) trait OutputMaskedOp: std::fmt::Debug + Send + Sync + 'static {
    fn forward(&self, x: &FlexTensor) -> FlexTensor;
    /// Whether a ReLU ends the op (its output is then kept for the backward step).
    fn relu(&self) -> bool;
    /// The input's gradient given the output's, and the output where a ReLU ends the op.
    fn input_grad(&self, dy: &[f32], output: Option<&[f32]>) -> FlexTensor;
}

/// Runs `op` on `x` and records it in the autodiff graph with its backward step.
pub(super) fn record_output_masked<T: OutputMaskedOp>(
    x: AutodiffTensor,
    op: Arc<T>,
) -> AutodiffTensor {
    let prep = OutputMaskedBackward::<T>(PhantomData)
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful();
    let out = op.forward(x.primitive());
    match prep {
        OpsKind::Tracked(prep) => {
            let output = op.relu().then(|| out.clone());
            prep.finish(SavedOutput { op, output }, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// What an [`OutputMaskedOp`]'s backward step keeps.
#[derive(Debug)]
struct SavedOutput<T> {
    op: Arc<T>,
    output: Option<FlexTensor>,
}

impl<T> Clone for SavedOutput<T> {
    fn clone(&self) -> Self {
        SavedOutput {
            op: Arc::clone(&self.op),
            output: self.output.clone(),
        }
    }
}

#[derive(Debug)]
struct OutputMaskedBackward<T>(PhantomData<T>);

impl<T: OutputMaskedOp> Backward<Flex, 1> for OutputMaskedBackward<T> {
    type State = SavedOutput<T>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let [Some(node)] = ops.parents else { return };
        let SavedOutput { op, output } = ops.state;
        let output = output.as_ref().map(values);
        grads.register::<Flex>(node.id, op.input_grad(&values(&dy), output.as_deref()));
    }
}

/// A flex tensor's values as a contiguous f32 slice (copied only if it is a strided view).
pub(super) fn values(tensor: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(tensor.to_contiguous().as_slice::<f32>().unwrap().to_vec()),
    }
}

pub(super) fn flex_tensor(values: Vec<f32>, dims: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, dims.to_vec()))
}

fn flex_forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    g: &ConvGeometry,
    relu: bool,
) -> FlexTensor {
    let bias = bias.map(values);
    let out = rslad_kernels::forward(
        Isa::detected(),
        g,
        &values(x),
        &values(weight),
        bias.as_deref(),
        relu,
    );
    flex_tensor(out, &g.out_dims())
}

/// What the backward step keeps: the input and weight (to differentiate against each other),
/// the shape, and with a fused ReLU its output (whose sign masks the incoming gradient).
#[derive(Clone, Debug)]
struct Saved {
    x: FlexTensor,
    weight: FlexTensor,
    geometry: ConvGeometry,
    relu_output: Option<FlexTensor>,
}

#[derive(Debug)]
struct ConvBackward;

impl ConvBackward {
    /// The gradients of the tracked parents among x, weight and (if given) bias.
    fn backward_parents<const N: usize>(ops: Ops<Saved, N>, grads: &mut Gradients) {
        let output_grad = grads.consume::<Flex>(&ops.node);
        let Saved {
            x,
            weight,
            geometry: g,
            relu_output,
        } = ops.state;
        let output_grad = values(&output_grad);
        let relu_output = relu_output.as_ref().map(values);
        let relu_output = relu_output.as_deref();
        let isa = Isa::detected();
        let [x_node, weight_node, bias_node] =
            [0, 1, 2].map(|i| ops.parents.get(i).cloned().flatten());
        if let Some(node) = x_node {
            let dx =
                rslad_kernels::input_grad(isa, &g, &values(&weight), &output_grad, relu_output);
            grads.register::<Flex>(
                node.id,
                flex_tensor(dx, &[g.batch, g.in_channels, g.in_h, g.in_w]),
            );
        }
        if let Some(node) = weight_node {
            let dw = rslad_kernels::weight_grad(isa, &g, &values(&x), &output_grad, relu_output);
            grads.register::<Flex>(
                node.id,
                flex_tensor(
                    dw,
                    &[g.out_channels, g.in_per_group(), g.kernel_h, g.kernel_w],
                ),
            );
        }
        if let Some(node) = bias_node {
            let db = rslad_kernels::bias_grad(&g, &output_grad, relu_output);
            grads.register::<Flex>(node.id, flex_tensor(db, &[g.out_channels]));
        }
    }
}

impl Backward<Flex, 3> for ConvBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        Self::backward_parents(ops, grads);
    }
}

impl Backward<Flex, 2> for ConvBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        Self::backward_parents(ops, grads);
    }
}

/// A tensor primitive of [`AutodiffFlex`]: a flex tensor and its node in the graph.
pub(super) type AutodiffTensor =
    <AutodiffFlex as burn::backend::BackendTypes>::FloatTensorPrimitive;

/// Runs a one-input operation of ours on the flex device: `tracked` on a tensor of the autodiff
/// device (where it records its backward step), `plain` on a plain flex tensor; `None` on any
/// other device or for a dtype other than f32, leaving the caller to run burn's operation.
pub(super) fn on_flex<const D: usize>(
    x: &Tensor<D>,
    tracked: impl FnOnce(AutodiffTensor) -> AutodiffTensor,
    plain: impl FnOnce(&FlexTensor) -> FlexTensor,
) -> Option<Tensor<D>> {
    if x.is_autodiff() {
        let x = x.clone().try_into_primitive::<AutodiffFlex>().ok()?;
        (x.primitive().dtype() == DType::F32)
            .then(|| Tensor::from_primitive::<AutodiffFlex>(tracked(x)))
    } else {
        let x = x.clone().try_into_primitive::<Flex>().ok()?;
        (x.dtype() == DType::F32).then(|| Tensor::from_primitive::<Flex>(plain(&x)))
    }
}

fn autodiff_conv2d(
    x: AutodiffTensor,
    weight: AutodiffTensor,
    bias: Option<AutodiffTensor>,
    geometry: ConvGeometry,
    relu: bool,
) -> AutodiffTensor {
    let output = flex_forward(
        x.primitive(),
        weight.primitive(),
        bias.as_ref().map(|b| b.primitive()),
        &geometry,
        relu,
    );
    let saved = |x: &AutodiffTensor, weight: &AutodiffTensor| Saved {
        x: x.primitive().clone(),
        weight: weight.primitive().clone(),
        geometry,
        relu_output: relu.then(|| output.clone()),
    };
    match bias {
        Some(bias) => {
            let prep = <ConvBackward as Backward<Flex, 3>>::prepare::<NoCheckpointing>(
                ConvBackward,
                [x.node(), weight.node(), bias.node()],
            )
            .compute_bound()
            .stateful();
            match prep {
                OpsKind::Tracked(prep) => prep.finish(saved(&x, &weight), output),
                OpsKind::UnTracked(prep) => prep.finish(output),
            }
        }
        None => {
            let prep = <ConvBackward as Backward<Flex, 2>>::prepare::<NoCheckpointing>(
                ConvBackward,
                [x.node(), weight.node()],
            )
            .compute_bound()
            .stateful();
            match prep {
                OpsKind::Tracked(prep) => prep.finish(saved(&x, &weight), output),
                OpsKind::UnTracked(prep) => prep.finish(output),
            }
        }
    }
}
