"""Classify image files with a served (pyfunc) model: what `scenesweep predict` prints.

Files are read and decoded here, once; a file that cannot be read or decoded
is reported and skipped, and the others are still classified. The decoded
arrays go to the model in its `image` column (the pyfunc accepts arrays as well
as encoded bytes), in batches, so a folder of any size streams through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from serving.pyfunc_model import IMAGE_COLUMN
from trainables.core.images import IMAGE_SUFFIXES, ImageDecodeError, decode_image


@dataclass(frozen=True)
class Prediction:
    path: str
    ranked: list[tuple[str, float]]  # (class, probability), most likely first

    def line(self) -> str:
        return "  ".join([self.path, *(f"{name} {probability:.4f}" for name, probability in self.ranked)])

    def as_dict(self) -> dict:
        name, probability = self.ranked[0]
        return {
            "path": self.path,
            "class": name,
            "probability": probability,
            "top": [{"class": n, "probability": p} for n, p in self.ranked],
        }


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str

    def as_dict(self) -> dict:
        return {"path": self.path, "error": self.reason}


def image_files(paths: list[str]) -> Iterator[str | Failure]:
    """Each file as given, each folder's images (recursively, sorted); missing paths as Failures."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                yield Failure(raw, f"folder holds no images ({', '.join(IMAGE_SUFFIXES[:4])}, ...)")
            yield from (str(p) for p in found)
        elif path.is_file():
            yield raw
        else:
            yield Failure(raw, "no such file or folder")


def predict_files(model, paths: list[str], *, top: int = 1, batch_size: int = 32) -> Iterator[Prediction | Failure]:
    """Classify every image under `paths` with `model` (a pyfunc returning class-probability columns)."""
    batch: list[tuple[str, np.ndarray]] = []
    for item in image_files(paths):
        if isinstance(item, Failure):
            yield item
            continue
        try:
            batch.append((item, decode_image(Path(item).read_bytes())))
        except OSError as exc:
            yield Failure(item, f"cannot read: {exc.strerror or exc}")
        except ImageDecodeError as exc:
            yield Failure(item, str(exc))
        if len(batch) >= batch_size:
            yield from _predict_batch(model, batch, top)
            batch = []
    if batch:
        yield from _predict_batch(model, batch, top)


def _predict_batch(model, batch: list[tuple[str, np.ndarray]], top: int) -> Iterator[Prediction]:
    frame = pd.DataFrame({IMAGE_COLUMN: [image for _, image in batch]})
    probabilities = model.predict(frame)
    names = [str(c) for c in probabilities.columns]
    values = probabilities.to_numpy(dtype=np.float64)
    for (path, _), row in zip(batch, values):
        order = np.argsort(-row, kind="stable")[:top]
        yield Prediction(path, [(names[i], float(row[i])) for i in order])


def print_predictions(model, paths: list[str], *, top: int, as_json: bool, model_uri: str) -> int:
    """What `scenesweep predict` prints: a line per image as it is classified (or one JSON document at
    the end), unreadable files on stderr; returns how many files failed."""
    import json
    import sys

    predictions, failures = [], []
    for item in predict_files(model, paths, top=top):
        if isinstance(item, Failure):
            failures.append(item)
            print(f"scenesweep: error: {item.path}: {item.reason}; skipped", file=sys.stderr)
        elif as_json:
            predictions.append(item)
        else:
            print(item.line(), flush=True)
    if as_json:
        document = {
            "model": model_uri,
            "predictions": [p.as_dict() for p in predictions],
            "errors": [f.as_dict() for f in failures],
        }
        print(json.dumps(document, indent=2))
    return len(failures)
