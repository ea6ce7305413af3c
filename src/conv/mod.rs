//! Our own 2-D convolution kernels for the CPU (flex) backend: forward pass, input gradient and
//! weight gradient, on AVX-512, AVX2 or portable code chosen at run time; with them the two
//! layers around the convolutions that attacks run most, max pooling ([`max_pool2d`]) and
//! batch norm in inference and training mode ([`batch_norm`], [`batch_norm_relu`]), the
//! convolution with an inference batch norm in its epilogue ([`forward_batch_norm_relu`]), and
//! one element-wise pass over plain tensors ([`elementwise`], PGD's signed step).
//!
//! The zoo calls [`forward`] where it would call burn-nn's `Conv2d::forward`: same module,
//! same parameters (so checkpoints, export/import and initialisation are untouched), but on
//! the flex device the convolution runs on the kernels of the `rslad-kernels` crate
//! (`kernels/`), recorded in burn's autodiff graph here ([`op`]); on any other device (a GPU, the
//! experimental ndarray/LibTorch backends) it is burn's own op. burn-flex's own convolution is
//! no longer selectable: the kernels beat it on every MNIST-scale layer and every workload
//! measured, on AVX2 and AVX-512, though not on every layer of `resnet18`'s last stage
//! (docs/performance.md, "The CIFAR-scale students per layer"); `bench --layers` and the tests
//! still run it, to compare.
//!
//! Why these kernels, and what they achieve against burn-flex and PyTorch, is in
//! docs/performance.md. In short: an implicit GEMM on NCHW data whose vector loads read the
//! (padded) image directly (`correlate`), the same engine for the input gradient (a
//! correlation with the flipped kernel, split into phases for strides above 1) except for
//! stride-1 layers with many input channels and kernels wider than 1 × 1, whose input gradient
//! vectorises over input channels and skips the terms that read padding (`channels`), and a
//! weight gradient that vectorises over output channels. Results are deterministic: the same
//! for any thread count and bit-identical on AVX2 and AVX-512.

mod batch_norm;
mod batch_norm_train;
mod channel_sums;
mod conv_norm;
mod op;
mod pool;
pub mod trace;

pub use op::elementwise;
pub use rslad_kernels::{ConvGeometry, Isa};

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

/// The kernels on plain slices (NCHW input and output, OIHW weight), for tests and benches.
pub mod kernels {
    pub use rslad_kernels::{
        ChannelNorm, PoolGeometry, bias_grad, first_layer_sums_taps, forward, forward_normalised,
        forward_on_channels, forward_on_grid, input_grad, input_grad_direct, input_grad_normalised,
        input_grad_on_positions, max_pool_backward, max_pool_forward, weight_grad,
    };
}

/// The kernels' geometry of `conv2d(x, weight, options)`: `None` where they do not apply.
pub fn geometry(
    x: [usize; 4],
    weight: [usize; 4],
    options: &ConvOptions<2>,
) -> Option<ConvGeometry> {
    ConvGeometry::new(
        x,
        weight,
        options.stride,
        options.padding,
        options.dilation,
        options.groups,
    )
}

/// How backend ids name the convolution path. Sessions recorded since the kernels landed carry
/// it; older ones have no such part, and those recorded with the since-removed
/// `RSLAD_TUI_CONV=burn` say "burn conv" (burn-flex's convolution, which rounds differently).
/// "rslad conv" without a number is the kernels before the tap-sum input gradient of first
/// layers that shrink the image (kernels/src/first_layer_taps.rs), which rounds differently
/// too: a session recorded on them replays within the tolerances, not to the bit. So does one
/// recorded on "rslad conv 2", before the forward pass of 3 × 3 unpadded layers ran on
/// Winograd's F(2, 3) (kernels/src/winograd.rs), which sums in another way, and one recorded
/// on "rslad conv 3", before F(2, 3) took layers padded by 1 as well (`resnet18`'s first two
/// stages; the MNIST models' bits did not change), and one recorded on "rslad conv 4", before
/// the tap-sum engine took the input gradient of 5 × 5 first layers that keep the image's
/// size (`madry-cnn`'s conv1), which it sums in another order than the first-layer engine
/// did (the other zoo models' bits did not change), and one recorded on "rslad conv 5", before
/// the tap-sum engine took the input gradient of 3 × 3 first layers that keep the size as well
/// (`micro-cnn`'s conv1; the other zoo models' bits did not change), and one recorded on
/// "rslad conv 6", before F(2, 3) took layers of up to 320 channels (the WideResNet-34-10
/// teacher's first two stages; the other zoo models' bits did not change), and one recorded
/// on "rslad conv 7", before F(2, 3) took padded layers under 16 × 16 with many channels and
/// up to 640 of them (`resnet18`'s last two stages, the WideResNet teacher's last) and the
/// weight gradients of outputs of 8 × 8 and smaller summed more images a chunk (`resnet18`,
/// `mobilenet-v2`; the MNIST models' bits did not change).
pub const PATH_NAME: &str = "rslad conv 8";

/// `conv.forward(x)`, on our kernels where they apply.
pub fn forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let (weight, bias, options) = arguments(conv, &x);
    conv2d(x, weight, bias, options)
}

/// `relu(conv.forward(x))` in one pass on our kernels (the ReLU applied to each image while it
/// is in cache, its backward step folded into the convolution's); burn's two ops elsewhere.
pub fn forward_relu(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let (weight, bias, options) = arguments(conv, &x);
    conv2d_relu(x, weight, bias, options)
}

/// The weight, bias and options `Conv2d::forward` passes to `conv2d` for this input.
fn arguments(conv: &Conv2d, x: &Tensor<4>) -> (Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) {
    let [_, _, height, width] = x.dims();
    let options = ConvOptions::new_with_padding(
        conv.stride,
        padding_pairs(
            &conv.padding,
            [height, width],
            conv.kernel_size,
            conv.stride,
        ),
        conv.dilation,
        conv.groups,
    );
    (
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
    )
}

/// burn's `module::conv2d` with the same arguments, on our kernels where they apply.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    ours(&x, &weight, bias.as_ref(), &options, false)
        .unwrap_or_else(|| burn::tensor::module::conv2d(x, weight, bias, options))
}

/// `relu(conv2d(..))`, fused on our kernels where they apply.
pub fn conv2d_relu(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    ours(&x, &weight, bias.as_ref(), &options, true).unwrap_or_else(|| {
        burn::tensor::activation::relu(burn::tensor::module::conv2d(x, weight, bias, options))
    })
}

/// The convolution on our kernels, or `None` where burn's op must run (another device, dtype or
/// shape).
fn ours(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
    relu: bool,
) -> Option<Tensor<4>> {
    let geometry = geometry(x.dims(), weight.dims(), options)?;
    let out = op::try_conv2d(x, weight, bias, &geometry, relu)?;
    trace::note(&geometry, bias.is_some());
    Some(out)
}

/// `pool.forward(x)`, on our kernel where it applies: square windows that tile the input
/// (kernel = stride, no padding, no dilation, floor mode), as the zoo's 2×2 pools do.
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let [k, k_w] = pool.kernel_size;
    let tiles = k == k_w
        && pool.stride == pool.kernel_size
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(
            pool.padding,
            PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
        );
    if tiles && let Some(out) = pool::try_max_pool2d(&x, k) {
        return out;
    }
    pool.forward(x)
}

/// `relu(bn.forward(conv.forward(x)))`. Where the batch norm runs on its running statistics and
/// the convolution's weight and bias are fixed (an attack, an evaluation, a teacher's forward
/// pass), in one pass on our kernels, the batch norm and the ReLU in the convolution's
/// epilogue ([`conv_norm`]); elsewhere the two ops. The same bits either way.
pub fn forward_batch_norm_relu(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    forward_batch_norm_then(conv, bn, x, true)
}

/// `bn.forward(conv.forward(x))`, in one pass where [`forward_batch_norm_relu`] would be.
pub fn forward_batch_norm(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    forward_batch_norm_then(conv, bn, x, false)
}

fn forward_batch_norm_then(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    if let Some(out) = fused_conv_batch_norm(conv, bn, &x, relu) {
        return out;
    }
    batch_norm_then(bn, forward(conv, x), relu)
}

/// The convolution with the batch norm in its epilogue, or `None` where the two ops must run:
/// the batch norm on the training path, a tracked parameter, another device, dtype or shape.
pub fn fused_conv_batch_norm(
    conv: &Conv2d,
    bn: &BatchNorm,
    x: &Tensor<4>,
    relu: bool,
) -> Option<Tensor<4>> {
    // burn-nn's choice is made on the batch norm's input, the convolution's output, which is on
    // the autodiff device if any operand is: the one op refuses a weight there with x off it.
    if on_training_path(bn, x) {
        return None;
    }
    let (weight, bias, options) = arguments(conv, x);
    let geometry = geometry(x.dims(), weight.dims(), &options)?;
    let out = conv_norm::try_conv_batch_norm(x, &weight, bias.as_ref(), &geometry, || {
        batch_norm::inference_channels(
            geometry.out_dims(),
            running_statistics(bn),
            bn.epsilon,
            relu,
        )
    })?;
    trace::note(&geometry, bias.is_some());
    Some(out)
}

/// Whether `bn.forward(x)` takes burn-nn's training path (the batch's statistics): an autodiff
/// device and a layer in training mode, as in `BatchNorm::forward`.
fn on_training_path(bn: &BatchNorm, x: &Tensor<4>) -> bool {
    x.device().is_autodiff() && bn.training.is_enabled()
}

/// γ, β and the running mean and variance.
fn running_statistics(bn: &BatchNorm) -> [Tensor<1>; 4] {
    [
        bn.gamma.val(),
        bn.beta.val(),
        bn.running_mean.value(),
        bn.running_var.value(),
    ]
}

/// `bn.forward(x)`; on the flex device in fewer passes than burn's operations, with the same
/// bits ([`batch_norm`](self::batch_norm) and `batch_norm_train`
/// modules).
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    batch_norm_then(bn, x, false)
}

/// `relu(bn.forward(x))`; on the flex device in fewer passes, the ReLU included.
pub fn batch_norm_relu(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    batch_norm_then(bn, x, true)
}

fn batch_norm_then(bn: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    if let Some(out) = inference_batch_norm(bn, &x, relu) {
        return out;
    }
    if let Some(out) = training_batch_norm(bn, &x, relu) {
        return out;
    }
    let out = bn.forward(x);
    if relu {
        burn::tensor::activation::relu(out)
    } else {
        out
    }
}

/// `relu?(bn.forward(x))` on our one-pass op, or `None` where burn's operations run: the
/// training path (burn-nn's own choice, as in `BatchNorm::forward`), another device or dtype,
/// a trained γ or β.
pub fn inference_batch_norm(bn: &BatchNorm, x: &Tensor<4>, relu: bool) -> Option<Tensor<4>> {
    if on_training_path(bn, x) {
        return None;
    }
    batch_norm::try_batch_norm(x, running_statistics(bn), bn.epsilon, relu)
}

/// `relu?(bn.forward(x))` on the training path (burn-nn's choice: an autodiff device and a layer
/// in training mode) on our op, the running statistics updated as burn-nn's
/// `BatchNorm::forward_train` updates them; `None` elsewhere, or where burn's operations run.
pub fn training_batch_norm(bn: &BatchNorm, x: &Tensor<4>, relu: bool) -> Option<Tensor<4>> {
    if !on_training_path(bn, x) {
        return None;
    }
    let result = batch_norm_train::try_batch_norm_train(
        x,
        &bn.gamma.val(),
        &bn.beta.val(),
        bn.epsilon,
        relu,
    )?;
    let device = x.device();
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    let running_mean = running_mean
        .mul_scalar(1.0 - bn.momentum)
        .add(result.mean.detach().mul_scalar(bn.momentum));
    let running_var = running_var
        .mul_scalar(1.0 - bn.momentum)
        .add(result.variance.detach().mul_scalar(bn.momentum));
    bn.running_mean.update(running_mean.detach());
    bn.running_var.update(running_var.detach());
    Some(result.output)
}

/// ((top, bottom), (left, right)) as burn-nn computes it for `Conv2d` (its own function is
/// crate-private): "same" pads so that the output has ⌈size / stride⌉ positions.
fn padding_pairs(
    padding: &PaddingConfig2d,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> [(usize, usize); 2] {
    match *padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => std::array::from_fn(|d| {
            let out = size[d].div_ceil(stride[d]);
            let total = ((out.max(1) - 1) * stride[d] + kernel[d]).saturating_sub(size[d]);
            let total = if out == 0 { 0 } else { total };
            (total / 2, total - total / 2)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_burn_nn() {
        // 28 wide, 5×5, stride 1: 2 each side; 32 wide, 3×3, stride 2: 16 outputs need 33 → 0/1.
        assert_eq!(
            padding_pairs(&PaddingConfig2d::Same, [28, 28], [5, 5], [1, 1]),
            [(2, 2), (2, 2)]
        );
        assert_eq!(
            padding_pairs(&PaddingConfig2d::Same, [32, 32], [3, 3], [2, 2]),
            [(0, 1), (0, 1)]
        );
        assert_eq!(
            padding_pairs(
                &PaddingConfig2d::Explicit(1, 2, 3, 4),
                [8, 8],
                [3, 3],
                [1, 1]
            ),
            [(1, 3), (2, 4)]
        );
    }
}
