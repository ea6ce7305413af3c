//! Building blocks shared by the CIFAR-scale architectures (ResNet-18, MobileNetV2,
//! WideResNet): bias-free convolutions as the reference PyTorch models declare them, a
//! convolution followed by batch norm, and the final global average pool.

use crate::conv;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;

/// A 3×3 convolution with padding 1 and no bias (`nn.Conv2d(i, o, 3, stride, 1, bias=False)`).
/// `groups` = channels gives a depthwise convolution.
pub(super) fn conv3x3(
    channels: [usize; 2],
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new(channels, [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_groups(groups)
        .with_bias(false)
        .init(device)
}

/// A 1×1 convolution with no bias, for projections and shortcuts.
pub(super) fn conv1x1(channels: [usize; 2], stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new(channels, [1, 1])
        .with_stride([stride, stride])
        .with_bias(false)
        .init(device)
}

/// A convolution followed by batch norm, no activation: the projection shortcut of ResNet
/// and MobileNetV2 (`nn.Sequential(conv, nn.BatchNorm2d)`).
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvBn {
    /// A 1×1 projection from `channels[0]` to `channels[1]` with the given stride.
    pub(super) fn projection(channels: [usize; 2], stride: usize, device: &Device) -> Self {
        Self {
            conv: conv1x1(channels, stride, device),
            bn: BatchNormConfig::new(channels[1]).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv::forward_batch_norm(&self.conv, &self.bn, x)
    }
}

/// The final `avg_pool2d(out, side)` of the references, which always sees a `side`×`side` map:
/// the spatial mean, `[batch, channels, side, side]` → `[batch, channels]`. The assertion
/// catches a wrong stride somewhere in the network (it would otherwise just pool a larger map).
pub(super) fn final_avg_pool(x: Tensor<4>, side: usize) -> Tensor<2> {
    let [_, _, height, width] = x.dims();
    debug_assert_eq!([height, width], [side, side], "final feature map size");
    x.mean_dim(3).mean_dim(2).flatten::<2>(1, 3)
}
