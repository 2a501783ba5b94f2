"""Benchmark: the trainable's TinyNet recipe against a plain PyTorch loop, same split, same seeds.

Two arms, interleaved per seed (plain, trainable, plain, trainable, ...) so that other work on a
shared machine disturbs both alike:

- `plain`: about 40 lines of PyTorch written here, the recipe as a practitioner writes it (the
  net of `search_spaces.tinynet.SEARCH_STARTS[0]`: 4 stride-2 blocks of two 3x3 conv+BN+ReLU,
  32-64-128-256, global average pooling, dropout 0.3; AdamW, one-cycle to 3e-3, label smoothing
  0.1, batch 64; per-channel normalisation from the training images; a horizontal flip, then 4-px
  reflect padding and a random 64x64 crop; evaluated once, after the last epoch);
- `trainable`: `SEARCH_STARTS[0]` through `fit_and_evaluate`, the path every sweep trial takes.

Both train on the sweep's training split (`load_dataset`, split seed 0: the same 1,598 images of
mit_split_64) and are scored on the test images. `--set KEY=VALUE` changes the trainable's
configuration (one change at a time, to find what a difference costs); `--family mlp --arms
trainable` runs another family's paper configuration through the same path.

    python -m benchmarks.plain_loop [--seeds 0,1,2] [--epochs 30] [--arms plain,trainable] [--set KEY=VALUE]
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from benchmarks.common import CACHE, BenchmarkError, format_table, main, parser

ARMS = ("plain", "trainable")


def trial_functions():
    """The project's trial path, imported in this one place (it moves with the sweep package)."""
    from trainables.training import fit_and_evaluate, seed_everything, set_threads

    return fit_and_evaluate, seed_everything, set_threads


def recipe(family: str = "tinynet") -> dict:
    """TinyNet's recipe start; another family's paper configuration as a CPU sweep runs it."""
    from trainables.families import get_family

    if family == "tinynet":
        from search_spaces.tinynet import SEARCH_STARTS

        return dict(SEARCH_STARTS[0])
    return get_family(family).default_config(gpu=False)


def run(args):
    from trainables.core.data import DataSpec, load_dataset

    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if unknown := sorted(set(arms) - set(ARMS)):
        raise BenchmarkError(f"--arms: no arm {unknown[0]!r}; choose from {', '.join(ARMS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    epochs = 2 if args.quick else args.epochs
    if args.family != "tinynet" and "plain" in arms:
        raise BenchmarkError(f"--family {args.family}: the plain arm is TinyNet's recipe; pass --arms trainable")
    config = {**recipe(args.family), **parse_overrides(args.set)}
    options = parse_overrides(args.option)
    source = str(Path(args.data).resolve()) if args.data != "demo" else "demo"
    dataset = load_dataset(DataSpec(source=source, per_class=4 if args.quick else None, cache_dir=str(CACHE)))
    _, seed_everything, set_threads = trial_functions()
    set_threads(args.threads)
    runs = []
    for seed in seeds:
        for arm in arms:
            seed_everything(seed)
            started = time.perf_counter()
            if arm == "plain":
                accuracy = plain_loop(dataset, seed=seed, epochs=epochs)
            else:
                accuracy = trainable(dataset, config, epochs=epochs, family=args.family, options=options)
            wall = time.perf_counter() - started
            runs.append({"arm": arm, "seed": seed, "test_accuracy": accuracy, "wall_seconds": wall})
            print(f"{arm:<10} seed {seed}: test {accuracy:.3f} in {wall:.0f} s", flush=True)
    rows = [summary(arm, [r for r in runs if r["arm"] == arm]) for arm in arms]
    payload = {
        "settings": {
            "epochs": epochs,
            "seeds": seeds,
            "threads": args.threads,
            "data": source,
            "train_images": len(dataset.y_train),
            "test_images": len(dataset.y_test),
            "family": args.family,
            "trainable_config": config,
            "options": options,
        },
        "runs": runs,
        "arms": rows,
    }
    columns = ["arm", "epochs", "seeds", "test_mean", "test_each", "wall_mean_s"]
    return args.name, payload, format_table([{**r, "epochs": epochs} for r in rows], columns)


def summary(arm: str, runs: list[dict]) -> dict:
    accuracies = [r["test_accuracy"] for r in runs]
    return {
        "arm": arm,
        "seeds": ",".join(str(r["seed"]) for r in runs),
        "test_mean": statistics.fmean(accuracies),
        "test_each": " ".join(f"{a:.3f}" for a in accuracies),
        "wall_mean_s": statistics.fmean(r["wall_seconds"] for r in runs),
    }


def parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BenchmarkError(f"--set {pair}: expected KEY=VALUE, e.g. --set aug_shift=false")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value  # a bare string, e.g. optimizer=adam
    return overrides


def trainable(dataset, config: dict, *, epochs: int, family: str = "tinynet", options: dict | None = None) -> float:
    from trainables.core.session import TrialSession

    fit_and_evaluate, _, _ = trial_functions()
    outcome = fit_and_evaluate(config, dataset, family, TrialSession(max_epochs=epochs, options=options))
    return outcome.test.accuracy


def plain_loop(dataset, *, seed: int, epochs: int, batch_size: int = 64, lr: float = 3e-3) -> float:
    """The recipe in plain PyTorch: default init, a ragged last batch, no validation pass."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(seed)
    train = torch.tensor(dataset.x_train).permute(0, 3, 1, 2).float() / 255
    test = torch.tensor(dataset.x_test).permute(0, 3, 1, 2).float() / 255
    mean, std = train.mean(dim=(0, 2, 3), keepdim=True), train.std(dim=(0, 2, 3), keepdim=True)
    train, test = (train - mean) / std, (test - mean) / std
    y_train, y_test = torch.tensor(dataset.y_train), torch.tensor(dataset.y_test)

    def block(width_in, width):
        return [
            nn.Conv2d(width_in, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]

    widths = [3, 32, 64, 128, 256]
    layers = [layer for a, b in zip(widths, widths[1:]) for layer in block(a, b)]
    net = nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(256, dataset.num_classes)
    )
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    steps = (len(train) + batch_size - 1) // batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    size, pad = train.shape[-1], 4
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(train))
        for start in range(0, len(train), batch_size):
            index = order[start : start + batch_size]
            x, n = train[index], len(index)
            x = torch.where(torch.rand(n, 1, 1, 1) < 0.5, x.flip(-1), x)
            x = F.pad(x, (pad,) * 4, mode="reflect")
            # A random size x size crop per image: integer offsets, so pixels move, never blend.
            dy, dx = torch.randint(0, 2 * pad + 1, (2, n, 1))
            rows, cols = dy + torch.arange(size), dx + torch.arange(size)
            x = x[
                torch.arange(n)[:, None, None, None],
                torch.arange(3)[:, None, None],
                rows[:, None, :, None],
                cols[:, None, None, :],
            ]
            loss = loss_fn(net(x), y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    net.eval()
    with torch.no_grad():
        predictions = torch.cat([net(test[i : i + 256]).argmax(1) for i in range(0, len(test), 256)])
    return (predictions == y_test).float().mean().item()


def build_parser():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2", help="training seeds, comma-separated (default 0,1,2)")
    p.add_argument("--epochs", type=int, default=30, help="epochs per run (default 30)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for both arms (default 2)")
    p.add_argument("--arms", default=",".join(ARMS), help=f"which arms, in order (default {','.join(ARMS)})")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change the trainable arm's configuration (JSON values; repeatable)",
    )
    p.add_argument(
        "--family", default="tinynet", help="the trainable arm's family (default tinynet; others: --arms trainable)"
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a sweep-wide family option for the trainable arm, e.g. weights=none (repeatable)",
    )
    p.add_argument("--name", default="plain_loop", help="result file name (default plain_loop)")
    return p


if __name__ == "__main__":
    import sys

    sys.exit(main(run, build_parser().parse_args()))
