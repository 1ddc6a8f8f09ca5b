"""Person-level folds: no face on both sides, strata balanced, folds cover everyone once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mask_age_gender.data.split import person_folds, split_by_person
from mask_age_gender.labels import PHOTO_MASK


def photo_table(people: int = 400, seed: int = 0) -> pd.DataFrame:
    """Seven photo rows per person with the real set's gender and age mix (no files needed)."""
    rng = np.random.default_rng(seed)
    gender = (rng.random(people) < 0.61).astype(int)
    age_grp = rng.choice(3, size=people, p=[0.47, 0.46, 0.07])
    rows = [
        {"person": f"p{i:04d}", "photo": photo, "gender": gender[i], "age_group": age_grp[i]}
        for i in range(people)
        for photo in PHOTO_MASK
    ]
    return pd.DataFrame(rows)


def strata_shares(table: pd.DataFrame) -> pd.Series:
    strata = table["gender"] * 3 + table["age_group"]
    return strata.value_counts(normalize=True).reindex(range(6), fill_value=0.0)


def test_no_person_is_on_both_sides_and_photos_stay_together() -> None:
    table = photo_table()
    train, val = split_by_person(table, n_folds=5, fold=2, seed=7)
    assert set(train["person"]).isdisjoint(val["person"])
    assert len(train) + len(val) == len(table)
    assert (val.groupby("person").size() == 7).all()
    assert (train.groupby("person").size() == 7).all()
    assert 0.17 < val["person"].nunique() / table["person"].nunique() < 0.23


def test_gender_age_proportions_of_train_and_val_are_close() -> None:
    train, val = split_by_person(photo_table(), n_folds=5, fold=0, seed=0)
    gap = (strata_shares(train) - strata_shares(val)).abs()
    assert gap.max() < 0.02, gap


def test_folds_are_disjoint_and_cover_everyone() -> None:
    table = photo_table()
    val_sets = [set(split_by_person(table, 5, fold, seed=3)[1]["person"]) for fold in range(5)]
    for i in range(5):
        for j in range(i + 1, 5):
            assert val_sets[i].isdisjoint(val_sets[j])
    assert set().union(*val_sets) == set(table["person"])


def test_split_is_deterministic_for_a_seed() -> None:
    table = photo_table()
    assert person_folds(table, 5, seed=1).equals(person_folds(table, 5, seed=1))
    assert not person_folds(table, 5, seed=1).equals(person_folds(table, 5, seed=2))


@pytest.mark.parametrize(
    ("n_folds", "fold", "message"),
    [(1, 0, "n_folds must be at least 2"), (5, 5, "data.fold must be in 0..4")],
)
def test_bad_fold_settings_are_refused(n_folds: int, fold: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_by_person(photo_table(20), n_folds, fold, seed=0)


def test_corrected_labels_keep_the_folds_of_the_archive_labels() -> None:
    """``strata``: the archive's own labels draw the folds, the photos keep the corrected
    labels; corrections that would reshuffle folds drawn from them move no one."""
    archive = photo_table(200)
    changed = archive["person"].isin(archive["person"].unique()[::4])  # 50 people
    corrected = archive.copy()
    corrected.loc[changed, "gender"] = 1 - corrected.loc[changed, "gender"]
    corrected.loc[changed, "age_group"] = (corrected.loc[changed, "age_group"] + 1) % 3
    for fold in range(5):
        expected = split_by_person(archive, 5, fold, seed=3)
        got = split_by_person(corrected, 5, fold, seed=3, strata=archive)
        for old, new in zip(expected, got, strict=True):
            assert new["person"].tolist() == old["person"].tolist()
            assert new.equals(
                corrected[corrected["person"].isin(old["person"])].reset_index(drop=True)
            )
    moved = split_by_person(corrected, 5, 0, seed=3)[1]  # folds drawn from the corrections
    assert set(moved["person"]) != set(split_by_person(archive, 5, 0, seed=3)[1]["person"])
    with pytest.raises(ValueError, match="10 people have no fold"):
        split_by_person(corrected, 5, 0, seed=3, strata=archive[archive["person"] >= "p0010"])
