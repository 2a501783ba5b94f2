"""`serve` and `ui` refuse a port they cannot listen on: one line, exit 2, nothing started."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli

COMMANDS = {"serve": ["serve", "--model", "no/such/model"], "ui": ["ui"]}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    "port, message",
    [("70000", "--port 70000 is out of range"), ("0", "--port 0 is out of range"), ("busy", "cannot listen on")],
)
def test_a_port_that_cannot_be_listened_on_is_a_usage_error(tmp_path, busy_port, command, port, message):
    port = str(busy_port) if port == "busy" else port
    result = run_cli(*COMMANDS[command], "--port", port, cwd=tmp_path, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert lines[0].startswith("scenesweep: error: ") and message in lines[0], lines[0]
    assert not list(tmp_path.iterdir()), "nothing is created"
