# The one scenesweep image: the orchestrator, Ray head and GPU workers, and the MLflow server.
# torch from PyPI is the CUDA build (its CUDA libraries ship in the wheels); GPU containers need
# only the host's NVIDIA driver and the NVIDIA container runtime.
FROM python:3.11.13-slim-bookworm

# RAY_AUTH_MODE=token: every Ray node and driver from this image requires Ray's token (compose mounts
# it and sets RAY_AUTH_TOKEN_PATH); without it anyone who reaches a Ray port can run code.
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAY_AUTH_MODE=token \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false

# libgomp: torch/OpenCV threads; procps: `ray stop` finds its processes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 procps \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies first, so code changes rebuild in seconds.
COPY pyproject.toml README.md ./
RUN mkdir -p search_spaces trainables tracking serving sweep \
    && touch search_spaces/__init__.py trainables/__init__.py tracking/__init__.py serving/__init__.py \
       sweep/__init__.py orchestrator.py \
    && pip install ".[server]" "ray[default,client]>=2.60,<2.61" \
    && pip uninstall -y scenesweep
COPY orchestrator.py ./
COPY search_spaces search_spaces
COPY trainables trainables
COPY tracking tracking
COPY serving serving
COPY sweep sweep
COPY docker docker
# /home/scenesweep/auth holds the MLflow server's basic_auth.db: a fresh named volume mounted there
# takes this directory's owner and mode, so the server (uid 1000) can write it and nobody else reads it.
RUN pip install --no-deps . \
    && useradd --create-home --uid 1000 scenesweep \
    && install -d -o scenesweep -g scenesweep -m 700 /home/scenesweep/auth \
    && mkdir -p /work/sweeps /data \
    && chown -R scenesweep /work

USER scenesweep
WORKDIR /work
CMD ["python", "/app/orchestrator.py", "--help"]
