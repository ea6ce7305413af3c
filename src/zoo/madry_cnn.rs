//! The MNIST network of Madry et al. (2018, `mnist_challenge/model.py`): conv 5×5 32 (same),
//! pool, conv 5×5 64 (same), pool, fc 1024, logits. The classic robust MNIST teacher.

use super::ModelSpec;
use crate::conv;
use crate::error::ZooError;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

#[derive(Module, Debug)]
pub struct MadryCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
    #[module(skip)]
    pub spec: ModelSpec,
}

impl MadryCnn {
    pub fn new(spec: ModelSpec, device: &Device) -> Result<Self, ZooError> {
        spec.check(&[28, 32])?;
        let side = spec.image_size / 4;
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [5, 5])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(device)
        };
        Ok(Self {
            conv1: conv(spec.in_channels, 32),
            conv2: conv(32, 64),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc1: LinearConfig::new(64 * side * side, 1024).init(device),
            fc2: LinearConfig::new(1024, spec.num_classes).init(device),
            spec,
        })
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = conv::max_pool2d(&self.pool, conv::forward_relu(&self.conv1, images));
        let x = conv::max_pool2d(&self.pool, conv::forward_relu(&self.conv2, x));
        let x = relu(self.fc1.forward(x.flatten::<2>(1, 3)));
        self.fc2.forward(x)
    }
}
