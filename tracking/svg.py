"""The figures every trial draws, written as SVG text: no rendering on the trial's path.

A trial's confusion matrix and learning curves cost ~180 ms a trial through matplotlib (layout,
rasterising, PNG encoding) and ~2 ms as SVG, which the browser draws when the MLflow UI shows the
artifact (it previews .svg like .png). Vector output also stays sharp at any zoom and is a few KB.
The once-per-sweep figures stay matplotlib PNGs (tracking/artifacts.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
CHAR_WIDTH = 0.6  # of the font size: a sans-serif character's mean advance, for layout only
# matplotlib's tab10, the colours its line plots cycle through
LINE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
# ColorBrewer's Blues (matplotlib's "Blues"), light to dark
BLUES = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b")


class Canvas:
    """An SVG document built as a list of elements; `save` writes it."""

    def __init__(self, width: float, height: float):
        self.width, self.height = width, height
        self.parts: list[str] = [f'<rect width="{width:g}" height="{height:g}" fill="white"/>']

    def rect(self, x: float, y: float, w: float, h: float, *, fill: str, stroke: str = "none") -> None:
        self.parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}" stroke="{stroke}"/>'
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, *, stroke: str = "black", width: float = 1) -> None:
        self.parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" stroke-width="{width:g}"/>'
        )

    def polyline(self, points: list[tuple[float, float]], *, stroke: str, markers: bool = True) -> None:
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.parts.append(f'<polyline points="{coords}" fill="none" stroke="{stroke}" stroke-width="1.5"/>')
        if markers:
            self.parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{stroke}"/>' for x, y in points)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float = 12,
        anchor: str = "middle",
        colour: str = "black",
        rotate: float = 0,
        baseline: str = "central",
        bold: bool = False,
    ) -> None:
        turn = f' transform="rotate({rotate:g} {x:.1f} {y:.1f})"' if rotate else ""
        weight = ' font-weight="bold"' if bold else ""
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" text-anchor="{anchor}" '
            f'dominant-baseline="{baseline}" fill="{colour}"{weight}{turn}>{escape(str(text))}</text>'
        )

    def svg(self) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:g}" height="{self.height:g}" '
            f'viewBox="0 0 {self.width:g} {self.height:g}" font-family="{FONT}">\n'
            + "\n".join(self.parts)
            + "\n</svg>\n"
        )

    def save(self, path: Path) -> Path:
        path.write_text(self.svg(), encoding="utf-8")
        return path


def text_width(text: str, size: float) -> float:
    return CHAR_WIDTH * size * len(str(text))


def blues(share: float) -> str:
    """The colour of a share in [0, 1] on the Blues scale (linear between its nine stops)."""
    position = min(max(float(share), 0.0), 1.0) * (len(BLUES) - 1)
    low = int(math.floor(position))
    high = min(low + 1, len(BLUES) - 1)
    weight = position - low
    a, b = _rgb(BLUES[low]), _rgb(BLUES[high])
    return "#" + "".join(f"{round(x + (y - x) * weight):02x}" for x, y in zip(a, b))


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def nice_ticks(low: float, high: float, *, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (1 if integer or low == 0 else abs(low) * 0.1)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if integer:
        step = max(1, round(step))
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def tick_label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def confusion_matrix_svg(matrix: np.ndarray, class_names, path: Path, *, title: str = "Test confusion matrix") -> Path:
    """Rows are the true classes, columns the predicted ones; each cell holds its count and is shaded
    by the share of its row (a class's recall on the diagonal)."""
    matrix = np.asarray(matrix)
    names = [str(name) for name in class_names]
    cell = 44.0
    label = max((text_width(name, 12) for name in names), default=10)
    left = label + 44
    top = 44.0
    bottom = label * 0.71 + 48  # names rotated 45 degrees below the matrix
    size = cell * len(names)
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    heading = f"{title} (accuracy {accuracy:.3f})"
    canvas = Canvas(max(left + size + 16, text_width(heading, 14) + 24), top + size + bottom)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    for (row, col), count in np.ndenumerate(matrix):
        share = float(shares[row, col])
        x, y = left + col * cell, top + row * cell
        canvas.rect(x, y, cell, cell, fill=blues(share))
        canvas.text(x + cell / 2, y + cell / 2, str(count), size=11, colour="white" if share > 0.5 else "black")
    canvas.rect(left, top, size, size, fill="none", stroke="#444")
    for index, name in enumerate(names):
        middle = index * cell + cell / 2
        canvas.text(left - 6, top + middle, name, anchor="end")
        x, y = left + middle, top + size + 8
        canvas.text(x, y, name, anchor="end", rotate=-45, baseline="hanging")
    canvas.text(left + size / 2, top + size + bottom - 12, "predicted", size=13)
    canvas.text(14, top + size / 2, "true", size=13, rotate=-90)
    canvas.text(canvas.width / 2, top / 2, heading, size=14)
    return canvas.save(path)


def learning_curves_svg(history: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """history: metric name -> [(epoch, value)]; losses on the left, accuracies on the right."""
    panel_w, panel_h = 440.0, 300.0
    margin_left, margin_top, margin_bottom, gap = 58.0, 16.0, 46.0, 40.0
    canvas = Canvas(2 * (margin_left + panel_w) + gap, margin_top + panel_h + margin_bottom)
    names = sorted(name for name, points in history.items() if points)
    colours = {name: LINE_COLOURS[index % len(LINE_COLOURS)] for index, name in enumerate(names)}
    for panel, (kind, corner) in enumerate((("loss", "upper right"), ("accuracy", "lower right"))):
        shown = [name for name in names if name.endswith("loss") == (kind == "loss")]
        x0 = panel * (margin_left + panel_w + gap) + margin_left
        _panel(canvas, {name: history[name] for name in shown}, colours, x0, margin_top, panel_w, panel_h, kind, corner)
    return canvas.save(path)


def _panel(canvas: Canvas, series: dict, colours: dict, x0: float, y0: float, w: float, h: float, label: str, corner):
    points = [point for values in series.values() for point in values]
    epochs = [float(epoch) for epoch, _ in points] or [1.0]
    values = [float(value) for _, value in points if math.isfinite(float(value))] or [0.0, 1.0]
    x_ticks = nice_ticks(min(epochs), max(epochs), count=6, integer=True)
    y_ticks = nice_ticks(min(values), max(values), count=6)

    def place(epoch: float, value: float) -> tuple[float, float]:
        x = x0 + (epoch - x_ticks[0]) / ((x_ticks[-1] - x_ticks[0]) or 1) * w
        clipped = min(max(value, y_ticks[0]), y_ticks[-1]) if math.isfinite(value) else y_ticks[0]
        y = y0 + h - (clipped - y_ticks[0]) / ((y_ticks[-1] - y_ticks[0]) or 1) * h
        return x, y

    for tick in x_ticks:
        x, _ = place(tick, y_ticks[0])
        canvas.line(x, y0, x, y0 + h, stroke="#e5e5e5")
        canvas.text(x, y0 + h + 12, tick_label(tick), size=11)
    for tick in y_ticks:
        _, y = place(x_ticks[0], tick)
        canvas.line(x0, y, x0 + w, y, stroke="#e5e5e5")
        canvas.text(x0 - 6, y, tick_label(tick), size=11, anchor="end")
    canvas.rect(x0, y0, w, h, fill="none", stroke="#444")
    canvas.text(x0 + w / 2, y0 + h + 34, "epoch", size=13)
    canvas.text(x0 - 46, y0 + h / 2, label, size=13, rotate=-90)
    for name, values in series.items():
        canvas.polyline([place(float(e), float(v)) for e, v in values], stroke=colours[name])
    if series:
        _legend(canvas, list(series), colours, x0, y0, w, h, corner)


def _legend(canvas: Canvas, names: list[str], colours: dict, x0: float, y0: float, w: float, h: float, corner: str):
    row, pad = 18.0, 8.0
    width = max(text_width(name, 11) for name in names) + 3 * pad + 22
    height = row * len(names) + pad
    x = x0 + w - width - pad
    y = y0 + pad if corner == "upper right" else y0 + h - height - pad
    canvas.rect(x, y, width, height, fill="white", stroke="#ccc")
    for index, name in enumerate(names):
        middle = y + pad / 2 + row * index + row / 2
        canvas.line(x + pad, middle, x + pad + 22, middle, stroke=colours[name], width=2)
        canvas.text(x + 2 * pad + 22, middle, name, size=11, anchor="start")
