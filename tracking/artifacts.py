"""Artifacts a person looks at in the MLflow UI: figures, reports, tables.

Each function writes one file into a folder and returns its path; logging the
folder is the caller's business. Figures are plain `matplotlib.figure.Figure`s
rendered by Agg (no pyplot: no global figure registry, works on headless
workers and in threads). The two figures every trial draws get fixed margins:
`tight_layout` measures every text box and costs ~40% of a figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def confusion_matrix_png(matrix: np.ndarray, class_names, path: Path, *, title: str = "Test confusion matrix") -> Path:
    matrix = np.asarray(matrix)
    size = max(5.0, 0.7 * len(class_names) + 2)
    fig = Figure(figsize=(size, size * 0.9))
    ax = fig.subplots()
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(
            col,
            row,
            str(count),
            ha="center",
            va="center",
            color="white" if shares[row, col] > 0.5 else "black",
            fontsize=8,
        )
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"{title} (accuracy {accuracy:.3f})")
    # Room for the longest class name (tick labels are 10 pt, ~0.075 in a character; rotated 45 degrees
    # below the matrix), instead of tight_layout.
    label = 0.075 * max((len(str(name)) for name in class_names), default=1)
    width, height = size, size * 0.9
    fig.subplots_adjust(
        left=min(0.45, (label + 0.55) / width),
        bottom=min(0.45, (0.71 * label + 0.6) / height),
        right=1 - 0.2 / width,
        top=1 - 0.45 / height,
    )
    return _save(fig, path, tight=False)


def learning_curves_png(history: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """history: metric name -> [(epoch, value)]; losses on the left, accuracies on the right."""
    fig = Figure(figsize=(10, 4))
    loss_ax, acc_ax = fig.subplots(1, 2)
    for name, points in sorted(history.items()):
        if not points:
            continue
        epochs, values = zip(*points)
        ax = loss_ax if name.endswith("loss") else acc_ax
        ax.plot(epochs, values, marker="o", markersize=3, label=name)
    # Losses fall and accuracies rise from left to right, which leaves these corners free; "best" would
    # test every spot against every point (a third of the figure's time).
    for ax, label, corner in ((loss_ax, "loss", "upper right"), (acc_ax, "accuracy", "lower right")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(loc=corner)
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.13, top=0.97, wspace=0.22)
    return _save(fig, path, tight=False)


def image_grid_png(
    images: list[np.ndarray], titles: list[str], path: Path, *, correct: list[bool] | None = None, title: str = ""
) -> Path:
    """RGB images in a near-square grid, each with a title (green when correct, red when not)."""
    columns = max(1, int(np.ceil(np.sqrt(len(images)))))
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig = Figure(figsize=(2.2 * columns, 2.4 * rows + (0.4 if title else 0)))
    axes = fig.subplots(rows, columns, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(images):
            continue
        ax.imshow(images[index])
        colour = "black" if correct is None else ("tab:green" if correct[index] else "tab:red")
        ax.set_title(titles[index], fontsize=8, color=colour)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def write_json(data, path: Path) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    return path


def _save(fig: Figure, path: Path, *, tight: bool = True) -> Path:
    if tight:  # the once-per-sweep figures; per-trial ones set their margins themselves
        fig.tight_layout()
    # zlib level 1: a fifth of the encoding time, files ~20% larger (flat-coloured plots compress well anyway)
    fig.savefig(path, dpi=110, pil_kwargs={"compress_level": 1})
    return path


def pareto_front_png(
    points: list[tuple[float, float]], front: list[tuple[float, float]], path: Path, *, x: str, y: str
) -> Path:
    """Every finished trial as (size, accuracy), the Pareto front joined up in red."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    if points:
        xs, ys = zip(*points)
        ax.scatter(xs, ys, s=18, color="tab:gray", alpha=0.6, label="trial")
    if front:
        fx, fy = zip(*sorted(front))
        ax.step(fx, fy, where="post", color="tab:red", marker="o", label="Pareto front")
        ax.legend()
    if x == "params":
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{y} against {x}")
    ax.grid(alpha=0.3)
    return _save(fig, path)
