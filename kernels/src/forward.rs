//! The forward convolution: per image, its source planes (the input itself when the
//! convolution is unpadded and of stride 1), one correlation per group, and the valid part of
//! the extended grid copied out; 3 × 3 stride-1 layers of 16–640 channels, unpadded or padded
//! by 1, with even output sizes and enough work, by Winograd's F(2, 3) instead (winograd.rs),
//! and stride-1 and stride-2 layers with
//! many channels on small images on the input gradient's channel engine (channel_forward.rs).

use super::channel_forward::{self, ChannelForward};
use super::correlate::{Correlation, DirectMap};
use super::first_layer::FirstLayer;
use super::geometry::ConvGeometry;
use super::norm::{ChannelNorm, Epilogue};
use super::output::{par_images, par_images_written};
use super::planes::{FILL_OVERRUN, PlaneLayout, PlaneSpec};
use super::rows::RowCorrelation;
use super::scratch::with_scratch;
use super::simd::Isa;
use super::winograd::Winograd;

/// The plan of a forward pass, shared by every image.
struct ForwardPlan {
    geometry: ConvGeometry,
    planes: PlaneSpec,
    correlation: Correlation,
    /// Writing tiles straight into the output, where rows are long enough.
    direct: Option<DirectMap>,
    /// One output channel per group (depthwise), stride 1: the row engine instead.
    rows: Option<RowCorrelation>,
    /// One input channel, stride 1, 3 × 3 (a first layer on grey images): the first-layer
    /// engine instead, with the epilogue (ReLU, batch norm) fused into its stores.
    first_layer: Option<FirstLayer>,
}

/// Which engine computes a forward pass that F(2, 3), the first-layer or the channel engine
/// can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    /// F(2, 3), the first-layer or the channel engine where they apply (the default).
    Auto,
    /// The main engine everywhere (to check that the first-layer and channel engines give its
    /// bits, and to measure the others against it).
    Grid,
    /// The channel engine wherever it applies, the main engine elsewhere (to check that the
    /// first gives the second's bits, and to measure them).
    Channels,
}

impl ForwardPlan {
    fn new(
        isa: Isa,
        g: &ConvGeometry,
        weight: &[f32],
        bias: Option<&[f32]>,
        engine: Engine,
    ) -> Self {
        let planes = source_planes(isa, g);
        let layout = planes.layout;
        let [s_h, s_w] = g.stride;
        let in_per_group = g.in_per_group();
        let mut taps = Vec::with_capacity(in_per_group * g.taps());
        for c in 0..in_per_group {
            for kh in 0..g.kernel_h {
                for kw in 0..g.kernel_w {
                    let plane = c * planes.phases.len() + planes.phase_index(kh % s_h, kw % s_w);
                    taps.push(
                        plane * layout.plane_len() + (kh / s_h) * layout.row_stride + kw / s_w,
                    );
                }
            }
        }
        let out_per_group = g.out_per_group();
        let k_len = taps.len();
        let correlation = Correlation::new(
            isa,
            out_per_group,
            g.groups,
            taps,
            in_per_group * planes.phases.len() * layout.plane_len(),
            g.out_h * layout.row_stride,
            // Weight [out][in/groups][kh][kw]: term k of output row r is in the same order.
            |group, r, k| weight[(group * out_per_group + r) * k_len + k],
            |group, r| bias.map_or(0.0, |b| b[group * out_per_group + r]),
        );
        // A single output channel stays on the row engine (below), which sums in another order:
        // the first-layer engine must give the bits of the engine it replaces.
        let first_layer =
            (g.has_one_input_channel_at_stride_1() && g.out_channels > 1 && engine == Engine::Auto)
                .then(|| {
                    FirstLayer::new(
                        isa,
                        g.out_channels,
                        [g.kernel_h, g.kernel_w],
                        layout.row_stride,
                        g.out_h,
                        g.out_w,
                        |co, kh, kw| weight[(co * g.kernel_h + kh) * g.kernel_w + kw],
                        |co| bias.map_or(0.0, |b| b[co]),
                    )
                })
                .flatten();
        // Tiles stored straight into the output rather than through the extended grid and a
        // copy wherever the map allows (rows of at least half a vector): faster on short and
        // medium reductions, level on long ones, with both instruction sets since AVX2 packs
        // a vector's valid lanes (docs/performance.md, "Straight stores for every forward
        // pass"). Not needed where the first-layer engine runs.
        let direct = first_layer
            .is_none()
            .then(|| correlation.direct_map(layout.row_stride, g.out_w, g.out_h))
            .flatten();
        let rows = (out_per_group == 1 && g.stride == [1, 1])
            .then(|| {
                let columns: Vec<usize> = (0..in_per_group)
                    .flat_map(|c| (0..g.kernel_w).map(move |kw| c * layout.plane_len() + kw))
                    .collect();
                RowCorrelation::new(
                    isa,
                    g.groups,
                    g.kernel_h,
                    columns,
                    in_per_group * layout.plane_len(),
                    layout.row_stride,
                    g.out_h,
                    g.out_w,
                    |group, column, kh| {
                        let (c, kw) = (column / g.kernel_w, column % g.kernel_w);
                        weight[((group * in_per_group + c) * g.kernel_h + kh) * g.kernel_w + kw]
                    },
                    |group| bias.map_or(0.0, |b| b[group]),
                )
            })
            .flatten();
        ForwardPlan {
            geometry: *g,
            planes,
            correlation,
            direct,
            rows,
            first_layer,
        }
    }

    /// Floats past an image's start that the engine reads.
    fn source_extent(&self) -> usize {
        match (&self.first_layer, &self.rows) {
            (Some(first), _) => first.source_extent(),
            (None, Some(rows)) => rows.source_extent(),
            (None, None) => self.correlation.source_extent(),
        }
    }

    /// Floats a source copy of one image needs (the planes and the engine's overrun).
    fn source_len(&self) -> usize {
        (self.planes.layout.total_len() + FILL_OVERRUN).max(self.source_extent())
    }

    /// Runs `work` on image `b`'s source (its planes, or the input itself where nothing needs
    /// padding) and `extra` floats of scratch.
    fn with_source<T>(
        &self,
        b: usize,
        x: &[f32],
        extra: usize,
        work: impl FnOnce(&[f32], &mut [f32]) -> T,
    ) -> T {
        let g = &self.geometry;
        let image = &x[b * g.in_image()..][..g.in_image()];
        // Read the input in place when nothing needs padding and the engine's overrun past
        // this image stays inside the batch (true for all but the last image or two).
        let in_place =
            g.reads_input_in_place() && b * g.in_image() + self.source_extent() <= x.len();
        let source_len = if in_place { 0 } else { self.source_len() };
        with_scratch(source_len + extra, |scratch| {
            let (source, rest) = scratch.split_at_mut(source_len);
            let source: &[f32] = if in_place {
                &x[b * g.in_image()..]
            } else {
                self.planes.fill(image, source);
                source
            };
            work(source, rest)
        })
    }

    /// Image `b` into `out` on the main or the row engine, then through `epilogue` while the
    /// image is still in cache.
    fn image(&self, b: usize, x: &[f32], out: &mut [f32], epilogue: Epilogue) {
        let grid_len = match (&self.direct, &self.rows) {
            (None, None) => self.correlation.grid_size(),
            _ => 0,
        };
        self.with_source(b, x, grid_len, |source, grid| {
            match (&self.rows, &self.direct) {
                (Some(rows), _) => rows.run(source, out),
                (None, Some(map)) => self.correlation.run_direct(source, map, out),
                (None, None) => {
                    self.correlation.run(source, grid);
                    self.store(grid, out);
                }
            }
            epilogue.apply_image(self.planes.isa, out);
        });
    }

    /// Copies the valid columns of every grid row into the image's NCHW output.
    fn store(&self, grid: &[f32], out: &mut [f32]) {
        let g = &self.geometry;
        let c = &self.correlation;
        let row_stride = self.planes.layout.row_stride;
        let out_per_group = g.out_per_group();
        for group in 0..g.groups {
            for r in 0..out_per_group {
                let grid_row = &grid[(group * c.padded_rows() + r) * c.grid_len..];
                let channel = group * out_per_group + r;
                let out_channel = &mut out[channel * g.out_h * g.out_w..][..g.out_h * g.out_w];
                for (oh, out_row) in out_channel.chunks_exact_mut(g.out_w).enumerate() {
                    out_row.copy_from_slice(&grid_row[oh * row_stride..][..g.out_w]);
                }
            }
        }
    }
}

/// The planes the forward pass and the weight gradient read: the input padded and split
/// into the phases its taps use, with rows of `out_w + (kw − 1) / s_w` (the extended width).
pub(super) fn source_planes(isa: Isa, g: &ConvGeometry) -> PlaneSpec {
    let [s_h, s_w] = g.stride;
    let phases: Vec<(usize, usize)> = (0..s_h.min(g.kernel_h))
        .flat_map(|a| (0..s_w.min(g.kernel_w)).map(move |b| (a, b)))
        .collect();
    let layout = PlaneLayout {
        planes: g.in_channels * phases.len(),
        rows: g.out_h + (g.kernel_h - 1) / s_h,
        row_stride: g.out_w + (g.kernel_w - 1) / s_w,
    };
    PlaneSpec {
        channels: g.in_channels,
        height: g.in_h,
        width: g.in_w,
        top: g.pad_h.0,
        left: g.pad_w.0,
        stride: g.stride,
        phases,
        layout,
        isa,
    }
}

/// `conv2d(x, weight, bias)` for NCHW `x` and OIHW `weight`, returned as NCHW; with `relu`,
/// `relu(conv2d(..))` (applied to each image while it is still in cache).
pub fn forward(
    isa: Isa,
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    let epilogue = relu_epilogue(relu);
    run(isa, g, x, weight, bias, epilogue, Engine::Auto)
}

/// `norm(conv2d(x, weight, bias))`: [`forward`] with an inference-mode batch norm (and the
/// ReLU after it, if `norm` says so) applied to each image as it is written, the same bits as
/// the two passes.
///
/// # Panics
/// If `norm` does not have one statistic per output channel.
pub fn forward_normalised(
    isa: Isa,
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    norm: &ChannelNorm,
) -> Vec<f32> {
    assert_eq!(norm.channels(), g.out_channels, "one statistic per channel");
    run(isa, g, x, weight, bias, Epilogue::Norm(norm), Engine::Auto)
}

/// [`forward`] on the channel engine wherever it applies (stride 1 or 2, one group, a kernel
/// wider than 1 × 1, a vector of output channels), on the main engine elsewhere: for tests
/// that the two give the same bits, and for measurements.
#[doc(hidden)]
pub fn forward_on_channels(
    isa: Isa,
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    let epilogue = relu_epilogue(relu);
    run(isa, g, x, weight, bias, epilogue, Engine::Channels)
}

/// [`forward`] on the main engine alone, even where the first-layer engine, the channel
/// engine or F(2, 3) would run: for tests that the first two give the same bits, and for
/// measurements.
#[doc(hidden)]
pub fn forward_on_grid(
    isa: Isa,
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    let epilogue = relu_epilogue(relu);
    run(isa, g, x, weight, bias, epilogue, Engine::Grid)
}

/// The epilogue of a forward pass with or without a fused ReLU.
fn relu_epilogue(relu: bool) -> Epilogue<'static> {
    if relu {
        Epilogue::Relu
    } else {
        Epilogue::Store
    }
}

fn run(
    isa: Isa,
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    engine: Engine,
) -> Vec<f32> {
    assert_eq!(x.len(), g.batch * g.in_image(), "input length");
    assert_eq!(weight.len(), g.weight_len(), "weight length");
    if engine == Engine::Auto
        && let Some(winograd) = Winograd::for_forward(isa, g, weight, bias)
    {
        return winograd.forward(g.batch, x, epilogue);
    }
    let on_channels = match engine {
        Engine::Auto => channel_forward::chosen(isa, g),
        Engine::Grid => false,
        Engine::Channels => true,
    };
    if on_channels && let Some(channels) = ChannelForward::new(isa, g, weight, bias) {
        return channels.forward(x, epilogue);
    }
    let plan = ForwardPlan::new(isa, g, weight, bias, engine);
    match &plan.first_layer {
        // No zeroing first (measured faster: docs/performance.md, "conv1 on engines of its
        // own"). SAFETY: `FirstLayer::run` writes every output value (with the epilogue in
        // its stores), a channel's plane at a time.
        Some(first) => unsafe {
            par_images_written(g.batch, g.out_image(), |b, out| {
                plan.with_source(b, x, 0, |source, _| first.run(source, out, epilogue))
            })
        },
        None => par_images(g.batch, g.out_image(), |b, out| {
            plan.image(b, x, out, epilogue)
        }),
    }
}
