"""InceptionV3: each adaptation mode freezes exactly what it should and trains; the aux head works
only where it can and never at evaluation; weights come from local files only."""

import os

import numpy as np
import pytest
import torch
import torch.nn as nn

from trainables.core.classifier import SceneClassifier
from trainables.core.session import TrialFailed, TrialSession
from trainables.core.torch_loop import training_loss
from trainables.inception import (
    BLOCKS,
    PRETRAINED_STATS,
    STEM,
    WeightsError,
    build_model,
    fit,
    imagenet_file,
    read_weights,
)

SMALL = 75  # InceptionV3's minimum input: cheap on CPU
TRUNK = STEM + BLOCKS


def parameters_under(model, prefixes) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if name.startswith(prefixes))


def trainable_count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# config -> the trunk modules that must train (the head always trains)
MODES = [
    ({"mode": "head"}, ()),
    ({"mode": "unfreeze", "unfreeze_blocks": 0}, ()),
    ({"mode": "unfreeze", "unfreeze_blocks": 1}, ("Mixed_7c",)),
    ({"mode": "unfreeze", "unfreeze_blocks": 3}, ("Mixed_7a", "Mixed_7b", "Mixed_7c")),
    ({"mode": "unfreeze", "unfreeze_blocks": 11}, BLOCKS),
    ({"mode": "cut", "cut_after": "Mixed_5b"}, STEM + BLOCKS[:1]),
    ({"mode": "cut", "cut_after": "Mixed_6c", "head_width": 64, "activation": "tanh"}, STEM + BLOCKS[:6]),
    ({"mode": "cut", "cut_after": "Mixed_7c", "head_width": 32, "activation": "elu"}, TRUNK),
]


@pytest.mark.parametrize(
    "config, trained", MODES, ids=[f"{c['mode']}-{c.get('unfreeze_blocks', c.get('cut_after', ''))}" for c, _ in MODES]
)
def test_mode_freezes_exactly_its_blocks_and_trains_one_step(config, trained):
    torch.manual_seed(0)
    model = build_model({**config, "input_size": SMALL}, 8)
    kept = BLOCKS[: BLOCKS.index(config["cut_after"]) + 1] if config["mode"] == "cut" else BLOCKS
    assert [name for name, _ in model.trunk.named_children()] == list(STEM + kept)
    assert model.last_conv is getattr(model.trunk, kept[-1])  # what Grad-CAM explains: the last kept block
    expected = parameters_under(model, ("head.", *(f"trunk.{name}." for name in trained)))
    assert trainable_count(model) == expected > 0
    assert model.aux is None  # 75 px is too small for the aux head

    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss, logits = training_loss(
        model, torch.rand(4, 3, SMALL, SMALL), torch.tensor([0, 1, 2, 3]), nn.CrossEntropyLoss(), config
    )
    loss.backward()
    optimizer.step()
    assert logits.shape == (4, 8) and torch.isfinite(loss)
    after = model.state_dict()
    for name, tensor in after.items():
        module = name.split(".")[1] if name.startswith("trunk.") else "head"
        changed = not torch.equal(before[name], tensor)
        if module == "head" or module in trained:
            assert changed, name
        else:  # frozen: weights and BatchNorm statistics untouched
            assert not changed, name


def test_cut_shrinks_the_network_from_21m_to_5m():
    full = build_model({"mode": "head", "input_size": SMALL}, 8)
    cut = build_model({"mode": "cut", "cut_after": "Mixed_6c", "input_size": SMALL}, 8)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(full) == 21_785_568 + 2048 * 8 + 8  # torchvision's trunk without fc/aux + an 8-class layer
    assert count(cut) == trainable_count(cut) == 5_132_896 + 768 * 8 + 8
    assert trainable_count(full) == 2048 * 8 + 8


def test_aux_head_trains_at_299_px_and_is_off_in_evaluation():
    torch.manual_seed(0)
    config = {"mode": "unfreeze", "unfreeze_blocks": 4, "input_size": 299, "aux_weight": 0.4}
    model = build_model(config, 8)
    assert model.aux is not None and model.aux.fc.out_features == 8
    x, y = torch.rand(2, 3, 299, 299), torch.tensor([1, 5])
    model.train()
    logits, aux = model(x)
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(1)
    loss, main = training_loss(model, x, y, loss_fn, config)
    torch.manual_seed(1)
    again_logits, again_aux = model(x)
    assert torch.allclose(loss, loss_fn(again_logits, y) + 0.4 * loss_fn(again_aux, y))
    loss.backward()
    assert model.aux.fc.weight.grad is not None and model.aux.conv0.conv.weight.grad is not None
    model.eval()
    with torch.no_grad():
        evaluated = model(x)
    assert isinstance(evaluated, torch.Tensor) and evaluated.shape == (2, 8)


@pytest.mark.parametrize(
    "config",
    [
        {"mode": "unfreeze", "unfreeze_blocks": 4, "input_size": 298},  # Mixed_6e 16x16: aux pool/conv can't fit
        {"mode": "unfreeze", "unfreeze_blocks": 3, "input_size": 299},  # Mixed_6e frozen: aux would train nothing
        {"mode": "unfreeze", "unfreeze_blocks": 4, "input_size": 299, "aux_weight": 0.0},
        {"mode": "head", "input_size": 299},
        {"mode": "cut", "cut_after": "Mixed_6e", "input_size": 299},  # nothing after the aux tap
    ],
)
def test_aux_head_is_left_out_where_it_cannot_help(config):
    assert build_model(config, 8).aux is None


def test_frozen_blocks_keep_batchnorm_in_eval_mode():
    model = build_model({"mode": "unfreeze", "unfreeze_blocks": 2, "input_size": SMALL}, 8).train()
    modes = {name: module.training for name, module in model.trunk.named_children()}
    assert modes == {name: name in ("Mixed_7b", "Mixed_7c") for name in TRUNK}
    assert model.head.training
    assert not any(
        m.training
        for m in model.trunk.modules()
        if isinstance(m, nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters())
    )


def test_input_smaller_than_75_is_rejected():
    with pytest.raises(ValueError, match="input_size >= 75"):
        build_model({"mode": "cut", "cut_after": "Mixed_5b", "input_size": 64}, 8)


# --- weights ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"mode": "unfreeze", "unfreeze_blocks": 4, "input_size": 299},
        {"mode": "cut", "cut_after": "Mixed_6a", "input_size": SMALL},
    ],
)
def test_state_dict_file_seeds_every_kept_tensor(inception_weights_file, config):
    saved = torch.load(inception_weights_file, weights_only=True)
    model = build_model(config, 8, weights=str(inception_weights_file))
    trunk = model.trunk.state_dict()
    assert trunk and all(torch.equal(tensor, saved[name]) for name, tensor in trunk.items())
    if model.aux is not None:  # its convolutions come from the file, its class layer is new
        aux = model.aux.state_dict()
        assert all(torch.equal(aux[k], saved[f"AuxLogits.{k}"]) for k in aux if not k.startswith("fc."))
        assert aux["fc.weight"].shape == (8, 768)
    assert model.input_stats == PRETRAINED_STATS  # Google's [-1, 1] scaling, not the dataset's statistics
    assert build_model(config, 8).input_stats is None


def test_imagenet_weights_come_from_torchvisions_cache_only(tmp_path, monkeypatch, inception_weights_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "inception_v3_google-0cc3c7bd.pth"
    assert imagenet_file() == expected
    with pytest.raises(WeightsError) as error:
        read_weights("imagenet")
    message = str(error.value)
    assert str(expected) in message and "download.pytorch.org" in message and "--weights none" in message
    assert "\n" not in message
    expected.parent.mkdir(parents=True)
    os.link(inception_weights_file, expected)  # stands in for the real download, which needs the internet
    model = build_model({"mode": "head", "input_size": SMALL}, 8, weights="ImageNet")
    saved = torch.load(inception_weights_file, weights_only=True)
    assert torch.equal(model.trunk.Mixed_7c.branch_pool.conv.weight, saved["Mixed_7c.branch_pool.conv.weight"])


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"not a checkpoint", "cannot read"),
        ({"weight": torch.zeros(3)}, "not a torchvision inception_v3 state dict: 470 of its 470 trunk tensors"),
        ([torch.zeros(3)], "holds a list, not a state dict"),
    ],
)
def test_unusable_weight_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(WeightsError, match=message):
        read_weights(str(path))


def test_reloading_never_reads_weights():
    model = build_model({"mode": "head", "input_size": SMALL}, 8, pretrained=False, weights="/no/such/file.pth")
    assert model.input_stats is None


# --- fit through the shared loop ---------------------------------------------------------


def test_fit_trains_saves_and_reloads(demo_dataset, inception_weights_file, tmp_path):
    config = {
        "mode": "cut",
        "cut_after": "Mixed_5b",
        "input_size": SMALL,
        "head_width": 32,
        "activation": "elu",
        "optimizer": "sgd",
        "lr": 0.01,
        "momentum": 0.9,
        "batch_size": 64,
        "aug_hflip": True,
    }
    session = TrialSession(max_epochs=1, options={"weights": str(inception_weights_file)})
    classifier = fit(config, demo_dataset, session)
    assert [epoch for epoch, _ in session.history["val_accuracy"]] == [1]
    assert classifier.mean == PRETRAINED_STATS[0] and classifier.std == PRETRAINED_STATS[1]
    assert classifier.num_params == classifier.total_params  # cut: everything retrains
    probabilities = classifier.predict_proba(demo_dataset.x_test[:16])
    assert probabilities.shape == (16, 8) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    reloaded = SceneClassifier.load(classifier.save(tmp_path / "saved"))
    assert np.allclose(reloaded.predict_proba(demo_dataset.x_test[:16]), probabilities, atol=1e-6)


def test_fit_with_missing_weights_fails_the_trial_once(demo_dataset, tmp_path):
    session = TrialSession(max_epochs=1, options={"weights": str(tmp_path / "gone.pth")})
    with pytest.raises(TrialFailed, match="no such file"):
        fit({"mode": "cut", "cut_after": "Mixed_5b", "input_size": SMALL}, demo_dataset, session)
