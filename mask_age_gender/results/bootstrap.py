"""How much validation macro F1 owes to which people happened to be in validation: a
bootstrap over validation people.

Each resample draws as many people as validation has, with replacement, and keeps each
person's photos together (a person's seven photos are not independent draws: the same face,
the same labels). The interval says how the score would move with other people from the same
population; it says nothing about training noise (seed, initialisation, order), which a
``seed`` sweep measures.

Vectorised: every person's 18 × 18 confusion counts once, then each resample's confusion
matrix is its person weights (how often each person was drawn) @ those counts, and macro F1
comes from the matrix, as ``metrics.score`` defines it: per class 2tp / (2tp + fp + fn), the
mean over the classes present in truth or prediction (torchmetrics leaves a class absent
from both out of the mean, like sklearn's ``f1_score(average="macro")`` without ``labels``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mask_age_gender.labels import NUM_CLASSES, TASK_CLASSES, decode

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


def macro_f1(confusion: np.ndarray) -> np.ndarray:
    """Macro F1 of ``(..., C, C)`` confusion counts (rows: truth, columns: prediction), the
    mean over the classes present in truth or prediction; NaN where none is."""
    confusion = np.asarray(confusion, dtype=float)
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    denom = confusion.sum(axis=-1) + confusion.sum(axis=-2)  # 2tp + fp + fn
    present = denom > 0
    f1 = np.where(present, 2 * tp / np.where(present, denom, 1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return f1.sum(axis=-1) / present.sum(axis=-1)


def task_maps() -> dict[str, np.ndarray]:
    """Per task, the 18 × k one-hot matrix of each class's value of the task: ``M.T @ C @ M``
    turns an 18-class confusion matrix into that task's."""
    values = decode(np.arange(NUM_CLASSES))
    tasks = zip(TASK_CLASSES.items(), values, strict=True)
    return {task: np.eye(n)[value] for (task, n), value in tasks}


def person_confusions(true: ArrayLike, pred: ArrayLike, person: ArrayLike) -> np.ndarray:
    """``(people, 18, 18)`` confusion counts of each person's photos."""
    true, pred = np.asarray(true, dtype=int), np.asarray(pred, dtype=int)
    codes, _ = pd.factorize(np.asarray(person))
    cells = NUM_CLASSES * NUM_CLASSES
    flat = np.bincount(
        codes * cells + true * NUM_CLASSES + pred, minlength=(codes.max(initial=-1) + 1) * cells
    )
    return flat.reshape(-1, NUM_CLASSES, NUM_CLASSES).astype(float)


def resampled_confusions(
    per_person: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED
) -> np.ndarray:
    """``(resamples, 18, 18)``: each the confusion of as many people as ``per_person`` has,
    drawn with replacement, all photos of a drawn person counted as often as it is drawn."""
    people = len(per_person)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(people, np.full(people, 1 / people), size=resamples)
    return (weights.astype(float) @ per_person.reshape(people, -1)).reshape(
        resamples, *per_person.shape[1:]
    )


def person_bootstrap(
    true: ArrayLike,
    pred: ArrayLike,
    person: ArrayLike,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, tuple[float, float]]:
    """The ``level`` percentile interval of ``f1`` and ``f1_mask|gender|age`` (as ``score``
    names them) over ``resamples`` resamples of the people, photos kept together by person."""
    confusions = resampled_confusions(person_confusions(true, pred, person), resamples, seed)
    scores = {"f1": macro_f1(confusions)}
    for task, onehot in task_maps().items():
        scores[f"f1_{task}"] = macro_f1(onehot.T @ confusions @ onehot)
    tail = 100 * (1 - level) / 2
    return {
        name: tuple(float(q) for q in np.nanpercentile(values, [tail, 100 - tail]))
        for name, values in scores.items()
    }
