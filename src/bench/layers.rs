//! Per-convolution costs (`rslad-tui bench --layers`, `cargo bench --bench conv_ops`): the
//! forward pass, the input gradient (an attack step's backward) and the weight gradient (a
//! training step's) of each MNIST-scale zoo convolution, or of each distinct convolution of a
//! CIFAR-scale student, for our kernels, burn-flex's own convolution and, with `--compare`,
//! PyTorch's (`bench/conv_ops_torch.py`), each as the bare operation (no autodiff graph, no
//! loss), plus the fraction of the matrix-multiply rate.

use super::workload::{Measurement, timed};
use crate::conv::trace::{self, TracedConv};
use crate::conv::{ConvGeometry, Isa, kernels};
use crate::zoo::{Arch, Model, ModelSpec};
use anyhow::{Result, bail};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::ops::ConvOptions;
use rand::Rng;
use std::borrow::Cow;
use std::fmt::Write as _;

/// One convolution layer of the zoo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// e.g. "small-cnn conv2", or for a traced layer its shape and how often the model runs it
    pub name: Cow<'static, str>,
    pub in_channels: usize,
    pub out_channels: usize,
    /// Input height and width.
    pub size: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub bias: bool,
    /// The convolution's groups: 1, or the channel count of a depthwise one (the zoo's only
    /// grouped convolutions).
    pub groups: usize,
}

impl Layer {
    const fn new(name: &'static str, channels: [usize; 2], size: usize, kernel: usize) -> Layer {
        Layer {
            name: Cow::Borrowed(name),
            in_channels: channels[0],
            out_channels: channels[1],
            size,
            kernel,
            stride: 1,
            padding: 0,
            bias: true,
            groups: 1,
        }
    }

    /// The layer a traced convolution ran, named after `model`, its shape and `uses` (how many
    /// of the model's convolutions have this shape); `None` unless square and evenly padded,
    /// as every zoo convolution is.
    fn traced(model: &str, conv: &TracedConv, uses: usize) -> Option<Layer> {
        let g = &conv.geometry;
        let square = g.in_h == g.in_w
            && g.kernel_h == g.kernel_w
            && g.stride[0] == g.stride[1]
            && g.pad_h.0 == g.pad_h.1
            && g.pad_h == g.pad_w;
        if !square {
            return None;
        }
        let grouping = match g.groups {
            1 => String::new(),
            _ if g.is_depthwise() => " dw".to_string(),
            groups => format!(" g{groups}"),
        };
        let stride = match g.stride[0] {
            1 => String::new(),
            s => format!(" /{s}"),
        };
        Some(Layer {
            name: Cow::Owned(format!(
                "{model} {k}×{k}{grouping} {}→{}{stride} at {}² ×{uses}",
                g.in_channels,
                g.out_channels,
                g.in_h,
                k = g.kernel_h,
            )),
            in_channels: g.in_channels,
            out_channels: g.out_channels,
            size: g.in_h,
            kernel: g.kernel_h,
            stride: g.stride[0],
            padding: g.pad_h.0,
            bias: conv.bias,
            groups: g.groups,
        })
    }

    const fn padded(mut self, padding: usize, bias: bool) -> Layer {
        self.padding = padding;
        self.bias = bias;
        self
    }

    pub fn options(&self) -> ConvOptions<2> {
        ConvOptions::new([self.stride; 2], [self.padding; 2], [1, 1], self.groups)
    }

    pub fn geometry(&self, batch: usize) -> ConvGeometry {
        crate::conv::geometry(
            [batch, self.in_channels, self.size, self.size],
            [
                self.out_channels,
                self.in_channels / self.groups,
                self.kernel,
                self.kernel,
            ],
            &self.options(),
        )
        .expect("zoo layers are valid convolutions")
    }

    /// FLOPs of one pass (forward, input gradient and weight gradient cost the same).
    pub fn flops(&self, batch: usize) -> f64 {
        2.0 * self.geometry(batch).macs() as f64
    }
}

/// The convolutions of the MNIST-scale models: small-cnn (the teacher's architecture),
/// micro-cnn and Madry's CNN, at MNIST's 28×28.
pub const LAYERS: [Layer; 8] = [
    Layer::new("small-cnn conv1", [1, 32], 28, 3),
    Layer::new("small-cnn conv2", [32, 32], 26, 3),
    Layer::new("small-cnn conv3", [32, 64], 12, 3),
    Layer::new("small-cnn conv4", [64, 64], 10, 3),
    Layer::new("micro-cnn conv1", [1, 8], 28, 3).padded(1, false),
    Layer::new("micro-cnn conv2", [8, 16], 14, 3).padded(1, false),
    Layer::new("madry-cnn conv1", [1, 32], 28, 5).padded(2, true),
    Layer::new("madry-cnn conv2", [32, 64], 14, 5).padded(2, true),
];

/// The three passes of one layer, timed.
#[derive(Clone, Copy, Debug)]
pub struct LayerTimes {
    pub forward: Measurement,
    pub input_grad: Measurement,
    pub weight_grad: Measurement,
}

impl LayerTimes {
    pub fn passes(&self) -> [(&'static str, Measurement); 3] {
        [
            ("forward", self.forward),
            ("input grad", self.input_grad),
            ("weight grad", self.weight_grad),
        ]
    }
}

/// Random operands of a layer at `batch`: x, weight, bias, output gradient.
struct Operands {
    x: Vec<f32>,
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    output_grad: Vec<f32>,
}

fn operands(layer: &Layer, batch: usize) -> Operands {
    let mut rng = crate::rng::seeded(0, 2);
    let g = layer.geometry(batch);
    let mut values = |n: usize| {
        (0..n)
            .map(|_| rng.gen_range(-1.0f32..1.0))
            .collect::<Vec<_>>()
    };
    Operands {
        x: values(g.batch * g.in_image()),
        weight: values(g.weight_len()),
        bias: layer.bias.then(|| values(layer.out_channels)),
        output_grad: values(g.batch * g.out_image()),
    }
}

/// Our kernels, called as the autodiff step calls them.
pub fn time_ours(layer: &Layer, batch: usize, seconds: f64) -> LayerTimes {
    let g = layer.geometry(batch);
    let d = operands(layer, batch);
    let isa = Isa::detected();
    LayerTimes {
        forward: timed(seconds, 5, &mut || {
            kernels::forward(isa, &g, &d.x, &d.weight, d.bias.as_deref(), false);
        }),
        input_grad: timed(seconds, 5, &mut || {
            kernels::input_grad(isa, &g, &d.weight, &d.output_grad, None);
        }),
        weight_grad: timed(seconds, 5, &mut || {
            kernels::weight_grad(isa, &g, &d.x, &d.output_grad, None);
            if layer.bias {
                kernels::bias_grad(&g, &d.output_grad, None);
            }
        }),
    }
}

/// burn-flex's own convolution (`ModuleOps` on the flex backend), as burn's autodiff calls it.
pub fn time_burn(layer: &Layer, batch: usize, seconds: f64) -> LayerTimes {
    let g = layer.geometry(batch);
    let d = operands(layer, batch);
    let flex = |values: &[f32], dims: Vec<usize>| {
        FlexTensor::from_data(TensorData::new(values.to_vec(), dims))
    };
    let x = flex(&d.x, vec![batch, g.in_channels, g.in_h, g.in_w]);
    let weight = flex(
        &d.weight,
        vec![g.out_channels, g.in_per_group(), g.kernel_h, g.kernel_w],
    );
    let bias = d.bias.as_ref().map(|b| flex(b, vec![g.out_channels]));
    let output_grad = flex(&d.output_grad, g.out_dims().to_vec());
    let options = layer.options();
    LayerTimes {
        forward: timed(seconds, 5, &mut || {
            Flex::conv2d(x.clone(), weight.clone(), bias.clone(), options.clone());
        }),
        input_grad: timed(seconds, 5, &mut || {
            Flex::conv2d_x_backward(
                x.clone(),
                weight.clone(),
                output_grad.clone(),
                options.clone(),
            );
        }),
        weight_grad: timed(seconds, 5, &mut || {
            Flex::conv2d_weight_backward(
                x.clone(),
                weight.clone(),
                output_grad.clone(),
                options.clone(),
            );
            if let Some(bias) = &bias {
                Flex::conv2d_bias_backward(x.clone(), bias.clone(), output_grad.clone());
            }
        }),
    }
}

/// One row of the per-layer table.
pub struct LayerRow {
    pub layer: Layer,
    pub ours: LayerTimes,
    pub burn: Option<LayerTimes>,
    pub torch: Option<LayerTimes>,
}

/// The per-layer table: per pass our time, GFLOP/s and fraction of the matmul rate, then
/// burn-flex's and PyTorch's times and our speed against each (> 1: we are faster).
pub fn table(rows: &[LayerRow], batch: usize, matmul_gflops: f64) -> String {
    let mut out = String::from(
        "| layer | pass | ours ms | GFLOP/s | of matmul | burn-flex ms | PyTorch ms | × burn-flex | × PyTorch |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let ms = |m: Option<Measurement>| m.map_or("—".into(), |m| format!("{:.2}", m.seconds * 1e3));
    let ratio = |theirs: Option<Measurement>, ours: Measurement| {
        theirs.map_or("—".into(), |t| format!("{:.2}", t.seconds / ours.seconds))
    };
    for row in rows {
        let flops = row.layer.flops(batch);
        for (i, (pass, ours)) in row.ours.passes().into_iter().enumerate() {
            let burn = row.burn.map(|t| t.passes()[i].1);
            let torch = row.torch.map(|t| t.passes()[i].1);
            let gflops = flops / ours.seconds / 1e9;
            let _ = writeln!(
                out,
                "| {} | {pass} | {:.2} | {gflops:.1} | {:.0}% | {} | {} | {} | {} |",
                row.layer.name,
                ours.seconds * 1e3,
                100.0 * gflops / matmul_gflops,
                ms(burn),
                ms(torch),
                ratio(burn, ours),
                ratio(torch, ours),
            );
        }
    }
    out
}

/// The layers `bench --layers` times: every layer of [`LAYERS`], or for `model` its layers
/// (a CIFAR-scale student's traced by [`model_layers`], the teacher's those of `small-cnn`).
pub fn selected(model: Option<&str>) -> Result<Vec<Layer>> {
    match model {
        Some(name @ ("resnet18" | "mobilenet-v2")) => model_layers(Arch::from_name(name)?),
        _ => {
            let prefix = match model {
                Some("teacher") => Some("small-cnn"),
                other => other,
            };
            Ok(LAYERS
                .iter()
                .filter(|l| prefix.is_none_or(|p| l.name.starts_with(p)))
                .cloned()
                .collect())
        }
    }
}

/// Each distinct convolution of `arch` at its native input, in the order a forward pass first
/// runs it, found by running that pass on one image under [`trace::record`].
pub fn model_layers(arch: Arch) -> Result<Vec<Layer>> {
    let device = Device::flex();
    let spec = ModelSpec::native(arch, 10);
    let model = Model::build(spec, 0, &device)?;
    let (channels, size) = arch.native_input();
    let images = Tensor::<4>::zeros([1, channels, size, size], &device);
    let (_, traced) = trace::record(|| model.valid_forward(images));
    let mut distinct: Vec<(TracedConv, usize)> = Vec::new();
    for conv in traced {
        match distinct.iter_mut().find(|(seen, _)| *seen == conv) {
            Some((_, uses)) => *uses += 1,
            None => distinct.push((conv, 1)),
        }
    }
    let layers: Vec<Layer> = distinct
        .iter()
        .filter_map(|(conv, uses)| Layer::traced(arch.name(), conv, *uses))
        .collect();
    if layers.len() < distinct.len() || layers.is_empty() {
        bail!("{arch}: a convolution the layer table cannot describe, or none traced");
    }
    Ok(layers)
}

/// Times each of `layers`: ours, burn-flex's and, given a PyTorch reference, PyTorch's.
pub fn measure(
    layers: &[Layer],
    batch: usize,
    seconds: f64,
    torch: Option<&super::torch::TorchReference>,
) -> Result<Vec<LayerRow>> {
    let mut rows = Vec::new();
    for layer in layers {
        eprintln!("timing {} ...", layer.name);
        rows.push(LayerRow {
            layer: layer.clone(),
            ours: time_ours(layer, batch, seconds),
            burn: Some(time_burn(layer, batch, seconds)),
            torch: match torch {
                Some(torch) => Some(torch.measure_layer(layer, batch, seconds)?),
                None => None,
            },
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(layers: &[Layer]) -> usize {
        layers
            .iter()
            .map(|l| l.name.rsplit('×').next().unwrap().parse::<usize>().unwrap())
            .sum()
    }

    #[test]
    fn a_traced_resnet18_lists_each_of_its_convolutions_once_by_shape() {
        let layers = model_layers(Arch::ResNet18).unwrap();
        // The stem, 16 convolutions in 8 basic blocks, 3 projection shortcuts.
        assert_eq!(uses(&layers), 20);
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_ref()).collect();
        assert_eq!(
            names[..4],
            [
                "resnet18 3×3 3→64 at 32² ×1",
                "resnet18 3×3 64→64 at 32² ×4",
                "resnet18 3×3 64→128 /2 at 32² ×1",
                "resnet18 3×3 128→128 at 16² ×3",
            ]
        );
        let shortcut = layers.iter().find(|l| l.kernel == 1).unwrap();
        assert_eq!((shortcut.stride, shortcut.padding), (2, 0));
        assert!(layers.iter().all(|l| !l.bias && l.groups == 1));
    }

    #[test]
    fn a_traced_mobilenet_v2_includes_its_depthwise_layers() {
        let layers = model_layers(Arch::MobileNetV2).unwrap();
        // The stem, 3 in each of 17 blocks, 4 projection shortcuts, the last 1 × 1.
        assert_eq!(uses(&layers), 57);
        let depthwise: Vec<&Layer> = layers.iter().filter(|l| l.groups > 1).collect();
        assert!(!depthwise.is_empty());
        for layer in depthwise {
            assert_eq!(layer.groups, layer.in_channels);
            assert_eq!(layer.in_channels, layer.out_channels);
            assert!(layer.name.contains(" dw "), "{}", layer.name);
        }
    }

    #[test]
    fn the_teacher_selects_small_cnns_layers() {
        let teacher = selected(Some("teacher")).unwrap();
        assert_eq!(teacher, selected(Some("small-cnn")).unwrap());
        assert_eq!(teacher.len(), 4);
        assert_eq!(selected(None).unwrap().len(), LAYERS.len());
    }
}
