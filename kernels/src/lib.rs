//! rslad-tui's convolution and pooling kernels for the CPU, on plain `f32` slices (NCHW
//! activations, OIHW weights): the forward pass, input gradient and weight gradient of a 2-D
//! convolution, with an optional fused ReLU or inference-mode batch norm, and max pooling over
//! windows that tile the input.
//! rslad-tui registers them in burn's autodiff graph (`src/conv/`); the design and the
//! measurements that chose it are in rslad-tui's docs/performance.md.
//!
//! Every kernel runs on AVX-512, AVX2 + FMA or portable code chosen at run time ([`Isa`]), is
//! parallel over images with rayon, and gives results that do not depend on the instruction
//! set or the number of threads (each output is one accumulator summed in a fixed order). One
//! exception, in the sign of a zero: a forward pass whose bias is exactly −0 and whose terms
//! are all zeros can give −0 on one engine and +0 on another, and the engine chosen can depend
//! on the instruction set (channel_forward.rs).

mod channel_forward;
mod channels;
mod correlate;
mod depthwise_grad;
mod first_layer;
mod first_layer_grad;
mod first_layer_taps;
mod forward;
pub mod geometry;
mod input_grad;
mod norm;
mod output;
pub mod planes;
mod pool;
mod pool_2x2;
mod row_tile;
mod rows;
mod scratch;
pub mod simd;
mod weight_grad;
mod winograd;

pub use forward::{forward, forward_normalised, forward_on_channels, forward_on_grid};
pub use geometry::ConvGeometry;
pub use input_grad::{
    first_layer_sums_taps, input_grad, input_grad_direct, input_grad_normalised,
    input_grad_on_positions,
};
pub use norm::{ChannelNorm, ChannelScalars};
pub use output::map_planes;
pub use pool::{PoolGeometry, max_pool_backward, max_pool_forward};
pub use simd::{Isa, relu, relu_backward};
pub use weight_grad::{bias_grad, weight_grad, weight_grad_on_tiles};
