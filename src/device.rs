//! The one place where the compute device is chosen.
//!
//! Every other module receives a `&Device` and never names a backend: the model, training and
//! attack code is the same on every device.
//!
//! `--device cpu` (the default) runs on burn-flex, the pure-Rust CPU backend. Builds with the
//! optional `wgpu`, `vulkan` or `cuda` cargo features can run on a GPU with
//! `--device wgpu|vulkan|cuda` (docs/gpu.md). A GPU that cannot be opened is not fatal: burn
//! panics while initialising it, [`select`] catches that, says why, and falls back to the CPU.
//!
//! GPU builds run burn's autotune (each convolution and matrix product shape is timed once
//! against its candidate kernels and the fastest kept) and fusion (element-wise operations
//! merged into one kernel). The tuning results are kept on disk between runs, in the user's
//! cache folder ([`gpu_cache_dir`]), so only the first run on a machine pays for them.
//!
//! Builds with the `ndarray` or `tch` features can run the CPU device on burn-ndarray or on
//! LibTorch's CPU kernels instead, chosen with `RSLAD_TUI_BACKEND=ndarray` or `=libtorch`:
//! experiments for the performance comparison (docs/performance.md), not supported modes.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The device a user asks for with `--device` (and a session file records).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The CPU (burn-flex); always available.
    #[default]
    Cpu,
    /// A GPU through wgpu (Vulkan, Metal or DX12); needs a build with `--features wgpu`.
    Wgpu,
    /// A GPU through wgpu pinned to Vulkan, kernels compiled to SPIR-V (tensor cores where the
    /// driver offers cooperative matrices); needs a build with `--features vulkan`.
    Vulkan,
    /// An NVIDIA GPU through CUDA; needs a build with `--features cuda`.
    Cuda,
}

impl DeviceChoice {
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Wgpu => "wgpu",
            DeviceChoice::Vulkan => "vulkan",
            DeviceChoice::Cuda => "cuda",
        }
    }

    /// Whether this build can run on the device at all (its cargo feature is on).
    pub fn is_built(self) -> bool {
        match self {
            DeviceChoice::Cpu => true,
            DeviceChoice::Wgpu => cfg!(feature = "wgpu"),
            DeviceChoice::Vulkan => cfg!(feature = "vulkan"),
            DeviceChoice::Cuda => cfg!(feature = "cuda"),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, true)
            .map_err(|_| format!("unknown device {s:?}; expected cpu, wgpu, vulkan or cuda"))
    }
}

/// A device that has been opened and checked, with the names reports use.
#[derive(Clone, Debug)]
pub struct OpenDevice {
    pub choice: DeviceChoice,
    /// Without autodiff.
    pub device: Device,
    /// The backend crate, e.g. "burn-flex", "burn-wgpu".
    pub backend: &'static str,
    /// What the device is, e.g. "CPU" or "GPU: NVIDIA H100 80GB HBM3".
    pub hardware: String,
    /// How a GPU runs its kernels, e.g. "SPIR-V kernels, tensor cores (f16×f16→f32), autotune,
    /// fusion"; None on the CPU.
    pub kernels: Option<String>,
}

/// What [`select`] settled on: the device in use, and why it is not the one asked for when
/// it fell back.
#[derive(Clone, Debug)]
pub struct Selection {
    pub requested: DeviceChoice,
    pub open: OpenDevice,
    pub fallback_reason: Option<String>,
}

impl Selection {
    /// One line for the user when the selection fell back, None when it did not.
    pub fn fallback_message(&self) -> Option<String> {
        self.fallback_reason.as_ref().map(|why| {
            format!(
                "device {} is not usable: {why}; running on the CPU ({}) instead",
                self.requested, self.open.backend
            )
        })
    }
}

static SELECTED: OnceLock<Selection> = OnceLock::new();

/// Chooses the device for the rest of the process: the one asked for if it opens and computes
/// correctly, else the CPU with the reason in [`Selection::fallback_reason`]. The first call
/// decides; later calls (and [`compute_device`] before any call, which selects the CPU) return
/// that first choice.
pub fn select(choice: DeviceChoice) -> &'static Selection {
    SELECTED.get_or_init(|| match open(choice) {
        Ok(open) => Selection {
            requested: choice,
            open,
            fallback_reason: None,
        },
        Err(reason) => Selection {
            requested: choice,
            open: open_cpu(),
            fallback_reason: Some(reason),
        },
    })
}

/// The selection in force (the CPU when nothing was selected yet).
pub fn selection() -> &'static Selection {
    select(DeviceChoice::Cpu)
}

/// Whether [`select`] has been called (or a device used) yet.
pub fn is_selected() -> bool {
    SELECTED.get().is_some()
}

/// The device for inference and attacks (no autodiff graph unless a tensor asks for one).
pub fn compute_device() -> Device {
    selection().open.device.clone()
}

/// The same device with autodiff enabled, for training and for input gradients.
pub fn autodiff_device() -> Device {
    compute_device().autodiff()
}

/// A short human-readable name of the backend in use, for reports and checkpoint cards
/// ("burn-flex (CPU)", "burn-wgpu (GPU: …; SPIR-V kernels, …)"). On a GPU it names the
/// kernel compiler and whether tensor cores are used, which change how results round.
pub fn backend_name() -> String {
    let open = &selection().open;
    match &open.kernels {
        Some(kernels) => format!("{} ({}; {kernels})", open.backend, open.hardware),
        None => format!("{} ({})", open.backend, open.hardware),
    }
}

/// The device for the workbench's status line: "cpu", or "wgpu GPU: …".
pub fn short_label() -> String {
    let open = &selection().open;
    match open.choice {
        DeviceChoice::Cpu => "cpu".into(),
        gpu => format!("{gpu} {}", open.hardware),
    }
}

/// Whether the device in use is the CPU on burn-flex (what the bit-for-bit properties some
/// code relies on were measured on).
pub fn is_flex() -> bool {
    backend_crate() == "burn-flex"
}

/// The backend's crate name alone ("burn-flex"), for session files' backend field.
pub fn backend_crate() -> &'static str {
    selection().open.backend
}

/// Opens `choice` and checks it with a small computation, without selecting it for the
/// process: for tests that compare two devices, and for [`select`].
pub fn open(choice: DeviceChoice) -> Result<OpenDevice, String> {
    match choice {
        DeviceChoice::Cpu => Ok(open_cpu()),
        DeviceChoice::Wgpu => open_wgpu(),
        DeviceChoice::Vulkan => open_vulkan(),
        DeviceChoice::Cuda => open_cuda(),
    }
}

fn open_cpu() -> OpenDevice {
    let (device, backend) = cpu_backend();
    OpenDevice {
        choice: DeviceChoice::Cpu,
        device,
        backend,
        hardware: "CPU".into(),
        kernels: None,
    }
}

/// The CPU backend: flex, or the one `RSLAD_TUI_BACKEND` names in an experimental build.
fn cpu_backend() -> (Device, &'static str) {
    match std::env::var("RSLAD_TUI_BACKEND").as_deref() {
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        // burn 0.22 deprecates ndarray in favour of flex; kept to compare
        Ok("ndarray") => (Device::ndarray(), "burn-ndarray"),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        Ok("libtorch") => (Device::libtorch(), "burn-tch"),
        Ok("flex") | Err(_) => (Device::flex(), "burn-flex"),
        Ok(other) => {
            eprintln!("RSLAD_TUI_BACKEND={other} is not available in this build; using flex");
            (Device::flex(), "burn-flex")
        }
    }
}

#[cfg(feature = "wgpu")]
fn open_wgpu() -> Result<OpenDevice, String> {
    use burn::tensor::DeviceKind;
    probe(
        DeviceChoice::Wgpu,
        Device::wgpu(DeviceKind::DefaultDevice),
        "burn-wgpu",
    )
}

#[cfg(not(feature = "wgpu"))]
fn open_wgpu() -> Result<OpenDevice, String> {
    Err(not_built(DeviceChoice::Wgpu))
}

#[cfg(feature = "vulkan")]
fn open_vulkan() -> Result<OpenDevice, String> {
    use burn::tensor::DeviceKind;
    probe(
        DeviceChoice::Vulkan,
        Device::vulkan(DeviceKind::DefaultDevice),
        "burn-wgpu",
    )
}

#[cfg(not(feature = "vulkan"))]
fn open_vulkan() -> Result<OpenDevice, String> {
    Err(not_built(DeviceChoice::Vulkan))
}

#[cfg(feature = "cuda")]
fn open_cuda() -> Result<OpenDevice, String> {
    probe(DeviceChoice::Cuda, Device::cuda(0), "burn-cuda")
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> Result<OpenDevice, String> {
    Err(not_built(DeviceChoice::Cuda))
}

#[cfg(not(all(feature = "vulkan", feature = "cuda")))]
fn not_built(choice: DeviceChoice) -> String {
    format!(
        "this build has no {choice} backend (rebuild with `cargo build --release --features \
         {choice}`; see docs/gpu.md)"
    )
}

/// Where GPU builds keep autotune results and compiled kernels between runs:
/// `$RSLAD_TUI_GPU_CACHE`, else `$XDG_CACHE_HOME/rslad-tui/gpu`, else
/// `~/.cache/rslad-tui/gpu`; None when none of these can be formed (then nothing persists).
pub fn gpu_cache_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if let Some(dir) = std::env::var_os("RSLAD_TUI_GPU_CACHE").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("rslad-tui").join("gpu"))
}

/// Points cubecl's on-disk store (autotune results, compiled kernels) at [`gpu_cache_dir`]
/// before the first GPU device opens. Left to itself cubecl would put it in the `target/`
/// folder of whatever Cargo project the working directory is in, or in its own folder of the
/// user cache. A `cubecl.toml` the user wrote that names another place is respected; the
/// `CUBECL_*` environment variables keep working.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn configure_gpu_runtime() {
    use burn::cubecl::config::cache::CacheConfig;
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    static CONFIGURED: std::sync::Once = std::sync::Once::new();
    CONFIGURED.call_once(|| {
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if matches!(config.environment.path, CacheConfig::Target)
            && let Some(dir) = gpu_cache_dir()
        {
            config.environment.path = CacheConfig::Directory(dir);
        }
        // False when something read the configuration first; it then stays as it was.
        let _ = CubeClRuntimeConfig::try_set(config);
    });
}

/// Runs a small matrix product on `device` and checks the answer, catching the panic burn
/// raises when a GPU cannot be initialised (no adapter, no driver, no libcuda). Returns the
/// opened device, named by what it reports itself to be.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn probe(
    choice: DeviceChoice,
    device: Device,
    backend: &'static str,
) -> Result<OpenDevice, String> {
    configure_gpu_runtime();
    let probed = device.clone();
    let outcome = quietly_catching_panics(move || {
        let device = probed;
        let a = burn::tensor::Tensor::<2>::from_data([[1.0f32, 2.0], [3.0, 4.0]], &device);
        let product: Vec<f32> = a
            .clone()
            .matmul(a)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        if product != [7.0, 10.0, 15.0, 22.0] {
            return Err(format!(
                "a 2×2 matrix product came out as {product:?} instead of [7, 10, 15, 22]"
            ));
        }
        let name = device
            .identity()
            .map_or_else(|| "unnamed".to_string(), |id| id.name);
        Ok((format!("GPU: {name}"), kernel_summary(&device)))
    });
    let (hardware, kernels) = outcome.unwrap_or_else(Err)?;
    Ok(OpenDevice {
        choice,
        device,
        backend,
        hardware,
        kernels: Some(kernels),
    })
}

/// How the opened GPU runs kernels: the compiler cubecl chose for it (WGSL, SPIR-V, CUDA),
/// the tensor-core (cooperative matrix) operand types it registered, and the tuning features
/// this build has.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn kernel_summary(device: &Device) -> String {
    let tuning = "autotune, fusion";
    let burn::backend::DispatchDevice::Cube(cube) = device.as_dispatch() else {
        return tuning.to_string();
    };
    let client = cube.client();
    let compiler = match client.name() {
        "wgpu<spirv>" => "SPIR-V kernels",
        "wgpu<wgsl>" => "WGSL kernels",
        "wgpu<msl>" => "MSL kernels",
        name if name.starts_with("cuda") => "CUDA kernels",
        other => other,
    };
    // One entry per operand types; the tile sizes do not matter to the user.
    let kinds: std::collections::BTreeSet<String> = client
        .properties()
        .features
        .matmul
        .cmma
        .iter()
        .map(|mma| format!("{}×{}→{}", mma.a_type, mma.b_type, mma.cd_type))
        .collect();
    let kinds: Vec<String> = kinds.into_iter().collect();
    let tensor_cores = if kinds.is_empty() {
        "no tensor cores".to_string()
    } else {
        format!("tensor cores ({})", kinds.join(", "))
    };
    format!("{compiler}, {tensor_cores}, {tuning}")
}

/// Runs `work`, turning a panic into an error that carries its message, without the default
/// hook printing it (which would garble the workbench's screen). A GPU runtime often fails on
/// its own thread and the caller then sees only a closed channel, so the error gives the
/// first panic message seen on any thread while `work` ran.
pub fn quietly_catching_panics<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    use std::sync::{Arc, Mutex};
    // The hook is the process's: two overlapping calls could otherwise restore each other's
    // quiet hook and leave it installed for good.
    static HOOK_SWAP: Mutex<()> = Mutex::new(());
    let _one_at_a_time = HOOK_SWAP.lock().unwrap_or_else(|e| e.into_inner());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let previous = std::panic::take_hook();
    let record = Arc::clone(&seen);
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or("the backend panicked");
        if let Ok(mut seen) = record.lock() {
            seen.push(message.trim().to_string());
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    std::panic::set_hook(previous);
    result.map_err(|_| {
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let first = seen.first().map_or("the backend panicked", String::as_str);
        format!("it failed to initialise ({first})")
    })
}

/// The threads the CPU work runs on: burn-flex and our kernels both use rayon's global pool,
/// so RAYON_NUM_THREADS when set, else one per core. Benchmarks give PyTorch as many.
pub fn cpu_threads() -> usize {
    rayon::current_num_threads()
}

/// The backend and what decides its floating-point results on this machine: the CPU's widest
/// SIMD level and the number of threads (both change summation order). Results are
/// bit-identical between runs with the same id.
pub fn backend_id() -> String {
    if selection().open.choice != DeviceChoice::Cpu {
        return backend_name();
    }
    let threads = cpu_threads();
    // Our convolutions round differently from burn's: sessions recorded on burn's (before the
    // kernels, with no path in the id, or with "burn conv") are not expected to replay
    // bit-identically.
    format!(
        "{} (CPU, {}, {threads} threads, {})",
        backend_crate(),
        simd_level(),
        crate::conv::PATH_NAME
    )
}

/// The matrix-multiply kernel family gemm runs here: it picks one at run time, so the same
/// build rounds differently on machines with and without AVX-512.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if cfg!(feature = "avx512") && std::arch::is_x86_feature_detected!("avx512f") {
            return "x86-64 avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "x86-64 avx2";
        }
        "x86-64"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH
    }
}
