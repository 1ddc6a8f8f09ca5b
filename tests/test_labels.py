"""The 18-class code and the age groups."""

from __future__ import annotations

import numpy as np
import pytest

from mask_age_gender.labels import (
    NUM_CLASSES,
    AgeGroup,
    Gender,
    Mask,
    age_group,
    check_age_bins,
    class_name,
    decode,
    encode,
)


def test_every_class_round_trips() -> None:
    labels = np.arange(NUM_CLASSES)
    assert (encode(*decode(labels)) == labels).all()
    for y in range(NUM_CLASSES):
        assert encode(*decode(y)) == y


def test_code_matches_the_competition_table() -> None:
    assert encode(Mask.WEAR, Gender.MALE, AgeGroup.YOUNG) == 0
    assert encode(Mask.WEAR, Gender.FEMALE, AgeGroup.OLD) == 5
    assert encode(Mask.INCORRECT, Gender.MALE, AgeGroup.YOUNG) == 6
    assert encode(Mask.NOT_WEAR, Gender.FEMALE, AgeGroup.OLD) == 17
    assert decode(13) == (Mask.NOT_WEAR, Gender.MALE, AgeGroup.MIDDLE)
    assert class_name(17) == "not_wear/female/old"


def test_default_age_groups_split_at_30_and_60() -> None:
    ages = np.array([0, 29, 30, 59, 60, 100])
    assert age_group(ages).tolist() == [0, 0, 1, 1, 2, 2]
    assert age_group(59) == 1 and isinstance(age_group(59), int)


def test_age_thresholds_are_configurable() -> None:
    assert age_group(np.array([57, 58, 59]), [30, 58]).tolist() == [1, 2, 2]


@pytest.mark.parametrize("bins", [[60, 30], [30], [30, 30], [0, 60], [30, 58, 60]])
def test_bad_age_bins_are_refused(bins: list[int]) -> None:
    with pytest.raises(ValueError, match="data.age_bins"):
        check_age_bins(bins)
