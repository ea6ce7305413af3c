//! The PyTorch side of `bench --compare`: `bench/reference_torch.py`, run with the user's own
//! Python and torch. Optional: nothing else in the program needs Python.

use super::layers::{Layer, LayerTimes};
use super::workload::{Measurement, Workload};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::Command;

/// The reference scripts, built into the binary so `--compare` works from any folder.
const SCRIPT: &str = include_str!("../../bench/reference_torch.py");
const LAYER_SCRIPT: &str = include_str!("../../bench/conv_ops_torch.py");

pub struct TorchReference {
    python: String,
    script: PathBuf,
    layer_script: PathBuf,
    pub version: String,
    threads: usize,
}

#[derive(Deserialize)]
struct Reply {
    seconds: f64,
    reps: usize,
}

impl TorchReference {
    /// Writes the script to a temporary file and checks that `python` imports torch.
    pub fn start(python: &str, threads: usize) -> Result<TorchReference> {
        let script = std::env::temp_dir().join(format!(
            "rslad-tui-reference-torch-{}.py",
            std::process::id()
        ));
        std::fs::write(&script, SCRIPT)
            .with_context(|| format!("cannot write {}", script.display()))?;
        let layer_script = std::env::temp_dir().join(format!(
            "rslad-tui-conv-ops-torch-{}.py",
            std::process::id()
        ));
        std::fs::write(&layer_script, LAYER_SCRIPT)
            .with_context(|| format!("cannot write {}", layer_script.display()))?;
        let output = Command::new(python)
            .args(["-c", "import torch; print(torch.__version__)"])
            .output()
            .with_context(|| format!("cannot run {python} (pass --python PATH)"))?;
        if !output.status.success() {
            bail!(
                "{python} cannot import torch ({}); install torch for it or pass --python PATH",
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or("no message")
            );
        }
        Ok(TorchReference {
            python: python.to_string(),
            script,
            layer_script,
            version: String::from_utf8_lossy(&output.stdout).trim().to_string(),
            threads,
        })
    }

    /// Times the workload in PyTorch; None where the reference has no counterpart
    /// (AutoAttack needs the authors' package, not part of torch).
    pub fn measure(
        &self,
        workload: &Workload,
        batch: usize,
        seconds: f64,
    ) -> Result<Option<Measurement>> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |k: &str, v: String| {
            args.push(format!("--{k}"));
            args.push(v);
        };
        match workload {
            Workload::MatMul { size } => push("size", size.to_string()),
            Workload::RsladStep { steps, .. } => push("steps", steps.to_string()),
            Workload::AutoAttack { .. } => return Ok(None),
            Workload::Forward { .. } | Workload::PgdStep { .. } => {}
        }
        if let Some(model) = workload.model() {
            if model.is_cifar_scale() {
                // bench/reference_torch.py has the MNIST-scale models only.
                return Ok(None);
            }
            let (arch, width) = model.torch_shape();
            push("model", arch.to_string());
            push("width", width.to_string());
        }
        push("workload", workload.slug().to_string());
        push("batch", batch.to_string());
        push("threads", self.threads.to_string());
        push("seconds", seconds.to_string());
        let output = Command::new(&self.python)
            .arg(&self.script)
            .args(&args)
            .output()
            .with_context(|| format!("cannot run {}", self.python))?;
        if !output.status.success() {
            bail!(
                "the PyTorch reference failed on {}: {}",
                workload.name(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        let reply: Reply = serde_json::from_str(line)
            .with_context(|| format!("the PyTorch reference printed {line:?}"))?;
        Ok(Some(Measurement {
            seconds: reply.seconds,
            reps: reply.reps,
        }))
    }
}

impl TorchReference {
    /// Times one convolution's forward pass, input gradient and weight gradient in PyTorch
    /// (`bench/conv_ops_torch.py`).
    pub fn measure_layer(&self, layer: &Layer, batch: usize, seconds: f64) -> Result<LayerTimes> {
        let args = [
            ("in", layer.in_channels),
            ("out", layer.out_channels),
            ("size", layer.size),
            ("kernel", layer.kernel),
            ("stride", layer.stride),
            ("padding", layer.padding),
            ("bias", usize::from(layer.bias)),
            ("groups", layer.groups),
            ("batch", batch),
            ("threads", self.threads),
        ]
        .into_iter()
        .flat_map(|(k, v)| [format!("--{k}"), v.to_string()])
        .chain(["--seconds".to_string(), seconds.to_string()]);
        let output = Command::new(&self.python)
            .arg(&self.layer_script)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {}", self.python))?;
        if !output.status.success() {
            bail!(
                "the PyTorch reference failed on {}: {}",
                layer.name,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        let reply: LayerReply = serde_json::from_str(line)
            .with_context(|| format!("the PyTorch reference printed {line:?}"))?;
        let measurement = |r: Reply| Measurement {
            seconds: r.seconds,
            reps: r.reps,
        };
        Ok(LayerTimes {
            forward: measurement(reply.forward),
            input_grad: measurement(reply.input_grad),
            weight_grad: measurement(reply.weight_grad),
        })
    }
}

#[derive(Deserialize)]
struct LayerReply {
    forward: Reply,
    input_grad: Reply,
    weight_grad: Reply,
}

impl Drop for TorchReference {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
        let _ = std::fs::remove_file(&self.layer_script);
    }
}
