"""`ui` serves this machine only unless told otherwise."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, cli_env, free_port, wait_for_http


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


def test_ui_binds_localhost_by_default(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "orchestrator.py"), "ui", "--port", str(port)],
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process=process)
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and nothing else
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
