#!/usr/bin/env bash
# Prepare .bench/ for running benchmarks/gpu_check.sh on a lent GPU machine (run it HERE, not there).
#
# That machine has Python 3.12 with torch, torchvision and OpenCV but no ray, optuna or mlflow,
# cannot reach a package index, and takes at most 64 MiB of working tree. So: install ray[tune],
# optuna and mlflow (at this project's versions) for CPython 3.12 x86-64 into a folder, drop
# every distribution the GPU image already has (benchmarks/device_image_packages.txt) and the
# parts scenesweep never loads (Ray's Java jars, RLlib, Serve, LLM and dashboard web UI;
# MLflow's web UI), and pack it as .bench/site.tar.xz beside a copy of the data.
#
#   bash benchmarks/device_bundle.sh            # then, with the device tool:
#   run(command="bash benchmarks/gpu_check.sh", carry=[".bench"], timeout_s=540)
#
# WHEELS=DIR installs from already downloaded wheels (no index); DEVICE_PYTHON=3.12 and
# BUNDLE=.bench by default (another DEVICE_PYTHON and BUNDLE build a copy to try out here).
set -euo pipefail
cd "$(dirname "$0")/.."
python_version=${DEVICE_PYTHON:-3.12}
bundle=${BUNDLE:-.bench}
data=${BENCH_DATA:-../shared/data/mit_split_64}
[ -d "$data/train" ] || { echo "device_bundle: error: no MIT_split data at $data; set BENCH_DATA" >&2; exit 2; }

site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
source=()
if [ -n "${WHEELS:-}" ]; then source=(--no-index --find-links "$WHEELS"); fi
python3 -m pip install -q --target "$site" --no-compile --only-binary=:all: --ignore-requires-python "${source[@]}" \
    --python-version "$python_version" --implementation cp --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_28_x86_64 "ray[tune]==2.60.0" "optuna==5.0.0" "mlflow==3.17.2"

python3 - "$site" benchmarks/device_image_packages.txt <<'EOF'
"""Remove the distributions the GPU image already has, then the unused parts of ray and mlflow."""
import csv, re, shutil, sys
from pathlib import Path

site, listing = Path(sys.argv[1]), Path(sys.argv[2])
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
lines = [line.strip() for line in listing.read_text().splitlines()]
present = {norm(line) for line in lines if line and not line.startswith("#")}
for info in site.glob("*.dist-info"):
    name = norm(info.name.removesuffix(".dist-info").rsplit("-", 1)[0])
    if name not in present:
        continue
    with open(info / "RECORD") as handle:
        for row in csv.reader(handle):
            path = site / row[0]
            if path.is_file():
                path.unlink()
    shutil.rmtree(info, ignore_errors=True)
unused = ["ray/jars", "ray/rllib", "ray/serve", "ray/llm", "ray/dashboard/client",  # ray.air imports ray.data
          "ray/tests", "mlflow/server/js", "bin"]
for part in unused:
    shutil.rmtree(site / part, ignore_errors=True)
for folder in sorted(site.rglob("*"), reverse=True):  # folders emptied above
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
EOF
# Ray's three native parts carry ~30 MB of symbols nothing here reads.
if command -v strip >/dev/null; then
    strip --strip-unneeded "$site/ray/_raylet.so" "$site/ray/core/src/ray/gcs/gcs_server" \
        "$site/ray/core/src/ray/raylet/raylet"
fi

rm -rf "$bundle" && mkdir -p "$bundle"
cp -r "$data" "$bundle/mit_split_64"
XZ_OPT=-6 tar -cJf "$bundle/site.tar.xz" -C "$site" .
size=$(du -sm --apparent-size "$bundle" | cut -f1)
echo "device_bundle: $bundle is ${size} MiB (site.tar.xz $(du -sm --apparent-size "$bundle/site.tar.xz" | cut -f1) MiB)"
if [ "$size" -gt 56 ]; then
    echo "device_bundle: error: $bundle is over 56 MiB; the device tool carries at most 64 MiB with the tree" >&2
    exit 1
fi
