"""Exponential moving average of the weights, with the usual warm-up of the decay
(``callbacks/ema=on``, ``callbacks.ema.decay=…``: conf/callbacks/ema/on.yaml).

Lightning's ``EMAWeightAveraging`` uses a fixed decay: at 0.999 the average remembers ~1000
steps, so a run of a few hundred steps validates weights close to the random initial ones.
Here the decay after ``t`` updates is ``min(decay, (1 + t) / (10 + t))`` (as in TensorFlow's
and timm's EMA), so short runs average their recent steps and long runs reach ``decay``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pytorch_lightning.callbacks import WeightAveraging


def warmup_decay(decay: float, updates: int) -> float:
    """The decay used for the ``updates``-th update (1-based)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


def ema_update(decay: float) -> Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]:
    """``AveragedModel``'s ``avg_fn``: one EMA step, given how many updates came before."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"callbacks.ema.decay={decay} must be in [0, 1]")

    @torch.no_grad()
    def average(ema: torch.Tensor, current: torch.Tensor, updates: Any) -> torch.Tensor:
        beta = warmup_decay(decay, int(updates))
        return beta * ema + (1.0 - beta) * current

    return average


class EMA(WeightAveraging):
    """Average the weights after every optimizer step; validation and checkpoints use it."""

    def __init__(self, decay: float = 0.999) -> None:
        super().__init__(avg_fn=ema_update(decay))

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None
