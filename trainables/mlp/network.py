"""The MLP itself: flattened pixels -> hidden layers -> softmax head, and its hidden activations."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from search_spaces.mlp import PAPER_BEST
from trainables.core.layers import ACTIVATIONS
from trainables.core.torch_loop import TorchClassifier

BUILDER = "trainables.mlp.network:build_model"
_FEATURE_BATCH = 1024


def build_model(config: dict, num_classes: int, *, pretrained: bool = False) -> MLP:
    """The MLP of `config` (its input_size is required); what it leaves out is the paper's (PAPER_BEST)."""
    size = int(config["input_size"])
    config = {**PAPER_BEST, **config}
    return MLP(
        in_features=3 * size * size,
        widths=hidden_widths(config),
        num_classes=num_classes,
        activation=config["activation"],
        batchnorm=bool(config["batchnorm"]),
        dropout=float(config["dropout"]),
    )


def hidden_widths(config: dict) -> list[int]:
    return [int(config.get(f"width_{i}", 256)) for i in range(int(config.get("layers", 1)))]


class MLP(nn.Module):
    def __init__(
        self,
        *,
        in_features: int,
        widths: list[int],
        num_classes: int,
        activation: str = "relu",
        batchnorm: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        layers, width_in = [], in_features
        for width in widths:
            layers.append(
                nn.Sequential(
                    nn.Linear(width_in, width),
                    *([nn.BatchNorm1d(width)] if batchnorm else []),
                    ACTIVATIONS[activation](),
                    nn.Dropout(dropout),
                )
            )
            width_in = width
        self.hidden = nn.ModuleList(layers)
        self.head = nn.Linear(width_in, num_classes)

    def forward(self, x):
        return self.head(self.features(x, len(self.hidden)))

    def features(self, x, layer: int):
        """Activations after hidden layer `layer` (1-based; 0 is the flattened input)."""
        x = x.flatten(1)
        for block in self.hidden[:layer]:
            x = block(x)
        return x


def feature_layer(config: dict) -> int:
    """The searched 1-based hidden layer, clipped to the net's depth."""
    return max(1, min(int(config.get("feature_layer", 1)), int(config.get("layers", 1))))


@torch.no_grad()
def hidden_features(net: TorchClassifier, images: np.ndarray, layer: int) -> np.ndarray:
    """Hidden-layer activations of `net` for uint8 images at the net's own image size."""
    net.model.eval()
    device = net.device
    tensor = torch.as_tensor(np.ascontiguousarray(images))
    chunks = []
    for start in range(0, len(tensor), _FEATURE_BATCH):
        x = net.to_input(tensor[start : start + _FEATURE_BATCH].to(device))
        features = net.model.features  # MLP.features (torch types net.model as Module)
        chunks.append(features(x, layer).float().cpu())  # type: ignore[operator]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)
