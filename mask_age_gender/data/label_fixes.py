"""Corrections of training labels (``data.label_overrides=FILE``): they change labels only.

The folds are drawn from the archive's own labels (gender × age group, ``train/train.csv``),
so a run with corrections validates on the same people as one without; the corrected labels
are the ones trained on and scored against, on both sides of the split.

The file is a csv with one row per person (the profile folder, as in ``train/train.csv``);
empty cells leave a label as it is; other columns (``reason`` …) are ignored::

    person,gender,age,swap_mask,reason
    000123_female_Asian_45,male,,,6 of 7 photos predicted male
    004411_male_Asian_22,,,true,normal and incorrect_mask look swapped

``swap_mask=true`` exchanges the mask labels of the ``normal`` and ``incorrect_mask`` photos.
``python -m mask_age_gender.labels_audit`` writes its suspects in this format.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from mask_age_gender.data.archive import MAX_AGE, ArchiveError, parse_age, relabel
from mask_age_gender.data.table import YES_NO, RowProblems, read_checked_csv
from mask_age_gender.labels import GENDER_NAMES, Mask

COLUMNS = ("person", "gender", "age", "swap_mask")
SWAP = YES_NO | {"": False}  # an empty swap_mask: no swap


@dataclass(frozen=True)
class Override:
    gender: int | None = None
    age: int | None = None
    swap_mask: bool = False


def read_overrides(path: str | Path, people: Collection[str]) -> dict[str, Override]:
    """The overrides of a file by person, refusing (with file and row) unknown people,
    unreadable values, duplicates and rows that change nothing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data.label_overrides={path}: file not found")
    error = partial(ArchiveError, path, what="label overrides")
    table, problems = read_checked_csv(path, (), error, path.name)
    if "person" not in table.columns or not set(COLUMNS[1:]) & set(table.columns):
        has = ",".join(table.columns) or "none"
        raise error([f"needs column person and one of gender,age,swap_mask (has {has})"])
    table = table.reindex(columns=list(COLUMNS), fill_value="")
    known = set(people)
    overrides: dict[str, Override] = {}
    for row, line in table.iterrows():
        override = _parse_row(line, row, problems)
        person = line["person"].strip()
        if person not in known:
            problems.add(row, f"person '{person}' is not in train/train.csv")
        elif person in overrides:
            problems.add(row, f"person '{person}' is listed twice")
        elif override == Override() and row not in problems.rows:
            problems.add(row, "changes nothing (gender, age and swap_mask empty)")
        if row not in problems.rows:
            overrides[person] = override
    problems.raise_any()
    return overrides


def _parse_row(line: pd.Series, row: int, problems: RowProblems) -> Override:
    gender = age = None
    if text := line["gender"].strip():
        gender = GENDER_NAMES.get(text.lower())
        if gender is None:
            problems.add(row, f"gender '{text}' is not male or female")
    if text := line["age"].strip():
        age = parse_age(text)
        if age is None:
            problems.add(row, f"age '{text}' is not an integer in 0..{MAX_AGE}")
    swap = SWAP.get(line["swap_mask"].strip().lower())
    if swap is None:
        problems.add(row, f"swap_mask '{line['swap_mask']}' is not true or false")
    return Override(None if gender is None else int(gender), age, bool(swap))


def apply_overrides(
    table: pd.DataFrame, overrides: Mapping[str, Override], age_bins: tuple[int, int]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The photo table with the corrections made and labels recomputed, and how many
    labels each kind of correction changed (people whose value really differed)."""
    table = table.copy()
    changed = {"people": 0, "gender": 0, "age": 0, "swap_mask": 0}
    for person, override in overrides.items():
        rows = table["person"] == person
        before = table.loc[rows, ["gender", "age", "mask"]].copy()
        if override.gender is not None:
            table.loc[rows, "gender"] = override.gender
        if override.age is not None:
            table.loc[rows, "age"] = override.age
        if override.swap_mask:
            photo = table["photo"]
            table.loc[rows & (photo == "normal"), "mask"] = int(Mask.INCORRECT)
            table.loc[rows & (photo == "incorrect_mask"), "mask"] = int(Mask.NOT_WEAR)
        after = table.loc[rows, ["gender", "age", "mask"]]
        differs = (before != after).any()
        changed["gender"] += int(differs["gender"])
        changed["age"] += int(differs["age"])
        changed["swap_mask"] += int(differs["mask"])
        changed["people"] += int(differs.any())
    return relabel(table, age_bins), changed
