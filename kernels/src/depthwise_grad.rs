//! The weight gradient of a depthwise 3 × 3 convolution, with vectors over channels.
//!
//! The general weight gradient (weight_grad.rs) runs its vectors over a group's output
//! channels; a depthwise group has one, so each vector held one real lane of 8 and each
//! image's gradient was copied out at eight times its size (`mobilenet-v2`'s depthwise weight
//! gradients at 2–8% of the matmul rate, docs/performance.md, "The depthwise weight gradient").
//! Here a block of one vector of channels of an image, its input padded with zeros and its
//! output gradient, is turned into `[position][channel]` rows in the thread's scratch, and each
//! of the 9 terms sums one vector of channels over the positions in order.
//!
//! Every channel's sums are the general path's: the same chunks of images
//! ([`super::weight_grad`] passes its plan's), each term a product of the same two values
//! added by one fused multiply-add per position, images then positions in order, from zero,
//! and the chunks added in order. The bits are therefore the general path's, and still do not
//! depend on the instruction set or the number of threads.

use super::geometry::ConvGeometry;
use super::scratch::with_scratch;
use super::simd::{Isa, Simd, SimdKernel, run_on};
use super::weight_grad::ToPositionRows;
use rayon::prelude::*;
use std::ops::Range;

/// Terms of a 3 × 3 kernel: one accumulator each.
const TAPS: usize = 9;

/// Whether the depthwise engine computes `g`'s weight gradient.
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    g.is_depthwise() && g.kernel_h == 3 && g.kernel_w == 3
}

/// The weight gradient (OIHW, `[channel][kh][kw]`) of a depthwise 3 × 3 convolution, over
/// the general path's `chunks` of images.
pub(crate) fn weight_grad(
    isa: Isa,
    g: &ConvGeometry,
    x: &[f32],
    output_grad: &[f32],
    relu_output: Option<&[f32]>,
    chunks: Vec<Range<usize>>,
) -> Vec<f32> {
    // The caller (`super::weight_grad::weight_grad`) checked the lengths.
    assert!(applies(g), "not a depthwise 3 × 3 convolution: {g:?}");
    let plan = Plan::new(isa, g);
    let partials: Vec<Vec<f32>> = chunks
        .into_par_iter()
        .map(|images| plan.chunk(images, x, output_grad, relu_output))
        .collect();
    // In chunk order, as the general path adds its partial sums.
    let mut partials = partials.into_iter();
    let mut weight = partials.next().expect("a batch has at least one chunk");
    for partial in partials {
        for (sum, v) in weight.iter_mut().zip(partial) {
            *sum += v;
        }
    }
    weight
}

struct Plan {
    geometry: ConvGeometry,
    isa: Isa,
    lanes: usize,
    /// The input padded on every side, as the convolution reads it.
    padded_h: usize,
    padded_w: usize,
}

impl Plan {
    fn new(isa: Isa, g: &ConvGeometry) -> Plan {
        Plan {
            geometry: *g,
            isa,
            lanes: isa.lanes(),
            padded_h: g.pad_h.0 + g.in_h + g.pad_h.1,
            padded_w: g.pad_w.0 + g.in_w + g.pad_w.1,
        }
    }

    /// One chunk's sums, `[channel][term]`: blocks of one vector of channels, each over the
    /// chunk's images in order.
    fn chunk(
        &self,
        images: Range<usize>,
        x: &[f32],
        output_grad: &[f32],
        relu_output: Option<&[f32]>,
    ) -> Vec<f32> {
        let g = &self.geometry;
        let lanes = self.lanes;
        let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
        let source_len = self.padded_h * self.padded_w * lanes;
        let mut partial = vec![0.0; g.out_channels * TAPS];
        with_scratch(source_len + out_plane * lanes, |scratch| {
            let (source, grad) = scratch.split_at_mut(source_len);
            // The border stays zero: every image writes only the interior.
            source.fill(0.0);
            for c0 in (0..g.out_channels).step_by(lanes) {
                let channels = lanes.min(g.out_channels - c0);
                let mut sums = [0.0f32; TAPS * 16];
                for b in images.clone() {
                    let first_in = (b * g.in_channels + c0) * in_plane;
                    let first_out = (b * g.out_channels + c0) * out_plane;
                    // The block's rows lie inside the image's planes.
                    assert!(first_in + channels * in_plane <= x.len());
                    assert!(first_out + channels * out_plane <= output_grad.len());
                    let block = Block {
                        x: x[first_in..].as_ptr(),
                        output_grad: output_grad[first_out..].as_ptr(),
                        relu_output: relu_output.map(|o| o[first_out..].as_ptr()),
                        channels,
                        geometry: *g,
                        padded_w: self.padded_w,
                        source: source.as_mut_ptr(),
                        grad: grad.as_mut_ptr(),
                        sums: sums.as_mut_ptr(),
                    };
                    // SAFETY: the plan's ISA is available (from `Isa::detected` or a test that
                    // checked it); the block's rows are inside `x` and the gradient (checked
                    // above), the scratch holds the padded block and the gradient's rows, and
                    // `sums` one vector per term.
                    unsafe { run_on(self.isa, &block, ()) };
                }
                for (c, terms) in partial[c0 * TAPS..]
                    .chunks_exact_mut(TAPS)
                    .take(channels)
                    .enumerate()
                {
                    for (t, term) in terms.iter_mut().enumerate() {
                        *term = sums[t * lanes + c];
                    }
                }
            }
        });
        partial
    }
}

/// One image's block of channels: its input rows into the padded `[position][channel]`
/// block, its gradient into `[position][channel]` rows, then each term's vector of sums
/// carried on over the image's positions.
struct Block {
    /// The block's first input plane and output-gradient plane (and the ReLU's output).
    x: *const f32,
    output_grad: *const f32,
    relu_output: Option<*const f32>,
    /// Real channels of the block (the rest of the vector is zero).
    channels: usize,
    geometry: ConvGeometry,
    padded_w: usize,
    /// Scratch: the padded block, one vector per position, its border zero.
    source: *mut f32,
    /// Scratch: the gradient's rows, one vector per output position.
    grad: *mut f32,
    /// `[term][lane]`: read at the start, written back at the end.
    sums: *mut f32,
}

impl SimdKernel<()> for Block {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, (): ()) {
        let g = &self.geometry;
        let lanes = S::LANES;
        let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
        // SAFETY (whole function): `Plan::chunk`'s checks; the padded block holds
        // `padded_h × padded_w` vectors and each input row lands inside its row of them.
        unsafe {
            for ih in 0..g.in_h {
                let row = (g.pad_h.0 + ih) * self.padded_w + g.pad_w.0;
                let rows = ToPositionRows {
                    grads: self.x.add(ih * g.in_w),
                    relu_output: None,
                    channels: self.channels,
                    positions: g.in_w,
                    plane_len: in_plane,
                    channel_stride: lanes,
                    out: self.source.add(row * lanes),
                };
                rows.run::<S>(());
            }
            let rows = ToPositionRows {
                grads: self.output_grad,
                relu_output: self.relu_output,
                channels: self.channels,
                positions: out_plane,
                plane_len: out_plane,
                channel_stride: lanes,
                out: self.grad,
            };
            rows.run::<S>(());

            let mut taps = [0usize; TAPS];
            for (t, tap) in taps.iter_mut().enumerate() {
                *tap = ((t / 3) * self.padded_w + t % 3) * lanes;
            }
            let mut sums = [S::splat(0.0); TAPS];
            for (t, sum) in sums.iter_mut().enumerate() {
                *sum = S::load(self.sums.add(t * lanes));
            }
            let [s_h, s_w] = g.stride;
            for oh in 0..g.out_h {
                let source_row = self.source.add(oh * s_h * self.padded_w * lanes);
                let grad_row = self.grad.add(oh * g.out_w * lanes);
                for ow in 0..g.out_w {
                    let dy = S::load(grad_row.add(ow * lanes));
                    let source = source_row.add(ow * s_w * lanes);
                    for (sum, &tap) in sums.iter_mut().zip(&taps) {
                        *sum = S::fma(S::load(source.add(tap)), dy, *sum);
                    }
                }
            }
            for (t, sum) in sums.iter().enumerate() {
                S::store(self.sums.add(t * lanes), *sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::applies;
    use crate::geometry::ConvGeometry;
    use crate::simd::Isa;
    use crate::weight_grad::{weight_grad, weight_grad_on_tiles};

    fn values(len: usize, a: usize, m: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * a) % m) as f32 / m as f32 - 0.5)
            .collect()
    }

    #[test]
    fn the_depthwise_engine_gives_the_general_engines_bits_on_every_isa() {
        let isas: Vec<Isa> = [Isa::Portable, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.is_available())
            .collect();
        // (batch, channels, [h, w], stride, padding): channels that fill part of a vector, one,
        // and part of a second; strides 1 and 2; padding 0–2, uneven; one image a chunk and
        // (few positions) several; a 2-row input whose padding the kernel does not all read.
        let cases = [
            (3, 1, [5, 7], [1, 1], [(1, 1), (1, 1)]),
            (5, 7, [9, 9], [2, 2], [(1, 1), (1, 1)]),
            (2, 16, [8, 8], [1, 1], [(0, 0), (0, 0)]),
            (4, 17, [6, 11], [1, 2], [(2, 0), (1, 2)]),
            (20, 40, [4, 4], [1, 1], [(1, 1), (1, 1)]),
            (3, 33, [32, 32], [2, 2], [(0, 1), (0, 1)]),
            (6, 24, [2, 3], [2, 2], [(1, 2), (2, 1)]),
        ];
        for (batch, channels, [h, w], stride, padding) in cases {
            let g = ConvGeometry::new(
                [batch, channels, h, w],
                [channels, 1, 3, 3],
                stride,
                padding,
                [1, 1],
                channels,
            )
            .unwrap();
            assert!(applies(&g));
            let x = values(g.batch * g.in_image(), 7919, 1000);
            let output_grad = values(g.batch * g.out_image(), 13, 101);
            let relu_output = values(g.batch * g.out_image(), 7, 11);
            for relu in [None, Some(&relu_output[..])] {
                let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
                let first = bits(weight_grad(isas[0], &g, &x, &output_grad, relu));
                for &isa in &isas {
                    let ours = bits(weight_grad(isa, &g, &x, &output_grad, relu));
                    let tiles = bits(weight_grad_on_tiles(isa, &g, &x, &output_grad, relu));
                    assert_eq!(ours, tiles, "{g:?} on {isa:?}, ReLU {}", relu.is_some());
                    assert_eq!(ours, first, "{g:?}: {isa:?} against {:?}", isas[0]);
                }
            }
        }
    }
}
