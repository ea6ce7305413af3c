//! Max pooling's 2 × 2 windows at stride 2 (the zoo's only pooling) on vectors: a run of up to
//! `LANES` windows of an output row at a time, the two columns of each window separated by
//! [`Simd::deinterleave`], the scan of [`super::pool`]'s scalar window done lane by lane in its
//! order (top left, top right, bottom left, bottom right), so each lane is that window's value
//! and argmax to the bit on every instruction set.
//!
//! The scalar loop this replaces ran a row of windows at a time through the compiler's
//! vectoriser; the zoo's rows are 14 and 7 windows long (`micro-cnn`), shorter than an AVX-512
//! vector, so it ran scalar code and was about a tenth of `micro-cnn`'s PGD step
//! (docs/performance.md).
//!
//! Both passes store each output's own value once, in increasing address order, and a vector's
//! store may run past the values it owns (the rest of a row, the next row) where the buffer goes
//! on: every position it spoils gets its own store later. Only a store that might leave the
//! buffer (tested as if two whole vectors were stored) is cut to its lanes. The buffers hold
//! whole planes (checked), so every position has an owner.

use super::pool::PoolGeometry;
use super::simd::{Simd, SimdKernel};
use std::mem::MaybeUninit;

/// The forward pass over whole planes: `out` (and `argmax`, if given) holds
/// `out.len() / out_plane()` planes' windows, `input` starts at the first of those planes' input
/// and may go on past them (it is read, never beyond its end).
pub(crate) struct Forward2x2<'a> {
    /// Its window is 2 (an odd last row or column lies in no window, as in burn and PyTorch).
    pub geometry: PoolGeometry,
    pub input: &'a [f32],
}

impl<'a>
    SimdKernel<(
        &'a mut [MaybeUninit<f32>],
        Option<&'a mut [MaybeUninit<u8>]>,
    )> for Forward2x2<'_>
{
    #[inline(always)]
    unsafe fn run<S: Simd>(
        &self,
        (out, mut argmax): (&mut [MaybeUninit<f32>], Option<&mut [MaybeUninit<u8>]>),
    ) {
        let p = self.geometry;
        debug_assert_eq!(p.window, 2);
        let (out_h, out_w) = (p.out_h(), p.out_w());
        let count = out.len() / p.out_plane();
        assert_eq!(count * p.out_plane(), out.len(), "whole planes");
        assert!(
            count * p.in_plane() <= self.input.len(),
            "input shorter than its planes"
        );
        assert!(argmax.as_ref().is_none_or(|a| a.len() == out.len()));
        unsafe {
            let index = [0.0, 1.0, 2.0, 3.0].map(|i| S::splat(i));
            for plane in 0..count {
                for oh in 0..out_h {
                    let top = plane * p.in_plane() + 2 * oh * p.in_w;
                    let row = (plane * out_h + oh) * out_w;
                    for start in (0..out_w).step_by(S::LANES) {
                        let n = (out_w - start).min(S::LANES);
                        let (t0, t1) = load_pairs::<S>(self.input, top + 2 * start, n);
                        let (b0, b1) = load_pairs::<S>(self.input, top + p.in_w + 2 * start, n);
                        let (best, at) = (t0, index[0]);
                        let (best, at) = S::max_step(best, at, t1, index[1]);
                        let (best, at) = S::max_step(best, at, b0, index[2]);
                        let (best, at) = S::max_step(best, at, b1, index[3]);
                        store_prefix::<S>(out, row + start, best, n);
                        if let Some(argmax) = argmax.as_deref_mut() {
                            store_bytes_prefix::<S>(argmax, row + start, at, n);
                        }
                    }
                }
            }
        }
    }
}

/// The backward step over whole planes: `grad` holds `grad.len() / in_plane()` planes' input
/// gradient; `argmax` and `output_grad` start at the first of those planes' windows and may go
/// on past them.
pub(crate) struct Backward2x2<'a> {
    /// Its window is 2 (an odd last row or column lies in no window, as in burn and PyTorch).
    pub geometry: PoolGeometry,
    pub argmax: &'a [u8],
    pub output_grad: &'a [f32],
}

impl SimdKernel<&mut [MaybeUninit<f32>]> for Backward2x2<'_> {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, grad: &mut [MaybeUninit<f32>]) {
        let p = self.geometry;
        debug_assert_eq!(p.window, 2);
        let (out_h, out_w) = (p.out_h(), p.out_w());
        let count = grad.len() / p.in_plane();
        assert_eq!(count * p.in_plane(), grad.len(), "whole planes");
        let windows = count * p.out_plane();
        assert!(windows <= self.argmax.len() && windows <= self.output_grad.len());
        unsafe {
            let index = [0.0, 1.0, 2.0, 3.0].map(|i| S::splat(i));
            for plane in 0..count {
                for oh in 0..out_h {
                    let row = (plane * out_h + oh) * out_w;
                    // The window row's top input row, then its bottom one: each is written
                    // whole (its odd last column zeroed) before the next begins.
                    for half in 0..2 {
                        let first = plane * p.in_plane() + (2 * oh + half) * p.in_w;
                        for start in (0..out_w).step_by(S::LANES) {
                            let n = (out_w - start).min(S::LANES);
                            let value = load_prefix::<S>(self.output_grad, row + start, n);
                            let at = load_bytes_prefix::<S>(self.argmax, row + start, n);
                            let left = S::select_equal(at, index[2 * half], value);
                            let right = S::select_equal(at, index[2 * half + 1], value);
                            let (lo, hi) = S::interleave(left, right);
                            store_pairs::<S>(grad, first + 2 * start, (lo, hi), n);
                        }
                        if p.in_w % 2 == 1 {
                            grad[first + p.in_w - 1].write(0.0);
                        }
                    }
                }
                // An odd last row lies in no window.
                let plane_end = (plane + 1) * p.in_plane();
                for position in &mut grad[plane_end - (p.in_h % 2) * p.in_w..plane_end] {
                    position.write(0.0);
                }
            }
        }
    }
}

/// The `2n` values from `values[start..]` split into their even and odd ones (whole vectors
/// where the slice goes on that far).
#[inline(always)]
unsafe fn load_pairs<S: Simd>(values: &[f32], start: usize, n: usize) -> (S::V, S::V) {
    let pointer = values[start..].as_ptr();
    let two_vectors = 2 * n > S::LANES;
    unsafe {
        if start + 2 * S::LANES <= values.len() {
            let lo = S::load(pointer);
            let hi = if two_vectors {
                S::load(pointer.add(S::LANES))
            } else {
                lo
            };
            S::deinterleave(lo, hi)
        } else {
            let lo = S::load_lanes(pointer, 0, (2 * n).min(S::LANES));
            let hi = if two_vectors {
                S::load_lanes(pointer.add(S::LANES), 0, 2 * n - S::LANES)
            } else {
                lo
            };
            S::deinterleave(lo, hi)
        }
    }
}

/// `n` values from `values[start..]` in lanes `0..n` (a whole vector where the slice goes on).
#[inline(always)]
unsafe fn load_prefix<S: Simd>(values: &[f32], start: usize, n: usize) -> S::V {
    let pointer = values[start..].as_ptr();
    unsafe {
        if start + S::LANES <= values.len() {
            S::load(pointer)
        } else {
            S::load_lanes(pointer, 0, n)
        }
    }
}

/// As [`load_prefix`], for bytes.
#[inline(always)]
unsafe fn load_bytes_prefix<S: Simd>(bytes: &[u8], start: usize, n: usize) -> S::V {
    let whole = start + S::LANES <= bytes.len();
    unsafe { S::load_bytes(bytes[start..].as_ptr(), if whole { S::LANES } else { n }) }
}

/// Stores lanes `0..n` of `v` at `out[start..]`: the whole vector where `out` goes on that far
/// (the lanes past `n` are written again later, module comment), else those lanes alone.
#[inline(always)]
unsafe fn store_prefix<S: Simd>(out: &mut [MaybeUninit<f32>], start: usize, v: S::V, n: usize) {
    let whole = start + S::LANES <= out.len();
    let pointer = out[start..].as_mut_ptr().cast::<f32>();
    unsafe {
        if whole {
            S::store(pointer, v)
        } else {
            S::store_lanes(pointer, v, 0, n)
        }
    }
}

/// As [`store_prefix`], for bytes.
#[inline(always)]
unsafe fn store_bytes_prefix<S: Simd>(
    out: &mut [MaybeUninit<u8>],
    start: usize,
    v: S::V,
    n: usize,
) {
    let whole = start + S::LANES <= out.len();
    let pointer = out[start..].as_mut_ptr().cast::<u8>();
    unsafe { S::store_bytes(pointer, v, if whole { S::LANES } else { n }) }
}

/// Stores the `2n` values `lo` then `hi` at `out[start..]`, as [`store_prefix`] does.
#[inline(always)]
unsafe fn store_pairs<S: Simd>(
    out: &mut [MaybeUninit<f32>],
    start: usize,
    (lo, hi): (S::V, S::V),
    n: usize,
) {
    let two_vectors = 2 * n > S::LANES;
    let pointer = out[start..].as_mut_ptr().cast::<f32>();
    unsafe {
        if start + 2 * S::LANES <= out.len() {
            S::store(pointer, lo);
            if two_vectors {
                S::store(pointer.add(S::LANES), hi);
            }
        } else {
            S::store_lanes(pointer, lo, 0, (2 * n).min(S::LANES));
            if two_vectors {
                S::store_lanes(pointer.add(S::LANES), hi, 0, 2 * n - S::LANES);
            }
        }
    }
}
