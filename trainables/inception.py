"""InceptionV3 fine-tuning: torchvision's network with a new head, adapted the paper's three ways.

- `head`: the whole trunk frozen, only the new head trains;
- `unfreeze`: the last N of the 11 Inception blocks (Mixed_5b ... Mixed_7c) train too;
- `cut`: the trunk is kept up to block B (global average pooling follows it) and all of it
  retrains; cutting after Mixed_6c leaves ~5M of the full network's ~21.8M parameters.

The head is global average pooling, dropout, an optional hidden dense layer with the searched
activation, and the class layer. Frozen blocks keep their BatchNorm layers in eval mode, so
fine-tuning never rewrites the ImageNet statistics of a block whose weights it does not train.
The auxiliary classifier (it sits on Mixed_6e) is attached only where it can work and help:
Mixed_6e trains, the trunk goes on past it, and the input is >= 299 px (smaller inputs shrink
Mixed_6e's map below the aux head's 5x5/3 pool + 5x5 conv). While training the model then returns
(logits, aux_logits) and the shared loop adds `aux_weight` x the aux loss; in eval mode it returns
the main logits only, so evaluation and serving never see the aux head.

Weights (`--weights`, a sweep-wide option, not searched): `imagenet` reads torchvision's
IMAGENET1K_V1 file from torchvision's own cache ($TORCH_HOME/hub/checkpoints); nothing is ever
downloaded, a missing file is a WeightsError that says where to put it. `none` starts from
Inception's own random init; any other value is a local state-dict file of torchvision's
inception_v3 (any head: fc and the aux head are replaced).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torch.nn as nn

from search_spaces.inception import BLOCKS, HEAD_ACTIVATIONS, MODES, NATIVE_INPUT  # noqa: F401 (re-exported)
from trainables.core.layers import ACTIVATIONS
from trainables.core.session import TrialFailed
from trainables.core.torch_loop import AUX_WEIGHT, TorchClassifier, train_classifier

BUILDER = "trainables.inception:build_model"
STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2")
BLOCK_CHANNELS = dict(zip(BLOCKS, (256, 288, 288, 768, 768, 768, 768, 768, 1280, 2048, 2048)))
WEIGHT_CHOICES = ("imagenet", "none")
MIN_INPUT = 75  # smaller inputs shrink Mixed_7a's input below its 3x3 stride-2 convolution
AUX_MIN_INPUT = 299  # Mixed_6e must be 17x17 for the aux head's 5x5/3 pool and 5x5 conv
# Google's InceptionV3 weights expect pixels scaled to [-1, 1] (torchvision's transform_input).
PRETRAINED_STATS = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])


class WeightsError(ValueError):
    """The requested starting weights cannot be used; the message says how to fix it."""


# --- the model -------------------------------------------------------------------------


def fit(config: dict, dataset, session) -> TorchClassifier:
    weights = session.options.get("weights", "imagenet")
    config = {"input_size": NATIVE_INPUT, **config}
    try:
        model = build_model(config, dataset.num_classes, weights=weights)
    except WeightsError as exc:
        raise TrialFailed(str(exc)) from None  # same file for every retry: fail once, clearly
    session.log_params({"weights": weights})
    return train_classifier(model, config, dataset, session, builder=BUILDER)


def build_model(config: dict, num_classes: int, *, pretrained: bool = True, weights: str = "none") -> InceptionNet:
    """The network `config` describes; `weights` ('imagenet', 'none' or a state-dict path) seeds its
    trunk when `pretrained` (reloading a saved model passes pretrained=False: its file has them all)."""
    import torchvision

    input_size = int(config.get("input_size", NATIVE_INPUT))
    if input_size < MIN_INPUT:
        raise ValueError(f"InceptionV3 needs input_size >= {MIN_INPUT}, got {input_size}")
    state = read_weights(weights) if pretrained else None
    base = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=state is None)
    if state is not None:
        base.load_state_dict(trunk_tensors(state, base), strict=False)  # the heads are replaced anyway
    return InceptionNet(
        base,
        num_classes=num_classes,
        mode=config.get("mode", "unfreeze"),
        unfreeze_blocks=int(config.get("unfreeze_blocks", 2)),
        cut_after=config.get("cut_after", BLOCKS[-1]),
        head_width=int(config.get("head_width", 0)),
        activation=config.get("activation", "relu"),
        dropout=float(config.get("dropout", 0.0)),
        aux=float(config.get("aux_weight", AUX_WEIGHT)) > 0 and input_size >= AUX_MIN_INPUT,
        input_stats=PRETRAINED_STATS if state is not None else None,
    )


class InceptionNet(nn.Module):
    """InceptionV3's trunk (its torchvision modules, as far as the mode keeps them) + a new head."""

    def __init__(
        self,
        base: nn.Module,
        *,
        num_classes: int,
        mode: str = "unfreeze",
        unfreeze_blocks: int = 2,
        cut_after: str = BLOCKS[-1],
        head_width: int = 0,
        activation: str = "relu",
        dropout: float = 0.0,
        aux: bool = False,
        input_stats=None,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if cut_after not in BLOCKS:
            raise ValueError(f"unknown cut_after {cut_after!r}; choose one of {', '.join(BLOCKS)}")
        if not 0 <= unfreeze_blocks <= len(BLOCKS):
            raise ValueError(f"unfreeze_blocks {unfreeze_blocks} must be in 0..{len(BLOCKS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        kept = BLOCKS[: BLOCKS.index(cut_after) + 1] if mode == "cut" else BLOCKS
        if mode == "cut":
            trained = STEM + kept
        elif mode == "unfreeze":
            trained = BLOCKS[len(BLOCKS) - unfreeze_blocks :]
        else:
            trained = ()
        self.trunk = nn.Sequential(OrderedDict((name, getattr(base, name)) for name in STEM + kept))
        for name, module in self.trunk.named_children():
            module.requires_grad_(name in trained)
        self.aux: nn.Module | None = None
        if aux and "Mixed_6e" in trained and "Mixed_7a" in kept:
            aux_head: Any = base.AuxLogits  # torchvision's InceptionAux (typed loosely by torch's stubs)
            aux_head.fc = nn.Linear(aux_head.fc.in_features, num_classes)
            self.aux = aux_head
        self.head = make_head(
            BLOCK_CHANNELS[kept[-1]], num_classes, width=head_width, activation=activation, dropout=dropout
        )
        # Read by the shared loop: the normalisation the starting weights were trained with.
        self.input_stats = input_stats

    def forward(self, x: torch.Tensor):
        aux = None
        for name, module in self.trunk.named_children():
            x = module(x)
            if name == "Mixed_6e" and self.aux is not None and self.training:
                aux = self.aux(x)
        logits = self.head(x)
        return (logits, aux) if aux is not None else logits

    def train(self, mode: bool = True) -> InceptionNet:
        super().train(mode)
        if mode:  # frozen blocks keep their BatchNorm statistics (as Keras does for trainable=False)
            for module in self.trunk.children():
                if not any(p.requires_grad for p in module.parameters()):
                    module.eval()
        return self

    @property
    def last_conv(self) -> nn.Module:
        """The layer Grad-CAM explains: the last Inception block the network keeps."""
        return self.trunk[-1]


def make_head(channels: int, num_classes: int, *, width: int, activation: str, dropout: float) -> nn.Sequential:
    layers = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout)]
    if width:
        layers += [nn.Linear(channels, width), ACTIVATIONS[activation](), nn.Dropout(dropout)]
    layers.append(nn.Linear(width or channels, num_classes))
    return nn.Sequential(*layers)


# --- starting weights ------------------------------------------------------------------


def canonical_weights(choice: str) -> str:
    """'imagenet' / 'none' (any case), or the file's absolute path (trials run in other folders)."""
    if choice.lower() in WEIGHT_CHOICES:
        return choice.lower()
    return str(Path(choice).expanduser().resolve())


def imagenet_file() -> Path:
    """Where torchvision's own cache keeps IMAGENET1K_V1 (torch.hub's rule: $TORCH_HOME/hub/checkpoints)."""
    from torchvision.models import Inception_V3_Weights

    url = Inception_V3_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def read_weights(choice: str) -> dict | None:
    """The state dict `choice` names (None for 'none'), checked to hold every InceptionV3 trunk tensor.

    Only ever reads local files: torchvision's download path is never called, so offline it
    cannot hang; a missing or wrong file raises WeightsError saying what to do."""
    choice = canonical_weights(choice)
    if choice == "none":
        return None
    if choice == "imagenet":
        path = imagenet_file()
        if not path.is_file():
            from torchvision.models import Inception_V3_Weights

            raise WeightsError(
                f"--weights imagenet: torchvision's InceptionV3 ImageNet file is not in its cache and nothing is "
                f"downloaded here; place {path.name} (from {Inception_V3_Weights.IMAGENET1K_V1.url}) at {path} "
                "(set $TORCH_HOME for another cache), or pass --weights PATH to a state-dict file, or --weights none"
            )
    else:
        path = Path(choice)
        if not path.is_file():
            raise WeightsError(
                f"--weights {choice}: no such file; pass a torchvision inception_v3 state-dict file, "
                "'imagenet' (torchvision's cache) or 'none' (random init)"
            )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated download, pickle of something else, ...
        raise WeightsError(
            f"--weights {choice}: cannot read {path} as a torch state dict "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    check_trunk_tensors(state, path)
    return state


def check_trunk_tensors(state, path: Path) -> None:
    import torchvision

    if not isinstance(state, dict):
        raise WeightsError(
            f"--weights {path}: holds a {type(state).__name__}, not a state dict; "
            "save one with torch.save(model.state_dict(), PATH)"
        )
    with torch.device("meta"):  # shapes only, no memory, no init
        reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
    needed = [k for k in reference if not k.startswith(("fc.", "AuxLogits.")) and not k.endswith("num_batches_tracked")]
    wrong = [k for k in needed if not torch.is_tensor(state.get(k)) or state[k].shape != reference[k].shape]
    if wrong:
        raise WeightsError(
            f"--weights {path}: not a torchvision inception_v3 state dict: {len(wrong)} of its "
            f"{len(needed)} trunk tensors are missing or shaped differently (first: {wrong[0]})"
        )


def trunk_tensors(state: dict, model: nn.Module) -> dict:
    """The tensors of `state` that fit `model`, without the class layers (another head's size)."""
    own = model.state_dict()
    return {
        k: v
        for k, v in state.items()
        if k in own and not k.startswith(("fc.", "AuxLogits.fc.")) and v.shape == own[k].shape
    }
