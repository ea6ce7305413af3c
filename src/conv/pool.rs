//! Max pooling on the flex device through our kernel (`rslad_kernels::max_pool_forward`),
//! recorded in burn's autodiff graph with a backward step that routes each output's gradient
//! to its window's argmax.

use super::op::{AutodiffTensor, flex_tensor, on_flex, values};
use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use rslad_kernels::{PoolGeometry, max_pool_backward, max_pool_forward};
use std::sync::Arc;

/// Runs the pooling on our kernels if `x` lives on the flex device (with or without
/// autodiff); `None` otherwise.
pub fn try_max_pool2d(x: &Tensor<4>, window: usize) -> Option<Tensor<4>> {
    let [batch, channels, in_h, in_w] = x.dims();
    let g = PoolGeometry {
        batch,
        channels,
        in_h,
        in_w,
        window,
    };
    if !(1..=15).contains(&window) || g.out_h() == 0 || g.out_w() == 0 || g.planes() == 0 {
        return None;
    }
    on_flex(
        x,
        |x| autodiff_max_pool(x, g),
        |x| flex_tensor(max_pool_forward(&g, &values(x), false).0, &g.out_dims()),
    )
}

#[derive(Clone, Debug)]
struct PoolSaved {
    // An `Arc<[u8]>` would copy the bytes out of the kernel's vector; this keeps them.
    argmax: Arc<Vec<u8>>,
    geometry: PoolGeometry,
}

#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    type State = PoolSaved;

    fn backward(self, ops: Ops<PoolSaved, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let output_grad = grads.consume::<Flex>(&ops.node);
        let [Some(node)] = ops.parents else { return };
        let g = ops.state.geometry;
        let grad = max_pool_backward(&g, &ops.state.argmax, &values(&output_grad));
        grads.register::<Flex>(
            node.id,
            flex_tensor(grad, &[g.batch, g.channels, g.in_h, g.in_w]),
        );
    }
}

fn autodiff_max_pool(x: AutodiffTensor, g: PoolGeometry) -> AutodiffTensor {
    let prep = MaxPoolBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful();
    match prep {
        OpsKind::Tracked(prep) => {
            let (out, argmax) = max_pool_forward(&g, &values(x.primitive()), true);
            let saved = PoolSaved {
                argmax: Arc::new(argmax),
                geometry: g,
            };
            prep.finish(saved, flex_tensor(out, &g.out_dims()))
        }
        OpsKind::UnTracked(prep) => {
            let (out, _) = max_pool_forward(&g, &values(x.primitive()), false);
            prep.finish(flex_tensor(out, &g.out_dims()))
        }
    }
}
