"""Who is in the archive: the people, their ids with the real archive's quirks, the extensions.

Everything here comes from the one archive-level RNG, and no image is drawn, so the plan of
an archive is cheap to inspect (the tests check its quirks on plans of many seeds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mask_age_gender.labels import GENDER_NAMES, PHOTO_MASK, age_group, encode

RACE = "Asian"
FEMALE_SHARE = 0.61
AGE_RANGES = ((18, 29), (30, 59), (60, 75))  # drawn uniformly inside the chosen range
AGE_RANGE_SHARE = (0.47, 0.45, 0.08)  # the real set's share of <30, 30–59, ≥60
JUNK_FOLDER_SHARE = 0.05  # profile folders that carry AppleDouble files
EXTENSION_SHARE = {".jpeg": 0.10, ".png": 0.05}  # the rest are .jpg


@dataclass(frozen=True)
class Person:
    """One profile: the row of train.csv, or one eval person (``id`` empty)."""

    index: int  # seeds the person's own RNG, so looks do not depend on the archive's size
    gender: str
    age: int
    id: str = ""

    @property
    def path(self) -> str:
        return f"{self.id}_{self.gender}_{RACE}_{self.age}"


@dataclass
class Plan:
    """Everything drawn from the archive-level RNG: who is in the archive and how it is laid out."""

    train: list[Person]
    eval: list[Person]
    extensions: list[list[str]]  # per train person, one extension per photo
    eval_order: list[int]  # info.csv order of the eval photos, as drawn person by person
    junk_folders: list[int] = field(default_factory=list)  # train indices with AppleDouble files


def label_of(person: Person, photo: str) -> int:
    """The 18-class label of one photo of a person."""
    return int(
        encode(int(PHOTO_MASK[photo]), int(GENDER_NAMES[person.gender]), age_group(person.age))
    )


def _draw_people(rng: np.random.Generator, n: int) -> list[tuple[str, int]]:
    female = rng.random(n) < FEMALE_SHARE
    ranges = np.array(AGE_RANGES)[rng.choice(len(AGE_RANGES), size=n, p=AGE_RANGE_SHARE)]
    ages = ranges[:, 0] + (rng.random(n) * (ranges[:, 1] - ranges[:, 0] + 1)).astype(int)
    return [("female" if f else "male", int(a)) for f, a in zip(female, ages, strict=True)]


def _add_id_quirks(rng: np.random.Generator, people: list[Person]) -> list[Person]:
    """Two ids get a ``-1`` suffix; a third person takes a fourth one's id (different folder)."""
    if len(people) < 4:
        return people
    a, b, c, d = (int(i) for i in rng.choice(len(people), size=4, replace=False))
    out = list(people)
    for i in (a, b):
        out[i] = Person(out[i].index, out[i].gender, out[i].age, f"{out[i].id}-1")
    other = "female" if out[d].gender == "male" else "male"  # a different path, same id
    age = out[c].age if out[c].age != out[d].age else out[c].age + (1 if out[c].age < 75 else -1)
    out[c] = Person(out[c].index, other, age, out[d].id)
    return out


def _draw_extensions(rng: np.random.Generator, n_people: int, quirks: bool) -> list[list[str]]:
    n = n_people * len(PHOTO_MASK)
    ext = np.array([".jpg"] * n, dtype=object)
    if quirks:
        order, start = rng.permutation(n), 0
        for name, share in EXTENSION_SHARE.items():
            count = round(share * n)
            ext[order[start : start + count]] = name
            start += count
    return [list(ext[i : i + len(PHOTO_MASK)]) for i in range(0, n, len(PHOTO_MASK))]


def plan_archive(people: int, eval_people: int, seed: int, quirks: bool) -> Plan:
    """Draw the metadata of the whole archive without drawing any image."""
    rng = np.random.default_rng(seed)
    drawn = _draw_people(rng, people + eval_people)
    numbers = np.cumsum(rng.integers(1, 4, size=people))  # real ids are increasing, with gaps
    train = [
        Person(i, g, a, f"{int(k):06d}")
        for i, ((g, a), k) in enumerate(zip(drawn, numbers, strict=False))
    ]
    evaluation = [Person(people + i, g, a) for i, (g, a) in enumerate(drawn[people:])]
    extensions = _draw_extensions(rng, people, quirks)
    eval_order = [int(i) for i in rng.permutation(eval_people * len(PHOTO_MASK))]
    plan = Plan(train, evaluation, extensions, eval_order)
    if quirks:
        plan.train = _add_id_quirks(rng, train)
        n_junk = max(1, round(JUNK_FOLDER_SHARE * people)) if people else 0
        plan.junk_folders = sorted(int(i) for i in rng.choice(people, n_junk, replace=False))
    return plan
