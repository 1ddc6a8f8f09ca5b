"""Person-level folds: all seven photos of a face fall on one side of the split.

An image-level split put the same face in train and validation (val F1 0.99, test 0.70);
folds here are over people, stratified by gender × age group with sklearn's
``StratifiedGroupKFold``.
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
    table: pd.DataFrame, n_folds: int, fold: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, val) photo tables where ``fold`` validates and the other folds train."""
    if not 0 <= fold < n_folds:
        raise ValueError(f"data.fold must be in 0..{n_folds - 1}, got {fold}")
    in_val = table["person"].map(person_folds(table, n_folds, seed)) == fold
    return table[~in_val].reset_index(drop=True), table[in_val].reset_index(drop=True)
