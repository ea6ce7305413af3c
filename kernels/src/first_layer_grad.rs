//! The input gradient of a first layer (one input channel, stride 1, 3 × 3 or 5 × 5), the
//! counterpart of [`super::first_layer`]: the image's gradient is one small plane, the sum over
//! every output channel of its padded output gradient correlated with the flipped kernel.
//!
//! The row engine ([`super::rows`]) copies all the output channels' gradients into padded
//! planes first (115 KB per image on small-cnn's conv1, past the L1 cache) with the general
//! plane fill, whose masked loads at row edges took about half of the pass in a profile on
//! Zen 3, and then reads every plane for every tile. Here one output channel at a time is
//! copied, whole vectors along each row, into a small padded plane that stays in L1 (its
//! plane zeroed once per image, its border never written), and added into the image's gradient, which stays there too:
//! each tile of rows loads its partial sums, adds that channel's K² terms and stores them back.
//! The terms are the row engine's (the same padded values, the same weights) in its order,
//! output channel by output channel, then kernel column, then kernel row, so the two give the
//! same bits (tested). A first layer that shrinks the image (unpadded) or keeps its size takes
//! the tap-sum engine ([`super::first_layer_taps`]) instead, which does not spend multiply-adds
//! on the border (see `input_grad.rs`); here stay layers that grow the image (padded by more
//! than the kernel's half; none in the zoo).
//!
//! A row of `w` values takes ⌈w / lanes⌉ vectors, the last one moved back to end at the row's
//! end: within a tile every vector is loaded before any is stored, so the lanes two vectors
//! share get the same sum from both. Tiles of rows never overlap (the rows left over after the
//! last whole tile run one at a time): a row updated twice would take a channel's terms twice.

use super::geometry::ConvGeometry;
use super::row_tile::{MAX_VECTORS, add_source_row, tile_rows, vector_starts};
use super::simd::{Isa, Simd, SimdKernel, prefetch_line, run_on};

/// The kernel sides this engine takes: each has its arms in [`image_generic`]'s dispatch.
const KERNELS: [usize; 2] = [3, 5];

/// The plan of one first-layer input gradient, the same for every image.
#[derive(Debug, Clone)]
pub struct FirstLayerGrad {
    /// The kernel's side, K.
    kernel: usize,
    /// `[out channel][kw][kh]`: the weight of the term of kernel column kw that reads the padded
    /// gradient kh rows down, `weight[co][K − 1 − kh][kw]` (the kernel flipped vertically here;
    /// the column flip is in [`FirstLayerGrad::origin`]'s offsets).
    weights: Vec<f32>,
    /// One output channel's gradient, `[grad_h][grad_w]`, is copied into a plane of
    /// `plane_rows × row_stride` floats K − 1 rows down and K − 1 columns right, zeros around
    /// it (the row engine's padded planes, one at a time).
    grad_h: usize,
    grad_w: usize,
    plane_rows: usize,
    row_stride: usize,
    /// Where input position (0, 0) reads the padded plane for kernel row 0, column 0; column
    /// kw reads `kw` floats to the left.
    origin: usize,
    in_h: usize,
    in_w: usize,
    /// The first column of each vector of a row.
    starts: Vec<usize>,
    /// Input rows per register tile.
    tile_rows: usize,
    isa: Isa,
}

impl FirstLayerGrad {
    /// Plans the input gradient of a one-channel, stride-1 convolution `g` with `weight`
    /// (OIHW, `[out][1][kh][kw]`), or `None` unless it is one, its kernel is 3 × 3 or 5 × 5 and
    /// an input row takes one to four vectors.
    pub fn new(isa: Isa, g: &ConvGeometry, weight: &[f32]) -> Option<FirstLayerGrad> {
        let (in_size, out_size) = ([g.in_h, g.in_w], [g.out_h, g.out_w]);
        let (out_channels, pad_begin) = (g.out_channels, [g.pad_h.0, g.pad_w.0]);
        let [in_h, in_w] = in_size;
        let lanes = isa.lanes();
        let vectors = in_w.div_ceil(lanes);
        // Rows of the input and of the gradient at least a vector wide (the gradient's are
        // copied a vector at a time, the last one moved back to end at the row's end).
        let k = g.kernel_h;
        if !g.has_one_input_channel_at_stride_1()
            || g.kernel_w != k
            || !KERNELS.contains(&k)
            || in_w < lanes
            || out_size[1] < lanes
            || vectors > MAX_VECTORS
        {
            return None;
        }
        assert_eq!(weight.len(), out_channels * k * k, "weight length");
        // The copy puts gradient row u at plane row u + K − 1 (columns the same): the gradient
        // may reach past the input by at most K − 1 rows and columns (padding below the
        // kernel's size).
        assert!(
            out_size[0] <= in_h + pad_begin[0] && out_size[1] <= in_w + pad_begin[1],
            "a gradient of {out_size:?} for an input of {in_size:?} padded by {pad_begin:?}"
        );
        let tile_rows = tile_rows(vectors);
        let weights = (0..out_channels)
            .flat_map(|co| (0..k).flat_map(move |kw| (0..k).map(move |kh| (co, kw, kh))))
            .map(|(co, kw, kh)| weight[(co * k + (k - 1 - kh)) * k + kw])
            .collect();
        // Input row i reads plane rows i + pad … i + pad + K − 1, i.e. gradient rows
        // i + pad − K + 1 … i + pad (the plane holds gradient row u at row u + K − 1): every
        // read is inside it.
        let plane_rows = in_h + pad_begin[0] + k - 1;
        let row_stride = in_w + pad_begin[1] + k - 1;
        let origin = pad_begin[0] * row_stride + pad_begin[1] + k - 1;
        let starts = vector_starts(in_w, lanes);
        Some(FirstLayerGrad {
            kernel: k,
            weights,
            grad_h: out_size[0],
            grad_w: out_size[1],
            plane_rows,
            row_stride,
            origin,
            in_h,
            in_w,
            starts,
            tile_rows,
            isa,
        })
    }

    /// Floats of scratch one image needs (the padded plane).
    pub fn scratch_len(&self) -> usize {
        self.plane_rows * self.row_stride
    }

    /// One image: adds into `out` (`[in_h][in_w]`, zero to start with) the gradient from
    /// `output_grad` (`[out channel][out_h][out_w]`), through the ReLU's backward step where
    /// `relu_output` is given.
    pub fn run(
        &self,
        output_grad: &[f32],
        relu_output: Option<&[f32]>,
        scratch: &mut [f32],
        out: &mut [f32],
    ) {
        let channels = self.weights.len() / (self.kernel * self.kernel);
        assert_eq!(
            output_grad.len(),
            channels * self.grad_h * self.grad_w,
            "gradient length"
        );
        assert!(relu_output.is_none_or(|o| o.len() == output_grad.len()));
        assert_eq!(out.len(), self.in_h * self.in_w, "output length");
        let plane = &mut scratch[..self.scratch_len()];
        // The padding stays zero: each channel's copy writes only the gradient's positions.
        plane.fill(0.0);
        let image = Image {
            output_grad: output_grad.as_ptr(),
            relu_output: relu_output.map(<[f32]>::as_ptr),
            plane: plane.as_mut_ptr(),
            out: out.as_mut_ptr(),
        };
        // SAFETY: the lengths were checked above; the plane's reads end at its last float
        // (see `new`); the plan's ISA is available on this CPU.
        unsafe { run_on(self.isa, self, image) }
    }
}

/// The buffers of one image, checked by [`FirstLayerGrad::run`].
#[derive(Clone, Copy)]
struct Image {
    output_grad: *const f32,
    relu_output: Option<*const f32>,
    /// The padded plane, zero outside the gradient's positions.
    plane: *mut f32,
    out: *mut f32,
}

impl SimdKernel<Image> for FirstLayerGrad {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, image: Image) {
        unsafe { image_generic::<S>(self, image) }
    }
}

#[inline(always)]
unsafe fn image_generic<S: Simd>(p: &FirstLayerGrad, image: Image) {
    unsafe {
        match (p.kernel, p.starts.len(), p.tile_rows) {
            (3, 1, 8) => channels::<S, 3, 1, 8>(p, image),
            (3, 2, 4) => channels::<S, 3, 2, 4>(p, image),
            (3, 3, 3) => channels::<S, 3, 3, 3>(p, image),
            (3, 4, 2) => channels::<S, 3, 4, 2>(p, image),
            (5, 1, 8) => channels::<S, 5, 1, 8>(p, image),
            (5, 2, 4) => channels::<S, 5, 2, 4>(p, image),
            (5, 3, 3) => channels::<S, 5, 3, 3>(p, image),
            (5, 4, 2) => channels::<S, 5, 4, 2>(p, image),
            (k, n, m) => unreachable!(
                "no first-layer gradient kernel for {m} rows of {n} vectors, {k} × {k}"
            ),
        }
    }
}

/// Every output channel in turn: its gradient copied into the padded plane, then its terms
/// added into the image.
#[inline(always)]
unsafe fn channels<S: Simd, const K: usize, const N: usize, const M: usize>(
    p: &FirstLayerGrad,
    image: Image,
) {
    let (height, width, stride) = (p.grad_h, p.grad_w, p.row_stride);
    let plane_len = height * width;
    // The copy's vectors along a gradient row, the last one moved back to end at its end.
    let lanes = S::LANES;
    let copies = width.div_ceil(lanes);
    let count = p.weights.len() / (K * K);
    for (co, weights) in p.weights.chunks_exact(K * K).enumerate() {
        // SAFETY: see `FirstLayerGrad::run`; rows of the gradient are at least a vector wide
        // (checked in `new`), so each copy stays inside its row.
        unsafe {
            let grad = image.output_grad.add(co * plane_len);
            let mask = image.relu_output.map(|m| m.add(co * plane_len));
            for u in 0..height {
                let to = image.plane.add((u + K - 1) * stride + K - 1);
                for c in 0..copies {
                    let j = (c * lanes).min(width - lanes);
                    let v = S::load(grad.add(u * width + j));
                    let v = match mask {
                        Some(mask) => S::relu_mask(v, S::load(mask.add(u * width + j))),
                        None => v,
                    };
                    S::store(to.add(j), v);
                }
            }
            // The next channel's gradient (and mask) from memory while this one is added.
            if co + 1 < count {
                prefetch(grad.add(plane_len), plane_len);
                if let Some(mask) = mask {
                    prefetch(mask.add(plane_len), plane_len);
                }
            }
            add_channel::<S, K, N, M>(p, weights, image.plane, image.out);
        }
    }
}

/// Asks for `len` floats from `p` on into the cache (x86-64; nothing elsewhere).
#[inline(always)]
fn prefetch(p: *const f32, len: usize) {
    for offset in (0..len).step_by(16) {
        prefetch_line(p.wrapping_add(offset));
    }
}

/// One output channel's terms added into the whole image, `M` rows at a time, then the rows
/// left over one at a time.
#[inline(always)]
unsafe fn add_channel<S: Simd, const K: usize, const N: usize, const M: usize>(
    p: &FirstLayerGrad,
    weights: &[f32],
    source: *const f32,
    out: *mut f32,
) {
    let whole = p.in_h / M * M;
    unsafe {
        for i0 in (0..whole).step_by(M) {
            add_tile::<S, K, N, M>(p, weights, source, out, i0);
        }
        for i0 in whole..p.in_h {
            add_tile::<S, K, N, 1>(p, weights, source, out, i0);
        }
    }
}

/// Rows `i0..i0 + M` of the image: their partial sums loaded, this channel's terms added in
/// (kernel column, kernel row) order, stored back. Padded row r of the tile feeds row m through
/// kernel row r − m.
#[inline(always)]
unsafe fn add_tile<S: Simd, const K: usize, const N: usize, const M: usize>(
    p: &FirstLayerGrad,
    weights: &[f32],
    source: *const f32,
    out: *mut f32,
    i0: usize,
) {
    let stride = p.row_stride;
    let starts: [usize; N] = std::array::from_fn(|n| p.starts[n]);
    // SAFETY: see `FirstLayerGrad::run`.
    unsafe {
        let mut acc = [[S::splat(0.0); N]; M];
        for (m, acc) in acc.iter_mut().enumerate() {
            for (a, &start) in acc.iter_mut().zip(&starts) {
                *a = S::load(out.add((i0 + m) * p.in_w + start));
            }
        }
        let top = source.add(p.origin + i0 * stride);
        // Kernel columns outer, rows inner: the row engine's order.
        for kw in 0..K {
            for r in 0..M + K - 1 {
                let row = top.add(r * stride).sub(kw);
                add_source_row::<S, K, N, M>(&mut acc, r, row, &starts, |kh| weights[kw * K + kh]);
            }
        }
        for (m, acc) in acc.iter().enumerate() {
            for (a, &start) in acc.iter().zip(&starts) {
                S::store(out.add((i0 + m) * p.in_w + start), *a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ConvGeometry, FirstLayerGrad, Isa};

    fn plan_k(isa: Isa, k: usize, input: [usize; 2], pad: usize) -> Option<FirstLayerGrad> {
        let g = ConvGeometry::first_layer([k, k], 4, input, pad);
        FirstLayerGrad::new(isa, &g, &vec![0.5; 4 * k * k])
    }

    fn plan(isa: Isa, input: [usize; 2], pad: usize) -> Option<FirstLayerGrad> {
        plan_k(isa, 3, input, pad)
    }

    #[test]
    fn the_zoos_first_layers_run_on_it_and_other_shapes_do_not() {
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
            // small-cnn's conv1 (unpadded) and micro-cnn's (padded by 1), on 28 × 28 images.
            assert!(plan(isa, [28, 28], 0).is_some(), "{}", isa.name());
            assert!(plan(isa, [28, 28], 1).is_some(), "{}", isa.name());
            // madry-cnn's conv1: 5 × 5, padded by 2.
            assert!(plan_k(isa, 5, [28, 28], 2).is_some(), "{}", isa.name());
        }
        // Rows shorter than a vector or longer than four.
        assert!(plan(Isa::Portable, [28, 7], 0).is_none());
        assert!(plan(Isa::Portable, [28, 33], 0).is_none());
        // Kernels without a compiled tile, or not square.
        assert!(plan_k(Isa::Portable, 7, [28, 28], 3).is_none());
        let not_square = ConvGeometry::first_layer([3, 5], 4, [28, 28], 0);
        assert!(FirstLayerGrad::new(Isa::Portable, &not_square, &[0.5; 60]).is_none());
        // Not a first layer: two input channels.
        let two_channels =
            ConvGeometry::new([1, 2, 28, 28], [4, 2, 3, 3], [1, 1], [(1, 1); 2], [1, 1], 1)
                .unwrap();
        assert!(FirstLayerGrad::new(Isa::Portable, &two_channels, &[0.5; 72]).is_none());
    }

    #[test]
    fn rows_left_over_after_the_tiles_take_each_channel_once() {
        // 11 rows of 2-row tiles (4 vectors a row) leave one row; with every weight and
        // gradient 1 an interior value is 9 terms × 4 channels, a corner 1 × 4.
        let (input, pad) = ([11, 29], 0);
        let p = plan(Isa::Portable, input, pad).unwrap();
        let ones = |len| vec![1.0f32; len];
        let p = FirstLayerGrad {
            weights: ones(36),
            ..p
        };
        let mut scratch = vec![f32::NAN; p.scratch_len()];
        let mut out = vec![0.0; input[0] * input[1]];
        p.run(&ones(4 * 9 * 27), None, &mut scratch, &mut out);
        assert_eq!(out[5 * 29 + 10], 36.0);
        assert_eq!(out[0], 4.0);
        assert_eq!(out[10 * 29 + 28], 4.0);
    }

    #[test]
    fn a_five_by_five_kernel_takes_every_term_once() {
        // 13 × 19 input padded by 2 (the gradient the same size), 4 channels, every weight and
        // gradient 1: a value takes one term per gradient position within 2 of it, per channel.
        let (input, pad) = ([13, 19], 2);
        let p = plan_k(Isa::Portable, 5, input, pad).unwrap();
        let p = FirstLayerGrad {
            weights: vec![1.0; 100],
            ..p
        };
        let mut scratch = vec![f32::NAN; p.scratch_len()];
        let mut out = vec![0.0; input[0] * input[1]];
        p.run(&vec![1.0; 4 * 13 * 19], None, &mut scratch, &mut out);
        let reach = |i: usize, n: usize| (i.saturating_sub(2)..(i + 3).min(n)).len() as f32;
        for i in 0..13 {
            for j in 0..19 {
                assert_eq!(
                    out[i * 19 + j],
                    4.0 * reach(i, 13) * reach(j, 19),
                    "({i}, {j})"
                );
            }
        }
    }
}
