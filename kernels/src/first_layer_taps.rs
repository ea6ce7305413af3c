//! The input gradient of a first layer (one input channel, stride 1, 3 × 3 or 5 × 5) as tap
//! sums, the way a GEMM-and-col2im library computes it, without the GEMM's buffers.
//!
//! The image's gradient at (i, j) is Σ over output channels co and kernel taps (kh, kw) of
//! `w[co][kh][kw] · g[co][i + pad − kh][j + pad − kw]` (gradient positions outside the plane
//! read as zero). Two passes:
//!
//! 1. *Tap sums*: `t[kh][kw][p] = Σ_co w[co][kh][kw] · g[co][p]` for every gradient position
//!    p, the positions taken as one flat row (a channel's gradient plane is contiguous), so
//!    each vector of gradient loaded feeds a group of taps (all K² of a 3 × 3 kernel on
//!    AVX-512; a kernel row on AVX2 and for 5 × 5, the vector loaded again, from L1, per
//!    group) and no lane is computed twice but the last vector's (moved back to end at the
//!    plane's end, recomputing the same values). The ReLU's backward step is applied as the
//!    gradient is loaded; nothing is copied.
//! 2. *Gather*: each input row sums, in kernel order (kh, then kw), the K² tap planes shifted
//!    to it, the lanes whose gradient column falls outside the plane left out (masked loads).
//!
//! The older engine ([`super::first_layer_grad`]) adds every output channel's K² terms into
//! the image one channel at a time, after copying that channel into a padded plane: about a
//! third of its multiply-adds read the zero border, and the copy is a third of its time
//! (docs/performance.md). Here no multiply-add reads a border: the gather leaves the lanes
//! outside the plane out, a few per row. The sums are taken in another order than the older
//! engines' (channels first, then taps), so the bits differ from theirs; on every instruction
//! set each value is the same chain of single-rounded multiply-adds, so they do not differ
//! between those.

use super::geometry::ConvGeometry;
use super::row_tile::vector_starts;
use super::simd::{Isa, Simd, SimdKernel, prefetch_line, run_on};
use std::mem::MaybeUninit;

/// How far ahead of the vectors being read the gradient is prefetched, in floats.
const PREFETCH_AHEAD: usize = 64;

/// The kernel sides this engine takes: each has its arms in its [`SimdKernel::run`].
const KERNELS: [usize; 2] = [3, 5];

/// The plan of one first-layer input gradient by tap sums, the same for every image.
#[derive(Debug, Clone)]
pub struct FirstLayerTaps {
    /// The kernel's side, K.
    kernel: usize,
    /// `[out channel][kh][kw]`: the layer's weights as they are (one input channel).
    weights: Vec<f32>,
    channels: usize,
    grad_h: usize,
    grad_w: usize,
    in_h: usize,
    in_w: usize,
    /// Padding before the first row and column.
    pad: [usize; 2],
    /// The first position of each vector over a flattened gradient plane.
    position_starts: Vec<usize>,
    /// Lanes each of those vectors holds: a whole vector, or the plane where it is shorter.
    position_lanes: usize,
    /// The first column of each vector of an input row.
    row_starts: Vec<usize>,
    /// Lanes each of those vectors holds: a whole vector, or the row where it is shorter.
    row_lanes: usize,
    /// `[row vector][kw]`: the lanes `start..end` of that vector whose gradient column, for
    /// kernel column kw, lies inside the plane (`start == end`: none).
    inside: Vec<(usize, usize)>,
    isa: Isa,
}

impl FirstLayerTaps {
    /// Plans the input gradient of a one-channel, stride-1 convolution `g` with `weight`
    /// (OIHW, `[out][1][kh][kw]`), or `None` unless it is one and its kernel is 3 × 3 or
    /// 5 × 5. Which shapes it takes does not depend on the instruction set (rows and planes
    /// shorter than a vector take a partial one), so neither do the bits.
    pub fn new(isa: Isa, g: &ConvGeometry, weight: &[f32]) -> Option<FirstLayerTaps> {
        let (in_h, in_w, grad_h, grad_w) = (g.in_h, g.in_w, g.out_h, g.out_w);
        let (out_channels, pad_begin) = (g.out_channels, [g.pad_h.0, g.pad_w.0]);
        let lanes = isa.lanes();
        let k = g.kernel_h;
        // An empty input (an image of no rows or columns, which padding can still convolve):
        // nothing to do here, and no vector to plan. The gradient is never empty: a
        // `ConvGeometry` has at least one output position.
        if !g.has_one_input_channel_at_stride_1()
            || g.kernel_w != k
            || !KERNELS.contains(&k)
            || in_h * in_w == 0
        {
            return None;
        }
        assert_eq!(weight.len(), out_channels * k * k, "weight length");
        let row_lanes = lanes.min(in_w);
        let row_starts = vector_starts(in_w, row_lanes);
        // Vector n covers columns j = start + lane; for kernel column kw it reads gradient
        // column j + pad − kw, inside the plane for lane ∈ [kw − pad − start, grad_w + kw −
        // pad − start).
        let inside = row_starts
            .iter()
            .flat_map(|&start| {
                (0..k).map(move |kw| {
                    let shift = start as isize + pad_begin[1] as isize - kw as isize;
                    let first = (-shift).clamp(0, row_lanes as isize) as usize;
                    let end = (grad_w as isize - shift).clamp(0, row_lanes as isize) as usize;
                    (first, end.max(first))
                })
            })
            .collect();
        Some(FirstLayerTaps {
            kernel: k,
            weights: weight.to_vec(),
            channels: out_channels,
            grad_h,
            grad_w,
            in_h,
            in_w,
            pad: pad_begin,
            position_starts: vector_starts(grad_h * grad_w, lanes.min(grad_h * grad_w)),
            position_lanes: lanes.min(grad_h * grad_w),
            row_starts,
            row_lanes,
            inside,
            isa,
        })
    }

    /// Floats of scratch one image needs (the K² tap planes).
    pub fn scratch_len(&self) -> usize {
        self.kernel * self.kernel * self.grad_h * self.grad_w
    }

    /// One image: writes into `out` (`[in_h][in_w]`) the gradient from `output_grad`
    /// (`[out channel][out_h][out_w]`), through the ReLU's backward step where `relu_output`
    /// is given. Every element of `out` is written (it may start uninitialised), none read.
    pub fn run(
        &self,
        output_grad: &[f32],
        relu_output: Option<&[f32]>,
        scratch: &mut [f32],
        out: &mut [MaybeUninit<f32>],
    ) {
        assert_eq!(
            output_grad.len(),
            self.channels * self.grad_h * self.grad_w,
            "gradient length"
        );
        assert!(relu_output.is_none_or(|o| o.len() == output_grad.len()));
        assert_eq!(out.len(), self.in_h * self.in_w, "output length");
        let image = Image {
            output_grad: output_grad.as_ptr(),
            relu_output: relu_output.map(<[f32]>::as_ptr),
            taps: scratch[..self.scratch_len()].as_mut_ptr(),
            // `MaybeUninit<f32>` has the layout of `f32`; the gather only stores through it.
            out: out.as_mut_ptr().cast::<f32>(),
        };
        // SAFETY: the lengths were checked above; every vector start keeps its vector (whole,
        // or of `row_lanes` / `position_lanes` lanes where a row or plane is shorter) inside
        // its plane or row (see `vector_starts`); the gather's partial loads read only the
        // lanes inside the plane; the gather stores every input row's vectors, which cover
        // the row, so `out` is written whole; the plan's ISA is available on this CPU.
        unsafe { run_on(self.isa, self, image) }
    }
}

/// The buffers of one image, checked by [`FirstLayerTaps::run`].
#[derive(Clone, Copy)]
struct Image {
    output_grad: *const f32,
    relu_output: Option<*const f32>,
    /// `[kh][kw][gradient position]`.
    taps: *mut f32,
    out: *mut f32,
}

impl SimdKernel<Image> for FirstLayerTaps {
    /// The register blocking per set, `G` taps × `V` position vectors: AVX-512's 32 registers
    /// hold 18 (or 15) sums, the loaded vectors and a weight. AVX2's 16 hold 9 (or 10): for
    /// 3 × 3 a kernel row at a time over 3 vectors rather than all 9 taps over one, as AVX2
    /// has no broadcast operand, so each weight is a load of its own, and this takes 6 loads
    /// per 9 multiply-adds, not 10 (0.45–0.48 against 0.46–0.54 ms on small-cnn's conv1, Zen 5;
    /// docs/performance.md).
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, image: Image) {
        unsafe {
            match (S::ISA, self.kernel) {
                (Isa::Avx512, 3) => image_generic_with::<S, 3, 9, 2>(self, image),
                (Isa::Avx512, _) => image_generic_with::<S, 5, 5, 3>(self, image),
                (Isa::Avx2, 3) => image_generic_with::<S, 3, 3, 3>(self, image),
                (Isa::Avx2, _) => image_generic_with::<S, 5, 5, 2>(self, image),
                (Isa::Portable, 3) => image_generic_with::<S, 3, 9, 1>(self, image),
                (Isa::Portable, _) => image_generic_with::<S, 5, 5, 1>(self, image),
            }
        }
    }
}

/// Both passes for a K × K kernel, the tap sums `G` taps and `V` position vectors at a time
/// (`G` divides K²).
#[inline(always)]
unsafe fn image_generic_with<S: Simd, const K: usize, const G: usize, const V: usize>(
    p: &FirstLayerTaps,
    image: Image,
) {
    debug_assert_eq!(K * K % G, 0);
    let starts = &p.position_starts;
    let whole = starts.len() / V * V;
    // SAFETY: the caller's (see `FirstLayerTaps::run`).
    unsafe {
        for tap0 in (0..K * K).step_by(G) {
            if p.position_lanes < S::LANES {
                // A plane shorter than a vector: one partial vector.
                tap_sums::<S, K, G, 1, true>(p, image, tap0, &[0]);
                continue;
            }
            for block in starts[..whole].chunks_exact(V) {
                let mut starts = [0; V];
                starts.copy_from_slice(block);
                tap_sums::<S, K, G, V, false>(p, image, tap0, &starts);
            }
            for &start in &starts[whole..] {
                tap_sums::<S, K, G, 1, false>(p, image, tap0, &[start]);
            }
        }
        gather::<S, K>(p, image);
    }
}

/// Taps `tap0..tap0 + G` at the `V` position vectors starting at `starts`: every output
/// channel's gradient there (masked by the ReLU), times that channel's weights, summed over
/// the channels in order from zero. `PARTIAL`: the plane is shorter than a vector (kept out of
/// the whole-vector code: on AVX2 the masks' registers would push the sums out of its 16).
#[inline(always)]
unsafe fn tap_sums<S: Simd, const K: usize, const G: usize, const V: usize, const PARTIAL: bool>(
    p: &FirstLayerTaps,
    image: Image,
    tap0: usize,
    starts: &[usize; V],
) {
    let plane = p.grad_h * p.grad_w;
    let lanes = if PARTIAL { p.position_lanes } else { S::LANES };
    // SAFETY: the caller's; each start leaves `lanes` values inside the plane.
    unsafe {
        let mut acc = [[S::splat(0.0); V]; G];
        for co in 0..p.channels {
            let grad = image.output_grad.add(co * plane);
            // Each channel's plane is a stream of its own (and its ReLU output another), more
            // than the hardware prefetcher follows: ask for the lines a few vectors ahead
            // (64 floats: 0.23–0.26 ms on small-cnn's conv1 against 0.30–0.31 without; 32
            // to 256 within 0.02 of it; Zen 5, docs/performance.md).
            for &start in starts {
                let ahead = start + PREFETCH_AHEAD;
                prefetch_line(grad.wrapping_add(ahead));
                if let Some(out) = image.relu_output {
                    prefetch_line(out.wrapping_add(co * plane + ahead));
                }
            }
            // A plain loop, not `array::from_fn`: a closure may be left un-inlined, outside
            // this function's target features, which made the AVX2 build 4× slower.
            let mut x = [S::splat(0.0); V];
            for (x, &start) in x.iter_mut().zip(starts) {
                *x = S::load_part(grad.add(start), 0, lanes);
                if let Some(out) = image.relu_output {
                    *x = S::relu_mask(*x, S::load_part(out.add(co * plane + start), 0, lanes));
                }
            }
            let weights = p.weights.as_ptr().add(co * K * K + tap0);
            for (k, acc) in acc.iter_mut().enumerate() {
                let w = S::splat(*weights.add(k));
                for (a, &x) in acc.iter_mut().zip(&x) {
                    *a = S::fma(w, x, *a);
                }
            }
        }
        for (k, acc) in acc.iter().enumerate() {
            let taps = image.taps.add((tap0 + k) * plane);
            for (a, &start) in acc.iter().zip(starts) {
                S::store_part(taps.add(start), *a, 0, lanes);
            }
        }
    }
}

/// Every input row: the K² tap planes' values that reach it, summed in kernel order (kh,
/// then kw) from zero, one row vector at a time.
#[inline(always)]
unsafe fn gather<S: Simd, const K: usize>(p: &FirstLayerTaps, image: Image) {
    let plane = p.grad_h * p.grad_w;
    let [pad_h, pad_w] = p.pad;
    // SAFETY: the caller's; a row u is read only when inside the plane, and in it only the
    // lanes `inside` names, which lie within row u.
    unsafe {
        let one = S::splat(1.0);
        for i in 0..p.in_h {
            for (n, &start) in p.row_starts.iter().enumerate() {
                let inside = &p.inside[n * K..][..K];
                let mut acc = S::splat(0.0);
                for kh in 0..K {
                    // Gradient row u = i + pad − kh, when it exists.
                    let Some(u) = (i + pad_h).checked_sub(kh).filter(|&u| u < p.grad_h) else {
                        continue;
                    };
                    for (kw, &(first, end)) in inside.iter().enumerate() {
                        if first == end {
                            continue;
                        }
                        // Lane l reads column start + l + pad − kw of row u.
                        let row = image.taps.add((kh * K + kw) * plane + u * p.grad_w);
                        let at = row
                            .wrapping_add(start + pad_w)
                            .wrapping_sub(kw)
                            .cast_const();
                        let x = S::load_part(at, first, end);
                        // 1 · x + acc, rounded once: the plain sum.
                        acc = S::fma(one, x, acc);
                    }
                }
                S::store_part(image.out.add(i * p.in_w + start), acc, 0, p.row_lanes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ConvGeometry, FirstLayerTaps, Isa};
    use std::mem::MaybeUninit;

    /// `p` on one image, into an output that starts as NaN everywhere, so that a value the
    /// engine leaves unwritten shows.
    fn run(p: &FirstLayerTaps, output_grad: &[f32], relu_output: Option<&[f32]>) -> Vec<f32> {
        let mut scratch = vec![f32::NAN; p.scratch_len()];
        let mut out = vec![MaybeUninit::new(f32::NAN); p.in_h * p.in_w];
        p.run(output_grad, relu_output, &mut scratch, &mut out);
        // SAFETY: every element was initialised (to NaN) above.
        out.into_iter()
            .map(|v| unsafe { v.assume_init() })
            .collect()
    }

    fn available() -> impl Iterator<Item = Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .filter(|isa| isa.is_available())
    }

    /// A K × K plan on `input` padded by `pad`, `channels` output channels, every weight 1.
    fn ones_plan(
        isa: Isa,
        k: usize,
        channels: usize,
        input: [usize; 2],
        pad: usize,
    ) -> FirstLayerTaps {
        let weight = vec![1.0; channels * k * k];
        FirstLayerTaps::new(
            isa,
            &ConvGeometry::first_layer([k, k], channels, input, pad),
            &weight,
        )
        .unwrap()
    }

    #[test]
    fn it_plans_square_three_and_five_wide_kernels_of_any_size_and_no_others() {
        // input_grad.rs runs it only where the layer shrinks the image (small-cnn's conv1);
        // the plan itself takes any padding.
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
            let plan = |k, input: [usize; 2], pad: usize| {
                let weight = vec![0.5; 2 * k * k];
                FirstLayerTaps::new(
                    isa,
                    &ConvGeometry::first_layer([k, k], 2, input, pad),
                    &weight,
                )
            };
            // small-cnn's and micro-cnn's conv1 (3 × 3, unpadded and padded by 1) and madry-cnn's
            // (5 × 5, padded by 2), on 28 × 28 images.
            assert!(plan(3, [28, 28], 0).is_some(), "{}", isa.name());
            assert!(plan(3, [28, 28], 1).is_some(), "{}", isa.name());
            assert!(plan(5, [28, 28], 2).is_some(), "{}", isa.name());
            // Rows and planes shorter than a vector too (the same shapes on every ISA).
            assert!(plan(3, [28, 7], 1).is_some(), "{}", isa.name());
            assert!(plan(3, [3, 3], 0).is_some(), "{}", isa.name());
            // Kernels without a compiled arm.
            assert!(plan(7, [28, 28], 3).is_none(), "{}", isa.name());
        }
        // Not square.
        let weight = [0.5; 15];
        let plan = FirstLayerTaps::new(
            Isa::Portable,
            &ConvGeometry::first_layer([3, 5], 1, [28, 28], 0),
            &weight,
        );
        assert!(plan.is_none());
    }

    #[test]
    fn every_value_takes_each_gradient_position_within_reach_once_per_channel() {
        // Every weight and gradient 1: the value at (i, j) counts the gradient positions
        // (u, v) with u = i + pad − kh, v = j + pad − kw inside the plane, times the channels.
        // Shapes whose rows and planes are not multiples of the vectors; 3 × 3 and 5 × 5.
        let shapes: [(usize, [usize; 2], usize); 7] = [
            (3, [11, 29], 0),
            (3, [9, 17], 1),
            (5, [13, 19], 2),
            (5, [10, 21], 1),
            (3, [12, 12], 0),
            (3, [4, 5], 0),
            (5, [7, 6], 1),
        ];
        for (k, input, pad) in shapes {
            for isa in available() {
                let p = ones_plan(isa, k, 4, input, pad);
                let grad = [input[0] + 2 * pad + 1 - k, input[1] + 2 * pad + 1 - k];
                let out = run(&p, &vec![1.0; 4 * grad[0] * grad[1]], None);
                // Kernel offsets d = pad − kh ∈ [pad + 1 − k, pad] with 0 ≤ i + d < grad.
                let reach = |i: usize, n: usize| {
                    let inside = |kh| (i + pad).checked_sub(kh).is_some_and(|u| u < n);
                    (0..k).filter(|&kh| inside(kh)).count() as f32
                };
                for i in 0..input[0] {
                    for j in 0..input[1] {
                        assert_eq!(
                            out[i * input[1] + j],
                            4.0 * reach(i, grad[0]) * reach(j, grad[1]),
                            "{} K = {k}, input {input:?}, pad {pad}: ({i}, {j})",
                            isa.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_relu_mask_zeroes_the_gradient_where_the_output_is_not_positive() {
        // One channel, 3 × 3 unpadded on 18 × 18 (a 16 × 16 gradient): the ReLU output is
        // positive at one gradient position only, so the input gradient is that position's
        // kernel footprint, the weights flipped back into place.
        let weight: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        for isa in available() {
            let p = FirstLayerTaps::new(
                isa,
                &ConvGeometry::first_layer([3, 3], 1, [18, 18], 0),
                &weight,
            );
            let p = p.unwrap();
            let mut relu = vec![0.0f32; 256];
            relu[5 * 16 + 7] = 0.5;
            relu[3] = -1.0;
            let out = run(&p, &vec![2.0; 256], Some(&relu));
            for i in 0..18usize {
                for j in 0..18usize {
                    // Output (5, 7) reads input (5 + kh, 7 + kw) through weight[kh][kw].
                    let expected = match (i.checked_sub(5), j.checked_sub(7)) {
                        (Some(kh), Some(kw)) if kh < 3 && kw < 3 => 2.0 * weight[kh * 3 + kw],
                        _ => 0.0,
                    };
                    assert_eq!(out[i * 18 + j], expected, "{} ({i}, {j})", isa.name());
                }
            }
        }
    }
}
