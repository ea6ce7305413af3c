//! Per-convolution costs (`rslad-tui bench --layers`, `cargo bench --bench conv_ops`): the
//! forward pass, the input gradient (an attack step's backward) and the weight gradient (a
//! training step's) of each MNIST-scale zoo convolution, for our kernels, burn-flex's own
//! convolution and, with `--compare`, PyTorch's (`bench/conv_ops_torch.py`), each as the bare
//! operation (no autodiff graph, no loss), plus the fraction of the matrix-multiply rate.

use super::workload::{Measurement, timed};
use crate::conv::{ConvGeometry, Isa, kernels};
use anyhow::Result;
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::tensor::TensorData;
use burn::tensor::ops::ConvOptions;
use rand::Rng;
use std::fmt::Write as _;

/// One convolution layer of the zoo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    /// e.g. "small-cnn conv2"
    pub name: &'static str,
    pub in_channels: usize,
    pub out_channels: usize,
    /// Input height and width.
    pub size: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub bias: bool,
}

impl Layer {
    const fn new(name: &'static str, channels: [usize; 2], size: usize, kernel: usize) -> Layer {
        Layer {
            name,
            in_channels: channels[0],
            out_channels: channels[1],
            size,
            kernel,
            stride: 1,
            padding: 0,
            bias: true,
        }
    }

    const fn padded(mut self, padding: usize, bias: bool) -> Layer {
        self.padding = padding;
        self.bias = bias;
        self
    }

    pub fn options(&self) -> ConvOptions<2> {
        ConvOptions::new([self.stride; 2], [self.padding; 2], [1, 1], 1)
    }

    pub fn geometry(&self, batch: usize) -> ConvGeometry {
        crate::conv::geometry(
            [batch, self.in_channels, self.size, self.size],
            [
                self.out_channels,
                self.in_channels,
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
        vec![g.out_channels, g.in_channels, g.kernel_h, g.kernel_w],
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

/// Times every layer of [`LAYERS`] (or those whose name contains `only`): ours, burn-flex's
/// and, given a PyTorch reference, PyTorch's.
pub fn measure(
    batch: usize,
    seconds: f64,
    only: Option<&str>,
    torch: Option<&super::torch::TorchReference>,
) -> Result<Vec<LayerRow>> {
    let mut rows = Vec::new();
    for layer in LAYERS
        .iter()
        .filter(|l| only.is_none_or(|o| l.name.contains(o)))
    {
        eprintln!("timing {} ...", layer.name);
        rows.push(LayerRow {
            layer: *layer,
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
