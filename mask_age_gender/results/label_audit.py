"""People whose labels the models dispute, from out-of-fold predictions, as label overrides
(the command is ``python -m mask_age_gender.labels_audit``).

Suspects: a gender or age group that most of a person's photos are predicted against (as in
each run's report), and ``normal`` / ``incorrect_mask`` photos that look swapped (the photo
labelled not worn predicted with a mask, and the one labelled incorrect predicted without).
An age-group suspect gets the age nearest its label inside the predicted group. Any
``val_predictions.csv`` works too, but only out-of-fold predictions cover every person.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mask_age_gender.data.archive import MAX_AGE
from mask_age_gender.labels import DEFAULT_AGE_BINS, Mask, attribute_name, check_age_bins
from mask_age_gender.results.error_analysis import label_suspects, with_attributes

COLUMNS = ["person", "gender", "age", "swap_mask", "reason"]


def audit(
    predictions: pd.DataFrame,
    age_bins: Sequence[int] = DEFAULT_AGE_BINS,
    share: float = 0.5,
) -> pd.DataFrame:
    """One row per suspect person, in the format ``data.label_overrides`` reads."""
    age_bins = check_age_bins(age_bins)
    table = with_attributes(predictions, age_bins, boundary_years=0)
    rows: dict[str, dict[str, str]] = {}

    def row(person: str, why: str) -> dict[str, str]:
        """The person's row, ``why`` added to its reasons."""
        entry = rows.setdefault(person, dict.fromkeys(COLUMNS, "") | {"person": person})
        entry["reason"] = "; ".join(filter(None, [entry["reason"], why]))
        return entry

    age_groups = {attribute_name("age", group, age_bins): group for group in range(3)}
    for s in label_suspects(table, age_bins, share).itertuples():
        why = f"{s.attribute}: {s.disputing} of {s.photos} photos predicted {s.predicted}"
        entry = row(s.person, f"{why} (label {s.label})")
        if s.attribute == "gender":
            entry["gender"] = s.predicted
        else:
            entry["age"] = str(nearest_age(s.age, age_groups[s.predicted], age_bins))
    why = "the not-worn photo predicted with a mask, the incorrect one without"
    for person in swapped_mask_people(table):
        row(person, why)["swap_mask"] = "true"
    return pd.DataFrame(list(rows.values()), columns=COLUMNS).sort_values("person")


def swapped_mask_people(table: pd.DataFrame) -> list[str]:
    """People whose photo labelled not worn is predicted with a mask (incorrect, or worn: the
    two are easily confused) and whose photo labelled incorrect is predicted not worn."""
    pair = table[table["true_mask"].isin([Mask.INCORRECT, Mask.NOT_WEAR])]
    bare = pair["pred_mask"] == Mask.NOT_WEAR
    looks_swapped = np.where(pair["true_mask"] == Mask.NOT_WEAR, ~bare, bare)
    per_person = pd.Series(looks_swapped, index=pair.index).groupby(pair["person"])
    counts = per_person.agg(["sum", "size"])
    return sorted(counts.index[(counts["sum"] == 2) & (counts["size"] == 2)])


def nearest_age(age: int, group: int, age_bins: tuple[int, int]) -> int:
    """The age nearest ``age`` inside an age group."""
    low = (0, *age_bins)[group]
    high = (*(t - 1 for t in age_bins), MAX_AGE)[group]
    return int(np.clip(age, low, high))
