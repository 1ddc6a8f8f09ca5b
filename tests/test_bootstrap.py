"""The 95 % interval of validation macro F1 by bootstrap over validation people."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mask_age_gender.labels import NUM_CLASSES
from mask_age_gender.models.metrics import score
from mask_age_gender.results.bootstrap import (
    macro_f1,
    person_bootstrap,
    person_confusions,
    resampled_confusions,
    task_maps,
)
from mask_age_gender.results.ledger import collect_ledger

from .tiny_runs import FINISHED, tiny_sweep

PHOTOS = 7  # a person's photos


def people(n: int, right: float = 0.75, seed: int = 0) -> pd.DataFrame:
    """``n`` people of 7 photos each, one class per person; a person's photos are all right
    (share ``right`` of the people) or all wrong (a shifted class)."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, NUM_CLASSES, n)
    pred = np.where(rng.random(n) < right, true, (true + rng.integers(1, NUM_CLASSES, n)) % 18)
    return pd.DataFrame(
        {
            "person": np.repeat([f"p{k}" for k in range(n)], PHOTOS),
            "true": np.repeat(true, PHOTOS),
            "pred": np.repeat(pred, PHOTOS),
        }
    )


def interval(table: pd.DataFrame, name: str = "f1", **options) -> tuple[float, float]:
    return person_bootstrap(table["true"], table["pred"], table["person"], **options)[name]


def test_the_confusion_scores_are_metrics_score_even_with_classes_absent() -> None:
    rng = np.random.default_rng(3)
    for classes_true, classes_pred in ((18, 18), (5, 7), (2, 18)):
        true, pred = rng.integers(0, classes_true, 200), rng.integers(0, classes_pred, 200)
        pred[:100] = true[:100]
        confusion = person_confusions(true, pred, np.zeros(len(true))).sum(axis=0)
        ours = {"f1": macro_f1(confusion)}
        ours |= {f"f1_{task}": macro_f1(m.T @ confusion @ m) for task, m in task_maps().items()}
        theirs = score(pred, true)
        assert {k: pytest.approx(theirs[k], abs=1e-6) for k in ours} == ours


def test_the_interval_holds_the_score_and_is_seeded() -> None:
    table = people(100)
    scores = score(table["pred"], table["true"])
    intervals = person_bootstrap(table["true"], table["pred"], table["person"])
    assert set(intervals) == {"f1", "f1_mask", "f1_gender", "f1_age"}
    for name, (low, high) in intervals.items():
        assert low < scores[name] < high, name
    assert interval(table) == interval(table, seed=0)
    assert interval(table) != interval(table, seed=1)


def test_the_interval_narrows_as_people_are_added() -> None:
    table = people(60)
    four = pd.concat(  # the same people four times over, as other people
        [table.assign(person=table["person"] + f"-{k}") for k in range(4)], ignore_index=True
    )
    assert score(four["pred"], four["true"])["f1"] == pytest.approx(
        score(table["pred"], table["true"])["f1"]
    )
    low, high = interval(table)
    low4, high4 = interval(four)
    assert high4 - low4 < 0.7 * (high - low)  # ~1/2 by sqrt(4)


def test_a_person_is_resampled_whole() -> None:
    """Each person's seven photos identical (all right or all wrong): drawn whole, every cell of
    every resampled confusion is a multiple of 7, and the interval is wider than if the same
    photos were independent draws (each its own person)."""
    table = people(80)
    per_person = person_confusions(table["true"], table["pred"], table["person"])
    assert per_person.shape == (80, NUM_CLASSES, NUM_CLASSES)
    resampled = resampled_confusions(per_person, resamples=200)
    assert resampled.sum(axis=(1, 2)) == pytest.approx(np.full(200, len(table)))
    assert (resampled % PHOTOS == 0).all()
    low, high = interval(table)
    photos = table.assign(person=np.arange(len(table)))
    low_photo, high_photo = interval(photos)
    assert high - low > 1.8 * (high_photo - low_photo)  # ~sqrt(7) = 2.6


def test_the_real_archive_size_takes_well_under_5_seconds() -> None:
    table = people(540)  # the real archive's validation fold: 540 people, 3,780 photos
    started = time.perf_counter()
    interval(table)
    assert time.perf_counter() - started < 2


def test_a_tiny_run_writes_its_interval(
    archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sweep = tiny_sweep(archive, tmp_path_factory)
    rows = collect_ledger([sweep]).set_index("run")
    widths = []
    for run in (sweep / name for name in FINISHED):
        summary = json.loads((run / "summary.json").read_text())
        for name in ("f1", "f1_mask", "f1_gender", "f1_age"):
            low, high = summary[f"val_{name}_ci_low"], summary[f"val_{name}_ci_high"]
            assert low <= summary[f"val_{name}"] <= high, (run.name, name)
            widths.append(high - low)
        assert summary["val_ci_resamples"] == 1000 and summary["val_ci_seed"] == 0
        ledger = rows.loc[run.name, ["val_f1_ci_low", "val_f1_ci_high"]].tolist()
        assert ledger == [summary["val_f1_ci_low"], summary["val_f1_ci_high"]]
        errors = json.loads((run / "errors.json").read_text())
        assert errors["intervals"]["f1"] == [summary["val_f1_ci_low"], summary["val_f1_ci_high"]]
        report = (run / "report.md").read_text()
        assert "95 % intervals by bootstrap over the validation people" in report
    assert max(widths) > 0.1  # barely trained, yet not all degenerate: 7 people vary
