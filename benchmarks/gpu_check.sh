#!/usr/bin/env bash
# The one prepared device check: benchmarks 1 (throughput), 3 (time to accuracy), 4 (GPU
# packing), 2 (orchestration overhead, 30 trials at GPU trial lengths: 20 epochs of a small
# TinyNet, about a second of training each) and 5 (scale: trivial trials through Ray Tune, Optuna
# and an MLflow server on PostgreSQL + S3; needs PostgreSQL's server binaries) in about 12 minutes
# on one GPU, JSON to $OUT when set (else benchmarks/results). Without a GPU (or with --small) it
# runs the same five at their --quick sizes, which is what the test suite does on CPU.
#
#   bash benchmarks/gpu_check.sh [--small]
#
# Data: $BENCH_DATA, else ../shared/data/mit_split_64, else .bench/mit_split_64 (a copy carried
# to the device machine). Python: $PYTHON, else .venv/bin/python, else python3. Packages missing
# there (the GPU image has torch but not ray/optuna/mlflow) are unpacked from .bench/site.tar.xz,
# built by benchmarks/device_bundle.sh. Each benchmark runs under its own time limit; one that
# fails or runs out of time is reported and the others still run.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

results=${OUT:-benchmarks/results}
mkdir -p "$results"
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
data=${BENCH_DATA:-}
for candidate in ../shared/data/mit_split_64 "${BUNDLE:-.bench}/mit_split_64"; do
    if [ -z "$data" ] && [ -d "$candidate/train" ]; then data=$candidate; fi
done
if [ -z "$data" ]; then
    echo "gpu_check: error: no MIT_split data; set BENCH_DATA or copy it to .bench/mit_split_64" >&2
    exit 2
fi

bundle=${BUNDLE:-.bench}
if ! "$python" -c "import ray, optuna, mlflow" 2>/dev/null; then
    if [ -f "$bundle/site.tar.xz" ]; then
        echo "gpu_check: unpacking ray/optuna/mlflow from $bundle/site.tar.xz"
        site=$(mktemp -d)
        tar -xJf "$bundle/site.tar.xz" -C "$site"
        export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
    else
        echo "gpu_check: warning: ray/optuna/mlflow missing and no $bundle/site.tar.xz" \
             "(build it with benchmarks/device_bundle.sh); benchmarks 3 and 4 will fail" >&2
    fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # Ray workers import trainables/ from here
export RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false PYTHONWARNINGS=ignore

gpus=$("$python" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
if [ "${1:-}" = "--small" ] || [ "$gpus" = "0" ]; then
    mode=small
    throughput=(--quick); tta=(--quick); packing=(--quick); overhead=(--quick); scale=(--quick --timeout 240)
    limits=(240 240 300 300 300)
else
    mode=gpu
    throughput=(--epochs 5)
    tta=(--samples 16 --epochs 15 --target 0.80 --gpus-per-trial 0.125 --cpus-per-trial 2)
    packing=(--levels 1 4 8 --trials 8 --epochs 5)
    overhead=(--trials 30 --epochs 20)
    scale=(--trials 300 --timeout 75 --cpus-per-trial 0.5)  # 16 cores: 32 trials at once
    limits=(100 150 190 150 120)
fi
echo "gpu_check: mode $mode, $gpus GPU(s), data $data, python $python, results in $results"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true

status=0
run() {  # NAME LIMIT ARGS...
    local name=$1 limit=$2; shift 2
    echo; echo "=== $name (limit ${limit}s)"
    local began=$(date +%s)
    timeout --kill-after=10 "$limit" "$python" -m "benchmarks.$name" --data "$data" --results "$results" "$@" \
        >"$results/$name.log" 2>&1
    local rc=$?
    tail -n 12 "$results/$name.log"
    echo "--- $name: exit $rc after $(( $(date +%s) - began ))s"
    if [ $rc -ne 0 ]; then status=1; fi
}
run throughput "${limits[0]}" "${throughput[@]}"
run time_to_accuracy "${limits[1]}" "${tta[@]}"
run packing "${limits[2]}" "${packing[@]}"
run overhead "${limits[3]}" "${overhead[@]}"
run scale "${limits[4]}" "${scale[@]}"
echo; echo "gpu_check: done in $(( $(date +%s) - started ))s (mode $mode), exit $status"
exit $status
