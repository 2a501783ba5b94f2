"""The family registry: the one place that names what each family optimises.

A family `x` is `search_spaces/x.py` (suggest, PAPER_BEST) plus
`trainables/x.py` (fit) plus one entry below. Modules are imported on first
use, so listing families costs nothing and a worker imports only its own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Callable


@dataclass(frozen=True)
class Family:
    name: str
    metric: str  # what the search optimises (validation or CV, never test)
    mode: str  # "max" or "min"
    per_epoch: bool  # reports once per epoch (ASHA can prune it) or once per trial
    description: str

    @property
    def space(self) -> ModuleType:
        return importlib.import_module(f"search_spaces.{self.name}")

    @property
    def suggest(self) -> Callable:
        return self.space.suggest

    @property
    def default_config(self) -> dict:
        """The paper's best configuration: `--samples 1` runs it, a search starts from it."""
        return dict(self.space.PAPER_BEST)

    @property
    def trainable(self) -> ModuleType:
        return importlib.import_module(f"trainables.{self.name}")


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("tinynet", metric="val_accuracy", mode="max", per_epoch=True,
               description="small CNN from scratch (paper section TinyNet)"),
        Family("bovw", metric="cv_accuracy", mode="max", per_epoch=False,
               description="bag of visual words: descriptors, codebook/GMM, encoding, pyramid, SVM/kNN/logistic"),
        Family("inception", metric="val_accuracy", mode="max", per_epoch=True,
               description="InceptionV3 fine-tuned: head only, last N blocks, or cut after a block (paper section InceptionV3)"),
        Family("mlp", metric="val_accuracy", mode="max", per_epoch=True,
               description="MLPs: end to end, deep features + SVM, patch aggregation, patch BoVW"),
    )
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; choose one of {', '.join(FAMILIES)}") from None
