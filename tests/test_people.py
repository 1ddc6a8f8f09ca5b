"""One person, one answer: grouping photos into people and making each person's answers agree."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from mask_age_gender.inference.grouping import group_photos
from mask_age_gender.inference.people import (
    PeopleOptions,
    PeopleRefused,
    agree_people,
    group,
    people_labels,
)
from mask_age_gender.inference.prediction import predict_archive
from mask_age_gender.results.people_gain import contact_sheet, exact_share, people_lines
from mask_age_gender.train import train

from .conftest import TINY, compose_config

WORN, INCORRECT, NOT_WORN = 0, 1, 2


def photo(mask: int, gender: int, age: int, confidence: float) -> np.ndarray:
    """18 probabilities, as three independent tasks: ``confidence`` on each task's value,
    the rest spread evenly over the others."""
    tasks = []
    for value, size in ((mask, 3), (gender, 2), (age, 3)):
        probs = np.full(size, (1 - confidence) / (size - 1))
        probs[value] = confidence
        tasks.append(probs)
    return np.einsum("m,g,a->mga", *tasks).ravel()  # class = mask * 6 + gender * 3 + age


def person(right: int, wrong: int, confidence_wrong: float = 0.6) -> np.ndarray:
    """Seven photos of a woman ≥ 60 (masks 5 / 1 / 1): ``right`` of them predicted so with
    0.7, ``wrong`` predicted a man < 30 with ``confidence_wrong``."""
    masks = [WORN] * 5 + [INCORRECT, NOT_WORN]
    rows = [photo(masks[i], 1, 2, 0.7) for i in range(right)]
    rows += [photo(masks[right + i], 0, 0, confidence_wrong) for i in range(wrong)]
    return np.stack(rows)


def answers(probs: np.ndarray, groups: np.ndarray, agree: bool, structure: bool) -> np.ndarray:
    return people_labels(probs, probs.argmax(axis=1), groups, agree, structure)


def test_agreeing_makes_a_person_right_on_four_photos_right_on_all_seven() -> None:
    probs = person(right=4, wrong=3)
    alone = probs.argmax(axis=1)
    agreed = answers(probs, np.zeros(7, dtype=int), agree=True, structure=False)
    assert (alone % 6 == 1 * 3 + 2).sum() == 4  # gender and age right on four
    assert (agreed % 6 == 1 * 3 + 2).all()  # woman ≥ 60 on all seven
    assert (agreed // 6).tolist() == (alone // 6).tolist()  # masks stay each photo's own


def test_agreeing_changes_the_one_wrong_member_alone() -> None:
    probs = person(right=6, wrong=1)
    alone = probs.argmax(axis=1)
    agreed = answers(probs, np.zeros(7, dtype=int), agree=True, structure=False)
    assert np.flatnonzero(agreed != alone).tolist() == [6]


def test_agreeing_keeps_people_apart() -> None:
    probs = np.concatenate(
        [person(right=7, wrong=0), person(right=0, wrong=7, confidence_wrong=0.9)]
    )
    groups = np.repeat([0, 1], 7)
    agreed = answers(probs, groups, agree=True, structure=False)
    assert agreed.tolist() == probs.argmax(axis=1).tolist()  # each already agrees with itself


def test_structure_gives_a_group_of_seven_one_incorrect_when_two_compete() -> None:
    # five worn, then two photos that both look incorrectly worn (0.6 and 0.55), none not worn
    rows = [photo(WORN, 1, 2, 0.7) for _ in range(5)]
    rows += [photo(INCORRECT, 1, 2, 0.6), photo(INCORRECT, 1, 2, 0.55)]
    probs = np.stack(rows)
    assert (probs.argmax(axis=1) // 6 == INCORRECT).sum() == 2
    structured = answers(probs, np.zeros(7, dtype=int), agree=False, structure=True)
    masks = structured // 6
    assert masks.tolist() == [WORN] * 5 + [INCORRECT, NOT_WORN]  # the likelier one stays
    assert (structured % 6 == 1 * 3 + 2).all()  # gender and age as each photo had them


def test_structure_leaves_groups_of_other_sizes_alone() -> None:
    probs = np.stack([photo(INCORRECT, 0, 1, 0.8) for _ in range(6)])
    assert answers(probs, np.zeros(6, dtype=int), False, True).tolist() == [6 + 1] * 6


def shoots(people: int, seed: int = 0, spread: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Seven points per person around a centre of its own, shuffled: (points, person)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 12))
    persons = rng.permutation(np.repeat(np.arange(people), 7))
    return centres[persons] + spread * rng.normal(size=(len(persons), 12)), persons


def test_grouping_finds_well_separated_people_exactly() -> None:
    points, persons = shoots(people=20)
    groups = group_photos(points, 7)
    assert adjusted_rand_score(persons, groups) == 1.0
    assert exact_share(groups, persons) == 1.0
    assert groups[0] == 0 and np.bincount(groups).tolist() == [7] * 20


def test_groups_never_exceed_seven_whatever_the_points() -> None:
    points = np.random.default_rng(1).normal(size=(300, 12))  # no people at all
    sizes = np.bincount(group_photos(points, 7))
    assert sizes.max() <= 7 and sizes.sum() == 300


def test_a_photo_far_from_everyone_is_answered_alone() -> None:
    points, _ = shoots(people=5)
    points[3] += 100.0  # a stray photo, far from its person and everyone else
    groups = group_photos(points, 7)
    assert (groups == groups[3]).sum() == 1


def test_exact_share_counts_groups_that_are_one_whole_person() -> None:
    persons = np.array([0, 0, 0, 1, 1, 2, 2])
    found = np.array([0, 0, 0, 1, 2, 2, 2])  # whole person 0; person 1 split; 1 and 2 mixed
    assert exact_share(found, persons) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("photos", "said"),
    [
        (10, "10 photos in 2 groups: 1 of 7 photos, 1 smaller, 0 of one photo"),
        (1, "1 photos in 1 groups: 0 of 7 photos, 0 smaller, 1 of one photo"),
        (7, "7 photos in 1 groups: 1 of 7 photos, 0 smaller, 0 of one photo"),
    ],
)
def test_awkward_counts_run_and_say_what_they_did(
    photos: int, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(0)
    colours = np.repeat(rng.uniform(0.2, 0.8, size=(2, 36)), 7, axis=0)  # two shoots, 0–1
    colours += 0.01 * rng.normal(size=colours.shape)
    embedded = [np.hstack([np.zeros((14, 4)), colours])[:photos]]  # 4 backbone features
    probs = np.tile(photo(WORN, 0, 0, 0.9), (photos, 1))
    options = PeopleOptions(group=True, agree=True, structure=True)
    with caplog.at_level(logging.INFO, logger="mask_age_gender.inference.people"):
        labels, groups = agree_people(probs, probs.argmax(axis=1), embedded, options)
    assert len(labels) == len(groups) == photos
    assert said in caplog.text


def test_agree_without_group_is_refused() -> None:
    with pytest.raises(PeopleRefused, match="need people.group=true"):
        PeopleOptions(agree=True)


@pytest.fixture(scope="module")
def run_dir(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run on the shared archive (whose photos the generator shot person by person)."""
    run = tmp_path_factory.mktemp("people") / "run"
    train(compose_config([*TINY, f"data.root={archive}", "trainer.max_epochs=1"], run))
    return run


@pytest.mark.slow
def test_a_run_groups_its_validation_people_and_measures_each_step(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    predictions = pd.read_csv(run_dir / "val_predictions.csv")
    # the border colours of an untrained-looking tiny model's input find the people: ARI 1.0
    assert summary["people_ari"] >= 0.95
    assert adjusted_rand_score(predictions["person"], predictions["group"]) >= 0.95
    assert summary["people_groups"] == summary["val_people"]
    for key in ("val_f1_people_agree", "val_f1_people_structure", "val_f1_true"):
        assert 0.0 <= summary[key] <= 1.0
    gain = summary["val_f1_people"] - summary["val_f1"]
    assert summary["people_gain"] == pytest.approx(gain, abs=1e-6)


@pytest.mark.slow
def test_predict_writes_groups_and_without_agreeing_the_same_submission(
    archive: Path, run_dir: Path, tmp_path: Path
) -> None:
    ckpt = run_dir / "checkpoints" / "best.ckpt"

    def predict(folder: str, *people: str) -> Path:
        output = tmp_path / folder / "submission.csv"
        overrides = [f"data.root={archive}", f"output={output}", f"ckpt={ckpt}", *people]
        predict_archive(compose_config(overrides, output.parent, name="predict"))
        return output

    off = predict("off")
    grouped = predict("grouped", "people.group=true")
    agreed = predict("agreed", *(f"people.{step}=true" for step in ("group", "agree", "structure")))
    today = (run_dir / "submission.csv").read_bytes()  # the training run's: no people code
    assert off.read_bytes() == grouped.read_bytes() == today
    assert not (off.parent / "groups.csv").exists()
    groups = pd.read_csv(grouped.parent / "groups.csv", dtype={"ImageID": str})
    info = pd.read_csv(archive / "eval" / "info.csv", dtype=str)
    assert groups.columns.tolist() == ["ImageID", "group"]
    assert groups["ImageID"].tolist() == info["ImageID"].tolist()
    truth = pd.read_csv(archive / "eval_truth.csv", dtype={"ImageID": str})
    people = groups.merge(truth[["ImageID", "person"]], on="ImageID")
    assert adjusted_rand_score(people["person"], people["group"]) == 1.0
    answers = pd.read_csv(agreed).merge(people, on="ImageID")
    decided = answers.groupby("group")["ans"].agg(lambda a: (a % 6).nunique())
    assert (decided == 1).all()  # one gender and age group per person
    for _, person_answers in answers.groupby("group")["ans"]:
        assert sorted(person_answers // 6) == [WORN] * 5 + [INCORRECT, NOT_WORN]


def test_the_contact_sheet_shows_mixed_groups_first_with_the_stranger_framed(
    tmp_path: Path,
) -> None:
    paths = []
    for k in range(9):
        paths.append(tmp_path / f"{k}.png")
        Image.new("RGB", (12, 16), (20 * k, 0, 0)).save(paths[-1])
    table = pd.DataFrame(
        {
            "path": [str(p) for p in paths],
            "group": [0, 0, 0, 0, 1, 1, 1, 1, 1],
            "person": ["a"] * 4 + ["b"] * 4 + ["a"],  # group 1: four of b and one of a
            "pred": [0] * 9,
        }
    )
    figure = contact_sheet(table, count=2)
    rows = figure.subfigs
    assert [row._suptitle.get_text() for row in rows] == [
        "group 1: 5 photos of 2 people",
        "group 0: 4 photos of 1 person",
    ]
    panels = [ax for row in rows for ax in row.axes]
    assert len(panels) == 9  # five and four photos; the empty fifth of group 0 removed
    framed = [ax.get_title() for ax in panels if ax.get_frame_on()]
    assert framed == ["a"]  # the one photo of a in b's group


def test_near_duplicate_photos_are_not_taken_for_strays() -> None:
    points, persons = shoots(people=30, spread=0.05)
    copies = np.isin(persons, np.arange(18))  # 18 of 30 people: seven copies of one photo
    for person in range(18):
        points[persons == person] = points[persons == person][0]
    groups = group_photos(points, 7)
    assert np.bincount(groups).tolist() == [7] * 30 and copies.sum() == 18 * 7
    assert adjusted_rand_score(persons, groups) == 1.0


def test_a_photo_without_finite_numbers_spoils_no_one_elses_group() -> None:
    rng = np.random.default_rng(0)
    colours = np.repeat(rng.uniform(0.2, 0.8, size=(3, 36)), 7, axis=0)
    colours += 0.01 * rng.normal(size=colours.shape)
    embedded = np.hstack([rng.normal(size=(21, 4)), colours])
    embedded[3, -1] = np.nan  # one photo's last colour, and another's features
    embedded[10, 0] = np.inf
    groups = group([embedded])
    persons = np.repeat(np.arange(3), 7)
    others = np.setdiff1d(np.arange(21), [3, 10])
    assert adjusted_rand_score(persons[others], groups[others]) == 1.0


def test_a_crowd_of_identical_photos_still_groups_in_sevens() -> None:
    sizes = np.bincount(group_photos(np.zeros((700, 12)), 7))  # no seat among 16 nearest
    assert sizes.max() <= 7 and sizes.sum() == 700


def test_the_report_gives_each_steps_gain_and_the_share_of_the_ceiling_kept() -> None:
    summary = {"val_f1": 0.60, "people_ari": 0.9, "people_exact": 0.8, "people_groups": 10}
    summary |= {"people_seconds": 0.1, "people_gain": 0.06, "val_f1_people": 0.66}
    summary |= {"val_f1_people_agree": 0.65, "val_f1_people_structure": 0.61}
    summary |= {"val_f1_true_agree": 0.67, "val_f1_true_structure": 0.61, "val_f1_true": 0.68}
    text = "\n".join(people_lines(summary))
    assert "| found groups |     0.6 |    0.65 |        0.61 |   0.66 |" in text
    assert "agree alone +0.0500, structure alone +0.0100, both +0.0600" in text
    assert "with the true people +0.0800 (the groups found keep 75% of it)" in text
    assert people_lines({"val_f1": 0.6}) == []  # a run from before the measurement
