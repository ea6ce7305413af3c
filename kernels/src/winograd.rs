//! Winograd's F(2 × 2, 3 × 3) forward pass and input gradient, for the 3 × 3, stride-1
//! convolutions, unpadded or padded by 1, with even output sizes and 16–640 channels in and
//! out (`small-cnn`'s conv2–conv4, and so the TRADES teacher's; `resnet18`'s 3 × 3 stride-1
//! layers but the stem; the WideResNet-34-10 teacher's but the stem), where the layer is large
//! enough ([`MIN_PADDED_POSITIONS`], [`MIN_PADDED_WORK`]): 16 multiply-adds per 2 × 2 outputs and
//! channel pair where the direct convolution needs 36 (docs/performance.md, "Winograd's F(2, 3)
//! for the forward pass and the input gradient", and "… for layers padded by 1"). A padded layer's images are copied with their
//! border of zeros into scratch, as the input gradient's output gradient is.
//!
//! Each 2 × 2 block of outputs (a *tile*) is `Aᵀ [Σ_ci (G g Gᵀ) ⊙ (Bᵀ d B)] A + bias` for the
//! 4 × 4 input patch `d` under it and the 3 × 3 kernel `g` of each input channel. A chunk of
//! images is transformed into `V[ξ][ci][tile]` (ξ: the 16 values of a transformed patch),
//! multiplied by the transformed weights `U[ξ][ci][co]` into `M[ξ][co][tile]`, the input
//! channels summed in order with fused multiply-adds, and transformed back into the output
//! with the bias and the epilogue. Vectors run over tiles (lane k: tile k of the chunk), and
//! every lane computes its own tile by the same operations in the same order whatever the
//! vector width, so the three instruction sets give the same bits, as the other engines do
//! (but for the payload of a NaN where two different NaNs meet, as in norm.rs); those bits
//! differ from the direct engines' (another sum, as exact). A non-finite input reaches all four
//! outputs of each tile whose patch holds it (the transforms mix the patch), where a direct
//! sum reaches only the outputs that read it.

use super::geometry::ConvGeometry;
use super::norm::{ChannelNorm, Epilogue};
use super::output::par_blocks_written;
use super::scratch::{with_gradient_scratch, with_scratch};
use super::simd::{Isa, Simd, SimdKernel, relu_backward, run_on};
use std::mem::MaybeUninit;
use std::ops::RangeInclusive;

/// The channel counts (in and out) F(2, 3) runs for. Measured faster than the direct engines
/// on `small-cnn`'s 32 and 64 and `resnet18`'s 64 and 128; on `micro-cnn`'s conv2 (8 → 16,
/// padded) slower with AVX-512 (0.32 → 0.51 ms forward, 0.33 → 0.62 input gradient) and level
/// with AVX2 (the transforms cost per channel and tile, the product per channel pair, so their
/// share grows as channels fall). Above 128 V and M outgrow L2, and still F(2, 3) was faster
/// on the WideResNet-34-10 teacher's 16 → 160 and 160 → 160 at 32 × 32 and 320 → 320 at
/// 16 × 16 with both instruction sets (forward 1.2–1.8×, level on 16 → 160 with AVX-512;
/// input gradient 1.2–7×; docs/performance.md, "F(2, 3) for the teacher's wide layers"), and
/// on its 640 → 640 at 8 × 8 and `resnet18`'s 512 → 512 at 4 × 4 once U was transformed in
/// parallel, in blocks (AVX-512 2.2–2.8× and 1.7–2.2×, AVX2 1.6–2.7× and 2.1–3.0×; "F(2, 3) for
/// the last stages").
const CHANNELS: RangeInclusive<usize> = 16..=640;
/// Tiles per image at most (`small-cnn`'s conv2 has 144). A chunk's V, 16 · c_in floats per
/// tile, is 295 KB for that layer, inside L2; `resnet18`'s first stage (256 tiles, 64
/// channels) has V and M of 1 MB each and still gains (1.25× on the Intel guest's AVX-512,
/// 1.65× on AVX2); at the limits (256 tiles, 128 channels) they are 2 MB each, not measured.
const MAX_TILES_PER_IMAGE: usize = 256;
/// Output positions a padded layer's forward pass or input gradient, and an unpadded layer's
/// input gradient, needs for F(2, 3) (16 × 16) unless [`MIN_PADDED_WORK`] lets it in: measured
/// faster at 16 × 16 and 32 × 32 (`resnet18`). Slower with AVX-512 at 14 × 14 before U was
/// transformed in parallel (`micro-cnn` at widths 2 and 4, 16 → 32 and 32 → 64 channels:
/// forward 0.94 → 1.06 and level, input gradient 1.1 → 1.35 and 3.35 → 4.0 ms, where AVX2
/// gained on the forward pass, 1.6 → 1.1 ms, but not on the input gradient); since then
/// 32 → 64 is faster there and takes it, 16 → 32 level and does not. One rule for every
/// instruction set, so they keep giving the same bits. Unpadded forward passes were measured
/// faster down to 8 × 8 (`small-cnn`'s conv4) and have no floor.
const MIN_PADDED_POSITIONS: usize = 256;
/// Or, for a padded layer, output positions × the smaller channel count: the product's share
/// of the work grows with the channels, the transforms' does not. Measured with AVX-512 (batch
/// 128, docs/experiments/cifar-layers/s40), forward passes: faster at 4 × 4 with 256 and 512
/// channels (11.3–14.0 → 7.6–11.9 ms, 53–54 → 29–32), at 8 × 8 with 64, 128, 256 and 640
/// (2.8–2.9 → 2.6–2.7, 10.3–10.9 → 7.4–9.0, 40–42 → 25–28, 360–381 → 153–167) and at 14 × 14
/// with 32 → 64 (4.9–5.1 → 4.2, 8.5 and 5.4 → 4.4 and 4.5); slower at 4 × 4 with 128
/// (2.5 → 2.85–2.93). Input gradients: 512 → 512 at 4 × 4 64–68 → 31–35, 256 → 256 at 8 × 8
/// 40 → 25–26, 640 → 640 at 8 × 8 396–433 → 155–172, 32 → 64 at 14 × 14 4.9–5.1 → 4.6–4.9;
/// with AVX2 faster on all of those. A padded layer's input gradient no longer asks that its
/// border add less than half the area (an unpadded layer's still does), so elongated ones
/// (16 channels at 2 × 128, say) take F(2, 3) too: not measured.
const MIN_PADDED_WORK: usize = 4096;
/// Tiles a chunk holds, about (whole images): V of 256 KB for 32 input channels.
const CHUNK_TILES: usize = 128;

/// The plan of one forward pass or input gradient by F(2, 3): the transformed weights, and
/// how the tiles are split into chunks of images and vectors.
pub(crate) struct Winograd {
    isa: Isa,
    c_in: usize,
    c_out: usize,
    /// The images the transform reads: the input itself, or with `border` zeros on every side
    /// (a padded forward pass, the input gradient) copied into scratch first.
    in_h: usize,
    in_w: usize,
    border: usize,
    tiles_h: usize,
    tiles_w: usize,
    images_per_chunk: usize,
    /// A chunk's tiles rounded up to whole vectors: the length of V's and M's rows.
    chunk_stride: usize,
    /// Per vector of a chunk, its runs of tiles that lie side by side in one tile row.
    runs: Vec<Vec<Run>>,
    /// Whether the input transform goes along tile rows (rows that fill most of their
    /// vectors) rather than by runs.
    by_rows: bool,
    /// `G g Gᵀ` in blocks of [`U_BLOCK`] output channels ([`transform_weights`]; read through
    /// [`Winograd::u_slice`]).
    u: Vec<f32>,
    bias: Vec<f32>,
}

/// Tiles `lanes.0..lanes.1` of a vector: tile row `row` of the chunk's image `image`, from
/// tile column `column` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    lanes: (usize, usize),
    image: usize,
    row: usize,
    column: usize,
}

/// The runs of each vector of `lanes` tiles over `tiles` tiles, `tiles_w` a tile row and
/// `per_image` an image.
fn runs_of(tiles: usize, tiles_w: usize, per_image: usize, lanes: usize) -> Vec<Vec<Run>> {
    (0..tiles.div_ceil(lanes))
        .map(|vector| {
            let mut runs: Vec<Run> = Vec::new();
            for lane in 0..lanes.min(tiles - vector * lanes) {
                let t = vector * lanes + lane;
                let (image, row, column) = (t / per_image, t % per_image / tiles_w, t % tiles_w);
                match runs.last_mut() {
                    Some(run) if run.image == image && run.row == row => run.lanes.1 = lane + 1,
                    _ => runs.push(Run {
                        lanes: (lane, lane + 1),
                        image,
                        row,
                        column,
                    }),
                }
            }
            runs
        })
        .collect()
}

/// Output channels per block of U: a block's row for one ξ and input channel is 64 bytes (not
/// aligned to a cache line; narrower in a last block), and its rows for one ξ lie one after
/// another (a multiple of every instruction set's
/// register tile of output channels, so that no tile straddles two blocks).
const U_BLOCK: usize = 16;

/// Output channels in block `block` of U: [`U_BLOCK`], or fewer in the last.
fn block_width(c_out: usize, block: usize) -> usize {
    (c_out - block * U_BLOCK).min(U_BLOCK)
}

/// `G g Gᵀ` for the 3 × 3 kernel `g = kernel(ci, co)` of every channel pair, in blocks of
/// [`U_BLOCK`] output channels, each `[ξ][ci][co within the block]` (a narrower last block
/// where `c_out` is not a multiple), the blocks in parallel.
fn transform_weights(
    c_in: usize,
    c_out: usize,
    kernel: impl Fn(usize, usize) -> [f32; 9] + Sync,
) -> Vec<f32> {
    // G's rows: (1, 0, 0), (½, ½, ½), (½, −½, ½), (0, 0, 1).
    let g_times = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let fill = |block: usize, u: &mut [MaybeUninit<f32>]| {
        let width = block_width(c_out, block);
        // One input channel's 16 rows at a time, each written whole (the rows of one ξ lie
        // 64 · c_in bytes apart: written value by value they evict each other from L1).
        let mut rows = [[0.0; U_BLOCK]; 16];
        for ci in 0..c_in {
            for j in 0..width {
                let g = kernel(ci, block * U_BLOCK + j);
                // G g, column by column of g; then each of its rows times Gᵀ.
                let columns: [[f32; 4]; 3] =
                    std::array::from_fn(|k| g_times(g[k], g[3 + k], g[6 + k]));
                let transformed =
                    (0..4).flat_map(|i| g_times(columns[0][i], columns[1][i], columns[2][i]));
                for (row, value) in rows.iter_mut().zip(transformed) {
                    row[j] = value;
                }
            }
            for (xi, row) in rows.iter().enumerate() {
                let at = (xi * c_in + ci) * width;
                for (u, &value) in u[at..at + width].iter_mut().zip(row) {
                    u.write(value);
                }
            }
        }
    };
    // SAFETY: `fill` writes all 16 · c_in · width values of its block.
    unsafe { par_blocks_written(16 * c_in * c_out, 16 * c_in * U_BLOCK, fill) }
}

/// The padding of a 3 × 3, stride-1 convolution F(2, 3) can take: the same on every side, 0 or
/// 1 (a padded layer keeps its size).
fn padding(g: &ConvGeometry) -> Option<usize> {
    let p = g.pad_h.0;
    (g.stride == [1, 1] && g.pad_h == (p, p) && g.pad_w == (p, p) && p <= 1).then_some(p)
}

/// Whether F(2, 3) runs a 3 × 3, stride-1 convolution, unpadded or padded by 1, of `c_in` →
/// `c_out` channels whose output is `out_h` × `out_w` (see the module).
fn applies(g: &ConvGeometry, c_in: usize, c_out: usize, out_h: usize, out_w: usize) -> bool {
    g.kernel_h == 3
        && g.kernel_w == 3
        && g.groups == 1
        && padding(g).is_some()
        && g.batch > 0
        && out_h.is_multiple_of(2)
        && out_w.is_multiple_of(2)
        && CHANNELS.contains(&c_in)
        && CHANNELS.contains(&c_out)
        && out_h * out_w / 4 <= MAX_TILES_PER_IMAGE
}

/// Whether a padded layer of `positions` output positions and these channels is large enough
/// for F(2, 3) (see [`MIN_PADDED_WORK`]).
fn padded_large_enough(positions: usize, c_in: usize, c_out: usize) -> bool {
    positions >= MIN_PADDED_POSITIONS || positions * c_in.min(c_out) >= MIN_PADDED_WORK
}

/// Where a chunk's input images come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The input of an unpadded forward pass, read in place.
    Input(&'a [f32]),
    /// Images copied into each chunk's scratch with the plan's border of zeros: a padded
    /// forward pass's input, or the input gradient's output gradient, masked by the ReLU's
    /// output where it follows or through an inference batch norm's backward step.
    Padded {
        images: &'a [f32],
        relu_output: Option<&'a [f32]>,
        norm: Option<&'a ChannelNorm>,
    },
}

impl Winograd {
    /// The plan of `g`'s forward pass on `isa`, or `None` where F(2, 3) does not run it.
    pub(crate) fn for_forward(
        isa: Isa,
        g: &ConvGeometry,
        weight: &[f32],
        bias: Option<&[f32]>,
    ) -> Option<Self> {
        let large_enough = padding(g) == Some(0)
            || padded_large_enough(g.out_h * g.out_w, g.in_channels, g.out_channels);
        (applies(g, g.in_channels, g.out_channels, g.out_h, g.out_w) && large_enough).then(|| {
            let c_in = g.in_channels;
            let u = transform_weights(c_in, g.out_channels, |ci, co| {
                std::array::from_fn(|k| weight[(co * c_in + ci) * 9 + k])
            });
            let bias = bias.map_or_else(|| vec![0.0; g.out_channels], <[f32]>::to_vec);
            Winograd::new(
                isa,
                g.batch,
                [g.in_channels, g.out_channels],
                [g.in_h, g.in_w],
                padding(g).expect("`applies` checked the padding"),
                u,
                bias,
            )
        })
    }

    /// The plan of `g`'s input gradient on `isa`, or `None` where F(2, 3) does not run it:
    /// the forward pass of the output gradient padded by 2 − p on every side (p: the layer's
    /// padding), with the kernels turned by 180° and their channels' roles swapped.
    pub(crate) fn for_input_grad(isa: Isa, g: &ConvGeometry, weight: &[f32]) -> Option<Self> {
        let border = 2 - padding(g)?;
        let positions = g.out_h * g.out_w;
        // A padded layer's gradient gets a border of 1: the work of its forward pass, by the
        // same rule. An unpadded layer's gets one of 2: only where that adds less than half the
        // gradient's area (on `small-cnn`'s conv3 and conv4, 10 × 10 and 8 × 8 gradients, it
        // was slower than the channel engine with both instruction sets, on its conv2, 24 × 24,
        // faster or level) and the gradient is at least 16 × 16 (`MIN_PADDED_POSITIONS`).
        let large_enough = if border == 1 {
            padded_large_enough(positions, g.in_channels, g.out_channels)
        } else {
            let padded_area = (g.out_h + 2 * border) * (g.out_w + 2 * border);
            2 * padded_area < 3 * positions && positions >= MIN_PADDED_POSITIONS
        };
        let applies = applies(g, g.out_channels, g.in_channels, g.in_h, g.in_w) && large_enough;
        applies.then(|| {
            let (c_in, c_out) = (g.in_channels, g.out_channels);
            // Channel co of the gradient feeds input channel ci through the kernel turned.
            let u = transform_weights(c_out, c_in, |co, ci| {
                std::array::from_fn(|k| weight[(co * c_in + ci) * 9 + 8 - k])
            });
            Winograd::new(
                isa,
                g.batch,
                [c_out, c_in],
                [g.out_h, g.out_w],
                border,
                u,
                vec![0.0; c_in],
            )
        })
    }

    /// A plan reading images of `source_h` × `source_w` with `border` zeros around them.
    fn new(
        isa: Isa,
        batch: usize,
        [c_in, c_out]: [usize; 2],
        [source_h, source_w]: [usize; 2],
        border: usize,
        u: Vec<f32>,
        bias: Vec<f32>,
    ) -> Self {
        let (in_h, in_w) = (source_h + 2 * border, source_w + 2 * border);
        let (tiles_h, tiles_w) = ((in_h - 2) / 2, (in_w - 2) / 2);
        let per_image = tiles_h * tiles_w;
        let lanes = isa.lanes();
        let images_per_chunk = (CHUNK_TILES / per_image).clamp(1, batch);
        let chunk_tiles = images_per_chunk * per_image;
        // Along rows where a row fills at least 70% of the vectors it takes (measured:
        // `small-cnn`'s conv2, 12 tiles a row, on 8 and 16 lanes), else by runs.
        let filled = tiles_w as f64 / tiles_w.next_multiple_of(lanes) as f64;
        Winograd {
            isa,
            c_in,
            c_out,
            in_h,
            in_w,
            border,
            tiles_h,
            tiles_w,
            images_per_chunk,
            chunk_stride: chunk_tiles.next_multiple_of(lanes),
            runs: runs_of(chunk_tiles, tiles_w, per_image, lanes),
            by_rows: filled >= 0.7,
            u,
            bias,
        }
    }

    fn in_image(&self) -> usize {
        self.c_in * self.in_h * self.in_w
    }

    fn out_image(&self) -> usize {
        self.c_out * 4 * self.tiles_h * self.tiles_w
    }

    fn tiles_per_image(&self) -> usize {
        self.tiles_h * self.tiles_w
    }

    /// Where `U[ξ][0][co]` lies, and the distance between its rows of input channels (the
    /// width of `co`'s block; see [`transform_weights`]).
    fn u_slice(&self, xi: usize, co: usize) -> (usize, usize) {
        let block = co / U_BLOCK;
        let width = block_width(self.c_out, block);
        let start = block * 16 * self.c_in * U_BLOCK;
        (start + xi * self.c_in * width + co % U_BLOCK, width)
    }

    /// The length of V's rows: the chunk's tiles in whole vectors, and on instruction sets
    /// where the input transform along rows stores whole vectors (AVX2) a vector of slack for
    /// it, whichever path the layer takes (conv3 and conv4, on the run path, were measured
    /// with their rows of 128 + 8). (Not elsewhere:
    /// AVX-512's rows of 160 floats for `small-cnn`'s conv2, 144 and the slack, made its
    /// forward pass 3.3 → 4.2 ms and its input gradient 4.5 → 6.0, cache conflicts in the
    /// product.)
    fn v_stride<S: Simd>(&self) -> usize {
        self.chunk_stride + if S::PACK_PARTIAL_STORES { S::LANES } else { 0 }
    }

    /// `epilogue(conv2d(x, weight) + bias)` for the `batch` images of `x`, NCHW.
    pub(crate) fn forward(&self, batch: usize, x: &[f32], epilogue: Epilogue) -> Vec<f32> {
        assert_eq!(x.len(), batch * self.source_image(), "input length");
        let source = if self.border == 0 {
            Source::Input(x)
        } else {
            Source::Padded {
                images: x,
                relu_output: None,
                norm: None,
            }
        };
        self.run(batch, source, epilogue)
    }

    /// The input gradient of the convolution this plan was made for (see
    /// [`Winograd::for_input_grad`]), given its output gradient and, where the ReLU follows, its
    /// output (the gradient is zeroed where that is ≤ 0); with `norm`, of `norm(conv2d(..))`,
    /// the batch norm's backward step applied to each image first (as `input_grad_normalised`
    /// does on the other engines).
    pub(crate) fn input_grad(
        &self,
        batch: usize,
        output_grad: &[f32],
        relu_output: Option<&[f32]>,
        norm: Option<&ChannelNorm>,
    ) -> Vec<f32> {
        assert_eq!(
            output_grad.len(),
            batch * self.source_image(),
            "gradient length"
        );
        assert!(relu_output.is_none_or(|o| o.len() == output_grad.len()));
        let source = Source::Padded {
            images: output_grad,
            relu_output,
            norm,
        };
        self.run(batch, source, Epilogue::Store)
    }

    /// The chunks of images in parallel, each into its own part of the output.
    fn run(&self, batch: usize, source: Source, epilogue: Epilogue) -> Vec<f32> {
        let (v_len, m_len) = (
            // The longest V row any instruction set uses.
            16 * self.c_in * (self.chunk_stride + self.isa.lanes()),
            16 * self.c_out * self.chunk_stride,
        );
        let chunk_len = self.images_per_chunk * self.out_image();
        let fill = |chunk: usize, out: &mut [MaybeUninit<f32>]| {
            let first = chunk * self.images_per_chunk;
            let images = out.len() / self.out_image();
            let out: *mut f32 = out.as_mut_ptr().cast();
            let compute = |x: &[f32]| {
                with_scratch(v_len + m_len, |scratch| {
                    let (v, m) = scratch.split_at_mut(v_len);
                    let args = Chunk {
                        x,
                        images,
                        v,
                        m,
                        out,
                        epilogue,
                    };
                    // SAFETY: the plan's ISA runs here (from `Isa::detected`); `out` holds the
                    // chunk's `images` output images, all of whose values the kernel stores.
                    unsafe { run_on(self.isa, self, args) }
                })
            };
            match source {
                Source::Input(x) => {
                    compute(&x[first * self.in_image()..][..images * self.in_image()])
                }
                Source::Padded {
                    images: sources,
                    relu_output,
                    norm,
                } => {
                    // The padded images, then room for one image's gradient through the norm.
                    let norm_room = if norm.is_some() {
                        self.source_image()
                    } else {
                        0
                    };
                    let len = images * self.in_image() + norm_room;
                    with_gradient_scratch(len, |scratch| {
                        let (padded, through_norm) = scratch.split_at_mut(images * self.in_image());
                        let each = self.source_image();
                        for (k, padded) in padded.chunks_exact_mut(self.in_image()).enumerate() {
                            let at = (first + k) * each;
                            let source = &sources[at..][..each];
                            let relu_output = relu_output.map(|all| &all[at..][..each]);
                            match norm {
                                None => self.pad_image(source, relu_output, padded),
                                Some(norm) => {
                                    norm.gradient_image(
                                        self.isa,
                                        source,
                                        relu_output,
                                        through_norm,
                                    );
                                    self.pad_image(through_norm, None, padded);
                                }
                            }
                        }
                        compute(padded)
                    })
                }
            }
        };
        // SAFETY: each chunk's output transform stores every value of its images.
        unsafe { par_blocks_written(batch * self.out_image(), chunk_len, fill) }
    }

    /// Floats of one image this plan reads before its border is added: the forward pass's
    /// input, the input gradient's output gradient.
    fn source_image(&self) -> usize {
        self.c_in * (self.in_h - 2 * self.border) * (self.in_w - 2 * self.border)
    }

    /// One image (`source`), masked by the ReLU's output where given, into `padded` with the
    /// plan's border of zeros.
    fn pad_image(&self, source: &[f32], relu_output: Option<&[f32]>, padded: &mut [f32]) {
        let b = self.border;
        let (h, w) = (self.in_h - 2 * b, self.in_w - 2 * b);
        let planes = padded.chunks_exact_mut(self.in_h * self.in_w);
        for (c, plane) in planes.enumerate() {
            let start = c * h * w;
            plane[..b * self.in_w].fill(0.0);
            plane[(h + b) * self.in_w..].fill(0.0);
            for (y, row) in source[start..][..h * w].chunks_exact(w).enumerate() {
                let out = &mut plane[(y + b) * self.in_w..][..self.in_w];
                out[..b].fill(0.0);
                out[w + b..].fill(0.0);
                match relu_output {
                    None => out[b..w + b].copy_from_slice(row),
                    Some(relu_output) => {
                        let mask = &relu_output[start + y * w..][..w];
                        for ((o, &g), &r) in out[b..w + b].iter_mut().zip(row).zip(mask) {
                            *o = relu_backward(g, r);
                        }
                    }
                }
            }
        }
    }
}

/// One chunk: its input images, scratch for V and M, and its output images.
struct Chunk<'a> {
    x: &'a [f32],
    images: usize,
    v: &'a mut [f32],
    m: &'a mut [f32],
    out: *mut f32,
    epilogue: Epilogue<'a>,
}

impl SimdKernel<Chunk<'_>> for Winograd {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, mut chunk: Chunk<'_>) {
        let tiles = chunk.images * self.tiles_per_image();
        // SAFETY: V and M hold 16 rows per channel of at least the tiles rounded up to whole
        // vectors (`v_stride`, `chunk_stride`); the transforms read and write inside the
        // chunk's images.
        unsafe {
            if self.by_rows {
                self.input_by_rows::<S>(&mut chunk, tiles);
            } else {
                self.input_by_runs::<S>(&mut chunk);
            }
            // Register tiles of 24 accumulators on AVX-512's 32 registers, 8 on AVX2's 16.
            if S::LANES == 16 {
                self.multiply_all::<S, 8, 3>(&mut chunk, tiles);
            } else {
                self.multiply_all::<S, 4, 2>(&mut chunk, tiles);
            }
            self.output::<S>(&chunk);
        }
    }
}

impl Winograd {
    /// `Bᵀ x B`'s step along one row or column of a patch: `(x0 − x2, x1 + x2, x2 − x1,
    /// x1 − x3)`.
    #[inline(always)]
    unsafe fn input_step<S: Simd>(x: [S::V; 4]) -> [S::V; 4] {
        unsafe {
            [
                S::sub(x[0], x[2]),
                S::add(x[1], x[2]),
                S::sub(x[2], x[1]),
                S::sub(x[1], x[3]),
            ]
        }
    }

    /// `Aᵀ m A`'s step along one row or column: `(m0 + m1 + m2, m1 − m2 − m3)`.
    #[inline(always)]
    unsafe fn output_step<S: Simd>(m: [S::V; 4]) -> [S::V; 2] {
        unsafe {
            [
                S::add(S::add(m[0], m[1]), m[2]),
                S::sub(S::sub(m[1], m[2]), m[3]),
            ]
        }
    }

    /// The column steps of one vector of patches (`rows[i][j]`: patch row i's row step j),
    /// stored at `v`, `xi_stride` floats from one ξ to the next, lanes `0..tiles`.
    #[inline(always)]
    // Column j of four rows: an index is clearer than zipping them.
    #[allow(clippy::needless_range_loop)]
    unsafe fn store_patches<S: Simd>(
        rows: [[S::V; 4]; 4],
        v: *mut f32,
        xi_stride: usize,
        tiles: usize,
    ) {
        for j in 0..4 {
            // SAFETY: the caller's: `tiles` lanes at v + ξ · xi_stride for every ξ.
            unsafe {
                let column =
                    Self::input_step::<S>([rows[0][j], rows[1][j], rows[2][j], rows[3][j]]);
                for (i, value) in column.into_iter().enumerate() {
                    S::store_part(v.add((i * 4 + j) * xi_stride), value, 0, tiles);
                }
            }
        }
    }

    /// The row step of `tiles` tiles side by side from `p` (the first tile's first column).
    #[inline(always)]
    unsafe fn row_step<S: Simd>(p: *const f32, tiles: usize) -> [S::V; 4] {
        // SAFETY: the caller's: 2 · tiles + 2 floats from p.
        unsafe {
            let (c0, c1) = Self::pairs::<S>(p, 2 * tiles);
            let (c2, c3) = Self::pairs::<S>(p.add(2), 2 * tiles);
            Self::input_step::<S>([c0, c1, c2, c3])
        }
    }

    /// `count` ≤ 2 · LANES floats from `p`, deinterleaved: the even ones, the odd ones.
    #[inline(always)]
    unsafe fn pairs<S: Simd>(p: *const f32, count: usize) -> (S::V, S::V) {
        // SAFETY: the caller's: `count` floats from p.
        unsafe {
            let lo = S::load_part(p, 0, count.min(S::LANES));
            let hi = if count > S::LANES {
                S::load_part(p.add(S::LANES), 0, count - S::LANES)
            } else {
                S::splat(0.0)
            };
            S::deinterleave(lo, hi)
        }
    }

    /// The input transform along each tile row, vectors of up to LANES tiles of one row; the
    /// lanes past the chunk's tiles are zeroed first (they are multiplied, not stored). Where
    /// a store of part of a vector is slow (AVX2's masked store: about 30 cycles on AMD Zen 3)
    /// every vector is stored whole: its lanes past its row's last tile land on tiles stored
    /// after it (the next tile row, the next image) or in the rows' slack, never on one stored
    /// before. Elsewhere (AVX-512) the valid lanes are stored, tile rows in the inner loop, and
    /// the two input rows a tile row shares with the next have their row steps computed once
    /// (measured faster there: docs/performance.md).
    #[inline(always)]
    unsafe fn input_by_rows<S: Simd>(&self, chunk: &mut Chunk, tiles: usize) {
        let (h, w) = (self.in_h, self.in_w);
        let stride = self.v_stride::<S>();
        let xi_stride = self.c_in * stride;
        let tail = tiles..tiles.next_multiple_of(S::LANES);
        for row in 0..16 * self.c_in {
            chunk.v[row * stride..][tail.clone()].fill(0.0);
        }
        let v = chunk.v.as_mut_ptr();
        for image in 0..chunk.images {
            let image_tiles = image * self.tiles_per_image();
            for ci in 0..self.c_in {
                let plane = chunk.x[(image * self.c_in + ci) * h * w..][..h * w].as_ptr();
                let out = |ty: usize, tx: usize| {
                    v.wrapping_add(ci * stride + image_tiles + ty * self.tiles_w + tx)
                };
                // SAFETY (both loops): rows 2·ty .. 2·ty + 4 of the plane from column 2·tx,
                // 2 · tiles + 2 floats each (2 · (tx + tiles) + 2 ≤ w); per ξ, the segment's
                // lanes, or a whole vector inside its row with the slack.
                if S::PACK_PARTIAL_STORES {
                    for ty in 0..self.tiles_h {
                        for tx in (0..self.tiles_w).step_by(S::LANES) {
                            let tiles = S::LANES.min(self.tiles_w - tx);
                            unsafe {
                                let at = |i: usize| plane.add((2 * ty + i) * w + 2 * tx);
                                let rows = [
                                    Self::row_step::<S>(at(0), tiles),
                                    Self::row_step::<S>(at(1), tiles),
                                    Self::row_step::<S>(at(2), tiles),
                                    Self::row_step::<S>(at(3), tiles),
                                ];
                                Self::store_patches::<S>(rows, out(ty, tx), xi_stride, S::LANES);
                            }
                        }
                    }
                } else {
                    for tx in (0..self.tiles_w).step_by(S::LANES) {
                        let tiles = S::LANES.min(self.tiles_w - tx);
                        unsafe {
                            let at = |row: usize| plane.add(row * w + 2 * tx);
                            let mut r0 = Self::row_step::<S>(at(0), tiles);
                            let mut r1 = Self::row_step::<S>(at(1), tiles);
                            for ty in 0..self.tiles_h {
                                let r2 = Self::row_step::<S>(at(2 * ty + 2), tiles);
                                let r3 = Self::row_step::<S>(at(2 * ty + 3), tiles);
                                let rows = [r0, r1, r2, r3];
                                Self::store_patches::<S>(rows, out(ty, tx), xi_stride, tiles);
                                (r0, r1) = (r2, r3);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The `2 · LANES` floats of a vector's tiles at column offset `offset` of patch row `i`,
    /// gathered run by run and deinterleaved (lane k: columns `2·tx + offset` and the next of
    /// tile k); lanes without a tile hold +0.
    #[inline(always)]
    unsafe fn gathered_pairs<S: Simd>(
        &self,
        x: &[f32],
        ci: usize,
        runs: &[Run],
        i: usize,
        offset: usize,
    ) -> (S::V, S::V) {
        let (h, w, lanes) = (self.in_h, self.in_w, S::LANES);
        // SAFETY: each run's 2 · (its tiles) floats lie in one input row; each load is placed
        // so that only those lanes are read, and they merge by bits (+0 elsewhere).
        unsafe {
            let (mut lo, mut hi) = (S::splat(0.0), S::splat(0.0));
            for run in runs {
                let (a, b) = (2 * run.lanes.0, 2 * run.lanes.1);
                let plane = (run.image * self.c_in + ci) * h * w;
                let q = x[plane + (2 * run.row + i) * w + 2 * run.column + offset..].as_ptr();
                if a < lanes {
                    lo = S::or(lo, S::load_lanes(q.wrapping_sub(a), a, b.min(lanes)));
                }
                if b > lanes {
                    let p = q.wrapping_add(lanes).wrapping_sub(a);
                    hi = S::or(hi, S::load_lanes(p, a.max(lanes) - lanes, b - lanes));
                }
            }
            S::deinterleave(lo, hi)
        }
    }

    /// The input transform a vector of tiles at a time, the tiles of one or several tile
    /// rows and images (for rows that fill little of a vector).
    #[inline(always)]
    unsafe fn input_by_runs<S: Simd>(&self, chunk: &mut Chunk) {
        let stride = self.v_stride::<S>();
        let xi_stride = self.c_in * stride;
        let v = chunk.v.as_mut_ptr();
        for ci in 0..self.c_in {
            for (vector, runs) in self.runs.iter().enumerate() {
                let runs = self.runs_within(runs, chunk.images);
                if runs.is_empty() {
                    break;
                }
                // SAFETY: gathered_pairs' reads; whole vectors stored inside V's rows.
                unsafe {
                    let mut rows = [[S::splat(0.0); 4]; 4];
                    for (i, row) in rows.iter_mut().enumerate() {
                        let (c0, c1) = self.gathered_pairs::<S>(chunk.x, ci, runs, i, 0);
                        let (c2, c3) = self.gathered_pairs::<S>(chunk.x, ci, runs, i, 2);
                        *row = Self::input_step::<S>([c0, c1, c2, c3]);
                    }
                    let out = v.add(ci * stride + vector * S::LANES);
                    Self::store_patches::<S>(rows, out, xi_stride, S::LANES);
                }
            }
        }
    }

    /// A vector's runs over the chunk's first `images` images (the last chunk may hold fewer
    /// than the plan's).
    fn runs_within<'r>(&self, runs: &'r [Run], images: usize) -> &'r [Run] {
        &runs[..runs.iter().take_while(|run| run.image < images).count()]
    }

    /// `M = U · V` for every ξ over the chunk's `tiles` tiles (in whole vectors): `CO`
    /// output channels × `VECTORS` vectors at a time, the vectors left over `CO` channels at
    /// a time, the channels left over one at a time.
    #[inline(always)]
    unsafe fn multiply_all<S: Simd, const CO: usize, const VECTORS: usize>(
        &self,
        chunk: &mut Chunk,
        tiles: usize,
    ) {
        let lanes = S::LANES;
        let vectors = tiles.div_ceil(lanes);
        let whole = vectors / VECTORS * VECTORS;
        let wide = self.c_out / CO * CO;
        // SAFETY: the ranges lie inside the chunk's vectors and the channels.
        unsafe {
            self.multiply::<S, CO, VECTORS>(chunk, (0, wide), (0, whole * lanes));
            self.multiply::<S, CO, 1>(chunk, (0, wide), (whole * lanes, vectors * lanes));
            self.multiply::<S, 1, 1>(chunk, (wide, self.c_out), (0, vectors * lanes));
        }
    }

    /// `M[ξ][co][t] = Σ_ci U[ξ][ci][co] · V[ξ][ci][t]`, the input channels in order, for the
    /// channels `channels` and tiles `tiles` (both whole blocks of `CO` and `VECTORS` vectors).
    /// Each ξ and block of tiles runs through all its channels before the next block, so that
    /// its V (c_in × VECTORS vectors) stays in L1; a register tile reads U's c_in rows of its
    /// block, `CO` values each, one after another.
    #[inline(always)]
    unsafe fn multiply<S: Simd, const CO: usize, const VECTORS: usize>(
        &self,
        chunk: &mut Chunk,
        channels: (usize, usize),
        tiles: (usize, usize),
    ) {
        // A tile starting at a multiple of CO stays inside one block of U.
        const { assert!(U_BLOCK.is_multiple_of(CO)) };
        let (v_stride, m_stride) = (self.v_stride::<S>(), self.chunk_stride);
        let (v, u, m) = (chunk.v.as_ptr(), self.u.as_ptr(), chunk.m.as_mut_ptr());
        for xi in 0..16 {
            for t in (tiles.0..tiles.1).step_by(VECTORS * S::LANES) {
                for co0 in (channels.0..channels.1).step_by(CO) {
                    // SAFETY: t + VECTORS · LANES ≤ m_stride ≤ v_stride; co0 + CO ≤ c_out
                    // and within one block of U.
                    unsafe {
                        let vx = v.add(xi * self.c_in * v_stride + t);
                        let (u_start, u_row) = self.u_slice(xi, co0);
                        let ux = u.add(u_start);
                        let mut acc = [[S::splat(0.0); VECTORS]; CO];
                        for ci in 0..self.c_in {
                            let row = vx.add(ci * v_stride);
                            let mut inputs = [S::splat(0.0); VECTORS];
                            for (k, input) in inputs.iter_mut().enumerate() {
                                *input = S::load(row.add(k * S::LANES));
                            }
                            let weights = ux.add(ci * u_row);
                            for (c, acc) in acc.iter_mut().enumerate() {
                                let weight = S::splat(*weights.add(c));
                                for (a, input) in acc.iter_mut().zip(inputs) {
                                    *a = S::fma(weight, input, *a);
                                }
                            }
                        }
                        for (c, acc) in acc.iter().enumerate() {
                            let out = m.add((xi * self.c_out + co0 + c) * m_stride + t);
                            for (k, a) in acc.iter().enumerate() {
                                S::store(out.add(k * S::LANES), *a);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The output transform, the bias and the epilogue, a vector of tiles at a time, stored
    /// run by run into the chunk's output images.
    #[inline(always)]
    // Output row a of the two columns' steps: an index is clearer than zipping them.
    #[allow(clippy::needless_range_loop)]
    unsafe fn output<S: Simd>(&self, chunk: &Chunk) {
        let (out_h, out_w, lanes) = (2 * self.tiles_h, 2 * self.tiles_w, S::LANES);
        let xi_stride = self.c_out * self.chunk_stride;
        let m = chunk.m.as_ptr();
        for co in 0..self.c_out {
            // SAFETY: the epilogue's vectors on this CPU's set.
            let (bias, epilogue) =
                unsafe { (S::splat(self.bias[co]), chunk.epilogue.channel::<S>(co)) };
            for (vector, runs) in self.runs.iter().enumerate() {
                let runs = self.runs_within(runs, chunk.images);
                if runs.is_empty() {
                    break;
                }
                // SAFETY: whole vectors of M's rows; each run's 2 × 2 blocks stored inside its
                // own image's output plane (its tiles' columns lie in one tile row).
                unsafe {
                    let column = m.add(co * self.chunk_stride + vector * lanes);
                    let mut rows = [[S::splat(0.0); 2]; 4];
                    for (i, row) in rows.iter_mut().enumerate() {
                        let mut values = [S::splat(0.0); 4];
                        for (j, value) in values.iter_mut().enumerate() {
                            *value = S::load(column.add((i * 4 + j) * xi_stride));
                        }
                        *row = Self::output_step::<S>(values);
                    }
                    // The column steps: `ys[b]` holds outputs (0, b) and (1, b) of each tile.
                    let mut ys = [[S::splat(0.0); 2]; 2];
                    for (b, y) in ys.iter_mut().enumerate() {
                        *y = Self::output_step::<S>([
                            rows[0][b], rows[1][b], rows[2][b], rows[3][b],
                        ]);
                    }
                    for a in 0..2 {
                        let left = epilogue.apply(S::add(ys[0][a], bias));
                        let right = epilogue.apply(S::add(ys[1][a], bias));
                        let (lo, hi) = S::interleave(left, right);
                        for run in runs {
                            let (l0, l1) = (2 * run.lanes.0, 2 * run.lanes.1);
                            let plane = (run.image * self.c_out + co) * out_h * out_w;
                            let q = chunk
                                .out
                                .add(plane + (2 * run.row + a) * out_w + 2 * run.column);
                            if l0 < lanes {
                                S::store_part(q.wrapping_sub(l0), lo, l0, l1.min(lanes));
                            }
                            if l1 > lanes {
                                let p = q.wrapping_add(lanes).wrapping_sub(l0);
                                S::store_part(p, hi, l0.max(lanes) - lanes, l1 - lanes);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Run, Winograd, runs_of};
    use crate::geometry::ConvGeometry;
    use crate::norm::ChannelNorm;
    use crate::simd::Isa;

    fn available_isas() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .filter(|isa| isa.is_available())
            .collect()
    }

    /// Values in (−1, 1) from a fixed sequence, with a −0 every 37th.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i % 37 == 5 {
                    -0.0
                } else {
                    ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                }
            })
            .collect()
    }

    fn geometry(batch: usize, c_in: usize, c_out: usize, h: usize, w: usize) -> ConvGeometry {
        padded(batch, c_in, c_out, h, w, 0)
    }

    /// A 3 × 3 stride-1 convolution padded by `pad` on every side.
    fn padded(
        batch: usize,
        c_in: usize,
        c_out: usize,
        h: usize,
        w: usize,
        pad: usize,
    ) -> ConvGeometry {
        ConvGeometry::new(
            [batch, c_in, h, w],
            [c_out, c_in, 3, 3],
            [1, 1],
            [(pad, pad), (pad, pad)],
            [1, 1],
            1,
        )
        .unwrap()
    }

    /// The input value under output (y, x) and tap (ky, kx), or None on the zero padding.
    fn input_index(
        g: &ConvGeometry,
        b: usize,
        ci: usize,
        y: usize,
        x: usize,
        ky: usize,
        kx: usize,
    ) -> Option<usize> {
        let (iy, ix) = (
            (y + ky).checked_sub(g.pad_h.0)?,
            (x + kx).checked_sub(g.pad_w.0)?,
        );
        (iy < g.in_h && ix < g.in_w).then(|| ((b * g.in_channels + ci) * g.in_h + iy) * g.in_w + ix)
    }

    /// Each output in f64, and the sum of its terms' magnitudes (the scale of its rounding).
    fn exact(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(g.batch * g.out_image());
        for b in 0..g.batch {
            for co in 0..g.out_channels {
                for y in 0..g.out_h {
                    for x0 in 0..g.out_w {
                        let (mut sum, mut scale) = (f64::from(bias[co]), f64::from(bias[co]).abs());
                        for ci in 0..g.in_channels {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let Some(at) = input_index(g, b, ci, y, x0, ky, kx) else {
                                        continue;
                                    };
                                    let input = x[at];
                                    let w = weight[((co * g.in_channels + ci) * 3 + ky) * 3 + kx];
                                    let term = f64::from(input) * f64::from(w);
                                    sum += term;
                                    scale += term.abs();
                                }
                            }
                        }
                        out.push((sum, scale));
                    }
                }
            }
        }
        out
    }

    /// Checks one instruction set's `out` against the f64 sums (within 1e-6 of the sum of the
    /// terms' magnitudes: a few units of f32 rounding per term, as the transforms add at most
    /// 4 values per step and their sums carry the terms' own scale) and against the bits of
    /// the first instruction set checked.
    fn check(
        isa: Isa,
        g: &ConvGeometry,
        out: Vec<f32>,
        expected: &[(f64, f64)],
        first: &mut Option<Vec<f32>>,
    ) {
        assert_eq!(out.len(), expected.len());
        for (i, (&ours, &(sum, scale))) in out.iter().zip(expected).enumerate() {
            assert!(
                (f64::from(ours) - sum).abs() <= 1e-6 * scale + 1e-7,
                "{} {g:?} [{i}]: {ours} against {sum} (scale {scale})",
                isa.name()
            );
        }
        match first {
            None => *first = Some(out),
            Some(first) => assert!(
                first
                    .iter()
                    .zip(&out)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{}: other bits than another instruction set's for {g:?}",
                isa.name()
            ),
        }
    }

    /// Shapes F(2, 3) takes: channel counts that no register tile divides, non-square
    /// images, rows of 1 to 16 tiles, batches that leave a short last chunk on both of the
    /// input transform's paths (rows of 6 and 12 tiles go along rows on 8 lanes, rows of 4
    /// and 5 by runs), several images and tile rows a chunk, padded by 0 and 1 (the last
    /// six, rows of 5 to 16 tiles; `resnet18`'s first stage at full size, 256 tiles an image;
    /// 136 → 160 channels, above the bound of 128 F(2, 3) had before the teacher's layers;
    /// padded layers under 16 × 16 with many channels, one with its last block of U 8 wide).
    const SHAPES: [(usize, usize, usize, usize, usize, usize); 17] = [
        (3, 16, 20, 6, 8, 0),
        (2, 32, 32, 26, 26, 0),
        (11, 32, 64, 12, 12, 0),
        (9, 64, 16, 10, 10, 0),
        (5, 17, 33, 12, 4, 0),
        (4, 16, 16, 4, 30, 0),
        (11, 16, 16, 14, 14, 0),
        (5, 16, 24, 10, 26, 0),
        (3, 16, 20, 16, 18, 1),
        (5, 17, 33, 26, 10, 1),
        (2, 64, 64, 32, 32, 1),
        (3, 16, 16, 30, 30, 1),
        (7, 24, 16, 16, 16, 1),
        // Over 128 channels, as the WideResNet teacher's 160 and 320.
        (1, 136, 160, 16, 16, 1),
        // Padded, under 16 × 16 with many channels (`MIN_PADDED_WORK`), as `resnet18`'s last
        // two stages; output channels that end in a narrow block of U.
        (3, 256, 264, 4, 4, 1),
        (4, 64, 72, 8, 8, 1),
        (2, 40, 116, 12, 10, 1),
    ];

    /// Fills every thread's scratch buffers with NaN, so a value a kernel reads before it
    /// writes it shows in the results whatever ran before.
    fn poison_scratch() {
        let poison = |buffer: &mut [f32]| buffer.fill(f32::NAN);
        rayon::broadcast(|_| {
            super::with_scratch(1 << 20, poison);
            super::with_gradient_scratch(1 << 20, poison);
        });
    }

    #[test]
    fn f23_matches_the_sum_in_f64_with_the_same_bits_on_every_instruction_set() {
        for (seed, &(batch, c_in, c_out, h, w, pad)) in SHAPES.iter().enumerate() {
            poison_scratch();
            let g = padded(batch, c_in, c_out, h, w, pad);
            let x = values(g.batch * g.in_image(), seed as u64);
            let weight = values(g.weight_len(), 100 + seed as u64);
            let bias = values(c_out, 200 + seed as u64);
            let expected = exact(&g, &x, &weight, &bias);
            let mut first: Option<Vec<f32>> = None;
            for isa in available_isas() {
                assert!(
                    Winograd::for_forward(isa, &g, &weight, Some(&bias)).is_some(),
                    "{g:?}"
                );
                let out = crate::forward(isa, &g, &x, &weight, Some(&bias), false);
                check(isa, &g, out, &expected, &mut first);
            }
        }
    }

    /// Each input gradient value in f64, and the sum of its terms' magnitudes.
    fn exact_input_grad(g: &ConvGeometry, weight: &[f32], dy: &[f32]) -> Vec<(f64, f64)> {
        let mut out = vec![(0.0, 0.0); g.batch * g.in_image()];
        for b in 0..g.batch {
            for co in 0..g.out_channels {
                for y in 0..g.out_h {
                    for x0 in 0..g.out_w {
                        let d = dy[((b * g.out_channels + co) * g.out_h + y) * g.out_w + x0];
                        for ci in 0..g.in_channels {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let w = weight[((co * g.in_channels + ci) * 3 + ky) * 3 + kx];
                                    let Some(at) = input_index(g, b, ci, y, x0, ky, kx) else {
                                        continue;
                                    };
                                    let term = f64::from(d) * f64::from(w);
                                    out[at].0 += term;
                                    out[at].1 += term.abs();
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Shapes whose input gradient F(2, 3) takes (unpadded layers' gradients large enough
    /// that a border of 2 adds less than half their area; padded layers' by the forward pass's
    /// rule, the last two under 16 × 16): (batch, the gradient's channels, the input's, the
    /// input's height and width, the padding).
    const INPUT_GRAD_SHAPES: [(usize, usize, usize, usize, usize, usize); 8] = [
        (2, 32, 32, 26, 26, 0),
        (3, 16, 20, 22, 20, 0),
        (5, 17, 33, 20, 30, 0),
        (2, 64, 64, 16, 16, 1),
        (3, 20, 16, 18, 16, 1),
        (1, 160, 136, 16, 16, 1),
        (2, 264, 256, 4, 4, 1),
        (3, 72, 64, 8, 8, 1),
    ];

    #[test]
    fn the_input_gradient_matches_the_sum_in_f64_with_the_same_bits_on_every_instruction_set() {
        for (seed, &(batch, c_in, c_out, h, w, pad)) in INPUT_GRAD_SHAPES.iter().enumerate() {
            poison_scratch();
            let g = padded(batch, c_out, c_in, h, w, pad);
            let weight = values(g.weight_len(), 300 + seed as u64);
            let dy = values(g.batch * g.out_image(), 400 + seed as u64);
            // The ReLU's output: +0, −0 and NaN among the values (the gradient passes where
            // it is > 0 or NaN).
            let mut relu_output = values(dy.len(), 500 + seed as u64);
            for (i, v) in relu_output
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| i % 5 == 0)
            {
                *v = [0.0, -0.0, f32::NAN][i % 3];
            }
            let masked: Vec<f32> = dy
                .iter()
                .zip(&relu_output)
                .map(|(&d, &o)| crate::relu_backward(d, o))
                .collect();
            let expected = exact_input_grad(&g, &weight, &masked);
            let mut first: Option<Vec<f32>> = None;
            for isa in available_isas() {
                assert!(
                    Winograd::for_input_grad(isa, &g, &weight).is_some(),
                    "{g:?}"
                );
                let out = crate::input_grad(isa, &g, &weight, &dy, Some(&relu_output));
                assert_eq!(out, crate::input_grad(isa, &g, &weight, &masked, None));
                check(isa, &g, out, &expected, &mut first);
            }
        }
    }

    #[test]
    fn the_epilogues_give_what_they_give_after_the_sum() {
        let g = geometry(3, 16, 24, 10, 12);
        let (x, weight, bias) = (
            values(g.batch * g.in_image(), 1),
            values(g.weight_len(), 2),
            values(24, 3),
        );
        let norm = |relu| {
            let stats = |seed| values(24, seed);
            let std = stats(5).iter().map(|v| v.abs() + 0.5).collect();
            ChannelNorm::new(stats(4), std, stats(6), stats(7), relu)
        };
        for isa in available_isas() {
            let plain = crate::forward(isa, &g, &x, &weight, Some(&bias), false);
            let relu: Vec<f32> = plain.iter().map(|&v| crate::relu(v)).collect();
            assert_eq!(
                crate::forward(isa, &g, &x, &weight, Some(&bias), true),
                relu
            );
            for with_relu in [false, true] {
                let norm = norm(with_relu);
                let plane = g.out_h * g.out_w;
                let normalised: Vec<f32> = plain
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| norm.value(i / plane % g.out_channels, v))
                    .collect();
                let fused = crate::forward_normalised(isa, &g, &x, &weight, Some(&bias), &norm);
                assert!(
                    fused
                        .iter()
                        .zip(&normalised)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{} (ReLU: {with_relu})",
                    isa.name()
                );
            }
        }
    }

    #[test]
    fn other_convolutions_stay_on_the_direct_engines() {
        let isa = Isa::detected();
        let takes = |g: ConvGeometry| {
            Winograd::for_forward(isa, &g, &vec![0.0; g.weight_len()], None).is_some()
        };
        assert!(takes(geometry(2, 16, 16, 10, 10)));
        let takes_gradient = |g: ConvGeometry| {
            Winograd::for_input_grad(isa, &g, &vec![0.0; g.weight_len()]).is_some()
        };
        assert!(
            takes_gradient(geometry(2, 32, 32, 26, 26)),
            "small-cnn's conv2"
        );
        assert!(
            !takes_gradient(geometry(2, 64, 64, 10, 10)),
            "small-cnn's conv4: 8 × 8"
        );
        assert!(
            takes_gradient(padded(2, 128, 128, 16, 16, 1)),
            "resnet18's second stage: 16 × 16, a border of 1"
        );
        assert!(
            !takes_gradient(padded(2, 16, 32, 14, 14, 1)),
            "14 × 14 with a border of 1 and 16 channels"
        );
        assert!(
            takes_gradient(padded(2, 32, 64, 14, 14, 1)),
            "14 × 14 with a border of 1 and 32 channels"
        );
        for (channels, size) in [(256, 8), (512, 4), (640, 8)] {
            let layer = padded(2, channels, channels, size, size, 1);
            assert!(
                takes(layer) && takes_gradient(layer),
                "resnet18's last two stages, the WideResNet teacher's last: {layer:?}"
            );
        }
        assert!(
            !takes(padded(2, 128, 128, 4, 4, 1)) && !takes_gradient(padded(2, 128, 128, 4, 4, 1)),
            "4 × 4 with 128 channels"
        );
        assert!(!takes(padded(2, 16, 16, 8, 8, 1)), "8 × 8 with 16 channels");
        let uneven = ConvGeometry::new(
            [2, 16, 17, 17],
            [16, 16, 3, 3],
            [1, 1],
            [(1, 0), (1, 0)],
            [1, 1],
            1,
        );
        assert!(!takes(uneven.unwrap()), "padded on one side only");
        assert!(!takes(geometry(2, 16, 16, 11, 10)), "an odd output");
        assert!(!takes(geometry(2, 8, 16, 10, 10)), "8 input channels");
        assert!(!takes(geometry(2, 16, 648, 10, 10)), "648 output channels");
        assert!(
            takes(padded(1, 160, 160, 32, 32, 1)) && takes(padded(1, 320, 320, 16, 16, 1)),
            "the WideResNet teacher's 160 and 320 channels"
        );
        assert!(
            takes_gradient(padded(1, 16, 160, 32, 32, 1)),
            "the WideResNet teacher's first block"
        );
        assert!(!takes(geometry(2, 16, 16, 36, 36)), "289 tiles an image");
        let other = |weight: [usize; 4], stride, pad| {
            ConvGeometry::new(
                [2, 16, 10, 10],
                weight,
                [stride; 2],
                [(pad, pad); 2],
                [1, 1],
                1,
            )
            .unwrap()
        };
        assert!(
            !takes(other([16, 16, 3, 3], 1, 1)),
            "padded by 1, under 16 × 16"
        );
        assert!(takes(padded(2, 16, 16, 16, 16, 1)), "padded by 1, 16 × 16");
        assert!(!takes(other([16, 16, 3, 3], 1, 2)), "padded by 2");
        assert!(!takes(other([16, 16, 3, 3], 2, 0)), "stride 2");
        assert!(!takes(other([16, 16, 5, 5], 1, 0)), "5 × 5");
        let grouped = ConvGeometry::new(
            [2, 32, 10, 10],
            [32, 16, 3, 3],
            [1, 1],
            [(0, 0); 2],
            [1, 1],
            2,
        );
        assert!(!takes(grouped.unwrap()), "two groups");
    }

    #[test]
    fn runs_cover_each_tile_once_in_order_within_one_tile_row() {
        for (tiles_w, tiles_h, images, lanes) in [
            (12, 12, 1, 8),
            (12, 12, 1, 16),
            (5, 5, 5, 8),
            (5, 5, 5, 16),
            (4, 4, 8, 16),
            (1, 3, 2, 4),
        ] {
            let per_image = tiles_w * tiles_h;
            let tiles = images * per_image;
            let runs = runs_of(tiles, tiles_w, per_image, lanes);
            assert_eq!(runs.len(), tiles.div_ceil(lanes));
            let mut next = 0;
            for (vector, runs) in runs.iter().enumerate() {
                for &Run {
                    lanes: (a, b),
                    image,
                    row,
                    column,
                } in runs
                {
                    assert!(a < b && b <= lanes);
                    assert_eq!(vector * lanes + a, next, "runs in order, without gaps");
                    assert_eq!(next, image * per_image + row * tiles_w + column);
                    assert!(column + (b - a) <= tiles_w, "a run stays in its tile row");
                    next += b - a;
                }
            }
            assert_eq!(next, tiles);
        }
    }
}
