"""Scores from a confusion matrix: the one definition of macro F1, per-class and per-task F1 and
accuracy, shared by the training metric (``metrics.Confusion``), ``score``, the error analysis
and the person bootstrap.

A confusion matrix counts (true, predicted) pairs: rows the true class, columns the predicted
one. A class's F1 is 2tp / (2tp + fp + fn); macro F1 is the mean over the classes that occur
in the targets or the predictions (tp + fp + fn > 0), as sklearn's ``f1_score(average="macro")``
without ``labels`` and torchmetrics average; 0 where none does. A ratio with nothing to divide
is 0 (sklearn's ``zero_division=0``). A task's matrix (mask, gender, age) sums the 18-class one
over the other two tasks: class = mask * 6 + gender * 3 + age is the (3, 2, 3) index of the
three, flattened.

The functions take numpy arrays or torch tensors (only operations both have, so the training
metric scores on its device, with no copy to the host) and stacks of matrices ``(..., C, C)``:
the bootstrap scores all its resamples at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mask_age_gender.labels import NUM_CLASSES, TASK_CLASSES

TASK_SHAPE = tuple(TASK_CLASSES.values())  # (mask, gender, age): a class's index, unflattened


def ratio(num: Any, den: Any) -> Any:
    """``num / den``, 0 where ``den`` is 0 (``num`` is 0 there too: counts within counts)."""
    return num / (den + (den == 0))


def per_class(confusion: Any) -> dict[str, Any]:
    """Per class: ``support`` (true photos), ``predicted``, ``precision``, ``recall``, ``f1``."""
    tp = confusion.diagonal(0, -2, -1)
    support, predicted = confusion.sum(-1), confusion.sum(-2)
    return {
        "support": support,
        "predicted": predicted,
        "precision": ratio(tp, predicted),
        "recall": ratio(tp, support),
        "f1": ratio(2 * tp, support + predicted),  # support + predicted = 2tp + fp + fn
    }


def macro_f1(confusion: Any) -> Any:
    """The mean F1 over the classes that occur in the targets or the predictions; 0 if none."""
    classes = per_class(confusion)
    seen = (classes["support"] + classes["predicted"]) > 0
    return ratio(classes["f1"].sum(-1), seen.sum(-1))  # an unseen class's F1 is 0


def task_confusions(confusion: Any) -> dict[str, Any]:
    """Each task's ``(..., k, k)`` matrix, from the 18-class ``(..., 18, 18)`` one."""
    tasks = len(TASK_SHAPE)
    split = confusion.reshape((*confusion.shape[:-2], *TASK_SHAPE, *TASK_SHAPE))
    matrices = {}
    for axis, task in enumerate(TASK_CLASSES):  # true axes -6..-4, predicted axes -3..-1
        others = [a for a in range(tasks) if a != axis]
        matrices[task] = split.sum((*(a - 2 * tasks for a in others), *(a - tasks for a in others)))
    return matrices


def confusion_scores(confusion: Any) -> dict[str, Any]:
    """``f1``, ``acc``, ``f1_mask``, ``f1_gender``, ``f1_age`` of 18-class confusion counts."""
    right = confusion.diagonal(0, -2, -1).sum(-1)
    scores = {"f1": macro_f1(confusion), "acc": ratio(right, confusion.sum((-2, -1)))}
    return scores | {f"f1_{task}": macro_f1(m) for task, m in task_confusions(confusion).items()}


def confusion_matrix(preds: ArrayLike, target: ArrayLike) -> np.ndarray:
    """The 18 × 18 counts of (target, prediction) pairs of 18-class labels."""
    preds, target = np.asarray(preds, dtype=np.int64), np.asarray(target, dtype=np.int64)
    if preds.shape != target.shape:
        raise ValueError(f"{preds.shape} predictions for {target.shape} targets")
    labels = np.concatenate([preds.ravel(), target.ravel()])
    if labels.size and not 0 <= labels.min() <= labels.max() < NUM_CLASSES:
        raise ValueError(f"labels must be 0–{NUM_CLASSES - 1}, got {labels.min()}–{labels.max()}")
    pairs = target.ravel() * NUM_CLASSES + preds.ravel()
    return np.bincount(pairs, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def score(preds: ArrayLike, target: ArrayLike) -> dict[str, float]:
    """``confusion_scores`` of a whole set of 18-class predictions (arrays, columns or CPU
    tensors): what training logs, for a set scored at once."""
    scores = confusion_scores(confusion_matrix(preds, target))
    return {name: float(value) for name, value in scores.items()}
