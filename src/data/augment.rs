//! The standard CIFAR training augmentation: pad each image with zeros, take a random crop
//! of the original size, and mirror it left-right half of the time.
//!
//! It works on a batch already scaled to `[0, 1]` (so the zero padding is black, as in the
//! usual `RandomCrop(32, padding=4)` + `RandomHorizontalFlip()` recipe) and draws from a
//! caller-supplied generator so that runs are reproducible.

use rand::Rng;
use rand::rngs::StdRng;

/// How one image is transformed: the crop's top-left corner within the padded image (each in
/// `0..=2 * pad`; `pad, pad` is the original position) and whether to mirror it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropFlip {
    pub offset_y: usize,
    pub offset_x: usize,
    pub flip: bool,
}

impl CropFlip {
    /// The transform that leaves an image unchanged for a given padding.
    pub fn identity(pad: usize) -> CropFlip {
        CropFlip {
            offset_y: pad,
            offset_x: pad,
            flip: false,
        }
    }

    /// A uniformly random crop position and a fair coin for the flip.
    pub fn random(pad: usize, rng: &mut StdRng) -> CropFlip {
        CropFlip {
            offset_y: rng.gen_range(0..=2 * pad),
            offset_x: rng.gen_range(0..=2 * pad),
            flip: rng.gen_bool(0.5),
        }
    }
}

/// Randomly crops (with `pad` pixels of zero padding) and flips each of the `n` images of an
/// NCHW batch, in place; the batch keeps its shape.
///
/// # Panics
/// If `batch.len() != n * c * h * w`.
pub fn crop_and_flip(
    batch: &mut [f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    pad: usize,
    rng: &mut StdRng,
) {
    let image_len = c * h * w;
    assert_eq!(batch.len(), n * image_len, "batch is not {n}×{c}×{h}×{w}");
    if image_len == 0 {
        return;
    }
    let mut scratch = vec![0.0; image_len];
    for image in batch.chunks_exact_mut(image_len) {
        let transform = CropFlip::random(pad, rng);
        apply(image, c, h, w, pad, transform, &mut scratch);
    }
}

/// Applies one given transform to one CHW image in place; the deterministic core of
/// [`crop_and_flip`], exposed so tests can choose the offsets and the flip.
///
/// # Panics
/// If `image.len() != c * h * w` or an offset exceeds `2 * pad`.
pub fn crop_and_flip_image(
    image: &mut [f32],
    c: usize,
    h: usize,
    w: usize,
    pad: usize,
    transform: CropFlip,
) {
    let mut scratch = vec![0.0; image.len()];
    apply(image, c, h, w, pad, transform, &mut scratch);
}

/// Output pixel `(y, x)` is padded-image pixel `(y + offset_y, x' + offset_x)`, where `x'` is
/// `x` or, when flipping, `w - 1 - x`; padded pixel `(py, px)` is original pixel
/// `(py - pad, px - pad)` when that lies inside the image and zero otherwise.
fn apply(
    image: &mut [f32],
    c: usize,
    h: usize,
    w: usize,
    pad: usize,
    t: CropFlip,
    scratch: &mut [f32],
) {
    assert_eq!(image.len(), c * h * w, "image is not {c}×{h}×{w}");
    assert!(
        t.offset_y <= 2 * pad && t.offset_x <= 2 * pad,
        "crop offset {t:?} outside 0..={}",
        2 * pad
    );
    let source = |out: usize, offset: usize, len: usize| {
        (out + offset).checked_sub(pad).filter(|&i| i < len)
    };
    for ch in 0..c {
        let plane = ch * h * w;
        for y in 0..h {
            let row = plane + y * w;
            let src_y = source(y, t.offset_y, h);
            for x in 0..w {
                let x_in_crop = if t.flip { w - 1 - x } else { x };
                let value = match (src_y, source(x_in_crop, t.offset_x, w)) {
                    (Some(sy), Some(sx)) => image[plane + sy * w + sx],
                    _ => 0.0,
                };
                scratch[row + x] = value;
            }
        }
    }
    image.copy_from_slice(scratch);
}
