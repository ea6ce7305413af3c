//! `rslad-tui bench`: images per second of the workloads that decide how interactive the
//! workbench feels, their achieved GFLOP/s against the machine's matrix-multiply rate, and,
//! with `--compare`, the same workloads in PyTorch side by side.
//!
//! Tables print as Markdown so they paste into `docs/performance.md` unchanged.

pub mod flops;
pub mod layers;
mod memory;
pub mod timing;
pub mod torch;
pub mod workload;

use crate::zoo::Arch;
use anyhow::Result;
use clap::Args;
use std::fmt::Write as _;
use workload::{Measurement, ModelChoice, Workload};

pub use memory::memory_probe;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Images per batch.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Seconds to repeat each workload for, after its first call (and on a GPU after warm-up
    /// calls until the time per call settles: the first call compiles kernels and autotunes
    /// each new shape, and is reported in a column of its own); the median run is reported.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Also time the same workloads in PyTorch (bench/reference_torch.py) and print the ratio.
    #[arg(long)]
    pub compare: bool,
    /// The Python that has torch, for --compare [default: $RSLAD_TORCH_PYTHON, else python3].
    #[arg(long)]
    pub python: Option<String>,
    /// Images for the AutoAttack workload (0: skip it; the whole standard AutoAttack on the
    /// shipped teacher takes about 3 s per image on 2 cores).
    #[arg(long, default_value_t = 20)]
    pub autoattack_images: usize,
    /// Only this workload: forward, pgd-step, rslad-step or autoattack (for profiling).
    #[arg(long, value_parser = ["forward", "pgd-step", "rslad-step", "autoattack"])]
    pub only: Option<String>,
    /// Only this model: micro-cnn, small-cnn or teacher (MNIST scale, in the default table),
    /// or a CIFAR-scale student timed only when named: resnet18, mobilenet-v2 (3×32×32
    /// random images; its RSLAD step distils from a WideResNet-34-10, as in the paper).
    #[arg(long, value_parser = ["micro-cnn", "small-cnn", "teacher", "resnet18", "mobilenet-v2"])]
    pub model: Option<String>,
    /// Print how the RSLAD step's cost grows with batch size, attack steps and student width
    /// instead of the main table.
    #[arg(long)]
    pub scaling: bool,
    /// Instead of the workloads: each MNIST-scale convolution layer's forward pass, input
    /// gradient and weight gradient, for our kernels and burn-flex's (and PyTorch's with
    /// --compare); --model keeps one model's layers, and for resnet18 or mobilenet-v2 lists
    /// each distinct convolution of that student (its shape, and how many of its layers have
    /// it).
    #[arg(long, conflicts_with_all = ["scaling", "only"])]
    pub layers: bool,
    /// Internal: run one RSLAD epoch on the embedded subset and print the peak memory (the
    /// main table runs this in a child process so earlier workloads do not count).
    #[arg(long, hide = true)]
    pub memory_probe: bool,
}

/// One row of a table: a workload, our time and optionally PyTorch's.
struct Row {
    workload: Workload,
    batch: usize,
    ours: Measurement,
    /// On a GPU: seconds of the first call, which compiles kernels and autotunes new shapes
    /// (None on the CPU, where the first call costs what the others do).
    first_call: Option<f64>,
    torch: Option<Measurement>,
}

/// The largest `--batch`: a CIFAR-scale RSLAD step at 4,096 images already needs tens of GiB;
/// beyond it a typo would only fail to allocate.
pub const MAX_BATCH: usize = 4096;

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.memory_probe {
        return memory::run_probe();
    }
    anyhow::ensure!(
        (1..=MAX_BATCH).contains(&args.batch),
        "--batch must be between 1 and {MAX_BATCH}; got {}",
        args.batch
    );
    anyhow::ensure!(
        args.seconds >= 0.0 && args.seconds.is_finite(),
        "--seconds must be a non-negative number"
    );
    let threads = crate::device::cpu_threads();
    let reference = if args.compare {
        let python = args
            .python
            .clone()
            .or_else(|| std::env::var("RSLAD_TORCH_PYTHON").ok())
            .unwrap_or_else(|| "python3".into());
        Some(torch::TorchReference::start(&python, threads)?)
    } else {
        None
    };
    println!(
        "rslad-tui {} on {}, {threads} threads, batch {}{}",
        env!("CARGO_PKG_VERSION"),
        crate::device::backend_id(),
        args.batch,
        reference
            .as_ref()
            .map(|r| format!(", PyTorch {} with {threads} threads", r.version))
            .unwrap_or_default()
    );
    let measure = |workload: Workload, batch: usize| -> Result<Row> {
        eprintln!("timing {} {} ...", workload.name(), model_name(&workload));
        let timing = workload.measure(batch, args.seconds)?;
        let on_gpu = workload::Warmup::for_device() == workload::Warmup::UntilSteady;
        let torch = match &reference {
            Some(reference) => reference.measure(&workload, batch, args.seconds)?,
            None => None,
        };
        Ok(Row {
            workload,
            batch,
            ours: timing.steady,
            first_call: on_gpu.then_some(timing.first_call),
            torch,
        })
    };
    let matmul = measure(Workload::MatMul { size: 1024 }, args.batch)?;
    let peak = matmul
        .workload
        .flops(args.batch)
        .map(|f| f / matmul.ours.seconds / 1e9)
        .unwrap_or(f64::NAN);
    if args.scaling {
        return print_scaling(args, &measure, peak);
    }
    if args.layers {
        print!("{}", table(&[matmul], peak));
        let selected = layers::selected(args.model.as_deref())?;
        let rows = layers::measure(&selected, args.batch, args.seconds, reference.as_ref())?;
        println!("\nconvolutions at batch {}:\n", args.batch);
        print!("{}", layers::table(&rows, args.batch, peak));
        return Ok(());
    }
    let micro = zoo(Arch::MicroCnn, 1);
    let small = zoo(Arch::SmallCnn, 1);
    let mut workloads = Vec::new();
    for model in [micro, small, ModelChoice::Teacher] {
        workloads.push(Workload::Forward { model });
        workloads.push(Workload::PgdStep { model });
    }
    for model in [micro, small] {
        workloads.push(Workload::RsladStep { model, steps: 10 });
    }
    // CIFAR-scale students cost minutes per step on a CPU: timed only when asked for.
    for arch in [Arch::ResNet18, Arch::MobileNetV2] {
        if args.model.as_deref() == Some(arch.name()) {
            let model = zoo(arch, 1);
            workloads.push(Workload::Forward { model });
            workloads.push(Workload::PgdStep { model });
            workloads.push(Workload::RsladStep { model, steps: 10 });
        }
    }
    if args.autoattack_images > 0 {
        let images = args.autoattack_images;
        workloads.push(Workload::AutoAttack { images });
    }
    let wanted = |w: &Workload| {
        args.only.as_deref().is_none_or(|only| w.slug() == only)
            && args
                .model
                .as_deref()
                .is_none_or(|m| w.model().is_some_and(|model| model.name() == m))
    };
    let mut rows = vec![matmul];
    for workload in workloads.into_iter().filter(wanted) {
        rows.push(measure(workload, args.batch)?);
    }
    print!("{}", table(&rows, peak));
    if args.only.is_some() || args.model.is_some() {
        return Ok(());
    }
    println!("\npeak memory of one RSLAD epoch (micro-cnn student, embedded subset, batch 128):");
    println!("{}", memory::measure_in_child()?);
    Ok(())
}

fn zoo(arch: Arch, width: usize) -> ModelChoice {
    ModelChoice::Zoo { arch, width }
}

fn model_name(workload: &Workload) -> String {
    workload.model().map(|m| m.name()).unwrap_or_default()
}

/// The main table: time, images/s, GFLOP/s, the fraction of the matmul rate, PyTorch's
/// images/s and the ratio (> 1: we are faster). On a GPU, the first call (kernel compilation
/// and autotuning included) gets a column of its own before the steady-state time.
fn table(rows: &[Row], peak: f64) -> String {
    let with_torch = rows.iter().any(|r| r.torch.is_some());
    let with_first = rows.iter().any(|r| r.first_call.is_some());
    let mut out = String::from("\n| workload | model | batch |");
    if with_first {
        out.push_str(" first call ms |");
    }
    out.push_str(" ms / iter | images / s | GFLOP/s | of matmul |");
    if with_torch {
        out.push_str(" PyTorch ms | PyTorch images / s | speed ratio |");
    }
    out.push_str("\n|---|---|---:|");
    if with_first {
        out.push_str("---:|");
    }
    out.push_str("---:|---:|---:|---:|");
    if with_torch {
        out.push_str("---:|---:|---:|");
    }
    out.push('\n');
    for row in rows {
        let w = &row.workload;
        let rate = |m: &Measurement| {
            w.images(row.batch)
                .map(|n| rate_text(n as f64 / m.seconds))
                .unwrap_or_else(|| "—".into())
        };
        let gflops = w.flops(row.batch).map(|f| f / row.ours.seconds / 1e9);
        let _ = write!(
            out,
            "| {} | {} | {} |",
            w.name(),
            model_name(w),
            match w {
                Workload::MatMul { .. } | Workload::AutoAttack { .. } => String::from("—"),
                _ => row.batch.to_string(),
            },
        );
        if with_first {
            match row.first_call {
                Some(first) => {
                    let _ = write!(out, " {:.2} |", first * 1e3);
                }
                None => out.push_str(" — |"),
            }
        }
        let _ = write!(
            out,
            " {:.2} | {} | {} | {} |",
            row.ours.seconds * 1e3,
            rate(&row.ours),
            gflops.map_or("—".into(), |g| format!("{g:.1}")),
            gflops.map_or("—".into(), |g| format!("{:.0}%", 100.0 * g / peak)),
        );
        if with_torch {
            match &row.torch {
                Some(t) => {
                    let _ = write!(
                        out,
                        " {:.2} | {} | {:.2} |",
                        t.seconds * 1e3,
                        rate(t),
                        t.seconds / row.ours.seconds
                    );
                }
                None => out.push_str(" — | — | — |"),
            }
        }
        out.push('\n');
    }
    out
}

/// Images per second, with decimals only where they matter.
fn rate_text(rate: f64) -> String {
    if rate < 10.0 {
        format!("{rate:.2}")
    } else {
        format!("{rate:.0}")
    }
}

/// How the RSLAD step's time grows with batch size and attack steps (small-cnn student) and
/// with the student's width (micro-cnn at 1×, 2×, 4×, 8× channels).
fn print_scaling(
    args: &BenchArgs,
    measure: &dyn Fn(Workload, usize) -> Result<Row>,
    peak: f64,
) -> Result<()> {
    let small = zoo(Arch::SmallCnn, 1);
    let mut rows = Vec::new();
    for batch in [32, 64, 128, 256, 512] {
        rows.push(measure(
            Workload::RsladStep {
                model: small,
                steps: 10,
            },
            batch,
        )?);
    }
    println!("\nRSLAD step against batch size (small-cnn student, 10 attack steps):");
    print!("{}", table(&rows, peak));
    let mut rows = Vec::new();
    for steps in [1, 5, 10, 20, 40] {
        rows.push(measure(
            Workload::RsladStep {
                model: small,
                steps,
            },
            args.batch,
        )?);
    }
    println!("\nRSLAD step against attack steps (small-cnn student):");
    print!("{}", table(&rows, peak));
    let mut rows = Vec::new();
    for width in [1, 2, 4, 8] {
        let model = zoo(Arch::MicroCnn, width);
        rows.push(measure(
            Workload::RsladStep { model, steps: 10 },
            args.batch,
        )?);
    }
    println!("\nRSLAD step against student width (micro-cnn channels ×1 to ×8, 10 attack steps):");
    print!("{}", table(&rows, peak));
    Ok(())
}
