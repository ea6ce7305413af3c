//! ResNet-18, CIFAR variant (He et al. 2016, as in kuangliu/pytorch-cifar `models/resnet.py`):
//! a 3×3 stride-1 stem with no max-pool, four stages of two basic blocks (64, 128, 256, 512
//! channels; the last three halve the resolution), global average pool over the final 4×4,
//! one linear layer. 11,173,962 parameters for 10 classes.
//!
//! Field names follow the PyTorch module names (`conv1`, `bn1`, `layer1.0.conv1`, ...,
//! `linear`) so that reference checkpoints map onto this type by name.

use super::ModelSpec;
use super::cifar_blocks::{ConvBn, conv3x3, final_avg_pool};
use crate::conv;
use crate::error::ZooError;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    /// A 1×1 projection when the block changes resolution or width; identity otherwise.
    pub shortcut: Option<ConvBn>,
}

impl BasicBlock {
    fn new(in_planes: usize, planes: usize, stride: usize, device: &Device) -> Self {
        let shortcut = (stride != 1 || in_planes != planes)
            .then(|| ConvBn::projection([in_planes, planes], stride, device));
        Self {
            conv1: conv3x3([in_planes, planes], stride, 1, device),
            bn1: BatchNormConfig::new(planes).init(device),
            conv2: conv3x3([planes, planes], 1, 1, device),
            bn2: BatchNormConfig::new(planes).init(device),
            shortcut,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = conv::forward_batch_norm_relu(&self.conv1, &self.bn1, x.clone());
        let out = conv::forward_batch_norm(&self.conv2, &self.bn2, out);
        let skip = match &self.shortcut {
            Some(projection) => projection.forward(x),
            None => x,
        };
        relu(out + skip)
    }
}

#[derive(Module, Debug)]
pub struct ResNet18 {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub layer1: Vec<BasicBlock>,
    pub layer2: Vec<BasicBlock>,
    pub layer3: Vec<BasicBlock>,
    pub layer4: Vec<BasicBlock>,
    pub linear: Linear,
    #[module(skip)]
    pub spec: ModelSpec,
}

impl ResNet18 {
    pub fn new(spec: ModelSpec, device: &Device) -> Result<Self, ZooError> {
        // Three stride-2 stages take 32×32 to the 4×4 that the reference pools.
        spec.check(&[32])?;
        // Each stage: the first block may downsample and widen, the second keeps the shape.
        let stage = |in_planes, planes, stride| {
            vec![
                BasicBlock::new(in_planes, planes, stride, device),
                BasicBlock::new(planes, planes, 1, device),
            ]
        };
        Ok(Self {
            conv1: conv3x3([spec.in_channels, 64], 1, 1, device),
            bn1: BatchNormConfig::new(64).init(device),
            layer1: stage(64, 64, 1),
            layer2: stage(64, 128, 2),
            layer3: stage(128, 256, 2),
            layer4: stage(256, 512, 2),
            linear: LinearConfig::new(512, spec.num_classes).init(device),
            spec,
        })
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = conv::forward_batch_norm_relu(&self.conv1, &self.bn1, images);
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        self.linear.forward(final_avg_pool(x, 4))
    }
}
