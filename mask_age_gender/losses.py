"""Losses, one criterion per head task, summed with the configured head weights."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn


class HeadLoss(nn.Module):
    """Weighted sum over the head's tasks of ``criterion(logits[task], target[task])``."""

    def __init__(
        self,
        tasks: Mapping[str, int],
        criterion: Callable[..., nn.Module],
        head_weights: Sequence[float] | None = None,
    ):
        super().__init__()
        weights = [1.0] * len(tasks) if head_weights is None else list(head_weights)
        if len(tasks) > 1 and len(weights) != len(tasks):
            raise ValueError(f"loss.head_weights needs {len(tasks)} values, got {weights}")
        self.weights = dict(zip(tasks, weights if len(tasks) > 1 else [1.0], strict=True))
        self.criteria = nn.ModuleDict({task: criterion() for task in tasks})

    def forward(
        self, logits: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        return sum(
            self.weights[task] * self.criteria[task](logits[task].float(), targets[task])
            for task in self.criteria
        )
