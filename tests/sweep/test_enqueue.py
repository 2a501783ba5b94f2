"""--enqueue FILE.json: configurations Optuna can replay are read; others fail with one line that names the fix."""

import json

import pytest

from sweep.enqueue import read_enqueue
from sweep.errors import UsageError


def test_configurations_inside_the_searched_space_are_read(tmp_path):
    file = tmp_path / "mine.json"
    file.write_text(json.dumps([{"optimizer": "adam", "lr_finder": False, "lr": 0.002}, {"blocks": 3}]))
    assert read_enqueue(str(file), space="tinynet") == [
        {"optimizer": "adam", "lr_finder": False, "lr": 0.002},
        {"blocks": 3},
    ]


@pytest.mark.parametrize(
    "config, message",
    [
        ({"init": "zeros"}, r"init='zeros' is outside the searched space \(one of kaiming, .*--fix init=zeros"),
        ({"blocks": 9}, r"blocks=9 is outside the searched space \(\[2, 5\]\); to run it, pin it with --fix blocks=9"),
        ({"depth": 3}, "tinynet has no parameter 'depth'"),
    ],
)
def test_values_optuna_could_not_replay_are_refused_with_the_fix(tmp_path, config, message):
    file = tmp_path / "mine.json"
    file.write_text(json.dumps(config))
    with pytest.raises(UsageError, match=message):
        read_enqueue(str(file), space="tinynet")
