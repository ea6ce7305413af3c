//! A batch's output, zeroed image by image by the thread that then fills that image.
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
    let len = images * image_len;
    if len == 0 {
        return Vec::new();
    }
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(image_len)
        .enumerate()
        .for_each(|(b, image)| fill(b, image));
    // SAFETY: the chunks cover the first `len` elements and each `fill` wrote all of its own.
    unsafe { out.set_len(len) };
    out
}

#[cfg(test)]
mod tests {
    use super::par_images;

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
