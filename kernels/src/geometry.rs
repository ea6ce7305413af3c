//! The shape of one 2-D convolution, checked once, and what each kernel derives from it.

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
    /// The geometry of a convolution of an NCHW `x` with an OIHW `weight`, with padding as
    /// (begin, end) per spatial dimension, or `None` when the kernels do not handle it
    /// (dilation, a padding of a kernel's size or more, an empty tensor, inconsistent
    /// shapes); the caller then runs another implementation, which reports real shape errors.
    pub fn new(
        x: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Option<Self> {
        let [batch, in_channels, in_h, in_w] = x;
        let [out_channels, in_per_group, kernel_h, kernel_w] = weight;
        let [pad_h, pad_w] = padding;
        let consistent = groups > 0
            && in_channels == in_per_group * groups
            && out_channels.is_multiple_of(groups)
            && dilation == [1, 1]
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

    /// Whether the input has one channel (a grey image), in one group, at stride 1: where the
    /// first-layer engines may run.
    pub fn has_one_input_channel_at_stride_1(&self) -> bool {
        self.in_channels == 1 && self.groups == 1 && self.stride == [1, 1]
    }

    /// Whether this is a depthwise convolution (one input and one output channel per group).
    pub fn is_depthwise(&self) -> bool {
        self.in_per_group() == 1 && self.out_per_group() == 1
    }

    /// For the first-layer engines' tests: one image of one channel, `input` rows × columns
    /// padded by `pad` on every side, to `out_channels` through a `kernel`, stride 1.
    #[cfg(test)]
    pub(crate) fn first_layer(
        kernel: [usize; 2],
        out_channels: usize,
        input: [usize; 2],
        pad: usize,
    ) -> ConvGeometry {
        let [h, w] = input;
        let weight = [out_channels, 1, kernel[0], kernel[1]];
        let padding = [(pad, pad); 2];
        ConvGeometry::new([1, 1, h, w], weight, [1, 1], padding, [1, 1], 1)
            .expect("a shape the kernels take")
    }
}
