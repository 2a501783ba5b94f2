"""Training arithmetic, data layout and compilation: each option trains for real, on this CPU."""

import numpy as np
import pytest
import torch

from trainables.core.data import DataSpec, load_dataset
from trainables.core.device import COMPILE_MODES, compiled, images_on_device, resolve_precision
from trainables.core.session import TrialSession
from trainables.tinynet import build_model, fit

SMALL = {"blocks": 2, "base_width": 8, "input_size": 32, "lr": 1e-2, "lr_finder": False, "aug_hflip": True}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_dataset():
    return load_dataset(DataSpec(per_class=4))


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("fp32", "fp32"),
        ("bf16", "bf16"),
        ("fp16", "fp16"),
        ("auto", "fp32"),  # CPU bf16 is opt-in: it gives NaN gradients in some configurations
    ],
)
def test_precision_resolves_per_device(requested, expected):
    precision = resolve_precision(requested, CPU)
    assert precision.name == expected
    assert (precision.grad_scaler() is not None) == (expected == "fp16")  # only fp16 needs loss scaling


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        resolve_precision("fp8", CPU)


def test_autocast_runs_convolutions_in_the_chosen_dtype():
    conv = torch.nn.Conv2d(3, 4, 3)
    with resolve_precision("bf16", CPU).autocast():
        assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16
    with resolve_precision("fp32", CPU).autocast():
        assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.float32


def test_images_are_laid_out_once_as_contiguous_nchw_on_cpu():
    images = np.random.default_rng(0).integers(0, 256, size=(5, 6, 7, 3), dtype=np.uint8)
    tensor = images_on_device(images, CPU)
    assert tensor.shape == (5, 3, 6, 7) and tensor.is_contiguous() and tensor.dtype == torch.uint8
    assert torch.equal(tensor, torch.from_numpy(images).permute(0, 3, 1, 2))
    assert tensor[[4, 0]].is_contiguous()  # a batch is an index slice, no further copy needed


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16", "auto"])
def test_every_precision_trains_and_keeps_float32_weights(tiny_dataset, precision):
    torch.manual_seed(0)
    session = TrialSession(max_epochs=3, options={"precision": precision})
    classifier = fit(SMALL, tiny_dataset, session)
    losses = [value for _, value in session.history["train_loss"]]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]  # it learns
    assert all(p.dtype == torch.float32 for p in classifier.model.parameters())
    probs = classifier.predict_proba(tiny_dataset.x_test[:4])  # inference in float32 on CPU
    assert probs.dtype == np.float32 and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_compile_option_trains_through_torch_compile(tiny_dataset):
    torch.manual_seed(0)
    session = TrialSession(max_epochs=1, options={"compile": "default"})
    classifier = fit({**SMALL, "blocks": 1}, tiny_dataset, session)
    assert np.isfinite(session.history["train_loss"][0][1])
    assert not hasattr(classifier.model, "_orig_mod")  # the kept (and logged) model is the plain module


def test_compiled_is_a_no_op_without_a_mode_and_refuses_unknown_modes():
    model = build_model({"blocks": 1, "base_width": 8}, 3)
    assert compiled(model, None) is model
    assert "default" in COMPILE_MODES
    with pytest.raises(ValueError, match="unknown compile mode"):
        compiled(model, "fastest")


def test_default_precision_trains_the_configuration_cpu_bf16_breaks():
    """A 4-block TinyNet with 7x7 kernels at 32 px: its last block convolves 2x2 maps, and with
    CPU bf16 (torch 2.14.1, oneDNN) a weight gradient turns NaN within a few steps."""
    from trainables.tinynet import build_model

    torch.manual_seed(0)
    model = build_model(
        {
            "blocks": 4,
            "base_width": 32,
            "convs_per_block": 2,
            "kernel_size": 7,
            "init": "glorot_normal",
            "batchnorm": True,
        },
        8,
    )
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 8, (64,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4)
    precision = resolve_precision("auto", CPU)
    for _ in range(20):
        with precision.autocast():
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
