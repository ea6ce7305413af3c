//! Source planes: one image copied with its zero padding and, for strides above 1, split into
//! phase planes, so that every kernel tap becomes a constant offset in memory.
//!
//! Plane (channel c, phase (a, b)) holds `padded[s_h·i + a][s_w·j + b]`, where `padded` is the
//! channel shifted down by `top` and right by `left` with zeros around it. A stride-s
//! convolution of the padded image is then a stride-1 correlation of the phase planes: tap
//! (kh, kw) reads plane (kh mod s_h, kw mod s_w) at row offset kh / s_h, column kw / s_w.

use super::simd::{Isa, Simd, SimdKernel, relu_backward, run_on};

/// Floats past `layout.total_len()` that [`PlaneSpec::fill`] may write: it stores whole vectors,
/// so the last row's last vector can run past the planes.
pub const FILL_OVERRUN: usize = 16;

/// Where the planes of one image lie in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneLayout {
    pub planes: usize,
    pub rows: usize,
    pub row_stride: usize,
}

impl PlaneLayout {
    pub fn plane_len(&self) -> usize {
        self.rows * self.row_stride
    }

    /// Floats in all the planes together.
    pub fn total_len(&self) -> usize {
        self.planes * self.plane_len()
    }
}

/// How an image becomes planes: its shape, the shift that pads it, the stride that splits it
/// into phases and the phases kept (only those some tap reads).
#[derive(Clone, Debug)]
pub struct PlaneSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub top: usize,
    pub left: usize,
    pub stride: [usize; 2],
    pub phases: Vec<(usize, usize)>,
    pub layout: PlaneLayout,
    /// The instruction set of the copy (its result is the same on every one).
    pub isa: Isa,
}

impl PlaneSpec {
    /// Fills the planes of `image` (`[channels][height][width]`) into `dst[..layout.total_len()]`,
    /// writing every element (padding included), so `dst` may hold anything before; `dst`
    /// needs [`FILL_OVERRUN`] more floats, which it may overwrite too.
    pub fn fill(&self, image: &[f32], dst: &mut [f32]) {
        self.fill_masked(image, None, dst);
    }

    /// [`PlaneSpec::fill`] of `image` through a ReLU's backward step: where `relu_output`
    /// (same shape) is ≤ 0 the copy holds 0 (the gradient a fused ReLU passes back).
    pub fn fill_masked(&self, image: &[f32], relu_output: Option<&[f32]>, dst: &mut [f32]) {
        let layout = self.layout;
        assert_eq!(image.len(), self.channels * self.height * self.width);
        assert!(relu_output.is_none_or(|m| m.len() == image.len()));
        assert!(dst.len() >= layout.total_len() + FILL_OVERRUN);
        let lanes = self.isa.lanes();
        match self.stride[1] {
            1 => self.fill_with(UnitStride::new(self, lanes), image, relu_output, dst),
            2 => self.fill_with(ColumnStride2::new(self, lanes), image, relu_output, dst),
            _ => self.fill_element_by_element(image, relu_output, dst),
        }
    }

    /// The vector fill, its rows built by `rows` (for this spec's vectors); the lengths are
    /// [`PlaneSpec::fill_masked`]'s, checked there.
    fn fill_with<R: RowVectors>(
        &self,
        rows: R,
        image: &[f32],
        mask: Option<&[f32]>,
        dst: &mut [f32],
    ) {
        let fill = Fill {
            spec: self,
            image,
            mask,
            rows,
        };
        // SAFETY: the spec's ISA is available (it came from `Isa::detected` or a test that
        // checked it); `dst` holds the planes and FILL_OVERRUN floats more.
        unsafe { run_on(self.isa, &fill, dst.as_mut_ptr()) }
    }

    /// [`PlaneSpec::fill_masked`] one element at a time, for any stride (and, in the tests,
    /// to check the vector copies against).
    fn fill_element_by_element(&self, image: &[f32], relu_output: Option<&[f32]>, dst: &mut [f32]) {
        let layout = self.layout;
        let [s_h, s_w] = self.stride;
        let plane_len = layout.plane_len();
        let masked;
        let image = match relu_output {
            Some(out) => {
                masked = image
                    .iter()
                    .zip(out)
                    .map(|(&g, &o)| relu_backward(g, o))
                    .collect::<Vec<f32>>();
                &masked[..]
            }
            None => image,
        };
        for c in 0..self.channels {
            let channel = &image[c * self.height * self.width..][..self.height * self.width];
            for (p, &(a, b)) in self.phases.iter().enumerate() {
                let plane = &mut dst[(c * self.phases.len() + p) * plane_len..][..plane_len];
                for (i, row) in plane.chunks_exact_mut(layout.row_stride).enumerate() {
                    // Padded row s_h·i + a is image row s_h·i + a − top.
                    let Some(u) = (s_h * i + a)
                        .checked_sub(self.top)
                        .filter(|&u| u < self.height)
                    else {
                        row.fill(0.0);
                        continue;
                    };
                    let source = &channel[u * self.width..][..self.width];
                    if s_w == 1 {
                        // Columns j with 0 ≤ j + b − left < width are copied, the rest zero.
                        let first = self.left.saturating_sub(b).min(row.len());
                        let skip = (b + first) - self.left.min(b + first);
                        let count = (self.width - skip.min(self.width)).min(row.len() - first);
                        row[..first].fill(0.0);
                        row[first..first + count].copy_from_slice(&source[skip..skip + count]);
                        row[first + count..].fill(0.0);
                    } else {
                        for (j, value) in row.iter_mut().enumerate() {
                            *value = (s_w * j + b)
                                .checked_sub(self.left)
                                .and_then(|v| source.get(v))
                                .copied()
                                .unwrap_or(0.0);
                        }
                    }
                }
            }
        }
    }

    /// Index of phase (a, b) among the kept ones.
    pub fn phase_index(&self, a: usize, b: usize) -> usize {
        self.phases
            .iter()
            .position(|&p| p == (a, b))
            .expect("a tap reads a kept phase")
    }
}

/// How the vector fill builds each vector of a plane row from the image row it copies. Its
/// methods are `#[inline(always)]` (called from [`Fill`]'s kernel) and take no closures: a closure is not compiled with its
/// caller's target features, and the AVX2 build's stride-2 fill ran 3–5× slower than the
/// element-by-element copy with one (docs/performance.md, "Phase planes a vector at a time").
trait RowVectors {
    /// Whole vectors a row of phase `phase` stores.
    fn vectors(&self, phase: usize) -> usize;
    /// Vector `v` of a row of phase `phase`, from the image row whose padded column `j` is
    /// at `source + j` (and its ReLU output's at `mask_row + j`).
    ///
    /// # Safety
    /// `S` runs on this CPU; `source` (and `mask_row`) point `left` floats before a whole
    /// image row.
    unsafe fn vector<S: Simd>(
        &self,
        phase: usize,
        v: usize,
        source: *const f32,
        mask_row: Option<*const f32>,
    ) -> S::V;
}

/// The lanes `start..end` of a load from padded column `j0` that hold image columns: `(j0,
/// start, end)`. The same for every row; only the edges need a masked load (which AVX2 builds
/// and runs at several times the cost of a plain one).
fn image_lanes(spec: &PlaneSpec, lanes: usize, j0: usize) -> (usize, usize, usize) {
    let start = spec.left.saturating_sub(j0).min(lanes);
    let end = (spec.left + spec.width).saturating_sub(j0).min(lanes);
    (j0, start, end)
}

/// A column stride of 1: vector `v` is the image row's lanes from padded column `v · lanes`,
/// zeros elsewhere. Image rows are short (tens of floats), so per-row `memcpy`/`memset` calls
/// would cost more than the copying.
struct UnitStride {
    loads: Vec<(usize, usize, usize)>,
}

impl UnitStride {
    fn new(spec: &PlaneSpec, lanes: usize) -> UnitStride {
        let vectors = spec.layout.row_stride.div_ceil(lanes);
        UnitStride {
            loads: (0..vectors)
                .map(|v| image_lanes(spec, lanes, v * lanes))
                .collect(),
        }
    }
}

impl RowVectors for UnitStride {
    fn vectors(&self, _phase: usize) -> usize {
        self.loads.len()
    }

    #[inline(always)]
    unsafe fn vector<S: Simd>(
        &self,
        _phase: usize,
        v: usize,
        source: *const f32,
        mask_row: Option<*const f32>,
    ) -> S::V {
        // SAFETY: the caller's; the lanes loaded are inside the image row.
        unsafe { load_image_lanes::<S>(source, mask_row, self.loads[v]) }
    }
}

/// A column stride of 2: vector `v` of phase `b`'s plane row holds padded columns
/// `2(v·lanes + l) + b`, the even lanes of the two vectors of the image row from padded
/// column `2·v·lanes + b` ([`Simd::deinterleave`]). The element-by-element copy this replaced
/// took 76% of a stride-2 depthwise forward pass (docs/performance.md, "Phase planes a vector
/// at a time").
struct ColumnStride2 {
    /// Per phase, per vector of a plane row: its two loads.
    loads: Vec<Vec<[(usize, usize, usize); 2]>>,
}

impl ColumnStride2 {
    fn new(spec: &PlaneSpec, lanes: usize) -> ColumnStride2 {
        let vectors = spec.layout.row_stride.div_ceil(lanes);
        let loads = spec
            .phases
            .iter()
            .map(|&(_, b)| {
                (0..vectors)
                    .map(|v| {
                        let j0 = 2 * v * lanes + b;
                        [
                            image_lanes(spec, lanes, j0),
                            image_lanes(spec, lanes, j0 + lanes),
                        ]
                    })
                    .collect()
            })
            .collect();
        ColumnStride2 { loads }
    }
}

impl RowVectors for ColumnStride2 {
    fn vectors(&self, phase: usize) -> usize {
        self.loads[phase].len()
    }

    #[inline(always)]
    unsafe fn vector<S: Simd>(
        &self,
        phase: usize,
        v: usize,
        source: *const f32,
        mask_row: Option<*const f32>,
    ) -> S::V {
        let [lo, hi] = self.loads[phase][v];
        // SAFETY: the caller's; the lanes loaded are inside the image row.
        unsafe {
            let lo = load_image_lanes::<S>(source, mask_row, lo);
            S::deinterleave(lo, load_image_lanes::<S>(source, mask_row, hi)).0
        }
    }
}

/// Lanes `start..end` of the row `source` (through the ReLU's mask `mask_row`) from column
/// `j0`, zeros elsewhere.
///
/// # Safety
/// Lanes `start..end` from `j0` lie inside the row (and the mask's).
#[inline(always)]
unsafe fn load_image_lanes<S: Simd>(
    source: *const f32,
    mask_row: Option<*const f32>,
    (j0, start, end): (usize, usize, usize),
) -> S::V {
    if start >= end {
        return unsafe { S::splat(0.0) };
    }
    // SAFETY: the caller's.
    unsafe {
        let v = S::load_part(source.wrapping_add(j0), start, end);
        match mask_row {
            Some(m) => S::relu_mask(v, S::load_part(m.wrapping_add(j0), start, end)),
            None => v,
        }
    }
}

/// `fill` a vector at a time: every plane row, in order, as `rows` builds it from its image
/// row, or zeros where the row is padding. Each row is stored as whole vectors, the last one
/// running into the next row, which is written after it.
struct Fill<'a, R> {
    spec: &'a PlaneSpec,
    image: &'a [f32],
    mask: Option<&'a [f32]>,
    rows: R,
}

impl<R: RowVectors> SimdKernel<*mut f32> for Fill<'_, R> {
    /// Into `base`, which holds the layout's planes and [`FILL_OVERRUN`] floats more.
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, base: *mut f32) {
        let Fill {
            spec,
            image,
            mask,
            ref rows,
        } = *self;
        let layout = spec.layout;
        let (lanes, row_stride) = (S::LANES, layout.row_stride);
        for c in 0..spec.channels {
            let channel = image[c * spec.height * spec.width..].as_ptr();
            let mask_channel = mask.map(|m| m[c * spec.height * spec.width..].as_ptr());
            for (p, &(a, _)) in spec.phases.iter().enumerate() {
                let plane = (c * spec.phases.len() + p) * layout.plane_len();
                for i in 0..layout.rows {
                    // SAFETY: rows are written in order and each stores at most `lanes − 1`
                    // floats past its end, inside the next row or the FILL_OVERRUN floats;
                    // loads touch only lanes inside the image row.
                    unsafe {
                        let row = base.add(plane + i * row_stride);
                        let u = (spec.stride[0] * i + a)
                            .checked_sub(spec.top)
                            .filter(|&u| u < spec.height);
                        let Some(u) = u else {
                            for v in 0..rows.vectors(p) {
                                S::store(row.add(v * lanes), S::splat(0.0));
                            }
                            continue;
                        };
                        // Column j holds image column j − left.
                        let source = channel.add(u * spec.width).wrapping_sub(spec.left);
                        let mask_row =
                            mask_channel.map(|m| m.add(u * spec.width).wrapping_sub(spec.left));
                        for v in 0..rows.vectors(p) {
                            S::store(row.add(v * lanes), rows.vector::<S>(p, v, source, mask_row));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::forward::source_planes;
    use crate::geometry::ConvGeometry;
    use crate::planes::FILL_OVERRUN;
    use crate::simd::Isa;

    #[test]
    fn vector_copies_give_the_element_by_element_copy() {
        // (channels, [h, w], kernel, stride, padding): strides 2 and 1 with every padding the
        // zoo uses, uneven padding, odd sizes, rows shorter and longer than a vector.
        let cases = [
            (3, [9, 9], 3, [2, 2], [(1, 1), (1, 1)]),
            (2, [32, 32], 3, [2, 2], [(0, 1), (0, 1)]),
            (4, [7, 13], 3, [1, 2], [(2, 0), (1, 2)]),
            (1, [5, 40], 5, [2, 2], [(2, 2), (2, 2)]),
            (2, [8, 8], 1, [2, 2], [(0, 0), (0, 0)]),
            (3, [6, 11], 3, [1, 1], [(1, 1), (1, 1)]),
        ];
        for (channels, [h, w], kernel, stride, padding) in cases {
            let g = ConvGeometry::new(
                [1, channels, h, w],
                [4, channels, kernel, kernel],
                stride,
                padding,
                [1, 1],
                1,
            )
            .unwrap();
            let image: Vec<f32> = (0..g.in_image()).map(|i| i as f32 - 40.5).collect();
            let relu: Vec<f32> = (0..g.in_image()).map(|i| (i % 3) as f32 - 1.0).collect();
            for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
                if !isa.is_available() {
                    continue;
                }
                let spec = source_planes(isa, &g);
                for mask in [None, Some(&relu[..])] {
                    let len = spec.layout.total_len();
                    let mut ours = vec![f32::NAN; len + FILL_OVERRUN];
                    let mut expected = vec![f32::NAN; len + FILL_OVERRUN];
                    spec.fill_masked(&image, mask, &mut ours);
                    spec.fill_element_by_element(&image, mask, &mut expected);
                    let bits = |v: &[f32]| v[..len].iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&ours), bits(&expected), "{g:?} on {isa:?}");
                }
            }
        }
    }
}
