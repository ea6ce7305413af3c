//! The weight gradient: for every kernel term t = (input channel, kh, kw) and output channel
//! co, `Σ_images Σ_positions source[t + position] · output_grad[co][position]`.
//!
//! Vectors run over output channels: each image's output gradient is transposed once into
//! `[position][channel]` rows, and the micro-kernel broadcasts the source value of each of its
//! `M` terms at a position and multiplies it into `N` vectors of channels. Every
//! (term, channel) is one lane of one accumulator summed over positions in order, so the
//! vector width does not change the result.
//!
//! The batch is cut into chunks whose data fits in a core's L2 cache; the chunk size comes
//! from the layer's shape alone (never the thread count or the vector width), each chunk's
//! partial sums are computed independently, in parallel, and added up in chunk order at the
//! end. The result is therefore the same for any number of threads and on AVX2 and AVX-512.

use super::depthwise_grad;
use super::forward::source_planes;
use super::geometry::ConvGeometry;
use super::planes::{FILL_OVERRUN, PlaneSpec};
use super::scratch::with_scratch;
use super::simd::{Isa, Portable, Simd, SimdKernel, relu_backward, run_on};
use rayon::prelude::*;

/// Floats of a chunk's data (source planes and transposed gradients) aimed at: 640 KiB, well
/// inside a 1–2 MiB L2.
const CHUNK_BUDGET: usize = 160 * 1024;
/// Output positions a chunk sums over at least, whatever its data: each chunk zeroes, fills
/// and hands back a whole partial weight gradient, 9.4 MB for `resnet18`'s 512 → 512, which
/// the budget alone gave 6 images of 16 positions (22 partials a batch: more memory traffic
/// than the sums' own loads). Measured (`kernels/examples/layer.rs wgrad 10 … 128`, AVX-512,
/// docs/performance.md, "Weight gradients of few positions"), with [`MIN_CHUNKS`] at 8: 512 →
/// 512 at 4 × 4 123, 127 → 67, 69 ms; 256 → 512 /2 at 8 × 8 63, 60 → 34, 37; 256 → 256 at
/// 8 × 8 (8 images of 64 positions) 64, 65 → 55, 55; the 1 × 1 256 → 512 /2 4.6, 4.5 → 4.4,
/// 4.2 (with at least 4 chunks, 32 images: level with these); with AVX2 178, 149 → 107, 101;
/// 62, 66 → 44, 55; 69, 71 → 62, 63; level. No MNIST model's layer has so few positions in its
/// chunks.
const MIN_CHUNK_POSITIONS: usize = 512;
/// Chunks a batch keeps at least where [`MIN_CHUNK_POSITIONS`] would make them fewer: the
/// chunks are what the threads share (8: a laptop's threads; 16 images of 16 positions a chunk
/// for `resnet18`'s last stage at batch 128).
const MIN_CHUNKS: usize = 8;

/// Images a chunk of `g`'s batch holds, `per_image` floats of data each: as many as the
/// budget allows, or as [`MIN_CHUNK_POSITIONS`] asks where the images have few positions, but
/// never fewer than [`MIN_CHUNKS`] chunks (the shape alone decides, never the thread count).
fn images_per_chunk(g: &ConvGeometry, per_image: usize) -> usize {
    let by_budget = CHUNK_BUDGET / per_image.max(1);
    let by_positions = MIN_CHUNK_POSITIONS / (g.out_h * g.out_w).max(1);
    let by_batch = g.batch.div_ceil(MIN_CHUNKS);
    by_budget.max(by_positions.min(by_batch)).clamp(1, g.batch)
}

struct WeightGradPlan {
    geometry: ConvGeometry,
    planes: PlaneSpec,
    /// Offsets of the terms of group 0 in the source planes.
    taps: Vec<usize>,
    group_shift: usize,
    /// Output channels per group, padded to whole vectors.
    channel_stride: usize,
    lanes: usize,
    /// Accumulators a register tile may hold.
    accumulators: usize,
    images_per_chunk: usize,
    isa: Isa,
}

impl WeightGradPlan {
    fn new(isa: Isa, g: &ConvGeometry) -> Self {
        // Vectors run over a group's output channels: with 8 or fewer, half or more of an
        // AVX-512 vector's lanes would be padding. AVX2's vectors hold them with less waste,
        // and every (term, channel) is summed in its own lane, so the bits are the same.
        let isa = if isa == Isa::Avx512 && g.out_per_group() <= 8 && Isa::Avx2.is_available() {
            Isa::Avx2
        } else {
            isa
        };
        let planes = source_planes(isa, g);
        let layout = planes.layout;
        let [s_h, s_w] = g.stride;
        let mut taps = Vec::with_capacity(g.in_per_group() * g.taps());
        for c in 0..g.in_per_group() {
            for kh in 0..g.kernel_h {
                for kw in 0..g.kernel_w {
                    let plane = c * planes.phases.len() + planes.phase_index(kh % s_h, kw % s_w);
                    taps.push(
                        plane * layout.plane_len() + (kh / s_h) * layout.row_stride + kw / s_w,
                    );
                }
            }
        }
        let (lanes, accumulators) = match isa {
            Isa::Avx512 => (16, 24),
            _ => (Portable::LANES, 12),
        };
        // The chunk size may depend on the shape only: count channels padded to 16 lanes.
        let per_image = layout.total_len()
            + g.groups * g.out_h * g.out_w * g.out_per_group().next_multiple_of(16);
        WeightGradPlan {
            geometry: *g,
            group_shift: g.in_per_group() * planes.phases.len() * layout.plane_len(),
            planes,
            taps,
            channel_stride: g.out_per_group().next_multiple_of(lanes),
            lanes,
            accumulators,
            images_per_chunk: images_per_chunk(g, per_image),
            isa,
        }
    }

    /// The batch's chunks of images, in order (the depthwise engine sums over the same ones).
    fn chunks(&self) -> Vec<std::ops::Range<usize>> {
        let (batch, per_chunk) = (self.geometry.batch, self.images_per_chunk);
        (0..batch)
            .step_by(per_chunk)
            .map(|start| start..(start + per_chunk).min(batch))
            .collect()
    }

    fn transposed_len(&self) -> usize {
        let g = &self.geometry;
        g.groups * g.out_h * g.out_w * self.channel_stride
    }

    /// Partial sums of one chunk: `[group][term][channel_stride]`.
    fn chunk<'a>(
        &self,
        images: std::ops::Range<usize>,
        x: &[f32],
        output_grad: &'a [f32],
        relu_output: Option<&'a [f32]>,
    ) -> Vec<f32> {
        let g = &self.geometry;
        let terms = self.taps.len();
        let mut partial = vec![0.0; g.groups * terms * self.channel_stride];
        let in_place = g.reads_input_in_place();
        let source_len = if in_place {
            0
        } else {
            self.planes.layout.total_len() + FILL_OVERRUN
        };
        let per_image = source_len + self.transposed_len();
        with_scratch(per_image * images.len(), |scratch| {
            let mut inputs = Vec::with_capacity(images.len());
            for (b, data) in images.clone().zip(scratch.chunks_exact_mut(per_image)) {
                let (source, transposed) = data.split_at_mut(source_len);
                let image = &x[b * g.in_image()..][..g.in_image()];
                if !in_place {
                    self.planes.fill(image, source);
                }
                let of_image = |t: &'a [f32]| &t[b * g.out_image()..][..g.out_image()];
                self.transpose(of_image(output_grad), relu_output.map(of_image), transposed);
                inputs.push((b, in_place));
            }
            let scratch: &[f32] = scratch;
            let sources: Vec<(*const f32, *const f32)> = inputs
                .iter()
                .enumerate()
                .map(|(i, &(b, in_place))| {
                    let data = &scratch[i * per_image..][..per_image];
                    let source = if in_place {
                        x[b * g.in_image()..].as_ptr()
                    } else {
                        data.as_ptr()
                    };
                    (source, data[source_len..].as_ptr())
                })
                .collect();
            for group in 0..g.groups {
                self.group_tiles(group, &sources, &mut partial);
            }
        });
        partial
    }

    /// Output gradient `[channel][position]` → `[group][position][channel_stride]`, the
    /// padding channels zero.
    fn transpose(&self, output_grad: &[f32], relu_output: Option<&[f32]>, out: &mut [f32]) {
        let g = &self.geometry;
        let positions = g.out_h * g.out_w;
        let per_group = g.out_per_group();
        assert!(output_grad.len() >= g.out_image(), "gradient too short");
        assert!(relu_output.is_none_or(|o| o.len() >= g.out_image()));
        assert!(
            out.len() >= self.transposed_len(),
            "transposed buffer too short"
        );
        for group in 0..g.groups {
            let first = group * per_group * positions;
            let block = ToPositionRows {
                grads: output_grad[first..].as_ptr(),
                relu_output: relu_output.map(|o| o[first..].as_ptr()),
                channels: per_group,
                positions,
                plane_len: positions,
                channel_stride: self.channel_stride,
                out: out[group * positions * self.channel_stride..].as_mut_ptr(),
            };
            // SAFETY: the lengths are checked above; the plan's ISA is available and its
            // vectors are `self.lanes` wide, which divides the channel stride.
            unsafe { run_on(self.isa, &block, ()) };
        }
    }

    /// Every register tile of one group over the chunk's images.
    fn group_tiles(&self, group: usize, images: &[(*const f32, *const f32)], partial: &mut [f32]) {
        let g = &self.geometry;
        let terms = self.taps.len();
        let positions = g.out_h * g.out_w;
        let vectors = self.channel_stride / self.lanes;
        let mut v0 = 0;
        while v0 < vectors {
            // At most 4 vectors of channels (2 with AVX2's 16 registers: 12 accumulators,
            // the loaded vectors and a broadcast must fit).
            let n = vectors.min(v0 + self.accumulators / 6) - v0;
            let m = rows_per_tile(terms, n, self.accumulators / n);
            for t0 in (0..terms).step_by(m) {
                let rows = m.min(terms - t0);
                // Surplus rows of the last block repeat a real term; they are not stored.
                // On the stack: a deep layer has thousands of tiles per chunk.
                let mut taps = [0; MAX_TILE_ROWS];
                for (i, tap) in taps.iter_mut().enumerate().take(m) {
                    *tap = self.taps[(t0 + i).min(terms - 1)] + group * self.group_shift;
                }
                let tile = WeightTile {
                    images,
                    taps: &taps[..m],
                    transposed_offset: group * positions * self.channel_stride + v0 * self.lanes,
                    out_h: g.out_h,
                    out_w: g.out_w,
                    row_stride: self.planes.layout.row_stride,
                    channel_stride: self.channel_stride,
                    out: partial[(group * terms + t0) * self.channel_stride + v0 * self.lanes..]
                        .as_mut_ptr(),
                    rows,
                };
                assert!(
                    (group * terms + t0 + rows - 1) * self.channel_stride + (v0 + n) * self.lanes
                        <= partial.len()
                );
                // SAFETY: the plan's ISA is available (it came from `Isa::detected` or a test
                // that checked it); the taps lie inside every image's planes and the
                // transposed gradients hold `positions` rows of `channel_stride`.
                unsafe { run_on(self.isa, &tile, (m, n)) };
            }
            v0 += n;
        }
    }
}

/// One group's output gradient `[channel][position]` (through the fused ReLU's mask, if
/// any) as rows `[position][channel_stride]`, a vector of channels per position, the padding
/// channels zero. Blocks of `LANES` channels × `LANES` positions are loaded as rows and
/// transposed in registers ([`Simd::transpose`]): whole-vector loads and stores, where an
/// element-by-element copy was half of a first layer's weight gradient (docs/performance.md,
/// "The weight gradient's tiles and transposes"). A group of one channel (depthwise) takes its
/// value into lane 0 without the transpose.
///
/// A block reads `LANES` channel rows side by side (twice that with the ReLU's output): 8 or
/// 16 on AVX2, as the copy before it, and 16 or 32 on AVX-512. An earlier copy that read all 32
/// channels of a block of positions at once missed the cache on nearly every load on a Zen 3
/// (AVX2); on the Intel machine of 2026-12-05 the AVX-512 blocks were faster than the copy on
/// every layer, with the ReLU's output too (`small-cnn` conv1, 32 streams: 1.22 → 0.95 ms).
///
/// The depthwise weight gradient (depthwise_grad.rs) turns blocks of an image's input rows
/// and of its gradient into such rows too: `plane_len` apart, a channel's row of `positions`.
pub(super) struct ToPositionRows {
    pub(super) grads: *const f32,
    pub(super) relu_output: Option<*const f32>,
    pub(super) channels: usize,
    pub(super) positions: usize,
    /// Floats from one channel's row to the next (`positions` for a whole gradient).
    pub(super) plane_len: usize,
    pub(super) channel_stride: usize,
    pub(super) out: *mut f32,
}

impl ToPositionRows {
    /// Lanes `0..n` of the gradient at `at`, through the ReLU's mask (a method, not a closure:
    /// a closure was not inlined into the vector code and took an AVX2 build's transpose from
    /// faster than the element-by-element copy to 40% slower).
    #[inline(always)]
    unsafe fn load<S: Simd>(&self, at: usize, n: usize) -> S::V {
        // SAFETY: the caller's (`run`'s) bounds.
        unsafe {
            let v = S::load_part(self.grads.add(at), 0, n);
            match self.relu_output {
                Some(o) => S::relu_mask(v, S::load_part(o.add(at), 0, n)),
                None => v,
            }
        }
    }
}

impl SimdKernel<()> for ToPositionRows {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, (): ()) {
        let lanes = S::LANES;
        // SAFETY (whole function): the caller checked that `grads` (and the ReLU output)
        // hold `channels` rows of `positions`, `plane_len` apart, and `out` `positions` rows
        // of the channel stride, a multiple of the vector; loads and stores stay inside those.
        unsafe {
            for c0 in (0..self.channel_stride).step_by(lanes) {
                let rows = lanes.min(self.channels.saturating_sub(c0));
                let out = self.out.add(c0);
                if rows <= 1 {
                    for p in 0..self.positions {
                        let v = if rows == 1 {
                            self.load::<S>(c0 * self.plane_len + p, 1)
                        } else {
                            S::splat(0.0)
                        };
                        S::store(out.add(p * self.channel_stride), v);
                    }
                    continue;
                }
                for p0 in (0..self.positions).step_by(lanes) {
                    let n = lanes.min(self.positions - p0);
                    let mut block = [S::splat(0.0); 16];
                    for (r, v) in block.iter_mut().enumerate().take(rows) {
                        *v = self.load::<S>((c0 + r) * self.plane_len + p0, n);
                    }
                    S::transpose(&mut block);
                    for (p, v) in block.iter().enumerate().take(n) {
                        S::store(out.add((p0 + p) * self.channel_stride), *v);
                    }
                }
            }
        }
    }
}

/// One register tile of the weight gradient over a chunk of images.
struct WeightTile<'a> {
    /// (source planes, transposed output gradient) of each image.
    images: &'a [(*const f32, *const f32)],
    taps: &'a [usize],
    transposed_offset: usize,
    out_h: usize,
    out_w: usize,
    row_stride: usize,
    channel_stride: usize,
    out: *mut f32,
    /// Rows of the tile that are real terms.
    rows: usize,
}

/// The register tiles compiled, (rows of terms, vectors of channels), and the dispatch to
/// them: one list, so [`rows_per_tile`] only picks tiles that exist.
macro_rules! weight_tiles {
    ($(($rows:literal, $vectors:literal)),*) => {
        const TILES: &[(usize, usize)] = &[$(($rows, $vectors)),*];

        impl SimdKernel<(usize, usize)> for WeightTile<'_> {
            /// An `m` × `n` tile.
            #[inline(always)]
            unsafe fn run<S: Simd>(&self, (m, n): (usize, usize)) {
                match (m, n) {
                    $(($rows, $vectors) => unsafe { self.kernel::<S, $rows, $vectors>() },)*
                    (m, n) => unreachable!("no {m}×{n} weight tile"),
                }
            }
        }
    };
}

// The widest tiles of AVX-512 (24 accumulators) and AVX2 (12), then narrower ones for layers
// with few terms: a first layer's 9 (3 × 3, one input channel) and 25 (5 × 5).
weight_tiles!(
    (24, 1),
    (12, 2),
    (8, 3),
    (6, 4),
    (12, 1),
    (6, 2),
    (4, 3),
    (3, 4),
    (9, 1),
    (9, 2),
    (5, 2)
);

/// The most rows of terms a tile has (AVX-512's 24 × 1).
const MAX_TILE_ROWS: usize = 24;
const _: () = {
    let mut i = 0;
    while i < TILES.len() {
        assert!(
            TILES[i].0 <= MAX_TILE_ROWS,
            "a tile's taps outgrow MAX_TILE_ROWS"
        );
        i += 1;
    }
};

/// Rows of the tiles for `terms` terms and `n` vectors of channels, at most `most`: the
/// blocks as even as the compiled tiles allow. Every row computes a full sum over the chunk's
/// positions, stored or not, so a row beyond the last term is wasted work: with 9 terms (a
/// 3 × 3 first layer) a 24-row tile computed 15 such rows, and `micro-cnn`'s conv1 weight
/// gradient took twice as long with the AVX-512 kernels as with the AVX2 ones (12 rows, 3
/// wasted). Which rows a term falls in does not change its sum, so neither do the bits.
fn rows_per_tile(terms: usize, n: usize, most: usize) -> usize {
    let wanted = terms.div_ceil(terms.div_ceil(most).max(1));
    TILES
        .iter()
        .filter(|&&(m, vectors)| vectors == n && (wanted..=most).contains(&m))
        .map(|&(m, _)| m)
        .min()
        .unwrap_or(most)
}

impl WeightTile<'_> {
    #[inline(always)]
    unsafe fn kernel<S: Simd, const M: usize, const N: usize>(&self) {
        unsafe {
            let mut acc = [[S::splat(0.0); N]; M];
            let mut taps = [0usize; M];
            taps.copy_from_slice(self.taps);
            for &(source, transposed) in self.images {
                let transposed = transposed.add(self.transposed_offset);
                for oh in 0..self.out_h {
                    let source_row = source.add(oh * self.row_stride);
                    let grad_row = transposed.add(oh * self.out_w * self.channel_stride);
                    for ow in 0..self.out_w {
                        let grad = grad_row.add(ow * self.channel_stride);
                        let mut dy = [S::splat(0.0); N];
                        for (n, v) in dy.iter_mut().enumerate() {
                            *v = S::load(grad.add(n * S::LANES));
                        }
                        let source = source_row.add(ow);
                        for (row, &tap) in acc.iter_mut().zip(&taps) {
                            let x = S::splat(*source.add(tap));
                            for (a, v) in row.iter_mut().zip(dy) {
                                *a = S::fma(x, v, *a);
                            }
                        }
                    }
                }
            }
            for (m, row) in acc.iter().enumerate().take(self.rows) {
                for (n, a) in row.iter().enumerate() {
                    S::store(self.out.add(m * self.channel_stride + n * S::LANES), *a);
                }
            }
        }
    }
}

/// The gradient of `conv2d(x, weight)` with respect to `weight` (OIHW), given the output
/// gradient (and, for a fused ReLU, its output, as for [`super::input_grad::input_grad`]).
pub fn weight_grad(
    isa: Isa,
    g: &ConvGeometry,
    x: &[f32],
    output_grad: &[f32],
    relu_output: Option<&[f32]>,
) -> Vec<f32> {
    check_lengths(g, x, output_grad, relu_output);
    let plan = WeightGradPlan::new(isa, g);
    if depthwise_grad::applies(g) {
        return depthwise_grad::weight_grad(isa, g, x, output_grad, relu_output, plan.chunks());
    }
    on_tiles(&plan, x, output_grad, relu_output)
}

/// [`weight_grad`] on the general engine's register tiles even where the depthwise engine
/// would run (to check that it gives their bits, and to measure the two).
pub fn weight_grad_on_tiles(
    isa: Isa,
    g: &ConvGeometry,
    x: &[f32],
    output_grad: &[f32],
    relu_output: Option<&[f32]>,
) -> Vec<f32> {
    check_lengths(g, x, output_grad, relu_output);
    on_tiles(&WeightGradPlan::new(isa, g), x, output_grad, relu_output)
}

fn check_lengths(g: &ConvGeometry, x: &[f32], output_grad: &[f32], relu_output: Option<&[f32]>) {
    assert_eq!(x.len(), g.batch * g.in_image(), "input length");
    assert!(
        relu_output.is_none_or(|o| o.len() == output_grad.len()),
        "ReLU output length"
    );
    assert_eq!(
        output_grad.len(),
        g.batch * g.out_image(),
        "gradient length"
    );
}

fn on_tiles(
    plan: &WeightGradPlan,
    x: &[f32],
    output_grad: &[f32],
    relu_output: Option<&[f32]>,
) -> Vec<f32> {
    let partials: Vec<Vec<f32>> = plan
        .chunks()
        .into_par_iter()
        .map(|images| plan.chunk(images, x, output_grad, relu_output))
        .collect();
    sum_and_transpose(plan, partials)
}

/// The chunks' partial sums added in chunk order, then `[group][term][channel]` → OIHW
/// `[channel][term]`. Both passes run in parallel and in memory order (the sums over runs of
/// [`SUM_RUN`] floats, the transpose over blocks of [`TRANSPOSE_BLOCK`] output channels): a
/// deep layer's partials are megabytes each (`resnet18`'s 512 → 512 at 4 × 4: 22 chunks of
/// 9.4 MB at batch 128), and a serial loop reading them a channel at a time took 60% of that
/// layer's weight gradient. Each element is still the sum of its chunks in chunk order, so the
/// bits do not change.
fn sum_and_transpose(plan: &WeightGradPlan, mut partials: Vec<Vec<f32>>) -> Vec<f32> {
    let g = &plan.geometry;
    let terms = plan.taps.len();
    let per_group = g.out_per_group();
    let stride = plan.channel_stride;
    // The first chunk's partial becomes the running sum (a batch has at least one chunk).
    let mut summed = std::mem::take(&mut partials[0]);
    let rest = &partials[1..];
    summed
        .par_chunks_mut(SUM_RUN)
        .enumerate()
        .for_each(|(i, run)| {
            for partial in rest {
                for (sum, &v) in run.iter_mut().zip(&partial[i * SUM_RUN..]) {
                    *sum += v;
                }
            }
        });
    let mut weight = vec![0.0; g.weight_len()];
    weight
        .par_chunks_mut(TRANSPOSE_BLOCK * terms)
        .enumerate()
        .for_each(|(block, rows)| {
            // A term's channels of the block lie side by side in `summed`: read them together.
            let mut starts = [0; TRANSPOSE_BLOCK];
            let channels = rows.len() / terms;
            for (i, start) in starts.iter_mut().enumerate().take(channels) {
                let co = block * TRANSPOSE_BLOCK + i;
                *start = (co / per_group) * terms * stride + co % per_group;
            }
            for t in 0..terms {
                for (i, &start) in starts[..channels].iter().enumerate() {
                    rows[i * terms + t] = summed[start + t * stride];
                }
            }
        });
    weight
}

/// Floats of one parallel run of [`sum_and_transpose`]'s sums (16 KiB: long enough to stream,
/// many enough to share out).
const SUM_RUN: usize = 4096;

/// Output channels per parallel block of [`sum_and_transpose`]'s transpose.
const TRANSPOSE_BLOCK: usize = 16;

/// The gradient of the bias: the output gradient (through the fused ReLU's mask, if any)
/// summed over images and positions, per channel, in a fixed order (16 running sums over
/// consecutive elements, added pairwise).
pub fn bias_grad(g: &ConvGeometry, output_grad: &[f32], relu_output: Option<&[f32]>) -> Vec<f32> {
    assert!(
        relu_output.is_none_or(|o| o.len() == output_grad.len()),
        "ReLU output length"
    );
    assert_eq!(
        output_grad.len(),
        g.batch * g.out_image(),
        "gradient length"
    );
    let positions = g.out_h * g.out_w;
    (0..g.out_channels)
        .into_par_iter()
        .map(|co| {
            let mut lanes = [0.0f32; 16];
            for b in 0..g.batch {
                let at = (b * g.out_channels + co) * positions;
                let masked: Vec<f32>;
                let row = match relu_output {
                    Some(o) => {
                        let grad = output_grad[at..][..positions].iter();
                        masked = grad
                            .zip(&o[at..][..positions])
                            .map(|(&v, &o)| relu_backward(v, o))
                            .collect();
                        &masked[..]
                    }
                    None => &output_grad[at..][..positions],
                };
                let mut chunks = row.chunks_exact(16);
                for chunk in &mut chunks {
                    for (lane, &v) in lanes.iter_mut().zip(chunk) {
                        *lane += v;
                    }
                }
                for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
                    *lane += v;
                }
            }
            let mut width = 16;
            while width > 1 {
                width /= 2;
                for i in 0..width {
                    lanes[i] += lanes[i + width];
                }
            }
            lanes[0]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{TILES, WeightGradPlan, rows_per_tile, sum_and_transpose};
    use crate::geometry::ConvGeometry;
    use crate::simd::Isa;

    #[test]
    fn the_chunks_are_summed_in_order_and_transposed_to_oihw() {
        // Grouped and not, channels that do not fill a vector, more chunks than threads.
        for (in_channels, out_channels, groups) in
            [(3, 5, 1), (6, 9, 3), (4, 40, 2), (7, 7, 7), (64, 70, 1)]
        {
            let g = ConvGeometry::new(
                [8, in_channels, 6, 6],
                [out_channels, in_channels / groups, 3, 3],
                [1, 1],
                [(1, 1); 2],
                [1, 1],
                groups,
            )
            .unwrap();
            let plan = WeightGradPlan::new(Isa::Portable, &g);
            let len = g.groups * plan.taps.len() * plan.channel_stride;
            // Values whose sum depends on the order: 1e8 cancels only if added first.
            let partials: Vec<Vec<f32>> = (0..5)
                .map(|k| {
                    (0..len)
                        .map(|i| match k {
                            0 => 1e8,
                            1 => -1e8,
                            _ => (i * 7 + k) as f32 * 0.25,
                        })
                        .collect()
                })
                .collect();
            let weight = sum_and_transpose(&plan, partials.clone());
            let (terms, per_group) = (plan.taps.len(), g.out_per_group());
            for co in 0..g.out_channels {
                for t in 0..terms {
                    let (group, c) = (co / per_group, co % per_group);
                    let index = (group * terms + t) * plan.channel_stride + c;
                    let mut sum = partials[0][index];
                    for partial in &partials[1..] {
                        sum += partial[index];
                    }
                    assert_eq!(
                        weight[co * terms + t].to_bits(),
                        sum.to_bits(),
                        "{g:?}: channel {co}, term {t}"
                    );
                }
            }
        }
    }

    #[test]
    fn chunks_of_few_positions_take_more_images_but_stay_eight_or_more() {
        let layer = |batch, channels, size, pad| {
            ConvGeometry::new(
                [batch, channels, size, size],
                [channels, channels, 3, 3],
                [1, 1],
                [(pad, pad); 2],
                [1, 1],
                1,
            )
            .unwrap()
        };
        let images = |g: ConvGeometry| {
            let all: Vec<usize> = [Isa::Portable, Isa::Avx2, Isa::Avx512]
                .into_iter()
                .map(|isa| WeightGradPlan::new(isa, &g).images_per_chunk)
                .collect();
            assert!(
                all.iter().all(|&n| n == all[0]),
                "{all:?}: one size per shape"
            );
            all[0]
        };
        // `resnet18`'s 512 → 512 at 4 × 4: 6 images by the budget alone, 32 for 512 positions,
        // 16 to keep 8 chunks; at batch 32 the budget's 6 (8 chunks would hold 4).
        assert_eq!(images(layer(128, 512, 4, 1)), 16);
        assert_eq!(images(layer(32, 512, 4, 1)), 6);
        // `small-cnn`'s conv4 (64 → 64, 10 × 10 unpadded): the budget's 15 images of 64
        // positions, over 512 already.
        assert_eq!(images(layer(128, 64, 10, 0)), 15);
        // A batch smaller than the chunk: one chunk of all of it.
        assert_eq!(images(layer(3, 64, 10, 0)), 3);
    }

    #[test]
    fn tiles_exist_fit_the_registers_and_waste_no_more_rows_than_the_widest() {
        // AVX-512's 24 accumulators and AVX2's 12, each number of vectors the plan uses.
        for accumulators in [24, 12] {
            for n in 1..=accumulators / 6 {
                let most = accumulators / n;
                for terms in 1..600 {
                    let m = rows_per_tile(terms, n, most);
                    assert!(TILES.contains(&(m, n)), "no {m}×{n} tile for {terms} terms");
                    assert!(m <= most, "{m}×{n} tile holds over {accumulators} sums");
                    let rows = |m: usize| terms.div_ceil(m) * m;
                    assert!(rows(m) <= rows(most), "{terms} terms, {m}×{n}");
                }
            }
        }
    }

    #[test]
    fn a_first_layers_nine_terms_take_no_surplus_rows() {
        // micro-cnn's conv1 (8 channels: one vector on either ISA), small-cnn's (32 channels:
        // two vectors of 16, or pairs of vectors of 8).
        assert_eq!(rows_per_tile(9, 1, 24), 9);
        assert_eq!(rows_per_tile(9, 1, 12), 9);
        assert_eq!(rows_per_tile(9, 2, 12), 9);
        assert_eq!(rows_per_tile(9, 2, 6), 5);
        // madry-cnn's 5 × 5 conv1 (32 channels).
        assert_eq!(rows_per_tile(25, 2, 12), 9);
        assert_eq!(rows_per_tile(25, 2, 6), 5);
    }
}
