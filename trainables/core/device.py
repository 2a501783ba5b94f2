"""Where and how a net trains: the device, the arithmetic precision, the memory layout, compilation.

Precision `auto` (the default) picks the fastest arithmetic that trains reliably: bf16
autocast on GPUs with bf16 (Ampere and later), fp16 autocast with a gradient scaler on
older GPUs, float32 on CPUs. bf16 on CPUs with AVX-512 BF16 or AMX is ~1.3x faster for
TinyNet but opt-in (`--precision bf16`): with torch 2.14.1's oneDNN some configurations
(7x7 convolutions on 2x2 maps, e.g. a 4-block TinyNet at 32 px) get NaN weight gradients
within a few steps, where float32 trains normally. Weights, optimiser
state, losses and reported metrics stay float32 in every mode; only convolutions and
matrix products run in the lower precision. Inference (`TorchClassifier.logits`) uses
`inference_autocast`: bf16 on GPUs, float32 on CPUs, so served predictions don't
depend on the CPU they run on.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn as nn

from trainables.core.options import COMPILE_MODES, PRECISIONS

# Optimisers with a fused (single-kernel) step on CPU and CUDA in torch 2.14: one kernel per
# step instead of ~10 per parameter tensor.
FUSED_OPTIMIZERS = ("adam", "adamw", "sgd", "adagrad")


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


@dataclass(frozen=True)
class Precision:
    """The training arithmetic: autocast dtype (None = float32) and whether losses are scaled."""

    name: str  # fp32, bf16 or fp16: what `auto` resolved to
    device_type: str

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    def autocast(self):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 gradients underflow without loss scaling; bf16 has float32's range and needs none."""
        return torch.amp.GradScaler(self.device_type) if self.name == "fp16" else None


def resolve_precision(requested: str, device: torch.device) -> Precision:
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    name = requested
    if requested == "auto":
        if device.type == "cuda":
            name = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
        else:
            name = "fp32"  # see the module docstring: CPU bf16 is opt-in
    return Precision(name=name, device_type=device.type)


def inference_autocast(device: torch.device):
    if device.type == "cuda":
        return resolve_precision("auto", device).autocast()
    return nullcontext()


def channels_last(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """channels_last on GPU (faster convs); plain NCHW on CPU, where oneDNN's 1x1-conv backward
    on channels_last input crashes (SIGSEGV seen with torch 2.14.1 on AVX-512)."""
    if device.type == "cuda":
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous()


def images_on_device(images, device: torch.device) -> torch.Tensor:
    """uint8 NHWC array -> uint8 NCHW tensor on the device, laid out once for the whole trial.

    Batches are then plain index slices already in the layout the convolutions want
    (channels_last on GPU, contiguous NCHW on CPU): no per-batch permute copy.
    """
    import numpy as np

    images = np.ascontiguousarray(images)
    if not images.flags.writeable:  # read-only from Ray's object store; torch wants to own writable memory
        images = images.copy()
    nhwc = torch.from_numpy(images).to(device)
    nchw = nhwc.permute(0, 3, 1, 2)  # on GPU this view *is* channels_last
    return nchw if device.type == "cuda" else nchw.contiguous()


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # input shapes are fixed within a trial
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def compiled(model: nn.Module, mode: str | None):
    """The training forward, optionally through torch.compile; the module itself stays uncompiled
    (checkpoints, evaluation and the logged model use it)."""
    if not mode:
        return model
    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")
    return torch.compile(model, mode=mode)
