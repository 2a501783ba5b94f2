"""Artifacts a person looks at in the MLflow UI: figures, reports, tables.

Each function writes one file into a folder and returns its path; logging the
folder is the caller's business. These are the once-per-sweep figures: plain
`matplotlib.figure.Figure`s rendered by Agg (no pyplot: no global figure
registry, works on headless workers and in threads). The two figures every
trial draws are SVG text, written without rendering (tracking/svg.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def image_grid_png(
    images: list[np.ndarray], titles: list[str], path: Path, *, correct: list[bool] | None = None, title: str = ""
) -> Path:
    """RGB images in a near-square grid, each with a title (green when correct, red when not)."""
    columns = max(1, int(np.ceil(np.sqrt(len(images)))))
    rows = max(1, int(np.ceil(len(images) / columns)))
    from matplotlib.figure import Figure  # imported on first use: a trial's JSON needs no matplotlib

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


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    # zlib level 1: a fifth of the encoding time, files ~20% larger (flat-coloured plots compress well anyway)
    fig.savefig(path, dpi=110, pil_kwargs={"compress_level": 1})
    return path


def pareto_front_png(
    points: list[tuple[float, float]], front: list[tuple[float, float]], path: Path, *, x: str, y: str
) -> Path:
    """Every finished trial as (size, accuracy), the Pareto front joined up in red."""
    from matplotlib.figure import Figure

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
