//! GPU backends (docs/gpu.md): `--device` and the CPU fallback in every build; in a build with
//! `--features wgpu` (WGSL kernels) or `--features vulkan` (SPIR-V kernels), the GPU backend,
//! with burn's autotune and fusion on, against the CPU backend on the same weights and inputs.
//!
//! Without a GPU, the GPU tests run on Mesa's lavapipe (a Vulkan driver that runs on the
//! CPU), which exercises burn-wgpu's real code path:
//!
//! ```text
//! apt-get install mesa-vulkan-drivers libvulkan1
//! VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json \
//!     cargo test --release --features vulkan --test gpu     # and again with --features wgpu
//! ```
//!
//! Where no Vulkan (or other wgpu) adapter opens, they print why and pass without comparing.

#[cfg(feature = "wgpu")]
mod common;

use rslad_tui::device::{self, DeviceChoice};
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn device_names_parse_and_unknown_ones_are_refused() {
    assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
    assert_eq!("WGPU".parse(), Ok(DeviceChoice::Wgpu));
    assert_eq!("Vulkan".parse(), Ok(DeviceChoice::Vulkan));
    assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda));
    let error = "tpu".parse::<DeviceChoice>().unwrap_err();
    assert!(error.contains("cpu, wgpu, vulkan or cuda"), "{error}");

    let (code, _, stderr) = run(&["--device", "tpu", "zoo"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("possible values: cpu, wgpu, vulkan, cuda"),
        "{stderr}"
    );
}

#[test]
fn the_cpu_always_opens_and_computes() {
    let open = device::open(DeviceChoice::Cpu).expect("the CPU backend opens");
    assert_eq!(open.hardware, "CPU");
    assert!(open.backend.starts_with("burn-"), "{}", open.backend);
    let a = burn::tensor::Tensor::<2>::from_data([[1.0f32, 2.0], [3.0, 4.0]], &open.device);
    let product = rslad_tui::tensor_util::to_vec(a.clone().matmul(a));
    assert_eq!(product, [7.0, 10.0, 15.0, 22.0]);
}

/// `replay --execute` runs on the device the session records: a session recorded on wgpu,
/// replayed by a build without it, says so and runs on the CPU; `--device cpu` overrides it.
#[test]
fn a_replay_uses_the_recorded_device_unless_told_otherwise() {
    if DeviceChoice::Wgpu.is_built() {
        return; // the fallback is what is checked here
    }
    let mut lesson = rslad_tui::lab::session::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sessions/lesson-1-soft-labels.ron"
    )))
    .unwrap();
    assert_eq!(lesson.device, DeviceChoice::Cpu);
    lesson.device = DeviceChoice::Wgpu;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("on-wgpu.ron");
    rslad_tui::lab::session::save(&lesson, &path).unwrap();
    let path = path.to_str().unwrap();
    let replay = ["replay", "--execute", "--limit", "1", path];
    let (code, _, stderr) = run(&replay);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("device wgpu is not usable"), "{stderr}");
    let (code, _, stderr) = run(&[&["--device", "cpu"], &replay[..]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("not usable"), "{stderr}");
}

#[test]
fn a_panic_while_opening_a_device_becomes_an_error_with_its_message() {
    let result: Result<(), String> =
        device::quietly_catching_panics(|| panic!("No possible adapter available"));
    let error = result.unwrap_err();
    assert!(error.contains("No possible adapter available"), "{error}");
    // Work that does not panic gives its value.
    assert_eq!(device::quietly_catching_panics(|| 7), Ok(7));
}

/// A device this build lacks is not an error: the command runs on the CPU and says why.
#[test]
fn a_device_missing_from_the_build_falls_back_to_the_cpu_with_a_message() {
    for choice in [DeviceChoice::Wgpu, DeviceChoice::Vulkan, DeviceChoice::Cuda] {
        if choice.is_built() {
            continue;
        }
        let name = choice.name();
        let (code, stdout, stderr) = run(&["--device", name, "zoo"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains(&format!("device {name} is not usable"))
                && stderr.contains(&format!("--features {name}"))
                && stderr.contains("running on the CPU"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stdout.contains("small-cnn"),
            "the command still ran: {stdout}"
        );
    }
}

#[cfg(feature = "wgpu")]
mod wgpu {
    use super::*;
    use burn::tensor::{Device, Tensor};
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use rslad_tui::attack::{self, AttackLoss, Target, input_gradient};
    use rslad_tui::checkpoint::{self, SaveInfo};
    use rslad_tui::tensor_util::{images, labels, to_vec};
    use rslad_tui::train::{
        Method, OptimizerConfig, OptimizerKind, StepBatch, TrainConfig, Trainer,
    };
    use rslad_tui::zoo::{Arch, Model, ModelSpec};

    /// The GPU device the comparisons run on: `--device vulkan` in a build with the `vulkan`
    /// feature (SPIR-V kernels), else `--device wgpu` (WGSL kernels); None (with the reason
    /// printed) where no adapter opens.
    fn gpu() -> Option<Device> {
        let choice = if DeviceChoice::Vulkan.is_built() {
            DeviceChoice::Vulkan
        } else {
            DeviceChoice::Wgpu
        };
        match device::open(choice) {
            Ok(open) => {
                eprintln!(
                    "comparing burn-flex with {} on {} ({})",
                    open.backend,
                    open.hardware,
                    open.kernels.as_deref().unwrap_or("")
                );
                Some(open.device)
            }
            Err(reason) => {
                eprintln!("skipped: no {choice} adapter opens here ({reason}); see tests/gpu.rs");
                None
            }
        }
    }

    /// The opened GPU says how it runs kernels: the compiler this build's feature selects on
    /// a Vulkan adapter, and autotune and fusion on. Both `--device wgpu` and, in a `vulkan`
    /// build, `--device vulkan` open and compute the same forward pass.
    #[test]
    fn the_gpu_runs_with_autotune_and_fusion_and_the_expected_compiler() {
        let Some(_) = gpu() else { return };
        let mut choices = vec![DeviceChoice::Wgpu];
        if DeviceChoice::Vulkan.is_built() {
            choices.push(DeviceChoice::Vulkan);
        }
        let spec = ModelSpec::native(Arch::MicroCnn, 10);
        for choice in choices {
            let open = device::open(choice).expect("the adapter that opened above");
            let kernels = open.kernels.clone().unwrap_or_default();
            eprintln!("{choice}: {} ({kernels})", open.hardware);
            assert!(kernels.contains("autotune, fusion"), "{kernels}");
            // On a Vulkan adapter the SPIR-V compiler is used exactly when it is built in.
            if open.hardware.contains("llvmpipe") {
                let compiler = if DeviceChoice::Vulkan.is_built() {
                    "SPIR-V kernels"
                } else {
                    "WGSL kernels"
                };
                assert!(kernels.contains(compiler), "{kernels}");
            }
            let [expected, got] =
                on_both(Arch::MicroCnn, 3, &open.device).map(|(model, device)| {
                    to_vec(attack::eval_view(&model).forward(probe(spec, &device)))
                });
            assert_close(
                Arch::MicroCnn,
                &format!("{choice} logits"),
                &expected,
                &got,
                1e-4,
            );
        }
    }

    /// `bench` on the GPU reports the first call (kernel compilation and autotuning) apart
    /// from the steady state, and the tuning results land in the cache folder
    /// `RSLAD_TUI_GPU_CACHE` names, so the next run does not tune again.
    #[test]
    fn bench_on_the_gpu_reports_the_first_call_and_keeps_tuning_results() {
        let Some(_) = gpu() else { return };
        let choice = if DeviceChoice::Vulkan.is_built() {
            "vulkan"
        } else {
            "wgpu"
        };
        let cache = tempfile::tempdir().unwrap();
        let args = [
            "--device",
            choice,
            "bench",
            "--only",
            "pgd-step",
            "--model",
            "micro-cnn",
            "--batch",
            "8",
            "--seconds",
            "0",
        ];
        let output = Command::new(env!("CARGO_BIN_EXE_rslad-tui"))
            .args(args)
            .env("RSLAD_TUI_GPU_CACHE", cache.path())
            .output()
            .expect("the binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(!stderr.contains("not usable"), "{stderr}");
        assert!(
            stdout.contains("| workload | model | batch | first call ms | ms / iter |"),
            "{stdout}"
        );
        let row = stdout
            .lines()
            .find(|l| l.starts_with("| PGD step | micro-cnn | 8 |"))
            .unwrap_or_else(|| panic!("no PGD row in:\n{stdout}"));
        let cells: Vec<f64> = row
            .split('|')
            .skip(4)
            .take(3)
            .map(|c| c.trim().parse().unwrap_or_else(|_| panic!("{row}")))
            .collect();
        assert!(cells.iter().all(|&v| v > 0.0), "{row}");
        // The first call compiled and tuned; it cannot be faster than the steady state.
        assert!(
            cells[0] >= cells[1],
            "first call {} < steady {}",
            cells[0],
            cells[1]
        );
        let stored = files_under(cache.path());
        assert!(
            stored.iter().any(|(_, size)| *size > 0),
            "nothing was written to the GPU cache: {stored:?}"
        );
    }

    /// Every file under `dir` with its size.
    fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                let size = entry.metadata().map_or(0, |m| m.len());
                found.push((path, size));
            }
        }
        found
    }

    /// `arch` with perturbed seeded weights on the CPU, and the same weights read onto `gpu`
    /// from a checkpoint; both on autodiff devices, as training and attacks hold them.
    fn on_both(arch: Arch, seed: u64, gpu: &Device) -> [(Model, Device); 2] {
        let cpu = device::open(DeviceChoice::Cpu).unwrap().device.autodiff();
        let gpu = gpu.clone().autodiff();
        let spec = ModelSpec::native(arch, 10);
        let model = common::perturbed(Model::build(spec, seed, &cpu).unwrap(), seed + 100);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(arch.name());
        let info = SaveInfo {
            dataset: "test",
            training: None,
            metrics: &[],
            seed: 5,
        };
        checkpoint::save(&model, &path, &info).unwrap();
        // Both read back, so both hold trainable parameters as a loaded checkpoint does.
        [cpu, gpu].map(|device| {
            (
                checkpoint::load(&path, Some(arch), &device).unwrap().0,
                device,
            )
        })
    }

    /// Four seeded random images: distinct enough that batch statistics are well conditioned.
    fn probe(spec: ModelSpec, device: &Device) -> Tensor<4> {
        let (c, s) = (spec.in_channels, spec.image_size);
        let mut rng = StdRng::seed_from_u64(21);
        let values: Vec<f32> = (0..4 * c * s * s)
            .map(|_| rng.gen_range(0.0..1.0))
            .collect();
        images(values, 4, c, s, s, device)
    }

    /// Largest difference relative to the largest magnitude of `expected`.
    fn relative_error(expected: &[f32], got: &[f32]) -> f32 {
        assert_eq!(expected.len(), got.len());
        let worst = expected
            .iter()
            .zip(got)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        worst / largest(expected).max(1e-12)
    }

    fn largest(values: &[f32]) -> f32 {
        values.iter().fold(0.0f32, |m, x| m.max(x.abs()))
    }

    /// Asserts `got` matches `expected` within `tolerance` relative to its largest value,
    /// and that the comparison means something (not all near zero).
    fn assert_close(arch: Arch, what: &str, expected: &[f32], got: &[f32], tolerance: f32) {
        let error = relative_error(expected, got);
        eprintln!(
            "{}: {what}: relative error {error:.1e} (largest value {:.2e})",
            arch.name(),
            largest(expected)
        );
        assert!(
            largest(expected) > 1e-7,
            "{}: {what} all near 0",
            arch.name()
        );
        assert!(
            error < tolerance,
            "{}: {what} differ by {error}",
            arch.name()
        );
    }

    /// Input gradients agree in direction (cosine > 0.99999) and entry by entry within 1e-3
    /// of the largest entry for 99% of the pixels. Not all: where a pre-activation lies within
    /// rounding of a ReLU's kink, the two backends can take different sides of it, and the
    /// gradient of the pixels under that unit's receptive field changes by a visible amount
    /// (seen on ResNet-18: 252 of 12,288 entries in one patch of one image, 0.6% off).
    fn assert_gradients_agree(arch: Arch, expected: &[f32], got: &[f32]) {
        let dot: f64 = expected
            .iter()
            .zip(got)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        let norm = |v: &[f32]| v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let cosine = dot / (norm(expected) * norm(got)).max(1e-30);
        let bound = 1e-3 * largest(expected);
        let off = expected
            .iter()
            .zip(got)
            .filter(|(a, b)| (*a - *b).abs() > bound)
            .count();
        eprintln!(
            "{}: input gradient: cosine {cosine:.7}, {off} of {} entries off by more than 1e-3 \
             of the largest ({:.2e}), largest relative error {:.1e}",
            arch.name(),
            expected.len(),
            largest(expected),
            relative_error(expected, got)
        );
        assert!(
            largest(expected) > 1e-7,
            "{}: the gradient is all near 0",
            arch.name()
        );
        assert!(
            cosine > 0.99999,
            "{}: gradient cosine {cosine}",
            arch.name()
        );
        assert!(
            off * 100 <= expected.len(),
            "{}: {off} entries differ",
            arch.name()
        );
    }

    /// Logits with batch norm on running statistics and in training mode, and the input
    /// gradient of the cross-entropy, on both backends.
    fn compare(arch: Arch, gpu: &Device) {
        let spec = ModelSpec::native(arch, 10);
        let results = on_both(arch, 5, gpu).map(|(model, device)| {
            let x = probe(spec, &device);
            let eval = attack::eval_view(&model);
            let logits = to_vec(eval.forward(x.clone()));
            let train_logits = to_vec(attack::train_view(&model).forward(x.clone()));
            let target = Target::labels(labels(&[0, 3, 7, 9], &device));
            let step = input_gradient(&eval, &x, &target, AttackLoss::CrossEntropy);
            (logits, train_logits, to_vec(step.gradient))
        });
        let [(l_cpu, t_cpu, g_cpu), (l_gpu, t_gpu, g_gpu)] = &results;
        assert_close(arch, "logits", l_cpu, l_gpu, 1e-4);
        assert_close(arch, "train-mode logits", t_cpu, t_gpu, 1e-4);
        assert_gradients_agree(arch, g_cpu, g_gpu);
        let has_batch_norm = matches!(arch, Arch::MicroCnn | Arch::ResNet18 | Arch::MobileNetV2);
        if has_batch_norm {
            assert!(
                relative_error(l_cpu, t_cpu) > 1e-3,
                "{}: batch norm in training mode changed nothing",
                arch.name()
            );
        }
    }

    /// RSLAD with a PGD-1 attack, ε 0.3, step 0.1.
    fn rslad() -> Method {
        Method::Rslad {
            attack: Method::kl_attack(0.3, 0.1, 1),
            alpha: 5.0 / 6.0,
            scale: 1.0,
        }
    }

    /// One training step on both backends (the method's attack, the backward pass, one SGD
    /// step with momentum and weight decay): the loss and the updated student's logits agree
    /// within `tolerance`. Natural training has no attack, so its step agrees nearly as
    /// closely as a forward pass (a ReLU kink taken differently in the backward pass moves a
    /// few weights: ResNet-18 measured 2e-6 to 4e-4 with different weights); an attack steps
    /// by the sign of the input gradient, and a sign that rounding flips for a near-zero
    /// gradient moves a pixel by a whole step, so RSLAD gets a looser bound.
    fn compare_training_step(arch: Arch, method: Method, tolerance: f32, gpu: &Device) {
        let spec = ModelSpec::native(arch, 10);
        let [student_cpu, student_gpu] = on_both(arch, 5, gpu);
        let teachers = on_both(arch, 6, gpu);
        let results = [student_cpu, student_gpu]
            .into_iter()
            .zip(teachers)
            .map(|((student, device), (teacher, _))| {
                let config = TrainConfig {
                    method: method.clone(),
                    optimizer: OptimizerConfig {
                        kind: OptimizerKind::Sgd { momentum: 0.9 },
                        learning_rate: 0.05,
                        weight_decay: 2e-4,
                        milestones: Vec::new(),
                        gamma: 0.1,
                    },
                    epochs: 1,
                    batch_size: 4,
                    seed: 0,
                    train_n: None,
                    eval_n: 0,
                    eval_attack: None,
                    epsilon_warmup_epochs: 0,
                };
                let mut trainer = Trainer::with_teacher(student, teacher, config);
                let x = probe(spec, &device);
                let y = labels(&[0, 3, 7, 9], &device);
                let mut rng = StdRng::seed_from_u64(3);
                let (loss, _) = trainer
                    .update(StepBatch::new(&x, &y), 0, 1.0, 0.05, &mut rng)
                    .expect("a finite loss");
                let after = to_vec(attack::eval_view(&trainer.model).forward(x));
                (loss as f32, after)
            })
            .collect::<Vec<_>>();
        let [(loss_cpu, after_cpu), (loss_gpu, after_gpu)] = &results[..] else {
            unreachable!()
        };
        let name = method.name();
        assert_close(
            arch,
            &format!("{name} loss"),
            &[*loss_cpu],
            &[*loss_gpu],
            tolerance,
        );
        let what = format!("logits after a {name} step");
        assert_close(arch, &what, after_cpu, after_gpu, tolerance);
    }

    #[test]
    fn the_gpu_matches_the_cpu_on_mnist_architectures() {
        let Some(gpu) = gpu() else { return };
        for arch in [Arch::MicroCnn, Arch::SmallCnn, Arch::MadryCnn, Arch::Mlp] {
            compare(arch, &gpu);
        }
        for arch in [Arch::MicroCnn, Arch::SmallCnn] {
            compare_training_step(arch, Method::Natural, 1e-3, &gpu);
            compare_training_step(arch, rslad(), 1e-2, &gpu);
        }
    }

    #[test]
    fn the_gpu_matches_the_cpu_on_cifar_architectures() {
        let Some(gpu) = gpu() else { return };
        for arch in [Arch::ResNet18, Arch::MobileNetV2] {
            compare(arch, &gpu);
        }
        compare_training_step(Arch::ResNet18, Method::Natural, 1e-3, &gpu);
        compare_training_step(Arch::ResNet18, rslad(), 1e-2, &gpu);
    }
}
