//! The shape of one 2-D convolution, checked once, and what each kernel derives from it.

use burn::tensor::ops::ConvOptions;

/// Everything that fixes a convolution's cost and indexing: NCHW input, OIHW weight
/// (`[out, in / groups, kh, kw]`), stride, per-side padding and groups. Dilation is always 1
/// here: a dilated convolution is not in the zoo and stays on burn's op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: [usize; 2],
    /// (top, bottom)
    pub pad_h: (usize, usize),
    /// (left, right)
    pub pad_w: (usize, usize),
    pub groups: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl ConvGeometry {
    /// The geometry of `conv2d(x, weight, options)`, or `None` when our kernels do not handle
    /// it (dilation, a padding of a kernel's size or more, an empty tensor, inconsistent
    /// shapes); the caller then runs burn's own op, which reports real shape errors.
    pub fn new(x: [usize; 4], weight: [usize; 4], options: &ConvOptions<2>) -> Option<Self> {
        let [batch, in_channels, in_h, in_w] = x;
        let [out_channels, in_per_group, kernel_h, kernel_w] = weight;
        let groups = options.groups;
        let [pad_h, pad_w] = options.padding;
        let stride = options.stride;
        let consistent = groups > 0
            && in_channels == in_per_group * groups
            && out_channels.is_multiple_of(groups)
            && options.dilation == [1, 1]
            && stride.iter().all(|&s| s > 0)
            // The input gradient pads the output gradient by kernel − 1 − padding.
            && pad_h.0.max(pad_h.1) < kernel_h
            && pad_w.0.max(pad_w.1) < kernel_w;
        let nonempty = [batch, in_channels, out_channels, kernel_h, kernel_w]
            .iter()
            .all(|&d| d > 0);
        let padded_h = in_h + pad_h.0 + pad_h.1;
        let padded_w = in_w + pad_w.0 + pad_w.1;
        if !consistent || !nonempty || padded_h < kernel_h || padded_w < kernel_w {
            return None;
        }
        Some(Self {
            batch,
            in_channels,
            in_h,
            in_w,
            out_channels,
            kernel_h,
            kernel_w,
            stride,
            pad_h,
            pad_w,
            groups,
            out_h: (padded_h - kernel_h) / stride[0] + 1,
            out_w: (padded_w - kernel_w) / stride[1] + 1,
        })
    }

    pub fn in_per_group(&self) -> usize {
        self.in_channels / self.groups
    }

    pub fn out_per_group(&self) -> usize {
        self.out_channels / self.groups
    }

    pub fn taps(&self) -> usize {
        self.kernel_h * self.kernel_w
    }

    /// Elements of one input image, one output image.
    pub fn in_image(&self) -> usize {
        self.in_channels * self.in_h * self.in_w
    }

    pub fn out_image(&self) -> usize {
        self.out_channels * self.out_h * self.out_w
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.in_per_group() * self.taps()
    }

    pub fn out_dims(&self) -> [usize; 4] {
        [self.batch, self.out_channels, self.out_h, self.out_w]
    }

    /// Multiply-adds of the forward pass (the input and weight gradients cost the same).
    pub fn macs(&self) -> usize {
        self.batch * self.out_image() * self.in_per_group() * self.taps()
    }

    /// Whether the padded input can be read in place: stride 1 and no padding.
    pub fn reads_input_in_place(&self) -> bool {
        self.stride == [1, 1] && self.pad_h == (0, 0) && self.pad_w == (0, 0)
    }

    /// Whether this is a depthwise convolution (one input and one output channel per group).
    pub fn is_depthwise(&self) -> bool {
        self.in_per_group() == 1 && self.out_per_group() == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(stride: usize, pad: usize, groups: usize) -> ConvOptions<2> {
        ConvOptions::new([stride, stride], [pad, pad], [1, 1], groups)
    }

    #[test]
    fn output_sizes_follow_pytorch() {
        // small-cnn conv1: 28 → 26; a 3×3 stride-2 pad-1 conv: 32 → 16; 1×1 stride 2: 32 → 16.
        let g = ConvGeometry::new([2, 1, 28, 28], [32, 1, 3, 3], &options(1, 0, 1)).unwrap();
        assert_eq!((g.out_h, g.out_w), (26, 26));
        let g = ConvGeometry::new([2, 8, 32, 32], [8, 8, 3, 3], &options(2, 1, 1)).unwrap();
        assert_eq!((g.out_h, g.out_w), (16, 16));
        let g = ConvGeometry::new([2, 8, 32, 32], [4, 8, 1, 1], &options(2, 0, 1)).unwrap();
        assert_eq!((g.out_h, g.out_w), (16, 16));
        // 5×5 "same": 28 → 28; a depthwise conv.
        let g = ConvGeometry::new([1, 6, 28, 28], [6, 1, 5, 5], &options(1, 2, 6)).unwrap();
        assert_eq!((g.out_h, g.out_w), (28, 28));
        assert!(g.is_depthwise());
    }

    #[test]
    fn unsupported_cases_are_left_to_burn() {
        let dilated = ConvOptions::new([1, 1], [0, 0], [2, 2], 1);
        assert!(ConvGeometry::new([1, 1, 8, 8], [1, 1, 3, 3], &dilated).is_none());
        // padding as large as the kernel
        assert!(ConvGeometry::new([1, 1, 8, 8], [1, 1, 3, 3], &options(1, 3, 1)).is_none());
        // channels that do not match the weight
        assert!(ConvGeometry::new([1, 2, 8, 8], [1, 1, 3, 3], &options(1, 0, 1)).is_none());
        // a kernel larger than the padded input
        assert!(ConvGeometry::new([1, 1, 2, 2], [1, 1, 5, 5], &options(1, 1, 1)).is_none());
        // an empty batch
        assert!(ConvGeometry::new([0, 1, 8, 8], [1, 1, 3, 3], &options(1, 0, 1)).is_none());
    }
}
