//! The engine under the forward pass and the input gradient: a batch of small matrix
//! products whose right-hand side is never materialised.
//!
//! For one image and one group it computes, for every output row `r` and the positions `q`
//! of an *extended grid* (the output rows laid out with the source's row stride, so that the
//! last few columns of each row are garbage that is never stored; every position, or where
//! tiles are stored straight into the output only the vectors that hold outputs),
//!
//! ```text
//! grid[r][q] = init[r] + Σ_k weight[r][k] · source[tap[k] + q]
//! ```
//!
//! `tap[k]` is the offset of the k-th (channel, kernel row, kernel column) in the source
//! planes. Because the extended grid has the source's row stride, `source[tap[k] + q]` for
//! consecutive `q` is a contiguous run of memory: the vector loads read the image itself, with
//! no im2col buffer and no packing (the implicit-GEMM idea with the "extended width" trick).
//! The weights are packed once per call into blocks of `M` rows, `[k][M]`, and broadcast.
//!
//! The micro-kernel holds an `M` × `N`-vector tile of the grid in registers (8 × 3 zmm with
//! AVX-512, 4 × 3 ymm with AVX2) and runs the whole reduction over `k` before storing it once.
//! Each grid value is one lane of one accumulator, summed over `k` in order with fused
//! multiply-adds, so the result does not depend on the vector width or the thread count.

use super::simd::{Isa, Portable, Simd, SimdKernel, run_on};

/// One correlation, planned for one instruction set: the taps, the packed weights and the
/// shape of the grid. The same plan runs on every image (and, shifted, every group).
#[derive(Debug, Clone)]
pub struct Correlation {
    /// Output rows per group (output channels forward, input channels for the input gradient).
    pub rows: usize,
    pub groups: usize,
    /// Offsets of the k-th term in the source planes of group 0.
    pub taps: Vec<usize>,
    /// Added to every tap for group g: `g · group_shift`.
    pub group_shift: usize,
    /// Rows per register tile and vectors per tile at most.
    pub block_rows: usize,
    max_vectors: usize,
    /// `[group][block][k][block_rows]`, rows past `rows` zero.
    packed: Vec<f32>,
    /// `[group][block · block_rows]`: the starting value of each row (the bias, or zero).
    init: Vec<f32>,
    /// The extended grid's positions rounded up to whole vectors: the grid buffer's row, and
    /// how far the loads may reach (a [`DirectMap`]'s vectors stay inside it too).
    pub grid_len: usize,
    /// The grid's vectors' first positions, `v · lanes` (a [`DirectMap`] has its own).
    grid_vector_starts: Vec<usize>,
    /// See [`Correlation::source_extent`].
    extent: usize,
    isa: Isa,
}

impl Correlation {
    /// Plans a correlation. `weight(g, r, k)` gives the weight of term `k` for output row `r`
    /// of group `g`, `init(g, r)` its starting value; `positions` is the extended grid's length.
    // One plan's eight facts; a struct for them would only rename the arguments at each call.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        isa: Isa,
        rows: usize,
        groups: usize,
        taps: Vec<usize>,
        group_shift: usize,
        positions: usize,
        weight: impl Fn(usize, usize, usize) -> f32,
        init: impl Fn(usize, usize) -> f32,
    ) -> Correlation {
        let (lanes, tile_rows) = match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => (super::simd::Avx512::LANES, super::simd::Avx512::ROWS),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (super::simd::Avx2::LANES, super::simd::Avx2::ROWS),
            _ => (Portable::LANES, Portable::ROWS),
        };
        // Few rows (a depthwise group, a one-channel image's gradient): a narrow, longer tile.
        let block_rows = match rows {
            1 => 1,
            2 => 2,
            3 | 4 => 4.min(tile_rows),
            _ => tile_rows,
        };
        // Accumulators a tile may hold, leaving registers for its loaded vectors and a
        // broadcast weight: 24 of AVX-512's 32 (8 × 3); 12 of AVX2's 16 as 6 rows × 2 vectors
        // (gemm's AVX2 shape). 4 × 3 needs a 17th register: the compiler then shuffled and
        // spilled registers on every step and ran 3× slower.
        let max_vectors = match (lanes, block_rows) {
            (16, m) => (24 / m).min(8),
            (_, 1) => 8,
            (_, 2) => 6,
            _ => 2,
        };
        let blocks = rows.div_ceil(block_rows);
        let k_len = taps.len();
        let mut packed = vec![0.0; groups * blocks * k_len * block_rows];
        let mut starts = vec![0.0; groups * blocks * block_rows];
        for g in 0..groups {
            for r in 0..rows {
                let (block, m) = (r / block_rows, r % block_rows);
                let base = (g * blocks + block) * k_len * block_rows;
                for k in 0..k_len {
                    packed[base + k * block_rows + m] = weight(g, r, k);
                }
                starts[g * blocks * block_rows + r] = init(g, r);
            }
        }
        let grid_len = positions.div_ceil(lanes) * lanes;
        let max_tap = taps.iter().copied().max().unwrap_or(0);
        Correlation {
            rows,
            groups,
            taps,
            group_shift,
            block_rows,
            max_vectors,
            packed,
            init: starts,
            grid_len,
            grid_vector_starts: (0..grid_len).step_by(lanes).collect(),
            extent: max_tap + group_shift * (groups - 1) + grid_len,
            isa,
        }
    }

    /// Rows of the grid buffer per group (rows rounded up to whole blocks).
    pub fn padded_rows(&self) -> usize {
        self.rows.div_ceil(self.block_rows) * self.block_rows
    }

    /// Floats of grid one image needs: `[group][padded row][grid_len]`.
    pub fn grid_size(&self) -> usize {
        self.groups * self.padded_rows() * self.grid_len
    }

    /// How far past `tap + grid_len` of the last group the engine reads: sources must have
    /// `max_tap + group_shift · (groups − 1) + grid_len` readable floats.
    pub fn source_extent(&self) -> usize {
        self.extent
    }

    /// Computes the grid of one image from its source planes.
    pub fn run(&self, source: &[f32], grid: &mut [f32]) {
        assert!(grid.len() >= self.grid_size(), "grid too short");
        let out = Out::Grid {
            grid: grid.as_mut_ptr(),
        };
        self.run_into(source, out);
    }

    /// Computes one image straight into its NCHW output `[group · rows][plane]`, where grid
    /// position `i · row_stride + j` is output `i · columns + j` for `j < columns` (the other
    /// columns are garbage and never stored, and no vector starts on them but possibly the
    /// last, moved back inside the grid): no grid buffer, no copy.
    pub fn run_direct(&self, source: &[f32], map: &DirectMap, out: &mut [f32]) {
        assert!(
            out.len() >= self.groups * self.rows * map.plane,
            "output too short"
        );
        assert!(
            map.lanes == self.lanes()
                && map
                    .vector_starts
                    .iter()
                    .all(|&q| q + map.lanes <= self.grid_len),
            "map of another grid"
        );
        let out = Out::Direct {
            out: out.as_mut_ptr(),
            map,
        };
        self.run_into(source, out);
    }

    fn run_into(&self, source: &[f32], out: Out) {
        assert!(source.len() >= self.source_extent(), "source too short");
        let source = source.as_ptr();
        // SAFETY: the lengths were checked by the callers; each ISA's entry point only runs
        // where `Isa::is_available` said the CPU has it (the plan's ISA comes from there).
        unsafe { run_on(self.isa, self, (source, out)) }
    }

    /// The map for [`Correlation::run_direct`], or `None` when rows are so short that a
    /// vector would straddle many of them (the grid and a copy are then cheaper).
    pub fn direct_map(&self, row_stride: usize, columns: usize, rows: usize) -> Option<DirectMap> {
        let lanes = self.lanes();
        if columns < lanes / 2 || rows * row_stride > self.grid_len {
            return None;
        }
        let valid = |q: usize| q / row_stride < rows && q % row_stride < columns;
        let next_valid = |from: usize| (from..rows * row_stride).find(|&q| valid(q));
        // Each vector starts at the first output position the ones before it left out, never
        // on the grid's extra columns: on AVX2 a row of 8 (small-cnn's conv4) or 24 (its
        // conv2) takes whole vectors, where the grid's vectors, laid end to end, also cover
        // the two extra columns of each row (a fifth and a thirteenth of their multiply-adds;
        // the passes took 18% and 8% less time, docs/performance.md). A start past the grid's
        // last vector is moved back to it (its lanes before the old start are computed
        // twice, the same value each time).
        let mut vector_starts = Vec::new();
        let mut from = next_valid(0);
        while let Some(q) = from {
            vector_starts.push(q.min(self.grid_len - lanes));
            from = next_valid(q + lanes);
        }
        let mut segments = Vec::new();
        let mut starts = vec![0];
        for &start in &vector_starts {
            let mut open: Option<Segment> = None;
            for lane in 0..lanes {
                let q = start + lane;
                let (i, j) = (q / row_stride, q % row_stride);
                match (&mut open, valid(q)) {
                    (Some(seg), true) if j > 0 => seg.end = lane as u8 + 1,
                    (_, true) => {
                        segments.extend(open.take());
                        open = Some(Segment {
                            start: lane as u8,
                            end: lane as u8 + 1,
                            out: i * columns + j,
                        });
                    }
                    (_, false) => segments.extend(open.take()),
                }
            }
            segments.extend(open);
            starts.push(segments.len());
        }
        // The same runs, gathered: output rows are contiguous and the grid's extra columns
        // are never stored, so a vector's segments go to consecutive output positions.
        let packs = starts
            .windows(2)
            .map(|run| {
                let segments = &segments[run[0]..run[1]];
                let mut index: [u32; 16] = std::array::from_fn(|i| i as u32);
                let mut count = 0;
                for seg in segments {
                    debug_assert_eq!(seg.out, segments[0].out + count);
                    for lane in seg.start..seg.end {
                        index[count] = u32::from(lane);
                        count += 1;
                    }
                }
                Pack {
                    out: segments.first().map_or(0, |seg| seg.out),
                    count,
                    index,
                }
            })
            .collect();
        Some(DirectMap {
            vector_starts,
            segments,
            starts,
            packs,
            plane: rows * columns,
            lanes,
        })
    }

    fn lanes(&self) -> usize {
        self.isa.lanes()
    }
}

/// Where grid vectors go in an NCHW output plane: per vector, the runs of lanes that are
/// valid output positions of one row.
#[derive(Debug, Clone)]
pub struct DirectMap {
    /// The grid position of each vector's first lane.
    vector_starts: Vec<usize>,
    segments: Vec<Segment>,
    /// Segments of vector v: `segments[starts[v]..starts[v + 1]]`.
    starts: Vec<usize>,
    /// Per vector, its valid lanes gathered to the front (for [`Simd::PACK_PARTIAL_STORES`]).
    packs: Vec<Pack>,
    /// Output positions per channel.
    plane: usize,
    lanes: usize,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Lanes `start..end` of the vector...
    start: u8,
    end: u8,
    /// ...go to the output plane from this position on.
    out: usize,
}

/// A vector's valid lanes gathered to its front: lane `i` of `permute(v, index)` goes to output
/// position `out + i`, for `i < count`.
#[derive(Debug, Clone, Copy)]
struct Pack {
    out: usize,
    count: usize,
    index: [u32; 16],
}

/// Where a correlation writes.
#[derive(Clone, Copy)]
enum Out<'a> {
    Grid { grid: *mut f32 },
    Direct { out: *mut f32, map: &'a DirectMap },
}

impl<'a> SimdKernel<(*const f32, Out<'a>)> for Correlation {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, (source, out): (*const f32, Out<'a>)) {
        unsafe { run_generic::<S>(self, source, out) }
    }
}

#[inline(always)]
unsafe fn run_generic<S: Simd>(c: &Correlation, source: *const f32, out: Out) {
    let m = c.block_rows;
    let k_len = c.taps.len();
    let blocks = c.rows.div_ceil(m);
    let vector_starts = match out {
        Out::Grid { .. } => &c.grid_vector_starts,
        Out::Direct { map, .. } => &map.vector_starts,
    };
    let vectors = vector_starts.len();
    let row_stride = c.grid_len;
    for g in 0..c.groups {
        // SAFETY (whole loop): the callers checked that the source holds the furthest read
        // and the output every row (and, for a grid, every padded row) of every block.
        let source_g = unsafe { source.add(g * c.group_shift) };
        let mut v0 = 0;
        while v0 < vectors {
            let n = c.max_vectors.min(vectors - v0);
            for block in 0..blocks {
                let first_row = g * c.padded_rows() + block * m;
                let dest = match out {
                    Out::Grid { grid } => TileOut::Grid {
                        out: unsafe { grid.add(first_row * row_stride + v0 * S::LANES) },
                        stride: row_stride,
                    },
                    Out::Direct { out, map } => TileOut::Direct {
                        out: unsafe { out.add((g * c.rows + block * m) * map.plane) },
                        stride: map.plane,
                        rows: m.min(c.rows - block * m),
                        map,
                        first_vector: v0,
                    },
                };
                let tile = Tile {
                    k_len,
                    weights: unsafe { c.packed.as_ptr().add((g * blocks + block) * k_len * m) },
                    taps: c.taps.as_ptr(),
                    source: source_g,
                    vector_starts: unsafe { vector_starts.as_ptr().add(v0) },
                    init: unsafe { c.init.as_ptr().add((g * blocks + block) * m) },
                    dest,
                };
                unsafe { tile.run::<S>(m, n) };
            }
            v0 += n;
        }
    }
}

/// The arguments of one register tile.
struct Tile<'a> {
    k_len: usize,
    weights: *const f32,
    taps: *const usize,
    source: *const f32,
    /// The source positions of the tile's vectors.
    vector_starts: *const usize,
    init: *const f32,
    dest: TileOut<'a>,
}

/// Where a tile's accumulators go: rows of a grid, or the valid lanes of output planes.
enum TileOut<'a> {
    Grid {
        out: *mut f32,
        stride: usize,
    },
    Direct {
        /// The plane of the tile's first row.
        out: *mut f32,
        stride: usize,
        /// Rows that are real channels (the last block may be padded).
        rows: usize,
        map: &'a DirectMap,
        first_vector: usize,
    },
}

/// Expands to a `match` from the runtime (rows, vectors) to the micro-kernel instantiated for
/// them; only the shapes [`Correlation::new`] can choose are instantiated.
macro_rules! dispatch_tile {
    ($self:ident, $S:ty, $m:expr, $n:expr; $($rows:literal => [$($vectors:literal),*]),*) => {
        match ($m, $n) {
            $($(($rows, $vectors) => unsafe { $self.kernel::<$S, $rows, $vectors>() },)*)*
            (m, n) => unreachable!("no {m}×{n} tile"),
        }
    };
}

impl Tile<'_> {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, m: usize, n: usize) {
        dispatch_tile!(self, S, m, n;
            1 => [1, 2, 3, 4, 5, 6, 7, 8],
            2 => [1, 2, 3, 4, 5, 6, 7, 8],
            4 => [1, 2, 3, 4, 5, 6],
            6 => [1, 2],
            8 => [1, 2, 3])
    }

    /// The micro-kernel: an `M` × `N`-vector block of the grid, accumulated over all `k`.
    #[inline(always)]
    unsafe fn kernel<S: Simd, const M: usize, const N: usize>(&self) {
        unsafe {
            let mut acc = [[S::splat(0.0); N]; M];
            for (m, row) in acc.iter_mut().enumerate() {
                *row = [S::splat(*self.init.add(m)); N];
            }
            let vector_starts: [usize; N] = std::array::from_fn(|n| *self.vector_starts.add(n));
            for k in 0..self.k_len {
                let source = self.source.add(*self.taps.add(k));
                let mut x = [S::splat(0.0); N];
                for (v, &start) in x.iter_mut().zip(&vector_starts) {
                    *v = S::load(source.add(start));
                }
                let weights = self.weights.add(k * M);
                for (m, row) in acc.iter_mut().enumerate() {
                    let w = S::splat(*weights.add(m));
                    for (a, v) in row.iter_mut().zip(x) {
                        *a = S::fma(w, v, *a);
                    }
                }
            }
            match self.dest {
                TileOut::Grid { out, stride } => {
                    for (m, row) in acc.iter().enumerate() {
                        for (n, a) in row.iter().enumerate() {
                            S::store(out.add(m * stride + n * S::LANES), *a);
                        }
                    }
                }
                TileOut::Direct {
                    out,
                    stride,
                    rows,
                    map,
                    first_vector,
                } if S::PACK_PARTIAL_STORES => {
                    for n in 0..N {
                        let pack = &map.packs[first_vector + n];
                        if pack.count == 0 {
                            continue;
                        }
                        // A whole-vector store writes past the valid lanes onto positions of
                        // later vectors, which store their own values there afterwards (each
                        // row's vectors are stored in order); only at a plane's end would it
                        // reach another row's plane.
                        let whole = pack.out + S::LANES <= map.plane;
                        for (m, row) in acc.iter().enumerate().take(rows) {
                            let at = out.add(m * stride + pack.out);
                            let packed = S::permute(row[n], &pack.index);
                            if whole {
                                S::store(at, packed);
                            } else {
                                S::store_lanes(at, packed, 0, pack.count);
                            }
                        }
                    }
                }
                TileOut::Direct {
                    out,
                    stride,
                    rows,
                    map,
                    first_vector,
                } => {
                    for n in 0..N {
                        let v = first_vector + n;
                        for seg in &map.segments[map.starts[v]..map.starts[v + 1]] {
                            let (start, end) = (usize::from(seg.start), usize::from(seg.end));
                            // Lane `start` lands on `seg.out`: lane 0 would be `start` before
                            // it (possibly before the buffer, never written).
                            let lane0 = out.wrapping_add(seg.out).wrapping_sub(start);
                            for (m, row) in acc.iter().enumerate().take(rows) {
                                S::store_lanes(lane0.wrapping_add(m * stride), row[n], start, end);
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
    use super::{Correlation, DirectMap, Isa};

    /// A one-row correlation over a grid of `rows` × `row_stride` positions.
    fn grid(isa: Isa, rows: usize, row_stride: usize) -> Correlation {
        Correlation::new(
            isa,
            1,
            1,
            vec![0],
            0,
            rows * row_stride,
            |_, _, _| 1.0,
            |_, _| 0.0,
        )
    }

    /// What each output plane position holds after the kernel's stores, as the grid position
    /// whose value it got (`None`: nothing, or a lane of garbage), by the segments' masked
    /// stores or, with `packed`, by the packs' stores (whole vectors where the plane goes on,
    /// their lanes past `count` garbage), vector by vector in order as `run_generic` stores
    /// one channel.
    fn stored(map: &DirectMap, lanes: usize, packed: bool) -> Vec<Option<usize>> {
        let mut out = vec![None; map.plane];
        for (v, &start) in map.vector_starts.iter().enumerate() {
            if packed {
                let pack = &map.packs[v];
                if pack.count == 0 {
                    continue;
                }
                let whole = pack.out + lanes <= map.plane;
                let written = if whole { lanes } else { pack.count };
                for i in 0..written {
                    out[pack.out + i] = (i < pack.count).then(|| start + pack.index[i] as usize);
                }
            } else {
                for seg in &map.segments[map.starts[v]..map.starts[v + 1]] {
                    for lane in seg.start..seg.end {
                        out[seg.out + usize::from(lane - seg.start)] =
                            Some(start + usize::from(lane));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn a_direct_maps_vectors_read_inside_the_grid_and_store_every_output_from_its_position() {
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
            let lanes = isa.lanes();
            // Rows too short for a map.
            assert!(grid(isa, 4, 9).direct_map(9, lanes / 2 - 1, 4).is_none());
            for columns in lanes / 2..3 * lanes {
                // The input gradient's grids have up to K − 1 + padding extra columns.
                for extra in 0..2 * lanes + 2 {
                    let row_stride = columns + extra;
                    for rows in 1..12 {
                        let c = grid(isa, rows, row_stride);
                        let map = c.direct_map(row_stride, columns, rows).unwrap();
                        let case = format!("{isa:?}: {rows} rows of {columns} in {row_stride}");
                        // Never more vectors than the grid has, none reading past it, in
                        // order (the packed stores' garbage lanes are overwritten by the
                        // vectors after them).
                        let starts = &map.vector_starts;
                        assert!(starts.len() <= c.grid_len / lanes, "{case}");
                        assert!(starts.iter().all(|&q| q + lanes <= c.grid_len), "{case}");
                        assert!(starts.windows(2).all(|w| w[0] < w[1]), "{case}");
                        // Every output holds its own grid position's value after either way
                        // of storing (the last vector, moved back, may store some twice).
                        let expected: Vec<Option<usize>> = (0..rows * columns)
                            .map(|o| Some(o / columns * row_stride + o % columns))
                            .collect();
                        assert_eq!(stored(&map, lanes, false), expected, "{case}");
                        assert_eq!(stored(&map, lanes, true), expected, "{case}, packed");
                        // A row of whole vectors after extra columns takes whole vectors.
                        if columns % lanes == 0 {
                            assert_eq!(starts.len(), rows * columns / lanes, "{case}");
                        }
                    }
                }
            }
        }
    }
}
