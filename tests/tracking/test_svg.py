"""The trial's SVG figures: well-formed documents that hold what the PNGs used to show."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tracking.svg import blues, confusion_matrix_svg, learning_curves_svg, nice_ticks

NS = "{http://www.w3.org/2000/svg}"
NAMES = ["coast", "forest", "in<side>&city"]  # markup in a class name must be escaped


def texts(path) -> list[str]:
    return [element.text or "" for element in ET.parse(path).getroot().iter(f"{NS}text")]


def test_confusion_matrix_shows_every_count_and_name_and_shades_by_row_share(tmp_path):
    matrix = np.array([[8, 1, 1], [0, 5, 5], [2, 0, 0]])
    path = confusion_matrix_svg(matrix, NAMES, tmp_path / "cm.svg")
    shown = texts(path)
    for count in matrix.flat:
        assert str(count) in shown
    assert shown.count("in<side>&city") == 2  # row and column label, escaped in the file, intact when parsed
    assert "Test confusion matrix (accuracy 0.591)" in shown
    fills = [r.get("fill") for r in ET.parse(path).getroot().iter(f"{NS}rect")]
    assert blues(0.8) in fills and blues(0.5) in fills and blues(0.0) in fills
    assert blues(1.0) != blues(0.0)


def test_learning_curves_draw_one_line_per_metric_in_its_panel(tmp_path):
    history = {
        "train_loss": [(1, 2.0), (2, 1.2), (3, 0.9)],
        "val_loss": [(1, 2.1), (2, 1.5), (3, 1.4)],
        "val_accuracy": [(1, 0.3), (2, 0.5), (3, 0.6), (4, 0.62)],  # a second stage's value after the epochs
        "train_accuracy": [],
    }
    path = learning_curves_svg(history, tmp_path / "lc.svg")
    root = ET.parse(path).getroot()
    lines = list(root.iter(f"{NS}polyline"))
    assert [len(line.get("points").split()) for line in lines] == [
        3,
        3,
        4,
    ]  # sorted: train_loss, val_accuracy, val_loss
    assert {"train_loss", "val_loss", "val_accuracy", "epoch", "loss", "accuracy"} <= set(texts(path))
    assert "train_accuracy" not in texts(path)  # no points, no legend entry
    width = float(root.get("width"))
    for line in lines:  # every point inside the figure
        for point in line.get("points").split():
            x, y = map(float, point.split(","))
            assert 0 <= x <= width and 0 <= y <= float(root.get("height"))


@pytest.mark.parametrize(
    ("low", "high", "integer", "expected"),
    [(0.0, 1.0, False, [0, 0.2, 0.4, 0.6, 0.8, 1.0]), (1, 20, True, [0, 5, 10, 15, 20]), (0.31, 0.33, False, None)],
)
def test_nice_ticks_cover_the_range_with_round_steps(low, high, integer, expected):
    ticks = nice_ticks(low, high, count=6, integer=integer)
    assert ticks[0] <= low and ticks[-1] >= high
    if expected is not None:
        assert ticks == pytest.approx(expected)
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1
