"""Labels of the task: mask state, gender and age group, and the 18-class code that joins them.

Class = mask * 6 + gender * 3 + age_group; decode with ``(y // 6) % 3, (y // 3) % 2, y % 3``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

import numpy as np

NUM_CLASSES = 18
DEFAULT_AGE_BINS = (30, 60)
TASKS = ("mask", "gender", "age")
TASK_CLASSES = {"mask": 3, "gender": 2, "age": 3}


class Mask(IntEnum):
    WEAR = 0
    INCORRECT = 1
    NOT_WEAR = 2


class Gender(IntEnum):
    MALE = 0
    FEMALE = 1


class AgeGroup(IntEnum):
    YOUNG = 0  # below the first threshold (30)
    MIDDLE = 1  # from the first up to the second threshold (30–59)
    OLD = 2  # from the second threshold on (60+)


# The seven photos of a person, by file stem, and the mask state each shows.
PHOTO_MASK: dict[str, Mask] = {
    "mask1": Mask.WEAR,
    "mask2": Mask.WEAR,
    "mask3": Mask.WEAR,
    "mask4": Mask.WEAR,
    "mask5": Mask.WEAR,
    "incorrect_mask": Mask.INCORRECT,
    "normal": Mask.NOT_WEAR,
}

GENDER_NAMES = {"male": Gender.MALE, "female": Gender.FEMALE}


def check_age_bins(age_bins: Sequence[int]) -> tuple[int, int]:
    """Return the two age thresholds as a tuple, refusing anything but two increasing ints."""
    bins = tuple(int(b) for b in age_bins)
    if len(bins) != 2 or not 0 < bins[0] < bins[1]:
        raise ValueError(f"data.age_bins must be two increasing ages like [30, 60], got {bins}")
    return bins  # type: ignore[return-value]


def age_group(age, age_bins: Sequence[int] = DEFAULT_AGE_BINS):
    """Age group (0, 1, 2) of an age or an array of ages: below, between, at-or-above the bins."""
    low, high = check_age_bins(age_bins)
    return np.digitize(age, [low, high]) if np.ndim(age) else int(np.digitize(age, [low, high]))


def near_threshold(age, threshold, years: int):
    """Whether an age is within ``years`` of an age threshold t: ``t - years <= age < t +
    years``, so ``years`` ages on either side (27–32 around 30 for 3); arrays work elementwise."""
    return (threshold - years <= age) & (age < threshold + years)


def encode(mask, gender, age_grp):
    """18-class label from mask state, gender and age group (ints or arrays)."""
    return mask * 6 + gender * 3 + age_grp


def decode(label):
    """(mask, gender, age_group) from an 18-class label (int or array)."""
    return (label // 6) % 3, (label // 3) % 2, label % 3


def class_name(label: int) -> str:
    """Human-readable name of one of the 18 classes, e.g. ``wear/female/<30``."""
    mask, gender, age = decode(label)
    return f"{Mask(mask).name.lower()}/{Gender(gender).name.lower()}/{AgeGroup(age).name.lower()}"


def attribute_name(task: str, value: int, age_bins: Sequence[int] = DEFAULT_AGE_BINS) -> str:
    """Name of one task's value: ``incorrect``, ``female``, or an age group with its ages."""
    if task == "mask":
        return Mask(value).name.lower()
    if task == "gender":
        return Gender(value).name.lower()
    low, high = check_age_bins(age_bins)
    ages = (f"<{low}", f"{low}–{high - 1}", f"≥{high}")[value]
    return f"{AgeGroup(value).name.lower()} ({ages})"
