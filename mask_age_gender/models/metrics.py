"""Task metrics: macro F1 and accuracy over 18 classes, macro F1 per task, and the losses.

All scores come from one 18×18 confusion matrix, kept by hand (torchmetrics' F1 counts its own
with ``torch.bincount``, which on a GPU reads the data's min and max to the host every update),
and ``scores.confusion_scores`` derives them, the definition everything else scores with.
Per-task scores come from the decoded 18-class prediction, so both heads are scored
alike. Per-head losses (``loss_mask``, ``loss_gender``, ``loss_age``) are kept for the tasks named
in ``loss_tasks`` (the multi head's). Under DDP torchmetrics sums the states, so scores and
losses cover the whole validation set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn
from torchmetrics import MeanMetric, Metric

from mask_age_gender.labels import NUM_CLASSES
from mask_age_gender.models.scores import confusion_scores


class WeightedMean(MeanMetric):
    """``MeanMetric`` without its NaN check of every update, a host sync on a GPU (a non-finite
    loss stops the run anyway). Not ``nan_strategy="disable"``: torchmetrics 1.9 then drops the
    weights (``tests/test_head_losses.py`` catches it)."""

    def update(self, value: torch.Tensor, weight: torch.Tensor) -> None:
        value, weight = value.to(self.dtype), weight.to(self.dtype)
        self.mean_value += (value * weight).sum()
        self.weight += weight.sum()


class Confusion(Metric):
    """Counts of (true, predicted) 18-class pairs; ``compute`` gives the scores from them."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        matrix = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long)
        self.add_state("matrix", matrix, dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        pairs = target.long() * NUM_CLASSES + preds.long()  # no shape or read that needs the data
        self.matrix.view(-1).index_add_(0, pairs, torch.ones_like(pairs))

    def compute(self) -> dict[str, torch.Tensor]:
        return {name: value.float() for name, value in confusion_scores(self.matrix).items()}


OLD_SCORES = ("f1", "acc", "task_f1")  # the torchmetrics modules ``Confusion`` replaced


def _drop_old_scores(module: TaskMetrics, state_dict: dict, prefix: str, *_) -> None:
    """Checkpoints from before ``Confusion`` kept torchmetrics' per-class counts, which cannot
    rebuild the matrix: dropped, so their models still load (an epoch resumed midway from one
    scores only its remaining batches)."""
    old = [k for k in state_dict if k.startswith(tuple(f"{prefix}{n}." for n in OLD_SCORES))]
    for key in old:
        del state_dict[key]
    matrix = f"{prefix}confusion.matrix"
    if old and matrix in module.state_dict(prefix=prefix):  # persistent: a fresh count
        state_dict.setdefault(matrix, torch.zeros_like(module.confusion.matrix))


class TaskMetrics(nn.Module):
    """``f1``, ``acc``, ``f1_mask``, ``f1_gender``, ``f1_age`` (and ``loss`` when given, and
    ``loss_<task>`` for each of ``loss_tasks``: the unweighted per-task loss of
    ``HeadLoss.task_losses``) accumulated over batches, each loss the mean over photos.
    ``persistent=True`` keeps the running sums in checkpoints, so an epoch resumed midway scores
    all of its batches."""

    def __init__(self, persistent: bool = False, loss_tasks: Iterable[str] = ()):
        super().__init__()
        self.confusion = Confusion()
        self.loss = WeightedMean()
        self.task_loss = nn.ModuleDict({task: WeightedMean() for task in loss_tasks})
        for metric in self._metrics():
            metric.persistent(persistent)
        self.register_load_state_dict_pre_hook(_drop_old_scores)

    def _metrics(self) -> list[Metric]:
        return [self.confusion, self.loss, *self.task_loss.values()]

    def update(
        self,
        preds: torch.Tensor,
        target: torch.Tensor,
        loss: torch.Tensor | None = None,
        task_losses: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """``preds``: 18-class labels. ``task_losses``: this batch's loss of each of
        ``loss_tasks`` (other tasks ignored)."""
        # the mean over photos: a short last batch weighs less (the weight made on the device,
        # not copied there from the host)
        if loss is not None:
            self.loss.update(loss.detach(), weight=loss.detach().new_full((), len(target)))
        if task_losses is not None:
            for task, metric in self.task_loss.items():
                value = task_losses[task].detach()
                metric.update(value, weight=value.new_full((), len(target)))
        self.confusion.update(preds, target)

    def compute(self) -> dict[str, torch.Tensor]:
        scores = dict(self.confusion.compute())
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
