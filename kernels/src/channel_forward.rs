//! The forward pass of stride-1 and stride-2, ungrouped convolutions with many output channels
//! on small images (`resnet18`'s last three stages) on the input gradient's channel engine
//! ([`super::channels`]): vectors over output channels, where the main engine's vectors over
//! positions fill badly (a 4 × 4 output on a 4 × 6 extended grid fills 1.5 AVX-512 vectors for
//! 16 outputs) and its weights are streamed once per image.
//!
//! A forward pass is the input gradient of another convolution. The channel engine computes,
//! for a convolution g′ padded by (p′_top, p′_left),
//!
//! ```text
//! dx[c′][i][j] = Σ_{o′, kh, kw} W′[o′][c′][kh][kw] · dy[o′][i + p′_top − kh][j + p′_left − kw]
//! ```
//!
//! (the terms in that order, one accumulator each). Give it the input turned by 180° as `dy`
//! (`dy[ci][a][b] = x[ci][H − 1 − a][W − 1 − b]`: each plane reversed), the weights with their
//! channels' roles swapped but not turned (`W′[ci][co] = W[co][ci]`), and g′'s padding
//! `k − 1 − p` with the sides swapped: then `dx` is the output turned by 180°,
//!
//! ```text
//! y[co][oh][ow] = Σ_{ci, kh, kw} W[co][ci][kh][kw] · x[ci][oh − p_top + kh][ow − p_left + kw],
//! ```
//!
//! with the terms in the main engine's order (ci, kh, kw) and the bias as the accumulator's
//! starting value, as the main engine starts it. So the results have the main engine's bits
//! where the weights are finite, as the channel engine's input gradients have the position
//! engine's (its module doc: the terms it leaves out read padding, and add `w · (+0)`). The
//! exception is a sum that is −0 where a left-out padding term would make it +0: one that
//! rounded to −0, or, here, a bias of −0 whose real terms all give zeros (an independent review
//! found such outputs with zero inputs and a −0 bias, on which the two engines, and so two
//! instruction sets whose rules pick different engines, differ in the sign of that zero).
//!
//! A stride-2 forward pass is not an input gradient, but it is the same sum read with a step:
//! on the turned input, turned output (i, j) is
//!
//! ```text
//! y′[co][i][j] = Σ_{ci, kh, kw} W[co][ci][kh][kw] · x′[ci][2·i + o_h − kh][2·j + o_w − kw],
//! o_h = H − 1 − 2·(out_h − 1) + p_top    (o_w alike),
//! ```
//!
//! so the engine's tiles run with their positions two source columns apart and their rows two
//! source rows apart ([`ChannelGrad::stepped`]), reading every term of a kernel row from planes
//! padded with zeros, the kernel rows on the padding left out as before: the same terms in the
//! same order, the main engine's bits.

use super::channels::{self, ChannelGrad};
use super::geometry::ConvGeometry;
use super::input_grad::{gradient_planes, image_on_channels};
use super::norm::Epilogue;
use super::output::par_images_written;
use super::planes::{PlaneLayout, PlaneSpec};
use super::scratch::with_gradient_scratch;
use super::simd::{Isa, Vendor};
use std::mem::MaybeUninit;

/// Whether the channel engine runs `g`'s forward pass on `isa` by default (where F(2, 3) and
/// the first-layer engine do not). Measured against the main engine with
/// `kernels/examples/layer.rs` at batch 128 (32 for the teacher's layers) on a Zen 4
/// (docs/performance.md, "The forward pass on the channel engine"): with AVX-512 faster where
/// the outputs are few and a pair of vectors' weights stays in L2 while a row's tiles read it —
/// `resnet18`'s 512 → 512 at 4 × 4 1.26–1.38×, 256 → 256 at 8 × 8 1.33–1.39×, 64 → 64 5 × 5 at
/// 8 × 8 1.6–1.7×, `madry-cnn`'s conv2 (32 → 64 5 × 5 at 14 × 14) 1.13–1.16× — level on
/// 320 → 320 at 16 × 16, slower on 640 → 640 at 8 × 8 (0.71–0.75×: 737 KB of weights a pair of
/// vectors), on the stems (3 input channels) and 16 → 160 at 32 × 32. With AVX2, whose tiles
/// hold half the positions, faster or level on reductions of up to 1,600 terms (32 → 64 at
/// 14 × 14, 3 × 3 and 5 × 5, 1.04–1.10×; 64 → 64 5 × 5 at 8 × 8, 1.00× and 1.16×), slower from
/// 2,304 on (256 → 256 at 8 × 8 and up: 0.39–0.74×). Stride 2 (the thirty-ninth session): with
/// AVX-512 `resnet18`'s 256 → 512 /2 at 8 × 8 1.5–1.65×, 128 → 256 /2 at 16 × 16 1.2×, 64 → 128
/// /2 at 32 × 32 level; with AVX2 0.71–0.99× on the three, so AVX2 keeps stride 1. Either
/// engine gives the same bits (a −0 bias aside: the module's doc), so the rule may differ
/// between instruction sets. F(2, 3), asked first, now takes `resnet18`'s 512 → 512 at 4 × 4
/// and 256 → 256 at 8 × 8 and the teacher's 640 → 640 at 8 × 8 (a fortieth session), and the
/// teacher's 320 → 320 (a thirty-eighth). Those AVX-512 measurements were a Zen 4's; on an Ice
/// Lake (Intel, a forty-second session: docs/performance.md, "An Ice Lake guest") the engine
/// was slower at stride 2 (0.4–0.9× on `resnet18`'s three and the WideResNet teacher's two)
/// and from 800 terms on (`madry-cnn`'s conv2 0.7×, 64 → 64 5 × 5 at 8 × 8 0.8–1.0×), faster on
/// `small-cnn`'s conv4 (576 terms, 1.1×): so on Intel's CPUs ([`Vendor`]) stride 1 up to 576.
pub(crate) fn chosen(isa: Isa, g: &ConvGeometry) -> bool {
    let terms = g.in_channels * g.taps();
    let fits = g.out_h * g.out_w <= 256 && g.in_channels >= 32;
    match isa {
        Isa::Avx512 if Vendor::detected() == Vendor::Amd => fits && terms <= 4608,
        Isa::Avx512 => fits && terms <= 576 && g.stride == [1, 1],
        Isa::Avx2 => fits && terms <= 1600 && g.stride == [1, 1],
        Isa::Portable => false,
    }
}

/// A forward pass planned for the channel engine.
pub(crate) struct ChannelForward {
    geometry: ConvGeometry,
    /// The turned input of one image, padded, where the engine's tiles read padding.
    planes: PlaneSpec,
    channels: ChannelGrad,
    isa: Isa,
}

impl ChannelForward {
    /// The plan of `g`'s forward pass, or `None` where the engine does not run it: stride 1
    /// or 2, one group, a kernel wider than 1 × 1, a vector of output channels or more on
    /// `isa` (the turned convolution's input channels), an input that is not empty.
    pub(crate) fn new(
        isa: Isa,
        g: &ConvGeometry,
        weight: &[f32],
        bias: Option<&[f32]>,
    ) -> Option<ChannelForward> {
        let (planes, channels) = match g.stride {
            [1, 1] => Self::unit_stride(isa, g, weight)?,
            [2, 2] => Self::stride_two(isa, g, weight)?,
            _ => return None,
        };
        let channels = match bias {
            Some(bias) => channels.with_init(bias),
            None => channels,
        };
        Some(ChannelForward {
            geometry: *g,
            planes,
            channels,
            isa,
        })
    }

    /// The turned convolution of a stride-1 forward pass: the input gradient of g′ (the
    /// module's doc).
    fn unit_stride(isa: Isa, g: &ConvGeometry, weight: &[f32]) -> Option<(PlaneSpec, ChannelGrad)> {
        let (kh, kw) = (g.kernel_h, g.kernel_w);
        // `None` where `g`'s input is empty (a padding as wide as the kernel can still give an
        // output): the main engine writes the bias there.
        let turned = ConvGeometry::new(
            [g.batch, g.out_channels, g.out_h, g.out_w],
            [g.in_channels, g.out_channels, kh, kw],
            [1, 1],
            [
                (kh - 1 - g.pad_h.1, kh - 1 - g.pad_h.0),
                (kw - 1 - g.pad_w.1, kw - 1 - g.pad_w.0),
            ],
            [1, 1],
            1,
        )?;
        // The turned convolution is always ungrouped and of stride 1: check `g`'s own.
        if g.groups != 1 || !channels::runs(isa, &turned) {
            return None;
        }
        debug_assert_eq!((turned.out_h, turned.out_w), (g.in_h, g.in_w));
        let planes = gradient_planes(isa, &turned);
        let taps = g.taps();
        // g′'s output channel o′ is g's input channel, its input channel c′ g's output channel.
        let channels = ChannelGrad::with_weights(
            isa,
            &turned,
            |o, c, t| weight[(c * g.in_channels + o) * taps + t],
            planes.layout,
        );
        Some((planes, channels))
    }

    /// A stride-2 forward pass on the turned input: output (i, j) of the turned output reads
    /// turned input rows `2·i + origin − kh` (columns alike; the module's doc, with the
    /// stride), with `origin = H − 1 − 2·(out_h − 1) + pad_top`, from planes padded by the
    /// kernel's size − 1 (the tiles read every term of a row, the padding as zeros).
    fn stride_two(isa: Isa, g: &ConvGeometry, weight: &[f32]) -> Option<(PlaneSpec, ChannelGrad)> {
        let ungrouped = g.groups == 1 && g.taps() > 1;
        if !ungrouped || g.out_channels < channels::min_channels(isa) || g.in_h * g.in_w == 0 {
            return None;
        }
        let (kh, kw) = (g.kernel_h, g.kernel_w);
        // The last output row reads padded rows up to 2·(out_h − 1) + kh − 1 ≤ in_h + pads − 1,
        // and the bottom padding is under kh: the origin is not negative.
        let origin = (
            g.in_h - 1 + g.pad_h.0 - 2 * (g.out_h - 1),
            g.in_w - 1 + g.pad_w.0 - 2 * (g.out_w - 1),
        );
        // The rightmost column read: 2·(out_w − 1) + origin.1 = in_w − 1 + pad_left, under
        // in_w − 1 + kw − 1; the leftmost, origin.1 − (kw − 1), is −pad_right or more.
        let planes = PlaneSpec {
            channels: g.in_channels,
            height: g.in_h,
            width: g.in_w,
            top: kh - 1,
            left: kw - 1,
            stride: [1, 1],
            phases: vec![(0, 0)],
            layout: PlaneLayout {
                planes: g.in_channels,
                rows: g.in_h + kh - 1,
                row_stride: g.in_w + 2 * (kw - 1),
            },
            isa,
        };
        let taps = g.taps();
        let channels = ChannelGrad::stepped(
            isa,
            2,
            [g.out_channels, g.in_channels],
            (g.out_h, g.out_w),
            (g.in_h, g.in_w),
            (kh, kw),
            origin,
            |o, c, t| weight[(c * g.in_channels + o) * taps + t],
            planes.layout,
        );
        Some((planes, channels))
    }

    /// The batch's output, each image through `epilogue` while it is in cache.
    pub(crate) fn forward(&self, x: &[f32], epilogue: Epilogue) -> Vec<f32> {
        let g = &self.geometry;
        let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
        // SAFETY: `image_on_channels` writes every element of the image's output.
        unsafe {
            par_images_written(g.batch, g.out_image(), |b, out| {
                let image = &x[b * g.in_image()..][..g.in_image()];
                with_gradient_scratch(image.len(), |turned| {
                    for (to, from) in turned
                        .chunks_exact_mut(in_plane)
                        .zip(image.chunks_exact(in_plane))
                    {
                        for (t, &f) in to.iter_mut().zip(from.iter().rev()) {
                            *t = f;
                        }
                    }
                    image_on_channels(&self.planes, &self.channels, turned, None, out);
                });
                // SAFETY: written whole above; `MaybeUninit<f32>` has the layout of `f32`.
                let out = &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]);
                out.chunks_exact_mut(out_plane).for_each(<[f32]>::reverse);
                epilogue.apply_image(self.isa, out);
            })
        }
    }
}
