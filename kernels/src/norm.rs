//! What the forward pass does to each output value before it is stored ([`Epilogue`]):
//! nothing, the ReLU, or an inference-mode batch norm with or without the ReLU
//! ([`ChannelNorm`]).
//!
//! With the batch norm in the epilogue, a `conv → batch norm → ReLU` block run by an attack or
//! an evaluation writes its activation once, while each image's output is still in the cache,
//! instead of the convolution writing it, a second pass reading it back and writing the
//! normalised copy (with the backward step, about a quarter of `micro-cnn`'s forward pass and
//! PGD step at batch 128; docs/performance.md, "Batch norm in the convolution's epilogue").
//!
//! Each value takes burn's inference batch norm's operations in burn's order,
//! `((v − mean) / std) · γ + β`, each rounded once (no fused multiply-add), then the ReLU: the
//! bits of the separate passes, on every instruction set (but for the payload of a NaN where two
//! NaNs meet, which the compiler may take from either operand).

use super::simd::{Isa, Simd, SimdKernel, relu, relu_backward, run_on};

/// An inference-mode batch norm over the channels of an NCHW output, its statistics fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelNorm {
    mean: Vec<f32>,
    /// `√(var + ε)`, as the caller rounds it.
    std: Vec<f32>,
    /// `1 / std`, the factor of the gradient (burn-autodiff's, for a division by a constant).
    reciprocal: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    relu: bool,
}

impl ChannelNorm {
    /// `relu?(((v − mean[c]) / std[c]) · gamma[c] + beta[c])` for channel c.
    ///
    /// # Panics
    /// If the four vectors differ in length.
    pub fn new(
        mean: Vec<f32>,
        std: Vec<f32>,
        gamma: Vec<f32>,
        beta: Vec<f32>,
        relu: bool,
    ) -> ChannelNorm {
        let channels = mean.len();
        assert!(
            [&std, &gamma, &beta].iter().all(|v| v.len() == channels),
            "one statistic per channel"
        );
        ChannelNorm {
            mean,
            reciprocal: std.iter().map(|s| 1.0 / s).collect(),
            std,
            gamma,
            beta,
            relu,
        }
    }

    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    pub fn relu(&self) -> bool {
        self.relu
    }

    /// Channel `c`'s numbers, for a loop over its values.
    #[inline(always)]
    pub fn channel(&self, c: usize) -> ChannelScalars {
        ChannelScalars {
            mean: self.mean[c],
            std: self.std[c],
            reciprocal: self.reciprocal[c],
            gamma: self.gamma[c],
            beta: self.beta[c],
            relu: self.relu,
        }
    }

    /// One value of channel `c`.
    #[inline(always)]
    pub fn value(&self, c: usize, v: f32) -> f32 {
        self.channel(c).apply(v)
    }

    /// Channel `c`'s numbers in vectors.
    ///
    /// # Safety
    /// `S` runs on this CPU.
    #[inline(always)]
    unsafe fn splats<S: Simd>(&self, c: usize) -> NormVectors<S> {
        unsafe {
            NormVectors {
                mean: S::splat(self.mean[c]),
                std: S::splat(self.std[c]),
                reciprocal: S::splat(self.reciprocal[c]),
                gamma: S::splat(self.gamma[c]),
                beta: S::splat(self.beta[c]),
                relu: self.relu,
            }
        }
    }

    /// Normalises one image's output, `[channel][plane]`, in place on `isa`'s vectors.
    ///
    /// # Panics
    /// If `out` is not one plane per channel.
    pub(crate) fn apply_image(&self, isa: Isa, out: &mut [f32]) {
        assert_eq!(out.len() % self.channels(), 0, "one plane per channel");
        let image = Image {
            out: out.as_mut_ptr(),
            plane: out.len() / self.channels(),
        };
        // SAFETY: `image` covers `out`, one plane per channel; `isa` is one this CPU runs (the
        // plan's, from `Isa::detected`).
        unsafe { run_on(isa, self, image) }
    }

    /// The gradient of one image's convolution output, `[channel][plane]`, into `dx`, given
    /// the gradient `dy` of the normalised output and, where the ReLU follows, that output
    /// (whose sign masks `dy`): `(relu'(dy) · γ) · (1 / std)` per value, burn-autodiff's
    /// backward steps of the batch norm's operations.
    ///
    /// # Panics
    /// If the lengths differ, are not one plane per channel, or the output is missing (or
    /// given) where the ReLU is (not) there.
    pub(crate) fn gradient_image(
        &self,
        isa: Isa,
        dy: &[f32],
        output: Option<&[f32]>,
        dx: &mut [f32],
    ) {
        assert_eq!(dy.len() % self.channels(), 0, "one plane per channel");
        assert_eq!(dx.len(), dy.len(), "gradient length");
        assert_eq!(
            output.is_some(),
            self.relu,
            "the ReLU's output, where it follows"
        );
        assert!(output.is_none_or(|o| o.len() == dy.len()), "output length");
        let image = GradientImage {
            dy: dy.as_ptr(),
            output: output.map(<[f32]>::as_ptr),
            dx: dx.as_mut_ptr(),
            plane: dy.len() / self.channels(),
        };
        // SAFETY: as in `apply_image`, for the three buffers checked above.
        unsafe { run_on(isa, self, image) }
    }
}

/// One image's gradients, checked by [`ChannelNorm::gradient_image`].
#[derive(Clone, Copy)]
struct GradientImage {
    dy: *const f32,
    output: Option<*const f32>,
    dx: *mut f32,
    plane: usize,
}

impl SimdKernel<GradientImage> for ChannelNorm {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, image: GradientImage) {
        let whole = image.plane / S::LANES * S::LANES;
        for c in 0..self.channels() {
            // SAFETY: plane `c` of each buffer is inside it (see `gradient_image`).
            unsafe {
                let offset = c * image.plane;
                let (dy, dx) = (image.dy.add(offset), image.dx.add(offset));
                let output = image.output.map(|o| o.add(offset));
                let norm = self.splats::<S>(c);
                for j in (0..whole).step_by(S::LANES) {
                    let grad = S::load(dy.add(j));
                    let grad = match output {
                        Some(o) => S::relu_mask(grad, S::load(o.add(j))),
                        None => grad,
                    };
                    S::store(dx.add(j), norm.gradient(grad));
                }
                let scalars = self.channel(c);
                for j in whole..image.plane {
                    let grad = match output {
                        Some(o) => relu_backward(*dy.add(j), *o.add(j)),
                        None => *dy.add(j),
                    };
                    *dx.add(j) = scalars.gradient(grad);
                }
            }
        }
    }
}

/// One channel's [`ChannelNorm`] numbers.
#[derive(Debug, Clone, Copy)]
pub struct ChannelScalars {
    mean: f32,
    std: f32,
    reciprocal: f32,
    gamma: f32,
    beta: f32,
    relu: bool,
}

impl ChannelScalars {
    pub fn mean(self) -> f32 {
        self.mean
    }

    /// `1 / std`.
    pub fn reciprocal(self) -> f32 {
        self.reciprocal
    }

    pub fn gamma(self) -> f32 {
        self.gamma
    }

    /// `relu?(((v − mean) / std) · γ + β)`, each operation rounded once.
    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        let y = ((v - self.mean) / self.std) * self.gamma + self.beta;
        if self.relu { relu(y) } else { y }
    }

    /// The gradient of the value before the batch norm, given that of the value after it
    /// (already masked by the ReLU's backward step where the ReLU follows): `(dy · γ) · (1 /
    /// std)`, in burn-autodiff's order.
    #[inline(always)]
    pub fn gradient(self, dy: f32) -> f32 {
        (dy * self.gamma) * self.reciprocal
    }
}

/// One image's output, checked by [`ChannelNorm::apply_image`].
#[derive(Clone, Copy)]
struct Image {
    out: *mut f32,
    plane: usize,
}

impl SimdKernel<Image> for ChannelNorm {
    #[inline(always)]
    unsafe fn run<S: Simd>(&self, image: Image) {
        let whole = image.plane / S::LANES * S::LANES;
        for c in 0..self.channels() {
            // SAFETY: plane `c` of `image` is inside `out` (see `apply_image`).
            unsafe {
                let plane = image.out.add(c * image.plane);
                let norm = self.splats::<S>(c);
                for j in (0..whole).step_by(S::LANES) {
                    S::store(plane.add(j), norm.apply(S::load(plane.add(j))));
                }
                // The plane's last values one at a time: a vector moved back over values
                // already normalised would normalise them twice.
                let scalars = self.channel(c);
                for j in whole..image.plane {
                    *plane.add(j) = scalars.apply(*plane.add(j));
                }
            }
        }
    }
}

/// A channel's [`ChannelNorm`] numbers in vectors.
#[derive(Clone, Copy)]
pub(crate) struct NormVectors<S: Simd> {
    mean: S::V,
    std: S::V,
    reciprocal: S::V,
    gamma: S::V,
    beta: S::V,
    relu: bool,
}

impl<S: Simd> NormVectors<S> {
    /// [`ChannelNorm::value`] lane by lane: the same operations, the same bits.
    #[inline(always)]
    unsafe fn apply(&self, v: S::V) -> S::V {
        unsafe {
            let y = S::add(
                S::mul(S::div(S::sub(v, self.mean), self.std), self.gamma),
                self.beta,
            );
            // The ReLU as `relu_mask(y, y)`: y where y > 0 or NaN, else +0, as `relu`.
            if self.relu { S::relu_mask(y, y) } else { y }
        }
    }

    /// [`ChannelScalars::gradient`] lane by lane.
    #[inline(always)]
    unsafe fn gradient(&self, dy: S::V) -> S::V {
        unsafe { S::mul(S::mul(dy, self.gamma), self.reciprocal) }
    }
}

/// What the forward pass does to each sum before storing it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Epilogue<'a> {
    Store,
    Relu,
    Norm(&'a ChannelNorm),
}

impl<'a> Epilogue<'a> {
    /// Output channel `c`'s epilogue in `S`'s vectors (for engines that store a channel's
    /// values from registers).
    ///
    /// # Safety
    /// `S` runs on this CPU.
    #[inline(always)]
    pub(crate) unsafe fn channel<S: Simd>(self, c: usize) -> ChannelEpilogue<S> {
        match self {
            Epilogue::Store => ChannelEpilogue::Store,
            Epilogue::Relu => ChannelEpilogue::Relu,
            Epilogue::Norm(norm) => ChannelEpilogue::Norm(unsafe { norm.splats::<S>(c) }),
        }
    }

    /// Applies the epilogue to one image's stored output, `[channel][plane]`, in place (for
    /// engines that store raw sums).
    pub(crate) fn apply_image(self, isa: Isa, out: &mut [f32]) {
        match self {
            Epilogue::Store => {}
            Epilogue::Relu => out.iter_mut().for_each(|v| *v = relu(*v)),
            Epilogue::Norm(norm) => norm.apply_image(isa, out),
        }
    }
}

/// [`Epilogue`] for one output channel, in vectors.
#[derive(Clone, Copy)]
pub(crate) enum ChannelEpilogue<S: Simd> {
    Store,
    Relu,
    Norm(NormVectors<S>),
}

impl<S: Simd> ChannelEpilogue<S> {
    /// The value to store for the sum `v`.
    ///
    /// # Safety
    /// `S` runs on this CPU.
    #[inline(always)]
    pub(crate) unsafe fn apply(self, v: S::V) -> S::V {
        unsafe {
            match self {
                ChannelEpilogue::Store => v,
                // As `relu`: v where v > 0 or NaN, else +0.
                ChannelEpilogue::Relu => S::relu_mask(v, v),
                ChannelEpilogue::Norm(norm) => norm.apply(v),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ChannelNorm, Epilogue, Isa};

    /// Two channels with a zero γ, a negative γ, a tiny std; values of both signs, ±0, NaN and
    /// ±∞, planes of 37 values (whole vectors and a tail on every instruction set).
    fn case(relu: bool) -> (ChannelNorm, Vec<f32>) {
        let norm = ChannelNorm::new(
            vec![0.25, -1.5],
            vec![1.0e-3, 2.5],
            vec![-0.75, 0.0],
            vec![0.125, -2.0],
            relu,
        );
        let specials = [0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        let out = (0..2 * 37)
            .map(|i| match i % 11 {
                0..5 => specials[i % 11],
                _ => (i as f32 * 0.37).sin() * 3.0,
            })
            .collect();
        (norm, out)
    }

    #[test]
    fn every_instruction_set_gives_the_scalar_values_bit_for_bit() {
        for relu in [false, true] {
            let (norm, raw) = case(relu);
            let expected: Vec<u32> = raw
                .iter()
                .enumerate()
                .map(|(i, &v)| norm.value(i / 37, v).to_bits())
                .collect();
            for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
                if !isa.is_available() {
                    continue;
                }
                let mut out = raw.clone();
                Epilogue::Norm(&norm).apply_image(isa, &mut out);
                let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, expected, "{} relu {relu}", isa.name());
            }
        }
    }

    #[test]
    fn every_instruction_set_gives_the_scalar_gradients_bit_for_bit() {
        for relu in [false, true] {
            let (norm, values) = case(relu);
            let dy: Vec<f32> = values.iter().rev().copied().collect();
            let output: Vec<f32> = values
                .iter()
                .enumerate()
                .map(|(i, &v)| norm.value(i / 37, v))
                .collect();
            let output = relu.then_some(&output[..]);
            let expected: Vec<u32> = dy
                .iter()
                .enumerate()
                .map(|(i, &g)| {
                    let g = match output {
                        Some(o) if o[i] <= 0.0 => 0.0,
                        _ => g,
                    };
                    norm.channel(i / 37).gradient(g).to_bits()
                })
                .collect();
            for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
                if !isa.is_available() {
                    continue;
                }
                let mut dx = vec![f32::NAN; dy.len()];
                norm.gradient_image(isa, &dy, output, &mut dx);
                let got: Vec<u32> = dx.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, expected, "{} relu {relu}", isa.name());
            }
        }
    }

    #[test]
    fn a_value_is_the_batch_norm_formula_then_the_relu() {
        let norm = ChannelNorm::new(vec![1.0], vec![2.0], vec![3.0], vec![-4.0], false);
        assert_eq!(norm.value(0, 5.0), 2.0); // (5 − 1) / 2 · 3 − 4
        let with_relu = ChannelNorm::new(vec![1.0], vec![2.0], vec![3.0], vec![-4.0], true);
        assert_eq!(with_relu.value(0, 5.0), 2.0);
        assert_eq!(with_relu.value(0, 1.0).to_bits(), 0.0f32.to_bits()); // −4 → +0
        assert!(with_relu.value(0, f32::NAN).is_nan());
    }

    #[test]
    #[should_panic(expected = "one statistic per channel")]
    fn statistics_of_different_lengths_are_refused() {
        ChannelNorm::new(
            vec![0.0; 2],
            vec![1.0; 2],
            vec![1.0; 3],
            vec![0.0; 2],
            false,
        );
    }
}
