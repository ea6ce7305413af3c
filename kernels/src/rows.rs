//! A second engine for correlations with a single output channel per group: the input
//! gradient of a first layer (one image channel) and depthwise convolutions.
//!
//! With one output row the main engine ([`super::correlate`]) has nothing to broadcast a
//! weight over and does one unaligned load per multiply-add. Here the register tile runs
//! over *image rows* instead: for each kernel column (channel c, column kw) it loads the
//! `M + KH − 1` source rows that `M` output rows need once and applies every kernel row to
//! them (output row m, kernel row kh reads source row m + kh), `KH` multiply-adds per load.
//! Vectors run along image rows. Every output is still one lane of one accumulator summed in
//! a fixed order (kernel columns, then kernel rows), whatever the vector width.

use super::simd::{Isa, Portable, Simd, SimdKernel, run_on};

/// A correlation with one output row per group: `out[g][i][j] = init[g] +
/// Σ_column Σ_kh weight[g][column][kh] · source[g · shift + column_base + (i + kh) · stride + j]`.
#[derive(Debug, Clone)]
pub struct RowCorrelation {
    groups: usize,
    kernel_h: usize,
    /// Offset of each kernel column (channel, kw) at image row 0, group 0.
    columns: Vec<usize>,
    /// `[group][column][kh]`
    weights: Vec<f32>,
    init: Vec<f32>,
    group_shift: usize,
    row_stride: usize,
    /// Output rows and valid columns.
    rows: usize,
    width: usize,
    block_rows: usize,
    extent: usize,
    isa: Isa,
}

/// Kernel heights with a compiled micro-kernel.
pub const KERNEL_HEIGHTS: [usize; 3] = [1, 3, 5];

impl RowCorrelation {
    /// `weight(g, column, kh)`, `init(g)`; `None` for a kernel height without a micro-kernel.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        isa: Isa,
        groups: usize,
        kernel_h: usize,
        columns: Vec<usize>,
        group_shift: usize,
        row_stride: usize,
        rows: usize,
        width: usize,
        weight: impl Fn(usize, usize, usize) -> f32,
        init: impl Fn(usize) -> f32,
    ) -> Option<RowCorrelation> {
        if !KERNEL_HEIGHTS.contains(&kernel_h) {
            return None;
        }
        // Rows per tile: as many as the registers hold (acc + M + KH − 1 loaded rows).
        let (lanes, block_rows) = match isa {
            Isa::Avx512 => (16, 8),
            _ if kernel_h <= 3 => (Portable::LANES, 6),
            _ => (Portable::LANES, 4),
        };
        let mut weights = Vec::with_capacity(groups * columns.len() * kernel_h);
        for g in 0..groups {
            for c in 0..columns.len() {
                weights.extend((0..kernel_h).map(|kh| weight(g, c, kh)));
            }
        }
        let max_column = columns.iter().copied().max().unwrap_or(0);
        // The last block reads block_rows + kh − 1 rows from its first, whole vectors wide.
        let last_row = rows.div_ceil(block_rows) * block_rows + kernel_h - 1;
        let extent = group_shift * (groups - 1)
            + max_column
            + last_row * row_stride
            + width.div_ceil(lanes) * lanes;
        Some(RowCorrelation {
            groups,
            kernel_h,
            columns,
            weights,
            init: (0..groups).map(init).collect(),
            group_shift,
            row_stride,
            rows,
            width,
            block_rows,
            extent,
            isa,
        })
    }

    /// Floats the source must hold past its start.
    pub fn source_extent(&self) -> usize {
        self.extent
    }

    /// One image: `out` is `[group][rows][width]`.
    pub fn run(&self, source: &[f32], out: &mut [f32]) {
        assert!(source.len() >= self.extent, "source too short");
        assert!(
            out.len() >= self.groups * self.rows * self.width,
            "output too short"
        );
        let (source, out) = (source.as_ptr(), out.as_mut_ptr());
        // SAFETY: lengths checked above; the plan's ISA is available on this CPU.
        unsafe { run_on(self.isa, self, (source, out)) }
    }
}

impl SimdKernel<(*const f32, *mut f32)> for RowCorrelation {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, (source, out): (*const f32, *mut f32)) {
        unsafe {
            match (self.block_rows, self.kernel_h) {
                (8, 1) => blocks::<S, 8, 1, 8>(self, source, out),
                (8, 3) => blocks::<S, 8, 3, 10>(self, source, out),
                (8, 5) => blocks::<S, 8, 5, 12>(self, source, out),
                (6, 1) => blocks::<S, 6, 1, 6>(self, source, out),
                (6, 3) => blocks::<S, 6, 3, 8>(self, source, out),
                (4, 5) => blocks::<S, 4, 5, 8>(self, source, out),
                (m, kh) => unreachable!("no {m}-row tile for kernel height {kh}"),
            }
        }
    }
}

/// All tiles of one image: `M` output rows × one vector of columns, reading `R = M + KH − 1`
/// source rows per kernel column.
#[inline(always)]
unsafe fn blocks<S: Simd, const M: usize, const KH: usize, const R: usize>(
    c: &RowCorrelation,
    source: *const f32,
    out: *mut f32,
) {
    let vectors = c.width.div_ceil(S::LANES);
    let columns = c.columns.len();
    let total = c.groups * c.rows * c.width;
    for g in 0..c.groups {
        let weights = &c.weights[g * columns * KH..][..columns * KH];
        for i0 in (0..c.rows).step_by(M) {
            // Right to left: a row's last vector, stored whole where partial stores are slow,
            // spills onto the start of the next row, which is stored after it (by this block's
            // first vector, or the next block's).
            for n in (0..vectors).rev() {
                unsafe {
                    let origin = source.add(g * c.group_shift + i0 * c.row_stride + n * S::LANES);
                    let mut acc = [S::splat(c.init[g]); M];
                    for (column, w) in c.columns.iter().zip(weights.chunks_exact(KH)) {
                        let top = origin.add(*column);
                        let mut x = [S::splat(0.0); R];
                        for (r, v) in x.iter_mut().enumerate() {
                            *v = S::load(top.add(r * c.row_stride));
                        }
                        for (kh, &w) in w.iter().enumerate() {
                            let w = S::splat(w);
                            for (m, a) in acc.iter_mut().enumerate() {
                                *a = S::fma(w, x[m + kh], *a);
                            }
                        }
                    }
                    let valid = (c.width - n * S::LANES).min(S::LANES);
                    for (m, a) in acc.iter().enumerate().take(c.rows - i0) {
                        let offset = (g * c.rows + i0 + m) * c.width + n * S::LANES;
                        let at = out.add(offset);
                        if valid == S::LANES
                            || (S::PACK_PARTIAL_STORES && offset + S::LANES <= total)
                        {
                            S::store(at, *a);
                        } else {
                            S::store_lanes(at, *a, 0, valid);
                        }
                    }
                }
            }
        }
    }
}
