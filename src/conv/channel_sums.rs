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
    let [sums] = channel_sums_of(dims, inputs, |c| {
        let element = element(c);
        move |values| [element(values)]
    });
    sums
}

/// [`channel_sums`] of `M` element functions at once (`element(c)` returns the `M` values of a
/// place), in one read of the inputs: each sum is the one [`channel_sums`] gives alone.
pub fn channel_sums_of<const K: usize, const M: usize, F: Fn([f32; K]) -> [f32; M]>(
    dims: [usize; 4],
    inputs: [&[f32]; K],
    element: impl Fn(usize) -> F + Sync,
) -> [Vec<f32>; M] {
    let [images, channels, height, width] = dims;
    let plane = height * width;
    assert!(
        inputs
            .iter()
            .all(|input| input.len() == images * channels * plane)
    );
    let per_channel: Vec<[f32; M]> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let element = element(c);
            // Row position `k` of channel `c` is position `k % plane` of image `k / plane`.
            let fill = |start: usize, blocks: &mut [[f32; BLOCK]; M], len: usize| {
                let mut done = 0;
                while done < len {
                    let (image, at) = ((start + done) / plane, (start + done) % plane);
                    let run = (plane - at).min(len - done);
                    let from = (image * channels + c) * plane + at;
                    let sources = inputs.map(|input| &input[from..from + run]);
                    let mut outs = blocks.each_mut().map(|block| &mut block[done..done + run]);
                    for j in 0..run {
                        let values = element(sources.map(|source| source[j]));
                        for (out, value) in outs.iter_mut().zip(values) {
                            out[j] = value;
                        }
                    }
                    done += run;
                }
            };
            streamed_sums(images * plane, fill)
        })
        .collect();
    std::array::from_fn(|m| per_channel.iter().map(|sums| sums[m]).collect())
}

/// burn-flex's `sum_body` (burn-flex 0.22.1, `simd/kernels.rs`) over `M` rows of `len` values
/// that `fill(start, blocks, n)` writes `n` at a time (the first `n` of each block), on the
/// instruction set burn-flex's own dispatch picks (the same `macerator` crate).
#[macerator::with_simd]
fn streamed_sums<S: Simd, const M: usize, Fill: FnMut(usize, &mut [[f32; BLOCK]; M], usize)>(
    len: usize,
    mut fill: Fill,
) -> [f32; M] {
    let lanes = f32::lanes::<S>();
    let stride = lanes * 8;
    // A block that ends mid-stride would add that stride's values in another order.
    assert_eq!(BLOCK % stride, 0, "a block of whole strides");
    let zero = 0.0f32.splat::<S>();
    // Row m's eight accumulators, s0 … s7 of `sum_body`.
    let mut accumulators = [[zero; 8]; M];
    let mut blocks = [[0.0f32; BLOCK]; M];
    let mut start = 0;
    loop {
        let n = BLOCK.min(len - start);
        fill(start, &mut blocks, n);
        start += n;
        let last = start == len;
        let mut sums = [0.0f32; M];
        for ((s, block), sum) in accumulators.iter_mut().zip(&blocks).zip(&mut sums) {
            let mut xs: &[f32] = &block[..n];
            // Whole strides while at least one is left in the row: every stride of a block
            // but the last, as BLOCK is a multiple of the stride.
            while xs.len() >= stride {
                // SAFETY: `xs` holds at least eight vectors.
                unsafe {
                    let p = xs.as_ptr();
                    s[0] += vload_unaligned(p);
                    s[1] += vload_unaligned(p.add(lanes));
                    s[2] += vload_unaligned(p.add(lanes * 2));
                    s[3] += vload_unaligned(p.add(lanes * 3));
                    s[4] += vload_unaligned(p.add(lanes * 4));
                    s[5] += vload_unaligned(p.add(lanes * 5));
                    s[6] += vload_unaligned(p.add(lanes * 6));
                    s[7] += vload_unaligned(p.add(lanes * 7));
                }
                xs = &xs[stride..];
            }
            if last {
                let mut total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
                while xs.len() >= lanes {
                    // SAFETY: `xs` holds at least one vector.
                    total += unsafe { vload_unaligned(xs.as_ptr()) };
                    xs = &xs[lanes..];
                }
                *sum = total.reduce_add() + xs.iter().copied().sum::<f32>();
            }
        }
        if last {
            return sums;
        }
    }
}
