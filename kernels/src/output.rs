//! A batch's output, zeroed image by image by the thread that then fills that image, or
//! written element by element without zeroing ([`map_planes`]).
//!
//! `vec![0.0; n]` zeroes the whole batch on the calling thread before the parallel loop
//! starts (rslad-tui keeps large blocks on the heap, src/allocator.rs, so calloc cannot hand
//! out fresh zero pages): 17% of conv1's forward pass in a profile on Zen 3. Zeroing each
//! image just before its kernel writes it splits that work over the threads and leaves the
//! image in the cache the kernel is about to write to.

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// `images × image_len` floats, image `b` zeroed and then handed to `fill(b, image)`, the
/// images in parallel (an "image" is whatever unit the caller parallelises over: max pooling's
/// backward pass uses one channel plane).
pub(crate) fn par_images(
    images: usize,
    image_len: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let zero_then_fill = |b, image: &mut [MaybeUninit<f32>]| {
        image.fill(MaybeUninit::new(0.0));
        // SAFETY: every element of `image` was initialised on the line above, and
        // `MaybeUninit<f32>` has the layout of `f32`.
        let image = unsafe { &mut *(image as *mut [MaybeUninit<f32>] as *mut [f32]) };
        fill(b, image);
    };
    // SAFETY: each image is zeroed whole before `fill` sees it.
    unsafe { par_images_written(images, image_len, zero_then_fill) }
}

/// `images × image_len` floats, image `b` handed uninitialised to `fill(b, image)`; the images
/// in parallel. For kernels that store each output once, in order: zeroing first would only
/// add a pass over the memory.
///
/// # Safety
/// `fill` writes every element of the image it is given.
pub(crate) unsafe fn par_images_written(
    images: usize,
    image_len: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    // SAFETY: the caller's.
    unsafe { par_blocks_written(images * image_len, image_len, fill) }
}

/// `len` floats in blocks of `block_len` (the last one shorter where `block_len` does not
/// divide `len`), block `b` handed uninitialised to `fill(b, block)`, in parallel.
///
/// # Safety
/// `fill` writes every element of the block it is given.
pub(crate) unsafe fn par_blocks_written(
    len: usize,
    block_len: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    if len == 0 {
        return Vec::new();
    }
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(block_len)
        .enumerate()
        .for_each(|(b, block)| fill(b, block));
    // SAFETY: the blocks cover the first `len` elements and each `fill` wrote all of its own.
    unsafe { out.set_len(len) };
    out
}

/// `planes × plane_len` floats computed element by element, the planes in parallel, nothing
/// zeroed first: element `j` of plane `p` is `element(p)([input[source(p) · plane_len + j]
/// for each input])`. For element-wise layers (batch norm) whose output is a function of
/// equally shaped inputs, in the same layout (`source(p) = p`) or another order of planes (a
/// transpose of NCHW to channel rows).
///
/// # Panics
/// If an input's length is not `planes × plane_len` or `source` names a plane past the end.
pub fn map_planes<const K: usize, F: Fn([f32; K]) -> f32>(
    planes: usize,
    plane_len: usize,
    inputs: [&[f32]; K],
    source: impl Fn(usize) -> usize + Sync,
    element: impl Fn(usize) -> F + Sync,
) -> Vec<f32> {
    let len = planes * plane_len;
    assert!(inputs.iter().all(|input| input.len() == len));
    let fill = |p: usize, out: &mut [MaybeUninit<f32>]| {
        let start = source(p) * plane_len;
        let inputs = inputs.map(|input| &input[start..start + plane_len]);
        let element = element(p);
        let out = &mut out[..plane_len];
        for j in 0..plane_len {
            out[j].write(element(inputs.map(|input| input[j])));
        }
    };
    // SAFETY: the loop in `fill` writes every element of the plane it is given.
    unsafe { par_images_written(planes, plane_len, fill) }
}

#[cfg(test)]
mod tests {
    use super::{map_planes, par_images};

    #[test]
    fn planes_are_mapped_from_their_source_planes() {
        let (a, b) = (
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
        );
        // Three planes of two, read in reverse order, plus the plane's index.
        let out = map_planes(
            3,
            2,
            [&a, &b],
            |p| 2 - p,
            |p| move |[x, y]| x + y + p as f32,
        );
        assert_eq!(out, [55.0, 66.0, 34.0, 45.0, 13.0, 24.0]);
        assert!(map_planes(0, 4, [], |p| p, |_| |[]| 0.0).is_empty());
    }

    #[test]
    #[should_panic]
    fn an_input_of_another_length_is_refused() {
        map_planes(2, 2, [&[1.0; 3]], |p| p, |_| |[x]| x);
    }

    #[test]
    fn every_image_starts_at_zero_and_keeps_what_its_fill_wrote() {
        let out = par_images(5, 3, |b, image| {
            assert!(image.iter().all(|&v| v == 0.0));
            image[b % 3] = b as f32 + 1.0;
        });
        let expected: Vec<f32> = (0..5)
            .flat_map(|b| (0..3).map(move |i| if i == b % 3 { b as f32 + 1.0 } else { 0.0 }))
            .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn an_empty_batch_is_an_empty_output() {
        assert!(par_images(0, 4, |_, _| unreachable!()).is_empty());
        assert!(par_images(3, 0, |_, _| unreachable!()).is_empty());
    }
}
