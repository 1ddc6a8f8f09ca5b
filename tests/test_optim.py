"""The optimizer as the module builds it: the learning rate scaled to the batch, fused kernels."""

from __future__ import annotations

import pytest
import torch

from mask_age_gender.models.optim import build_optimizer, scaled_lr

SGD = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1, "momentum": 0.9}
ADAMW = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1.0e-3}


def test_the_rate_scales_linearly_for_sgd_and_by_the_square_root_for_adam() -> None:
    assert scaled_lr(0.1, SGD["_target_"], 512, 256) == pytest.approx(0.2)
    assert scaled_lr(1e-3, ADAMW["_target_"], 1024, 256) == pytest.approx(2e-3)
    assert scaled_lr(1e-3, "torch.optim.Adam", 64, 256) == pytest.approx(5e-4)
    model = torch.nn.Linear(3, 2)
    built = build_optimizer(model, {**SGD, "reference_batch": 256}, global_batch=128)
    assert built.param_groups[0]["lr"] == pytest.approx(0.05)
    assert build_optimizer(model, SGD, global_batch=128).param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="needs the global batch size"):
        build_optimizer(model, {**ADAMW, "reference_batch": 256})


def test_optimizers_are_fused_where_torch_has_the_kernel_unless_the_config_says() -> None:
    model = torch.nn.Linear(3, 2)  # on the CPU, where AdamW and SGD have fused kernels
    assert build_optimizer(model, ADAMW).defaults["fused"] is True
    assert build_optimizer(model, SGD).defaults["fused"] is True
    chosen = build_optimizer(model, {**ADAMW, "foreach": False})
    assert not chosen.defaults["fused"] and chosen.defaults["foreach"] is False
