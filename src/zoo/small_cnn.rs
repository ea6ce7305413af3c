//! The TRADES SmallCNN (Zhang et al. 2019, `models/small_cnn.py`): conv32, conv32, pool,
//! conv64, conv64, pool, fc200, fc200, fc10, ReLU throughout, 3×3 valid convolutions.
//!
//! The original has dropout 0.5 after the first fully connected layer; it is left out so that
//! training is exactly reproducible from a seed (see the README's notes on deviations).

use super::ModelSpec;
use crate::conv;
use crate::error::ZooError;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

#[derive(Module, Debug)]
pub struct SmallCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    conv4: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    #[module(skip)]
    pub spec: ModelSpec,
}

impl SmallCnn {
    pub fn new(spec: ModelSpec, device: &Device) -> Result<Self, ZooError> {
        spec.check(&[28, 32])?;
        // Two valid 3×3 convolutions and a 2×2 pool, twice: 28 → 4, 32 → 5.
        let side = ((spec.image_size - 4) / 2 - 4) / 2;
        let conv = |i, o| Conv2dConfig::new([i, o], [3, 3]).init(device);
        Ok(Self {
            conv1: conv(spec.in_channels, 32),
            conv2: conv(32, 32),
            conv3: conv(32, 64),
            conv4: conv(64, 64),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc1: LinearConfig::new(64 * side * side, 200).init(device),
            fc2: LinearConfig::new(200, 200).init(device),
            fc3: LinearConfig::new(200, spec.num_classes).init(device),
            spec,
        })
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = conv::forward_relu(&self.conv1, images);
        let x = conv::max_pool2d(&self.pool, conv::forward_relu(&self.conv2, x));
        let x = conv::forward_relu(&self.conv3, x);
        let x = conv::max_pool2d(&self.pool, conv::forward_relu(&self.conv4, x));
        let x = x.flatten::<2>(1, 3);
        let x = relu(self.fc1.forward(x));
        let x = relu(self.fc2.forward(x));
        self.fc3.forward(x)
    }
}
