//! Batch norm in training mode (the batch's own statistics), with or without the ReLU that
//! follows it, recorded in burn's autodiff graph with a backward step for the input, γ and β.
//!
//! burn's `batch_norm_train` (burn-backend's default, which burn-flex keeps) lays the
//! activation out channel by channel twice to reduce it (`swap_dims` and a copy), subtracts
//! and squares in two more passes, then runs the four passes of the inference formula; its
//! backward step is about fourteen passes. Here the statistics are summed in burn-flex's
//! `sum_dim` order over each channel's planes where they lie ([`channel_sums`]), and every
//! element-wise step takes each value through the same operations in the same order (no fused
//! multiply-add): the output, the statistics and all three gradients are burn's to the bit.
//! Forward: a read of x for each statistic and the output pass; backward: one read of dy and x
//! for both sums, and the input gradient (and the ReLU's mask first, where one follows).

use super::batch_norm::Channels;
use super::channel_sums::{channel_sums, channel_sums_of};
use super::op::{AutodiffFlex, AutodiffTensor, autodiff_primitive, flex_tensor, values};
use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::DType;
use rslad_kernels::relu_backward;
use std::borrow::Cow;
use std::sync::Arc;

/// What `batch_norm_train` returns: the (ReLU'd) output and the batch's statistics, untracked.
pub struct TrainOutput {
    pub output: Tensor<4>,
    pub mean: Tensor<1>,
    pub variance: Tensor<1>,
}

/// Runs `relu?(batch_norm_train(x, γ, β))` on the autodiff flex device; `None` where burn's
/// operations must run (another device, no autodiff, another dtype or shape).
pub fn try_batch_norm_train(
    x: &Tensor<4>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> Option<TrainOutput> {
    let dims = x.dims();
    let channels = dims[1];
    let per_channel = gamma.dims() == [channels] && beta.dims() == [channels];
    if !x.is_autodiff() || dims.contains(&0) || !per_channel {
        return None;
    }
    let [x, gamma, beta] = [
        autodiff_primitive(x)?,
        autodiff_primitive(gamma)?,
        autodiff_primitive(beta)?,
    ];
    let all_f32 = [&x, &gamma, &beta]
        .iter()
        .all(|t| t.primitive().dtype() == DType::F32);
    if !all_f32 {
        return None;
    }
    let (output, mean, variance) = autodiff_forward(x, gamma, beta, epsilon, dims, relu);
    let untracked = |t: FlexTensor| Tensor::from_primitive::<AutodiffFlex>(AutodiffTensor::new(t));
    Some(TrainOutput {
        output: Tensor::from_primitive::<AutodiffFlex>(output),
        mean: untracked(mean),
        variance: untracked(variance),
    })
}

fn autodiff_forward(
    x: AutodiffTensor,
    gamma: AutodiffTensor,
    beta: AutodiffTensor,
    epsilon: f64,
    dims: [usize; 4],
    relu: bool,
) -> (AutodiffTensor, FlexTensor, FlexTensor) {
    let input = values(x.primitive());
    let (mean, variance) = statistics(&input, dims);
    let op = Channels::new(
        mean.clone(),
        &variance,
        values(gamma.primitive()).into_owned(),
        values(beta.primitive()).into_owned(),
        epsilon,
        dims,
        relu,
    );
    let out = flex_tensor(op.forward(&input), &dims);
    let prep = TrainBackward
        .prepare::<NoCheckpointing>([x.node(), gamma.node(), beta.node()])
        .compute_bound()
        .stateful();
    let output = match prep {
        OpsKind::Tracked(prep) => {
            let saved = Saved {
                x: x.primitive().clone(),
                output: relu.then(|| out.clone()),
                op: Arc::new(op),
            };
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    let channels = [dims[1]];
    (
        output,
        flex_tensor(mean, &channels),
        flex_tensor(variance, &channels),
    )
}

/// The batch's mean and biased variance per channel, as burn's `batch_norm_train` computes
/// them: `mean_dim` over the channel rows of x, then over those of `(x − mean)²`.
fn statistics(x: &[f32], dims: [usize; 4]) -> (Vec<f32>, Vec<f32>) {
    let mean = channel_means(dims, channel_sums(dims, [x], |_| |[v]| v));
    let variance = channel_sums(dims, [x], |c| {
        let mean = mean[c];
        move |[v]| {
            let centred = v - mean;
            centred * centred
        }
    });
    (mean, channel_means(dims, variance))
}

/// burn-flex's `mean_dim` from its `sum_dim`: each channel row's sum divided by its length.
fn channel_means([images, _, height, width]: [usize; 4], sums: Vec<f32>) -> Vec<f32> {
    let count = (images * height * width) as f32;
    sums.into_iter().map(|sum| sum / count).collect()
}

/// What the backward step keeps: the input, the channels' numbers and, with a ReLU, the output.
#[derive(Clone, Debug)]
struct Saved {
    x: FlexTensor,
    output: Option<FlexTensor>,
    op: Arc<Channels>,
}

#[derive(Debug)]
struct TrainBackward;

impl Backward<Flex, 3> for TrainBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let [x_node, gamma_node, beta_node] = ops.parents;
        let Saved { x, output, op } = ops.state;
        let dy = values(&dy);
        // The ReLU's own backward step, as its node would have run it.
        let dy: Cow<[f32]> = match output {
            Some(output) => {
                Cow::Owned(op.map([&dy, &values(&output)], |_| |[g, o]| relu_backward(g, o)))
            }
            None => dy,
        };
        let x = values(&x);
        let [dims, channels] = [op.dims.to_vec(), vec![op.dims[1]]];
        let sums = GradientSums::new(&op, &x, &dy);
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, flex_tensor(sums.input(&op, &x, &dy), &dims));
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, flex_tensor(sums.gamma, &channels));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, flex_tensor(sums.beta, &channels));
        }
    }
}

/// The per-channel sums of burn's `batch_norm_train_backward`: Σ dy (β's gradient) and
/// Σ dy · x̂ (γ's), with x̂ = (x − mean) · (1 / std) its `normalized`.
struct GradientSums {
    beta: Vec<f32>,
    gamma: Vec<f32>,
}

impl GradientSums {
    fn new(op: &Channels, x: &[f32], dy: &[f32]) -> Self {
        // Both sums in one read of dy and x.
        let [beta, gamma] = channel_sums_of(op.dims, [dy, x], |c| {
            let channel = op.norm.channel(c);
            let (mean, reciprocal) = (channel.mean(), channel.reciprocal());
            move |[g, v]| [g, g * ((v - mean) * reciprocal)]
        });
        GradientSums { beta, gamma }
    }

    /// `(γ · r) · ((dy − mean(dy)) − x̂ · mean(dy · x̂))`, r = 1 / std; the means are the sums
    /// divided by the count, as burn-flex's `mean_dim` forms them.
    fn input(&self, op: &Channels, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let count = (op.dims[0] * op.plane()) as f32;
        op.map([dy, x], |c| {
            let channel = op.norm.channel(c);
            let (mean, reciprocal) = (channel.mean(), channel.reciprocal());
            let scale = channel.gamma() * reciprocal;
            let mean_grad = self.beta[c] / count;
            let mean_projection = self.gamma[c] / count;
            move |[g, v]| {
                let normalized = (v - mean) * reciprocal;
                scale * ((g - mean_grad) - normalized * mean_projection)
            }
        })
    }
}
