"""Exponential moving average of the weights, with the usual warm-up of the decay
(``callbacks/ema=on``, ``callbacks.ema.decay=…``: conf/callbacks/ema/on.yaml).

Lightning's ``EMAWeightAveraging`` uses a fixed decay: at 0.999 the average remembers ~1000
steps, so a run of a few hundred steps validates weights close to the random initial ones.
Here the decay after ``t`` updates is ``min(decay, (1 + t) / (10 + t))`` (as in TensorFlow's
and timm's EMA), so short runs average their recent steps and long runs reach ``decay``.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import WeightAveraging


def warmup_decay(decay: float, updates: int) -> float:
    """The decay used for the ``updates``-th update (1-based)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class EMA(WeightAveraging):
    """Average the weights after every optimizer step; validation and checkpoints use it.

    One foreach ``lerp`` over all weights per step, and no host sync: the update count
    (``AveragedModel.n_averaged``) is kept on the CPU, where reading it to pick the decay costs
    the GPU nothing.
    """

    def __init__(self, decay: float = 0.999) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"callbacks.ema.decay={decay} must be in [0, 1]")
        self.decay = decay
        super().__init__(multi_avg_fn=self.average)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if self._average_model is not None:
            self._average_model.n_averaged = self._average_model.n_averaged.cpu()

    @torch.no_grad()
    def average(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _: Any) -> None:
        """``AveragedModel``'s ``multi_avg_fn``: one EMA step over tensors of one dtype and
        device; integer buffers (batch norm's step count) take the current value."""
        if not averaged[0].is_floating_point():
            torch._foreach_copy_(averaged, current)
            return
        beta = warmup_decay(self.decay, int(self._average_model.n_averaged))
        torch._foreach_lerp_(averaged, current, 1.0 - beta)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None
