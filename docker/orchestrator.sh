#!/bin/sh
# `docker compose run --rm orchestrator sweep ...`: join the cluster as a node with no CPUs or GPUs
# (a Ray driver must run on a node of its cluster; no trial is placed here), then become the CLI,
# so Ctrl-C (forwarded by the container's init) reaches it. The node leaves with the container.
set -eu
ray start --address="${RAY_ADDRESS:?set RAY_ADDRESS to the head, e.g. ray-head:6379}" \
    --num-cpus=0 --num-gpus=0 --disable-usage-stats >/tmp/ray-start.log 2>&1 \
    || { cat /tmp/ray-start.log >&2; exit 1; }
exec python /app/orchestrator.py "$@"
