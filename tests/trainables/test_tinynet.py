"""Every TinyNet architectural option builds, runs forward and backward, and counts parameters right."""

import pytest
import torch

from search_spaces.tinynet import PAPER_BEST
from trainables.tinynet import ACTIVATIONS, INITS, build_model


def forward(config, size=32, batch=2):
    model = build_model(config, 5)
    model.train()
    out = model(torch.rand(batch, 3, size, size))
    out.sum().backward()
    return model, out


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("init", INITS)
def test_activations_and_inits(activation, init):
    _, out = forward({"activation": activation, "init": init, "blocks": 2, "base_width": 8})
    assert out.shape == (2, 5) and torch.isfinite(out).all()


@pytest.mark.parametrize("blocks", range(1, 7))
@pytest.mark.parametrize("kernel_size", [3, 5, 7])
def test_depths_and_kernels(blocks, kernel_size):
    _, out = forward({"blocks": blocks, "kernel_size": kernel_size, "base_width": 8}, size=64)
    assert out.shape == (2, 5)


@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("residual", [True, False])
@pytest.mark.parametrize("depthwise", [True, False])
@pytest.mark.parametrize("convs_per_block", [1, 2])
def test_block_options(batchnorm, residual, depthwise, convs_per_block):
    config = {
        "batchnorm": batchnorm,
        "residual": residual,
        "depthwise": depthwise,
        "convs_per_block": convs_per_block,
        "blocks": 3,
        "base_width": 8,
    }
    model, out = forward(config)
    assert out.shape == (2, 5)
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert has_bn == batchnorm


def test_paper_config_widths_and_downsampling():
    model = build_model(PAPER_BEST, 8)
    convs = [m for m in model.features.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    assert all(c.stride == (2, 2) and c.padding == (1, 1) and c.kernel_size == (3, 3) for c in convs)
    assert model.features(torch.rand(1, 3, 64, 64)).shape == (1, 256, 4, 4)
    weights = 3 * 32 * 9 + 32 * 64 * 9 + 64 * 128 * 9 + 128 * 256 * 9
    batchnorm = 2 * (32 + 64 + 128 + 256)
    head = 256 * 8 + 8
    assert sum(p.numel() for p in model.parameters()) == weights + batchnorm + head


def test_depthwise_separable_cuts_parameters():
    plain = build_model({**PAPER_BEST, "depthwise": False}, 8)
    separable = build_model({**PAPER_BEST, "depthwise": True}, 8)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(separable) < count(plain) / 3


def test_zeros_init_zeroes_every_weight():
    model = build_model({**PAPER_BEST, "init": "zeros"}, 8)
    assert all(
        float(m.weight.detach().abs().sum()) == 0
        for m in model.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    )
