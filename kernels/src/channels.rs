//! A third engine, for the input gradient of stride-1 (and stride-2) ungrouped convolutions
//! with many input channels and kernels wider than 1 × 1 (small-cnn's conv2–conv4): vectors run
//! over *input channels*, and each tile skips the kernel rows that fall on the output
//! gradient's zero padding.
//!
//! The position engine ([`super::correlate`]) computes the "full" correlation of the padded
//! output gradient: on a 12×12 input from a 10×10 output a third of its terms read padding,
//! and rows of the extended grid carry columns that are never stored. Here a tile is `M`
//! positions of one input row × `N` vectors of input channels: every term of a kernel row
//! that reads outside the output gradient is the same for the whole tile, so it is left out.
//! With a 3-wide kernel the terms that read the padding at the left and right edges are left
//! out too, by tiles of two vectors compiled for each edge ([`Edges`]), or read as +0 by tiles
//! of one vector ([`ThreeBySource`]); with other kernels they stay (their source is +0). Where
//! no tile reads the padding (3-wide kernels, but for two-vector tiles on rows of one tile
//! with uneven padding, whose edges are not compiled) the tiles read the output gradient in
//! place; otherwise they read it copied into padded planes.
//!
//! Results have the position engine's values for finite weights: every input gradient is one
//! accumulator summing the terms (output channel, kernel row, kernel column) in the same order
//! with fused multiply-adds; the terms left out would each add `weight · (+0)`, which leaves a
//! nonzero accumulator unchanged, and +0 too. The one way the bits can differ: an accumulator
//! that a multiply-add rounded to −0 (a negative result smaller than half the least subnormal,
//! e.g. `fma(1e-30, -1e-20, +0)`) stays −0 where a left-out term with a positive weight would
//! have made it +0 (an independent review found such cases, with products of about 1e-45; none
//! with random values in (−1, 1) over about 3,300 shapes). With an infinite or NaN weight the
//! two engines can differ where only padding met it. Since the engine and its tiles are chosen
//! by the vector width (below), the same holds between AVX2 and AVX-512. Each image's result,
//! computed as `[position][channel]`, is transposed into NCHW once.
//!
//! A stride-2 input gradient runs by phases, as the position engine splits it (input_grad.rs):
//! each phase is a stride-1 input gradient with its own sub-kernel whose results lie two input
//! positions apart ([`ChannelGrad::phased`]); the terms, and so the bits, are the position
//! engine's as above.
//!
//! The engine also runs forward passes, as the input gradient of another convolution on the
//! input turned by 180° (channel_forward.rs), stride-2 ones with the source read at every
//! other position ([`ChannelGrad::stepped`]); the starting values ([`ChannelGrad::with_init`])
//! are then the bias.

use super::simd::{Isa, Simd, SimdKernel, Vendor, run_on};
use std::mem::MaybeUninit;
use std::sync::atomic::{Ordering, compiler_fence};

/// Input channels from which the engine replaces the position engine: one vector of the
/// ISA (8 on AVX2, 16 on AVX-512). Below a vector the channels are padded with zeros, so
/// part of every vector's lanes compute nothing: on AVX-512 micro-cnn's conv2 (8 input
/// channels, half of each vector) took 0.73 ms
/// here against the position engine's 0.41, on AVX2 (one whole vector) 0.60 against 0.70
/// (docs/performance.md, "micro-cnn's conv2 on the channel engine").
pub fn min_channels(isa: Isa) -> usize {
    isa.lanes()
}

/// Whether the engine can run the input gradient of `g`: stride 1, or 2 with a kernel at
/// least 2 × 2 (by phases, each with a tap: [`ChannelGrad::phased`]), one group, a kernel wider
/// than 1 × 1 (a 1 × 1 kernel has no padding terms to leave out, and the position engine was
/// faster there: input_grad.rs), and [`min_channels`] input channels.
pub fn runs(isa: Isa, g: &super::geometry::ConvGeometry) -> bool {
    let stride = match g.stride {
        [1, 1] => true,
        [2, 2] => g.kernel_h >= 2 && g.kernel_w >= 2,
        _ => false,
    };
    stride && g.groups == 1 && g.taps() > 1 && g.in_channels >= min_channels(isa)
}

/// Whether the engine takes the input gradient of `g` (one it [`runs`]) from the position
/// engine: with AVX-512 always on AMD's CPUs, on Intel's at stride 1 up to 1,152 terms (below);
/// with AVX2, whose tiles hold half the positions, at stride 1
/// where each input value sums at most 1,600 terms (output channels × taps); with the
/// portable code at stride 1 (stride 2 was not measured there).
///
/// `kernels/examples/layer.rs igrad-direct` against `igrad-rows` on a Zen 4
/// (docs/performance.md, "The forward pass on the channel engine"): with AVX2 the engine was
/// 1.05–1.5× faster on unpadded 64 → 128 at 12 × 12 and 128 → 128 at 10 × 10 (1,152 terms) and
/// on `madry-cnn`'s conv2 (1,600), and 0.5–0.9× as fast from 2,304 terms on (128 → 256 and
/// 256 → 256 at 8 × 8, 512 → 512 at 4 × 4, the teacher's 320 and 640 channels). Stride 2, by
/// phases ("Stride 2 on the channel engine"): with AVX-512 `resnet18`'s 256 → 512 /2 at 8 × 8
/// 1.36–1.61× faster, 128 → 256 /2 at 16 × 16 1.19–1.27×, 64 → 128 /2 at 32 × 32 1.03×; with
/// AVX2 0.72–1.0× on the three, so AVX2 keeps stride 1. Both engines give the same bits, so the
/// rule may differ between instruction sets, and between CPU makers: those AVX-512
/// measurements were a Zen 4's; on an Ice Lake (Intel, a forty-second session:
/// docs/performance.md, "An Ice Lake guest") the engine was slower at stride 2 (0.6–0.9× on
/// `resnet18`'s three and the WideResNet teacher's two), on `madry-cnn`'s conv2 (1,600 terms,
/// 0.7×) and 256 → 256 at 8 × 8 (0.65×), faster on `small-cnn`'s conv3 and conv4 (576 terms,
/// 1.3–1.7×): so on Intel's CPUs ([`Vendor`]) stride 1 up to 1,152 terms. (A 64 → 64 5 × 5 at
/// 8 × 8, 1,600 terms and in no model of the zoo, was 1.2× faster on the engine there, and
/// leaves it with `madry-cnn`'s conv2.)
pub fn chosen_for_input_grad(isa: Isa, g: &super::geometry::ConvGeometry) -> bool {
    match isa {
        Isa::Avx512 if Vendor::detected() == Vendor::Amd => true,
        Isa::Avx512 => g.stride == [1, 1] && g.out_channels * g.taps() <= 1152,
        Isa::Avx2 => g.stride == [1, 1] && g.out_channels * g.taps() <= 1600,
        Isa::Portable => g.stride == [1, 1],
    }
}

/// The input gradient of one image, planned: packed weights and where the terms lie in the
/// output gradient (in place, or in the padded planes of [`input_grad`](mod@super::input_grad)
/// for a stride-1 plan and each phase of a strided one), or, for a forward pass, in the
/// turned input's padded planes (channel_forward.rs).
#[derive(Debug, Clone)]
pub struct ChannelGrad {
    in_channels: usize,
    out_channels: usize,
    in_h: usize,
    in_w: usize,
    out_h: usize,
    out_w: usize,
    /// Whether the tiles read the output gradient itself (`[channel][out_h][out_w]`) rather
    /// than padded planes: see [`ChannelGrad::new`].
    in_place: bool,
    plane_len: usize,
    row_stride: usize,
    /// Input channels padded to whole vectors.
    channel_stride: usize,
    /// The step between the source positions of neighbouring results: 1 for input gradients
    /// (and stride-1 forward passes), the stride for a strided forward pass
    /// ([`ChannelGrad::stepped`]), whose input positions lie that far apart.
    step: usize,
    /// The tiles' work: the whole input, or one part per phase of a strided input gradient
    /// ([`ChannelGrad::phased`]).
    parts: Vec<Part>,
    /// `[channel_stride]`: each input channel's starting value (zero, or a bias where the
    /// engine runs a forward pass: channel_forward.rs).
    init: Vec<f32>,
    isa: Isa,
}

/// One kernel's results over a grid of input positions: the whole input, or one phase of a
/// strided input gradient, whose positions lie `spacing` apart and whose kernel is the taps of
/// that phase.
#[derive(Debug, Clone)]
struct Part {
    kernel_h: usize,
    kernel_w: usize,
    /// The grid's rows and columns; grid position (i, j) is input position
    /// `(spacing·i + first.0, spacing·j + first.1)`.
    grid: (usize, usize),
    spacing: usize,
    first: (usize, usize),
    /// The output-gradient row that grid row 0 and kernel row 0 read (with the stride-1
    /// convolution's geometry, its top padding), the column likewise.
    pad_top: usize,
    pad_left: usize,
    /// The same, in the source (in padded planes their padding added).
    row_origin: usize,
    column_origin: usize,
    /// `[co][kh][kw][channel_stride]`, the padding channels zero.
    packed: Vec<f32>,
}

impl ChannelGrad {
    /// `weight` is OIHW `[out][in][kernel_h][kernel_w]`; `padded` is the layout of the padded
    /// planes (each output gradient channel padded on top by `kernel_h − 1` and on the left by
    /// `kernel_w − 1`, in rows of `row_stride` floats, `plane_len` floats per channel) that the
    /// tiles read where they would read the gradient's zero padding.
    ///
    /// With a 3-wide kernel no tile reads it (the kernel rows and, by [`Edges`], the columns
    /// that would are left out or read as a zero) unless a row is one tile of two vectors with
    /// uneven edges, so the tiles read the output gradient in place ([`ChannelGrad::in_place`])
    /// and the copy into padded planes is saved (a tenth of `micro-cnn`'s conv2 input gradient
    /// with the AVX2 kernels: docs/performance.md).
    pub fn new(
        isa: Isa,
        g: &super::geometry::ConvGeometry,
        weight: &[f32],
        padded: super::planes::PlaneLayout,
    ) -> ChannelGrad {
        let taps = g.taps();
        ChannelGrad::with_weights(
            isa,
            g,
            |co, ci, t| weight[(co * g.in_channels + ci) * taps + t],
            padded,
        )
    }

    /// [`ChannelGrad::new`] with the weight of output channel `co`, input channel `ci`, kernel
    /// position `t` (row-major) given by `weight(co, ci, t)`.
    pub fn with_weights(
        isa: Isa,
        g: &super::geometry::ConvGeometry,
        weight: impl Fn(usize, usize, usize) -> f32,
        padded: super::planes::PlaneLayout,
    ) -> ChannelGrad {
        assert!(g.groups == 1 && g.stride == [1, 1], "stride 1, one group");
        let lanes = isa.lanes();
        let (channel_stride, packed) =
            pack_weights(isa, g.out_channels, g.in_channels, g.taps(), weight);
        // One-vector tiles of a 3-wide kernel read any edge as a zero; two-vector tiles leave
        // out the edges they are compiled for (those of symmetric paddings, and of uneven ones
        // on rows of several tiles; not (2, 1) or (1, 2), which only rows of one tile have).
        let two_vector_tiles = channel_stride >= 2 * lanes;
        let in_place = g.kernel_w == 3
            && (!two_vector_tiles
                || row_tiles(g.in_w, widest_tile(lanes)).all(|(j0, m)| {
                    three_wide_tile_compiled(edges(g.kernel_w, g.pad_w.0, g.out_w, j0, m))
                }));
        let (plane_len, row_stride, row_origin, column_origin) = if in_place {
            (g.out_h * g.out_w, g.out_w, g.pad_h.0, g.pad_w.0)
        } else {
            (
                padded.plane_len(),
                padded.row_stride,
                g.kernel_h - 1 + g.pad_h.0,
                g.kernel_w - 1 + g.pad_w.0,
            )
        };
        let whole = Part {
            kernel_h: g.kernel_h,
            kernel_w: g.kernel_w,
            grid: (g.in_h, g.in_w),
            spacing: 1,
            first: (0, 0),
            pad_top: g.pad_h.0,
            pad_left: g.pad_w.0,
            row_origin,
            column_origin,
            packed,
        };
        Self::gradient(isa, g, (in_place, plane_len, row_stride), vec![whole])
    }

    /// An input gradient's plan of `parts` reading the gradient (in place, plane length, row
    /// stride).
    fn gradient(
        isa: Isa,
        g: &super::geometry::ConvGeometry,
        (in_place, plane_len, row_stride): (bool, usize, usize),
        parts: Vec<Part>,
    ) -> ChannelGrad {
        Self::with_parts(
            isa,
            [g.in_channels, g.out_channels],
            [(g.in_h, g.in_w), (g.out_h, g.out_w)],
            (in_place, plane_len, row_stride),
            1,
            parts,
        )
    }

    /// A plan of `parts` in the engine's terms: `[result, summed]` channels, `[result, source]`
    /// sizes (rows, columns), where the tiles read (in place, plane length, row stride), and
    /// the `step` between neighbouring results' source positions; starting values zero.
    fn with_parts(
        isa: Isa,
        [results, summed]: [usize; 2],
        [(in_h, in_w), (out_h, out_w)]: [(usize, usize); 2],
        (in_place, plane_len, row_stride): (bool, usize, usize),
        step: usize,
        parts: Vec<Part>,
    ) -> ChannelGrad {
        let channel_stride = results.next_multiple_of(isa.lanes());
        ChannelGrad {
            in_channels: results,
            out_channels: summed,
            in_h,
            in_w,
            out_h,
            out_w,
            in_place,
            plane_len,
            row_stride,
            channel_stride,
            step,
            parts,
            init: vec![0.0; channel_stride],
            isa,
        }
    }

    /// The input gradient of a strided, ungrouped convolution `g`, by phases (as the position
    /// engine splits it: input_grad.rs): phase (a, b), the input positions `(s_h·i + a −
    /// pad_top, s_w·j + b − pad_left)`, sums the kernel taps `(s_h·q + a, s_w·q_w + b)`, in
    /// order, over output rows `i − q` and columns `j − q_w`, a stride-1 input gradient with
    /// that sub-kernel whose results lie `s` apart. `planes` is the padded output gradient
    /// the position engine reads ([`gradient_planes`](super::input_grad::gradient_planes)),
    /// whose top and left padding, `⌈k / s⌉ − 1`, covers every phase's sub-kernel.
    ///
    /// Every input position is in one phase with at least one tap where the kernel is at least
    /// as large as the stride (the caller's condition: [`runs`]).
    pub(crate) fn phased(
        isa: Isa,
        g: &super::geometry::ConvGeometry,
        weight: &[f32],
        planes: &super::planes::PlaneSpec,
        [axes_h, axes_w]: [&[super::input_grad::PhaseAxis]; 2],
    ) -> ChannelGrad {
        let [s_h, s_w] = g.stride;
        assert!(
            g.groups == 1 && s_h == s_w,
            "one group, the same stride on both axes"
        );
        let taps = g.taps();
        let mut parts = Vec::new();
        for rows in axes_h.iter().filter(|a| a.len() > 0) {
            for cols in axes_w.iter().filter(|a| a.len() > 0) {
                let (q_h, q_w) = (
                    rows.taps(s_h, g.kernel_h).len(),
                    cols.taps(s_w, g.kernel_w).len(),
                );
                let (_, packed) = pack_weights(
                    isa,
                    g.out_channels,
                    g.in_channels,
                    q_h * q_w,
                    |co, ci, t| {
                        let (kh, kw) = (s_h * (t / q_w) + rows.phase, s_w * (t % q_w) + cols.phase);
                        weight[(co * g.in_channels + ci) * taps + kh * g.kernel_w + kw]
                    },
                );
                parts.push(Part {
                    kernel_h: q_h,
                    kernel_w: q_w,
                    grid: (rows.len(), cols.len()),
                    spacing: s_h,
                    first: (
                        s_h * rows.first + rows.phase - g.pad_h.0,
                        s_w * cols.first + cols.phase - g.pad_w.0,
                    ),
                    pad_top: rows.first,
                    pad_left: cols.first,
                    row_origin: planes.top + rows.first,
                    column_origin: planes.left + cols.first,
                    packed,
                });
            }
        }
        let layout = planes.layout;
        Self::gradient(
            isa,
            g,
            (false, layout.plane_len(), layout.row_stride),
            parts,
        )
    }

    /// The plan of a forward pass of stride `step` (channel_forward.rs), in the engine's
    /// terms: `results` channels on a `grid` (rows, columns) summed over `summed` channels of
    /// a `source` (rows, columns) with a `kernel` (rows, columns), result (i, j) reading source
    /// row `step·i + origin.0 − kh` and column `step·j + origin.1 − kw` (the terms on rows
    /// outside the source left out), from planes of layout `padded`, each padded on top and
    /// left by the kernel's size − 1 and on the right by at least the columns the tiles read
    /// there. `weight(summed channel, result channel, tap)`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn stepped(
        isa: Isa,
        step: usize,
        [results, summed]: [usize; 2],
        grid: (usize, usize),
        source: (usize, usize),
        kernel: (usize, usize),
        origin: (usize, usize),
        weight: impl Fn(usize, usize, usize) -> f32,
        padded: super::planes::PlaneLayout,
    ) -> ChannelGrad {
        let (_, packed) = pack_weights(isa, summed, results, kernel.0 * kernel.1, weight);
        let whole = Part {
            kernel_h: kernel.0,
            kernel_w: kernel.1,
            grid,
            spacing: 1,
            first: (0, 0),
            pad_top: origin.0,
            pad_left: origin.1,
            row_origin: kernel.0 - 1 + origin.0,
            column_origin: kernel.1 - 1 + origin.1,
            packed,
        };
        Self::with_parts(
            isa,
            [results, summed],
            [grid, source],
            (false, padded.plane_len(), padded.row_stride),
            step,
            vec![whole],
        )
    }

    /// The plan with each input channel's sum starting from `init` (one value per channel)
    /// rather than zero.
    pub fn with_init(mut self, init: &[f32]) -> ChannelGrad {
        assert_eq!(
            init.len(),
            self.in_channels,
            "one starting value per channel"
        );
        self.init[..init.len()].copy_from_slice(init);
        self
    }

    /// Whether [`ChannelGrad::run`] reads the output gradient itself, not padded planes.
    pub fn in_place(&self) -> bool {
        self.in_place
    }

    /// Floats of the transposed result of one image (the scratch [`ChannelGrad::run`] needs).
    pub fn buffer_len(&self) -> usize {
        self.in_h * self.in_w * self.channel_stride
    }

    /// Floats the source must hold.
    pub fn source_extent(&self) -> usize {
        self.out_channels * self.plane_len
    }

    /// One image: `source` is its output gradient ([`ChannelGrad::in_place`]) or its padded
    /// planes, `out` its NCHW input gradient, every element written.
    ///
    /// The tiles read only inside `source`: a tile's rows are its [`Part::kernel_rows`],
    /// inside the gradient; in place, its columns are those inside the gradient (by its
    /// [`Edges`]: [`ThreeWide`] leaves the others out, [`ThreeBySource`] reads a local zero
    /// for them; the plan is in place only where every tile is one of the two, and the
    /// `EveryTerm` arm asserts it); in padded planes, within each row's padding.
    pub fn run(&self, source: &[f32], buffer: &mut [f32], out: &mut [MaybeUninit<f32>]) {
        assert!(source.len() >= self.source_extent(), "source too short");
        assert!(buffer.len() >= self.buffer_len(), "buffer too short");
        let positions = self.in_h * self.in_w;
        assert!(
            out.len() >= self.in_channels * positions,
            "output too short"
        );
        // SAFETY: lengths checked above (the reads: see the doc above); the plan's ISA is
        // available on this CPU.
        unsafe {
            run_on(self.isa, self, (source.as_ptr(), buffer.as_mut_ptr()));
            run_on(
                self.isa,
                &ToChannelPlanes(self),
                (buffer.as_ptr(), out.as_mut_ptr().cast::<f32>()),
            );
        }
    }
}

impl Part {
    /// The [`Edges`] of the tile of `m` positions from grid column `j0` (see [`edges`]), on
    /// an output gradient `out_w` wide.
    fn edges(&self, out_w: usize, j0: usize, m: usize) -> Edges {
        edges(self.kernel_w, self.pad_left, out_w, j0, m)
    }

    /// The kernel rows whose terms read real output-gradient rows (`out_h` of them) for grid
    /// row `i`, whose source rows lie `step` apart.
    fn kernel_rows(&self, step: usize, out_h: usize, i: usize) -> std::ops::Range<usize> {
        // Kernel row kh reads output row step·i + pad_top − kh, which must be in 0..out_h.
        let reach = step * i + self.pad_top;
        let first = reach.saturating_sub(out_h - 1);
        let end = (reach + 1).min(self.kernel_h);
        first..end.max(first)
    }
}

impl SimdKernel<(*const f32, *mut f32)> for ChannelGrad {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, (source, buffer): (*const f32, *mut f32)) {
        unsafe { run_generic::<S>(self, source, buffer) }
    }
}

/// The weights packed for the tiles, `[summed][tap][channel_stride]` with the result channels
/// padded to whole vectors (`channel_stride`, returned first) by zeros; `weight(summed
/// channel, result channel, tap)`.
fn pack_weights(
    isa: Isa,
    summed: usize,
    results: usize,
    taps: usize,
    weight: impl Fn(usize, usize, usize) -> f32,
) -> (usize, Vec<f32>) {
    let channel_stride = results.next_multiple_of(isa.lanes());
    let mut packed = vec![0.0; summed * taps * channel_stride];
    // Blocks of 16 result channels: the writes run over 16 consecutive floats of a row, and a
    // `weight` that reads `[ci][co]` (channel_forward.rs) reads 16 rows in order.
    for block in (0..results).step_by(16) {
        let channels = block..results.min(block + 16);
        for co in 0..summed {
            for t in 0..taps {
                let row = &mut packed[(co * taps + t) * channel_stride..];
                for ci in channels.clone() {
                    row[ci] = weight(co, ci, t);
                }
            }
        }
    }
    (channel_stride, packed)
}

/// How many kernel columns of a tile's first position read the output gradient's left zero
/// padding, and of its last position the right padding (the tile of `m` positions from column
/// `j0`, with a `kernel_w`-wide kernel, the convolution padded by `pad_left` on the left, a
/// gradient `out_w` wide).
fn edges(kernel_w: usize, pad_left: usize, out_w: usize, j0: usize, m: usize) -> Edges {
    // Position j, kernel column kw reads gradient column j + pad_left − kw, which must be in
    // 0..out_w.
    let e = j0 + pad_left;
    Edges {
        left: (kernel_w - 1).saturating_sub(e),
        right: (e + m).saturating_sub(out_w),
    }
}

/// The tiles `(first position, positions)` of a row `in_w` wide with at most `most` positions
/// each, as even as possible: 26 positions by 6 → 6, 5, 5, 5, 5.
fn row_tiles(in_w: usize, most: usize) -> impl Iterator<Item = (usize, usize)> {
    let tiles = in_w.div_ceil(most);
    (0..tiles).scan(0, move |j0, t| {
        let m = in_w / tiles + usize::from(t < in_w % tiles);
        let tile = (*j0, m);
        *j0 += m;
        Some(tile)
    })
}

/// Register tiles: up to `N` = 2 vectors of channels × the most positions whose accumulators
/// fit beside the two loaded weight vectors and a broadcast (12 with AVX-512's 32 registers,
/// 6 with AVX2's 16); one vector when only one is left, with twice the positions.
#[inline(always)]
unsafe fn run_generic<S: Simd>(c: &ChannelGrad, source: *const f32, buffer: *mut f32) {
    let vectors = c.channel_stride / S::LANES;
    let wide = widest_tile(S::LANES);
    let mut v0 = 0;
    while v0 < vectors {
        let n = 2.min(vectors - v0);
        let most = if n == 2 { wide } else { 12 };
        for part in &c.parts {
            for i in 0..part.grid.0 {
                let rows = part.kernel_rows(c.step, c.out_h, i);
                let in_row = part.spacing * i + part.first.0;
                for (j0, m) in row_tiles(part.grid.1, most) {
                    let position = in_row * c.in_w + part.spacing * j0 + part.first.1;
                    let tile = ChannelTile {
                        plan: c,
                        part,
                        // May point outside the source (in place, at the edges): only the
                        // values the tile reads are inside.
                        source: source.wrapping_add(j0 * c.step + part.column_origin),
                        row: i,
                        kernel_rows: rows.clone(),
                        weights: unsafe { part.packed.as_ptr().add(v0 * S::LANES) },
                        init: unsafe { c.init.as_ptr().add(v0 * S::LANES) },
                        out: unsafe { buffer.add(position * c.channel_stride + v0 * S::LANES) },
                        edges: part.edges(c.out_w, j0, m),
                    };
                    unsafe { tile.run::<S>(m, n) };
                }
            }
        }
        v0 += n;
    }
}

/// A tile's reach into the output gradient's left and right zero padding (see [`edges`]): its
/// position m, kernel column kw reads the left padding where `kw + left ≥ K + m`, the right
/// where `m + right ≥ M + kw`.
#[derive(Clone, Copy)]
struct Edges {
    left: usize,
    right: usize,
}

struct ChannelTile<'a> {
    plan: &'a ChannelGrad,
    part: &'a Part,
    /// The source at the tile's first position, kernel column 0, row 0 of channel 0 (a
    /// position that may lie outside it).
    source: *const f32,
    row: usize,
    kernel_rows: std::ops::Range<usize>,
    /// The packed weights at the tile's first channel.
    weights: *const f32,
    /// The starting values at the tile's first channel.
    init: *const f32,
    out: *mut f32,
    edges: Edges,
}

/// `$self.kernel::<$S, M, N, $T>()` for the tile of `$m` positions × `$n` vectors of
/// channels, among those listed.
macro_rules! dispatch_channel_tile {
    ($self:ident, $S:ty, $T:ty, $m:expr, $n:expr;
        $($vectors:literal => [$($positions:literal),*]),*) => {
        match ($m, $n) {
            $($(($positions, $vectors) => unsafe {
                $self.kernel::<$S, $positions, $vectors, $T>()
            },)*)*
            (m, n) => unreachable!("no {m}×{n} channel tile"),
        }
    };
}

impl ChannelTile<'_> {
    /// A 3-wide kernel (the zoo's) takes a tile that leaves out, at compile time, the terms
    /// that read the gradient's left and right zero padding: a sixth of conv3's, a fifth of
    /// conv4's on small-cnn. (A branch per term instead made every layer slower:
    /// docs/performance.md.) Compiled for two vectors of channels and the edges of
    /// [`with_three_wide_edges`]; the other edges ((2, 1) and (1, 2), rows of one tile with
    /// uneven padding) and other kernels take every term, from padded planes (each edge's
    /// tiles cost compile time).
    ///
    /// A one-vector tile of a 3-wide kernel reads each value once ([`ThreeBySource`]), the
    /// padding as a zero: every term, as [`EveryTerm`] adds them.
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, m: usize, n: usize) {
        if self.plan.step == 2 {
            // A strided forward pass (channel_forward.rs), from padded planes.
            assert!(!self.plan.in_place, "a tile that reads padding, in place");
            return dispatch_channel_tile!(self, S, EveryTerm<2>, m, n;
                1 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                2 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        }
        debug_assert_eq!(self.plan.step, 1);
        macro_rules! edge_tiles {
            ($(($l:literal, $r:literal)),*) => {
                match (self.part.kernel_w, n, self.edges.left, self.edges.right) {
                    $((3, 2, $l, $r) => dispatch_channel_tile!(self, S, ThreeWide<$l, $r>, m, 2;
                        2 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),)*
                    (3, 1, _, _) => dispatch_channel_tile!(self, S, ThreeBySource, m, 1;
                        1 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
                    _ => {
                        assert!(!self.plan.in_place, "a tile that reads padding, in place");
                        dispatch_channel_tile!(self, S, EveryTerm<1>, m, n;
                            1 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                            2 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
                    }
                }
            };
        }
        with_three_wide_edges!(edge_tiles)
    }

    /// `M` positions × `N` vectors of channels, summed over (co, kh, kw) in order, each
    /// kernel row's terms added by `T`.
    #[inline(always)]
    unsafe fn kernel<S: Simd, const M: usize, const N: usize, T: RowTerms>(&self) {
        let (c, part) = (self.plan, self.part);
        let cs = c.channel_stride;
        let (kernel_h, kernel_w) = (part.kernel_h, part.kernel_w);
        unsafe {
            let start: [S::V; N] = std::array::from_fn(|n| S::load(self.init.add(n * S::LANES)));
            let mut acc = [start; M];
            for co in 0..c.out_channels {
                let plane = self.source.wrapping_add(co * c.plane_len);
                for kh in self.kernel_rows.clone() {
                    // Source row of grid row i, kernel row kh: step·i + row_origin − kh.
                    let row = plane
                        .wrapping_add((c.step * self.row + part.row_origin - kh) * c.row_stride);
                    let weights = self.weights.add((co * kernel_h + kh) * kernel_w * cs);
                    T::add::<S, M, N>(&mut acc, row, weights, kernel_w, cs, self.edges);
                }
            }
            // Grid positions lie `spacing` input positions apart.
            let out_step = part.spacing * cs;
            for (m, row_acc) in acc.iter().enumerate() {
                for (n, a) in row_acc.iter().enumerate() {
                    S::store(self.out.add(m * out_step + n * S::LANES), *a);
                }
            }
        }
    }
}

/// How a tile adds one kernel row's terms (`row` the source at the tile's first position and
/// kernel column 0, `weights` that row's packed weights, `kernel_w` of them `cs` floats apart,
/// `edges` the tile's).
trait RowTerms {
    unsafe fn add<S: Simd, const M: usize, const N: usize>(
        acc: &mut [[S::V; N]; M],
        row: *const f32,
        weights: *const f32,
        kernel_w: usize,
        cs: usize,
        edges: Edges,
    );
}

/// Every term, the kernel's columns in a loop; the tile's positions `STEP` source columns
/// apart.
struct EveryTerm<const STEP: usize>;

impl<const STEP: usize> RowTerms for EveryTerm<STEP> {
    #[inline(always)]
    unsafe fn add<S: Simd, const M: usize, const N: usize>(
        acc: &mut [[S::V; N]; M],
        row: *const f32,
        weights: *const f32,
        kernel_w: usize,
        cs: usize,
        _: Edges,
    ) {
        for kw in 0..kernel_w {
            // SAFETY: the tile's reads (see `ChannelGrad::run`).
            unsafe {
                add_column::<S, M, N, STEP>(acc, row.wrapping_sub(kw), weights.add(kw * cs), 0, M)
            };
        }
    }
}

/// A 3-wide kernel's columns unrolled, without the terms of the edges `L` and `R` (see
/// [`Edges`]): in column kw, positions `kw + L − 2 ..` (left) and `.. M + kw − R` (right) read
/// the gradient, bounds the compiler folds. Each term left out would add `w · (+0)` to its
/// sum, which leaves its value unchanged (see the module's note on an underflow to −0).
struct ThreeWide<const L: usize, const R: usize>;

impl<const L: usize, const R: usize> ThreeWide<L, R> {
    /// The positions `first..end` of a tile of `M` whose kernel column `kw` reads the
    /// gradient, not its padding.
    #[inline(always)]
    fn reach<const M: usize>(kw: usize) -> (usize, usize) {
        (
            (kw + L).saturating_sub(2),
            M.min((M + kw).saturating_sub(R)),
        )
    }
}

impl<const L: usize, const R: usize> RowTerms for ThreeWide<L, R> {
    #[inline(always)]
    unsafe fn add<S: Simd, const M: usize, const N: usize>(
        acc: &mut [[S::V; N]; M],
        row: *const f32,
        weights: *const f32,
        _: usize,
        cs: usize,
        _: Edges,
    ) {
        // Written out, not a loop: each column's positions must be constants to the compiler.
        // SAFETY: the tile's reads (see `ChannelGrad::run`).
        unsafe {
            let (first_0, end_0) = Self::reach::<M>(0);
            let (first_1, end_1) = Self::reach::<M>(1);
            let (first_2, end_2) = Self::reach::<M>(2);
            add_column::<S, M, N, 1>(acc, row, weights, first_0, end_0);
            column_fence::<S, M>();
            add_column::<S, M, N, 1>(acc, row.wrapping_sub(1), weights.add(cs), first_1, end_1);
            column_fence::<S, M>();
            add_column::<S, M, N, 1>(
                acc,
                row.wrapping_sub(2),
                weights.add(2 * cs),
                first_2,
                end_2,
            );
        }
    }
}

/// A 3-wide kernel's row by gradient value: each value is broadcast once and added to the (up
/// to) three positions that read it, with the row's three columns of weights held in
/// registers (a third of the loads of a broadcast per term). Values are taken right to left,
/// so each position still adds its columns in order 0, 1, 2, and a value on the gradient's
/// padding (by `edges`) is read as +0: the same terms, in the same order, as [`EveryTerm`].
/// For one vector of channels (three weight vectors and a broadcast beside `M` accumulators).
struct ThreeBySource;

impl RowTerms for ThreeBySource {
    #[inline(always)]
    unsafe fn add<S: Simd, const M: usize, const N: usize>(
        acc: &mut [[S::V; N]; M],
        row: *const f32,
        weights: *const f32,
        _: usize,
        cs: usize,
        edges: Edges,
    ) {
        let zero = 0.0f32;
        // Value v (0 ..= M + 1), at `row + v − 2`, is the value that position v − 2 + kw reads
        // in column kw. Those below `edges.left` or from `M + 2 − edges.right` on are the
        // padding (at most two at each end, so only the first two and last two are checked).
        let (first, end) = (edges.left, M + 2 - edges.right);
        // SAFETY: the tile's reads (see `ChannelGrad::run`): the values inside the edges.
        unsafe {
            let mut w = [[S::splat(0.0); N]; 3];
            for (kw, wk) in w.iter_mut().enumerate() {
                for (n, v) in wk.iter_mut().enumerate() {
                    *v = S::load(weights.add(kw * cs + n * S::LANES));
                }
            }
            for v in (0..M + 2).rev() {
                let inside = (v >= 2 || v >= first) && (v < M || v < end);
                let at = if inside {
                    row.wrapping_add(v).wrapping_sub(2)
                } else {
                    &zero
                };
                let x = S::splat(*at);
                for (kw, wk) in w.iter().enumerate() {
                    let Some(m) = (v + kw).checked_sub(2).filter(|&m| m < M) else {
                        continue;
                    };
                    for (a, w) in acc[m].iter_mut().zip(wk) {
                        *a = S::fma(x, *w, *a);
                    }
                }
            }
        }
    }
}

/// Keeps the compiler from loading a kernel column's weights and gradient values before the
/// column before it is added, in the tiles that hold the most positions: there the
/// accumulators take nearly every register, and with the columns unrolled the loads moved
/// ahead spilled them (AVX2 `small-cnn` conv2 input gradient 8.1 → 10.6 ms; AVX-512 conv3
/// took no gain from its sixth fewer terms until fenced; docs/performance.md). Narrower tiles
/// went faster without it.
#[inline(always)]
fn column_fence<S: Simd, const M: usize>() {
    if M + 2 > widest_tile(S::LANES) {
        compiler_fence(Ordering::SeqCst);
    }
}

/// The most positions of a tile of two vectors of channels: its accumulators, the two loaded
/// weight vectors and a broadcast fill the registers (32 on AVX-512, 16 on AVX2).
#[inline(always)]
fn widest_tile(lanes: usize) -> usize {
    if lanes == 16 { 12 } else { 6 }
}

/// `$then!` on the edges `(left, right)` whose two-vector tiles of a 3-wide kernel are
/// compiled ([`ChannelTile::run`]): those of the symmetric paddings 0–2 and of uneven ones on
/// rows of several tiles. One list for the tiles and for [`three_wide_tile_compiled`].
macro_rules! with_three_wide_edges {
    ($then:ident) => {
        $then!((0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (0, 2), (2, 2))
    };
}
use with_three_wide_edges;

/// Whether two-vector tiles of a 3-wide kernel with these edges are compiled to leave out
/// the terms on the padding; the others read it.
fn three_wide_tile_compiled(edges: Edges) -> bool {
    macro_rules! listed {
        ($(($l:literal, $r:literal)),*) => {
            matches!((edges.left, edges.right), $(($l, $r))|*)
        };
    }
    with_three_wide_edges!(listed)
}

/// One kernel column's terms into positions `first..end` of the tile: `x` the source at the
/// tile's first position for that column, position m's value `STEP · m` further on, `w_at`
/// the column's packed weights.
#[inline(always)]
unsafe fn add_column<S: Simd, const M: usize, const N: usize, const STEP: usize>(
    acc: &mut [[S::V; N]; M],
    x: *const f32,
    w_at: *const f32,
    first: usize,
    end: usize,
) {
    // SAFETY: the caller's: N vectors of weights at `w_at`, a value at `x + STEP · m` for every
    // m in `first..end`.
    unsafe {
        let mut w = [S::splat(0.0); N];
        for (n, v) in w.iter_mut().enumerate() {
            *v = S::load(w_at.add(n * S::LANES));
        }
        for (m, row_acc) in acc.iter_mut().enumerate() {
            if m < first || m >= end {
                continue;
            }
            let x = S::splat(*x.wrapping_add(STEP * m));
            for (a, w) in row_acc.iter_mut().zip(w) {
                *a = S::fma(x, w, *a);
            }
        }
    }
}

/// The result of [`ChannelGrad::run`]'s tiles, `[position][channel_stride]`, into NCHW
/// `[channel][position]`, in blocks of `LANES` positions × `LANES` channels: a whole vector
/// loaded per position, transposed in registers ([`Simd::transpose`]), a whole vector stored
/// per channel (the last block of positions only its valid lanes).
struct ToChannelPlanes<'a>(&'a ChannelGrad);

impl SimdKernel<(*const f32, *mut f32)> for ToChannelPlanes<'_> {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, (buffer, out): (*const f32, *mut f32)) {
        let c = self.0;
        let lanes = S::LANES;
        let positions = c.in_h * c.in_w;
        for p0 in (0..positions).step_by(lanes) {
            let n = lanes.min(positions - p0);
            for c0 in (0..c.in_channels).step_by(lanes) {
                let mut block = [unsafe { S::splat(0.0) }; 16];
                for (i, v) in block.iter_mut().enumerate().take(n) {
                    // SAFETY: c0 + LANES ≤ channel_stride (a multiple of the vector), and the
                    // buffer holds every position.
                    *v = unsafe { S::load(buffer.add((p0 + i) * c.channel_stride + c0)) };
                }
                unsafe { S::transpose(&mut block) };
                for (channel, v) in block.iter().enumerate().take(lanes.min(c.in_channels - c0)) {
                    // SAFETY: `run` checked that `out` holds in_channels × positions.
                    let plane = unsafe { out.add((c0 + channel) * positions + p0) };
                    unsafe { S::store_part(plane, *v, 0, n) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ChannelGrad, Isa};
    use crate::geometry::ConvGeometry;
    use crate::planes::PlaneLayout;

    /// Whether the plan of `c_in → 16` channels, a `k`-wide kernel padded by `pad` (left,
    /// right) on a 14 × `width` input reads the gradient in place.
    fn in_place(isa: Isa, c_in: usize, k: usize, pad: (usize, usize), width: usize) -> bool {
        let g = ConvGeometry::new(
            [1, c_in, 14, width],
            [16, c_in, k, k],
            [1, 1],
            [(1, 1), pad],
            [1, 1],
            1,
        )
        .unwrap();
        let weight = vec![0.5; g.weight_len()];
        // The padded planes' layout (these tests only plan, they do not run).
        let padded = PlaneLayout {
            planes: 16,
            rows: 20,
            row_stride: 20,
        };
        ChannelGrad::new(isa, &g, &weight, padded).in_place()
    }

    #[test]
    fn three_wide_kernels_read_the_gradient_in_place() {
        // The results are checked against the position engine in tests/conv_kernels.rs, for
        // every padding of a 3-wide kernel; here, which layout those tests went through.
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
            let lanes = isa.lanes();
            // One vector of channels (micro-cnn's conv2 on AVX2) reads any edge as a zero.
            assert!(in_place(isa, lanes, 3, (1, 1), 14));
            assert!(in_place(isa, lanes, 3, (0, 1), 5));
            // Two vectors: the edges of symmetric paddings are compiled, and those of uneven
            // ones on rows of several tiles; on a row of one tile (5 wide) not all are.
            for pad in 0..3 {
                assert!(in_place(isa, 2 * lanes, 3, (pad, pad), 14), "{pad}");
                assert!(in_place(isa, 2 * lanes, 3, (pad, pad), 5), "{pad}");
            }
            assert!(in_place(isa, 2 * lanes, 3, (0, 1), 14));
            assert!(!in_place(isa, 2 * lanes, 3, (0, 1), 5));
            // Other kernels read the padding.
            assert!(!in_place(isa, lanes, 5, (2, 2), 14));
        }
    }
}
