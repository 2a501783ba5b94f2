"""The one training loop every neural family shares (TinyNet, MLP, InceptionV3).

The dataset is small, so it lives on the training device as uint8 tensors for
the whole trial, laid out once in the convolutions' memory format: batches are
index slices, augmentation runs on the device (`augment.DeviceAugmenter`), and
nothing crosses the host boundary per epoch except the metrics (one sync per
epoch, none per batch). Arithmetic, layout and compilation come from
`trainables.core.device`: bf16/fp16 autocast on GPU (float32 on CPU unless asked for
bf16), channels_last and cudnn.benchmark on GPU, fused optimiser steps,
optional torch.compile. Sweep-wide options it reads from the session:
`precision` (auto/fp32/bf16/fp16) and `compile` (a torch.compile mode, or None).
Config keys it reads (all optional): optimizer, lr, lr_finder, momentum,
weight_decay, batch_size, one_cycle, label_smoothing, input_size, aug_*, aux_weight.
A model may declare `input_stats` (mean, std), the normalisation its pretrained weights
expect, used instead of the dataset's channel statistics. A model with an auxiliary
classifier (InceptionV3) returns (logits, aux_logits) while training; its loss adds
aux_weight (default AUX_WEIGHT) x the aux loss.
A family's builder is `build_model(config, num_classes, *, pretrained=True)`;
reloading a saved model calls it with pretrained=False (weights come from the file).
"""

from __future__ import annotations

import copy
import importlib
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from trainables.core.augment import DeviceAugmenter, resize
from trainables.core.classifier import SceneClassifier
from trainables.core.device import (
    FUSED_OPTIMIZERS,
    Precision,
    channels_last,
    compiled,
    images_on_device,
    inference_autocast,
    pick_device,
    prepare_model,
    resolve_precision,
)
from trainables.core.session import TrialFailed, TrialSession

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adadelta", "adagrad")
_EVAL_BATCH = 256
TRAINING_STATE_FILE = "state.pt"  # a net trial's checkpoint: epoch, lr, model, optimizer, scheduler, RNG
AUX_WEIGHT = 0.4  # torchvision's reference recipe for InceptionV3: loss = main + 0.4 * aux


class TorchClassifier(SceneClassifier):
    """A torch network plus its preprocessing (resize to input_size, normalise)."""

    def __init__(
        self, model: nn.Module, *, builder: str, config: dict, class_names, image_size: int, input_size: int, mean, std
    ):
        super().__init__(class_names=class_names, image_size=image_size)
        self.model = model
        self.builder = builder  # "module:function" that rebuilds the architecture from config
        self.config = dict(config)
        self.input_size = int(input_size)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self.found_lr: float | None = None  # set when the LR finder chose the learning rate

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    @property
    def total_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def extra_metrics(self) -> dict:
        extra: dict[str, float] = {"total_params": self.total_params}
        if self.found_lr is not None:
            extra["found_lr"] = self.found_lr
        return extra

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) on the device -> normalised float (B, 3, input, input)."""
        x = images.permute(0, 3, 1, 2).float().div_(255)
        x = resize(x, self.input_size)
        return normalise(x, self.mean, self.std)

    @torch.no_grad()
    def logits(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        self.model.eval()
        device = self.device
        tensor = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
        outputs = []
        for start in range(0, len(tensor), _EVAL_BATCH):
            batch = tensor[start : start + _EVAL_BATCH].to(device, non_blocking=True)
            with inference_autocast(device):
                outputs.append(self.model(channels_last(self.to_input(batch), device)).float())
        return torch.cat(outputs) if outputs else torch.zeros(0, len(self.class_names))

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return F.softmax(self.logits(images), dim=1).cpu().numpy()

    def save_state(self, directory: Path) -> dict:
        torch.save(self.model.state_dict(), directory / "weights.pt")
        return {
            "builder": self.builder,
            "config": self.config,
            "input_size": self.input_size,
            "mean": self.mean,
            "std": self.std,
        }

    @classmethod
    def load_state(cls, directory: Path, state: dict, *, class_names, image_size: int) -> TorchClassifier:
        model = build_from(state["builder"], state["config"], len(class_names), pretrained=False)
        model.load_state_dict(torch.load(directory / "weights.pt", map_location="cpu", weights_only=True))
        model.to(pick_device())
        return cls(
            model,
            builder=state["builder"],
            config=state["config"],
            class_names=class_names,
            image_size=image_size,
            input_size=state["input_size"],
            mean=state["mean"],
            std=state["std"],
        )


def build_from(builder: str, config: dict, num_classes: int, **kwargs) -> nn.Module:
    module_name, _, function = builder.partition(":")
    return getattr(importlib.import_module(module_name), function)(config, num_classes, **kwargs)


def train_classifier(
    model: nn.Module, config: dict, dataset, session: TrialSession, *, builder: str
) -> TorchClassifier:
    """Train `model` for session.max_epochs epochs (resuming from a checkpoint), report each epoch."""
    device = pick_device()
    precision = resolve_precision(session.options.get("precision") or "auto", device)
    model = prepare_model(model, device)
    forward = compiled(model, session.options.get("compile"))
    input_size = int(config.get("input_size", dataset.image_size))
    mean, std = getattr(model, "input_stats", None) or channel_stats(dataset.x_train)
    classifier = TorchClassifier(
        model,
        builder=builder,
        config=config,
        class_names=dataset.class_names,
        image_size=dataset.image_size,
        input_size=input_size,
        mean=mean,
        std=std,
    )
    x_train = images_on_device(dataset.x_train, device)  # uint8 NCHW, stays put for the whole trial
    # torch.tensor copies: the arrays are read-only views of Ray's object store (from_numpy would warn).
    y_train = torch.tensor(np.asarray(dataset.y_train, dtype=np.int64), device=device)
    x_val = torch.tensor(np.ascontiguousarray(dataset.x_val), device=device)
    y_val = torch.tensor(np.asarray(dataset.y_val, dtype=np.int64), device=device)

    batch_size = min(int(config.get("batch_size", 32)), len(y_train))
    steps_per_epoch = max(1, len(y_train) // batch_size)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=float(config.get("label_smoothing", 0.0)))
    augmenter = DeviceAugmenter(config)

    def batches():
        order = torch.randperm(len(y_train), device=device)
        for step in range(steps_per_epoch):  # a ragged last batch is dropped (BatchNorm needs > 1)
            index = order[step * batch_size : (step + 1) * batch_size]
            x = x_train[index].float().div_(255)
            x = normalise(augmenter(x, input_size), mean, std)
            yield channels_last(x, device), y_train[index]

    state = session.restore(lambda folder: load_training_state(folder, device))
    lr = float(config.get("lr", 1e-3))
    if state is not None:
        lr = state["lr"]
    elif config.get("lr_finder"):
        lr = find_lr(model, config, batches, loss_fn, precision)
    optimizer = build_optimizer(model, config, lr)
    scaler = precision.grad_scaler()
    scheduler = None
    if config.get("one_cycle"):
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=lr,
            total_steps=session.max_epochs * steps_per_epoch,
            cycle_momentum=config.get("optimizer", "adam") in ("adam", "adamw"),
        )
    start_epoch = 1
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start_epoch = state["epoch"] + 1
    if config.get("lr_finder"):
        classifier.found_lr = lr

    for epoch in range(start_epoch, session.max_epochs + 1):
        started = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for x, y in batches():
            with precision.autocast():
                loss, logits = training_loss(forward, x, y, loss_fn, config)
            optimizer.zero_grad(set_to_none=True)
            backward_and_step(loss, optimizer, scaler)
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
        train_loss = float(loss_sum) / seen
        if not math.isfinite(train_loss):
            raise TrialFailed(f"training diverged: train loss is {train_loss} at epoch {epoch} (lr {lr:.3g})")
        val_loss, val_accuracy = evaluate_loss(classifier, x_val, y_val)
        metrics = {
            "train_loss": train_loss,
            "train_accuracy": float(correct) / seen,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "epoch_seconds": time.perf_counter() - started,
            "lr": optimizer.param_groups[0]["lr"],
        }

        def save(folder: Path, epoch=epoch):
            save_training_state(
                folder,
                {
                    "epoch": epoch,
                    "lr": lr,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler else None,
                    "rng": torch.get_rng_state(),
                },
            )

        session.report_epoch(epoch, metrics, save=save)
        if epoch < session.max_epochs and session.out_of_time():
            break  # over its time budget: the trial ends here and is evaluated like any other
    return classifier


def save_training_state(folder: Path, state: dict) -> None:
    """A checkpoint of tensors, state dicts and plain values only, so it loads with weights_only=True."""
    torch.save(state, folder / TRAINING_STATE_FILE)


def load_training_state(folder: Path, device) -> dict:
    """The checkpoint save_training_state wrote. weights_only=True: a checkpoint folder someone else
    could write never runs code here (a pickle of anything but tensors and plain values is refused)."""
    return torch.load(folder / TRAINING_STATE_FILE, map_location=device, weights_only=True)


def training_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, config: dict):
    """(loss, main logits) of a training-mode forward pass, the auxiliary classifier's loss included."""
    out = model(x)
    if isinstance(out, tuple):  # (logits, aux_logits): InceptionV3's aux head, present only while training
        logits, aux = out
        return loss_fn(logits.float(), y) + float(config.get("aux_weight", AUX_WEIGHT)) * loss_fn(
            aux.float(), y
        ), logits
    return loss_fn(out.float(), y), out


@torch.no_grad()
def evaluate_loss(classifier: TorchClassifier, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    logits = classifier.logits(images)
    loss = F.cross_entropy(logits, labels).item()
    if not math.isfinite(loss):
        raise TrialFailed(f"training diverged: validation loss is {loss}")
    return loss, (logits.argmax(1) == labels).float().mean().item()


def build_optimizer(model: nn.Module, config: dict, lr: float) -> torch.optim.Optimizer:
    name = config.get("optimizer", "adam")
    params = [p for p in model.parameters() if p.requires_grad]
    decay = float(config.get("weight_decay", 0.0))
    momentum = float(config.get("momentum", 0.0))
    fast: dict = {"fused": True} if name in FUSED_OPTIMIZERS else {}  # others: torch picks foreach on GPU
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay, **fast)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay, **fast)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=decay, nesterov=momentum > 0, **fast)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=decay, **fast)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=decay, **fast)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=decay, **fast)
    raise TrialFailed(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler) -> None:
    if scaler is None:
        loss.backward()
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.step(optimizer)  # skips the step when the scaled gradients overflowed
    scaler.update()


def find_lr(
    model: nn.Module,
    config: dict,
    batches,
    loss_fn,
    precision: Precision,
    *,
    steps: int = 60,
    low: float = 1e-6,
    high: float = 1.0,
) -> float:
    """Leslie Smith's range test: ramp lr exponentially on a throwaway copy, pick min-loss lr / 10."""
    probe = copy.deepcopy(model)
    probe.train()
    optimizer = build_optimizer(probe, config, low)
    scaler = precision.grad_scaler()
    ratio = (high / low) ** (1 / max(1, steps - 1))
    smoothed, best_loss, best_lr, step = 0.0, math.inf, 1e-3, 0
    while step < steps:
        for x, y in batches():
            lr = low * ratio**step
            for group in optimizer.param_groups:
                group["lr"] = lr
            with precision.autocast():
                loss, _ = training_loss(probe, x, y, loss_fn, config)
            optimizer.zero_grad(set_to_none=True)
            backward_and_step(loss, optimizer, scaler)
            value = loss.item()
            smoothed = 0.9 * smoothed + 0.1 * value if step else value
            if not math.isfinite(value) or (step > 5 and smoothed > 4 * best_loss):
                step = steps
                break
            if smoothed < best_loss:
                best_loss, best_lr = smoothed, lr
            step += 1
            if step >= steps:
                break
    del probe
    return float(min(max(best_lr / 10, 1e-5), 0.1))


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    sample = images[:: max(1, len(images) // 512)].reshape(-1, 3).astype(np.float32) / 255
    return sample.mean(0).tolist(), (sample.std(0) + 1e-3).tolist()


def normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    mean_t = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean_t) / std_t
