"""Task metrics with torchmetrics: macro F1 and accuracy over 18 classes, macro F1 per task.

Per-task scores come from the decoded 18-class prediction, so both heads are scored alike.
Per-head losses (``loss_mask``, ``loss_gender``, ``loss_age``) are kept for the tasks named in
``loss_tasks`` (the multi head's). Under DDP torchmetrics gathers the states, so scores and
losses cover the whole validation set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from mask_age_gender.labels import NUM_CLASSES, TASK_CLASSES, decode


class WeightedMean(MeanMetric):
    """``MeanMetric`` without its NaN check of every update, a host sync on a GPU (a non-finite
    loss stops the run anyway). Not ``nan_strategy="disable"``: torchmetrics 1.9 then drops the
    weights (``tests/test_head_losses.py`` catches it)."""

    def update(self, value: torch.Tensor, weight: torch.Tensor) -> None:
        value, weight = value.to(self.dtype), weight.to(self.dtype)
        self.mean_value += (value * weight).sum()
        self.weight += weight.sum()


class TaskMetrics(nn.Module):
    """``f1``, ``acc``, ``f1_mask``, ``f1_gender``, ``f1_age`` (and ``loss`` when given, and
    ``loss_<task>`` for each of ``loss_tasks``: the unweighted per-task loss of
    ``HeadLoss.task_losses``) accumulated over batches, each loss the mean over photos.
    ``persistent=True`` keeps the running sums in checkpoints, so an epoch resumed midway scores
    all of its batches. ``sync=False`` scores this process's batches alone, without waiting for
    the other DDP processes."""

    def __init__(self, persistent: bool = False, sync: bool = True, loss_tasks: Iterable[str] = ()):
        super().__init__()
        # no checks of the inputs per update: each would make the CPU wait for the GPU (labels
        # are checked when the archive is read; a non-finite loss stops the run before these)
        options = {"sync_on_compute": sync}
        scores = {**options, "validate_args": False}
        self.f1 = MulticlassF1Score(NUM_CLASSES, average="macro", **scores)
        self.acc = MulticlassAccuracy(NUM_CLASSES, average="micro", **scores)
        self.task_f1 = nn.ModuleDict(
            {
                task: MulticlassF1Score(n, average="macro", **scores)
                for task, n in TASK_CLASSES.items()
            }
        )
        self.loss = WeightedMean(**options)
        self.task_loss = nn.ModuleDict({task: WeightedMean(**options) for task in loss_tasks})
        for metric in self._metrics():
            metric.persistent(persistent)

    def _metrics(self) -> list:
        return [self.f1, self.acc, *self.task_f1.values(), self.loss, *self.task_loss.values()]

    def update(
        self,
        preds: torch.Tensor,
        target: torch.Tensor,
        loss: torch.Tensor | None = None,
        task_losses: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """``task_losses``: this batch's loss of each of ``loss_tasks`` (other tasks ignored)."""
        # the mean over photos: a short last batch weighs less (the weight made on the device,
        # not copied there from the host)
        if loss is not None:
            self.loss.update(loss.detach(), weight=loss.detach().new_full((), len(target)))
        if task_losses is not None:
            for task, metric in self.task_loss.items():
                value = task_losses[task].detach()
                metric.update(value, weight=value.new_full((), len(target)))
        self.f1.update(preds, target)
        self.acc.update(preds, target)
        for metric, p, t in zip(self.task_f1.values(), decode(preds), decode(target), strict=True):
            metric.update(p, t)

    def compute(self) -> dict[str, torch.Tensor]:
        scores = {"f1": self.f1.compute(), "acc": self.acc.compute()}
        scores |= {f"f1_{task}": metric.compute() for task, metric in self.task_f1.items()}
        if self.loss.update_count:
            scores["loss"] = self.loss.compute()
        scores |= {
            f"loss_{task}": metric.compute()
            for task, metric in self.task_loss.items()
            if metric.update_count
        }
        return scores

    def reset(self) -> None:
        for metric in self._metrics():
            metric.reset()


def score(preds: ArrayLike, target: ArrayLike) -> dict[str, float]:
    """The same scores for a whole set of 18-class predictions at once (tensors, arrays or
    columns; in this process: after a DDP fit the other processes may be gone)."""
    metrics = TaskMetrics(sync=False)
    metrics.update(torch.tensor(np.asarray(preds)), torch.tensor(np.asarray(target)))
    return {name: float(value) for name, value in metrics.compute().items()}
