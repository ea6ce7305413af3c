//! Max pooling with non-overlapping windows (the zoo's 2×2, stride 2), forward and backward.
//!
//! burn-flex's max pool is a general scalar loop that divides per output element and always
//! records 64-bit indices; on small-cnn it cost as much as all four convolutions together
//! (docs/performance.md). Windows that tile the input need none of that: each output is the
//! maximum of its k×k block, and its gradient goes to that block's argmax, kept as one byte.
//! Ties and NaNs follow PyTorch and burn-flex: the first maximum in row-major order wins, a NaN
//! always wins (so the last NaN of a window is the one reported). The zoo's 2 × 2 windows run on
//! vectors ([`super::pool_2x2`]), other windows on the scalar loops here, which are also the
//! reference the vector kernels are tested against.

use super::output::par_images;
use super::pool_2x2::{Backward2x2, Forward2x2};
use super::simd::{Isa, run_on};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Input values a parallel task of the 2 × 2 kernels takes at least (whole planes), so that a
/// task's work outweighs handing it to another thread (`micro-cnn`'s first pooling: 49 tasks).
const TASK_INPUT: usize = 16 * 1024;

/// The shape of a pooling: NCHW input, a square window equal to its stride.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    pub batch: usize,
    pub channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub window: usize,
}

impl PoolGeometry {
    pub fn out_h(&self) -> usize {
        self.in_h / self.window
    }

    pub fn out_w(&self) -> usize {
        self.in_w / self.window
    }

    pub fn planes(&self) -> usize {
        self.batch * self.channels
    }

    /// Values in one input plane.
    pub fn in_plane(&self) -> usize {
        self.in_h * self.in_w
    }

    /// Windows in one output plane.
    pub fn out_plane(&self) -> usize {
        self.out_h() * self.out_w()
    }

    pub fn out_dims(&self) -> [usize; 4] {
        [self.batch, self.channels, self.out_h(), self.out_w()]
    }
}

/// Maxima of every window, and (if asked) the argmax within each window, row-major.
pub fn max_pool_forward(g: &PoolGeometry, x: &[f32], with_argmax: bool) -> (Vec<f32>, Vec<u8>) {
    max_pool_forward_on(Isa::detected(), g, x, with_argmax)
}

/// [`max_pool_forward`] on `isa`'s vectors (2 × 2 windows; other windows run scalar code).
pub(crate) fn max_pool_forward_on(
    isa: Isa,
    g: &PoolGeometry,
    x: &[f32],
    with_argmax: bool,
) -> (Vec<f32>, Vec<u8>) {
    assert_eq!(x.len(), g.planes() * g.in_plane(), "input length");
    if g.window != 2 {
        return scalar_forward(g, x, with_argmax);
    }
    let len = g.planes() * g.out_plane();
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let mut argmax: Vec<u8> = Vec::with_capacity(if with_argmax { len } else { 0 });
    if len > 0 {
        let task_planes = planes_per_task(g.in_plane());
        let per_task = task_planes * g.out_plane();
        let run = |task: usize, out: &mut [MaybeUninit<f32>], argmax| {
            let kernel = Forward2x2 {
                geometry: *g,
                input: &x[task * task_planes * g.in_plane()..],
            };
            // SAFETY: `isa` runs here (the caller's promise, as for every kernel), and the
            // kernel reads inside `input` and writes inside its two buffers.
            unsafe { run_on(isa, &kernel, (out, argmax)) }
        };
        let out_chunks = out.spare_capacity_mut()[..len].par_chunks_mut(per_task);
        if with_argmax {
            out_chunks
                .zip(argmax.spare_capacity_mut()[..len].par_chunks_mut(per_task))
                .enumerate()
                .for_each(|(task, (out, argmax))| run(task, out, Some(argmax)));
        } else {
            out_chunks
                .enumerate()
                .for_each(|(task, out)| run(task, out, None));
        }
        // SAFETY: the forward kernel writes every window of its planes, and the tasks cover
        // all planes (and all of the argmax, where there is one).
        unsafe {
            out.set_len(len);
            argmax.set_len(if with_argmax { len } else { 0 });
        }
    }
    (out, argmax)
}

/// Whole planes per parallel task: at least [`TASK_INPUT`] input values.
fn planes_per_task(plane_len: usize) -> usize {
    TASK_INPUT.div_ceil(plane_len.max(1))
}

/// Any window, one at a time: the reference the vector kernels are tested against.
pub(crate) fn scalar_forward(
    g: &PoolGeometry,
    x: &[f32],
    with_argmax: bool,
) -> (Vec<f32>, Vec<u8>) {
    let k = g.window;
    let (out_h, out_w) = (g.out_h(), g.out_w());
    let plane_out = g.out_plane();
    let mut out = vec![0.0f32; g.planes() * plane_out];
    let mut argmax = vec![0u8; if with_argmax { out.len() } else { 0 }];
    let work = |plane: usize, out: &mut [f32], mut argmax: Option<&mut [u8]>| {
        let input = &x[plane * g.in_plane()..][..g.in_plane()];
        for oh in 0..out_h {
            for ow in 0..out_w {
                let mut best = f32::NEG_INFINITY;
                let mut best_at = 0u8;
                for i in 0..k {
                    let row = &input[(oh * k + i) * g.in_w + ow * k..][..k];
                    for (j, &v) in row.iter().enumerate() {
                        if (i == 0 && j == 0) || v > best || v.is_nan() {
                            best = v;
                            best_at = (i * k + j) as u8;
                        }
                    }
                }
                out[oh * out_w + ow] = best;
                if let Some(argmax) = argmax.as_deref_mut() {
                    argmax[oh * out_w + ow] = best_at;
                }
            }
        }
    };
    if plane_out == 0 {
        return (out, argmax);
    }
    if with_argmax {
        out.par_chunks_mut(plane_out)
            .zip(argmax.par_chunks_mut(plane_out))
            .enumerate()
            .for_each(|(plane, (out, argmax))| work(plane, out, Some(argmax)));
    } else {
        out.par_chunks_mut(plane_out)
            .enumerate()
            .for_each(|(plane, out)| work(plane, out, None));
    }
    (out, argmax)
}

/// The input gradient: each output's gradient at its window's argmax, zero elsewhere.
pub fn max_pool_backward(g: &PoolGeometry, argmax: &[u8], output_grad: &[f32]) -> Vec<f32> {
    max_pool_backward_on(Isa::detected(), g, argmax, output_grad)
}

/// [`max_pool_backward`] on `isa`'s vectors (2 × 2 windows; other windows run scalar code).
pub(crate) fn max_pool_backward_on(
    isa: Isa,
    g: &PoolGeometry,
    argmax: &[u8],
    output_grad: &[f32],
) -> Vec<f32> {
    let windows = g.planes() * g.out_plane();
    assert_eq!(output_grad.len(), windows, "gradient length");
    assert_eq!(argmax.len(), windows, "argmax length");
    if windows == 0 {
        return vec![0.0; g.planes() * g.in_plane()];
    }
    if g.window != 2 {
        return scalar_backward(g, argmax, output_grad);
    }
    let len = g.planes() * g.in_plane();
    let task_planes = planes_per_task(g.in_plane());
    let mut grad: Vec<f32> = Vec::with_capacity(len);
    grad.spare_capacity_mut()[..len]
        .par_chunks_mut(task_planes * g.in_plane())
        .enumerate()
        .for_each(|(task, grad)| {
            let first_window = task * task_planes * g.out_plane();
            let kernel = Backward2x2 {
                geometry: *g,
                argmax: &argmax[first_window..],
                output_grad: &output_grad[first_window..],
            };
            // SAFETY: as in the forward pass (an argmax outside its window, which the forward
            // pass never gives, would leave that window's gradient zero here; the scalar loops
            // of other windows panic on it).
            unsafe { run_on(isa, &kernel, grad) }
        });
    // SAFETY: the backward kernel writes every position of its planes.
    unsafe { grad.set_len(len) };
    grad
}

/// Any window: the gradient zeroed, then each window's value put at its argmax.
pub(crate) fn scalar_backward(g: &PoolGeometry, argmax: &[u8], output_grad: &[f32]) -> Vec<f32> {
    let k = g.window;
    let out_w = g.out_w();
    let plane_out = g.out_plane();
    assert_eq!(output_grad.len(), g.planes() * plane_out, "gradient length");
    // Where argmax a of a window lies relative to the window's corner.
    let offsets: Vec<usize> = (0..k * k).map(|a| (a / k) * g.in_w + a % k).collect();
    par_images(g.planes(), g.in_plane(), |plane, grad| {
        let argmax = &argmax[plane * plane_out..][..plane_out];
        let output_grad = &output_grad[plane * plane_out..][..plane_out];
        for (oh, (argmax, output_grad)) in argmax
            .chunks_exact(out_w)
            .zip(output_grad.chunks_exact(out_w))
            .enumerate()
        {
            let corner_row = oh * k * g.in_w;
            for (ow, (&at, &value)) in argmax.iter().zip(output_grad).enumerate() {
                grad[corner_row + ow * k + offsets[usize::from(at)]] = value;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Few distinct values (so windows hold ties, +0 beside −0 among them), NaNs and infinities.
    fn values(len: usize, seed: usize) -> Vec<f32> {
        let choices = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            2.5,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        (0..len)
            .map(|i| {
                let h = (i + seed).wrapping_mul(2_654_435_761) >> 7;
                // Mostly ordinary values, so NaNs and infinities do not win every window.
                if h.is_multiple_of(5) {
                    choices[h / 5 % 8]
                } else {
                    choices[2 + h / 5 % 3] * (h % 7) as f32
                }
            })
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Every shape the scalar loops take: widths from 1 to 40 (rows shorter than a vector,
    /// whole vectors and tails), odd heights and widths, and batches that span several tasks.
    fn shapes() -> Vec<PoolGeometry> {
        let mut shapes: Vec<[usize; 4]> = (1..=40).map(|w| [2, 3, 5, w]).collect();
        shapes.extend([
            [4, 9, 28, 28],
            [3, 16, 14, 14],
            [2, 2, 6, 38],
            [1, 1, 1, 1],
            [1, 2, 7, 33],
        ]);
        shapes.extend([[3, 40, 12, 12], [1, 1, 2, 2], [5, 7, 4, 4], [0, 3, 4, 4]]);
        shapes
            .into_iter()
            .map(|[batch, channels, in_h, in_w]| PoolGeometry {
                batch,
                channels,
                in_h,
                in_w,
                window: 2,
            })
            .collect()
    }

    #[test]
    fn the_vector_kernels_give_the_scalar_windows_bits_on_every_instruction_set() {
        for (case, g) in shapes().into_iter().enumerate() {
            let x = values(g.planes() * g.in_plane(), case);
            let (out, argmax) = scalar_forward(&g, &x, true);
            let windows = out.len();
            let dy: Vec<f32> = (0..windows)
                .map(|i| i as f32 - 0.5 * windows as f32)
                .collect();
            let grad = if windows == 0 {
                vec![0.0; x.len()]
            } else {
                scalar_backward(&g, &argmax, &dy)
            };
            for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
                if !isa.is_available() {
                    continue;
                }
                let name = format!("{} {g:?}", isa.name());
                let (vector_out, vector_argmax) = max_pool_forward_on(isa, &g, &x, true);
                assert_eq!(bits(&vector_out), bits(&out), "forward, {name}");
                assert_eq!(vector_argmax, argmax, "argmax, {name}");
                let (alone, none) = max_pool_forward_on(isa, &g, &x, false);
                assert_eq!(bits(&alone), bits(&out), "forward without argmax, {name}");
                assert!(none.is_empty());
                let vector_grad = max_pool_backward_on(isa, &g, &argmax, &dy);
                assert_eq!(bits(&vector_grad), bits(&grad), "backward, {name}");
            }
        }
    }

    /// The reference itself, by hand: a NaN wins (the last one), the first maximum wins a tie
    /// (+0 before −0 keeps +0), and the gradient goes to the argmax alone.
    #[test]
    fn the_scalar_windows_follow_pytorchs_rules() {
        let g = PoolGeometry {
            batch: 1,
            channels: 1,
            in_h: 2,
            in_w: 8,
            window: 2,
        };
        let nan = f32::NAN;
        #[rustfmt::skip]
        let x = [
            0.0, -0.0, 1.0, nan, 3.0, 3.0, nan, 1.0,
            -0.0, 0.0, 2.0, 5.0, 1.0, 3.0, 2.0, nan,
        ];
        let (out, argmax) = scalar_forward(&g, &x, true);
        assert_eq!(bits(&out[..1]), bits(&[0.0]));
        assert!(out[1].is_nan() && out[3].is_nan());
        assert_eq!(out[2], 3.0);
        assert_eq!(argmax, [0, 1, 0, 3]);
        let grad = scalar_backward(&g, &argmax, &[1.0, 2.0, 3.0, 4.0]);
        #[rustfmt::skip]
        assert_eq!(grad, [
            1.0, 0.0, 0.0, 2.0, 3.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0,
        ]);
    }
}
