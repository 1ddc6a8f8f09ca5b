"""How much validation macro F1 owes to which people happened to be in validation: a
bootstrap over validation people.

Each resample draws as many people as validation has, with replacement, and keeps each
person's photos together (a person's seven photos are not independent draws: the same face,
the same labels). The interval says how the score would move with other people from the same
population; it says nothing about training noise (seed, initialisation, order), which a
``seed`` sweep measures.

Vectorised: every person's 18 × 18 confusion counts once, then each resample's confusion
matrix is its person weights (how often each person was drawn) @ those counts, and the F1s
come from the matrices by ``models/scores.py``, the definition every score uses.

A run computes its intervals once, when it finishes (``run_summary.py``), and keeps them in
``summary.json`` (``summary_keys``); the report, ``errors.json`` and the ledger read them from
there (``summary_intervals``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mask_age_gender.labels import NUM_CLASSES, TASKS
from mask_age_gender.models.scores import confusion_scores

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
NAMES = ("f1", *(f"f1_{task}" for task in TASKS))  # the scores given an interval, as ``score``'s


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
    scores, tail = confusion_scores(confusions), 100 * (1 - level) / 2
    return {
        name: tuple(float(q) for q in np.percentile(scores[name], [tail, 100 - tail]))
        for name in NAMES
    }


def summary_keys(
    intervals: dict[str, tuple[float, float]], resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, Any]:
    """The intervals as ``summary.json`` keeps them: ``val_f1_ci_low``, ``val_f1_ci_high``, … to
    6 decimals, with ``val_ci_resamples`` and ``val_ci_seed``."""
    bounds = {
        f"val_{name}_ci_{end}": round(bound, 6)
        for name, pair in intervals.items()
        for end, bound in zip(("low", "high"), pair, strict=True)
    }
    return bounds | {"val_ci_resamples": resamples, "val_ci_seed": seed}


def summary_intervals(summary: dict[str, Any]) -> dict[str, tuple[float, float]] | None:
    """The intervals ``summary_keys`` put in a summary; None where it lacks any of them."""
    keys = {name: (f"val_{name}_ci_low", f"val_{name}_ci_high") for name in NAMES}
    if any(summary.get(key) is None for pair in keys.values() for key in pair):
        return None
    return {name: (summary[low], summary[high]) for name, (low, high) in keys.items()}
