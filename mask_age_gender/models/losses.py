"""Losses. Each takes logits (B, C) and targets as class indices (B,) or probabilities (B, C),
so label mixing (CutMix, Mixup) works with all of them.

- ``torch.nn.CrossEntropyLoss`` serves ``ce``, ``label_smoothing`` and ``weighted_ce``;
- :class:`FocalLoss` and :class:`SoftF1Loss` are written here: no library ships a single-label
  multi-class focal loss or a soft macro-F1 loss over an arbitrary number of classes.

:class:`HeadLoss` gives each task of the head (18 classes, or mask 3 / gender 2 / age 3) its
own criterion and sums them with ``loss.head_weights``; :meth:`HeadLoss.task_losses` gives the
unweighted per-task values that ``train/loss_<task>`` and ``val/loss_<task>`` log.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def as_probabilities(
    target: torch.Tensor, num_classes: int, smoothing: float = 0.0
) -> torch.Tensor:
    """Targets as a (B, C) probability matrix, label smoothing applied."""
    if target.dim() == 1:
        target = F.one_hot(target.long(), num_classes).float()
    return target * (1 - smoothing) + smoothing / num_classes


class FocalLoss(nn.Module):
    """Focal loss ``-Σ_c α_c t_c (1 - p_c)^γ log p_c``: down-weights photos already classified
    well, so training concentrates on the hard (often rare) ones. γ = 0 is cross-entropy."""

    def __init__(
        self,
        num_classes: int,
        gamma: float = 2.0,
        weight: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        self.num_classes, self.gamma, self.label_smoothing = num_classes, gamma, label_smoothing
        alpha = torch.ones(num_classes) if weight is None else torch.as_tensor(weight).float()
        self.register_buffer("alpha", alpha)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = logits.log_softmax(dim=-1)
        t = as_probabilities(target, self.num_classes, self.label_smoothing)
        focal = (1 - log_p.exp()).pow(self.gamma)
        return -(self.alpha * t * focal * log_p).sum(dim=-1).mean()


class SoftF1Loss(nn.Module):
    """``1 - macro F1`` computed on probabilities (soft counts of TP, FP, FN per class), so the
    loss optimises the competition metric directly over all ``num_classes`` of its head."""

    def __init__(self, num_classes: int, epsilon: float = 1e-7):
        super().__init__()
        self.num_classes, self.epsilon = num_classes, epsilon

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = logits.softmax(dim=-1)
        t = as_probabilities(target, self.num_classes)
        tp = (p * t).sum(dim=0)
        fp = (p * (1 - t)).sum(dim=0)
        fn = ((1 - p) * t).sum(dim=0)
        f1 = 2 * tp / (2 * tp + fp + fn + self.epsilon)
        return 1 - f1.mean()


def build_criterion(
    factory: Callable[..., nn.Module], num_classes: int, weight: Sequence[float] | None
) -> nn.Module:
    """One criterion for one task, given what its constructor accepts (classes, weights)."""
    accepts = inspect.signature(factory).parameters
    kwargs = {}
    if "num_classes" in accepts:
        kwargs["num_classes"] = num_classes
    if weight is not None:
        if "weight" not in accepts:
            raise ValueError(f"{factory} takes no class weights: drop loss.class_weights")
        kwargs["weight"] = torch.as_tensor(weight, dtype=torch.float32)
    return factory(**kwargs)


class HeadLoss(nn.Module):
    """Weighted sum over the head's tasks of ``criterion(logits[task], target[task])``."""

    def __init__(
        self,
        tasks: Mapping[str, int],
        criterion: Callable[..., nn.Module],
        head_weights: Sequence[float] | None = None,
        class_weights: Mapping[str, Sequence[float]] | None = None,
    ):
        super().__init__()
        weights = [1.0] * len(tasks) if head_weights is None else list(head_weights)
        if len(tasks) > 1 and len(weights) != len(tasks):
            raise ValueError(f"loss.head_weights needs {len(tasks)} values, got {weights}")
        self.weights = dict(zip(tasks, weights if len(tasks) > 1 else [1.0], strict=True))
        class_weights = class_weights or {}
        self.criteria = nn.ModuleDict(
            {
                task: build_criterion(criterion, n, class_weights.get(task))
                for task, n in tasks.items()
            }
        )

    def task_losses(
        self, logits: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Each task's ``criterion(logits[task], target[task])``, **unweighted**: comparable
        across runs whatever their ``loss.head_weights``. :meth:`combine` weighs and sums them."""
        return {
            task: criterion(logits[task].float(), targets[task])
            for task, criterion in self.criteria.items()
        }

    def combine(self, task_losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The loss trained on: ``Σ_task head_weights[task] · task_losses[task]``."""
        return sum(self.weights[task] * task_losses[task] for task in self.criteria)

    def forward(
        self, logits: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        return self.combine(self.task_losses(logits, targets))
