#!/usr/bin/env bash
# One-command GPU measurement (docs/gpu.md, "Measuring on a lent GPU"): runs a carried
# rslad-tui binary on a GPU machine that has no Rust toolchain and writes one Markdown table.
#
#   bash scripts/gpu-bench.sh [--device vulkan|wgpu|cuda] [--seconds S] [--train-n N]
#                             [--budget SECONDS] [--binary PATH] [--out FILE]
#
# and, to try the script itself on a slow device (Mesa's lavapipe, or --device cpu, whose
# table has no first-call column) with small work:
#   [--models "resnet18 mobilenet-v2"] [--batch 128] [--epoch-model resnet18]
#   [--teacher-model wrn-34-10] [--aa-images 200]
#
# What it measures, in this order, each under its own time limit so that one slow part cannot
# use up the machine's lease (the whole run stays under --budget, 540 s by default):
#   1. bench --model resnet18 --batch 128: a 1024² matmul, a forward pass, a PGD step, an
#      RSLAD step (PGD-10 attack, WideResNet-34-10 teacher, the update): the first call
#      (kernel compilation and autotuning) and the steady state;
#   2. the same for mobilenet-v2;
#   3. a 1-epoch RSLAD run of resnet18 on generated CIFAR-shaped data (--train-n images,
#      batch 128, so the last batch is partial), twice: the second run finds every shape's
#      tuning result in the cache the first one wrote;
#   4. the standard AutoAttack of the shipped MNIST teacher on one 200-image block.
# Then the targets of issue 23: a PGD step within 3 forward passes, an RSLAD step within 0.5 s.
#
# Inputs, relative to the repository root (the device tool's `carry` brings them along):
#   .device/rslad-tui.xz (or .device/rslad-tui)  the release binary built with the GPU feature
#   .device/libvulkan1_*.deb                      Debian's Vulkan loader, used only when the
#                                                 machine has none (ldconfig finds no libvulkan)
# Needs bash, coreutils, awk, python3 (to write the generated data) and xz or python3 (to
# unpack the binary). Writes the table to --out (default: $OUT/gpu-bench.md when the device
# tool's OUT is set, else ./gpu-bench.md) and prints it last; logs go beside it.

set -uo pipefail

device=vulkan
seconds=3
train_n=2600
budget=540
binary=""
out=""
models="resnet18 mobilenet-v2"
batch=128
epoch_model=resnet18
teacher_model=wrn-34-10
aa_images=200
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --train-n) train_n="$2"; shift 2 ;;
        --budget) budget="$2"; shift 2 ;;
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --models) models="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        --epoch-model) epoch_model="$2"; shift 2 ;;
        --teacher-model) teacher_model="$2"; shift 2 ;;
        --aa-images) aa_images="$2"; shift 2 ;;
        -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.." || exit 2
readonly started=$SECONDS
if [[ -z "$out" ]]; then
    out="${OUT:-.}/gpu-bench.md"
fi
logs="$(dirname "$out")"
mkdir -p "$logs"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

say() { echo "[$((SECONDS - started)) s] $*" >&2; }

# --- the binary -----------------------------------------------------------------------
if [[ -z "$binary" ]]; then
    if [[ -f .device/rslad-tui ]]; then
        binary=.device/rslad-tui
    elif [[ -f .device/rslad-tui.xz ]]; then
        binary="$work/rslad-tui"
        if command -v xz >/dev/null; then
            xz -dc .device/rslad-tui.xz >"$binary"
        else
            python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)' .device/rslad-tui.xz "$binary"
        fi
        chmod +x "$binary"
    else
        echo "no binary: put the release build at .device/rslad-tui(.xz) or pass --binary" >&2
        exit 2
    fi
fi
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

# --- the Vulkan loader and driver (wgpu and vulkan devices) ------------------------------
if [[ "$device" != cuda ]]; then
    if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
        deb="$(find .device -maxdepth 1 -name 'libvulkan1_*.deb' 2>/dev/null | head -n 1)"
        if [[ -n "$deb" ]]; then
            mkdir -p "$work/vulkan"
            dpkg -x "$deb" "$work/vulkan"
            export LD_LIBRARY_PATH="$work/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            say "using the carried Vulkan loader $(basename "$deb")"
        else
            say "warning: no libvulkan.so.1 on this machine and none carried in .device/"
        fi
    fi
    nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [[ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" && -f "$nvidia_icd" ]] &&
        ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
        export VK_DRIVER_FILES="$nvidia_icd"
    fi
fi
# wgpu's OpenGL probe complains without it.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$work}"
# A fresh tuning cache, so that first calls show what tuning costs on this machine.
export RSLAD_TUI_GPU_CACHE="$work/gpu-cache"

rt=("$binary" --device "$device")

# --- the table --------------------------------------------------------------------------
rows="$work/rows.md"
: >"$rows"
backend=""

# Seconds left before the budget runs out.
left() { echo $((budget - (SECONDS - started))); }

# Runs "$@" under a time limit of min($1, time left); its output goes to log file $2.
limited() {
    local limit="$1" log="$2"
    shift 2
    local remaining
    remaining="$(left)"
    ((limit > remaining)) && limit="$remaining"
    if ((limit < 10)); then
        echo "skipped: the time budget is spent" >"$log"
        return 124
    fi
    timeout --kill-after=5 "$limit" "$@" >"$log" 2>&1
}

# The rows of bench's table (not its header, nor the matmul row after the first bench).
bench_rows() {
    local new
    new="$(grep '^| ' "$1" | grep -v -e '^| workload ' -e '^|---')"
    if [[ -s "$rows" ]]; then
        new="$(grep -v '^| matmul ' <<<"$new")"
    fi
    [[ -n "$new" ]] && echo "$new" >>"$rows"
}

note_backend() {
    [[ -n "$backend" ]] && return
    backend="$(grep -m1 -e '^running on ' -e 'is not usable' "$1" || true)"
}

failed_row() { # workload, model, log
    echo "| $1 | $2 | — | — | failed or timed out (see $(basename "$3")) | — | — | — |" >>"$rows"
}

# Stop early, with the reason in the table, when the device does not open: the rest would
# run on the CPU fallback and measure nothing of the GPU.
"${rt[@]}" zoo >"$logs/open.log" 2>&1
note_backend "$logs/open.log"
if [[ "$device" != cpu ]] && ! grep -q '^running on ' "$logs/open.log"; then
    {
        echo "## rslad-tui: --device $device did not open"
        echo
        echo '```'
        head -n 20 "$logs/open.log"
        echo '```'
    } >"$out"
    cat "$out"
    exit 1
fi

for model in $models; do
    log="$logs/bench-$model.log"
    limit=$([[ $model == resnet18 ]] && echo 170 || echo 140)
    say "bench $model (at most $limit s)"
    if limited "$limit" "$log" "${rt[@]}" bench --model "$model" --batch "$batch" --seconds "$seconds" \
        --autoattack-images 0; then
        bench_rows "$log"
    else
        failed_row "bench" "$model" "$log"
    fi
    note_backend "$log"
done

# A CIFAR-10 folder of random images: what the model computes does not change the cost.
say "generating $train_n CIFAR-shaped training images"
data="$work/data"
python3 - "$data/cifar-10-batches-bin" "$train_n" <<'EOF'
import os, sys
folder, n = sys.argv[1], int(sys.argv[2])
os.makedirs(folder, exist_ok=True)
per_file = [n // 5 + (1 if i < n % 5 else 0) for i in range(5)]
def write(name, count):
    with open(os.path.join(folder, name), "wb") as f:
        for i in range(count):
            f.write(bytes([i % 10]) + os.urandom(3 * 32 * 32))
for i, count in enumerate(per_file):
    write(f"data_batch_{i + 1}.bin", max(count, 1))
write("test_batch.bin", 100)
EOF

teacher="$work/teacher"
epoch_seconds() { sed -n 's/^epoch .*(\([0-9.]*\) s)$/\1/p' "$1" | head -n 1; }
say "a $teacher_model teacher (one batch of 8)"
if limited 60 "$logs/teacher.log" "${rt[@]}" train --dataset cifar10 --data "$data" --model "$teacher_model" \
    --method natural --epochs 1 --train-n 8 --batch-size 8 --eval-n 0 --eval-steps 0 \
    --out "$teacher"; then
    first=""
    for pass in first second; do
        log="$logs/rslad-epoch-$pass.log"
        say "RSLAD epoch, $pass run"
        if limited 120 "$log" "${rt[@]}" train --dataset cifar10 --data "$data" --model "$epoch_model" \
            --method rslad --teacher "$teacher" --epochs 1 --train-n "$train_n" \
            --batch-size "$batch" --lr 0.1 --eval-n 0 --eval-steps 0 --out "$work/student"; then
            s="$(epoch_seconds "$log")"
            [[ $pass == first ]] && first="$s"
        else
            s=""
        fi
        if [[ $pass == second ]]; then
            if [[ -n "$first" && -n "$s" ]]; then
                awk -v f="$first" -v s="$s" -v n="$train_n" -v m="$epoch_model" -v b="$batch" 'BEGIN {
                    printf "| RSLAD epoch, %d images (first run; second run, tuning cached) | %s | %d | %.0f | %.0f | %.*f | — | — |\n",
                        n, m, b, f * 1000, s * 1000, (n / s < 10 ? 2 : 0), n / s }' >>"$rows"
            else
                failed_row "RSLAD epoch, $train_n images" "$epoch_model" "$log"
            fi
        fi
    done
else
    failed_row "RSLAD epoch (teacher)" "$teacher_model" "$logs/teacher.log"
fi

log="$logs/autoattack.log"
say "AutoAttack, one $aa_images-image block of the shipped teacher"
if limited 100 "$log" "${rt[@]}" bench --only autoattack --autoattack-images "$aa_images" \
    --seconds 0; then
    bench_rows "$log"
else
    failed_row "AutoAttack $aa_images img" teacher "$log"
fi
note_backend "$log"

# --- targets ----------------------------------------------------------------------------
targets="$(awk -F'|' '
    function trim(s) { gsub(/^ +| +$/, "", s); return s }
    trim($3) == "resnet18" && trim($2) == "forward" { fwd = trim($6) }
    trim($3) == "resnet18" && trim($2) == "PGD step" { pgd = trim($6) }
    trim($3) == "resnet18" && trim($2) == "RSLAD step" { rslad = trim($6) }
    END {
        if (fwd > 0 && pgd > 0)
            printf "- PGD step / forward pass (resnet18): %.1f× (target ≤ 3×): %s\n", pgd / fwd, (pgd / fwd <= 3 ? "met" : "not met")
        if (rslad > 0)
            printf "- RSLAD step (resnet18, WRN-34-10 teacher, batch 128): %.3f s (target ≤ 0.5 s): %s\n", rslad / 1000, (rslad <= 500 ? "met" : "not met")
    }' "$rows")"

gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
{
    echo "## rslad-tui on ${gpu:-an unnamed GPU} ($(date -u +%Y-%m-%d))"
    echo
    echo "\`--device $device\`: ${backend:-backend unknown (see the logs)}. Bench: \`--seconds $seconds\`;"
    echo "times in ms; \"first call\" includes compiling kernels and autotuning new shapes"
    echo "(a fresh tuning cache); the epoch row's first-call column is the first run, its"
    echo "ms column the second run, after every shape's tuning was cached on disk."
    echo
    echo "| workload | model | batch | first call ms | ms / iter | images / s | GFLOP/s | of matmul |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    cat "$rows"
    echo
    echo "${targets:-- targets: no resnet18 rows to judge}"
    echo
    echo "Total $((SECONDS - started)) s."
} >"$out"
cat "$out"
