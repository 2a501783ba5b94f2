"""Ray before anything else: a sweep connects to Ray, and checks that some node can run a trial,
before it writes a byte to MLflow or to its storage folder.

Connecting to a Ray address where no Ray answers makes `ray.init` retry for minutes, so a remote
address is first tried with a plain TCP connection, then probed in a child process that is killed
after `RAY_CHECK_SECONDS` (20 s): it joins the cluster the way the sweep will (same runtime environment),
runs one task that imports the project, and reports the nodes' resources.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from sweep.environment import forwarded_environment
from sweep.spec import SweepSpec, UsageError
from tracking.uris import masked

# Joining takes a few seconds (Python, Ray, the project uploaded to the cluster); a box under heavy
# load may need more: SCENESWEEP_RAY_CHECK_SECONDS.
RAY_CHECK_SECONDS = float(os.environ.get("SCENESWEEP_RAY_CHECK_SECONDS", "20"))
_AUTH_REFUSED = "InvalidAuthToken"  # what Ray's GCS client logs for a missing or wrong token
PROJECT_PACKAGES = ("search_spaces", "trainables", "tracking", "serving")
_ROOT = Path(__file__).resolve().parents[1]


def connect_ray(spec: SweepSpec, *, verbose: bool = True) -> None:
    """Join the cluster at `spec.address` (checked first), or start the embedded Ray; then check that
    a trial's resource request fits on some node. UsageError (exit 2) when either fails. The workers'
    own output reaches this terminal only when `verbose` (a trial's failure reaches it through its run
    and the console either way)."""
    import logging

    embedded = prepare_embedded_ray(spec)

    import optuna
    import ray

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created in memory ..."
    if not ray.is_initialized():
        if not embedded:
            assert spec.address  # not embedded: a cluster's address
            check_address(spec.address)
            ray.init(
                address=spec.address,
                logging_level=logging.WARNING,
                runtime_env=runtime_environment(),
                log_to_driver=verbose,
            )
        else:
            require_embedded_token(before_import=False)
            ray.init(
                include_dashboard=False, logging_level=logging.WARNING, configure_logging=True, log_to_driver=verbose
            )
    check_resources(spec, [node["Resources"] for node in ray.nodes() if node.get("Alive")])


def prepare_embedded_ray(spec: SweepSpec) -> bool:
    """Whether the sweep runs an embedded Ray; if so, and Ray is not imported yet, its token mode is
    set now (run_sweep calls this before anything imports Ray: Ray reads its auth mode at import)."""
    embedded = not spec.address or spec.address == "local"  # "local": Ray starts one here, as embedded
    if embedded and "ray" not in sys.modules:
        require_embedded_token(before_import=True)
    return embedded


def gpus_per_trial(spec: SweepSpec) -> float:
    """--gpus-per-trial, else 1 where the cluster has GPUs and 0 where it has none."""
    import ray

    if spec.gpus_per_trial is not None:
        return spec.gpus_per_trial
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def require_embedded_token(*, before_import: bool) -> None:
    """The embedded Ray refuses every client without its token.

    Its GCS listens on all interfaces whatever address it is given (../shared/NOTES.md), so the
    token is its only protection: a fresh one per sweep, in this process's environment (where the
    local nodes and workers Ray starts read it), never on disk. Ray reads RAY_AUTH_MODE once, when
    first imported: `before_import`, it is set to token mode here; once Ray is loaded (a process that
    imported it already) it stays unset, and a new local `ray.init` turns token mode on by itself,
    saying so in one warning line. A user's explicit RAY_AUTH_MODE, or a token of their own
    (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH), is theirs to keep.
    """
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return
    if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    if before_import:
        os.environ["RAY_AUTH_MODE"] = "token"


def runtime_environment() -> dict:
    """What a remote cluster's workers get: the project's packages and the forwarded environment."""
    modules = [__import__(name) for name in PROJECT_PACKAGES]
    return {"py_modules": modules, "env_vars": forwarded_environment()}


def check_address(address: str, *, timeout: float = RAY_CHECK_SECONDS) -> None:
    """UsageError unless a Ray cluster at `address` accepts this driver and runs its code, within `timeout`."""
    shown = masked(address)
    host_port = _host_port(address)
    if host_port is not None:
        try:
            with socket.create_connection(host_port, timeout=min(timeout, 5.0)):
                pass
        except OSError as exc:
            raise UsageError(
                f"no Ray cluster answers at {shown} ({exc.strerror or type(exc).__name__}); "
                f"start one there with `ray start --head --port={host_port[1]}`, or drop --address "
                "(and unset RAY_ADDRESS) to run an embedded Ray"
            ) from None
    process = subprocess.Popen(
        [sys.executable, "-m", "sweep.preflight", address],
        cwd=_ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so the probe and anything Ray started for it can be stopped together
    )
    output, verdict = _watch_probe(process, timeout)
    if verdict == "refused":
        raise UsageError(
            f"the Ray cluster at {shown} requires its authentication token and refused this driver's; "
            "set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH to a file holding the cluster's token "
            "(or RAY_AUTH_TOKEN to the token itself)"
        )
    if verdict == "timeout":
        raise UsageError(
            f"the Ray cluster at {shown} did not accept this driver within {timeout:.0f} s; check that "
            "`ray status` works there and that it runs this Python and Ray version, or drop --address "
            "(and unset RAY_ADDRESS) to run an embedded Ray"
        )
    if process.returncode != 0:
        lines = [line for line in output.strip().splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit code {process.returncode}"
        raise UsageError(
            f"cannot run this sweep's code on the Ray cluster at {shown} ({reason[:300]}); "
            "start the cluster with `ray start --head` from this project's environment, or drop --address "
            "(and unset RAY_ADDRESS) to run an embedded Ray"
        )


def _watch_probe(process: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """The probe's output and how it ended: "exited", "timeout", or "refused" as soon as the cluster
    rejects its token (Ray itself would retry that for 20 s before saying only ConnectionError)."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    verdict = "exited"
    while process.poll() is None:
        if any(_AUTH_REFUSED in line for line in lines):
            verdict = "refused"
            break
        if time.monotonic() > deadline:
            verdict = "timeout"
            break
        time.sleep(0.1)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    reader.join(timeout=5)
    output = "".join(lines)
    if verdict == "exited" and process.returncode != 0 and _AUTH_REFUSED in output:
        verdict = "refused"
    return output, verdict


def check_resources(spec: SweepSpec, nodes: list[dict]) -> None:
    """UsageError when no node could ever hold one trial (Tune would leave it PENDING forever)."""
    cpus, gpus = spec.cpus_per_trial, spec.gpus_per_trial or 0.0
    where = f"the Ray cluster at {masked(spec.address)}" if spec.address else "the embedded Ray"
    if not any(node.get("CPU", 0) >= cpus and node.get("GPU", 0) >= gpus for node in nodes):
        largest = ", ".join(sorted({f"{node.get('CPU', 0):g} CPUs and {node.get('GPU', 0):g} GPUs" for node in nodes}))
        fix = (
            "lower --gpus-per-trial (0 runs on CPUs)"
            if gpus and all(n.get("GPU", 0) < gpus for n in nodes)
            else ("lower --cpus-per-trial")
        )
        raise UsageError(
            f"no node of {where} can run a trial asking for {cpus:g} CPUs and {gpus:g} GPUs "
            f"(its nodes have {largest or 'nothing'}); {fix}, or add a node that has them"
        )


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of an explicit address; None for `auto`/`local` (Ray finds those itself)."""
    rest = address.split("://", 1)[-1].rsplit("@", 1)[-1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _probe(address: str) -> None:
    """The child process of check_address: join, run one task that imports the project, print the nodes."""
    import logging

    import ray

    @ray.remote(num_cpus=0)
    def imports_project() -> bool:
        for name in PROJECT_PACKAGES:
            __import__(name)
        return True

    ray.init(address=address, logging_level=logging.ERROR, runtime_env=runtime_environment())
    ray.get(imports_project.remote())
    print(json.dumps([node["Resources"] for node in ray.nodes() if node.get("Alive")]))


if __name__ == "__main__":
    _probe(sys.argv[1])
