#!/usr/bin/env bash
#SBATCH --job-name=rslad-eval
#SBATCH --output=rslad-eval-%A_%a.log
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
# Add `#SBATCH --gres=gpu:1` (or sbatch --gres=gpu:1) and --device cuda|vulkan|wgpu to give each
# shard a GPU of its own.
#
# A journaled AutoAttack evaluation (`rslad-tui eval --resume J`) run as N shards (docs/scale.md).
# Every shard and the merge take the same eval options, after `--`; this script adds
# `--shard I/N` or `--merge`. Shard I journals its blocks in J.part-I-of-N; the merge checks that
# every part is there, finished and of this evaluation, writes J and prints the report.
#
# As a Slurm job array (the shard is the array task; N is the array's size):
#
#   EVAL="--checkpoint runs/teacher --attacks autoattack --block 200 --resume runs/aa/teacher.ron"
#   jid=$(sbatch --parsable --array=0-$((N-1)) scripts/slurm-eval.sh -- $EVAL)
#   sbatch --dependency=afterok:$jid scripts/slurm-eval.sh --merge -- $EVAL
#
# On one machine: N background processes, then the merge, one log per shard next to J:
#
#   scripts/slurm-eval.sh --local 4 -- $EVAL
#   scripts/slurm-eval.sh --local 4 --devices "cuda:0 cuda:1 cpu cpu" -- $EVAL
#
# or with GNU parallel:
#
#   parallel -j 4 scripts/slurm-eval.sh --shard {}/4 -- $EVAL ::: 0 1 2 3 &&
#       scripts/slurm-eval.sh --merge -- $EVAL
#
# Options (before `--`):
#   --binary PATH     the rslad-tui binary (default: $RSLAD_TUI, else rslad-tui on PATH)
#   --device D        this shard's device: cpu, wgpu, vulkan or cuda (default: $RSLAD_DEVICE, else
#                     the program's default, the CPU); cuda:K also sets CUDA_VISIBLE_DEVICES=K
#   --shard I/N       run shard I of N (default under Slurm: the array task and the array's size)
#   --merge           merge the finished parts and print the report
#   --local N         run shards 0..N-1 here as background processes, then merge
#   --devices "D …"   with --local: shard I runs on the (I mod count)-th device of the list
set -euo pipefail

usage() {
    sed -n '/^# A journaled/,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

binary=${RSLAD_TUI:-rslad-tui}
device=${RSLAD_DEVICE:-}
shard=""
merge=0
local_shards=0
devices=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        --shard) shard=$2; shift 2 ;;
        --merge) merge=1; shift ;;
        --local) local_shards=$2; shift 2 ;;
        --devices) devices=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) echo "slurm-eval.sh: unknown option $1 (the eval options go after --)" >&2; exit 2 ;;
    esac
done
eval_args=("$@")
if [[ ${#eval_args[@]} -eq 0 ]]; then
    echo "slurm-eval.sh: give the eval options after --, --resume among them" >&2
    exit 2
fi

# The journal, for the logs of --local.
journal=""
for ((i = 0; i < ${#eval_args[@]}; i++)); do
    if [[ ${eval_args[i]} == --resume ]]; then journal=${eval_args[i + 1]:-}; fi
done
if [[ -z $journal ]]; then
    echo "slurm-eval.sh: the eval options need --resume FILE (the journal the shards share)" >&2
    exit 2
fi

# Runs rslad-tui on device $1 (cpu, cuda:K, …) with the remaining arguments.
run_on() {
    local on=$1
    shift
    local global=()
    if [[ -n $on ]]; then
        if [[ $on == *:* ]]; then
            # One process per GPU: the CUDA driver shows this process only GPU K.
            export CUDA_VISIBLE_DEVICES=${on#*:}
            on=${on%%:*}
        fi
        global=(--device "$on")
    fi
    "$binary" "${global[@]}" eval "$@"
}

if [[ $local_shards -gt 0 ]]; then
    read -r -a device_list <<< "${devices:-$device}"
    pids=()
    for ((i = 0; i < local_shards; i++)); do
        on=""
        if [[ ${#device_list[@]} -gt 0 ]]; then on=${device_list[i % ${#device_list[@]}]}; fi
        log="$journal.log-$i-of-$local_shards"
        (run_on "$on" "${eval_args[@]}" --shard "$i/$local_shards") > "$log" 2>&1 &
        pids+=($!)
        echo "shard $i/$local_shards on ${on:-the default device}: log in $log" >&2
    done
    failed=0
    for ((i = 0; i < local_shards; i++)); do
        if ! wait "${pids[i]}"; then
            echo "shard $i/$local_shards failed: see $journal.log-$i-of-$local_shards" >&2
            failed=1
        fi
    done
    if [[ $failed -ne 0 ]]; then
        echo "not merging; run the same command again to finish the failed shards" >&2
        exit 1
    fi
    run_on "$device" "${eval_args[@]}" --merge
    exit
fi

if [[ $merge -eq 1 ]]; then
    run_on "$device" "${eval_args[@]}" --merge
    exit
fi

if [[ -z $shard ]]; then
    if [[ -z ${SLURM_ARRAY_TASK_ID:-} || -z ${SLURM_ARRAY_TASK_COUNT:-} ]]; then
        echo "slurm-eval.sh: not in a Slurm job array: give --shard I/N, --merge or --local N" >&2
        exit 2
    fi
    # Arrays start at 0 here (sbatch --array=0-$((N-1))), as shards count.
    shard="$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT"
fi
run_on "$device" "${eval_args[@]}" --shard "$shard"
