"""TinyNet: the paper's small CNN trained from scratch.

N blocks of k x k convolutions; each block downsamples with stride 2 and
padding k//2 (padding 1 for the paper's 3x3) and doubles the width from a base
(paper: 32-64-128-256), with optional batchnorm, residual shortcut and
depthwise-separable convolutions; then global average pooling, dropout and a
linear head.
"""

from __future__ import annotations

import torch.nn as nn

from search_spaces.tinynet import PAPER_BEST
from trainables.core.layers import ACTIVATIONS
from trainables.core.torch_loop import TorchClassifier, train_classifier

INITS = ("kaiming", "glorot_normal", "glorot_uniform", "normal", "zeros")
BUILDER = "trainables.tinynet:build_model"


def fit(config: dict, dataset, session) -> TorchClassifier:
    model = build_model(config, dataset.num_classes)
    return train_classifier(model, config, dataset, session, builder=BUILDER)


def build_model(config: dict, num_classes: int, *, pretrained: bool = False) -> TinyNet:
    """The net of `config`; what it leaves out is the paper's configuration (PAPER_BEST)."""
    config = {**PAPER_BEST, **config}
    return TinyNet(
        num_classes=num_classes,
        blocks=int(config["blocks"]),
        base_width=int(config["base_width"]),
        convs_per_block=int(config["convs_per_block"]),
        kernel_size=int(config["kernel_size"]),
        activation=config["activation"],
        batchnorm=bool(config["batchnorm"]),
        residual=bool(config["residual"]),
        depthwise=bool(config["depthwise"]),
        dropout=float(config["dropout"]),
        init=config["init"],
    )


class TinyNet(nn.Module):
    def __init__(
        self,
        *,
        num_classes: int,
        blocks: int = 4,
        base_width: int = 32,
        convs_per_block: int = 1,
        kernel_size: int = 3,
        activation: str = "relu",
        batchnorm: bool = True,
        residual: bool = False,
        depthwise: bool = False,
        dropout: float = 0.0,
        init: str = "kaiming",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        layers, width_in = [], 3
        for index in range(blocks):
            width = base_width * 2**index
            layers.append(
                Block(
                    width_in,
                    width,
                    convs=convs_per_block,
                    kernel_size=kernel_size,
                    activation=activation,
                    batchnorm=batchnorm,
                    residual=residual,
                    depthwise=depthwise and index > 0,
                )
            )
            width_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(width_in, num_classes)
        )
        initialise(self, init, activation)

    def forward(self, x):
        return self.head(self.features(x))

    @property
    def last_conv(self) -> nn.Module:
        """The layer Grad-CAM explains."""
        return self.features[-1]


class Block(nn.Module):
    """conv(stride 2) [+ conv(stride 1)], each followed by BN and the activation; optional shortcut."""

    def __init__(self, width_in, width_out, *, convs, kernel_size, activation, batchnorm, residual, depthwise):
        super().__init__()
        units = []
        self.shortcut: nn.Module | None = None  # residual blocks add a strided 1x1 projection
        for index in range(convs):
            stride = 2 if index == 0 else 1
            source = width_in if index == 0 else width_out
            units += [conv(source, width_out, kernel_size, stride, depthwise, bias=not batchnorm)]
            units += [nn.BatchNorm2d(width_out)] if batchnorm else []
            units += [ACTIVATIONS[activation]()]
        if residual:
            units = units[:-1]  # the last activation comes after the sum
            self.shortcut = nn.Sequential(
                nn.Conv2d(width_in, width_out, 1, stride=2, bias=not batchnorm),
                *([nn.BatchNorm2d(width_out)] if batchnorm else []),
            )
            self.after = ACTIVATIONS[activation]()
        self.body = nn.Sequential(*units)

    def forward(self, x):
        out = self.body(x)
        if self.shortcut is not None:
            out = self.after(out + self.shortcut(x))
        return out


def conv(width_in, width_out, kernel_size, stride, depthwise, *, bias):
    padding = kernel_size // 2
    if not depthwise:
        return nn.Conv2d(width_in, width_out, kernel_size, stride=stride, padding=padding, bias=bias)
    return nn.Sequential(
        nn.Conv2d(width_in, width_in, kernel_size, stride=stride, padding=padding, groups=width_in, bias=False),
        nn.Conv2d(width_in, width_out, 1, bias=bias),
    )


def initialise(model: nn.Module, init: str, activation: str) -> None:
    nonlinearity = {"relu": "relu", "leaky_relu": "leaky_relu", "tanh": "tanh"}.get(activation, "relu")
    for module in model.modules():
        if isinstance(module, nn.Linear) and init == "kaiming":
            # He init assumes a ReLU after the layer; the head's logits have none, and its fan_out is
            # the number of classes: std 0.5, initial logits several units apart, which cost the recipe
            # points. The head keeps PyTorch's default (as torchvision's ResNet does).
            continue
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            weight = module.weight
            if init == "kaiming":
                nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity=nonlinearity)  # type: ignore[arg-type]
            elif init == "glorot_normal":
                nn.init.xavier_normal_(weight)
            elif init == "glorot_uniform":
                nn.init.xavier_uniform_(weight)
            elif init == "normal":
                nn.init.normal_(weight, 0.0, 0.02)
            else:
                nn.init.zeros_(weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
