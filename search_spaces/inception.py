"""InceptionV3's search space: the paper's random search plus how much of the network to adapt.

Define-by-run, so a parameter exists only where it applies: momentum for SGD and RMSprop, N for
`unfreeze`, B for `cut`, the head activation when there is a hidden head layer, each
augmentation's magnitude when that augmentation is on.
"""

from __future__ import annotations

BLOCKS = (
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)
MODES = ("head", "unfreeze", "cut")
HEAD_ACTIVATIONS = ("relu", "elu", "tanh")
NATIVE_INPUT = 299  # what InceptionV3 was designed and pretrained for

OPTIMIZERS = ("sgd", "rmsprop", "adam", "adadelta", "adagrad")
INPUT_SIZES = (75, 96, 128, 160, 224, 299)
# augmentation switch -> (magnitude key, low, high); aug_hflip has no magnitude
AUGMENTATIONS = {
    "aug_hflip": None,
    "aug_rotate": ("aug_rotate_degrees", 5.0, 30.0),
    "aug_zoom": ("aug_zoom_fraction", 0.05, 0.3),
    "aug_shift": ("aug_shift_fraction", 0.05, 0.25),  # width and height shift
    "aug_shear": ("aug_shear_degrees", 5.0, 20.0),
    "aug_brightness": ("aug_brightness_strength", 0.1, 0.4),
}


# The paper's best: SGD, lr 0.001, momentum 0.9, relu head, horizontal flips. The paper does not
# pin the rest; ours: the last 2 blocks unfrozen under a 1024-wide dense head (the classic
# InceptionV3 fine-tuning recipe), dropout 0.2, batch 32.
PAPER_BEST = {
    "mode": "unfreeze",
    "unfreeze_blocks": 2,
    "head_width": 1024,
    "activation": "relu",
    "dropout": 0.2,
    "optimizer": "sgd",
    "lr": 0.001,
    "momentum": 0.9,
    "batch_size": 32,
    "input_size": NATIVE_INPUT,
    **{name: name == "aug_hflip" for name in AUGMENTATIONS},
}
# Where the sweep's trials get no GPU, the default configuration trains at 96 px: a 299 px epoch
# takes minutes on a CPU (pin --fix input_size=299 to override). Decided by the sweep from the
# trials' resources, never by probing the machine that runs the CLI.
CPU_DEFAULTS = {"input_size": 96}


def suggest(trial) -> dict:
    mode = trial.suggest_categorical("mode", list(MODES))
    if mode == "unfreeze":
        trial.suggest_int("unfreeze_blocks", 1, len(BLOCKS))  # 0 would be `head`
    elif mode == "cut":
        trial.suggest_categorical("cut_after", list(BLOCKS))
    if trial.suggest_categorical("head_width", [0, 256, 512, 1024]):
        trial.suggest_categorical("activation", list(HEAD_ACTIVATIONS))
    trial.suggest_float("dropout", 0.0, 0.5)
    optimizer = trial.suggest_categorical("optimizer", list(OPTIMIZERS))
    trial.suggest_float("lr", 1e-4, 0.2, log=True)  # covers the paper's grid 0.001, 0.01, 0.1, 0.2
    if optimizer in ("sgd", "rmsprop"):
        trial.suggest_categorical("momentum", [0.6, 0.8, 0.9])
    trial.suggest_categorical("batch_size", [16, 32, 64])
    trial.suggest_categorical("input_size", list(INPUT_SIZES))
    for name, magnitude in AUGMENTATIONS.items():
        if trial.suggest_categorical(name, [True, False]) and magnitude:
            key, low, high = magnitude
            trial.suggest_float(key, low, high)
    return {}
