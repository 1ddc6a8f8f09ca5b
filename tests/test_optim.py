"""The optimizer as the module builds it: the learning rate scaled to the batch, fused kernels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from mask_age_gender.config import compose_config
from mask_age_gender.models.optim import build_optimizer, build_scheduler, scaled_lr
from mask_age_gender.train import train

from .conftest import add_run_callback

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


@pytest.mark.slow
def test_onecycle_peaks_at_the_rate_scaled_to_the_batch(
    train_config: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schedule's peak is the scaled rate (issue #24: it was ``optimizer.lr`` as set)."""
    rates: list[float] = []  # the rate of each optimizer step, as the step uses it

    class Rates(pl.Callback):
        def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
            rates.append(optimizer.param_groups[0]["lr"])

    add_run_callback(monkeypatch, Rates())
    cfg = train_config(
        "optimizer=adamw", "optimizer.lr=1e-3", "scheduler=onecycle",
        # global batch 8 × 2 accumulated = 16, 4 × the reference: AdamW's rate × sqrt(4)
        "data.batch_size=8", "+trainer.accumulate_grad_batches=2", "optimizer.reference_batch=4",
        "+trainer.max_steps=10", "trainer.num_sanity_val_steps=0",
    )  # fmt: skip
    train(cfg)
    assert len(rates) == 10
    peak = round(cfg.scheduler.scheduler.pct_start * 10) - 1  # OneCycleLR's last warm-up step
    assert rates.index(max(rates)) == peak
    assert rates[peak] == pytest.approx(2e-3)
    assert rates[0] == pytest.approx(2e-3 / 25)  # OneCycleLR's div_factor


@pytest.mark.parametrize(("max_lr", "peak"), [("null", 2e-3), ("0.05", 0.05)])
def test_an_explicit_onecycle_peak_wins(max_lr: str, peak: float, tmp_path: Path) -> None:
    cfg = compose_config(
        ["optimizer=adamw", "optimizer.lr=1e-3", "optimizer.reference_batch=16",
         "optimizer.exclude_norm_bias=true", "scheduler=onecycle",
         f"scheduler.scheduler.max_lr={max_lr}"],
        tmp_path,
    )  # fmt: skip
    config = OmegaConf.to_container(cfg, resolve=True)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    optimizer = build_optimizer(model, config["optimizer"], global_batch=64)
    build_scheduler(optimizer, config["scheduler"], total_steps=10)
    assert [g["max_lr"] for g in optimizer.param_groups] == pytest.approx([peak, peak])
