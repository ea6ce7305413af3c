//! Per-channel sums of NCHW activations in burn-flex's order, without laying them out as rows.
//!
//! burn's `batch_norm_train` reduces an activation laid out channel by channel, `[C, N·H·W]`,
//! with burn-flex's `sum_dim`, which sums each row with its SIMD `sum_body`: eight vector
//! accumulators over whole strides of eight vectors, combined pairwise, then the remaining
//! whole vectors, a horizontal add, then the scalar tail. [`channel_sums`] runs that same
//! sequence of additions over each channel's planes where they lie, mapping the elements on the
//! way into a buffer that stays in L1: the same bits, without writing the rows or reading them
//! back, and the channels in parallel (burn-flex sums the rows one after another). To the bit
//! for inputs without NaN; a NaN stays a NaN, but which of two NaNs' sign and payload an
//! addition keeps is the compiler's choice of operand order, not fixed (the trainer stops on a
//! non-finite loss anyway).

use macerator::{Scalar, Simd, vload_unaligned};
use rayon::prelude::*;

/// The elements mapped and summed at a time: a multiple of every SIMD stride (eight vectors of
/// at most 16 lanes), so that only the last block has whole vectors or a tail left over.
const BLOCK: usize = 2048;

/// For each channel `c` of `[images, channels, height, width]` inputs, the sum over its images
/// and positions of `element(c)([input at that place for each input])`, as burn-flex's
/// `sum_dim(·, 1)` sums the channel rows `[C, N·H·W]` that `swap_dims(0, 1)` and a reshape
/// lay out, to the bit.
///
/// # Panics
/// If an input's length is not the product of `dims`.
pub fn channel_sums<const K: usize, F: Fn([f32; K]) -> f32>(
    dims: [usize; 4],
    inputs: [&[f32]; K],
    element: impl Fn(usize) -> F + Sync,
) -> Vec<f32> {
    let [images, channels, height, width] = dims;
    let plane = height * width;
    assert!(
        inputs
            .iter()
            .all(|input| input.len() == images * channels * plane)
    );
    (0..channels)
        .into_par_iter()
        .map(|c| {
            let element = element(c);
            // Row position `k` of channel `c` is position `k % plane` of image `k / plane`.
            let fill = |start: usize, block: &mut [f32]| {
                let mut done = 0;
                while done < block.len() {
                    let (image, at) = ((start + done) / plane, (start + done) % plane);
                    let run = (plane - at).min(block.len() - done);
                    let from = (image * channels + c) * plane + at;
                    let sources = inputs.map(|input| &input[from..from + run]);
                    for (j, out) in block[done..done + run].iter_mut().enumerate() {
                        *out = element(sources.map(|source| source[j]));
                    }
                    done += run;
                }
            };
            streamed_sum(images * plane, fill)
        })
        .collect()
}

/// burn-flex's `sum_body` (burn-flex 0.22.1, `simd/kernels.rs`) over a row of `len` values that
/// `fill(start, block)` writes block by block, on the instruction set burn-flex's own dispatch
/// picks (the same `macerator` crate).
#[macerator::with_simd]
fn streamed_sum<S: Simd, Fill: FnMut(usize, &mut [f32])>(len: usize, mut fill: Fill) -> f32 {
    let lanes = f32::lanes::<S>();
    let stride = lanes * 8;
    // A block that ends mid-stride would add that stride's values in another order.
    assert_eq!(BLOCK % stride, 0, "a block of whole strides");
    let zero = 0.0f32.splat::<S>();
    let (mut s0, mut s1, mut s2, mut s3) = (zero, zero, zero, zero);
    let (mut s4, mut s5, mut s6, mut s7) = (zero, zero, zero, zero);
    let mut buffer = [0.0f32; BLOCK];
    let mut start = 0;
    loop {
        let block = &mut buffer[..BLOCK.min(len - start)];
        fill(start, block);
        start += block.len();
        let mut xs: &[f32] = block;
        // Whole strides while at least one is left in the row: every stride of a block but the
        // last, as BLOCK is a multiple of the stride.
        while xs.len() >= stride {
            // SAFETY: `xs` holds at least eight vectors.
            unsafe {
                let p = xs.as_ptr();
                s0 += vload_unaligned(p);
                s1 += vload_unaligned(p.add(lanes));
                s2 += vload_unaligned(p.add(lanes * 2));
                s3 += vload_unaligned(p.add(lanes * 3));
                s4 += vload_unaligned(p.add(lanes * 4));
                s5 += vload_unaligned(p.add(lanes * 5));
                s6 += vload_unaligned(p.add(lanes * 6));
                s7 += vload_unaligned(p.add(lanes * 7));
            }
            xs = &xs[stride..];
        }
        if start == len {
            let mut sum = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
            while xs.len() >= lanes {
                // SAFETY: `xs` holds at least one vector.
                sum += unsafe { vload_unaligned(xs.as_ptr()) };
                xs = &xs[lanes..];
            }
            return sum.reduce_add() + xs.iter().copied().sum::<f32>();
        }
    }
}
