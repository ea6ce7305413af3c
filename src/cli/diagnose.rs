//! `rslad-tui diagnose`: the gradient-masking checks of [`crate::diagnose`] on a checkpoint,
//! as plain lines or JSON.

use super::args::{CheckpointArgs, DataArgs, attack_steps, epsilon_or};
use crate::device::compute_device;
use crate::diagnose::{DiagnoseConfig, diagnose, first_images, training_hint};
use crate::settings::{DataChoice, attack_defaults, check_fit, check_trained_on};
use anyhow::{Result, bail};
use clap::Args;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    /// Diagnose on the first N test images.
    #[arg(long, default_value_t = 200)]
    pub n: usize,
    /// Attack radius ε in L∞ (default: the dataset's conventional ε).
    #[arg(long)]
    pub eps: Option<f32>,
    /// Steps of the PGD comparisons (each of step 2.5·ε / steps, the rule of Madry et al.'s
    /// robustness library, so every run can cross the ball).
    #[arg(long, default_value_t = 40)]
    pub steps: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Draw the loss profile around this test image (an index below --n) instead of the
    /// correctly classified one with the highest loss.
    #[arg(long)]
    pub image: Option<usize>,
    /// Print the diagnosis as JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Most images a diagnosis takes: its checks run on one batch held in memory.
pub const MAX_IMAGES: usize = 1000;

pub fn run(args: &DiagnoseArgs) -> Result<()> {
    if args.n == 0 || args.n > MAX_IMAGES {
        bail!("--n must be between 1 and {MAX_IMAGES} images");
    }
    attack_steps(args.steps)?;
    if let Some(image) = args.image.filter(|&i| i >= args.n) {
        bail!(
            "--image {image} is not among the first {} test images diagnosed (--n)",
            args.n
        );
    }
    if args.eps == Some(0.0) {
        bail!("--eps 0 allows no perturbation: every check would pass without testing anything");
    }
    let (model, card) = args.checkpoint.load()?;
    let data = DataChoice::try_from(&args.data)?.load()?;
    check_fit(&card.spec, &data)?;
    check_trained_on(&card, data.kind, "the checkpoint")?;
    let epsilon = epsilon_or(args.eps, attack_defaults(data.kind).epsilon)?;
    let (x, labels) = first_images(&data.test, args.n, &compute_device());
    let mut config = DiagnoseConfig::new(epsilon);
    config.seed = args.seed;
    config.steps = args.steps;
    config.profile_image = args.image;
    if !config.step_counts.contains(&args.steps) {
        config.step_counts.push(args.steps);
        config.step_counts.sort_unstable();
    }
    let view = crate::attack::eval_view(&model);
    let started = Instant::now();
    let json = args.json;
    let diagnosis = diagnose(&view, &x, &labels, &config, &mut |check| {
        if !json {
            eprintln!(
                "checking {check} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    })?;
    let method = card.training.as_ref().map(|t| &t.method);
    let hint = method.and_then(|m| training_hint(&diagnosis, card.spec.arch, m));
    if args.json {
        let report = JsonReport {
            diagnosis: &diagnosis,
            training_hint: hint,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{} on {}", card.spec.arch, args.checkpoint.path.display());
        for line in diagnosis.lines() {
            println!("{line}");
        }
        if let Some(hint) = hint {
            println!("{hint}");
        }
        println!("({:.0} s)", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// `--json`'s output: the diagnosis and, where the checkpoint's training can explain a
/// flagged check, the hint the plain output prints after it.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    diagnosis: &'a crate::diagnose::Diagnosis,
    training_hint: Option<String>,
}
