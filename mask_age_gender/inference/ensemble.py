"""Several checkpoints as one model: soft or hard voting, the checkpoints of ``ckpt=`` or a
sweep folder, and the validation people each checkpoint never trained on (to score an ensemble
before submitting)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mask_age_gender.config import list_or_value
from mask_age_gender.data.options import grouped
from mask_age_gender.data.split import person_folds
from mask_age_gender.data.tables import read_labelled
from mask_age_gender.inference.checkpoints import check_checkpoints, load_classifier
from mask_age_gender.models.module import FaceClassifier

ENSEMBLES = ("soft", "hard")
SPLIT_KEYS = ("root", "n_folds", "split_seed", "age_bins", "label_overrides")  # the fold aside


def combine(probs: Sequence[np.ndarray], mode: str = "soft") -> tuple[np.ndarray, np.ndarray]:
    """(labels, mean probabilities) of the members' N × C probabilities.

    ``soft``: the class of highest mean probability. ``hard``: the class most members
    predict; among classes with equally many votes, the one of highest summed probability.
    """
    if mode not in ENSEMBLES:
        raise ValueError(f"ensemble must be one of {', '.join(ENSEMBLES)}, got {mode!r}")
    stacked = np.stack(probs)
    mean = stacked.mean(axis=0)
    if mode == "soft":
        return mean.argmax(axis=1), mean
    votes = np.zeros_like(mean)
    rows = np.arange(mean.shape[0])
    for member in stacked:
        votes[rows, member.argmax(axis=1)] += 1
    tied = votes == votes.max(axis=1, keepdims=True)
    return np.where(tied, mean, -np.inf).argmax(axis=1), mean


def load_members(
    ckpt: str | Sequence[str] | None, ckpt_dir: str | None, expect: dict[str, Any]
) -> dict[str, FaceClassifier]:
    """The checkpoints of ``ckpt=PATH|[A,B,…]`` or ``ckpt_dir=DIR`` (one of them), by path,
    checked against each other and ``expect``."""
    if (ckpt is None) == (ckpt_dir is None):
        raise ValueError("give ckpt=PATH (or ckpt=[A,B,…]) or ckpt_dir=DIR, one of them")
    if ckpt_dir is not None:
        paths = [str(p) for p in find_checkpoints(ckpt_dir)]
    else:
        listed = isinstance(ckpt, Sequence) and not isinstance(ckpt, str)  # a ListConfig too
        paths = [str(c) for c in ckpt] if listed else [str(ckpt)]
    models = {path: load_classifier(path) for path in paths}
    check_checkpoints(models, expect)
    return models


def find_checkpoints(directory: str | Path) -> list[Path]:
    """Every run's best checkpoint under a run or sweep folder (e.g. the k folds)."""
    found = sorted(Path(directory).rglob("checkpoints/best.ckpt"))
    if not found:
        raise FileNotFoundError(
            f"ckpt_dir={directory}: no checkpoints/best.ckpt under it "
            "(each finished run writes RUN/checkpoints/best.ckpt)"
        )
    return found


def labelled_photos(module: FaceClassifier, root: str | None = None) -> pd.DataFrame:
    """Every training photo of the archive a checkpoint was trained on (``root`` if it
    moved), labelled as in its training (``data.label_overrides``), with its person's ``fold``
    as training drew it (from the archive's own labels, not the corrections)."""
    data = dict(module.hparams.config["data"])
    if root is not None:
        data["root"] = root
    archive = grouped(data)[0]
    labelled = read_labelled(archive)
    folds = person_folds(labelled.as_archived, archive.n_folds, archive.split_seed)
    return labelled.photos.assign(fold=labelled.photos["person"].map(folds))


def validation_photos(table: pd.DataFrame, module: FaceClassifier) -> pd.DataFrame:
    """The photos of the people a checkpoint validated on (``table``: :func:`labelled_photos`)."""
    validated = table["fold"] == module.hparams.config["data"]["fold"]
    return table[validated].drop(columns="fold").reset_index(drop=True)


def fold_groups(models: dict[str, FaceClassifier], split: str) -> dict[int, list[str]]:
    """The checkpoints by validation fold; refuses checkpoints whose validation people
    cannot be compared (other archive or split), or, for ``split=val``, other folds."""
    groups: dict[int, list[str]] = {}
    first = None
    for path, module in models.items():
        data = module.hparams.config["data"]  # how its people were split: archive, folds, seed…
        key = {name: list_or_value(data.get(name)) for name in SPLIT_KEYS}
        first = first or key
        differs = {
            name: (first[name], key[name]) for name in SPLIT_KEYS if key[name] != first[name]
        }
        if differs:
            raise ValueError(
                f"split={split}: checkpoint {path} was split differently from the others "
                f"(first vs this: {differs}); their validation people are not the same"
            )
        groups.setdefault(int(data["fold"]), []).append(path)
    if split == "val" and len(groups) > 1:
        raise ValueError(
            f"split=val needs checkpoints validated on the same fold; these use folds "
            f"{sorted(groups)}: use split=oof to join k-fold checkpoints"
        )
    return groups
