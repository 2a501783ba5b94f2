"""Benchmark 1: TinyNet training throughput, scenesweep's trainer vs the tutorial way, in one run.

Both train the paper's TinyNet (4 stride-2 3x3 blocks, 32-64-128-256, BN; Adam +
one-cycle at a fixed lr, batch 32, random horizontal flips) on the same number of
train images for the same epochs and score the same number of validation images
after every epoch. Only the data path and the loop differ:

- tutorial: torchvision ImageFolder over the JPEG files + DataLoader(shuffle,
  num_workers) + per-image transforms (flip, ToTensor, Normalize) decoded every
  epoch, `.to(device)` per batch, `.item()` per batch, float32 (what the PyTorch
  tutorials teach);
- scenesweep: `trainables.tinynet.fit` (the loop every sweep trial runs), at float32
  at float32 (the CPU default) and at bf16 (the GPU default; opt-in on CPU).

Reported: seconds per epoch (median of the epochs after the first, which carries
one-off warm-up), first-epoch seconds, training images per second, the ratio to the
tutorial, CPU seconds per epoch (every process's, the DataLoader workers' too: a
figure that other work on a shared machine disturbs far less than wall time), and
each run's final validation accuracy (same work, comparable result).
With `--compile`, one more scenesweep run through torch.compile, and how many
epochs a trial needs before compiling pays back its one-off cost.

    python -m benchmarks.throughput [--epochs 5] [--threads N] [--workers 2] [--compile] [--quick]
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.common import CACHE, format_table, main, parser

LR = 3e-3  # a fixed lr in place of the LR finder, so both runs do exactly the same steps


def config() -> dict:
    from search_spaces.tinynet import PAPER_BEST

    return {**PAPER_BEST, "lr_finder": False, "lr": LR}


def run(args):
    from trainables.core.data import DataSpec, load_dataset
    from trainables.training import seed_everything, set_threads

    threads = args.threads or len(__import__("os").sched_getaffinity(0))
    set_threads(threads)
    epochs = 1 if args.quick else args.epochs
    spec = DataSpec(
        source=str(Path(args.data).resolve()) if args.data != "demo" else "demo",
        per_class=4 if args.quick else None,
        cache_dir=args.cache_dir or str(CACHE),
    )
    dataset = load_dataset(spec)
    rows = []
    if args.data != "demo":
        seed_everything(0)
        rows.append(
            tutorial(
                Path(args.data),
                n_train=len(dataset.y_train),
                n_val=len(dataset.y_val),
                epochs=epochs,
                workers=args.workers,
                device=_device(),
            )
        )
    for precision in args.precisions:
        seed_everything(0)
        rows.append(scenesweep(dataset, epochs=epochs, precision=precision))
    if args.compile:
        seed_everything(0)
        plain = rows[-1]
        compiled = scenesweep(dataset, epochs=epochs, precision=args.precisions[-1], compile_mode="default")
        rows.append(compiled)
        saving = plain["epoch_seconds"] - compiled["epoch_seconds"]
        one_off = (compiled["first_epoch_seconds"] - compiled["epoch_seconds"]) - (
            plain["first_epoch_seconds"] - plain["epoch_seconds"]
        )
        compiled["compile_seconds"] = one_off
        compiled["break_even_epochs"] = one_off / saving if saving > 0 else None  # None: never pays back
    base = rows[0]["epoch_seconds"]
    for row in rows:
        row["speedup_vs_tutorial"] = base / row["epoch_seconds"] if args.data != "demo" else None
    payload = {
        "settings": {
            "epochs": epochs,
            "threads": threads,
            "workers": args.workers,
            "batch_size": 32,
            "train_images": len(dataset.y_train),
            "val_images": len(dataset.y_val),
            "data": args.data,
            "device": str(_device()),
            "config": config(),
        },
        "paper_seconds_per_epoch": 3.0,
        "rows": rows,
    }
    columns = [
        "trainer",
        "precision",
        "epoch_seconds",
        "first_epoch_seconds",
        "images_per_second",
        "speedup_vs_tutorial",
        "cpu_seconds_per_epoch",
        "val_accuracy",
    ] + (["break_even_epochs"] if args.compile else [])
    return "throughput", payload, format_table(rows, columns)


def _device():
    from trainables.core.device import pick_device

    return pick_device()


def scenesweep(dataset, *, epochs: int, precision: str, compile_mode: str | None = None) -> dict:
    from trainables.core.device import resolve_precision
    from trainables.core.session import TrialSession
    from trainables.tinynet import fit

    session = TrialSession(max_epochs=epochs, options={"precision": precision, "compile": compile_mode})
    cpu = cpu_seconds()
    fit(config(), dataset, session)
    cpu = cpu_seconds() - cpu
    seconds = [value for _, value in session.history["epoch_seconds"]]
    trainer = "scenesweep+compile" if compile_mode else "scenesweep"
    return _row(
        trainer,
        resolve_precision(precision, _device()).name,
        seconds,
        len(dataset.y_train),
        session.history["val_accuracy"][-1][1],
        cpu / epochs,
    )


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (DataLoader workers exit every epoch)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def tutorial(root: Path, *, n_train: int, n_val: int, epochs: int, workers: int, device) -> dict:
    """The loop as the PyTorch tutorials write it (ImageFolder + DataLoader + transforms)."""
    import torch
    import torch.nn as nn
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from trainables.tinynet import build_model

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    train_tf = transforms.Compose(
        [
            transforms.Resize((64, 64)),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    eval_tf = transforms.Compose([transforms.Resize((64, 64)), transforms.ToTensor(), transforms.Normalize(mean, std)])
    order = torch.randperm(len(datasets.ImageFolder(root / "train")), generator=torch.Generator().manual_seed(0))
    train_set = Subset(datasets.ImageFolder(root / "train", transform=train_tf), order[:n_train].tolist())
    val_set = Subset(datasets.ImageFolder(root / "train", transform=eval_tf), order[n_train : n_train + n_val].tolist())
    train_loader = DataLoader(train_set, batch_size=32, shuffle=True, num_workers=workers, drop_last=True)
    val_loader = DataLoader(val_set, batch_size=256, shuffle=False, num_workers=workers)

    cfg = config()
    model = build_model(cfg, len(train_set.dataset.classes)).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=cfg["weight_decay"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=epochs * len(train_loader))
    seconds, val_accuracy = [], 0.0
    cpu = cpu_seconds()
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        running_loss, correct, seen = 0.0, 0, 0
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            outputs = model(images)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running_loss += loss.item() * labels.size(0)
            correct += (outputs.argmax(1) == labels).sum().item()
            seen += labels.size(0)
        model.eval()
        val_correct, val_seen = 0, 0
        with torch.no_grad():
            for images, labels in val_loader:
                images, labels = images.to(device), labels.to(device)
                val_correct += (model(images).argmax(1) == labels).sum().item()
                val_seen += labels.size(0)
        val_accuracy = val_correct / val_seen
        seconds.append(time.perf_counter() - started)
    return _row("tutorial", "fp32", seconds, n_train, val_accuracy, (cpu_seconds() - cpu) / epochs)


def _row(
    trainer: str, precision: str, seconds: list[float], n_train: int, val_accuracy: float, cpu_per_epoch: float
) -> dict:
    steady = seconds[1:] or seconds
    epoch_seconds = statistics.median(steady)
    return {
        "trainer": trainer,
        "precision": precision,
        "epoch_seconds": epoch_seconds,
        "first_epoch_seconds": seconds[0],
        "images_per_second": n_train / epoch_seconds,
        "cpu_seconds_per_epoch": cpu_per_epoch,  # mean over all epochs, setup and warm-up included
        "val_accuracy": val_accuracy,
        "epoch_seconds_all": [float(np.round(s, 4)) for s in seconds],
    }


def build_parser():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: every core this process may use)")
    p.add_argument("--workers", type=int, default=2, help="the tutorial's DataLoader workers (default 2, as tutorials)")
    p.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "bf16"],
        choices=["fp32", "auto", "bf16", "fp16"],
        help="scenesweep precisions to run (default: fp32 bf16)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="also time scenesweep with torch.compile and its break-even point in epochs",
    )
    p.add_argument("--cache-dir", default=None, help="decoded-data cache (default benchmarks/results/cache)")
    return p


if __name__ == "__main__":
    import sys

    arguments = build_parser().parse_args()
    sys.exit(main(run, arguments))
