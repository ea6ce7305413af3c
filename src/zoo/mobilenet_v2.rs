//! MobileNetV2, CIFAR variant (Sandler et al. 2018, as in kuangliu/pytorch-cifar
//! `models/mobilenetv2.py`): the ImageNet network with the stem and the second stage at
//! stride 1, so that 32×32 inputs reach the final 1×1 convolution at 4×4. Inverted residual
//! blocks (1×1 expand, 3×3 depthwise, 1×1 linear projection). 2,296,922 parameters for 10
//! classes.
//!
//! Field names follow the PyTorch module names (`conv1`, `bn1`, `layers.0.conv1`, ...,
//! `conv2`, `bn2`, `linear`) so that reference checkpoints map onto this type by name.

use super::ModelSpec;
use super::cifar_blocks::{ConvBn, conv1x1, conv3x3, final_avg_pool};
use crate::conv;
use crate::error::ZooError;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;

/// (expansion, out_planes, num_blocks, stride) of each stage; stride applies to its first block.
const CFG: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 1), // stride 2 in the ImageNet network
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Inverted residual: expand (1×1), depthwise (3×3), project (1×1, no ReLU).
#[derive(Module, Debug)]
pub struct Block {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    /// A 1×1 projection when a stride-1 block changes width.
    pub shortcut: Option<ConvBn>,
    /// Stride-1 blocks add a shortcut; stride-2 blocks do not.
    #[module(skip)]
    residual: bool,
}

impl Block {
    fn new(
        in_planes: usize,
        out_planes: usize,
        expansion: usize,
        stride: usize,
        device: &Device,
    ) -> Self {
        let planes = expansion * in_planes;
        let residual = stride == 1;
        let shortcut = (residual && in_planes != out_planes)
            .then(|| ConvBn::projection([in_planes, out_planes], 1, device));
        Self {
            conv1: conv1x1([in_planes, planes], 1, device),
            bn1: BatchNormConfig::new(planes).init(device),
            conv2: conv3x3([planes, planes], stride, planes, device),
            bn2: BatchNormConfig::new(planes).init(device),
            conv3: conv1x1([planes, out_planes], 1, device),
            bn3: BatchNormConfig::new(out_planes).init(device),
            shortcut,
            residual,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = conv::forward_batch_norm_relu(&self.conv1, &self.bn1, x.clone());
        let out = conv::forward_batch_norm_relu(&self.conv2, &self.bn2, out);
        let out = conv::forward_batch_norm(&self.conv3, &self.bn3, out);
        if !self.residual {
            return out;
        }
        match &self.shortcut {
            Some(projection) => out + projection.forward(x),
            None => out + x,
        }
    }
}

#[derive(Module, Debug)]
pub struct MobileNetV2 {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub layers: Vec<Block>,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub linear: Linear,
    #[module(skip)]
    pub spec: ModelSpec,
}

impl MobileNetV2 {
    pub fn new(spec: ModelSpec, device: &Device) -> Result<Self, ZooError> {
        // Three stride-2 stages take 32×32 to the 4×4 that the reference pools.
        spec.check(&[32])?;
        let mut layers = Vec::new();
        let mut in_planes = 32;
        for (expansion, out_planes, num_blocks, stride) in CFG {
            for i in 0..num_blocks {
                let stride = if i == 0 { stride } else { 1 };
                layers.push(Block::new(in_planes, out_planes, expansion, stride, device));
                in_planes = out_planes;
            }
        }
        Ok(Self {
            conv1: conv3x3([spec.in_channels, 32], 1, 1, device),
            bn1: BatchNormConfig::new(32).init(device),
            layers,
            conv2: conv1x1([320, 1280], 1, device),
            bn2: BatchNormConfig::new(1280).init(device),
            linear: LinearConfig::new(1280, spec.num_classes).init(device),
            spec,
        })
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = conv::forward_batch_norm_relu(&self.conv1, &self.bn1, images);
        for block in &self.layers {
            x = block.forward(x);
        }
        let x = conv::forward_batch_norm_relu(&self.conv2, &self.bn2, x);
        self.linear.forward(final_avg_pool(x, 4))
    }
}
