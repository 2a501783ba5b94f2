"""`ui` serves this machine only unless told otherwise, and stops the server it started whatever stops it."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env, free_port, wait_for, wait_for_http
from tests.topology import descendants


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.split(":")
            if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def start_ui(tmp_path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "orchestrator.py"), "ui", "--port", str(port)],
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_ui_binds_localhost_by_default(tmp_path):
    port = free_port()
    process = start_ui(tmp_path, port)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process=process)
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and nothing else
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_to_ui_stops_the_server_it_started(tmp_path, sig):
    port = free_port()
    process = start_ui(tmp_path, port)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process=process)
        server = descendants(process.pid)
        assert server  # the MLflow server and its workers
        os.kill(process.pid, sig)  # to the command alone, as docker stop or systemd would send it
        code = process.wait(timeout=60)
        assert code == (0 if sig == signal.SIGINT else 128 + sig)
        wait_for(lambda: not _alive(server), timeout=30, what="the MLflow server to stop")
        assert listening_addresses(port) == set()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive
