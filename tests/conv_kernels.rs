//! Our convolution kernels (src/conv/) against an f64 reference written out as loops, against
//! burn-flex's own op and autodiff, against finite differences, and against themselves:
//! bit-identical on every instruction set and for every thread count. Shapes: those of the
//! zoo (3×3 and 5×5, stride 1 and 2, padding 0/1/2, depthwise, 1×1) at small sizes, and random
//! ones from a seeded generator.

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::ops::ConvOptions;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rslad_tui::conv::{self, ConvGeometry, Isa, kernels};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::tensor_util::to_vec;

/// One convolution to test: shapes and options.
#[derive(Clone, Debug)]
struct Case {
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    groups: usize,
    bias: bool,
}

impl Case {
    #[allow(clippy::too_many_arguments)]
    fn square(
        batch: usize,
        channels: [usize; 2],
        size: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        groups: usize,
        bias: bool,
    ) -> Case {
        Case {
            batch,
            in_channels: channels[0],
            out_channels: channels[1],
            size: [size, size],
            kernel: [kernel, kernel],
            stride: [stride, stride],
            padding: [(pad, pad), (pad, pad)],
            groups,
            bias,
        }
    }

    fn options(&self) -> ConvOptions<2> {
        ConvOptions::new_with_padding(self.stride, self.padding, [1, 1], self.groups)
    }

    fn x_dims(&self) -> [usize; 4] {
        [self.batch, self.in_channels, self.size[0], self.size[1]]
    }

    fn w_dims(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels / self.groups,
            self.kernel[0],
            self.kernel[1],
        ]
    }

    fn geometry(&self) -> ConvGeometry {
        conv::geometry(self.x_dims(), self.w_dims(), &self.options())
            .unwrap_or_else(|| panic!("our kernels cover {self:?}"))
    }
}

/// The zoo's convolutions, shrunk: small-cnn (3×3 valid), micro-cnn (3×3 pad 1, no bias),
/// Madry's CNN (5×5 pad 2), ResNet/WRN (3×3 stride 1 and 2 pad 1, 1×1 stride 1 and 2),
/// MobileNetV2 (1×1, depthwise 3×3 stride 1 and 2).
fn zoo_cases() -> Vec<Case> {
    vec![
        Case::square(3, [1, 32], 12, 3, 1, 0, 1, true),
        Case::square(2, [32, 32], 10, 3, 1, 0, 1, true),
        Case::square(2, [32, 64], 6, 3, 1, 0, 1, true),
        // small-cnn's conv2 at MNIST's size: forward and input gradient on F(2, 3).
        Case::square(2, [32, 32], 26, 3, 1, 0, 1, true),
        Case::square(2, [1, 8], 12, 3, 1, 1, 1, false),
        Case::square(2, [8, 16], 6, 3, 1, 1, 1, false),
        Case::square(2, [1, 32], 12, 5, 1, 2, 1, true),
        Case::square(2, [32, 64], 6, 5, 1, 2, 1, true),
        Case::square(2, [3, 16], 8, 3, 1, 1, 1, false),
        Case::square(2, [16, 32], 8, 3, 2, 1, 1, false),
        // ResNet's stride-1 block convolution: forward and input gradient on F(2, 3), padded.
        Case::square(2, [16, 16], 16, 3, 1, 1, 1, false),
        Case::square(2, [16, 32], 8, 1, 2, 0, 1, false),
        Case::square(2, [16, 24], 8, 1, 1, 0, 1, false),
        Case::square(2, [24, 24], 8, 3, 1, 1, 24, false),
        Case::square(2, [24, 24], 8, 3, 2, 1, 24, false),
        // Grouped layers with 32 channels or more on small images, which the forward pass's
        // rule for the channel engine (ungrouped layers only) must leave alone: depthwise, as
        // MobileNetV2's, and two groups.
        Case::square(2, [32, 32], 8, 3, 1, 1, 32, false),
        Case::square(1, [64, 64], 6, 3, 1, 1, 2, true),
    ]
}

/// Random shapes: kernels 1–5 (not square), strides 1–3, uneven padding below the kernel,
/// groups, with and without bias.
fn random_cases(count: usize, seed: u64) -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let groups = [1, 1, 1, 2, 3][rng.gen_range(0..5)];
            let kernel = [rng.gen_range(1..=5), rng.gen_range(1..=5)];
            let pad = |rng: &mut StdRng, k: usize| (rng.gen_range(0..k), rng.gen_range(0..k));
            let padding = [pad(&mut rng, kernel[0]), pad(&mut rng, kernel[1])];
            let size = [rng.gen_range(kernel[0]..=13), rng.gen_range(kernel[1]..=13)];
            Case {
                batch: rng.gen_range(1..=3),
                in_channels: groups * rng.gen_range(1..=5),
                out_channels: groups * rng.gen_range(1..=7),
                size,
                kernel,
                stride: [rng.gen_range(1..=3), rng.gen_range(1..=3)],
                padding,
                groups,
                bias: rng.gen_bool(0.5),
            }
        })
        .collect()
}

/// Random stride-1 ungrouped shapes with 16 or more input channels: the input gradient's
/// channel engine (kernels/src/channels.rs) runs on these, with uneven padding, kernels that
/// are not square and rows whose length is not a multiple of its tiles.
fn random_wide_cases(count: usize, seed: u64) -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let kernel = [rng.gen_range(1..=5), rng.gen_range(1..=5)];
            let pad = |rng: &mut StdRng, k: usize| (rng.gen_range(0..k), rng.gen_range(0..k));
            let padding = [pad(&mut rng, kernel[0]), pad(&mut rng, kernel[1])];
            Case {
                batch: rng.gen_range(1..=2),
                in_channels: rng.gen_range(16..=40),
                out_channels: rng.gen_range(1..=12),
                size: [rng.gen_range(kernel[0]..=15), rng.gen_range(kernel[1]..=30)],
                kernel,
                stride: [1, 1],
                padding,
                groups: 1,
                bias: rng.gen_bool(0.5),
            }
        })
        .collect()
}

/// Stride-1 cases with 3-wide kernels and two or more vectors of input channels on every
/// instruction set (17+): the channel engine's tiles that leave out, at compile time, the terms
/// on the gradient's left and right zero padding (kernels/src/channels.rs). Every padding of 0–2
/// on each side, and rows from 3 to 30 wide: every compiled pair of edges is reached on every
/// instruction set (counted by a review), at some of the tile widths each.
fn three_wide_cases(count: usize, seed: u64) -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let kernel_h = rng.gen_range(1..=5);
            let width = if i < 12 { 3 + i } else { rng.gen_range(3..=30) };
            Case {
                batch: 1,
                in_channels: rng.gen_range(17..=40),
                out_channels: rng.gen_range(1..=6),
                size: [rng.gen_range(kernel_h..=6), width],
                kernel: [kernel_h, 3],
                stride: [1, 1],
                padding: [(rng.gen_range(0..kernel_h), 0), (i % 3, (i / 3) % 3)],
                groups: 1,
                bias: false,
            }
        })
        .collect()
}

/// Random ungrouped stride-2 shapes (kernels 2–5, not square, uneven padding, rows 1–20 wide,
/// some smaller than the kernel: the caller keeps those the kernels take) with input and
/// output channels from the ranges given.
fn stride_two_cases(
    count: usize,
    seed: u64,
    in_channels: std::ops::RangeInclusive<usize>,
    out_channels: std::ops::RangeInclusive<usize>,
) -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let kernel = [rng.gen_range(2..=5), rng.gen_range(2..=5)];
            let pad = |rng: &mut StdRng, k: usize| (rng.gen_range(0..k), rng.gen_range(0..k));
            Case {
                batch: rng.gen_range(1..=2),
                in_channels: rng.gen_range(in_channels.clone()),
                out_channels: rng.gen_range(out_channels.clone()),
                size: [rng.gen_range(1..=12), rng.gen_range(1..=20)],
                kernel,
                stride: [2, 2],
                padding: [pad(&mut rng, kernel[0]), pad(&mut rng, kernel[1])],
                groups: 1,
                bias: rng.gen_bool(0.5),
            }
        })
        .collect()
}

/// First layers that shrink the image (one input channel, stride 1, 3 × 3 or 5 × 5, padded by
/// less than the kernel's reach on some side): their input gradient runs on the tap-sum engine
/// (kernels/src/first_layer_taps.rs), which random shapes seldom reach. Gradient planes shorter
/// than a vector on every instruction set (2 × 3) and on AVX-512 only (3 × 4), uneven padding,
/// rows of one and two AVX-512 vectors.
fn shrinking_first_layer_cases() -> Vec<Case> {
    let case = |out_channels, size, kernel, padding, bias| Case {
        batch: 2,
        in_channels: 1,
        out_channels,
        size,
        kernel: [kernel; 2],
        stride: [1, 1],
        padding,
        groups: 1,
        bias,
    };
    vec![
        case(6, [4, 5], 3, [(0, 0), (0, 0)], false),
        case(5, [5, 6], 3, [(0, 0), (0, 0)], true),
        case(7, [13, 20], 3, [(0, 1), (1, 0)], false),
        case(4, [9, 11], 5, [(1, 0), (0, 2)], true),
        case(3, [6, 30], 5, [(0, 0), (1, 1)], false),
    ]
}

fn all_cases() -> Vec<Case> {
    let mut cases = zoo_cases();
    cases.extend(shrinking_first_layer_cases());
    cases.extend(random_cases(40, 22));
    cases.extend(random_wide_cases(10, 23));
    cases
}

fn random_values(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// Inputs of a case: x, weight, bias, and an output gradient.
struct Data {
    x: Vec<f32>,
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    output_grad: Vec<f32>,
}

fn data(case: &Case, seed: u64) -> Data {
    let mut rng = StdRng::seed_from_u64(seed);
    let g = case.geometry();
    Data {
        x: random_values(&mut rng, g.batch * g.in_image()),
        weight: random_values(&mut rng, g.weight_len()),
        bias: case
            .bias
            .then(|| random_values(&mut rng, case.out_channels)),
        output_grad: random_values(&mut rng, g.batch * g.out_image()),
    }
}

/// The convolution's terms written out in f64: for each (image, output channel, output
/// position, input channel of the group, kernel position) that lands inside the input,
/// `visit(x index, weight index, output index)`.
fn for_each_term(g: &ConvGeometry, mut visit: impl FnMut(usize, usize, usize)) {
    let (cin, cout) = (g.in_per_group(), g.out_per_group());
    for b in 0..g.batch {
        for co in 0..g.out_channels {
            let group = co / cout;
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    let o = ((b * g.out_channels + co) * g.out_h + oh) * g.out_w + ow;
                    for c in 0..cin {
                        let ci = group * cin + c;
                        for kh in 0..g.kernel_h {
                            for kw in 0..g.kernel_w {
                                let ih = (g.stride[0] * oh + kh).checked_sub(g.pad_h.0);
                                let iw = (g.stride[1] * ow + kw).checked_sub(g.pad_w.0);
                                let (Some(ih), Some(iw)) = (ih, iw) else {
                                    continue;
                                };
                                if ih >= g.in_h || iw >= g.in_w {
                                    continue;
                                }
                                let xi = ((b * g.in_channels + ci) * g.in_h + ih) * g.in_w + iw;
                                let wi = ((co * cin + c) * g.kernel_h + kh) * g.kernel_w + kw;
                                visit(xi, wi, o);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// f64 forward pass, input gradient and weight gradient, each with the sum of the absolute
/// values of its terms (the scale of the f32 rounding error).
struct Reference {
    forward: Vec<(f64, f64)>,
    input_grad: Vec<(f64, f64)>,
    weight_grad: Vec<(f64, f64)>,
}

fn reference(case: &Case, d: &Data) -> Reference {
    let g = case.geometry();
    let mut forward = vec![(0.0, 0.0); g.batch * g.out_image()];
    let mut input_grad = vec![(0.0, 0.0); d.x.len()];
    let mut weight_grad = vec![(0.0, 0.0); d.weight.len()];
    let add = |slot: &mut (f64, f64), term: f64| {
        slot.0 += term;
        slot.1 += term.abs();
    };
    for_each_term(&g, |xi, wi, o| {
        let (x, w, dy) = (
            f64::from(d.x[xi]),
            f64::from(d.weight[wi]),
            f64::from(d.output_grad[o]),
        );
        add(&mut forward[o], x * w);
        add(&mut input_grad[xi], w * dy);
        add(&mut weight_grad[wi], x * dy);
    });
    if let Some(bias) = &d.bias {
        let positions = g.out_h * g.out_w;
        for (o, slot) in forward.iter_mut().enumerate() {
            add(slot, f64::from(bias[(o / positions) % g.out_channels]));
        }
    }
    Reference {
        forward,
        input_grad,
        weight_grad,
    }
}

/// Each f32 value within 1e-5 of the scale of its terms (a few units of f32 rounding per term,
/// far below any indexing mistake, which moves whole terms).
fn assert_close(what: &str, case: &Case, ours: &[f32], expected: &[(f64, f64)]) {
    assert_eq!(ours.len(), expected.len(), "{what} length for {case:?}");
    for (i, (&value, &(exact, scale))) in ours.iter().zip(expected).enumerate() {
        let error = (f64::from(value) - exact).abs();
        assert!(
            error <= 1e-5 * scale + 1e-7,
            "{what}[{i}] = {value}, exact {exact} (scale {scale}) for {case:?}"
        );
    }
}

fn available_isas() -> Vec<Isa> {
    [Isa::Avx512, Isa::Avx2, Isa::Portable]
        .into_iter()
        .filter(|isa| isa.is_available())
        .collect()
}

/// Runs the three kernels of a case on every ISA, checks they agree to the bit, and returns
/// the results.
fn ours_on_every_isa(case: &Case, d: &Data) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let g = case.geometry();
    let run = |isa| {
        (
            kernels::forward(isa, &g, &d.x, &d.weight, d.bias.as_deref(), false),
            kernels::input_grad(isa, &g, &d.weight, &d.output_grad, None),
            kernels::weight_grad(isa, &g, &d.x, &d.output_grad, None),
        )
    };
    let isas = available_isas();
    let first = run(isas[0]);
    for &isa in &isas[1..] {
        let other = run(isa);
        for (what, a, b) in [
            ("forward", &first.0, &other.0),
            ("input gradient", &first.1, &other.1),
            ("weight gradient", &first.2, &other.2),
        ] {
            let same = a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(
                same,
                "{what} differs between {} and {} for {case:?}",
                isas[0].name(),
                isa.name()
            );
        }
    }
    first
}

#[test]
fn kernels_match_an_f64_reference_and_agree_bit_for_bit_across_instruction_sets() {
    for (i, case) in all_cases().iter().enumerate() {
        let d = data(case, i as u64);
        let exact = reference(case, &d);
        let (forward, input_grad, weight_grad) = ours_on_every_isa(case, &d);
        assert_close("forward", case, &forward, &exact.forward);
        assert_close("input gradient", case, &input_grad, &exact.input_grad);
        assert_close("weight gradient", case, &weight_grad, &exact.weight_grad);
        if case.bias {
            let g = case.geometry();
            let positions = g.out_h * g.out_w;
            let expected: Vec<(f64, f64)> = (0..g.out_channels)
                .map(|co| {
                    let terms = (0..g.batch)
                        .flat_map(|b| (0..positions).map(move |p| (b, p)))
                        .map(|(b, p)| {
                            f64::from(d.output_grad[(b * g.out_channels + co) * positions + p])
                        });
                    terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs()))
                })
                .collect();
            assert_close(
                "bias gradient",
                case,
                &kernels::bias_grad(&g, &d.output_grad, None),
                &expected,
            );
        }
    }
}

fn tensor<const D: usize>(values: &[f32], dims: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values.to_vec(), dims), device)
}

/// Forward through `conv2d` and the gradients of Σ output·output_grad for x, weight and bias.
fn through_autodiff(
    conv2d: fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>,
    case: &Case,
    d: &Data,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let device = autodiff_device();
    let x = tensor(&d.x, case.x_dims(), &device).require_grad();
    let w = tensor(&d.weight, case.w_dims(), &device).require_grad();
    let b = d
        .bias
        .as_ref()
        .map(|b| tensor(b, [case.out_channels], &device).require_grad());
    let out = conv2d(x.clone(), w.clone(), b.clone(), case.options());
    let dims = out.dims();
    let loss = (out.clone() * tensor(&d.output_grad, dims, &device)).sum();
    let grads = loss.backward();
    (
        to_vec(out),
        to_vec(x.grad(&grads).unwrap()),
        to_vec(w.grad(&grads).unwrap()),
        b.map(|b| to_vec(b.grad(&grads).unwrap())),
    )
}

#[test]
fn through_burns_autodiff_the_kernels_match_burn_flex_own_convolution() {
    for (i, case) in all_cases().iter().enumerate() {
        let d = data(case, 100 + i as u64);
        let ours = through_autodiff(conv::conv2d, case, &d);
        let burns = through_autodiff(burn::tensor::module::conv2d, case, &d);
        let close = |what: &str, a: &[f32], b: &[f32]| {
            assert_eq!(a.len(), b.len(), "{what} for {case:?}");
            let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (j, (p, q)) in a.iter().zip(b).enumerate() {
                assert!(
                    (p - q).abs() <= 2e-5 * scale,
                    "{what}[{j}]: ours {p}, burn-flex {q} for {case:?}"
                );
            }
        };
        close("forward", &ours.0, &burns.0);
        close("input gradient", &ours.1, &burns.1);
        close("weight gradient", &ours.2, &burns.2);
        if let (Some(a), Some(b)) = (&ours.3, &burns.3) {
            close("bias gradient", a, b);
        }
        // And the tensor path runs the kernels themselves (not burn's op by a fallback).
        let (forward, input_grad, weight_grad) = ours_on_every_isa(case, &d);
        assert_eq!(ours.0, forward, "{case:?}");
        assert_eq!(ours.1, input_grad, "{case:?}");
        assert_eq!(ours.2, weight_grad, "{case:?}");
    }
}

#[test]
fn a_fused_relu_matches_relu_after_the_convolution() {
    for (i, case) in all_cases().iter().enumerate().step_by(2) {
        let d = data(case, 700 + i as u64);
        let g = case.geometry();
        // Through autodiff, against burn-flex's conv2d then relu.
        let ours = through_autodiff(conv::conv2d_relu, case, &d);
        let burns = through_autodiff(
            |x, w, b, o| burn::tensor::activation::relu(burn::tensor::module::conv2d(x, w, b, o)),
            case,
            &d,
        );
        let close = |what: &str, a: &[f32], b: &[f32]| {
            let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (j, (p, q)) in a.iter().zip(b).enumerate() {
                assert!(
                    (p - q).abs() <= 2e-5 * scale,
                    "{what}[{j}]: ours {p}, burn-flex {q} for {case:?}"
                );
            }
        };
        close("forward", &ours.0, &burns.0);
        close("input gradient", &ours.1, &burns.1);
        close("weight gradient", &ours.2, &burns.2);
        if let (Some(a), Some(b)) = (&ours.3, &burns.3) {
            close("bias gradient", a, b);
        }
        // The kernels: the ReLU and its mask exactly as a separate ReLU would apply them, on
        // every instruction set.
        let plain = kernels::forward(
            Isa::detected(),
            &g,
            &d.x,
            &d.weight,
            d.bias.as_deref(),
            false,
        );
        let relu: Vec<f32> = plain
            .iter()
            .map(|&v| if v <= 0.0 { 0.0 } else { v })
            .collect();
        let masked: Vec<f32> = d
            .output_grad
            .iter()
            .zip(&relu)
            .map(|(&g, &o)| if o <= 0.0 { 0.0 } else { g })
            .collect();
        for isa in available_isas() {
            let fused = kernels::forward(isa, &g, &d.x, &d.weight, d.bias.as_deref(), true);
            assert_eq!(fused, relu, "{} {case:?}", isa.name());
            let r = Some(&relu[..]);
            assert_eq!(
                kernels::input_grad(isa, &g, &d.weight, &d.output_grad, r),
                kernels::input_grad(isa, &g, &d.weight, &masked, None),
                "{} {case:?}",
                isa.name()
            );
            assert_eq!(
                kernels::weight_grad(isa, &g, &d.x, &d.output_grad, r),
                kernels::weight_grad(isa, &g, &d.x, &masked, None),
                "{} {case:?}",
                isa.name()
            );
            assert_eq!(
                kernels::bias_grad(&g, &d.output_grad, r),
                kernels::bias_grad(&g, &masked, None)
            );
        }
        assert_eq!(
            ours.0, relu,
            "the tensor path runs the kernels for {case:?}"
        );
    }
}

/// Σ output · r in f64, for finite differences.
fn weighted_sum(case: &Case, x: &[f32], weight: &[f32], bias: Option<&[f32]>, r: &[f32]) -> f64 {
    let out = kernels::forward(Isa::detected(), &case.geometry(), x, weight, bias, false);
    out.iter()
        .zip(r)
        .map(|(&o, &r)| f64::from(o) * f64::from(r))
        .sum()
}

#[test]
fn gradients_agree_with_finite_differences() {
    // The convolution is linear in x and in the weight separately, so a central difference
    // along a direction is exact up to rounding: a large step keeps rounding small.
    let step = 0.5f32;
    for (i, case) in all_cases().iter().enumerate().step_by(3) {
        let d = data(case, 200 + i as u64);
        let g = case.geometry();
        let mut rng = StdRng::seed_from_u64(300 + i as u64);
        let bias = d.bias.as_deref();
        let dx = random_values(&mut rng, d.x.len());
        let dw = random_values(&mut rng, d.weight.len());
        let shift = |v: &[f32], dir: &[f32], s: f32| -> Vec<f32> {
            v.iter().zip(dir).map(|(a, b)| a + s * b).collect()
        };
        let along_x = (weighted_sum(
            case,
            &shift(&d.x, &dx, step),
            &d.weight,
            bias,
            &d.output_grad,
        ) - weighted_sum(
            case,
            &shift(&d.x, &dx, -step),
            &d.weight,
            bias,
            &d.output_grad,
        )) / (2.0 * f64::from(step));
        let along_w = (weighted_sum(
            case,
            &d.x,
            &shift(&d.weight, &dw, step),
            bias,
            &d.output_grad,
        ) - weighted_sum(
            case,
            &d.x,
            &shift(&d.weight, &dw, -step),
            bias,
            &d.output_grad,
        )) / (2.0 * f64::from(step));
        let dot = |a: &[f32], b: &[f32]| -> (f64, f64) {
            a.iter().zip(b).fold((0.0, 0.0), |(s, m), (&p, &q)| {
                let t = f64::from(p) * f64::from(q);
                (s + t, m + t.abs())
            })
        };
        let (gx, scale_x) = dot(
            &kernels::input_grad(Isa::detected(), &g, &d.weight, &d.output_grad, None),
            &dx,
        );
        let (gw, scale_w) = dot(
            &kernels::weight_grad(Isa::detected(), &g, &d.x, &d.output_grad, None),
            &dw,
        );
        assert!(
            (along_x - gx).abs() <= 1e-4 * scale_x.max(1.0),
            "input: finite difference {along_x}, gradient {gx} for {case:?}"
        );
        assert!(
            (along_w - gw).abs() <= 1e-4 * scale_w.max(1.0),
            "weight: finite difference {along_w}, gradient {gw} for {case:?}"
        );
    }
}

#[test]
fn the_channel_engine_gives_the_position_engines_bits() {
    // Stride-1 input gradients with a vector of input channels (8 on AVX2, 16 on AVX-512)
    // run on the channel engine, which leaves out terms that read the padding; the engine a
    // layer gets depends on the ISA, so it must agree to the bit with the position engine
    // (through a fused ReLU's mask too). F(2, 3), which takes some of these layers first,
    // has tests of its own (kernels/src/winograd.rs). Stride 2 runs by phases, each a
    // stride-1 input gradient with its sub-kernel (a 5 × 5 kernel's are up to 3 × 3).
    let mut cases = vec![
        // resnet18's stride-2 3 × 3 layers.
        Case::square(1, [256, 512], 8, 3, 2, 1, 1, false),
        Case::square(1, [128, 256], 16, 3, 2, 1, 1, true),
        Case::square(1, [64, 128], 32, 3, 2, 1, 1, true),
        Case::square(2, [40, 24], 13, 5, 2, 2, 1, true),
        // micro-cnn's conv2 (padded, the channel engine on AVX2 only) and 8–15 channels.
        Case::square(3, [8, 16], 14, 3, 1, 1, 1, false),
        Case::square(2, [12, 8], 9, 3, 1, 1, 1, true),
        Case::square(2, [9, 5], 7, 5, 1, 2, 1, false),
        Case::square(3, [32, 32], 26, 3, 1, 0, 1, true),
        Case::square(2, [32, 64], 12, 3, 1, 0, 1, true),
        Case::square(2, [64, 64], 10, 3, 1, 0, 1, true),
    ];
    cases.extend(random_wide_cases(10, 24));
    cases.extend(three_wide_cases(24, 25));
    cases.extend(stride_two_cases(20, 27, 8..=40, 1..=24));
    // Keep the shapes the kernels take.
    cases.retain(|c| (0..2).all(|a| c.size[a] + c.padding[a].0 + c.padding[a].1 >= c.kernel[a]));
    // Rows one and two positions wide, where a tile reads padding at both ends (in place
    // where its edges are compiled or it is one vector of channels, from padded planes
    // otherwise): 24 channels are three vectors on AVX2 (a two-vector tile and a one-vector
    // remainder), 8 one vector.
    for (width, pad_w) in [
        (1, (1, 1)),
        (1, (2, 0)),
        (1, (0, 2)),
        (2, (0, 1)),
        (2, (1, 0)),
    ] {
        for in_channels in [8, 24] {
            cases.push(Case {
                batch: 1,
                in_channels,
                out_channels: 3,
                size: [5, width],
                kernel: [3, 3],
                stride: [1, 1],
                padding: [(1, 1), pad_w],
                groups: 1,
                bias: false,
            });
        }
    }
    for (i, case) in cases.iter().enumerate() {
        let d = data(case, 600 + i as u64);
        let g = case.geometry();
        // A "ReLU output" in (−1, 1): it masks about half of the gradient.
        let mut rng = StdRng::seed_from_u64(700 + i as u64);
        let relu_output = random_values(&mut rng, d.output_grad.len());
        for isa in available_isas() {
            for mask in [None, Some(&relu_output[..])] {
                let channels = kernels::input_grad_direct(isa, &g, &d.weight, &d.output_grad, mask);
                let positions =
                    kernels::input_grad_on_positions(isa, &g, &d.weight, &d.output_grad, mask);
                let same = channels
                    .iter()
                    .zip(&positions)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same && channels.len() == positions.len(),
                    "{} differs from the position engine (mask: {}) for {case:?}",
                    isa.name(),
                    mask.is_some()
                );
            }
        }
    }
}

#[test]
fn the_channel_engines_forward_pass_gives_the_main_engines_bits() {
    // Forward passes on the input gradient's channel engine (kernels/src/channel_forward.rs:
    // the input turned by 180°, the weights' channels swapped) sum the main engine's terms in
    // its order from the bias, leaving out those on the padding; the engine a layer gets
    // depends on the ISA and the shape, so the two must agree to the bit (a −0 bias aside:
    // the module's doc). Vectors run over output channels: 16–48 of them cover one and two
    // vectors and a remainder on both ISAs (8–15, one vector on AVX2, stay on the main engine
    // on AVX-512). Stride 2 reads the turned input at every other position.
    let mut rng = StdRng::seed_from_u64(26);
    let mut cases = vec![
        // resnet18's last two stages, madry-cnn's conv2, shrunk in batch.
        Case::square(1, [512, 512], 4, 3, 1, 1, 1, false),
        Case::square(2, [256, 256], 8, 3, 1, 1, 1, true),
        Case::square(2, [32, 64], 14, 5, 1, 2, 1, true),
        // resnet18's stride-2 3 × 3 layers and its shortcuts (1 × 1, the main engine's).
        Case::square(1, [256, 512], 8, 3, 2, 1, 1, true),
        Case::square(1, [128, 256], 16, 3, 2, 1, 1, false),
        Case::square(1, [64, 128], 32, 3, 2, 1, 1, true),
        Case::square(1, [64, 128], 32, 1, 2, 0, 1, true),
    ];
    // Strided shapes: even and odd sizes (the turned grid's origin), uneven padding.
    cases.extend(stride_two_cases(20, 26, 1..=40, 8..=48));
    for i in 0..30 {
        let kernel = [rng.gen_range(1..=5), rng.gen_range(2..=5)];
        let pad = |rng: &mut StdRng, k: usize| (rng.gen_range(0..k), rng.gen_range(0..k));
        let padding = [pad(&mut rng, kernel[0]), pad(&mut rng, kernel[1])];
        // Rows from 1 wide up, so that tiles meet the padding at both ends.
        let width = if i < 6 { 1 + i } else { rng.gen_range(1..=20) };
        cases.push(Case {
            batch: rng.gen_range(1..=2),
            in_channels: rng.gen_range(1..=40),
            out_channels: rng.gen_range(8..=48),
            size: [rng.gen_range(1..=9), width],
            kernel,
            stride: [1, 1],
            padding,
            groups: 1,
            bias: rng.gen_bool(0.5),
        });
    }
    // Keep the shapes the kernels take (an input smaller than the kernel even with padding
    // is not a convolution).
    cases.retain(|c| (0..2).all(|a| c.size[a] + c.padding[a].0 + c.padding[a].1 >= c.kernel[a]));
    assert!(cases.len() >= 40, "most random shapes kept");
    // An empty input whose padding still gives an output (the turned convolution does not
    // exist): the main engine's bias, also by default where the channel engine's rule holds.
    cases.push(Case {
        batch: 1,
        in_channels: 32,
        out_channels: 16,
        size: [0, 4],
        kernel: [3, 3],
        stride: [1, 1],
        padding: [(1, 2), (1, 1)],
        groups: 1,
        bias: true,
    });
    for (i, case) in cases.iter().enumerate() {
        let d = data(case, 900 + i as u64);
        let g = case.geometry();
        for isa in available_isas() {
            for relu in [false, true] {
                let bias = d.bias.as_deref();
                let channels = kernels::forward_on_channels(isa, &g, &d.x, &d.weight, bias, relu);
                let grid = kernels::forward_on_grid(isa, &g, &d.x, &d.weight, bias, relu);
                let default = kernels::forward(isa, &g, &d.x, &d.weight, bias, relu);
                let same = |a: &[f32]| {
                    a.len() == grid.len()
                        && a.iter().zip(&grid).all(|(a, b)| a.to_bits() == b.to_bits())
                };
                assert!(
                    same(&channels) && (case.size[0] > 0 || same(&default)),
                    "{}: the channel engine's forward pass differs from the main engine's \
                     (ReLU: {relu}) for {case:?}",
                    isa.name()
                );
            }
        }
    }
}

#[test]
fn the_first_layer_engines_give_the_older_engines_bits() {
    // One-channel, stride-1 convolutions run their forward pass (3 × 3) and input gradient (3 × 3
    // and 5 × 5) on the first-layer engines (kernels/src/first_layer*.rs), which must agree to
    // the bit with the main and row engines, with and without the fused ReLU. The exception:
    // where the layer shrinks the image or keeps its size, the input gradient runs on the
    // tap-sum engine (kernels/src/first_layer_taps.rs), which sums the channels before the taps;
    // there it must agree with the row engine to rounding, and give the same bits on every
    // instruction set.
    // The zoo's first layers at MNIST's size, then random sizes whose rows and columns are not
    // multiples of the tiles.
    let mut cases = vec![
        Case::square(3, [1, 32], 28, 3, 1, 0, 1, true),
        Case::square(2, [1, 8], 28, 3, 1, 1, 1, false),
        // One output channel: the forward pass stays on the row engine, the gradient does not.
        Case::square(2, [1, 1], 20, 3, 1, 1, 1, true),
        // madry-cnn's conv1: 5 × 5, padded by 2; then rows of one vector (8 wide on AVX2, 16 on
        // AVX-512), whose gradient takes the 8-row tile.
        Case::square(2, [1, 32], 28, 5, 1, 2, 1, true),
        Case::square(2, [1, 4], 8, 5, 1, 2, 1, false),
        Case::square(2, [1, 4], 16, 5, 1, 2, 1, true),
    ];
    let mut rng = StdRng::seed_from_u64(25);
    for i in 0..18 {
        // Two thirds 3 × 3, one third 5 × 5; padding up to the kernel's size − 1.
        let k = if i % 3 == 2 { 5 } else { 3 };
        let pad = |rng: &mut StdRng| (rng.gen_range(0..k), rng.gen_range(0..k));
        cases.push(Case {
            batch: rng.gen_range(1..=3),
            in_channels: 1,
            out_channels: rng.gen_range(1..=12),
            size: [rng.gen_range(k..=40), rng.gen_range(k..=70)],
            kernel: [k, k],
            stride: [1, 1],
            padding: [pad(&mut rng), pad(&mut rng)],
            groups: 1,
            bias: rng.gen_bool(0.5),
        });
    }
    let same = |a: &[f32], b: &[f32]| {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
    };
    for (i, case) in cases.iter().enumerate() {
        let d = data(case, 800 + i as u64);
        let g = case.geometry();
        // A "ReLU output" in (−1, 1), with some zeros of both signs and NaNs (burn's rule:
        // the gradient passes where the output is > 0 or NaN).
        let mut relu_output = random_values(&mut rng, d.output_grad.len());
        for (i, v) in relu_output
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| i % 7 == 0)
        {
            *v = [0.0, -0.0, f32::NAN][i % 3];
        }
        // The tap-sum engine sums the same terms in another order.
        let tap_sums = kernels::first_layer_sums_taps(&g);
        let mut first_isa_grads: Option<Vec<Vec<f32>>> = None;
        for isa in available_isas() {
            let bias = d.bias.as_deref();
            for relu in [false, true] {
                let first = kernels::forward(isa, &g, &d.x, &d.weight, bias, relu);
                let grid = kernels::forward_on_grid(isa, &g, &d.x, &d.weight, bias, relu);
                assert!(
                    same(&first, &grid),
                    "{}: the forward pass differs from the main engine's (ReLU: {relu}) for {case:?}",
                    isa.name()
                );
            }
            let mut grads = Vec::new();
            for mask in [None, Some(&relu_output[..])] {
                let first = kernels::input_grad(isa, &g, &d.weight, &d.output_grad, mask);
                let rows =
                    kernels::input_grad_on_positions(isa, &g, &d.weight, &d.output_grad, mask);
                // Each value sums at most 12 · 25 terms of magnitude below 1.
                let agree = if tap_sums {
                    first.len() == rows.len()
                        && first.iter().zip(&rows).all(|(a, b)| (a - b).abs() <= 1e-4)
                } else {
                    same(&first, &rows)
                };
                assert!(
                    agree,
                    "{}: the input gradient differs from the row engine's (mask: {}) for {case:?}",
                    isa.name(),
                    mask.is_some()
                );
                grads.push(first);
            }
            match &first_isa_grads {
                None => first_isa_grads = Some(grads),
                Some(first) => assert!(
                    first.iter().zip(&grads).all(|(a, b)| same(a, b)),
                    "{}: the input gradient differs from another instruction set's for {case:?}",
                    isa.name()
                ),
            }
        }
    }
}

#[test]
fn the_zoos_first_layers_take_their_input_gradient_from_the_tap_sums() {
    // The tap-sum engine sums the channels before the taps, so its bits differ from the row
    // engine's somewhere in a 32-channel layer (the first-layer engine gives the row engine's
    // bits: the test above); a layer that keeps the image's size takes the tap sums too.
    let tap_sums = |case: &Case| {
        let d = data(case, 7);
        let g = case.geometry();
        available_isas().into_iter().any(|isa| {
            let ours = kernels::input_grad(isa, &g, &d.weight, &d.output_grad, None);
            let rows = kernels::input_grad_on_positions(isa, &g, &d.weight, &d.output_grad, None);
            ours.iter()
                .zip(&rows)
                .any(|(a, b)| a.to_bits() != b.to_bits())
        })
    };
    // small-cnn's conv1 (unpadded) and micro-cnn's (padded by 1), at MNIST's size.
    assert!(tap_sums(&Case::square(2, [1, 32], 28, 3, 1, 0, 1, true)));
    assert!(tap_sums(&Case::square(2, [1, 32], 28, 3, 1, 1, 1, true)));
    // madry-cnn's conv1 (5 × 5, padded by 2).
    assert!(tap_sums(&Case::square(2, [1, 32], 28, 5, 1, 2, 1, true)));
}

#[test]
fn results_are_bit_identical_across_runs_and_thread_counts() {
    // A batch large enough for the weight gradient to split into several chunks.
    let mut cases = vec![
        Case::square(40, [8, 16], 14, 3, 1, 1, 1, true),
        Case::square(9, [32, 32], 12, 3, 1, 0, 1, true),
    ];
    cases.extend(zoo_cases());
    for (i, case) in cases.iter().enumerate() {
        let d = data(case, 400 + i as u64);
        let g = case.geometry();
        let run = || {
            let isa = Isa::detected();
            (
                kernels::forward(isa, &g, &d.x, &d.weight, d.bias.as_deref(), false),
                kernels::input_grad(isa, &g, &d.weight, &d.output_grad, None),
                kernels::weight_grad(isa, &g, &d.x, &d.output_grad, None),
                kernels::bias_grad(&g, &d.output_grad, None),
            )
        };
        let first = run();
        assert!(first == run(), "two runs differ for {case:?}");
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert!(
                pool.install(run) == first,
                "{threads} threads differ for {case:?}"
            );
        }
    }
}

#[test]
fn an_attack_gradient_with_fixed_weights_runs_on_the_kernels() {
    // The attacks' case: x tracked on the autodiff device, the weights plain tensors.
    let case = Case::square(2, [3, 8], 9, 3, 1, 1, 1, true);
    let d = data(&case, 500);
    let x = tensor(&d.x, case.x_dims(), &autodiff_device()).require_grad();
    let w = tensor(&d.weight, case.w_dims(), &compute_device());
    let b = tensor(
        d.bias.as_ref().unwrap(),
        [case.out_channels],
        &compute_device(),
    );
    let out = conv::conv2d(x.clone(), w, Some(b), case.options());
    let dims = out.dims();
    let grads = (out * tensor(&d.output_grad, dims, &autodiff_device()))
        .sum()
        .backward();
    let g = case.geometry();
    assert_eq!(
        to_vec(x.grad(&grads).unwrap()),
        kernels::input_grad(Isa::detected(), &g, &d.weight, &d.output_grad, None)
    );
    // Without autodiff at all, the forward pass is the kernel's too.
    let plain = conv::conv2d(
        tensor(&d.x, case.x_dims(), &compute_device()),
        tensor(&d.weight, case.w_dims(), &compute_device()),
        None,
        case.options(),
    );
    assert_eq!(
        to_vec(plain),
        kernels::forward(Isa::detected(), &g, &d.x, &d.weight, None, false)
    );
}

#[test]
fn max_pooling_matches_burn_flex_forward_and_backward_ties_and_nans_included() {
    use burn::nn::pool::MaxPool2dConfig;
    let mut rng = StdRng::seed_from_u64(600);
    // 2 × 2 windows in rows of 5, 19 (more than a vector) and 4 of an odd width; 3 × 3.
    let shapes = [([2, 3, 9, 10], 2), ([2, 2, 6, 38], 2), ([4, 2, 8, 9], 2)];
    let shapes = shapes
        .into_iter()
        .chain([([1, 2, 12, 12], 3), ([3, 1, 4, 4], 2)]);
    for (dims, window) in shapes {
        let len = dims.iter().product();
        // Few distinct values, so windows hold ties; a couple of NaNs.
        let mut values: Vec<f32> = (0..len).map(|_| rng.gen_range(0..4) as f32).collect();
        values[5] = f32::NAN;
        values[len - 3] = f32::NAN;
        let pool = MaxPool2dConfig::new([window, window])
            .with_strides([window, window])
            .init();
        let run = |ours: bool| {
            let x = tensor(&values, dims, &autodiff_device()).require_grad();
            let out = if ours {
                conv::max_pool2d(&pool, x.clone())
            } else {
                pool.forward(x.clone())
            };
            let r: Vec<f32> = (0..out.dims().iter().product()).map(|i| i as f32).collect();
            let grads = (out.clone() * tensor(&r, out.dims(), &autodiff_device()))
                .sum()
                .backward();
            (to_vec(out), to_vec(x.grad(&grads).unwrap()))
        };
        let (ours, burns) = (run(true), run(false));
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ours.0), bits(&burns.0), "forward {dims:?}");
        // The NaN windows' gradients are NaN-free: only positions differ, so compare exactly.
        assert_eq!(bits(&ours.1), bits(&burns.1), "backward {dims:?}");
        let plain = conv::max_pool2d(&pool, tensor(&values, dims, &compute_device()));
        assert_eq!(
            bits(&to_vec(plain)),
            bits(&ours.0),
            "without autodiff {dims:?}"
        );
        // And the tensor path is the kernel's (not burn's op by a fallback).
        let [batch, channels, in_h, in_w] = dims;
        let g = kernels::PoolGeometry {
            batch,
            channels,
            in_h,
            in_w,
            window,
        };
        let (out, argmax) = kernels::max_pool_forward(&g, &values, true);
        assert_eq!(bits(&out), bits(&ours.0));
        let r: Vec<f32> = (0..out.len()).map(|i| i as f32).collect();
        assert_eq!(
            bits(&kernels::max_pool_backward(&g, &argmax, &r)),
            bits(&ours.1)
        );
    }
}

/// Batch norm in inference mode (running statistics), alone and with the ReLU after it, on our
/// one-pass op: the same bits as burn's four operations and ReLU, forward and input gradient,
/// with and without autodiff; where γ is trained, burn's operations run (and γ gets its
/// gradient).
#[test]
fn inference_batch_norm_matches_burns_operations_bit_for_bit() {
    use burn::module::{Param, RunningState};
    use burn::nn::{BatchNorm, BatchNormConfig};
    let mut rng = StdRng::seed_from_u64(900);
    let dims = [3, 4, 5, 6];
    let len: usize = dims.iter().product();
    let normal = |rng: &mut StdRng, n: usize| random_values(rng, n);
    let mut x = normal(&mut rng, len);
    let gamma = vec![1.5, -0.7, 0.0, 2.0];
    let beta = vec![0.0, 0.3, -0.2, 0.0];
    let mean = vec![0.1, -0.2, 0.0, 0.5];
    let var = vec![0.5, 2.0, 1e-6, 0.0];
    // An input equal to its channel's mean (an exact zero before γ and β), and a NaN.
    x[0] = mean[0];
    x[len - 1] = f32::NAN;
    let upstream = normal(&mut rng, len);
    let bn = |device: &Device, trained_gamma: bool| -> BatchNorm {
        let mut bn = BatchNormConfig::new(4).init(device);
        let gamma = tensor(&gamma, [4], device);
        bn.gamma = Param::from_tensor(if trained_gamma {
            gamma.require_grad()
        } else {
            gamma
        });
        bn.beta = Param::from_tensor(tensor(&beta, [4], device));
        bn.running_mean = RunningState::new(tensor(&mean, [4], device));
        bn.running_var = RunningState::new(tensor(&var, [4], device));
        bn.training = Param::from_bool(false);
        bn
    };
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for relu in [false, true] {
        let burns = |bn: &BatchNorm, x: Tensor<4>| {
            let out = bn.forward(x);
            if relu {
                burn::tensor::activation::relu(out)
            } else {
                out
            }
        };
        let ours = |bn: &BatchNorm, x: Tensor<4>| {
            let fused = conv::inference_batch_norm(bn, &x, relu);
            // Our op runs unless γ is trained; then burn's operations do.
            assert_eq!(
                fused.is_some(),
                !bn.gamma.val().is_require_grad(),
                "relu {relu}"
            );
            let out = if relu {
                conv::batch_norm_relu(bn, x)
            } else {
                conv::batch_norm(bn, x)
            };
            if let Some(fused) = fused {
                assert_eq!(bits(&to_vec(fused)), bits(&to_vec(out.clone())));
            }
            out
        };
        let run = |ours_too: bool, trained_gamma: bool| {
            let device = autodiff_device();
            let bn = bn(&device, trained_gamma);
            let input = tensor(&x, dims, &device).require_grad();
            let out = if ours_too {
                ours(&bn, input.clone())
            } else {
                burns(&bn, input.clone())
            };
            let grads = (out.clone() * tensor(&upstream, dims, &device))
                .sum()
                .backward();
            let gamma_grad = bn.gamma.val().grad(&grads).map(to_vec);
            (to_vec(out), to_vec(input.grad(&grads).unwrap()), gamma_grad)
        };
        let (theirs, mine) = (run(false, false), run(true, false));
        assert_eq!(bits(&mine.0), bits(&theirs.0), "forward, relu {relu}");
        assert_eq!(
            bits(&mine.1),
            bits(&theirs.1),
            "input gradient, relu {relu}"
        );
        let device = compute_device();
        let plain = ours(&bn(&device, false), tensor(&x, dims, &device));
        assert_eq!(
            bits(&to_vec(plain)),
            bits(&theirs.0),
            "without autodiff, relu {relu}"
        );
        // A trained γ: burn's operations, γ's gradient among the results.
        let (theirs, mine) = (run(false, true), run(true, true));
        assert_eq!(bits(&mine.0), bits(&theirs.0), "trained γ, relu {relu}");
        assert_eq!(bits(&mine.1), bits(&theirs.1), "trained γ, relu {relu}");
        let gamma_grad = |g: &Option<Vec<f32>>| g.as_deref().map(bits).expect("γ's gradient");
        assert_eq!(
            gamma_grad(&mine.2),
            gamma_grad(&theirs.2),
            "γ's gradient, relu {relu}"
        );
        // An input on the autodiff device that needs no gradient (a teacher's forward): ours,
        // the same values. A layer in training mode there: burn's training path, not ours.
        let device = autodiff_device();
        let untracked = ours(&bn(&device, false), tensor(&x, dims, &device));
        assert_eq!(
            bits(&to_vec(untracked)),
            bits(&theirs.0),
            "untracked, relu {relu}"
        );
        let mut training = bn(&device, false);
        training.training = Param::from_bool(true);
        assert!(conv::inference_batch_norm(&training, &tensor(&x, dims, &device), relu).is_none());
    }
}

/// A channel's inference batch norm for the epilogue tests (mean, variance, γ, β): random per
/// channel (so that a channel taking another's numbers shows), with a zero variance, a tiny
/// one, a zero γ and a negative γ among the first channels.
fn norm_statistics(channels: usize, seed: u64) -> [Vec<f32>; 4] {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut mean = random_values(&mut rng, channels);
    let mut var: Vec<f32> = (0..channels).map(|_| rng.gen_range(0.0..2.0)).collect();
    let mut gamma: Vec<f32> = (0..channels).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let beta = random_values(&mut rng, channels);
    for (c, v) in [(0, 0.0), (1, 1e-6)] {
        if c < channels {
            var[c] = v;
        }
    }
    for (c, g) in [(1, 0.0), (2, -0.7)] {
        if c < channels {
            gamma[c] = g;
        }
    }
    if let Some(m) = mean.get_mut(0) {
        *m = 0.0;
    }
    [mean, var, gamma, beta]
}

/// The convolution with an inference batch norm in its epilogue: on every instruction set and
/// every engine the zoo and the random shapes reach, the bits of the convolution followed by
/// the batch norm's formula (and the ReLU) applied to each value; and its input gradient with
/// the batch norm's backward step folded in, the bits of the two steps.
#[test]
fn a_batch_norm_in_the_epilogue_gives_the_two_passes_bits() {
    let epsilon = 1e-5f32;
    for (i, case) in all_cases().iter().enumerate() {
        let d = data(case, 1100 + i as u64);
        let g = case.geometry();
        let [mean, var, gamma, beta] = norm_statistics(case.out_channels, 1150 + i as u64);
        let std: Vec<f32> = var.iter().map(|v| (v + epsilon).sqrt()).collect();
        let plane = g.out_h * g.out_w;
        for relu in [false, true] {
            let norm = kernels::ChannelNorm::new(
                mean.clone(),
                std.clone(),
                gamma.clone(),
                beta.clone(),
                relu,
            );
            for isa in available_isas() {
                let raw = kernels::forward(isa, &g, &d.x, &d.weight, d.bias.as_deref(), false);
                let expected: Vec<u32> = raw
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| {
                        let c = j / plane % case.out_channels;
                        let y = ((v - mean[c]) / std[c]) * gamma[c] + beta[c];
                        let y = if relu && y <= 0.0 { 0.0 } else { y };
                        y.to_bits()
                    })
                    .collect();
                let fused =
                    kernels::forward_normalised(isa, &g, &d.x, &d.weight, d.bias.as_deref(), &norm);
                let fused_bits: Vec<u32> = fused.iter().map(|v| v.to_bits()).collect();
                assert_eq!(fused_bits, expected, "{} relu {relu} {case:?}", isa.name());
                // The input gradient: the batch norm's backward step on each value (masked by
                // the ReLU's output where it follows), then the convolution's.
                let conv_grad: Vec<f32> = d
                    .output_grad
                    .iter()
                    .enumerate()
                    .map(|(j, &dy)| {
                        let c = j / plane % case.out_channels;
                        let dy = if relu && fused[j] <= 0.0 { 0.0 } else { dy };
                        (dy * gamma[c]) * (1.0 / std[c])
                    })
                    .collect();
                let expected = kernels::input_grad(isa, &g, &d.weight, &conv_grad, None);
                let output = relu.then_some(&fused[..]);
                let ours = kernels::input_grad_normalised(
                    isa,
                    &g,
                    &d.weight,
                    &d.output_grad,
                    output,
                    &norm,
                );
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&ours),
                    bits(&expected),
                    "input gradient, {} relu {relu} {case:?}",
                    isa.name()
                );
            }
        }
    }
}

/// `conv::forward_batch_norm_relu` (and without the ReLU) on a fixed model: the one-pass op,
/// with the values and input gradient of the two ops it replaces (each itself burn's to the
/// bit), with and without autodiff; the two ops where the batch norm trains or the weight is
/// tracked.
#[test]
fn the_fused_convolution_and_batch_norm_match_the_two_ops_bit_for_bit() {
    use burn::module::{Module, Param, RunningState};
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    // micro-cnn's two layers (the first-layer engines, then the main ones), a strided layer with
    // a bias, a depthwise one (the row engine).
    let cases = [
        Case::square(3, [1, 8], 12, 3, 1, 1, 1, false),
        Case::square(2, [8, 16], 6, 3, 1, 1, 1, false),
        Case::square(2, [3, 16], 9, 3, 2, 1, 1, true),
        Case::square(2, [24, 24], 8, 3, 1, 1, 24, false),
    ];
    for (i, case) in cases.iter().enumerate() {
        let mut d = data(case, 1200 + i as u64);
        d.x[1] = f32::NAN;
        let [mean, var, gamma, beta] = norm_statistics(case.out_channels, 1250 + i as u64);
        let layers = |device: &Device| {
            let pad = case.padding[0].0;
            let mut conv = Conv2dConfig::new([case.in_channels, case.out_channels], case.kernel)
                .with_stride(case.stride)
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_groups(case.groups)
                .with_bias(case.bias)
                .init(device);
            conv.weight = Param::from_tensor(tensor(&d.weight, case.w_dims(), device));
            if let Some(b) = &d.bias {
                conv.bias = Some(Param::from_tensor(tensor(b, [case.out_channels], device)));
            }
            let channels = [case.out_channels];
            let mut bn: BatchNorm = BatchNormConfig::new(case.out_channels).init(device);
            bn.gamma = Param::from_tensor(tensor(&gamma, channels, device));
            bn.beta = Param::from_tensor(tensor(&beta, channels, device));
            bn.running_mean = RunningState::new(tensor(&mean, channels, device));
            bn.running_var = RunningState::new(tensor(&var, channels, device));
            (conv, bn)
        };
        let inference = |bn: BatchNorm| {
            let mut bn = bn.no_grad();
            bn.training = Param::from_bool(false);
            bn
        };
        for relu in [false, true] {
            let fused = |conv: &_, bn: &_, x| {
                if relu {
                    conv::forward_batch_norm_relu(conv, bn, x)
                } else {
                    conv::forward_batch_norm(conv, bn, x)
                }
            };
            let two_ops = |conv: &_, bn: &_, x| {
                let out = conv::forward(conv, x);
                if relu {
                    conv::batch_norm_relu(bn, out)
                } else {
                    conv::batch_norm(bn, out)
                }
            };
            // A fixed model in inference mode on the autodiff device (an attack's view).
            let device = autodiff_device();
            let (conv, bn) = layers(&device);
            let (conv, bn) = (conv.no_grad(), inference(bn));
            let run = |op: &dyn Fn(&_, &_, Tensor<4>) -> Tensor<4>| {
                let x = tensor(&d.x, case.x_dims(), &device).require_grad();
                let out = op(&conv, &bn, x.clone());
                let upstream = tensor(&d.output_grad, out.dims(), &device);
                let grads = (out.clone() * upstream).sum().backward();
                (bits(&to_vec(out)), bits(&to_vec(x.grad(&grads).unwrap())))
            };
            let x = tensor(&d.x, case.x_dims(), &device);
            assert!(
                conv::fused_conv_batch_norm(&conv, &bn, &x, relu).is_some(),
                "the one-pass op runs for {case:?}"
            );
            let (ours, theirs) = (run(&fused), run(&two_ops));
            assert_eq!(ours.0, theirs.0, "forward, relu {relu}, {case:?}");
            assert_eq!(ours.1, theirs.1, "input gradient, relu {relu}, {case:?}");
            // Without autodiff (an evaluation), and an untracked input (a teacher).
            let untracked = bits(&to_vec(fused(&conv, &bn, x)));
            assert_eq!(untracked, theirs.0, "untracked, relu {relu}, {case:?}");
            let plain = compute_device();
            let (conv, bn) = layers(&plain);
            let bn = inference(bn);
            let x = tensor(&d.x, case.x_dims(), &plain);
            assert!(conv::fused_conv_batch_norm(&conv, &bn, &x, relu).is_some());
            assert_eq!(
                bits(&to_vec(fused(&conv, &bn, x))),
                theirs.0,
                "plain, {case:?}"
            );
            // A trained weight, or the batch norm on the training path: the two ops.
            let (conv, bn) = layers(&device);
            let x = tensor(&d.x, case.x_dims(), &device);
            assert!(conv.weight.val().is_tracked());
            let eval_bn = inference(bn.clone());
            assert!(conv::fused_conv_batch_norm(&conv, &eval_bn, &x, relu).is_none());
            let training = bn.clone().no_grad();
            assert!(training.training.is_enabled());
            assert!(
                conv::fused_conv_batch_norm(&conv.clone().no_grad(), &training, &x, relu).is_none()
            );
            // A trained bias (the weight fixed), or a trained γ: the two ops.
            if let Some(bias) = &conv.bias {
                let mut trained_bias = conv.clone().no_grad();
                trained_bias.bias = Some(Param::from_tensor(bias.val()));
                assert!(trained_bias.bias.as_ref().unwrap().val().is_tracked());
                let fused = conv::fused_conv_batch_norm(&trained_bias, &eval_bn, &x, relu);
                assert!(fused.is_none(), "trained bias, {case:?}");
            }
            let mut trained_gamma = eval_bn.clone();
            trained_gamma.gamma = Param::from_tensor(bn.gamma.val());
            assert!(trained_gamma.gamma.val().is_tracked());
            let fixed = conv.clone().no_grad();
            assert!(conv::fused_conv_batch_norm(&fixed, &trained_gamma, &x, relu).is_none());
            // A fixed model on the autodiff device and a plain input: the two ops put the
            // convolution's output on the autodiff device, where a layer in training mode takes
            // the batch's statistics; the one op must not run in either mode.
            let plain_x = tensor(&d.x, case.x_dims(), &plain);
            for bn in [&training, &eval_bn] {
                assert!(conv::fused_conv_batch_norm(&fixed, bn, &plain_x, relu).is_none());
            }
            let two = two_ops(&fixed, &training, plain_x.clone());
            assert_eq!(
                bits(&to_vec(fused(&fixed, &training, plain_x))),
                bits(&to_vec(two)),
                "a plain input, training mode, {case:?}"
            );
        }
    }
}

/// Batch norm in training mode (the batch's statistics), alone and with the ReLU after it, on
/// our op: the same bits as burn-nn's training path and ReLU for the output, the running
/// statistics (momentum 1, so they are the batch's own, unrounded by the update) and the
/// gradients of the input, γ and β. Shapes with one image, one channel, 1 × 1 planes and rows
/// longer than a vector and than the 2,048-value blocks the sums run in; a constant channel (zero variance), a zero and a negative γ; the layer
/// run twice in one graph (as RSLAD runs natural and adversarial images), and with γ and β
/// untracked.
#[test]
fn training_batch_norm_matches_burns_operations_bit_for_bit() {
    use burn::module::Param;
    use burn::nn::{BatchNorm, BatchNormConfig};
    let mut rng = StdRng::seed_from_u64(901);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    let shapes = [
        [3, 4, 5, 6],
        [1, 3, 5, 7],
        [4, 1, 3, 3],
        [6, 3, 1, 1],
        [2, 3, 17, 19],
        // Rows of exactly one and of several 2,048-value blocks (the sums run block by block).
        [8, 2, 16, 16],
        [5, 2, 21, 23],
    ];
    for dims in shapes {
        let channels = dims[1];
        let len: usize = dims.iter().product();
        let mut x = random_values(&mut rng, len);
        if channels > 1 {
            // Channel 1 of every image holds one value: its variance is exactly zero.
            let plane = dims[2] * dims[3];
            for image in 0..dims[0] {
                let start = (image * channels + 1) * plane;
                x[start..start + plane].fill(0.25);
            }
        }
        let gamma: Vec<f32> = (0..channels)
            .map(|c| [1.5, 0.0, -0.7, 2.0][c % 4])
            .collect();
        let beta: Vec<f32> = (0..channels)
            .map(|c| [0.0, 0.3, -0.2, 0.1][c % 4])
            .collect();
        let upstream = random_values(&mut rng, len);
        for (relu, twice, parameters_tracked) in [
            (false, false, true),
            (true, false, true),
            (true, true, true),
            (false, true, false),
        ] {
            let case = format!("{dims:?}, relu {relu}, twice {twice}, γ β {parameters_tracked}");
            let run = |ours: bool| {
                let device = autodiff_device();
                let mut bn: BatchNorm = BatchNormConfig::new(channels)
                    .with_momentum(1.0)
                    .init(&device);
                let parameter = |v: &[f32]| {
                    Param::from_tensor(tensor(v, [channels], &device))
                        .set_require_grad(parameters_tracked)
                };
                (bn.gamma, bn.beta) = (parameter(&gamma), parameter(&beta));
                let input = tensor(&x, dims, &device).require_grad();
                let forward = |x: Tensor<4>| match (ours, relu) {
                    (true, _) => {
                        assert!(conv::training_batch_norm(&bn, &x, relu).is_some(), "{case}");
                        let before = to_vec(bn.running_mean.value_sync());
                        let out = if relu {
                            conv::batch_norm_relu(&bn, x)
                        } else {
                            conv::batch_norm(&bn, x)
                        };
                        // The check above updated the statistics too; so did this forward.
                        assert_eq!(bits(&to_vec(bn.running_mean.value_sync())), bits(&before));
                        out
                    }
                    (false, true) => burn::tensor::activation::relu(bn.forward(x)),
                    (false, false) => bn.forward(x),
                };
                let out = forward(input.clone());
                let upstream = tensor(&upstream, dims, &device);
                let mut loss = (out.clone() * upstream.clone()).sum();
                if twice {
                    loss = loss + (forward(input.clone().mul_scalar(2.0)) * upstream).sum();
                }
                let grads = loss.backward();
                let grad = |t: Tensor<1>| t.grad(&grads).map(to_vec).unwrap_or_default();
                [
                    to_vec(out),
                    to_vec(input.grad(&grads).expect("x's gradient")),
                    grad(bn.gamma.val()),
                    grad(bn.beta.val()),
                    to_vec(bn.running_mean.value_sync()),
                    to_vec(bn.running_var.value_sync()),
                ]
            };
            let (theirs, mine) = (run(false), run(true));
            let names = ["output", "x's gradient", "γ's gradient", "β's gradient"];
            let names = names
                .into_iter()
                .chain(["running mean", "running variance"]);
            for ((name, theirs), mine) in names.zip(&theirs).zip(&mine) {
                assert_eq!(bits(mine), bits(theirs), "{name}, {case}");
            }
            // The comparisons are not of empty or initial values.
            assert_eq!(theirs[2].is_empty(), !parameters_tracked, "{case}");
            assert!(theirs[4].iter().any(|&m| m != 0.0), "{case}");
        }
    }
    // Inference mode, or no autodiff: not the training path.
    let device = autodiff_device();
    let mut bn: BatchNorm = BatchNormConfig::new(4).init(&device);
    let x = tensor(&random_values(&mut rng, 120), [3, 4, 5, 2], &device);
    bn.training = Param::from_bool(false);
    assert!(conv::training_batch_norm(&bn, &x, false).is_none());
    let plain = compute_device();
    let bn: BatchNorm = BatchNormConfig::new(4).init(&plain);
    let x = tensor(&random_values(&mut rng, 120), [3, 4, 5, 2], &plain);
    assert!(conv::training_batch_norm(&bn, &x, false).is_none());
}

/// The geometry's output sizes and the cases left to burn's op.
mod geometry {
    use rslad_kernels::ConvGeometry;

    fn geometry(
        x: [usize; 4],
        w: [usize; 4],
        stride: usize,
        pad: usize,
        groups: usize,
    ) -> Option<ConvGeometry> {
        ConvGeometry::new(x, w, [stride; 2], [(pad, pad); 2], [1, 1], groups)
    }

    #[test]
    fn output_sizes_follow_pytorch() {
        // small-cnn conv1: 28 → 26; a 3×3 stride-2 pad-1 conv: 32 → 16; 1×1 stride 2: 32 → 16.
        let g = geometry([2, 1, 28, 28], [32, 1, 3, 3], 1, 0, 1).unwrap();
        assert_eq!((g.out_h, g.out_w), (26, 26));
        let g = geometry([2, 8, 32, 32], [8, 8, 3, 3], 2, 1, 1).unwrap();
        assert_eq!((g.out_h, g.out_w), (16, 16));
        let g = geometry([2, 8, 32, 32], [4, 8, 1, 1], 2, 0, 1).unwrap();
        assert_eq!((g.out_h, g.out_w), (16, 16));
        // 5×5 "same": 28 → 28; a depthwise conv.
        let g = geometry([1, 6, 28, 28], [6, 1, 5, 5], 1, 2, 6).unwrap();
        assert_eq!((g.out_h, g.out_w), (28, 28));
        assert!(g.is_depthwise());
    }

    #[test]
    fn unsupported_cases_are_left_to_burn() {
        let dilated = ConvGeometry::new([1, 1, 8, 8], [1, 1, 3, 3], [1, 1], [(0, 0); 2], [2, 2], 1);
        assert!(dilated.is_none());
        // padding as large as the kernel
        assert!(geometry([1, 1, 8, 8], [1, 1, 3, 3], 1, 3, 1).is_none());
        // channels that do not match the weight
        assert!(geometry([1, 2, 8, 8], [1, 1, 3, 3], 1, 0, 1).is_none());
        // a kernel larger than the padded input
        assert!(geometry([1, 1, 2, 2], [1, 1, 5, 5], 1, 1, 1).is_none());
        // an empty batch
        assert!(geometry([0, 1, 8, 8], [1, 1, 3, 3], 1, 0, 1).is_none());
    }
}

/// Source planes: padding, phase splitting, cropping.
mod planes {
    use rslad_kernels::Isa;
    use rslad_kernels::planes::{FILL_OVERRUN, PlaneLayout, PlaneSpec};

    fn spec(top: usize, left: usize, stride: usize, rows: usize, row_stride: usize) -> PlaneSpec {
        let phases = (0..stride)
            .flat_map(|a| (0..stride).map(move |b| (a, b)))
            .collect::<Vec<_>>();
        PlaneSpec {
            channels: 1,
            height: 3,
            width: 3,
            top,
            left,
            stride: [stride, stride],
            layout: PlaneLayout {
                planes: phases.len(),
                rows,
                row_stride,
            },
            phases,
            isa: Isa::detected(),
        }
    }

    #[test]
    fn padding_surrounds_the_image_with_zeros() {
        let image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let spec = spec(1, 1, 1, 5, 6);
        let mut dst = vec![f32::NAN; spec.layout.total_len() + FILL_OVERRUN];
        spec.fill(&image, &mut dst);
        dst.truncate(spec.layout.total_len());
        #[rustfmt::skip]
        let expected = [
            0., 0., 0., 0., 0., 0.,
            0., 1., 2., 3., 0., 0.,
            0., 4., 5., 6., 0., 0.,
            0., 7., 8., 9., 0., 0.,
            0., 0., 0., 0., 0., 0.,
        ];
        assert_eq!(dst, expected);
    }

    #[test]
    fn stride_two_splits_the_padded_image_into_four_phases() {
        // padded (pad 1) is 5×5: rows/cols 0 and 4 zero. Phase (a, b) takes padded[2i+a][2j+b].
        let image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let spec = spec(1, 1, 2, 3, 3);
        let mut dst = vec![f32::NAN; spec.layout.total_len() + FILL_OVERRUN];
        spec.fill(&image, &mut dst);
        dst.truncate(spec.layout.total_len());
        #[rustfmt::skip]
        let expected = [
            // (0, 0): padded rows 0, 2, 4 × cols 0, 2, 4
            0., 0., 0.,  0., 5., 0.,  0., 0., 0.,
            // (0, 1): rows 0, 2, 4 × cols 1, 3, 5
            0., 0., 0.,  4., 6., 0.,  0., 0., 0.,
            // (1, 0): rows 1, 3, 5 × cols 0, 2, 4
            0., 2., 0.,  0., 8., 0.,  0., 0., 0.,
            // (1, 1): rows 1, 3, 5 × cols 1, 3, 5
            1., 3., 0.,  7., 9., 0.,  0., 0., 0.,
        ];
        assert_eq!(dst, expected);
    }

    #[test]
    fn a_row_stride_narrower_than_the_image_crops_it() {
        let image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let spec = spec(0, 0, 1, 2, 2);
        let mut dst = vec![f32::NAN; spec.layout.total_len() + FILL_OVERRUN];
        spec.fill(&image, &mut dst);
        dst.truncate(spec.layout.total_len());
        assert_eq!(dst, [1., 2., 4., 5.]);
    }
}
