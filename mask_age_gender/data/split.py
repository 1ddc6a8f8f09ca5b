"""Person-level folds: all seven photos of a face fall on one side of the split.

An image-level split put the same face in train and validation (val F1 0.99, test 0.70);
folds here are over people, stratified by gender × age group with sklearn's
``StratifiedGroupKFold``. The strata are the archive's own labels: corrections
(``data.label_overrides``) change a person's labels, never the fold, so runs with and without
them validate on the same people.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold


def person_folds(table: pd.DataFrame, n_folds: int, seed: int) -> pd.Series:
    """Fold number (0..n_folds-1) of each person, indexed by person; deterministic for a seed."""
    if n_folds < 2:
        raise ValueError(f"data.n_folds must be at least 2, got {n_folds}")
    people = table.groupby("person", sort=True)[["gender", "age_group"]].first()
    if len(people) < n_folds:
        raise ValueError(f"{len(people)} people cannot make {n_folds} folds (data.n_folds)")
    strata = people["gender"] * 3 + people["age_group"]
    folds = np.empty(len(people), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a stratum rarer than n_folds is fine: it is spread thinly
        warnings.filterwarnings("ignore", message="The least populated class")
        for fold, (_, val_idx) in enumerate(splitter.split(people, strata, groups=people.index)):
            folds[val_idx] = fold
    return pd.Series(folds, index=people.index, name="fold")


def split_by_person(
    table: pd.DataFrame, n_folds: int, fold: int, seed: int, strata: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, val) photo tables where ``fold`` validates and the other folds train.

    The folds are drawn from the gender and age group of ``strata`` (default: ``table``): the
    same people as the archive labels them, where ``table``'s labels are corrected. The photos
    and labels returned are ``table``'s; each person's fold is the archive's."""
    if not 0 <= fold < n_folds:
        raise ValueError(f"data.fold must be in 0..{n_folds - 1}, got {fold}")
    folds = person_folds(table if strata is None else strata, n_folds, seed)
    missing = set(table["person"]) - set(folds.index)
    if missing:
        raise ValueError(f"{len(missing)} people have no fold, e.g. {min(missing)}")
    in_val = table["person"].map(folds) == fold
    return table[~in_val].reset_index(drop=True), table[in_val].reset_index(drop=True)
