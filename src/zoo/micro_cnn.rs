//! A deliberately tiny student for quick demos: two 3×3 conv + batch-norm + ReLU + pool blocks
//! (8 and 16 channels), then one linear layer. Trains on MNIST in seconds; its batch norm
//! makes the train/eval-mode distinctions of RSLAD, TRADES and ARD observable.

use super::ModelSpec;
use crate::conv;
use crate::error::ZooError;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

#[derive(Module, Debug)]
pub struct MicroCnn {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    pool: MaxPool2d,
    fc: Linear,
    #[module(skip)]
    pub spec: ModelSpec,
}

impl MicroCnn {
    pub fn new(spec: ModelSpec, device: &Device) -> Result<Self, ZooError> {
        Self::with_width(spec, 1, device)
    }

    /// The architecture with `width` times its channels (8·width and 16·width): the zoo's
    /// `micro-cnn` is width 1; the benchmarks use wider ones to show how cost grows.
    pub fn with_width(spec: ModelSpec, width: usize, device: &Device) -> Result<Self, ZooError> {
        spec.check(&[28, 32])?;
        if width == 0 {
            return Err(ZooError::BadConfig {
                arch: spec.arch.name(),
                expected: "a width of at least 1".into(),
                got: "width 0".into(),
            });
        }
        let side = spec.image_size / 4;
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device)
        };
        Ok(Self {
            conv1: conv(spec.in_channels, 8 * width),
            bn1: BatchNormConfig::new(8 * width).init(device),
            conv2: conv(8 * width, 16 * width),
            bn2: BatchNormConfig::new(16 * width).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc: LinearConfig::new(16 * width * side * side, spec.num_classes).init(device),
            spec,
        })
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = conv::forward_batch_norm_relu(&self.conv1, &self.bn1, images);
        let x = conv::max_pool2d(&self.pool, x);
        let x = conv::forward_batch_norm_relu(&self.conv2, &self.bn2, x);
        let x = conv::max_pool2d(&self.pool, x);
        self.fc.forward(x.flatten::<2>(1, 3))
    }
}
