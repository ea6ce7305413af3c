//! A third engine, for the forward pass of a first layer: one input channel (a grey image),
//! stride 1, a 3 × 3 kernel, rows of at most four vectors (MNIST's 28 pixels).
//!
//! The main engine ([`super::correlate`]) tiles output channels × vectors of an extended grid,
//! whose rows are wider than the output's, and on AVX2 gathers each vector's valid lanes with a
//! permutation before it stores them. With one input channel the reduction is 9 multiply-adds
//! per output, too short to hide that epilogue (docs/performance.md, "conv1 on engines of its
//! own"). Here each output channel's plane is computed a few whole rows at a time and stored
//! straight into the NCHW output: one contiguous store stream per channel, no permutation, and
//! no zeroing of the output first (every value is written). A row of `w` outputs takes ⌈w / lanes⌉ vectors, the
//! last one moved back to end at the row's end, and the last tile of rows is moved up the same
//! way: they recompute a few outputs and store the same values over them.
//!
//! Each output is `init + Σ_(kh, kw) weight · source`, summed in the main engine's order with
//! fused multiply-adds, so the two engines give the same bits (tested).

use super::norm::Epilogue;
use super::row_tile::{MAX_VECTORS, add_source_row, tile_rows, vector_starts};
use super::simd::{Isa, Simd, SimdKernel, run_on};
use std::mem::MaybeUninit;

/// The kernel's side. A 5 × 5 version (madry-cnn's conv1; an uncommitted build) was measured
/// and left out: on this engine the pass was slower than on the main engine with both
/// instruction sets (median of 300 calls, 1 → 32 channels on 28 × 28, padded by 2: 2.11 and 2.15
/// ms against 1.84 and 2.07 on AVX2, 1.68 and 1.87 against 0.98 and 1.48 on AVX-512;
/// docs/performance.md). The input gradient of that layer does gain from its engine
/// ([`super::first_layer_grad`]).
const KERNEL: usize = 3;

/// The plan of one first-layer forward pass, the same for every image.
#[derive(Debug, Clone)]
pub struct FirstLayer {
    /// `[out channel][kh · 3 + kw]`
    weights: Vec<f32>,
    /// The starting value of each output channel (the bias, or zero).
    init: Vec<f32>,
    /// The source's row stride (its rows are `out_w + 2` wide or wider).
    row_stride: usize,
    out_h: usize,
    out_w: usize,
    /// The first column of each vector of a row.
    starts: Vec<usize>,
    /// Output rows per register tile.
    tile_rows: usize,
    isa: Isa,
}

impl FirstLayer {
    /// Plans the pass of `out_channels` channels of `out_h × out_w` from a source whose rows are
    /// `row_stride` apart; `weight(co, kh, kw)`, `init(co)`. `None` unless the kernel is 3 × 3, a
    /// row takes between one and four whole-or-shifted vectors, the image has at least a tile's
    /// rows and `row_stride` is at least `out_w + 2`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        isa: Isa,
        out_channels: usize,
        kernel: [usize; 2],
        row_stride: usize,
        out_h: usize,
        out_w: usize,
        weight: impl Fn(usize, usize, usize) -> f32,
        init: impl Fn(usize) -> f32,
    ) -> Option<FirstLayer> {
        let lanes = isa.lanes();
        let vectors = out_w.div_ceil(lanes);
        let tile_rows = tile_rows(vectors);
        let fits = kernel == [KERNEL, KERNEL]
            && out_w >= lanes
            && vectors <= MAX_VECTORS
            && out_h >= tile_rows
            && row_stride >= out_w + KERNEL - 1;
        if !fits {
            return None;
        }
        let weights = (0..out_channels)
            .flat_map(|co| (0..KERNEL * KERNEL).map(move |t| (co, t / KERNEL, t % KERNEL)))
            .map(|(co, kh, kw)| weight(co, kh, kw))
            .collect();
        let starts = vector_starts(out_w, lanes);
        Some(FirstLayer {
            weights,
            init: (0..out_channels).map(init).collect(),
            row_stride,
            out_h,
            out_w,
            starts,
            tile_rows,
            isa,
        })
    }

    /// Floats the source must hold past its start: exactly the rows the output needs.
    pub fn source_extent(&self) -> usize {
        (self.out_h + KERNEL - 2) * self.row_stride + self.out_w + KERNEL - 1
    }

    /// One image: `out` is `[out channel][out_h][out_w]`, each sum through `epilogue` as it is
    /// stored. Every element of `out` is written (it may start uninitialised), none read.
    pub(crate) fn run(&self, source: &[f32], out: &mut [MaybeUninit<f32>], epilogue: Epilogue) {
        let plane = self.out_h * self.out_w;
        assert!(source.len() >= self.source_extent(), "source too short");
        assert_eq!(out.len(), self.init.len() * plane, "output length");
        // `MaybeUninit<f32>` has the layout of `f32`; the kernel only stores through it.
        let (source, out) = (source.as_ptr(), out.as_mut_ptr().cast::<f32>());
        if let Epilogue::Norm(norm) = epilogue {
            assert_eq!(
                norm.channels(),
                self.init.len(),
                "one statistic per channel"
            );
        }
        // SAFETY: lengths checked above; the plan's ISA is available on this CPU.
        unsafe { run_on(self.isa, self, (source, out, epilogue)) }
    }
}

impl SimdKernel<(*const f32, *mut f32, Epilogue<'_>)> for FirstLayer {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, (source, out, epilogue): (*const f32, *mut f32, Epilogue)) {
        unsafe { run_generic::<S>(self, source, out, epilogue) }
    }
}

#[inline(always)]
unsafe fn run_generic<S: Simd>(
    p: &FirstLayer,
    source: *const f32,
    out: *mut f32,
    epilogue: Epilogue,
) {
    unsafe {
        match (p.starts.len(), p.tile_rows) {
            (1, 8) => channels::<S, 1, 8>(p, source, out, epilogue),
            (2, 4) => channels::<S, 2, 4>(p, source, out, epilogue),
            (3, 3) => channels::<S, 3, 3>(p, source, out, epilogue),
            (4, 2) => channels::<S, 4, 2>(p, source, out, epilogue),
            (n, m) => unreachable!("no first-layer kernel for {m} rows of {n} vectors"),
        }
    }
}

/// Every output channel's plane, `M` rows of `N` vectors at a time. Each source row is loaded
/// once per tile and applied to every output row it feeds (output row m, kernel row kh reads
/// source row m + kh): `M · N` independent sums, enough to cover the multiply-add's latency.
#[inline(always)]
unsafe fn channels<S: Simd, const N: usize, const M: usize>(
    p: &FirstLayer,
    source: *const f32,
    out: *mut f32,
    epilogue: Epilogue,
) {
    let starts: [usize; N] = std::array::from_fn(|n| p.starts[n]);
    let plane = p.out_h * p.out_w;
    // Tiles of M rows; the last one moved up to end at the last row (rows recomputed, same
    // values stored again).
    let tiles = p.out_h.div_ceil(M);
    for (co, (weights, &init)) in p
        .weights
        .chunks_exact(KERNEL * KERNEL)
        .zip(&p.init)
        .enumerate()
    {
        // SAFETY (whole loop): `run` checked that the source holds every row read (the last
        // tile ends at the last output row, the last vector of a row at its last column, so
        // reads end at the source's extent) and the output every channel's plane.
        unsafe {
            let out_plane = out.add(co * plane);
            let finish = epilogue.channel::<S>(co);
            for tile in 0..tiles {
                let i0 = (tile * M).min(p.out_h - M);
                let top = source.add(i0 * p.row_stride);
                let mut acc = [[S::splat(init); N]; M];
                // Kernel rows outer, columns inner: every sum takes its terms in (kh, kw) order.
                for r in 0..M + KERNEL - 1 {
                    for kw in 0..KERNEL {
                        let row = top.add(r * p.row_stride + kw);
                        add_source_row::<S, KERNEL, N, M>(&mut acc, r, row, &starts, |kh| {
                            weights[kh * KERNEL + kw]
                        });
                    }
                }
                for (m, acc) in acc.iter().enumerate() {
                    let out_row = out_plane.add((i0 + m) * p.out_w);
                    for (a, &start) in acc.iter().zip(&starts) {
                        S::store(out_row.add(start), finish.apply(*a));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Epilogue, FirstLayer, Isa};
    use std::mem::MaybeUninit;

    fn plan(isa: Isa, out: [usize; 2], row_stride: usize) -> Option<FirstLayer> {
        FirstLayer::new(
            isa,
            5,
            [3, 3],
            row_stride,
            out[0],
            out[1],
            |co, kh, kw| (co * 9 + kh * 3 + kw) as f32 * 0.01 - 0.2,
            |co| co as f32 * 0.1,
        )
    }

    #[test]
    fn the_zoos_first_layers_run_on_it_and_other_shapes_do_not() {
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
            // small-cnn's conv1 (28 → 26, unpadded) and micro-cnn's (28 → 28, padded by 1).
            assert!(plan(isa, [26, 26], 28).is_some(), "{}", isa.name());
            assert!(plan(isa, [28, 28], 30).is_some(), "{}", isa.name());
        }
        // Rows shorter than a vector, longer than four, a row stride too short for the kernel.
        assert!(plan(Isa::Portable, [26, 7], 9).is_none());
        assert!(plan(Isa::Portable, [26, 33], 35).is_none());
        assert!(plan(Isa::Portable, [26, 26], 27).is_none());
    }

    #[test]
    fn every_output_value_is_written() {
        // The output starts uninitialised in the forward pass: a NaN left anywhere here would
        // be a value the engine never stored. Shapes whose last vector overlaps the one before,
        // and (27 rows in tiles of 2, 10 in tiles of 3) whose last tile of rows overlaps too.
        for (out, row_stride) in [
            ([26, 26], 28),
            ([27, 26], 28),
            ([10, 19], 21),
            ([28, 28], 30),
        ] {
            let Some(plan) = plan(Isa::Portable, out, row_stride) else {
                panic!("no plan for {out:?}");
            };
            let source: Vec<f32> = (0..plan.source_extent()).map(|i| (i % 7) as f32).collect();
            let mut output = vec![MaybeUninit::new(f32::NAN); 5 * out[0] * out[1]];
            plan.run(&source, &mut output, Epilogue::Store);
            // SAFETY: initialised with NaN above.
            assert!(
                output
                    .iter()
                    .all(|v| unsafe { v.assume_init() }.is_finite())
            );
        }
    }
}
