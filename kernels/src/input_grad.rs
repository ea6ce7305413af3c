//! The input gradient: a correlation of the (padded) output gradient with the flipped,
//! transposed weights, through the same engine as the forward pass.
//!
//! With stride s, input row `ih` receives only the kernel rows `kh ≡ ih + pad (mod s)`, so
//! the input gradient splits into s_h · s_w *phases*, each a stride-1 correlation with its own
//! sub-kernel, whose grids interleave into the result. Stride 1 is the one-phase case: a
//! "full" correlation of the output gradient padded by kernel − 1 − padding.
//!
//! For phase a (rows `ih = s·i + a − pad_top`), kernel row `kh = s·q + a` reads output row
//! `oh = i − q`. The output gradient is padded on top by `T = ⌈kh/s⌉ − 1` rows, so that row
//! `oh` sits at `oh + T` and the tap offset `i₀ + T − q` is never negative (`i₀` is the phase's
//! first row inside the image). Columns the same.
//!
//! The 3 × 3 layers F(2, 3) takes forward (unpadded or padded by 1) have their input gradient
//! from it too where the gradient is large enough: the same full correlation, by Winograd's
//! transforms (winograd.rs).

use super::channels::{self, ChannelGrad};
use super::correlate::{Correlation, DirectMap};
use super::first_layer_grad::FirstLayerGrad;
use super::first_layer_taps::FirstLayerTaps;
use super::geometry::ConvGeometry;
use super::norm::ChannelNorm;
use super::output::{par_images, par_images_written};
use super::planes::{FILL_OVERRUN, PlaneLayout, PlaneSpec};
use super::rows::RowCorrelation;
use super::scratch::{with_gradient_scratch, with_scratch};
use super::simd::{Isa, relu_backward};
use super::winograd::Winograd;
use std::mem::MaybeUninit;

/// The rows (or columns) of one phase along one axis.
#[derive(Clone, Copy, Debug)]
pub(super) struct PhaseAxis {
    /// The phase: input positions `s·i + phase − pad`.
    pub(super) phase: usize,
    /// First and one-past-last `i` inside the input.
    pub(super) first: usize,
    end: usize,
}

impl PhaseAxis {
    fn new(phase: usize, stride: usize, pad: usize, size: usize) -> PhaseAxis {
        let first = pad.saturating_sub(phase).div_ceil(stride);
        // The last i has s·i + phase − pad ≤ size − 1.
        let end = match (size + pad).checked_sub(phase + 1) {
            Some(last) => last / stride + 1,
            None => 0,
        };
        PhaseAxis {
            phase,
            first,
            end: end.max(first),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.end - self.first
    }

    /// The kernel positions `s·q + phase` of this phase, as q.
    pub(super) fn taps(&self, stride: usize, kernel: usize) -> std::ops::Range<usize> {
        0..kernel.saturating_sub(self.phase).div_ceil(stride)
    }
}

/// The phases' rows and columns.
fn phase_axes(g: &ConvGeometry) -> (Vec<PhaseAxis>, Vec<PhaseAxis>) {
    let [s_h, s_w] = g.stride;
    let axes_h = (0..s_h)
        .map(|a| PhaseAxis::new(a, s_h, g.pad_h.0, g.in_h))
        .collect();
    let axes_w = (0..s_w)
        .map(|b| PhaseAxis::new(b, s_w, g.pad_w.0, g.in_w))
        .collect();
    (axes_h, axes_w)
}

/// The output gradient of one image padded for the phases (and for the channel engine, where
/// its tiles would read the padding).
pub(super) fn gradient_planes(isa: Isa, g: &ConvGeometry) -> PlaneSpec {
    let [s_h, s_w] = g.stride;
    // Top/left padding of the output gradient: the most taps any phase has, minus one.
    let pad_top = g.kernel_h.div_ceil(s_h) - 1;
    let pad_left = g.kernel_w.div_ceil(s_w) - 1;
    let (axes_h, axes_w) = phase_axes(g);
    // Every grid row i reads source rows up to end − 1 + pad_top; columns the same.
    let layout = PlaneLayout {
        planes: g.out_channels,
        rows: axes_h.iter().map(|a| a.end).max().unwrap_or(0) + pad_top,
        row_stride: axes_w.iter().map(|a| a.end).max().unwrap_or(0) + pad_left,
    };
    PlaneSpec {
        channels: g.out_channels,
        height: g.out_h,
        width: g.out_w,
        top: pad_top,
        left: pad_left,
        stride: [1, 1],
        phases: vec![(0, 0)],
        layout,
        isa,
    }
}

/// One image's input gradient on the channel engine, which writes every element of `out`: it
/// reads the output gradient `image` in place (masked by the ReLU into scratch first, where
/// one follows) or, where its tiles would read the padding, from `planes` filled from it.
pub(super) fn image_on_channels(
    planes: &PlaneSpec,
    channels: &ChannelGrad,
    image: &[f32],
    relu_output: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
) {
    let buffer_len = channels.buffer_len();
    if !channels.in_place() {
        let source_len = planes.layout.total_len() + FILL_OVERRUN;
        with_scratch(source_len + buffer_len, |scratch| {
            let (source, buffer) = scratch.split_at_mut(source_len);
            planes.fill_masked(image, relu_output, source);
            channels.run(source, buffer, out);
        });
        return;
    }
    match relu_output {
        None => with_scratch(buffer_len, |buffer| channels.run(image, buffer, out)),
        Some(relu_output) => with_scratch(image.len() + buffer_len, |scratch| {
            let (masked, buffer) = scratch.split_at_mut(image.len());
            for ((m, &g), &o) in masked.iter_mut().zip(image).zip(relu_output) {
                *m = relu_backward(g, o);
            }
            channels.run(masked, buffer, out);
        }),
    }
}

/// One phase: its correlation and where its grid goes.
struct Phase {
    rows: PhaseAxis,
    cols: PhaseAxis,
    correlation: Correlation,
    /// With stride 1 the one phase covers the input row by row: tiles go straight there.
    direct: Option<DirectMap>,
}

struct InputGradPlan {
    geometry: ConvGeometry,
    /// The output gradient of one image, padded.
    planes: PlaneSpec,
    phases: Vec<Phase>,
    /// One input channel per group, stride 1 (a first layer, depthwise): the row engine.
    rows: Option<RowCorrelation>,
    /// Stride 1 (or 2, by phases), one group, many input channels, a kernel wider than 1 × 1:
    /// the channel engine ([`channels::runs`]).
    channels: Option<ChannelGrad>,
    /// One input channel, stride 1, 3 × 3 or 5 × 5 (a first layer on grey images) that shrinks
    /// the image or keeps its size: the tap-sum engine instead of the row engine.
    first_layer_taps: Option<FirstLayerTaps>,
    /// First layers where the tap-sum engine does not apply (those that grow the image): the
    /// first-layer engine.
    first_layer: Option<FirstLayerGrad>,
}

/// Which engine computes a stride-1, ungrouped input gradient with many input channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    /// F(2, 3) (winograd.rs), the channel or the first-layer engine where they apply (the
    /// default).
    Auto,
    /// The channel or the first-layer engine where they apply, not F(2, 3) (to check that the
    /// channel engine gives the position engines' bits, and to measure F(2, 3) against it).
    Direct,
    /// The position and row engines everywhere (to check that they give the same bits).
    Positions,
}

impl InputGradPlan {
    fn new(isa: Isa, g: &ConvGeometry, weight: &[f32], engine: Engine) -> Self {
        let [s_h, s_w] = g.stride;
        let (axes_h, axes_w) = phase_axes(g);
        let planes = gradient_planes(isa, g);
        let (pad_top, pad_left, layout) = (planes.top, planes.left, planes.layout);
        let auto = engine != Engine::Positions;
        let first_layer_taps = (auto && first_layer_sums_taps(g))
            .then(|| FirstLayerTaps::new(isa, g, weight))
            .flatten();
        let first_layer = (auto && first_layer_taps.is_none())
            .then(|| FirstLayerGrad::new(isa, g, weight))
            .flatten();
        // Measured on small-cnn and micro-cnn (docs/performance.md): the channel engine wins
        // 10–48% on AVX2 and up to 25% on AVX-512 where the input has at least one vector of
        // channels. Both engines give the same bits for finite weights. Not for 1 × 1 kernels,
        // where it has no padding terms to skip and its transpose costs more than it saves:
        // the position engine took mobilenet-v2's 1 × 1 input gradients in 0.44–0.91 of its
        // time on both instruction sets (docs/performance.md, "The CIFAR-scale students per
        // layer"), with the same bits, NaN payloads aside (no term is left out, so the sums
        // are the same).
        // With AVX2, not where the reduction is long (`channels::chosen_for_input_grad`);
        // `input_grad_direct` (tests) runs the engine wherever it can.
        let chosen = match engine {
            Engine::Auto => channels::chosen_for_input_grad(isa, g),
            Engine::Direct => true,
            Engine::Positions => false,
        };
        let channels = (channels::runs(isa, g) && chosen).then(|| match g.stride {
            [1, 1] => ChannelGrad::new(isa, g, weight, layout),
            _ => ChannelGrad::phased(isa, g, weight, &planes, [&axes_h, &axes_w]),
        });
        let (in_per_group, out_per_group) = (g.in_per_group(), g.out_per_group());
        let taps_total = g.taps();
        let mut phases = Vec::new();
        // The channel and first-layer engines replace the phases: skip packing their weights.
        let replaced = channels.is_some() || first_layer.is_some() || first_layer_taps.is_some();
        let phase_axes = if replaced { &[][..] } else { &axes_h[..] };
        for rows in phase_axes.iter().filter(|a| a.len() > 0) {
            for cols in axes_w.iter().filter(|a| a.len() > 0) {
                // Terms (output channel, q, q_w) and their weights' kernel positions.
                let mut taps = Vec::new();
                let mut kernel_positions = Vec::new();
                for co in 0..out_per_group {
                    for q in rows.taps(s_h, g.kernel_h) {
                        for qw in cols.taps(s_w, g.kernel_w) {
                            taps.push(
                                co * layout.plane_len()
                                    + (rows.first + pad_top - q) * layout.row_stride
                                    + (cols.first + pad_left - qw),
                            );
                            let (kh, kw) = (s_h * q + rows.phase, s_w * qw + cols.phase);
                            kernel_positions.push((co, kh * g.kernel_w + kw));
                        }
                    }
                }
                // A phase without taps (a kernel smaller than the stride: the 1 × 1 shortcuts')
                // is the zero its output was filled with.
                if taps.is_empty() {
                    continue;
                }
                let correlation = Correlation::new(
                    isa,
                    in_per_group,
                    g.groups,
                    taps,
                    out_per_group * layout.plane_len(),
                    rows.len() * layout.row_stride,
                    |group, ci, k| {
                        let (co, position) = kernel_positions[k];
                        let co = group * out_per_group + co;
                        weight[(co * in_per_group + ci) * taps_total + position]
                    },
                    |_, _| 0.0,
                );
                let direct = (g.stride == [1, 1])
                    .then(|| correlation.direct_map(layout.row_stride, g.in_w, g.in_h))
                    .flatten();
                phases.push(Phase {
                    rows: *rows,
                    cols: *cols,
                    correlation,
                    direct,
                });
            }
        }
        let rows = (g.stride == [1, 1]
            && in_per_group == 1
            && channels.is_none()
            && first_layer.is_none()
            && first_layer_taps.is_none())
        .then(|| {
            // The one phase starts at rows.first = pad_top, cols.first = pad_left; term
            // (co, q, qw) reads row first + pad_top − q, i.e. kernel row kh' = pad_top − q
            // from the column's base (pad_top here is the gradient's, kernel_h − 1).
            let (first_row, first_col) = (g.pad_h.0, g.pad_w.0);
            let columns: Vec<usize> = (0..out_per_group)
                .flat_map(|co| {
                    (0..g.kernel_w).map(move |qw| {
                        co * layout.plane_len()
                            + first_row * layout.row_stride
                            + first_col
                            + pad_left
                            - qw
                    })
                })
                .collect();
            RowCorrelation::new(
                isa,
                g.groups,
                g.kernel_h,
                columns,
                out_per_group * layout.plane_len(),
                layout.row_stride,
                g.in_h,
                g.in_w,
                |group, column, kh| {
                    let (co, qw) = (column / g.kernel_w, column % g.kernel_w);
                    let co = group * out_per_group + co;
                    let q = pad_top - kh;
                    weight[co * taps_total + q * g.kernel_w + qw]
                },
                |_| 0.0,
            )
        })
        .flatten();
        InputGradPlan {
            geometry: *g,
            planes,
            phases,
            rows,
            channels,
            first_layer_taps,
            first_layer,
        }
    }

    /// `work` on image `b`'s part of the batch's output gradient and ReLU output; with `norm`,
    /// on the gradient of the convolution's own output, formed from those two by the batch
    /// norm's backward step into scratch while the image is in cache (no ReLU output then).
    fn with_image<'a, T>(
        &self,
        b: usize,
        output_grad: &'a [f32],
        relu_output: Option<&'a [f32]>,
        norm: Option<&ChannelNorm>,
        work: impl FnOnce(&[f32], Option<&[f32]>) -> T,
    ) -> T {
        let len = self.geometry.out_image();
        let image = |all: &'a [f32]| &all[b * len..][..len];
        let (image, relu_output) = (image(output_grad), relu_output.map(image));
        match norm {
            None => work(image, relu_output),
            Some(norm) => with_gradient_scratch(len, |conv_grad| {
                norm.gradient_image(self.planes.isa, image, relu_output, conv_grad);
                work(conv_grad, None)
            }),
        }
    }

    /// One image's input gradient into `out`, from its output gradient `image`.
    fn image(&self, image: &[f32], relu_output: Option<&[f32]>, out: &mut [f32]) {
        if let Some(first) = &self.first_layer {
            // It copies one output channel at a time into its own small plane.
            with_scratch(first.scratch_len(), |plane| {
                first.run(image, relu_output, plane, out)
            });
            return;
        }
        let extent = self
            .phases
            .iter()
            .map(|p| p.correlation.source_extent())
            .chain(self.rows.as_ref().map(|r| r.source_extent()))
            .max()
            .unwrap_or(0);
        // Planes without padding, as long and as wide as the gradient, and no mask, would be
        // a copy of it (unpadded kernels no larger than the stride: the 1 × 1 layers): the
        // engines read the gradient in place.
        let (g, planes) = (&self.geometry, &self.planes);
        let copy = (
            planes.top,
            planes.left,
            planes.layout.rows,
            planes.layout.row_stride,
        );
        let in_place =
            relu_output.is_none() && copy == (0, 0, g.out_h, g.out_w) && extent <= image.len();
        let source_len = if in_place {
            0
        } else {
            extent.max(planes.layout.total_len() + FILL_OVERRUN)
        };
        let grid_len = self
            .phases
            .iter()
            .filter(|p| p.direct.is_none())
            .map(|p| p.correlation.grid_size())
            .max()
            .unwrap_or(0);
        with_scratch(source_len + grid_len, |scratch| {
            let (source, grid) = scratch.split_at_mut(source_len);
            let source: &[f32] = if in_place {
                image
            } else {
                planes.fill_masked(image, relu_output, source);
                source
            };
            if let Some(rows) = &self.rows {
                rows.run(source, out);
                return;
            }
            for phase in &self.phases {
                match &phase.direct {
                    Some(map) => phase.correlation.run_direct(source, map, out),
                    None => {
                        phase.correlation.run(source, grid);
                        self.store(phase, grid, out);
                    }
                }
            }
        });
    }

    /// Writes a phase's grid into the input positions `s·i + phase − pad` it covers.
    fn store(&self, phase: &Phase, grid: &[f32], out: &mut [f32]) {
        let g = &self.geometry;
        let c = &phase.correlation;
        let row_stride = self.planes.layout.row_stride;
        let [s_h, s_w] = g.stride;
        let in_per_group = g.in_per_group();
        let col0 = s_w * phase.cols.first + phase.cols.phase - g.pad_w.0;
        for group in 0..g.groups {
            for r in 0..in_per_group {
                let grid_row = &grid[(group * c.padded_rows() + r) * c.grid_len..];
                let channel = group * in_per_group + r;
                let out_channel = &mut out[channel * g.in_h * g.in_w..][..g.in_h * g.in_w];
                for i in 0..phase.rows.len() {
                    let ih = s_h * (phase.rows.first + i) + phase.rows.phase - g.pad_h.0;
                    let values = &grid_row[i * row_stride..][..phase.cols.len()];
                    let out_row = &mut out_channel[ih * g.in_w..][..g.in_w];
                    if s_w == 1 {
                        out_row[col0..col0 + values.len()].copy_from_slice(values);
                    } else {
                        for (j, &v) in values.iter().enumerate() {
                            out_row[col0 + s_w * j] = v;
                        }
                    }
                }
            }
        }
    }
}

/// Whether the input gradient of a first layer (one input channel, stride 1, 3 × 3 or 5 × 5:
/// [`FirstLayerTaps::new`] checks that) runs on the tap-sum engine, which sums the terms in
/// another order than the first-layer and row engines.
///
/// A first layer whose output is smaller than the image (e.g. small-cnn's unpadded
/// conv1) takes the tap-sum engine: the older engine computes every input position from
/// planes padded back to the input's size, a third of its multiply-adds reading zeros;
/// the tap-sum engine spends none there and took 0.23–0.37 ms against 0.46–0.69 on it
/// (AVX-512, Zen 5). So does a layer that keeps the size, whose gather then runs on flat
/// vectors without masks: madry-cnn's 5 × 5 conv1 0.83–0.86 against 0.98–1.01 ms
/// (AVX-512), 0.99–1.00 against 1.36–1.37 (AVX2); micro-cnn's 3 × 3 conv1 0.10 against
/// 0.13 ms (AVX-512), 0.13–0.14 against 0.18–0.19 (AVX2), on an Intel Xeon
/// (docs/performance.md, "The tap sums' gather without per-load masks" and after).
#[doc(hidden)]
pub fn first_layer_sums_taps(g: &ConvGeometry) -> bool {
    let shrinks = g.out_h < g.in_h || g.out_w < g.in_w;
    let keeps_size = g.out_h == g.in_h && g.out_w == g.in_w;
    shrinks || keeps_size
}

/// The gradient of `conv2d(x, weight)` with respect to `x`, given the output gradient; with
/// `relu_output`, of `relu(conv2d(x, weight))` given that output (the gradient is zeroed where
/// it is ≤ 0, as it is read).
pub fn input_grad(
    isa: Isa,
    g: &ConvGeometry,
    weight: &[f32],
    output_grad: &[f32],
    relu_output: Option<&[f32]>,
) -> Vec<f32> {
    run(isa, g, weight, output_grad, relu_output, None, Engine::Auto)
}

/// The gradient with respect to `x` of `norm(conv2d(x, weight))` (see
/// [`super::forward_normalised`]), given the gradient of that output and, where `norm` ends in
/// the ReLU, the output itself: the batch norm's backward step applied to each image as it is
/// read, then [`input_grad`]. The same bits as the two steps.
///
/// # Panics
/// If `norm` does not have one statistic per output channel, or `output` is missing (given)
/// where `norm` has (has not) the ReLU.
pub fn input_grad_normalised(
    isa: Isa,
    g: &ConvGeometry,
    weight: &[f32],
    output_grad: &[f32],
    output: Option<&[f32]>,
    norm: &ChannelNorm,
) -> Vec<f32> {
    assert_eq!(norm.channels(), g.out_channels, "one statistic per channel");
    assert_eq!(
        output.is_some(),
        norm.relu(),
        "the ReLU's output, where it follows"
    );
    run(
        isa,
        g,
        weight,
        output_grad,
        output,
        Some(norm),
        Engine::Auto,
    )
}

/// [`input_grad`] on the engines F(2, 3) replaces (the channel, first-layer, position and row
/// engines), even where it would run: for tests that the channel engine gives the position
/// engines' bits, and for measurements.
#[doc(hidden)]
pub fn input_grad_direct(
    isa: Isa,
    g: &ConvGeometry,
    weight: &[f32],
    output_grad: &[f32],
    relu_output: Option<&[f32]>,
) -> Vec<f32> {
    run(
        isa,
        g,
        weight,
        output_grad,
        relu_output,
        None,
        Engine::Direct,
    )
}

/// [`input_grad`] on the position and row engines alone, even where the channel, the
/// first-layer engine or F(2, 3) would run: for tests that they give the same bits, and for
/// measurements.
#[doc(hidden)]
pub fn input_grad_on_positions(
    isa: Isa,
    g: &ConvGeometry,
    weight: &[f32],
    output_grad: &[f32],
    relu_output: Option<&[f32]>,
) -> Vec<f32> {
    run(
        isa,
        g,
        weight,
        output_grad,
        relu_output,
        None,
        Engine::Positions,
    )
}

fn run(
    isa: Isa,
    g: &ConvGeometry,
    weight: &[f32],
    output_grad: &[f32],
    relu_output: Option<&[f32]>,
    norm: Option<&ChannelNorm>,
    engine: Engine,
) -> Vec<f32> {
    assert_eq!(weight.len(), g.weight_len(), "weight length");
    assert!(
        relu_output.is_none_or(|o| o.len() == output_grad.len()),
        "ReLU output length"
    );
    assert_eq!(
        output_grad.len(),
        g.batch * g.out_image(),
        "gradient length"
    );
    if engine == Engine::Auto
        && let Some(winograd) = Winograd::for_input_grad(isa, g, weight)
    {
        return winograd.input_grad(g.batch, output_grad, relu_output, norm);
    }
    let plan = InputGradPlan::new(isa, g, weight, engine);
    match (&plan.first_layer_taps, &plan.channels) {
        // No zeroing first. SAFETY: `FirstLayerTaps::run` writes every input value.
        (Some(taps), _) => unsafe {
            par_images_written(g.batch, g.in_image(), |b, out| {
                plan.with_image(b, output_grad, relu_output, norm, |image, relu_output| {
                    with_scratch(taps.scratch_len(), |planes| {
                        taps.run(image, relu_output, planes, out)
                    })
                })
            })
        },
        // SAFETY: `ChannelGrad::run` writes every input value.
        (None, Some(channels)) => unsafe {
            par_images_written(g.batch, g.in_image(), |b, out| {
                plan.with_image(b, output_grad, relu_output, norm, |image, relu_output| {
                    image_on_channels(&plan.planes, channels, image, relu_output, out)
                })
            })
        },
        (None, None) => par_images(g.batch, g.in_image(), |b, out| {
            plan.with_image(b, output_grad, relu_output, norm, |image, relu_output| {
                plan.image(image, relu_output, out)
            })
        }),
    }
}
