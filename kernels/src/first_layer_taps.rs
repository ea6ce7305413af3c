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
//!    AVX-512; a kernel row on AVX2 and for 5 × 5, a block of vectors running its groups back
//!    to back, so that the later groups find the vectors in L1) and no lane is computed twice
//!    but the last vector's (moved back to end at the plane's end, recomputing the same
//!    values). The ReLU's backward step is applied as a block's first group loads the
//!    gradient, which keeps the masked vectors in scratch for the later groups.
//! 2. *Gather*: each input row sums, in kernel order (kh, then kw), the K² tap planes shifted
//!    to it, the lanes whose gradient column falls outside the plane masked out (a bitwise and
//!    with lane masks held in registers); where the layer keeps the image's size, on flat
//!    vectors with no masks at all ([`Flat`]). The two give the same bits.
//!
//! The older engine ([`super::first_layer_grad`]) adds every output channel's K² terms into
//! the image one channel at a time, after copying that channel into a padded plane: about a
//! third of its multiply-adds read the zero border, and the copy is a third of its time
//! (docs/performance.md). Here no multiply-add reads a border: the tap sums take the plane
//! alone, and the gather adds a +0 (which changes no sum) for each lane whose gradient column
//! or row lies outside it, a few per row. The sums are taken in another order than the older
//! engines' (channels first, then taps), so the bits differ from theirs; on every instruction
//! set each value is the same chain of single-rounded multiply-adds, so they do not differ
//! between those.

use super::geometry::ConvGeometry;
use super::row_tile::vector_starts;
use super::simd::{Isa, Simd, SimdKernel, prefetch_line, run_on};
use std::mem::MaybeUninit;

/// How far ahead of the vectors being read the gradient is prefetched, in floats, by a block's
/// first tap group (the later ones read what it loaded). Each channel's plane is a stream of
/// its own (and its ReLU output another), more than the hardware prefetcher follows (64
/// floats: 0.23–0.26 ms on small-cnn's conv1 against 0.30–0.31 without; 32 to 256 within 0.02
/// of it; Zen 5, docs/performance.md, when every group prefetched).
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
    /// `[row vector][kw][lane]`, a vector each: all bits set in the lanes of that row vector
    /// whose gradient column, for kernel column kw, lies inside the plane; +0 in the others.
    lane_masks: Vec<f32>,
    /// Each tap plane is a block of `before` floats, the plane, and `after` floats in scratch:
    /// what the gathers read around a plane (zeros for the flat one, anything for the row
    /// one, which masks it out).
    before: usize,
    after: usize,
    /// Floats from one tap plane's start to the next's in scratch.
    tap_stride: usize,
    /// Where a layer keeps the image's size, the gather runs on flat vectors (see [`Flat`]).
    flat: Option<Flat>,
    isa: Isa,
}

/// The gather of a layer whose gradient has the image's size (the padding on the two sides of
/// each axis adding up to K − 1, e.g. 2 and 2 for madry-cnn's 5 × 5 conv1), on the plane taken
/// as one flat row, as the tap sums are: each vector of input positions sums the K² tap planes
/// at fixed offsets, with no masks and no per-row decisions. Two things make the plain loads
/// right:
///
/// - each tap plane has zeros around it in scratch (the plan's `before` and `after` floats),
///   which a position whose gradient row lies above or below the plane reads;
/// - in tap plane (kh, kw) the columns no input position reads (`c < pad − kw` or
///   `c ≥ w + pad − kw`) are set to zero after the tap sums: a position whose gradient column
///   falls off one end of its row reads, a row up or down, exactly those columns.
///
/// The terms are the row gather's, in its order, the ones outside the plane read as +0 where
/// the row gather's masks give +0: the same bits (a sum that starts at +0 is never −0).
#[derive(Debug, Clone)]
struct Flat {
    /// `[kh][kw]`: where input position 0 reads tap plane (kh, kw), from scratch's start.
    offsets: Vec<usize>,
    /// `[kw]`: the columns of each of that kernel column's tap planes set to zero, as two
    /// ranges (the first from column 0, the second up to the row's end).
    unread: Vec<[(usize, usize); 2]>,
}

impl FirstLayerTaps {
    /// Plans the input gradient of a one-channel, stride-1 convolution `g` with `weight`
    /// (OIHW, `[out][1][kh][kw]`), or `None` unless it is one and its kernel is 3 × 3 or
    /// 5 × 5. Which shapes it takes does not depend on the instruction set (rows and planes
    /// shorter than a vector take a partial one), so neither do the bits.
    pub fn new(isa: Isa, g: &ConvGeometry, weight: &[f32]) -> Option<FirstLayerTaps> {
        Self::plan(isa, g, weight, true)
    }

    /// [`FirstLayerTaps::new`], on the row gather even where the flat one applies (`flat`
    /// false: for tests that the two give the same bits).
    fn plan(isa: Isa, g: &ConvGeometry, weight: &[f32], flat: bool) -> Option<FirstLayerTaps> {
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
        let lane_masks = row_starts
            .iter()
            .flat_map(|&start| {
                (0..k).flat_map(move |kw| {
                    let shift = start as isize + pad_begin[1] as isize - kw as isize;
                    let first = (-shift).clamp(0, row_lanes as isize) as usize;
                    let end = (grad_w as isize - shift).clamp(0, row_lanes as isize) as usize;
                    (0..lanes).map(move |lane| {
                        if (first..end).contains(&lane) {
                            u32::MAX
                        } else {
                            0
                        }
                    })
                })
            })
            .map(f32::from_bits)
            .collect();
        let plane = grad_h * grad_w;
        let flat = flat && grad_h == in_h && grad_w == in_w && grad_w >= k && plane >= lanes;
        let [pad_h, pad_w] = pad_begin;
        let (before, after) = if flat {
            // Input position (i, j) reads tap plane (kh, kw) at (i + pad − kh, j + pad − kw):
            // a flat offset of (pad_h − kh) · w + (pad_w − kw), from −((K − 1 − pad_h) · w +
            // K − 1 − pad_w) to pad_h · w + pad_w.
            (
                (k - 1 - pad_h) * grad_w + (k - 1 - pad_w),
                pad_h * grad_w + pad_w,
            )
        } else {
            // Row vector n reads a whole vector from column start_n + pad_w − kw of a row
            // inside the plane: from K − 1 − pad_w floats before the first row's start to
            // last start + pad_w + lanes − grad_w past the last row's end.
            (
                (k - 1).saturating_sub(pad_w),
                (in_w - row_lanes + pad_w + lanes).saturating_sub(grad_w),
            )
        };
        let stride = plane + before + after;
        let flat = flat.then(|| {
            let offsets = (0..k)
                .flat_map(|kh| (0..k).map(move |kw| (kh, kw)))
                // Plane (kh, kw) starts `before` into its block of `stride` floats.
                .map(|(kh, kw)| (kh * k + kw) * stride + (k - 1 - kh) * grad_w + (k - 1 - kw))
                .collect();
            let unread = (0..k)
                .map(|kw| {
                    let first = pad_w.saturating_sub(kw);
                    let end = (grad_w + pad_w).saturating_sub(kw).min(grad_w);
                    [(0, first), (end, grad_w)]
                })
                .collect();
            Flat { offsets, unread }
        });
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
            lane_masks,
            before,
            after,
            tap_stride: stride,
            flat,
            isa,
        })
    }

    /// Where tap plane `tap` starts in scratch.
    fn plane_start(&self, tap: usize) -> usize {
        tap * self.tap_stride + self.before
    }

    /// Floats of scratch one image needs (the K² tap planes and what the gathers read around
    /// them, then a block's masked gradient vectors: [`block_tap_sums`]).
    pub fn scratch_len(&self) -> usize {
        self.kept_start() + self.channels * MAX_BLOCK_VECTORS * self.isa.lanes()
    }

    /// Where, after the tap planes, scratch keeps a block's masked gradient vectors (see
    /// [`block_tap_sums`]).
    fn kept_start(&self) -> usize {
        self.kernel * self.kernel * self.tap_stride
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
        // SAFETY: the lengths were checked above; the tap sums' vector starts keep their
        // vectors (whole, or of `position_lanes` lanes where the plane is shorter) inside the
        // plane (see `vector_starts`); the gathers' whole-vector loads stay within each tap
        // plane's block of scratch (`before` and `after` are their reach; see `plan`), and the
        // masked vectors a block keeps lie after the last tap plane's block (`scratch_len`);
        // the row gather stores every input row's vectors (`row_lanes` lanes each), which
        // cover the row, and the flat one every vector of the plane, so `out` is written
        // whole; the plan's ISA is available on this CPU.
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
        if p.position_lanes < S::LANES {
            // A plane shorter than a vector: one partial vector.
            block_tap_sums::<S, K, G, 1, true>(p, image, &[0]);
        } else {
            for block in starts[..whole].chunks_exact(V) {
                let mut starts = [0; V];
                starts.copy_from_slice(block);
                block_tap_sums::<S, K, G, V, false>(p, image, &starts);
            }
            for &start in &starts[whole..] {
                block_tap_sums::<S, K, G, 1, false>(p, image, &[start]);
            }
        }
        match &p.flat {
            Some(flat) => {
                zero_unread::<S>(p, flat, image.taps);
                flat_gather::<S, K>(p, flat, image);
            }
            None => gather::<S, K>(p, image),
        }
    }
}

/// Sets to zero what the flat gather reads that is not a tap sum: the blocks' zeros around
/// each plane, and the columns of each plane no input position reads (see [`Flat`]).
///
/// # Safety
/// `taps` must hold `p.scratch_len()` floats.
#[inline(always)]
unsafe fn zero_unread<S: Simd>(p: &FirstLayerTaps, flat: &Flat, taps: *mut f32) {
    let (k, w, plane) = (p.kernel, p.grad_w, p.grad_h * p.grad_w);
    // SAFETY: every range written lies within the K² blocks of `tap_stride` floats.
    unsafe {
        for tap in 0..k * k {
            let block = taps.add(tap * p.tap_stride);
            // Vector stores: `write_bytes` (or a loop the compiler turns into one) calls
            // `memset`, whose set-up costs more than these few dozen floats (9% of a profile
            // on micro-cnn's conv1).
            zero_run::<S>(block, p.before);
            zero_run::<S>(block.add(p.before + plane), p.after);
            let plane = block.add(p.before);
            // A column at a time, down the rows: a run along a row (a column or two) becomes
            // a call to `memset` per row, 12% of a profile on micro-cnn's conv1 (Zen 4).
            for &(first, end) in &flat.unread[tap % k] {
                for c in first..end {
                    for row in 0..p.grad_h {
                        *plane.add(row * w + c) = 0.0;
                    }
                }
            }
        }
    }
}

/// Writes `len` zeros from `p`, a vector at a time: whole vectors, the last one moved back to
/// end at `p + len` (a masked store where `len` is shorter than a vector).
///
/// # Safety
/// `p` must be writable for `len` floats.
#[inline(always)]
unsafe fn zero_run<S: Simd>(p: *mut f32, len: usize) {
    // SAFETY: the caller's; every store ends by `p + len`.
    unsafe {
        let zero = S::splat(0.0);
        if len < S::LANES {
            if len > 0 {
                S::store_part(p, zero, 0, len);
            }
            return;
        }
        let mut at = 0;
        while at + S::LANES < len {
            S::store(p.add(at), zero);
            // Hidden from the optimiser, which would otherwise make the loop a call to
            // `memset` (with a masked store after it, about 100 ns an image on micro-cnn's
            // conv1, 6% of it: docs/performance.md).
            at = std::hint::black_box(at + S::LANES);
        }
        S::store(p.add(len - S::LANES), zero);
    }
}

/// The flat gather (see [`Flat`]): each vector of input positions, the plane taken as one
/// row, sums the K² tap planes at fixed offsets in kernel order (kh, then kw) from zero; four
/// vectors at a time, as independent chains of additions.
#[inline(always)]
unsafe fn flat_gather<S: Simd, const K: usize>(p: &FirstLayerTaps, flat: &Flat, image: Image) {
    const V: usize = 4;
    let starts = &p.position_starts;
    let whole = starts.len() / V * V;
    let offsets = &flat.offsets[..K * K];
    // SAFETY: the caller's; for every position s of the plane, s + offset lies within tap
    // plane (kh, kw)'s block (the reach of its zeros, `before` and `after`, is the gather's
    // reach), and each start leaves a whole vector inside the plane (`plane >= lanes`).
    unsafe {
        let one = S::splat(1.0);
        let taps = image.taps.cast_const();
        for block in starts[..whole].chunks_exact(V) {
            let mut acc = [S::splat(0.0); V];
            for &offset in offsets {
                for (acc, &start) in acc.iter_mut().zip(block) {
                    *acc = S::fma(one, S::load(taps.add(offset + start)), *acc);
                }
            }
            for (acc, &start) in acc.iter().zip(block) {
                S::store(image.out.add(start), *acc);
            }
        }
        for &start in &starts[whole..] {
            let mut acc = S::splat(0.0);
            for &offset in offsets {
                acc = S::fma(one, S::load(taps.add(offset + start)), acc);
            }
            S::store(image.out.add(start), acc);
        }
    }
}

/// Every tap group's sums at the `V` position vectors starting at `starts`, one group after
/// another, so that the block's gradient is read from memory once (the later groups find it
/// in L1) and masked by the ReLU once: where there are later groups, the first keeps the
/// masked vectors in scratch for them (AVX2's 3 × 3 groups masked each vector three times,
/// and reloaded it from L2 where an image's gradient outgrows L1: docs/performance.md). Each
/// group's sums are the same chains as ever, so the same bits.
#[inline(always)]
unsafe fn block_tap_sums<
    S: Simd,
    const K: usize,
    const G: usize,
    const V: usize,
    const PARTIAL: bool,
>(
    p: &FirstLayerTaps,
    image: Image,
    starts: &[usize; V],
) {
    const { assert!(V <= MAX_BLOCK_VECTORS) };
    let plane = p.grad_h * p.grad_w;
    // SAFETY: the caller's; `kept` holds `channels · MAX_BLOCK_VECTORS` vectors (`scratch_len`).
    unsafe {
        let grad = image.output_grad;
        match image.relu_output {
            None => {
                let first = Gradient {
                    grad,
                    plane,
                    prefetch: true,
                };
                tap_sums::<S, K, G, V, PARTIAL>(p, image, 0, starts, first);
                let later = Gradient {
                    grad,
                    plane,
                    prefetch: false,
                };
                for tap0 in (G..K * K).step_by(G) {
                    tap_sums::<S, K, G, V, PARTIAL>(p, image, tap0, starts, later);
                }
            }
            // One group takes every tap (AVX-512's 3 × 3): nothing to keep.
            Some(relu) if G == K * K => {
                let masking = Masking::<false> {
                    grad,
                    relu,
                    plane,
                    kept: std::ptr::null_mut(),
                };
                tap_sums::<S, K, G, V, PARTIAL>(p, image, 0, starts, masking);
            }
            Some(relu) => {
                let kept = image.taps.add(p.kept_start());
                let masking = Masking::<true> {
                    grad,
                    relu,
                    plane,
                    kept,
                };
                tap_sums::<S, K, G, V, PARTIAL>(p, image, 0, starts, masking);
                let kept = Kept {
                    kept: kept.cast_const(),
                };
                for tap0 in (G..K * K).step_by(G) {
                    tap_sums::<S, K, G, V, PARTIAL>(p, image, tap0, starts, kept);
                }
            }
        }
    }
}

/// The most position vectors a block of tap sums takes (the largest `V` in
/// [`FirstLayerTaps`]'s arms): what scratch keeps per channel for a block's later groups.
const MAX_BLOCK_VECTORS: usize = 3;

/// Where a group of tap sums reads a block's gradient vectors.
trait BlockGradient: Copy {
    /// Vector `slot` of the block (at position `start`, `lanes` lanes) of channel `co`, the
    /// block's `V` vectors taken as `slots`.
    unsafe fn vector<S: Simd>(
        self,
        co: usize,
        start: usize,
        lanes: usize,
        slot: usize,
        slots: usize,
    ) -> S::V;
}

/// The output gradient itself, prefetched ahead in the block's first group.
#[derive(Clone, Copy)]
struct Gradient {
    grad: *const f32,
    plane: usize,
    prefetch: bool,
}

impl BlockGradient for Gradient {
    #[inline(always)]
    unsafe fn vector<S: Simd>(
        self,
        co: usize,
        start: usize,
        lanes: usize,
        _: usize,
        _: usize,
    ) -> S::V {
        // SAFETY: the caller's: `start` leaves `lanes` values inside channel `co`'s plane.
        unsafe {
            let grad = self.grad.add(co * self.plane);
            if self.prefetch {
                prefetch_line(grad.wrapping_add(start + PREFETCH_AHEAD));
            }
            S::load_part(grad.add(start), 0, lanes)
        }
    }
}

/// The output gradient masked by the ReLU as it is loaded; with `KEEP`, each masked vector
/// kept in scratch for the block's later groups ([`Kept`]).
#[derive(Clone, Copy)]
struct Masking<const KEEP: bool> {
    grad: *const f32,
    relu: *const f32,
    plane: usize,
    kept: *mut f32,
}

impl<const KEEP: bool> BlockGradient for Masking<KEEP> {
    #[inline(always)]
    unsafe fn vector<S: Simd>(
        self,
        co: usize,
        start: usize,
        lanes: usize,
        slot: usize,
        slots: usize,
    ) -> S::V {
        // SAFETY: the caller's, as for `Gradient`; slot `co · slots + slot` lies in `kept`.
        unsafe {
            let at = co * self.plane + start;
            prefetch_line(self.grad.wrapping_add(at + PREFETCH_AHEAD));
            prefetch_line(self.relu.wrapping_add(at + PREFETCH_AHEAD));
            let x = S::relu_mask(
                S::load_part(self.grad.add(at), 0, lanes),
                S::load_part(self.relu.add(at), 0, lanes),
            );
            if KEEP {
                S::store(self.kept.add((co * slots + slot) * S::LANES), x);
            }
            x
        }
    }
}

/// The vectors [`Masking`] kept.
#[derive(Clone, Copy)]
struct Kept {
    kept: *const f32,
}

impl BlockGradient for Kept {
    #[inline(always)]
    unsafe fn vector<S: Simd>(
        self,
        co: usize,
        _: usize,
        _: usize,
        slot: usize,
        slots: usize,
    ) -> S::V {
        // SAFETY: the caller's; `Masking` stored this slot in the block's first group.
        unsafe { S::load(self.kept.add((co * slots + slot) * S::LANES)) }
    }
}

/// Taps `tap0..tap0 + G` at the `V` position vectors starting at `starts`: every output
/// channel's gradient there (masked by the ReLU), from `source`, times that channel's weights,
/// summed over the channels in order from zero. `PARTIAL`: the plane is shorter than a vector
/// (kept out of the whole-vector code: on AVX2 the masks' registers would push the sums out of
/// its 16).
#[inline(always)]
unsafe fn tap_sums<S: Simd, const K: usize, const G: usize, const V: usize, const PARTIAL: bool>(
    p: &FirstLayerTaps,
    image: Image,
    tap0: usize,
    starts: &[usize; V],
    source: impl BlockGradient,
) {
    let lanes = if PARTIAL { p.position_lanes } else { S::LANES };
    // SAFETY: the caller's; each start leaves `lanes` values inside the plane.
    unsafe {
        let mut acc = [[S::splat(0.0); V]; G];
        for co in 0..p.channels {
            // A plain loop, not `array::from_fn`: a closure may be left un-inlined, outside
            // this function's target features, which made the AVX2 build 4× slower.
            let mut x = [S::splat(0.0); V];
            for (slot, (x, &start)) in x.iter_mut().zip(starts).enumerate() {
                *x = source.vector::<S>(co, start, lanes, slot, V);
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
            let taps = image.taps.add(p.plane_start(tap0 + k));
            for (a, &start) in acc.iter().zip(starts) {
                S::store_part(taps.add(start), *a, 0, lanes);
            }
        }
    }
}

/// Every input row: the K² tap planes' values that reach it, summed in kernel order (kh,
/// then kw) from zero, one row vector at a time. A vector reads whole vectors from the rows
/// inside the plane and keeps the lanes whose column is inside too (a bitwise and with the
/// plan's lane masks, held in registers for a row vector's whole column of rows): no branch
/// or mask is worked out per load (these took about half of the engine's samples on
/// `micro-cnn`'s conv1, about a quarter on `small-cnn`'s, when each load built its mask;
/// docs/performance.md).
#[inline(always)]
unsafe fn gather<S: Simd, const K: usize>(p: &FirstLayerTaps, image: Image) {
    let [pad_h, pad_w] = p.pad;
    // SAFETY: the caller's; a row u is read only when inside the plane, a whole vector from
    // at most K − 1 − pad_w floats before its start (`before`) to at most `after` floats
    // past the plane's end, within the plane's block; lanes outside row u are masked out.
    unsafe {
        let one = S::splat(1.0);
        for (n, &start) in p.row_starts.iter().enumerate() {
            let mut masks = [S::splat(0.0); K];
            for (kw, mask) in masks.iter_mut().enumerate() {
                *mask = S::load(p.lane_masks.as_ptr().add((n * K + kw) * S::LANES));
            }
            for i in 0..p.in_h {
                // Kernel rows kh whose gradient row u = i + pad − kh is inside the plane.
                let rows = (i + pad_h + 1).saturating_sub(p.grad_h)..(i + pad_h + 1).min(K);
                let mut acc = S::splat(0.0);
                for kh in rows {
                    let u = i + pad_h - kh;
                    for (kw, &mask) in masks.iter().enumerate() {
                        // Lane l reads column start + l + pad − kw of row u.
                        let at = image
                            .taps
                            .add(p.plane_start(kh * K + kw) + u * p.grad_w + start + pad_w)
                            .sub(kw)
                            .cast_const();
                        // 1 · x + acc, rounded once: the plain sum.
                        acc = S::fma(one, S::and(S::load(at), mask), acc);
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
        // input_grad.rs runs it where the layer shrinks the image (small-cnn's conv1) or keeps
        // its size (micro-cnn's and madry-cnn's); the plan itself takes any padding.
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
    fn the_flat_gather_gives_the_row_gathers_bits() {
        // Layers that keep the image's size take the flat gather: the same terms in the same
        // order as the row gather, so the same bits, infinities and NaN included. Rows
        // shorter than a vector (a vector then spans several rows), a row as wide as the
        // kernel, planes of a few vectors, a plane of one AVX-512 vector, one shorter than
        // that (the row gather there, the flat one on AVX2 and the portable code), and
        // padding that differs between the two sides of an axis.
        let symmetric = |k: usize| [((k - 1) / 2, (k - 1) / 2); 2];
        let shapes = [
            (3, [28, 28], symmetric(3)),
            (3, [9, 7], symmetric(3)),
            (3, [5, 4], symmetric(3)),
            (3, [4, 4], symmetric(3)),
            (3, [3, 4], symmetric(3)),
            (3, [7, 3], symmetric(3)),
            (3, [10, 11], [(0, 2), (2, 0)]),
            (5, [28, 28], symmetric(5)),
            (5, [13, 19], symmetric(5)),
            (5, [6, 5], symmetric(5)),
            (5, [12, 9], [(1, 3), (4, 0)]),
        ];
        let values = |len: usize, a: usize| -> Vec<f32> {
            (0..len)
                .map(|i| ((i * a) % 97) as f32 / 97.0 - 0.5)
                .collect()
        };
        for (k, input, padding) in shapes {
            let channels = 5;
            let [h, w] = input;
            let g = ConvGeometry::new(
                [1, 1, h, w],
                [channels, 1, k, k],
                [1, 1],
                padding,
                [1, 1],
                1,
            )
            .unwrap();
            assert_eq!((g.out_h, g.out_w), (h, w), "the image's size");
            let weight = values(channels * k * k, 31);
            let plane = input[0] * input[1];
            let mut grad = values(channels * plane, 13);
            let relu = values(channels * plane, 7);
            for isa in available() {
                let flat = FirstLayerTaps::new(isa, &g, &weight).unwrap();
                assert_eq!(
                    flat.flat.is_some(),
                    plane >= isa.lanes(),
                    "{} K = {k}, {input:?}",
                    isa.name()
                );
                let rows = FirstLayerTaps::plan(isa, &g, &weight, false).unwrap();
                assert!(rows.flat.is_none());
                for special in [None, Some(f32::INFINITY), Some(f32::NAN)] {
                    if let Some(v) = special {
                        grad[channels * plane / 2] = v;
                    }
                    for relu in [None, Some(&relu[..])] {
                        let bits = |p: &FirstLayerTaps| -> Vec<u32> {
                            run(p, &grad, relu).iter().map(|v| v.to_bits()).collect()
                        };
                        assert_eq!(
                            bits(&flat),
                            bits(&rows),
                            "{} K = {k}, {input:?}, {padding:?}, {special:?}",
                            isa.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_fused_relu_gives_the_bits_of_the_gradient_masked_first() {
        // The ReLU is applied as a block's first tap group loads the gradient, and the masked
        // vectors are kept for the block's later groups (AVX2's 3 × 3 and every 5 × 5 arm): the
        // bits of the engine run on a gradient masked beforehand. Planes shorter than a
        // vector (a partial one), remainders of one vector, padded and unpadded layers.
        let shapes: [(usize, [usize; 2], usize); 7] = [
            (3, [4, 5], 0),
            (5, [6, 6], 0),
            (5, [7, 6], 1),
            (3, [18, 18], 0),
            (3, [28, 28], 1),
            (3, [11, 29], 0),
            (5, [13, 19], 2),
        ];
        // ReLU outputs: positive, negative, ±0, NaN and tiny ones.
        let outputs = [0.5, -0.25, 0.0, -0.0, f32::NAN, 1e-30, -1e-30, 2.0, -3.0];
        for (k, input, pad) in shapes {
            let channels = 6;
            let g = ConvGeometry::first_layer([k, k], channels, input, pad);
            let len = channels * g.out_h * g.out_w;
            let weight: Vec<f32> = (0..channels * k * k)
                .map(|i| ((i * 31) % 23) as f32 / 23.0 - 0.5)
                .collect();
            let grad: Vec<f32> = (0..len)
                .map(|i| ((i * 13) % 101) as f32 / 101.0 - 0.5)
                .collect();
            let relu: Vec<f32> = (0..len).map(|i| outputs[(i * 7) % outputs.len()]).collect();
            let masked: Vec<f32> = grad
                .iter()
                .zip(&relu)
                .map(|(&g, &o)| if o > 0.0 || o.is_nan() { g } else { 0.0 })
                .collect();
            for isa in available() {
                let p = FirstLayerTaps::new(isa, &g, &weight).unwrap();
                let bits = |v: Vec<f32>| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(run(&p, &grad, Some(&relu))),
                    bits(run(&p, &masked, None)),
                    "{} K = {k}, {input:?}, pad {pad}",
                    isa.name()
                );
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
