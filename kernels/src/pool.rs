//! Max pooling with non-overlapping windows (the zoo's 2×2, stride 2), forward and backward.
//!
//! burn-flex's max pool is a general scalar loop that divides per output element and always
//! records 64-bit indices; on small-cnn it cost as much as all four convolutions together
//! (docs/performance.md). Windows that tile the input need none of that: each output is the
//! maximum of its k×k block, and its gradient goes to that block's argmax, kept as one byte.
//! Ties and NaNs follow PyTorch and burn-flex: the first maximum in row-major order wins, a NaN
//! always wins (so the last NaN of a window is the one reported).

use super::output::par_images;
use super::simd::Isa;
use rayon::prelude::*;

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

    pub fn out_dims(&self) -> [usize; 4] {
        [self.batch, self.channels, self.out_h(), self.out_w()]
    }
}

/// Maxima of every window, and (if asked) the argmax within each window, row-major.
pub fn max_pool_forward(g: &PoolGeometry, x: &[f32], with_argmax: bool) -> (Vec<f32>, Vec<u8>) {
    assert_eq!(x.len(), g.planes() * g.in_h * g.in_w, "input length");
    let k = g.window;
    let (out_h, out_w) = (g.out_h(), g.out_w());
    let plane_out = out_h * out_w;
    let mut out = vec![0.0f32; g.planes() * plane_out];
    let mut argmax = vec![0u8; if with_argmax { out.len() } else { 0 }];
    let work = |plane: usize, out: &mut [f32], mut argmax: Option<&mut [u8]>| {
        let input = &x[plane * g.in_h * g.in_w..][..g.in_h * g.in_w];
        if k == 2 {
            for (oh, out) in out.chunks_exact_mut(out_w).enumerate() {
                let top = &input[2 * oh * g.in_w..][..2 * out_w];
                let bottom = &input[(2 * oh + 1) * g.in_w..][..2 * out_w];
                let argmax = argmax.as_deref_mut().map(|a| &mut a[oh * out_w..][..out_w]);
                pool_rows_2x2(top, bottom, out, argmax);
            }
            return;
        }
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

/// One row of 2×2 windows, compiled for the widest vectors this CPU has (the loop is
/// branch-free, so the compiler vectorises it; the result is the same on every ISA).
fn pool_rows_2x2(top: &[f32], bottom: &[f32], out: &mut [f32], argmax: Option<&mut [u8]>) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        fn avx512(top: &[f32], bottom: &[f32], out: &mut [f32], argmax: Option<&mut [u8]>) {
            pool_rows_2x2_body(top, bottom, out, argmax)
        }
        #[target_feature(enable = "avx2")]
        fn avx2(top: &[f32], bottom: &[f32], out: &mut [f32], argmax: Option<&mut [u8]>) {
            pool_rows_2x2_body(top, bottom, out, argmax)
        }
        // SAFETY: each is called only where the CPU has its features.
        match Isa::detected() {
            Isa::Avx512 if std::arch::is_x86_feature_detected!("avx512bw") => unsafe {
                return avx512(top, bottom, out, argmax);
            },
            Isa::Avx512 | Isa::Avx2 => unsafe { return avx2(top, bottom, out, argmax) },
            Isa::Portable => {}
        }
    }
    pool_rows_2x2_body(top, bottom, out, argmax)
}

#[inline(always)]
fn pool_rows_2x2_body(top: &[f32], bottom: &[f32], out: &mut [f32], argmax: Option<&mut [u8]>) {
    let window = |t: &[f32], b: &[f32]| {
        let mut best = t[0];
        let mut at = 0u8;
        for (i, v) in [(1u8, t[1]), (2, b[0]), (3, b[1])] {
            let take = v > best || v.is_nan();
            best = if take { v } else { best };
            at = if take { i } else { at };
        }
        (best, at)
    };
    let pairs = top.chunks_exact(2).zip(bottom.chunks_exact(2));
    match argmax {
        Some(argmax) => {
            for (((t, b), out), argmax) in pairs.zip(out.iter_mut()).zip(argmax.iter_mut()) {
                (*out, *argmax) = window(t, b);
            }
        }
        None => {
            for ((t, b), out) in pairs.zip(out.iter_mut()) {
                *out = window(t, b).0;
            }
        }
    }
}

/// The input gradient: each output's gradient at its window's argmax, zero elsewhere.
pub fn max_pool_backward(g: &PoolGeometry, argmax: &[u8], output_grad: &[f32]) -> Vec<f32> {
    let k = g.window;
    let (out_h, out_w) = (g.out_h(), g.out_w());
    let plane_out = out_h * out_w;
    assert_eq!(output_grad.len(), g.planes() * plane_out, "gradient length");
    // Where argmax a of a window lies relative to the window's corner.
    let offsets: Vec<usize> = (0..k * k).map(|a| (a / k) * g.in_w + a % k).collect();
    par_images(g.planes(), g.in_h * g.in_w, |plane, grad| {
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
