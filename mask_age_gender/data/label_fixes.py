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
from pathlib import Path

import pandas as pd

from mask_age_gender.data.archive import MAX_AGE, ArchiveError, parse_age, relabel
from mask_age_gender.labels import GENDER_NAMES, Mask

COLUMNS = ("person", "gender", "age", "swap_mask")
SWAP = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False, "": False}


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
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise ArchiveError(path, [f"not a readable csv: {err}"], "label overrides") from err
    if "person" not in table.columns or not set(COLUMNS[1:]) & set(table.columns):
        has = ",".join(table.columns) or "none"
        raise ArchiveError(
            path,
            [f"needs column person and one of gender,age,swap_mask (has {has})"],
            "label overrides",
        )
    table = table.reindex(columns=[*COLUMNS, *table.columns.drop(list(COLUMNS), errors="ignore")])
    table = table.fillna("")
    known = set(people)
    overrides: dict[str, Override] = {}
    problems: list[str] = []
    for i, row in table.iterrows():
        where = f"{path.name} row {i + 1}"
        override, row_problems = _parse_row(row, where)
        person = row["person"].strip()
        if person not in known:
            row_problems.append(f"{where}: person '{person}' is not in train/train.csv")
        elif person in overrides:
            row_problems.append(f"{where}: person '{person}' is listed twice")
        elif override == Override() and not row_problems:
            row_problems.append(f"{where}: changes nothing (gender, age and swap_mask empty)")
        problems += row_problems
        if not row_problems:
            overrides[person] = override
    if problems:
        raise ArchiveError(path, problems, "label overrides")
    return overrides


def _parse_row(row: pd.Series, where: str) -> tuple[Override, list[str]]:
    problems = []
    gender = age = None
    if text := row["gender"].strip():
        gender = GENDER_NAMES.get(text.lower())
        if gender is None:
            problems.append(f"{where}: gender '{text}' is not male or female")
    if text := row["age"].strip():
        age = parse_age(text)
        if age is None:
            problems.append(f"{where}: age '{text}' is not an integer in 0..{MAX_AGE}")
    swap = SWAP.get(row["swap_mask"].strip().lower())
    if swap is None:
        problems.append(f"{where}: swap_mask '{row['swap_mask']}' is not true or false")
    gender = None if gender is None else int(gender)
    return Override(gender, age, bool(swap)), problems


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
