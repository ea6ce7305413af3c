//! A multi-layer perceptron: flatten, two hidden layers of 256 with ReLU, logits.

use super::ModelSpec;
use crate::error::ZooError;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

const HIDDEN: usize = 256;

#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    #[module(skip)]
    pub spec: ModelSpec,
}

impl Mlp {
    pub fn new(spec: ModelSpec, device: &Device) -> Result<Self, ZooError> {
        spec.check(&[28, 32])?;
        let inputs = spec.in_channels * spec.image_size * spec.image_size;
        Ok(Self {
            fc1: LinearConfig::new(inputs, HIDDEN).init(device),
            fc2: LinearConfig::new(HIDDEN, HIDDEN).init(device),
            fc3: LinearConfig::new(HIDDEN, spec.num_classes).init(device),
            spec,
        })
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = images.flatten::<2>(1, 3);
        let x = relu(self.fc1.forward(x));
        let x = relu(self.fc2.forward(x));
        self.fc3.forward(x)
    }
}
