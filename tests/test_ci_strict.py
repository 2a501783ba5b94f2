"""Under CI=true a test whose dependency is missing fails the run; elsewhere it skips and says why."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, cli_env


@pytest.mark.parametrize("ci, outcome", [("true", "1 error"), ("", "1 skipped")])
def test_missing_real_data_fails_in_ci_and_skips_elsewhere(tmp_path, ci, outcome):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/trainables/test_real_data.py"],
        cwd=ROOT,
        env=cli_env({"CI": ci, "MIT_SPLIT_64": str(tmp_path / "absent")}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert outcome in result.stdout, result.stdout[-2000:]
    assert (result.returncode != 0) == (ci == "true")
    if ci:
        assert "CI=true" in result.stdout
