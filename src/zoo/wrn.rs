//! WideResNet-34-10 (Zagoruyko & Komodakis 2016), as in the TRADES repository
//! `models/wideresnet.py`: the teacher of RSLAD, TRADES and ARD. A 3×3 stem of 16 channels,
//! three groups of five pre-activation basic blocks (160, 320 and 640 channels; the last two
//! groups halve the resolution), a final BN-ReLU, average pool over the 8×8 map, one linear
//! layer. 46,160,474 parameters for 10 classes.
//!
//! The TRADES file also builds a `sub_block1` that its forward never uses; it is left out here,
//! which gives the published count. Dropout (rate 0 in TRADES and RSLAD) is left out too.
//!
//! Field names follow the PyTorch module names (`conv1`, `block1.layer.0.bn1`, ...,
//! `convShortcut` → `conv_shortcut`, `bn1`, `fc`) so that reference checkpoints map onto this
//! type by name.

use super::ModelSpec;
use super::cifar_blocks::{conv1x1, conv3x3, final_avg_pool};
use crate::conv;
use crate::error::ZooError;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;

const DEPTH: usize = 34;
const WIDEN: usize = 10;

/// Pre-activation block: BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3, plus the shortcut.
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub bn1: BatchNorm,
    pub conv1: Conv2d,
    pub bn2: BatchNorm,
    pub conv2: Conv2d,
    /// A 1×1 projection when the block changes width; identity otherwise.
    pub conv_shortcut: Option<Conv2d>,
}

impl BasicBlock {
    fn new(in_planes: usize, out_planes: usize, stride: usize, device: &Device) -> Self {
        let conv_shortcut =
            (in_planes != out_planes).then(|| conv1x1([in_planes, out_planes], stride, device));
        Self {
            bn1: BatchNormConfig::new(in_planes).init(device),
            conv1: conv3x3([in_planes, out_planes], stride, 1, device),
            bn2: BatchNormConfig::new(out_planes).init(device),
            conv2: conv3x3([out_planes, out_planes], 1, 1, device),
            conv_shortcut,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let activated = conv::batch_norm_relu(&self.bn1, x.clone());
        let out = conv::forward_batch_norm_relu(&self.conv1, &self.bn2, activated.clone());
        let out = conv::forward(&self.conv2, out);
        // As in TRADES: a widening block projects the pre-activated input, an identity block
        // adds the raw input.
        match &self.conv_shortcut {
            Some(projection) => out + conv::forward(projection, activated),
            None => out + x,
        }
    }
}

/// A group of blocks at one width (`NetworkBlock` in the reference); only the first block
/// changes width and resolution.
#[derive(Module, Debug)]
pub struct NetworkBlock {
    pub layer: Vec<BasicBlock>,
}

impl NetworkBlock {
    fn new(
        num_blocks: usize,
        in_planes: usize,
        out_planes: usize,
        stride: usize,
        device: &Device,
    ) -> Self {
        let layer = (0..num_blocks)
            .map(|i| match i {
                0 => BasicBlock::new(in_planes, out_planes, stride, device),
                _ => BasicBlock::new(out_planes, out_planes, 1, device),
            })
            .collect();
        Self { layer }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.layer.iter().fold(x, |x, block| block.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct WideResNet {
    pub conv1: Conv2d,
    pub block1: NetworkBlock,
    pub block2: NetworkBlock,
    pub block3: NetworkBlock,
    pub bn1: BatchNorm,
    pub fc: Linear,
    #[module(skip)]
    pub spec: ModelSpec,
}

impl WideResNet {
    pub fn new(spec: ModelSpec, device: &Device) -> Result<Self, ZooError> {
        // Two stride-2 groups take 32×32 to the 8×8 that the reference pools.
        spec.check(&[32])?;
        let n = (DEPTH - 4) / 6;
        let channels = [16, 16 * WIDEN, 32 * WIDEN, 64 * WIDEN];
        Ok(Self {
            conv1: conv3x3([spec.in_channels, channels[0]], 1, 1, device),
            block1: NetworkBlock::new(n, channels[0], channels[1], 1, device),
            block2: NetworkBlock::new(n, channels[1], channels[2], 2, device),
            block3: NetworkBlock::new(n, channels[2], channels[3], 2, device),
            bn1: BatchNormConfig::new(channels[3]).init(device),
            fc: LinearConfig::new(channels[3], spec.num_classes).init(device),
            spec,
        })
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = conv::forward(&self.conv1, images);
        let x = self.block1.forward(x);
        let x = self.block2.forward(x);
        let x = self.block3.forward(x);
        let x = conv::batch_norm_relu(&self.bn1, x);
        self.fc.forward(final_avg_pool(x, 8))
    }
}
