//! A third engine, for the input gradient of stride-1 ungrouped convolutions with many input
//! channels (small-cnn's conv2–conv4): vectors run over *input channels*, and each tile skips
//! the kernel rows that fall on the output gradient's zero padding.
//!
//! The position engine ([`super::correlate`]) computes the "full" correlation of the padded
//! output gradient: on a 12×12 input from a 10×10 output a third of its terms read padding,
//! and rows of the extended grid carry columns that are never stored. Here a tile is `M`
//! positions of one input row × `N` vectors of input channels: every term of a kernel row
//! that reads outside the output gradient is the same for the whole tile, so it is left out.
//! With a 3-wide kernel the terms that read the padding at the left and right edges are left
//! out too, by tiles compiled for each edge ([`Edges`]); with other kernels they stay (their
//! source is +0).
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

use super::simd::{Isa, Simd, SimdKernel, run_on};
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

/// The input gradient of one image, planned: packed weights and where the terms lie in the
/// padded output gradient (the planes of [`super::input_grad`]'s stride-1 phase).
#[derive(Debug, Clone)]
pub struct ChannelGrad {
    in_channels: usize,
    out_channels: usize,
    kernel_h: usize,
    kernel_w: usize,
    in_h: usize,
    in_w: usize,
    out_h: usize,
    out_w: usize,
    /// The convolution's top and left padding.
    pad_top: usize,
    pad_left: usize,
    plane_len: usize,
    row_stride: usize,
    /// Source row of input row 0 and kernel row 0 (its top padding plus the convolution's),
    /// source column of input column 0 and kernel column 0.
    row_origin: usize,
    column_origin: usize,
    /// Input channels padded to whole vectors.
    channel_stride: usize,
    /// `[co][kh][kw][channel_stride]`, the padding channels zero.
    packed: Vec<f32>,
    isa: Isa,
}

impl ChannelGrad {
    /// `weight` is OIHW `[out][in][kernel_h][kernel_w]`; the source planes hold each output
    /// gradient channel padded on top by `kernel_h − 1` and on the left by `kernel_w − 1`, in
    /// rows of `row_stride` floats, `plane_len` floats per channel.
    pub fn new(
        isa: Isa,
        g: &super::geometry::ConvGeometry,
        weight: &[f32],
        plane_len: usize,
        row_stride: usize,
    ) -> ChannelGrad {
        assert!(g.groups == 1 && g.stride == [1, 1], "stride 1, one group");
        let lanes = isa.lanes();
        let channel_stride = g.in_channels.next_multiple_of(lanes);
        let taps = g.taps();
        let mut packed = vec![0.0; g.out_channels * taps * channel_stride];
        for co in 0..g.out_channels {
            for ci in 0..g.in_channels {
                for t in 0..taps {
                    packed[(co * taps + t) * channel_stride + ci] =
                        weight[(co * g.in_channels + ci) * taps + t];
                }
            }
        }
        ChannelGrad {
            in_channels: g.in_channels,
            out_channels: g.out_channels,
            kernel_h: g.kernel_h,
            kernel_w: g.kernel_w,
            in_h: g.in_h,
            in_w: g.in_w,
            out_h: g.out_h,
            out_w: g.out_w,
            pad_top: g.pad_h.0,
            pad_left: g.pad_w.0,
            plane_len,
            row_stride,
            row_origin: g.kernel_h - 1 + g.pad_h.0,
            column_origin: g.kernel_w - 1 + g.pad_w.0,
            channel_stride,
            packed,
            isa,
        }
    }

    /// Floats of the transposed result of one image (the scratch [`ChannelGrad::run`] needs).
    pub fn buffer_len(&self) -> usize {
        self.in_h * self.in_w * self.channel_stride
    }

    /// Floats the source must hold.
    pub fn source_extent(&self) -> usize {
        self.out_channels * self.plane_len
    }

    /// One image: `source` is its padded output gradient, `out` its NCHW input gradient.
    pub fn run(&self, source: &[f32], buffer: &mut [f32], out: &mut [f32]) {
        assert!(source.len() >= self.source_extent(), "source too short");
        assert!(buffer.len() >= self.buffer_len(), "buffer too short");
        let positions = self.in_h * self.in_w;
        assert!(
            out.len() >= self.in_channels * positions,
            "output too short"
        );
        // SAFETY: lengths checked above; the plan's ISA is available on this CPU.
        unsafe {
            run_on(self.isa, self, (source.as_ptr(), buffer.as_mut_ptr()));
            run_on(
                self.isa,
                &ToChannelPlanes(self),
                (buffer.as_ptr(), out.as_mut_ptr()),
            );
        }
    }

    /// How many kernel columns of a tile's first position read the output gradient's left
    /// zero padding, and of its last position the right padding (the tile of `m` positions
    /// from column `j0`).
    fn edges(&self, j0: usize, m: usize) -> Edges {
        // Position j, kernel column kw reads gradient column j + pad_left − kw, which must be
        // in 0..out_w.
        let e = j0 + self.pad_left;
        Edges {
            left: (self.kernel_w - 1).saturating_sub(e),
            right: (e + m).saturating_sub(self.out_w),
        }
    }

    /// The kernel rows whose terms read real output-gradient rows for input row `i`.
    fn kernel_rows(&self, i: usize) -> std::ops::Range<usize> {
        // Kernel row kh reads output row i + pad_top − kh, which must be in 0..out_h.
        let first = (i + self.pad_top).saturating_sub(self.out_h - 1);
        let end = (i + self.pad_top + 1).min(self.kernel_h);
        first..end.max(first)
    }
}

impl SimdKernel<(*const f32, *mut f32)> for ChannelGrad {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, (source, buffer): (*const f32, *mut f32)) {
        unsafe { run_generic::<S>(self, source, buffer) }
    }
}

/// Register tiles: up to `N` = 2 vectors of channels × the most positions whose accumulators
/// fit beside the two loaded weight vectors and a broadcast (12 with AVX-512's 32 registers,
/// 6 with AVX2's 16); one vector when only one is left, with twice the positions.
#[inline(always)]
unsafe fn run_generic<S: Simd>(c: &ChannelGrad, source: *const f32, buffer: *mut f32) {
    let vectors = c.channel_stride / S::LANES;
    let wide = widest_tile::<S>();
    let mut v0 = 0;
    while v0 < vectors {
        let n = 2.min(vectors - v0);
        let most = if n == 2 { wide } else { 12 };
        // Tiles of a row as even as possible: 26 positions by 6 → 6, 5, 5, 5, 5.
        let tiles = c.in_w.div_ceil(most);
        for i in 0..c.in_h {
            let rows = c.kernel_rows(i);
            let mut j0 = 0;
            for t in 0..tiles {
                let m = c.in_w / tiles + usize::from(t < c.in_w % tiles);
                let tile = ChannelTile {
                    plan: c,
                    source: unsafe { source.add(j0 + c.column_origin) },
                    row: i,
                    kernel_rows: rows.clone(),
                    weights: unsafe { c.packed.as_ptr().add(v0 * S::LANES) },
                    out: unsafe {
                        buffer.add((i * c.in_w + j0) * c.channel_stride + v0 * S::LANES)
                    },
                };
                unsafe { tile.run::<S>(m, n, c.edges(j0, m)) };
                j0 += m;
            }
        }
        v0 += n;
    }
}

/// A tile's reach into the output gradient's left and right zero padding (see
/// [`ChannelGrad::edges`]): its position m, kernel column kw reads the left padding where
/// `kw + left ≥ K + m`, the right where `m + right ≥ M + kw`.
#[derive(Clone, Copy)]
struct Edges {
    left: usize,
    right: usize,
}

struct ChannelTile<'a> {
    plan: &'a ChannelGrad,
    /// The source at the tile's first position, kernel column 0, row 0 of channel 0.
    source: *const f32,
    row: usize,
    kernel_rows: std::ops::Range<usize>,
    /// The packed weights at the tile's first channel.
    weights: *const f32,
    out: *mut f32,
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
    /// docs/performance.md.) Compiled for two vectors of channels and the edges that
    /// symmetric padding gives; a one-vector remainder, other edges (uneven padding) and
    /// other kernels take every term (each edge's tiles cost compile time).
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, m: usize, n: usize, edges: Edges) {
        macro_rules! edge_tiles {
            ($(($l:literal, $r:literal)),*) => {
                match (self.plan.kernel_w, n, edges.left, edges.right) {
                    $((3, 2, $l, $r) => dispatch_channel_tile!(self, S, ThreeWide<$l, $r>, m, 2;
                        2 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),)*
                    _ => dispatch_channel_tile!(self, S, EveryTerm, m, n;
                        1 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                        2 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
                }
            };
        }
        edge_tiles!((0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (0, 2), (2, 2))
    }

    /// `M` positions × `N` vectors of channels, summed over (co, kh, kw) in order, each
    /// kernel row's terms added by `T`.
    #[inline(always)]
    unsafe fn kernel<S: Simd, const M: usize, const N: usize, T: RowTerms>(&self) {
        let c = self.plan;
        let cs = c.channel_stride;
        unsafe {
            let mut acc = [[S::splat(0.0); N]; M];
            for co in 0..c.out_channels {
                let plane = self.source.add(co * c.plane_len);
                for kh in self.kernel_rows.clone() {
                    // Source row of input row i, kernel row kh: i + row_origin − kh.
                    let row = plane.add((self.row + c.row_origin - kh) * c.row_stride);
                    let weights = self.weights.add((co * c.kernel_h + kh) * c.kernel_w * cs);
                    T::add::<S, M, N>(&mut acc, row, weights, c);
                }
            }
            for (m, row_acc) in acc.iter().enumerate() {
                for (n, a) in row_acc.iter().enumerate() {
                    S::store(self.out.add(m * cs + n * S::LANES), *a);
                }
            }
        }
    }
}

/// How a tile adds one kernel row's terms (`row` the source at the tile's first position and
/// kernel column 0, `weights` that row's packed weights).
trait RowTerms {
    unsafe fn add<S: Simd, const M: usize, const N: usize>(
        acc: &mut [[S::V; N]; M],
        row: *const f32,
        weights: *const f32,
        plan: &ChannelGrad,
    );
}

/// Every term, the kernel's columns in a loop.
struct EveryTerm;

impl RowTerms for EveryTerm {
    #[inline(always)]
    unsafe fn add<S: Simd, const M: usize, const N: usize>(
        acc: &mut [[S::V; N]; M],
        row: *const f32,
        weights: *const f32,
        c: &ChannelGrad,
    ) {
        for kw in 0..c.kernel_w {
            // SAFETY: the tile's reads (see `ChannelGrad::run`).
            unsafe {
                add_column::<S, M, N>(acc, row.sub(kw), weights.add(kw * c.channel_stride), 0, M)
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
        c: &ChannelGrad,
    ) {
        let cs = c.channel_stride;
        // Written out, not a loop: each column's positions must be constants to the compiler.
        // SAFETY: the tile's reads (see `ChannelGrad::run`).
        unsafe {
            let (first_0, end_0) = Self::reach::<M>(0);
            let (first_1, end_1) = Self::reach::<M>(1);
            let (first_2, end_2) = Self::reach::<M>(2);
            add_column::<S, M, N>(acc, row, weights, first_0, end_0);
            column_fence::<S, M>();
            add_column::<S, M, N>(acc, row.sub(1), weights.add(cs), first_1, end_1);
            column_fence::<S, M>();
            add_column::<S, M, N>(acc, row.sub(2), weights.add(2 * cs), first_2, end_2);
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
    if M + 2 > widest_tile::<S>() {
        compiler_fence(Ordering::SeqCst);
    }
}

/// The most positions of a tile of two vectors of channels: its accumulators, the two loaded
/// weight vectors and a broadcast fill the registers (32 on AVX-512, 16 on AVX2).
#[inline(always)]
fn widest_tile<S: Simd>() -> usize {
    if S::LANES == 16 { 12 } else { 6 }
}

/// One kernel column's terms into positions `first..end` of the tile: `x` the source at the
/// tile's first position for that column, `w_at` the column's packed weights.
#[inline(always)]
unsafe fn add_column<S: Simd, const M: usize, const N: usize>(
    acc: &mut [[S::V; N]; M],
    x: *const f32,
    w_at: *const f32,
    first: usize,
    end: usize,
) {
    // SAFETY: the caller's: N vectors of weights at `w_at`, a value at `x + m` for every m.
    unsafe {
        let mut w = [S::splat(0.0); N];
        for (n, v) in w.iter_mut().enumerate() {
            *v = S::load(w_at.add(n * S::LANES));
        }
        for (m, row_acc) in acc.iter_mut().enumerate() {
            if m < first || m >= end {
                continue;
            }
            let x = S::splat(*x.add(m));
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
