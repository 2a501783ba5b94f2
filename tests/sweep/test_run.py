"""What run_sweep stores about the sweep itself."""

import pytest

from sweep.run import stored_command


@pytest.mark.parametrize(
    ("argv", "stored"),
    [
        (["sweep", "--samples", "2"], "scenesweep sweep --samples 2"),
        (
            ["sweep", "--tracking-uri", "http://alice:s3cret@10.0.0.5:5000"],
            "scenesweep sweep --tracking-uri 'http://alice:***@10.0.0.5:5000'",
        ),
        (["sweep", "--tracking-uri=https://bob:pw@host/x"], "scenesweep sweep '--tracking-uri=https://bob:***@host/x'"),
        (
            ["sweep", "--study-storage", "postgresql://u:p%40ss@db:5432/optuna"],
            "scenesweep sweep --study-storage 'postgresql://u:***@db:5432/optuna'",
        ),
        (["sweep", "--tracking-uri", "http://alice@host"], "scenesweep sweep --tracking-uri http://alice@host"),
    ],
)
def test_the_stored_command_line_holds_no_password(argv, stored):
    assert stored_command(argv) == stored  # shell-quoted, so it still pastes into a terminal
    assert not any(secret in stored for secret in ("s3cret", ":pw@", "p%40ss"))
